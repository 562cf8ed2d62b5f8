// The store cache through the bundled action against the cache service as GitHub-hosted runners
// speak it (v2: Twirp, with archives in Azurite behind signed URLs that the client reaches
// through the Azure SDK): the same commits as v1, a service that fails every call, and an
// archive over 128 MiB. Its own file, so that its waits run beside the v1 file's.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { startCacheServerV2 } from '../../scripts/cache-server-v2.mjs'
import type { CacheServerV2 } from '../../scripts/cache-server-v2.mjs'
import { store } from './action.js'
import {
  action,
  baseOf,
  closure,
  describeProtocol,
  expectGreen,
  makeBenchFixture,
  TOKEN
} from './store-cache-kit.js'

describeProtocol('v2')

describe('cache service v2 only', () => {
  let v2: CacheServerV2
  beforeAll(async () => {
    v2 = await startCacheServerV2({ token: TOKEN })
  })
  afterAll(async () => {
    await v2.close()
  })

  test('an archive over 128 MiB goes up in blocks and comes back whole through the Azure SDK', async () => {
    // Three 50 MiB blobs of random data, made by the build: no compression brings the
    // archive under the client's 128 MiB single-request limit.
    const fixture = await makeBenchFixture(3)
    const run1 = await action(fixture, v2)
    expectGreen(run1)
    const key = baseOf(run1.outputs['cache-key'])
    const entry = v2.entries().find(e => e.key === key)
    if (!entry) throw new Error(`no cache entry ${key}`)
    expect(entry.size).toBeGreaterThan(128 * 1024 * 1024)
    // Staged blocks (Put Block, then Put Block List), not one Put Blob.
    const blocks = await v2.blockList(entry.blob)
    expect(blocks.length).toBeGreaterThan(1)
    expect(blocks.reduce((a, b) => a + b, 0)).toBe(entry.size)
    expect(v2.blobRequests.filter(r => r.comp === 'blocklist')).toHaveLength(1)

    const paths = closure(run1)
    const sent = v2.blobRequests.length
    const run2 = await action(fixture, v2)
    expectGreen(run2)
    expect(run2.outputs['cache-hit']).toBe('true')
    expect(store.invalid(run2.machine, paths)).toEqual([])
    expect(run2.main.stdout).not.toMatch(/building '/)
    // The download took GitHub's path: the Azure SDK (ranged GETs), never plain HTTP.
    const download = v2.blobRequests.slice(sent)
    expect(download.filter(r => r.method === 'GET').length).toBeGreaterThan(1)
    expect(download.filter(r => !r.userAgent.startsWith('azsdk-js-'))).toEqual([])
    // Run 1's look-up (a miss) and upload; run 2's one look-up of the base it downloads.
    expect(v2.requests.map(r => r.path.split('/').pop())).toEqual([
      'GetCacheEntryDownloadURL',
      'CreateCacheEntry',
      'FinalizeCacheEntryUpload',
      'GetCacheEntryDownloadURL'
    ])
  })
})
