import { describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync
} from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { gunzipSync } from 'node:zlib'
import {
  archiveStream,
  layoutIndex,
  writeCompressedArchive,
  writeCompressedArchiveWithSkopeo
} from '../../src/image/compressed-archive.js'
import { skopeoCompressionArgs } from '../../src/image/layer-compression.js'
import type { LayerCompression } from '../../src/image/layer-compression.js'
import { imageStoreOf } from '../../src/stages/load.js'

const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** Layer contents: compressible text, bytes, an empty layer, and one a symlink names. */
const layers = [
  Buffer.from('line\n'.repeat(20_000)),
  Buffer.alloc(3000, 9),
  Buffer.alloc(0),
  Buffer.from('the last layer')
]

// skopeo checks the config's diff_ids against the layers.
const config = JSON.stringify({
  architecture: 'amd64',
  os: 'linux',
  rootfs: { type: 'layers', diff_ids: layers.map(layer => `sha256:${sha256(layer)}`) }
})

/** A plain docker archive as dockerTools writes one: a folder per layer, a link for a repeat. */
function plainArchive(): string {
  const dir = mkdtempSync(join(tmpdir(), 'nca-compressed-'))
  const root = join(dir, 'root')
  const names = layers.map((_, i) => `${i}/layer.tar`)
  layers.forEach((content, i) => {
    mkdirSync(join(root, String(i)), { recursive: true })
    if (i === 3) {
      writeFileSync(join(root, 'real-layer.tar'), content)
      symlinkSync('../real-layer.tar', join(root, '3', 'layer.tar'))
    } else {
      writeFileSync(join(root, names[i] as string), content)
    }
  })
  writeFileSync(join(root, 'config-abc.json'), config)
  const manifest = [{ Config: 'config-abc.json', RepoTags: ['hello:v1'], Layers: names }]
  writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest))
  const path = join(dir, 'image.tar')
  execFileSync('tar', ['-C', root, '-cf', path, '.'])
  return path
}

const GZIP: LayerCompression = { format: 'gzip', level: null }
const ZSTD: LayerCompression = { format: 'zstd', level: 5 }

/** What a written layout holds: its manifest, parsed, and each blob's bytes by digest. */
function readLayout(dir: string): {
  index: { manifests: { mediaType: string; digest: string; size: number }[] }
  manifest: {
    mediaType: string
    config: { mediaType: string; digest: string; size: number }
    layers: { mediaType: string; digest: string; size: number }[]
  }
  blob: (digest: string) => Buffer
} {
  const blob = (digest: string): Buffer =>
    readFileSync(join(dir, 'blobs', 'sha256', digest.replace('sha256:', '')))
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')) as ReturnType<
    typeof readLayout
  >['index']
  const manifest = JSON.parse(
    blob(index.manifests[0]?.digest ?? '').toString('utf8')
  ) as ReturnType<typeof readLayout>['manifest']
  return { index, manifest, blob }
}

