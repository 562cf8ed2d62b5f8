// What the single-image, `systems` and `merge` pipelines share: the build, the load or read,
// the refs, the login, the SBOM, the index push, and the outputs they set on the way.
import * as core from '../core.js'
import type { ArchiveMetadata } from '../image/archive.js'
import { describeFormat, detectFormat } from '../image/format.js'
import type { ImageFormat } from '../image/format.js'
import type { IndexEntry } from '../image/oci-index.js'
import { testsImage } from '../inputs.js'
import type { Inputs } from '../inputs.js'
import { resolveRefs } from '../registry/refs.js'
import type { PlatformRow, Report } from '../report.js'
import { DEFAULT_DELAYS } from '../registry/retry.js'
import type { RetryPolicy } from '../registry/retry.js'
import { imageSubject, writeSbom } from '../sbom/index.js'
import type { PathInfo } from '../sbom/path-info.js'
import { saveState, StateKey } from '../state.js'
import { buildImage, installable } from '../stages/build.js'
import { inspectImage, loadImage } from '../stages/load.js'
import { authFileOf, loginToRegistries } from '../stages/login.js'
import { describeTest, testImage } from '../stages/test.js'
import { signImages } from '../stages/sign.js'
import { refsHoldImage } from '../stages/push.js'
import type { RegistryAnswers } from '../stages/push.js'
import type { LoginSession } from '../stages/login.js'
import { pushIndex, repositoriesOf } from '../registry/index-push.js'
import type { RegistryOptions } from '../registry/index-push.js'
import type { PushResult, RepositoryOutcome } from '../registry/outcome.js'
import { errorMessage } from '../errors.js'
import { runnerTemp } from '../temp.js'

export interface BuiltImage {
  storePath: string
  drvPath: string
  format: ImageFormat
}

/**
 * What one platform image became: one entry of the `images` output, and its summary row.
 * The seam for per-image steps: the SBOM step fills `sbom` for the image it describes.
 */
export interface ImageResult extends PlatformRow {
  /** Path of its SBOM file; '' when none was made. */
  sbom: string
}

/** What an image ended up as: its refs, and its manifest digest when pushed. */
export interface TaggedImage {
  refs: string[]
  digest: string | null
}

export async function build(inputs: Inputs): Promise<BuiltImage> {
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

/** Load into docker when asked; otherwise only read the archive's metadata. */
export async function loadOrInspect(
  inputs: Inputs,
  built: BuiltImage,
  report: Report,
  copyTo: string | null,
  /** ` <system>` after each stage name in a `systems` run. */
  suffix = '',
  /** Whether docker will push the loaded image's layers (LoadOptions.willPushLayers). */
  willPushLayers?: (metadata: ArchiveMetadata) => Promise<boolean>
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
    () =>
      loadImage({
        ...built,
        copyTo,
        storePaths: inputs.sbom,
        compression: inputs.compression,
        ...(willPushLayers ? { willPushLayers } : {})
      }),
    l => l.dockerImage
  )
  core.setOutput('loaded-image', loaded.loadedImages[0] ?? '')
  return { metadata: loaded.metadata, dockerImage: loaded.dockerImage }
}

/**
 * For a docker push of one image: whether docker will push its layers, i.e. whether some ref
 * lacks it. Asked of the registry before the containerd store's compressed load, whose
 * compression is wasted on an unchanged re-push. Only where the answer holds for the push:
 * with the credentials it will use (no login of the action's own); undefined otherwise.
 */
export function dockerPushesLayers(
  inputs: Inputs,
  answers: RegistryAnswers
): ((metadata: ArchiveMetadata) => Promise<boolean>) | undefined {
  if (!inputs.push || inputs.pushTool !== 'docker' || !inputs.load) return undefined
  if (inputs.username || inputs.password) return undefined
  return async metadata => {
    let refs: string[]
    try {
      refs = resolveRefs({
        image: inputs.image,
        registry: inputs.registry,
        tags: inputs.tags,
        archiveRepoTag: metadata.repoTags[0] ?? null
      }).refs
    } catch {
      return true // the push stage says what is wrong with them
    }
    return !(await refsHoldImage(refs, metadata.configDigest, answers, retryPolicy(inputs)))
  }
}

/** How registry operations are retried (`retries`). */
function retryPolicy(inputs: Inputs): RetryPolicy {
  return { attempts: inputs.retries, ...DEFAULT_DELAYS }
}

/**
 * Whether to load the image only to test it: `load: false` (perhaps with `push-tool: skopeo`,
 * which pushes from the archive) and a test to run. Says so in the log.
 */
export function loadForTest(inputs: Inputs): boolean {
  if (inputs.load || !testsImage(inputs)) return false
  const skopeo = inputs.pushTool === 'skopeo' ? ' (push-tool: skopeo pushes from the archive)' : ''
  core.info(
    `load: false${skopeo}, but the image is loaded into docker to run the test; it is not tagged`
  )
  return true
}

/**
 * Run the loaded image before anything is pushed (`test`, then `test-url`): a failure fails
 * the step here, before any login or push.
 */
