// The Nix side of the store cache: which paths a build needs, and moving them through a local
// binary cache directory (`file://`), a form that imports into any store (single-user or
// daemon, root-owned or not) through Nix itself, with every NAR checked against its hash.
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../exec.js'
import { NIX_FEATURE_ARGS } from '../stages/build.js'

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
  const { stdout } = await run('nix', [...NIX_FEATURE_ARGS, 'flake', 'metadata', '--json', flake], {
    silent: true
  })
  return parseFlakeMetadata(stdout)
}

export async function currentSystem(): Promise<string> {
  const { stdout } = await run(
    'nix',
    [...NIX_FEATURE_ARGS, 'eval', '--impure', '--raw', '--expr', 'builtins.currentSystem'],
    { silent: true }
  )
  return stdout.trim()
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
      await run(
        'nix',
        [...NIX_FEATURE_ARGS, 'copy', direction, url, ...checkSigs, ...extra, ...batch],
        {
          silent: true
        }
      )
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

/**
 * Import from a binary cache directory. Our own cache is unsigned, so signatures are not
 * checked: what protects the store is the NAR hash in each .narinfo, which Nix checks while it
 * adds the path (a mismatch is never registered as valid).
 */
export async function importPaths(dir: string, paths: readonly string[]): Promise<void> {
  await copyPaths('--from', `file://${dir}`, paths)
}

/** Rehash the paths' contents against the store's database; throws when one differs. */
export async function verifyPaths(paths: readonly string[]): Promise<void> {
  for (const batch of batches(paths)) {
    await run('nix-store', ['--verify-path', ...batch], { silent: true })
  }
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
