// An image archive with compressed layers, made from a plain docker archive, for `docker load`.
// Docker's containerd image store keeps the blobs it loads as they are and pushes them so:
// loaded from a plain archive (what Nix's images hold inside), every layer would go to the
// registry uncompressed. Loaded from this one, the store keeps compressed blobs and `docker push`
// sends them, as the classic store compresses on push.
//
// It is an OCI image layout (which that store loads) whose manifest the action writes: Docker's
// schema 2 for gzip layers (what the classic store and skopeo push), OCI for zstd. So the
// manifest digest, which is that store's image ID, is known before the load. The layers are
// compressed side by side, each hashed as it is written.
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { create as createTar } from 'tar'
import { parseManifest } from './archive.js'
import { run } from '../exec.js'
import { compressor, layerMediaType, skopeoCompressionArgs } from './layer-compression.js'
import type { LayerCompression } from './layer-compression.js'
import { fileEntry, indexTar, readEntry, sha256Digest } from './plain-archive.js'
import type { TarEntry } from './plain-archive.js'

/** A blob of the layout: its digest and size. */
export interface Descriptor {
  digest: string
  size: number
}

/** The layout in `dir`: its files in the order they are archived, and the manifest's digest. */
export interface CompressedArchive {
  dir: string
  files: string[]
  manifestDigest: string
  /** Layers in the manifest (a repeated layer counts each time). */
  layerCount: number
}

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json'
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

/** The image manifest's media type for layers compressed so. */
export function manifestMediaType(compression: LayerCompression): string {
  return compression.format === 'gzip' ? DOCKER_MANIFEST : OCI_MANIFEST
}

/** The image manifest (pure, for tests): the config and the layers, as they were written. */
export function compressedManifest(
  config: Descriptor,
  layers: readonly Descriptor[],
  compression: LayerCompression
): string {
  const docker = compression.format === 'gzip'
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: manifestMediaType(compression),
    config: { mediaType: docker ? DOCKER_CONFIG : OCI_CONFIG, ...config },
    layers: layers.map(layer => ({ mediaType: layerMediaType(compression.format), ...layer }))
  })
}

/**
 * index.json (pure, for tests). It names no image, so that `docker load` reports the ID of
 * exactly this image rather than a name another load on the same daemon could take meanwhile.
 */
export function layoutIndex(manifest: Descriptor, manifestType: string): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [{ mediaType: manifestType, ...manifest }]
  })
}

/**
 * Write the first image of the plain docker archive at `plainPath` into `dir` (made if missing)
 * as an OCI layout with compressed layers: the same config, so the same image ID on the classic
 * store and the same `image-id`. Deterministic for a given compressor: the same image makes the
 * same blobs, and so the same manifest digest.
 */
export async function writeCompressedArchive(
  plainPath: string,
  dir: string,
  compression: LayerCompression
): Promise<CompressedArchive> {
  const entries = await indexTar(plainPath)
  const manifestText = await readEntry(plainPath, entries, 'manifest.json')
  if (!manifestText) throw new Error('the image archive has no manifest.json')
  const image = parseManifest(manifestText.toString('utf8'))[0]
  if (!image) throw new Error('manifest.json in the image archive has no image')
  const config = await readEntry(plainPath, entries, image.Config)
  if (!config) throw new Error(`the image archive has no config file ${image.Config}`)
  const layerEntries = image.Layers.map(name => {
    const entry = fileEntry(entries, name)
    if (!entry) throw new Error(`the image archive has no layer file ${name}`)
    return entry
  })
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  const layers = await mapConcurrently(layerEntries, availableParallelism(), entry =>
    compressRegion(plainPath, entry, blobs, compression)
  )
  const configBlob = await writeBlob(blobs, config)
  const manifestBlob = await writeBlob(
    blobs,
    Buffer.from(compressedManifest(configBlob, layers, compression))
  )
  return finishLayout(dir, [configBlob, ...layers], manifestBlob, manifestMediaType(compression))
}

