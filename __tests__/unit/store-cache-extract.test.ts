// The store cache's confined extraction (src/cache/extract.ts) on real archives: what GNU tar
// makes as @actions/cache does (zstd, gzip, plain; zstd through the `zstd` program on Node 20,
// through Node's zlib on 24), and hostile ones written header by header. The e2e tests
// (store-cache-hostile.test.ts) carry the main hostile members through the bundled action.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readlinkSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { checkMember, extractConfined, RefusedMembers } from '../../src/cache/extract.js'
import type { Layout, Written } from '../../src/cache/extract.js'
import { TreeHashes } from '../../src/cache/nar-hash.js'
import { tarball } from '../tar-members.js'
import type { Entry } from '../tar-members.js'
import { layerLayout } from '../../src/cache/restore.js'

const ROOT = 'nix-container-action-store-v3'
const STORE = `${ROOT}/base/store`
const base = layerLayout('base')

let dir: string
/** The folder extracted into. */
let into: string
/** Where a hostile member aims: nothing may appear here. */
let outside: string
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nca-unit-extract-'))
  into = join(dir, 'staging')
  outside = join(dir, 'outside')
  mkdirSync(into)
  mkdirSync(outside)
  writeFileSync(join(outside, 'secret'), "the runner's own file\n")
})
afterEach(() => {
  // Extracted store paths are read-only.
  execFileSync('chmod', ['-R', 'u+w', dir])
  rmSync(dir, { recursive: true, force: true })
})

/** Everything under `root`, as relative names (sorted), never through a symbolic link. */
function tree(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix), { withFileTypes: true })
    .flatMap(entry => {
      const name = prefix === '' ? entry.name : `${prefix}/${entry.name}`
      return entry.isDirectory() ? [name, ...tree(root, name)] : [name]
    })
    .sort()
}

// --- archives written header by header --------------------------------------------------------

/** The layout's folders, as GNU tar lists them first. */
const folders: Entry[] = [
  { path: `${ROOT}/`, type: 'Directory' },
  { path: `${ROOT}/base/`, type: 'Directory' },
  { path: `${STORE}/`, type: 'Directory' }
]
const genuinePath: Entry[] = [
  { path: `${STORE}/aaaa-hello/`, type: 'Directory', mode: 0o555 },
  { path: `${STORE}/aaaa-hello/greeting`, data: 'hello\n', mode: 0o444 }
]

function archiveOf(entries: Entry[], name = 'entry.tar'): string {
  const file = join(dir, name)
  writeFileSync(file, tarball(entries))
  return file
}

// --- archives as @actions/cache makes them -----------------------------------------------------

/** A store cache layer as the save writes it: paths (a tree, a file, a symlink), hard links. */
function genuineSource(): string {
  const source = join(dir, 'source')
  const store = join(source, STORE)
  mkdirSync(join(store, 'aaaa-app', 'bin'), { recursive: true })
  writeFileSync(join(store, 'aaaa-app', 'bin', 'app'), '#!/bin/sh\necho app\n')
  chmodSync(join(store, 'aaaa-app', 'bin', 'app'), 0o555)
  writeFileSync(join(store, 'aaaa-app', 'README'), 'read me\n')
  // Past ustar's 100 characters: GNU tar --posix writes pax headers for the name and the target.
  const deep = join(store, 'aaaa-app', 'share', 'd'.repeat(60), 'e'.repeat(60))
  mkdirSync(deep, { recursive: true })
  writeFileSync(join(deep, 'f'.repeat(40)), 'deep\n')
  symlinkSync(`/nix/store/${'g'.repeat(120)}`, join(deep, 'long-target'))
  // A reference to another store path: an absolute target, written as a link, never followed.
  symlinkSync('/nix/store/bbbb-lib/lib', join(store, 'aaaa-app', 'lib'))
  symlinkSync('/nix/store/aaaa-app', join(store, 'cccc-alias'))
  writeFileSync(join(store, 'dddd-file'), 'a store path that is a file\n')
  // Two paths sharing an inode (an optimised store, or the save's hard links): a hard link.
  execFileSync('ln', [join(store, 'dddd-file'), join(store, 'eeee-same')])
  writeFileSync(join(source, ROOT, 'base', 'registration'), 'registration\n')
  writeFileSync(join(source, ROOT, 'base', 'nix-container-action.json'), '{}\n')
  for (const path of ['aaaa-app/bin/app', 'aaaa-app/README', 'dddd-file']) {
    chmodSync(join(store, path), (statSync(join(store, path)).mode & 0o555) | 0o444)
  }
  execFileSync('chmod', ['-R', 'a-w', join(store, 'aaaa-app')])
  execFileSync('touch', [
    '-h',
    '-d',
    '@1',
    ...['aaaa-app', 'cccc-alias', 'dddd-file'].map(p => join(store, p))
  ])
  return source
}

