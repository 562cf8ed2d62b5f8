// Remote builders' pure parts: machine lines, the nix.conf value, what a failed build's log says
// about a builder, the builder-ssh-key checks and its file.
import { describe, expect, test } from '@jest/globals'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseInputs } from '../../src/inputs.js'
import {
  builderFailureMessage,
  builderFailures,
  buildersSetting,
  parseMachineLines
} from '../../src/nix/builders.js'
import {
  builderKeyPath,
  checkBuilderKey,
  normalizeKey,
  removeBuilderKey,
  writeBuilderKey
} from '../../src/nix/builder-key.js'
import { nixConfLines } from '../../src/nix/conf.js'

const HOST_KEY = Buffer.from(
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEk8Ta4g8nLnl0gH0DU+lTPoEgwXjxA45TnV7dmvw2/7 builder\n'
).toString('base64')
const line = (uri: string, key = '-', hostKey = HOST_KEY): string =>
  `${uri} x86_64-linux,aarch64-linux ${key} 4 2 big-parallel - ${hostKey}`

/** An openssh-key-v1 private key whose cipher is `cipher` (the rest is not read). */
function openSshKey(cipher: string): string {
  const name = Buffer.from(cipher)
  const length = Buffer.alloc(4)
  length.writeUInt32BE(name.length)
  const blob = Buffer.concat([Buffer.from('openssh-key-v1\0'), length, name, Buffer.alloc(40, 1)])
  const body = blob.toString('base64').replace(/(.{70})/g, '$1\n')
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${body}\n-----END OPENSSH PRIVATE KEY-----\n`
}
const KEY = openSshKey('none')

describe('parseMachineLines', () => {
  test('lines, comments and blank lines; `-` means the input key only when one is given', () => {
    const text = `# the fleet\n${line('ssh://nix@a')}\n\n${line('ssh-ng://b', '/etc/nix/b_key')}  # b\n`
    const machines = parseMachineLines(text, true)
    expect(machines.map(m => [m.line, m.uri, m.usesInputKey])).toEqual([
      [2, 'ssh://nix@a', true],
      [4, 'ssh-ng://b', false]
    ])
    expect(parseMachineLines(line('ssh://nix@a'), false)[0]?.usesInputKey).toBe(false)
  })

  test.each([
    ['nine fields', `${line('ssh://a')} extra`, /line 1: has 9 fields, a machine line at most 8/],
    [
      'no host key on ssh://',
      'ssh://a x86_64-linux - 1',
      /line 1: field 8 \(host public key\) is missing/
    ],
    ['no host key on ssh-ng://', 'ssh-ng://a', /field 8 \(host public key\) is missing: .* pinned/],
    ['no host key on a bare host', 'nix@a x86_64-linux', /field 8 .* is missing/],
    [
      'the key blob, not its line',
      line('ssh://a', '-', 'AAAAC3NzaC1lZDI1NTE5AAAA'),
      /field 8 .* is the key itself/
    ],
    [
      'a host key that is not one',
      line('ssh://a', '-', Buffer.from('hello').toString('base64')),
      /field 8 .* is not an SSH public host key/
    ],
    ['not base64', line('ssh://a', '-', 'ssh-ed25519'), /field 8 .* is not an SSH public host key/],
    ['another scheme', line('https://a'), /field 1 \(URI\) is not an ssh:\/\/ or ssh-ng:\/\/ URI/],
    ['a machines file', '@/etc/nix/machines', /field 1 \(URI\) names a machines file/],
    ['a bad host', line('ssh://a b;c'.replace(' ', '')), /field 1 \(URI\) is not a builder URI/],
    ['a bad system', 'ssh://a x86_64 - - - - - ' + HOST_KEY, /field 2 \(systems\)/],
    [
      'a relative key',
      line('ssh://a', 'id_ed25519'),
      /field 3 \(SSH key file\) is not an absolute path/
    ],
    [
      'bad max jobs',
      `ssh://a - - x - - - ${HOST_KEY}`,
      /field 4 \(max jobs\) is not a whole number/
    ],
    ['bad speed', `ssh://a - - 1 0 - - ${HOST_KEY}`, /field 5 \(speed factor\)/],
    ['bad features', `ssh://a - - 1 1 a;b - ${HOST_KEY}`, /field 6 \(supported features\)/],
    [
      'a pasted private key',
      KEY,
      /line 1: looks like a private key: give the key in "builder-ssh-key"/
    ]
  ])('%s', (_name, text, message) => {
    expect(() => parseMachineLines(`\n${text}`.trimStart(), true)).toThrow(message)
  })

  test('the line number counts blank and comment lines', () => {
    expect(() => parseMachineLines(`# a\n\n${line('ssh://a')}\nssh://b`, false)).toThrow(
      /^line 4: /
    )
  })

  test('store parameters and a user are part of the URI', () => {
    const [machine] = parseMachineLines(line('ssh-ng://nix@b.example.com?remote-store=/x'), false)
    expect(machine?.uri).toBe('ssh-ng://nix@b.example.com?remote-store=/x')
  })
})

