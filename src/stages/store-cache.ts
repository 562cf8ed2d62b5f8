// The store cache stage: restore before the build (main), save after it (post).
//
// What is cached is the build closure of the image (the derivation's requisites with their
// outputs) and the sources of the flake's locked inputs, so that an exact hit needs the network
// for nothing, in layers: a base per lock and a delta per commit. This file is the order of
// things; the keys, the save rules, the archive, its restore and save, and the deletion of
// superseded entries live in src/cache/.
import * as core from '../core.js'
import { mkdir, writeFile } from 'node:fs/promises'
import { computeKeys, isExactHit } from '../cache/keys.js'
import type { CacheKeys } from '../cache/keys.js'
import { phases } from '../cache/phases.js'
import { pruneSuperseded } from '../cache/prune.js'
import type { PruneResult } from '../cache/prune.js'
import {
  readRestoreRecord,
  restoreEntry,
  restoreRecordFile,
  writeRestoreRecord
} from '../cache/restore.js'
import { megabytes, pathsToCache, planSave, saveEntry } from '../cache/save.js'
import { closureSkipReason, pathsNotRestored, saveSkipReason } from '../cache/save-rules.js'
import { cacheServiceMissing, preloadCacheClient } from '../cache/service.js'
import { errorMessage, firstLine } from '../errors.js'
import { actionTempDir } from '../temp.js'
import type { NixPublicKey, NixSecretKey } from '../signing/nix-key.js'

// --- restore (main) -----------------------------------------------------------------------

export interface RestoreOptions {
  flake: string
  attribute: string
  system: string | null
  cacheKey: string | null
  /** Scratch directory for the archive; the restored path list stays here for post. */
  workDir: string
  /** `cache-trusted-keys`: restore only entries whose every path one of them signed. */
  trustedKeys?: readonly NixPublicKey[]
}

export type RestoreOutcome = 'restored' | 'miss' | 'unavailable' | 'failed'

export interface RestoreResult {
  outcome: RestoreOutcome
  keys: CacheKeys | null
  /** The key of the entry restored (and imported); null on a miss or a discarded archive. */
  restoredKey: string | null
  /** The entry restored is this commit's own (its delta or base, or the `cache-key` one). */
  hit: boolean
  /** File with what was restored (keys and layers, JSON; empty on a miss), for post. */
  recordFile: string
  pathCount: number
  importedCount: number
  bytes: number
  /** Why nothing was restored, for the log and the summary. */
  reason: string | null
}

/**
 * Begin loading the cache client (most of the bundle) while the stages before the restore run:
 * it is then ready when the restore starts.
 */
export function prepareStoreCache(): void {
  preloadCacheClient()
}