export async function testStage(
  inputs: Inputs,
  report: Report,
  dockerImage: string | null,
  /** Systems of a `systems` run whose images are not run here. */
  untested: readonly string[] = []
): Promise<void> {
  if (!testsImage(inputs)) {
    report.skip('Test', 'no test or test-url')
    return
  }
  if (dockerImage === null) throw new Error('the image to test was not loaded into docker')
  const notTested = untested.length > 0 ? ` (not tested: ${untested.join(', ')})` : ''
  if (notTested)
    core.info(
      `Testing ${dockerImage}; not the runner's platform, so not tested: ${untested.join(', ')}`
    )
  await report.stage(
    'Test',
    () =>
      testImage({
        image: dockerImage,
        command: inputs.test,
        url: inputs.testUrl,
        timeoutSeconds: inputs.testTimeout,
        onContainer: name => saveState(StateKey.TestContainer, name ?? '')
      }),
    result => describeTest(result, { command: inputs.test, url: inputs.testUrl }) + notTested
  )
  report.tested = true
}

/** Every full reference to push, from `image`, `registry` and `tags`: the `refs` output. */
export function resolveTargets(
  inputs: Inputs,
  report: Report,
  archiveRepoTag: string | null
): string[] {
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

export function skipPush(report: Report): void {
  report.skip('Login', 'push: false')
  report.skip('Push', 'push: false')
  report.skip('Sign', 'push: false')
}

/** Log in to the registries of `refs` when credentials are given; what pushes then need. */
export async function login(
  inputs: Inputs,
  report: Report,
  refs: string[]
): Promise<RegistryOptions> {
  const retry = retryPolicy(inputs)
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
  return {
    tempDir: runnerTemp(),
    authFile: session ? authFileOf(session) : null,
    retry,
    compression: inputs.compression
  }
}

/**
 * The image's SBOM, after the push so that it can name the digest. By then the image itself is
 * fine (a layer that cannot be read failed the load already), so a failure here is the SBOM's
 * own, and fails the step: a workflow that attests the SBOM must not go on without it.
 */
export async function writeImageSbom(
  inputs: Inputs,
  report: Report,
  image: TaggedImage & {
    metadata: ArchiveMetadata
    storePath: string
    /** askPathInfoEarly's answer, when Nix was asked ahead. */
    pathInfo?: Promise<Map<string, PathInfo>> | undefined
  },
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
        dir: runnerTemp(),
        ...(image.pathInfo ? { pathInfo: image.pathInfo } : {})
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

/**
 * One index of `entries` under every ref (`systems` and `merge`), then the signatures of the
 * platform images (in the target repositories, where a merge may have just copied them) and
 * of the index.
 */
export async function pushIndexStage(
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
  const digests = [...entries.map(entry => entry.digest), pushed.digest]
  await signStage(inputs, report, refs, digests, options)
}

/**
 * Sign every manifest digest pushed (`signing-key`), in every repository of `refs`, once the
 * push is done: the `signatures` output. A failure fails the step and says that the image is
 * in the registry, unsigned or partly signed.
 */
export async function signStage(
  inputs: Inputs,
  report: Report,
  refs: readonly string[],
  digests: readonly string[],
  options: RegistryOptions
): Promise<void> {
  const key = inputs.signingKey
  if (key === null) {
    report.skip('Sign', 'no signing-key')
    return
  }
  const targets = digests.flatMap(digest =>
    repositoriesOf(refs).map(repository => ({ repository, digest }))
  )
  await report.stage(
    'Sign',
    () =>
      signImages({
        ...options,
        key,
        targets,
        onOutcome: outcome => {
          report.signatures.push(outcome.ref)
          core.setOutput('signatures', report.signatures.join('\n'))
        }
      }).catch((error: unknown) => {
        const pushed = report.digest ?? digests[digests.length - 1] ?? ''
        throw new Error(`The image was pushed (${pushed}), but ${errorMessage(error)}`, {
          cause: error
        })
      }),
    describeOutcomes
  )
}

export function setPushOutputs(report: Report, pushed: PushResult): void {
  report.digest = pushed.digest
  report.imageRef = pushed.imageRef
  core.setOutput('digest', pushed.digest)
  core.setOutput('image-ref', pushed.imageRef)
}

export function setImagesOutput(images: readonly ImageResult[]): void {
  const entries = images.map(image => ({
    system: image.system,
    platform: image.platform,
    digest: image.digest,
    'image-id': image.imageId,
    sbom: image.sbom
  }))
  core.setOutput('images', JSON.stringify(entries))
}

/** `2 pushed, 1 up to date` (or `2 signed, 1 up to date`) */
export function describeOutcomes(outcomes: readonly { action: string }[]): string {
  const counts = new Map<string, number>()
  for (const { action } of outcomes) counts.set(action, (counts.get(action) ?? 0) + 1)
  return [...counts].map(([action, count]) => `${count} ${action}`).join(', ')
}

/** `localhost:5000/app pushed, ghcr.io/o/app up to date` */
export function describeRepositories(outcomes: readonly RepositoryOutcome[]): string {
  return outcomes.map(o => `${o.repository} ${o.action}`).join(', ')
}
