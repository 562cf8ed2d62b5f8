// The Nix side of the store cache: which paths a build needs, and moving them through a local
// binary cache directory (`file://`), a form that imports into any store (single-user or
// daemon, root-owned or not) through Nix itself, with every NAR checked against its hash.
import { readFile, readdir, stat } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { run, settleAll } from '../exec.js'
import { runNix } from '../nix/command.js'

// Keeps each command line far below the kernel's argument limit, whatever the closure size.
const PATHS_PER_COMMAND = 500

export interface FlakeMetadata {
  /** The flake source's NAR hash (`sha256-...`), or its store path when Nix gives none. */
  sourceHash: string
  /** The lock file's content as Nix read it; null when the flake has no inputs to lock. */
  lock: string | null
}

interface FlakeMetadataJson {
  path?: string
  locked?: { narHash?: string }
  locks?: { nodes?: Record<string, unknown> }
}

/** Parse `nix flake metadata --json` (pure). */
export function parseFlakeMetadata(stdout: string): FlakeMetadata {
  const json = JSON.parse(stdout) as FlakeMetadataJson
  const sourceHash = json.locked?.narHash ?? json.path
  if (!sourceHash) throw new Error('nix flake metadata named neither a narHash nor a path')
  const nodes = Object.keys(json.locks?.nodes ?? {})
  const hasInputs = nodes.some(node => node !== 'root')
  return { sourceHash, lock: hasInputs ? JSON.stringify(json.locks) : null }
}

export async function flakeMetadata(flake: string): Promise<FlakeMetadata> {
  const { stdout } = await runNix(['flake', 'metadata', '--json', flake], { silent: true })
  return parseFlakeMetadata(stdout)
}

export function isDerivation(storePath: string): boolean {
  return storePath.endsWith('.drv')
}

function batches<T>(items: readonly T[], size = PATHS_PER_COMMAND): T[][] {
  const result: T[][] = []
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size))
  return result
}

function lines(text: string): string[] {
  return text
    .split('\n')
    .map(line => line.trim())
    .filter(line => line !== '')
}

/**
 * What building the image needed: the derivation's requisites with their (valid) outputs, the
 * output included. Without a derivation, the output's runtime closure.
 */
export async function buildClosure(drvPath: string | null, storePath: string): Promise<string[]> {
  const args = drvPath ? ['-qR', '--include-outputs', drvPath] : ['-qR', storePath]
  const { stdout } = await run('nix-store', args, { silent: true })
  return [...new Set([...lines(stdout), storePath])].sort()
}

/** The paths that are not valid in the local store. */
export async function invalidPaths(paths: readonly string[]): Promise<string[]> {
  const invalid: string[] = []
  for (const batch of batches(paths)) {
    const { stdout } = await run('nix-store', ['--check-validity', '--print-invalid', ...batch], {
      silent: true
    })
    invalid.push(...lines(stdout))
  }
  return invalid
}

/**
 * `nix copy` in both directions. A `.drv` given to `nix copy` stands for its outputs unless
 * `--derivation` is given, and with `--derivation` other paths are left out (Nix 2.8), so
 * derivations and other paths go in separate calls: sources and outputs first, since
 * derivations refer to their sources.
 */
async function copyPaths(direction: '--to' | '--from', url: string, paths: readonly string[]) {
  const others = paths.filter(p => !isDerivation(p))
  const derivations = paths.filter(isDerivation)
  const checkSigs = direction === '--from' ? ['--no-check-sigs'] : []
  for (const [group, extra] of [
    [others, []],
    [derivations, ['--derivation']]
  ] as const) {
    for (const batch of batches(group)) {
      await runNix(['copy', direction, url, ...checkSigs, ...extra, ...batch], { silent: true })
    }
  }
}

/** NARs uncompressed: the cache archive is compressed once, as a whole, by @actions/cache. */
export function binaryCacheUrl(dir: string): string {
  return `file://${dir}?compression=none`
}

export async function exportPaths(dir: string, paths: readonly string[]): Promise<void> {
  await copyPaths('--to', binaryCacheUrl(dir), paths)
}

// --- importing in parallel -------------------------------------------------------------------