/**
 * The same with gzip layers compressed by skopeo (its parallel gzip, which also stores what
 * does not compress, several times faster than zlib on both): skopeo writes the image as a
 * `dir:` image, whose manifest is the one a skopeo push writes (Docker schema 2, the config as
 * built), and its blobs become the layout's.
 */
export async function writeCompressedArchiveWithSkopeo(
  plainPath: string,
  dir: string,
  compression: LayerCompression,
  tempDir: string
): Promise<CompressedArchive> {
  const dirImage = `${dir}-dir`
  try {
    await run(
      'skopeo',
      [
        'copy',
        '-q',
        ...skopeoCompressionArgs(compression),
        `docker-archive:${plainPath}`,
        `dir:${dirImage}`
      ],
      { env: { TMPDIR: tempDir } }
    )
    const manifestText = await readFile(join(dirImage, 'manifest.json'))
    const manifest = JSON.parse(manifestText.toString('utf8')) as {
      mediaType: string
      config: Descriptor
      layers: Descriptor[]
    }
    const blobs = join(dir, 'blobs', 'sha256')
    await mkdir(blobs, { recursive: true })
    const parts = [manifest.config, ...manifest.layers]
    for (const part of new Set(parts.map(p => p.digest.slice('sha256:'.length)))) {
      await rename(join(dirImage, part), join(blobs, part))
    }
    const manifestBlob = await writeBlob(blobs, manifestText)
    return await finishLayout(dir, parts, manifestBlob, manifest.mediaType)
  } finally {
    await rm(dirImage, { recursive: true, force: true })
  }
}

async function finishLayout(
  dir: string,
  parts: readonly Descriptor[],
  manifestBlob: Descriptor,
  manifestType: string
): Promise<CompressedArchive> {
  await writeFile(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
  await writeFile(join(dir, 'index.json'), layoutIndex(manifestBlob, manifestType))
  const blobFiles = [...new Set([...parts, manifestBlob].map(blobPath))]
  return {
    dir,
    files: ['oci-layout', 'index.json', ...blobFiles],
    manifestDigest: manifestBlob.digest,
    layerCount: parts.length - 1 // the config is the first part
  }
}

/** The archive as a tar stream, for `docker load`. */
export function archiveStream(archive: CompressedArchive): Readable {
  // node-tar's stream is a Minipass, which iterates as a Node stream reads.
  return Readable.from(
    createTar({ cwd: archive.dir, portable: true, noMtime: true }, archive.files)
  )
}

const blobPath = (blob: Descriptor): string => `blobs/sha256/${blob.digest.slice('sha256:'.length)}`

async function writeBlob(blobs: string, content: Buffer): Promise<Descriptor> {
  const blob = { digest: sha256Digest(content), size: content.length }
  await writeFile(join(blobs, blob.digest.slice('sha256:'.length)), content)
  return blob
}

/** Compress one layer of the plain archive into a blob, hashing it as it is written. */
async function compressRegion(
  path: string,
  entry: TarEntry,
  blobs: string,
  compression: LayerCompression
): Promise<Descriptor> {
  // Read streams take an inclusive end, which an empty entry does not have.
  const source =
    entry.size === 0
      ? Readable.from([])
      : createReadStream(path, { start: entry.offset, end: entry.offset + entry.size - 1 })
  const hash = createHash('sha256')
  let size = 0
  const counting = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk)
      size += chunk.length
      done(null, chunk)
    }
  })
  const partial = join(blobs, `.partial-${randomBytes(6).toString('hex')}`)
  await pipeline(source, compressor(compression), counting, createWriteStream(partial))
  const blob = { digest: `sha256:${hash.digest('hex')}`, size }
  await rename(partial, join(blobs, blob.digest.slice('sha256:'.length)))
  return blob
}

/** `work` on every item, at most `limit` at a time; the results in the items' order. */
async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>
): Promise<R[]> {
  const results = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      results[index] = await work(items[index] as T)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
  return results
}
