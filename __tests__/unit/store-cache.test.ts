import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import type * as actionsCache from '@actions/cache'
import * as core from '../../__fixtures__/core.js'
import type { SaveFacts } from '../../src/cache/save-rules.js'
import type { Registration } from '../../src/cache/store-archive.js'
import * as exec from '../../__fixtures__/exec.js'
import { tarball } from '../tar-members.js'

const cache = {
  isFeatureAvailable: jest.fn<typeof actionsCache.isFeatureAvailable>(),
  saveCache: jest.fn<typeof actionsCache.saveCache>()
}
// The look-up and download (the client's own modules, without its extraction): each test says
// what the service holds; the archive it downloads is then extracted for real.
const download = {
  downloadArchive:
    jest.fn<
      (
        paths: string[],
        primaryKey: string,
        restoreKeys: string[],
        archivePath: string
      ) => Promise<string | null>
    >()
}
// The real CommandError and settleAll: only commands are mocked.
const { CommandError, settleAll } = await import('../../src/exec.js')
jest.unstable_mockModule('../../src/core.js', () => core)
jest.unstable_mockModule('@actions/cache', () => cache)
jest.unstable_mockModule('../../src/cache/download.js', () => download)
jest.unstable_mockModule('../../src/exec.js', () => ({ ...exec, CommandError, settleAll }))
const { restoreStoreCache, saveStoreCache } = await import('../../src/stages/store-cache.js')
const { cacheKeys, deltaKey, isExactHit, isSameLock, parseEntryKey, shortHash } =
  await import('../../src/cache/keys.js')
const { parseManifest } = await import('../../src/cache/manifest.js')
const { closureSkipReason, pathsNotRestored, saveSkipReason } =
  await import('../../src/cache/save-rules.js')
const { parseFlakeArchive, parseFlakeMetadata } = await import('../../src/cache/nix-store.js')
const { wholeClosures } = await import('../../src/cache/restore.js')
const { supersededEntries } = await import('../../src/cache/prune.js')
const { balance, formatRegistrations, hashMismatches, parseRegistrations, restoreMethod } =
  await import('../../src/cache/store-archive.js')

const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' })
const p = (name: string) => `/nix/store/${'a'.repeat(32)}-${name}`
const noInputs = { sourceHash: 'sha256-src', lock: null }
/** The keys of a commit of an input-less flake whose source hashes to `sourceHash`. */
const commitKeys = (sourceHash = 'sha256-src') =>
  cacheKeys({
    system: 'x86_64-linux',
    attribute: 'container',
    metadata: { ...noInputs, sourceHash },
    override: null
  })
/** A store path with a hash part of its own: `h('img', 1)`. */
const h = (name: string, n: number) => `/nix/store/${String(n).padStart(32, '0')}-${name}`
const HASH = 'ab'.repeat(32)
/** `nix hash path --base16` of a file holding `restored`. */
const RESTORED_NAR_HASH = '3cb2f663406677e1196f43d0015b785d05fbfe1b12142fc2a5e154c35b56d128'
/** A registration of `size` bytes with the given references. */
const reg = (path: string, narSize = 0, references: string[] = []): Registration => ({
  path,
  narHash: HASH,
  narSize,
  deriver: '',
  references
})

let workDir: string
// The v1 service as the runner sets it up, but for the URL: each test says whether there is
// one (serviceUrl), as the runner would by setting ACTIONS_CACHE_URL.
const SERVICE_ENV = [
  'ACTIONS_RUNTIME_TOKEN',
  'ACTIONS_CACHE_SERVICE_V2',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_CACHE_URL'
]
function serviceUrl(set: boolean): void {
  if (set) process.env.ACTIONS_CACHE_URL = 'http://cache.unit.test/'
  else delete process.env.ACTIONS_CACHE_URL
}
const savedEnv = SERVICE_ENV.map(name => [name, process.env[name]] as const)
beforeEach(async () => {
  jest.resetAllMocks()
  workDir = await mkdtemp(join(tmpdir(), 'nca-unit-cache-'))
  for (const name of SERVICE_ENV) delete process.env[name]
  process.env.ACTIONS_RUNTIME_TOKEN = 'unit-test-token'
})
afterEach(async () => {
  await rm(workDir, { recursive: true, force: true })
  for (const [name, value] of savedEnv) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
})

