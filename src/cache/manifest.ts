// The archive's manifest: its layout version and the store paths it holds.
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Bump when the archive's layout changes, so old entries are never restored. */
export const MANIFEST_VERSION = 2
export const MANIFEST_FILE = 'nix-container-action.json'

export interface Manifest {
  version: number
  paths: string[]
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
  return { version: MANIFEST_VERSION, paths }
}

/** The manifest of the archive in `dir`. */
export async function readManifest(dir: string): Promise<Manifest> {
  return parseManifest(await readFile(join(dir, MANIFEST_FILE), 'utf8'))
}

/** Write the manifest of an archive of `paths` into `dir`. */
export async function writeManifest(dir: string, paths: string[]): Promise<void> {
  const manifest: Manifest = { version: MANIFEST_VERSION, paths }
  await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest))
}
