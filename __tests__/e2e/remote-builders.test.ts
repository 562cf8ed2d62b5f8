// Remote builders (`builders`, `builder-ssh-key`) through the bundled action, as the runner user
// on fresh runner machines: a real sshd on another loopback address with a host key of its own
// and the runner's authorized key, serving a second Nix store (scripts/ssh-builder.sh). With
// `--max-jobs 0` nothing can be built on the runner; the proof that the build ran on the
// builder is Nix's own record: the output is valid in the builder's store and `ultimate` there
// (built by that store), and not `ultimate` on the runner (copied in, not built).
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { RunResult } from '../../scripts/run-action.mjs'
import { asRoot, defaultRunnerUser } from '../../scripts/runner-machine.mjs'
import type { Machine, MachineOs, MachineShape } from '../../scripts/runner-machine.mjs'
import { action, freshMachine, inMachine, log } from './action.js'

const script = resolve('scripts/ssh-builder.sh')
// Port 22 of an address of its own (Nix 2.8 takes no port in an ssh URI), kept off 127.0.0.1.
const ADDRESS = '127.0.0.22'
// Nothing listens there.
const UNREACHABLE = '127.0.0.23'
const example = './examples/hello'
const ONLY_REMOTE = '--max-jobs\n0'

interface Builder {
  dir: string
  /** Field 8 of a machine line: the builder's host key line, base64. */
  hostKey: string
  /** The private key the runner logs in with (the builder-ssh-key secret). */
  key: string
}

function sh(argv: string[]): string {
  const [command = '', ...args] = asRoot(argv)
  return execFileSync(command, args, { encoding: 'utf8' })
}

/** A client key pair, and the builder that lets it in as the runner user. */
function startBuilder(user: string): Builder {
  const keys = mkdtempSync('/tmp/nca-builder-key-')
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'nca-runner',
    '-f',
    join(keys, 'id')
  ])
  const key = readFileSync(join(keys, 'id'), 'utf8')
  const dir = mkdtempSync('/tmp/nca-builder-')
  try {
    const hostKey = sh([script, 'start', dir, user, ADDRESS, join(keys, 'id.pub')]).trim()
    return { dir, hostKey, key }
  } finally {
    rmSync(keys, { recursive: true, force: true })
  }
}

let builder: Builder | null = null

// A builder of its own for each test: its store holds only what that test built there.
beforeEach(() => {
  builder = startBuilder(defaultRunnerUser())
})

afterEach(() => {
  if (builder) {
    sh([script, 'stop', builder.dir])
  }
  builder = null
})

function current(): Builder {
  if (!builder) throw new Error('no builder: beforeEach did not start one')
  return builder
}

/** A machine line for the builder: the input's key (`-`), its host key pinned. */
function machineLine(
  user: string,
  { address = ADDRESS, scheme = 'ssh', hostKey = current().hostKey } = {}
): string {
  return `${scheme}://${user}@${address} x86_64-linux,aarch64-linux - 2 1 - - ${hostKey}`
}

/** The builder's store, asked by this machine's Nix (root reads any store). */
const builderStore = {
  invalid: (paths: string[]): string[] =>
    sh([
      'nix-store',
      '--store',
      join(current().dir, 'store'),
      '--check-validity',
      '--print-invalid',
      ...paths
    ])
      .split('\n')
      .filter(Boolean),
  ultimate: (path: string): boolean =>
    ultimateOf(
      sh([
        'nix',
        '--extra-experimental-features',
        'nix-command',
        'path-info',
        '--json',
        '--store',
        join(current().dir, 'store'),
        path
      ]),
      path
    )
}

/** `ultimate` of a path in `nix path-info --json` (a list in 2.8, an object keyed by path in 2.26). */
function ultimateOf(json: string, path: string): boolean {
  const parsed = JSON.parse(json) as unknown
  const entries = Array.isArray(parsed)
    ? (parsed as { path: string; ultimate?: boolean }[])
    : Object.entries(parsed as Record<string, { ultimate?: boolean }>).map(([p, info]) => ({
        ...info,
        path: p
      }))
  const entry = entries.find(e => e.path === path)
  if (!entry) throw new Error(`nix path-info --json says nothing of ${path}: ${json}`)
  return entry.ultimate === true
}

function runnerUltimate(machine: Machine, path: string): boolean {
  return ultimateOf(
    inMachine(machine, [
      'nix',
      '--extra-experimental-features',
      'nix-command',
      'path-info',
      '--json',
      path
    ]),
    path
  )
}

