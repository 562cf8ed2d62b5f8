// The store cache across commits, as a repository's main branch sees it: the app changes on
// every commit, the toolchain does not, and every job runs on a fresh runner (a machine of its
// own: an empty store). Through the bundled action as the runner user, the real @actions/cache
// client against the v1 cache service on 127.0.0.1, and GitHub's REST API for caches (list and
// delete by key) served by the same server (scripts/cache-server.mjs).
import { afterAll, beforeAll, expect, test } from '@jest/globals'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { cp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startCacheServer } from '../../scripts/cache-server.mjs'
import type { CacheServer } from '../../scripts/cache-server.mjs'
import { giveToRunner, userTempDir } from '../../scripts/runner-machine.mjs'
import { action, freshMachine, store } from './action.js'
import { baseOf, expectGreen, TOKEN } from './store-cache-kit.js'

const WRITE_TOKEN = 'nca-test-github-token'
/** An Actions token without `actions: write`: it may list caches, not delete them. */
const READ_TOKEN = 'nca-test-read-only-token'
const TOOLCHAIN_STEPS = 11 // one blob and ten libraries
const APP_STEPS = ['commits-app', 'commits-image.tar']

let server: CacheServer
let root: string
let flakeDir: string
let counterFile: string

beforeAll(async () => {
  server = await startCacheServer({
    token: TOKEN,
    apiTokens: {
      [WRITE_TOKEN]: { actionsWrite: true },
      [READ_TOKEN]: { actionsWrite: false }
    }
  })
  root = userTempDir('nca-cache-commits-')
  flakeDir = join(root, 'flake')
  counterFile = join(root, 'builds')
  await cp(join(process.cwd(), '__tests__/e2e/flakes/cache-commits'), flakeDir, {
    recursive: true
  })
  await writeFile(join(flakeDir, 'salt'), randomUUID())
  await writeFile(join(flakeDir, 'counter'), counterFile)
})

afterAll(async () => {
  await server.close()
  await rm(root, { recursive: true, force: true })
})

/** What the builders ran since the last call. */
let buildsSeen = 0
function newBuilds(): string[] {
  const all = existsSync(counterFile) ? readFileSync(counterFile, 'utf8').split('\n') : []
  const steps = all.filter(Boolean)
  const fresh = steps.slice(buildsSeen)
  buildsSeen = steps.length
  return fresh
}

/** Commit `n`: the app's source says so; the job runs on a fresh runner. */
async function commit(n: number, githubToken = WRITE_TOKEN) {
  await writeFile(join(flakeDir, 'app.txt'), `the app at commit ${n}\n`)
  giveToRunner(root)
  const machine = freshMachine()
  const requestsBefore = server.requests.length
  const run = await action(
    { flake: `path:${flakeDir}`, load: 'false', push: 'false', 'github-token': githubToken },
    { env: server.env(TOKEN), machine }
  )
  expectGreen(run)
  const deletes = server.requests
    .slice(requestsBefore)
    .filter(r => r.method === 'DELETE')
    .map(r => decodeURIComponent(new URL(r.path, server.url).searchParams.get('key') ?? ''))
  return { ...run, machine, built: newBuilds(), deletes }
}

const entry = (key: string | undefined) => {
  const found = server.entries().find(e => e.key === key)
  if (!found?.size) throw new Error(`no entry ${key ?? ''}`)
  return found
}
const keys = () => server.entries().map(e => e.key)