/** What the import schedule needs from a path's .narinfo. */
export interface NarInfo {
  /** Full store paths (self-references included, as Nix lists them). */
  references: string[]
  narSize: number
}

/** Parse a .narinfo (pure); null when it names no store path. */
export function parseNarInfo(text: string): (NarInfo & { storePath: string }) | null {
  const fields = new Map<string, string>()
  for (const line of text.split('\n')) {
    const at = line.indexOf(': ')
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 2).trim())
  }
  const storePath = fields.get('StorePath')
  if (!storePath) return null
  const storeDir = dirname(storePath)
  const references = (fields.get('References') ?? '')
    .split(' ')
    .filter(name => name !== '')
    .map(name => `${storeDir}/${name}`)
  return { storePath, references, narSize: Number(fields.get('NarSize') ?? 0) || 0 }
}

/** The .narinfo of each of `paths` in a binary cache directory; a path without one is left out. */
export async function readNarInfos(
  dir: string,
  paths: readonly string[]
): Promise<Map<string, NarInfo>> {
  const infos = new Map<string, NarInfo>()
  await Promise.all(
    paths.map(async path => {
      const file = join(dir, `${basename(path).slice(0, 32)}.narinfo`)
      const info = parseNarInfo(await readFile(file, 'utf8').catch(() => ''))
      if (info?.storePath === path) infos.set(path, info)
    })
  )
  return infos
}

/**
 * How many `nix` processes import (and verify) side by side: one per core, at most 4. One
 * `nix copy` imports its paths one after the other on one core (Nix 2.8 streams them into the
 * store in sequence), and most of that time is hashing.
 */
export function importLanes(): number {
  return Math.max(1, Math.min(4, availableParallelism()))
}

/**
 * Below this many bytes saved by splitting a level across lanes, the level goes with its
 * neighbours into one sequential `nix copy`: another round costs a process start or two.
 */
export const PARALLEL_MIN_BYTES = 32 * 1024 * 1024

/** Each path's level: 0 without references among `paths`, else 1 + its deepest reference's. */
export function topologicalLevels(
  paths: readonly string[],
  infos: ReadonlyMap<string, NarInfo>
): string[][] | null {
  const inSet = new Set(paths)
  const level = new Map<string, number>()
  const visiting = new Set<string>()
  const visit = (path: string): number | null => {
    const known = level.get(path)
    if (known !== undefined) return known
    if (visiting.has(path)) return null // a cycle: no order exists
    visiting.add(path)
    let deepest = -1
    for (const ref of infos.get(path)?.references ?? []) {
      if (ref === path || !inSet.has(ref)) continue
      const refLevel = visit(ref)
      if (refLevel === null) return null
      deepest = Math.max(deepest, refLevel)
    }
    visiting.delete(path)
    level.set(path, deepest + 1)
    return deepest + 1
  }
  const levels: string[][] = []
  for (const path of paths) {
    const at = visit(path)
    if (at === null) return null
    ;(levels[at] ??= []).push(path)
  }
  return levels
}

/** Split paths into at most `lanes` groups of about equal NAR bytes (largest first). */
export function balance(
  paths: readonly string[],
  infos: ReadonlyMap<string, NarInfo>,
  lanes: number
): string[][] {
  const size = (path: string) => infos.get(path)?.narSize ?? 0
  const groups = Array.from({ length: Math.max(1, lanes) }, () => ({
    bytes: 0,
    paths: [] as string[]
  }))
  for (const path of [...paths].sort((a, b) => size(b) - size(a) || a.localeCompare(b))) {
    const lightest = groups.reduce((best, group) =>
      group.bytes < best.bytes ||
      (group.bytes === best.bytes && group.paths.length < best.paths.length)
        ? group
        : best
    )
    lightest.bytes += size(path)
    lightest.paths.push(path)
  }
  return groups.filter(group => group.paths.length > 0).map(group => group.paths.sort())
}

function bytesOf(paths: readonly string[], infos: ReadonlyMap<string, NarInfo>): number {
  return paths.reduce((sum, path) => sum + (infos.get(path)?.narSize ?? 0), 0)
}

