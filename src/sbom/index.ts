// The SBOM of one image: the store paths its layers hold (read by image/ in the pass that
// loads or inspects it), what Nix knows of each, written as one CycloneDX JSON file.
import * as core from '../core.js'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { StorePathsResult } from '../image/archive.js'
import type * as CycloneDx from './cyclonedx.js'
import type { ImageSubject } from './cyclonedx.js'
import { queryPathInfo } from './path-info.js'
import type { PathInfo } from './path-info.js'

export type { ImageSubject } from './cyclonedx.js'
export { imageSubject } from './subject.js'

export interface SbomOptions {
  image: ImageSubject
  /** `sha256:` of the image config: names the file. */
  configDigest: string
  /** What image/ read from the layers; undefined when it was not asked to. */
  storePaths: StorePathsResult | undefined
  /** Where to write the file (RUNNER_TEMP). */
  dir: string
  /** What Nix knows of the paths, when it was asked ahead (askPathInfoEarly). */
  pathInfo?: Promise<Map<string, PathInfo>>
}

// The CycloneDX library takes about 50 ms to load: loaded once an image has been read (when
// the SBOM is certain to be wanted), while the push waits on the registry, not at start-up.
let cycloneDx: Promise<typeof CycloneDx> | undefined
function loadCycloneDx(): Promise<typeof CycloneDx> {
  cycloneDx ??= import('./cyclonedx.js')
  return cycloneDx
}

/**
 * Ask Nix about the layers' store paths now, while the image is tested and pushed (the answer
 * does not depend on them), so that the SBOM stage only writes the file. An error waits for
 * writeSbom to report it; undefined when there is nothing to ask.
 */
export function askPathInfoEarly(
  listed: StorePathsResult | undefined
): Promise<Map<string, PathInfo>> | undefined {
  if (!listed || 'error' in listed) return undefined
  const asked = queryPathInfo(listed.paths)
  asked.catch(() => undefined) // not unhandled: writeSbom awaits it
  loadCycloneDx().catch(() => undefined) // the same
  return asked
}

export interface SbomResult {
  path: string
  componentCount: number
}

export async function writeSbom(options: SbomOptions): Promise<SbomResult> {
  const listed = options.storePaths
  if (!listed) throw new Error('the store paths of the layers were not read')
  // The image loaded (or was read) fine: only the SBOM's reader could not list a layer.
  if ('error' in listed)
    throw new Error(`cannot list the store paths in the image: ${listed.error}`)
  const infos = await (options.pathInfo ?? queryPathInfo(listed.paths))
  const unknown = listed.paths.filter(path => !infos.has(path))
  if (unknown.length > 0) {
    core.warning(
      `${unknown.length} store paths in the image are not in this machine's Nix store, so the ` +
        `SBOM gives no hash for them (e.g. layers of a base image): ${unknown.join(', ')}`
    )
  }
  const { buildBom, serializeBom } = await loadCycloneDx()
  const bom = buildBom(options.image, listed.paths, infos)
  const path = join(options.dir, `nix-container-sbom-${sbomFileId(options.configDigest)}.cdx.json`)
  await writeFile(path, serializeBom(bom))
  core.info(`SBOM: ${listed.paths.length} store paths, written to ${path}`)
  return { path, componentCount: listed.paths.length }
}

/** One file per image, and per run: the config digest and the process. */
function sbomFileId(configDigest: string): string {
  return `${configDigest.replace(/^sha256:/, '').slice(0, 12)}-${process.pid}`
}
