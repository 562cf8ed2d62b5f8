// Push only what changed. Before the first push, the manifests and configs of what the refs
// point at now and of the `reuse-from` refs say which of the archive's layers the registry
// already holds, compressed, and as which blob. skopeo then copies a `dir:` layout whose
// manifest names those blobs as they are and the new layers as plain tars: it finds the reused
// blobs in the destination before it would read them, and compresses (on every core) and
// uploads only the new layers. Blobs in another repository of the registry are mounted first.
import * as core from '../core.js'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { readArchiveImage, writeDirLayout, diffIdsOf } from '../image/layers.js'
import type { ArchiveImage, LayoutLayer } from '../image/layers.js'
import { inspectRawConfig, parseRemoteManifest } from './commands.js'
import { manifestLayers, planLayers, remoteLayersOf } from './layers.js'
import type { PlannedLayer, RemoteLayer } from './layers.js'
import { findCredentials } from './http.js'
import { mountBlob } from './mount.js'
import type { MountResult } from './mount.js'
import { parseReference, repositoryOf } from './reference.js'
import { errorMessage } from '../errors.js'

export interface ReuseOptions {
  /** The ref to push. */
  ref: string
  /** The other refs being pushed: their layers may be reused too. */
  otherRefs: readonly string[]
  /** The `reuse-from` refs, full references. */
  reuseFrom: readonly string[]
  archivePath: string
  tempDir: string
  authFile: string | null
  /** The raw manifest under a ref (null: none), asked once per ref and retried. */
  rawManifest: (ref: string) => Promise<string | null>
  retrying: <T>(what: string, operation: () => Promise<T>) => Promise<T>
}

export interface PreparedPush {
  /** What skopeo copies from: the layout, or the archive itself when nothing is reused. */
  source: string
  /** Layers the registry already had (mounted ones included): not read, compressed or sent. */
  reusedLayers: number
  mountedLayers: number
  /** Digests of the blobs this push uploads, in the pushed manifest's layer order. */
  newLayerIndexes: number[]
  /** Remove the layout. */
  cleanup: () => Promise<void>
}

const domainOf = (ref: string): string | null => parseReference(ref).domain

/** Whom to ask, in order: the ref itself, the other refs, then reuse-from; same registry only. */
export function reuseCandidates(
  ref: string,
  otherRefs: readonly string[],
  reuseFrom: readonly string[]
): { candidates: string[]; elsewhere: string[] } {
  const all = [...new Set([ref, ...otherRefs, ...reuseFrom])]
  const domain = domainOf(ref)
  return {
    candidates: all.filter(candidate => domainOf(candidate) === domain),
    elsewhere: reuseFrom.filter(candidate => domainOf(candidate) !== domain)
  }
}

export async function preparePush(options: ReuseOptions): Promise<PreparedPush> {
  const image = await readArchiveImage(options.archivePath)
  const { candidates, elsewhere } = reuseCandidates(
    options.ref,
    options.otherRefs,
    options.reuseFrom
  )
  for (const ref of elsewhere) {
    core.notice(`reuse-from ${ref} is not in the registry of ${options.ref}: not used`)
  }
  const remotes = await Promise.all(
    candidates.map(candidate =>
      remoteLayersFor(candidate, image, options).catch((error: unknown) => {
        core.warning(`${candidate}: could not read its layers (${errorMessage(error)}); not reused`)
        return new Map<string, RemoteLayer>()
      })
    )
  )
  const targetRepository = repositoryOf(parseReference(options.ref))
  const planned = await mountOtherRepositories(
    planLayers(image.layers, remotes, targetRepository),
    options
  )
  const reusedLayers = planned.filter(layer => layer.kind === 'reused').length
  const mountedLayers = planned.filter(
    layer => layer.kind === 'reused' && layer.remote.repository !== targetRepository
  ).length
  const newLayerIndexes = planned.flatMap((layer, index) => (layer.kind === 'new' ? [index] : []))
  core.info(
    `${options.ref}: ${reusedLayers} of ${planned.length} layers are in the registry` +
      (mountedLayers > 0 ? ` (${mountedLayers} mounted from other repositories)` : '') +
      `; ${newLayerIndexes.length} to compress and upload`
  )
  const nothingReused = { reusedLayers, mountedLayers, newLayerIndexes, cleanup: async () => {} }
  if (reusedLayers === 0) return { ...nothingReused, source: `docker-archive:${image.path}` }
  const dir = join(options.tempDir, `nix-container-layout-${process.pid}`)
  await writeDirLayout(image, planned.map(toLayoutLayer), dir)
  return {
    ...nothingReused,
    source: `dir:${dir}`,
    cleanup: () => rm(dir, { recursive: true, force: true })
  }
}

