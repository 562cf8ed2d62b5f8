// Putting a digest's cosign signature into the registry, beside the image: read what the
// `sha256-<hex>.sig` tag holds, leave it alone when this key already signed this payload,
// otherwise append the new signature layer and push the `.sig` manifest with skopeo from a
// `dir:` layout written here (the new payload and config only: the layers already there are
// named but absent, and skopeo finds them in the repository before it would read them).
// `--preserve-digests` makes skopeo push these manifest bytes as they are, media types and
// annotations included, or fail; the digest it reports is checked against them.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { errorMessage } from '../errors.js'
import { inspectRawManifest, skopeoCopy, withRegistryRetries } from '../registry/commands.js'
import type { RegistryOptions } from '../registry/index-push.js'
import type { SigningKey } from './cosign-key.js'
import {
  alreadySigned,
  existingLayers,
  signatureImage,
  signaturePayload,
  signatureRef,
  signPayload
} from './simple-signing.js'
import type { SignatureImage } from './simple-signing.js'

export interface SignatureTarget {
  /** `registry/path` as the refs name it: the payload's identity and where the `.sig` goes. */
  repository: string
  /** `sha256:` of the pushed manifest (an image's or an index's). */
  digest: string
}

export interface SignatureOutcome extends SignatureTarget {
  /** `<repository>:sha256-<hex>.sig` */
  ref: string
  /** `signed`: a layer was added; `up to date`: this key had signed this payload already. */
  action: 'signed' | 'up to date'
  /** Signatures the tag holds now (of any key). */
  signatureCount: number
}

/** Sign one pushed digest in one repository, and push the signature beside it. */
export async function attachSignature(
  target: SignatureTarget,
  key: SigningKey,
  options: RegistryOptions
): Promise<SignatureOutcome> {
  const ref = signatureRef(target.repository, target.digest)
  const payload = signaturePayload(target.repository, target.digest)
  const raw = await withRegistryRetries(`query ${ref}`, ref, options.retry, () =>
    inspectRawManifest(ref, options.authFile)
  )
  let layers
  try {
    layers = existingLayers(raw)
  } catch (error) {
    throw new Error(`cannot add a signature to ${ref}: ${errorMessage(error)}`)
  }
  if (alreadySigned(layers, payload, key.publicKey)) {
    return { ...target, ref, action: 'up to date', signatureCount: layers.length }
  }
  const image = signatureImage(layers, payload, signPayload(payload, key.privateKey))
  const dir = await mkdtemp(join(options.tempDir, 'nix-container-signature-'))
  try {
    await writeDirLayout(dir, image)
    const written = await withRegistryRetries(`push ${ref}`, ref, options.retry, () =>
      skopeoCopy(`dir:${dir}`, ref, options.tempDir, options.authFile, ['--preserve-digests'])
    )
    if (written !== image.manifestDigest) {
      throw new Error(`pushing ${ref} wrote manifest ${written} instead of ${image.manifestDigest}`)
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return { ...target, ref, action: 'signed', signatureCount: image.layers.length }
}

/** skopeo's `dir:` layout: `manifest.json`, `version`, and blobs named by their hex digest. */
async function writeDirLayout(dir: string, image: SignatureImage): Promise<void> {
  await Promise.all([
    writeFile(join(dir, 'version'), 'Directory Transport Version: 1.1\n'),
    writeFile(join(dir, 'manifest.json'), image.manifest),
    ...image.blobs.map(blob =>
      writeFile(join(dir, blob.digest.replace(/^sha256:/, '')), blob.bytes)
    )
  ])
}
