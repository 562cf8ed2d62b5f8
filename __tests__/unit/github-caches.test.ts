// The REST API client for a repository's caches against the test server on 127.0.0.1
// (scripts/cache-server.mjs), whose entries are made through its v1 cache API as @actions/cache
// makes them: listing pages through a prefix on one ref, deleting one ref's entry of a key, and
// the errors GitHub answers (a read-only token, an unknown one), none of which may show the token.
import { afterAll, beforeAll, beforeEach, describe, expect, test } from '@jest/globals'
import fs from 'node:fs'
import http from 'node:http'
import { cacheEnv, startCacheServer } from '../../scripts/cache-server.mjs'
import type { CacheServer } from '../../scripts/cache-server.mjs'
import {
  CachesApiError,
  cachesApiFrom,
  deleteCachesByKey,
  listCaches
} from '../../src/cache/github-caches.js'
import type { CachesApi } from '../../src/cache/github-caches.js'

const WRITE_TOKEN = 'ghs_writeTOKENnca0123456789'
const READ_TOKEN = 'ghs_readTOKENnca0123456789'
const MAIN = 'refs/heads/main'
const DEV = 'refs/heads/dev'

let server: CacheServer
let saved = 0

beforeAll(async () => {
  server = await startCacheServer({
    apiTokens: { [WRITE_TOKEN]: { actionsWrite: true }, [READ_TOKEN]: { actionsWrite: false } }
  })
})

afterAll(async () => {
  await server.close()
})

beforeEach(() => {
  server.setRef(MAIN)
  server.requests.length = 0
})

function api(token = WRITE_TOKEN): CachesApi {
  const found = cachesApiFrom(cacheEnv(server), token)
  if ('missing' in found) throw new Error(found.missing)
  return found
}

/** Save an entry through the v1 cache API (reserve, upload, commit) on the server's ref. */
async function save(key: string): Promise<void> {
  const data = Buffer.from(`archive ${++saved}`)
  const reserve = await fetch(`${server.url}_apis/artifactcache/caches`, {
    method: 'POST',
    body: JSON.stringify({ key, version: 'v1', cacheSize: data.length })
  })
  expect(reserve.status).toBe(201)
  const { cacheId } = (await reserve.json()) as { cacheId: number }
  const upload = await fetch(`${server.url}_apis/artifactcache/caches/${cacheId}`, {
    method: 'PATCH',
    headers: { 'Content-Range': `bytes 0-${data.length - 1}/*` },
    body: data
  })
  expect(upload.status).toBe(204)
  const commit = await fetch(`${server.url}_apis/artifactcache/caches/${cacheId}`, {
    method: 'POST',
    body: JSON.stringify({ size: data.length })
  })
  expect(commit.status).toBe(204)
}

/** The key the v1 look-up restores for `key` (what the action's restore would get), or null. */
async function lookUp(key: string): Promise<string | null> {
  const url = `${server.url}_apis/artifactcache/cache?keys=${key}&version=v1`
  const response = await fetch(url)
  if (response.status === 204) return null
  return ((await response.json()) as { cacheKey: string }).cacheKey
}

/** The REST API requests the server saw, method and path. */
function restRequests(): string[] {
  return server.requests.filter(r => r.path.startsWith('/repos/')).map(r => `${r.method} ${r.path}`)
}

/** The error a promise rejects with, checked to be a CachesApiError. */
async function apiError(promise: Promise<unknown>): Promise<CachesApiError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e
  )
  if (!(error instanceof CachesApiError)) throw new Error(`not a CachesApiError: ${String(error)}`)
  return error
}

test('listCaches pages through every entry of a key prefix on the ref, and only those', async () => {
  const keys = Array.from({ length: 101 }, (_, i) => `nca-page-${String(i).padStart(3, '0')}`)
  for (const key of keys) await save(key)
  await save('nca-other-000')
  server.setRef(DEV)
  await save('nca-page-000')
  await save('nca-page-dev')

  const records = await listCaches(api(), { keyPrefix: 'nca-page-', ref: MAIN })

  expect(records.map(r => r.key)).toEqual(keys)
  expect(new Set(records.map(r => r.ref))).toEqual(new Set([MAIN]))
  const first = server.entries().find(e => e.key === 'nca-page-000' && e.ref === MAIN)
  expect(records[0]).toEqual({
    id: first?.id,
    key: 'nca-page-000',
    ref: MAIN,
    version: 'v1',
    createdAt: first?.created,
    lastAccessedAt: first?.created,
    sizeInBytes: first?.size
  })
  const query = 'key=nca-page-&ref=refs%2Fheads%2Fmain&sort=created_at&direction=asc&per_page=100'
  expect(restRequests()).toEqual([
    `GET /repos/nca-test/app/actions/caches?${query}&page=1`,
    `GET /repos/nca-test/app/actions/caches?${query}&page=2`
  ])

  const dev = await listCaches(api(), { keyPrefix: 'nca-page-', ref: DEV })
  expect(dev.map(r => [r.key, r.ref])).toEqual([
    ['nca-page-000', DEV],
    ['nca-page-dev', DEV]
  ])
})

