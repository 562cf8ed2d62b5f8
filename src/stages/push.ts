// The push stage: every ref ends up at the same manifest in its registry. A ref that already
// points at this image (same config digest) is left alone; the first ref is pushed with the
// chosen tool, and the others are copied from it registry-to-registry when skopeo is there,
// which reuses every blob and keeps one manifest digest (docker and skopeo compress layers
// differently, so the same image pushed by each gets two digests).
import * as core from '../core.js'
import * as io from '@actions/io'
import type { PushTool } from '../inputs.js'
import {
  dockerPush,
  inspectRawManifest,
  parseRemoteManifest,
  skopeoCopy,
  withRegistryRetries
} from '../registry/commands.js'
import type { RemoteManifest } from '../registry/commands.js'
import { commonDigest, imageRefFor, partialPushMessage } from '../registry/outcome.js'
import type { PushResult, RefOutcome } from '../registry/outcome.js'
import type { RetryPolicy } from '../registry/retry.js'
import { preparePush, uploadedBytes } from '../registry/reuse.js'
import type { PreparedPush } from '../registry/reuse.js'
import { writeCompressedArchive } from '../image/compressed-archive.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { DEFAULT_LAYER_COMPRESSION, skopeoCompressionArgs } from '../image/layer-compression.js'
import type { LayerCompression } from '../image/layer-compression.js'

export interface PushOptions {
  refs: string[]
  tool: PushTool
  /** `sha256:` of the image config: how "already there" is recognised. */
  configDigest: string
  /** A plain docker archive on disk, for skopeo; null with the docker tool. */
  archivePath: string | null
  /** Where skopeo may write temporary files (RUNNER_TEMP). */
  tempDir: string
  /** The action's own Docker config after it logged in, for skopeo; null to use the defaults. */
  authFile: string | null
  /** Full refs in the same registry whose layers the skopeo push may reuse (`reuse-from`). */
  reuseFrom?: string[]
  /** How skopeo compresses the layers it uploads (docker's are loaded so: see the load stage). */
  compression?: LayerCompression
  retry: RetryPolicy
  /** Told about each ref as soon as it is done, so a partial push can be reported. */
  onOutcome?: (outcome: RefOutcome) => void
  /** What the registry already answered about refs with the default credentials. */
  answers?: RegistryAnswers
}

/** What pushing the image to one ref did. */
type Pushed = Pick<RefOutcome, 'digest' | 'reusedLayers' | 'uploadedBytes'>

type Retrying = <T>(what: string, operation: () => Promise<T>) => Promise<T>

interface Pusher {
  /** Push the image itself to `ref`, each registry operation retried. */
  push(ref: string, retrying: Retrying): Promise<Pushed>
  /** Give `ref` the manifest `source` has; null when this needs a full push. */
  copyFrom: ((source: string, ref: string) => Promise<string>) | null
  /** Whether the registry can be asked what a ref holds (needs skopeo). */
  canQuery: boolean
  /** What the registry holds under a ref, asked once. */
  rawManifest: (ref: string) => Promise<string | null>
}

export async function pushImage(options: PushOptions): Promise<PushResult> {
  const hasSkopeo = (await io.which('skopeo', false)) !== ''
  if (options.tool === 'skopeo' && !hasSkopeo) {
    throw new Error(
      'push-tool: skopeo needs skopeo on PATH (preinstalled on GitHub-hosted Ubuntu runners; ' +
        'apt-get install skopeo elsewhere), or use push-tool: docker'
    )
  }
  if (!hasSkopeo) core.info('skopeo is not on PATH: every ref is pushed with docker, unchecked')
  if (options.tool === 'docker' && (options.reuseFrom ?? []).length > 0) {
    core.notice(
      'reuse-from is used by push-tool: skopeo; with push-tool: docker the daemon decides which layers to upload'
    )
  }
  const pusher = makePusher(options, hasSkopeo)
  const outcomes: RefOutcome[] = []
  for (const ref of options.refs) {
    try {
      const outcome = await pushRef(ref, outcomes[0] ?? null, pusher, options)
      if (outcome.reusedLayers !== undefined) {
        core.info(`${ref}: ${describeTransfer(outcome)}`)
      }
      core.info(`${ref}: ${outcome.action} (${outcome.digest})`)
      outcomes.push(outcome)
      options.onOutcome?.(outcome)
    } catch (error) {
      throw new Error(partialPushMessage(error, outcomes, options.refs), { cause: error })
    }
  }
  const digest = commonDigest(outcomes)
  return { digest, imageRef: imageRefFor(options.refs[0] as string, digest), outcomes }
}

