// binary-cache end to end, as the runner user on fresh runner machines of both Nix shapes
// (single-user, daemon): an HTTP binary cache that takes PUT (Debian's lighttpd + mod_webdav on
// 127.0.0.1, scripts/binary-cache-server.mjs) and a file:// one. Run 1 builds, pushes the image
// and then its build closure, signed; run 2 on a fresh machine with `cache: false` substitutes
// everything from the cache and builds nothing (the flake's builders count their runs). A wrong
// public key makes Nix refuse the paths (it says so, and builds); an unreachable cache warns
// and the image still ships; s3:// (not compiled into Debian's Nix) reaches Nix's command line.
//
// Substitution is what the action adds: the machine's own configuration has no substituter
// (`substituters =` in a user nix.conf, read before the job's, which appends with extra-).
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startBinaryCacheServer } from '../../scripts/binary-cache-server.mjs'
import type { BinaryCacheServer } from '../../scripts/binary-cache-server.mjs'
import { userTempDir } from '../../scripts/runner-machine.mjs'
import type { Machine, MachineOs, MachineShape } from '../../scripts/runner-machine.mjs'
import { action as runAction, freshMachine, registry, store } from './action.js'
import {
  BUILD_STEPS,
  builds,
  expectGreen,
  makeFixture,
  SERVICES,
  TOKEN
} from './store-cache-kit.js'
import type { Fixture, Run } from './store-cache-kit.js'

// `nix key generate-secret --key-name test-1` / `convert-secret-to-public`, and another key.
const SECRET =
  'test-1:il170qcP8MOlKs87KIrRIryJQIG1BIKxgaSDxhl/T5oVWa8dx0Gm9YwgZYf1Gl8GtvpUSymylbqPkMSjAUPsZg=='
const PUBLIC = 'test-1:FVmvHcdBpvWMIGWH9RpfBrb6VEspspW6j5DEowFD7GY='
const OTHER_PUBLIC = 'other-1:Bs0dT3DLkSOz3n0dN5rxcTtk0xxb8TW7VQ7dZb6wHkA='

let server: BinaryCacheServer
let confDir: string
/** The caches' and the configuration's folders, removed after the file's tests. */
const serverDirs: string[] = []

function serverDir(): string {
  const dir = mkdtempSync('/tmp/nca-binary-cache-')
  serverDirs.push(dir)
  return dir
}

beforeAll(async () => {
  server = await startBinaryCacheServer(serverDir())
  // The machine's own nix.conf: no substituter (nothing reaches the network).
  confDir = userTempDir('nca-bc-conf-')
  serverDirs.push(confDir)
  writeFileSync(join(confDir, 'nix.conf'), 'substituters =\n')
})

afterAll(async () => {
  await server.stop()
  for (const dir of serverDirs) rmSync(dir, { recursive: true, force: true })
})

/** The e2e NIX_CONFIG without its `substituters =`, which would clear the job's own. */
function env(): Record<string, string> {
  const config = (process.env.NIX_CONFIG ?? '')
    .split('\n')
    .filter(line => !/^\s*substituters\s*=/.test(line))
    .join('\n')
  return { NIX_CONFIG: config, NIX_USER_CONF_FILES: join(confDir, 'nix.conf') }
}

/** One job of the fixture's image, pushed with skopeo (no docker load), with these inputs. */
async function job(
  fixture: Fixture,
  machine: Machine,
  inputs: Record<string, string>,
  watch: string[] = [],
  extraEnv: Record<string, string> = {}
): Promise<Run> {
  const result = await runAction(
    {
      flake: fixture.ref,
      cache: 'false',
      load: 'false',
      'push-tool': 'skopeo',
      image: `${registry()}/binary-cache-test`,
      tags: `t${Date.now()}`,
      ...inputs
    },
    { env: { ...env(), ...extraEnv }, machine, watch }
  )
  return { ...result, machine }
}

function logOf(run: Run): string {
  return [run.main.stdout, run.main.stderr, run.post?.stdout, run.post?.stderr].join('\n')
}

interface Pushed {
  paths: number
  bytes: number
  closure: number
  failed?: boolean
}

const pushed = (run: Run): Pushed => JSON.parse(run.outputs['binary-cache-pushed'] ?? '') as Pushed

/** The narinfo of a store path in a cache folder, or null. */
function narinfo(root: string, storePath: string): string | null {
  const hash = storePath.replace('/nix/store/', '').slice(0, 32)
  const file = join(root, `${hash}.narinfo`)
  return existsSync(file) ? readFileSync(file, 'utf8') : null
}

