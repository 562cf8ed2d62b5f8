// Restoring the store cache: the newest entry for the keys is downloaded and, when it is a
// delta, the base it builds on; each is extracted, confined (an entry is untrusted input:
// extract.ts), into a staging folder beside the store (or in the scratch directory), every NAR
// hash is checked, and only the paths the store lacks, with their references whole, are moved
// in (or imported through Nix). The import is whole or not at all.
import * as core from '../core.js'
import { randomBytes } from 'node:crypto'
import { lstatSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { errorMessage } from '../errors.js'
import { removeTree } from '../tree.js'
import { extractConfined, RefusedMembers } from './extract.js'
import type { Layout } from './extract.js'
import { parseEntryKey } from './keys.js'
import type { CacheKeys, EntryKey } from './keys.js'
import { MANIFEST_FILE, readManifest } from './manifest.js'
import { phases } from './phases.js'
import type { Phases } from './phases.js'
import { deletePaths, invalidPaths } from './nix-store.js'
import { CACHE_DIR_NAME, downloadFirst } from './service.js'
import { addSignatures, firstUntrustedPath, signaturesOf } from './signatures.js'
import { addSignaturesToDatabase, nixDatabaseFile } from '../nix/db.js'
import type { NixPublicKey } from '../signing/nix-key.js'
import {
  checkStagedHashes,
  importThroughNix,
  moveIntoStore,
  narBytes,
  parseRegistrations,
  REGISTRATION_FILE,
  restoreMethod,
  storeAccess,
  storeDirectory,
  STORE_SUBDIR
} from './store-archive.js'
import type { Registration, RestoreMethod, StagedPath } from './store-archive.js'

/** One entry that came back: its key, what kind of layer it is, and its paths. */
export interface RestoredLayer {
  key: string
  kind: EntryKey['kind']
  paths: string[]
  /** NAR bytes of its paths: a delta may grow to a share of its base's. */
  narBytes: number
}

/** What a restore brought back. */
export interface RestoredEntry {
  /** The key the look-up found (a delta, a base, or a whole entry). */
  key: string
  /** The entries downloaded whose paths are now valid. */
  layers: RestoredLayer[]
  /** Every path the store now has of them, whether imported or already valid (sorted). */
  paths: string[]
  importedCount: number
  /** NAR bytes of `paths`. */
  bytes: number
}

/** The subdirectory of CACHE_DIR_NAME an entry of this kind is archived under. */
export function layerDirectory(kind: EntryKey['kind']): string {
  return kind === 'delta' ? 'delta' : 'base'
}

/** What main restored, for post: the keys and the layers. */
export interface RestoreRecord {
  keys: CacheKeys
  layers: RestoredLayer[]
}

/** File holding the RestoreRecord as JSON, for post. */
export function restoreRecordFile(workDir: string): string {
  return join(workDir, 'restored.json')
}

export async function writeRestoreRecord(file: string, record: RestoreRecord): Promise<void> {
  await writeFile(file, JSON.stringify(record))
}

/** The record main wrote; null when there is none (a miss before the keys were known). */
export async function readRestoreRecord(file: string | null): Promise<RestoreRecord | null> {
  if (file === null) return null
  const text = await readFile(file, 'utf8').catch(() => '')
  return text === '' ? null : (JSON.parse(text) as RestoreRecord)
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
 * Download the entries for `keys` and import what the store lacks; null when there is none.
 * Throws when the archives cannot be used (they are then discarded and the store left as it
 * was).
 */
export async function restoreEntry(
  keys: CacheKeys,
  workDir: string,
  timer: Phases = phases(),
  /** `cache-trusted-keys`: when any, every path must carry a valid signature by one of them. */
  trustedKeys: readonly NixPublicKey[] = []
): Promise<RestoredEntry | null> {
  const storeDir = storeDirectory()
  const method = restoreMethod(await storeAccess(storeDir))
  if (!method.fast) core.info(`Paths will be imported through nix copy: ${method.reason}`)
  const staging = stagingDirFor(method.fast, storeDir, workDir)
  try {
    await mkdir(staging)
    // The NAR hash of each staged path, computed as it was extracted (the fast path checks
    // them; `nix copy` checks its own).
    const narHashes = new Map<string, string>()
    const fetch = (primary: string, restore: string[]) =>
      fetchLayer({ staging, workDir, primary, restore, narHashes: method.fast ? narHashes : null })
    const first = await fetch(keys.primary, keys.restore)
    if (first === null) return null
    const found = first.key
    const entries = await withBase(fetch, first)
    timer.end('download and extract')
    const layers = await readLayers(join(staging, CACHE_DIR_NAME), entries)
    timer.end('read the registrations')
    if (trustedKeys.length > 0) {
      await checkSignatures(layers, trustedKeys)
      timer.end('check signatures')
    }
    const staged = uniqueRegistrations(layers)
    const { importedCount, leftOut } = await importAll({
      staging,
      storeDir,
      method,
      staged,
      narHashes,
      timer
    })
    core.info(`Restore phases: ${timer.summary()}`)
    const valid = staged.filter(r => !leftOut.has(r.path))
    // What post builds on: a path left out is not in the store, whatever its entry holds.
    const restored = layers.map(({ layer }) => ({
      ...layer,
      paths: layer.paths.filter(p => !leftOut.has(p))
    }))
    return {
      key: found,
      layers: restored,
      paths: valid.map(r => r.path).sort(),
      importedCount,
      bytes: narBytes(valid)
    }
  } finally {
    // What was moved into the store is no longer here; the rest (a discarded archive, paths
    // that were valid already) only takes disk.
    await removeTree(staging).catch(() => undefined)
  }
}

/**
 * Where each member of an entry's archive may stand: its layer's folder (`base/` or `delta/`,
 * so that a delta and its base never write into each other's), holding the manifest, the
 * registration and `store/`, under which lie the store paths' own trees (the only place for a
 * symbolic link or a hard link).
 */
export function layerLayout(kind: EntryKey['kind']): Layout {
  const layer = layerDirectory(kind)
  return parts => {
    const [root, dir, name] = parts
    if (root !== CACHE_DIR_NAME) return null
    if (dir === undefined) return 'directory'
    if (dir !== layer) return null
    if (name === undefined) return 'directory'
    if (name === STORE_SUBDIR) return parts.length === 3 ? 'directory' : 'tree'
    if (parts.length === 3 && (name === REGISTRATION_FILE || name === MANIFEST_FILE)) return 'file'
    return null
  }
}

type Fetch = (primary: string, restore: string[]) => Promise<EntryKey | null>

interface FetchOptions {
  staging: string
  workDir: string
  primary: string
  restore: string[]
  /** Where the NAR hashes of the staged paths go, computed as they are extracted; null: not. */
  narHashes: Map<string, string> | null
}

/**
 * Download the entry of `primary` (else the newest of each `restore` prefix) and extract it,
 * confined, into the staging folder: its key, or null on a miss. An archive that holds a
 * member that may not be extracted, or that does not extract, is an error: the caller discards
 * the whole staging folder.
 */
async function fetchLayer(o: FetchOptions): Promise<EntryKey | null> {
  const archive = join(o.workDir, `entry-${randomBytes(6).toString('hex')}.tar.zst`)
  try {
    const found = await downloadFirst(o.primary, o.restore, archive)
    if (found === null) return null
    const entry = parseEntryKey(found)
    const started = performance.now()
    try {
      const { members, narHashes } = await extractConfined(
        archive,
        o.staging,
        layerLayout(entry.kind),
        { hashTrees: o.narHashes !== null }
      )
      for (const [path, hash] of narHashes) o.narHashes?.set(path, hash)
      const seconds = ((performance.now() - started) / 1000).toFixed(2)
      core.info(`Extracted ${found}: ${members} members in ${seconds} s`)
    } catch (error) {
      if (error instanceof RefusedMembers) {
        throw new Error(`the entry ${found} was discarded: ${error.message}`)
      }
      throw new Error(`the entry ${found} does not extract: ${errorMessage(error)}`)
    }
    return entry
  } finally {
    await rm(archive, { force: true })
  }
}

/**
 * The entry restored and, for a delta, its base, downloaded after it (a delta is small: one
 * look-up less for a base than looking up first and downloading both side by side). A base
 * that is gone (evicted, or superseded and deleted) is replaced by the newest base of the same
 * lock, if any.
 */
async function withBase(fetch: Fetch, found: EntryKey): Promise<EntryKey[]> {
  if (found.kind !== 'delta') return [found]
  // A base key is never the prefix of another: what this finds is that base.
  const base = await fetch(found.base, [])
  if (base !== null) return [found, base]
  core.info(`The base ${found.base} of ${found.key} is not in the cache: looking for another one`)
  const newest = `${found.lock}base-`
  const other = await fetch(newest, [newest])
  if (other === null || !other.key.startsWith(newest)) return [found]
  core.info(`Restored the base ${other.key}; paths of the delta that need the old one are left out`)
  return [found, other]
}

/** A downloaded entry, with its registrations and where its files are. */
interface StagedLayer {
  layer: RestoredLayer
  staged: StagedPath[]
}

/** Every path of the manifest with its registration, or an error naming what is wrong. */
function manifestRegistrations(paths: string[], text: string, storeDir: string): Registration[] {
  const registrations = parseRegistrations(text)
  const registered = new Set(registrations.map(r => r.path))
  const unregistered = paths.find(p => !registered.has(p))
  if (unregistered !== undefined) throw new Error(`the archive does not register ${unregistered}`)
  const elsewhere = registrations.find(r => dirname(r.path) !== storeDir)
  if (elsewhere !== undefined) throw new Error(`${elsewhere.path} is not in the store ${storeDir}`)
  return registrations.filter(r => registered.has(r.path))
}

async function readLayers(cacheDir: string, entries: EntryKey[]): Promise<StagedLayer[]> {
  const storeDir = storeDirectory()
  return Promise.all(
    entries.map(async entry => {
      const dir = join(cacheDir, layerDirectory(entry.kind))
      const manifest = await readManifest(dir)
      const text = await readFile(join(dir, REGISTRATION_FILE), 'utf8')
      const registrations = manifestRegistrations(manifest.paths, text, storeDir)
      const staged = registrations.map(r => ({
        ...r,
        staged: join(dir, STORE_SUBDIR, r.path.slice(storeDir.length + 1)),
        signatures: signaturesOf(manifest.signatures, r.path)
      }))
      const layer = {
        key: entry.key,
        kind: entry.kind,
        paths: manifest.paths,
        narBytes: narBytes(registrations)
      }
      return { layer, staged }
    })
  )
}

/**
 * Every path of every downloaded entry must carry a valid signature by a trusted key, checked
 * before anything is registered; the first entry that has one that does not is discarded
 * whole, and with it the restore (a miss), naming the path and the key.
 */
async function checkSignatures(
  layers: readonly StagedLayer[],
  trusted: readonly NixPublicKey[]
): Promise<void> {
  for (const { layer, staged } of layers) {
    const why = await firstUntrustedPath(staged, trusted)
    if (why !== null) throw new Error(`the entry ${layer.key} was discarded: ${why}`)
  }
}

/** Each path once (a path two layers hold is taken from the first). */
function uniqueRegistrations(layers: readonly StagedLayer[]): StagedPath[] {
  const byPath = new Map<string, StagedPath>()
  for (const staged of layers.flatMap(l => l.staged)) {
    if (!byPath.has(staged.path)) byPath.set(staged.path, staged)
  }
  return [...byPath.values()]
}

/**
 * The missing paths whose every reference is valid or imported with them (pure): a path whose
 * closure the downloaded entries do not hold (a delta whose base is gone) is left out, and so
 * is every path that refers to it.
 */
export function wholeClosures<R extends Registration>(
  missing: readonly R[],
  isValid: (path: string) => boolean
): R[] {
  const importing = new Map(missing.map(r => [r.path, r]))
  for (let changed = true; changed;) {
    changed = false
    for (const [path, entry] of importing) {
      if (entry.references.some(ref => !isValid(ref) && !importing.has(ref))) {
        importing.delete(path)
        changed = true
      }
    }
  }
  return missing.filter(r => importing.has(r.path))
}

interface ImportOptions {
  staging: string
  storeDir: string
  method: RestoreMethod
  /** Every path of the entries, once. */
  staged: StagedPath[]
  /** NAR hashes of staged paths, computed as they were extracted. */
  narHashes: ReadonlyMap<string, string>
  timer: Phases
}

/**
 * The paths the store does not hold valid. In a local store this process writes, only those
 * with a file in the store are asked of Nix: Nix keeps every valid path on disk, so a path
 * without one is not valid (on a fresh runner, none are asked).
 */
async function invalidAmong(paths: string[], local: boolean): Promise<Set<string>> {
  if (!local) return new Set(await invalidPaths(paths))
  const onDisk = paths.filter(p => lstatSync(p, { throwIfNoEntry: false }) !== undefined)
  const asked = new Set(onDisk)
  const invalid = new Set(paths.filter(p => !asked.has(p)))
  for (const path of await invalidPaths(onDisk)) invalid.add(path)
  return invalid
}

/** Which of the staged paths to import: the missing ones with whole closures. */
async function pathsToImport(
  staged: StagedPath[],
  local: boolean
): Promise<{ importing: StagedPath[]; leftOut: Set<string> }> {
  const inArchive = new Set(staged.map(s => s.path))
  const elsewhere = [...new Set(staged.flatMap(s => s.references).filter(r => !inArchive.has(r)))]
  const invalid = await invalidAmong([...inArchive, ...elsewhere], local)
  const missing = staged.filter(s => invalid.has(s.path))
  const whole = wholeClosures(missing, path => !invalid.has(path))
  const importing = new Set(whole.map(s => s.path))
  const leftOut = new Set(missing.map(s => s.path).filter(p => !importing.has(p)))
  if (leftOut.size > 0) {
    core.info(
      `${leftOut.size} paths left out: they need paths neither the store nor the entries hold`
    )
  }
  return { importing: whole, leftOut }
}

/**
 * Bring in the paths the store lacks, each checked against its NAR hash before it is
 * registered. A failure leaves the store as it was: the import is whole or not at all.
 */
async function importAll(
  o: ImportOptions
): Promise<{ importedCount: number; leftOut: Set<string> }> {
  const { staged } = o
  const { importing: missing, leftOut } = await pathsToImport(staged, o.method.fast)
  o.timer.end('check validity')
  if (missing.length === 0) return { importedCount: 0, leftOut }
  core.info(`Importing ${missing.length} of ${staged.length} paths`)
  try {
    if (o.method.fast) {
      await checkStagedHashes(missing, o.narHashes)
      o.timer.end('check NAR hashes')
      await moveIntoStore(o.staging, missing, () => o.timer.end('move in'))
      o.timer.end('register (load-db)')
      await keepSignatures(o, missing)
    } else {
      await importThroughNix(join(o.staging, 'chroot'), o.storeDir, staged, missing)
      o.timer.end('import through nix copy')
    }
    return { importedCount: missing.length, leftOut }
  } catch (error) {
    // Nix checked each path it added; still, the import goes whole or not at all.
    if (!o.method.fast) await rollBack(missing.map(r => r.path))
    throw new Error(`the archive did not import cleanly and was discarded: ${errorMessage(error)}`)
  }
}

/**
 * The fast path: the paths are registered (load-db takes no signatures); add theirs, straight
 * into the database this process just registered them in (copy-sigs where this Node has no
 * SQLite). A failure leaves valid paths without signatures, which is a warning, not a reason to
 * discard them.
 */
async function keepSignatures(o: ImportOptions, paths: readonly StagedPath[]): Promise<void> {
  const signed = new Map(
    paths.filter(p => p.signatures.length > 0).map(p => [p.path, p.signatures])
  )
  if (signed.size === 0) return
  try {
    if (await addSignaturesToDatabase(nixDatabaseFile(), signed)) {
      o.timer.end('add signatures')
    } else if (await addSignatures(join(o.staging, 'narinfo'), o.storeDir, paths, null)) {
      o.timer.end('add signatures (copy-sigs)')
    }
  } catch (error) {
    core.warning(
      `Store cache: the restored paths are valid but their signatures were not recorded: ${errorMessage(error)}`
    )
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
