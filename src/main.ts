// run(): inputs -> each stage in order -> outputs + job summary. The one setFailed is here.
import * as core from '@actions/core'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { needsPlainCopy } from './image/archive.js'
import type { ArchiveMetadata } from './image/archive.js'
import { describeFormat, detectFormat, formatName } from './image/format.js'
import type { ImageFormat } from './image/format.js'
import { parseInputs } from './inputs.js'
import type { Inputs } from './inputs.js'
import { resolveRefs } from './reference.js'
import { Report, writeSummary } from './report.js'
import { DEFAULT_DELAYS } from './retry.js'
import { imageSubject, writeSbom } from './sbom/index.js'
import { saveState, StateKey } from './state.js'
import { buildImage, installable } from './stages/build.js'
import { describeSource, setupNix } from './stages/install-nix.js'
import { inspectImage, loadImage } from './stages/load.js'
import { authFileOf, loginToRegistries } from './stages/login.js'
import { pushImage } from './stages/push.js'
import type { RefOutcome } from './stages/push.js'
import { describeRestore, restoreStoreCache, storeCacheWorkDir } from './stages/store-cache.js'
import { tagImage } from './stages/tag.js'
import { errorMessage } from './errors.js'

interface BuiltImage {
  storePath: string
  drvPath: string
  format: ImageFormat
}

export async function run(): Promise<void> {
  const report = new Report()
  try {
    const inputs = parseInputs()
    saveState(StateKey.MainRan, 'true')
    await runPipeline(inputs, report)
  } catch (error) {
    core.setFailed(errorMessage(error))
  } finally {
    await writeSummary(report).catch((error: unknown) => {
      core.warning(`could not write the job summary: ${String(error)}`)
    })
  }
}