describe('cacheKeys', () => {
  const base = 'nix-container-store/x86_64-linux/container/'
  const src = shortHash('sha256-src')
  /** The keys of a commit: its delta prefix and base come first, then the lock, then the scope. */
  const layered = (scope: string, lock: string) => ({
    primary: `${scope}${lock}source-${src}`,
    restore: [
      `${scope}${lock}source-${src}/`,
      `${scope}${lock}base-${src}`,
      `${scope}${lock}`,
      scope
    ],
    layers: {
      lock: `${scope}${lock}`,
      base: `${scope}${lock}base-${src}`,
      deltaPrefix: `${scope}${lock}source-${src}/`
    },
    scope
  })
  test.each([
    [
      'no flake.lock',
      { system: 'x86_64-linux', attribute: 'container', metadata: noInputs, override: null },
      layered(base, 'lock-none/')
    ],
    [
      'a lock',
      {
        system: 'x86_64-linux',
        attribute: 'container',
        metadata: { sourceHash: 'sha256-src', lock: '{"nodes":{}}' },
        override: null
      },
      layered(base, `lock-${shortHash('{"nodes":{}}')}/`)
    ],
    [
      'cache-key replaces the primary key, and entries are whole',
      { system: 'x86_64-linux', attribute: 'container', metadata: noInputs, override: 'mine' },
      { primary: 'mine', restore: [`${base}lock-none/`, base], layers: null, scope: base }
    ],
    [
      'an attribute with a comma and a slash is encoded',
      { system: 'aarch64-linux', attribute: 'a,b/c', metadata: noInputs, override: null },
      layered('nix-container-store/aarch64-linux/a%2Cb%2Fc/', 'lock-none/')
    ]
  ])('%s', (_name, facts, expected) => {
    expect(cacheKeys(facts)).toEqual(expected)
  })

  test('a delta names its base; each key reads back as what it is', () => {
    const keys = commitKeys()
    const older = commitKeys('sha256-older')
    const olderBase = older.layers?.base ?? ''
    const delta = deltaKey(keys, olderBase)
    expect(delta).toBe(`${keys.primary}/on-base-${shortHash('sha256-older')}`)
    expect(parseEntryKey(delta)).toEqual({
      kind: 'delta',
      key: delta,
      lock: `${base}lock-none/`,
      base: olderBase
    })
    expect(parseEntryKey(olderBase)).toEqual({
      kind: 'base',
      key: olderBase,
      lock: `${base}lock-none/`
    })
    expect(parseEntryKey('mine')).toEqual({ kind: 'whole', key: 'mine' })
    expect(isExactHit(keys, delta)).toBe(true)
    expect(isExactHit(keys, keys.layers?.base ?? '')).toBe(true)
    expect(isExactHit(keys, olderBase)).toBe(false)
    expect(isExactHit(older, delta)).toBe(false)
  })

  test('a delta builds only on a base of the same lock', () => {
    const facts = { system: 'x86_64-linux', attribute: 'container', override: null }
    const keys = cacheKeys({ ...facts, metadata: noInputs })
    const otherLock = cacheKeys({ ...facts, metadata: { ...noInputs, lock: '{"nodes":{"a":1}}' } })
    expect(isSameLock(keys, otherLock.layers?.base ?? '')).toBe(false)
    expect(() => deltaKey(keys, otherLock.layers?.base ?? '')).toThrow('not a base of this lock')
    expect(() => deltaKey(keys, 'mine')).toThrow('not a base of this lock')
  })

  test("one attribute's restore keys never match another attribute's entries", () => {
    const facts = { system: 'x86_64-linux', metadata: noInputs, override: null }
    const short = cacheKeys({ ...facts, attribute: 'container' })
    const long = cacheKeys({ ...facts, attribute: 'container-zstd' })
    for (const key of short.restore) expect(long.primary.startsWith(key)).toBe(false)
  })

  test('the source and the lock change the key; the same facts give the same key', () => {
    const facts = {
      system: 'x86_64-linux',
      attribute: 'container',
      metadata: noInputs,
      override: null
    }
    expect(cacheKeys(facts)).toEqual(cacheKeys({ ...facts }))
    const edited = cacheKeys({ ...facts, metadata: { ...noInputs, sourceHash: 'sha256-other' } })
    expect(edited.primary).not.toBe(cacheKeys(facts).primary)
    // The lock and the scope are shared: a later commit falls back to this one's entries.
    expect(edited.restore.slice(2)).toEqual(cacheKeys(facts).restore.slice(2))
  })
})

