// The store cache through the bundled action (dist/), as the runner runs it, with the real
// @actions/cache client against the v1 cache service on 127.0.0.1 (the REST API,
// scripts/cache-server.mjs): the commits, a failing service, a corrupt archive, and the other
// shapes of Nix on the runner (a daemon store, root). v2 is store-cache-v2.test.ts.
// Each test builds its own copy of flakes/cache-image with a fresh salt; a counter file outside
// the store records every build step.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { startCacheServer } from '../../scripts/cache-server.mjs'
import type { CacheServer } from '../../scripts/cache-server.mjs'
import { freshMachine, store } from './action.js'
import {
  action,
  baseOf,
  BUILD_STEPS,
  builds,
  closure,
  describeProtocol,
  expectGreen,
  makeFixture,
  TOKEN
} from './store-cache-kit.js'

/** v1, for the tests of the archive's import (the same whatever the protocol). */
let server: CacheServer

beforeAll(async () => {
  server = await startCacheServer({ token: TOKEN })
})

afterAll(async () => {
  await server.close()
})

// The commits on v1 (a base, deltas, exact hits, deletion) are store-cache-commits.test.ts.
describeProtocol('v1', { commits: false })

test('a corrupt archive is discarded with a warning, never half-imported', async () => {
  const fixture = await makeFixture()
  const run1 = await action(fixture, server)
  expectGreen(run1)
  const key = baseOf(run1.outputs['cache-key'])
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

  const run2 = await action(fixture, server)
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

// The other ways Nix is there before the step: a root-owned store behind nix-daemon
// (cachix/install-nix-action, Determinate; the restore goes through `nix copy`), and root's own
// store on a self-hosted runner (the fast path, as root).
// And a store Nix 2.8 made (Debian 12: an older self-hosted runner), through the fast path.
describe.each([
  { shape: 'daemon' as const, what: 'a daemon store (the runner trusted)', how: 'through Nix' },
  { shape: 'root' as const, what: 'a self-hosted runner as root', how: 'directly' },
  {
    shape: 'single-user' as const,
    os: 'debian12' as const,
    what: "Debian 12's Nix 2.8, a store the runner owns",
    how: 'directly'
  }
])('$shape: $what', ({ shape, os, how }) => {
  test(`run 1 saves; run 2 on a fresh runner restores ${how} and builds nothing`, async () => {
    const fixture = await makeFixture()
    const run1 = await action(fixture, server, { machine: freshMachine(shape, os) })
    expectGreen(run1)
    const key = baseOf(run1.outputs['cache-key'])
    expect(run1.post?.stdout).toContain(`Store cache save: saved base ${key}: 6 paths (6 new)`)
    const paths = closure(run1)

    const run2 = await action(fixture, server, { machine: freshMachine(shape, os) })
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