function machineWith(shape: MachineShape, daemonConf: string[] = []): Machine {
  if (daemonConf.length > 0) process.env.NCA_DAEMON_NIX_CONF = daemonConf.join('\n')
  try {
    return freshMachine(shape)
  } finally {
    delete process.env.NCA_DAEMON_NIX_CONF
  }
}

/** Run 1 builds and pushes; its closure, every path signed in the cache. */
async function firstRun(
  fixture: Fixture,
  url: string,
  root: string,
  shape: MachineShape,
  os?: MachineOs
) {
  const run1 = await job(fixture, freshMachine(shape, os), {
    'binary-cache': url,
    'binary-cache-secret-key': SECRET
  })
  expectGreen(run1)
  expect(builds(fixture)).toEqual(BUILD_STEPS)
  const closure = store.closure(run1.machine, run1.state['built-drv-path'] ?? '')
  expect(pushed(run1)).toMatchObject({ paths: closure.length, closure: closure.length })
  expect(pushed(run1).bytes).toBeGreaterThan(20000 * 10)
  for (const path of closure) expect(narinfo(root, path)).toMatch(/^Sig: test-1:/m)
  // The image shipped first: the push stage is done before the binary cache's.
  expect(run1.outputs.digest).toMatch(/^sha256:/)
  const summary = run1.summary
  expect(summary.indexOf('| Push |')).toBeGreaterThan(0)
  expect(summary.indexOf('| Binary cache push |')).toBeGreaterThan(summary.indexOf('| Push |'))
  // The key never reaches the log (but for the runner's mask commands, which it never
  // shows), the outputs or the summary; its file is gone.
  const shown = logOf(run1)
    .split('\n')
    .filter(line => !line.startsWith('::add-mask::'))
    .join('\n')
  expect(run1.masks).toContain(SECRET)
  expect(shown + JSON.stringify(run1.outputs) + summary).not.toContain(SECRET.slice(7))
  expect(readdirSync(run1.tempDir, { recursive: true }).join('\n')).not.toMatch(/binary-cache-key/)
  return { run1, closure }
}

describe.each<MachineShape>(['single-user', 'daemon'])('an HTTP binary cache (%s)', shape => {
  test('run 1 pushes the closure; run 2 on a fresh runner substitutes it all and builds nothing', async () => {
    const fixture = await makeFixture()
    const { closure } = await firstRun(fixture, server.url, server.root, shape)

    const run2 = await job(fixture, freshMachine(shape), {
      'binary-cache': server.url,
      'binary-cache-secret-key': SECRET
    })
    expectGreen(run2)
    expect(builds(fixture)).toEqual(BUILD_STEPS)
    // The image came from the cache (Nix fetches what it needs: the image, not the build-time
    // paths it would have needed to build it), and nothing needed sending back.
    const image = run2.outputs['store-path'] ?? ''
    expect(closure).toContain(image)
    expect(store.invalid(run2.machine, [image])).toEqual([])
    expect(logOf(run2)).toMatch(
      /copying path '[^']*-cache-test-image\.tar' from 'http:\/\/127\.0\.0\.1/
    )
    expect(pushed(run2)).toMatchObject({ paths: 0, bytes: 0 })
    expect(run2.summary).toMatch(/Binary cache push \| ✅ done \| 0 of \d+ paths sent/)
  })
})

test('Nix 2.8 (Debian 12, an older self-hosted runner): pushed, then substituted', async () => {
  const fixture = await makeFixture()
  await firstRun(fixture, server.url, server.root, 'single-user', 'debian12')
  const run2 = await job(fixture, freshMachine('single-user', 'debian12'), {
    'binary-cache': server.url,
    'binary-cache-public-key': PUBLIC
  })
  expectGreen(run2)
  expect(builds(fixture)).toEqual(BUILD_STEPS)
  expect(store.invalid(run2.machine, [run2.outputs['store-path'] ?? ''])).toEqual([])
})

test('a file:// cache: run 2 substitutes everything (single-user)', async () => {
  const dir = userTempDir('nca-bc-file-')
  serverDirs.push(dir)
  const fixture = await makeFixture()
  await firstRun(fixture, `file://${dir}`, dir, 'single-user')
  const run2 = await job(fixture, freshMachine('single-user'), {
    'binary-cache': `file://${dir}`,
    'binary-cache-public-key': PUBLIC
  })
  expectGreen(run2)
  expect(builds(fixture)).toEqual(BUILD_STEPS)
  expect(run2.summary).toMatch(/Binary cache push \| ⏭️ skipped \| no binary-cache-secret-key/)
  expect(run2.outputs['binary-cache-pushed']).toBeUndefined()
})

