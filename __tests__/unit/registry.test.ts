import { describe, expect, test } from '@jest/globals'
import { createHash } from 'node:crypto'
import {
  authArgs,
  isLoopbackHost,
  isMissingManifest,
  parseRemoteManifest,
  parseRetryAfter,
  quickOperationSeconds,
  tlsArgs
} from '../../src/registry/commands.js'
import { planLogins } from '../../src/stages/login.js'
import { commonDigest, partialPushMessage } from '../../src/registry/outcome.js'
import type { RefOutcome } from '../../src/registry/outcome.js'
import { isUpToDate } from '../../src/stages/push.js'

const d = (c: string) => `sha256:${c.repeat(64)}`

describe('quickOperationSeconds: 30 s unless a test asks for less', () => {
  test.each<[string | undefined, number]>([
    [undefined, 30],
    ['3', 3],
    ['0.5', 0.5],
    ['0', 30],
    ['-1', 30],
    ['soon', 30],
    ['300', 30]
  ])('NIX_CONTAINER_ACTION_QUICK_TIMEOUT=%j gives %d', (value, seconds) => {
    const env = value === undefined ? {} : { NIX_CONTAINER_ACTION_QUICK_TIMEOUT: value }
    expect(quickOperationSeconds(env)).toBe(seconds)
  })
})

describe('isMissingManifest: "not there" is read from what skopeo says, not from digits', () => {
  test.each<[string, boolean]>([
    ['reading manifest latest in 127.0.0.1:5000/app: manifest unknown: manifest unknown', true],
    ['reading manifest v1 in ghcr.io/o/app: name unknown: repository name not known', true],
    ['reading manifest v1 in quay.io/o/app: StatusCode: 404, "<html>404 Not Found</html>"', true],
    // A 503 from a registry on a port with 404 in it (this made a retry test flaky).
    [
      'pinging container registry 127.0.0.1:34045: invalid status code from registry 503 (Service Unavailable)',
      false
    ],
    ['reading manifest build-404 in 127.0.0.1:5000/app: connection reset by peer', false]
  ])('%j -> %s', (stderr, missing) => {
    expect(isMissingManifest(stderr)).toBe(missing)
  })
})

describe('loopback registries get plain HTTP, as docker gives 127.0.0.0/8', () => {
  test.each<[string, boolean]>([
    ['127.0.0.1:5000', true],
    ['127.1.2.3', true],
    ['localhost:5000', true],
    ['LOCALHOST', true],
    ['[::1]:5000', true],
    ['ghcr.io', false],
    ['128.0.0.1:5000', false],
    ['localhost.example.com', false]
  ])('%s -> %s', (host, loopback) => {
    expect(isLoopbackHost(host)).toBe(loopback)
  })

  test('tls flags', () => {
    expect(tlsArgs('dest', '127.0.0.1:5000/a:1')).toEqual(['--dest-tls-verify=false'])
    expect(tlsArgs(null, 'localhost:5000/a:1')).toEqual(['--tls-verify=false'])
    expect(tlsArgs('src', 'ghcr.io/o/a:1')).toEqual([])
    expect(authArgs('--authfile', null)).toEqual([])
    expect(authArgs('--dest-authfile', '/t/c.json')).toEqual(['--dest-authfile', '/t/c.json'])
  })
})

describe('parseRemoteManifest', () => {
  test('digest is the sha256 of the bytes; config digest from the manifest', () => {
    const raw = JSON.stringify({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { digest: d('c') }
    })
    expect(parseRemoteManifest(raw)).toEqual({
      digest: `sha256:${createHash('sha256').update(raw).digest('hex')}`,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      configDigest: d('c')
    })
  })

  test('an index has no config digest', () => {
    expect(parseRemoteManifest('{"manifests":[]}').configDigest).toBeNull()
  })
})

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z')
  test.each<[string | null, number | null]>([
    ['3', 3],
    [' 120 ', 120],
    ['Thu, 01 Jan 2026 00:00:10 GMT', 10],
    ['Wed, 31 Dec 2025 23:59:00 GMT', 0],
    ['soon', null],
    ['', null],
    [null, null]
  ])('%j -> %j', (value, seconds) => {
    expect(parseRetryAfter(value, now)).toBe(seconds)
  })
})

