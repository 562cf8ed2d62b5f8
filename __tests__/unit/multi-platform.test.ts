// Pure parts of multi-platform images: platforms from configs and systems, the index JSON,
// reading indexes back, `systems`/`merge` inputs, merge refs, and the summary rows.
import { describe, expect, test } from '@jest/globals'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseInputs } from '../../src/inputs.js'
import {
  buildIndex,
  imageEntriesOf,
  OCI_INDEX,
  parseManifestKind,
  writeIndexLayout
} from '../../src/image/oci-index.js'
import type { IndexEntry } from '../../src/image/oci-index.js'
import {
  checkDistinctPlatforms,
  checkPlatformOfSystem,
  formatPlatform,
  platformOfConfig,
  runnerSystem,
  systemOfPlatform
} from '../../src/image/platform.js'
import { Report, renderSummary } from '../../src/report.js'
import { foreignSystemHint } from '../../src/stages/build.js'
import { resolveMergeRef } from '../../src/registry/refs.js'

const d = (c: string): string => `sha256:${c.repeat(64)}`

describe('platforms', () => {
  test.each([
    ['{"os":"linux","architecture":"amd64"}', 'linux/amd64'],
    ['{"os":"linux","architecture":"arm","variant":"v7","config":{}}', 'linux/arm/v7'],
    ['{"architecture":"arm64","os":"linux","variant":""}', 'linux/arm64']
  ])('platformOfConfig(%s) is %s', (config, expected) => {
    expect(formatPlatform(platformOfConfig(config))).toBe(expected)
  })

  test.each([
    ['{"os":"linux"}', 'names no platform'],
    ['{"architecture":"amd64"}', 'names no platform'],
    ['not json', 'not valid JSON']
  ])('platformOfConfig(%s) fails: %s', (config, message) => {
    expect(() => platformOfConfig(config)).toThrow(message)
  })

  test.each([
    ['x86_64-linux', { os: 'linux', architecture: 'amd64' }],
    ['aarch64-linux', { os: 'linux', architecture: 'arm64' }],
    ['aarch64-linux', { os: 'linux', architecture: 'arm64', variant: 'v8' }],
    ['armv7l-linux', { os: 'linux', architecture: 'arm', variant: 'v7' }],
    ['some-future-system', { os: 'linux', architecture: 'anything' }]
  ])('an image for %s may say %j', (system, platform) => {
    expect(() => checkPlatformOfSystem(system, platform, 'img')).not.toThrow()
  })

  test.each([
    ['aarch64-linux', { os: 'linux', architecture: 'amd64' }, 'linux/amd64', 'linux/arm64'],
    ['x86_64-linux', { os: 'linux', architecture: 'arm64' }, 'linux/arm64', 'linux/amd64'],
    ['armv7l-linux', { os: 'linux', architecture: 'arm', variant: 'v6' }, 'linux/arm/v6', 'v7'],
    ['x86_64-linux', { os: 'windows', architecture: 'amd64' }, 'windows/amd64', 'linux/amd64']
  ])('an image for %s saying %j fails naming both', (system, platform, says, must) => {
    const check = () => checkPlatformOfSystem(system, platform, 'img')
    expect(check).toThrow(`img was built for ${system}, but its config says ${says}`)
    expect(check).toThrow(must)
  })

  test('two images of one platform (arm64 with and without v8) fail naming both', () => {
    expect(() =>
      checkDistinctPlatforms([
        { name: 'a', platform: { os: 'linux', architecture: 'amd64' } },
        { name: 'b', platform: { os: 'linux', architecture: 'arm64' } },
        { name: 'c', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }
      ])
    ).toThrow('b and c are both linux/arm64/v8')
    expect(() =>
      checkDistinctPlatforms([
        { name: 'a', platform: { os: 'linux', architecture: 'arm', variant: 'v6' } },
        { name: 'b', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } }
      ])
    ).not.toThrow()
  })

  test('systems from platforms and from the runner', () => {
    expect(systemOfPlatform({ os: 'linux', architecture: 'arm64', variant: 'v8' })).toBe(
      'aarch64-linux'
    )
    expect(systemOfPlatform({ os: 'linux', architecture: 'mips' })).toBe('')
    expect(runnerSystem('x64')).toBe('x86_64-linux')
    expect(runnerSystem('arm64')).toBe('aarch64-linux')
    expect(runnerSystem('loong64')).toBeNull()
  })
})

