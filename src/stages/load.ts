// The load stage: `docker load` the build output, reading its manifest in the same pass.
// Also `inspectImage`, the same metadata without docker, for runs that do not load.
import * as core from '../core.js'
import * as io from '@actions/io'
import { mkdtemp, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { run, runWithStdin, settleAll } from '../exec.js'
import type { RunResult } from '../exec.js'
import {
  copyArchiveTo,
  isPlainArchive,
  openArchive,
  readArchiveMetadata,
  readPlainArchiveMetadata
} from '../image/archive.js'
import type { ArchiveMetadata } from '../image/archive.js'
import {
  archiveStream,
  writeCompressedArchive,
  writeCompressedArchiveWithSkopeo
} from '../image/compressed-archive.js'
import type { ImageFormat } from '../image/format.js'
import { DEFAULT_LAYER_COMPRESSION } from '../image/layer-compression.js'
import type { LayerCompression } from '../image/layer-compression.js'
import { runnerTemp } from '../temp.js'

export interface LoadOptions {
  storePath: string
  format: ImageFormat
  /** Also write the plain archive here in the same pass (for skopeo). */
  copyTo?: string | null
  /** Also list the store paths the layers hold (for the SBOM), in the same pass. */
  storePaths?: boolean
  /** How the layers are to be pushed: the containerd store keeps them as they are loaded. */
  compression?: LayerCompression
  /**
   * Whether docker will push the image's layers (some ref lacks it). When not, the containerd
   * store takes the archive as it is, as a plain `docker load` does, with nothing compressed;
   * without it, the layers are always compressed.
   */
  willPushLayers?: (metadata: ArchiveMetadata) => Promise<boolean>
}

export interface LoadResult {
  metadata: ArchiveMetadata
  /** `name:tag` references docker load reported, in order. */
  loadedImages: string[]
  /** What docker calls the image: a loaded reference or the image ID. */
  dockerImage: string
}

export interface DockerLoadOutput {
  images: string[]
  imageIds: string[]
}

/** Parse every `Loaded image:` and `Loaded image ID:` line of `docker load`. */
export function parseDockerLoad(stdout: string): DockerLoadOutput {
  const images: string[] = []
  const imageIds: string[] = []
  for (const line of stdout.split('\n')) {
    const id = /^Loaded image ID:\s*(\S+)/.exec(line)?.[1]
    const image = /^Loaded image:\s*(\S+)/.exec(line)?.[1]
    if (id) imageIds.push(id)
    else if (image) images.push(image)
  }
  return { images, imageIds }
}

/** How the daemon keeps images: Docker's own (classic) store, or containerd's image store. */
export type ImageStore = 'classic' | 'containerd'

/** The store `docker info`'s DriverStatus (as JSON) describes (pure, for tests). */
export function imageStoreOf(driverStatusJson: string): ImageStore {
  return driverStatusJson.includes('io.containerd.snapshotter') ? 'containerd' : 'classic'
}

/**
 * The daemon's image store. A daemon that does not answer is taken for the classic store: the
 * load then fails with docker's own words.
 */
export async function daemonImageStore(): Promise<ImageStore> {
  const info = await run('docker', ['info', '--format', '{{json .DriverStatus}}'], {
    silent: true,
    allowFailure: true
  })
  return info.exitCode === 0 ? imageStoreOf(info.stdout) : 'classic'
}

export async function loadImage(options: LoadOptions): Promise<LoadResult> {
  const compression = options.compression ?? DEFAULT_LAYER_COMPRESSION
  // The classic store compresses on push, as it always does (gzip, at its own level).
  if ((await daemonImageStore()) === 'containerd') return loadCompressed(options, compression)
  const [metadata, load] = isPlainArchive(options.format)
    ? // docker reads the file itself while the metadata is read by seeking.
      await settleAll([
        readPlainArchiveMetadata(options.storePath, options),
        run('docker', ['load', '--input', options.storePath])
      ])
    : await loadStream(options)
  const loaded = parseDockerLoad(load.stdout)
  const named = loaded.images[0] ?? loaded.imageIds[0]
  if (!named) throw new Error(`docker load reported no image:\n${load.stdout}`)
  const dockerImage = await ownImage(named, metadata.configDigest)
  return { metadata, loadedImages: loaded.images, dockerImage }
}

/**
 * What the later stages tag, test and push: the image's own ID (its config digest) when the
 * daemon knows the image by it, not the name the archive gave it (`hello:latest`), which
 * another load on the same daemon (a job beside this one) may move to its own image meanwhile.
 * Otherwise the name, checked against the archive.
 */
async function ownImage(named: string, configDigest: string): Promise<string> {
  const byId = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', configDigest], {
    silent: true,
    allowFailure: true
  })
  if (byId.exitCode === 0 && byId.stdout.trim() === configDigest) return configDigest
  await crossCheckImageId(named, configDigest)
  return named
}

