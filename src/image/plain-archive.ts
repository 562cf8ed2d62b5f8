// Reading an uncompressed docker archive by seeking: tar has no index, but each header says
// how far to skip, so manifest.json and the config are found without reading the layers.
// (node-tar parses the headers; only the skipping is done here.)
import { createHash } from 'node:crypto'
import { open } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { posix } from 'node:path'
import { Header, Pax } from 'tar'
import type { HeaderData } from 'tar'

const BLOCK = 512

export interface TarEntry {
  offset: number
  size: number
  type: string
  linkpath: string | null
}

/** `./a/b` and `a/b` are the same entry. */
export function entryName(path: string): string {
  return posix.normalize(path).replace(/^\.\//, '').replace(/\/$/, '')
}

async function readAt(file: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buffer = Buffer.alloc(length)
  const { bytesRead } = await file.read(buffer, 0, length, offset)
  return buffer.subarray(0, bytesRead)
}

// Headers of small files lie close together: read ahead, so a layer of many small files
// costs one read per window rather than one per header.
const READ_AHEAD = 64 * 1024

/** Reads at offsets through a read-ahead window. */
class WindowReader {
  private window: Buffer = Buffer.alloc(0)
  private windowOffset = 0

  constructor(private readonly file: FileHandle) {}

  async read(offset: number, length: number): Promise<Buffer> {
    const start = offset - this.windowOffset
    if (start < 0 || start + length > this.window.length) {
      this.window = await readAt(this.file, offset, Math.max(length, READ_AHEAD))
      this.windowOffset = offset
      return this.window.subarray(0, length)
    }
    return this.window.subarray(start, start + length)
  }
}

/** Where a tar lies in a file: the whole file, or an entry of an outer tar (a layer). */
export interface TarRegion {
  offset: number
  size: number
}

/** Every entry of an uncompressed tar file (or of a tar inside it), by name, with where its data is. */
export async function indexTar(path: string, region?: TarRegion): Promise<Map<string, TarEntry>> {
  const entries = new Map<string, TarEntry>()
  const file = await open(path, 'r')
  const reader = new WindowReader(file)
  const end = region ? region.offset + region.size : Infinity
  try {
    let offset = region?.offset ?? 0
    // A pax header or GNU long name describes the entry after it.
    let extended: HeaderData | undefined
    while (offset < end) {
      if (offset + BLOCK > end) throw new Error(`not a tar archive (cut short at byte ${offset})`)
      const block = await reader.read(offset, BLOCK)
      if (block.length < BLOCK) break
      const header = new Header(block, 0, extended)
      if (header.nullBlock) break
      if (!header.cksumValid) throw new Error(`not a tar archive (bad header at byte ${offset})`)
      const size = header.size ?? 0
      const dataOffset = offset + BLOCK
      if (header.type === 'ExtendedHeader') {
        extended = Pax.parse((await reader.read(dataOffset, size)).toString('utf8'))
      } else if (header.type === 'NextFileHasLongPath') {
        const longPath = (await reader.read(dataOffset, size)).toString('utf8').replace(/\0+$/, '')
        extended = { path: longPath }
      } else if (header.type !== 'GlobalExtendedHeader') {
        entries.set(entryName(header.path ?? ''), {
          offset: dataOffset,
          size,
          type: header.type,
          linkpath: header.linkpath ?? null
        })
        extended = undefined
      }
      offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK
    }
  } finally {
    await file.close()
  }
  return entries
}

/** The file entry `name` names, following a symbolic link within the archive; null if none. */
export function fileEntry(entries: Map<string, TarEntry>, name: string): TarEntry | null {
  let entry = entries.get(entryName(name))
  if (entry?.type === 'SymbolicLink' && entry.linkpath) {
    entry = entries.get(entryName(posix.join(posix.dirname(entryName(name)), entry.linkpath)))
  }
  return entry?.type === 'File' ? entry : null
}

/** The content of an entry, following a symbolic link within the archive. */
export async function readEntry(
  path: string,
  entries: Map<string, TarEntry>,
  name: string
): Promise<Buffer | null> {
  const entry = fileEntry(entries, name)
  if (!entry) return null
  const file = await open(path, 'r')
  try {
    return await readAt(file, entry.offset, entry.size)
  } finally {
    await file.close()
  }
}

export function sha256Digest(content: Buffer | string): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`
}
