// The install-nix stage end to end: the bundled action, as the unprivileged runner user on a
// runner machine with no /nix and no nix (scripts/runner-machine.sh, shape `none`), installs a
// Nix release tarball (built from the runner OS's Nix by scripts/make-nix-tarball.sh, served on
// 127.0.0.1), making /nix through sudo, then builds, pushes and caches with the Nix it installed.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import {
  createReadStream,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync
} from 'node:fs'
import { readlink, rm } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { basename, join } from 'node:path'
import type { RunOptions, RunResult } from '../../scripts/run-action.mjs'
import { userTempDir } from '../../scripts/runner-machine.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { cacheEnv, startCacheServer } from '../../scripts/cache-server.mjs'
import { action, freshMachine, inMachine } from './action.js'
import { getManifest, getRawManifest } from './registry.js'
import { baseOf } from './cache-keys.js'

const repoRoot = process.cwd()
const PROFILE_BIN = '/nix/var/nix/profiles/default/bin'
const TOKEN = 'ghs_e2eInstallNixToken0123456789'
const temps: string[] = []

const registry = (): string => {
  const value = process.env.REGISTRY
  if (!value) throw new Error('REGISTRY is not set: the e2e global setup did not run')
  return value
}

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join('/tmp', prefix))
  temps.push(dir)
  return dir
}

// --- the tarball, served on loopback ------------------------------------------------------

let tarball = ''
let version = ''
let server: Server
let baseUrl = ''
/** Paths asked of the server, in order. */
const requests: string[] = []
/** Paths whose body the test replaces. */
const overrides = new Map<string, string | Buffer>()

