// The store cache stage: restore before the build (main), save after it (post).
//
// What is cached is the build closure of the image (the derivation's requisites with their
// outputs) and the sources of the flake's locked inputs, so that an exact hit needs the network
// for nothing. The archive (src/cache/store-archive.ts) holds the paths' files and their
// registration; a restore extracts them beside the store, checks every NAR hash, and moves only
// the missing paths in. The key decisions (keys, whether to save) are pure functions below.
import * as core from '@actions/core'
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { currentSystem } from '../nix/command.js'
import {
  buildClosure,
  deletePaths,
  directorySize,
  flakeInputPaths,
  flakeMetadata,
  invalidPaths
} from '../cache/nix-store.js'
import {
  checkStagedHashes,
  importThroughNix,
  moveIntoStore,
  parseRegistrations,
  REGISTRATION_FILE,
  restoreMethod,
  storeAccess,
  storeDirectory,
  STORE_SUBDIR,
  writeArchive
} from '../cache/store-archive.js'
import type { Registration } from '../cache/store-archive.js'
import type { FlakeMetadata } from '../cache/nix-store.js'
import {
  CACHE_DIR_NAME,
  cacheServiceMissing,
  restoreDirectory,
  saveDirectory
} from '../cache/service.js'
import { errorMessage, firstLine } from '../errors.js'
import { removeTree } from '../tree.js'

// --- keys (pure) --------------------------------------------------------------------------

export const KEY_PREFIX = 'nix-container-store'
/** Bump when the archive's layout changes, so old entries are never restored. */
export const MANIFEST_VERSION = 2
const MANIFEST_FILE = 'nix-container-action.json'

export interface KeyFacts {
  system: string
  attribute: string
  metadata: FlakeMetadata
  /** The `cache-key` input: replaces the primary key. */
  override: string | null
}

export interface CacheKeys {
  primary: string
  /** Prefixes tried in order after the primary key: the same lock, then system + attribute. */
  restore: string[]
}

export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16)
}

/**
 * `nix-container-store/<system>/<attribute>/lock-<hash>/source-<hash>`. The attribute is
 * URI-encoded and every part ends in `/`, so `container` never prefix-matches `container-zstd`
 * and no key holds a comma (which the cache service refuses).
 */
export function cacheKeys(facts: KeyFacts): CacheKeys {
  const base = `${KEY_PREFIX}/${facts.system}/${encodeURIComponent(facts.attribute)}/`
  const lock = `${base}lock-${facts.metadata.lock === null ? 'none' : shortHash(facts.metadata.lock)}/`
  const primary = facts.override ?? `${lock}source-${shortHash(facts.metadata.sourceHash)}`
  return { primary, restore: [lock, base] }
}

// --- save decisions (pure) ----------------------------------------------------------------

export interface SaveFacts {
  cacheSave: boolean
  /** Why there is no cache service (the variable the client lacks); null: there is one. */
  serviceMissing: string | null
  primaryKey: string | null
  restoredKey: string | null
  /** The build's derivation or output path is known: the build ran to the end. */
  built: boolean
}

/** Why the post step does not save, before looking at the store; null: look further. */
export function saveSkipReason(facts: SaveFacts): string | null {
  if (!facts.cacheSave) return 'cache-save: false'
  if (facts.serviceMissing !== null) return facts.serviceMissing
  if (facts.primaryKey === null) return 'no cache key: the restore step could not compute one'
  if (!facts.built) return 'the build did not run to the end'
  if (facts.restoredKey === facts.primaryKey) {
    return `exact hit on the primary key ${facts.primaryKey}: the entry already holds this build`
  }
  return null
}

/** The closure's paths that the restored cache did not have (sorted). */
export function pathsNotRestored(
  closure: readonly string[],
  restored: readonly string[]
): string[] {
  const had = new Set(restored)
  return closure.filter(p => !had.has(p)).sort()
}

export function closureSkipReason(
  closure: readonly string[],
  restored: readonly string[]
): string | null {
  if (pathsNotRestored(closure, restored).length > 0) return null
  return `the closure holds no path that the restored cache did not already have (${closure.length} paths)`
}

// --- the archive's manifest (pure) --------------------------------------------------------

export interface Manifest {
  version: number
  paths: string[]
}

const STORE_PATH = /^\/[^\n]*\/[0-9a-z]{32}-[^/\n]+$/

