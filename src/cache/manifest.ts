// The archive's manifest: its layout version and the store paths it holds.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Bump when the archive's layout changes, so old entries are never restored. */
export const MANIFEST_VERSION = 2
export const MANIFEST_FILE = 'nix-container-action.json'

export interface Manifest {
  version: number
  paths: string[]
  /**
   * Nix signatures (`<key name>:<base64>`) of the paths, by path, when the entry was saved with
   * `cache-signing-key`; absent (or a path absent from it): unsigned. Optional, so that an entry
   * without it is read as before and an older reader ignores it.
   */
  signatures?: Record<string, string[]>
}

const STORE_PATH = /^\/[^\n]*\/[0-9a-z]{32}-[^/\n]+$/

/** Parse and check a manifest (pure, for tests): an older layout or a non-path is an error. */
export function parseManifest(text: string): Manifest {
  const json = JSON.parse(text) as Partial<Manifest>
  if (json.version !== MANIFEST_VERSION) {
    throw new Error(
      `the archive's manifest has version ${String(json.version)}, not ${MANIFEST_VERSION}`
    )
  }
  const paths = Array.isArray(json.paths) ? json.paths : []
  const bad = paths.find(p => typeof p !== 'string' || !STORE_PATH.test(p))
  if (bad !== undefined)
    throw new Error(`the archive's manifest lists ${JSON.stringify(bad)}, not a store path`)
  if (json.signatures === undefined) return { version: MANIFEST_VERSION, paths }
  return { version: MANIFEST_VERSION, paths, signatures: parseSignatures(json.signatures) }
}

function parseSignatures(value: unknown): Record<string, string[]> {
  const ok =
    typeof value === 'object' &&
    value !== null &&
    !Array.isArray(value) &&
    Object.values(value).every(
      sigs => Array.isArray(sigs) && sigs.every(sig => typeof sig === 'string')
    )
  if (!ok) throw new Error("the archive's manifest has signatures that are not lists of strings")
  // No prototype: a path named like an Object member must not find one.
  return Object.assign(Object.create(null) as Record<string, string[]>, value)
}

/** The manifest of the archive in `dir`. */
export async function readManifest(dir: string): Promise<Manifest> {
  return parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'))
}

/** Write the manifest of an archive of `paths` into `dir`. */
export async function writeManifest(
  dir: string,
  paths: string[],
  signatures: Record<string, string[]> | null = null
): Promise<void> {
  const manifest: Manifest = { version: MANIFEST_VERSION, paths }
  if (signatures !== null) manifest.signatures = signatures
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest))
}