function toLayoutLayer(planned: PlannedLayer): LayoutLayer {
  return planned.kind === 'reused'
    ? { kind: 'reused', descriptor: planned.remote.descriptor }
    : { kind: 'new', layer: planned.layer }
}

/** diff_id -> blob for what `ref` points at; empty when it is nothing reusable. */
async function remoteLayersFor(
  ref: string,
  image: ArchiveImage,
  options: ReuseOptions
): Promise<Map<string, RemoteLayer>> {
  const raw = await options.rawManifest(ref)
  const isReuseFrom = options.reuseFrom.includes(ref) && ref !== options.ref
  if (raw === null) {
    if (isReuseFrom) core.notice(`reuse-from ${ref} does not exist in the registry: not used`)
    return new Map()
  }
  const layers = manifestLayers(raw)
  if (layers === null) {
    if (isReuseFrom) core.notice(`reuse-from ${ref} is not a single image manifest: not used`)
    return new Map()
  }
  const manifest = parseRemoteManifest(raw)
  // The same config is the same image: its diff_ids are the archive's.
  const diffIds =
    manifest.configDigest === image.configDigest
      ? image.layers.map(layer => layer.diffId)
      : await configDiffIds(ref, manifest.digest, options)
  return remoteLayersOf(ref, layers, diffIds)
}

async function configDiffIds(
  ref: string,
  manifestDigest: string,
  options: ReuseOptions
): Promise<string[]> {
  // By digest: the config of the very manifest read above, even if the tag moves meanwhile.
  const pinned = `${repositoryOf(parseReference(ref))}@${manifestDigest}`
  const config = await options.retrying(`read the config of ${ref}`, () =>
    inspectRawConfig(pinned, options.authFile)
  )
  return config === null ? [] : diffIdsOf(config)
}

/** Mount blobs from other repositories; a layer whose mount fails is uploaded instead. */
async function mountOtherRepositories(
  planned: PlannedLayer[],
  options: ReuseOptions
): Promise<PlannedLayer[]> {
  const target = parseReference(options.ref)
  const foreign = planned.filter(
    layer => layer.kind === 'reused' && layer.remote.repository !== repositoryOf(target)
  )
  if (foreign.length === 0) return planned
  const registry = target.domain ?? 'docker.io'
  const credentials = await findCredentials(registry, options.authFile)
  const fromPathOf = (repository: string): string => parseReference(repository).path
  const outcomes = new Map<string, Promise<boolean>>()
  const mount = (remote: RemoteLayer): Promise<boolean> => {
    const digest = remote.descriptor.digest
    const request = {
      registry,
      repository: target.path,
      from: fromPathOf(remote.repository),
      digest
    }
    return options
      .retrying(`mount ${digest} from ${remote.repository}`, () => mountBlob(request, credentials))
      .catch((error: unknown): MountResult => ({ mounted: false, reason: errorMessage(error) }))
      .then(result => {
        if (!result.mounted)
          core.info(
            `${digest} not mounted from ${remote.repository}: ${result.reason}; uploading it`
          )
        return result.mounted
      })
  }
  for (const layer of foreign) {
    if (layer.kind !== 'reused') continue
    const digest = layer.remote.descriptor.digest
    if (!outcomes.has(digest)) outcomes.set(digest, mount(layer.remote))
  }
  const mounted = new Map(
    await Promise.all(
      [...outcomes].map(async ([digest, outcome]) => [digest, await outcome] as const)
    )
  )
  return planned.map(layer =>
    layer.kind === 'reused' && mounted.get(layer.remote.descriptor.digest) === false
      ? { kind: 'new', layer: layer.layer }
      : layer
  )
}

/** Bytes of the blobs this push uploaded, from the manifest it wrote (pure, for tests). */
export function uploadedBytes(pushedManifest: string, newLayerIndexes: readonly number[]): number {
  const layers = manifestLayers(pushedManifest) ?? []
  const blobs = new Map(
    newLayerIndexes.flatMap(index => {
      const layer = layers[index]
      return layer ? [[layer.digest, layer.size] as const] : []
    })
  )
  return [...blobs.values()].reduce((sum, size) => sum + size, 0)
}
