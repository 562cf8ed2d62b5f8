// The GitHub cache service through @actions/cache, for one directory.
import { mkdir } from 'node:fs/promises'

/**
 * @actions/cache and its Azure SDK are most of the bundle: loaded only when the cache is used,
 * so that a run with `cache: false` starts as fast as a shell step.
 */
const loadCacheClient = () => import('@actions/cache')

/**
 * The directory's name is all @actions/cache sees of it: the entry's "version" is a hash of the
 * paths as given, so a name relative to a fixed parent keeps entries restorable on every runner
 * (an absolute path would differ between runners and between RUNNER_TEMPs).
 */
export const CACHE_DIR_NAME = 'nix-container-action-store'

export async function cacheServiceAvailable(): Promise<boolean> {
  return (await loadCacheClient()).isFeatureAvailable()
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

/**
 * Restore the entry into <parent>/CACHE_DIR_NAME; the key restored, or null on a miss.
 * @actions/cache turns service and download errors into a warning and a miss.
 */
export async function restoreDirectory(
  parent: string,
  primaryKey: string,
  restoreKeys: string[]
): Promise<string | null> {
  const cache = await loadCacheClient()
  const key = await inParent(parent, () =>
    cache.restoreCache([CACHE_DIR_NAME], primaryKey, restoreKeys)
  )
  return key ?? null
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
