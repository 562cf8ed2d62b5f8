// Types for cache-server.mjs: a v1 GitHub Actions cache API server on 127.0.0.1.
import type { IncomingMessage } from 'node:http'

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
  /** The step's environment for this server: ACTIONS_CACHE_URL, ACTIONS_RUNTIME_TOKEN, no v2. */
  env(token?: string): Record<string, string>
  /** Replace the archive of the committed entry with this key (to test corrupt archives). */
  replaceArchive(key: string, data: Buffer): void
  /** Stop listening and delete the stored archives. */
  close(): Promise<void>
}

export function startCacheServer(options?: CacheServerOptions): Promise<CacheServer>

/** ACTIONS_CACHE_URL and ACTIONS_RUNTIME_TOKEN for a step that should use the server (and the
 * v2 variables emptied). */
export function cacheEnv(server: CacheServer, token?: string): Record<string, string>

/** Each key in order: an exact match, then the newest entry the key prefixes; same version only. */
export function findEntry<
  E extends { id: number; key: string; version: string; committed: boolean }
>(entries: E[], keys: string[], version: string): E | null

export function readBody(req: IncomingMessage): Promise<Buffer>