describe('saveSkipReason', () => {
  const facts: SaveFacts = {
    cacheSave: true,
    serviceMissing: null,
    primaryKey: 'k',
    exactHit: null,
    built: true
  }
  test.each<[string, Partial<SaveFacts>, string | null]>([
    ['a miss saves', {}, null],

    ['cache-save: false', { cacheSave: false }, 'cache-save: false'],
    [
      'no service',
      { serviceMissing: 'no cache service: ACTIONS_CACHE_URL is not set' },
      'no cache service: ACTIONS_CACHE_URL is not set'
    ],
    ['no key', { primaryKey: null }, 'no cache key'],
    ['the build did not run', { built: false }, 'the build did not run'],
    ['an exact hit', { exactHit: 'k/on-base-x' }, 'exact hit on k/on-base-x']
  ])('%s', (_name, change, reason) => {
    const result = saveSkipReason({ ...facts, ...change })
    if (reason === null) expect(result).toBeNull()
    else expect(result).toContain(reason)
  })
})

describe('pathsNotRestored and closureSkipReason', () => {
  test.each<[string[], string[], string[]]>([
    [[p('a'), p('b')], [], [p('a'), p('b')]],
    [[p('a'), p('b')], [p('a')], [p('b')]],
    [[p('a')], [p('a'), p('b')], []],
    [[], [], []]
  ])('closure %j, restored %j', (closure, restored, expected) => {
    expect(pathsNotRestored(closure, restored)).toEqual(expected)
    const reason = closureSkipReason(closure, restored)
    if (expected.length > 0) expect(reason).toBeNull()
    else expect(reason).toContain('holds no path that the restored cache did not already have')
  })
})

describe('parseManifest', () => {
  test('a manifest of store paths', () => {
    expect(parseManifest(JSON.stringify({ version: 2, paths: [p('x'), p('y.drv')] }))).toEqual({
      version: 2,
      paths: [p('x'), p('y.drv')]
    })
  })
  test.each([
    ['an older layout', { version: 1, paths: [] }, 'version 1'],
    ['not a store path', { version: 2, paths: ['/etc/passwd'] }, 'not a store path'],
    ['a newline in a path', { version: 2, paths: [`${p('x')}\n${p('y')}`] }, 'not a store path']
  ])('%s is refused', (_name, json, message) => {
    expect(() => parseManifest(JSON.stringify(json))).toThrow(message)
  })
})

