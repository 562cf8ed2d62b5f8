// One image: build -> load (or read) -> tag -> push -> SBOM.
import * as core from '../core.js'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { needsPlainCopy } from '../image/archive.js'
import type { ArchiveMetadata } from '../image/archive.js'
import { formatName } from '../image/format.js'
import { formatPlatform, runnerSystem } from '../image/platform.js'
import type { Inputs } from '../inputs.js'
import type { Report } from '../report.js'
import { saveState, StateKey } from '../state.js'
import { describeTransfer, pushImage } from '../stages/push.js'
import type { RegistryAnswers } from '../stages/push.js'
import { resolveReuseFrom } from '../registry/refs.js'
import { askPathInfoEarly } from '../sbom/index.js'
import { requireSkopeo } from '../registry/index-push.js'
import { tagImage } from '../stages/tag.js'
import {
  build,
  describeOutcomes,
  dockerPushesLayers,
  loadForTest,
  loadOrInspect,
  login,
  resolveTargets,
  setImagesOutput,
  setPushOutputs,
  signStage,
  skipPush,
  testStage,
  writeImageSbom
} from './common.js'
import { runnerTemp } from '../temp.js'
import type { BuiltImage, TaggedImage } from './common.js'

/** Returns the image built, once it shipped (for the binary cache push after it). */
export async function runSingleImage(inputs: Inputs, report: Report): Promise<BuiltImage[]> {
  const built = await report.stage(
    'Build',
    () => build(inputs),
    b => b.storePath
  )
  core.setOutput('store-path', built.storePath)
  // From here on, post may save the store cache.
  saveState(StateKey.BuiltStorePath, built.storePath)
  if (built.drvPath) saveState(StateKey.BuiltDrvPath, built.drvPath)
  core.setOutput('image-format', formatName(built.format))

  const archiveCopy = plainArchiveCopyFor(inputs, built)
  // What the registry says before the load (docker on the containerd store), kept for the push.
  const answers: RegistryAnswers = new Map()
  try {
    const load = inputs.load || loadForTest(inputs)
    const { metadata, dockerImage } = await loadOrInspect(
      { ...inputs, load },
      built,
      report,
      archiveCopy,
      '',
      dockerPushesLayers(inputs, answers)
    )
    // Nix is asked for the SBOM while the image is tested and pushed.
    const pathInfo = inputs.sbom ? askPathInfoEarly(metadata.storePaths) : undefined
    await testStage(inputs, report, dockerImage)
    // An image loaded only for the test is not tagged.
    const tagged = await tagAndPush(
      inputs,
      report,
      metadata,
      inputs.load ? dockerImage : null,
      archiveCopy ?? built.storePath,
      answers
    )
    const sbom = await writeImageSbom(inputs, report, {
      ...tagged,
      metadata,
      storePath: built.storePath,
      pathInfo
    })
    setImagesOutput([
      {
        system: inputs.system ?? runnerSystem() ?? '',
        platform: metadata.platform ? formatPlatform(metadata.platform) : '',
        digest: tagged.digest ?? '',
        imageId: metadata.configDigest,
        sbom
      }
    ])
    return [built]
  } finally {
    if (archiveCopy) await rm(archiveCopy, { force: true })
  }
}

/**
 * skopeo reads `docker-archive:` from a seekable, uncompressed file: a plain tar output is used
 * as it is, anything else is written out once, under RUNNER_TEMP, in the pass that loads it.
 */
function plainArchiveCopyFor(inputs: Inputs, built: BuiltImage): string | null {
  if (!inputs.push || inputs.pushTool !== 'skopeo' || !needsPlainCopy(built.format)) return null
  return join(runnerTemp(), `nix-container-${process.pid}.tar`)
}

async function tagAndPush(
  inputs: Inputs,
  report: Report,
  metadata: ArchiveMetadata,
  dockerImage: string | null,
  archivePath: string,
  answers: RegistryAnswers
): Promise<TaggedImage> {
  core.setOutput('image-id', metadata.configDigest)
  const refs = resolveTargets(inputs, report, metadata.repoTags[0] ?? null)

  if (dockerImage === null) report.skip('Tag', 'load: false')
  else
    await report.stage(
      'Tag',
      () => tagImage({ source: dockerImage, refs }),
      () => `${refs.length} refs`
    )

  if (!inputs.push) {
    skipPush(report)
    return { refs, digest: null }
  }
  // The signature is pushed with skopeo whatever the push tool: known before anything is pushed.
  if (inputs.signingKey) await requireSkopeo('signing-key (the signature is pushed with skopeo)')
  const options = await login(inputs, report, refs)
  // Each ref is reported as it is done, so a partial push shows what made it.
  report.refs = refs.map(ref => `${ref} (not pushed)`)
  const pushed = await report.stage(
    'Push',
    () =>
      pushImage({
        refs,
        tool: inputs.pushTool,
        configDigest: metadata.configDigest,
        archivePath: inputs.pushTool === 'skopeo' ? archivePath : null,
        tempDir: options.tempDir,
        authFile: options.authFile,
        reuseFrom: resolveReuseFrom(inputs.reuseFrom, refs[0] as string, inputs.registry),
        compression: inputs.compression,
        retry: options.retry,
        answers,
        onOutcome: o => {
          const transfer = describeTransfer(o)
          report.refs[refs.indexOf(o.ref)] =
            `${o.ref} (${o.action}${transfer ? `: ${transfer}` : ''})`
        }
      }),
    p => `${describeOutcomes(p.outcomes)} with ${inputs.pushTool}`
  )
  setPushOutputs(report, pushed)
  await signStage(inputs, report, refs, [pushed.digest], options)
  return { refs, digest: pushed.digest }
}
