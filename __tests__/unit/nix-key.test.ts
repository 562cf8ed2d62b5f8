// Store paths' Nix signatures: keys, the fingerprint, signing and checking. The expected
// signatures were made by Nix 2.8's `nix store sign --key-file` with the same key and paths
// (ed25519 is deterministic), so these compare against the real Nix.
import { describe, expect, test } from '@jest/globals'
import { generateKeyPairSync } from 'node:crypto'
import {
  encodeNix32,
  fingerprint,
  parseNixPublicKey,
  parseNixSecretKey,
  signPath,
  verifyPath
} from '../../src/signing/nix-key.js'
import { decodeNix32 } from '../../src/sbom/nar-hash.js'
import { parseInputs, readCacheSigningKey } from '../../src/inputs.js'
import { parseManifest } from '../../src/cache/manifest.js'
import { mergeSignatures } from '../../src/nix/db.js'
import {
  firstUntrustedPath,
  narinfo,
  signaturesOf,
  signRegistrations,
  untrustedPath
} from '../../src/cache/signatures.js'

// `nix key generate-secret --key-name test-1` and `nix key convert-secret-to-public`.
const SECRET =
  'test-1:il170qcP8MOlKs87KIrRIryJQIG1BIKxgaSDxhl/T5oVWa8dx0Gm9YwgZYf1Gl8GtvpUSymylbqPkMSjAUPsZg=='
const PUBLIC = 'test-1:FVmvHcdBpvWMIGWH9RpfBrb6VEspspW6j5DEowFD7GY='
const FILE = {
  path: '/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f',
  narHash: '1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13',
  narSize: 120,
  references: []
}
const APP = {
  path: '/nix/store/a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0-app',
  narHash: '1c37d01af40be2e80691de3cc3df44377a699afbb17c68f080964b2fd071fc13',
  narSize: 4242,
  references: [
    '/nix/store/a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0-app',
    '/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f'
  ]
}
// `nix path-info --sigs` after `nix store sign --key-file` (Nix 2.8.0).
const NIX_SIGNATURES: [string, typeof FILE | typeof APP, string][] = [
  [
    'no references',
    FILE,
    'test-1:C5UlEGoDgKWO8pfO9NL/lIXQnTK8YcpxkDK3zanogUAxiid9WYMXRfPaIjJg7zaVEYWwD35DobSESm2LyrlPCw=='
  ],
  [
    'itself and another path',
    APP,
    'test-1:/t51xj5TBjG3C4c4jF4/a8d9WdzAsoCMhIJkwfqKjrvpRQ6EQVoHYBy0+D5DxWXF19dxc9V0cKMU7n/xzaaSBQ=='
  ]
]

describe('Nix keys', () => {
  test('a secret key as nix key generate-secret prints it, and its public key', () => {
    const key = parseNixSecretKey(SECRET)
    expect(key.name).toBe('test-1')
    expect(key.publicKey).toBe(PUBLIC)
    expect(parseNixPublicKey(PUBLIC).name).toBe('test-1')
  })

  test.each([
    ['no name', SECRET.slice('test-1:'.length)],
    ['empty', ''],
    ['the public key', PUBLIC],
    ['not base64', 'test-1:!!!!'],
    ['a half that does not match', SECRET.slice(0, 30) + 'AAAA' + SECRET.slice(34)]
  ])('a bad secret key (%s) is refused without quoting it', (_, text) => {
    let message = ''
    try {
      parseNixSecretKey(text)
    } catch (error) {
      message = (error as Error).message
    }
    expect(message).toMatch(/is not a Nix secret key/)
    const data = text.split(':').pop() ?? ''
    if (data.length > 8) expect(message).not.toContain(data)
  })

  test.each([['x'], ['test-1:'], ['test-1:AAAA'], [SECRET], [':' + PUBLIC.split(':')[1]]])(
    'a bad public key %j is refused',
    text => {
      expect(() => parseNixPublicKey(text)).toThrow(/is not a Nix public key/)
    }
  )
})

