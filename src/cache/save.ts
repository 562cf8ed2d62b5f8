// Saving the store cache: what goes in (the build closures and the flake inputs' sources) and
// writing the archive under the primary key.
import * as core from '@actions/core'
import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { removeTree } from '../tree.js'
import { writeManifest } from './manifest.js'
import { buildClosure, directorySize, flakeInputPaths, invalidPaths } from './nix-store.js'
import { CACHE_DIR_NAME, saveDirectory } from './service.js'
import { writeArchive } from './store-archive.js'

/** The union of every build's closure. */
async function closureOfBuilds(drvPaths: string | null, storePaths: string): Promise<string[]> {
  const drvs = (drvPaths ?? '').split('\n')
  const closure = new Set<string>()
  for (const [i, storePath] of storePaths.split('\n').filter(Boolean).entries()) {
    for (const path of await buildClosure(drvs[i] || null, storePath)) closure.add(path)
  }
  return [...closure].sort()
}

/** The paths main restored, from its file (none when there is no file). */
export async function readRestoredPaths(file: string | null): Promise<string[]> {
  if (file === null) return []
  const text = await readFile(file, 'utf8').catch(() => '')
  return text.split('\n').filter(line => line !== '')
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

/**
 * Write the archive of `paths` under `workDir` and save it as `key`: its size in bytes, or null
 * when the cache service did not take it (@actions/cache has said why).
 */
export async function saveEntry(
  workDir: string,
  key: string,
  paths: string[],
  /** How many of `paths` the restored entry lacked, for the log. */
  newCount: number
): Promise<number | null> {
  const dir = join(workDir, CACHE_DIR_NAME)
  await removeTree(dir)
  await mkdir(dir, { recursive: true })
  try {
    core.info(`Saving ${paths.length} paths (${newCount} not in the restored cache) as ${key}`)
    await writeArchive(dir, paths)
    await writeManifest(dir, paths)
    const bytes = await directorySize(dir)
    return (await saveDirectory(workDir, key)) ? bytes : null
  } finally {
    await removeTree(dir).catch(() => undefined)
  }
}