test('each later commit uploads about its new paths; an exact hit restores the whole closure; superseded entries go, or a notice says why not; a lost base', async () => {
  // Commit 1: a miss; everything is built and saved as the lock's base.
  const c1 = await commit(1)
  expect(c1.built).toHaveLength(TOOLCHAIN_STEPS + APP_STEPS.length)
  const base = baseOf(c1.outputs['cache-key'])
  expect(c1.post?.stdout).toContain(`Store cache save: saved base ${base}: 27 paths (27 new)`)
  expect(keys()).toEqual([base])
  const baseSize = entry(base).size ?? 0

  // Commit 2: the base comes back (a restore-key hit); only the app and the image are built,
  // and only their 5 paths are saved, as a delta on that base.
  const c2 = await commit(2)
  expect(c2.outputs['cache-restored-key']).toBe(base)
  expect(c2.outputs['cache-hit']).toBe('false')
  expect(c2.built).toEqual(APP_STEPS)
  const delta2 = `${c2.outputs['cache-key']}/on-${base?.split('/').pop()}`
  expect(c2.post?.stdout).toContain(`Store cache save: saved delta ${delta2}: 5 paths (5 new)`)
  expect(entry(delta2).size).toBeLessThan(0.05 * baseSize)
  expect(c2.deletes).toEqual([])

  // Commit 3: the newest entry is commit 2's delta: it and its base are downloaded side by
  // side. Again only the app is built and saved; commit 2's delta, superseded, is deleted.
  const c3 = await commit(3)
  expect(c3.outputs['cache-restored-key']).toBe(delta2)
  expect(c3.main.stdout).toContain(`Restored delta ${delta2} + base ${base}`)
  expect(c3.built).toEqual(APP_STEPS)
  const delta3 = `${c3.outputs['cache-key']}/on-${base?.split('/').pop()}`
  expect(c3.post?.stdout).toContain(`Store cache save: saved delta ${delta3}: 5 paths (5 new)`)
  expect(entry(delta3).size).toBeLessThan(0.05 * baseSize)
  expect(c3.deletes).toEqual([delta2])
  expect(c3.post?.stdout).toContain(`Deleted the superseded entry ${delta2}`)
  expect(keys().sort()).toEqual([base, delta3].sort())

  // Commit 3 again on a fresh runner: an exact hit restores the whole closure and builds
  // nothing; there is nothing to save or delete.
  const again = await commit(3)
  expect(again.outputs['cache-hit']).toBe('true')
  expect(again.outputs['cache-restored-key']).toBe(delta3)
  expect(again.built).toEqual([])
  const closure = store.closure(again.machine, again.state['built-drv-path'] ?? '')
  expect(closure).toHaveLength(27)
  expect(store.invalid(again.machine, closure)).toEqual([])
  expect(again.post?.stdout).toContain('Store cache save: skipped (exact hit on')
  expect(again.deletes).toEqual([])

  // The base evicted (deleted through the REST API), and a token that may not delete caches:
  // commit 4 finds commit 3's delta but not its base, nor any other base of the lock. It
  // imports only the delta's paths that need nothing else (the app's old source), builds the
  // rest and saves a new base; it may not delete commit 3's delta, and a notice says so.
  const evicted = await fetch(
    `${server.apiUrl}/repos/${server.repository}/actions/caches?key=${encodeURIComponent(base ?? '')}`,
    { method: 'DELETE', headers: { Authorization: `Bearer ${WRITE_TOKEN}` } }
  )
  expect(evicted.status).toBe(200)
  const c4 = await commit(4, READ_TOKEN)
  expect(c4.main.stdout).toContain(`The base ${base} of ${delta3} is not in the cache`)
  expect(c4.main.stdout).toMatch(
    /\d+ paths left out: they need paths neither the store nor the entries hold/
  )
  expect(c4.built).toHaveLength(TOOLCHAIN_STEPS + APP_STEPS.length)
  const base4 = baseOf(c4.outputs['cache-key'])
  expect(c4.post?.stdout).toContain(`Store cache save: saved base ${base4}: 27 paths`)
  expect(c4.post?.stdout).toMatch(
    /::notice::Store cache: superseded entries were not all deleted: the token may not \(give the job `permissions: actions: write`/
  )
  expect(c4.deletes).toEqual([delta3])
  expect(keys().sort()).toEqual([base4, delta3].sort())
})