describe('parseRegistrations and formatRegistrations', () => {
  // As `nix-store --dump-db` prints them: the second path has a deriver and two references.
  const text = [
    h('src', 1),
    HASH,
    '120',
    '',
    '0',
    h('img', 2),
    'cd'.repeat(32),
    '4096',
    h('img.drv', 3),
    '2',
    h('img', 2),
    h('src', 1),
    ''
  ].join('\n')

  test('each path with its hash, size, deriver and references; and back', () => {
    const parsed = parseRegistrations(text)
    expect(parsed).toEqual([
      reg(h('src', 1), 120),
      {
        path: h('img', 2),
        narHash: 'cd'.repeat(32),
        narSize: 4096,
        deriver: h('img.drv', 3),
        references: [h('img', 2), h('src', 1)]
      }
    ])
    expect(formatRegistrations(parsed)).toBe(text)
  })

  test.each([
    ['a hash that is not base16 sha256', text.replace(HASH, 'sha256:xyz')],
    ['a truncated entry', text.split('\n').slice(0, 11).join('\n')]
  ])('%s is refused', (_name, bad) => {
    expect(() => parseRegistrations(bad)).toThrow(/registration/)
  })
})

describe('restoreMethod', () => {
  const local = { nixRemote: null, storeWritable: true, dbWritable: true }
  test.each([
    ['a store this process owns', local, { fast: true }],
    ['NIX_REMOTE=local', { ...local, nixRemote: 'local' }, { fast: true }],
    [
      'NIX_REMOTE=daemon',
      { ...local, nixRemote: 'daemon' },
      { fast: false, reason: expect.stringContaining('NIX_REMOTE=daemon') }
    ],
    [
      'a read-only store',
      { ...local, storeWritable: false },
      { fast: false, reason: expect.stringContaining('not writable') }
    ],
    [
      'a database of another user',
      { ...local, dbWritable: false },
      { fast: false, reason: expect.stringContaining('daemon store') }
    ]
  ])('%s', (_name, facts, expected) => {
    expect(restoreMethod(facts)).toEqual(expected)
  })
})

describe('hashMismatches', () => {
  test('a different or missing hash is a mismatch', () => {
    const entries = [reg(h('a', 1)), reg(h('b', 2)), reg(h('c', 3))]
    expect(hashMismatches(entries, [HASH, 'ff'.repeat(32)])).toEqual([entries[1], entries[2]])
    expect(hashMismatches(entries, [HASH, HASH, `${HASH}\n`])).toEqual([])
  })
})

describe('balance', () => {
  test.each<[string, number[], number, number[][]]>([
    [
      'equal sizes',
      [50, 50, 50, 50, 50, 50],
      2,
      [
        [0, 2, 4],
        [1, 3, 5]
      ]
    ],
    ['one big, many small', [100, 10, 10, 10], 2, [[0], [1, 2, 3]]],
    ['more lanes than paths', [5, 5], 4, [[0], [1]]],
    ['one lane', [1, 2], 1, [[1, 0]]]
  ])('%s', (_name, sizes, lanes, expected) => {
    const entries = sizes.map((size, i) => reg(h(`p${i}`, i), size))
    expect(balance(entries, lanes)).toEqual(expected.map(g => g.map(i => entries[i])))
  })
})

describe('parseFlakeArchive', () => {
  test("every input's source, however deep, without the flake's own", () => {
    const json = {
      path: h('source', 1),
      inputs: {
        a: { path: h('source', 2), inputs: { b: { path: h('source', 3), inputs: {} } } },
        c: { path: h('source', 3), inputs: {} }
      }
    }
    expect(parseFlakeArchive(JSON.stringify(json))).toEqual([h('source', 2), h('source', 3)])
    expect(parseFlakeArchive(JSON.stringify({ path: h('source', 1), inputs: {} }))).toEqual([])
  })
})

describe('parseFlakeMetadata', () => {
  test('no inputs: no lock', () => {
    const json = { locked: { narHash: 'sha256-x' }, locks: { nodes: { root: {} }, root: 'root' } }
    expect(parseFlakeMetadata(JSON.stringify(json))).toEqual({ sourceHash: 'sha256-x', lock: null })
  })
  test('inputs: the lock as Nix read it', () => {
    const locks = { nodes: { root: { inputs: { n: 'n' } }, n: {} }, root: 'root', version: 7 }
    const json = { path: '/nix/store/x-source', locks }
    expect(parseFlakeMetadata(JSON.stringify(json))).toEqual({
      sourceHash: '/nix/store/x-source',
      lock: JSON.stringify(locks)
    })
  })
})

