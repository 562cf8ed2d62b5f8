// binary-cache: the inputs' checks, the nix.conf lines, the push's URL and arguments, what a
// `nix copy` log says was sent, and the stage with exec mocked (a failure only warns; the key
// file is private and gone afterwards).
import { beforeEach, describe, expect, jest, test } from '@jest/globals'
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as core from '../../__fixtures__/core.js'
import * as exec from '../../__fixtures__/exec.js'

// The real module's other exports (the store cache's helpers use them), its run mocked.
const realExec = await import('../../src/exec.js')
jest.unstable_mockModule('../../src/core.js', () => core)
jest.unstable_mockModule('../../src/exec.js', () => ({ ...realExec, ...exec }))
const { parseInputs } = await import('../../src/inputs.js')
const {
  copyArgs,
  logMessages,
  parseCopiedPaths,
  printableStoreUrl,
  pushStoreUrl,
  storeUrlProblem,
  substituterConfLines
} = await import('../../src/nix/binary-cache.js')
const { formatNixSecretKey, parseNixSecretKey } = await import('../../src/signing/nix-key.js')
const { parseTrusted } = await import('../../src/nix/command.js')
const { binaryCacheConfLines, describePush, pushedOutput, pushToBinaryCache } =
  await import('../../src/stages/binary-cache.js')

// `nix key generate-secret --key-name test-1` and `nix key convert-secret-to-public`.
const SECRET =
  'test-1:il170qcP8MOlKs87KIrRIryJQIG1BIKxgaSDxhl/T5oVWa8dx0Gm9YwgZYf1Gl8GtvpUSymylbqPkMSjAUPsZg=='
const PUBLIC = 'test-1:FVmvHcdBpvWMIGWH9RpfBrb6VEspspW6j5DEowFD7GY='
const OTHER_PUBLIC = 'other-1:Bs0dT3DLkSOz3n0dN5rxcTtk0xxb8TW7VQ7dZb6wHkA='

const reader =
  (values: Record<string, string>) =>
  (name: string): string =>
    ({ registry: '127.0.0.1:5000', ...values })[name] ?? ''

beforeEach(() => {
  jest.resetAllMocks()
})

