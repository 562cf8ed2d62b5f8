// The store cache's guarantees, through the bundled action (dist/) with real Nix and the real
// @actions/cache client against the v1 cache server on 127.0.0.1:
// - a flake input (a locked tarball served here) is cached with the closure, so that an exact
//   hit asks the input's server for nothing, even with Nix's caches under HOME gone;
// - an archive whose NAR no longer matches its hash, or a truncated one, leaves nothing behind;
// - paths already valid are left as they are.
// Each test builds flakes of its own (a fresh salt), so it owns the store paths it deletes.
import { afterAll, beforeAll, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import type { RunResult } from '../../scripts/run-action.mjs'
import { giveToRunner, userTempDir } from '../../scripts/runner-machine.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { cacheEnv, startCacheServer } from '../../scripts/cache-server.mjs'
import type { CacheServer } from '../../scripts/cache-server.mjs'
import { action as runAction, freshMachine, inMachineAsync, store } from './action.js'
import { baseOf } from './cache-keys.js'

const tempDirs: string[] = []
let cacheServer: CacheServer

beforeAll(async () => {
  cacheServer = await startCacheServer()
})

afterAll(async () => {
  await cacheServer.close()
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

/** A directory of the runner's own (its checkout, say). */
function tempDir(): string {
  const dir = userTempDir('nca-cache-inputs-')
  tempDirs.push(dir)
  return dir
}

function lines(text: string): string[] {
  return text.split('\n').filter(Boolean)
}

function expectGreen(result: RunResult): void {
  const log = [result.main.stdout, result.main.stderr, result.post?.stdout].join('\n')
  expect({ main: result.main.exitCode, post: result.post?.exitCode, log }).toMatchObject({
    main: 0,
    post: 0
  })
}

/** A run and the machine it ran on. */
type Run = RunResult & { machine: Machine }

/** One job as the runner user; by default on a fresh runner (a machine of its own). */
async function action(ref: string, machine: Machine = freshMachine()): Promise<Run> {
  const result = await runAction(
    { flake: ref, load: 'false', push: 'false' },
    { env: cacheEnv(cacheServer), machine }
  )
  return { ...result, machine }
}

const closure = (run: Run): string[] =>
  store.closure(run.machine, run.state['built-drv-path'] ?? '')

/** Staging directories in a machine's store still holding an archive that lists one of `paths`. */
function stagingLeftovers(machine: Machine, paths: string[]): string[] {
  const storeDir = join(machine.nixDir, 'store')
  return readdirSync(storeDir)
    .filter(name => name.startsWith('.nca-staging-'))
    .filter(name =>
      ['base', 'delta'].some(layer => {
        const manifest = join(
          storeDir,
          name,
          `nix-container-action-store-v3/${layer}/nix-container-action.json`
        )
        const text = existsSync(manifest) ? readFileSync(manifest, 'utf8') : ''
        return paths.some(p => text.includes(p))
      })
    )
}

// --- a flake with an input served on 127.0.0.1 -----------------------------------------------

interface InputServer {
  url: string
  requests: string[]
  failing: boolean
  server: Server
}

/** Serves one tarball (any path); counts requests; answers 503 while `failing`. */
async function serveTarball(tarball: Buffer): Promise<InputServer> {
  const state = { requests: [] as string[], failing: false }
  const server = createServer((req, res) => {
    state.requests.push(req.url ?? '')
    if (state.failing) {
      res.writeHead(503).end()
      return
    }
    res.writeHead(200, { 'content-type': 'application/gzip' }).end(tarball)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return Object.assign(state, { url: `http://127.0.0.1:${port}/dep.tar.gz`, server })
}

/** A flake whose image takes a value from its one input, a tarball at `url`; locked. */
async function flakeWithInput(
  machine: Machine,
  root: string,
  url: string,
  counter: string
): Promise<string> {
  const dir = join(root, 'flake')
  await mkdir(dir)
  await writeFile(
    join(dir, 'flake.nix'),
    `{
  inputs.dep.url = "${url}";
  outputs = { self, dep }:
    let
      image = system: derivation {
        name = "inputs-test-image.tar";
        inherit system;
        builder = "/bin/sh";
        args = [ "-eu" "-c" ''
          echo image >> ${counter}
          mkdir rootfs && echo "\${dep.value}" > rootfs/value.txt
          tar --sort=name --mtime=@1 --owner=0 --group=0 -C rootfs -cf layer.tar .
          layer=$(sha256sum layer.tar | cut -d' ' -f1)
          echo '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:'$layer'"]}}' > config.json
          config=$(sha256sum config.json | cut -d' ' -f1)
          mkdir -p img/$layer && mv layer.tar img/$layer/ && mv config.json img/$config.json
          echo '[{"Config":"'$config'.json","RepoTags":["inputs-test:latest"],"Layers":["'$layer'/layer.tar"]}]' > img/manifest.json
          tar --sort=name --mtime=@1 --owner=0 --group=0 -C img -cf $out .
        '' ];
        PATH = "/usr/bin:/bin";
      };
    in {
      packages.x86_64-linux.container = image "x86_64-linux";
      packages.aarch64-linux.container = image "aarch64-linux";
    };
}
`
  )
  const ref = `path:${dir}`
  giveToRunner(root)
  // Async: the input's server answers from this process's event loop.
  await inMachineAsync(machine, ['nix', 'flake', 'lock', ref])
  return ref
}

test('an exact hit needs nothing from the network: the flake input comes from the cache', async () => {
  const root = tempDir()
  // The input: a flake of its own, with a salt so that its source is this test's alone.
  const dep = join(root, 'dep')
  await mkdir(dep)
  await writeFile(
    join(dep, 'flake.nix'),
    `{ outputs = { self }: { value = "dep-${randomUUID()}"; }; }\n`
  )
  const tarball = execFileSync('tar', ['-czf', '-', '-C', root, 'dep'])
  const inputServer = await serveTarball(tarball)
  try {
    const counter = join(root, 'builds')
    const machine = freshMachine()
    const ref = await flakeWithInput(machine, root, inputServer.url, counter)

    // Run 1: a miss; the build fetches the input; the post step saves closure + input.
    const run1 = await action(ref, machine)
    expectGreen(run1)
    expect(run1.outputs['cache-hit']).toBe('false')
    expect(run1.outputs['cache-key']).toMatch(/\/lock-[0-9a-f]{16}\/source-/)
    expect(inputServer.requests.length).toBeGreaterThan(0)
    const archived = JSON.parse(
      await inMachineAsync(machine, ['nix', 'flake', 'archive', '--json', '--dry-run', ref])
    ) as { inputs: { dep: { path: string } } }
    const source = archived.inputs.dep.path
    const paths = closure(run1)
    expect(run1.post?.stdout).toContain(`Saving ${paths.length + 1} paths, `)

    // A fresh runner: none of the paths, not the input's source, no Nix caches under HOME;
    // the input's server down.
    inputServer.failing = true
    inputServer.requests.length = 0

    const run2 = await action(ref)
    expectGreen(run2)
    expect(run2.outputs['cache-hit']).toBe('true')
    expect(run2.main.stdout).toContain(`Importing ${paths.length + 1} of ${paths.length + 1} paths`)
    expect(inputServer.requests).toEqual([])
    expect(run2.main.stdout).not.toMatch(/building '/)
    expect(await readFile(counter, 'utf8')).toBe('image\n')
    expect(store.invalid(run2.machine, [...paths, source])).toEqual([])
  } finally {
    await new Promise(resolve => inputServer.server.close(resolve))
  }
})

// --- guarantees on the archive ----------------------------------------------------------------

const fixtureDir = join(process.cwd(), '__tests__/e2e/flakes/cache-image')
const BUILD_STEPS = ['cache-test-payload', 'cache-test-layout', 'cache-test-image.tar']

interface Built {
  ref: string
  counter: string
  key: string
  paths: string[]
  archive: string
  machine: Machine
}

async function buildAndSave(): Promise<Built> {
  const root = tempDir()
  const dir = join(root, 'flake')
  await cp(fixtureDir, dir, { recursive: true })
  const counter = join(root, 'builds')
  await writeFile(join(dir, 'salt'), randomUUID())
  await writeFile(join(dir, 'counter'), counter)
  giveToRunner(root)
  const ref = `path:${dir}`
  const run1 = await action(ref)
  expectGreen(run1)
  const key = baseOf(run1.outputs['cache-key'])
  const entry = cacheServer.entries().find(e => e.key === key)
  if (!entry) throw new Error(`no cache entry ${key}`)
  return { ref, counter, key, paths: closure(run1), archive: entry.file, machine: run1.machine }
}

const builds = (built: Built) => lines(readFileSync(built.counter, 'utf8'))

test('a NAR that differs from its registered hash: the whole archive is discarded, nothing left', async () => {
  const built = await buildAndSave()
  // Flip one byte of the payload inside the (valid) tar.zst: in whichever path holds it first.
  const tarball = execFileSync('zstd', ['-d', '--long=30', '-c', built.archive], {
    maxBuffer: 1 << 28
  })
  const at = tarball.indexOf('payload-line-10000')
  expect(at).toBeGreaterThan(0)
  tarball.write('X', at + 'payload-line-'.length)
  cacheServer.replaceArchive(
    built.key,
    execFileSync('zstd', ['-c'], { input: tarball, maxBuffer: 1 << 28 })
  )

  const run2 = await action(built.ref)
  expectGreen(run2)
  expect(run2.main.stdout).toMatch(
    /::warning::Store cache: restore failed, building without the cache: the archive did not import cleanly and was discarded: 1 path\(s\) differ from their registered NAR hash, e\.g\. \/nix\/store\/[0-9a-z]{32}-cache-test-/
  )
  expect(run2.outputs['cache-restored-key']).toBe('')
  // Not one path of the archive was kept: every step built again.
  expect(builds(built)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
  expect(stagingLeftovers(run2.machine, built.paths)).toEqual([])
})

test('a truncated archive is a miss with a warning, nothing left of it', async () => {
  const built = await buildAndSave()
  const whole = readFileSync(built.archive)
  cacheServer.replaceArchive(built.key, whole.subarray(0, Math.floor(whole.length / 2)))

  const run2 = await action(built.ref)
  expectGreen(run2)
  expect(run2.main.stdout).toContain(
    `::warning::Store cache: restore failed, building without the cache: the entry ${built.key} does not extract: `
  )
  expect(run2.outputs['cache-restored-key']).toBe('')
  expect(builds(built)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
  expect(stagingLeftovers(run2.machine, built.paths)).toEqual([])
})

test('paths already valid are left as they are; only the missing ones are moved in', async () => {
  const built = await buildAndSave()
  const image = built.paths.find(p => p.endsWith('-cache-test-image.tar'))
  if (!image) throw new Error('no image path in the closure')
  const kept = built.paths.filter(p => p !== image)
  const onDisk = (paths: string[]) =>
    paths.map(p => statSync(store.hostPath(built.machine, p), { bigint: true }))
  const before = onDisk(kept)

  // The same runner, the image's path gone (garbage-collected, say).
  store.delete(built.machine, [image])
  expect(store.invalid(built.machine, [image])).toEqual([image])
  const run2 = await action(built.ref, built.machine)
  expectGreen(run2)
  expect(run2.outputs['cache-hit']).toBe('true')
  expect(run2.main.stdout).toContain(`Importing 1 of ${built.paths.length} paths`)
  expect(store.invalid(built.machine, built.paths)).toEqual([])
  // The same inodes, not touched since: nothing was moved over or re-registered.
  const after = onDisk(kept)
  expect(after.map(s => [s.ino, s.ctimeNs])).toEqual(before.map(s => [s.ino, s.ctimeNs]))
  // Moved in by its owner, and left as read-only as Nix has it.
  const moved = statSync(store.hostPath(built.machine, image))
  expect(moved.mode & 0o222).toBe(0)
  expect(moved.uid).toBe(built.machine.uid)
  expect(builds(built)).toEqual(BUILD_STEPS)
  expect(stagingLeftovers(built.machine, built.paths)).toEqual([])
})