// --- the stage, with nix and the cache service mocked --------------------------------------

const options = () => ({
  flake: '.',
  attribute: 'container',
  system: 'x86_64-linux',
  cacheKey: null,
  workDir
})

/** `nix flake metadata` then whatever each test scripts. */
function scriptNix(...results: { exitCode: number; stdout: string; stderr: string }[]) {
  exec.run.mockResolvedValueOnce(ok(JSON.stringify({ locked: { narHash: 'sha256-src' } })))
  for (const result of results) exec.run.mockResolvedValueOnce(result)
}

/**
 * The service holds `key`, whose archive (a plain tar, as GNU tar writes it) is the base layer's
 * folder as `fill` writes it under `dir`.
 */
function servesEntry(key: string, fill: (dir: string) => Promise<void>) {
  download.downloadArchive.mockImplementationOnce(async (_paths, _primary, _restore, archive) => {
    const source = await mkdtemp(join(tmpdir(), 'nca-unit-entry-'))
    try {
      const dir = join(source, 'nix-container-action-store-v3', 'base')
      await mkdir(join(dir, 'store'), { recursive: true })
      await fill(dir)
      execFileSync('tar', [
        '--posix',
        '-cf',
        archive,
        '-C',
        source,
        'nix-container-action-store-v3'
      ])
    } finally {
      await rm(source, { recursive: true, force: true })
    }
    return key
  })
}

/** The service holds `key`, an entry whose manifest (of `version`) lists paths. */
function restoresEntry(key: string, paths: string[], version = 2) {
  servesEntry(key, async dir => {
    await writeFile(join(dir, 'nix-container-action.json'), JSON.stringify({ version, paths }))
    await writeFile(join(dir, 'registration'), formatRegistrations(paths.map(path => reg(path))))
  })
}

