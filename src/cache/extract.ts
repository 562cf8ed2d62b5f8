// Extracting a store cache archive, which is untrusted input, confined to a folder: nothing is
// written outside it, whatever the archive holds. Every member is checked before anything is
// written for it, against the rules below and the layout the caller expects; the first member
// that breaks one stops the writing: the rest of the archive is only read, to name every member
// that breaks one (RefusedMembers), and the caller discards what was extracted (the whole
// entry). Only regular files, directories, symbolic links and
// hard links are written, each by this process with calls that never follow a symbolic link
// (O_EXCL | O_NOFOLLOW, mkdir, symlink, link), owned by the user that runs the action, with the
// modes Nix gives the store (0444 or 0555 for files, 0555 for directories): no special bits, no
// device, no owner taken from the archive. Refused:
// - a name that is absolute, holds `..`, or an empty or `.` part;
// - a member inside a member that is not a directory (a symbolic link: the classic way out,
//   a symlink to a folder outside followed by a file "through" it);
// - a hard link whose target is not a regular file extracted before it from the same archive;
// - a device, a FIFO, or any other type; setuid, setgid or sticky bits;
// - a second member of the same name (it would replace or write through the first);
// - anything the layout does not have where it stands (which also keeps symbolic links out of
//   everything but the store paths' own trees).
import { once } from 'node:events'
import {
  closeSync,
  chmodSync,
  constants,
  createReadStream,
  fchmodSync,
  futimesSync,
  linkSync,
  lstatSync,
  lutimesSync,
  mkdirSync,
  openSync,
  readSync,
  symlinkSync,
  utimesSync,
  writeSync
} from 'node:fs'
import { join } from 'node:path'
import { createGunzip } from 'node:zlib'
import { Header, Pax } from 'tar'
import type { HeaderData } from 'tar'
import { spawnProducer } from '../exec.js'
import { TreeHashes } from './nar-hash.js'
import type { Producer } from '../exec.js'

/**
 * What the layout lets stand at a name: a directory, a regular file, or (`tree`) anything
 * this module writes (a store path's own tree: files, directories, symbolic links, hard links).
 * null: nothing may stand there.
 */
export type Place = 'directory' | 'file' | 'tree'
export type Layout = (parts: readonly string[]) => Place | null

/** What a member is, as far as extracting it goes. */
export type Kind = 'directory' | 'file' | 'symlink' | 'hardlink'

/** A member of the archive: its header, as the tar parser reads it. */
export interface Member {
  path: string
  type: string
  mode?: number | undefined
  linkpath?: string | undefined
  mtime?: Date | undefined
  size?: number | undefined
}

/** A member that may not be extracted. */
export class RefusedMember extends Error {
  constructor(
    readonly member: string,
    readonly why: string
  ) {
    super(`${JSON.stringify(member)} is ${why}`)
    this.name = 'RefusedMember'
  }
}

/** How many refused members an error names. */
const NAMED_AT_MOST = 20

/** The members of an archive that may not be extracted, each named with why. */
export class RefusedMembers extends Error {
  constructor(readonly refused: readonly RefusedMember[]) {
    const named = refused.slice(0, NAMED_AT_MOST).map(r => r.message)
    const more =
      refused.length > NAMED_AT_MOST ? `; and ${refused.length - NAMED_AT_MOST} more` : ''
    super(
      refused.length === 1
        ? `its member ${named.join('')}`
        : `${refused.length} of its members may not be extracted: ${named.join('; ')}${more}`
    )
    this.name = 'RefusedMembers'
  }
}

const KINDS: Record<string, Kind> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'directory',
  SymbolicLink: 'symlink',
  Link: 'hardlink'
}

const TYPE_NAMES: Record<string, string> = {
  CharacterDevice: 'a character device',
  BlockDevice: 'a block device',
  FIFO: 'a FIFO'
}

const SPECIAL_BITS = 0o7000

