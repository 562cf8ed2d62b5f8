// NAR hashes of the trees an extraction writes, computed from the bytes as they go by: the
// restore checks each store path against the NAR hash of its registration, and hashing what
// the extraction already holds in hand costs no second pass over the bytes (nor a `nix hash
// path` process per core), while the other core decompresses. A NAR (Nix's archive format) is
// the tree serialised with each directory's entries sorted by name: a tar lists them in the
// order its writer read them, so a directory tree's files are kept (by reference to the chunks
// read) until the tree is whole, then serialised; a tree that is one file is hashed as it
// streams. What cannot be hashed here (a tree over the memory budget, or whose members do not
// come together) gets no hash, and the caller hashes it with Nix.
import { createHash } from 'node:crypto'
import type { Hash } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'

/** A member of a tree, as written. */
export type TreeMember =
  | { kind: 'directory' }
  | { kind: 'symlink'; target: string }
  | { kind: 'file'; executable: boolean; size: number }
  /** A hard link: the file it shares is read back from disk (written before it). */
  | { kind: 'hardlink'; path: string }

/** Where a file member's bytes go. */
export interface ContentSink {
  data(chunk: Buffer): void
  end(): void
}

type Node =
  | { type: 'directory'; entries: Map<string, Node> }
  | { type: 'symlink'; target: string }
  | { type: 'regular'; executable: boolean; chunks: Buffer[] }
  | { type: 'link'; path: string }

/** The memory a tree's kept bytes may hold, at most (a bigger tree is hashed by Nix). */
export const TREE_BUDGET = 256 * 1024 * 1024

const PADDING = Buffer.alloc(8)

/** NAR's string: its length (u64, little-endian), its bytes, zeros to a multiple of 8. */
function putString(hash: Hash, value: string | Buffer): void {
  const bytes = typeof value === 'string' ? Buffer.from(value) : value
  putContentsHeader(hash, bytes.length)
  hash.update(bytes)
  putPadding(hash, bytes.length)
}

function putContentsHeader(hash: Hash, length: number): void {
  const size = Buffer.alloc(8)
  size.writeBigUInt64LE(BigInt(length))
  hash.update(size)
}

function putPadding(hash: Hash, length: number): void {
  const pad = (8 - (length % 8)) % 8
  if (pad > 0) hash.update(PADDING.subarray(0, pad))
}

function putFileHeader(hash: Hash, executable: boolean): void {
  for (const s of ['(', 'type', 'regular']) putString(hash, s)
  if (executable) {
    putString(hash, 'executable')
    putString(hash, '')
  }
  putString(hash, 'contents')
}

/** Serialise a node into the hash, as `nix-store --dump` writes it. */
function putNode(hash: Hash, node: Node): void {
  switch (node.type) {
    case 'symlink':
      for (const s of ['(', 'type', 'symlink', 'target', node.target, ')']) putString(hash, s)
      return
    case 'regular': {
      const size = node.chunks.reduce((sum, chunk) => sum + chunk.length, 0)
      putFileHeader(hash, node.executable)
      putContentsHeader(hash, size)
      for (const chunk of node.chunks) hash.update(chunk)
      putPadding(hash, size)
      putString(hash, ')')
      return
    }
    case 'link': {
      const bytes = readFileSync(node.path)
      const executable = (statSync(node.path).mode & 0o100) !== 0
      putNode(hash, { type: 'regular', executable, chunks: [bytes] })
      return
    }
    case 'directory': {
      for (const s of ['(', 'type', 'directory']) putString(hash, s)
      const names = [...node.entries.keys()]
        .map(name => Buffer.from(name))
        .sort((a, b) => Buffer.compare(a, b))
      for (const name of names) {
        putString(hash, 'entry')
        putString(hash, '(')
        putString(hash, 'name')
        putString(hash, name)
        putString(hash, 'node')
        putNode(hash, node.entries.get(name.toString()) as Node)
        putString(hash, ')')
      }
      putString(hash, ')')
    }
  }
}

function narHash(node: Node): string {
  const hash = createHash('sha256')
  putString(hash, 'nix-archive-1')
  putNode(hash, node)
  return hash.digest('hex')
}