describe('buildersSetting: one nix.conf line', () => {
  test('lines joined with ;, the key file in each `-` key field that takes it', () => {
    const machines = parseMachineLines(
      `${line('ssh://a')}\n${line('ssh://b', '/k')}\nssh-ng://c - - 1 1 - - ${HOST_KEY}`,
      true
    )
    expect(buildersSetting(machines, '/tmp/rt/builder-ssh-key')).toBe(
      [
        `ssh://a x86_64-linux,aarch64-linux /tmp/rt/builder-ssh-key 4 2 big-parallel - ${HOST_KEY}`,
        `ssh://b x86_64-linux,aarch64-linux /k 4 2 big-parallel - ${HOST_KEY}`,
        `ssh-ng://c - /tmp/rt/builder-ssh-key 1 1 - - ${HOST_KEY}`
      ].join(' ; ')
    )
  })

  test('nix.conf: the builders line before the user nix-conf (a later line wins)', () => {
    const lines = nixConfLines({
      installed: false,
      asRoot: false,
      githubToken: null,
      nixConf: ['builders-use-substitutes = true'],
      builders: 'ssh://a - - 1 1 - - K'
    })
    expect(lines.slice(-2)).toEqual([
      'builders = ssh://a - - 1 1 - - K',
      'builders-use-substitutes = true'
    ])
  })
})

// What Nix 2.26 printed on this machine (the e2e tests see the real thing).
const UNREACHABLE = `these 3 derivations will be built:
  /nix/store/gfc4-hello-app-root.drv
cannot build on 'ssh://runner@127.0.0.23': error: failed to start SSH connection to 'runner@127.0.0.23': ssh: connect to host 127.0.0.23 port 22: Connection refused
Failed to find a machine for remote build!
derivation: gfc4-hello-app-root.drv
error:
       Unable to start any build;
       remote machines may not have all required system features.
`
const WRONG_HOST_KEY = `cannot build on 'ssh://runner@127.0.0.22': error: failed to start SSH connection to 'runner@127.0.0.22': @@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @
@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@
IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!
Host key verification failed.
Failed to find a machine for remote build!
`

describe('what a failed build says about its builders', () => {
  test('an unreachable builder: its URI and what ssh said', () => {
    expect(builderFailures(UNREACHABLE)).toEqual([
      {
        uri: 'ssh://runner@127.0.0.23',
        said: "error: failed to start SSH connection to 'runner@127.0.0.23': ssh: connect to host 127.0.0.23 port 22: Connection refused"
      }
    ])
    expect(builderFailureMessage(UNREACHABLE, 'runner')).toMatch(
      /^remote builder ssh:\/\/runner@127\.0\.0\.23 could not be used: .*Connection refused$/
    )
  })

  test('a host key that is not the pinned one: said in a line, not the banner', () => {
    const message = builderFailureMessage(WRONG_HOST_KEY, 'runner') ?? ''
    expect(message).toContain('remote builder ssh://runner@127.0.0.22 could not be used')
    expect(message).toContain('not the one in field 8 of its line (Host key verification failed)')
    expect(message).not.toContain('NASTY')
  })

  test('a daemon that ignored builders: the user is not trusted', () => {
    const log =
      "warning: ignoring the client-specified setting 'builders', because it is a restricted setting and you are not a trusted user\nerror: Unable to start any build"
    expect(builderFailureMessage(log, 'runner')).toMatch(/does not trust runner.*trusted-users/)
  })

  test.each([
    ["error: unable to start any build; either increase '--max-jobs' or enable remote builds."],
    [
      "error:\n       Unable to start any build;\n       either increase '--max-jobs' or enable remote builds."
    ]
  ])('no builder at all (a Nix 2.8 daemon drops them without a word): %#', log => {
    expect(builderFailureMessage(log, 'runner')).toMatch(
      /no remote builder .* If "builders" is set, the Nix daemon does not trust runner/
    )
  })

  test('a failure of the build itself says nothing of builders', () => {
    expect(
      builderFailureMessage('error: builder for foo.drv failed with exit code 1', 'r')
    ).toBeNull()
  })
})

