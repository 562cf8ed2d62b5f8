#!/usr/bin/env node
// A small server for the v1 GitHub Actions cache REST API (what @actions/cache speaks when
// ACTIONS_CACHE_URL is set and ACTIONS_CACHE_SERVICE_V2 is not), on 127.0.0.1, so that the
// real client code (tar, zstd, chunked upload, download) runs in tests and benchmarks:
//   GET   _apis/artifactcache/cache?keys=k1,k2&version=v   look up (exact, then prefix; newest)
//   POST  _apis/artifactcache/caches                       reserve {key, version, cacheSize}
//   PATCH _apis/artifactcache/caches/{id}                  upload a chunk (Content-Range)
//   POST  _apis/artifactcache/caches/{id}                  commit {size}
//   GET   download/{id}                                    the archive (archiveLocation)
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

/** @param {import('./cache-server.d.mts').CacheServerOptions} [options] */
export async function startCacheServer(options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nca-cache-server-'))
  /** @type {Map<number, import('./cache-server.d.mts').CacheEntry>} */
  const entries = new Map()
  const requests = []
  let failWith = options.failWith ?? null
  let nextId = 1
  let baseUrl = ''

  const reply = (res, status, body) => {
    const text = body === undefined ? '' : JSON.stringify(body)
    res.writeHead(status, text ? { 'Content-Type': 'application/json' } : {})
    res.end(text)
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
    const idMatch = /^\/_apis\/artifactcache\/caches\/(\d+)$/.exec(url.pathname)
    const entry = idMatch ? entries.get(Number(idMatch[1])) : undefined

    if (req.method === 'GET' && url.pathname === `${API}cache`) {
      const keys = (url.searchParams.get('keys') ?? '').split(',').filter(Boolean)
      const found = findEntry([...entries.values()], keys, url.searchParams.get('version') ?? '')
      if (!found) return reply(res, 204)
      return reply(res, 200, {
        scope: 'refs/heads/main',
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
      if ([...entries.values()].some(e => e.key === key && e.version === version)) {
        return reply(res, 409, {
          message: `Cache already exists. Scope: refs/heads/main, Key: ${key}, Version: ${version}`
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
        created: ''
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

  const server = http.createServer((req, res) => {
    handle(req, res).catch(error => {
      if (!res.headersSent) reply(res, 500, { message: String(error) })
      else res.destroy()
    })
  })
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port ?? 0, '127.0.0.1', resolve)
  })
  const address = server.address()
  const port = typeof address === 'object' && address ? address.port : 0
  baseUrl = `http://127.0.0.1:${port}/`

  return {
    url: baseUrl,
    port,
    requests,
    entries: () => [...entries.values()].filter(e => e.committed).map(e => ({ ...e })),
    failEveryRequest: status => {
      failWith = status === false ? null : (status ?? 503)
    },
    env: token => cacheEnv({ url: baseUrl }, token),
    replaceArchive: (key, data) => {
      const entry = [...entries.values()].find(e => e.committed && e.key === key)
      if (!entry) throw new Error(`cache-server: no entry with key ${key}`)
      fs.writeFileSync(entry.file, data)
      entry.size = data.length
    },
    close: async () => {
      server.closeAllConnections()
      await new Promise(resolve => server.close(() => resolve(undefined)))
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

/** Environment for a step that should use this server (as the runner gives it). */
export function cacheEnv(server, token = 'nca-test-token') {
  return {
    ACTIONS_CACHE_URL: server.url,
    ACTIONS_RUNTIME_TOKEN: token,
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
