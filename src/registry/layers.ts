// Which layers a registry already holds, and under which compressed blob: an image manifest
// lists the blobs, its config lists the same layers by uncompressed digest (`diff_ids`), so the
// two side by side map each uncompressed layer to a blob that can be referenced as it is.
import type { ArchiveLayer, Descriptor } from '../image/layers.js'
import { parseReference, repositoryOf } from './reference.js'

/** Gzip blobs, whichever manifest format listed them: the same bytes under either name. */
const REUSABLE_LAYER_TYPES = [
  'application/vnd.docker.image.rootfs.diff.tar.gzip',
  'application/vnd.oci.image.layer.v1.tar+gzip'
]
const IMAGE_MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json'
]

/** A blob the registry holds, and the repository (`domain/path`) it is in. */
export interface RemoteLayer {
  repository: string
  descriptor: Descriptor
}

/** An image manifest's layer descriptors; null for an index or anything else (pure). */
export function manifestLayers(raw: string): Descriptor[] | null {
  const manifest = JSON.parse(raw) as { mediaType?: string; layers?: unknown }
  const isImage =
    (manifest.mediaType === undefined || IMAGE_MANIFEST_TYPES.includes(manifest.mediaType)) &&
    Array.isArray(manifest.layers)
  if (!isImage) return null
  return (manifest.layers as Partial<Descriptor>[]).map(layer => ({
    mediaType: String(layer.mediaType ?? ''),
    digest: String(layer.digest ?? ''),
    size: Number(layer.size ?? 0)
  }))
}

/**
 * diff_id -> the gzip blob holding that layer, from one remote image (pure, for tests).
 * Layers stored any other way (zstd, uncompressed, foreign) are not offered.
 */
export function remoteLayersOf(
  ref: string,
  layers: readonly Descriptor[],
  diffIds: readonly string[]
): Map<string, RemoteLayer> {
  const found = new Map<string, RemoteLayer>()
  if (layers.length !== diffIds.length) return found
  const repository = repositoryOf(parseReference(ref))
  layers.forEach((descriptor, index) => {
    if (REUSABLE_LAYER_TYPES.includes(descriptor.mediaType)) {
      found.set(diffIds[index] as string, { repository, descriptor })
    }
  })
  return found
}

/** One layer of the push: a blob the registry has (here or in another repository), or new. */
export type PlannedLayer =
  | { kind: 'reused'; layer: ArchiveLayer; remote: RemoteLayer }
  | { kind: 'new'; layer: ArchiveLayer }

/**
 * For each archive layer, the remote blob to reuse: one in the target repository first (no
 * mount needed), else the first other repository that has it; else the layer is new (pure).
 */
export function planLayers(
  layers: readonly ArchiveLayer[],
  remotes: readonly Map<string, RemoteLayer>[],
  targetRepository: string
): PlannedLayer[] {
  return layers.map(layer => {
    const candidates = remotes.flatMap(remote => remote.get(layer.diffId) ?? [])
    const remote =
      candidates.find(candidate => candidate.repository === targetRepository) ?? candidates[0]
    return remote ? { kind: 'reused', layer, remote } : { kind: 'new', layer }
  })
}