/** What has been written at each name of the folder; `implicit`: a parent made for a member. */
export type Written = Map<string, Kind | 'implicit'>

/** What is wrong with a member's name or a hard link's target, or null. */
function nameProblem(name: string): string | null {
  if (name.startsWith('/')) return 'an absolute name'
  const parts = name.split('/')
  if (parts.includes('..')) return 'a name with `..`'
  if (parts.some(part => part === '' || part === '.')) return 'a name with an empty or `.` part'
  return null
}

function fits(kind: Kind, place: Place): boolean {
  if (place === 'tree') return true
  return kind === place
}

/**
 * Check one member against the rules and the layout (pure, but for `written`, which the caller
 * updates once the member is written): its name's parts and its kind, or a RefusedMember.
 * Parents of the member that `written` does not know are checked by the caller on disk.
 */
export function checkMember(
  member: Member,
  written: Written,
  layout: Layout
): { name: string; parts: string[]; kind: Kind; place: Place } {
  // A directory's name ends with a slash in the archive.
  const name = member.type === 'Directory' ? member.path.replace(/\/+$/, '') : member.path
  const refuse = (why: string) => new RefusedMember(member.path, why)
  const problem = nameProblem(name)
  if (problem !== null) throw refuse(problem)
  const parts = name.split('/')
  const kind = KINDS[member.type]
  if (kind === undefined) {
    throw refuse(
      TYPE_NAMES[member.type] ?? `of type ${member.type} (not a file, directory or link)`
    )
  }
  const mode = member.mode ?? 0
  if ((mode & SPECIAL_BITS) !== 0) {
    throw refuse(`setuid, setgid or sticky (mode ${(mode & 0o7777).toString(8).padStart(4, '0')})`)
  }
  for (let i = parts.length - 1; i > 0; i--) {
    const parent = parts.slice(0, i).join('/')
    const there = written.get(parent)
    if (there === undefined) continue
    if (there !== 'directory' && there !== 'implicit') {
      throw refuse(`inside ${JSON.stringify(parent)}, a ${describeKind(there)}`)
    }
    break // checked when it was written, with its own parents
  }
  const before = written.get(name)
  if (before !== undefined && !(before === 'implicit' && kind === 'directory')) {
    throw refuse('a second member of that name')
  }
  const place = layout(parts)
  if (place === null) throw refuse("not part of the store cache's layout")
  if (!fits(kind, place)) throw refuse(`a ${describeKind(kind)} where the layout has a ${place}`)
  if (kind === 'hardlink') {
    const target = member.linkpath ?? ''
    const targetProblem = nameProblem(target)
    if (targetProblem !== null) {
      throw refuse(`a hard link to ${JSON.stringify(target)}, ${targetProblem}`)
    }
    if (written.get(target) !== 'file') {
      throw refuse(
        `a hard link to ${JSON.stringify(target)}, not a file extracted before it from this archive`
      )
    }
  }
  return { name, parts, kind, place }
}

function describeKind(kind: Kind): string {
  return kind === 'symlink' ? 'symbolic link' : kind === 'hardlink' ? 'hard link' : kind
}

// --- the archive's bytes -------------------------------------------------------------------

const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd])
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b])
/** As @actions/cache's own extraction (`unzstd --long=30`): a window of up to 1 GiB. */
const ZSTD_WINDOW_LOG_MAX = 30
const READ_CHUNK = 1 << 16

function startsWith(head: Buffer, magic: Buffer): boolean {
  return head.subarray(0, magic.length).equals(magic)
}

/**
 * The archive as a tar stream: zstd (what @actions/cache writes) decompressed by the `zstd`
 * program through a pipe, which @actions/cache saves zstd only where it is installed (measured
 * faster than Node 24's own zstd here: it decompresses on the other core, and Node 20 has none);
 * gzip (its fallback without zstd) by Node. `done` settles when the decompression has ended
 * (the program's exit status).
 */