/** `tar --posix -cf - -P -C <source> <root>` piped through `compress`, as @actions/cache. */
function gnuArchive(source: string, compress: string[] | null): string {
  const tar = execFileSync('tar', ['--posix', '-cf', '-', '-P', '-C', source, ROOT], {
    maxBuffer: 1 << 26
  })
  const file = join(dir, 'cache.archive')
  writeFileSync(
    file,
    compress === null ? tar : execFileSync(compress[0] ?? '', compress.slice(1), { input: tar })
  )
  return file
}

describe('a genuine archive', () => {
  test.each([
    { how: 'zstd (as @actions/cache: zstdmt)', compress: ['zstd', '-T0', '-c'] },
    { how: 'zstd --long=30', compress: ['zstd', '-T0', '--long=30', '-c'] },
    { how: 'gzip', compress: ['gzip', '-c'] },
    { how: 'no compression', compress: null }
  ])('$how: extracted whole, with the modes Nix gives the store', async ({ compress }) => {
    const source = genuineSource()
    const archive = gnuArchive(source, compress)
    const { members } = await extractConfined(archive, into, base)
    expect(tree(into)).toEqual(tree(source))
    expect(members).toBe(tree(source).length)
    const store = join(into, STORE)
    expect(readFileSync(join(store, 'aaaa-app', 'bin', 'app'), 'utf8')).toBe(
      '#!/bin/sh\necho app\n'
    )
    expect(readlinkSync(join(store, 'aaaa-app', 'lib'))).toBe('/nix/store/bbbb-lib/lib')
    expect(readlinkSync(join(store, 'cccc-alias'))).toBe('/nix/store/aaaa-app')
    const deep = join(store, 'aaaa-app', 'share', 'd'.repeat(60), 'e'.repeat(60))
    expect(readFileSync(join(deep, 'f'.repeat(40)), 'utf8')).toBe('deep\n')
    expect(readlinkSync(join(deep, 'long-target'))).toBe(`/nix/store/${'g'.repeat(120)}`)
    expect(statSync(join(store, 'eeee-same')).ino).toBe(statSync(join(store, 'dddd-file')).ino)
    const mode = (path: string) => lstatSync(join(store, path)).mode & 0o7777
    expect({
      app: mode('aaaa-app'),
      bin: mode('aaaa-app/bin'),
      exe: mode('aaaa-app/bin/app'),
      readme: mode('aaaa-app/README'),
      file: mode('dddd-file')
    }).toEqual({ app: 0o555, bin: 0o555, exe: 0o555, readme: 0o444, file: 0o444 })
    // The layout's own folders stay writable: the restore moves paths out of `store/`.
    expect(lstatSync(store).mode & 0o200).toBe(0o200)
    // As Nix keeps them: mtime 1.
    expect(lstatSync(join(store, 'dddd-file')).mtimeMs).toBe(1000)
    expect(lstatSync(join(store, 'aaaa-app')).mtimeMs).toBe(1000)
    expect(lstatSync(join(store, 'cccc-alias')).mtimeMs).toBe(1000)
  })

  test('a delta and its base extract side by side into one folder', async () => {
    const delta = archiveOf(
      [
        { path: `${ROOT}/`, type: 'Directory' },
        { path: `${ROOT}/delta/`, type: 'Directory' },
        { path: `${ROOT}/delta/store/`, type: 'Directory' },
        { path: `${ROOT}/delta/store/ffff-new`, data: 'new\n' }
      ],
      'delta.tar'
    )
    await extractConfined(delta, into, layerLayout('delta'))
    await extractConfined(archiveOf([...folders, ...genuinePath]), into, base)
    expect(readFileSync(join(into, ROOT, 'delta/store/ffff-new'), 'utf8')).toBe('new\n')
    expect(readFileSync(join(into, STORE, 'aaaa-hello/greeting'), 'utf8')).toBe('hello\n')
  })

  test('a truncated archive is an error', async () => {
    const whole = tarball([...folders, { path: `${STORE}/aaaa-big`, data: 'x'.repeat(5000) }])
    const file = join(dir, 'truncated.tar')
    writeFileSync(file, whole.subarray(0, 4 * 512))
    await expect(extractConfined(file, into, base)).rejects.toThrow(/Truncated|unexpected end/i)
  })

  test('a file that is not an archive is an error', async () => {
    const file = join(dir, 'garbage')
    writeFileSync(file, 'not a tar archive at all\n'.repeat(100))
    await expect(extractConfined(file, into, base)).rejects.toThrow()
  })
})

