// GitHub's REST API for a repository's Actions caches: list the entries of a key prefix on a ref,
// delete those of one key on one ref. @actions/cache can only restore and save, so the entries a
// newer save superseded would otherwise stay until GitHub evicts them, crowding the repository's
// cache quota. Endpoints and status codes (API version 2022-11-28):
// https://docs.github.com/en/rest/actions/cache
// Both document 200 only; the 404 of a delete that matched nothing is what GitHub answers (and
// what `gh cache delete` reads as "no such cache"), every other status is an error here.

export interface CachesApi {
  /** GITHUB_API_URL, without a trailing slash. */
  apiUrl: string
  /** owner/name */
  repository: string
  token: string
}

export interface CacheRecord {
  id: number
  key: string
  ref: string
  version: string
  createdAt: string
  lastAccessedAt: string
  sizeInBytes: number
}

/** How long one request may take before it is abandoned (milliseconds). */
export const REQUEST_TIMEOUT_MS = 30_000

/** The largest page the list endpoint serves. */
const PER_PAGE = 100

export class CachesApiError extends Error {
  /** The HTTP status, or 0 when no answer came (network error, timeout). */
  readonly status: number
  /** 403: the token may not do this (a job's token without `actions: write`, say). */
  readonly forbidden: boolean

  constructor(status: number, message: string) {
    super(message)
    this.name = 'CachesApiError'
    this.status = status
    this.forbidden = status === 403
  }
}

/**
 * The API to talk to from the runner's environment, and the token; or why not, naming what is
 * missing. The runner sets GITHUB_API_URL (GitHub Enterprise Server has its own) and
 * GITHUB_REPOSITORY; the token is the action's github-token input.
 */
export function cachesApiFrom(
  env: Record<string, string | undefined>,
  token: string | null
): CachesApi | { missing: string } {
  if (!token) return { missing: 'no github-token' }
  const repository = env.GITHUB_REPOSITORY
  if (!repository) return { missing: 'GITHUB_REPOSITORY is not set' }
  if (!/^[^/\s]+\/[^/\s]+$/.test(repository)) {
    return { missing: `GITHUB_REPOSITORY is not owner/name: ${repository}` }
  }
  const apiUrl = (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '')
  return { apiUrl, repository, token }
}

/**
 * Every committed entry whose key starts with `keyPrefix` on `ref`, page after page. Oldest
 * first: new entries then land on later pages, so a save while paging shifts nothing already
 * read (the default order, last access, changes with every restore).
 */
export async function listCaches(
  api: CachesApi,
  filter: { keyPrefix: string; ref: string },
  timeoutMs = REQUEST_TIMEOUT_MS
): Promise<CacheRecord[]> {
  const records = new Map<number, CacheRecord>()
  for (let page = 1; ; page++) {
    const query = {
      key: filter.keyPrefix,
      ref: filter.ref,
      sort: 'created_at',
      direction: 'asc',
      per_page: String(PER_PAGE),
      page: String(page)
    }
    const { body } = await call(api, 'GET', query, [200], timeoutMs)
    const list = cacheList(body, `GET ${cachesPath(api, query)}`)
    for (const record of list.records) records.set(record.id, record)
    // A short page is the last; total_count stops a server whose last page is exactly full.
    if (list.records.length < PER_PAGE || page * PER_PAGE >= list.totalCount) break
  }
  return [...records.values()]
}

/**
 * Delete the entries of `key` on `ref`: how many went (0 when none matched). The docs promise a
 * complete key, but github.com has been seen deleting the entries the key is a prefix of
 * (cli/cli#10624): a caller keeping `k-1` should not delete a key `k`. A 404 also answers a
 * repository the token cannot see; listCaches, which says so, comes first.
 */
export async function deleteCachesByKey(
  api: CachesApi,
  entry: { key: string; ref: string },
  timeoutMs = REQUEST_TIMEOUT_MS
): Promise<number> {
  const query = { key: entry.key, ref: entry.ref }
  const { status, body } = await call(api, 'DELETE', query, [200, 404], timeoutMs)
  if (status === 404) return 0
  return cacheList(body, `DELETE ${cachesPath(api, query)}`).records.length
}