async function build(machine: Machine, inputs: Record<string, string>): Promise<RunResult> {
  return action(
    { flake: example, cache: 'false', load: 'false', push: 'false', sbom: 'false', ...inputs },
    { machine, watch: ['nix'] }
  )
}

/** Everything the step left as text: logs, outputs, state, summary, the commands it ran. */
function everythingWritten(result: RunResult): string[] {
  return [
    result.main.stdout,
    result.main.stderr,
    result.post?.stdout ?? '',
    result.post?.stderr ?? '',
    JSON.stringify(result.outputs),
    JSON.stringify(result.state),
    JSON.stringify(result.commands),
    result.summary,
    result.envFile,
    result.pathFile
  ].map(text =>
    text
      .split('\n')
      .filter(line => !line.startsWith('::add-mask::'))
      .join('\n')
  )
}

function expectKeyNeverWritten(result: RunResult, key: string): void {
  const secretLines = key.split('\n').filter(line => line !== '' && !line.startsWith('-----'))
  for (const line of secretLines) expect(result.masks).toContain(line)
  for (const text of everythingWritten(result)) {
    for (const line of secretLines) expect(text.includes(line)).toBe(false)
  }
}

const SHAPES: [MachineShape, MachineOs | undefined, 'ssh' | 'ssh-ng'][] = [
  ['single-user', undefined, 'ssh'],
  ['daemon', undefined, 'ssh'],
  ['daemon', undefined, 'ssh-ng'],
  ['single-user', 'debian12', 'ssh'],
  ['daemon', 'debian12', 'ssh-ng']
]

describe.each(SHAPES)('a %s store (%s), %s://', (shape, os, scheme) => {
  test('--max-jobs 0: the image is built on the builder, not here; the key never shows and is removed', async () => {
    const machine = freshMachine(shape, os)
    const { key } = current()
    const result = await build(machine, {
      builders: machineLine(machine.user, { scheme }),
      'builder-ssh-key': key,
      'nix-args': ONLY_REMOTE
    })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(result.post?.exitCode).toBe(0)
    const storePath = result.outputs['store-path'] ?? ''
    expect(storePath).toMatch(/^\/nix\/store\/.*hello-image\.tar\.gz$/)
    expect(log(result)).toContain(`on '${scheme}://${machine.user}@${ADDRESS}'`)
    // Built by the builder's store, copied to the runner's.
    expect(builderStore.invalid([storePath])).toEqual([])
    expect(builderStore.ultimate(storePath)).toBe(true)
    expect(runnerUltimate(machine, storePath)).toBe(false)
    // The key: a file for ssh (named in the job's nix.conf), gone after the post step; its
    // text in no log, output, state, summary or command line.
    const keyFile = join(result.tempDir, 'runner-temp', 'nix-container-action', 'builder-ssh-key')
    expect(log(result)).toContain(
      `builders = ${scheme}://${machine.user}@${ADDRESS} x86_64-linux,aarch64-linux ${keyFile} 2 1`
    )
    expect(existsSync(keyFile)).toBe(false)
    expect(result.post?.stdout).toContain('Removed the builder-ssh-key file')
    expectKeyNeverWritten(result, key)
  })
})

describe('systems', () => {
  test('aarch64-linux built on a builder that offers it (extra-platforms there), x86_64-linux too', async () => {
    const machine = freshMachine('single-user')
    const result = await build(machine, {
      systems: 'x86_64-linux, aarch64-linux',
      flake: './__tests__/e2e/flakes/multi',
      builders: machineLine(machine.user),
      'builder-ssh-key': current().key,
      'nix-args': ONLY_REMOTE
    })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    const images = JSON.parse(result.outputs.images ?? '[]') as { system: string }[]
    expect(images.map(image => image.system)).toEqual(['x86_64-linux', 'aarch64-linux'])
    // Every derivation was built there (the drv files stay here: ssh:// sends the builder only
    // what it needs), for both systems, each output valid there and copied here.
    const built = [...log(result).matchAll(/building '(\/nix\/store\/[^']+\.drv)' on 'ssh:/g)].map(
      m => m[1] ?? ''
    )
    const drvs = built.flatMap(drv =>
      Object.values(
        JSON.parse(
          inMachine(machine, [
            'nix',
            '--extra-experimental-features',
            'nix-command',
            'show-derivation',
            drv
          ])
        ) as Record<string, { system: string; outputs: Record<string, { path: string }> }>
      )
    )
    expect([...new Set(drvs.map(drv => drv.system))].sort()).toEqual([
      'aarch64-linux',
      'x86_64-linux'
    ])
    const outputs = drvs.flatMap(drv => Object.values(drv.outputs).map(output => output.path))
    expect(builderStore.invalid(outputs)).toEqual([])
    for (const path of outputs) expect(runnerUltimate(machine, path)).toBe(false)
  })
})

