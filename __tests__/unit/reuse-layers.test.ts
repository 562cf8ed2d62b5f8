import { describe, expect, jest, test } from '@jest/globals'
import { diffIdsOf, layoutManifest } from '../../src/image/layers.js'
import type { ArchiveLayer } from '../../src/image/layers.js'
import { manifestLayers, planLayers, remoteLayersOf } from '../../src/registry/layers.js'
import { credentialsIn, parseChallenge, tokenUrl } from '../../src/registry/http.js'
import { mountBlob, mountScopes } from '../../src/registry/mount.js'
import { describeTransfer } from '../../src/stages/push.js'
import { resolveReuseFrom } from '../../src/registry/refs.js'
import { reuseCandidates, uploadedBytes } from '../../src/registry/reuse.js'

const d = (c: string): string => `sha256:${c.repeat(64)}`
const GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
const OCI_GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip'
const layer = (c: string): ArchiveLayer => ({ diffId: d(c), offset: 512, size: 1024 })

describe('reading what the registry holds', () => {
  test('diff_ids come from the config', () => {
    expect(diffIdsOf(JSON.stringify({ rootfs: { diff_ids: [d('1'), d('2')] } }))).toEqual([
      d('1'),
      d('2')
    ])
    expect(() => diffIdsOf('{}')).toThrow('no rootfs.diff_ids')
  })

  test('an image manifest lists its layers; an index has none', () => {
    const raw = JSON.stringify({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      layers: [{ mediaType: OCI_GZIP, digest: d('a'), size: 7 }]
    })
    expect(manifestLayers(raw)).toEqual([{ mediaType: OCI_GZIP, digest: d('a'), size: 7 }])
    expect(
      manifestLayers('{"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}')
    ).toBeNull()
  })

  test('gzip layers of either format are offered by diff_id; zstd ones are not', () => {
    const layers = [
      { mediaType: GZIP, digest: d('a'), size: 1 },
      { mediaType: OCI_GZIP, digest: d('b'), size: 2 },
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+zstd', digest: d('c'), size: 3 }
    ]
    const found = remoteLayersOf('r.io/o/app:v1', layers, [d('1'), d('2'), d('3')])
    expect([...found.keys()]).toEqual([d('1'), d('2')])
    expect(found.get(d('2'))).toEqual({ repository: 'r.io/o/app', descriptor: layers[1] })
    // Manifest and config that disagree say nothing.
    expect(remoteLayersOf('r.io/o/app:v1', layers, [d('1')]).size).toBe(0)
  })
})

describe('planLayers', () => {
  const remote = (repository: string, diffId: string, blob: string) =>
    new Map([[diffId, { repository, descriptor: { mediaType: GZIP, digest: blob, size: 9 } }]])

  test('the target repository wins; other repositories next; else the layer is new', () => {
    const planned = planLayers(
      [layer('1'), layer('2'), layer('3')],
      [
        remote('r.io/other', d('1'), d('x')),
        remote('r.io/app', d('1'), d('y')),
        remote('r.io/other', d('2'), d('z'))
      ],
      'r.io/app'
    )
    expect(planned.map(p => (p.kind === 'reused' ? p.remote.descriptor.digest : 'new'))).toEqual([
      d('y'),
      d('z'),
      'new'
    ])
  })

  test('the layout manifest names reused blobs as gzip and new layers as plain tars', () => {
    const config = Buffer.from('{}')
    const manifest = JSON.parse(
      layoutManifest({ config, configDigest: d('c') }, [
        { kind: 'reused', descriptor: { mediaType: OCI_GZIP, digest: d('a'), size: 5 } },
        { kind: 'new', layer: layer('2') }
      ])
    ) as Record<string, unknown>
    expect(manifest).toEqual({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: {
        mediaType: 'application/vnd.docker.container.image.v1+json',
        size: 2,
        digest: d('c')
      },
      layers: [
        { mediaType: GZIP, digest: d('a'), size: 5 },
        { mediaType: 'application/vnd.docker.image.rootfs.diff.tar', digest: d('2'), size: 1024 }
      ]
    })
  })
})

