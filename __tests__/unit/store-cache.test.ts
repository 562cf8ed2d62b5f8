import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals'
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type * as actionsCache from '@actions/cache'
import * as core from '../../__fixtures__/core.js'
import type { SaveFacts } from '../../src/stages/store-cache.js'
import type { NarInfo } from '../../src/cache/nix-store.js'
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
const {
  PARALLEL_MIN_BYTES,
  balance,
  importSchedule,
  parseFlakeMetadata,
  parseNarInfo,
  topologicalLevels
} = await import('../../src/cache/nix-store.js')

const ok = (stdout = '') => ({ exitCode: 0, stdout, stderr: '' })
const p = (name: string) => `/nix/store/${'a'.repeat(32)}-${name}`
const noInputs = { sourceHash: 'sha256-src', lock: null }
/** A store path with a hash part of its own: `h('img', 1)`. */
const h = (name: string, n: number) => `/nix/store/${String(n).padStart(32, '0')}-${name}`
const MB = 1024 * 1024
/** NarInfos from [path, MB, references]. */
const infosOf = (...rows: [string, number, string[]?][]) =>
  new Map<string, NarInfo>(
    rows.map(([path, mb, refs]) => [path, { narSize: mb * MB, references: refs ?? [] }])
  )

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

describe('parseNarInfo', () => {
  test('the store path, its references as full paths, the NAR size', () => {
    const text = [
      `StorePath: ${h('img', 9)}`,
      'URL: nar/1fq6.nar',
      'Compression: none',
      'NarHash: sha256:1fq6',
      'NarSize: 20592',
      `References: ${h('blob', 1).slice(11)} ${h('img', 9).slice(11)}`,
      `Deriver: ${h('img.drv', 8).slice(11)}`,
      ''
    ].join('\n')
    expect(parseNarInfo(text)).toEqual({
      storePath: h('img', 9),
      references: [h('blob', 1), h('img', 9)],
      narSize: 20592
    })
  })
  test('no references; no store path is no narinfo', () => {
    expect(parseNarInfo(`StorePath: ${h('a', 1)}\nNarSize: 5\nReferences: \n`)).toEqual({
      storePath: h('a', 1),
      references: [],
      narSize: 5
    })
    expect(parseNarInfo('garbage')).toBeNull()
  })
})

describe('topologicalLevels', () => {
  test('a level is one more than the deepest reference among the paths', () => {
    const [a, b, c, d, out] = [h('a', 1), h('b', 2), h('c', 3), h('d', 4), h('outside', 5)]
    const infos = infosOf([a, 1, [a, out]], [b, 1, [a]], [c, 1, [a, b]], [d, 1])
    expect(topologicalLevels([c, b, a, d], infos)).toEqual([[a, d], [b], [c]])
  })
  test('a cycle has no order', () => {
    const [a, b] = [h('a', 1), h('b', 2)]
    expect(topologicalLevels([a, b], infosOf([a, 1, [b]], [b, 1, [a]]))).toBeNull()
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
    ['one lane', [1, 2], 1, [[0, 1]]]
  ])('%s', (_name, sizes, lanes, expected) => {
    const paths = sizes.map((_, i) => h(`p${i}`, i))
    const infos = infosOf(...sizes.map((mb, i): [string, number] => [paths[i] ?? '', mb]))
    expect(balance(paths, infos, lanes)).toEqual(expected.map(g => g.map(i => paths[i])))
  })
})

