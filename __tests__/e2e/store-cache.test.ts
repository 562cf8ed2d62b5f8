// The store cache through the bundled action (dist/), as the runner runs it, against the real
// @actions/cache client and both protocols of the cache service on 127.0.0.1: v1, the REST API
// (scripts/cache-server.mjs), and v2, as GitHub-hosted runners speak it: Twirp, with archives
// in Azurite behind signed URLs that the client reaches through the Azure SDK
// (scripts/cache-server-v2.mjs).
// Each test builds its own copy of flakes/cache-image with a fresh salt, so it owns its store
// paths and may delete them; a counter file outside the store records every build step.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { appendFile, cp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { RunResult } from '../../scripts/run-action.mjs'
import { giveToRunner, userTempDir } from '../../scripts/runner-machine.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { startCacheServer } from '../../scripts/cache-server.mjs'
import type { CacheServer } from '../../scripts/cache-server.mjs'
import { startCacheServerV2 } from '../../scripts/cache-server-v2.mjs'
import type { CacheServerV2 } from '../../scripts/cache-server-v2.mjs'
import { action as runAction, freshMachine, store } from './action.js'

const fixtureDir = join(process.cwd(), '__tests__/e2e/flakes/cache-image')
const benchFixtureDir = join(process.cwd(), '__tests__/e2e/flakes/cache-bench')
const BUILD_STEPS = ['cache-test-payload', 'cache-test-layout', 'cache-test-image.tar']
const tempDirs: string[] = []
const TOKEN = 'nca-test-token'
/** What the tests need of either protocol's server. */
interface CacheService {
  env(token?: string): Record<string, string>
  entries(): { key: string }[]
  requests: { method: string; path: string }[]
  close(): Promise<void>
}
const SERVICES: Record<'v1' | 'v2', (failWith?: number) => Promise<CacheService>> = {
  v1: failWith => startCacheServer({ token: TOKEN, failWith }),
  v2: failWith => startCacheServerV2({ token: TOKEN, failWith })
}
/** v1, for the tests of the archive's import (the same whatever the protocol). */
let server: CacheServer

interface Fixture {
  /** The flake directory (a temp copy of the fixture with its salt). */
  dir: string
  ref: string
  counterFile: string
}

/** A flake of the runner's own (as its checkout is), with a counter file outside it. */
async function makeFixture(): Promise<Fixture> {
  const root = userTempDir('nca-cache-e2e-')
  tempDirs.push(root)
  const dir = join(root, 'flake')
  await cp(fixtureDir, dir, { recursive: true })
  // Outside the flake: writing it must not change the flake's source (and so the cache key).
  const counterFile = join(root, 'builds')
  await writeFile(join(dir, 'salt'), randomUUID())
  await writeFile(join(dir, 'counter'), counterFile)
  giveToRunner(root)
  return { dir, ref: `path:${dir}`, counterFile }
}

function builds(fixture: Fixture): string[] {
  if (!existsSync(fixture.counterFile)) return []
  return readFileSync(fixture.counterFile, 'utf8').split('\n').filter(Boolean)
}

/** The benchmark's flake: `blobs` paths of 50 MB of random data, and the image naming them. */
async function makeBenchFixture(blobs: number): Promise<Fixture> {
  const root = userTempDir('nca-cache-e2e-')
  tempDirs.push(root)
  const dir = join(root, 'flake')
  await cp(benchFixtureDir, dir, { recursive: true })
  await writeFile(join(dir, 'salt'), randomUUID())
  await writeFile(join(dir, 'blobs'), String(blobs))
  giveToRunner(root)
  return { dir, ref: `path:${dir}`, counterFile: join(root, 'no-counter') }
}

/** A run and the machine it ran on. */
type Run = RunResult & { machine: Machine }

/**
 * One job: the bundled action as the runner user, by default on a fresh runner (a machine of
 * its own: an empty store, no caches under HOME), with a single-user store the runner owns.
 */
async function action(
  fixture: Fixture,
  service: CacheService = server,
  options: { watch?: string[]; machine?: Machine } = {}
): Promise<Run> {
  const machine = options.machine ?? freshMachine()
  const result = await runAction(
    { flake: fixture.ref, load: 'false', push: 'false' },
    { env: service.env(TOKEN), watch: options.watch ?? [], machine }
  )
  return { ...result, machine }
}