describe('reuse-from', () => {
  test.each<[string[], string | null, string[]]>([
    [['main'], null, ['r.io/o/app:main']],
    [['r.io/o/base:v1', 'main', 'main'], null, ['r.io/o/base:v1', 'r.io/o/app:main']],
    [['o/base:v1'], 'r.io', ['r.io/o/base:v1']],
    [[`o/base@${d('e')}`], 'r.io', [`r.io/o/base@${d('e')}`]]
  ])('%j with registry %s -> %j', (entries, registry, refs) => {
    expect(resolveReuseFrom(entries, 'r.io/o/app:v1', registry)).toEqual(refs)
  })

  test('candidates: the ref, the other refs, reuse-from; other registries left out', () => {
    expect(
      reuseCandidates('r.io/o/app:v1', ['r.io/o/app:latest'], ['r.io/o/base:v1', 'q.io/o/x:1'])
    ).toEqual({
      candidates: ['r.io/o/app:v1', 'r.io/o/app:latest', 'r.io/o/base:v1'],
      elsewhere: ['q.io/o/x:1']
    })
  })

  test('uploaded bytes: the new layers of the pushed manifest, each blob once', () => {
    const pushed = JSON.stringify({
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      layers: [
        { mediaType: GZIP, digest: d('a'), size: 100 },
        { mediaType: GZIP, digest: d('b'), size: 7 },
        { mediaType: GZIP, digest: d('b'), size: 7 }
      ]
    })
    expect(uploadedBytes(pushed, [1, 2])).toBe(7)
    expect(describeTransfer({ reusedLayers: 1, uploadedBytes: 1_234_567 })).toBe(
      '1 layer reused, 1.2 MB uploaded'
    )
  })
})

describe('cross-repository mount', () => {
  test('challenges and token URLs', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/a:pull"'
      )
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://ghcr.io/token', service: 'ghcr.io', scope: 'repository:o/a:pull' }
    })
    expect(parseChallenge('Basic realm="x"')?.scheme).toBe('basic')
    const url = new URL(
      tokenUrl(
        { realm: 'https://ghcr.io/token', service: 'ghcr.io' },
        mountScopes({ registry: 'ghcr.io', repository: 'o/app', from: 'o/base', digest: d('a') })
      )
    )
    expect(url.searchParams.getAll('scope')).toEqual([
      'repository:o/app:pull,push',
      'repository:o/base:pull'
    ])
  })

  test('credentials from a Docker config, by host', () => {
    const auth = Buffer.from('me:pa:ss').toString('base64')
    const config = JSON.stringify({ auths: { 'https://ghcr.io/v1/': { auth } } })
    expect(credentialsIn(config, 'ghcr.io')).toEqual({ username: 'me', password: 'pa:ss' })
    expect(credentialsIn(config, 'quay.io')).toBeNull()
  })

  const request = { registry: 'r.example', repository: 'o/app', from: 'o/base', digest: d('a') }
  const reply = (status: number, headers: Record<string, string> = {}, body = ''): Response =>
    new Response([201, 202, 204].includes(status) ? null : body, { status, headers })

  test('token authentication: 401, a token with push and pull scopes, then 201', async () => {
    const fetchMock = jest.fn<typeof fetch>()
    fetchMock
      .mockResolvedValueOnce(
        reply(401, { 'www-authenticate': 'Bearer realm="https://auth.example/token",service="r"' })
      )
      .mockResolvedValueOnce(new Response(JSON.stringify({ token: 't0k' }), { status: 200 }))
      .mockResolvedValueOnce(reply(201))
    const result = await mountBlob(request, { username: 'u', password: 'p' }, fetchMock)
    expect(result).toEqual({ mounted: true })
    const [tokenCall, mountCall] = [fetchMock.mock.calls[1], fetchMock.mock.calls[2]]
    expect(tokenCall?.[0]).toContain('scope=repository%3Ao%2Fapp%3Apull%2Cpush')
    expect(mountCall?.[0]).toBe(
      `https://r.example/v2/o/app/blobs/uploads/?mount=${encodeURIComponent(d('a'))}&from=o%2Fbase`
    )
    expect((mountCall?.[1]?.headers as Record<string, string>).Authorization).toBe('Bearer t0k')
  })

  test('202 (an upload opened instead) is not mounted, and the upload is cancelled', async () => {
    const fetchMock = jest.fn<typeof fetch>()
    fetchMock
      .mockResolvedValueOnce(reply(202, { location: '/v2/o/app/blobs/uploads/u1' }))
      .mockResolvedValueOnce(reply(204))
    expect(await mountBlob(request, null, fetchMock)).toMatchObject({ mounted: false })
    expect(fetchMock.mock.calls[1]?.[1]?.method).toBe('DELETE')
  })

  test('no credentials for a Basic challenge: not mounted; a 503 throws to be retried', async () => {
    const fetchMock = jest.fn<typeof fetch>()
    fetchMock.mockResolvedValueOnce(reply(401, { 'www-authenticate': 'Basic realm="r"' }))
    expect(await mountBlob(request, null, fetchMock)).toMatchObject({ mounted: false })
    fetchMock.mockResolvedValueOnce(reply(503))
    await expect(mountBlob(request, null, fetchMock)).rejects.toThrow('HTTP 503')
  })
})