const amd64: IndexEntry = {
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  digest: d('a'),
  size: 523,
  platform: { os: 'linux', architecture: 'amd64' }
}
const arm64: IndexEntry = {
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  digest: d('b'),
  size: 401,
  platform: { variant: 'v8', os: 'linux', architecture: 'arm64' }
}

describe('the index', () => {
  test('is an OCI index of the entries in order, its digest that of its bytes', () => {
    const index = buildIndex([amd64, arm64])
    const parsed = JSON.parse(index.bytes.toString('utf8')) as Record<string, unknown>
    expect(parsed).toEqual({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { ...amd64, platform: { architecture: 'amd64', os: 'linux' } },
        { ...arm64, platform: { architecture: 'arm64', os: 'linux', variant: 'v8' } }
      ]
    })
    expect(index.digest).toBe(`sha256:${createHash('sha256').update(index.bytes).digest('hex')}`)
  })

  test('the same images give the same bytes, whatever the key order of a platform', () => {
    const shuffled = { ...arm64, platform: { architecture: 'arm64', variant: 'v8', os: 'linux' } }
    expect(buildIndex([amd64, shuffled]).digest).toBe(buildIndex([amd64, arm64]).digest)
    expect(buildIndex([arm64, amd64]).digest).not.toBe(buildIndex([amd64, arm64]).digest)
  })

  test('its layout holds the index as the one image, for skopeo --multi-arch index-only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nca-index-'))
    const index = buildIndex([amd64])
    await writeIndexLayout(dir, index)
    const layoutIndex = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as {
      manifests: { mediaType: string; digest: string; size: number }[]
    }
    expect(layoutIndex.manifests).toEqual([
      { mediaType: OCI_INDEX, digest: index.digest, size: index.bytes.length }
    ])
    const blob = readFileSync(join(dir, 'blobs', 'sha256', index.digest.slice(7)))
    expect(blob.equals(index.bytes)).toBe(true)
    expect(JSON.parse(readFileSync(join(dir, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0'
    })
  })
})

describe('reading manifests back', () => {
  const attestation = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: d('c'),
    size: 566,
    platform: { os: 'unknown', architecture: 'unknown' },
    annotations: { 'vnd.docker.reference.type': 'attestation-manifest' }
  }

  test('an index gives its images without attestation entries', () => {
    const raw = JSON.stringify({ schemaVersion: 2, manifests: [amd64, attestation, arm64] })
    expect(imageEntriesOf(raw, 'r')).toEqual([amd64, arm64])
    expect(parseManifestKind(raw).kind).toBe('index')
  })

  test.each([
    [{ schemaVersion: 2, manifests: [attestation] }, 'r is an index without any platform image'],
    [{ schemaVersion: 2, manifests: [{ ...amd64, mediaType: OCI_INDEX }] }, 'r nests an index'],
    [{ schemaVersion: 2, manifests: [{ ...amd64, digest: undefined }] }, 'without digest'],
    [{ schemaVersion: 2, mediaType: amd64.mediaType, config: {} }, 'r is not an image index']
  ])('%j fails: %s', (manifest, message) => {
    expect(() => imageEntriesOf(JSON.stringify(manifest), 'r')).toThrow(message)
  })

  test('an image manifest is an image, an OCI one even without mediaType', () => {
    expect(parseManifestKind(JSON.stringify({ mediaType: amd64.mediaType, config: {} }))).toEqual({
      kind: 'image',
      mediaType: amd64.mediaType
    })
    expect(parseManifestKind(JSON.stringify({ schemaVersion: 2, config: {} }))).toEqual({
      kind: 'image',
      mediaType: 'application/vnd.oci.image.manifest.v1+json'
    })
  })
})

