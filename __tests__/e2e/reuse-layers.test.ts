// Push only what changed: the everyday commit that changes the app layer and leaves the base
// layers alone, through the bundled action with push-tool skopeo, against the real registry
// behind a proxy that counts the bytes of every blob upload. Each push is a job on a fresh
// runner machine, as the runner user: skopeo's blob-info cache (under the runner's HOME) starts
// empty, as it does on GitHub (a warm cache would let skopeo find the base layers by itself and
// hide what the action does).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { randomUUID } from 'node:crypto'
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { RunResult } from '../../scripts/run-action.mjs'
import { giveToRunner, userTempDir } from '../../scripts/runner-machine.mjs'
import { action, freshMachine } from './action.js'
import { startFaultProxy, uploadedBlobBytes } from './fault-proxy.js'
import type { FaultProxy } from './fault-proxy.js'

const fixture = resolve('__tests__/e2e/flakes/app-layers')
const tempDirs: string[] = []
// Asynchronous: the proxy answering these commands lives in this process.
const exec = async (command: string, args: string[]): Promise<string> =>
  (await promisify(execFile)(command, args, { encoding: 'utf8' })).stdout
let proxy: FaultProxy

interface Manifest {
  config: { digest: string; size: number }
  layers: { digest: string; size: number }[]
}

beforeAll(async () => {
  const registry = process.env.REGISTRY
  if (!registry) throw new Error('REGISTRY is not set: the e2e global setup did not run')
  // No faults: the proxy only passes requests on and counts them.
  proxy = await startFaultProxy({ target: registry })
})

