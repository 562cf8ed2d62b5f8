// Moving and removing directory trees that may be read-only, as store paths are. Root skips
// these permission checks; the unprivileged `runner` user on GitHub's runners does not.
import { chmodSync, lstatSync, renameSync } from 'node:fs'
import { chmod, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'

const OWNER_WRITE = 0o200

/**
 * rename(2) a file or directory to another parent. Linux needs write permission on a directory
 * to move it to another parent (its `..` entry changes), which a read-only store path's owner
 * lacks: the directory is made writable for the move only, then given its mode back, so the
 * path ends as read-only as Nix would have it. Synchronous system calls: a restore moves
 * thousands of paths in a row, and the thread pool's round trip costs more than each call.
 */
export function moveTree(from: string, to: string): void {
  const { mode } = lstatSync(from)
  const readOnlyDir = (mode & 0o170000) === 0o040000 && (mode & OWNER_WRITE) === 0
  if (!readOnlyDir) return renameSync(from, to)
  // Not our directory (chmod refused): the rename says whether we may move it anyway (root).
  let opened = true
  try {
    chmodSync(from, (mode | OWNER_WRITE) & 0o7777)
  } catch {
    opened = false
  }
  try {
    renameSync(from, to)
  } catch (error) {
    if (opened) chmodSync(from, mode & 0o7777)
    throw error
  }
  if (opened) chmodSync(to, mode & 0o7777)
}

/**
 * rm -rf for a tree whose directories may be read-only. Only directories are made writable:
 * files may be hard links to the store's own, whose mode must not change.
 */
export async function removeTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => null)
  if (entries === null) {
    await rm(dir, { force: true })
    return
  }
  await chmod(dir, 0o755).catch(() => undefined)
  for (const entry of entries) {
    if (entry.isDirectory()) {
      await chmod(join(entry.parentPath, entry.name), 0o755).catch(() => undefined)
    }
  }
  await rm(dir, { recursive: true, force: true })
}