export function parseManifest(text: string): Manifest {
  const json = JSON.parse(text) as Partial<Manifest>
  if (json.version !== MANIFEST_VERSION) {
    throw new Error(
      `the archive's manifest has version ${String(json.version)}, not ${MANIFEST_VERSION}`
    )
  }
  const paths = Array.isArray(json.paths) ? json.paths : []
  const bad = paths.find(p => typeof p !== 'string' || !STORE_PATH.test(p))
  if (bad !== undefined)
    throw new Error(`the archive's manifest lists ${JSON.stringify(bad)}, not a store path`)
  return { version: MANIFEST_VERSION, paths }
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

// --- restore (main) -----------------------------------------------------------------------

export interface RestoreOptions {
  flake: string
  attribute: string
  system: string | null
  cacheKey: string | null
  /** Scratch directory for the archive; the restored path list stays here for post. */
  workDir: string
}

export type RestoreOutcome = 'restored' | 'miss' | 'unavailable' | 'failed'

export interface RestoreResult {
  outcome: RestoreOutcome
  keys: CacheKeys | null
  /** The key of the entry restored (and imported); null on a miss or a discarded archive. */
  restoredKey: string | null
  /** `restoredKey` is the primary key. */
  hit: boolean
  /** File listing the restored entry's paths, one a line (empty on a miss), for post. */
  restoredPathsFile: string
  pathCount: number
  importedCount: number
  bytes: number
  /** Why nothing was restored, for the log and the summary. */
  reason: string | null
}

export function restoredPathsFile(workDir: string): string {
  return join(workDir, 'restored-paths')
}

async function computeKeys(options: RestoreOptions): Promise<CacheKeys> {
  const [system, metadata] = await Promise.all([
    options.system ?? currentSystem(),
    flakeMetadata(options.flake)
  ])
  return cacheKeys({ system, attribute: options.attribute, metadata, override: options.cacheKey })
}

/**
 * Where the archive is extracted: beside the store (same filesystem, so that moving a path in
 * is a rename) when the paths go straight in, else the scratch directory.
 */
function stagingDirFor(fast: boolean, storeDir: string, workDir: string): string {
  const name = `.nca-staging-${randomBytes(6).toString('hex')}`
  return fast ? join(storeDir, name) : join(workDir, name)
}

/** Restore the store cache; never throws: a failed restore is a warning and a miss. */
export async function restoreStoreCache(options: RestoreOptions): Promise<RestoreResult> {
  const pathsFile = restoredPathsFile(options.workDir)
  const result: RestoreResult = {
    outcome: 'miss',
    keys: null,
    restoredKey: null,
    hit: false,
    restoredPathsFile: pathsFile,
    pathCount: 0,
    importedCount: 0,
    bytes: 0,
    reason: null
  }
  let staging: string | null = null
  try {
    await mkdir(options.workDir, { recursive: true })
    await writeFile(pathsFile, '')
    const storeDir = storeDirectory()
    const [keys, access] = await Promise.all([computeKeys(options), storeAccess(storeDir)])
    result.keys = keys
    core.info(`Primary key: ${keys.primary}`)
    core.info(`Restore keys: ${keys.restore.join(', ')}`)
    const missingService = await cacheServiceMissing()
    if (missingService !== null)
      return { ...result, outcome: 'unavailable', reason: missingService }
    const method = restoreMethod(access)
    if (!method.fast) core.info(`Paths will be imported through nix copy: ${method.reason}`)
    staging = stagingDirFor(method.fast, storeDir, options.workDir)
    await mkdir(staging)
    const key = await restoreDirectory(staging, keys.primary, keys.restore)
    if (key === null)
      return { ...result, reason: `no entry for ${keys.primary} or its restore keys` }
    const dir = join(staging, CACHE_DIR_NAME)
    const bytes = await directorySize(dir)
    const manifest = parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'))
    const imported = await importAll({ archiveDir: dir, staging, storeDir, method, manifest })
    await writeFile(pathsFile, manifest.paths.join('\n') + '\n')
    core.info(
      `Restored ${key}: ${manifest.paths.length} paths (${megabytes(bytes)}), ${imported} imported, the rest already valid`
    )
    return {
      ...result,
      outcome: 'restored',
      restoredKey: key,
      hit: key === keys.primary,
      pathCount: manifest.paths.length,
      importedCount: imported,
      bytes
    }
  } catch (error) {
    const reason = errorMessage(error)
    core.warning(`Store cache: restore failed, building without the cache: ${reason}`)
    return { ...result, outcome: 'failed', reason: firstLine(reason) }
  } finally {
    // What was moved into the store is no longer here; the rest (a discarded archive, paths
    // that were valid already) only takes disk.
    if (staging !== null) await removeTree(staging).catch(() => undefined)
  }
}

interface ImportOptions {
  archiveDir: string
  staging: string
  storeDir: string
  method: ReturnType<typeof restoreMethod>
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

export function describeRestore(result: RestoreResult): string {
  switch (result.outcome) {
    case 'restored': {
      const which = result.hit ? 'hit' : 'restore-key hit'
      return `${which} ${result.restoredKey ?? ''}: ${result.pathCount} paths, ${megabytes(result.bytes)}, ${result.importedCount} imported`
    }
    case 'miss':
      return `miss: ${result.reason ?? ''}`
    case 'unavailable':
      return `skipped: ${result.reason ?? ''}`
    case 'failed':
      return `failed (warning): ${result.reason ?? ''}`
  }
}

// --- save (post) --------------------------------------------------------------------------

export interface SaveOptions {
  /** The flake reference, for the store paths of its inputs. */
  flake: string
  cacheSave: boolean
  primaryKey: string | null
  restoredKey: string | null
  restoredPathsFile: string | null
  /** One a line, in `storePath` order ('' where unknown): a `systems` run builds several. */
  drvPath: string | null
  /** One a line. */
  storePath: string | null
  workDir: string
}

/** The union of every build's closure. */
async function closureOfBuilds(drvPaths: string | null, storePaths: string): Promise<string[]> {
  const drvs = (drvPaths ?? '').split('\n')
  const closure = new Set<string>()
  for (const [i, storePath] of storePaths.split('\n').filter(Boolean).entries()) {
    for (const path of await buildClosure(drvs[i] || null, storePath)) closure.add(path)
  }
  return [...closure].sort()
}

export type SaveResult =
  | { saved: true; key: string; pathCount: number; newCount: number; bytes: number }
  /** failed: the service refused or failed (a warning); otherwise a rule said no (a log line). */
  | { saved: false; reason: string; failed?: boolean }

async function readRestoredPaths(file: string | null): Promise<string[]> {
  if (file === null) return []
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.split('\n').filter(line => line !== '')
}

/** The build closures (one per system built) and the sources of the flake's inputs (sorted). */
async function pathsToCache(options: SaveOptions, storePaths: string): Promise<string[]> {
  const [closure, inputs] = await Promise.all([
    closureOfBuilds(options.drvPath, storePaths),
    flakeInputPaths(options.flake)
  ])
  // An input the evaluation never needed may not be in the store: nothing to keep of it.
  const absent = new Set(await invalidPaths(inputs))
  return [...new Set([...closure, ...inputs.filter(p => !absent.has(p))])].sort()
}

/** Save the build closure and the inputs under the primary key, unless there is no point. */
export async function saveStoreCache(options: SaveOptions): Promise<SaveResult> {
  const skip = saveSkipReason({
    cacheSave: options.cacheSave,
    serviceMissing: await cacheServiceMissing(),
    primaryKey: options.primaryKey,
    restoredKey: options.restoredKey,
    built: options.storePath !== null
  })
  if (skip !== null || options.primaryKey === null || options.storePath === null) {
    return { saved: false, reason: skip ?? 'nothing to save' }
  }
  const closure = await pathsToCache(options, options.storePath)
  const restored = await readRestoredPaths(options.restoredPathsFile)
  const noNewPaths = closureSkipReason(closure, restored)
  if (noNewPaths !== null) return { saved: false, reason: noNewPaths }
  const newCount = pathsNotRestored(closure, restored).length

  const dir = join(options.workDir, CACHE_DIR_NAME)
  await removeTree(dir)
  await mkdir(dir, { recursive: true })
  try {
    core.info(
      `Saving ${closure.length} paths (${newCount} not in the restored cache) as ${options.primaryKey}`
    )
    await writeArchive(dir, closure)
    const manifest: Manifest = { version: MANIFEST_VERSION, paths: closure }
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest))
    const bytes = await directorySize(dir)
    if (!(await saveDirectory(options.workDir, options.primaryKey))) {
      return {
        saved: false,
        failed: true,
        reason: 'the cache service did not take the entry (see the message above)'
      }
    }
    return { saved: true, key: options.primaryKey, pathCount: closure.length, newCount, bytes }
  } finally {
    await removeTree(dir).catch(() => undefined)
  }
}

export function describeSave(result: SaveResult): string {
  if (!result.saved) return `not saved: ${result.reason}`
  return `saved ${result.key}: ${result.pathCount} paths (${result.newCount} new), ${megabytes(result.bytes)}`
}

// --- helpers --------------------------------------------------------------------------------

/** Scratch space for the archive: the runner's temp directory, emptied after each job. */
export function storeCacheWorkDir(): string {
  return join(process.env.RUNNER_TEMP ?? tmpdir(), 'nix-container-action')
}
