// The manifest query over the registry's API: what it answers itself, and what it leaves to
// skopeo (undefined) because it cannot tell for sure.
import { afterAll, describe, expect, jest, test } from '@jest/globals'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  fetchRawManifest as fetchRawManifestWith,
  getOverFetch,
  httpGet,
  proxyConfigured,
  saysMissing,
  transientNetworkFailure
} from '../../src/registry/http.js'
import { sha256Digest } from '../../src/image/plain-archive.js'

const dir = mkdtempSync(join(tmpdir(), 'nca-registry-http-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** A Docker config file with this content, as the action's own login writes one. */
function authFile(config: object): string {
  const file = join(dir, `config-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(file, JSON.stringify(config))
  return file
}
const noLogins = (): string => authFile({ auths: {} })

const MANIFEST = JSON.stringify({
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { digest: `sha256:${'c'.repeat(64)}` }
})
const reply = (status: number, body = '', headers: Record<string, string> = {}): Response =>
  new Response(body, { status, headers })
const missing = (code: string): string => JSON.stringify({ errors: [{ code, message: 'x' }] })
/** The query, with its GETs made by a fetch mock. */
const fetchRawManifest = (
  ref: string,
  authFile: string,
  timeoutMs: number,
  fetchImpl: typeof fetch
): Promise<string | null | undefined> =>
  fetchRawManifestWith(ref, authFile, timeoutMs, getOverFetch(fetchImpl))
const mockFetch = (...replies: (Response | Error | DOMException)[]): jest.Mock<typeof fetch> => {
  const fetchMock = jest.fn<typeof fetch>()
  for (const answer of replies) {
    if (answer instanceof Response) fetchMock.mockResolvedValueOnce(answer)
    else fetchMock.mockRejectedValueOnce(answer)
  }
  return fetchMock
}

describe('fetchRawManifest', () => {
  test('200: the bytes, from http:// on loopback, asking for every manifest type', async () => {
    const fetchMock = mockFetch(reply(200, MANIFEST))
    expect(await fetchRawManifest('127.0.0.1:5000/o/app:v1', noLogins(), 1000, fetchMock)).toBe(
      MANIFEST
    )
    const [url, init] = fetchMock.mock.calls[0] ?? []
    expect(url).toBe('http://127.0.0.1:5000/v2/o/app/manifests/v1')
    const accept = (init?.headers as Record<string, string>).Accept
    expect(accept).toContain('application/vnd.oci.image.index.v1+json')
    expect(accept).toContain('application/vnd.docker.distribution.manifest.list.v2+json')
  })

  test('https elsewhere; a pinned ref is asked by digest and must match it', async () => {
    const digest = sha256Digest(MANIFEST)
    const ref = `ghcr.io/o/app@${digest}`
    const fetchMock = mockFetch(reply(200, MANIFEST))
    expect(await fetchRawManifest(ref, noLogins(), 1000, fetchMock)).toBe(MANIFEST)
    expect(fetchMock.mock.calls[0]?.[0]).toBe(`https://ghcr.io/v2/o/app/manifests/${digest}`)
    const other = `ghcr.io/o/app@sha256:${'0'.repeat(64)}`
    expect(
      await fetchRawManifest(other, noLogins(), 1000, mockFetch(reply(200, MANIFEST)))
    ).toBeUndefined()
  })

  test('404 with MANIFEST_UNKNOWN or NAME_UNKNOWN is "none"; another 404 is not sure', async () => {
    for (const code of ['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']) {
      const fetchMock = mockFetch(reply(404, missing(code)))
      expect(await fetchRawManifest('r.example/o/app:v1', noLogins(), 1000, fetchMock)).toBeNull()
    }
    const fetchMock = mockFetch(reply(404, '404 page not found'))
    expect(
      await fetchRawManifest('r.example/o/app:v1', noLogins(), 1000, fetchMock)
    ).toBeUndefined()
    expect(saysMissing(missing('BLOB_UNKNOWN'))).toBe(false)
  })

  test('a token challenge is answered with the logins of the config file, pull scope', async () => {
    const auth = Buffer.from('me:secret').toString('base64')
    const file = authFile({ auths: { 'r.example': { auth } } })
    const fetchMock = mockFetch(
      reply(401, '', { 'www-authenticate': 'Bearer realm="https://auth.example/t",service="r"' }),
      reply(200, JSON.stringify({ token: 'tok' })),
      reply(200, MANIFEST)
    )
    expect(await fetchRawManifest('r.example/o/app:v1', file, 1000, fetchMock)).toBe(MANIFEST)
    const [tokenCall, retried] = [fetchMock.mock.calls[1], fetchMock.mock.calls[2]]
    expect(tokenCall?.[0]).toContain('scope=repository%3Ao%2Fapp%3Apull')
    expect((tokenCall?.[1]?.headers as Record<string, string>).Authorization).toBe(`Basic ${auth}`)
    expect((retried?.[1]?.headers as Record<string, string>).Authorization).toBe('Bearer tok')
  })

  test('5xx, 429 and refused connections throw for the retries: one request an attempt', async () => {
    const ask = (fetchMock: typeof fetch): Promise<string | null | undefined> =>
      fetchRawManifest('r.example/o/app:v1', noLogins(), 1000, fetchMock)
    await expect(ask(mockFetch(reply(503)))).rejects.toThrow('query r.example/o/app:v1: HTTP 503')
    await expect(ask(mockFetch(reply(429)))).rejects.toThrow('HTTP 429')
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })
    })
    await expect(ask(mockFetch(refused))).rejects.toThrow('connection refused')
    const timedOut = new DOMException('The operation was aborted due to timeout', 'TimeoutError')
    await expect(ask(mockFetch(timedOut))).rejects.toThrow('timed out')
  })

  test('left to skopeo: a challenge it cannot answer, TLS, other statuses', async () => {
    const ask = (fetchMock: typeof fetch): Promise<string | null | undefined> =>
      fetchRawManifest('r.example/o/app:v1', noLogins(), 1000, fetchMock)
    expect(await ask(mockFetch(reply(401, '', { 'www-authenticate': 'Basic realm="r"' })))).toBe(
      undefined
    )
    const tls = new TypeError('fetch failed', {
      cause: Object.assign(new Error('self-signed certificate'), {
        code: 'DEPTH_ZERO_SELF_SIGNED_CERT'
      })
    })
    expect(await ask(mockFetch(tls))).toBeUndefined()
    expect(
      await ask(mockFetch(reply(400, 'Client sent an HTTP request to an HTTPS server.')))
    ).toBe(undefined)
    expect(await ask(mockFetch(reply(403, missing('DENIED'))))).toBeUndefined()
  })

  test('left to skopeo without a request: credential helpers, Docker Hub, no registry, a proxy', async () => {
    const fetchMock = mockFetch()
    const helpers = authFile({ auths: {}, credHelpers: { 'r.example': 'ecr-login' } })
    const store = authFile({ credsStore: 'desktop' })
    const identity = authFile({ auths: { 'r.example': { identitytoken: 'refresh-token' } } })
    expect(await fetchRawManifest('r.example/o/app:v1', identity, 1000, fetchMock)).toBe(undefined)
    expect(await fetchRawManifest('r.example/o/app:v1', helpers, 1000, fetchMock)).toBeUndefined()
    expect(await fetchRawManifest('r.example/o/app:v1', store, 1000, fetchMock)).toBeUndefined()
    expect(await fetchRawManifest('docker.io/o/app:v1', noLogins(), 1000, fetchMock)).toBe(
      undefined
    )
    expect(await fetchRawManifest('o/app:v1', noLogins(), 1000, fetchMock)).toBeUndefined()
    // Behind a proxy: skopeo goes through it; a GET of its own would not.
    const saved = process.env.https_proxy
    process.env.https_proxy = 'http://proxy.example:3128'
    try {
      expect(await fetchRawManifest('r.example/o/app:v1', noLogins(), 1000, fetchMock)).toBe(
        undefined
      )
    } finally {
      if (saved === undefined) delete process.env.https_proxy
      else process.env.https_proxy = saved
    }
    expect(fetchMock).not.toHaveBeenCalled()
    expect(proxyConfigured({ HTTP_PROXY: 'http://p:1' })).toBe(true)
    expect(proxyConfigured({ all_proxy: 'socks5://p:1' })).toBe(true)
    expect(proxyConfigured({ HTTPS_PROXY: '' })).toBe(false)
  })
})