/** The tree being extracted: its root node so far, or a file root hashed as it streams. */
interface Current {
  root: string
  node: Node | null
  streaming: Hash | null
  bytes: number
}

/**
 * The NAR hashes (sha256, base16) of the trees extracted, by root name, each computed once its
 * tree is whole. Members must come tree by tree, each tree's together (as tar writes a
 * directory walk); a tree whose members come apart, or that is bigger than `budget`, gets no
 * hash.
 */
export class TreeHashes {
  private current: Current | null = null
  private readonly hashes = new Map<string, string>()
  private readonly unhashed = new Set<string>()

  constructor(private readonly budget = TREE_BUDGET) {}

  /**
   * A member of the tree `root` at `rel` (its parts below the root; [] for the root itself).
   * For a file, where its bytes go.
   */
  member(root: string, rel: readonly string[], member: TreeMember): ContentSink | null {
    if (this.current?.root !== root) this.start(root)
    const current = this.current
    if (current === null || this.unhashed.has(root)) return null
    if (rel.length === 0 && member.kind === 'file') {
      // A tree that is one file: hashed as it streams.
      const hash = createHash('sha256')
      putString(hash, 'nix-archive-1')
      putFileHeader(hash, member.executable)
      putContentsHeader(hash, member.size)
      current.streaming = hash
      return {
        data: chunk => hash.update(chunk),
        end: () => {
          putPadding(hash, member.size)
          putString(hash, ')')
        }
      }
    }
    const node = this.nodeOf(member)
    if (!this.place(current, rel, node)) {
      this.giveUp(root)
      return null
    }
    if (node.type !== 'regular') return null
    return {
      data: chunk => {
        if (this.current !== current || current.node === null) return
        // A small piece of a read keeps the whole read's memory: copied, it keeps its own.
        const small = chunk.length * 2 < chunk.buffer.byteLength
        current.bytes += small ? chunk.length : chunk.buffer.byteLength
        if (current.bytes > this.budget) this.giveUp(root)
        else node.chunks.push(small ? Buffer.from(chunk) : chunk)
      },
      end: () => undefined
    }
  }

  /** Every tree's hash, the last one's included; the trees that got none are left out. */
  finish(): Map<string, string> {
    this.end()
    return this.hashes
  }

  private nodeOf(member: TreeMember): Node {
    switch (member.kind) {
      case 'directory':
        return { type: 'directory', entries: new Map() }
      case 'symlink':
        return { type: 'symlink', target: member.target }
      case 'file':
        return { type: 'regular', executable: member.executable, chunks: [] }
      case 'hardlink':
        return { type: 'link', path: member.path }
    }
  }

  /** Put `node` at `rel` in the current tree (parents made as directories); false: no place. */
  private place(current: Current, rel: readonly string[], node: Node): boolean {
    if (rel.length === 0) {
      if (current.node !== null)
        return current.node.type === 'directory' && node.type === 'directory'
      current.node = node
      return true
    }
    current.node ??= { type: 'directory', entries: new Map() }
    let dir = current.node
    for (const part of rel.slice(0, -1)) {
      if (dir.type !== 'directory') return false
      let next = dir.entries.get(part)
      if (next === undefined) {
        next = { type: 'directory', entries: new Map() }
        dir.entries.set(part, next)
      }
      dir = next
    }
    if (dir.type !== 'directory') return false
    const name = rel[rel.length - 1] ?? ''
    const there = dir.entries.get(name)
    if (there !== undefined) return there.type === 'directory' && node.type === 'directory'
    dir.entries.set(name, node)
    return true
  }

  private start(root: string): void {
    this.end()
    if (this.unhashed.has(root)) return
    if (this.hashes.has(root)) {
      // Its members came apart: what was hashed is not the whole tree.
      this.giveUp(root)
      return
    }
    this.current = { root, node: null, streaming: null, bytes: 0 }
  }

  private end(): void {
    const current = this.current
    this.current = null
    if (current === null || this.unhashed.has(current.root)) return
    if (current.streaming !== null) this.hashes.set(current.root, current.streaming.digest('hex'))
    else if (current.node !== null) this.hashes.set(current.root, narHash(current.node))
  }

  private giveUp(root: string): void {
    this.unhashed.add(root)
    this.hashes.delete(root)
    if (this.current?.root === root) this.current = null
  }
}