describe('restoreStoreCache', () => {
  beforeEach(() => {
    // A store of its own, writable: the archive is staged beside it.
    process.env.NIX_STORE_DIR = join(workDir, 'store')
    process.env.NIX_STATE_DIR = workDir
  })
  afterEach(() => {
    delete process.env.NIX_STORE_DIR
    delete process.env.NIX_STATE_DIR
  })

  test('no cache service: keys are computed, nothing is restored', async () => {
    scriptNix()
    serviceUrl(false)
    const result = await restoreStoreCache(options())
    expect(result.outcome).toBe('unavailable')
    expect(result.reason).toBe('no cache service: ACTIONS_CACHE_URL is not set')
    expect(result.keys?.primary).toMatch(
      /^nix-container-store\/x86_64-linux\/container\/lock-none\//
    )
    expect(download.downloadArchive).not.toHaveBeenCalled()
  })

  test('a miss', async () => {
    scriptNix()
    serviceUrl(true)
    download.downloadArchive.mockResolvedValueOnce(null)
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'miss', hit: false, restoredKey: null })
    expect(process.cwd()).not.toContain(workDir)
  })

  test('an archive of an older layout is a warning and a miss; its staging directory goes', async () => {
    await mkdir(join(workDir, 'store'))
    scriptNix()
    serviceUrl(true)
    restoresEntry(baseKeyOf('sha256-older'), [p('a')], 1)
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'failed', restoredKey: null, hit: false })
    expect(core.warning).toHaveBeenCalledWith(expect.stringContaining('version 1, not 2'))
    expect(await readdir(join(workDir, 'store'))).toEqual([])
  })

  test('an entry with a member outside its folder is discarded whole, the member named', async () => {
    const storeDir = join(workDir, 'store')
    await mkdir(storeDir)
    const target = join(workDir, 'outside', 'pwned')
    const paths = [`${storeDir}/${'a'.repeat(32)}-x`]
    scriptNix()
    serviceUrl(true)
    download.downloadArchive.mockImplementationOnce(async (_paths, _primary, _restore, archive) => {
      const base = 'nix-container-action-store-v3/base'
      const registration = formatRegistrations(paths.map(path => reg(path)))
      const manifest = JSON.stringify({ version: 2, paths })
      await writeFile(
        archive,
        tarball([
          { path: `${base}/store/${basename(paths[0] ?? '')}`, data: 'x' },
          { path: `${base}/registration`, data: registration },
          { path: `${base}/nix-container-action.json`, data: manifest },
          { path: target, data: 'pwned' }
        ])
      )
      return baseKeyOf('sha256-src')
    })
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'failed', restoredKey: null, hit: false })
    expect(core.warning).toHaveBeenCalledWith(
      `Store cache: restore failed, building without the cache: the entry ${baseKeyOf('sha256-src')} was discarded: its member ${JSON.stringify(target)} is an absolute name`
    )
    expect(existsSync(target)).toBe(false)
    expect(existsSync(join(workDir, 'outside'))).toBe(false)
    // Nothing of it stays: not its staging folder beside the store, not its archive.
    expect(await readdir(storeDir)).toEqual([])
    expect((await readdir(workDir)).filter(name => name.startsWith('entry-'))).toEqual([])
    expect(exec.run).toHaveBeenCalledTimes(1) // `nix flake metadata` only: nothing registered
  })

  test('paths all valid already: nothing is hashed, moved or registered', async () => {
    const storeDir = join(workDir, 'store')
    await mkdir(storeDir)
    const paths = [`${storeDir}/${'a'.repeat(32)}-x`, `${storeDir}/${'b'.repeat(32)}-y`]
    scriptNix(ok()) // --check-validity --print-invalid: none
    serviceUrl(true)
    restoresEntry(baseKeyOf('sha256-src'), paths)
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'restored', hit: true, pathCount: 2, importedCount: 0 })
    expect(exec.run).toHaveBeenCalledTimes(2)
    const record = JSON.parse(await readFile(result.recordFile, 'utf8')) as { layers: unknown }
    expect(record.layers).toEqual([
      { key: baseKeyOf('sha256-src'), kind: 'base', paths, narBytes: 0 }
    ])
    expect(await readdir(storeDir)).toEqual([])
  })

  test('in a store this process writes, only paths with a file there are asked of Nix', async () => {
    const storeDir = join(workDir, 'store')
    await mkdir(join(workDir, 'db'), { recursive: true })
    await mkdir(storeDir)
    const present = `${storeDir}/${'a'.repeat(32)}-present`
    const absent = `${storeDir}/${'b'.repeat(32)}-absent`
    await writeFile(present, 'valid already')
    // --check-validity (present: valid), --load-db: the absent one's NAR hash is computed as
    // it is extracted, no `nix hash path`.
    scriptNix(ok(), ok())
    serviceUrl(true)
    servesEntry(baseKeyOf('sha256-src'), async dir => {
      await writeFile(join(dir, 'store', basename(absent)), 'restored')
      const paths = [present, absent]
      await writeFile(join(dir, 'nix-container-action.json'), JSON.stringify({ version: 2, paths }))
      const registrations = [reg(present), { ...reg(absent), narHash: RESTORED_NAR_HASH }]
      await writeFile(join(dir, 'registration'), formatRegistrations(registrations))
    })
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'restored', importedCount: 1 })
    // No `nix hash path`: the metadata, the validity check, the registration.
    expect(exec.run).toHaveBeenCalledTimes(3)
    expect(exec.run.mock.calls.map(([command, args]) => [command, args.at(-1)])).toEqual([
      ['nix', '.'],
      ['nix-store', present],
      ['nix-store', '--load-db']
    ])
    const validity = exec.run.mock.calls.find(([, args]) => args.includes('--check-validity'))
    expect(validity?.[1]).toEqual(['--check-validity', '--print-invalid', present])
    expect(await readFile(absent, 'utf8')).toBe('restored')
    expect(await readFile(present, 'utf8')).toBe('valid already')
  })
})

