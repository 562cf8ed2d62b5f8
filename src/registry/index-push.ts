// Multi-platform pushes, all with skopeo (docker can push neither an untagged image nor an
// index): each platform image goes to every target repository by digest, with no tag, then
// one OCI image index naming them goes under every ref. The index is written here, so its
// digest is known before the push and a ref that already holds it is left alone.
import { writeCompressedArchive } from '../image/compressed-archive.js'
import { DEFAULT_LAYER_COMPRESSION, skopeoCompressionArgs } from '../image/layer-compression.js'
import type { LayerCompression } from '../image/layer-compression.js'
import * as core from '../core.js'
import * as io from '@actions/io'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { buildIndex, describeEntry, writeIndexLayout } from '../image/oci-index.js'
import { sha256Digest } from '../image/plain-archive.js'
import type { ImageIndex, IndexEntry } from '../image/oci-index.js'
import { parseReference, repositoryOf } from './reference.js'
import { run } from '../exec.js'
import {
  inspectManifest,
  skopeoCopy,
  skopeoTempEnv,
  TRANSFER_SECONDS,
  withRegistryRetries
} from './commands.js'
import { commonDigest, imageRefFor, partialPushMessage } from './outcome.js'
import type { PushResult, RefAction, RefOutcome, RepositoryOutcome } from './outcome.js'
import type { RetryPolicy } from './retry.js'

export interface RegistryOptions {
  /** Where skopeo may write temporary files (RUNNER_TEMP). */
  tempDir: string
  /** The action's own Docker config after it logged in; null to use the defaults. */
  authFile: string | null
  retry: RetryPolicy
  /** How the layers skopeo writes are compressed; gzip at skopeo's level when not given. */
  compression?: LayerCompression
}

/** Where an image's manifest is pushed from: a local `dir:` image or another registry ref. */
export type ManifestSource = { dir: string } | { ref: string }

/** The distinct repositories of these refs, in order. */
export function repositoriesOf(refs: readonly string[]): string[] {
  return [...new Set(refs.map(ref => repositoryOf(parseReference(ref))))]
}

export async function requireSkopeo(why: string): Promise<void> {
  if ((await io.which('skopeo', false)) === '') {
    throw new Error(
      `${why} needs skopeo on PATH (preinstalled on GitHub-hosted Ubuntu runners; ` +
        'apt-get install skopeo elsewhere)'
    )
  }
}

/**
 * Write a plain docker archive as a `dir:` image with compressed layers: its manifest.json
 * is the manifest the registry will hold (gzip: the same one a plain skopeo push writes,
 * docker schema 2; zstd: the action's OCI manifest; the config as built either way), so its
 * digest is known before the push.
 */
export async function archiveToManifestDir(
  archivePath: string,
  options: RegistryOptions
): Promise<{ dir: string; mediaType: string; digest: string; size: number }> {
  const dir = await mkdtemp(join(options.tempDir, 'nix-container-image-'))
  const layoutDir = `${dir}-layout`
  try {
    const compression = options.compression ?? DEFAULT_LAYER_COMPRESSION
    // zstd: the action's own layout (skopeo's OCI conversion would rewrite the config).
    const source =
      compression.format === 'zstd'
        ? await writeCompressedArchive(archivePath, layoutDir, compression)
        : null
    await run(
      'skopeo',
      [
        'copy',
        '-q',
        ...(source ? ['--preserve-digests'] : skopeoCompressionArgs(compression)),
        source ? `oci:${source.dir}` : `docker-archive:${archivePath}`,
        `dir:${dir}`
      ],
      {
        env: skopeoTempEnv(options.tempDir),
        timeoutSeconds: TRANSFER_SECONDS
      }
    )
    const manifest = await readFile(join(dir, 'manifest.json'))
    const mediaType = (JSON.parse(manifest.toString('utf8')) as { mediaType?: string }).mediaType
    if (!mediaType) throw new Error(`skopeo wrote a manifest without mediaType to ${dir}`)
    return { dir, mediaType, digest: sha256Digest(manifest), size: manifest.length }
  } catch (error) {
    await rm(dir, { recursive: true, force: true })
    throw error
  } finally {
    await rm(layoutDir, { recursive: true, force: true })
  }
}

/**
 * Make `repository@<digest>` hold the manifest: up to date when it already does, otherwise
 * copied with its digest preserved.
 */
export async function pushManifestByDigest(
  source: ManifestSource,
  digest: string,
  repository: string,
  options: RegistryOptions
): Promise<RepositoryOutcome> {
  const target = `${repository}@${digest}`
  const existing = await withRegistryRetries(`query ${target}`, target, options.retry, () =>
    inspectManifest(target, options.authFile)
  )
  if (existing?.digest === digest) return { repository, action: 'up to date' }
  const from = 'dir' in source ? `dir:${source.dir}` : `docker://${source.ref}`
  const action: RefAction = 'dir' in source ? 'pushed' : 'copied'
  const written = await withRegistryRetries(
    `${action === 'pushed' ? 'push' : 'copy'} ${target}`,
    target,
    options.retry,
    () => skopeoCopy(from, target, options.tempDir, options.authFile, ['--preserve-digests'])
  )
  if (written !== digest) {
    throw new Error(`pushing ${target} wrote manifest ${written} instead`)
  }
  return { repository, action }
}

export interface IndexPushOptions extends RegistryOptions {
  refs: string[]
  entries: IndexEntry[]
  /** Told about each ref as soon as it is done, so a partial push can be reported. */
  onOutcome?: (outcome: RefOutcome) => void
}

/** Push one index of `entries` (already in every ref's repository) under every ref. */
export async function pushIndex(options: IndexPushOptions): Promise<PushResult & ImageIndex> {
  const index = buildIndex(options.entries)
  core.info(`Index ${index.digest}: ${options.entries.map(describeEntry).join(', ')}`)
  const layout = await mkdtemp(join(options.tempDir, 'nix-container-index-'))
  const outcomes: RefOutcome[] = []
  try {
    await writeIndexLayout(layout, index)
    for (const ref of options.refs) {
      try {
        const outcome = await pushIndexTo(ref, index, layout, options)
        core.info(`${ref}: ${outcome.action} (${outcome.digest})`)
        outcomes.push(outcome)
        options.onOutcome?.(outcome)
      } catch (error) {
        throw new Error(partialPushMessage(error, outcomes, options.refs), { cause: error })
      }
    }
  } finally {
    await rm(layout, { recursive: true, force: true })
  }
  const digest = commonDigest(outcomes)
  return { ...index, digest, imageRef: imageRefFor(options.refs[0] as string, digest), outcomes }
}

async function pushIndexTo(
  ref: string,
  index: ImageIndex,
  layout: string,
  options: RegistryOptions
): Promise<RefOutcome> {
  const existing = await withRegistryRetries(`query ${ref}`, ref, options.retry, () =>
    inspectManifest(ref, options.authFile)
  )
  if (existing?.digest === index.digest) return { ref, digest: index.digest, action: 'up to date' }
  const digest = await withRegistryRetries(`push index to ${ref}`, ref, options.retry, () =>
    skopeoCopy(`oci:${layout}`, ref, options.tempDir, options.authFile, [
      '--multi-arch',
      'index-only',
      '--preserve-digests'
    ])
  )
  return { ref, digest, action: 'pushed' }
}
