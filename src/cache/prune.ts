// Deleting the entries a save superseded, through GitHub's REST API, so that a lock and branch
// keep one base and one delta however many commits go by. Only this ref's entries of the same
// lock, saved before this job began (a job running beside this one keeps what it saved).
import { errorMessage } from '../errors.js'
import { CachesApiError, cachesApiFrom, deleteCachesByKey, listCaches } from './github-caches.js'
import type { CacheRecord } from './github-caches.js'

export interface PruneScope {
  /** Every entry of the lock starts with it. */
  lockPrefix: string
  /** The keys to keep: the entry just saved and the base it builds on. */
  keep: string[]
  /** GITHUB_REF: caches are scoped by ref, and only this one's are ours to delete. */
  ref: string
  /** When the job's main step began. */
  startedAt: Date
}

export interface PruneResult {
  deleted: string[]
  /** Why superseded entries were left (no permission, an API error); null: none. */
  notice: string | null
  /** Why they were not looked for (no token, no repository), for the log; null: they were. */
  skipped: string | null
}

/**
 * The listed entries the save superseded (pure). Never a key that a kept key starts with:
 * github.com has been seen deleting by prefix (cli/cli#10624).
 */
export function supersededEntries(records: readonly CacheRecord[], scope: PruneScope) {
  return records.filter(
    r =>
      r.ref === scope.ref &&
      r.key.startsWith(scope.lockPrefix) &&
      !scope.keep.some(kept => kept.startsWith(r.key)) &&
      Date.parse(r.createdAt) < scope.startedAt.getTime()
  )
}

const PERMISSION =
  'give the job `permissions: actions: write` to let the action delete the entries it superseded'

/** Delete the superseded entries; never throws: what could not be done is a notice. */
export async function pruneSuperseded(
  scope: PruneScope,
  env: Record<string, string | undefined>,
  token: string | null
): Promise<PruneResult> {
  const api = cachesApiFrom(env, token)
  if ('missing' in api) {
    return {
      deleted: [],
      notice: null,
      skipped: `superseded entries not looked for: ${api.missing}`
    }
  }
  const deleted: string[] = []
  try {
    const records = await listCaches(api, { keyPrefix: scope.lockPrefix, ref: scope.ref })
    const keys = [...new Set(supersededEntries(records, scope).map(r => r.key))]
    for (const key of keys) {
      if ((await deleteCachesByKey(api, { key, ref: scope.ref })) > 0) deleted.push(key)
    }
    return { deleted, notice: null, skipped: null }
  } catch (error) {
    const why =
      error instanceof CachesApiError && error.forbidden
        ? `the token may not (${PERMISSION})`
        : errorMessage(error)
    const done = deleted.length > 0 ? ` after deleting ${deleted.length}` : ''
    return {
      deleted,
      notice: `superseded entries were not all deleted${done}: ${why}`,
      skipped: null
    }
  }
}