/** The base key of a commit whose source hashes to `sourceHash`. */
const baseKeyOf = (sourceHash: string) => commitKeys(sourceHash).layers?.base ?? ''

describe('saveStoreCache', () => {
  const keys = commitKeys()
  const olderBase = baseKeyOf('sha256-older')
  const save = {
    flake: '.',
    cacheSave: true,
    primaryKey: keys.primary,
    restoredKey: olderBase,
    recordFile: '',
    githubToken: null,
    startedAt: null,
    drvPath: p('img.drv'),
    storePath: p('img'),
    workDir: ''
  }
  const input = h('source', 7)

  /** The closure is img + img.drv; the flake has one input, valid in the store. Each path's
   * NAR is `sizes[path]` bytes (100 unless given). */
  function scriptStore(sizes: Record<string, number> = {}) {
    exec.run.mockImplementation((_command, args) => {
      if (args.includes('-qR')) return Promise.resolve(ok(`${p('img.drv')}\n${p('img')}\n`))
      if (args.includes('archive')) {
        const json = { path: h('source', 1), inputs: { dep: { path: input, inputs: {} } } }
        return Promise.resolve(ok(JSON.stringify(json)))
      }
      if (args.includes('--dump-db')) {
        const paths = args.filter(a => a.startsWith('/nix/store/'))
        return Promise.resolve(ok(formatRegistrations(paths.map(x => reg(x, sizes[x] ?? 100)))))
      }
      return Promise.resolve(ok())
    })
  }

  /** Main's record: the base restored held `paths`, of `narBytes`. */
  async function restored(paths: string[], narBytes = 1000) {
    const recordFile = join(workDir, 'restored.json')
    const layers = [{ key: olderBase, kind: 'base', paths, narBytes }]
    await writeFile(recordFile, JSON.stringify({ keys, layers }))
    return recordFile
  }

  test('skips, saying why, when the closure and inputs hold nothing the restored entry lacked', async () => {
    serviceUrl(true)
    scriptStore()
    const recordFile = await restored([p('img'), p('img.drv'), input])
    const result = await saveStoreCache({ ...save, recordFile, workDir })
    expect(result).toEqual({
      saved: false,
      reason: 'the closure holds no path that the restored cache did not already have (3 paths)'
    })
    expect(cache.saveCache).not.toHaveBeenCalled()
  })

  test('an exact hit on its own delta saves nothing', async () => {
    serviceUrl(true)
    const recordFile = await restored([p('img')])
    const restoredKey = deltaKey(keys, olderBase)
    const result = await saveStoreCache({ ...save, restoredKey, recordFile, workDir })
    expect(result).toEqual({ saved: false, reason: expect.stringContaining('exact hit') })
  })

  test('a small addition to a restored base of the lock is a delta of the new paths only', async () => {
    serviceUrl(true)
    scriptStore()
    const recordFile = await restored([p('img.drv'), input])
    cache.saveCache.mockResolvedValueOnce(1)
    const result = await saveStoreCache({ ...save, recordFile, workDir })
    expect(result).toMatchObject({
      saved: true,
      kind: 'delta',
      key: deltaKey(keys, olderBase),
      pathCount: 1,
      newCount: 1
    })
    const dumpDb = exec.run.mock.calls.filter(([, args]) => args.includes('--dump-db'))
    expect(dumpDb.map(([, args]) => args)).toEqual([['--dump-db', p('img')]])
    expect(cache.saveCache).toHaveBeenCalledWith(
      ['nix-container-action-store-v3'],
      deltaKey(keys, olderBase)
    )
  })

  test('an addition over a quarter of the base is a new base of the whole closure', async () => {
    serviceUrl(true)
    scriptStore({ [p('img')]: 251 })
    const recordFile = await restored([p('img.drv'), input], 1000)
    cache.saveCache.mockResolvedValueOnce(1)
    const result = await saveStoreCache({ ...save, recordFile, workDir })
    expect(result).toMatchObject({
      saved: true,
      kind: 'base',
      key: keys.layers?.base,
      pathCount: 3
    })
    expect(core.info).toHaveBeenCalledWith(expect.stringContaining('more than 25% of it'))
  })

  test("the flake's inputs are saved with the closure", async () => {
    serviceUrl(true)
    scriptStore()
    cache.saveCache.mockResolvedValueOnce(1)
    const recordFile = join(workDir, 'restored.json')
    await writeFile(recordFile, JSON.stringify({ keys, layers: [] }))
    const result = await saveStoreCache({ ...save, restoredKey: null, recordFile, workDir })
    expect(result).toMatchObject({ saved: true, kind: 'base', pathCount: 3, newCount: 3 })
    const dumpDb = exec.run.mock.calls.find(([, args]) => args.includes('--dump-db'))
    expect(dumpDb?.[1]).toEqual(['--dump-db', input, p('img'), p('img.drv')])
  })

  test('a service that does not take the entry is a failure to warn about', async () => {
    serviceUrl(true)
    scriptStore()
    cache.saveCache.mockResolvedValueOnce(-1)
    const recordFile = await restored([])
    const result = await saveStoreCache({ ...save, recordFile, workDir })
    expect(result).toMatchObject({ saved: false, failed: true })
  })
})