describe('storeUrlProblem', () => {
  test.each([
    'https://cache.example.org',
    'http://127.0.0.1:8080',
    'file:///var/cache/nix',
    's3://my-bucket?region=eu-west-1&compression=zstd',
    'ssh://nix@builder.example.org',
    'ssh-ng://nix@builder.example.org'
  ])('%s is a store URL', url => {
    expect(storeUrlProblem(url)).toBeNull()
  })

  test.each<[string, RegExp]>([
    ['cache.example.org', /is not a Nix store URL: expected one of https:\/\//],
    ['ftp://cache.example.org', /has the scheme ftp:\/\//],
    ['daemon', /is not a Nix store URL/],
    ['file://relative/dir', /without an absolute path/],
    ['https://', /names no host/],
    ['https://a b', /white space/],
    ['s3://bucket?secret-key=/k', /give the key in "binary-cache-secret-key"/]
  ])('%s is refused', (url, reason) => {
    expect(storeUrlProblem(url)).toMatch(reason)
  })
})

describe('parseInputs: binary-cache', () => {
  test('none by default', () => {
    expect(parseInputs(reader({})).binaryCache).toBeNull()
  })

  test('the secret key trusts its own public half when no public key is given', () => {
    const cache = parseInputs(
      reader({ 'binary-cache': 'http://127.0.0.1:1', 'binary-cache-secret-key': ` ${SECRET}\n` })
    ).binaryCache
    expect(cache?.url).toBe('http://127.0.0.1:1')
    expect(cache?.secretKey?.name).toBe('test-1')
    expect(cache?.publicKeys).toEqual([PUBLIC])
  })

  test('public keys given are the ones trusted', () => {
    const cache = parseInputs(
      reader({
        'binary-cache': 'file:///c',
        'binary-cache-public-key': `${OTHER_PUBLIC}\n${PUBLIC}`
      })
    ).binaryCache
    expect(cache).toEqual({ url: 'file:///c', secretKey: null, publicKeys: [OTHER_PUBLIC, PUBLIC] })
  })

  test('a bad URL fails naming the input and the value', () => {
    expect(() => parseInputs(reader({ 'binary-cache': 'ftp://x' }))).toThrow(
      /^Input "binary-cache": "ftp:\/\/x" has the scheme ftp/
    )
  })

  test('a bad secret key fails naming the input, never the value', () => {
    const bad = SECRET.slice(0, -6) + 'AAAA=='
    let thrown = ''
    try {
      parseInputs(reader({ 'binary-cache': 'file:///c', 'binary-cache-secret-key': bad }))
    } catch (error) {
      thrown = (error as Error).message
    }
    expect(thrown).toMatch(/^Input "binary-cache-secret-key": is not a Nix secret key/)
    expect(thrown).not.toContain(bad.slice(7, 30))
    expect(core.setSecret).toHaveBeenCalledWith(bad)
  })

  test.each([['test-1'], ['test-1:AAAA'], [SECRET]])('a bad public key %j fails', value => {
    expect(() =>
      parseInputs(reader({ 'binary-cache': 'file:///c', 'binary-cache-public-key': value }))
    ).toThrow(/^Input "binary-cache-public-key": .* is not a Nix public key/)
  })

  test('keys without a cache fail', () => {
    expect(() => parseInputs(reader({ 'binary-cache-secret-key': SECRET }))).toThrow(
      /^Input "binary-cache-secret-key": is set but "binary-cache" is empty$/
    )
    expect(() => parseInputs(reader({ 'binary-cache-public-key': PUBLIC }))).toThrow(
      /^Input "binary-cache-public-key": .* needs "binary-cache"/
    )
  })
})

describe('nix.conf lines, URLs, arguments', () => {
  test('a substituter with its keys, added to what nix.conf has', () => {
    expect(substituterConfLines('http://127.0.0.1:1', [PUBLIC, OTHER_PUBLIC])).toEqual([
      'extra-substituters = http://127.0.0.1:1',
      `extra-trusted-public-keys = ${PUBLIC} ${OTHER_PUBLIC}`
    ])
    expect(substituterConfLines('file:///c', [])).toEqual(['extra-substituters = file:///c'])
  })

  test('a public key that is not the secret key half warns', () => {
    const secretKey = parseNixSecretKey(SECRET)
    binaryCacheConfLines({ url: 'file:///c', secretKey, publicKeys: [PUBLIC] })
    expect(core.warning).not.toHaveBeenCalled()
    binaryCacheConfLines({ url: 'file:///c', secretKey, publicKeys: [OTHER_PUBLIC] })
    expect(core.warning).toHaveBeenCalledWith(
      expect.stringMatching(/does not name the public half of binary-cache-secret-key/)
    )
  })

  test('the push URL keeps the store settings and adds the key file', () => {
    expect(pushStoreUrl('s3://b?region=eu-west-1', '/t/k')).toBe(
      's3://b?region=eu-west-1&secret-key=/t/k'
    )
    expect(pushStoreUrl('http://127.0.0.1:1', '/t/k')).toBe('http://127.0.0.1:1?secret-key=/t/k')
  })

  test('the URL printed has no query and no user information', () => {
    expect(printableStoreUrl('https://user:pw@cache.example.org/x?priority=10')).toBe(
      'https://cache.example.org/x'
    )
    expect(printableStoreUrl('ssh-ng://nix@host')).toBe('ssh-ng://host')
  })

  test('nix copy: derivations as themselves, a log that names what went', () => {
    expect(copyArgs('file:///c?secret-key=/k', ['/nix/store/a-x.drv'], true)).toEqual([
      'copy',
      '--derivation',
      '--log-format',
      'internal-json',
      '--to',
      'file:///c?secret-key=/k',
      '/nix/store/a-x.drv'
    ])
    expect(copyArgs('file:///c', ['/nix/store/b-y'], false)).toEqual([
      'copy',
      '--log-format',
      'internal-json',
      '--to',
      'file:///c',
      '/nix/store/b-y'
    ])
  })

  test('the secret key round-trips to the text Nix reads', () => {
    expect(formatNixSecretKey(parseNixSecretKey(SECRET))).toBe(SECRET)
  })
})

// Lines as Nix 2.8 writes them with --log-format internal-json (abridged).
const COPY_LOG = [
  '@nix {"action":"start","id":1,"level":6,"text":"querying info about missing paths","type":0}',
  '@nix {"action":"start","fields":["/nix/store/9s4b-f","http://c"],"id":2,"level":4,"text":"querying info about \'/nix/store/9s4b-f\' on \'http://c\'","type":109}',
  '@nix {"action":"start","id":3,"level":3,"text":"copying 2 paths","type":103}',
  '@nix {"action":"start","fields":["/nix/store/9s4b-f","local","http://c"],"id":4,"level":3,"text":"copying path","type":100}',
  '@nix {"action":"start","fields":["/nix/store/aaaa-g.drv","local","http://c"],"id":5,"level":3,"text":"copying path","type":100}',
  '@nix {"action":"msg","level":4,"msg":"copying path \'/nix/store/9s4b-f\' (128 bytes) to binary cache"}',
  '@nix {"action":"stop","id":4}',
  'not json',
  '@nix {"action":"msg","level":0,"msg":"\\u001b[31;1merror:\\u001b[0m cannot connect to \'127.0.0.1\'"}'
].join('\n')

describe('what nix copy says', () => {
  test('the paths it sent, sorted, once each', () => {
    expect(parseCopiedPaths(COPY_LOG)).toEqual(['/nix/store/9s4b-f', '/nix/store/aaaa-g.drv'])
    expect(parseCopiedPaths('')).toEqual([])
  })

  test('errors and warnings as text, without colours or JSON', () => {
    expect(logMessages(COPY_LOG)).toBe("not json\nerror: cannot connect to '127.0.0.1'")
  })

  test.each<[string, boolean | null]>([
    ['{"trusted":1,"url":"daemon","version":"2.26.3"}', true],
    ['{"trusted":0,"url":"daemon"}', false],
    ['{"url":"local"}', null],
    ['Store URL: local', null]
  ])('nix store ping %s: trusted %p', (stdout, trusted) => {
    expect(parseTrusted(stdout)).toBe(trusted)
  })
})

describe('pushToBinaryCache (exec mocked)', () => {
  const cache = {
    url: 'http://127.0.0.1:1',
    secretKey: parseNixSecretKey(SECRET),
    publicKeys: [PUBLIC]
  }
  const options = {
    cache,
    flake: '.',
    drvPaths: '/nix/store/d-img.drv',
    storePaths: '/nix/store/o-img'
  }
  const ok = (stdout: string, stderr = '') => ({ exitCode: 0, stdout, stderr })

  /** Answers Nix's questions as a store with `img`, its drv and one dependency would. */
  function nixAnswers(copy: { exitCode: number; stderr: string }, seen: { keyFile?: string }) {
    exec.run.mockImplementation((command: string, args: readonly string[]) => {
      const argv = [command, ...args]
      if (argv.includes('-qR'))
        return Promise.resolve(ok('/nix/store/d-img.drv\n/nix/store/x-dep\n'))
      if (argv.includes('archive')) return Promise.resolve(ok('{"path":"/nix/store/src"}'))
      if (argv.includes('--check-validity')) return Promise.resolve(ok(''))
      if (argv.includes('copy')) {
        const to = argv[argv.indexOf('--to') + 1] ?? ''
        seen.keyFile = to.slice(to.indexOf('secret-key=') + 'secret-key='.length)
        expect(readFileSync(seen.keyFile, 'utf8')).toBe(`${SECRET}\n`)
        expect(statSync(seen.keyFile).mode & 0o777).toBe(0o600)
        return Promise.resolve({ stdout: '', ...copy })
      }
      if (argv.includes('--dump-db')) {
        return Promise.resolve(
          ok(
            '/nix/store/x-dep\n0000000000000000000000000000000000000000000000000000000000000000\n1000\n\n0\n'
          )
        )
      }
      return Promise.reject(new Error(`unexpected ${argv.join(' ')}`))
    })
  }

  beforeEach(() => {
    process.env.RUNNER_TEMP = mkdtempSync(join(tmpdir(), 'nca-bc-'))
  })

  test('sends the closure and reports what the cache lacked; the key file is gone', async () => {
    const seen: { keyFile?: string } = {}
    const log =
      '@nix {"action":"start","fields":["/nix/store/x-dep","local","http://c"],"id":4,"type":100}'
    nixAnswers({ exitCode: 0, stderr: log }, seen)
    const result = await pushToBinaryCache(options)
    expect(result).toMatchObject({
      outcome: 'pushed',
      closureCount: 3,
      paths: ['/nix/store/x-dep']
    })
    expect(result.bytes).toBe(1000)
    expect(pushedOutput(result)).toBe('{"paths":1,"bytes":1000,"closure":3}')
    expect(describePush(result)).toMatch(/^1 of 3 paths sent/)
    expect(existsSync(seen.keyFile ?? '')).toBe(false)
    const copies = exec.run.mock.calls
      .map(call => call[1] as string[])
      .filter(args => args.includes('copy'))
    expect(copies.map(args => args.slice(args.indexOf('--to') + 2))).toEqual([
      ['/nix/store/d-img.drv'],
      ['/nix/store/o-img', '/nix/store/x-dep']
    ])
    expect(copies.map(args => args.includes('--derivation'))).toEqual([true, false])
  })

  test('a failed copy warns with what Nix said, never the key; the key file is gone', async () => {
    const seen: { keyFile?: string } = {}
    const stderr = '@nix {"action":"msg","level":0,"msg":"error: unable to connect"}'
    nixAnswers({ exitCode: 1, stderr }, seen)
    const result = await pushToBinaryCache(options)
    expect(result.outcome).toBe('failed')
    expect(pushedOutput(result)).toBe('{"paths":0,"bytes":0,"closure":3,"failed":true}')
    const warning = String(core.warning.mock.calls[0]?.[0])
    expect(warning).toMatch(
      /Binary cache push failed, the job goes on \(the image came first\).*unable to connect/s
    )
    expect(warning).not.toContain(SECRET.slice(7))
    expect(warning).not.toContain('secret-key=')
    expect(existsSync(seen.keyFile ?? '')).toBe(false)
  })
})
