// A docker archive whose layers are gzip-compressed, made from a plain one. Docker's containerd
// image store keeps the blobs it loads as they are and pushes them so: loaded from a plain
// archive (which is what Nix's images hold inside), every layer would go to the registry
// uncompressed. Loaded from this one, the store keeps compressed blobs, and `docker push` sends
// them, as the classic store compresses on push. The layers are compressed side by side.
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'
import { create as createTar } from 'tar'
import { parseManifest } from './archive.js'
import { fileEntry, indexTar, readEntry } from './plain-archive.js'
import type { TarEntry } from './plain-archive.js'

/** The files of the compressed archive, in `dir`, in the order they are archived. */
export interface CompressedArchive {
  dir: string
  files: string[]
}

/** The layer files' names in the compressed archive (pure, for tests). */
export function compressedLayerNames(layerCount: number): string[] {
  return Array.from({ length: layerCount }, (_, i) => `layer-${i}.tar.gz`)
}

/**
 * manifest.json of the compressed archive (pure, for tests). It names no image, so that
 * `docker load` reports the ID of exactly this image rather than a name another load on the
 * same daemon could take meanwhile.
 */
export function compressedManifest(layerNames: readonly string[]): string {
  return JSON.stringify([{ Config: 'config.json', RepoTags: null, Layers: layerNames }])
}

/**
 * Write the first image of the plain archive at `plainPath` into `dir` (made if missing) with
 * gzip-compressed layers: the same config, so the same image ID. Deterministic for a given
 * zlib: the same image makes the same blobs, and so the same manifest digest.
 */
export async function writeCompressedArchive(
  plainPath: string,
  dir: string
): Promise<CompressedArchive> {
  const entries = await indexTar(plainPath)
  const manifestText = await readEntry(plainPath, entries, 'manifest.json')
  if (!manifestText) throw new Error('the image archive has no manifest.json')
  const image = parseManifest(manifestText.toString('utf8'))[0]
  if (!image) throw new Error('manifest.json in the image archive has no image')
  const config = await readEntry(plainPath, entries, image.Config)
  if (!config) throw new Error(`the image archive has no config file ${image.Config}`)
  const layers = image.Layers.map(name => {
    const entry = fileEntry(entries, name)
    if (!entry) throw new Error(`the image archive has no layer file ${name}`)
    return entry
  })
  await mkdir(dir, { recursive: true })
  const layerNames = compressedLayerNames(layers.length)
  await forEachConcurrently(layers, availableParallelism(), (layer, i) =>
    compressRegion(plainPath, layer, join(dir, layerNames[i] as string))
  )
  await writeFile(join(dir, 'config.json'), config)
  await writeFile(join(dir, 'manifest.json'), compressedManifest(layerNames))
  return { dir, files: ['manifest.json', 'config.json', ...layerNames] }
}

/** The compressed archive as a tar stream, for `docker load`. */
export function archiveStream(archive: CompressedArchive): Readable {
  // node-tar's stream is a Minipass, which iterates as a Node stream reads.
  return Readable.from(
    createTar({ cwd: archive.dir, portable: true, noMtime: true }, archive.files)
  )
}

async function compressRegion(path: string, entry: TarEntry, target: string): Promise<void> {
  // Read streams take an inclusive end, which an empty entry does not have.
  const source =
    entry.size === 0
      ? Readable.from([])
      : createReadStream(path, { start: entry.offset, end: entry.offset + entry.size - 1 })
  await pipeline(source, createGzip(), createWriteStream(target))
}

/** Run `work` on every item, at most `limit` at a time. */
async function forEachConcurrently<T>(
  items: readonly T[],
  limit: number,
  work: (item: T, index: number) => Promise<void>
): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const index = next++
      await work(items[index] as T, index)
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker))
}
