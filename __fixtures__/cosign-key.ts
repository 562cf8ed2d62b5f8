// Cosign keys for the tests, made as `cosign generate-key-pair` makes them (there is no cosign
// here): an ECDSA P-256 key, PKCS#8 DER, encrypted with go-securesystemslib's `encrypted`
// format (scrypt, then NaCl secretbox), the JSON base64'd into a PEM block; the public key as
// cosign.pub (SPKI PEM). Written independently of src/signing/cosign-key.ts, which reads them.
import { createPublicKey, generateKeyPairSync, randomBytes, scryptSync } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import nacl from 'tweetnacl'

export const SIGSTORE = 'ENCRYPTED SIGSTORE PRIVATE KEY'
export const COSIGN = 'ENCRYPTED COSIGN PRIVATE KEY'

export interface TestKey {
  /** The private key file's text (cosign.key). */
  pem: string
  /** The public key file's text (cosign.pub). */
  publicPem: string
  publicKey: KeyObject
  privateKey: KeyObject
}

export interface KeyOptions {
  pemType?: string
  /** scrypt N; cosign's legacy 32768 unless given. */
  N?: number
  /** The private key to encrypt; a new P-256 key unless given. */
  privateKey?: KeyObject
  /** Replace the encrypted JSON's fields (to make broken keys). */
  tamper?: (json: Record<string, unknown>) => void
}

/** The encrypted JSON as Go marshals go-securesystemslib's `data` struct ([]byte as base64). */
export function encryptKeyJson(
  plaintext: Buffer,
  passphrase: string,
  N = 32768
): Record<string, unknown> {
  const salt = randomBytes(32)
  const nonce = randomBytes(24)
  const key = scryptSync(Buffer.from(passphrase, 'utf8'), salt, 32, {
    N,
    r: 8,
    p: 1,
    maxmem: 256 * N * 8
  })
  const box = nacl.secretbox(plaintext, nonce, key)
  return {
    kdf: { name: 'scrypt', params: { N, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: Buffer.from(box).toString('base64')
  }
}

export function pemBlock(type: string, body: Buffer): string {
  const lines = body.toString('base64').match(/.{1,64}/g) ?? []
  return `-----BEGIN ${type}-----\n${lines.join('\n')}\n-----END ${type}-----\n`
}

/** A new cosign key pair, its private key encrypted with `passphrase`. */
export function makeCosignKey(passphrase: string, options: KeyOptions = {}): TestKey {
  const privateKey =
    options.privateKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
  const der = privateKey.export({ type: 'pkcs8', format: 'der' })
  const json = encryptKeyJson(der, passphrase, options.N)
  options.tamper?.(json)
  const pem = pemBlock(options.pemType ?? SIGSTORE, Buffer.from(JSON.stringify(json)))
  const pub = createPublicKey(privateKey)
  return {
    pem,
    publicPem: pub.export({ type: 'spki', format: 'pem' }).toString(),
    publicKey: pub,
    privateKey
  }
}

/**
 * Keys written by cosign itself (sigstore/cosign, pkg/cosign/keys_test.go, Apache-2.0), all with
 * the passphrase `hello`: an independent check that the format is read as cosign writes it.
 */
export const COSIGN_WRITTEN_PASSPHRASE = 'hello'
export const COSIGN_WRITTEN_KEYS = {
  /** ENCRYPTED COSIGN PRIVATE KEY, scrypt N=65536, an EC key in SEC1 form (cosign refuses it) */
  cosignEc: `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjo2NTUzNiwiciI6
OCwicCI6MX0sInNhbHQiOiJHK3F5WTYrNzhNS0JzMXNGTGs1ajYwcS9kS3Z1czBW
VkhlSHZybC9POTF3PSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJRc2JGdG13WDRDK2ttV3ZCcVRaMEFGOUFYdk1jRmg1SCJ9LCJj
aXBoZXJ0ZXh0IjoiREM5T28zeldiYVQzSXYwdFVnWEdycjUxYW1samwwNlQ5MTNP
VkxPbWpuMWhnK2o2WXRUbWg3SGhZSlY1N2J5eGE0Q281bE9YYmRqbTJ3aklubEd1
Um5aZCt5OExnekpSNzFSeEhKVzgrWmRlcFJmYWJMTjdHbDgrSFZEcERVQ3NxQnRh
VngyblpGbFEwWUl1anZwbFphblNGaUVvdERLVGkxZ3VhUXIwUHNzYU01NXZxbTRY
WS9rPSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
`,
  /** ENCRYPTED SIGSTORE PRIVATE KEY, scrypt N=32768, ECDSA P-256 */
  sigstore: `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiI3T3VGd2VsbWZZNXVId2NoaURSc210anNwZ2ZlZjFG
Mk5lOGFDTjVLYVpZPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiJQNHk4OGhCb3ZTa09MbXN0bFVBaGJwdDJ0K2xTNUxQSCJ9LCJj
aXBoZXJ0ZXh0IjoiMnB1QzdyZldJOWh3bnJlQ2s4aUZDRlVwQlRrSzRJNlIvbFBF
cnBDekpXUGpJWXl4eGVIL1A2VW52cFJHdVhla1NNb3JMdGhLamdoQ1JlNy82NDVH
QWtoVm1LRC92eEF0S2EvbE1abENSQ3FlekJGUFd1dzNpeFRtZ2xhb2J1ZFVSbUVs
bmNGOGlZbzBTMVl6Y1ZOMVFwY2J2c0dNcUlYRzVlbmdteGp5dCtBcXlyZTF0Q0Y0
V01tU1BlaEljNlBqd2h1Q2xHaVpJUWRvTGc9PSJ9
-----END ENCRYPTED SIGSTORE PRIVATE KEY-----
`,
  /** ENCRYPTED COSIGN PRIVATE KEY, scrypt N=32768, ECDSA P-256 (named an RSA key there) */
  cosign: `-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----
eyJrZGYiOnsibmFtZSI6InNjcnlwdCIsInBhcmFtcyI6eyJOIjozMjc2OCwiciI6
OCwicCI6MX0sInNhbHQiOiJ4WWdoc09JTUxUWGNOT0RsclNIOUNKc1FlOVFnZmN1
cmUrMXlLdHh1TlkwPSJ9LCJjaXBoZXIiOnsibmFtZSI6Im5hY2wvc2VjcmV0Ym94
Iiwibm9uY2UiOiI0cS9PSlVmaXJkSUkrUjZ0ajZBMmcyQ0JqL25xdFNicCJ9LCJj
aXBoZXJ0ZXh0IjoiKzB4Q3NzcFN0WStBczdKanJpOWtsbHBWd2JhcUI4ZWJNdWto
eS9aVE1MSXRsL3B1YS9jWVJvbytLRGxMWWdmOW1kSjk4K1FnQW9oTktoYnJPMTcw
MHdBY1JTMjFDOE4zQUNJRUVZaWpOMllBNnMraGJSbkhjUnd4eGhDMDFtb2FvL0dO
Y1pmbEJheXZMV3pXblo4d2NDZ2ZpT1o1VXlRTEFJMHh0dnR6dEh3cTdDV1Vhd3V4
RlhlNDZzck9TUE9SNHN6bytabWErUGovSFE9PSJ9
-----END ENCRYPTED COSIGN PRIVATE KEY-----
`
}
