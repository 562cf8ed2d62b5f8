// Archives written header by header (node-tar's Header), whatever their members are: what an
// attacker can upload as a store cache entry (the unit tests of the extraction, and the e2e
// tests, which add such members to a genuine entry's archive).
import { Header, Pax } from 'tar'
import type { HeaderData } from 'tar'

export interface Entry extends HeaderData {
  data?: string
  /** The records of a pax extended header (its data). */
  pax?: Record<string, string>
}

/** One pax record: its length (its own digits included), the key and the value. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  let length = body.length
  while (String(length).length + body.length !== length) {
    length = String(length).length + body.length
  }
  return `${length}${body}`
}

/** These members as tar blocks, in this order, as they are (no end-of-archive blocks). */
export function tarMembers(entries: Entry[]): Buffer {
  const blocks: Buffer[] = []
  for (const { data = '', pax, ...header } of entries) {
    const records = Object.entries(pax ?? {}).map(([key, value]) => paxRecord(key, value))
    const body = Buffer.from(pax === undefined ? data : records.join(''))
    const h = new Header({
      mode: header.type === 'Directory' ? 0o755 : 0o644,
      uid: 1001,
      gid: 1001,
      mtime: new Date(1000),
      type: 'File',
      ...header,
      size: body.length
    })
    h.encode()
    // A name or target past ustar's fields goes in a pax record before it, as GNU tar does.
    if (h.needPax) blocks.push(new Pax({ path: header.path, linkpath: header.linkpath }).encode())
    blocks.push(h.block as Buffer, body, Buffer.alloc((512 - (body.length % 512)) % 512))
  }
  return Buffer.concat(blocks)
}

/** The end of a tar archive: two zero blocks. */
export const END_OF_ARCHIVE = Buffer.alloc(1024)

/** A plain tar of these members, in this order, as they are. */
export function tarball(entries: Entry[]): Buffer {
  return Buffer.concat([tarMembers(entries), END_OF_ARCHIVE])
}

/** Where a tar archive's members end (its first zero block): to add members to it. */
export function membersEnd(tar: Buffer): number {
  let at = 0
  while (at + 512 <= tar.length) {
    const header = new Header(tar, at)
    if (header.nullBlock) return at
    at += 512 + Math.ceil((header.size ?? 0) / 512) * 512
  }
  throw new Error('test: the archive has no end-of-archive blocks')
}
