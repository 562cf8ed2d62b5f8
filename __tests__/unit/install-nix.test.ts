// The Nix stage's decisions (find/skip/install, URL, checksum choice, conf text, /nix plan),
// table-driven, and the stage itself with its commands mocked.
import { afterAll, beforeEach, describe, expect, jest, test } from '@jest/globals'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as core from '../../__fixtures__/core.js'
import * as exec from '../../__fixtures__/exec.js'

import type { ChecksumSource, NixSystem } from '../../src/nix/release.js'
import type { NixDirPlan, NixDirState } from '../../src/nix/single-user.js'
import type { ExistingNix, NixSource, SetupPlan } from '../../src/stages/install-nix.js'

const { CommandError } = await import('../../src/exec.js')
const exportVariable = jest.fn<(name: string, value: string) => void>()
const which = jest.fn<(tool: string, check?: boolean) => Promise<string>>()
jest.unstable_mockModule('../../src/core.js', () => ({ ...core, exportVariable }))
jest.unstable_mockModule('@actions/io', () => ({ which }))
jest.unstable_mockModule('../../src/exec.js', () => ({ ...exec, CommandError }))

const { describeSource, planSetup, setupNix } = await import('../../src/stages/install-nix.js')
const release = await import('../../src/nix/release.js')
const conf = await import('../../src/nix/conf.js')
const { planNixDir } = await import('../../src/nix/single-user.js')

const X86 = 'x86_64-linux'
const PINNED_X86 = '0c3960a9792331a22081c3c7a5d8465db9b17c50b3acdf18587fa4c6f2cb1158'
const PINNED_ARM = '4d0302a2910f5eec1c33b8deef634f04899a75737e7001ec49908d003ae5efda'

describe('planSetup: find first, install only when there is no Nix and it is allowed', () => {
  const onPath = { nix: '/usr/bin/nix', version: '2.8.0', onPath: true }
  const offPath = { nix: '/nix/var/nix/profiles/default/bin/nix', version: '2.35.2', onPath: false }
  test.each<[string, ExistingNix | null, boolean, SetupPlan['action']]>([
    ['a Nix on PATH is used', onPath, true, 'use'],
    ['a Nix on PATH is used even with install-nix: false', onPath, false, 'use'],
    ['an off-PATH Nix is adopted, not reinstalled', offPath, true, 'use'],
    ['no Nix: install', null, true, 'install'],
    ['no Nix and install-nix: false: fail', null, false, 'fail']
  ])('%s', (_name, existing, installNix, action) => {
    expect(planSetup(existing, installNix).action).toBe(action)
  })

  test('the failure says how to fix it', () => {
    const plan = planSetup(null, false)
    expect(plan).toMatchObject({ action: 'fail' })
    expect(plan.action === 'fail' && plan.message).toMatch(
      /install-nix is false: set install-nix: true .* or install Nix in an earlier step/
    )
  })

  test.each<[NixSource, string]>([
    ['path', 'found on PATH'],
    ['adopted', 'adopted'],
    ['installed', 'installed']
  ])('the summary calls %s "%s"', (found, text) => {
    expect(describeSource(found)).toBe(text)
  })
})

describe('nixSystem', () => {
  test.each([
    ['linux', 'x64', 'x86_64-linux'],
    ['linux', 'arm64', 'aarch64-linux']
  ])('%s/%s is %s', (platform, arch, system) => {
    expect(release.nixSystem(platform, arch)).toBe(system)
  })

  test.each([
    ['darwin', 'arm64', /macOS is not supported yet/],
    ['linux', 'riscv64', /not supported on linux\/riscv64/],
    ['win32', 'x64', /not supported on win32\/x64/]
  ])('%s/%s is refused', (platform, arch, message) => {
    expect(() => release.nixSystem(platform, arch)).toThrow(message)
  })
})

describe('releaseUrl', () => {
  test.each([
    [
      'official release',
      null,
      'https://releases.nixos.org/nix/nix-2.35.2/nix-2.35.2-x86_64-linux.tar.xz'
    ],
    [
      'a mirror of releases.nixos.org/nix',
      'https://mirror.example/nix/',
      'https://mirror.example/nix/nix-2.35.2/nix-2.35.2-x86_64-linux.tar.xz'
    ],
    [
      'the tarball itself',
      'http://127.0.0.1:8080/any/name.tar.xz',
      'http://127.0.0.1:8080/any/name.tar.xz'
    ]
  ])('%s', (_name, installUrl, url) => {
    expect(release.releaseUrl('2.35.2', X86, installUrl)).toBe(url)
  })
})

