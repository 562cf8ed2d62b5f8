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