describe('httpGet', () => {
  test('a whole answer from a server on loopback; a refused connection and a timeout', async () => {
    const { createServer } = await import('node:http')
    const server = createServer((request, response) => {
      if (request.url === '/slow') return // never answers
      if (request.url === '/huge') return void response.end(Buffer.alloc(5 * 1024 * 1024))
      response.writeHead(404, { 'Docker-Distribution-API-Version': 'registry/2.0' })
      response.end(missing('MANIFEST_UNKNOWN'))
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    const { port } = server.address() as { port: number }
    try {
      const answer = await httpGet(`http://127.0.0.1:${port}/v2/o/app/manifests/v1`, {}, 2000)
      expect(answer.status).toBe(404)
      expect(answer.header('docker-distribution-api-version')).toBe('registry/2.0')
      expect(saysMissing(answer.body.toString())).toBe(true)
      // Over the 4 MiB registries allow a manifest: not an answer to read (nor to retry).
      const huge = httpGet(`http://127.0.0.1:${port}/huge`, {}, 2000)
      await expect(huge).rejects.toThrow('an answer over 4 MiB')
      await expect(huge.catch(transientNetworkFailure)).resolves.toBeNull()
      const slow = httpGet(`http://127.0.0.1:${port}/slow`, {}, 200)
      await expect(slow.catch(transientNetworkFailure)).resolves.toBe('timed out')
    } finally {
      server.closeAllConnections()
      await new Promise(resolve => server.close(resolve))
    }
    const refused = httpGet(`http://127.0.0.1:${port}/`, {}, 2000)
    await expect(refused.catch(transientNetworkFailure)).resolves.toBe('connection refused')
  })
})