export function tarStream(archive: string): Producer {
  const head = Buffer.alloc(4)
  const fd = openSync(archive, 'r')
  try {
    readSync(fd, head, 0, head.length, 0)
  } finally {
    closeSync(fd)
  }
  if (startsWith(head, ZSTD_MAGIC)) {
    return spawnProducer('zstd', ['-d', '-c', `--long=${ZSTD_WINDOW_LOG_MAX}`, '--', archive])
  }
  const source = createReadStream(archive, { highWaterMark: READ_CHUNK })
  if (!startsWith(head, GZIP_MAGIC)) {
    return { stdout: source, done: once(source, 'end').then(() => undefined) }
  }
  const gunzip = createGunzip()
  source.on('error', error => gunzip.destroy(error))
  gunzip.on('close', () => source.destroy())
  source.pipe(gunzip)
  return { stdout: gunzip, done: once(gunzip, 'end').then(() => undefined) }
}

// --- reading the tar stream --------------------------------------------------------------------

/** Where a member's bytes go. */
interface Sink {
  data(chunk: Buffer): void
  end(): void
}

const BLOCK = 512
/** Extended headers (pax, GNU long names) bigger than this are not a store cache's. */
const META_LIMIT = 1 << 20
const META_TYPES = new Set([
  'ExtendedHeader',
  'OldExtendedHeader',
  'GlobalExtendedHeader',
  'NextFileHasLongPath',
  'OldGnuLongPath',
  'NextFileHasLongLinkpath'
])

/**
 * The framing of a tar stream (ustar, pax, GNU long names), fed chunk by chunk: each member's
 * header (decoded by node-tar's Header, pax records by its Pax) goes to `member`, whose sink
 * takes its bytes straight from the chunks (no copy, no stream per member: a store cache holds
 * thousands of small files). The end-of-archive blocks are required: an archive cut short is
 * an error, whether mid-member or between members.
 */
class TarReader {
  private readonly block = Buffer.alloc(BLOCK)
  private filled = 0
  private remain = 0
  private padding = 0
  private sink: Sink | null = null
  private meta: { type: string; chunks: Buffer[] } | null = null
  private ex: HeaderData | undefined
  private gex: HeaderData | undefined
  private nullBlocks = 0
  ended = false

  constructor(private readonly member: (member: Member) => Sink | null) {}

  write(chunk: Buffer): void {
    let at = 0
    while (at < chunk.length && !this.ended) {
      if (this.remain > 0) {
        const n = Math.min(this.remain, chunk.length - at)
        this.body(chunk.subarray(at, at + n))
        this.remain -= n
        at += n
        if (this.remain === 0) this.endMember()
      } else if (this.padding > 0) {
        const n = Math.min(this.padding, chunk.length - at)
        this.padding -= n
        at += n
      } else {
        const n = Math.min(BLOCK - this.filled, chunk.length - at)
        chunk.copy(this.block, this.filled, at, at + n)
        this.filled += n
        at += n
        if (this.filled === BLOCK) {
          this.filled = 0
          this.header()
        }
      }
    }
  }

  /** The input has ended: throws when the archive has not. */
  end(): void {
    if (!this.ended)
      throw new Error('the archive is truncated (it ends before its end-of-archive blocks)')
  }

  private header(): void {
    const header = new Header(this.block, 0, this.ex, this.gex)
    if (header.nullBlock) {
      if (++this.nullBlocks === 2) this.ended = true
      return
    }
    if (this.nullBlocks > 0) throw new Error('the archive has a lone zero block between members')
    if (!header.cksumValid) throw new Error('the archive has a header with a bad checksum')
    const size = header.size ?? 0
    this.remain = size
    this.padding = (BLOCK - (size % BLOCK)) % BLOCK
    if (META_TYPES.has(header.type)) {
      if (size > META_LIMIT) throw new Error(`the archive has an extended header of ${size} bytes`)
      this.meta = { type: header.type, chunks: [] }
    } else {
      // Header puts the ustar fields (a truncated name, a prefix) over the pax ones for the
      // name and the link's target: the pax record is the member's, as in GNU tar.
      const ex = this.ex
      this.ex = undefined
      this.sink = this.member({
        path: ex?.path ?? header.path ?? '',
        type: header.type,
        mode: header.mode,
        linkpath: ex?.linkpath ?? header.linkpath,
        mtime: header.mtime,
        size
      })
    }
    if (this.remain === 0) this.endMember()
  }