/**
 * The import as rounds, one after the other; a round's groups run side by side, each as its own
 * `nix copy` calls (pure). A level of the reference graph whose paths are big enough to gain from
 * it is split across the lanes: its paths refer to none of each other, and everything they refer
 * to was imported in an earlier round, so no two concurrent calls ever import the same path (Nix
 * 2.8's `nix copy` fails when a path it meant to copy turns valid under it). The levels between
 * go, merged, into one sequential call, which orders them itself. Without a .narinfo for every
 * path (to read references and sizes from), one sequential round: the plain `nix copy`.
 */
export function importSchedule(
  paths: readonly string[],
  infos: ReadonlyMap<string, NarInfo>,
  lanes: number
): string[][][] {
  const sequential = paths.length > 0 ? [[[...paths]]] : []
  if (lanes < 2 || paths.length < 2 || paths.some(path => !infos.has(path))) return sequential
  const levels = topologicalLevels(paths, infos)
  if (levels === null) return sequential
  const rounds: string[][][] = []
  let pending: string[] = []
  for (const level of levels) {
    const groups = balance(
      level.filter(path => !isDerivation(path)),
      infos,
      lanes
    )
    const saved = bytesOf(level, infos) - Math.max(0, ...groups.map(g => bytesOf(g, infos)))
    if (groups.length < 2 || saved < PARALLEL_MIN_BYTES) {
      pending.push(...level)
      continue
    }
    // Derivations (small, and `nix copy --derivation` calls of their own) import beside them.
    const derivations = level.filter(isDerivation)
    if (derivations.length > 0) groups.push(derivations)
    if (pending.length > 0) rounds.push([pending])
    pending = []
    rounds.push(groups)
  }
  if (pending.length > 0) rounds.push([pending])
  return rounds
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error))
}

/**
 * Import from a binary cache directory, in rounds of parallel `nix copy` calls (importSchedule),
 * and verify what was imported: each round's paths are rehashed (verifyPaths) while the later
 * rounds import. Throws the first failure, but only once every import and verification has
 * ended, so that the caller can roll back a store nothing writes to any more.
 *
 * Our own cache is unsigned, so signatures are not checked: what protects the store is the NAR
 * hash in each .narinfo, which Nix checks while it adds the path (a mismatch is never registered
 * as valid), and then the rehash of what was written.
 */
export async function importAndVerify(
  dir: string,
  paths: readonly string[],
  infos: ReadonlyMap<string, NarInfo> = new Map(),
  lanes = importLanes()
): Promise<void> {
  // Each verification settles to its error (or undefined): none is ever left unhandled.
  const verifying: Promise<unknown>[] = []
  let importError: unknown = undefined
  try {
    for (const round of importSchedule(paths, infos, lanes)) {
      await settleAll(round.map(group => copyPaths('--from', `file://${dir}`, group)))
      verifying.push(
        verifyPaths(round.flat(), infos, lanes).then(
          () => undefined,
          (error: unknown) => error ?? new Error('nix-store --verify-path failed')
        )
      )
    }
  } catch (error) {
    importError = error ?? new Error('nix copy failed')
  }
  const verifyError = (await Promise.all(verifying)).find(error => error !== undefined)
  const failed = importError ?? verifyError
  if (failed !== undefined) throw asError(failed)
}

/**
 * Rehash the paths' contents against the store's database; throws when one differs. Big sets
 * are split across lanes by NAR size (from `infos`), each lane its own `nix-store` process.
 */
export async function verifyPaths(
  paths: readonly string[],
  infos: ReadonlyMap<string, NarInfo> = new Map(),
  lanes = importLanes()
): Promise<void> {
  const groups =
    bytesOf(paths, infos) >= PARALLEL_MIN_BYTES ? balance(paths, infos, lanes) : [[...paths]]
  await settleAll(
    groups.map(async group => {
      for (const batch of batches(group)) {
        await run('nix-store', ['--verify-path', ...batch], { silent: true })
      }
    })
  )
}

/** Delete paths that nothing else keeps alive (never forced). */
export async function deletePaths(paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return
  await run('nix-store', ['--delete', ...paths], { silent: true })
}

/** Bytes under a directory (files only), for the log and the job summary. */
export async function directorySize(dir: string): Promise<number> {
  let total = 0
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size
  }
  return total
}