describe('systems and merge inputs', () => {
  const read =
    (values: Record<string, string>) =>
    (name: string): string =>
      values[name] ?? ''
  const base = { registry: '127.0.0.1:5000', image: 'e2e/app' }

  test('lists', () => {
    const inputs = parseInputs(
      read({ ...base, systems: 'x86_64-linux,\naarch64-linux', push: 'false' })
    )
    expect(inputs.systems).toEqual(['x86_64-linux', 'aarch64-linux'])
    expect(inputs.merge).toEqual([])
    const merging = parseInputs(
      read({ ...base, merge: `amd64\nghcr.io/o/app@${d('a')}`, tags: 'v1' })
    )
    expect(merging.merge).toEqual(['amd64', `ghcr.io/o/app@${d('a')}`])
  })

  test('systems need no docker load to push: every image goes by skopeo', () => {
    expect(() =>
      parseInputs(read({ ...base, systems: 'x86_64-linux', load: 'false' }))
    ).not.toThrow()
  })

  test.each<[Record<string, string>, string]>([
    [
      { systems: 'x86_64-linux, x86_64-linux' },
      'Input "systems": "x86_64-linux, x86_64-linux" lists x86_64-linux twice'
    ],
    [{ systems: 'linux' }, 'Input "systems": "linux" is not a Nix system'],
    [{ systems: 'x86_64-linux', system: 'aarch64-linux' }, 'cannot go with "system"'],
    [{ merge: 'a', systems: 'x86_64-linux' }, 'Input "merge": "a" cannot go with "systems"'],
    [{ merge: 'a;b' }, 'Input "merge": "a;b" is not a valid tag'],
    [{ merge: 'a', push: 'false' }, 'needs push: true'],
    [{ merge: 'a', image: '', tags: '' }, 'has nothing to push to'],
    [
      { merge: 'a', image: '', tags: '127.0.0.1:5000/x:v1' },
      'Input "merge": "a" is a tag, but "image" is not set'
    ],
    [
      { merge: 'o/app:a', registry: '', image: '127.0.0.1:5000/x' },
      'Input "merge": "o/app:a" names no registry'
    ]
  ])('%j fails: %s', (values, message) => {
    expect(() => parseInputs(read({ ...base, ...values }))).toThrow(message)
  })

  test.each([
    ['amd64', 'ghcr.io/o/App', null, 'ghcr.io/o/app:amd64'],
    ['o/app:x', null, 'ghcr.io', 'ghcr.io/o/app:x'],
    [`o/app@${d('a')}`, null, 'ghcr.io', `ghcr.io/o/app@${d('a')}`],
    ['quay.io/o/app:x', 'ghcr.io/o/app', 'ghcr.io', 'quay.io/o/app:x']
  ])('merge entry %s (image %s, registry %s) is %s', (entry, image, registry, ref) => {
    expect(resolveMergeRef(entry, image, registry)).toBe(ref)
  })
})

test('the foreign-system hint says what to set', () => {
  const hint = foreignSystemHint('aarch64-linux')
  expect(hint).toContain('"extra-platforms = aarch64-linux"')
  expect(hint).toContain('docker/setup-qemu-action')
  expect(hint).toContain('"builders"')
})

test('the summary has one row per platform', () => {
  const report = new Report()
  report.platforms = [
    { system: 'x86_64-linux', platform: 'linux/amd64', digest: d('a'), imageId: d('c') },
    { system: '', platform: 'linux/s390x', digest: '', imageId: d('e') }
  ]
  const markdown = renderSummary(report)
  expect(markdown).toContain(`| x86_64-linux | linux/amd64 | \`${d('a')}\` | \`${d('c')}\` |`)
  expect(markdown).toContain(`| - | linux/s390x | \`not pushed\` | \`${d('e')}\` |`)
  expect(renderSummary(new Report())).not.toContain('| System |')
})
