// The SBOM's pure parts: names, hashes, Nix's JSON in its shapes, the document itself.
// (Cross-checked against the real Nix in __tests__/e2e/sbom.test.ts.)
import { describe, expect, test } from '@jest/globals'
import { JsonStrictValidator } from '@cyclonedx/cyclonedx-library/Validation'
import { buildBom, CYCLONEDX_SPEC, serializeBom } from '../../src/sbom/cyclonedx.js'
import { parseDrvName, storePathName } from '../../src/sbom/drv-name.js'
import { decodeNix32, narHashToHex } from '../../src/sbom/nar-hash.js'
import { parsePathInfo } from '../../src/sbom/path-info.js'
import type { PathInfo } from '../../src/sbom/path-info.js'
import { imageSubject } from '../../src/sbom/subject.js'

describe('parseDrvName: the version starts at the first - not followed by a letter', () => {
  test.each([
    ['hello-2.12.1', 'hello', '2.12.1'],
    ['hello', 'hello', ''],
    ['glibc-2.38-lib', 'glibc', '2.38-lib'],
    ['foo--bar', 'foo', '-bar'],
    ['foo-', 'foo-', ''],
    ['x-.5', 'x', '.5'],
    ['python3.11-requests-2.31.0', 'python3.11-requests', '2.31.0'],
    ['Foo-Bar', 'Foo-Bar', ''],
    ['a-é1', 'a', 'é1']
  ])('%s', (full, name, version) => {
    expect(parseDrvName(full)).toEqual({ name, version })
  })

  test('storePathName drops the store directory and the hash', () => {
    expect(storePathName('/nix/store/s01naakffk4r9bc776i8mlbhzh80cvhk-hello-2.12')).toBe(
      'hello-2.12'
    )
  })
})

// One hash in Nix's encodings (from `nix hash to-base16/to-base32/to-sri` of Nix 2.8).
const HEX = '76cc9caf812d6b9d0d3303ffff68b4a85a2e136417b0703f301ec6e758386ea8'
const NIX32 = '1a3f71cfgihy60zp1c0pch9jwnm8nilgzzq36c6rssrdh6prrk3n'
const SRI = 'sha256-dsycr4Eta50NMwP//2i0qFouE2QXsHA/MB7G51g4bqg='

describe('narHashToHex', () => {
  test.each<[string, unknown]>([
    ['SRI (Nix 2.4 to 2.32)', SRI],
    ['sha256:nix32 (Nix 2.3)', `sha256:${NIX32}`],
    ['sha256:hex', `sha256:${HEX}`],
    ['structured, base64', { algorithm: 'sha256', format: 'base64', hash: SRI.slice(7) }],
    ['structured, base16', { algorithm: 'sha256', format: 'base16', hash: HEX }],
    ['structured, nix32', { algorithm: 'sha256', format: 'nix32', hash: NIX32 }]
  ])('%s', (_, narHash) => {
    expect(narHashToHex(narHash)).toBe(HEX)
  })

  test.each<[string, unknown]>([
    ['another algorithm', 'sha512-abc'],
    ['a short hash', 'sha256-abc='],
    ['a character outside nix32', `sha256:${NIX32.slice(0, 51)}e`],
    ['nothing', null]
  ])('refuses %s', (_, narHash) => {
    expect(() => narHashToHex(narHash)).toThrow()
  })

  test('nix32 puts the lowest bits in the last character', () => {
    const one = Buffer.alloc(32)
    one[0] = 1
    expect(decodeNix32(`${'0'.repeat(51)}1`, 32)).toEqual(one)
  })
})

const A = '/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-app-1.0'
const B = '/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-lib-2.1'
const C = '/nix/store/cccccccccccccccccccccccccccccccc-source'
const DRV = '/nix/store/dddddddddddddddddddddddddddddddd-app-1.0.drv'