describe('importSchedule', () => {
  // The benchmark's closure: six 50 MB blobs, the image naming them, and their derivations.
  const blobs = [0, 1, 2, 3, 4, 5].map(i => h(`blob-${i}`, i))
  const blobDrvs = [0, 1, 2, 3, 4, 5].map(i => h(`blob-${i}.drv`, 10 + i))
  const [img, imgDrv] = [h('img', 20), h('img.drv', 21)]
  const infos = infosOf(
    ...blobs.map((b): [string, number] => [b, 50]),
    ...blobDrvs.map((d): [string, number] => [d, 0]),
    [img, 0, blobs],
    [imgDrv, 0, blobDrvs]
  )
  const all = [...blobs, ...blobDrvs, img, imgDrv]

  test('big independent paths side by side, derivations beside them, then the rest', () => {
    expect(importSchedule(all, infos, 2)).toEqual([
      [[blobs[0], blobs[2], blobs[4]], [blobs[1], blobs[3], blobs[5]], blobDrvs],
      [[img, imgDrv]]
    ])
  })

  test('no concurrent group ever holds a path that another one refers to', () => {
    for (const round of importSchedule(all, infos, 3)) {
      for (const group of round) {
        const others = new Set(round.filter(g => g !== group).flat())
        const refs = group.flatMap(path => infos.get(path)?.references ?? [])
        expect(refs.filter(ref => others.has(ref))).toEqual([])
      }
    }
  })

  test.each<[string, string[], Map<string, NarInfo>, number]>([
    ['one lane', all, infos, 1],
    ['a path without its narinfo', [...all, h('unknown', 30)], infos, 2],
    [
      'small paths: nothing to gain',
      [h('a', 1), h('b', 2)],
      infosOf([h('a', 1), 1], [h('b', 2), 1]),
      2
    ],
    ['one big path', [h('a', 1), h('b', 2)], infosOf([h('a', 1), 500], [h('b', 2), 1]), 2]
  ])('%s: one sequential round', (_name, paths, narinfos, lanes) => {
    expect(importSchedule(paths, narinfos, lanes)).toEqual([[paths]])
  })

  test('light levels around a heavy one are merged into sequential rounds', () => {
    const [base, x, y, top, topper] = [
      h('base', 1),
      h('x', 2),
      h('y', 3),
      h('top', 4),
      h('topper', 5)
    ]
    const big = PARALLEL_MIN_BYTES / MB
    const levels = infosOf(
      [base, 1],
      [x, big, [base]],
      [y, big, [base]],
      [top, 1, [x, y]],
      [topper, 1, [top]]
    )
    expect(importSchedule([topper, top, y, x, base], levels, 2)).toEqual([
      [[base]],
      [[x], [y]],
      [[top, topper]]
    ])
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

/** What restoreCache would have extracted: a manifest listing paths, and with `mb`, a .narinfo
 * of that size for each. */
function restoresEntry(key: string, paths: string[], mb?: number) {
  cache.restoreCache.mockImplementationOnce(async () => {
    const dir = join(process.cwd(), 'nix-container-action-store')
    await mkdir(dir, { recursive: true })
    await writeFile(join(dir, 'nix-container-action.json'), JSON.stringify({ version: 1, paths }))
    for (const path of mb === undefined ? [] : paths) {
      const narinfo = `StorePath: ${path}\nNarSize: ${(mb ?? 0) * MB}\nReferences: \n`
      await writeFile(join(dir, `${path.slice(11, 43)}.narinfo`), narinfo)
    }
    return key
  })
}

describe('restoreStoreCache', () => {
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

  test('big independent paths import side by side; a failure rolls back only after every lane ended', async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    const [a, b] = [h('blob-a', 1), h('blob-b', 2)]
    restoresEntry('older', [a, b], 50)
    const events: string[] = []
    exec.run.mockImplementation(async (command, args) => {
      if (args.includes('metadata'))
        return ok(JSON.stringify({ locked: { narHash: 'sha256-src' } }))
      if (args.includes('--check-validity')) {
        return ok(events.includes(`imported ${a}`) ? `${b}\n` : `${a}\n${b}\n`)
      }
      if (args.includes('copy') && args.includes(b)) {
        events.push(`failed ${b}`)
        throw new CommandError(['nix', 'copy'], 1, 'error: hash mismatch importing path')
      }
      if (args.includes('copy') && args.includes(a)) {
        await new Promise(resolve => setTimeout(resolve, 50))
        events.push(`imported ${a}`)
        return ok()
      }
      if (args.includes('--delete')) events.push(`deleted ${args.slice(1).join(' ')}`)
      return ok()
    })
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'failed', restoredKey: null })
    // Two lanes, one path each; the rollback waited for the slow one, then removed its path.
    expect(events).toEqual([`failed ${b}`, `imported ${a}`, `deleted ${a}`])
    expect(core.warning).toHaveBeenCalledWith(expect.stringContaining('discarded'))
    const verify = exec.run.mock.calls.filter(([, args]) => args.includes('--verify-path'))
    expect(verify).toEqual([])
  })

  test('big independent paths are verified side by side too', async () => {
    cache.isFeatureAvailable.mockReturnValue(true)
    const [a, b] = [h('blob-a', 1), h('blob-b', 2)]
    restoresEntry('older', [a, b], 50)
    exec.run.mockImplementation((_command, args) => {
      if (args.includes('metadata')) {
        return Promise.resolve(ok(JSON.stringify({ locked: { narHash: 'sha256-src' } })))
      }
      return Promise.resolve(ok(args.includes('--check-validity') ? `${a}\n${b}\n` : ''))
    })
    const result = await restoreStoreCache(options())
    expect(result).toMatchObject({ outcome: 'restored', importedCount: 2 })
    const commands = exec.run.mock.calls.map(([command, args]) => [command, ...args].join(' '))
    expect(commands.filter(c => c.includes(' copy '))).toEqual([
      expect.stringMatching(new RegExp(`--no-check-sigs ${a}$`)),
      expect.stringMatching(new RegExp(`--no-check-sigs ${b}$`))
    ])
    expect(commands.filter(c => c.includes('--verify-path'))).toEqual([
      `nix-store --verify-path ${a}`,
      `nix-store --verify-path ${b}`
    ])
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
