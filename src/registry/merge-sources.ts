// The `merge` input: images already pushed (by tag or by digest, perhaps as indexes of their
// own) become the entries of one new index. Nothing is built; every platform is read from the
// image's own config in the registry.
import { imageEntriesOf, parseManifestKind } from '../image/oci-index.js'
import type { IndexEntry } from '../image/oci-index.js'
import { checkDistinctPlatforms, formatPlatform, platformOfConfig } from '../image/platform.js'
import { parseReference, repositoryOf } from './reference.js'
import { sha256Digest } from '../image/plain-archive.js'
import { inspectRawConfig, inspectRawManifest, withRegistryRetries } from './commands.js'
import type { RegistryOptions } from './index-push.js'

/** One platform image found through a `merge` entry. */
export interface MergeImage {
  /** The `merge` entry it came from. */
  from: string
  /** `<repository>@<digest>` where it is now. */
  source: string
  entry: IndexEntry
  /** `sha256:` of its config: the image ID. */
  configDigest: string
  /** Whether `from` is an index that holds it. */
  fromIndex: boolean
}

async function inspect(
  ref: string,
  what: 'manifest' | 'config',
  options: RegistryOptions
): Promise<string> {
  const raw = await withRegistryRetries(`read ${what} of ${ref}`, ref, options.retry, () =>
    what === 'config'
      ? inspectRawConfig(ref, options.authFile)
      : inspectRawManifest(ref, options.authFile)
  )
  if (raw === null) throw new Error(`merge: ${ref} is not in the registry`)
  return raw
}

/** Every platform image the `merge` refs name, each checked against its config. */
export async function readMergeSources(
  refs: readonly string[],
  options: RegistryOptions
): Promise<MergeImage[]> {
  const images: MergeImage[] = []
  for (const ref of refs) {
    const repository = repositoryOf(parseReference(ref))
    const raw = await inspect(ref, 'manifest', options)
    const kind = parseManifestKind(raw)
    const manifests: Omit<IndexEntry, 'platform'>[] =
      kind.kind === 'index'
        ? imageEntriesOf(raw, ref)
        : [{ mediaType: kind.mediaType, digest: sha256Digest(raw), size: Buffer.byteLength(raw) }]
    for (const manifest of manifests) {
      const source = `${repository}@${manifest.digest}`
      const manifestRaw = kind.kind === 'index' ? await inspect(source, 'manifest', options) : raw
      const configDigest = (JSON.parse(manifestRaw) as { config?: { digest?: string } }).config
        ?.digest
      if (!configDigest) throw new Error(`merge: ${source} (from ${ref}) has no image config`)
      const platform = platformOfConfig(await inspect(source, 'config', options))
      images.push({
        from: ref,
        source,
        entry: { ...manifest, platform },
        configDigest,
        fromIndex: kind.kind === 'index'
      })
    }
  }
  checkDistinctPlatforms(
    images.map(image => ({
      name: image.fromIndex ? `${image.from} (its entry ${image.entry.digest})` : image.from,
      platform: image.entry.platform
    }))
  )
  return images
}

/** `linux/amd64 from app:amd64` for the log. */
export function describeMergeImage(image: MergeImage): string {
  return `${formatPlatform(image.entry.platform)} from ${image.from}`
}