describe('planLogins', () => {
  const credentials = { username: 'me', password: 'pw' }
  const refs = ['ghcr.io/o/a:1', 'ghcr.io/o/a:2', '127.0.0.1:5000/a:1']
  const none = { credentials: null, githubToken: null, githubActor: null, registry: null }

  test('credentials: the registry input when given', () => {
    expect(
      planLogins({ ...none, refs, credentials, registry: 'ghcr.io' }, []).map(p => p.registry)
    ).toEqual(['ghcr.io'])
  })

  test('credentials: otherwise each distinct registry of the refs', () => {
    expect(planLogins({ ...none, refs, credentials }, []).map(p => p.registry)).toEqual([
      'ghcr.io',
      '127.0.0.1:5000'
    ])
  })

  test('ghcr.io without credentials: the github token as the actor', () => {
    const plan = planLogins({ ...none, refs, githubToken: 'tok', githubActor: 'octocat' }, [])
    expect(plan).toEqual([
      {
        registry: 'ghcr.io',
        credentials: { username: 'octocat', password: 'tok' },
        as: 'octocat with github-token'
      }
    ])
  })

  test('ghcr.io already logged in earlier in the job: used as it is', () => {
    expect(
      planLogins({ ...none, refs, githubToken: 'tok', githubActor: 'octocat' }, ['ghcr.io'])
    ).toEqual([])
  })

  test('no credentials and no ghcr.io: nothing to log in to', () => {
    expect(
      planLogins(
        { ...none, refs: ['127.0.0.1:5000/a:1'], githubToken: 'tok', githubActor: 'o' },
        []
      )
    ).toEqual([])
  })
})

describe('push decisions', () => {
  const first: RefOutcome = { ref: 'r/a:1', digest: d('a'), action: 'pushed' }
  test.each<[string, Parameters<typeof isUpToDate>, boolean]>([
    ['nothing there', [null, d('c'), null], false],
    [
      'same config, first ref',
      [{ digest: d('a'), mediaType: null, configDigest: d('c') }, d('c'), null],
      true
    ],
    [
      'same config and digest as the first ref',
      [{ digest: d('a'), mediaType: null, configDigest: d('c') }, d('c'), first],
      true
    ],
    [
      'same config, other digest than the first ref',
      [{ digest: d('b'), mediaType: null, configDigest: d('c') }, d('c'), first],
      false
    ],
    [
      'another image',
      [{ digest: d('a'), mediaType: null, configDigest: d('e') }, d('c'), null],
      false
    ]
  ])('isUpToDate: %s', (_name, args, expected) => {
    expect(isUpToDate(...args)).toBe(expected)
  })

  test('commonDigest: one digest, or an error naming each ref', () => {
    expect(commonDigest([first, { ...first, ref: 'r/a:2' }])).toBe(d('a'))
    expect(() => commonDigest([first, { ref: 'r/a:2', digest: d('b'), action: 'pushed' }])).toThrow(
      `the refs ended up at different manifest digests: r/a:1 -> ${d('a')}, r/a:2 -> ${d('b')}`
    )
  })

  test('partialPushMessage says which refs made it', () => {
    expect(
      partialPushMessage(new Error('push r/a:3 failed'), [first], ['r/a:1', 'r/a:2', 'r/a:3'])
    ).toBe('push r/a:3 failed\nPushed: r/a:1. Not pushed: r/a:2, r/a:3')
    expect(partialPushMessage(new Error('boom'), [], ['r/a:1'])).toBe('boom')
  })
})
