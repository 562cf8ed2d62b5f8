// Types for cache-server.mjs: a v1 GitHub Actions cache API server on 127.0.0.1.

export interface CacheServerOptions {
  /** Port on 127.0.0.1; default: any free one. */
  port?: number
  /** Answer every request with this HTTP status (an outage); default: serve normally. */
  failWith?: number
  /** Require `Authorization: Bearer <token>` (ACTIONS_RUNTIME_TOKEN); default: accept any. */
  token?: string
}

export interface CacheEntry {
  id: number
  key: string
  version: string
  /** Bytes of the committed archive. */
  size: number | null
  /** Where the archive is kept. */
  file: string
  committed: boolean
  created: string
}

export interface CacheServer {
  /** ACTIONS_CACHE_URL: `http://127.0.0.1:<port>/`. */
  url: string
  port: number
  /** Every request seen, in order. */
  requests: { method: string; path: string }[]
  /** Committed entries, oldest first. */
  entries(): CacheEntry[]
  /** From now on answer every request with `status` (default 503); `false` to serve again. */
  failEveryRequest(status?: number | false): void
  /** Replace the archive of the committed entry with this key (to test corrupt archives). */
  replaceArchive(key: string, data: Buffer): void
  /** Stop listening and delete the stored archives. */
  close(): Promise<void>
}

export function startCacheServer(options?: CacheServerOptions): Promise<CacheServer>

/** ACTIONS_CACHE_URL and ACTIONS_RUNTIME_TOKEN for a step that should use the server. */
export function cacheEnv(server: CacheServer, token?: string): Record<string, string>