afterAll(async () => {
  await proxy.close()
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

/** A copy of the fixture whose base layers are this test's own (salted) and app.txt as given. */
async function flakeCopy(): Promise<{ dir: string; commit: (text: string) => Promise<void> }> {
  const root = userTempDir('nca-reuse-e2e-')
  tempDirs.push(root)
  const dir = join(root, 'flake')
  await cp(fixture, dir, { recursive: true })
  // Unique base layers too: no earlier run's blobs can be found in the registry by accident.
  const flakeFile = join(dir, 'flake.nix')
  const salt = randomUUID()
  const text = await readFile(flakeFile, 'utf8')
  await writeFile(flakeFile, text.replace('seq 1 100000', `echo ${salt} && seq 1 100000`))
  giveToRunner(root)
  return { dir, commit: text => writeFile(join(dir, 'app.txt'), `${text}\n`) }
}

async function push(dir: string, inputs: Record<string, string>): Promise<RunResult> {
  const result = await action(
    {
      flake: dir,
      registry: proxy.address,
      'push-tool': 'skopeo',
      load: 'false',
      cache: 'false',
      ...inputs
    },
    { machine: freshMachine() }
  )
  expect({ exit: result.main.exitCode, log: result.main.stdout }).toMatchObject({ exit: 0 })
  return result
}

/** Run `work` and count the blob bytes it sent through the proxy. */
async function counting<T>(work: () => Promise<T>): Promise<{ result: T; uploaded: number }> {
  const before = proxy.passed.length
  const result = await work()
  return { result, uploaded: uploadedBlobBytes(proxy.passed.slice(before)) }
}

async function manifestOf(ref: string): Promise<Manifest> {
  const raw = await exec('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])
  return JSON.parse(raw) as Manifest
}

/** What a changed-layer push must have sent: the new layer's blob and the new config. */
function newBytes(manifest: Manifest): number {
  return (manifest.layers.at(-1)?.size ?? 0) + manifest.config.size
}

describe('a push where only the app layer changed', () => {
  test('uploads only the new layer (and config), reusing the base layers the ref holds', async () => {
    const flake = await flakeCopy()
    const image = `e2e/reuse-same-${randomUUID().slice(0, 8)}`
    await flake.commit('commit 1')
    const first = await counting(() => push(flake.dir, { image, tags: 'main' }))
    const ref = `${proxy.address}/${image}:main`
    const before = await manifestOf(ref)
    // The first push has nothing to reuse: every layer goes up.
    expect(first.uploaded).toBeGreaterThan(before.layers[0]?.size ?? 0)

    await flake.commit('commit 2')
    const second = await counting(() => push(flake.dir, { image, tags: 'main' }))
    const after = await manifestOf(ref)
    expect(after.layers.slice(0, 2)).toEqual(before.layers.slice(0, 2))
    expect(after.layers[2]?.digest).not.toBe(before.layers[2]?.digest)
    expect(second.uploaded).toBe(newBytes(after))
    expect(second.result.summary).toContain(`${ref} (pushed: 2 layers reused`)

    // An ordinary image: docker pulls it (checking every blob and diff_id) as the archive's.
    const outputs = second.result.outputs
    expect(outputs['image-id']).toBe(after.config.digest)
    const pinned = `${proxy.address}/${image}@${outputs.digest}`
    expect(outputs['image-ref']).toBe(pinned)
    await exec('docker', ['pull', '--quiet', pinned])
    const id = await exec('docker', ['image', 'inspect', '--format', '{{.Id}}', pinned])
    // The classic store names an image by its config, the containerd store by its manifest.
    const store = await exec('docker', ['info', '--format', '{{json .DriverStatus}}'])
    const containerd = store.includes('io.containerd.snapshotter')
    expect(id.trim()).toBe(containerd ? outputs.digest : outputs['image-id'])
    await exec('docker', ['image', 'rm', pinned])

    // And the up-to-date check still holds.
    const again = await counting(() => push(flake.dir, { image, tags: 'main' }))
    expect(again.result.main.stdout).toContain(`${ref}: up to date`)
    expect(again.uploaded).toBe(0)
  })

  test('reuse-from another tag of the repository (a bare tag) works', async () => {
    const flake = await flakeCopy()
    const image = `e2e/reuse-tag-${randomUUID().slice(0, 8)}`
    await flake.commit('release')
    await push(flake.dir, { image, tags: 'stable' })
    await flake.commit('feature')
    const pushed = await counting(() =>
      push(flake.dir, { image, tags: 'feature', 'reuse-from': 'stable' })
    )
    const manifest = await manifestOf(`${proxy.address}/${image}:feature`)
    expect(pushed.uploaded).toBe(newBytes(manifest))
    expect(pushed.result.summary).toContain('2 layers reused')
  })

  test('reuse-from another repository mounts the blobs, uploading none of them', async () => {
    const flake = await flakeCopy()
    const suffix = randomUUID().slice(0, 8)
    await flake.commit('base image')
    await push(flake.dir, { image: `e2e/reuse-base-${suffix}`, tags: 'main' })
    await flake.commit('derived image')
    const before = proxy.passed.length
    const pushed = await counting(() =>
      push(flake.dir, {
        image: `e2e/reuse-app-${suffix}`,
        tags: 'v1',
        'reuse-from': `${proxy.address}/e2e/reuse-base-${suffix}:main`
      })
    )
    const manifest = await manifestOf(`${proxy.address}/e2e/reuse-app-${suffix}:v1`)
    expect(pushed.uploaded).toBe(newBytes(manifest))
    const mounts = proxy.passed
      .slice(before)
      .filter(r => r.method === 'POST' && r.path.includes('mount='))
    expect(mounts).toHaveLength(2)
    expect(pushed.result.main.stdout).toContain('(2 mounted from other repositories)')
    // Every blob of the new repository is there: skopeo copies it out completely.
    const pulled = await mkdtemp('/tmp/nca-reuse-pull-')
    tempDirs.push(pulled)
    await exec('skopeo', [
      'copy',
      '-q',
      '--src-tls-verify=false',
      `docker://${proxy.address}/e2e/reuse-app-${suffix}:v1`,
      `dir:${pulled}/image`
    ])
    const copied = JSON.parse(
      await readFile(join(pulled, 'image', 'manifest.json'), 'utf8')
    ) as Manifest
    expect(copied.config.digest).toBe(pushed.result.outputs['image-id'])
  })

  test('a reuse-from ref that does not exist is a notice, not an error', async () => {
    const flake = await flakeCopy()
    const image = `e2e/reuse-missing-${randomUUID().slice(0, 8)}`
    await flake.commit('alone')
    const missing = `${proxy.address}/e2e/no-such-repo:never`
    const result = await push(flake.dir, { image, tags: 'v1', 'reuse-from': missing })
    expect(result.main.stdout).toContain(
      `::notice::reuse-from ${missing} does not exist in the registry: not used`
    )
    expect(result.outputs.digest).toMatch(/^sha256:/)
  })
})