function log(result: RunResult): string {
  return [result.main.stdout, result.main.stderr, result.post?.stdout, result.post?.stderr].join(
    '\n'
  )
}

function expectGreen(result: RunResult): void {
  expect({
    main: result.main.exitCode,
    post: result.post?.exitCode,
    log: log(result)
  }).toMatchObject({
    main: 0,
    post: 0
  })
}

const closure = (run: Run): string[] =>
  store.closure(run.machine, run.state['built-drv-path'] ?? '')

beforeAll(async () => {
  server = await startCacheServer({ token: TOKEN })
})

afterAll(async () => {
  await server.close()
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

describe.each(['v1', 'v2'] as const)('cache service %s', version => {
  let service: CacheService
  beforeAll(async () => {
    service = await SERVICES[version]()
  })
  afterAll(async () => {
    await service.close()
  })

  test('run 1 saves, run 2 restores and builds nothing, run 3 (flake edited) restores and saves nothing', async () => {
    const fixture = await makeFixture()

    // Run 1: a miss, a full build, a save of the build closure.
    const run1 = await action(fixture, service)
    expectGreen(run1)
    const key = run1.outputs['cache-key'] ?? ''
    expect(key).toMatch(
      /^nix-container-store\/[a-z0-9_]+-linux\/container\/lock-none\/source-[0-9a-f]{16}$/
    )
    expect(run1.outputs['cache-hit']).toBe('false')
    expect(run1.outputs['cache-restored-key']).toBe('')
    expect(builds(fixture)).toEqual(BUILD_STEPS)
    expect(run1.post?.stdout).toContain(`Store cache save: saved ${key}: 6 paths (6 new)`)
    expect(service.entries().map(e => e.key)).toContain(key)
    expect(run1.summary).toMatch(/\| Store cache \| .* done \| miss: /)
    expect(run1.summary).toMatch(/\| Store cache save \| ✅ saved \| saved /)

    // What is cached is exactly the build closure: three derivations and their outputs.
    const paths = closure(run1)
    expect(paths).toHaveLength(6)
    expect(paths.filter(p => p.endsWith('.drv'))).toHaveLength(3)

    // Run 2, on a fresh runner: an exact hit, and nothing is built.
    const run2 = await action(fixture, service)
    expect(store.invalid(run2.machine, paths)).toEqual([])
    expectGreen(run2)
    expect(run2.outputs).toMatchObject({
      'cache-hit': 'true',
      'cache-key': key,
      'cache-restored-key': key,
      'store-path': run1.outputs['store-path']
    })
    expect(builds(fixture)).toEqual(BUILD_STEPS)
    expect(run2.main.stdout).toContain('Importing 6 of 6 paths')
    // The fast path (extract, check, rename, load-db) on the store the runner owns, which leaves
    // every path (directories too) the runner's and as read-only as Nix has it.
    expect(run2.main.stdout).not.toContain('Paths will be imported through nix copy')
    const restored = paths.map(p => statSync(store.hostPath(run2.machine, p)))
    expect(restored.some(stat => stat.isDirectory())).toBe(true)
    expect(restored.map(stat => [stat.uid, stat.mode & 0o222])).toEqual(
      paths.map(() => [run2.machine.uid, 0])
    )
    expect(run2.post?.stdout).toContain(
      `Store cache save: skipped (exact hit on the primary key ${key}`
    )
    expect(run2.summary).toMatch(
      /\| Store cache \| .* done \| hit nix-container-store\/.*: 6 paths, .* 6 imported/
    )

    // Run 3: an edit that leaves the image as it was. A new primary key, a restore-key hit,
    // nothing built, nothing saved.
    await appendFile(join(fixture.dir, 'flake.nix'), '# an edit that changes no derivation\n')
    const run3 = await action(fixture, service)
    expectGreen(run3)
    expect(run3.outputs['cache-key']).not.toBe(key)
    expect(run3.outputs['cache-hit']).toBe('false')
    expect(run3.outputs['cache-restored-key']).toBe(key)
    expect(builds(fixture)).toEqual(BUILD_STEPS)
    expect(run3.post?.stdout).toContain(
      'Store cache save: skipped (the closure holds no path that the restored cache did not already have (6 paths))'
    )
    expect(
      service.entries().filter(e => e.key.startsWith(key.replace(/source-.*$/, '')))
    ).toHaveLength(1)
  })

  test('a service that fails every call leaves the job green, with warnings', async () => {
    const fixture = await makeFixture()
    const down = await SERVICES[version](503)
    try {
      const result = await action(fixture, down)
      expectGreen(result)
      expect(result.outputs['cache-hit']).toBe('false')
      expect(result.outputs['cache-restored-key']).toBe('')
      expect(builds(fixture)).toEqual(BUILD_STEPS)
      expect(result.main.stdout).toMatch(/::warning::Failed to restore: .*503/)
      // v1 warns of the 503 itself; v2 (after its retries) logs that it could not reserve.
      expect(result.post?.stdout).toMatch(
        version === 'v1' ? /::warning::Failed to save: .*503/ : /Failed to save: Unable to reserve/
      )
      expect(result.post?.stdout).toContain('::warning::Store cache save failed, the job goes on')
      expect(down.requests.length).toBeGreaterThan(0)
    } finally {
      await down.close()
    }
  })
})

test('a corrupt archive is discarded with a warning, never half-imported', async () => {
  const fixture = await makeFixture()
  const run1 = await action(fixture)
  expectGreen(run1)
  const key = run1.outputs['cache-key'] ?? ''
  const entry = server.entries().find(e => e.key === key)
  if (!entry) throw new Error(`no cache entry ${key}`)

  // A valid tar.zst (as @actions/cache makes it here: zstd without --long) whose payload NAR
  // no longer matches its hash: only Nix can notice.
  const tarball = execFileSync('zstd', ['-d', '--long=30', '-c', entry.file], {
    maxBuffer: 1 << 28
  })
  const at = tarball.indexOf('payload-line-12345')
  expect(at).toBeGreaterThan(0)
  tarball.write('X', at + 'payload-line-'.length)
  server.replaceArchive(key, execFileSync('zstd', ['-c'], { input: tarball, maxBuffer: 1 << 28 }))

  const run2 = await action(fixture)
  expectGreen(run2)
  expect(run2.main.stdout).toMatch(
    /::warning::Store cache: restore failed, building without the cache: the archive did not import cleanly and was discarded/
  )
  expect(run2.outputs['cache-restored-key']).toBe('')
  // Every step built again: no output of the corrupt archive was kept.
  expect(builds(fixture)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
  // The post step tries to save under the same key, which exists: a warning, still green.
  expect(run2.post?.stdout).toMatch(/Unable to reserve cache with key/)
  expect(run2.post?.stdout).toContain('::warning::Store cache save failed, the job goes on')
})

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
    const key = run1.outputs['cache-key'] ?? ''
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
    expect(v2.requests.map(r => r.path.split('/').pop())).toEqual([
      'GetCacheEntryDownloadURL',
      'CreateCacheEntry',
      'FinalizeCacheEntryUpload',
      'GetCacheEntryDownloadURL'
    ])
  })
})

