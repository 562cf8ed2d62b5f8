import { describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buffer } from 'node:stream/consumers'
import { gunzipSync } from 'node:zlib'
import {
  archiveStream,
  compressedLayerNames,
  compressedManifest,
  writeCompressedArchive
} from '../../src/image/compressed-archive.js'
import { imageStoreOf } from '../../src/stages/load.js'

const config = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex')

/** Layer contents: compressible text, bytes, an empty layer, and one a symlink names. */
const layers = [
  Buffer.from('line\n'.repeat(20_000)),
  Buffer.alloc(3000, 9),
  Buffer.alloc(0),
  Buffer.from('the last layer')
]

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

describe('writeCompressedArchive', () => {
  test('gzips every layer in order, keeps the config, and names no image', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nca-compressed-out-')), 'archive')
    const archive = await writeCompressedArchive(plainArchive(), out)
    const names = compressedLayerNames(layers.length)
    expect(archive.files).toEqual(['manifest.json', 'config.json', ...names])
    expect(readFileSync(join(out, 'config.json'), 'utf8')).toBe(config)
    expect(JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'))).toEqual([
      { Config: 'config.json', RepoTags: null, Layers: names }
    ])
    names.forEach((name, i) => {
      const compressed = readFileSync(join(out, name))
      expect(compressed.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]))
      expect(sha256(gunzipSync(compressed))).toBe(sha256(layers[i] as Buffer))
    })
    // Text compresses: the first layer is far smaller than it was.
    expect(readFileSync(join(out, names[0] as string)).length).toBeLessThan(10_000)
  })

  test('the same archive makes the same blobs (an unchanged image keeps its digest)', async () => {
    const plain = plainArchive()
    const base = mkdtempSync(join(tmpdir(), 'nca-compressed-twice-'))
    const first = await writeCompressedArchive(plain, join(base, 'a'))
    const second = await writeCompressedArchive(plain, join(base, 'b'))
    for (const name of first.files) {
      expect(sha256(readFileSync(join(second.dir, name)))).toBe(
        sha256(readFileSync(join(first.dir, name)))
      )
    }
  })

  test('archiveStream is a tar of the files, which tar lists in order', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'nca-compressed-tar-')), 'archive')
    const archive = await writeCompressedArchive(plainArchive(), out)
    const tarPath = join(out, '..', 'archive.tar')
    writeFileSync(tarPath, await buffer(archiveStream(archive)))
    const listed = execFileSync('tar', ['-tf', tarPath], { encoding: 'utf8' }).trim().split('\n')
    expect(listed).toEqual(archive.files)
  })

  test('an archive without manifest.json is refused with what is missing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nca-compressed-bad-'))
    writeFileSync(join(dir, 'x'), 'x')
    execFileSync('tar', ['-C', dir, '-cf', join(dir, 'bad.tar'), 'x'])
    await expect(writeCompressedArchive(join(dir, 'bad.tar'), join(dir, 'out'))).rejects.toThrow(
      'the image archive has no manifest.json'
    )
  })
})

test('compressedManifest names no image', () => {
  expect(JSON.parse(compressedManifest(['a.tar.gz']))).toEqual([
    { Config: 'config.json', RepoTags: null, Layers: ['a.tar.gz'] }
  ])
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
