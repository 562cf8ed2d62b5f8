// run(): inputs -> each stage in order -> outputs + job summary. The one setFailed is here.
import * as core from '@actions/core'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { needsPlainCopy } from './image/archive.js'
import type { ArchiveMetadata } from './image/archive.js'
import { describeFormat, detectFormat, formatName } from './image/format.js'
import type { ImageFormat } from './image/format.js'
import type { IndexEntry } from './image/oci-index.js'
import {
  checkDistinctPlatforms,
  checkPlatformOfSystem,
  formatPlatform,
  runnerSystem,
  systemOfPlatform
} from './image/platform.js'
import type { Platform } from './image/platform.js'
import { parseInputs } from './inputs.js'
import type { Inputs } from './inputs.js'
import { resolveRefs } from './reference.js'
import { Report, writeSummary } from './report.js'
import { DEFAULT_DELAYS } from './retry.js'
import { imageSubject, writeSbom } from './sbom/index.js'
import type { RetryPolicy } from './retry.js'
import { saveState, StateKey } from './state.js'
import { buildImage, installable } from './stages/build.js'
import { describeSource, setupNix } from './stages/install-nix.js'
import { inspectImage, loadImage } from './stages/load.js'
import { authFileOf, loginToRegistries } from './stages/login.js'
import type { LoginSession } from './stages/login.js'
import { describeMergeImage, readMergeSources, resolveMergeRef } from './stages/merge.js'
import { describeTransfer, pushImage } from './stages/push.js'
import type { PushResult, RefOutcome } from './stages/push.js'
import { resolveReuseFrom } from './stages/push-reuse.js'
import {
  archiveToManifestDir,
  pushIndex,
  pushManifestByDigest,
  repositoriesOf,
  requireSkopeo
} from './stages/push-index.js'
import type { RegistryOptions, RepositoryOutcome } from './stages/push-index.js'
import { describeRestore, restoreStoreCache, storeCacheWorkDir } from './stages/store-cache.js'
import { tagImage } from './stages/tag.js'
import { errorMessage } from './errors.js'

interface BuiltImage {
  storePath: string
  drvPath: string
  format: ImageFormat
}

/**
 * What one platform image became: one entry of the `images` output and one summary row.
 * The seam for per-image steps: the SBOM step fills `sbom` for the image it describes.
 */
