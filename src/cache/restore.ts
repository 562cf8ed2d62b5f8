// Restoring the store cache: the entry is downloaded beside the store (or into the scratch
// directory), every NAR hash is checked, and only the paths the store lacks are moved in (or
// imported through Nix). The archive is imported whole or not at all.
import * as core from '@actions/core'
import { randomBytes } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { errorMessage } from '../errors.js'
import { removeTree } from '../tree.js'
import type { CacheKeys } from './keys.js'
import { readManifest } from './manifest.js'
import type { Manifest } from './manifest.js'
import { deletePaths, directorySize, invalidPaths } from './nix-store.js'
import { CACHE_DIR_NAME, restoreDirectory } from './service.js'
import {
  checkStagedHashes,
  importThroughNix,
  moveIntoStore,
  parseRegistrations,
  REGISTRATION_FILE,
  restoreMethod,
  storeAccess,
  storeDirectory,
  STORE_SUBDIR
} from './store-archive.js'
import type { Registration, RestoreMethod } from './store-archive.js'

/** What a restore brought back. */
export interface RestoredEntry {
  /** The key of the entry restored. */
  key: string
  /** Every path the entry holds, whether imported or already valid. */
  paths: string[]
  importedCount: number
  /** The entry's size on disk. */
  bytes: number
}

/** File listing the restored entry's paths, one a line, for post. */
export function restoredPathsFile(workDir: string): string {
  return join(workDir, 'restored-paths')
}

/**
 * Where the archive is extracted: beside the store (same filesystem, so that moving a path in
 * is a rename) when the paths go straight in, else the scratch directory.
 */
function stagingDirFor(fast: boolean, storeDir: string, workDir: string): string {
  const name = `.nca-staging-${randomBytes(6).toString('hex')}`
  return fast ? join(storeDir, name) : join(workDir, name)
}

/**
 * Download the entry for `keys` and import what the store lacks; null when there is no entry.
 * Throws when the archive cannot be used (it is then discarded and the store left as it was).
 */
export async function restoreEntry(
  keys: CacheKeys,
  workDir: string
): Promise<RestoredEntry | null> {
  const storeDir = storeDirectory()
  const method = restoreMethod(await storeAccess(storeDir))
  if (!method.fast) core.info(`Paths will be imported through nix copy: ${method.reason}`)
  const staging = stagingDirFor(method.fast, storeDir, workDir)
  try {
    await mkdir(staging)
    const key = await restoreDirectory(staging, keys.primary, keys.restore)
    if (key === null) return null
    const dir = join(staging, CACHE_DIR_NAME)
    const bytes = await directorySize(dir)
    const manifest = await readManifest(dir)
    const importedCount = await importAll({ archiveDir: dir, staging, storeDir, method, manifest })
    return { key, paths: manifest.paths, importedCount, bytes }
  } finally {
    // What was moved into the store is no longer here; the rest (a discarded archive, paths
    // that were valid already) only takes disk.
    await removeTree(staging).catch(() => undefined)
  }
}

interface ImportOptions {
  archiveDir: string
  staging: string
  storeDir: string
  method: RestoreMethod
  manifest: Manifest
}

/** Every path of the manifest with its registration, or an error naming what is wrong. */
function registrationsOf(manifest: Manifest, text: string, storeDir: string): Registration[] {
  const registrations = parseRegistrations(text)
  const registered = new Set(registrations.map(r => r.path))
  const unregistered = manifest.paths.find(p => !registered.has(p))
  if (unregistered !== undefined) throw new Error(`the archive does not register ${unregistered}`)
  const elsewhere = registrations.find(r => dirname(r.path) !== storeDir)
  if (elsewhere !== undefined) throw new Error(`${elsewhere.path} is not in the store ${storeDir}`)
  return registrations
}

/**
 * Bring in the paths the store lacks, each checked against its NAR hash before it is
 * registered. A failure leaves the store as it was: the archive is imported whole or not at all.
 */
async function importAll(o: ImportOptions): Promise<number> {
  const text = await readFile(join(o.archiveDir, REGISTRATION_FILE), 'utf8')
  const registrations = registrationsOf(o.manifest, text, o.storeDir)
  const invalid = new Set(await invalidPaths(o.manifest.paths))
  if (invalid.size === 0) return 0
  const missing = registrations.filter(r => invalid.has(r.path))
  core.info(`Importing ${missing.length} of ${o.manifest.paths.length} paths`)
  const stagedStore = join(o.archiveDir, STORE_SUBDIR)
  try {
    if (o.method.fast) {
      await checkStagedHashes(stagedStore, missing)
      await moveIntoStore(o.staging, stagedStore, missing)
    } else {
      const chroot = join(o.staging, 'chroot')
      await importThroughNix(chroot, stagedStore, o.storeDir, registrations, missing)
    }
    return missing.length
  } catch (error) {
    // Nix checked each path it added; still, the archive goes whole or not at all.
    if (!o.method.fast) await rollBack(missing.map(r => r.path))
    throw new Error(`the archive did not import cleanly and was discarded: ${errorMessage(error)}`)
  }
}

async function rollBack(missing: readonly string[]): Promise<void> {
  try {
    const stillInvalid = new Set(await invalidPaths(missing))
    const added = missing.filter(p => !stillInvalid.has(p))
    await deletePaths(added)
    if (added.length > 0) core.info(`Removed the ${added.length} paths this import had added`)
  } catch (error) {
    core.warning(
      `Store cache: could not remove the paths of a failed import: ${errorMessage(error)}`
    )
  }
}
