// A cosign signature of an image manifest digest, as the registry holds it (pure, for tests):
// the simple-signing payload naming the digest, ECDSA P-256 over its SHA-256, and the OCI
// manifest under the tag `sha256-<hex>.sig` whose layers are the payloads, each with its
// base64 signature in the `dev.cosignproject.cosign/signature` annotation. That is the layout
// cosign writes and that containers/image (skopeo, podman) reads with
// `use-sigstore-attachments`.
import { sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { sha256Digest as sha256 } from '../image/plain-archive.js'

export const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json'
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature'
export const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json'
export const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json'
const SIGNATURE_TYPE = 'cosign container image signature'
const DIGEST = /^sha256:[a-f0-9]{64}$/

export interface Descriptor {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
}

/** A `.sig` manifest's parts: the bytes to push, and their digests. */
export interface SignatureImage {
  manifest: Buffer
  manifestDigest: string
  config: Buffer
  configDigest: string
  /** Blobs this manifest adds (the new payload); the other layers are in the registry. */
  blobs: { digest: string; bytes: Buffer }[]
  layers: Descriptor[]
}

function checkDigest(digest: string): void {
  if (!DIGEST.test(digest)) throw new Error(`${JSON.stringify(digest)} is not a sha256: digest`)
}

/** `sha256:<hex>` -> `sha256-<hex>.sig`: the tag cosign and skopeo keep a digest's signatures in. */
export function signatureTag(digest: string): string {
  checkDigest(digest)
  return `${digest.replace(':', '-')}.sig`
}

/** `<repository>:sha256-<hex>.sig`: one line of the `signatures` output. */
export function signatureRef(repository: string, digest: string): string {
  return `${repository}:${signatureTag(digest)}`
}

/**
 * The payload `cosign sign` writes for a digest (sigstore's payload.Cosign with no
 * annotations): the repository without tag as the identity, `"optional": null`. These exact
 * bytes are signed and stored, so the same repository and digest always give the same payload.
 */
export function signaturePayload(repository: string, digest: string): Buffer {
  checkDigest(digest)
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { 'docker-reference': repository },
        image: { 'docker-manifest-digest': digest },
        type: SIGNATURE_TYPE
      },
      optional: null
    })
  )
}

/** ECDSA over the payload's SHA-256, ASN.1 DER, base64: the annotation's value. */
export function signPayload(payload: Buffer, privateKey: KeyObject): string {
  return sign('sha256', payload, privateKey).toString('base64')
}

export function verifyPayload(payload: Buffer, signature: string, publicKey: KeyObject): boolean {
  try {
    return verify('sha256', payload, publicKey, Buffer.from(signature, 'base64'))
  } catch {
    return false
  }
}

/** The layer that holds one signed payload. */
export function signatureLayer(payload: Buffer, signature: string): Descriptor {
  return {
    mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
    digest: sha256(payload),
    size: payload.length,
    annotations: { [SIGNATURE_ANNOTATION]: signature }
  }
}

/** The layers of a `.sig` manifest the registry already holds (parsed from its raw bytes). */
export function existingLayers(raw: string | null): Descriptor[] {
  if (raw === null) return []
  let manifest: { mediaType?: unknown; layers?: unknown; manifests?: unknown }
  try {
    manifest = JSON.parse(raw) as typeof manifest
  } catch {
    throw new Error('it holds something that is not JSON, so it is left alone')
  }
  if (!Array.isArray(manifest.layers) || manifest.manifests !== undefined) {
    throw new Error('it holds something that is not a signature manifest, so it is left alone')
  }
  return manifest.layers as Descriptor[]
}

/**
 * Whether `layers` already hold this payload signed by this key: then there is nothing to
 * add (ECDSA signatures differ every time, so the signature itself is not compared; a layer
 * is a match when it names these payload bytes and its signature verifies with the key).
 */
export function alreadySigned(
  layers: readonly Descriptor[],
  payload: Buffer,
  publicKey: KeyObject
): boolean {
  const digest = sha256(payload)
  return layers.some(layer => {
    const signature = layer.annotations?.[SIGNATURE_ANNOTATION]
    return (
      layer.mediaType === SIMPLE_SIGNING_MEDIA_TYPE &&
      layer.digest === digest &&
      layer.size === payload.length &&
      typeof signature === 'string' &&
      verifyPayload(payload, signature, publicKey)
    )
  })
}

/**
 * The `.sig` manifest with `layer` appended to the layers already there (those of other keys
 * or other payloads are kept as they are, as cosign and containers/image do). The config is
 * the one containers/image writes: empty but for `rootfs.diff_ids`, one per layer.
 */
export function signatureImage(
  existing: readonly Descriptor[],
  payload: Buffer,
  signature: string
): SignatureImage {
  const layers = [...existing, signatureLayer(payload, signature)]
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      os: '',
      config: {},
      rootfs: { type: 'layers', diff_ids: layers.map(layer => layer.digest) }
    })
  )
  const configDigest = sha256(config)
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config: { mediaType: OCI_CONFIG_MEDIA_TYPE, digest: configDigest, size: config.length },
      layers
    })
  )
  return {
    manifest,
    manifestDigest: sha256(manifest),
    config,
    configDigest,
    blobs: [
      { digest: configDigest, bytes: config },
      { digest: sha256(payload), bytes: payload }
    ],
    layers
  }
}
