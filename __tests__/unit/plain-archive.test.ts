import { describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { readFileSync } from 'node:fs'
import { readArchiveMetadata, readPlainArchiveMetadata } from '../../src/image/archive.js'
import { indexTar } from '../../src/image/plain-archive.js'

const config = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
const configDigest = `sha256:${createHash('sha256').update(config).digest('hex')}`
// Longer than the 100 characters a plain ustar name field holds.
const longDir = `layers/${'x'.repeat(120)}`

/** A docker archive layout in a directory, tarred by the system's GNU tar in `format`. */
function archive(
  format: 'gnu' | 'pax' | 'ustar',
  options: { symlinkedConfig?: boolean } = {}
): string {
  const dir = mkdtempSync(join(tmpdir(), 'nca-plain-'))
  const root = join(dir, 'root')
  const layerDir = format === 'ustar' ? 'layer1' : longDir
  mkdirSync(join(root, layerDir), { recursive: true })
  writeFileSync(join(root, layerDir, 'layer.tar'), Buffer.alloc(5000, 7))
  if (options.symlinkedConfig) {
    writeFileSync(join(root, 'real-config.json'), config)
    symlinkSync('real-config.json', join(root, 'abc.json'))
  } else {
    writeFileSync(join(root, 'abc.json'), config)
  }
  const manifest = [
    { Config: 'abc.json', RepoTags: ['hello:v1'], Layers: [`${layerDir}/layer.tar`] }
  ]
  writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest))
  const path = join(dir, 'image.tar')
  execFileSync('tar', [`--format=${format}`, '-C', root, '-cf', path, '.'])
  return path
}

describe('readPlainArchiveMetadata reads by seeking what the stream reader reads', () => {
  test.each(['gnu', 'pax', 'ustar'] as const)('%s tar', async format => {
    const path = archive(format)
    const bySeeking = await readPlainArchiveMetadata(path)
    expect(bySeeking).toEqual({
      repoTags: ['hello:v1'],
      configDigest,
      layerCount: 1,
      platform: { os: 'linux', architecture: 'amd64' }
    })
    expect(await readArchiveMetadata(Readable.from([readFileSync(path)]))).toEqual(bySeeking)
  })

  test('a config that is a symbolic link inside the archive (as skopeo writes)', async () => {
    expect(
      (await readPlainArchiveMetadata(archive('gnu', { symlinkedConfig: true }))).configDigest
    ).toBe(configDigest)
  })

  test('long names (GNU and pax) are read whole', async () => {
    for (const format of ['gnu', 'pax'] as const) {
      const names = [...(await indexTar(archive(format))).keys()]
      expect(names).toContain(`${longDir}/layer.tar`)
    }
  })

  test('a file that is not a tar is refused', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'nca-plain-')), 'not.tar')
    writeFileSync(path, Buffer.alloc(2048, 65))
    await expect(readPlainArchiveMetadata(path)).rejects.toThrow('not a tar archive')
  })
})
