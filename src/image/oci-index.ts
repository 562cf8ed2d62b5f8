// OCI image indexes: written here (a few lines of JSON, so its digest is known before any
// push and an unchanged index is recognised as up to date), read back from registries (a ref
// that already is an index contributes its images), and laid out as an OCI layout directory
// that `skopeo copy --multi-arch index-only` pushes as it is.
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { sha256Digest } from './plain-archive.js'
import { formatPlatform } from './platform.js'
import type { Platform } from './platform.js'

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
export const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json'
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
// One definition of the image manifest type, shared with the layer code.
export { DOCKER_MANIFEST } from './layers.js'

/** One image of an index: its manifest, as a descriptor with the platform. */
export interface IndexEntry {
  mediaType: string
  /** `sha256:` of the manifest bytes. */
  digest: string
  size: number
  platform: Platform
}

export interface ImageIndex {
  /** The exact bytes pushed: the registry's digest is the digest of these. */
  bytes: Buffer
  digest: string
}

/** The index JSON for these images, in this order (pure, for tests). */
export function buildIndex(entries: readonly IndexEntry[]): ImageIndex {
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: entries.map(entry => ({
      mediaType: entry.mediaType,
      digest: entry.digest,
      size: entry.size,
      platform: orderedPlatform(entry.platform)
    }))
  }
  const bytes = Buffer.from(JSON.stringify(index), 'utf8')
  return { bytes, digest: sha256Digest(bytes) }
}

/** Fixed key order, so that the same images always give the same bytes. */
function orderedPlatform(platform: Platform): Platform {
  const { architecture, os, variant } = platform
  return variant ? { architecture, os, variant } : { architecture, os }
}

export function isIndexMediaType(mediaType: string | null): boolean {
  return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST
}

interface RawDescriptor {
  mediaType?: string
  digest?: string
  size?: number
  platform?: Partial<Platform>
}

/** What a raw manifest is: an index (its manifests) or one image (pure, for tests). */
export function parseManifestKind(
  raw: string
): { kind: 'index'; entries: RawDescriptor[] } | { kind: 'image'; mediaType: string } {
  const manifest = JSON.parse(raw) as {
    mediaType?: string
    manifests?: RawDescriptor[]
    config?: unknown
  }
  if (Array.isArray(manifest.manifests) || isIndexMediaType(manifest.mediaType ?? null)) {
    return { kind: 'index', entries: manifest.manifests ?? [] }
  }
  // An OCI manifest may leave its mediaType out; it has a config either way.
  return { kind: 'image', mediaType: manifest.mediaType ?? OCI_MANIFEST }
}

/**
 * The image entries of an index, without attestation manifests (`unknown/unknown`, which
 * BuildKit adds beside each image) (pure, for tests).
 */
export function imageEntriesOf(raw: string, where: string): IndexEntry[] {
  const parsed = parseManifestKind(raw)
  if (parsed.kind !== 'index') throw new Error(`${where} is not an image index`)
  const images: IndexEntry[] = []
  for (const entry of parsed.entries) {
    const platform = entry.platform
    if (!platform?.os || !platform.architecture) continue
    if (platform.os === 'unknown' && platform.architecture === 'unknown') continue
    if (!entry.digest || entry.size === undefined || !entry.mediaType) {
      throw new Error(`${where} has an entry without digest, size or mediaType`)
    }
    if (isIndexMediaType(entry.mediaType)) {
      throw new Error(`${where} nests an index (${entry.digest}): give its images instead`)
    }
    const { os, architecture, variant } = platform
    images.push({
      mediaType: entry.mediaType,
      digest: entry.digest,
      size: entry.size,
      platform: variant ? { os, architecture, variant } : { os, architecture }
    })
  }
  if (images.length === 0) throw new Error(`${where} is an index without any platform image`)
  return images
}

/** `linux/amd64 sha256:...` for logs and errors. */
export function describeEntry(entry: IndexEntry): string {
  return `${formatPlatform(entry.platform)} ${entry.digest}`
}

/**
 * An OCI layout whose only image is this index: `skopeo copy --multi-arch index-only
 * oci:<dir>` then pushes the index bytes as they are, its images being in the registry already.
 */
export async function writeIndexLayout(dir: string, index: ImageIndex): Promise<void> {
  const blobs = join(dir, 'blobs', 'sha256')
  await mkdir(blobs, { recursive: true })
  await writeFile(join(blobs, index.digest.slice('sha256:'.length)), index.bytes)
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }))
  const layoutIndex = {
    schemaVersion: 2,
    manifests: [{ mediaType: OCI_INDEX, digest: index.digest, size: index.bytes.length }]
  }
  await writeFile(join(dir, 'index.json'), JSON.stringify(layoutIndex))
}
