import { describe, expect, test } from '@jest/globals'
import {
  formatReference,
  parseReference,
  repositoryOf,
  validateRegistry,
  validateTag,
  type ParsedReference
} from '../../src/registry/reference.js'
import { isFullReference, resolveRefs, type ResolveOptions } from '../../src/registry/refs.js'

const HEX = '0123456789abcdef'.repeat(4)
const DIGEST = `sha256:${HEX}`

function ref(
  domain: string | null,
  path: string,
  tag: string | null = null,
  digest: string | null = null,
  lowercased = false
): ParsedReference {
  return { domain, path, tag, digest, lowercased }
}

describe('parseReference: valid', () => {
  test.each<[string, ParsedReference]>([
    ['app', ref(null, 'app')],
    ['app:v1', ref(null, 'app', 'v1')],
    ['owner/app:1.0.0', ref(null, 'owner/app', '1.0.0')],
    ['ghcr.io/owner/app:v1', ref('ghcr.io', 'owner/app', 'v1')],
    ['localhost/app', ref('localhost', 'app')],
    ['localhost:5000/x', ref('localhost:5000', 'x')],
    // No '/': the whole name is a path, so ':5000' is a tag (as in docker).
    ['localhost:5000', ref(null, 'localhost', '5000')],
    ['127.0.0.1:5000/team/app:latest', ref('127.0.0.1:5000', 'team/app', 'latest')],
    ['myhost/app', ref(null, 'myhost/app')],
    ['my-reg.example.com:443/a/b/c', ref('my-reg.example.com:443', 'a/b/c')],
    ['ghcr.io', ref(null, 'ghcr.io')],
    ['a/b/c/d/e:t', ref(null, 'a/b/c/d/e', 't')],
    ['ghcr.io/Owner/App:V1', ref('ghcr.io', 'owner/app', 'V1', null, true)],
    // Capitals alone do not make a domain here (docker's splitDockerDomain would say they do).
    ['Owner/App', ref(null, 'owner/app', null, null, true)],
    ['GHCR.IO/owner/app', ref('GHCR.IO', 'owner/app')],
    ['LOCALHOST/app', ref('LOCALHOST', 'app')],
    ['a__b', ref(null, 'a__b')],
    ['a--b', ref(null, 'a--b')],
    ['a---b/c-d', ref(null, 'a---b/c-d')],
    ['a/b.c_d-e', ref(null, 'a/b.c_d-e')],
    [`app@${DIGEST}`, ref(null, 'app', null, DIGEST)],
    [`ghcr.io/o/app:v1@${DIGEST}`, ref('ghcr.io', 'o/app', 'v1', DIGEST)],
    [`app:${'a'.repeat(128)}`, ref(null, 'app', 'a'.repeat(128))],
    ['app:_x', ref(null, 'app', '_x')],
    ['app:v1.2-rc_3', ref(null, 'app', 'v1.2-rc_3')],
    ['app:LATEST', ref(null, 'app', 'LATEST')],
    ['[::1]:5000/app:v1', ref('[::1]:5000', 'app', 'v1')],
    ['[::1]/app', ref('[::1]', 'app')],
    ['x.io:65535/a', ref('x.io:65535', 'a')],
    ['1.2.3.4/a', ref('1.2.3.4', 'a')],
    ['a-b.c-d.io/x', ref('a-b.c-d.io', 'x')],
    [`${'a'.repeat(255)}:t`, ref(null, 'a'.repeat(255), 't')]
  ])('%s', (value, expected) => {
    expect(parseReference(value)).toEqual(expected)
  })
})