async function runPipeline(inputs: Inputs, report: Report): Promise<void> {
  const nix = await report.stage(
    'Nix',
    () =>
      setupNix({
        installNix: inputs.installNix,
        nixVersion: inputs.nixVersion,
        installUrl: inputs.installUrl,
        nixConf: inputs.nixConf,
        githubToken: inputs.githubToken
      }),
    result => `Nix ${result.version} (${describeSource(result.found)})`
  )
  core.setOutput('nix-version', nix.version)
  core.setOutput('nix-installed', String(nix.installed))

  await restoreCache(inputs, report)

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
  // From here on, post may save the store cache.
  saveState(StateKey.BuiltStorePath, built.storePath)
  if (built.drvPath) saveState(StateKey.BuiltDrvPath, built.drvPath)
  core.setOutput('image-format', formatName(built.format))

  const archiveCopy = plainArchiveCopyFor(inputs, built)
  try {
    const { metadata, dockerImage } = await loadOrInspect(inputs, built, report, archiveCopy)
    const tagged = await tagAndPush(
      inputs,
      report,
      metadata,
      dockerImage,
      archiveCopy ?? built.storePath
    )
    await writeImageSbom(inputs, report, { ...tagged, metadata, storePath: built.storePath })
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

/** What an image ended up as: its refs, and its manifest digest when pushed. */
interface TaggedImage {
  refs: string[]
  digest: string | null
}

async function tagAndPush(
  inputs: Inputs,
  report: Report,
  metadata: ArchiveMetadata,
  dockerImage: string | null,
  archivePath: string
): Promise<TaggedImage> {
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
    report.skip('Login', 'push: false')
    report.skip('Push', 'push: false')
    return { refs: resolved.refs, digest: null }
  }
  const retry = { attempts: inputs.retries, ...DEFAULT_DELAYS }
  const session = await report.stage(
    'Login',
    () =>
      loginToRegistries({
        refs: resolved.refs,
        registry: inputs.registry,
        credentials:
          inputs.username && inputs.password
            ? { username: inputs.username, password: inputs.password }
            : null,
        githubToken: inputs.githubToken,
        githubActor: process.env.GITHUB_ACTOR ?? null,
        tool: inputs.pushTool,
        tempDir: runnerTemp(),
        retry,
        saveSession: s => saveState(StateKey.LoginSession, JSON.stringify(s))
      }),
    s => (s ? `logged in to ${s.registries.join(', ')}` : 'no credentials given: existing logins')
  )
  // Each ref is reported as it is done, so a partial push shows what made it.
  report.refs = resolved.refs.map(ref => `${ref} (not pushed)`)
  const pushed = await report.stage(
    'Push',
    () =>
      pushImage({
        refs: resolved.refs,
        tool: inputs.pushTool,
        configDigest: metadata.configDigest,
        archivePath: inputs.pushTool === 'skopeo' ? archivePath : null,
        tempDir: runnerTemp(),
        authFile: session ? authFileOf(session) : null,
        retry,
        onOutcome: o => {
          report.refs[resolved.refs.indexOf(o.ref)] = `${o.ref} (${o.action})`
        }
      }),
    p => `${describeOutcomes(p.outcomes)} with ${inputs.pushTool}`
  )
  report.digest = pushed.digest
  report.imageRef = pushed.imageRef
  core.setOutput('digest', pushed.digest)
  core.setOutput('image-ref', pushed.imageRef)
  return { refs: resolved.refs, digest: pushed.digest }
}

/**
 * The image's SBOM, after the push so that it can name the digest. By then the image itself is
 * fine (a layer that cannot be read failed the load already), so a failure here is the SBOM's
 * own, and fails the step: a workflow that attests the SBOM must not go on without it.
 */
async function writeImageSbom(
  inputs: Inputs,
  report: Report,
  image: TaggedImage & { metadata: ArchiveMetadata; storePath: string }
): Promise<void> {
  if (!inputs.sbom) {
    report.skip('SBOM', 'sbom: false')
    return
  }
  const sbom = await report.stage(
    'SBOM',
    () =>
      writeSbom({
        image: imageSubject(image.refs, image.digest, image.storePath),
        configDigest: image.metadata.configDigest,
        storePaths: image.metadata.storePaths,
        dir: runnerTemp()
      }).catch((error: unknown) => {
        const done = image.digest ? `was pushed (${image.digest})` : 'is fine'
        throw new Error(`The image ${done}, but its SBOM failed: ${errorMessage(error)}`)
      }),
    s => `${s.componentCount} store paths: ${s.path}`
  )
  report.sboms.push(sbom)
  core.setOutput('sbom', report.sboms.map(s => s.path).join('\n'))
}

async function build(inputs: Inputs): Promise<BuiltImage> {
  const { storePath, drvPath } = await buildImage({
    flake: inputs.flake,
    attribute: inputs.attribute,
    system: inputs.system,
    nixArgs: inputs.nixArgs
  })
  const format = await detectFormat(storePath).catch((error: unknown) => {
    const reason = errorMessage(error)
    throw new Error(`${installable(inputs)} built ${reason}`)
  })
  core.info(`${storePath} is ${describeFormat(format)}`)
  return { storePath, drvPath, format }
}

/** Restore the store cache before the build; outputs and post's state say what came back. */
async function restoreCache(inputs: Inputs, report: Report): Promise<void> {
  const skipped = !inputs.cache ? 'cache: false' : !inputs.build ? 'build: false' : null
  if (skipped !== null) {
    report.skip('Store cache', skipped)
    saveState(StateKey.CacheSkipped, skipped)
    return
  }
  const workDir = storeCacheWorkDir()
  const restored = await report.stage(
    'Store cache',
    () =>
      restoreStoreCache({
        flake: inputs.flake,
        attribute: inputs.attribute,
        system: inputs.system,
        cacheKey: inputs.cacheKey,
        workDir
      }),
    describeRestore
  )
  saveState(StateKey.CacheSave, String(inputs.cacheSave))
  saveState(StateKey.CacheFlake, inputs.flake)
  saveState(StateKey.CacheWorkDir, workDir)
  saveState(StateKey.CacheRestoredPaths, restored.restoredPathsFile)
  if (restored.keys) saveState(StateKey.CachePrimaryKey, restored.keys.primary)
  if (restored.restoredKey) saveState(StateKey.CacheRestoredKey, restored.restoredKey)
  core.setOutput('cache-hit', String(restored.hit))
  core.setOutput('cache-key', restored.keys?.primary ?? '')
  core.setOutput('cache-restored-key', restored.restoredKey ?? '')
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
      () => inspectImage({ ...built, copyTo, storePaths: inputs.sbom }),
      m => `${m.layerCount} layers, config ${m.configDigest}`
    )
    return { metadata, dockerImage: null }
  }
  const loaded = await report.stage(
    'Load',
    () => loadImage({ ...built, copyTo, storePaths: inputs.sbom }),
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
