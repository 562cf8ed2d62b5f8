// Store paths' signatures as Nix makes them (`secret-key-files`, `nix store sign`) and checks
// them (`trusted-public-keys`): ed25519 over the path's fingerprint
// `1;<path>;sha256:<nix32 NAR hash>;<NAR size>;<references, comma-separated>`, written
// `<key name>:<base64 signature>`. Keys are Nix's: `<name>:<base64 of the 64-byte secret key
// (seed and public key)>` as `nix key generate-secret` prints it, `<name>:<base64 of the 32-byte
// public key>` as `nix key convert-secret-to-public` does.
//
// Errors never carry a secret key or anything decoded from it: only a fixed reason.
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto'
import type { KeyObject } from 'node:crypto'

const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz'
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._+@-]*$/
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/
const SEED_BYTES = 32
const SECRET_BYTES = 64
const PUBLIC_BYTES = 32
const SIGNATURE_BYTES = 64

export interface NixSecretKey {
  name: string
  privateKey: KeyObject
  /** The public key, as `nix key convert-secret-to-public` prints it. */
  publicKey: string
}

export interface NixPublicKey {
  name: string
  key: KeyObject
}

/** What the signature covers of a path: its registration. */
export interface SignedPathInfo {
  path: string
  /** sha256 of the path's NAR, base16. */
  narHash: string
  narSize: number
  references: readonly string[]
}

/** Nix's base32 (libutil's printHash32): the last character holds the lowest bits. */
export function encodeNix32(bytes: Uint8Array): string {
  const length = Math.ceil((bytes.length * 8) / 5)
  let text = ''
  for (let n = length - 1; n >= 0; n--) {
    const bit = n * 5
    const i = Math.floor(bit / 8)
    const j = bit % 8
    const low = (bytes[i] ?? 0) >> j
    const high = i + 1 < bytes.length ? (bytes[i + 1] ?? 0) << (8 - j) : 0
    text += NIX32_ALPHABET[(low | high) & 0x1f]
  }
  return text
}

/** The fingerprint Nix signs (ValidPathInfo::fingerprint). */
export function fingerprint(info: SignedPathInfo): string {
  const hash = encodeNix32(Buffer.from(info.narHash, 'hex'))
  return `1;${info.path};sha256:${hash};${info.narSize};${info.references.join(',')}`
}

function base64Of(text: string, bytes: number): Buffer | null {
  if (!BASE64.test(text)) return null
  const decoded = Buffer.from(text, 'base64')
  return decoded.length === bytes ? decoded : null
}

function splitKey(text: string): { name: string; data: string } | null {
  const colon = text.indexOf(':')
  if (colon <= 0) return null
  const name = text.slice(0, colon)
  return KEY_NAME.test(name) ? { name, data: text.slice(colon + 1) } : null
}

function ed25519Jwk(publicKey: Buffer, seed?: Buffer) {
  return {
    kty: 'OKP',
    crv: 'Ed25519',
    x: publicKey.toString('base64url'),
    ...(seed ? { d: seed.toString('base64url') } : {})
  }
}

/**
 * A secret key as `nix key generate-secret` prints it. Throws an Error whose message never
 * holds the key; its public half must be what its seed makes.
 */
export function parseNixSecretKey(text: string): NixSecretKey {
  const fail = (why: string) => new Error(why)
  const parts = splitKey(text.trim())
  if (parts === null) {
    throw fail(
      'is not a Nix secret key: expected <name>:<base64>, as `nix key generate-secret` prints it'
    )
  }
  const bytes = base64Of(parts.data, SECRET_BYTES)
  if (bytes === null) {
    throw fail(`is not a Nix secret key: the part after "${parts.name}:" is not 64 bytes in base64`)
  }
  const seed = bytes.subarray(0, SEED_BYTES)
  const half = bytes.subarray(SEED_BYTES)
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: ed25519Jwk(half, seed), format: 'jwk' })
  } catch {
    throw fail('is not a Nix secret key: not an ed25519 key')
  }
  const derived = Buffer.from(
    (createPublicKey(privateKey).export({ format: 'jwk' }) as { x: string }).x,
    'base64url'
  )
  if (!derived.equals(half)) {
    throw fail('is not a Nix secret key: its public half does not match its secret half')
  }
  return { name: parts.name, privateKey, publicKey: `${parts.name}:${half.toString('base64')}` }
}

/** One public key as `nix key convert-secret-to-public` prints it; throws naming what is wrong. */
export function parseNixPublicKey(text: string): NixPublicKey {
  const parts = splitKey(text)
  const bytes = parts && base64Of(parts.data, PUBLIC_BYTES)
  if (!parts || !bytes) {
    throw new Error(
      `${JSON.stringify(text)} is not a Nix public key (<name>:<base64 of 32 bytes>, as \`nix key convert-secret-to-public\` prints it)`
    )
  }
  try {
    return { name: parts.name, key: createPublicKey({ key: ed25519Jwk(bytes), format: 'jwk' }) }
  } catch {
    throw new Error(`${JSON.stringify(text)} is not an ed25519 public key`)
  }
}

/** The path's signature as Nix writes it: `<key name>:<base64>`. */
export function signPath(key: NixSecretKey, info: SignedPathInfo): string {
  const signature = sign(null, Buffer.from(fingerprint(info)), key.privateKey)
  return `${key.name}:${signature.toString('base64')}`
}

/** The names of the keys a signature string claims (for messages); '' when unparseable. */
export function signatureKeyName(signature: string): string {
  return splitKey(signature)?.name ?? ''
}

/** Each (key, signature bytes) pair worth checking: a well-formed signature by a key's name. */
function candidates(
  signatures: readonly string[],
  keys: readonly NixPublicKey[]
): { key: KeyObject; bytes: Buffer }[] {
  return signatures.flatMap(text => {
    const parts = splitKey(text)
    const bytes = parts && base64Of(parts.data, SIGNATURE_BYTES)
    if (!parts || !bytes) return []
    return keys.filter(k => k.name === parts.name).map(k => ({ key: k.key, bytes }))
  })
}

/**
 * Whether one of `signatures` is a valid signature of the path by one of `keys`
 * (Nix's checkSignatures with a threshold of one).
 */
export function verifyPath(
  info: SignedPathInfo,
  signatures: readonly string[],
  keys: readonly NixPublicKey[]
): boolean {
  const message = Buffer.from(fingerprint(info))
  return candidates(signatures, keys).some(c => verify(null, message, c.key, c.bytes))
}

/** verifyPath, each check in libuv's thread pool: thousands of paths are checked on every core. */
export async function verifyPathInPool(
  info: SignedPathInfo,
  signatures: readonly string[],
  keys: readonly NixPublicKey[]
): Promise<boolean> {
  const message = Buffer.from(fingerprint(info))
  for (const { key, bytes } of candidates(signatures, keys)) {
    const valid = await new Promise<boolean>((resolve, reject) => {
      verify(null, message, key, bytes, (error, ok) => (error ? reject(error) : resolve(ok)))
    })
    if (valid) return true
  }
  return false
}

/** The key as `nix key generate-secret` prints it, for a file Nix reads (`secret-key=`). */
export function formatNixSecretKey(key: NixSecretKey): string {
  const jwk = key.privateKey.export({ format: 'jwk' }) as { d?: string; x?: string }
  const seed = Buffer.from(jwk.d ?? '', 'base64url')
  const publicKey = Buffer.from(jwk.x ?? '', 'base64url')
  return `${key.name}:${Buffer.concat([seed, publicKey]).toString('base64')}`
}