// --- NAR hashes, computed as the extraction writes ---------------------------------------------

/** Store paths of every form, and their NAR hashes as `nix hash path` gave them. */
function narSource(): string {
  const source = join(dir, 'nar-source')
  const store = join(source, STORE)
  mkdirSync(join(store, 't1', 'b'), { recursive: true })
  writeFileSync(join(store, 't1', 'a'), 'hello')
  writeFileSync(join(store, 't1', 'b', 'c'), 'x')
  chmodSync(join(store, 't1', 'b', 'c'), 0o755)
  symlinkSync('../a', join(store, 't1', 'b', 'l'))
  writeFileSync(join(store, 't2'), 'hello')
  writeFileSync(join(store, 't3'), '#!/bin/sh\n')
  chmodSync(join(store, 't3'), 0o755)
  symlinkSync('/nix/store/zzz-target', join(store, 't4'))
  mkdirSync(join(store, 't5'))
  mkdirSync(join(store, 't6'))
  // Names whose order the NAR fixes (bytes) and a tar does not (the writer's readdir).
  for (const name of ['B', 'a', '_', 'é', 'Z', '10', '9'])
    writeFileSync(join(store, 't6', name), name)
  writeFileSync(join(store, 't6', 'eight'), '12345678')
  mkdirSync(join(store, 't7', 'bin'), { recursive: true })
  writeFileSync(join(store, 't7', 'bin', 'tool'), 'shared')
  chmodSync(join(store, 't7', 'bin', 'tool'), 0o755)
  // A file two paths share (an optimised store): the archive holds it once, then a hard link.
  mkdirSync(join(store, 't8'))
  execFileSync('ln', [join(store, 't7', 'bin', 'tool'), join(store, 't8', 'tool')])
  return source
}
const NAR_HASHES = {
  t1: 'd76fcafef53bb9dba43af4ed5c7994fbb5b4d5732518b07ed1803c98ab065eff',
  t2: '0a430879c266f8b57f4092a0f935cf3facd48bbccde5760d4748ca405171e969',
  t3: '6283c1668260f903d1a895c0cd6b822fa4b68762bb0b17cedef2d39d97e26554',
  t4: 'd1f5a75c5804180a3daff1bd327e6f68b2883504eb1495de155ec4a6d5445d45',
  t5: 'a50a5ab6d992f5598edd92105059fae9acfc192981e08bd88534c2167e92526a',
  t6: '116253ae37af883f0a08f65aa95982dc3d170d65b7e2b3eda5da5b0621cf65a8',
  t7: '95084654a8856fa5b421bfbd8d79506737bba99906f9d9b247682f8f174007ef',
  t8: 'f4c1a14c50c6faa8d4465086804f5e8d3754e4c3e5abaa57a38a906a37de64f5'
}