describe('path signatures', () => {
  test('nix32 is the inverse of the SBOM reader and matches Nix', () => {
    const bytes = Buffer.from(FILE.narHash, 'hex')
    const text = encodeNix32(bytes)
    expect(text).toBe('04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw')
    expect(decodeNix32(text, 32).equals(bytes)).toBe(true)
  })

  test('the fingerprint', () => {
    expect(fingerprint(APP)).toBe(
      '1;/nix/store/a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0-app;sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw;4242;/nix/store/a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0-app,/nix/store/xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f'
    )
  })

  test.each(NIX_SIGNATURES)('the same signature as nix store sign: %s', (_, info, expected) => {
    expect(signPath(parseNixSecretKey(SECRET), info)).toBe(expected)
    expect(verifyPath(info, [expected], [parseNixPublicKey(PUBLIC)])).toBe(true)
  })

  test('verify refuses another key, another name, a changed hash or size, no signature', () => {
    const [, info, sig] = NIX_SIGNATURES[0] as [string, typeof FILE, string]
    const trusted = [parseNixPublicKey(PUBLIC)]
    const other = nixKey('test-1')
    expect(verifyPath(info, [signPath(other, info)], trusted)).toBe(false)
    expect(verifyPath(info, [sig.replace('test-1:', 'test-2:')], trusted)).toBe(false)
    expect(verifyPath({ ...info, narSize: 121 }, [sig], trusted)).toBe(false)
    expect(verifyPath({ ...info, narHash: '0'.repeat(64) }, [sig], trusted)).toBe(false)
    expect(verifyPath(info, [], trusted)).toBe(false)
    expect(verifyPath(info, ['garbage', sig], trusted)).toBe(true)
    expect(verifyPath(info, [sig], [parseNixPublicKey(other.publicKey)])).toBe(false)
  })
})

/** A fresh key in Nix's format. */
function nixKey(name: string) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const d = Buffer.from((privateKey.export({ format: 'jwk' }) as { d: string }).d, 'base64url')
  const x = Buffer.from((publicKey.export({ format: 'jwk' }) as { x: string }).x, 'base64url')
  return parseNixSecretKey(`${name}:${Buffer.concat([d, x]).toString('base64')}`)
}

describe('parseInputs: cache-signing-key and cache-trusted-keys', () => {
  const reader =
    (values: Record<string, string>) =>
    (name: string): string =>
      ({ registry: '127.0.0.1:5000', ...values })[name] ?? ''

  test('none: unsigned entries, any entry restored', () => {
    const inputs = parseInputs(reader({}))
    expect(inputs.cacheSigningKey).toBeNull()
    expect(inputs.cacheTrustedKeys).toEqual([])
  })

  test('a key and trusted keys, newline- or comma-separated', () => {
    const other = nixKey('other-1')
    const inputs = parseInputs(
      reader({
        'cache-signing-key': `  ${SECRET}\n`,
        'cache-trusted-keys': `${PUBLIC}\n${other.publicKey}, ${PUBLIC}`
      })
    )
    expect(inputs.cacheSigningKey?.publicKey).toBe(PUBLIC)
    expect(inputs.cacheTrustedKeys.map(k => k.name)).toEqual(['test-1', 'other-1', 'test-1'])
    expect(readCacheSigningKey(reader({ 'cache-signing-key': SECRET }))?.name).toBe('test-1')
    expect(readCacheSigningKey(reader({}))).toBeNull()
  })

  test('the post step reads the key from its INPUT_ variable and removes it', () => {
    process.env['INPUT_CACHE-SIGNING-KEY'] = SECRET
    expect(readCacheSigningKey()?.publicKey).toBe(PUBLIC)
    expect(process.env['INPUT_CACHE-SIGNING-KEY']).toBeUndefined()
  })

  test('a bad secret key fails naming the input, never the value', () => {
    const bad = SECRET.slice(0, -6) + 'AAAA=='
    let thrown = ''
    try {
      parseInputs(reader({ 'cache-signing-key': bad }))
    } catch (error) {
      thrown = (error as Error).message
    }
    expect(thrown).toMatch(/^Input "cache-signing-key": is not a Nix secret key/)
    expect(thrown).not.toContain(bad.slice(7, 30))
  })

  test.each([['test-1'], ['test-1:AAAA'], [SECRET]])(
    'a bad trusted key %j fails naming the input',
    value => {
      expect(() => parseInputs(reader({ 'cache-trusted-keys': value }))).toThrow(
        /^Input "cache-trusted-keys": .* is not a Nix public key/
      )
    }
  )
})

