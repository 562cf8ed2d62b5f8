// run(): inputs -> each stage in order -> outputs + job summary. The one setFailed is here.
import * as core from '@actions/core'
import { pathToFileURL } from 'node:url'
import { parseInputs } from './inputs.js'
import type { Inputs } from './inputs.js'
import { describeFormat, detectFormat, formatName } from './image/format.js'
import type { ImageFormat } from './image/format.js'
import type { ArchiveMetadata } from './image/archive.js'
import { resolveRefs } from './reference.js'
import { Report, writeSummary } from './report.js'
import { saveState, StateKey } from './state.js'
import { setupNix } from './stages/install-nix.js'
import { buildImage, installable } from './stages/build.js'
import { inspectImage, loadImage } from './stages/load.js'
import { tagImage } from './stages/tag.js'
import { pushImage } from './stages/push.js'
import type { RefOutcome } from './stages/push.js'
import { needsPlainCopy } from './image/archive.js'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface BuiltImage {
  storePath: string
  format: ImageFormat
}

export async function run(): Promise<void> {
  const report = new Report()
  try {
    const inputs = parseInputs()
    saveState(StateKey.MainRan, 'true')
    await runPipeline(inputs, report)
  } catch (error) {
    core.setFailed(error instanceof Error ? error.message : String(error))
  } finally {
    await writeSummary(report).catch((error: unknown) => {
      core.warning(`could not write the job summary: ${String(error)}`)
    })
  }
}

async function runPipeline(inputs: Inputs, report: Report): Promise<void> {
  const nix = await report.stage(
    'Nix',
    () => setupNix({ installNix: inputs.installNix }),
    result => `Nix ${result.version} (${result.found === 'path' ? 'found on PATH' : 'adopted'})`
  )
  core.setOutput('nix-version', nix.version)
  core.setOutput('nix-installed', String(nix.installed))

  if (inputs.cache) report.skip('Store cache', 'not available in this version of the action')
  else report.skip('Store cache', 'cache: false')

  if (!inputs.build) {
    report.skip('Build', 'build: false')
    return
  }
  const built = await report.stage(
    'Build',
    () => build(inputs),
    b => b.storePath
  )
  core.setOutput('store-path', built.storePath)
  core.setOutput('image-format', formatName(built.format))

  const archiveCopy = plainArchiveCopyFor(inputs, built)
  try {
    const { metadata, dockerImage } = await loadOrInspect(inputs, built, report, archiveCopy)
    await tagAndPush(inputs, report, metadata, dockerImage, archiveCopy ?? built.storePath)
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

function runnerTemp(): string {
  return process.env.RUNNER_TEMP || tmpdir()
}

async function tagAndPush(
  inputs: Inputs,
  report: Report,
  metadata: ArchiveMetadata,
  dockerImage: string | null,
  archivePath: string
): Promise<void> {
  core.setOutput('image-id', metadata.configDigest)

  const resolved = resolveRefs({
    image: inputs.image,
    registry: inputs.registry,
    tags: inputs.tags,
    archiveRepoTag: metadata.repoTags[0] ?? null
  })
  for (const notice of resolved.notices) core.notice(notice)
  report.refs = resolved.refs
  core.setOutput('refs', resolved.refs.join('\n'))

  if (dockerImage === null) report.skip('Tag', 'load: false')
  else
    await report.stage(
      'Tag',
      () => tagImage({ source: dockerImage, refs: resolved.refs }),
      () => `${resolved.refs.length} refs`
    )

  if (!inputs.push) {
    report.skip('Push', 'push: false')
    return
  }
  const pushed = await report.stage(
    'Push',
    () =>
      pushImage({
        refs: resolved.refs,
        tool: inputs.pushTool,
        configDigest: metadata.configDigest,
        archivePath: inputs.pushTool === 'skopeo' ? archivePath : null,
        tempDir: runnerTemp()
      }),
    p => `${describeOutcomes(p.outcomes)} with ${inputs.pushTool}`
  )
  report.refs = pushed.outcomes.map(o => `${o.ref} (${o.action})`)
  report.digest = pushed.digest
  report.imageRef = pushed.imageRef
  core.setOutput('digest', pushed.digest)
  core.setOutput('image-ref', pushed.imageRef)
}

async function build(inputs: Inputs): Promise<BuiltImage> {
  const { storePath } = await buildImage({
    flake: inputs.flake,
    attribute: inputs.attribute,
    system: inputs.system,
    nixArgs: inputs.nixArgs
  })
  const format = await detectFormat(storePath).catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(`${installable(inputs)} built ${reason}`)
  })
  core.info(`${storePath} is ${describeFormat(format)}`)
  return { storePath, format }
}

/** Load into docker when asked; otherwise only read the archive's metadata. */
async function loadOrInspect(
  inputs: Inputs,
  built: BuiltImage,
  report: Report,
  copyTo: string | null
): Promise<{ metadata: ArchiveMetadata; dockerImage: string | null }> {
  if (!inputs.load) {
    report.skip('Load', 'load: false')
    const metadata = await report.stage(
      'Read image',
      () => inspectImage({ ...built, copyTo }),
      m => `${m.layerCount} layers, config ${m.configDigest}`
    )
    return { metadata, dockerImage: null }
  }
  const loaded = await report.stage(
    'Load',
    () => loadImage({ ...built, copyTo }),
    l => l.dockerImage
  )
  core.setOutput('loaded-image', loaded.loadedImages[0] ?? '')
  return { metadata: loaded.metadata, dockerImage: loaded.dockerImage }
}

/** `2 pushed, 1 up to date` */
function describeOutcomes(outcomes: readonly RefOutcome[]): string {
  const counts = new Map<string, number>()
  for (const { action } of outcomes) counts.set(action, (counts.get(action) ?? 0) + 1)
  return [...counts].map(([action, count]) => `${count} ${action}`).join(', ')
}

// Run when executed as the action's entry point, not when imported by tests.
if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void run()
}
