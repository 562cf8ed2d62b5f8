// The store paths of an archive's layers, read from the stream and by seeking: the same answer,
// whatever the tar flavour, and a clear error (not a failed load) for a layer that is no tar.
import { describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { readArchiveMetadata, readPlainArchiveMetadata } from '../../src/image/archive.js'
import { storePathOfEntry } from '../../src/image/layer-store-paths.js'

const HASH_A = 'a'.repeat(32)
const HASH_B = 'b'.repeat(32)
const HASH_C = 'c'.repeat(32)
const store = (hash: string, name: string): string => `/nix/store/${hash}-${name}`

describe('storePathOfEntry', () => {
  test.each([
    [`nix/store/${HASH_A}-hello-2.12/bin/hello`, store(HASH_A, 'hello-2.12')],
    [`./nix/store/${HASH_A}-hello-2.12/`, store(HASH_A, 'hello-2.12')],
    [`/nix/store/${HASH_A}-run.sh`, store(HASH_A, 'run.sh')],
    ['nix/store/', null],
    ['nix/store/.links/abc', null],
    [`nix/store/${'e'.repeat(32)}-x`, null], // e is not in Nix's base32
    [`app/nix/store/${HASH_A}-x`, null],
    ['etc/hostname', null]
  ])('%s', (entry, expected) => {
    expect(storePathOfEntry(entry)).toBe(expected)
  })
})

type Layer = { files: Record<string, string>; format?: string; gzip?: boolean } | 'not-a-tar'

/** A docker archive whose layers hold `files`; layer 'shared' is a symbolic link to layer 0. */
function archive(layers: Layer[], options: { linkLast?: boolean } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'nca-layers-'))
  const root = join(dir, 'root')
  const names: string[] = []
  layers.forEach((layer, index) => {
    const name = `layer${index}/layer.tar`
    mkdirSync(join(root, `layer${index}`), { recursive: true })
    names.push(name)
    if (layer === 'not-a-tar') {
      writeFileSync(join(root, name), 'this is not a tar '.repeat(100))
      return
    }
    const content = join(dir, `content${index}`)
    for (const [path, text] of Object.entries(layer.files)) {
      mkdirSync(join(content, path, '..'), { recursive: true })
      writeFileSync(join(content, path), text)
    }
    mkdirSync(content, { recursive: true })
    const args = [`--format=${layer.format ?? 'gnu'}`, '-C', content, '-cf', join(root, name), '.']
    execFileSync('tar', layer.gzip ? ['-z', ...args] : args)
  })
  if (options.linkLast) {
    mkdirSync(join(root, 'shared'))
    symlinkSync('../layer0/layer.tar', join(root, 'shared', 'layer.tar'))
    names.push('shared/layer.tar')
  }
  writeFileSync(join(root, 'config.json'), '{}')
  const manifest = [{ Config: 'config.json', RepoTags: ['t:1'], Layers: names }]
  writeFileSync(join(root, 'manifest.json'), JSON.stringify(manifest))
  const path = join(dir, 'image.tar')
  execFileSync('tar', ['-C', root, '-cf', path, '.'])
  return path
}

/** Paths in sorted order: which comes first depends on how tar walked the directory. */
function sorted(found: unknown): unknown {
  const { paths } = found as { paths?: string[] }
  return paths ? { paths: [...paths].sort() } : found
}

async function bothWays(path: string): Promise<unknown[]> {
  const seeking = await readPlainArchiveMetadata(path, { storePaths: true })
  const streaming = await readArchiveMetadata(Readable.from([readFileSync(path)]), {
    storePaths: true
  })
  return [seeking.storePaths, streaming.storePaths]
}

describe('the layers store paths, by seeking and from the stream', () => {
  const twoLayers: Layer[] = [
    {
      files: {
        [`nix/store/${HASH_A}-hello-2.12/bin/hello`]: 'x',
        [`nix/store/${HASH_B}-glibc-2.38/lib/libc.so`]: 'y',
        'app/run': 'z'
      }
    },
    // A long name (over 100 characters), and a path the first layer holds too.
    {
      format: 'pax',
      files: {
        [`nix/store/${HASH_C}-${'long'.repeat(30)}/f`]: 'x',
        [`nix/store/${HASH_A}-hello-2.12/share/doc`]: 'y'
      }
    }
  ]
  const expected = [
    store(HASH_A, 'hello-2.12'),
    store(HASH_B, 'glibc-2.38'),
    store(HASH_C, 'long'.repeat(30))
  ]

  test('each path once, from every layer', async () => {
    for (const found of await bothWays(archive(twoLayers))) {
      expect(sorted(found)).toEqual({ paths: expected })
    }
  })

  test('a layer that is a symbolic link to another', async () => {
    for (const found of await bothWays(archive([twoLayers[0]!], { linkLast: true }))) {
      expect(sorted(found)).toEqual({ paths: expected.slice(0, 2) })
    }
  })

  test('a layer with no store paths', async () => {
    const [seeking, streaming] = await bothWays(archive([{ files: { 'etc/x': 'x' } }]))
    expect(seeking).toEqual({ paths: [] })
    expect(streaming).toEqual({ paths: [] })
  })

  test('a gzip layer (read through, as it cannot be seeked)', async () => {
    const path = archive([{ files: { [`nix/store/${HASH_A}-z/f`]: 'x' }, gzip: true }])
    for (const found of await bothWays(path)) {
      expect(found).toEqual({ paths: [store(HASH_A, 'z')] })
    }
  })

  test('a layer that is no tar is an SBOM error, and the metadata is still read', async () => {
    const path = archive([twoLayers[0]!, 'not-a-tar'])
    const metadata = await readPlainArchiveMetadata(path, { storePaths: true })
    expect(metadata.layerCount).toBe(2)
    for (const found of await bothWays(path)) {
      expect(found).toEqual({
        error: expect.stringMatching(/^cannot list layer layer1\/layer.tar: /) as unknown
      })
    }
  })

  test('not asked, not read', async () => {
    const path = archive(twoLayers)
    expect((await readPlainArchiveMetadata(path)).storePaths).toBeUndefined()
  })
})