describe('signed entries', () => {
  const key = parseNixSecretKey(SECRET)
  const trusted = [parseNixPublicKey(PUBLIC)]
  const registrations = [
    { ...FILE, deriver: '' },
    { ...APP, deriver: '' }
  ]

  test('the manifest carries the signatures; one without them is unsigned', () => {
    const signatures = signRegistrations(key, registrations)
    const text = JSON.stringify({ version: 2, paths: [FILE.path, APP.path], signatures })
    const manifest = parseManifest(text)
    expect(signaturesOf(manifest.signatures, APP.path)).toEqual([NIX_SIGNATURES[1]?.[2] as string])
    const unsigned = parseManifest(JSON.stringify({ version: 2, paths: [FILE.path] }))
    expect(unsigned.signatures).toBeUndefined()
    expect(signaturesOf(unsigned.signatures, FILE.path)).toEqual([])
    expect(signaturesOf(manifest.signatures, 'constructor')).toEqual([])
    expect(() =>
      parseManifest(JSON.stringify({ version: 2, paths: [], signatures: { a: 'x' } }))
    ).toThrow('signatures that are not lists of strings')
  })

  test('untrustedPath names the path and the key', () => {
    const signatures = signRegistrations(key, registrations)
    const signed = registrations.map(r => ({ ...r, signatures: signatures[r.path] ?? [] }))
    expect(untrustedPath(signed, trusted)).toBeNull()
    const other = nixKey('other-1')
    const byOther = signed.map(r => ({ ...r, signatures: [signPath(other, r)] }))
    expect(untrustedPath(byOther, trusted)).toBe(
      `${FILE.path} is signed by key "other-1", not by a trusted key (trusted keys: test-1)`
    )
    const unsigned = [signed[0], { ...signed[1], signatures: [] }] as typeof signed
    expect(untrustedPath(unsigned, trusted)).toBe(
      `${APP.path} is not signed (trusted keys: test-1)`
    )
    // Content and hash changed consistently by someone without the key: the signature is stale.
    const changed = [{ ...signed[0], narHash: 'ab'.repeat(32) }] as typeof signed
    expect(untrustedPath(changed, trusted)).toMatch(
      /signed by key "test-1", whose signature does not verify/
    )
  })

  test('firstUntrustedPath (checked in the thread pool) says what untrustedPath says', async () => {
    const signatures = signRegistrations(key, registrations)
    const signed = registrations.map(r => ({ ...r, signatures: signatures[r.path] ?? [] }))
    const other = nixKey('other-1')
    const cases = [
      signed,
      signed.map(r => ({ ...r, signatures: [signPath(other, r)] })),
      [signed[0], { ...signed[1], signatures: [] }] as typeof signed,
      [{ ...signed[0], narHash: 'ab'.repeat(32) }] as typeof signed,
      // A bad signature before a good one does not hide the good one.
      signed.map(r => ({ ...r, signatures: ['test-1:AAAA', ...r.signatures] }))
    ]
    for (const entries of cases) {
      expect(await firstUntrustedPath(entries, trusted)).toBe(untrustedPath(entries, trusted))
    }
    expect(await firstUntrustedPath(cases[4] as typeof signed, trusted)).toBeNull()
    expect(await firstUntrustedPath(cases[3] as typeof signed, trusted)).not.toBeNull()
  })

  test("signatures added to the database's column: each once, the recorded ones first", () => {
    expect(mergeSignatures('', ['k-1:a'])).toBe('k-1:a')
    expect(mergeSignatures('k-0:z k-1:a', ['k-1:a', 'k-2:b'])).toBe('k-0:z k-1:a k-2:b')
  })

  test('the narinfo copy-sigs reads', () => {
    const sig = NIX_SIGNATURES[1]?.[2] as string
    expect(narinfo({ ...APP, deriver: '', signatures: [sig] })).toBe(
      [
        `StorePath: ${APP.path}`,
        'URL: nar/a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0-app.nar',
        'Compression: none',
        'NarHash: sha256:04zwf782yjwnh3q6hz5izfd6jyip8kgw6g6yj43fiqhbyhdd0dqw',
        'NarSize: 4242',
        'References: a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0-app xp0dpr9yz5h0fk5c5lpj7zzqjbdh3w8c-f',
        `Sig: ${sig}`,
        ''
      ].join('\n')
    )
  })
})
