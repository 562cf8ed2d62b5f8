// Image signing's pure parts: reading cosign keys, the simple-signing payload, the `.sig`
// manifest, and how the inputs take the key.
import { describe, expect, test } from '@jest/globals'
import { generateKeyPairSync, verify } from 'node:crypto'
import {
  COSIGN,
  COSIGN_WRITTEN_KEYS,
  COSIGN_WRITTEN_PASSPHRASE,
  makeCosignKey,
  pemBlock,
  SIGSTORE
} from '../../__fixtures__/cosign-key.js'
import { parseInputs } from '../../src/inputs.js'
import { readSigningKey, SigningKeyError } from '../../src/signing/cosign-key.js'
import {
  alreadySigned,
  existingLayers,
  OCI_CONFIG_MEDIA_TYPE,
  OCI_MANIFEST_MEDIA_TYPE,
  SIGNATURE_ANNOTATION,
  signatureImage,
  signaturePayload,
  signatureRef,
  signatureTag,
  signPayload,
  SIMPLE_SIGNING_MEDIA_TYPE,
  verifyPayload
} from '../../src/signing/simple-signing.js'
import { sha256Digest } from '../../src/image/plain-archive.js'
import { distinctTargets } from '../../src/stages/sign.js'

const DIGEST = `sha256:${'ab'.repeat(32)}`
const OTHER_DIGEST = `sha256:${'cd'.repeat(32)}`
const REPO = 'ghcr.io/owner/app'

// One key of each PEM type, made once (scrypt takes a tenth of a second each).
const keys = {
  sigstore: makeCosignKey('correct horse'),
  cosign: makeCosignKey('correct horse', { pemType: COSIGN })
}

