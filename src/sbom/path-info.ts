// What Nix knows about store paths: NAR hash, references, deriver (`nix path-info --json`).
// The JSON has changed shape across Nix releases: an array of objects with full paths
// (up to 2.18), an object keyed by path (2.19 on), base names beside `storeDir` (format
// version 2); all are read here.
import { batches, runNix } from '../nix/command.js'
import { narHashToHex } from './nar-hash.js'

export interface PathInfo {
  /** SHA-256 of the path's NAR serialisation, hex. */
  narHashHex: string
  /** Store paths it refers to (full paths), itself included when it does. */
  references: string[]
  /** The .drv that built it, when Nix knows. */
  deriver: string | null
}

const STORE_DIR = '/nix/store'
// Fewer, bigger calls than the default batch (one process start each), still well under the
// kernel's argument limit.
const PATHS_PER_CALL = 2000

/** A base name (`<hash>-<name>`) or a full path, as a full path. */
function fullPath(path: string, storeDir: string): string {
  return path.startsWith('/') ? path : `${storeDir}/${path}`
}

interface RawPathInfo {
  path?: string
  narHash?: unknown
  references?: string[]
  deriver?: string | null
  storeDir?: string
}

/** Parse `nix path-info --json` output (pure, for tests). Invalid paths are left out. */
export function parsePathInfo(json: string): Map<string, PathInfo> {
  const parsed = JSON.parse(json) as unknown
  const entries: [string | undefined, RawPathInfo | null][] = Array.isArray(parsed)
    ? (parsed as RawPathInfo[]).map(info => [undefined, info])
    : Object.entries(parsed as Record<string, RawPathInfo | null>)
  const infos = new Map<string, PathInfo>()
  for (const [key, raw] of entries) {
    // Nix 2.8 lists an invalid path as `{"path": ..., "valid": false}`; 2.19+ as null.
    if (!raw || raw.narHash === undefined) continue
    const storeDir = raw.storeDir ?? STORE_DIR
    const path = raw.path ?? key
    if (!path) throw new Error('nix path-info --json gave an entry without a path')
    infos.set(fullPath(path, storeDir), {
      narHashHex: narHashToHex(raw.narHash),
      references: (raw.references ?? []).map(ref => fullPath(ref, storeDir)),
      deriver: raw.deriver ? fullPath(raw.deriver, storeDir) : null
    })
  }
  return infos
}

/** Ask Nix about each path; a path Nix does not have is missing from the result. */
export async function queryPathInfo(paths: readonly string[]): Promise<Map<string, PathInfo>> {
  const infos = new Map<string, PathInfo>()
  for (const batch of batches(paths, PATHS_PER_CALL)) {
    const { stdout } = await runNix(['path-info', '--json', '--', ...batch], { silent: true })
    for (const [path, info] of parsePathInfo(stdout)) infos.set(path, info)
  }
  return infos
}