describe('parseReference: invalid', () => {
  test.each<[string, string]>([
    ['', 'reference is empty'],
    ['app:', 'tag is empty'],
    ['owner/app/', 'repository path "owner/app/" ends with "/"'],
    ['/app', 'repository path "/app" starts with "/"'],
    ['a//b', 'repository path "a//b" has an empty component ("//")'],
    ['ghcr.io/', 'repository path is empty'],
    [`@${DIGEST}`, 'repository path is empty'],
    [`app:${'a'.repeat(129)}`, 'is longer than 128 characters (129)'],
    ['a___b', 'path component "a___b" has invalid separator "___"'],
    ['a..b', 'path component "a..b" has invalid separator ".."'],
    ['o/a._b', 'path component "a._b" has invalid separator "._"'],
    ['a-_b', 'invalid separator "-_"'],
    ['-app', 'path component "-app" must start and end with a letter or digit'],
    ['app-', 'path component "app-" must start and end with a letter or digit'],
    ['.app', 'path component ".app" must start and end with a letter or digit'],
    ['o/_x', 'path component "_x" must start and end with a letter or digit'],
    ['app;rm', 'reference contains invalid character ";"'],
    ['app$(id)', 'reference contains invalid character "$"'],
    ['app`id`', 'reference contains invalid character "`"'],
    ['a|b', 'reference contains invalid character "|"'],
    ['a&b', 'reference contains invalid character "&"'],
    ["a'b", 'reference contains invalid character "\'"'],
    ['a"b', 'reference contains invalid character "\\""'],
    ['a>b', 'reference contains invalid character ">"'],
    ['a\\b', 'reference contains invalid character "\\\\"'],
    ['my app', 'reference contains whitespace'],
    ['app\n', 'reference contains whitespace'],
    ['\tapp', 'reference contains whitespace'],
    ['app\u0000', 'reference contains invalid character "\\u0000"'],
    ['caf\u00e9', 'reference contains invalid character "\u00e9"'],
    ['app:v1+build', 'reference contains invalid character "+"'],
    ['app:-v1', 'tag "-v1" must start with a letter, digit or "_"'],
    ['app:.v1', 'tag ".v1" must start with a letter, digit or "_"'],
    ['app:v1:v2', 'path component "app:v1" contains ":"'],
    ['app:a[b', 'tag "a[b" contains invalid character "["'],
    ['app@', 'digest after "@" is empty'],
    ['app@sha256:abc', 'must have 64 lowercase hex digits after "sha256:" (got 3 characters)'],
    [`app@sha256:${HEX.toUpperCase()}`, 'must have 64 lowercase hex digits'],
    [`app@sha256:${HEX}0`, 'must have 64 lowercase hex digits'],
    [`app@md5:${HEX}`, 'digest algorithm "md5" is not supported (only sha256)'],
    [`app@${HEX}`, 'has no algorithm'],
    [`a@b@${DIGEST}`, 'reference has more than one "@"'],
    ['a.b_c/d', 'domain "a.b_c" contains invalid character "_"'],
    ['localhost:/app', 'domain "localhost:" has an empty port after ":"'],
    ['localhost:50a0/app', 'port "50a0" must be digits'],
    ['host:99999/app', 'port 99999 is out of range (1-65535)'],
    ['host:0/app', 'port 0 is out of range (1-65535)'],
    ['ghcr..io/app', 'domain "ghcr..io" has an empty component'],
    ['.ghcr.io/app', 'domain ".ghcr.io" has an empty component'],
    [':5000/app', 'domain ":5000" has an empty host name'],
    ['-ghcr.io/app', 'domain component "-ghcr" must not start or end with "-"'],
    ['my_reg.io/app', 'domain "my_reg.io" contains invalid character "_"'],
    ['[::1/app', 'domain "[::1" has "[" without a closing "]"'],
    ['[zz::1]:5000/app', 'domain "[zz::1]:5000" has an invalid IPv6 address "[zz::1]"'],
    ['[::1]5000/app', 'has "5000" after "]"; expected ":port"'],
    ['[::1]:/app', 'has an empty port'],
    ['a[b/c', 'path component "a[b" contains invalid character "["'],
    [`${'a'.repeat(256)}`, 'is longer than 255 characters (256)'],
    [`ghcr.io/${'a'.repeat(248)}`, 'is longer than 255 characters (256)']
  ])('%j', (value, message) => {
    expect(() => parseReference(value)).toThrow(message)
  })

  test('reports the first error from the left', () => {
    expect(() => parseReference('a___b:-t@md5:x')).toThrow('invalid separator "___"')
    expect(() => parseReference('ab:-t@md5:x')).toThrow('tag "-t" must start')
    expect(() => parseReference('ab:t@md5:x')).toThrow('digest algorithm "md5"')
  })

  test('cuts a long value in the message', () => {
    expect(() => parseReference(`app:${'x'.repeat(200)}`)).toThrow(
      `tag "${'x'.repeat(32)}..." is longer than 128 characters (200)`
    )
  })
})