test('a restore is the last access the list reports', async () => {
  await save('nca-access')
  const [before] = await listCaches(api(), { keyPrefix: 'nca-access', ref: MAIN })
  await new Promise(resolve => setTimeout(resolve, 5))
  expect(await lookUp('nca-access')).toBe('nca-access')
  const [after] = await listCaches(api(), { keyPrefix: 'nca-access', ref: MAIN })
  expect(before?.lastAccessedAt).toBe(before?.createdAt)
  expect(after?.createdAt).toBe(before?.createdAt)
  expect(Date.parse(after?.lastAccessedAt ?? '')).toBeGreaterThan(
    Date.parse(before?.lastAccessedAt ?? '')
  )
})

describe('deleteCachesByKey', () => {
  test("removes that ref's entry of the key, and not the same key on another ref", async () => {
    await save('nca-del-a')
    await save('nca-del-ab')
    server.setRef(DEV)
    await save('nca-del-a')
    const gone = server.entries().find(e => e.key === 'nca-del-a' && e.ref === MAIN)
    expect(gone && fs.existsSync(gone.file)).toBe(true)

    expect(await deleteCachesByKey(api(), { key: 'nca-del-a', ref: MAIN })).toBe(1)

    const left = server.entries().filter(e => e.key.startsWith('nca-del-'))
    expect(left.map(e => [e.key, e.ref])).toEqual([
      ['nca-del-ab', MAIN],
      ['nca-del-a', DEV]
    ])
    expect(fs.existsSync(gone?.file ?? '')).toBe(false)
    expect(await listCaches(api(), { keyPrefix: 'nca-del-a', ref: MAIN })).toEqual([
      expect.objectContaining({ key: 'nca-del-ab' })
    ])
    expect(restRequests()[0]).toBe(
      'DELETE /repos/nca-test/app/actions/caches?key=nca-del-a&ref=refs%2Fheads%2Fmain'
    )
  })

  test('of a key with no entry on the ref: 0, nothing else deleted', async () => {
    await save('nca-missing-on-main')
    const before = server.entries().length
    expect(await deleteCachesByKey(api(), { key: 'nca-missing', ref: MAIN })).toBe(0)
    expect(await deleteCachesByKey(api(), { key: 'nca-missing-on-main', ref: DEV })).toBe(0)
    expect(server.entries().length).toBe(before)
  })

  test('the deleted entry is no longer restored', async () => {
    await save('nca-restore')
    expect(await lookUp('nca-restore')).toBe('nca-restore')
    expect(await deleteCachesByKey(api(), { key: 'nca-restore', ref: MAIN })).toBe(1)
    expect(await lookUp('nca-restore')).toBeNull()
  })
})

