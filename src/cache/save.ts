// Saving the store cache: what goes in (the build closures and the flake inputs' sources), as
// what (a delta on the restored base, or a new base), and writing the archive.
import * as core from '../core.js'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { removeTree } from '../tree.js'
import { deltaKey, isSameLock } from './keys.js'
import type { CacheKeys, EntryKey } from './keys.js'
import { writeManifest } from './manifest.js'
import { buildClosure, flakeInputPaths, invalidPaths } from './nix-store.js'
import { layerDirectory } from './restore.js'
import type { RestoredLayer } from './restore.js'
import { deltaFits, DELTA_SHARE, pathsNotRestored } from './save-rules.js'
import { CACHE_DIR_NAME, saveDirectory } from './service.js'
import { narBytes, registrationsOf, writeArchive } from './store-archive.js'
import type { Registration } from './store-archive.js'
import { signRegistrations } from './signatures.js'
import type { NixSecretKey } from '../signing/nix-key.js'

/** The union of every build's closure. */
async function closureOfBuilds(drvPaths: string | null, storePaths: string): Promise<string[]> {
  const drvs = (drvPaths ?? '').split('\n')
  const closure = new Set<string>()
  for (const [i, storePath] of storePaths.split('\n').filter(Boolean).entries()) {
    for (const path of await buildClosure(drvs[i] || null, storePath)) closure.add(path)
  }
  return [...closure].sort()
}

/**
 * The build closures (one per system built) and the sources of the flake's inputs (sorted).
 * `drvPaths` and `storePaths` are one a line, in the same order ('' where a drv is unknown).
 */
export async function pathsToCache(
  flake: string,
  drvPaths: string | null,
  storePaths: string
): Promise<string[]> {
  const [closure, inputs] = await Promise.all([
    closureOfBuilds(drvPaths, storePaths),
    flakeInputPaths(flake)
  ])
  // An input the evaluation never needed may not be in the store: nothing to keep of it.
  const absent = new Set(await invalidPaths(inputs))
  return [...new Set([...closure, ...inputs.filter(p => !absent.has(p))])].sort()
}

/** What post saves: a base (a whole closure), a delta on a restored base, or a whole entry. */
export interface SavePlan {
  kind: EntryKey['kind']
  key: string
  registrations: Registration[]
  /** The base a delta builds on. */
  base: string | null
  /** Why a commit that could have saved a delta saves a new base, for the log. */
  note: string | null
}

/**
 * A delta when this lock's base was restored and what the closure adds to it stays within
 * DELTA_SHARE of it; otherwise a new base (or, with `cache-key`, one whole entry).
 */
export async function planSave(
  keys: CacheKeys,
  closure: string[],
  layers: readonly RestoredLayer[]
): Promise<SavePlan> {
  const whole = async (note: string | null): Promise<SavePlan> => ({
    kind: keys.layers === null ? 'whole' : 'base',
    key: keys.layers?.base ?? keys.primary,
    registrations: await registrationsOf(closure),
    base: null,
    note
  })
  const base = layers.find(l => l.kind === 'base' && isSameLock(keys, l.key))
  if (keys.layers === null || base === undefined) return whole(null)
  const delta = await registrationsOf(pathsNotRestored(closure, base.paths))
  const bytes = narBytes(delta)
  if (!deltaFits(bytes, base.narBytes)) {
    return whole(
      `what the closure adds to the base ${base.key} (${megabytes(bytes)}) is more than ${DELTA_SHARE * 100}% of it (${megabytes(base.narBytes)}): a new base`
    )
  }
  return {
    kind: 'delta',
    key: deltaKey(keys, base.key),
    registrations: delta,
    base: base.key,
    note: null
  }
}

export function megabytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`
}

/**
 * Write the archive of the plan under `workDir` and save it: its NAR bytes (its size before
 * compression), or null when the cache service did not take it (@actions/cache has said why).
 */
export async function saveEntry(
  workDir: string,
  plan: SavePlan,
  /** `cache-signing-key`: each path is signed with it; null: the entry is unsigned. */
  signingKey: NixSecretKey | null = null
): Promise<number | null> {
  const dir = join(workDir, CACHE_DIR_NAME)
  const layerDir = join(dir, layerDirectory(plan.kind))
  await removeTree(dir)
  await mkdir(layerDir, { recursive: true })
  try {
    const paths = plan.registrations.map(r => r.path)
    const bytes = narBytes(plan.registrations)
    const on = plan.base === null ? '' : ` (a delta on ${plan.base})`
    core.info(`Saving ${paths.length} paths, ${megabytes(bytes)}, as ${plan.key}${on}`)
    await writeArchive(layerDir, plan.registrations)
    const signatures = signingKey && signRegistrations(signingKey, plan.registrations)
    if (signingKey) core.info(`Signed the ${paths.length} paths with the key ${signingKey.name}`)
    await writeManifest(layerDir, paths, signatures)
    return (await saveDirectory(workDir, plan.key)) ? bytes : null
  } finally {
    await removeTree(dir).catch(() => undefined)
  }
}