// The grammar of github.com/distribution/reference (regexp.go) as one regular expression, plus
// docker's domain split and this module's choices (capitals in paths are lower-cased, so they are
// as good as lowercase; "localhost" in any case; ports 1-65535; sha256 only): an oracle.
const alnum = '[a-zA-Z0-9]+'
const pathComponent = `${alnum}(?:(?:[._]|__|[-]+)${alnum})*`
const domainComponent = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])'
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|\\[(?:[a-fA-F0-9:]+)\\])`
const tail = '(?::[\\w][\\w.-]{0,127})?(?:@sha256:[a-f0-9]{64})?'
const namePath = `${pathComponent}(?:/${pathComponent})*`
const WITH_DOMAIN = new RegExp(`^${host}(?::([0-9]+))?/${namePath}${tail}$`)
const WITHOUT_DOMAIN = new RegExp(`^${namePath}${tail}$`)

function grammarAccepts(value: string): boolean {
  const slash = value.indexOf('/')
  const first = slash === -1 ? null : value.slice(0, slash)
  const domainFirst = first !== null && (/[.:]/.test(first) || first.toLowerCase() === 'localhost')
  if (!domainFirst) return WITHOUT_DOMAIN.test(value)
  const match = WITH_DOMAIN.exec(value)
  if (match === null) return false
  const port = match[1]
  return port === undefined || (Number(port) >= 1 && Number(port) <= 65535)
}

function parserAccepts(value: string): boolean {
  try {
    parseReference(value)
    return true
  } catch {
    return false
  }
}

function* allStrings(alphabet: string, maxLength: number): Generator<string> {
  let level = ['']
  for (let length = 1; length <= maxLength; length++) {
    level = level.flatMap(prefix => [...alphabet].map(char => prefix + char))
    yield* level
  }
}

describe('parseReference agrees with the distribution grammar', () => {
  test('on every string up to 5 characters over "a1.-_/:@"', () => {
    const disagreements: string[] = []
    let accepted = 0
    for (const value of allStrings('a1.-_/:@', 5)) {
      const expected = grammarAccepts(value)
      if (expected) accepted++
      if (parserAccepts(value) !== expected) disagreements.push(value)
    }
    expect(disagreements).toEqual([])
    expect(accepted).toBeGreaterThan(500)
  })

  test('on 20000 pseudo-random strings built from reference pieces', () => {
    // Pieces near the grammar's edges, so that many strings are valid and many almost are.
    const hosts = [
      '',
      '',
      'a.b',
      'localhost',
      'LocalHost',
      '[::1]',
      'x--y.z',
      'a-.b',
      'h_1.io',
      'a..b'
    ]
    const ports = ['', '', ':5000', ':', ':0', ':70000', ':5a']
    const tails = ['', '', ':v1', ':V_1.2', ':-x', ':', `@${DIGEST}`, `:v1@${DIGEST}`, '@sha256:ab']
    const pieces = [
      'a',
      'b1',
      'z',
      'a',
      'b1',
      '.',
      '-',
      '--',
      '_',
      '__',
      '/',
      '/',
      ':',
      ':',
      '5000'
    ]
    pieces.push('0', '70000', '[::1]', '[', ']', 'localhost', '@', `@${DIGEST}`, 'sha256:', 'V')
    const random = mulberry32(12345)
    const pick = (list: string[]): string => list[Math.floor(random() * list.length)] ?? ''
    const disagreements: string[] = []
    const accepted: string[] = []
    for (let i = 0; i < 20000; i++) {
      const host = pick(hosts)
      let value = host === '' ? '' : `${host}${pick(ports)}/`
      for (let n = 1 + Math.floor(random() * 6); n > 0; n--) value += pick(pieces)
      value += pick(tails)
      const expected = grammarAccepts(value)
      if (expected) accepted.push(value)
      if (parserAccepts(value) !== expected) disagreements.push(value)
    }
    expect(disagreements).toEqual([])
    // Enough accepted values of each shape for the agreement to mean something.
    const count = (pattern: RegExp): number => accepted.filter(v => pattern.test(v)).length
    expect(count(/^[^/]*[.:][^/]*\//)).toBeGreaterThan(150) // with a domain
    expect(count(/^localhost(:5000)?\//i)).toBeGreaterThan(75)
    expect(count(/^\[::1\]/)).toBeGreaterThan(35)
    expect(count(/:\w[^/]*$/)).toBeGreaterThan(250) // with a tag
    expect(count(/@/)).toBeGreaterThan(120) // with a digest
  })
})

/** Small seeded generator, so the random cases are the same on every run. */
function mulberry32(seed: number): () => number {
  let state = seed
  return () => {
    state = (state + 0x6d2b79f5) | 0
    let t = Math.imul(state ^ (state >>> 15), 1 | state)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('repositoryOf and formatReference', () => {
  test.each<[ParsedReference, string, string]>([
    [ref(null, 'app'), 'app', 'app'],
    [ref('ghcr.io', 'o/app', 'v1'), 'ghcr.io/o/app', 'ghcr.io/o/app:v1'],
    [ref('localhost:5000', 'x', null, DIGEST), 'localhost:5000/x', `localhost:5000/x@${DIGEST}`],
    [ref(null, 'o/app', 'V1', DIGEST), 'o/app', `o/app:V1@${DIGEST}`]
  ])('%j', (parsed, repository, formatted) => {
    expect(repositoryOf(parsed)).toBe(repository)
    expect(formatReference(parsed)).toBe(formatted)
  })

  test.each([
    'app',
    'o/app:v1',
    'ghcr.io/o/app:V1',
    `[::1]:5000/a/b@${DIGEST}`,
    `localhost/a:t@${DIGEST}`,
    'localhost:5000'
  ])('round-trips %s', value => {
    expect(formatReference(parseReference(value))).toBe(value)
  })

  test('renders the lower-cased path', () => {
    expect(formatReference(parseReference('GHCR.io/Owner/App:Tag'))).toBe('GHCR.io/owner/app:Tag')
  })
})

describe('validateTag', () => {
  test.each(['v1', 'latest', 'V1.0', '_', '1', 'sha-abc1234', 'a'.repeat(128)])(
    'accepts %s',
    tag => {
      expect(() => validateTag(tag)).not.toThrow()
    }
  )

  test.each<[string, string]>([
    ['', 'tag is empty'],
    ['a'.repeat(129), 'is longer than 128 characters (129)'],
    ['-x', 'tag "-x" must start with a letter, digit or "_"'],
    ['.x', 'tag ".x" must start with a letter, digit or "_"'],
    ['v 1', 'tag "v 1" contains whitespace'],
    ['v1;', 'tag "v1;" contains invalid character ";"'],
    ['a:b', 'tag "a:b" contains invalid character ":"'],
    ['a/b', 'tag "a/b" contains invalid character "/"'],
    ['a@b', 'tag "a@b" contains invalid character "@"'],
    ['$TAG', 'tag "$TAG" contains invalid character "$"']
  ])('rejects %j', (tag, message) => {
    expect(() => validateTag(tag)).toThrow(message)
  })
})

describe('validateRegistry', () => {
  test.each([
    'ghcr.io',
    '127.0.0.1:5000',
    'localhost',
    'localhost:5000',
    'my-reg.example.com:443',
    '[::1]:5000',
    'Registry.Example.com'
  ])('accepts %s', value => {
    expect(() => validateRegistry(value)).not.toThrow()
  })

  test.each<[string, string]>([
    ['', 'registry host is empty'],
    ['https://ghcr.io', 'without a scheme like "https://"'],
    ['ghcr.io/owner', 'without a path; put the repository path in image'],
    ['myhost', '"myhost" would be read as a repository path, not a host'],
    ['ghcr.io:', 'has an empty port'],
    ['ghcr.io:abc', 'port "abc" must be digits'],
    ['ghcr.io:70000', 'port 70000 is out of range'],
    ['ghcr..io', 'has an empty component'],
    ['reg_1.io', 'contains invalid character "_"'],
    ['ghcr.io ', 'registry host contains whitespace'],
    ['ghcr.io;x', 'registry host contains invalid character ";"'],
    ['-reg.io', 'must not start or end with "-"']
  ])('rejects %j', (value, message) => {
    expect(() => validateRegistry(value)).toThrow(message)
  })
})

function options(o: Partial<ResolveOptions>): ResolveOptions {
  return { image: null, registry: null, tags: [], archiveRepoTag: null, ...o }
}

describe('isFullReference: the one rule for tags, merge and reuse-from entries', () => {
  test.each<[string, boolean]>([
    ['v1', false],
    ['latest', false],
    ['1.2.3-rc_1', false],
    ['o/app', true],
    ['app:v1', true],
    ['ghcr.io/o/app:v1', true],
    [`app@${DIGEST}`, true],
    ['localhost:5000/app', true]
  ])('%s: %s', (entry, full) => {
    expect(isFullReference(entry)).toBe(full)
  })
})

describe('resolveRefs', () => {
  test.each<[string, Partial<ResolveOptions>, string[]]>([
    [
      'bare tags on image',
      { image: 'ghcr.io/o/app', tags: ['v1', 'latest'] },
      ['ghcr.io/o/app:v1', 'ghcr.io/o/app:latest']
    ],
    ['archive image and tag by default', { archiveRepoTag: 'hello:1.0' }, ['hello:1.0']],
    [
      'registry prefixed to the archive image',
      { registry: 'localhost:5000', archiveRepoTag: 'hello:latest' },
      ['localhost:5000/hello:latest']
    ],
    [
      'archive tag on image',
      { image: 'o/app', registry: 'ghcr.io', archiveRepoTag: 'hello:1.2' },
      ['ghcr.io/o/app:1.2']
    ],
    ['latest when the archive has no tag', { archiveRepoTag: 'hello' }, ['hello:latest']],
    ['latest when there is no archive', { image: 'ghcr.io/o/app' }, ['ghcr.io/o/app:latest']],
    [
      'archive repository with bare tags',
      { archiveRepoTag: 'hello:1.0', tags: ['v2'] },
      ['hello:v2']
    ],
    [
      'registry prefixed to image',
      { image: 'o/app', registry: '127.0.0.1:5000', tags: ['v1'] },
      ['127.0.0.1:5000/o/app:v1']
    ],
    [
      'image domain kept over registry',
      { image: 'quay.io/o/app', registry: 'ghcr.io', tags: ['v1'] },
      ['quay.io/o/app:v1']
    ],
    [
      'full references as given',
      { tags: ['ghcr.io/o/app:v1', 'docker.io/o/app:v1'] },
      ['ghcr.io/o/app:v1', 'docker.io/o/app:v1']
    ],
    [
      'bare and full mixed, in order',
      { image: 'ghcr.io/o/app', tags: ['v1', 'quay.io/o/app:v1', 'latest'] },
      ['ghcr.io/o/app:v1', 'quay.io/o/app:v1', 'ghcr.io/o/app:latest']
    ],
    [
      'registry prefixed to a full reference',
      { registry: 'ghcr.io', tags: ['o/app:v1', 'app:v2'] },
      ['ghcr.io/o/app:v1', 'ghcr.io/app:v2']
    ],
    [
      'registry not prefixed to a full reference with a domain',
      { registry: 'ghcr.io', tags: ['localhost:5000/app:v1'] },
      ['localhost:5000/app:v1']
    ],
    [
      'latest for a full reference without a tag',
      { archiveRepoTag: 'hello:1.0', tags: ['ghcr.io/o/app'] },
      ['ghcr.io/o/app:latest']
    ],
    [
      'duplicates removed, first kept',
      {
        image: 'ghcr.io/o/app',
        tags: ['v1', 'latest', 'v1', 'ghcr.io/o/app:v1', 'ghcr.io/O/App:latest']
      },
      ['ghcr.io/o/app:v1', 'ghcr.io/o/app:latest']
    ],
    [
      'tags keep their case',
      { image: 'ghcr.io/o/app', tags: ['V1', 'v1'] },
      ['ghcr.io/o/app:V1', 'ghcr.io/o/app:v1']
    ],
    [
      'empty entries ignored',
      { image: 'o/app', archiveRepoTag: 'x:7', tags: ['', 'v1', ''] },
      ['o/app:v1']
    ],
    [
      'only empty entries fall back to the archive tag',
      { image: 'o/app', archiveRepoTag: 'x:7', tags: [''] },
      ['o/app:7']
    ],
    [
      'docker/metadata-action output',
      { tags: ['ghcr.io/owner/repo:main', 'ghcr.io/owner/repo:sha-860c190'] },
      ['ghcr.io/owner/repo:main', 'ghcr.io/owner/repo:sha-860c190']
    ],
    [
      'IPv6 registry',
      { image: 'app', registry: '[::1]:5000', tags: ['v1'] },
      ['[::1]:5000/app:v1']
    ],
    [
      'localhost image domain',
      { image: 'localhost:5000/app', tags: ['t'] },
      ['localhost:5000/app:t']
    ],
    // The archive is not read when nothing is taken from it.
    [
      'unused invalid archive ignored',
      { image: 'o/app', tags: ['v1'], archiveRepoTag: 'bad name' },
      ['o/app:v1']
    ],
    [
      'unused archive with full references',
      { tags: ['ghcr.io/o/a:v1'], archiveRepoTag: 'bad name' },
      ['ghcr.io/o/a:v1']
    ]
  ])('%s', (_name, o, refs) => {
    expect(resolveRefs(options(o)).refs).toEqual(refs)
  })

  test('lower-cases an image path with a notice, keeping the domain and the tags', () => {
    expect(resolveRefs(options({ image: 'GHCR.io/Owner/App', tags: ['V1', 'latest'] }))).toEqual({
      refs: ['GHCR.io/owner/app:V1', 'GHCR.io/owner/app:latest'],
      notices: [
        'image "GHCR.io/Owner/App" lower-cased to "GHCR.io/owner/app" (repository paths must be lowercase)'
      ]
    })
  })

  test('the example from the design: ghcr.io/${{ github.repository }}', () => {
    expect(resolveRefs(options({ image: 'ghcr.io/Owner/App', tags: ['v1'] })).notices).toEqual([
      'image "ghcr.io/Owner/App" lower-cased to "ghcr.io/owner/app" (repository paths must be lowercase)'
    ])
  })

  test('image as a capitalised path with a registry', () => {
    expect(resolveRefs(options({ image: 'Owner/App', registry: 'ghcr.io', tags: ['v1'] }))).toEqual(
      {
        refs: ['ghcr.io/owner/app:v1'],
        notices: [
          'image "Owner/App" lower-cased to "owner/app" (repository paths must be lowercase)'
        ]
      }
    )
  })

  test('notices for full references in tags, once each', () => {
    expect(
      resolveRefs(
        options({ tags: ['ghcr.io/Owner/App:V1', 'ghcr.io/Owner/App:V1', 'ghcr.io/o/b:v1'] })
      )
    ).toEqual({
      refs: ['ghcr.io/owner/app:V1', 'ghcr.io/o/b:v1'],
      notices: [
        'tags entry "ghcr.io/Owner/App:V1" lower-cased to "ghcr.io/owner/app:V1" (repository paths must be lowercase)'
      ]
    })
  })

  test('notice for the archive image when it is used', () => {
    expect(resolveRefs(options({ archiveRepoTag: 'Hello:Latest' }))).toEqual({
      refs: ['hello:Latest'],
      notices: [
        'image from the built archive "Hello:Latest" lower-cased to "hello:Latest" (repository paths must be lowercase)'
      ]
    })
  })

  test('no archive notice when only its tag is used', () => {
    expect(resolveRefs(options({ image: 'o/app', archiveRepoTag: 'Hello:Latest' }))).toEqual({
      refs: ['o/app:Latest'],
      notices: []
    })
  })

  test('no notices for lowercase input', () => {
    expect(
      resolveRefs(options({ image: 'ghcr.io/o/app', tags: ['v1', 'ghcr.io/o/b:V2'] })).notices
    ).toEqual([])
  })

  test.each<[string, Partial<ResolveOptions>, string]>([
    [
      'image with a tag',
      { image: 'ghcr.io/o/app:v1' },
      'invalid image "ghcr.io/o/app:v1": image must not have a tag; use tags'
    ],
    [
      'registry given as image',
      { image: 'localhost:5000' },
      'if this is a registry host, use registry'
    ],
    [
      'image with a digest',
      { image: `ghcr.io/o/app@${DIGEST}` },
      'a digest reference cannot be tagged or pushed to'
    ],
    [
      'invalid image',
      { image: 'ghcr.io/o/a___b', tags: ['v1'] },
      'invalid image "ghcr.io/o/a___b": path component "a___b" has invalid separator "___"'
    ],
    [
      'image with whitespace',
      { image: 'o/app; rm -rf /', tags: ['v1'] },
      'invalid image "o/app; rm -rf /": reference contains invalid character ";"'
    ],
    [
      'tags entry with a digest',
      { tags: [`ghcr.io/o/app@${DIGEST}`] },
      `invalid tags entry "ghcr.io/o/app@${DIGEST}": a digest reference`
    ],
    [
      'invalid bare tag',
      { image: 'o/app', tags: ['v1', 'v 2'] },
      'invalid tags entry "v 2": tag "v 2" contains whitespace'
    ],
    [
      'too long bare tag',
      { image: 'o/app', tags: ['t'.repeat(129)] },
      'is longer than 128 characters (129)'
    ],
    [
      'invalid full reference',
      { tags: ['ghcr.io/o/app:'] },
      'invalid tags entry "ghcr.io/o/app:": tag is empty'
    ],
    [
      'trailing slash in tags',
      { tags: ['ghcr.io/o/'] },
      'invalid tags entry "ghcr.io/o/": repository path "o/" ends with "/"'
    ],
    [
      'bare tag with no image',
      { tags: ['ghcr.io/o/app:v1', 'v1'] },
      'tags entry "v1" is a bare tag, but there is no image to tag: set image'
    ],
    ['nothing to tag', {}, 'tags is empty, but there is no image to tag: set image'],
    [
      'registry without a dot',
      { image: 'o/app', registry: 'myhost' },
      'invalid registry "myhost": "myhost" would be read as a repository path'
    ],
    [
      'registry with a scheme',
      { image: 'o/app', registry: 'https://ghcr.io' },
      'invalid registry "https://ghcr.io": must be a host'
    ],
    [
      'invalid archive image when used',
      { archiveRepoTag: 'bad name' },
      'invalid image from the built archive "bad name": reference contains whitespace'
    ],
    [
      'too long after the registry prefix',
      { registry: 'ghcr.io', tags: [`${'a'.repeat(250)}:v1`] },
      'is longer than 255 characters (258)'
    ]
  ])('%s', (_name, o, message) => {
    expect(() => resolveRefs(options(o))).toThrow(message)
  })
})
