// Types for cache-server-v2.mjs: the v2 GitHub Actions cache service (Twirp + Azurite) on 127.0.0.1.

export interface CacheServerV2Options {
  /** Answer every Twirp call with this HTTP status (an outage); default: serve normally. */
  failWith?: number
  /** Require `Authorization: Bearer <token>` (ACTIONS_RUNTIME_TOKEN); default: accept any. */
  token?: string
}

export interface CacheEntryV2 {
  id: number
  key: string
  version: string
  /** The blob's name in Azurite's container. */
  blob: string
  /** Bytes of the finalized archive. */
  size: number | null
  committed: boolean
}

/** A request through the blob proxy: what the client sent to the Blob service. */
export interface BlobRequest {
  method: string
  host: string
  path: string
  /** The `comp` query parameter (`block`, `blocklist`, ...), null for a plain blob request. */
  comp: string | null
  userAgent: string
}

export interface CacheServerV2 {
  /** ACTIONS_RESULTS_URL: `http://127.0.0.1:<port>/`. */
  url: string
  /** HTTP_PROXY for the step: forwards `devstoreaccount1.blob.core.windows.net` to Azurite. */
  proxyUrl: string
  /** Every Twirp call seen, in order. */
  requests: { method: string; path: string }[]
  /** Every request through the blob proxy, in order. */
  blobRequests: BlobRequest[]
  /** Finalized entries, oldest first. */
  entries(): CacheEntryV2[]
  /** The archive of the committed entry with this key, as stored. */
  readArchive(key: string): Promise<Buffer>
  /** Replace the archive of the committed entry with this key (to test tampered archives). */
  replaceArchive(key: string, data: Buffer): Promise<void>
  /** Sizes of the committed blocks of a blob (empty: uploaded in one request). */
  blockList(blob: string): Promise<number[]>
  /** The step's environment: ACTIONS_CACHE_SERVICE_V2, ACTIONS_RESULTS_URL,
   * ACTIONS_RUNTIME_TOKEN, HTTP_PROXY, NO_PROXY (and ACTIONS_CACHE_URL emptied). */
  env(token?: string): Record<string, string>
  /** Stop the servers and Azurite, delete the stored blobs. */
  close(): Promise<void>
}

export function startCacheServerV2(options?: CacheServerV2Options): Promise<CacheServerV2>