describe('NAR hashes', () => {
  test('of every store path, as Nix computes them, as the archive is written', async () => {
    const archive = gnuArchive(narSource(), ['zstd', '-c'])
    const { narHashes } = await extractConfined(archive, into, base)
    const byName = Object.fromEntries(
      [...narHashes].map(([path, hash]) => [path.slice(join(into, STORE).length + 1), hash])
    )
    expect(byName).toEqual(NAR_HASHES)
  })

  test('none when not asked for', async () => {
    const archive = gnuArchive(narSource(), null)
    expect((await extractConfined(archive, into, base, { hashTrees: false })).narHashes.size).toBe(
      0
    )
  })

  test('none for a path whose members come apart, or past the budget', () => {
    const trees = new TreeHashes(1024)
    const file = (root: string, rel: string[], content: string) => {
      const sink = trees.member(root, rel, {
        kind: 'file',
        executable: false,
        size: content.length
      })
      sink?.data(Buffer.from(content))
      sink?.end()
    }
    trees.member('t1', [], { kind: 'directory' })
    file('t1', ['a'], 'hello')
    file('t2', [], 'hello')
    trees.member('t1', ['b'], { kind: 'directory' })
    trees.member('t9', [], { kind: 'directory' })
    file('t9', ['big'], 'x'.repeat(2048))
    expect([...trees.finish()]).toEqual([['t2', NAR_HASHES.t2]])
  })
})

// --- hostile members ----------------------------------------------------------------------------

