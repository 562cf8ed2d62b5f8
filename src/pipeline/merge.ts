// `merge`: images already pushed, combined under `tags`; no Nix, no build.
import { formatPlatform, systemOfPlatform } from '../image/platform.js'
import type { Inputs } from '../inputs.js'
import type { Report } from '../report.js'
import { saveState, StateKey } from '../state.js'
import { describeMergeImage, readMergeSources } from '../registry/merge-sources.js'
import { resolveMergeRef } from '../registry/refs.js'
import { pushManifestByDigest, repositoriesOf, requireSkopeo } from '../registry/index-push.js'
import type { RepositoryOutcome } from '../registry/outcome.js'
import {
  describeRepositories,
  login,
  pushIndexStage,
  resolveTargets,
  setImagesOutput
} from './common.js'
import type { ImageResult } from './common.js'

export async function runMerge(inputs: Inputs, report: Report): Promise<void> {
  const why = 'merge: nothing to build'
  for (const stage of ['Nix', 'Store cache', 'Build', 'Load']) report.skip(stage, why)
  saveState(StateKey.CacheSkipped, why)
  const refs = resolveTargets(inputs, report, null)
  const sources = inputs.merge.map(entry => resolveMergeRef(entry, inputs.image, inputs.registry))
  await requireSkopeo('merge')
  const registryOptions = await login(inputs, report, [...refs, ...sources])
  const images = await report.stage(
    'Read merge sources',
    () => readMergeSources(sources, registryOptions),
    found => found.map(describeMergeImage).join(', ')
  )
  const results: ImageResult[] = images.map(image => ({
    system: systemOfPlatform(image.entry.platform),
    platform: formatPlatform(image.entry.platform),
    digest: image.entry.digest,
    imageId: image.configDigest,
    sbom: ''
  }))
  report.platforms = [...results]
  setImagesOutput(results)
  for (const image of images) {
    await report.stage(
      `Copy ${formatPlatform(image.entry.platform)}`,
      async () => {
        const outcomes: RepositoryOutcome[] = []
        for (const repository of repositoriesOf(refs)) {
          outcomes.push(
            await pushManifestByDigest(
              { ref: image.source },
              image.entry.digest,
              repository,
              registryOptions
            )
          )
        }
        return outcomes
      },
      describeRepositories
    )
  }
  await pushIndexStage(
    inputs,
    report,
    refs,
    images.map(image => image.entry),
    registryOptions
  )
}
