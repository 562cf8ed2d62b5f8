#!/usr/bin/env node
// A small server for the v1 GitHub Actions cache REST API (what @actions/cache speaks when
// ACTIONS_CACHE_URL is set and ACTIONS_CACHE_SERVICE_V2 is not), on 127.0.0.1, so that the
// real client code (tar, zstd, chunked upload, download) runs in tests and benchmarks:
//   GET   _apis/artifactcache/cache?keys=k1,k2&version=v   look up (exact, then prefix; newest)
//   POST  _apis/artifactcache/caches                       reserve {key, version, cacheSize}
//   PATCH _apis/artifactcache/caches/{id}                  upload a chunk (Content-Range)
//   POST  _apis/artifactcache/caches/{id}                  commit {size}
//   GET   download/{id}                                    the archive (archiveLocation)
// and, over the same entries, the two routes of GitHub's REST API for a repository's caches
// (https://docs.github.com/en/rest/actions/cache), with the token of `apiTokens` (the job's
// github-token; the cache API's runtime token is another):
//   GET    repos/{owner}/{repo}/actions/caches?key=&ref=&per_page=&page=&sort=&direction=
//          200 {total_count, actions_caches: [...]}: committed entries, key a prefix
//   DELETE repos/{owner}/{repo}/actions/caches?key=&ref=
//          200 {total_count, actions_caches}: the entries of exactly that key (and ref) are
//          gone; 404 when none matched; 422 without a key
//   401 for a missing or unknown token; 403 on DELETE for a token without actions: write;
//   404 for another repository than `repository`.
// Each entry belongs to the ref that was current when it was reserved (`ref`, then setRef()).
// Archives are files under a temp directory. Library: startCacheServer() (types in
// cache-server.d.mts). CLI: `node scripts/cache-server.mjs [port]` prints ACTIONS_CACHE_URL.
import { Buffer } from 'node:buffer'
import fs from 'node:fs'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { URL } from 'node:url'
import { isMain } from './is-main.mjs'

const API = '/_apis/artifactcache/'
const REPO_CACHES = /^\/repos\/([^/]+)\/([^/]+)\/actions\/caches$/
const DOCS = 'https://docs.github.com/rest/actions/cache'
const DEFAULT_API_TOKENS = { 'nca-test-github-token': { actionsWrite: true } }
/** The REST API's sort orders (`sort`), each an entry's field. */
const SORTS = { created_at: 'created', last_accessed_at: 'lastAccessed', size_in_bytes: 'size' }

/** A request's whole body. */
export function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = []
    req.on('data', chunk => chunks.push(chunk))
    req.on('end', () => resolve(Buffer.concat(chunks)))
    req.on('error', reject)
  })
}

/**
 * The look-up both protocols share: each key in order, an exact match first, then the newest
 * entry the key is a prefix of; only committed entries of the same version (paths +
 * compression) count.
 * @template {{id: number, key: string, version: string, committed: boolean}} E
 * @param {E[]} entries
 * @param {string[]} keys
 * @param {string} version
 * @returns {E | null}
 */
export function findEntry(entries, keys, version) {
  const committed = entries
    .filter(e => e.committed && e.version === version)
    .sort((a, b) => b.id - a.id)
  for (const key of keys) {
    const found = committed.find(e => e.key === key) ?? committed.find(e => e.key.startsWith(key))
    if (found) return found
  }
  return null
}

/** An entry as the REST API shows it (`actions_caches[]`). */
function restCache(entry) {
  return {
    id: entry.id,
    ref: entry.ref,
    key: entry.key,
    version: entry.version,
    last_accessed_at: entry.lastAccessed,
    created_at: entry.created,
    size_in_bytes: entry.size ?? 0
  }
}

/**
 * The entries GET repos/{owner}/{repo}/actions/caches lists, sorted and paged as GitHub's docs
 * say (per_page 30 by default, at most 100); an error message for a query they reject.
 * @param {import('./cache-server.d.mts').CacheEntry[]} entries committed entries
 * @param {URLSearchParams} query
 */
function listPage(entries, query) {
  const sort = query.get('sort') ?? 'last_accessed_at'
  const direction = query.get('direction') ?? 'desc'
  const field = Object.hasOwn(SORTS, sort) ? SORTS[sort] : undefined
  if (!field || (direction !== 'asc' && direction !== 'desc')) {
    return { error: `sort ${sort} or direction ${direction} is not one GitHub accepts` }
  }
  const perPage = Math.min(100, Math.max(1, Number(query.get('per_page') ?? 30) || 30))
  const page = Math.max(1, Number(query.get('page') ?? 1) || 1)
  const key = query.get('key') ?? ''
  const ref = query.get('ref')
  const sign = direction === 'asc' ? 1 : -1
  const selected = entries
    .filter(e => e.key.startsWith(key) && (!ref || e.ref === ref))
    .sort((a, b) => sign * (a[field] < b[field] ? -1 : a[field] > b[field] ? 1 : a.id - b.id))
  return {
    total_count: selected.length,
    actions_caches: selected.slice((page - 1) * perPage, page * perPage).map(restCache)
  }
}