/** Members that must be refused, each after the genuine folders and a genuine path. */
interface Hostile {
  what: string
  entries: Entry[]
  why: RegExp
  /** The archive starts with it (no folders before it). */
  first?: boolean
  /** Members before the refused one, harmless in themselves, that stay for the caller to remove. */
  leaves?: string[]
}
/** Stands for the folder outside, made by each test. */
const OUT = '/@outside@'
const hostile: Hostile[] = [
  {
    what: 'an absolute name',
    entries: [{ path: `${OUT}/abs`, data: 'pwned\n' }],
    why: /is an absolute name$/
  },
  {
    what: 'a `..` name',
    entries: [{ path: `${STORE}/../../../../outside/dotdot`, data: 'pwned\n' }],
    why: /with `\.\.`/
  },
  {
    what: 'an absolute name in a pax record, under an innocent ustar name',
    entries: [
      { path: 'PaxHeaders/x', type: 'ExtendedHeader', pax: { path: `${OUT}/paxabs` } },
      { path: `${STORE}/bbbb-innocent`, data: 'pwned\n' }
    ],
    why: /".*\/paxabs" is an absolute name$/
  },
  {
    what: 'a `..` name in a GNU long name',
    entries: [
      { path: '././@LongLink', type: 'NextFileHasLongPath', data: `${STORE}/../../../x/..\0` },
      { path: `${STORE}/bbbb-innocent`, data: 'pwned\n' }
    ],
    why: /a name with `\.\.`$/
  },
  {
    what: 'a symlink to a folder outside, then a file through it',
    entries: [
      { path: `${STORE}/bbbb-link`, type: 'SymbolicLink', linkpath: OUT },
      { path: `${STORE}/bbbb-link/through`, data: 'pwned\n' }
    ],
    leaves: [`${STORE}/bbbb-link`],
    why: /"nix-container-action-store-v3\/base\/store\/bbbb-link\/through" is inside ".*bbbb-link", a symbolic link/
  },
  {
    what: 'a hard link to a file outside (absolute)',
    entries: [{ path: `${STORE}/bbbb-hard`, type: 'Link', linkpath: `${OUT}/secret` }],
    why: /a hard link to ".*\/secret", an absolute name$/
  },
  {
    what: 'a hard link to a file outside (`..`), then a file written through it',
    entries: [
      { path: `${STORE}/bbbb-hard`, type: 'Link', linkpath: `${ROOT}/../outside/secret` },
      { path: `${STORE}/bbbb-hard`, data: 'pwned\n' }
    ],
    why: /a hard link to ".*", a name with `\.\.`$/
  },
  {
    what: 'a hard link to a symlink of the archive',
    entries: [
      { path: `${STORE}/bbbb-link`, type: 'SymbolicLink', linkpath: `${OUT}/secret` },
      { path: `${STORE}/bbbb-hard`, type: 'Link', linkpath: `${STORE}/bbbb-link` }
    ],
    leaves: [`${STORE}/bbbb-link`],
    why: /not a file extracted before it/
  },
  {
    what: 'the staging folder itself replaced by a symlink (`.`)',
    entries: [{ path: '.', type: 'SymbolicLink', linkpath: OUT }],
    why: /an empty or `\.` part/
  },
  {
    what: "the archive's folder as a symlink, then a file through it",
    entries: [
      { path: ROOT, type: 'SymbolicLink', linkpath: OUT },
      { path: `${ROOT}/base/through`, data: 'pwned\n' }
    ],
    why: /"nix-container-action-store-v3" is a symbolic link where the layout has a directory/,
    first: true
  },
  {
    what: "the archive's folder replaced by a symlink after it was made",
    entries: [
      { path: ROOT, type: 'SymbolicLink', linkpath: OUT },
      { path: `${ROOT}/base/through`, data: 'pwned\n' }
    ],
    why: /a second member of that name/
  },
  {
    what: 'a character device',
    entries: [{ path: `${STORE}/bbbb-dev`, type: 'CharacterDevice', devmaj: 1, devmin: 3 }],
    why: /a character device/
  },
  {
    what: 'a block device',
    entries: [{ path: `${STORE}/bbbb-dev`, type: 'BlockDevice', devmaj: 8, devmin: 0 }],
    why: /a block device/
  },
  {
    what: 'a FIFO',
    entries: [{ path: `${STORE}/bbbb-fifo`, type: 'FIFO' }],
    why: /a FIFO/
  },
  {
    what: 'a setuid file',
    entries: [{ path: `${STORE}/bbbb-suid`, data: '#!/bin/sh\n', mode: 0o4755 }],
    why: /setuid, setgid or sticky \(mode 4755\)/
  },
  {
    what: 'a setgid directory',
    entries: [{ path: `${STORE}/bbbb-sgid/`, type: 'Directory', mode: 0o2755 }],
    why: /mode 2755/
  },
  {
    what: 'a second member of a name (a file written over the first)',
    entries: [{ path: `${STORE}/aaaa-hello/greeting`, data: 'again\n' }],
    why: /a second member of that name/
  },
  {
    what: "a member outside the layer's folder (a base writing into the delta's)",
    entries: [{ path: `${ROOT}/delta/store/bbbb-x`, data: 'x\n' }],
    why: /not part of the store cache's layout/
  },
  {
    what: 'the manifest as a symlink (read back, it would leak a file of the runner)',
    entries: [
      {
        path: `${ROOT}/base/nix-container-action.json`,
        type: 'SymbolicLink',
        linkpath: `${OUT}/secret`
      }
    ],
    why: /a symbolic link where the layout has a file/
  },
  {
    what: 'a member inside a file',
    entries: [{ path: `${STORE}/aaaa-hello/greeting/x`, data: 'x\n' }],
    why: /inside ".*greeting", a file/
  }
]