/** Restore the store cache; never throws: a failed restore is a warning and a miss. */
export async function restoreStoreCache(options: RestoreOptions): Promise<RestoreResult> {
  const recordFile = restoreRecordFile(options.workDir)
  const result: RestoreResult = {
    outcome: 'miss',
    keys: null,
    restoredKey: null,
    hit: false,
    recordFile,
    pathCount: 0,
    importedCount: 0,
    bytes: 0,
    reason: null
  }
  try {
    await mkdir(options.workDir, { recursive: true })
    await writeFile(recordFile, '')
    const timer = phases()
    // Nix computes the keys while the cache client loads (preloadCacheClient).
    const missingService = cacheServiceMissing()
    const keys = await computeKeys(options)
    result.keys = keys
    await writeRestoreRecord(recordFile, { keys, layers: [] })
    core.info(`Primary key: ${keys.primary}`)
    core.info(`Restore keys: ${keys.restore.join(', ')}`)
    if (missingService !== null)
      return { ...result, outcome: 'unavailable', reason: missingService }
    timer.end('keys and service')
    const entry = await restoreEntry(keys, options.workDir, timer, options.trustedKeys ?? [])
    if (entry === null)
      return { ...result, reason: `no entry for ${keys.primary} or its restore keys` }
    await writeRestoreRecord(recordFile, { keys, layers: entry.layers })
    const from = entry.layers.map(l => `${l.kind} ${l.key}`).join(' + ')
    core.info(
      `Restored ${from}: ${entry.paths.length} paths (${megabytes(entry.bytes)}), ${entry.importedCount} imported, the rest already valid`
    )
    return {
      ...result,
      outcome: 'restored',
      restoredKey: entry.key,
      hit: isExactHit(keys, entry.key),
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
  /** What main restored (restoreRecordFile). */
  recordFile: string | null
  /** For deleting superseded entries: the `github-token` input, GITHUB_REF, main's start. */
  githubToken: string | null
  startedAt: Date | null
  /** One a line, in `storePath` order ('' where unknown): a `systems` run builds several. */
  drvPath: string | null
  /** One a line. */
  storePath: string | null
  workDir: string
  /** `cache-signing-key`: sign each path saved; null: an unsigned entry. */
  signingKey?: NixSecretKey | null
}

export type SaveResult =
  | {
      saved: true
      key: string
      kind: string
      pathCount: number
      newCount: number
      bytes: number
      pruned: PruneResult | null
    }
  /** failed: the service refused or failed (a warning); otherwise a rule said no (a log line). */
  | { saved: false; reason: string; failed?: boolean }

/**
 * Save what the build needed that the restored entries lacked: a delta on this lock's base, or
 * a new base; then delete what that superseded. Unless there is no point.
 */
export async function saveStoreCache(options: SaveOptions): Promise<SaveResult> {
  const record = await readRestoreRecord(options.recordFile)
  const restoredKey = options.restoredKey
  const skip = saveSkipReason({
    cacheSave: options.cacheSave,
    serviceMissing: cacheServiceMissing(),
    primaryKey: options.primaryKey,
    exactHit: record && restoredKey && isExactHit(record.keys, restoredKey) ? restoredKey : null,
    built: options.storePath !== null
  })
  if (skip !== null || record === null || options.storePath === null) {
    return { saved: false, reason: skip ?? 'nothing to save: main recorded no keys' }
  }
  const closure = await pathsToCache(options.flake, options.drvPath, options.storePath)
  const restored = [...new Set(record.layers.flatMap(l => l.paths))]
  const noNewPaths = closureSkipReason(closure, restored)
  if (noNewPaths !== null) return { saved: false, reason: noNewPaths }
  const plan = await planSave(record.keys, closure, record.layers)
  if (plan.note !== null) core.info(plan.note)
  const bytes = await saveEntry(options.workDir, plan, options.signingKey ?? null)
  if (bytes === null) {
    return {
      saved: false,
      failed: true,
      reason: 'the cache service did not take the entry (see the message above)'
    }
  }
  const pruned = await pruneAfterSave(record.keys, plan, options)
  return {
    saved: true,
    key: plan.key,
    kind: plan.kind,
    pathCount: plan.registrations.length,
    newCount: pathsNotRestored(closure, restored).length,
    bytes,
    pruned
  }
}

/** Delete the lock's entries on this ref that the new one superseded (not with `cache-key`). */
async function pruneAfterSave(
  keys: CacheKeys,
  plan: { key: string; base: string | null },
  options: SaveOptions
): Promise<PruneResult | null> {
  const ref = process.env.GITHUB_REF
  if (keys.layers === null || !ref || options.startedAt === null) return null
  const lockPrefix = keys.layers.lock
  const keep = [plan.key, ...(plan.base === null ? [] : [plan.base])]
  const result = await pruneSuperseded(
    { lockPrefix, keep, ref, startedAt: options.startedAt },
    process.env,
    options.githubToken
  )
  for (const key of result.deleted) core.info(`Deleted the superseded entry ${key}`)
  if (result.notice !== null) core.notice(`Store cache: ${result.notice}`)
  if (result.skipped !== null) core.info(result.skipped)
  return result
}

export function describeSave(result: SaveResult): string {
  if (!result.saved) return `not saved: ${result.reason}`
  const pruned = result.pruned?.deleted.length ?? 0
  const deleted = pruned > 0 ? `; ${pruned} superseded deleted` : ''
  return `saved ${result.kind} ${result.key}: ${result.pathCount} paths (${result.newCount} new), ${megabytes(result.bytes)}${deleted}`
}

// --- helpers --------------------------------------------------------------------------------

/** Scratch space for the archive: the runner's temp directory, emptied after each job. */
export function storeCacheWorkDir(): string {
  return actionTempDir()
}
