// The Nix side of the store cache: what a flake's key is made of, which paths a build and the
// flake's inputs need, and which of them the store lacks.
import { run } from '../exec.js'
import { batches, runNix } from '../nix/command.js'

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

export function lines(text: string): string[] {
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

interface FlakeArchiveNode {
  path?: string
  inputs?: Record<string, FlakeArchiveNode>
}

/**
 * The store paths of a flake's inputs, however deep, from `nix flake archive --json --dry-run`
 * (pure). The flake's own source is left out: it is the checkout, copied into the store anew
 * by every evaluation of it.
 */
export function parseFlakeArchive(stdout: string): string[] {
  const found = new Set<string>()
  const visit = (node: FlakeArchiveNode) => {
    for (const input of Object.values(node.inputs ?? {})) {
      if (input.path) found.add(input.path)
      visit(input)
    }
  }
  visit(JSON.parse(stdout) as FlakeArchiveNode)
  return [...found].sort()
}

/**
 * The sources of the flake's locked inputs. `--dry-run` computes their store paths from the
 * lock file instead of fetching them (after a build they are in the store anyway).
 */
export async function flakeInputPaths(flake: string): Promise<string[]> {
  const { stdout } = await runNix(['flake', 'archive', '--json', '--dry-run', flake], {
    silent: true
  })
  return parseFlakeArchive(stdout)
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

/** Delete paths that nothing else keeps alive (never forced). */
export async function deletePaths(paths: readonly string[]): Promise<void> {
  if (paths.length === 0) return
  await run('nix-store', ['--delete', ...paths], { silent: true })
}