describe('failures', () => {
  test.each<[MachineShape, MachineOs | undefined]>([
    ['single-user', undefined],
    ['single-user', 'debian12']
  ])(
    'an unreachable builder (%s, %s): the error names it and says what ssh said',
    async (shape, os) => {
      const machine = freshMachine(shape, os)
      const result = await build(machine, {
        builders: machineLine(machine.user, { address: UNREACHABLE }),
        'builder-ssh-key': current().key,
        'nix-args': ONLY_REMOTE
      })
      expect(result.main.exitCode).not.toBe(0)
      expect(result.main.stdout).toMatch(
        new RegExp(
          `::error::nix build .* failed: remote builder ssh://${machine.user}@127\\.0\\.0\\.23 could not be used: .*Connection refused`
        )
      )
      expect(
        existsSync(join(result.tempDir, 'runner-temp', 'nix-container-action', 'builder-ssh-key'))
      ).toBe(false)
    }
  )

  test.each<[MachineShape, MachineOs | undefined]>([
    ['single-user', undefined],
    ['daemon', undefined],
    ['single-user', 'debian12']
  ])(
    "a host key that is not the builder's (%s, %s): refused, nothing built there",
    async (shape, os) => {
      const machine = freshMachine(shape, os)
      const other = mkdtempSync('/tmp/nca-other-host-')
      try {
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(other, 'key')])
        const wrong = Buffer.from(readFileSync(join(other, 'key.pub'))).toString('base64')
        const result = await build(machine, {
          builders: machineLine(machine.user, { hostKey: wrong }),
          'builder-ssh-key': current().key,
          'nix-args': ONLY_REMOTE
        })
        expect(result.main.exitCode).not.toBe(0)
        expect(result.main.stdout).toMatch(
          new RegExp(
            `::error::nix build .* failed: remote builder ssh://${machine.user}@127\\.0\\.0\\.22 could not be used: .*not the one in field 8 of its line \\(Host key verification failed\\)`
          )
        )
        const sshd = readFileSync(join(current().dir, 'sshd.log'), 'utf8')
        expect(sshd).not.toMatch(/Accepted publickey/)
      } finally {
        rmSync(other, { recursive: true, force: true })
      }
    }
  )

  test('a machine line without its host key fails before Nix is set up, naming the line', async () => {
    const machine = freshMachine('single-user')
    const result = await build(machine, {
      builders: `# the fleet\nssh://${machine.user}@${ADDRESS} x86_64-linux - 1`,
      'builder-ssh-key': current().key
    })
    expect(result.main.exitCode).not.toBe(0)
    expect(result.main.stdout).toContain(
      '::error::Input "builders": line 2: field 8 (host public key) is missing'
    )
    expect(result.commands).toEqual([])
    expectKeyNeverWritten(result, current().key)
  })

  // Nix 2.26 says so before the build (nix store info); Nix 2.8 cannot (no `trusted` there, and
  // its daemon drops the setting without a warning): the failed build's "enable remote builds".
  test.each<MachineOs | undefined>([undefined, 'debian12'])(
    'a daemon that does not trust the runner (%s): the step says why',
    async os => {
      process.env.NCA_DAEMON_NIX_CONF = 'trusted-users = root'
      let machine: Machine
      try {
        machine = freshMachine('daemon', os)
      } finally {
        delete process.env.NCA_DAEMON_NIX_CONF
      }
      const result = await build(machine, {
        builders: machineLine(machine.user),
        'builder-ssh-key': current().key,
        'nix-args': ONLY_REMOTE
      })
      expect(result.main.exitCode).not.toBe(0)
      expect(result.main.stdout).toMatch(
        new RegExp(
          `::error::(builders: |nix build .* failed: .*If "builders" is set, )the Nix daemon does not trust ${machine.user}`
        )
      )
      if (os === undefined) expect(result.commands.some(argv => argv.includes('build'))).toBe(false)
    }
  )

  test('without --max-jobs 0, an unreachable builder: Nix builds here, and the step warns naming it', async () => {
    const machine = freshMachine('single-user')
    const result = await build(machine, {
      builders: machineLine(machine.user, { address: UNREACHABLE }),
      'builder-ssh-key': current().key
    })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(result.main.stdout).toMatch(
      new RegExp(
        `::warning::remote builder ssh://${machine.user}@127\\.0\\.0\\.23 could not be used, Nix built without it: .*Connection refused`
      )
    )
    expect(runnerUltimate(machine, result.outputs['store-path'] ?? '')).toBe(true)
  })
})