describe('writeCompressedArchive', () => {
  test.each([
    [
      GZIP,
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.image.rootfs.diff.tar.gzip'
    ],
    [
      ZSTD,
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.oci.image.layer.v1.tar+zstd'
    ]
  ])(
    '%o: every layer compressed in order, the config kept, the manifest ours',
    async (compression, manifestType, layerType) => {
      const out = join(mkdtempSync(join(tmpdir(), 'nca-compressed-out-')), 'layout')
      const archive = await writeCompressedArchive(plainArchive(), out, compression)
      const { index, manifest, blob } = readLayout(out)
      expect(index.manifests).toEqual([
        { mediaType: manifestType, digest: archive.manifestDigest, size: expect.any(Number) }
      ])
      expect(`sha256:${sha256(blob(archive.manifestDigest))}`).toBe(archive.manifestDigest)
      expect(manifest.mediaType).toBe(manifestType)
      expect(blob(manifest.config.digest).toString('utf8')).toBe(config)
      expect(manifest.config.size).toBe(config.length)
      expect(manifest.layers.map(layer => layer.mediaType)).toEqual(layers.map(() => layerType))
      expect(archive.layerCount).toBe(layers.length)
      manifest.layers.forEach((layer, i) => {
        const compressed = blob(layer.digest)
        expect(compressed.length).toBe(layer.size)
        expect(`sha256:${sha256(compressed)}`).toBe(layer.digest)
        const plain =
          compression.format === 'gzip'
            ? gunzipSync(compressed)
            : execFileSync('zstd', ['-d', '-c'], { input: compressed })
        expect(sha256(plain)).toBe(sha256(layers[i] as Buffer))
      })
      // Text compresses: the first layer is far smaller than it was.
      expect(manifest.layers[0]?.size).toBeLessThan(10_000)
      // Nothing half-written is left among the blobs.
      expect(
        readdirSync(join(out, 'blobs', 'sha256')).filter(name => name.startsWith('.'))
      ).toEqual([])
    }
  )

  test('the same archive makes the same manifest digest (an unchanged image keeps it)', async () => {
    const plain = plainArchive()
    const base = mkdtempSync(join(tmpdir(), 'nca-compressed-twice-'))
    const first = await writeCompressedArchive(plain, join(base, 'a'), GZIP)
    const second = await writeCompressedArchive(plain, join(base, 'b'), GZIP)
    expect(second.manifestDigest).toBe(first.manifestDigest)
    const other = await writeCompressedArchive(plain, join(base, 'c'), { format: 'gzip', level: 1 })
    expect(other.manifestDigest).not.toBe(first.manifestDigest)
  })

  test('archiveStream is a tar of the layout, which tar lists in order', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nca-compressed-tar-')), 'layout')
    const archive = await writeCompressedArchive(plainArchive(), out, GZIP)
    expect(archive.files.slice(0, 2)).toEqual(['oci-layout', 'index.json'])
    const tarPath = join(out, '..', 'archive.tar')
    writeFileSync(tarPath, await buffer(archiveStream(archive)))
    const listed = execFileSync('tar', ['-tf', tarPath], { encoding: 'utf8' }).trim().split('\n')
    expect(listed).toEqual(archive.files)
  })

  test('an archive without manifest.json is refused with what is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nca-compressed-bad-'))
    writeFileSync(join(dir, 'x'), 'x')
    execFileSync('tar', ['-C', dir, '-cf', join(dir, 'bad.tar'), 'x'])
    await expect(
      writeCompressedArchive(join(dir, 'bad.tar'), join(dir, 'out'), GZIP)
    ).rejects.toThrow('the image archive has no manifest.json')
  })
})

test('writeCompressedArchiveWithSkopeo: the same layout, gzip layers from skopeo', async () => {
  const base = mkdtempSync(join(tmpdir(), 'nca-compressed-skopeo-'))
  const out = join(base, 'layout')
  const archive = await writeCompressedArchiveWithSkopeo(plainArchive(), out, GZIP, base)
  const { index, manifest, blob } = readLayout(out)
  expect(index.manifests).toEqual([
    {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      digest: archive.manifestDigest,
      size: blob(archive.manifestDigest).length
    }
  ])
  expect(`sha256:${sha256(blob(archive.manifestDigest))}`).toBe(archive.manifestDigest)
  expect(blob(manifest.config.digest).toString('utf8')).toBe(config)
  // dockerTools' repeated layer (a symlink in the archive) is one blob named twice.
  expect(manifest.layers).toHaveLength(layers.length)
  manifest.layers.forEach((layer, i) => {
    expect(layer.mediaType).toBe('application/vnd.docker.image.rootfs.diff.tar.gzip')
    expect(sha256(gunzipSync(blob(layer.digest)))).toBe(sha256(layers[i] as Buffer))
  })
  expect(readdirSync(base).sort()).toEqual(['layout'])
})

test('layoutIndex names no image', () => {
  const index = JSON.parse(
    layoutIndex(
      { digest: 'sha256:ab', size: 3 },
      'application/vnd.docker.distribution.manifest.v2+json'
    )
  ) as {
    manifests: Record<string, unknown>[]
  }
  expect(index.manifests).toEqual([
    {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      digest: 'sha256:ab',
      size: 3
    }
  ])
})

test.each<[LayerCompression, string[]]>([
  [GZIP, ['--dest-compress', '--dest-compress-format', 'gzip']],
  [
    { format: 'gzip', level: 9 },
    ['--dest-compress', '--dest-compress-format', 'gzip', '--dest-compress-level', '9']
  ],
  [
    ZSTD,
    [
      '--dest-compress',
      '--dest-compress-format',
      'zstd',
      '--dest-compress-level',
      '5',
      '--format',
      'oci'
    ]
  ]
])('skopeoCompressionArgs(%o)', (compression, args) => {
  expect(skopeoCompressionArgs(compression)).toEqual(args)
})

describe('imageStoreOf', () => {
  test.each([
    ['[["driver-type","io.containerd.snapshotter.v1"]]', 'containerd'],
    ['[["Backing Filesystem","extfs"],["Supports d_type","true"]]', 'classic'],
    ['null', 'classic']
  ])('%s is the %s store', (driverStatus, store) => {
    expect(imageStoreOf(driverStatus)).toBe(store)
  })
})
