// An uncompressed docker archive, layer by layer: the image config names each layer by its
// uncompressed digest (`rootfs.diff_ids`), so what a registry already holds can be known
// without reading a layer. And the `dir:` layout skopeo copies from, whose manifest names the
// registry's compressed blobs for reused layers and the archive's plain tars for new ones.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { parseManifest } from './archive.js'
import { entryName, indexTar, readEntry, sha256Digest } from './plain-archive.js'
import type { TarEntry } from './plain-archive.js'

export const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
export const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
export const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
/** An uncompressed layer: skopeo compresses it on the way to the registry. */
export const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar'

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
}

export interface ArchiveLayer {
  /** `sha256:` of the uncompressed layer tar. */
  diffId: string
  /** Where the layer's bytes are in the archive file. */
  offset: number
  size: number
}

export interface ArchiveImage {
  path: string
  config: Buffer
  configDigest: string
  layers: ArchiveLayer[]
}

/** `rootfs.diff_ids` of an image config (pure, for tests). */
export function diffIdsOf(config: string | Buffer): string[] {
  const parsed = JSON.parse(config.toString()) as { rootfs?: { diff_ids?: unknown } }
  const ids = parsed.rootfs?.diff_ids
  if (!Array.isArray(ids) || !ids.every(id => typeof id === 'string')) {
    throw new Error('the image config has no rootfs.diff_ids')
  }
  return ids
}

/** The config and each layer's place in an uncompressed archive file, by seeking. */
export async function readArchiveImage(path: string): Promise<ArchiveImage> {
  const entries = await indexTar(path)
  const manifestText = await readEntry(path, entries, 'manifest.json')
  if (!manifestText) throw new Error('the image archive has no manifest.json')
  const first = parseManifest(manifestText.toString('utf8'))[0]
  const config = first && (await readEntry(path, entries, first.Config))
  if (!first || !config) throw new Error(`the image archive has no config file ${first?.Config}`)
  const diffIds = diffIdsOf(config)
  if (diffIds.length !== first.Layers.length) {
    throw new Error(
      `the image config lists ${diffIds.length} layers, manifest.json ${first.Layers.length}`
    )
  }
  const layers = first.Layers.map((name, index) => {
    const entry = fileEntry(entries, name)
    return { diffId: diffIds[index] as string, offset: entry.offset, size: entry.size }
  })
  return { path, config, configDigest: sha256Digest(config), layers }
}

/** A file entry, following symbolic links within the archive (docker save links equal layers). */
function fileEntry(entries: Map<string, TarEntry>, name: string): TarEntry {
  let entry = entries.get(entryName(name))
  for (let hops = 0; entry?.type === 'SymbolicLink' && entry.linkpath && hops < 8; hops++) {
    const target = entryName(join(name, '..', entry.linkpath))
    entry = entries.get(target)
    name = target
  }
  if (!entry || entry.type !== 'File') throw new Error(`the image archive has no layer ${name}`)
  return entry
}

/** One layer of a `dir:` layout: a blob the registry has, or an archive layer to upload. */
export type LayoutLayer =
  { kind: 'reused'; descriptor: Descriptor } | { kind: 'new'; layer: ArchiveLayer }

/** The layout's manifest: the archive's config, each layer as planned (pure, for tests). */
export function layoutManifest(
  image: Pick<ArchiveImage, 'config' | 'configDigest'>,
  layers: readonly LayoutLayer[]
): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: DOCKER_MANIFEST,
    config: { mediaType: DOCKER_CONFIG, size: image.config.length, digest: image.configDigest },
    layers: layers.map(planned =>
      planned.kind === 'reused'
        ? { ...planned.descriptor, mediaType: DOCKER_LAYER_GZIP }
        : { mediaType: DOCKER_LAYER_TAR, size: planned.layer.size, digest: planned.layer.diffId }
    )
  })
}

const hexOf = (digest: string): string => digest.replace(/^sha256:/, '')

/**
 * Write a skopeo `dir:` layout: manifest, config and the new layers' plain tars (copied out of
 * the archive, side by side). Reused blobs are named but absent: skopeo finds them in the
 * destination repository before it would read them.
 */
export async function writeDirLayout(
  image: ArchiveImage,
  layers: readonly LayoutLayer[],
  dir: string
): Promise<void> {
  await mkdir(dir, { recursive: true })
  // An image may hold the same layer twice: one blob.
  const newLayers = new Map<string, ArchiveLayer>()
  for (const planned of layers) {
    if (planned.kind === 'new') newLayers.set(planned.layer.diffId, planned.layer)
  }
  const copies = [...newLayers.values()].map(layer => copyLayer(image.path, layer, dir))
  await Promise.all([
    ...copies,
    writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n'),
    writeFile(join(dir, hexOf(image.configDigest)), image.config),
    writeFile(join(dir, 'manifest.json'), layoutManifest(image, layers))
  ])
}

async function copyLayer(archivePath: string, layer: ArchiveLayer, dir: string): Promise<void> {
  const target = join(dir, hexOf(layer.diffId))
  if (layer.size === 0) return writeFile(target, '')
  const range = { start: layer.offset, end: layer.offset + layer.size - 1 }
  await pipeline(createReadStream(archivePath, range), createWriteStream(target))
}
