// The GitHub cache service through @actions/cache, for one directory.
import { mkdir } from 'node:fs/promises'

/**
 * @actions/cache and its Azure SDK are most of the bundle: loaded only when the cache is used,
 * so that a run with `cache: false` starts as fast as a shell step. The download (download.ts,
 * the client's own modules without its extraction) comes with it.
 */
const loadCacheClient = () => import('@actions/cache')
const loadDownload = () => import('./download.js')

/**
 * The directory's name is all @actions/cache sees of it: the entry's "version" is a hash of the
 * paths as given, so a name relative to a fixed parent keeps entries restorable on every runner
 * (an absolute path would differ between runners and between RUNNER_TEMPs). Its suffix changes
 * with the archive's layout, so that entries of an older layout are not even found.
 */
export const CACHE_DIR_NAME = 'nix-container-action-store-v3'

type Env = Record<string, string | undefined>

/**
 * The protocol @actions/cache speaks, decided as its config does: v2 (Twirp at
 * ACTIONS_RESULTS_URL, archives in Azure Blob storage) when ACTIONS_CACHE_SERVICE_V2 is set,
 * except on GitHub Enterprise Server, which has only v1 (the REST API at ACTIONS_CACHE_URL).
 */
export function cacheServiceVersion(env: Env): 'v1' | 'v2' {
  const host = new URL(env.GITHUB_SERVER_URL || 'https://github.com').hostname.toLowerCase()
  const ghes = host !== 'github.com' && !host.endsWith('.ghe.com') && !host.endsWith('.localhost')
  return env.ACTIONS_CACHE_SERVICE_V2 && !ghes ? 'v2' : 'v1'
}

/**
 * Why the client has no cache service, naming the variable it lacks; null when it has one.
 * `urlAvailable` is the client's own verdict (isFeatureAvailable), which checks only the URL;
 * without ACTIONS_RUNTIME_TOKEN every call would fail, so that counts as no service too.
 */
export function missingCacheService(env: Env, urlAvailable: boolean): string | null {
  if (!urlAvailable) {
    if (cacheServiceVersion(env) === 'v2') {
      return 'no cache service: ACTIONS_RESULTS_URL is not set (ACTIONS_CACHE_SERVICE_V2 is, so @actions/cache speaks the v2 protocol)'
    }
    const results = env.ACTIONS_RESULTS_URL
      ? ' (ACTIONS_RESULTS_URL is, but without ACTIONS_CACHE_SERVICE_V2 @actions/cache speaks v1)'
      : ''
    return `no cache service: ACTIONS_CACHE_URL is not set${results}`
  }
  if (!env.ACTIONS_RUNTIME_TOKEN) return 'no cache service: ACTIONS_RUNTIME_TOKEN is not set'
  return null
}

/**
 * The client's isFeatureAvailable, read from the same variables without loading the client
 * (pure; its unit test compares the two): the service URL of the protocol it speaks is set.
 */
export function serviceUrlAvailable(env: Env): boolean {
  return Boolean(
    cacheServiceVersion(env) === 'v2' ? env.ACTIONS_RESULTS_URL : env.ACTIONS_CACHE_URL
  )
}

/**
 * Why there is no cache service to use (see missingCacheService), or null. Decided from the
 * environment: a job without a cache service never loads the client (2.4 MB of code, about
 * 0.1 s of every step's CPU).
 */
export function cacheServiceMissing(): string | null {
  return missingCacheService(process.env, serviceUrlAvailable(process.env))
}

/**
 * @actions/cache archives paths relative to GITHUB_WORKSPACE and resolves them from the working
 * directory, so both point at the parent for the duration of the call. Nothing else runs in this
 * process meanwhile.
 */
async function inParent<T>(parent: string, work: () => Promise<T>): Promise<T> {
  await mkdir(parent, { recursive: true })
  const workspace = process.env.GITHUB_WORKSPACE
  const cwd = process.cwd()
  process.env.GITHUB_WORKSPACE = parent
  process.chdir(parent)
  try {
    return await work()
  } finally {
    process.chdir(cwd)
    if (workspace === undefined) delete process.env.GITHUB_WORKSPACE
    else process.env.GITHUB_WORKSPACE = workspace
  }
}

/** Start loading the cache client now, so that it is ready when the restore begins. */
export function preloadCacheClient(): void {
  if (cacheServiceMissing() !== null) return
  loadCacheClient().catch(() => undefined)
  loadDownload().catch(() => undefined)
}

/**
 * Download the archive of the entry of `primaryKey`, else of the newest one of each of
 * `restoreKeys` prefixes, to `archivePath`, without extracting it (an entry is untrusted input:
 * extract.ts extracts it): the key found, or null on a miss. A service or download error is a
 * warning (as @actions/cache words it) and a miss.
 */
export async function downloadFirst(
  primaryKey: string,
  restoreKeys: string[],
  archivePath: string
): Promise<string | null> {
  const { downloadArchive } = await loadDownload()
  return downloadArchive([CACHE_DIR_NAME], primaryKey, restoreKeys, archivePath)
}

/**
 * Save <parent>/CACHE_DIR_NAME under key. False when the service refused or failed:
 * @actions/cache has logged why (a warning, or a line for a reservation conflict).
 */
export async function saveDirectory(parent: string, key: string): Promise<boolean> {
  const cache = await loadCacheClient()
  const id = await inParent(parent, () => cache.saveCache([CACHE_DIR_NAME], key))
  return id !== -1
}
