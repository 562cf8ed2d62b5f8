// The store cache stage: restore before the build (main), save after it (post).
//
// What is cached is the build closure of the image (the derivation's requisites with their
// outputs) and the sources of the flake's locked inputs, so that an exact hit needs the network
// for nothing. This file is the order of things; the keys, the save rules, the archive and its
// restore and save live in src/cache/.
import * as core from '@actions/core'
import { mkdir, writeFile } from 'node:fs/promises'
import { computeKeys } from '../cache/keys.js'
import type { CacheKeys } from '../cache/keys.js'
import { restoreEntry, restoredPathsFile } from '../cache/restore.js'
import { pathsToCache, readRestoredPaths, saveEntry } from '../cache/save.js'
import { closureSkipReason, pathsNotRestored, saveSkipReason } from '../cache/save-rules.js'
import { cacheServiceMissing } from '../cache/service.js'
import { errorMessage, firstLine } from '../errors.js'
import { actionTempDir } from '../temp.js'

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
  try {
    await mkdir(options.workDir, { recursive: true })
    await writeFile(pathsFile, '')
    const keys = await computeKeys(options)
    result.keys = keys
    core.info(`Primary key: ${keys.primary}`)
    core.info(`Restore keys: ${keys.restore.join(', ')}`)
    const missingService = await cacheServiceMissing()
    if (missingService !== null)
      return { ...result, outcome: 'unavailable', reason: missingService }
    const entry = await restoreEntry(keys, options.workDir)
    if (entry === null)
      return { ...result, reason: `no entry for ${keys.primary} or its restore keys` }
    await writeFile(pathsFile, entry.paths.join('\n') + '\n')
    core.info(
      `Restored ${entry.key}: ${entry.paths.length} paths (${megabytes(entry.bytes)}), ${entry.importedCount} imported, the rest already valid`
    )
    return {
      ...result,
      outcome: 'restored',
      restoredKey: entry.key,
      hit: entry.key === keys.primary,
      pathCount: entry.paths.length,
      importedCount: entry.importedCount,
      bytes: entry.bytes
    }
  } catch (error) {
    const reason = errorMessage(error)
    core.warning(`Store cache: restore failed, building without the cache: ${reason}`)
    return { ...result, outcome: 'failed', reason: firstLine(reason) }
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

export type SaveResult =
  | { saved: true; key: string; pathCount: number; newCount: number; bytes: number }
  /** failed: the service refused or failed (a warning); otherwise a rule said no (a log line). */
  | { saved: false; reason: string; failed?: boolean }

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
  const closure = await pathsToCache(options.flake, options.drvPath, options.storePath)
  const restored = await readRestoredPaths(options.restoredPathsFile)
  const noNewPaths = closureSkipReason(closure, restored)
  if (noNewPaths !== null) return { saved: false, reason: noNewPaths }
  const newCount = pathsNotRestored(closure, restored).length
  const bytes = await saveEntry(options.workDir, options.primaryKey, closure, newCount)
  if (bytes === null) {
    return {
      saved: false,
      failed: true,
      reason: 'the cache service did not take the entry (see the message above)'
    }
  }
  return { saved: true, key: options.primaryKey, pathCount: closure.length, newCount, bytes }
}

export function describeSave(result: SaveResult): string {
  if (!result.saved) return `not saved: ${result.reason}`
  return `saved ${result.key}: ${result.pathCount} paths (${result.newCount} new), ${megabytes(result.bytes)}`
}

// --- helpers --------------------------------------------------------------------------------

export function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

/** Scratch space for the archive: the runner's temp directory, emptied after each job. */
export function storeCacheWorkDir(): string {
  return actionTempDir()
}