/** @param {import('./cache-server.d.mts').CacheServerOptions} [options] */
export async function startCacheServer(options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nca-cache-server-'))
  /** @type {Map<number, import('./cache-server.d.mts').CacheEntry>} */
  const entries = new Map()
  const requests = []
  let failWith = options.failWith ?? null
  let nextId = 1
  let baseUrl = ''
  let currentRef = options.ref ?? 'refs/heads/main'
  const repository = options.repository ?? 'nca-test/app'
  const apiTokens = options.apiTokens ?? DEFAULT_API_TOKENS

  const reply = (res, status, body) => {
    const text = body === undefined ? '' : JSON.stringify(body)
    res.writeHead(status, text ? { 'Content-Type': 'application/json' } : {})
    res.end(text)
  }

  const notFound = { message: 'Not Found', documentation_url: DOCS }

  /** The REST API's routes: authorization, then the repository, then the operation. */
  const restApi = (method, repo, req, query, res) => {
    const auth = /^(?:Bearer|token) (.+)$/i.exec(req.headers.authorization ?? '')
    const grant = auth && Object.hasOwn(apiTokens, auth[1]) ? apiTokens[auth[1]] : undefined
    if (!grant) return reply(res, 401, { message: 'Bad credentials', documentation_url: DOCS })
    if (repo.toLowerCase() !== repository.toLowerCase()) return reply(res, 404, notFound)
    const committed = [...entries.values()].filter(e => e.committed)
    if (method === 'GET') {
      const page = listPage(committed, query)
      if ('error' in page) {
        return reply(res, 422, { message: page.error, documentation_url: DOCS })
      }
      return reply(res, 200, page)
    }
    // What GitHub answers a job's token whose permissions lack actions: write.
    if (!grant.actionsWrite) {
      return reply(res, 403, {
        message: 'Resource not accessible by integration',
        documentation_url: DOCS
      })
    }
    const key = query.get('key')
    const ref = query.get('ref')
    if (!key) {
      return reply(res, 422, {
        message: 'Missing required query parameter key',
        documentation_url: DOCS
      })
    }
    const deleted = committed.filter(e => e.key === key && (!ref || e.ref === ref))
    if (deleted.length === 0) return reply(res, 404, notFound)
    for (const entry of deleted) {
      entries.delete(entry.id)
      fs.rmSync(entry.file, { force: true })
    }
    return reply(res, 200, { total_count: deleted.length, actions_caches: deleted.map(restCache) })
  }

  const handle = async (req, res) => {
    const url = new URL(req.url ?? '/', baseUrl)
    requests.push({ method: req.method ?? '', path: url.pathname + url.search })
    if (failWith !== null) {
      await readBody(req)
      return reply(res, failWith, { message: 'the test cache service fails every request' })
    }
    // The API wants the runtime token; archiveLocation is a pre-signed URL, fetched without it.
    const isApi = url.pathname.startsWith(API)
    if (isApi && options.token && req.headers.authorization !== `Bearer ${options.token}`) {
      return reply(res, 401, { message: 'bad or missing runtime token' })
    }
    const repoCaches = REPO_CACHES.exec(url.pathname)
    if (repoCaches && (req.method === 'GET' || req.method === 'DELETE')) {
      await readBody(req)
      return restApi(req.method, `${repoCaches[1]}/${repoCaches[2]}`, req, url.searchParams, res)
    }
    const idMatch = /^\/_apis\/artifactcache\/caches\/(\d+)$/.exec(url.pathname)
    const entry = idMatch ? entries.get(Number(idMatch[1])) : undefined

    if (req.method === 'GET' && url.pathname === `${API}cache`) {
      const keys = (url.searchParams.get('keys') ?? '').split(',').filter(Boolean)
      const found = findEntry([...entries.values()], keys, url.searchParams.get('version') ?? '')
      if (!found) return reply(res, 204)
      found.lastAccessed = new Date().toISOString()
      return reply(res, 200, {
        scope: found.ref,
        cacheKey: found.key,
        cacheVersion: found.version,
        creationTime: found.created,
        archiveLocation: `${baseUrl}download/${found.id}`
      })
    }
    if (req.method === 'GET' && url.pathname === `${API}caches`) {
      return reply(res, 200, { totalCount: 0, artifactCaches: [] })
    }
    if (req.method === 'POST' && url.pathname === `${API}caches`) {
      const { key, version, cacheSize } = JSON.parse((await readBody(req)).toString())
      // Entries are unique per ref, as GitHub's are: another branch may save the same key.
      const taken = e => e.key === key && e.version === version && e.ref === currentRef
      if ([...entries.values()].some(taken)) {
        return reply(res, 409, {
          message: `Cache already exists. Scope: ${currentRef}, Key: ${key}, Version: ${version}`
        })
      }
      const id = nextId++
      const file = path.join(dir, `${id}.archive`)
      fs.writeFileSync(file, '')
      entries.set(id, {
        id,
        key,
        version,
        size: cacheSize ?? null,
        file,
        committed: false,
        created: '',
        ref: currentRef,
        lastAccessed: ''
      })
      return reply(res, 201, { cacheId: id })
    }
    if (req.method === 'PATCH' && entry && !entry.committed) {
      const range = /^bytes (\d+)-(\d+)\/\*$/.exec(req.headers['content-range'] ?? '')
      const body = await readBody(req)
      if (!range || Number(range[2]) - Number(range[1]) + 1 !== body.length) {
        return reply(res, 400, { message: `bad Content-Range ${req.headers['content-range']}` })
      }
      const handle = await fs.promises.open(entry.file, 'r+')
      try {
        await handle.write(body, 0, body.length, Number(range[1]))
      } finally {
        await handle.close()
      }
      return reply(res, 204)
    }
    if (req.method === 'POST' && entry && !entry.committed) {
      const { size } = JSON.parse((await readBody(req)).toString())
      const actual = fs.statSync(entry.file).size
      if (size !== actual)
        return reply(res, 400, { message: `committed size ${size}, uploaded ${actual}` })
      entry.committed = true
      entry.size = actual
      entry.created = new Date().toISOString()
      entry.lastAccessed = entry.created
      return reply(res, 204)
    }
    const download = /^\/download\/(\d+)$/.exec(url.pathname)
    const archive = download ? entries.get(Number(download[1])) : undefined
    if (req.method === 'GET' && archive?.committed) {
      res.writeHead(200, {
        'Content-Type': 'application/octet-stream',
        'Content-Length': fs.statSync(archive.file).size
      })
      fs.createReadStream(archive.file).pipe(res)
      return
    }
    await readBody(req)
    reply(res, 404, { message: `no route for ${req.method} ${url.pathname}` })
  }

  const httpServer = http.createServer((req, res) => {
    handle(req, res).catch(error => {
      if (!res.headersSent) reply(res, 500, { message: String(error) })
      else res.destroy()
    })
  })
  await new Promise((resolve, reject) => {
    httpServer.once('error', reject)
    httpServer.listen(options.port ?? 0, '127.0.0.1', resolve)
  })
  const address = httpServer.address()
  const port = typeof address === 'object' && address ? address.port : 0
  baseUrl = `http://127.0.0.1:${port}/`

  /** @type {import('./cache-server.d.mts').CacheServer} */
  const server = {
    url: baseUrl,
    apiUrl: baseUrl.replace(/\/$/, ''),
    repository,
    get ref() {
      return currentRef
    },
    setRef: ref => {
      currentRef = ref
    },
    port,
    requests,
    entries: () => [...entries.values()].filter(e => e.committed).map(e => ({ ...e })),
    failEveryRequest: status => {
      failWith = status === false ? null : (status ?? 503)
    },
    env: token => cacheEnv(server, token),
    replaceArchive: (key, data) => {
      const entry = [...entries.values()].find(e => e.committed && e.key === key)
      if (!entry) throw new Error(`cache-server: no entry with key ${key}`)
      fs.writeFileSync(entry.file, data)
      entry.size = data.length
    },
    close: async () => {
      httpServer.closeAllConnections()
      await new Promise(resolve => httpServer.close(() => resolve(undefined)))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
  return server
}

/**
 * Environment for a step that should use this server (as the runner gives it): the cache
 * service, and the REST API, repository and ref (the current one: after setRef, ask again).
 */
export function cacheEnv(server, token = 'nca-test-token') {
  return {
    ACTIONS_CACHE_URL: server.url,
    ACTIONS_RUNTIME_TOKEN: token,
    GITHUB_API_URL: server.apiUrl,
    GITHUB_REPOSITORY: server.repository,
    GITHUB_REF: server.ref,
    // Unset, should the environment have them (a GitHub runner's does): v2 would win.
    ACTIONS_CACHE_SERVICE_V2: '',
    ACTIONS_RESULTS_URL: ''
  }
}

if (isMain(import.meta.url)) {
  const port = process.argv[2] ? Number(process.argv[2]) : 0
  startCacheServer({ port }).then(
    server => {
      process.stdout.write(`ACTIONS_CACHE_URL=${server.url}\n`)
      const stop = () => void server.close().then(() => process.exit(0))
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    },
    error => {
      process.stderr.write(
        `cache-server: ${error instanceof Error ? error.message : String(error)}\n`
      )
      process.exit(1)
    }
  )
}