describe('errors', () => {
  test('a read-only token lists, but deleting is forbidden (403), the entry stays', async () => {
    await save('nca-readonly')
    const records = await listCaches(api(READ_TOKEN), { keyPrefix: 'nca-readonly', ref: MAIN })
    expect(records.map(r => r.key)).toEqual(['nca-readonly'])

    const error = await apiError(
      deleteCachesByKey(api(READ_TOKEN), { key: 'nca-readonly', ref: MAIN })
    )

    expect({ status: error.status, forbidden: error.forbidden }).toEqual({
      status: 403,
      forbidden: true
    })
    expect(error.message).toBe(
      'GitHub API DELETE /repos/nca-test/app/actions/caches?key=nca-readonly&ref=refs%2Fheads%2Fmain: ' +
        '403 Resource not accessible by integration ' +
        "(the token may not do this: a job's GITHUB_TOKEN needs `permissions: actions: write`)"
    )
    expect(error.message).not.toContain(READ_TOKEN)
    expect(server.entries().map(e => e.key)).toContain('nca-readonly')
  })

  test('an unknown token: 401 Bad credentials, not forbidden, token not shown', async () => {
    const unknown = 'ghs_unknownTOKENnca0123456789'
    for (const call of [
      () => listCaches(api(unknown), { keyPrefix: 'nca-', ref: MAIN }),
      () => deleteCachesByKey(api(unknown), { key: 'nca-x', ref: MAIN })
    ]) {
      const error = await apiError(call())
      expect([error.status, error.forbidden]).toEqual([401, false])
      expect(error.message).toMatch(
        /^GitHub API (GET|DELETE) \/repos\/nca-test\/app\/actions\/caches\?key=nca-.*: 401 Bad credentials$/
      )
      expect(error.message).not.toContain(unknown)
    }
  })

  test('another repository: 404 on the list', async () => {
    const other = { ...api(), repository: 'someone/else' }
    const error = await apiError(listCaches(other, { keyPrefix: 'nca-', ref: MAIN }))
    expect([error.status, error.forbidden]).toEqual([404, false])
    expect(error.message).toContain('GET /repos/someone/else/actions/caches?key=nca-&')
    expect(error.message).toContain(': 404 Not Found')
  })

  test('a message that repeats the token (a proxy echoing the request) shows it cut out', async () => {
    const echo = http.createServer((req, res) => {
      res.writeHead(502, { 'Content-Type': 'application/json' })
      res.end(JSON.stringify({ message: `upstream refused ${req.headers.authorization}` }))
    })
    await new Promise<void>(resolve => echo.listen(0, '127.0.0.1', resolve))
    const address = echo.address()
    const port = typeof address === 'object' && address ? address.port : 0
    try {
      const proxied = { apiUrl: `http://127.0.0.1:${port}`, repository: 'o/r', token: WRITE_TOKEN }
      const error = await apiError(deleteCachesByKey(proxied, { key: 'k', ref: MAIN }))
      expect(error.status).toBe(502)
      expect(error.message).toBe(
        'GitHub API DELETE /repos/o/r/actions/caches?key=k&ref=refs%2Fheads%2Fmain: ' +
          '502 upstream refused Bearer ***'
      )
    } finally {
      echo.closeAllConnections()
      await new Promise(resolve => echo.close(resolve))
    }
  })

  test('a server that never answers: status 0 after the timeout', async () => {
    const silent = http.createServer(() => undefined)
    await new Promise<void>(resolve => silent.listen(0, '127.0.0.1', resolve))
    const address = silent.address()
    const port = typeof address === 'object' && address ? address.port : 0
    try {
      const stuck = { apiUrl: `http://127.0.0.1:${port}`, repository: 'o/r', token: WRITE_TOKEN }
      const error = await apiError(listCaches(stuck, { keyPrefix: 'k', ref: MAIN }, 200))
      expect(error.status).toBe(0)
      expect(error.message).toMatch(
        /^GitHub API GET \/repos\/o\/r\/actions\/caches\?.*: no answer \(no response within 0\.2 s\)$/
      )
      expect(error.message).not.toContain(WRITE_TOKEN)
    } finally {
      silent.closeAllConnections()
      await new Promise(resolve => silent.close(resolve))
    }
  })
})

describe('cachesApiFrom', () => {
  const env = { GITHUB_REPOSITORY: 'owner/name' }

  test.each<[string, Record<string, string | undefined>, string | null, object]>([
    [
      'the default API',
      env,
      'tok',
      { apiUrl: 'https://api.github.com', repository: 'owner/name', token: 'tok' }
    ],
    [
      "the runner's API, trailing slash dropped",
      { ...env, GITHUB_API_URL: 'https://ghe.example/api/v3/' },
      'tok',
      { apiUrl: 'https://ghe.example/api/v3', repository: 'owner/name', token: 'tok' }
    ],
    ['no token', env, null, { missing: 'no github-token' }],
    ['an empty token', env, '', { missing: 'no github-token' }],
    ['no repository', {}, 'tok', { missing: 'GITHUB_REPOSITORY is not set' }],
    [
      'a repository without an owner',
      { GITHUB_REPOSITORY: 'name' },
      'tok',
      { missing: 'GITHUB_REPOSITORY is not owner/name: name' }
    ]
  ])('%s', (_, environment, token, expected) => {
    expect(cachesApiFrom(environment, token)).toEqual(expected)
  })

  test("the test server's environment names it", () => {
    expect(cachesApiFrom(cacheEnv(server), 'tok')).toEqual({
      apiUrl: server.url.replace(/\/$/, ''),
      repository: 'nca-test/app',
      token: 'tok'
    })
  })
})
