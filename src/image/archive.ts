// Reading a docker archive as a stream: manifest.json for the RepoTags and the config digest,
// in the same single pass that feeds `docker load`, so a streamed image is never written to disk.
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { finished } from 'node:stream/promises'
import type { Readable, Writable } from 'node:stream'
import { Parser } from 'tar'
import type { ReadEntry } from 'tar'
import { spawnProducer } from '../exec.js'
import type { Producer } from '../exec.js'
import type { ImageFormat } from './format.js'

/** One entry of a docker archive's manifest.json. */
export interface ManifestEntry {
  Config: string
  RepoTags?: string[] | null
  Layers: string[]
}

export interface ArchiveMetadata {
  repoTags: string[]
  /** `sha256:` digest of the image config: the image ID. */
  configDigest: string
  layerCount: number
}

// Configs and manifest.json are small; layers are not read into memory.
const SMALL_ENTRY_LIMIT = 4 * 1024 * 1024

/** The decompressed archive as a stream: the file, `zstd -dc` of it, or the stream script's output. */
export function openArchive(storePath: string, format: ImageFormat): Producer {
  if (format.kind === 'stream') return spawnProducer(storePath, [])
  if (format.compression === 'zstd') return spawnProducer('zstd', ['-dc', '--', storePath])
  // docker load and the tar parser both read gzip themselves.
  const file = createReadStream(storePath)
  return { stdout: file, done: finished(file) }
}

/** Parse manifest.json (pure, for tests). */
export function parseManifest(text: string): ManifestEntry[] {
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    throw new Error('manifest.json in the image archive is not valid JSON')
  }
  const valid =
    Array.isArray(parsed) &&
    parsed.length > 0 &&
    parsed.every(
      (entry: Partial<ManifestEntry>) =>
        typeof entry?.Config === 'string' && Array.isArray(entry.Layers)
    )
  if (!valid) throw new Error('manifest.json in the image archive has no image (Config, Layers)')
  return parsed as ManifestEntry[]
}

/** Read the metadata from an archive stream. The stream may be read by others at the same time. */
export async function readArchiveMetadata(archive: Readable): Promise<ArchiveMetadata> {
  const digests = new Map<string, string>()
  let manifestText: string | null = null
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      const path = entry.path.replace(/^\.\//, '')
      if (entry.type !== 'File' || entry.size > SMALL_ENTRY_LIMIT) {
        entry.resume()
        return
      }
      const chunks: Buffer[] = []
      entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      entry.on('end', () => {
        const content = Buffer.concat(chunks)
        if (path === 'manifest.json') manifestText = content.toString('utf8')
        digests.set(path, `sha256:${createHash('sha256').update(content).digest('hex')}`)
      })
    }
  })
  const parsed = new Promise<void>((resolve, reject) => {
    parser.on('end', resolve)
    parser.on('error', reject)
    archive.on('error', reject)
  })
  archive.pipe(parser as unknown as Writable)
  await parsed
  if (manifestText === null) throw new Error('the image archive has no manifest.json')
  const manifest = parseManifest(manifestText)
  const first = manifest[0] as ManifestEntry
  const configDigest = digests.get(first.Config.replace(/^\.\//, ''))
  if (!configDigest) throw new Error(`the image archive has no config file ${first.Config}`)
  return {
    repoTags: manifest.flatMap(entry => entry.RepoTags ?? []),
    configDigest,
    layerCount: first.Layers.length
  }
}