beforeAll(async () => {
  const out = tempDir('nca-tarball-')
  // Made from the Nix of the runners' OS (2.26 on Debian 13), whose libraries the installed
  // binary links: on a runner machine of that OS that has it.
  tarball = inMachine(
    freshMachine('single-user'),
    [join(repoRoot, 'scripts', 'make-nix-tarball.sh'), out],
    {
      asRootUser: true
    }
  ).trim()
  version = /^nix-(\d+\.\d+\.\d+)-/.exec(basename(tarball))?.[1] ?? ''
  server = createServer((request, response) => {
    const path = decodeURIComponent(new URL(request.url ?? '/', 'http://x').pathname)
    requests.push(path)
    const override = overrides.get(path)
    if (override !== undefined) return void response.end(override)
    const file = join(out, basename(path))
    if (!existsSync(file)) {
      response.statusCode = 404
      return void response.end('not found')
    }
    response.setHeader('content-length', statSync(file).size)
    createReadStream(file).pipe(response)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  await new Promise(resolve => server.close(resolve))
  for (const dir of temps) {
    execFileSync('chmod', ['-R', 'u+w', dir])
    await rm(dir, { recursive: true, force: true })
  }
})

const tarballUrl = (): string => `${baseUrl}/${basename(tarball)}`

// --- running the action on a runner machine without Nix ---------------------------------------

interface PrivateRun {
  result: RunResult
  /** What the action printed, for assertion messages. */
  log: string
}

/** The bundled action as the runner user on `machine` (shape `none` unless it says otherwise). */
async function runOn(
  machine: Machine,
  inputs: Record<string, string>,
  options: Partial<RunOptions> = {}
): Promise<PrivateRun> {
  const result = await action(
    { 'install-url': tarballUrl(), 'nix-version': version, ...inputs },
    {
      cwd: repoRoot,
      ...options,
      machine,
      env: {
        // This machine's Nix was built with /usr/libexec/nix/build-remote as its build hook,
        // which the machine has not: use the copy inside the installed Nix.
        NIX_CONFIG: `${process.env.NIX_CONFIG ?? ''}\nbuild-hook = ${PROFILE_BIN}/../libexec/nix/build-remote`,
        ...options.env
      }
    }
  )
  const log = [result.main.stdout, result.main.stderr, result.post?.stdout ?? ''].join('\n')
  return { result, log }
}

/** Everything under a machine's /nix, as paths relative to it. */
function nixContents(nixDir: string): string[] {
  return readdirSync(nixDir, { recursive: true }).map(String).sort()
}

// --- tests -------------------------------------------------------------------------------

describe('on a runner without /nix', () => {
  let machine: Machine
  let nixDir = ''
  let first: PrivateRun

  beforeAll(async () => {
    machine = freshMachine('none')
    nixDir = machine.nixDir
    expect(existsSync(nixDir)).toBe(false)
    first = await runOn(machine, {
      flake: './examples/hello',
      registry: registry(),
      image: 'e2e/installed-nix',
      tags: 'v1',
      'github-token': TOKEN,
      'nix-conf': 'cores = 1'
    })
  })

  test('installs Nix from the tarball, then builds and pushes with it', async () => {
    const { result, log } = first
    expect({ exit: result.main.exitCode, log }).toMatchObject({ exit: 0 })
    expect(result.outputs['nix-installed']).toBe('true')
    expect(result.outputs['nix-version']).toBe(version)
    expect(result.summary).toMatch(
      new RegExp(`\\| Nix \\| .* done \\| Nix ${version} \\(installed\\)`)
    )

    // The build ran the installed Nix (the only one in this namespace) and wrote to its store.
    expect(result.main.stdout).toContain(
      `[command]${PROFILE_BIN}/nix --extra-experimental-features`
    )
    const storePath = result.outputs['store-path'] ?? ''
    expect(existsSync(join(nixDir, 'store', basename(storePath)))).toBe(true)
    const manifest = await getManifest(registry(), 'e2e/installed-nix', 'v1')
    expect(manifest.status).toBe(200)
    expect(manifest.digest).toBe(result.outputs.digest)

    // The layout a single-user install leaves: store paths registered, the default profile.
    const profile = await readlink(join(nixDir, 'var/nix/profiles/default'))
    expect(profile).toBe('default-1-link')
    expect(await readlink(join(nixDir, 'var/nix/profiles/default-1-link'))).toMatch(
      new RegExp(`^/nix/store/[a-z0-9]{32}-nix-${version.replace(/\./g, '\\.')}$`)
    )
    expect(existsSync(join(nixDir, 'var/nix/db/db.sqlite'))).toBe(true)
    expect(nixContents(nixDir).filter(p => p.includes('.nix-container-action-'))).toEqual([])
    expect(result.paths).toContain(PROFILE_BIN)
  })

  test('/nix, made through sudo, is owned by the runner; the store paths it placed are read-only', () => {
    expect(first.result.main.stdout).toContain('Creating /nix with sudo, owned by this user')
    expect(statSync(nixDir).uid).toBe(machine.uid)
    const nixPath = readdirSync(join(nixDir, 'store')).find(name =>
      name.endsWith(`-nix-${version}`)
    )
    const placed = statSync(join(nixDir, 'store', nixPath ?? 'missing'))
    expect(placed.isDirectory()).toBe(true)
    expect([placed.uid, placed.mode & 0o222]).toEqual([machine.uid, 0])
  })

  test('writes the job nix.conf with the token, masked, and never prints it', () => {
    const { result } = first
    const file = join(result.tempDir, 'runner-temp', 'nix-container-action', 'nix.conf')
    const text = readFileSync(file, 'utf8')
    expect(text).toContain(`access-tokens = github.com=${TOKEN}`)
    expect(text).toMatch(/max-jobs = auto\n(?:.*\n)*cores = 1\n$/)
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(result.env.NIX_USER_CONF_FILES?.split(':')[0]).toBe(file)
    expect(result.masks).toContain(TOKEN)
    const printed = `${result.main.stdout}\n${result.main.stderr}`
      .split('\n')
      .filter(line => !line.startsWith('::add-mask::'))
      .join('\n')
    expect(printed).not.toContain(TOKEN)
  })

  test('a later step finds the installed Nix on PATH and does not reinstall', async () => {
    const before = nixContents(nixDir)
    const downloads = requests.length
    const { result, log } = await runOn(
      machine,
      { build: 'false', push: 'false' },
      { env: { PATH: `${[...first.result.paths].reverse().join(':')}:/usr/bin:/bin` } }
    )
    expect({ exit: result.main.exitCode, log }).toMatchObject({ exit: 0 })
    expect(result.outputs['nix-installed']).toBe('false')
    expect(result.outputs['nix-version']).toBe(version)
    expect(result.summary).toContain('(found on PATH)')
    expect(requests.length).toBe(downloads)
    expect(nixContents(nixDir).filter(p => p.startsWith('store/'))).toEqual(
      before.filter(p => p.startsWith('store/'))
    )
  })

  test('with the Nix it installed: both systems pushed with skopeo as one index, with SBOMs', async () => {
    const { result, log } = await runOn(machine, {
      flake: './__tests__/e2e/flakes/multi',
      systems: 'x86_64-linux, aarch64-linux',
      registry: registry(),
      image: 'e2e/installed-nix',
      tags: 'systems',
      'push-tool': 'skopeo',
      load: 'false'
    })
    expect({ exit: result.main.exitCode, log }).toMatchObject({ exit: 0 })
    const images = JSON.parse(result.outputs.images ?? '[]') as { platform: string; sbom: string }[]
    expect(images.map(i => i.platform).sort()).toEqual(['linux/amd64', 'linux/arm64'])
    expect(images.every(i => existsSync(i.sbom))).toBe(true)
    const index = await getRawManifest(registry(), 'e2e/installed-nix', 'systems')
    expect([index.status, index.digest]).toEqual([200, result.outputs.digest])
  })

  test('a job without it on PATH adopts the Nix in the default profile', async () => {
    const { result, log } = await runOn(machine, { build: 'false', push: 'false' })
    expect({ exit: result.main.exitCode, log }).toMatchObject({ exit: 0 })
    expect(result.outputs['nix-installed']).toBe('false')
    expect(result.summary).toContain('(adopted)')
    expect(result.paths).toEqual([PROFILE_BIN])
  })
})

describe('refused downloads leave no /nix', () => {
  test.each([
    [
      'a .sha256 that does not match',
      () => overrides.set(`/${basename(tarball)}.sha256`, `${'0'.repeat(64)}\n`),
      () => ({}),
      /has SHA-256 [0-9a-f]{64}, but .*\.sha256 says 0{64}: it is corrupt, truncated or not that release; nothing was installed/
    ],
    [
      'a truncated tarball',
      () => overrides.set(`/${basename(tarball)}`, readFileSync(tarball).subarray(0, 100_000)),
      () => ({}),
      /has SHA-256 .* it is corrupt, truncated or not that release/
    ],
    [
      'the pinned checksum of the default version',
      () => undefined,
      () => ({ 'nix-version': '2.35.2' }),
      /but the checksum pinned for Nix 2\.35\.2 \([a-z0-9_]+-linux\) says [0-9a-f]{64}/
    ],
    [
      'a missing tarball',
      () => undefined,
      () => ({ 'install-url': `${baseUrl}/missing/nix-9.9.9-x86_64-linux.tar.xz` }),
      /could not download the checksum published beside the tarball from .*missing.*404/
    ]
  ])('%s', async (_name, arrange, inputs, message) => {
    arrange()
    try {
      const machine = freshMachine('none')
      const { result } = await runOn(machine, { build: 'false', push: 'false', ...inputs() })
      const { exitCode, stdout, stderr } = result.main
      expect({ exitCode, stdout, stderr }).toMatchObject({
        exitCode: 1,
        stdout: expect.stringMatching(message)
      })
      expect(result.outputs['nix-installed']).toBeUndefined()
      expect(existsSync(machine.nixDir)).toBe(false)
      expect(readdirSync(join(result.tempDir, 'tool-cache'))).toEqual([])
    } finally {
      overrides.clear()
    }
  })
})

test('install-nix: false without a Nix fails with how to fix it', async () => {
  const machine = freshMachine('none')
  const { result } = await runOn(machine, {
    'install-nix': 'false',
    build: 'false',
    push: 'false'
  })
  expect(result.main.exitCode).toBe(1)
  expect(result.main.stdout).toMatch(/::error::Nix is not installed and install-nix is false: set/)
  expect(existsSync(machine.nixDir)).toBe(false)
})

test('a second job on the same runner installs from the tool cache, without downloading', async () => {
  const toolCache = userTempDir('nca-tool-cache-')
  temps.push(toolCache)
  const cold = await runOn(
    freshMachine('none'),
    { build: 'false', push: 'false' },
    { env: { RUNNER_TOOL_CACHE: toolCache } }
  )
  expect({ exit: cold.result.main.exitCode, log: cold.log }).toMatchObject({ exit: 0 })
  const downloads = requests.length
  const warm = await runOn(
    freshMachine('none'),
    { build: 'false', push: 'false' },
    { env: { RUNNER_TOOL_CACHE: toolCache } }
  )
  expect({ exit: warm.result.main.exitCode, log: warm.log }).toMatchObject({ exit: 0 })
  expect(warm.result.outputs['nix-installed']).toBe('true')
  expect(warm.result.main.stdout).toContain(`Nix ${version} (`)
  expect(warm.result.main.stdout).toMatch(/is in the tool cache: /)
  expect(requests.length).toBe(downloads)
})

test('the store cache on runners where the action installs Nix: run 2 restores and builds nothing', async () => {
  const cache = await startCacheServer()
  try {
    const inputs = { flake: './examples/hello', push: 'false', load: 'false' }
    const env = cacheEnv(cache)
    const run1 = await runOn(freshMachine('none'), inputs, { env })
    expect({
      exit: [run1.result.main.exitCode, run1.result.post?.exitCode],
      log: run1.log
    }).toMatchObject({
      exit: [0, 0]
    })
    const key = baseOf(run1.result.outputs['cache-key'])
    expect(run1.result.post?.stdout).toContain(`Store cache save: saved base ${key}`)

    const machine = freshMachine('none')
    const run2 = await runOn(machine, inputs, { env })
    expect({ exit: run2.result.main.exitCode, log: run2.log }).toMatchObject({ exit: 0 })
    expect(run2.result.outputs).toMatchObject({ 'nix-installed': 'true', 'cache-hit': 'true' })
    // The fast path, on the store this run's install gave the runner.
    expect(run2.result.main.stdout).not.toContain('Paths will be imported through nix copy')
    expect(run2.result.main.stdout).not.toMatch(/building '/)
    const storePath = run2.result.outputs['store-path'] ?? ''
    expect(inMachine(machine, [`${PROFILE_BIN}/nix-store`, '--check-validity', storePath])).toBe('')
  } finally {
    await cache.close()
  }
})
