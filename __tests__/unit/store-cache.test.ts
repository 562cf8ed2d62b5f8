import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals'
import { mkdtemp, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type * as actionsCache from '@actions/cache'
import * as core from '../../__fixtures__/core.js'
import type { SaveFacts } from '../../src/cache/save-rules.js'
import type { Registration } from '../../src/cache/store-archive.js'
import * as exec from '../../__fixtures__/exec.js'

const cache = {
  isFeatureAvailable: jest.fn<typeof actionsCache.isFeatureAvailable>(),
  restoreCache: jest.fn<typeof actionsCache.restoreCache>(),
  saveCache: jest.fn<typeof actionsCache.saveCache>()
}
// The real CommandError and settleAll: only commands are mocked.
const { CommandError, settleAll } = await import('../../src/exec.js')
jest.unstable_mockModule('@actions/core', () => core)
jest.unstable_mockModule('@actions/cache', () => cache)
jest.unstable_mockModule('../../src/exec.js', () => ({ ...exec, CommandError, settleAll }))
const { restoreStoreCache, saveStoreCache } = await import('../../src/stages/store-cache.js')
const { cacheKeys, shortHash } = await import('../../src/cache/keys.js')
const { parseManifest } = await import('../../src/cache/manifest.js')
const { closureSkipReason, pathsNotRestored, saveSkipReason } =
  await import('../../src/cache/save-rules.js')
const { parseFlakeArchive, parseFlakeMetadata } = await import('../../src/cache/nix-store.js')
const { balance, formatRegistrations, hashMismatches, parseRegistrations, restoreMethod } =
  await import('../../src/cache/store-archive.js')

const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' })
const p = (name: string) => `/nix/store/${'a'.repeat(32)}-${name}`
const noInputs = { sourceHash: 'sha256-src', lock: null }
/** A store path with a hash part of its own: `h('img', 1)`. */
const h = (name: string, n: number) => `/nix/store/${String(n).padStart(32, '0')}-${name}`
const HASH = 'ab'.repeat(32)
/** A registration of `size` bytes with the given references. */
const reg = (path: string, narSize = 0, references: string[] = []): Registration => ({
  path,
  narHash: HASH,
  narSize,
  deriver: '',
  references
})

let workDir: string
// The v1 service as the runner sets it up, but for the URL: each test says whether the client
// finds one (isFeatureAvailable).
const SERVICE_ENV = ['ACTIONS_RUNTIME_TOKEN', 'ACTIONS_CACHE_SERVICE_V2', 'ACTIONS_RESULTS_URL']
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
  test.each([
    [
      'no flake.lock',
      { system: 'x86_64-linux', attribute: 'container', metadata: noInputs, override: null },
      `${base}lock-none/source-${shortHash('sha256-src')}`,
      [`${base}lock-none/`, base]
    ],
    [
      'a lock',
      {
        system: 'x86_64-linux',
        attribute: 'container',
        metadata: { sourceHash: 'sha256-src', lock: '{"nodes":{}}' },
        override: null
      },
      `${base}lock-${shortHash('{"nodes":{}}')}/source-${shortHash('sha256-src')}`,
      [`${base}lock-${shortHash('{"nodes":{}}')}/`, base]
    ],
    [
      'cache-key replaces the primary key only',
      { system: 'x86_64-linux', attribute: 'container', metadata: noInputs, override: 'mine' },
      'mine',
      [`${base}lock-none/`, base]
    ],
    [
      'an attribute with a comma and a slash is encoded',
      { system: 'aarch64-linux', attribute: 'a,b/c', metadata: noInputs, override: null },
      `nix-container-store/aarch64-linux/a%2Cb%2Fc/lock-none/source-${shortHash('sha256-src')}`,
      [
        'nix-container-store/aarch64-linux/a%2Cb%2Fc/lock-none/',
        'nix-container-store/aarch64-linux/a%2Cb%2Fc/'
      ]
    ]
  ])('%s', (_name, facts, primary, restore) => {
    expect(cacheKeys(facts)).toEqual({ primary, restore })
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
    expect(edited.restore).toEqual(cacheKeys(facts).restore)
  })
})

