import { describe, expect, test } from '@jest/globals'
import { InputError, parseInputs, splitList } from '../../src/inputs.js'

/** A reader over the given inputs; everything else is empty, as for an unset input. */
function reader(values: Record<string, string>): (name: string) => string {
  return name => values[name] ?? ''
}

const pushable = { registry: '127.0.0.1:5000' }

describe('parseInputs', () => {
  test('defaults', () => {
    const inputs = parseInputs(reader(pushable))
    expect(inputs).toMatchObject({
      flake: '.',
      attribute: 'container',
      system: null,
      nixArgs: [],
      installNix: true,
      cache: true,
      cacheSave: true,
      build: true,
      load: true,
      push: true,
      pushTool: 'docker',
      image: null,
      tags: [],
      username: null,
      password: null,
      retries: 3,
      reuseFrom: []
    })
  })

  test('reuse-from: tags and full references, digests allowed', () => {
    const digest = `sha256:${'a'.repeat(64)}`
    const inputs = parseInputs(
      reader({ ...pushable, 'reuse-from': `main\nghcr.io/o/base:v1, o/app@${digest}` })
    )
    expect(inputs.reuseFrom).toEqual(['main', 'ghcr.io/o/base:v1', `o/app@${digest}`])
  })

  test('lists: tags by newline or comma, nix-args one per line', () => {
    const inputs = parseInputs(
      reader({
        ...pushable,
        tags: 'v1, latest\n\n ghcr.io/o/app:v1 ',
        'nix-args': '--option\nsandbox, relaxed\n'
      })
    )
    expect(inputs.tags).toEqual(['v1', 'latest', 'ghcr.io/o/app:v1'])
    expect(inputs.nixArgs).toEqual(['--option', 'sandbox, relaxed'])
  })

  test.each(['true', 'True', 'TRUE', 'false', 'False', 'FALSE'])(
    'boolean %s is accepted',
    value => {
      expect(parseInputs(reader({ ...pushable, cache: value })).cache).toBe(
        value.toLowerCase() === 'true'
      )
    }
  )

  test.each<[Record<string, string>, string]>([
    [{ push: 'yes' }, 'Input "push": "yes" is not a boolean: use true or false'],
    [{ load: '1' }, 'Input "load": "1" is not a boolean'],
    [{ 'cache-save': 'tru' }, 'Input "cache-save": "tru" is not a boolean'],
    [{ 'push-tool': 'podman' }, 'Input "push-tool": "podman" is not one of: docker, skopeo'],
    [{ retries: 'three' }, 'Input "retries": "three" is not a whole number from 1 to 20'],
    [{ retries: '0' }, 'Input "retries": "0" is not a whole number'],
    [{ retries: '2.5' }, 'Input "retries": "2.5" is not a whole number'],
    [{ tags: 'v1;rm -rf /' }, 'Input "tags": "v1;rm -rf /" is not a valid image reference'],
    [{ tags: 'v1;id' }, 'Input "tags": "v1;id" is not a valid tag'],
    [{ tags: 'ok, $(id)' }, 'Input "tags": "$(id)" is not a valid tag'],
    [{ tags: '$(touch /tmp/pwned)' }, 'Input "tags": "$(touch /tmp/pwned)" is not a valid'],
    [{ tags: '-v1' }, 'Input "tags": "-v1" is not a valid tag'],
    [
      { tags: 'ghcr.io/o/app:bad tag' },
      'Input "tags": "ghcr.io/o/app:bad tag" is not a valid image reference'
    ],
    [
      { image: 'ghcr.io/o/app:v1' },
      'Input "image": "ghcr.io/o/app:v1" must be a repository without a tag'
    ],
    [{ image: 'ghcr.io//app' }, 'Input "image": "ghcr.io//app" is not a valid image reference'],
    [{ registry: 'ghcr.io/owner' }, 'Input "registry": "ghcr.io/owner" is not a registry host'],
    [
      { systems: 'x86_64-linux, aarch64-linux', system: 'x86_64-linux' },
      'Input "systems": "x86_64-linux, aarch64-linux" cannot go with "system" ("x86_64-linux")'
    ],
    [{ systems: 'x86_64-linux, arm64' }, 'Input "systems": "arm64" is not a Nix system'],
    [
      { systems: 'x86_64-linux, aarch64-linux', merge: 'amd64' },
      'Input "merge": "amd64" cannot go with "systems" ("x86_64-linux, aarch64-linux")'
    ],
    [{ system: 'x86_64 linux' }, 'Input "system": "x86_64 linux" is not a Nix system'],
    [{ attribute: 'a b' }, 'Input "attribute": "a b" must not contain white space'],
    [{ username: 'me' }, 'Input "password": "" is empty but "username" is set'],
    [{ password: 'secret' }, 'Input "username": "" is empty but "password" is set'],
    [
      { 'reuse-from': 'main, ghcr.io/o/app:bad tag' },
      'Input "reuse-from": "ghcr.io/o/app:bad tag" is not a valid image reference'
    ],
    [{ 'reuse-from': '-main' }, 'Input "reuse-from": "-main" is not a reference or tag'],
    [{ 'reuse-from': 'app@sha256:12' }, 'Input "reuse-from": "app@sha256:12" is not a valid']
  ])('bad input %j fails with a message naming it', (values, message) => {
    expect(() => parseInputs(reader({ ...pushable, ...values }))).toThrow(message)
  })

  test('a bad value is an InputError', () => {
    expect(() => parseInputs(reader({ push: 'maybe' }))).toThrow(InputError)
  })

  test.each<[Record<string, string>, string]>([
    [{}, 'Input "image": "" names no registry, so push: true has nowhere to push'],
    [{ image: 'app', tags: 'v1' }, 'Input "image": "app" names no registry'],
    [
      { image: 'ghcr.io/o/app', tags: 'v1, other/app:v2' },
      'Input "tags": "other/app:v2" names no registry'
    ],
    [
      { load: 'false', registry: 'ghcr.io' },
      'Input "load": "false" cannot go with push: true and push-tool: docker'
    ]
  ])('push with nowhere to push or nothing loaded: %j', (values, message) => {
    expect(() => parseInputs(reader(values))).toThrow(message)
  })

  test.each<Record<string, string>>([
    { image: 'ghcr.io/o/app' },
    { tags: 'ghcr.io/o/app:v1,localhost:5000/app:v1' },
    { registry: 'ghcr.io', image: 'o/app', tags: 'v1' },
    { push: 'false' },
    { push: 'false', load: 'false' }
  ])('push destinations that are fine: %j', values => {
    expect(() => parseInputs(reader(values))).not.toThrow()
  })
})

