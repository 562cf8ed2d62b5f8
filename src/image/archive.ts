// Reading a docker archive as a stream: manifest.json for the RepoTags and the config digest,
// in the same single pass that feeds `docker load`, so a streamed image is never written to disk.
import { createReadStream, createWriteStream } from 'node:fs'
import { finished, pipeline } from 'node:stream/promises'
import type { Readable, Writable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { Parser } from 'tar'
import type { ReadEntry } from 'tar'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { errorMessage } from '../errors.js'
import { run, settleAll, spawnProducer } from '../exec.js'
import type { Producer } from '../exec.js'
import type { ImageFormat } from './format.js'
import { layerStorePathsBySeeking, StreamLayerScanner } from './layer-store-paths.js'
import { entryName, indexTar, readEntry, sha256Digest } from './plain-archive.js'
import { platformOfConfig } from './platform.js'
import type { Platform } from './platform.js'

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
  /** The Nix store paths the layers hold, when asked for (`ReadOptions.storePaths`). */
  storePaths?: StorePathsResult
  /** What the config says the image runs on; null when it names no os or architecture. */
  platform: Platform | null
}

/**
 * A layer the SBOM cannot list is not a failure of the load (docker may read what this reader
 * cannot): it is kept here and reported by the SBOM stage.
 */
export type StorePathsResult = { paths: string[] } | { error: string }

async function listing(read: () => string[] | Promise<string[]>): Promise<StorePathsResult> {
  try {
    return { paths: await read() }
  } catch (error) {
    return { error: errorMessage(error) }
  }
}

export interface ReadOptions {
  /** Also list the store paths the layers hold (for the SBOM), in the same pass. */
  storePaths?: boolean
}

// Configs and manifest.json are small; layers are not read into memory.
const SMALL_ENTRY_LIMIT = 4 * 1024 * 1024

/**
 * The archive as a plain tar stream: the file, decompressed, or the stream script's output.
 * Always uncompressed, so every consumer (docker load, skopeo, the parser) reads the same
 * thing: docker 20.10 cannot load zstd, and skopeo 1.9 cannot read a gzip docker-archive.
 */
export function openArchive(storePath: string, format: ImageFormat): Producer {
  if (format.kind === 'stream') return spawnProducer(storePath, [])
  if (format.kind === 'oci-layout') return streamOciLayout(storePath)
  if (format.compression === 'zstd') return spawnProducer('zstd', ['-dc', '--', storePath])
  const file = createReadStream(storePath)
  if (format.compression === 'none') return { stdout: file, done: finished(file) }
  const gunzip = createGunzip()
  return { stdout: gunzip, done: pipeline(file, gunzip) }
}

/**
 * An OCI layout as a docker archive stream (docker 20.10 cannot load an OCI layout). skopeo
 * writes a docker archive sequentially, so it can write into a FIFO that is read as it goes;
 * it cannot open /dev/stdout when that is node's socket pair.
 */
function streamOciLayout(layoutDir: string): Producer {
  const archive = new PassThrough()
  const done = (async () => {
    const fifoDir = await mkdtemp(join(tmpdir(), 'nix-container-oci-'))
    const fifo = join(fifoDir, 'archive.tar')
    try {
      await run('mkfifo', [fifo], { silent: true })
      const skopeo = spawnProducer('skopeo', [
        'copy',
        '-q',
        `oci:${layoutDir}`,
        `docker-archive:${fifo}`
      ])
      skopeo.stdout.resume()
      await settleAll([pipeline(createReadStream(fifo), archive), skopeo.done])
    } finally {
      await rm(fifoDir, { recursive: true, force: true })
    }
  })()
  return { stdout: archive, done }
}

/** An uncompressed docker archive: docker, skopeo and the metadata reader use the file itself. */
export function isPlainArchive(format: ImageFormat): boolean {
  return format.kind === 'docker-archive' && format.compression === 'none'
}