test('with the store cache on too, it restores first: the binary cache is not asked for the image', async () => {
  const service = await SERVICES.v1()
  try {
    const fixture = await makeFixture()
    const inputs = { cache: 'true', 'binary-cache': server.url, 'binary-cache-secret-key': SECRET }
    const run1 = await job(fixture, freshMachine('single-user'), inputs, [], service.env(TOKEN))
    expectGreen(run1)
    expect(pushed(run1).paths).toBeGreaterThan(0)
    expect(run1.post?.stdout).toMatch(/Store cache save: saved/)
    const run2 = await job(fixture, freshMachine('single-user'), inputs, [], service.env(TOKEN))
    expectGreen(run2)
    expect(run2.outputs['cache-hit']).toBe('true')
    expect(builds(fixture)).toEqual(BUILD_STEPS)
    expect(logOf(run2)).not.toMatch(/copying path '[^']*' from 'http/)
    expect(pushed(run2)).toMatchObject({ paths: 0 })
  } finally {
    await service.close()
  }
})

test('a wrong public key: Nix refuses the paths and says why, and the image is built here', async () => {
  const fixture = await makeFixture()
  await firstRun(fixture, server.url, server.root, 'single-user')
  const run2 = await job(fixture, freshMachine('single-user'), {
    'binary-cache': server.url,
    'binary-cache-public-key': OTHER_PUBLIC
  })
  expectGreen(run2)
  expect(builds(fixture)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
  expect(logOf(run2)).toMatch(/not signed by any of the keys in 'trusted-public-keys'/)
})

test('a daemon that does not trust the runner: a warning says what its nix.conf needs, and it builds', async () => {
  const fixture = await makeFixture()
  await firstRun(fixture, server.url, server.root, 'single-user')
  const machine = machineWith('daemon', ['trusted-users = root'])
  const run2 = await job(fixture, machine, {
    'binary-cache': server.url,
    'binary-cache-public-key': PUBLIC
  })
  expectGreen(run2)
  expect(run2.main.stdout).toMatch(
    /::warning::binary-cache: the Nix daemon does not trust this user.*trusted-substituters = http:\/\/127\.0\.0\.1/
  )
  expect(builds(fixture)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
})

test('a daemon that lists the cache in trusted-substituters substitutes for an untrusted runner', async () => {
  const fixture = await makeFixture()
  await firstRun(fixture, server.url, server.root, 'single-user')
  const machine = machineWith('daemon', [
    'trusted-users = root',
    `trusted-substituters = ${server.url}`,
    `extra-trusted-public-keys = ${PUBLIC}`
  ])
  const run2 = await job(fixture, machine, {
    'binary-cache': server.url,
    'binary-cache-public-key': PUBLIC
  })
  expectGreen(run2)
  expect(builds(fixture)).toEqual(BUILD_STEPS)
})

test('an unreachable cache warns, and the image still ships', async () => {
  const fixture = await makeFixture()
  // A port nothing listens on: the server's, once stopped.
  const gone = await startBinaryCacheServer(serverDir())
  await gone.stop()
  const run = await job(fixture, freshMachine('single-user'), {
    'binary-cache': gone.url,
    'binary-cache-secret-key': SECRET
  })
  expectGreen(run)
  expect(run.outputs.digest).toMatch(/^sha256:/)
  expect(builds(fixture)).toEqual(BUILD_STEPS)
  expect(run.main.stdout).toMatch(
    /::warning::Binary cache push failed, the job goes on \(the image came first\)/
  )
  expect(pushed(run)).toMatchObject({ paths: 0, failed: true })
  expect(run.summary).toMatch(/Binary cache push \| ✅ done \| failed \(warning\)/)
})

test('s3:// reaches Nix as given (Debian has no S3 in Nix): the push warns, the image ships', async () => {
  const fixture = await makeFixture()
  const url = 's3://nca-test-bucket?region=eu-west-1&compression=zstd'
  const run = await job(
    fixture,
    freshMachine('single-user'),
    { 'binary-cache': url, 'binary-cache-secret-key': SECRET },
    ['nix']
  )
  expectGreen(run)
  const copy = run.commands.find(argv => argv[0] === 'nix' && argv.includes('copy'))
  const to = copy?.[copy.indexOf('--to') + 1] ?? ''
  expect(to).toMatch(
    /^s3:\/\/nca-test-bucket\?region=eu-west-1&compression=zstd&secret-key=\/.*binary-cache-key-\d+$/
  )
  expect(run.main.stdout).toMatch(/::warning::Binary cache push failed.*s3/)
  // Nix reads the key from the file: no command the step ran holds it.
  expect(JSON.stringify(run.commands)).not.toContain(SECRET.slice(7))
})