describe('saveSkipReason', () => {
  const facts: SaveFacts = {
    cacheSave: true,
    serviceMissing: null,
    primaryKey: 'k',
    restoredKey: null,
    built: true
  }
  test.each<[string, Partial<SaveFacts>, string | null]>([
    ['a miss saves', {}, null],
    ['a restore-key hit looks further', { restoredKey: 'k-older' }, null],
    ['cache-save: false', { cacheSave: false }, 'cache-save: false'],
    [
      'no service',
      { serviceMissing: 'no cache service: ACTIONS_CACHE_URL is not set' },
      'no cache service: ACTIONS_CACHE_URL is not set'
    ],
    ['no key', { primaryKey: null }, 'no cache key'],
    ['the build did not run', { built: false }, 'the build did not run'],
    ['an exact hit', { restoredKey: 'k' }, 'exact hit on the primary key k']
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

/** What restoreCache would have extracted: a manifest (of `version`) listing paths, and their
 * registration. */
function restoresEntry(key: string, paths: string[], version = 2) {
  cache.restoreCache.mockImplementationOnce(async () => {
    const dir = join(process.cwd(), 'nix-container-action-store-v2')
    await mkdir(join(dir, 'store'), { recursive: true })
    await writeFile(join(dir, 'nix-container-action.json'), JSON.stringify({ version, paths }))
    await writeFile(join(dir, 'registration'), formatRegistrations(paths.map(path => reg(path))))
    return key
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
    cache.isFeatureAvailable.mockReturnValue(false)
    const result = await restoreStoreCache(options())
    expect(result.outcome).toBe('unavailable')
    expect(result.reason).toBe('no cache service: ACTIONS_CACHE_URL is not set')
    expect(result.keys?.primary).toMatch(
      /^nix-container-store\/x86_64-linux\/container\/lock-none\//
    )
    expect(cache.restoreCache).not.toHaveBeenCalled()
  })

  test('a miss', async () => {
    scriptNix()
    cache.isFeatureAvailable.mockReturnValue(true)
    cache.restoreCache.mockResolvedValueOnce(undefined)
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'miss', hit: false, restoredKey: null })
    expect(process.cwd()).not.toContain(workDir)
  })

  test('an archive of an older layout is a warning and a miss; its staging directory goes', async () => {
    await mkdir(join(workDir, 'store'))
    scriptNix()
    cache.isFeatureAvailable.mockReturnValue(true)
    restoresEntry('older', [p('a')], 1)
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'failed', restoredKey: null, hit: false })
    expect(core.warning).toHaveBeenCalledWith(expect.stringContaining('version 1, not 2'))
    expect(await readdir(join(workDir, 'store'))).toEqual([])
  })

  test('paths all valid already: nothing is hashed, moved or registered', async () => {
    const storeDir = join(workDir, 'store')
    await mkdir(storeDir)
    const paths = [`${storeDir}/${'a'.repeat(32)}-x`, `${storeDir}/${'b'.repeat(32)}-y`]
    scriptNix(ok()) // --check-validity --print-invalid: none
    cache.isFeatureAvailable.mockReturnValue(true)
    restoresEntry(primaryKey(), paths)
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'restored', hit: true, pathCount: 2, importedCount: 0 })
    expect(exec.run).toHaveBeenCalledTimes(2)
    expect(await readFile(result.restoredPathsFile, 'utf8')).toBe(`${paths.join('\n')}\n`)
    expect(await readdir(storeDir)).toEqual([])
  })
})

const primaryKey = () => cacheKeys({ ...options(), metadata: noInputs, override: null }).primary

describe('saveStoreCache', () => {
  const save = {
    flake: '.',
    cacheSave: true,
    primaryKey: 'new-key',
    restoredKey: 'old-key',
    restoredPathsFile: '',
    drvPath: p('img.drv'),
    storePath: p('img'),
    workDir: ''
  }
  const input = h('source', 7)

  /** The closure is img + img.drv; the flake has one input, valid in the store. */
  function scriptStore() {
    exec.run.mockImplementation((_command, args) => {
      if (args.includes('-qR')) return Promise.resolve(ok(`${p('img.drv')}\n${p('img')}\n`))
      if (args.includes('archive')) {
        const json = { path: h('source', 1), inputs: { dep: { path: input, inputs: {} } } }
        return Promise.resolve(ok(JSON.stringify(json)))
      }
      return Promise.resolve(ok())
    })
  }

  test('skips, saying why, when the closure and inputs hold nothing the restored entry lacked', async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    scriptStore()
    const restoredPathsFile = join(workDir, 'restored')
    await writeFile(restoredPathsFile, `${p('img')}\n${p('img.drv')}\n${input}\n`)
    const result = await saveStoreCache({ ...save, restoredPathsFile, workDir })
    expect(result).toEqual({
      saved: false,
      reason: 'the closure holds no path that the restored cache did not already have (3 paths)'
    })
    expect(cache.saveCache).not.toHaveBeenCalled()
  })

  test("the flake's inputs are saved with the closure", async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    scriptStore()
    const restoredPathsFile = join(workDir, 'restored')
    await writeFile(restoredPathsFile, `${p('img')}\n${p('img.drv')}\n`)
    cache.saveCache.mockResolvedValueOnce(1)
    const result = await saveStoreCache({ ...save, restoredPathsFile, workDir })
    expect(result).toMatchObject({ saved: true, pathCount: 3, newCount: 1 })
    const dumpDb = exec.run.mock.calls.find(([, args]) => args.includes('--dump-db'))
    expect(dumpDb?.[1]).toEqual(['--dump-db', input, p('img'), p('img.drv')])
  })

  test('a service that does not take the entry is a failure to warn about', async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    scriptStore()
    cache.saveCache.mockResolvedValueOnce(-1)
    const result = await saveStoreCache({ ...save, restoredPathsFile: null, workDir })
    expect(result).toMatchObject({ saved: false, failed: true })
  })
})