interface ImageResult {
  /** The Nix system it was built for ('' for a merged image of a platform Nix has no name for). */
  system: string
  /** `os/arch[/variant]` from the image's config. */
  platform: string
  /** `sha256:` of its manifest in the registry; '' when it was not pushed. */
  digest: string
  /** `sha256:` of its config. */
  imageId: string
  /** Path of its SBOM file; '' when none was made. */
  sbom: string
}

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
  if (inputs.merge.length > 0) {
    await runMerge(inputs, report)
    return
  }
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
  if (inputs.systems.length > 0) {
    await runSystems(inputs, report)
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
    const sbom = await writeImageSbom(inputs, report, {
      ...tagged,
      metadata,
      storePath: built.storePath
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
  } finally {
    if (archiveCopy) await rm(archiveCopy, { force: true })
  }
}

function setImagesOutput(images: readonly ImageResult[]): void {
  const entries = images.map(image => ({
    system: image.system,
    platform: image.platform,
    digest: image.digest,
    'image-id': image.imageId,
    sbom: image.sbom
  }))
  core.setOutput('images', JSON.stringify(entries))
}

/**
 * `systems`: build -> read (load the runner's own) -> push by digest, for each system in
 * turn, then one index under every ref.
 */
async function runSystems(inputs: Inputs, report: Report): Promise<void> {
  const images: SystemImage[] = []
  const copies: string[] = []
  const builds: BuiltImage[] = []
  if (!inputs.load) report.skip('Load', 'load: false')
  try {
    for (const system of inputs.systems) {
      images.push(await buildAndRead(inputs, report, system, copies, builds))
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
    if (own?.dockerImage)
      await report.stage(
        `Tag ${own.system}`,
        () => tagImage({ source: own.dockerImage as string, refs }),
        () => `${refs.length} refs`
      )
    const results = images.map(image => systemResult(image, '', ''))
    report.platforms = results.map(r => ({ ...r }))
    // Each image's SBOM once its digest is known (after its push, or none without a push).
    const finish = async (i: number, digest: string | null): Promise<void> => {
      const image = images[i] as SystemImage
      const sbom = await writeImageSbom(
        inputs,
        report,
        { refs, digest, metadata: image.metadata, storePath: image.built.storePath },
        ` ${image.system}`
      )
      const result = systemResult(image, digest ?? '', sbom)
      results[i] = result
      report.platforms[i] = { ...result }
    }
    if (!inputs.push) {
      skipPush(report)
      for (const i of images.keys()) await finish(i, null)
      setImagesOutput(results)
      return
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
    dockerImage
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

/** `merge`: images already pushed, combined under `tags`; no Nix, no build. */
async function runMerge(inputs: Inputs, report: Report): Promise<void> {
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
  report.platforms = results.map(r => ({ ...r }))
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

async function pushIndexStage(
  inputs: Inputs,
  report: Report,
  refs: string[],
  entries: IndexEntry[],
  options: RegistryOptions
): Promise<void> {
  report.refs = refs.map(ref => `${ref} (not pushed)`)
  const pushed = await report.stage(
    'Push index',
    () =>
      pushIndex({
        ...options,
        refs,
        entries,
        onOutcome: o => {
          report.refs[refs.indexOf(o.ref)] = `${o.ref} (${o.action})`
        }
      }),
    p => `${entries.length} platforms: ${describeOutcomes(p.outcomes)}`
  )
  setPushOutputs(report, pushed)
}

function setPushOutputs(report: Report, pushed: PushResult): void {
  report.digest = pushed.digest
  report.imageRef = pushed.imageRef
  core.setOutput('digest', pushed.digest)
  core.setOutput('image-ref', pushed.imageRef)
}

/** `localhost:5000/app pushed, ghcr.io/o/app up to date` */
function describeRepositories(outcomes: readonly RepositoryOutcome[]): string {
  return outcomes.map(o => `${o.repository} ${o.action}`).join(', ')
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
        retry: options.retry,
        onOutcome: o => {
          const transfer = describeTransfer(o)
          report.refs[refs.indexOf(o.ref)] =
            `${o.ref} (${o.action}${transfer ? `: ${transfer}` : ''})`
        }
      }),
    p => `${describeOutcomes(p.outcomes)} with ${inputs.pushTool}`
  )
  setPushOutputs(report, pushed)
  return { refs, digest: pushed.digest }
}

/** Every full reference to push, from `image`, `registry` and `tags`: the `refs` output. */
function resolveTargets(inputs: Inputs, report: Report, archiveRepoTag: string | null): string[] {
  const resolved = resolveRefs({
    image: inputs.image,
    registry: inputs.registry,
    tags: inputs.tags,
    archiveRepoTag
  })
  for (const notice of resolved.notices) core.notice(notice)
  report.refs = resolved.refs
  core.setOutput('refs', resolved.refs.join('\n'))
  return resolved.refs
}

function skipPush(report: Report): void {
  report.skip('Login', 'push: false')
  report.skip('Push', 'push: false')
}

/** Log in to the registries of `refs` when credentials are given; what pushes then need. */
async function login(inputs: Inputs, report: Report, refs: string[]): Promise<RegistryOptions> {
  const retry: RetryPolicy = { attempts: inputs.retries, ...DEFAULT_DELAYS }
  const session: LoginSession | null = await report.stage(
    'Login',
    () =>
      loginToRegistries({
        refs,
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
  return { tempDir: runnerTemp(), authFile: session ? authFileOf(session) : null, retry }
}

/**
 * The image's SBOM, after the push so that it can name the digest. By then the image itself is
 * fine (a layer that cannot be read failed the load already), so a failure here is the SBOM's
 * own, and fails the step: a workflow that attests the SBOM must not go on without it.
 */
async function writeImageSbom(
  inputs: Inputs,
  report: Report,
  image: TaggedImage & { metadata: ArchiveMetadata; storePath: string },
  /** ` <system>` after the stage name in a `systems` run. */
  suffix = ''
): Promise<string> {
  if (!inputs.sbom) {
    report.skip(`SBOM${suffix}`, 'sbom: false')
    return ''
  }
  const sbom = await report.stage(
    `SBOM${suffix}`,
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
  return sbom.path
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
        // A `systems` run builds other closures than a single-system one: its own key.
        system: inputs.systems.length > 0 ? inputs.systems.join('+') : inputs.system,
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
  copyTo: string | null,
  /** ` <system>` after each stage name in a `systems` run. */
  suffix = ''
): Promise<{ metadata: ArchiveMetadata; dockerImage: string | null }> {
  if (!inputs.load) {
    if (suffix === '') report.skip('Load', 'load: false')
    const metadata = await report.stage(
      `Read image${suffix}`,
      () => inspectImage({ ...built, copyTo, storePaths: inputs.sbom }),
      m => `${m.layerCount} layers, config ${m.configDigest}`
    )
    return { metadata, dockerImage: null }
  }
  const loaded = await report.stage(
    `Load${suffix}`,
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