describe('readSigningKey', () => {
  test.each([
    ['ENCRYPTED SIGSTORE PRIVATE KEY', keys.sigstore],
    ['ENCRYPTED COSIGN PRIVATE KEY', keys.cosign]
  ])('%s: decrypts to the key it was made from', (pemType, made) => {
    const key = readSigningKey(made.pem, 'correct horse')
    expect(key.pemType).toBe(pemType)
    expect(key.publicKey.export({ type: 'spki', format: 'pem' })).toBe(made.publicPem)
    const payload = Buffer.from('payload')
    expect(
      verify(
        'sha256',
        payload,
        made.publicKey,
        Buffer.from(signPayload(payload, key.privateKey), 'base64')
      )
    ).toBe(true)
  })

  test.each([65536, 131072])('scrypt N=%d (go-securesystemslib standard, OWASP)', N => {
    const made = makeCosignKey('pw', { N })
    expect(readSigningKey(made.pem, 'pw').publicKey.equals(made.publicKey)).toBe(true)
  })

  test('an empty passphrase, as cosign allows', () => {
    const made = makeCosignKey('')
    expect(readSigningKey(made.pem, '').publicKey.equals(made.publicKey)).toBe(true)
  })

  test('CRLF line ends and surrounding text are fine', () => {
    const pem = `\r\n${keys.sigstore.pem.replace(/\n/g, '\r\n')}\r\n`
    expect(readSigningKey(pem, 'correct horse').publicKey.equals(keys.sigstore.publicKey)).toBe(
      true
    )
  })

  test('keys written by cosign itself: each read as cosign reads it', () => {
    for (const [pem, type] of [
      [COSIGN_WRITTEN_KEYS.sigstore, SIGSTORE],
      [COSIGN_WRITTEN_KEYS.cosign, COSIGN]
    ]) {
      const key = readSigningKey(pem as string, COSIGN_WRITTEN_PASSPHRASE)
      expect(key.pemType).toBe(type)
      expect(key.privateKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1')
    }
    // cosign's own test expects this one refused too (x509.ParsePKCS8PrivateKey fails: SEC1).
    expect(() => readSigningKey(COSIGN_WRITTEN_KEYS.cosignEc, COSIGN_WRITTEN_PASSPHRASE)).toThrow(
      'decrypts to something that is not a PKCS#8 private key'
    )
    expect(() => readSigningKey(COSIGN_WRITTEN_KEYS.sigstore, 'hello!')).toThrow(
      'not the passphrase the key was made with'
    )
  })

  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey
  const ed25519 = generateKeyPairSync('ed25519').privateKey
  const json = (text: string): Buffer => Buffer.from(text)
  test.each<[string, string, string, 'signing-key' | 'signing-passphrase']>([
    ['wrong passphrase', keys.sigstore.pem, 'not the passphrase', 'signing-passphrase'],
    ['not PEM', 'just a secret', 'is not a PEM private key', 'signing-key'],
    [
      'a plain PKCS#8 PEM',
      pemBlock('PRIVATE KEY', json('x')),
      'is a PEM block of type "PRIVATE KEY", not a cosign key',
      'signing-key'
    ],
    [
      'a body that is not JSON',
      pemBlock(SIGSTORE, json('{"kdf": nope')),
      'is not an encrypted cosign key',
      'signing-key'
    ],
    [
      'another kdf',
      makeCosignKey('pw', { tamper: j => ((j.kdf as { name: string }).name = 'pbkdf2') }).pem,
      'is encrypted with kdf "pbkdf2" and cipher "nacl/secretbox"',
      'signing-key'
    ],
    [
      'scrypt parameters cosign never writes (a way to burn memory)',
      makeCosignKey('pw', {
        tamper: j => ((j.kdf as { params: { N: number } }).params.N = 1 << 22)
      }).pem,
      'has scrypt parameters N=4194304, r=8, p=1, which cosign never writes',
      'signing-key'
    ],
    [
      'a nonce of the wrong size',
      makeCosignKey('pw', { tamper: j => ((j.cipher as { nonce: string }).nonce = 'AAAA') }).pem,
      'is not an encrypted cosign key',
      'signing-key'
    ],
    [
      'a P-384 key',
      makeCosignKey('pw', { privateKey: p384 }).pem,
      'is an EC key on curve secp384r1: only ECDSA P-256 keys',
      'signing-key'
    ],
    [
      'an ed25519 key',
      makeCosignKey('pw', { privateKey: ed25519 }).pem,
      'is a ed25519 key: only ECDSA P-256 keys',
      'signing-key'
    ]
  ])('%s is refused, naming the input at fault', (_what, pem, message, input) => {
    const passphrase = input === 'signing-passphrase' ? 'wrong' : 'pw'
    let error: unknown
    try {
      readSigningKey(pem, passphrase)
    } catch (caught) {
      error = caught
    }
    expect(error).toBeInstanceOf(SigningKeyError)
    expect((error as SigningKeyError).message).toContain(message)
    expect((error as SigningKeyError).input).toBe(input)
  })

  test('an empty passphrase that does not open the key says to give one', () => {
    expect(() => readSigningKey(keys.sigstore.pem, '')).toThrow(
      'is empty, and the key does not decrypt without a passphrase'
    )
  })
})

describe('parseInputs: signing-key and signing-passphrase', () => {
  const reader =
    (values: Record<string, string>) =>
    (name: string): string =>
      values[name] ?? ''
  const base = { registry: '127.0.0.1:5000' }

  test('no key: no signing', () => {
    expect(parseInputs(reader(base)).signingKey).toBeNull()
  })

  test('a key and its passphrase: decrypted once, when the inputs are read', () => {
    const inputs = parseInputs(
      reader({ ...base, 'signing-key': keys.cosign.pem, 'signing-passphrase': 'correct horse' })
    )
    expect(inputs.signingKey?.publicKey.equals(keys.cosign.publicKey)).toBe(true)
  })

  test('the passphrase is taken as given, spaces included', () => {
    const made = makeCosignKey(' spaced ')
    const inputs = parseInputs(
      reader({ ...base, 'signing-key': made.pem, 'signing-passphrase': ' spaced ' })
    )
    expect(inputs.signingKey).not.toBeNull()
  })

  test.each<[string, Record<string, string>, string]>([
    [
      'a wrong passphrase',
      { 'signing-key': keys.sigstore.pem, 'signing-passphrase': 'not it' },
      'Input "signing-passphrase": does not decrypt signing-key: it is not the passphrase'
    ],
    [
      'a key that is no PEM',
      { 'signing-key': 'hunter2-secret' },
      'Input "signing-key": is not a PEM private key'
    ],
    [
      'a passphrase without a key',
      { 'signing-passphrase': 'correct horse' },
      'Input "signing-passphrase": is set but "signing-key" is empty'
    ]
  ])('%s fails, naming the input and never the value', (_what, values, message) => {
    let thrown = ''
    try {
      parseInputs(reader({ ...base, ...values }))
    } catch (error) {
      thrown = (error as Error).message
    }
    expect(thrown).toContain(message)
    for (const value of Object.values(values)) {
      expect(thrown).not.toContain(value)
      for (const line of value.split('\n').filter(l => l.length > 8 && !l.startsWith('-----'))) {
        expect(thrown).not.toContain(line)
      }
    }
  })

  test('other bad input is reported before the key is decrypted', () => {
    expect(() =>
      parseInputs(reader({ ...base, 'signing-key': 'not a key', retries: 'x' }))
    ).toThrow('Input "retries"')
  })
})

describe('simple signing', () => {
  test('the payload is the exact bytes cosign writes for a digest', () => {
    expect(signaturePayload(REPO, DIGEST).toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"${REPO}"},` +
        `"image":{"docker-manifest-digest":"${DIGEST}"},` +
        '"type":"cosign container image signature"},"optional":null}'
    )
  })

  test.each([
    [DIGEST, `sha256-${'ab'.repeat(32)}.sig`],
    [OTHER_DIGEST, `sha256-${'cd'.repeat(32)}.sig`]
  ])('%s is signed under the tag %s', (digest, tag) => {
    expect(signatureTag(digest)).toBe(tag)
    expect(signatureRef(REPO, digest)).toBe(`${REPO}:${tag}`)
  })

  test.each(['sha256:abc', 'sha512:' + 'a'.repeat(128), 'latest', `sha256:${'A'.repeat(64)}`])(
    '%s is not a digest to sign',
    digest => {
      expect(() => signatureTag(digest)).toThrow('is not a sha256: digest')
      expect(() => signaturePayload(REPO, digest)).toThrow('is not a sha256: digest')
    }
  )

  const key = readSigningKey(keys.sigstore.pem, 'correct horse')
  const payload = signaturePayload(REPO, DIGEST)

  test('ECDSA over the payload, base64 DER: verifies with the public key, only over that payload', () => {
    const signature = signPayload(payload, key.privateKey)
    expect(signature).toMatch(/^[A-Za-z0-9+/]+={0,2}$/)
    expect(verifyPayload(payload, signature, keys.sigstore.publicKey)).toBe(true)
    expect(verifyPayload(signaturePayload(REPO, OTHER_DIGEST), signature, key.publicKey)).toBe(
      false
    )
    expect(verifyPayload(payload, signature, keys.cosign.publicKey)).toBe(false)
    expect(verifyPayload(payload, 'not base64!', key.publicKey)).toBe(false)
  })

  test('a new .sig manifest: OCI, one simple-signing layer with the annotation, the config containers/image writes', () => {
    const signature = signPayload(payload, key.privateKey)
    const image = signatureImage([], payload, signature)
    const manifest = JSON.parse(image.manifest.toString()) as unknown
    expect(manifest).toEqual({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST_MEDIA_TYPE,
      config: {
        mediaType: OCI_CONFIG_MEDIA_TYPE,
        digest: image.configDigest,
        size: image.config.length
      },
      layers: [
        {
          mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
          digest: sha256Digest(payload),
          size: payload.length,
          annotations: { [SIGNATURE_ANNOTATION]: signature }
        }
      ]
    })
    expect(image.config.toString()).toBe(
      `{"architecture":"","os":"","config":{},"rootfs":{"type":"layers","diff_ids":["${sha256Digest(payload)}"]}}`
    )
    expect(image.manifestDigest).toBe(sha256Digest(image.manifest))
    expect(image.configDigest).toBe(sha256Digest(image.config))
    expect(image.blobs.map(blob => blob.digest)).toEqual([
      image.configDigest,
      sha256Digest(payload)
    ])
  })

  test('an existing .sig keeps its layers (other keys, other payloads) and gets ours appended', () => {
    const other = signatureImage(
      [],
      signaturePayload(`${REPO}:v1`, DIGEST),
      signPayload(signaturePayload(`${REPO}:v1`, DIGEST), key.privateKey)
    )
    const before = existingLayers(other.manifest.toString())
    expect(alreadySigned(before, payload, key.publicKey)).toBe(false)
    const image = signatureImage(before, payload, signPayload(payload, key.privateKey))
    expect(image.layers).toHaveLength(2)
    expect(image.layers[0]).toEqual(before[0])
    const config = JSON.parse(image.config.toString()) as { rootfs: { diff_ids: string[] } }
    expect(config.rootfs.diff_ids).toEqual(image.layers.map(layer => layer.digest))
    // Only the new payload and the config are pushed: the old layer is in the registry.
    expect(image.blobs.map(blob => blob.digest)).not.toContain(before[0]?.digest)
  })

  test.each<[string, (layers: ReturnType<typeof existingLayers>) => void, boolean]>([
    ['the same payload, signed by this key', () => undefined, true],
    [
      'signed by another key',
      layers => {
        const annotations = layers[0]?.annotations as Record<string, string>
        annotations[SIGNATURE_ANNOTATION] = signPayload(payload, keys.cosign.privateKey)
      },
      false
    ],
    ['another media type', layers => ((layers[0] as { mediaType: string }).mediaType = 'x'), false],
    [
      'no signature annotation',
      layers => delete (layers[0] as { annotations?: unknown }).annotations,
      false
    ],
    [
      'a signature that is not base64 DER',
      layers => {
        const annotations = layers[0]?.annotations as Record<string, string>
        annotations[SIGNATURE_ANNOTATION] = 'AAAA'
      },
      false
    ]
  ])('already signed? %s', (_what, change, expected) => {
    const image = signatureImage([], payload, signPayload(payload, key.privateKey))
    const layers = existingLayers(image.manifest.toString())
    change(layers)
    expect(alreadySigned(layers, payload, key.publicKey)).toBe(expected)
  })

  test.each([
    ['not JSON', '{', 'not JSON'],
    ['an index', '{"manifests":[],"layers":[]}', 'not a signature manifest'],
    ['no layers', '{"schemaVersion":2}', 'not a signature manifest']
  ])('a .sig tag holding %s is left alone', (_what, raw, message) => {
    expect(() => existingLayers(raw)).toThrow(message)
  })

  test('no .sig tag yet: no layers', () => {
    expect(existingLayers(null)).toEqual([])
  })
})

describe('distinctTargets', () => {
  test('each repository and digest once, in order', () => {
    const a = { repository: REPO, digest: DIGEST }
    const b = { repository: 'ghcr.io/owner/other', digest: DIGEST }
    const c = { repository: REPO, digest: OTHER_DIGEST }
    expect(distinctTargets([a, b, a, c, b])).toEqual([a, b, c])
  })
})
