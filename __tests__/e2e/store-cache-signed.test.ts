// Signed store cache entries (issue 26): a save with `cache-signing-key` signs every path it
// writes; a restore with `cache-trusted-keys` takes an entry only when every path carries a
// valid signature by one of them, and the restored paths keep their signatures in Nix's
// database. The judge is the real Nix: the signatures the restore recorded are the ones
// `nix store sign --key-file` makes on the machine that built the paths, read back with
// `nix path-info --sigs`. Refused: an entry signed by another key (the warning names it) and
// an entry whose path content and recorded NAR hash were changed consistently by someone
// without the key (nothing of it registered: the image is built again). And a daemon with
// `require-sigs` whose runner user is not trusted (NCA_DAEMON_NIX_CONF, scripts/
// runner-machine.sh) takes the signed paths, while an unsigned entry is refused by that daemon.
import { expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { appendFileSync, chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startCacheServer } from '../../scripts/cache-server.mjs'
import { startCacheServerV2 } from '../../scripts/cache-server-v2.mjs'
import { giveToRunner, userTempDir } from '../../scripts/runner-machine.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { action as runAction, freshMachine, inMachine, store } from './action.js'
import {
  baseOf,
  BUILD_STEPS,
  builds,
  closure,
  expectGreen,
  makeFixture,
  TOKEN
} from './store-cache-kit.js'
import type { CacheService, Fixture, Run } from './store-cache-kit.js'

const ROOT = 'nix-container-action-store-v3'

/** A Nix key pair as `nix key generate-secret` / `convert-secret-to-public` print them. */
function nixKey(name: string): { secret: string; public: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const d = Buffer.from((privateKey.export({ format: 'jwk' }) as { d: string }).d, 'base64url')
  const x = Buffer.from((publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url')
  return {
    secret: `${name}:${Buffer.concat([d, x]).toString('base64')}`,
    public: `${name}:${x.toString('base64')}`
  }
}

type Service = CacheService & {
  readArchive?: (key: string) => Promise<Buffer>
  replaceArchive: (key: string, data: Buffer) => unknown
}

async function job(
  fixture: Fixture,
  service: CacheService,
  machine: Machine,
  inputs: Record<string, string>
): Promise<Run> {
  const result = await runAction(
    { flake: fixture.ref, load: 'false', push: 'false', ...inputs },
    { env: service.env(TOKEN), machine }
  )
  return { ...result, machine }
}

/**
 * Each path's signatures in the machine's Nix database (`nix path-info --sigs`). A `.drv` given
 * to Nix 2.8 stands for its outputs unless `--derivation` is given: two calls.
 */
function sigs(machine: Machine, paths: string[]): Record<string, string[]> {
  const result: Record<string, string[]> = {}
  const drvs = paths.filter(p => p.endsWith('.drv'))
  const others = paths.filter(p => !p.endsWith('.drv'))
  for (const [group, extra] of [
    [others, []],
    [drvs, ['--derivation']]
  ] as const) {
    if (group.length === 0) continue
    const out = inMachine(machine, ['nix', 'path-info', '--sigs', ...extra, ...group])
    for (const line of out.split('\n').filter(Boolean)) {
      const [path = '', ...rest] = line.trim().split(/\s+/)
      // It prints a content-addressed path's `ca:` too: not a signature.
      result[path] = rest.filter(s => s.includes(':') && !s.startsWith('ca:')).sort()
    }
  }
  return result
}

const cases = [
  { version: 'v1' as const, shape: 'single-user' as const, os: undefined, how: 'the fast path' },
  {
    version: 'v2' as const,
    shape: 'daemon' as const,
    os: undefined,
    how: 'a daemon store (nix copy)'
  },
  {
    version: 'v1' as const,
    shape: 'single-user' as const,
    os: 'debian12' as const,
    how: "Debian 12's Nix 2.8, the fast path"
  }
]

test.each(cases)(
  'cache service $version, $how: a signed entry restores with the trusted key, signatures kept; another key is refused, naming it',
  async ({ version, shape, os }) => {
    const service = (
      version === 'v1'
        ? await startCacheServer({ token: TOKEN })
        : await startCacheServerV2({ token: TOKEN })
    ) as Service
    try {
      const key = nixKey('nca-test-1')
      const other = nixKey('nca-other-1')
      const fixture = await makeFixture()
      const run1 = await job(fixture, service, freshMachine(shape, os), {
        'cache-signing-key': key.secret
      })
      expectGreen(run1)
      // The runner takes `::add-mask::` lines as commands: never shown, they mask the rest.
      const log1 = [run1.main.stdout, run1.main.stderr, run1.post?.stdout, run1.post?.stderr]
        .join('\n')
        .split('\n')
        .filter(line => !line.startsWith('::add-mask::'))
        .join('\n')
      expect(log1).not.toContain(key.secret.split(':')[1])
      expect(run1.post?.stdout).toMatch(/Signed the \d+ paths with the key nca-test-1/)

      // What Nix itself signs on the machine that built the paths, with the same key.
      const paths = closure(run1)
      const keyDir = userTempDir('nca-nix-key-')
      writeFileSync(join(keyDir, 'key'), key.secret, { mode: 0o600 })
      giveToRunner(keyDir)
      // Nix 2.8 takes a `.drv` for its outputs unless `--derivation` is given: two calls.
      const keyFile = join(keyDir, 'key')
      const drvs = paths.filter(p => p.endsWith('.drv'))
      inMachine(run1.machine, [
        'nix',
        'store',
        'sign',
        '--key-file',
        keyFile,
        ...paths.filter(p => !drvs.includes(p))
      ])
      if (drvs.length > 0) {
        inMachine(run1.machine, [
          'nix',
          'store',
          'sign',
          '--key-file',
          keyFile,
          '--derivation',
          ...drvs
        ])
      }
      const byNix = sigs(run1.machine, paths)
      for (const path of paths) expect(byNix[path]).toHaveLength(1)

      const run2 = await job(fixture, service, freshMachine(shape, os), {
        'cache-trusted-keys': `${other.public}\n${key.public}`
      })
      expectGreen(run2)
      expect(run2.outputs['cache-hit']).toBe('true')
      expect(builds(fixture)).toEqual(BUILD_STEPS)
      expect(sigs(run2.machine, paths)).toEqual(byNix)
      if (shape === 'single-user') {
        // The fast path writes them into Nix's database itself (Node 24's SQLite), in one go.
        expect(run2.main.stdout).toMatch(/Restore phases: .*add signatures \d/)
      }

      const run3 = await job(fixture, service, freshMachine(shape, os), {
        'cache-trusted-keys': other.public
      })
      expectGreen(run3)
      expect(run3.main.stdout).toMatch(
        new RegExp(
          `::warning::Store cache: restore failed, building without the cache: the entry ${baseOf(run1.outputs['cache-key'])} was discarded: /nix/store/[0-9a-z]{32}-[^ ]+ is signed by key "nca-test-1", not by a trusted key \\(trusted keys: nca-other-1\\)`
        )
      )
      expect(run3.outputs['cache-hit']).toBe('false')
      expect(builds(fixture)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
    } finally {
      await service.close()
    }
  }
)

test('a daemon with require-sigs and the runner not trusted accepts the restored paths by their signatures', async () => {
  const service = (await startCacheServerV2({ token: TOKEN })) as Service
  try {
    const key = nixKey('nca-test-1')
    const fixture = await makeFixture()
    const run1 = await job(fixture, service, freshMachine('daemon'), {
      'cache-signing-key': key.secret
    })
    expectGreen(run1)
    process.env.NCA_DAEMON_NIX_CONF = [
      'trusted-users = root',
      'require-sigs = true',
      `trusted-public-keys = ${key.public}`
    ].join('\n')
    let machine: Machine
    try {
      machine = freshMachine('daemon')
    } finally {
      delete process.env.NCA_DAEMON_NIX_CONF
    }
    expect(inMachine(machine, ['nix', 'show-config'])).toMatch(/require-sigs = true/)
    const run2 = await job(fixture, service, machine, { 'cache-trusted-keys': key.public })
    expectGreen(run2)
    expect(run2.outputs['cache-hit']).toBe('true')
    expect(builds(fixture)).toEqual(BUILD_STEPS)
    const paths = closure(run1)
    expect(store.invalid(machine, paths)).toEqual([])

    // The control: an unsigned entry, on a daemon like it, is refused by the daemon itself.
    const unsigned = await makeFixture()
    expectGreen(await job(unsigned, service, freshMachine('daemon'), {}))
    process.env.NCA_DAEMON_NIX_CONF = ['trusted-users = root', 'require-sigs = true'].join('\n')
    let strict: Machine
    try {
      strict = freshMachine('daemon')
    } finally {
      delete process.env.NCA_DAEMON_NIX_CONF
    }
    const run3 = await job(unsigned, service, strict, {})
    expectGreen(run3)
    expect(run3.main.stdout).toMatch(
      /::warning::Store cache: restore failed.*lacks a (valid signature|signature by a trusted key)/
    )
    expect(builds(unsigned)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
  } finally {
    await service.close()
  }
})

/** The archive with the payload path's content and its registered NAR hash and size changed. */
function tampered(archive: Buffer): { data: Buffer; payload: string } {
  const dir = userTempDir('nca-tamper-')
  execFileSync('tar', ['-x', '-C', dir], {
    input: execFileSync('zstd', ['-d', '--long=30', '-c'], { input: archive, maxBuffer: 1 << 28 }),
    maxBuffer: 1 << 28
  })
  const layer = join(dir, ROOT, 'base')
  const name = readdirSync(join(layer, 'store')).find(n => n.endsWith('-cache-test-payload'))
  if (name === undefined) throw new Error('no payload path in the entry')
  const file = join(layer, 'store', name)
  chmodSync(file, 0o644)
  appendFileSync(file, 'tampered-by-someone-without-the-key\n')
  chmodSync(file, 0o444)
  const nixEnv = { ...process.env, NIX_CONFIG: 'experimental-features = nix-command' }
  const hash = execFileSync('nix', ['hash', 'path', '--type', 'sha256', '--base16', file], {
    env: nixEnv
  })
    .toString()
    .trim()
  const size = execFileSync('nix-store', ['--dump', file], { maxBuffer: 1 << 28 }).length
  const registration = join(layer, 'registration')
  const rows = readFileSync(registration, 'utf8').split('\n')
  const at = rows.indexOf(`/nix/store/${name}`)
  rows[at + 1] = hash
  rows[at + 2] = String(size)
  writeFileSync(registration, rows.join('\n'))
  const tar = execFileSync('tar', ['-c', '-C', dir, ROOT], { maxBuffer: 1 << 28 })
  return {
    data: execFileSync('zstd', ['-c'], { input: tar, maxBuffer: 1 << 28 }),
    payload: `/nix/store/${name}`
  }
}

test('a signed entry whose path and NAR hash were changed consistently without the key is refused, nothing of it registered (the fast path)', async () => {
  const service = (await startCacheServer({ token: TOKEN })) as Service
  try {
    const key = nixKey('nca-test-1')
    const fixture = await makeFixture()
    const run1 = await job(fixture, service, freshMachine(), { 'cache-signing-key': key.secret })
    expectGreen(run1)
    const entry = baseOf(run1.outputs['cache-key'])
    const original =
      service.readArchive !== undefined
        ? await service.readArchive(entry)
        : readFileSync(
            (service.entries() as { key: string; file?: string }[]).find(e => e.key === entry)
              ?.file ?? ''
          )
    const { data, payload } = tampered(original)
    await service.replaceArchive(entry, data)

    const machine = freshMachine()
    const run2 = await job(fixture, service, machine, { 'cache-trusted-keys': key.public })
    expectGreen(run2)
    expect(run2.main.stdout).toContain(
      `::warning::Store cache: restore failed, building without the cache: the entry ${entry} was discarded: ${payload} is signed by key "nca-test-1", whose signature does not verify (trusted keys: nca-test-1)`
    )
    expect(run2.outputs['cache-hit']).toBe('false')
    // Built again, and the payload is the build's, not the entry's.
    expect(builds(fixture)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
    expect(inMachine(machine, ['cat', payload])).not.toContain('tampered')
  } finally {
    await service.close()
  }
})
