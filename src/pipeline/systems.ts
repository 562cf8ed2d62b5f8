// `systems`: build -> read (load the runner's own) -> push by digest, for each system in turn,
// then one index under every ref.
import * as core from '../core.js'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { needsPlainCopy } from '../image/archive.js'
import type { ArchiveMetadata } from '../image/archive.js'
import { formatName } from '../image/format.js'
import type { IndexEntry } from '../image/oci-index.js'
import {
  checkDistinctPlatforms,
  checkPlatformOfSystem,
  formatPlatform,
  runnerSystem
} from '../image/platform.js'
import type { Platform } from '../image/platform.js'
import { askPathInfoEarly } from '../sbom/index.js'
import type { PathInfo } from '../sbom/path-info.js'
import type { Inputs } from '../inputs.js'
import type { Report } from '../report.js'
import { saveState, StateKey } from '../state.js'
import { installable } from '../stages/build.js'
import {
  archiveToManifestDir,
  pushManifestByDigest,
  repositoriesOf,
  requireSkopeo
} from '../registry/index-push.js'
import type { RegistryOptions } from '../registry/index-push.js'
import type { RepositoryOutcome } from '../registry/outcome.js'
import { tagImage } from '../stages/tag.js'
import {
  build,
  describeRepositories,
  loadForTest,
  loadOrInspect,
  login,
  pushIndexStage,
  resolveTargets,
  setImagesOutput,
  skipPush,
  testStage,
  writeImageSbom
} from './common.js'
import { runnerTemp } from '../temp.js'
import type { BuiltImage, ImageResult } from './common.js'

/** A platform image of a `systems` run, built and read, not pushed yet. */
interface SystemImage {
  system: string
  built: BuiltImage
  metadata: ArchiveMetadata
  /** From its config, checked against the system. */
  platform: Platform
  /** A plain docker archive skopeo can read. */
  archivePath: string
  dockerImage: string | null
  /** What Nix knows of its store paths, asked ahead for the SBOM. */
  pathInfo: Promise<Map<string, PathInfo>> | undefined
}

/** Returns the images built, once they shipped (for the binary cache push after them). */
export async function runSystems(inputs: Inputs, report: Report): Promise<BuiltImage[]> {
  const images: SystemImage[] = []
  const copies: string[] = []
  const builds: BuiltImage[] = []
  // The runner's own image is loaded to be tested, even with load: false.
  const load = inputs.load || loadForTest(inputs)
  if (!load) report.skip('Load', 'load: false')
  try {
    for (const system of inputs.systems) {
      images.push(await buildAndRead({ ...inputs, load }, report, system, copies, builds))
    }
    core.setOutput('store-path', images.map(image => image.built.storePath).join('\n'))
    core.setOutput('image-format', images.map(image => formatName(image.built.format)).join('\n'))
    checkDistinctPlatforms(
      images.map(image => ({
        name: `the image for ${image.system}`,
        platform: image.platform
      }))
    )
    const own = images.find(image => image.dockerImage !== null) ?? null
    core.setOutput('image-id', (own ?? (images[0] as SystemImage)).metadata.configDigest)
    const refs = resolveTargets(inputs, report, images[0]?.metadata.repoTags[0] ?? null)
    await testStage(
      inputs,
      report,
      own?.dockerImage ?? null,
      images.filter(image => image !== own).map(image => image.system)
    )
    // An image loaded only for the test is not tagged.
    if (own?.dockerImage && inputs.load)
      await report.stage(
        `Tag ${own.system}`,
        () => tagImage({ source: own.dockerImage as string, refs }),
        () => `${refs.length} refs`
      )
    const results = images.map(image => systemResult(image, '', ''))
    report.platforms = [...results]
    // Each image's SBOM once its digest is known (after its push, or none without a push).
    const finish = async (i: number, digest: string | null): Promise<void> => {
      const image = images[i] as SystemImage
      const sbom = await writeImageSbom(
        inputs,
        report,
        {
          refs,
          digest,
          metadata: image.metadata,
          storePath: image.built.storePath,
          pathInfo: image.pathInfo
        },
        ` ${image.system}`
      )
      const result = systemResult(image, digest ?? '', sbom)
      results[i] = result
      report.platforms[i] = result
    }
    if (!inputs.push) {
      skipPush(report)
      for (const i of images.keys()) await finish(i, null)
      setImagesOutput(results)
      return builds
    }
    await requireSkopeo('systems (an image index)')
    const registryOptions = await login(inputs, report, refs)
    const entries: IndexEntry[] = []
    for (const [i, image] of images.entries()) {
      const entry = await report.stage(
        `Push ${image.system}`,
        () => pushByDigest(image, refs, registryOptions),
        e => `${e.digest}: ${describeRepositories(e.outcomes)}`
      )
      entries.push(entry)
      await finish(i, entry.digest)
    }
    setImagesOutput(results)
    await pushIndexStage(inputs, report, refs, entries, registryOptions)
    return builds
  } finally {
    await Promise.all(copies.map(copy => rm(copy, { force: true })))
  }
}

function systemResult(image: SystemImage, digest: string, sbom: string): ImageResult {
  return {
    system: image.system,
    platform: formatPlatform(image.platform),
    digest,
    imageId: image.metadata.configDigest,
    sbom
  }
}

async function buildAndRead(
  inputs: Inputs,
  report: Report,
  system: string,
  copies: string[],
  builds: BuiltImage[]
): Promise<SystemImage> {
  const built = await report.stage(
    `Build ${system}`,
    () => build({ ...inputs, system }),
    b => b.storePath
  )
  // From here on, post may save the store cache: of every image built so far.
  builds.push(built)
  saveState(StateKey.BuiltStorePath, builds.map(b => b.storePath).join('\n'))
  saveState(StateKey.BuiltDrvPath, builds.map(b => b.drvPath).join('\n'))
  const archiveCopy =
    inputs.push && needsPlainCopy(built.format)
      ? join(runnerTemp(), `nix-container-${process.pid}-${system}.tar`)
      : null
  if (archiveCopy) copies.push(archiveCopy)
  // A daemon holds one platform per tag: only the runner's own image is loaded.
  const ownSystem = runnerSystem()
  const load = inputs.load && system === ownSystem
  if (inputs.load && !load) report.skip(`Load ${system}`, `not the runner's system (${ownSystem})`)
  const { metadata, dockerImage } = await loadOrInspect(
    { ...inputs, load },
    built,
    report,
    archiveCopy,
    ` ${system}`
  )
  const what = `${installable(inputs)} (${built.storePath})`
  const platform = metadata.platform
  if (!platform) {
    throw new Error(`${what} was built for ${system}, but its config names no os or architecture`)
  }
  checkPlatformOfSystem(system, platform, what)
  return {
    system,
    built,
    metadata,
    platform,
    archivePath: archiveCopy ?? built.storePath,
    dockerImage,
    // Nix is asked for the SBOM while the other systems build and the images are pushed.
    pathInfo: inputs.sbom ? askPathInfoEarly(metadata.storePaths) : undefined
  }
}

/** Push one platform image, by digest, to every repository the refs name. */
async function pushByDigest(
  image: SystemImage,
  refs: readonly string[],
  options: RegistryOptions
): Promise<IndexEntry & { outcomes: RepositoryOutcome[] }> {
  const { dir, ...manifest } = await archiveToManifestDir(image.archivePath, options)
  try {
    const outcomes: RepositoryOutcome[] = []
    for (const repository of repositoriesOf(refs)) {
      outcomes.push(await pushManifestByDigest({ dir }, manifest.digest, repository, options))
    }
    return { ...manifest, platform: image.platform, outcomes }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