describe('wholeClosures', () => {
  test('a path whose reference is neither valid nor imported is left out, with what needs it', () => {
    const lib = reg(h('lib', 1))
    const app = reg(h('app', 2), 0, [h('lib', 1), h('gone', 3)])
    const image = reg(h('image', 4), 0, [h('app', 2)])
    const src = reg(h('src', 5), 0, [h('valid', 6)])
    const valid = (path: string) => path === h('valid', 6)
    expect(wholeClosures([lib, app, image, src], valid)).toEqual([lib, src])
    expect(wholeClosures([lib, app, image], path => path === h('gone', 3))).toEqual([
      lib,
      app,
      image
    ])
  })
  test('a path may refer to itself', () => {
    const self = reg(h('self', 1), 0, [h('self', 1)])
    expect(wholeClosures([self], () => false)).toEqual([self])
  })
})

describe('supersededEntries', () => {
  const lock = 'nix-container-store/x86_64-linux/container/lock-none/'
  const record = (key: string, ref = 'refs/heads/main', createdAt = '2026-01-01T00:00:00Z') => ({
    id: 1,
    key,
    ref,
    version: 'v',
    createdAt,
    lastAccessedAt: createdAt,
    sizeInBytes: 1
  })
  const scope = {
    lockPrefix: lock,
    keep: [`${lock}base-1`, `${lock}source-2/on-base-1`],
    ref: 'refs/heads/main',
    startedAt: new Date('2026-01-02T00:00:00Z')
  }
  test("this ref's older entries of the lock, but for those kept", () => {
    const records = [
      record(`${lock}base-1`),
      record(`${lock}source-2/on-base-1`),
      record(`${lock}source-1/on-base-0`),
      record(`${lock}base-0`),
      record(`${lock}base-0`, 'refs/heads/feature'),
      record('nix-container-store/x86_64-linux/container/lock-aaaa/base-0'),
      record(`${lock}source-3/on-base-1`, 'refs/heads/main', '2026-01-03T00:00:00Z')
    ]
    expect(supersededEntries(records, scope).map(r => r.key)).toEqual([
      `${lock}source-1/on-base-0`,
      `${lock}base-0`
    ])
  })
})