/** The path (and query) of the repository's caches: what an error names, never the token. */
function cachesPath(api: CachesApi, query: Record<string, string>): string {
  const [owner = '', repo = ''] = api.repository.split('/')
  const path = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/actions/caches`
  return `${path}?${new URLSearchParams(query).toString()}`
}

/**
 * One request; its status (one of `expected`) and JSON body (null if none). Any other status,
 * no answer in time, or no answer at all throws a CachesApiError naming the method, the path
 * and GitHub's message.
 */
async function call(
  api: CachesApi,
  method: 'GET' | 'DELETE',
  query: Record<string, string>,
  expected: number[],
  timeoutMs: number
): Promise<{ status: number; body: unknown }> {
  const path = cachesPath(api, query)
  const what = `GitHub API ${method} ${path}`
  let response: Response
  let text: string
  try {
    response = await fetch(`${api.apiUrl}${path}`, {
      method,
      headers: {
        Accept: 'application/vnd.github+json',
        Authorization: `Bearer ${api.token}`,
        'X-GitHub-Api-Version': '2022-11-28',
        'User-Agent': 'nix-container-action'
      },
      signal: AbortSignal.timeout(timeoutMs)
    })
    text = await response.text()
  } catch (error) {
    throw apiError(api, 0, `${what}: no answer (${failure(error, timeoutMs)})`)
  }
  const body = parseJson(text)
  if (!expected.includes(response.status)) {
    const hint = response.status === 403 ? forbiddenHint(method) : ''
    const message = githubMessage(body) ?? (text.trim().slice(0, 200) || response.statusText)
    throw apiError(api, response.status, `${what}: ${response.status} ${message}${hint}`)
  }
  return { status: response.status, body }
}

/** The permission a job's token lacks when GitHub answers 403. */
function forbiddenHint(method: 'GET' | 'DELETE'): string {
  const permission = method === 'GET' ? 'actions: read' : 'actions: write'
  return ` (the token may not do this: a job's GITHUB_TOKEN needs \`permissions: ${permission}\`)`
}

/**
 * Why fetch threw: the timeout by name, else the cause undici hides behind "fetch failed".
 * Duck-typed: the abort's DOMException need not be an Error of this realm.
 */
function failure(error: unknown, timeoutMs: number): string {
  const { name, message, cause } = isObject(error) ? error : {}
  if (name === 'TimeoutError') return `no response within ${timeoutMs / 1000} s`
  if (isObject(cause) && typeof cause.message === 'string') return cause.message
  return typeof message === 'string' ? message : String(error)
}

/** The error, with the token cut out should anything (a proxy, an echo) have repeated it. */
function apiError(api: CachesApi, status: number, message: string): CachesApiError {
  return new CachesApiError(status, api.token ? message.split(api.token).join('***') : message)
}

function parseJson(text: string): unknown {
  try {
    return text ? (JSON.parse(text) as unknown) : null
  } catch {
    return null
  }
}

/** GitHub's error bodies are `{ message, documentation_url }`. */
function githubMessage(body: unknown): string | undefined {
  const message = isObject(body) ? body.message : undefined
  return typeof message === 'string' && message ? message : undefined
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

/** `{ total_count, actions_caches: [...] }`, checked: a body of another shape is an error. */
function cacheList(body: unknown, what: string): { totalCount: number; records: CacheRecord[] } {
  const caches = isObject(body) ? body.actions_caches : undefined
  const totalCount = isObject(body) ? body.total_count : undefined
  if (!Array.isArray(caches) || typeof totalCount !== 'number') {
    throw new CachesApiError(200, `GitHub API ${what}: not a list of caches`)
  }
  return { totalCount, records: caches.map(cache => cacheRecord(cache, what)) }
}

function cacheRecord(cache: unknown, what: string): CacheRecord {
  if (!isObject(cache) || typeof cache.id !== 'number' || typeof cache.key !== 'string') {
    throw new CachesApiError(200, `GitHub API ${what}: a cache without an id or a key`)
  }
  const text = (value: unknown) => (typeof value === 'string' ? value : '')
  return {
    id: cache.id,
    key: cache.key,
    ref: text(cache.ref),
    version: text(cache.version),
    createdAt: text(cache.created_at),
    lastAccessedAt: text(cache.last_accessed_at),
    sizeInBytes: typeof cache.size_in_bytes === 'number' ? cache.size_in_bytes : 0
  }
}