  private body(chunk: Buffer): void {
    if (this.meta !== null) this.meta.chunks.push(Buffer.from(chunk))
    else this.sink?.data(chunk)
  }

  private endMember(): void {
    if (this.meta !== null) {
      const { type, chunks } = this.meta
      this.meta = null
      const text = Buffer.concat(chunks).toString('utf8')
      if (type === 'GlobalExtendedHeader') this.gex = Pax.parse(text, this.gex, true)
      else if (type === 'ExtendedHeader' || type === 'OldExtendedHeader') {
        this.ex = Pax.parse(text, this.ex, false)
      } else {
        const value = text.replace(/\0.*/s, '')
        this.ex = { ...this.ex, [type === 'NextFileHasLongLinkpath' ? 'linkpath' : 'path']: value }
      }
      return
    }
    const sink = this.sink
    this.sink = null
    sink?.end()
  }
}

// --- writing -------------------------------------------------------------------------------

/** The modes Nix gives the store: no write bit, executable or not. */
function fileMode(mode: number): number {
  return (mode & 0o111) !== 0 ? 0o555 : 0o444
}
/** A store path's directories are 0555 (set once their contents are in); the layout's own stay writable. */
function directoryMode(place: Place): number {
  return place === 'tree' ? 0o555 : 0o755
}

const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW

function writeAll(fd: number, chunk: Buffer): void {
  for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at, chunk.length - at)
}

/** What extractConfined wrote. */
export interface Extracted {
  members: number
  /**
   * The NAR hash (sha256, base16) of each tree the layout has (its `tree` places: a store
   * path), by its path on disk, computed as it was written (unless `hashTrees` is false); a
   * tree without one is left out.
   */
  narHashes: Map<string, string>
}

/** The name of the tree a member of a `tree` place belongs to: its shortest `tree` prefix. */
function treeRoot(parts: readonly string[], layout: Layout): number {
  for (let i = 1; i < parts.length; i++) if (layout(parts.slice(0, i)) === 'tree') return i
  return parts.length
}

/**
 * Extract `archive` (a tar, zstd- or gzip-compressed) into the folder `into`, which this process
 * made: only what the rules and `layout` allow, and nothing at all from the first member they
 * refuse on (RefusedMembers names every one of them). An archive that does not read (truncated,
 * a bad header) is an error too. Either way, what was written stays inside `into`, for the caller to remove.
 */