/** A path skopeo can read as `docker-archive:`: seekable and uncompressed. */
export function needsPlainCopy(format: ImageFormat): boolean {
  return !isPlainArchive(format)
}

/** Also write the plain archive to `path` while others read it. */
export function copyArchiveTo(archive: Readable, path: string): Promise<void> {
  const file = createWriteStream(path)
  archive.pipe(file)
  return finished(file)
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
export async function readArchiveMetadata(
  archive: Readable,
  options: ReadOptions = {}
): Promise<ArchiveMetadata> {
  const digests = new Map<string, string>()
  // Configs are JSON files; layers never are, so only these are kept.
  const jsonFiles = new Map<string, Buffer>()
  let manifestText: string | null = null
  const layers = options.storePaths ? new StreamLayerScanner() : null
  const parser = new Parser({
    onReadEntry: (entry: ReadEntry) => {
      layers?.onEntry(entry)
      const path = entryName(entry.path)
      if (entry.type !== 'File' || entry.size > SMALL_ENTRY_LIMIT) {
        entry.resume()
        return
      }
      const chunks: Buffer[] = []
      entry.on('data', (chunk: Buffer) => chunks.push(chunk))
      entry.on('end', () => {
        const content = Buffer.concat(chunks)
        if (path === 'manifest.json') manifestText = content.toString('utf8')
        digests.set(path, sha256Digest(content))
        if (path.endsWith('.json')) jsonFiles.set(path, content)
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
  const manifest = manifestOf(manifestText)
  const metadata = metadataFrom(manifest, config => {
    const content = jsonFiles.get(entryName(config))
    const digest = digests.get(entryName(config))
    return content && digest ? { digest, content } : null
  })
  if (!layers) return metadata
  return { ...metadata, storePaths: await listing(() => layers.layerStorePaths(manifest.Layers)) }
}

/**
 * The same from an uncompressed archive file, by seeking: milliseconds instead of a read of
 * every layer.
 */
export async function readPlainArchiveMetadata(
  path: string,
  options: ReadOptions = {}
): Promise<ArchiveMetadata> {
  const entries = await indexTar(path)
  const manifest = await readEntry(path, entries, 'manifest.json')
  const config = manifest && parseManifest(manifest.toString('utf8'))[0]?.Config
  const configContent = config ? await readEntry(path, entries, config) : null
  const first = manifestOf(manifest?.toString('utf8') ?? null)
  const metadata = metadataFrom(first, () =>
    configContent ? { digest: sha256Digest(configContent), content: configContent } : null
  )
  if (!options.storePaths) return metadata
  const storePaths = await listing(() => layerStorePathsBySeeking(path, entries, first.Layers))
  return { ...metadata, storePaths }
}

/** The image manifest.json describes (its first entry), with every entry's RepoTags. */
function manifestOf(manifestText: string | null): ManifestEntry & { allRepoTags: string[] } {
  if (manifestText === null) throw new Error('the image archive has no manifest.json')
  const manifest = parseManifest(manifestText)
  const allRepoTags = manifest.flatMap(entry => entry.RepoTags ?? [])
  return { ...(manifest[0] as ManifestEntry), allRepoTags }
}

function metadataFrom(
  first: ReturnType<typeof manifestOf>,
  configOf: (configPath: string) => { digest: string; content: Buffer } | null
): ArchiveMetadata {
  const config = configOf(first.Config)
  if (!config) throw new Error(`the image archive has no config file ${first.Config}`)
  return {
    repoTags: first.allRepoTags,
    configDigest: config.digest,
    layerCount: first.Layers.length,
    platform: platformOrNull(config.content.toString('utf8'))
  }
}

/** A single-platform run does not need the platform: a config without one is not an error here. */
function platformOrNull(configJson: string): Platform | null {
  try {
    return platformOfConfig(configJson)
  } catch {
    return null
  }
}
