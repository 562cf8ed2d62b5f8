// Types for cache-server.mjs: a v1 GitHub Actions cache API server on 127.0.0.1, with the REST
// API's routes for a repository's caches (list, delete by key) over the same entries.
import type { IncomingMessage } from 'node:http'

export interface CacheServerOptions {
  /** Port on 127.0.0.1; default: any free one. */
  port?: number
  /** Answer every request with this HTTP status (an outage); default: serve normally. */
  failWith?: number
  /** Require `Authorization: Bearer <token>` (ACTIONS_RUNTIME_TOKEN); default: accept any. */
  token?: string
  /** The ref new entries belong to (GITHUB_REF); default `refs/heads/main`. See setRef. */
  ref?: string
  /** owner/name, the one repository the REST API serves; default `nca-test/app`. */
  repository?: string
  /**
   * The tokens the REST API accepts (the job's github-token) and whether each may delete
   * (actions: write); default `{ 'nca-test-github-token': { actionsWrite: true } }`.
   */
  apiTokens?: Record<string, { actionsWrite: boolean }>
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
  /** When it was committed (ISO 8601); '' before. */
  created: string
  /** The server's ref when the entry was reserved. */
  ref: string
  /** When the look-up last returned it, or else when it was committed (ISO 8601). */
  lastAccessed: string
}

export interface CacheServer {
  /** ACTIONS_CACHE_URL: `http://127.0.0.1:<port>/`. */
  url: string
  /** GITHUB_API_URL: the same server, without the trailing slash. */
  apiUrl: string
  /** GITHUB_REPOSITORY: owner/name. */
  repository: string
  /** GITHUB_REF: the ref entries reserved from now on belong to. */
  readonly ref: string
  /** Entries reserved from now on belong to `ref` (a job on another branch). */
  setRef(ref: string): void
  port: number
  /** Every request seen, in order. */
  requests: { method: string; path: string }[]
  /** Committed entries, oldest first. */
  entries(): CacheEntry[]
  /** From now on answer every request with `status` (default 503); `false` to serve again. */
  failEveryRequest(status?: number | false): void
  /** The step's environment for this server: see cacheEnv. */
  env(token?: string): Record<string, string>
  /** Replace the archive of the committed entry with this key (to test corrupt archives). */
  replaceArchive(key: string, data: Buffer): void
  /** Stop listening and delete the stored archives. */
  close(): Promise<void>
}

export function startCacheServer(options?: CacheServerOptions): Promise<CacheServer>

/** ACTIONS_CACHE_URL and ACTIONS_RUNTIME_TOKEN for a step that should use the server (and the
 * v2 variables emptied); GITHUB_API_URL, GITHUB_REPOSITORY and GITHUB_REF (the current ref). */
export function cacheEnv(server: CacheServer, token?: string): Record<string, string>

/** Each key in order: an exact match, then the newest entry the key prefixes; same version only. */
export function findEntry<
  E extends { id: number; key: string; version: string; committed: boolean }
>(entries: E[], keys: string[], version: string): E | null

export function readBody(req: IncomingMessage): Promise<Buffer>
