// What the store cache's e2e files share: the cache services (v1, the REST API in
// scripts/cache-server.mjs; v2, Twirp with archives in Azurite, scripts/cache-server-v2.mjs),
// the salted copies of flakes/cache-image each test builds (so it owns its store paths), and
// one job on a fresh runner machine as the runner user.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { appendFile, cp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { RunResult } from '../../scripts/run-action.mjs'
import { giveToRunner, userTempDir } from '../../scripts/runner-machine.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { startCacheServer } from '../../scripts/cache-server.mjs'
import { startCacheServerV2 } from '../../scripts/cache-server-v2.mjs'
import { action as runAction, freshMachine, store } from './action.js'
import { baseOf } from './cache-keys.js'

export { baseOf }

const fixtureDir = join(process.cwd(), '__tests__/e2e/flakes/cache-image')
const benchFixtureDir = join(process.cwd(), '__tests__/e2e/flakes/cache-bench')
export const BUILD_STEPS = ['cache-test-payload', 'cache-test-layout', 'cache-test-image.tar']
const tempDirs: string[] = []
export const TOKEN = 'nca-test-token'
/** What the tests need of either protocol's server. */
export interface CacheService {
  env(token?: string): Record<string, string>
  entries(): { key: string }[]
  requests: { method: string; path: string }[]
  close(): Promise<void>
}
export const SERVICES: Record<'v1' | 'v2', (failWith?: number) => Promise<CacheService>> = {
  v1: failWith => startCacheServer({ token: TOKEN, failWith }),
  v2: failWith => startCacheServerV2({ token: TOKEN, failWith })
}

export interface Fixture {
  /** The flake directory (a temp copy of the fixture with its salt). */
  dir: string
  ref: string
  counterFile: string
}

/** A flake of the runner's own (as its checkout is), with a counter file outside it. */
export async function makeFixture(): Promise<Fixture> {
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

export function builds(fixture: Fixture): string[] {
  if (!existsSync(fixture.counterFile)) return []
  return readFileSync(fixture.counterFile, 'utf8').split('\n').filter(Boolean)
}

/** The benchmark's flake: `blobs` paths of 50 MB of random data, and the image naming them. */
export async function makeBenchFixture(blobs: number): Promise<Fixture> {
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
export type Run = RunResult & { machine: Machine }

/**
 * One job: the bundled action as the runner user, by default on a fresh runner (a machine of
 * its own: an empty store, no caches under HOME), with a single-user store the runner owns.
 */
export async function action(
  fixture: Fixture,
  service: CacheService,
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

export function expectGreen(result: RunResult): void {
  expect({
    main: result.main.exitCode,
    post: result.post?.exitCode,
    log: log(result)
  }).toMatchObject({
    main: 0,
    post: 0
  })
}

export const closure = (run: Run): string[] =>
  store.closure(run.machine, run.state['built-drv-path'] ?? '')

afterAll(async () => {
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

/**
 * The commits (unless `commits: false`: v1 has store-cache-commits.test.ts) and a failing
 * service, against one protocol of the cache service.
 */
export function describeProtocol(version: 'v1' | 'v2', { commits = true } = {}): void {
  const commitsTest = commits ? test : () => undefined
  describe(`cache service ${version}`, () => {
    let service: CacheService
    beforeAll(async () => {
      service = await SERVICES[version]()
    })
    afterAll(async () => {
      await service.close()
    })

    commitsTest(
      'run 1 saves, run 2 restores and builds nothing, run 3 (flake edited) restores and saves nothing',
      async () => {
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
        const base = baseOf(key)
        expect(run1.post?.stdout).toContain(`Store cache save: saved base ${base}: 6 paths (6 new)`)
        expect(service.entries().map(e => e.key)).toContain(base)
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
          'cache-restored-key': base,
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
        expect(run2.post?.stdout).toContain(`Store cache save: skipped (exact hit on ${base}`)
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
        expect(run3.outputs['cache-restored-key']).toBe(base)
        expect(builds(fixture)).toEqual(BUILD_STEPS)
        expect(run3.post?.stdout).toContain(
          'Store cache save: skipped (the closure holds no path that the restored cache did not already have (6 paths))'
        )
        expect(
          service.entries().filter(e => e.key.startsWith(key.replace(/source-.*$/, '')))
        ).toHaveLength(1)
      }
    )

    // v1: an outage (503), which its client retries for about 20 s. v2: a rate limit (429),
    // which its client never retries; its 503 retries (about a minute) are its own, not the
    // action's, whose handling is the same for every failure.
    const failure = version === 'v1' ? 503 : 429
    test(`a service that fails every call (${failure}) leaves the job green, with warnings`, async () => {
      const fixture = await makeFixture()
      const down = await SERVICES[version](failure)
      try {
        const result = await action(fixture, down)
        expectGreen(result)
        expect(result.outputs['cache-hit']).toBe('false')
        expect(result.outputs['cache-restored-key']).toBe('')
        expect(builds(fixture)).toEqual(BUILD_STEPS)
        expect(result.main.stdout).toMatch(new RegExp(`::warning::Failed to restore: .*${failure}`))
        // v1 warns of the 503 itself; v2 logs that it could not reserve.
        expect(result.post?.stdout).toMatch(
          version === 'v1'
            ? /::warning::Failed to save: .*503/
            : /Failed to save: Unable to reserve/
        )
        expect(result.post?.stdout).toContain('::warning::Store cache save failed, the job goes on')
        expect(down.requests.length).toBeGreaterThan(0)
      } finally {
        await down.close()
      }
    })
  })
}