describe('builder-ssh-key', () => {
  test.each([
    ['an unencrypted OpenSSH key', KEY],
    ['with CRLF line ends', KEY.replace(/\n/g, '\r\n')],
    ['a PEM key', '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----']
  ])('takes %s', (_name, key) => {
    expect(() => checkBuilderKey(key)).not.toThrow()
  })

  test.each([
    ['a public key', 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEk8', /is not an SSH private key/],
    ['an encrypted OpenSSH key', openSshKey('aes256-ctr'), /is encrypted with a passphrase/],
    [
      'an encrypted PEM key',
      '-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: x\n\nMIIE\n-----END RSA PRIVATE KEY-----',
      /is encrypted/
    ]
  ])('refuses %s', (_name, key, message) => {
    expect(() => checkBuilderKey(key)).toThrow(message)
  })

  test('its file: 0600 beside the job nix.conf, LF line ends and a final newline, removed again', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nca-key-'))
    try {
      const file = builderKeyPath(dir)
      expect(file).toBe(join(dir, 'builder-ssh-key'))
      writeFileSync(file, 'old', { mode: 0o644 })
      await writeBuilderKey(file, KEY.replace(/\n/g, '\r\n').trimEnd())
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(readFileSync(file, 'utf8')).toBe(normalizeKey(KEY))
      expect(readFileSync(file, 'utf8').endsWith('-----\n')).toBe(true)
      expect(await removeBuilderKey(file)).toBe(true)
      expect(await removeBuilderKey(file)).toBe(false)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('parseInputs: builders and builder-ssh-key', () => {
  const read =
    (values: Record<string, string>) =>
    (name: string): string =>
      ({ push: 'false', ...values })[name] ?? ''

  test('machine lines and the key', () => {
    const inputs = parseInputs(read({ builders: line('ssh://a'), 'builder-ssh-key': KEY }))
    expect(inputs.builders.map(m => m.uri)).toEqual(['ssh://a'])
    expect(inputs.builderSshKey).toBe(KEY.trim())
  })

  test('none by default', () => {
    expect(parseInputs(read({}))).toMatchObject({ builders: [], builderSshKey: null })
  })

  test('a bad line names the input and the line, and quotes nothing of it', () => {
    const secretish = 'b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAA'
    expect(() => parseInputs(read({ builders: `${line('ssh://a')}\n${secretish}` }))).toThrow(
      /^Input "builders": line 2: looks like a private key/
    )
    let message = ''
    try {
      parseInputs(read({ builders: `ssh://a x86_64-linux /k 1 1 - - ${secretish}x` }))
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toMatch(/^Input "builders": line 1: field 8/)
    expect(message).not.toContain(secretish)
  })

  test.each([
    [{ 'builder-ssh-key': KEY }, /"builder-ssh-key": is set but "builders" is empty/],
    [{ builders: line('ssh://a', '/k'), 'builder-ssh-key': KEY }, /no line of "builders" uses it/],
    [{ builders: line('ssh://a'), 'builder-ssh-key': 'not a key' }, /is not an SSH private key/]
  ])('key errors name the input, never the key (%#)', (values, message) => {
    let text = ''
    try {
      parseInputs(read(values))
    } catch (error) {
      text = (error as Error).message
    }
    expect(text).toMatch(message)
    expect(text).not.toContain(KEY.split('\n')[1])
    expect(text).not.toContain('not a key')
  })
})
