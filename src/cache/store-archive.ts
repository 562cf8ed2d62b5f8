// The store cache's archive: the store paths themselves (as files, under `store/`) and their
// registration in the form `nix-store --dump-db` writes and `--load-db` reads (the release
// tarball's `.reginfo`). Restoring is one extraction into a staging directory on the store's
// filesystem, a NAR hash check of every path against its registration, a rename of each missing
// path into the store and one `nix-store --load-db` for them: no byte is written twice, and no
// path is registered valid before it is whole and checked.
import { lstatSync } from 'node:fs'
import { access, constants, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { basename, join } from 'node:path'
import { run, settleAll } from '../exec.js'
import { batches, isLocalStore, runNix } from '../nix/command.js'
import { moveTree, removeTree } from '../tree.js'
import { isDerivation, lines } from './nix-store.js'
import { addSignatures } from './signatures.js'
import { nixDatabaseDir } from '../nix/db.js'

/** The directory (under the archive's root) holding the store paths' files. */
export const STORE_SUBDIR = 'store'
export const REGISTRATION_FILE = 'registration'

// --- the registration (pure) ---------------------------------------------------------------

export interface Registration {
  path: string
  /** sha256 of the path's NAR, base16, as `nix-store --dump-db` writes it. */
  narHash: string
  narSize: number
  deriver: string
  references: string[]
}

/**
 * Parse `nix-store --dump-db` output: per path, its path, NAR hash, NAR size, deriver (maybe
 * empty), the number of references and the references, one a line.
 */
export function parseRegistrations(text: string): Registration[] {
  const rows = text.split('\n')
  const result: Registration[] = []
  let at = 0
  while (at < rows.length && rows[at] !== '') {
    const [path = '', narHash = '', size = '', deriver = '', count = ''] = rows.slice(at, at + 5)
    const refCount = Number(count)
    if (!/^[0-9a-f]{64}$/.test(narHash) || !Number.isInteger(refCount) || refCount < 0) {
      throw new Error(`the registration of ${JSON.stringify(path)} is not in --dump-db form`)
    }
    const references = rows.slice(at + 5, at + 5 + refCount)
    if (references.length !== refCount) throw new Error(`the registration ends inside ${path}`)
    result.push({ path, narHash, narSize: Number(size) || 0, deriver, references })
    at += 5 + refCount
  }
  return result
}

/** A registration and where its path's files were extracted. */
export interface StagedPath extends Registration {
  staged: string
  /** The Nix signatures its entry recorded for it (none: unsigned). */
  signatures: string[]
}

/** The inverse of parseRegistrations, for `nix-store --load-db`. */
export function formatRegistrations(entries: readonly Registration[]): string {
  return entries
    .map(e =>
      [
        e.path,
        e.narHash,
        String(e.narSize),
        e.deriver,
        String(e.references.length),
        ...e.references
      ]
        .map(row => `${row}\n`)
        .join('')
    )
    .join('')
}

// --- how to restore (pure) -----------------------------------------------------------------

export interface StoreAccess {
  /** NIX_REMOTE, or null: a daemon or remote store means Nix must do the writing. */
  nixRemote: string | null
  storeWritable: boolean
  /** The Nix database directory is writable: Nix itself opens the store as local then. */
  dbWritable: boolean
}

export type RestoreMethod = { fast: true } | { fast: false; reason: string }

/**
 * Extract into the store and register directly when this process may write both the store and
 * its database, as Nix would open it (a single-user store, or root); otherwise let Nix import
 * the paths (`nix copy`, through the daemon), which is slower but needs no rights.
 */
export function restoreMethod(facts: StoreAccess): RestoreMethod {
  if (!isLocalStore(facts.nixRemote)) {
    return { fast: false, reason: `NIX_REMOTE=${facts.nixRemote}: the store is not local` }
  }
  if (!facts.storeWritable) return { fast: false, reason: 'the store directory is not writable' }
  if (!facts.dbWritable) {
    return { fast: false, reason: 'the Nix database is not writable (a daemon store)' }
  }
  return { fast: true }
}

async function writable(path: string): Promise<boolean> {
  return access(path, constants.W_OK).then(
    () => true,
    () => false
  )
}

export function storeDirectory(): string {
  return process.env.NIX_STORE_DIR ?? '/nix/store'
}

export async function storeAccess(storeDir = storeDirectory()): Promise<StoreAccess> {
  const [storeWritable, dbWritable] = await Promise.all([
    writable(storeDir),
    writable(nixDatabaseDir())
  ])
  return { nixRemote: process.env.NIX_REMOTE ?? null, storeWritable, dbWritable }
}

// --- save ------------------------------------------------------------------------------------

/** The registrations of valid paths (`nix-store --dump-db`), in the order given. */
export async function registrationsOf(paths: readonly string[]): Promise<Registration[]> {
  const registrations: Registration[] = []
  for (const batch of batches(paths)) {
    const { stdout } = await run('nix-store', ['--dump-db', ...batch], { silent: true })
    registrations.push(...parseRegistrations(stdout))
  }
  return registrations
}

/** NAR bytes of these paths, as registered. */
export function narBytes(registrations: readonly Registration[]): number {
  return registrations.reduce((sum, r) => sum + r.narSize, 0)
}

/**
 * Write the archive's contents into `dir`: the registration, and the paths under `store/` as
 * hard links (no copy: the files are read-only and nothing writes to them) where the filesystem
 * and the kernel allow it, else as a copy.
 */
export async function writeArchive(
  dir: string,
  registrations: readonly Registration[]
): Promise<void> {
  const paths = registrations.map(r => r.path)
  await writeFile(join(dir, REGISTRATION_FILE), formatRegistrations(registrations))
  const storeCopy = join(dir, STORE_SUBDIR)
  try {
    await copyInto(storeCopy, paths, '-al')
  } catch {
    // Another filesystem, or fs.protected_hardlinks with a store someone else owns.
    await removeTree(storeCopy)
    await copyInto(storeCopy, paths, '-a')
  }
}

async function copyInto(target: string, paths: readonly string[], mode: '-a' | '-al') {
  await run('mkdir', ['-p', target], { silent: true })
  for (const batch of batches(paths)) {
    await run('cp', [mode, '--', ...batch, target], { silent: true })
  }
}

// --- restore ---------------------------------------------------------------------------------

/** How many hashing processes run side by side: one per core, at most 4. */
export function hashLanes(): number {
  return Math.max(1, Math.min(4, availableParallelism()))
}

/** Split paths into at most `lanes` groups of about equal NAR bytes (largest first). */
export function balance<R extends Registration>(entries: readonly R[], lanes: number): R[][] {
  const groups = Array.from({ length: Math.max(1, lanes) }, () => ({
    bytes: 0,
    entries: [] as R[]
  }))
  const bySize = [...entries].sort((a, b) => b.narSize - a.narSize || a.path.localeCompare(b.path))
  for (const entry of bySize) {
    const lightest = groups.reduce((best, group) => (group.bytes < best.bytes ? group : best))
    lightest.bytes += entry.narSize
    lightest.entries.push(entry)
  }
  return groups.filter(group => group.entries.length > 0).map(group => group.entries)
}

/** The entries whose staged copy's NAR hash differs from the registration (pure). */
export function hashMismatches(entries: readonly Registration[], hashes: readonly string[]) {
  return entries.filter((entry, i) => hashes[i]?.trim() !== entry.narHash)
}

/**
 * Check each staged path's NAR hash against its registration and throw when one differs or is
 * missing: the hashes the extraction computed as it wrote them (`known`, by staged path), and
 * for the paths it has none of, `nix hash path` (one process per lane).
 */
export async function checkStagedHashes(
  entries: readonly StagedPath[],
  known: ReadonlyMap<string, string> = new Map(),
  lanes = hashLanes()
): Promise<void> {
  const differ = (bad: readonly Registration[]) =>
    new Error(
      `${bad.length} path(s) differ from their registered NAR hash, e.g. ${bad[0]?.path ?? ''}`
    )
  const hashed = entries.filter(e => known.has(e.staged))
  const bad = hashMismatches(
    hashed,
    hashed.map(e => known.get(e.staged) ?? '')
  )
  if (bad.length > 0) throw differ(bad)
  const rest = entries.filter(e => !known.has(e.staged))
  await settleAll(
    balance(rest, lanes).map(async group => {
      for (const batch of batches(group)) {
        const { stdout } = await runNix(
          ['hash', 'path', '--type', 'sha256', '--base16', ...batch.map(e => e.staged)],
          { silent: true }
        )
        const mismatched = hashMismatches(batch, lines(stdout))
        if (mismatched.length > 0) throw differ(mismatched)
      }
    })
  )
}

/**
 * Move the checked paths from the staging store into the store and register them in one
 * `nix-store --load-db`. A leftover of an earlier, unregistered path of the same name (invalid,
 * so Nix's own garbage) is moved aside into the staging directory first. When registering
 * fails, the moved paths go back to the staging directory: nothing of the archive stays.
 */
export async function moveIntoStore(
  stagingDir: string,
  entries: readonly StagedPath[],
  /** Called between the moves and the registration (the restore's log times both). */
  onMoved: () => void = () => undefined
): Promise<void> {
  const trash = join(stagingDir, 'trash')
  const moved: StagedPath[] = []
  try {
    for (const entry of entries) {
      // lstat: a leftover may be a dangling symlink.
      if (lstatSync(entry.path, { throwIfNoEntry: false }) !== undefined) {
        await run('mkdir', ['-p', trash], { silent: true })
        moveTree(entry.path, join(trash, basename(entry.path)))
      }
      moveTree(entry.staged, entry.path)
      moved.push(entry)
    }
    onMoved()
    await run('nix-store', ['--load-db'], { input: formatRegistrations(entries), silent: true })
  } catch (error) {
    for (const entry of moved) {
      try {
        moveTree(entry.path, entry.staged)
      } catch {
        // Left where it is: invalid, so Nix's own garbage.
      }
    }
    throw error
  }
}

/**
 * Where Nix must do the writing (a daemon store): register the staged paths in a store of their
 * own (`local?root=`, the staged files in its store directory), then `nix copy` them from there,
 * which checks each NAR hash as it adds the path.
 */
export async function importThroughNix(
  chrootDir: string,
  storeDir: string,
  staged: readonly StagedPath[],
  missing: readonly StagedPath[]
): Promise<void> {
  const chrootStore = join(chrootDir, storeDir)
  await run('mkdir', ['-p', chrootStore], { silent: true })
  // Every staged path, so that `nix copy` finds each missing path's references there too.
  for (const entry of staged) moveTree(entry.staged, join(chrootStore, basename(entry.path)))
  const from = `local?root=${chrootDir}`
  await run('nix-store', ['--store', from, '--load-db'], {
    input: formatRegistrations(staged),
    silent: true
  })
  // `nix copy` takes each path's signatures along: a daemon with `require-sigs` checks them.
  await addSignatures(join(chrootDir, '..', 'narinfo-chroot'), storeDir, missing, from)
  const paths = missing.map(e => e.path)
  // A `.drv` given to `nix copy` stands for its outputs unless `--derivation` is given, and with
  // `--derivation` other paths are left out (Nix 2.8): two calls, sources and outputs first.
  for (const [group, extra] of [
    [paths.filter(p => !isDerivation(p)), []],
    [paths.filter(isDerivation), ['--derivation']]
  ] as const) {
    for (const batch of batches(group)) {
      await runNix(['copy', '--from', from, '--no-check-sigs', ...extra, ...batch], {
        silent: true
      })
    }
  }
}