describe('checksumSource', () => {
  const url = 'https://mirror.example/nix-2.35.2-x86_64-linux.tar.xz'
  test.each<[string, string, NixSystem, ChecksumSource]>([
    [
      'pinned for the default version on x86_64',
      '2.35.2',
      X86,
      { kind: 'pinned', sha256: PINNED_X86 }
    ],
    [
      'pinned for the default version on aarch64',
      '2.35.2',
      'aarch64-linux',
      { kind: 'pinned', sha256: PINNED_ARM }
    ],
    [
      'published beside the tarball for another version',
      '2.8.0',
      X86,
      { kind: 'published', url: `${url}.sha256` }
    ]
  ])('%s', (_name, version, system, expected) => {
    expect(release.checksumSource(version, system, url)).toEqual(expected)
  })

  test('the default version has a pinned sum for every system this action installs on', () => {
    for (const system of ['x86_64-linux', 'aarch64-linux'] as const) {
      expect(release.PINNED_CHECKSUMS[release.PINNED_NIX_VERSION]?.[system]).toMatch(
        /^[0-9a-f]{64}$/
      )
    }
  })
})

describe('parseSha256File', () => {
  const digest = 'ab'.repeat(32)
  test.each([
    ['a bare digest', `${digest}\n`],
    ['sha256sum output', `${digest}  nix-2.8.0-x86_64-linux.tar.xz\n`],
    ['upper case', digest.toUpperCase()]
  ])('reads %s', (_name, text) => {
    expect(release.parseSha256File(text)).toBe(digest)
  })

  test.each([
    ['an HTML error page', '<html>not found</html>'],
    ['a short digest', 'abcdef'],
    ['empty', '']
  ])('refuses %s', (_name, text) => {
    expect(() => release.parseSha256File(text)).toThrow(/is not a SHA-256 checksum file/)
  })
})

describe('releaseLayout', () => {
  const nix = 'n3h8vzgzfbbqbdnn99w876dnjz4gxni3-nix-2.8.0'
  const cacert = 'ply00s0i5xqajgr6h6fkbia5bd9dp1cn-nss-cacert-3.0'
  const other = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nix-2.8.0-man'
  const script = `#!/bin/sh\nnix="/nix/store/${nix}"\ncacert="/nix/store/${cacert}"\n`

  test.each([
    ['from the install script', script, [cacert, nix, other]],
    ['by name without one', null, [cacert, other, nix]]
  ])('finds Nix and the CA bundle %s', (_name, installScript, entries) => {
    expect(release.releaseLayout(installScript, entries, '2.8.0')).toEqual({
      nix: `/nix/store/${nix}`,
      cacert: `/nix/store/${cacert}`
    })
  })

  test('a tarball without the CA bundle still installs', () => {
    expect(release.releaseLayout(null, [nix], '2.8.0').cacert).toBeNull()
  })

  test.each([
    ['no Nix of that version', null, [cacert], /holds no store path for Nix 2\.8\.0/],
    ['a script naming a missing path', script, [cacert], /which is not in its store/]
  ])('refuses %s', (_name, installScript, entries, message) => {
    expect(() => release.releaseLayout(installScript, entries, '2.8.0')).toThrow(message)
  })
})

describe('nix.conf text', () => {
  const base = { installed: false, asRoot: false, githubToken: null, nixConf: [] }
  test.each([
    [
      'an existing Nix: only add features, never replace its settings',
      base,
      ['extra-experimental-features = nix-command flakes']
    ],
    [
      'an installed Nix gets max-jobs = auto',
      { ...base, installed: true },
      ['extra-experimental-features = nix-command flakes', 'max-jobs = auto']
    ],
    [
      'installed as root: no build users group',
      { ...base, installed: true, asRoot: true },
      ['extra-experimental-features = nix-command flakes', 'max-jobs = auto', 'build-users-group =']
    ],
    [
      'the token and the nix-conf lines, the user last (later lines win)',
      { ...base, githubToken: 'ghs_abc', nixConf: ['cores = 2', 'sandbox = relaxed'] },
      [
        'extra-experimental-features = nix-command flakes',
        'access-tokens = github.com=ghs_abc',
        'cores = 2',
        'sandbox = relaxed'
      ]
    ]
  ])('%s', (_name, options, lines) => {
    expect(conf.nixConfLines(options).filter(l => !l.startsWith('#'))).toEqual(lines)
  })

  test('the printable text never holds the token', () => {
    const options = { ...base, githubToken: 'ghs_secret123' }
    expect(conf.nixConfText(options)).toContain('github.com=ghs_secret123')
    expect(conf.printableConfText(options)).not.toContain('ghs_secret123')
    expect(conf.printableConfText(options)).toContain('access-tokens = github.com=***')
  })
})

describe('userConfFiles: ours first (the first file wins), the user files after it', () => {
  const ours = '/runner/temp/nix-container-action/nix.conf'
  test.each([
    ['XDG defaults', {}, `${ours}:/home/u/.config/nix/nix.conf:/etc/xdg/nix/nix.conf`],
    [
      'XDG variables',
      { XDG_CONFIG_HOME: '/cfg', XDG_CONFIG_DIRS: '/a:/b' },
      `${ours}:/cfg/nix/nix.conf:/a/nix/nix.conf:/b/nix/nix.conf`
    ],
    [
      'an existing NIX_USER_CONF_FILES',
      { NIX_USER_CONF_FILES: '/x.conf:/y.conf' },
      `${ours}:/x.conf:/y.conf`
    ],
    ['a second run in the same job', { NIX_USER_CONF_FILES: `${ours}:/x.conf` }, `${ours}:/x.conf`]
  ])('%s', (_name, env, expected) => {
    expect(conf.userConfFiles(ours, env, '/home/u')).toBe(expected)
  })
})

