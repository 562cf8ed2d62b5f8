import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type * as actionsCache from '@actions/cache'
import * as core from '../../__fixtures__/core.js'
import type { SaveFacts } from '../../src/stages/store-cache.js'
import * as exec from '../../__fixtures__/exec.js'

const cache = {
  isFeatureAvailable: jest.fn<typeof actionsCache.isFeatureAvailable>(),
  restoreCache: jest.fn<typeof actionsCache.restoreCache>(),
  saveCache: jest.fn<typeof actionsCache.saveCache>()
}
const { CommandError } = await import('../../src/exec.js')
jest.unstable_mockModule('@actions/core', () => core)
jest.unstable_mockModule('@actions/cache', () => cache)
jest.unstable_mockModule('../../src/exec.js', () => ({ ...exec, CommandError }))
const {
  cacheKeys,
  closureSkipReason,
  parseManifest,
  pathsNotRestored,
  restoreStoreCache,
  saveSkipReason,
  saveStoreCache,
  shortHash
} = await import('../../src/stages/store-cache.js')
const { parseFlakeMetadata } = await import('../../src/cache/nix-store.js')

const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' })
const p = (name: string) => `/nix/store/${'a'.repeat(32)}-${name}`
const noInputs = { sourceHash: 'sha256-src', lock: null }

let workDir: string
beforeEach(async () => {
  jest.resetAllMocks()
  workDir = await mkdtemp(join(tmpdir(), 'nca-unit-cache-'))
})
afterEach(async () => {
  await rm(workDir, { recursive: true, force: true })
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
    serviceAvailable: true,
    primaryKey: 'k',
    restoredKey: null,
    built: true
  }
  test.each<[string, Partial<SaveFacts>, string | null]>([
    ['a miss saves', {}, null],
    ['a restore-key hit looks further', { restoredKey: 'k-older' }, null],
    ['cache-save: false', { cacheSave: false }, 'cache-save: false'],
    ['no service', { serviceAvailable: false }, 'no cache service'],
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
    expect(parseManifest(JSON.stringify({ version: 1, paths: [p('x'), p('y.drv')] }))).toEqual({
      version: 1,
      paths: [p('x'), p('y.drv')]
    })
  })
  test.each([
    ['another version', { version: 2, paths: [] }, 'version 2'],
    ['not a store path', { version: 1, paths: ['/etc/passwd'] }, 'not a store path'],
    ['a newline in a path', { version: 1, paths: [`${p('x')}\n${p('y')}`] }, 'not a store path']
  ])('%s is refused', (_name, json, message) => {
    expect(() => parseManifest(JSON.stringify(json))).toThrow(message)
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

/** What restoreCache would have extracted: a manifest listing paths. */
function restoresEntry(key: string, paths: string[]) {
  cache.restoreCache.mockImplementationOnce(async () => {
    const dir = join(process.cwd(), 'nix-container-action-store')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'nix-container-action.json'), JSON.stringify({ version: 1, paths }))
    return key
  })
}

describe('restoreStoreCache', () => {
  test('no cache service: keys are computed, nothing is restored', async () => {
    scriptNix()
    cache.isFeatureAvailable.mockReturnValue(false)
    const result = await restoreStoreCache(options())
    expect(result.outcome).toBe('unavailable')
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

  test('an exact hit imports only the missing paths, then verifies them', async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    scriptNix(ok(`${p('b')}\n`), ok(), ok())
    const primary = cacheKeys({ ...options(), metadata: noInputs, override: null }).primary
    restoresEntry(primary, [p('a'), p('b')])
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'restored', hit: true, pathCount: 2, importedCount: 1 })
    const commands = exec.run.mock.calls.map(([command, args]) => [command, ...args].join(' '))
    expect(commands[2]).toContain(
      `copy --from file://${workDir}/nix-container-action-store --no-check-sigs ${p('b')}`
    )
    expect(commands[3]).toBe(`nix-store --verify-path ${p('b')}`)
    expect(await readFile(result.restoredPathsFile, 'utf8')).toBe(`${p('a')}\n${p('b')}\n`)
  })

  test('an import that fails is rolled back and is a warning, not an error', async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    scriptNix(ok(`${p('a')}\n${p('b')}\n`))
    exec.run
      .mockRejectedValueOnce(
        new CommandError(['nix', 'copy'], 1, 'error: hash mismatch importing path')
      )
      .mockResolvedValueOnce(ok(`${p('b')}\n`)) // after the failure, a is valid, b is not
      .mockResolvedValueOnce(ok()) // nix-store --delete
    restoresEntry('older', [p('a'), p('b')])
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'failed', restoredKey: null, hit: false })
    expect(exec.run).toHaveBeenLastCalledWith('nix-store', ['--delete', p('a')], { silent: true })
    expect(core.warning).toHaveBeenCalledWith(expect.stringContaining('discarded'))
    expect(await readFile(result.restoredPathsFile, 'utf8')).toBe('')
  })
})

describe('saveStoreCache', () => {
  const save = {
    cacheSave: true,
    primaryKey: 'new-key',
    restoredKey: 'old-key',
    restoredPathsFile: '',
    drvPath: p('img.drv'),
    storePath: p('img'),
    workDir: ''
  }

  test('skips, saying why, when the closure has nothing the restored entry lacked', async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    const restoredPathsFile = join(workDir, 'restored')
    await writeFile(restoredPathsFile, `${p('img')}\n${p('img.drv')}\n`)
    exec.run.mockResolvedValueOnce(ok(`${p('img.drv')}\n${p('img')}\n`))
    const result = await saveStoreCache({ ...save, restoredPathsFile, workDir })
    expect(result).toEqual({
      saved: false,
      reason: 'the closure holds no path that the restored cache did not already have (2 paths)'
    })
    expect(cache.saveCache).not.toHaveBeenCalled()
  })

  test('a service that does not take the entry is a failure to warn about', async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    exec.run.mockResolvedValue(ok(`${p('img.drv')}\n${p('img')}\n`))
    cache.saveCache.mockResolvedValueOnce(-1)
    const result = await saveStoreCache({ ...save, restoredPathsFile: null, workDir })
    expect(result).toMatchObject({ saved: false, failed: true })
  })
})
