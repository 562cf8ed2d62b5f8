// Downloading a store cache entry without extracting it. A cache entry is untrusted input: its
// bytes are whatever its writer uploaded, and anyone who can write the repository's cache (a
// workflow on the default branch that runs untrusted input, for one) can upload under this
// action's keys. @actions/cache's restoreCache() extracts with `tar -xf <archive> -P -C
// <workspace>`, and `-P` writes absolute member names and `..` wherever they point; it has no
// download-only mode. So the restore does what restoreCache() does up to the extraction, with
// the client's own modules, and extracts the archive itself (extract.ts).
//
// Why the client's internal modules: they are the client's own look-up (v1's REST call, v2's
// Twirp call), version hash and download (ranged segments, the Azure SDK for Azure hosts,
// timeouts and retries), the code every other restore of @actions/cache runs, so what is
// looked up and downloaded stays exactly what restoreCache() would. The alternatives are worse:
// re-implementing both protocols and the Azure download would drift from the client that saves
// the entries, and intercepting its `tar` (a shim on PATH) is more fragile still. The price is
// a dependency on files the package does not export: they are reached by path, bundled into
// dist/ (so nothing changes under a released action), and typed by the package's own .d.ts
// files, so an update of @actions/cache that moves or changes them fails the typecheck, and
// the e2e tests download through both protocols. Pinned in package-lock.json.
import * as core from '../core.js'
import {
  downloadCache,
  getCacheEntry
} from '../../node_modules/@actions/cache/lib/internal/cacheHttpClient.js'
import {
  getCacheVersion,
  getCompressionMethod
} from '../../node_modules/@actions/cache/lib/internal/cacheUtils.js'
import {
  getCacheMode,
  getCacheServiceVersion,
  isCacheReadable
} from '../../node_modules/@actions/cache/lib/internal/config.js'
import { internalCacheTwirpClient } from '../../node_modules/@actions/cache/lib/internal/shared/cacheTwirpClient.js'
import { errorMessage } from '../errors.js'

/** Where an entry can be downloaded from, and the key that matched. */
interface Found {
  key: string
  url: string
}

/** v1: the REST API at ACTIONS_CACHE_URL (GitHub Enterprise Server, the test server). */
async function lookUpV1(keys: string[], paths: string[]): Promise<Found | null> {
  const compressionMethod = await getCompressionMethod()
  const entry = await getCacheEntry(keys, paths, { compressionMethod, enableCrossOsArchive: false })
  if (!entry?.archiveLocation || !entry.cacheKey) return null
  return { key: entry.cacheKey, url: entry.archiveLocation }
}

/** v2: Twirp at ACTIONS_RESULTS_URL, which hands out a signed URL of Azure Blob storage. */
async function lookUpV2(keys: string[], paths: string[]): Promise<Found | null> {
  const compressionMethod = await getCompressionMethod()
  const [key = '', ...restoreKeys] = keys
  const response = await internalCacheTwirpClient().GetCacheEntryDownloadURL({
    key,
    restoreKeys,
    version: getCacheVersion(paths, compressionMethod, false)
  })
  if (!response.ok || !response.matchedKey) return null
  core.setSecret(response.signedDownloadUrl)
  return { key: response.matchedKey, url: response.signedDownloadUrl }
}

/**
 * Look up the entry of `primaryKey`, else the newest of each restore key prefix, for `paths`
 * (the entry's version is a hash of them, as the save made it), and download its archive to
 * `archivePath` as restoreCache() would: the key found, or null on a miss. As restoreCache(), a
 * service or download error is a warning and a miss.
 */
export async function downloadArchive(
  paths: string[],
  primaryKey: string,
  restoreKeys: string[],
  archivePath: string
): Promise<string | null> {
  const mode = getCacheMode()
  if (!isCacheReadable(mode)) {
    core.info(`Cache restore skipped: the effective cache-mode '${mode}' does not permit reads.`)
    return null
  }
  try {
    const v2 = getCacheServiceVersion() === 'v2'
    const keys = [primaryKey, ...restoreKeys]
    const found = v2 ? await lookUpV2(keys, paths) : await lookUpV1(keys, paths)
    if (found === null) return null
    core.info(`Cache hit for${found.key === primaryKey ? '' : ' restore-key'}: ${found.key}`)
    // v2's restoreCache() downloads through the Azure SDK (from Azure hosts); v1's with the
    // client's defaults.
    await downloadCache(found.url, archivePath, v2 ? { useAzureSdk: true } : undefined)
    return found.key
  } catch (error) {
    core.warning(`Failed to restore: ${errorMessage(error)}`)
    return null
  }
}