describe('sslCertFile', () => {
  const cacert = '/nix/store/ply00s0i5xqajgr6h6fkbia5bd9dp1cn-nss-cacert-3.0'
  const none = (): boolean => false
  const debian = (path: string): boolean => path === '/etc/ssl/certs/ca-certificates.crt'
  test.each([
    ['already set', { NIX_SSL_CERT_FILE: '/my.crt' }, none, cacert, null],
    ['a system bundle exists', {}, debian, cacert, null],
    [
      'no system bundle: the tarball one',
      {},
      none,
      cacert,
      `${cacert}/etc/ssl/certs/ca-bundle.crt`
    ],
    ['no system bundle and none in the tarball', {}, none, null, null]
  ])('%s', (_name, env, exists, cacertPath, expected) => {
    expect(conf.sslCertFile(env, exists, cacertPath)).toBe(expected)
  })
})

describe('planNixDir: sudo only when /nix must be created and this user cannot', () => {
  test.each<[string, NixDirState, NixDirPlan]>([
    ['/nix exists and is ours', { exists: true, writable: true, parentWritable: false }, 'ready'],
    [
      'no /nix, and / is writable (root)',
      { exists: false, writable: false, parentWritable: true },
      'create'
    ],
    [
      'no /nix, and / is not writable',
      { exists: false, writable: false, parentWritable: false },
      'sudo-create'
    ]
  ])('%s: %s', (_name, state, plan) => {
    expect(planNixDir(state)).toBe(plan)
  })

  test('a /nix this user cannot write fails with the fix', () => {
    expect(() => planNixDir({ exists: true, writable: false, parentWritable: true })).toThrow(
      /\/nix exists but is not writable by this user.*sudo chown -R/
    )
  })
})

describe('setupNix with an existing Nix', () => {
  const runnerTemp = mkdtempSync(join(tmpdir(), 'nca-unit-'))
  const savedEnv = { ...process.env }
  const ok = (stdout: string) => ({ exitCode: 0, stdout, stderr: '' })
  const options = {
    installNix: true,
    nixVersion: '2.35.2',
    installUrl: null,
    nixConf: ['cores = 3'],
    githubToken: 'ghs_unit_token'
  }

  beforeEach(() => {
    jest.resetAllMocks()
    process.env.RUNNER_TEMP = runnerTemp
    delete process.env.NIX_USER_CONF_FILES
  })
  afterAll(() => {
    process.env = savedEnv
    rmSync(runnerTemp, { recursive: true, force: true })
  })

  test('on PATH: used as it is, nothing installed, the job conf written 0600', async () => {
    which.mockResolvedValue('/usr/bin/nix')
    exec.run.mockResolvedValue(ok('nix (Nix) 2.8.0\n'))
    const result = await setupNix(options)
    expect(result).toEqual({
      version: '2.8.0',
      found: 'path',
      installed: false,
      nix: '/usr/bin/nix'
    })
    expect(exec.run.mock.calls.map(call => [call[0], call[1]])).toEqual([
      ['/usr/bin/nix', ['--version']]
    ])
    expect(core.addPath).not.toHaveBeenCalled()

    const file = join(runnerTemp, 'nix-container-action', 'nix.conf')
    expect(readFileSync(file, 'utf8')).toContain(
      'access-tokens = github.com=ghs_unit_token\ncores = 3\n'
    )
    expect(statSync(file).mode & 0o777).toBe(0o600)
    expect(exportVariable).toHaveBeenCalledWith(
      'NIX_USER_CONF_FILES',
      expect.stringMatching(new RegExp(`^${file}:`))
    )
    const logged = core.info.mock.calls.map(call => call[0]).join('\n')
    expect(logged).not.toContain('ghs_unit_token')
  })

  test('off PATH: adopted and added to PATH', async () => {
    which.mockResolvedValue('')
    exec.run.mockImplementation((command: string) =>
      Promise.resolve(
        command === '/nix/var/nix/profiles/default/bin/nix'
          ? ok('nix (Nix) 2.35.2\n')
          : { exitCode: 127, stdout: '', stderr: 'not found' }
      )
    )
    const result = await setupNix(options)
    expect(result).toMatchObject({ version: '2.35.2', found: 'adopted', installed: false })
    expect(core.addPath).toHaveBeenCalledWith('/nix/var/nix/profiles/default/bin')
  })

  test('no Nix and install-nix: false fails before anything is written', async () => {
    which.mockResolvedValue('')
    exec.run.mockResolvedValue({ exitCode: 127, stdout: '', stderr: 'not found' })
    await expect(setupNix({ ...options, installNix: false })).rejects.toThrow(
      /install-nix is false/
    )
    expect(exportVariable).not.toHaveBeenCalled()
  })
})