describe('test, test-url, test-timeout', () => {
  test('defaults: no test, 60 s', () => {
    expect(parseInputs(reader(pushable))).toMatchObject({
      test: [],
      testUrl: null,
      testTimeout: 60
    })
  })

  test('test is one argument per line, kept whole (spaces, commas, quotes)', () => {
    const inputs = parseInputs(
      reader({ ...pushable, test: '/bin/sh\n-c\necho "a, b" && exit 0\n', 'test-timeout': '2.5' })
    )
    expect(inputs.test).toEqual(['/bin/sh', '-c', 'echo "a, b" && exit 0'])
    expect(inputs.testTimeout).toBe(2.5)
  })

  test.each(['http://localhost:8080/health', 'https://127.0.0.1/', 'http://[::1]:80/x?y=1'])(
    'test-url %s is accepted',
    url => {
      expect(parseInputs(reader({ ...pushable, 'test-url': url })).testUrl).toBe(url)
    }
  )

  test.each<[Record<string, string>, string]>([
    [
      { test: '/bin/app\n\n--version' },
      'Input "test": "/bin/app\\n\\n--version" has an empty line (line 2)'
    ],
    [{ test: '/bin/app\n  \n-v' }, 'Input "test": "/bin/app\\n  \\n-v" has an empty line'],
    [{ 'test-url': 'localhost:8080' }, 'Input "test-url": "localhost:8080" must be an http://'],
    [{ 'test-url': 'ftp://host/x' }, 'Input "test-url": "ftp://host/x" must be an http://'],
    [{ 'test-url': 'not a url' }, 'Input "test-url": "not a url" is not a URL'],
    [{ 'test-timeout': 'soon' }, 'Input "test-timeout": "soon" is not a number of seconds'],
    [
      { 'test-timeout': '0' },
      'Input "test-timeout": "0" is not a number of seconds greater than 0'
    ],
    [{ 'test-timeout': '-5' }, 'Input "test-timeout": "-5" is not a number of seconds'],
    [{ 'test-timeout': '1e3' }, 'Input "test-timeout": "1e3" is not a number of seconds'],
    [{ 'test-timeout': '99999' }, 'Input "test-timeout": "99999" is not a number of seconds'],
    [
      { test: '/bin/app', merge: 'ghcr.io/o/app:amd64', tags: 'ghcr.io/o/app:v1' },
      'Input "test": "/bin/app" cannot go with "merge"'
    ],
    [
      { 'test-url': 'http://localhost/', merge: 'ghcr.io/o/app:amd64', tags: 'ghcr.io/o/app:v1' },
      'Input "test-url": "http://localhost/" cannot go with "merge"'
    ],
    [{ test: '/bin/app', build: 'false' }, 'Input "test": "/bin/app" needs build: true'],
    [
      { test: '/bin/app', systems: 'riscv64-linux' },
      'Input "systems": "riscv64-linux" has no image of the runner\'s own system'
    ]
  ])('bad test input %j fails before anything runs', (values, message) => {
    expect(() => parseInputs(reader({ ...pushable, ...values }))).toThrow(message)
  })
})