describe('parsePathInfo reads every shape of nix path-info --json', () => {
  const expected = new Map<string, PathInfo>([
    [A, { narHashHex: HEX, references: [A, B], deriver: DRV }],
    [B, { narHashHex: HEX, references: [], deriver: null }]
  ])

  test('an array with full paths, an invalid path as valid: false (Nix 2.8)', () => {
    const json = JSON.stringify([
      { path: A, narHash: SRI, narSize: 1, references: [A, B], deriver: DRV },
      { path: B, narHash: SRI, narSize: 1, references: [] },
      { path: C, valid: false }
    ])
    expect(parsePathInfo(json)).toEqual(expected)
  })

  test('an object keyed by path, an invalid path as null (Nix 2.19 on)', () => {
    const json = JSON.stringify({
      [A]: { narHash: SRI, references: [A, B], deriver: DRV },
      [B]: { narHash: SRI, references: [], deriver: null },
      [C]: null
    })
    expect(parsePathInfo(json)).toEqual(expected)
  })

  test('base names beside storeDir and structured hashes (format version 2)', () => {
    const base = (path: string): string => path.slice('/nix/store/'.length)
    const hash = { algorithm: 'sha256', format: 'base16', hash: HEX }
    const json = JSON.stringify({
      [base(A)]: {
        version: 2,
        storeDir: '/nix/store',
        narHash: hash,
        references: [base(A), base(B)],
        deriver: base(DRV)
      },
      [base(B)]: { version: 2, storeDir: '/nix/store', narHash: hash, references: [] }
    })
    expect(parsePathInfo(json)).toEqual(expected)
  })
})

describe('buildBom', () => {
  const infos = new Map<string, PathInfo>([
    [A, { narHashHex: HEX, references: [A, B], deriver: DRV }],
    [B, { narHashHex: HEX, references: [], deriver: null }]
  ])
  const image = {
    name: 'ghcr.io/o/app',
    version: `sha256:${HEX}`,
    bomRef: `ghcr.io/o/app@sha256:${HEX}`,
    storePath: '/nix/store/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee-app-image.tar.gz'
  }
  const json = (): Record<string, unknown> & {
    components: Record<string, unknown>[]
    dependencies: { ref: string; dependsOn?: string[] }[]
  } => JSON.parse(serializeBom(buildBom(image, [A, B, C], infos))) as never

  test('is valid CycloneDX 1.6', async () => {
    const validator = new JsonStrictValidator(CYCLONEDX_SPEC.version)
    expect(await validator.validate(serializeBom(buildBom(image, [A, B, C], infos)))).toBeNull()
  })

  test('one component per store path: name, version, NAR hash, deriver', () => {
    expect(json().components).toEqual([
      {
        type: 'library',
        name: 'app',
        version: '1.0',
        'bom-ref': A,
        hashes: [{ alg: 'SHA-256', content: HEX }],
        properties: [{ name: 'nix:deriver', value: DRV }]
      },
      {
        type: 'library',
        name: 'lib',
        version: '2.1',
        'bom-ref': B,
        hashes: [{ alg: 'SHA-256', content: HEX }]
      },
      // Not in the local store: listed, without a hash.
      { type: 'library', name: 'source', 'bom-ref': C }
    ])
  })

  test('dependencies: references within the image, and the image on its roots', () => {
    const dependsOn = Object.fromEntries(json().dependencies.map(d => [d.ref, d.dependsOn ?? []]))
    expect(dependsOn).toEqual({ [A]: [B], [B]: [], [C]: [], [image.bomRef]: [A, C] })
  })

  test('the image is the metadata component, a container', () => {
    expect((json().metadata as Record<string, unknown>).component).toEqual({
      type: 'container',
      name: 'ghcr.io/o/app',
      version: image.version,
      'bom-ref': image.bomRef,
      properties: [{ name: 'nix:store-path', value: image.storePath }]
    })
  })
})

describe('imageSubject', () => {
  test.each([
    [
      ['reg.example:5000/o/app:v1', 'reg.example:5000/o/app:latest'],
      null,
      'v1',
      'reg.example:5000/o/app:v1'
    ],
    [
      ['reg.example:5000/o/app:v1'],
      `sha256:${HEX}`,
      `sha256:${HEX}`,
      `reg.example:5000/o/app@sha256:${HEX}`
    ]
  ])('%j pushed as %s', (refs, digest, version, bomRef) => {
    expect(imageSubject(refs, digest, '/nix/store/x-image')).toEqual({
      name: 'reg.example:5000/o/app',
      version,
      bomRef,
      storePath: '/nix/store/x-image'
    })
  })
})
