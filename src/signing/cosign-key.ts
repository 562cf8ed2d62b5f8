// The `signing-key` input: a cosign/sigstore private key as `cosign generate-key-pair` writes
// it. A PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY`, cosign >= 2.0.1, or the older
// `ENCRYPTED COSIGN PRIVATE KEY`) whose body is go-securesystemslib's `encrypted` JSON:
// scrypt derives a 32-byte key from the passphrase, NaCl secretbox (XSalsa20-Poly1305) holds
// the PKCS#8 DER private key. Decrypted here, in memory, once: nothing is written to disk.
//
// Errors never carry the key, the passphrase or anything decoded from them (not even a JSON
// parser's message, which quotes its input): only a fixed reason.
import { createPrivateKey, createPublicKey, scryptSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import nacl from 'tweetnacl'

export const SIGSTORE_PEM_TYPE = 'ENCRYPTED SIGSTORE PRIVATE KEY'
export const COSIGN_PEM_TYPE = 'ENCRYPTED COSIGN PRIVATE KEY'
const PEM_TYPES = [SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE]

/**
 * The scrypt parameters go-securesystemslib accepts (legacy, what cosign wrote before, and
 * skopeo 1.9 reads alone; standard; OWASP): anything else is refused before scrypt runs, as
 * there, so that a crafted key cannot make the step spend minutes or gigabytes.
 */
export const SCRYPT_PARAMETERS: readonly { N: number; r: number; p: number }[] = [
  { N: 32768, r: 8, p: 1 },
  { N: 65536, r: 8, p: 1 },
  { N: 131072, r: 8, p: 1 }
]
const BOX_KEY_BYTES = 32
const BOX_NONCE_BYTES = 24

export interface SigningKey {
  privateKey: KeyObject
  publicKey: KeyObject
  /** The PEM type it came in. */
  pemType: string
}

/** A key that cannot be used; the message says why and holds nothing of the key. */
export class SigningKeyError extends Error {
  constructor(
    message: string,
    /** Which input is at fault: the key itself or its passphrase. */
    readonly input: 'signing-key' | 'signing-passphrase'
  ) {
    super(message)
    this.name = 'SigningKeyError'
  }
}

interface EncryptedKey {
  kdf: { name: string; params: { N: number; r: number; p: number }; salt: Buffer }
  cipher: { name: string; nonce: Buffer }
  ciphertext: Buffer
}

/** The PEM block's type and body; the one block there must be. */
function readPem(text: string): { type: string; body: Buffer } {
  const match = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/.exec(text)
  if (!match) {
    throw new SigningKeyError(
      'is not a PEM private key: give the whole cosign.key file (cosign generate-key-pair), ' +
        `from -----BEGIN ${SIGSTORE_PEM_TYPE}----- to its END line`,
      'signing-key'
    )
  }
  const type = match[1] as string
  if (!PEM_TYPES.includes(type)) {
    throw new SigningKeyError(
      `is a PEM block of type "${type}", not a cosign key: give a key of type ` +
        `${SIGSTORE_PEM_TYPE} or ${COSIGN_PEM_TYPE} (cosign generate-key-pair)`,
      'signing-key'
    )
  }
  const base64 = (match[2] as string).replace(/\s+/g, '')
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
    throw new SigningKeyError('is not a valid PEM block: its body is not base64', 'signing-key')
  }
  return { type, body: Buffer.from(base64, 'base64') }
}

const notEncrypted = (): SigningKeyError =>
  new SigningKeyError(
    "is not an encrypted cosign key: its body is not go-securesystemslib's encrypted JSON " +
      '(kdf scrypt, cipher nacl/secretbox)',
    'signing-key'
  )

function bytes(value: unknown): Buffer {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw notEncrypted()
  return Buffer.from(value, 'base64')
}