describe('compression, compression-level', () => {
  test.each<[Record<string, string>, unknown]>([
    [{}, { format: 'gzip', level: null }],
    [{ compression: 'zstd' }, { format: 'zstd', level: null }],
    [
      { compression: 'gzip', 'compression-level': '9' },
      { format: 'gzip', level: 9 }
    ],
    [
      { compression: 'zstd', 'compression-level': '19' },
      { format: 'zstd', level: 19 }
    ],
    [{ 'compression-level': '1' }, { format: 'gzip', level: 1 }]
  ])('%o', (values, compression) => {
    expect(parseInputs(reader({ ...pushable, ...values })).compression).toEqual(compression)
  })

  test.each<[Record<string, string>, string]>([
    [{ compression: 'brotli' }, 'Input "compression": "brotli" is not one of: gzip, zstd'],
    [{ compression: 'GZIP' }, 'Input "compression": "GZIP" is not one of: gzip, zstd'],
    [
      { 'compression-level': '10' },
      'Input "compression-level": "10" is not a gzip level: a whole number from 1 to 9'
    ],
    [
      { compression: 'zstd', 'compression-level': '22' },
      'Input "compression-level": "22" is not a zstd level: a whole number from 1 to 19'
    ],
    [{ 'compression-level': '0' }, 'Input "compression-level": "0" is not a gzip level'],
    [{ 'compression-level': 'fast' }, 'Input "compression-level": "fast" is not a gzip level']
  ])('%o fails: %s', (values, message) => {
    expect(() => parseInputs(reader({ ...pushable, ...values }))).toThrow(message)
  })
})

describe('splitList', () => {
  test.each<[string, string[]]>([
    ['', []],
    ['a', ['a']],
    ['a,b', ['a', 'b']],
    ['a\nb\n', ['a', 'b']],
    [' a , ,\n b ', ['a', 'b']]
  ])('%j', (value, expected) => {
    expect(splitList(value)).toEqual(expected)
  })
})