export async function extractConfined(
  archive: string,
  into: string,
  layout: Layout,
  { hashTrees = true }: { hashTrees?: boolean } = {}
): Promise<Extracted> {
  const written: Written = new Map()
  const directories: { path: string; mode: number; mtime: Date | undefined }[] = []
  let members = 0
  const trees = new TreeHashes()
  let openFd: number | null = null

  /** Parents the archive did not list (or that an earlier archive made): real directories only. */
  const parentsOf = (parts: readonly string[]) => {
    for (let i = 1; i < parts.length; i++) {
      const name = parts.slice(0, i).join('/')
      if (written.has(name)) continue
      const place = layout(parts.slice(0, i))
      if (place === null || place === 'file') {
        throw new RefusedMember(
          parts.join('/'),
          `inside ${JSON.stringify(name)}, which the layout does not have as a directory`
        )
      }
      const path = join(into, name)
      const stat = lstatSync(path, { throwIfNoEntry: false })
      if (stat === undefined) {
        mkdirSync(path, 0o700)
        directories.push({ path, mode: directoryMode(place), mtime: undefined })
      } else if (!stat.isDirectory()) {
        throw new RefusedMember(
          parts.join('/'),
          `inside ${JSON.stringify(name)}, which is not a directory`
        )
      }
      written.set(name, 'implicit')
    }
  }

  /** Once a member is refused, nothing more is written: the rest is only checked. */
  const refused: RefusedMember[] = []
  const onMember = (member: Member): Sink | null => {
    let checked: ReturnType<typeof checkMember>
    try {
      checked = checkMember(member, written, layout)
      if (refused.length === 0) parentsOf(checked.parts)
    } catch (error) {
      if (!(error instanceof RefusedMember)) throw error
      refused.push(error)
      return null
    }
    const { name, parts, kind, place } = checked
    const tree = hashTrees && place === 'tree' ? treeRoot(parts, layout) : null
    const root = tree === null ? '' : parts.slice(0, tree).join('/')
    const rel = tree === null ? [] : parts.slice(tree)
    if (refused.length > 0) {
      // As if written, so that what comes after it is checked against it.
      for (let i = 1; i < parts.length; i++) {
        const parent = parts.slice(0, i).join('/')
        if (!written.has(parent)) written.set(parent, 'implicit')
      }
      written.set(name, kind)
      return null
    }
    const path = join(into, name)
    const mtime = member.mtime
    members++
    switch (kind) {
      case 'directory':
        if (written.get(name) !== 'implicit') {
          try {
            mkdirSync(path, 0o700)
          } catch (error) {
            // Made by an earlier archive into the same folder: a real directory only.
            if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
            if (!lstatSync(path).isDirectory()) throw error
          }
        }
        directories.push({ path, mode: directoryMode(place), mtime })
        written.set(name, 'directory')
        if (tree !== null) trees.member(root, rel, { kind: 'directory' })
        return null
      case 'symlink': {
        const target = member.linkpath ?? ''
        symlinkSync(target, path)
        if (mtime) lutimesSync(path, mtime, mtime)
        written.set(name, 'symlink')
        if (tree !== null) trees.member(root, rel, { kind: 'symlink', target })
        return null
      }
      case 'hardlink': {
        const target = join(into, member.linkpath ?? '')
        linkSync(target, path)
        written.set(name, 'hardlink')
        if (tree !== null) trees.member(root, rel, { kind: 'hardlink', path: target })
        return null
      }
      case 'file': {
        const fd = openSync(path, CREATE_FILE, 0o600)
        openFd = fd
        written.set(name, 'file')
        const mode = fileMode(member.mode ?? 0)
        const size = member.size ?? 0
        const hash =
          tree === null
            ? null
            : trees.member(root, rel, { kind: 'file', executable: mode === 0o555, size })
        return {
          data: chunk => {
            writeAll(fd, chunk)
            hash?.data(chunk)
          },
          end: () => {
            hash?.end()
            if (mtime) futimesSync(fd, mtime, mtime)
            fchmodSync(fd, mode)
            openFd = null
            closeSync(fd)
          }
        }
      }
    }
  }

  const reader = new TarReader(onMember)
  const { stdout: stream, done } = tarStream(archive)
  // Awaited below; a rejection while the loop still runs must not go unhandled meanwhile.
  done.catch(() => undefined)
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      reader.write(chunk)
      if (reader.ended) break
    }
    reader.end()
    if (!stream.destroyed) await done
  } catch (error) {
    // A hostile archive that is also cut short: the members it holds are what to say.
    if (refused.length === 0) throw error
  } finally {
    stream.destroy()
    if (openFd !== null) closeSync(openFd)
  }
  if (refused.length > 0) throw new RefusedMembers(refused)
  // Deepest first, once their contents are in: a store path's directories become read-only.
  for (const { path, mode, mtime } of directories.reverse()) {
    chmodSync(path, mode)
    if (mtime) utimesSync(path, mtime, mtime)
  }
  const narHashes = new Map<string, string>()
  for (const [root, hash] of trees.finish()) narHashes.set(join(into, root), hash)
  return { members, narHashes }
}