/** go-securesystemslib's `encrypted` JSON, checked field by field (Go's []byte is base64). */
function readEncrypted(body: Buffer): EncryptedKey {
  let json: unknown
  try {
    json = JSON.parse(body.toString('utf8'))
  } catch {
    throw notEncrypted()
  }
  const data = json as {
    kdf?: { name?: unknown; params?: { N?: unknown; r?: unknown; p?: unknown }; salt?: unknown }
    cipher?: { name?: unknown; nonce?: unknown }
    ciphertext?: unknown
  }
  if (typeof data !== 'object' || data === null || !data.kdf || !data.cipher) throw notEncrypted()
  if (data.kdf.name !== 'scrypt' || data.cipher.name !== 'nacl/secretbox') {
    throw new SigningKeyError(
      `is encrypted with kdf ${JSON.stringify(data.kdf.name)} and cipher ` +
        `${JSON.stringify(data.cipher.name)}; cosign keys use scrypt and nacl/secretbox`,
      'signing-key'
    )
  }
  const { N, r, p } = data.kdf.params ?? {}
  const params = SCRYPT_PARAMETERS.find(known => known.N === N && known.r === r && known.p === p)
  if (!params) {
    throw new SigningKeyError(
      `has scrypt parameters N=${String(N)}, r=${String(r)}, p=${String(p)}, which cosign never ` +
        `writes (accepted: ${SCRYPT_PARAMETERS.map(k => `N=${k.N}`).join(', ')} with r=8, p=1)`,
      'signing-key'
    )
  }
  const nonce = bytes(data.cipher.nonce)
  if (nonce.length !== BOX_NONCE_BYTES) throw notEncrypted()
  return {
    kdf: { name: 'scrypt', params, salt: bytes(data.kdf.salt) },
    cipher: { name: 'nacl/secretbox', nonce },
    ciphertext: bytes(data.ciphertext)
  }
}

/** The secretbox key: scrypt over the passphrase. */
function boxKey(passphrase: string, kdf: EncryptedKey['kdf']): Buffer {
  const { N, r, p } = kdf.params
  // scrypt needs 128 * N * r bytes (128 MiB at N=131072); Node's default limit is 32 MiB.
  return scryptSync(Buffer.from(passphrase, 'utf8'), kdf.salt, BOX_KEY_BYTES, {
    N,
    r,
    p,
    maxmem: 2 * 128 * N * r
  })
}

/**
 * Decrypt a cosign private key. Wrong passphrase, wrong format or a key type that cannot sign
 * a cosign signature throw SigningKeyError, naming the input at fault.
 */
export function readSigningKey(pem: string, passphrase: string): SigningKey {
  const { type, body } = readPem(pem)
  const encrypted = readEncrypted(body)
  const opened = nacl.secretbox.open(
    encrypted.ciphertext,
    encrypted.cipher.nonce,
    boxKey(passphrase, encrypted.kdf)
  )
  if (opened === null) {
    throw new SigningKeyError(
      passphrase === ''
        ? 'is empty, and the key does not decrypt without a passphrase: give the passphrase ' +
            'it was made with (COSIGN_PASSWORD)'
        : 'does not decrypt signing-key: it is not the passphrase the key was made with',
      'signing-passphrase'
    )
  }
  let privateKey: KeyObject
  try {
    privateKey = createPrivateKey({ key: Buffer.from(opened), format: 'der', type: 'pkcs8' })
  } catch {
    throw new SigningKeyError(
      'decrypts to something that is not a PKCS#8 private key',
      'signing-key'
    )
  }
  const curve = privateKey.asymmetricKeyDetails?.namedCurve
  if (privateKey.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
    const what =
      privateKey.asymmetricKeyType === 'ec'
        ? `an EC key on curve ${String(curve)}`
        : `a ${String(privateKey.asymmetricKeyType)} key`
    throw new SigningKeyError(
      `is ${what}: only ECDSA P-256 keys, which cosign generate-key-pair makes, are supported`,
      'signing-key'
    )
  }
  return { privateKey, publicKey: createPublicKey(privateKey), pemType: type }
}
