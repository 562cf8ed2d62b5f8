import { describe, expect, test } from '@jest/globals'
import { mkdtemp, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { classifyHeader, detectFormat } from '../../src/image/format.js'
import { parseManifest, readArchiveMetadata } from '../../src/image/archive.js'

/** A minimal tar archive (ustar headers), built by hand so the test needs no tar program. */
function tarOf(files: Record<string, string>): Buffer {
  const blocks: Buffer[] = []
  for (const [name, text] of Object.entries(files)) {
    const content = Buffer.from(text)
    const header = Buffer.alloc(512)
    header.write(name, 0)
    header.write('0000644\0', 100)
    header.write('0000000\0', 108)
    header.write('0000000\0', 116)
    header.write(content.length.toString(8).padStart(11, '0') + '\0', 124)
    header.write('00000000000\0', 136)
    header.write('        ', 148)
    header.write('0', 156)
    header.write('ustar\0', 257)
    header.write('00', 263)
    const sum = header.reduce((total, byte) => total + byte, 0)
    header.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
    blocks.push(header, content, Buffer.alloc((512 - (content.length % 512)) % 512))
  }
  blocks.push(Buffer.alloc(1024))
  return Buffer.concat(blocks)
}

const config = '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
const manifest = JSON.stringify([
  { Config: 'abc.json', RepoTags: ['hello:latest'], Layers: ['l1/layer.tar'] }
])

describe('classifyHeader', () => {
  const header = (bytes: number[], at = 0): Buffer => {
    const buffer = Buffer.alloc(512)
    Buffer.from(bytes).copy(buffer, at)
    return buffer
  }
  test.each<[string, Buffer, boolean, unknown]>([
    ['gzip', header([0x1f, 0x8b, 8]), false, { kind: 'docker-archive', compression: 'gzip' }],
    [
      'zstd',
      header([0x28, 0xb5, 0x2f, 0xfd]),
      false,
      { kind: 'docker-archive', compression: 'zstd' }
    ],
    [
      'tar',
      header([...Buffer.from('ustar')], 257),
      false,
      { kind: 'docker-archive', compression: 'none' }
    ],
    ['script, executable', header([...Buffer.from('#!/bin/sh\n')]), true, { kind: 'stream' }],
    ['ELF, executable', header([0x7f, 0x45, 0x4c, 0x46]), true, { kind: 'stream' }],
    ['script, not executable', header([...Buffer.from('#!/bin/sh\n')]), false, null],
    ['text', header([...Buffer.from('hello')]), false, null],
    ['JSON', header([...Buffer.from('{"layers":[]}')]), false, null]
  ])('%s', (_name, bytes, executable, expected) => {
    expect(classifyHeader(bytes, executable)).toEqual(expected)
  })
})

describe('detectFormat', () => {
  test('names the path and what it found for a file that is no image', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nca-format-'))
    const path = join(dir, 'notes.txt')
    await writeFile(path, 'just some text')
    await expect(detectFormat(path)).rejects.toThrow(`${path} is not a container image`)
  })

  test('a directory is refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nca-format-'))
    await expect(detectFormat(dir)).rejects.toThrow('is a directory')
  })

  test('an executable script is a stream', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nca-format-'))
    const path = join(dir, 'stream')
    await writeFile(path, '#!/bin/sh\necho\n')
    await chmod(path, 0o755)
    await expect(detectFormat(path)).resolves.toEqual({ kind: 'stream' })
  })
})

describe('parseManifest', () => {
  test.each([
    ['not json', 'not valid JSON'],
    ['[]', 'has no image'],
    ['[{"Config":"a.json"}]', 'has no image'],
    ['{"Config":"a.json","Layers":[]}', 'has no image']
  ])('%s is refused', (text, message) => {
    expect(() => parseManifest(text)).toThrow(message)
  })
})

describe('readArchiveMetadata', () => {
  test.each([
    ['plain tar', (b: Buffer) => b],
    ['gzip', (b: Buffer) => gzipSync(b)]
  ])('reads RepoTags and the config digest from a %s', async (_name, compress) => {
    const archive = compress(
      tarOf({ 'manifest.json': manifest, 'abc.json': config, 'l1/layer.tar': 'x' })
    )
    const metadata = await readArchiveMetadata(Readable.from([archive]))
    expect(metadata.repoTags).toEqual(['hello:latest'])
    expect(metadata.layerCount).toBe(1)
    expect(metadata.configDigest).toMatch(/^sha256:[a-f0-9]{64}$/)
  })

  test('config digest is the sha256 of the config file', async () => {
    const archive = tarOf({ 'abc.json': config, 'manifest.json': manifest })
    const metadata = await readArchiveMetadata(Readable.from([archive]))
    const { createHash } = await import('node:crypto')
    expect(metadata.configDigest).toBe(
      `sha256:${createHash('sha256').update(config).digest('hex')}`
    )
  })

  test('an archive without manifest.json is refused', async () => {
    await expect(
      readArchiveMetadata(Readable.from([tarOf({ 'abc.json': config })]))
    ).rejects.toThrow('has no manifest.json')
  })

  test('a manifest naming a missing config is refused', async () => {
    await expect(
      readArchiveMetadata(Readable.from([tarOf({ 'manifest.json': manifest })]))
    ).rejects.toThrow('has no config file abc.json')
  })
})