describe('a hostile member', () => {
  test.each(hostile)(
    '$what: refused, the member named, nothing written outside',
    async ({ entries, why, first = false, leaves = [] }) => {
      const genuine = first ? [] : [...folders, ...genuinePath]
      const aimed = entries.map(e => ({
        ...e,
        path: e.path?.replace(OUT, outside),
        linkpath: e.linkpath?.replace(OUT, outside),
        pax: e.pax && { path: (e.pax.path ?? '').replace(OUT, outside) }
      }))
      const archive = archiveOf([...genuine, ...aimed])
      const error = await extractConfined(archive, into, base).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(RefusedMembers)
      expect((error as RefusedMembers).refused[0]?.message).toMatch(why)
      expect(tree(outside)).toEqual(['secret'])
      expect(readFileSync(join(outside, 'secret'), 'utf8')).toBe("the runner's own file\n")
      expect(existsSync(join(dir, 'abs'))).toBe(false)
      // Nothing of the member or after it was written: only the genuine members before it, for
      // the caller to remove.
      const before = [...genuine.map(e => (e.path ?? '').replace(/\/$/, '')), ...leaves]
      expect(tree(into).filter(name => !before.includes(name))).toEqual([])
    }
  )

  test('every hostile member is named; nothing after the first one is written', async () => {
    const archive = archiveOf([
      ...folders,
      { path: `${outside}/abs`, data: 'pwned\n' },
      { path: `${STORE}/bbbb-after`, data: 'fine, but after a hostile member\n' },
      { path: `${STORE}/bbbb-link`, type: 'SymbolicLink', linkpath: outside },
      { path: `${STORE}/bbbb-link/through`, data: 'pwned\n' },
      { path: `${STORE}/bbbb-fifo`, type: 'FIFO' }
    ])
    const error = await extractConfined(archive, into, base).catch((e: unknown) => e)
    expect((error as RefusedMembers).message).toBe(
      `3 of its members may not be extracted: "${outside}/abs" is an absolute name; ` +
        `"${STORE}/bbbb-link/through" is inside "${STORE}/bbbb-link", a symbolic link; ` +
        `"${STORE}/bbbb-fifo" is a FIFO`
    )
    expect(tree(outside)).toEqual(['secret'])
    expect(tree(into)).toEqual([ROOT, `${ROOT}/base`, STORE])
  })

  test('a hostile archive cut short: its hostile members are named', async () => {
    const whole = tarball([...folders, { path: `${outside}/abs`, data: 'pwned\n' }, ...genuinePath])
    const file = join(dir, 'cut.tar')
    writeFileSync(file, whole.subarray(0, whole.length - 1024 - 512))
    const error = await extractConfined(file, into, base).catch((e: unknown) => e)
    expect((error as RefusedMembers).message).toBe(
      `its member "${outside}/abs" is an absolute name`
    )
  })

  test('a parent that an earlier archive made a symlink is not followed', async () => {
    const permissive: Layout = () => 'tree'
    await extractConfined(
      archiveOf([{ path: 'way-out', type: 'SymbolicLink', linkpath: outside }], 'first.tar'),
      into,
      permissive
    )
    const error = await extractConfined(
      archiveOf([{ path: 'way-out/through', data: 'pwned\n' }], 'second.tar'),
      into,
      permissive
    ).catch((e: unknown) => e)
    expect((error as RefusedMembers).message).toMatch(
      /^its member "way-out\/through" is inside "way-out", which is not a directory$/
    )
    expect(tree(outside)).toEqual(['secret'])
  })
})

describe('checkMember (pure)', () => {
  const none: Written = new Map()
  test.each([
    ['a directory of the layout', { path: `${ROOT}/`, type: 'Directory' }, 'directory'],
    ['a file in a store path', { path: `${STORE}/x/y`, type: 'File', mode: 0o644 }, 'file'],
    [
      'a symlink in a store path',
      { path: `${STORE}/x`, type: 'SymbolicLink', linkpath: '/x' },
      'symlink'
    ]
  ])('%s', (_what, member, kind) => {
    expect(checkMember(member, none, base).kind).toBe(kind)
  })

  test('a file where the layout has none is refused', () => {
    expect(() => checkMember({ path: `${ROOT}/base/other`, type: 'File' }, none, base)).toThrow(
      /not part of the store cache's layout/
    )
  })

  test('an entry of a type no store holds is refused by its name', () => {
    expect(() => checkMember({ path: `${STORE}/x`, type: 'SparseFile' }, none, base)).toThrow(
      /of type SparseFile/
    )
  })
})