// The other ways Nix is there before the step: a root-owned store behind nix-daemon
// (cachix/install-nix-action, Determinate; the restore goes through `nix copy`), and root's own
// store on a self-hosted runner (the fast path, as root).
describe.each([
  { shape: 'daemon' as const, what: 'a daemon store (the runner trusted)', how: 'through Nix' },
  { shape: 'root' as const, what: 'a self-hosted runner as root', how: 'directly' }
])('$shape: $what', ({ shape, how }) => {
  test(`run 1 saves; run 2 on a fresh runner restores ${how} and builds nothing`, async () => {
    const fixture = await makeFixture()
    const run1 = await action(fixture, server, { machine: freshMachine(shape) })
    expectGreen(run1)
    const key = run1.outputs['cache-key'] ?? ''
    expect(run1.post?.stdout).toContain(`Store cache save: saved ${key}: 6 paths (6 new)`)
    const paths = closure(run1)

    const run2 = await action(fixture, server, { machine: freshMachine(shape) })
    expectGreen(run2)
    expect(run2.outputs).toMatchObject({ 'cache-hit': 'true', 'cache-restored-key': key })
    expect(builds(fixture)).toEqual(BUILD_STEPS)
    expect(store.invalid(run2.machine, paths)).toEqual([])
    expect(run2.main.stdout).toContain('Importing 6 of 6 paths')
    const throughNix =
      'Paths will be imported through nix copy: the store directory is not writable'
    if (shape === 'daemon') expect(run2.main.stdout).toContain(throughNix)
    else expect(run2.main.stdout).not.toContain('Paths will be imported through nix copy')
  })
})
