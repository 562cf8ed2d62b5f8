// The store cache's guarantees, through the bundled action (dist/) with real Nix and the real
// @actions/cache client against the v1 cache server on 127.0.0.1:
// - a flake input (a locked tarball served here) is cached with the closure, so that an exact
//   hit asks the input's server for nothing, even with Nix's caches under HOME gone;
// - an archive whose NAR no longer matches its hash, or a truncated one, leaves nothing behind;
// - paths already valid are left as they are.
// Each test builds flakes of its own (a fresh salt), so it owns the store paths it deletes.
import { afterAll, beforeAll, expect, test } from '@jest/globals'
import { execFile, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runAction } from '../../scripts/run-action.mjs'
import type { RunResult } from '../../scripts/run-action.mjs'
import { cacheEnv, startCacheServer } from '../../scripts/cache-server.mjs'
import type { CacheServer } from '../../scripts/cache-server.mjs'

const STORE = '/nix/store'
const tempDirs: string[] = []
const ownedPaths = new Set<string>()
let cacheServer: CacheServer

beforeAll(async () => {
  cacheServer = await startCacheServer()
})

afterAll(async () => {
  await cacheServer.close()
  const valid = [...ownedPaths].filter(p => invalid([p]).length === 0)
  if (valid.length > 0) execFileSync('nix-store', ['--delete', ...valid], { stdio: 'pipe' })
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

async function tempDir(): Promise<string> {
  const dir = await mkdtemp('/tmp/nca-cache-inputs-')
  tempDirs.push(dir)
  return dir
}

function lines(text: string): string[] {
  return text.split('\n').filter(Boolean)
}

function invalid(paths: string[]): string[] {
  return lines(
    execFileSync('nix-store', ['--check-validity', '--print-invalid', ...paths], {
      encoding: 'utf8'
    })
  )
}

function closure(drvPath: string): string[] {
  return lines(
    execFileSync('nix-store', ['-qR', '--include-outputs', drvPath], { encoding: 'utf8' })
  )
}

function deleteFromStore(paths: string[]): void {
  execFileSync('nix-store', ['--delete', ...paths], { stdio: 'pipe' })
  expect(invalid(paths)).toEqual(paths)
}

function expectGreen(result: RunResult): void {
  const log = [result.main.stdout, result.main.stderr, result.post?.stdout].join('\n')
  expect({ main: result.main.exitCode, post: result.post?.exitCode, log }).toMatchObject({
    main: 0,
    post: 0
  })
}

async function action(ref: string, env: Record<string, string> = {}): Promise<RunResult> {
  const result = await runAction({
    inputs: { flake: ref, load: 'false', push: 'false' },
    env: { ...cacheEnv(cacheServer), ...env },
    timeoutMs: 240_000
  })
  tempDirs.push(result.tempDir)
  const drv = result.state['built-drv-path']
  if (drv) for (const path of closure(drv)) ownedPaths.add(path)
  return result
}

/** Staging directories in the store still holding an archive that lists one of `paths`. */
function stagingLeftovers(paths: string[]): string[] {
  return readdirSync(STORE)
    .filter(name => name.startsWith('.nca-staging-'))
    .filter(name => {
      const manifest = join(STORE, name, 'nix-container-action-store-v2/nix-container-action.json')
      const text = existsSync(manifest) ? readFileSync(manifest, 'utf8') : ''
      return paths.some(p => text.includes(p))
    })
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
async function flakeWithInput(root: string, url: string, counter: string): Promise<string> {
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
  // Not execFileSync: the input's server answers from this process's event loop.
  await promisify(execFile)('nix', ['flake', 'lock', ref])
  return ref
}

test('an exact hit needs nothing from the network: the flake input comes from the cache', async () => {
  const root = await tempDir()
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
    // Nix's caches (fetcher cache, tarball cache, eval cache) in a HOME of this test's own.
    const home = join(root, 'home')
    const env = { HOME: home, XDG_CACHE_HOME: join(home, '.cache') }
    const counter = join(root, 'builds')
    const ref = await flakeWithInput(root, inputServer.url, counter)

    // Run 1: a miss; the build fetches the input; the post step saves closure + input.
    const run1 = await action(ref, env)
    expectGreen(run1)
    expect(run1.outputs['cache-hit']).toBe('false')
    expect(run1.outputs['cache-key']).toMatch(/\/lock-[0-9a-f]{16}\/source-/)
    expect(inputServer.requests.length).toBeGreaterThan(0)
    const archived = JSON.parse(
      execFileSync('nix', ['flake', 'archive', '--json', '--dry-run', ref], { encoding: 'utf8' })
    ) as { inputs: { dep: { path: string } } }
    const source = archived.inputs.dep.path
    ownedPaths.add(source)
    const paths = closure(run1.state['built-drv-path'] ?? '')
    expect(run1.post?.stdout).toContain(
      `Saving ${paths.length + 1} paths (${paths.length + 1} not in the restored cache)`
    )

    // A fresh runner: none of the paths, not the input's source, no caches; the input's
    // server down.
    deleteFromStore([...paths, source])
    await rm(home, { recursive: true, force: true })
    inputServer.failing = true
    inputServer.requests.length = 0

    const run2 = await action(ref, env)
    expectGreen(run2)
    expect(run2.outputs['cache-hit']).toBe('true')
    expect(run2.main.stdout).toContain(`Importing ${paths.length + 1} of ${paths.length + 1} paths`)
    expect(inputServer.requests).toEqual([])
    expect(run2.main.stdout).not.toMatch(/building '/)
    expect(await readFile(counter, 'utf8')).toBe('image\n')
    expect(invalid([...paths, source])).toEqual([])
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
}

async function buildAndSave(): Promise<Built> {
  const root = await tempDir()
  const dir = join(root, 'flake')
  await cp(fixtureDir, dir, { recursive: true })
  const counter = join(root, 'builds')
  await writeFile(join(dir, 'salt'), randomUUID())
  await writeFile(join(dir, 'counter'), counter)
  const ref = `path:${dir}`
  const run1 = await action(ref)
  expectGreen(run1)
  const key = run1.outputs['cache-key'] ?? ''
  const entry = cacheServer.entries().find(e => e.key === key)
  if (!entry) throw new Error(`no cache entry ${key}`)
  const paths = closure(run1.state['built-drv-path'] ?? '')
  return { ref, counter, key, paths, archive: entry.file }
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

  deleteFromStore(built.paths)
  const run2 = await action(built.ref)
  expectGreen(run2)
  expect(run2.main.stdout).toMatch(
    /::warning::Store cache: restore failed, building without the cache: the archive did not import cleanly and was discarded: 1 path\(s\) differ from their registered NAR hash, e\.g\. \/nix\/store\/[0-9a-z]{32}-cache-test-/
  )
  expect(run2.outputs['cache-restored-key']).toBe('')
  // Not one path of the archive was kept: every step built again.
  expect(builds(built)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
  expect(stagingLeftovers(built.paths)).toEqual([])
})

test('a truncated archive is a miss with a warning, nothing left of it', async () => {
  const built = await buildAndSave()
  const whole = readFileSync(built.archive)
  cacheServer.replaceArchive(built.key, whole.subarray(0, Math.floor(whole.length / 2)))

  deleteFromStore(built.paths)
  const run2 = await action(built.ref)
  expectGreen(run2)
  expect(run2.main.stdout).toMatch(/::warning::Failed to restore: /)
  expect(run2.outputs['cache-restored-key']).toBe('')
  expect(builds(built)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
  expect(stagingLeftovers(built.paths)).toEqual([])
})

test('paths already valid are left as they are; only the missing ones are moved in', async () => {
  const built = await buildAndSave()
  const image = built.paths.find(p => p.endsWith('-cache-test-image.tar'))
  if (!image) throw new Error('no image path in the closure')
  const kept = built.paths.filter(p => p !== image)
  const before = kept.map(p => statSync(p, { bigint: true }))

  deleteFromStore([image])
  const run2 = await action(built.ref)
  expectGreen(run2)
  expect(run2.outputs['cache-hit']).toBe('true')
  expect(run2.main.stdout).toContain(`Importing 1 of ${built.paths.length} paths`)
  expect(invalid(built.paths)).toEqual([])
  // The same inodes, not touched since: nothing was moved over or re-registered.
  const after = kept.map(p => statSync(p, { bigint: true }))
  expect(after.map(s => [s.ino, s.ctimeNs])).toEqual(before.map(s => [s.ino, s.ctimeNs]))
  expect(builds(built)).toEqual(BUILD_STEPS)
  expect(stagingLeftovers(built.paths)).toEqual([])
})