/**
 * zstd layers, compressed by the action into an OCI layout that skopeo pushes as it is
 * (`--preserve-digests`): skopeo's own conversion to an OCI manifest would rewrite the config,
 * and with it the image ID. Every layer is new: the registry's gzip blobs are not reused.
 */
async function zstdLayout(
  archivePath: string,
  tempDir: string,
  compression: LayerCompression
): Promise<PreparedPush> {
  const dir = await mkdtemp(join(tempDir, 'nix-container-zstd-'))
  try {
    const layout = await writeCompressedArchive(archivePath, dir, compression)
    return {
      source: `oci:${dir}`,
      reusedLayers: 0,
      mountedLayers: 0,
      newLayerIndexes: Array.from({ length: layout.layerCount }, (_, i) => i),
      cleanup: () => rm(dir, { recursive: true, force: true })
    }
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  }
}

/** `3 layers reused, 1.2 MB uploaded` (pure, for tests). */
export function describeTransfer(
  outcome: Pick<RefOutcome, 'reusedLayers' | 'uploadedBytes'>
): string {
  const parts: string[] = []
  if (outcome.reusedLayers !== undefined) {
    parts.push(`${outcome.reusedLayers} layer${outcome.reusedLayers === 1 ? '' : 's'} reused`)
  }
  if (outcome.uploadedBytes !== undefined)
    parts.push(`${formatBytes(outcome.uploadedBytes)} uploaded`)
  return parts.join(', ')
}