/**
 * The containerd image store keeps the layers as loaded and pushes them so: load them compressed
 * (docs/pushing.md). The plain archive on disk (the output itself, the copy for skopeo, or a
 * copy of our own) is read by seeking, each layer compressed side by side, and the OCI layout of
 * them streamed into `docker load`. It names no image, so docker reports the ID of exactly this
 * image (on this store the manifest digest, which the action wrote), which then gets the
 * archive's names.
 */
async function loadCompressed(
  options: LoadOptions,
  compression: LayerCompression
): Promise<LoadResult> {
  const work = await mkdtemp(join(runnerTemp(), 'nix-container-load-'))
  try {
    const plainPath = isPlainArchive(options.format)
      ? options.storePath
      : (options.copyTo ?? join(work, 'plain.tar'))
    const metadata = await inspectImage({ ...options, copyTo: plainPath })
    if (options.willPushLayers && !(await options.willPushLayers(metadata))) {
      core.info(
        'Every ref already holds this image, so docker will push none of its layers: loading them as they are'
      )
      return await loadAsItIs(plainPath, metadata)
    }
    core.info(
      `docker keeps images in the containerd image store: loading the image's layers ${compression.format}-compressed, so that they are stored and pushed compressed`
    )
    const layout = join(work, 'compressed')
    // gzip by skopeo where it is (GitHub's runners have it): far faster than zlib.
    const archive =
      compression.format === 'gzip' && (await io.which('skopeo', false)) !== ''
        ? await writeCompressedArchiveWithSkopeo(plainPath, layout, compression, work)
        : await writeCompressedArchive(plainPath, layout, compression)
    const load = await runWithStdin('docker', ['load'], archiveStream(archive))
    const imageId = parseDockerLoad(load.stdout).imageIds[0]
    if (imageId !== archive.manifestDigest) {
      throw new Error(
        `docker load reported ${imageId ?? 'no image ID'} for the image whose manifest is ${archive.manifestDigest}:\n${load.stdout}`
      )
    }
    for (const name of metadata.repoTags) await run('docker', ['tag', imageId, name])
    return { metadata, loadedImages: metadata.repoTags, dockerImage: imageId }
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * A plain `docker load` into the containerd store, for an image nothing will be pushed from.
 * Its ID there is a manifest digest docker makes, not the config digest: the loaded name is
 * what the later stages use.
 */
async function loadAsItIs(plainPath: string, metadata: ArchiveMetadata): Promise<LoadResult> {
  const load = await run('docker', ['load', '--input', plainPath])
  const loaded = parseDockerLoad(load.stdout)
  const named = loaded.images[0] ?? loaded.imageIds[0]
  if (!named) throw new Error(`docker load reported no image:\n${load.stdout}`)
  return { metadata, loadedImages: loaded.images, dockerImage: named }
}

/** Stream the archive, as plain tar, into docker load, reading its metadata (and copying it) on the way. */
async function loadStream(options: LoadOptions): Promise<[ArchiveMetadata, RunResult]> {
  const archive = openArchive(options.storePath, options.format)
  const [metadata, load] = await settleAll([
    readArchiveMetadata(archive.stdout, options),
    runWithStdin('docker', ['load'], archive.stdout),
    archive.done,
    options.copyTo ? copyArchiveTo(archive.stdout, options.copyTo) : Promise.resolve()
  ])
  return [metadata, load]
}

/** The daemon's image ID should be the archive's config digest; say so when it is not. */
async function crossCheckImageId(dockerImage: string, configDigest: string): Promise<void> {
  const { stdout } = await run('docker', ['image', 'inspect', '--format', '{{.Id}}', dockerImage], {
    silent: true
  })
  const daemonId = stdout.trim()
  if (daemonId !== configDigest) {
    core.warning(
      `docker reports image ID ${daemonId} for ${dockerImage}, the archive's config is ${configDigest}`
    )
  }
}

/** The archive's metadata without loading it into docker. */
export async function inspectImage(options: LoadOptions): Promise<ArchiveMetadata> {
  if (isPlainArchive(options.format)) return readPlainArchiveMetadata(options.storePath, options)
  const archive = openArchive(options.storePath, options.format)
  const [metadata] = await settleAll([
    readArchiveMetadata(archive.stdout, options),
    archive.done,
    options.copyTo ? copyArchiveTo(archive.stdout, options.copyTo) : Promise.resolve()
  ])
  return metadata
}
