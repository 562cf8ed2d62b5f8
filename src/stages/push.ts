// The push stage: every ref ends up at the same manifest in its registry. A ref that already
// points at this image (same config digest) is left alone; the first ref is pushed with the
// chosen tool, and the others are copied from it registry-to-registry when skopeo is there,
// which reuses every blob and keeps one manifest digest (docker and skopeo compress layers
// differently, so the same image pushed by each gets two digests).
import * as core from '@actions/core'
import * as io from '@actions/io'
import { join } from 'node:path'
import type { PushTool } from '../inputs.js'
import { parseReference, repositoryOf } from '../reference.js'
import { dockerPush, inspectManifest, skopeoCopy } from '../registry.js'
import type { RemoteManifest } from '../registry.js'

export interface PushOptions {
  refs: string[]
  tool: PushTool
  /** `sha256:` of the image config: how "already there" is recognised. */
  configDigest: string
  /** A plain docker archive on disk, for skopeo; null with the docker tool. */
  archivePath: string | null
  /** Where skopeo may write temporary files (RUNNER_TEMP). */
  tempDir: string
}

export type RefAction = 'pushed' | 'copied' | 'up to date'

export interface RefOutcome {
  ref: string
  digest: string
  action: RefAction
}

export interface PushResult {
  /** `sha256:` manifest digest, the same for every ref. */
  digest: string
  /** `<repository>@<digest>` of the first ref. */
  imageRef: string
  outcomes: RefOutcome[]
}

/** `<repository>@<digest>` for a full reference. */
export function imageRefFor(ref: string, digest: string): string {
  return `${repositoryOf(parseReference(ref))}@${digest}`
}

/** One digest for all refs, or an error that lists them. */
export function commonDigest(outcomes: readonly RefOutcome[]): string {
  const distinct = [...new Set(outcomes.map(outcome => outcome.digest))]
  if (distinct.length !== 1) {
    const list = outcomes.map(outcome => `${outcome.ref} -> ${outcome.digest}`).join(', ')
    throw new Error(`the refs ended up at different manifest digests: ${list}`)
  }
  return distinct[0] as string
}

interface Pusher {
  /** Push the image itself to `ref`. */
  push(ref: string): Promise<string>
  /** Give `ref` the manifest `source` has; null when this needs a full push. */
  copyFrom: ((source: string, ref: string) => Promise<string>) | null
  /** Whether the registry can be asked what a ref holds (needs skopeo). */
  canQuery: boolean
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
  const pusher = makePusher(options, hasSkopeo)
  const outcomes: RefOutcome[] = []
  for (const ref of options.refs) {
    const outcome = await pushRef(ref, outcomes[0] ?? null, pusher, options.configDigest)
    core.info(`${ref}: ${outcome.action} (${outcome.digest})`)
    outcomes.push(outcome)
  }
  const digest = commonDigest(outcomes)
  return { digest, imageRef: imageRefFor(options.refs[0] as string, digest), outcomes }
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
  configDigest: string
): Promise<RefOutcome> {
  const existing = pusher.canQuery ? await inspectManifest(ref) : null
  if (isUpToDate(existing, configDigest, first)) {
    return { ref, digest: existing.digest, action: 'up to date' }
  }
  if (first !== null && pusher.copyFrom) {
    return { ref, digest: await pusher.copyFrom(first.ref, ref), action: 'copied' }
  }
  return { ref, digest: await pusher.push(ref), action: 'pushed' }
}

function makePusher(options: PushOptions, hasSkopeo: boolean): Pusher {
  const digestFile = join(options.tempDir, `nix-container-digest-${process.pid}`)
  // containers/image puts big temporary files under TMPDIR (/var/tmp by default).
  const skopeoEnv = { TMPDIR: options.tempDir }
  // Without skopeo there is no way to ask the registry or copy within it: push every ref.
  if (!hasSkopeo) return { push: dockerPush, copyFrom: null, canQuery: false }
  const copyFrom = (source: string, ref: string): Promise<string> =>
    skopeoCopy(`docker://${source}`, ref, digestFile, skopeoEnv)
  if (options.tool === 'docker') return { push: dockerPush, copyFrom, canQuery: true }
  const archivePath = options.archivePath
  if (!archivePath) throw new Error('push-tool: skopeo needs the image archive on disk')
  return {
    push: ref => skopeoCopy(`docker-archive:${archivePath}`, ref, digestFile, skopeoEnv),
    copyFrom,
    canQuery: true
  }
}