function formatBytes(bytes: number): string {
  if (bytes < 1000) return `${bytes} B`
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`
  return `${(bytes / 1e6).toFixed(1)} MB`
}

/**
 * What the registry answered about refs with the default credentials (the action's own login
 * not used), each asked once with retries: asked before the load, answered again to the push.
 */
export type RegistryAnswers = Map<string, Promise<string | null>>

function askOnce(
  answers: RegistryAnswers,
  ref: string,
  ask: () => Promise<string | null>
): Promise<string | null> {
  let answer = answers.get(ref)
  if (!answer) {
    answer = ask()
    answer.catch(() => undefined) // not unhandled: the push awaits it and reports it
    answers.set(ref, answer)
  }
  return answer
}

/**
 * Whether every ref already holds this image (isUpToDate and one manifest), asked with skopeo
 * and the default credentials, retried as the push's own queries are, and kept in `answers`
 * for the push. False when skopeo is not there or a registry did not answer: the push then
 * meets the same answer and reports it.
 */
export async function refsHoldImage(
  refs: readonly string[],
  configDigest: string,
  answers: RegistryAnswers,
  retry: RetryPolicy
): Promise<boolean> {
  if (refs.length === 0 || (await io.which('skopeo', false)) === '') return false
  try {
    const raws = await Promise.all(
      refs.map(ref =>
        askOnce(answers, ref, () =>
          withRegistryRetries(`query ${ref}`, ref, retry, () => inspectRawManifest(ref, null))
        )
      )
    )
    const manifests = raws.map(raw => (raw === null ? null : parseRemoteManifest(raw)))
    const first = manifests[0] ?? null
    return manifests.every(m => isUpToDate(m, configDigest, null) && m.digest === first?.digest)
  } catch {
    return false
  }
}

/** Is what the registry has under a ref already this image (and the first ref's manifest)? */
export function isUpToDate(
  existing: RemoteManifest | null,
  configDigest: string,
  first: RefOutcome | null
): existing is RemoteManifest {
  if (!existing || existing.configDigest !== configDigest) return false
  return first === null || existing.digest === first.digest
}

async function pushRef(
  ref: string,
  first: RefOutcome | null,
  pusher: Pusher,
  options: PushOptions
): Promise<RefOutcome> {
  const retrying: Retrying = (what, operation) =>
    withRegistryRetries(what, ref, options.retry, operation)
  const raw = pusher.canQuery ? await pusher.rawManifest(ref) : null
  const existing = raw === null ? null : parseRemoteManifest(raw)
  if (isUpToDate(existing, options.configDigest, first)) {
    return { ref, digest: existing.digest, action: 'up to date' }
  }
  const copyFrom = pusher.copyFrom
  if (first !== null && copyFrom) {
    const digest = await retrying(`copy ${first.ref} to ${ref}`, () => copyFrom(first.ref, ref))
    return { ref, digest, action: 'copied' }
  }
  return { ref, ...(await pusher.push(ref, retrying)), action: 'pushed' }
}

/** Each ref's manifest asked once (retried), however many times it is needed. */
function manifestQuery(options: PushOptions): (ref: string) => Promise<string | null> {
  // Answers given before the load hold for the push's credentials when those are the defaults.
  const answers =
    options.authFile === null && options.answers ? options.answers : (new Map() as RegistryAnswers)
  return ref =>
    askOnce(answers, ref, () =>
      withRegistryRetries(`query ${ref}`, ref, options.retry, () =>
        inspectRawManifest(ref, options.authFile)
      )
    )
}

async function pushWithDocker(ref: string, retrying: Retrying): Promise<Pushed> {
  const digest = await retrying(`push ${ref}`, () => dockerPush(ref))
  return { digest }
}

function makePusher(options: PushOptions, hasSkopeo: boolean): Pusher {
  const copy = (source: string, ref: string): Promise<string> =>
    skopeoCopy(source, ref, options.tempDir, options.authFile)
  const rawManifest = manifestQuery(options)
  // Without skopeo there is no way to ask the registry or copy within it: push every ref.
  if (!hasSkopeo) return { push: pushWithDocker, copyFrom: null, canQuery: false, rawManifest }
  const copyFrom = (source: string, ref: string): Promise<string> => copy(`docker://${source}`, ref)
  if (options.tool === 'docker') {
    return { push: pushWithDocker, copyFrom, canQuery: true, rawManifest }
  }
  const archivePath = options.archivePath
  if (!archivePath) throw new Error('push-tool: skopeo needs the image archive on disk')
  const compression = options.compression ?? DEFAULT_LAYER_COMPRESSION
  const zstd = compression.format === 'zstd'
  const copyArgs = zstd ? ['--preserve-digests'] : skopeoCompressionArgs(compression)
  const push = async (ref: string, retrying: Retrying): Promise<Pushed> => {
    const prepared = zstd
      ? await zstdLayout(archivePath, options.tempDir, compression)
      : await preparePush({
          ref,
          otherRefs: options.refs.filter(other => other !== ref),
          reuseFrom: options.reuseFrom ?? [],
          archivePath,
          tempDir: options.tempDir,
          authFile: options.authFile,
          rawManifest,
          retrying
        })
    try {
      const digest = await retrying(`push ${ref}`, () =>
        skopeoCopy(prepared.source, ref, options.tempDir, options.authFile, copyArgs)
      )
      // The manifest skopeo wrote says how big the uploaded blobs came out.
      const pinned = imageRefFor(ref, digest)
      const pushed = await retrying(`query ${pinned}`, () =>
        inspectRawManifest(pinned, options.authFile)
      )
      return {
        digest,
        reusedLayers: prepared.reusedLayers,
        ...(pushed === null
          ? {}
          : { uploadedBytes: uploadedBytes(pushed, prepared.newLayerIndexes) })
      }
    } finally {
      await prepared.cleanup()
    }
  }
  return { push, copyFrom, canQuery: true, rawManifest }
}
