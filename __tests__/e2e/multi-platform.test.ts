// Multi-platform images through the bundled action: `systems` (x86_64-linux and aarch64-linux,
// both built on this machine) and `merge`, each index read back over the registry's HTTP API.
import { describe, expect, test } from '@jest/globals'
import { existsSync, readFileSync } from 'node:fs'
import type { RunResult } from '../../scripts/run-action.mjs'
import { action, defaultMachine, inMachine, log, registry } from './action.js'
import { getJsonBlob, getRawManifest, putManifest } from './registry.js'

const multi = './__tests__/e2e/flakes/multi'
const example = './examples/hello'
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'
const BOTH = 'x86_64-linux, aarch64-linux'

function expectSuccess(result: RunResult): void {
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  expect(result.post?.exitCode).toBe(0)
}

interface IndexJson {
  mediaType: string
  manifests: { mediaType: string; digest: string; platform: { os: string; architecture: string } }[]
}

interface ImagesEntry {
  system: string
  platform: string
  digest: string
  'image-id': string
  sbom: string
}

/**
 * Read `name:tag` over the registry API: an OCI index of exactly `platforms`, each manifest
 * present in `name` with a config that says the same platform. Returns the index.
 */
async function expectIndex(
  name: string,
  tag: string,
  platforms: string[]
): Promise<{ digest: string; index: IndexJson }> {
  const got = await getRawManifest(registry(), name, tag)
  expect(got.status).toBe(200)
  expect(got.contentType).toBe(OCI_INDEX)
  const index = got.body as IndexJson
  expect(index.mediaType).toBe(OCI_INDEX)
  const found = index.manifests.map(m => `${m.platform.os}/${m.platform.architecture}`)
  expect(found).toEqual(platforms)
  for (const entry of index.manifests) {
    const manifest = await getRawManifest(registry(), name, entry.digest)
    expect(manifest.status).toBe(200)
    expect(manifest.digest).toBe(entry.digest)
    expect(manifest.contentType).toBe(entry.mediaType)
    const configDigest = (manifest.body as { config: { digest: string } }).config.digest
    const config = (await getJsonBlob(
      registry(),
      name,
      configDigest
    )) as IndexJson['manifests'][0]['platform']
    expect({ os: config.os, architecture: config.architecture }).toEqual(entry.platform)
  }
  return { digest: got.digest as string, index }
}

/** The index's entries as the `images` output should list them. */
function expectImagesOutput(
  result: RunResult,
  index: IndexJson,
  systems: string[],
  built: boolean
): void {
  const images = JSON.parse(result.outputs.images ?? '[]') as ImagesEntry[]
  expect(images.map(image => image.system)).toEqual(systems)
  expect(images.map(image => image.platform)).toEqual(
    index.manifests.map(m => `${m.platform.os}/${m.platform.architecture}`)
  )
  expect(images.map(image => image.digest)).toEqual(index.manifests.map(m => m.digest))
  for (const image of images) {
    expect(image['image-id']).toMatch(/^sha256:[a-f0-9]{64}$/)
  }
  // Built images each get their SBOM (sbom: true by default), listed in `images` order.
  // A merge builds nothing, so it has no SBOM to name.
  const sboms = images.map(image => image.sbom)
  if (built) {
    expect(result.outputs.sbom?.split('\n')).toEqual(sboms)
    for (const path of sboms) expect(existsSync(path)).toBe(true)
    expect(new Set(sboms).size).toBe(images.length)
    // Each platform's SBOM names that platform's manifest digest, not the index's.
    for (const [i, path] of sboms.entries()) {
      const bom = JSON.parse(readFileSync(path, 'utf8')) as {
        metadata: { component: { version?: string } }
      }
      expect(bom.metadata.component.version).toBe(index.manifests[i]?.digest)
    }
  } else {
    expect(sboms).toEqual(images.map(() => ''))
  }
}

/** Push one platform the way a matrix job does: a single-system run. */
async function pushPlatform(system: string, image: string, tag: string, tool: string) {
  const result = await action({
    flake: example,
    system,
    registry: registry(),
    image,
    tags: tag,
    'push-tool': tool
  })
  expectSuccess(result)
  return result
}

describe('systems', () => {
  test('push-tool skopeo, load: false: one index of both images under every tag, no daemon', async () => {
    const result = await action(
      {
        flake: multi,
        systems: BOTH,
        registry: registry(),
        image: 'e2e/systems-skopeo',
        tags: 'v1, latest',
        'push-tool': 'skopeo',
        load: 'false'
      },
      { watch: ['docker', 'skopeo'] }
    )
    expectSuccess(result)
    expect(result.commands.filter(argv => argv[0] === 'docker')).toEqual([])
    const { digest, index } = await expectIndex('e2e/systems-skopeo', 'v1', [
      'linux/amd64',
      'linux/arm64'
    ])
    expect((await getRawManifest(registry(), 'e2e/systems-skopeo', 'latest')).digest).toBe(digest)
    expect(result.outputs.digest).toBe(digest)
    expect(result.outputs['image-ref']).toBe(`${registry()}/e2e/systems-skopeo@${digest}`)
    expectImagesOutput(result, index, ['x86_64-linux', 'aarch64-linux'], true)
    expect(result.outputs['store-path']?.split('\n')).toHaveLength(2)
    // Pushed by digest: no tag but the two asked for.
    const tags = await fetch(`http://${registry()}/v2/e2e/systems-skopeo/tags/list`)
    expect(((await tags.json()) as { tags: string[] }).tags.sort()).toEqual(['latest', 'v1'])
    // One summary row per platform.
    expect(result.summary).toContain('| x86_64-linux | linux/amd64 |')
    expect(result.summary).toContain('| aarch64-linux | linux/arm64 |')
    expect(result.summary).toContain(`**Digest:** \`${digest}\``)
  })

  test('push-tool docker loads only the runner platform; a second run finds all up to date', async () => {
    const inputs = {
      flake: multi,
      systems: BOTH,
      registry: registry(),
      image: 'e2e/systems-docker',
      tags: 'v1'
    }
    const first = await action(inputs)
    expectSuccess(first)
    expect(first.main.stdout).toContain("Load aarch64-linux: skipped (not the runner's system")
    const images = JSON.parse(first.outputs.images ?? '[]') as ImagesEntry[]
    // The daemon holds the x86_64 image (this machine's), tagged as the ref.
    expect(first.outputs['image-id']).toBe(images[0]?.['image-id'])
    expect(first.outputs['loaded-image']).toBe('hello:latest')
    // On the containerd store, which could hold both platforms under one name, the name is
    // the runner's platform's image, and a correct run warns about nothing.
    const loaded = inMachine(defaultMachine(), [
      'docker',
      'image',
      'inspect',
      '--format',
      '{{.Os}}/{{.Architecture}}',
      'hello:latest'
    ])
    expect(loaded.trim()).toBe('linux/amd64')
    expect(first.main.stdout).not.toContain('::warning::')
    const { digest } = await expectIndex('e2e/systems-docker', 'v1', ['linux/amd64', 'linux/arm64'])
    expect(first.outputs.digest).toBe(digest)

    const again = await action(inputs, { watch: ['skopeo'] })
    expectSuccess(again)
    expect(again.outputs.digest).toBe(digest)
    const withoutSbom = (images: string | undefined) =>
      (JSON.parse(images ?? '[]') as ImagesEntry[]).map(image => ({ ...image, sbom: '' }))
    expect(withoutSbom(again.outputs.images)).toEqual(withoutSbom(first.outputs.images))
    // Only local conversions and queries: nothing copied to the registry.
    const pushes = again.commands.filter(
      argv => argv[1] === 'copy' && argv.some(arg => arg.startsWith('docker://'))
    )
    expect(pushes).toEqual([])
    expect(again.main.stdout).toContain(`${registry()}/e2e/systems-docker:v1: up to date`)
    expect(again.summary).toContain('2 platforms: 1 up to date')
  })

  test('an image whose config names another architecture fails, naming both', async () => {
    const result = await action({
      flake: multi,
      attribute: 'wrong-arch',
      systems: BOTH,
      registry: registry(),
      image: 'e2e/wrong-arch',
      tags: 'v1'
    })
    expect(result.main.exitCode).toBe(1)
    expect(result.main.stdout).toMatch(
      /::error::.*#wrong-arch \(\/nix\/store\/\S+\) was built for aarch64-linux, but its config says linux\/amd64 \(an image for aarch64-linux must say linux\/arm64\)/
    )
    expect((await getRawManifest(registry(), 'e2e/wrong-arch', 'v1')).status).toBe(404)
  })

  test('a foreign build without an emulator says what to set', async () => {
    // Where QEMU is registered for aarch64, the program would run: this machine has none.
    if (existsSync('/proc/sys/fs/binfmt_misc/qemu-aarch64')) return
    const result = await action({
      flake: multi,
      attribute: 'foreign',
      systems: BOTH,
      registry: registry(),
      image: 'e2e/foreign',
      tags: 'v1'
    })
    expect(result.main.exitCode).toBe(1)
    const stdout = result.main.stdout
    expect(stdout).toMatch(/::error::nix build .*#foreign failed\. Building for aarch64-linux/)
    expect(stdout).toContain('docker/setup-qemu-action')
    expect(stdout).toContain('"extra-platforms = aarch64-linux"')
    expect(stdout).toContain('"builders"')
    expect(stdout).toContain('Exec format error')
    expect((await getRawManifest(registry(), 'e2e/foreign', 'v1')).status).toBe(404)
  })
})

describe('merge', () => {
  test('two tags of one repository (pushed by docker and by skopeo) into one index', async () => {
    const amd64 = await pushPlatform('x86_64-linux', 'e2e/matrix', 'amd64', 'docker')
    const arm64 = await pushPlatform('aarch64-linux', 'e2e/matrix', 'arm64', 'skopeo')
    const result = await action(
      { image: `${registry()}/e2e/matrix`, merge: 'amd64\narm64', tags: 'v1' },
      { watch: ['nix', 'docker'] }
    )
    expectSuccess(result)
    // Builds nothing, needs no Nix (nor the daemon).
    expect(result.commands).toEqual([])
    const { digest, index } = await expectIndex('e2e/matrix', 'v1', ['linux/amd64', 'linux/arm64'])
    expect(index.manifests.map(m => m.digest)).toEqual([amd64.outputs.digest, arm64.outputs.digest])
    expect(result.outputs.digest).toBe(digest)
    expectImagesOutput(result, index, ['x86_64-linux', 'aarch64-linux'], false)
    expect(result.summary).toMatch(/\| Nix \| .* skipped \| merge: nothing to build \|/)
  })

  test('images from other repositories, by tag and by digest, are copied in first', async () => {
    const amd64 = await pushPlatform('x86_64-linux', 'e2e/from-a', 'x', 'skopeo')
    const arm64 = await pushPlatform('aarch64-linux', 'e2e/from-b', 'y', 'docker')
    const result = await action({
      registry: registry(),
      merge: `e2e/from-a:x, e2e/from-b@${arm64.outputs.digest}`,
      tags: `${registry()}/e2e/merged-other:v1`
    })
    expectSuccess(result)
    const { index } = await expectIndex('e2e/merged-other', 'v1', ['linux/amd64', 'linux/arm64'])
    expect(index.manifests.map(m => m.digest)).toEqual([amd64.outputs.digest, arm64.outputs.digest])
    expect(result.summary).toContain('e2e/merged-other copied')
  })

  test('a ref that already is an index gives its images, not its attestation entry', async () => {
    const amd64 = await pushPlatform('x86_64-linux', 'e2e/attested', 'amd64', 'skopeo')
    const arm64 = await pushPlatform('aarch64-linux', 'e2e/attested', 'arm64', 'skopeo')
    // As BuildKit pushes it: the image, and beside it an `unknown/unknown` attestation manifest
    // (any manifest of the repository stands in for one here).
    const described = async (digest: string) => {
      const response = await fetch(`http://${registry()}/v2/e2e/attested/manifests/${digest}`, {
        headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json' }
      })
      const mediaType = response.headers.get('content-type')
      return { mediaType, digest, size: Buffer.byteLength(await response.text()) }
    }
    const amd64Entry = await described(amd64.outputs.digest as string)
    const attestation = await described(arm64.outputs.digest as string)
    const buildkitIndex = JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { ...amd64Entry, platform: { architecture: 'amd64', os: 'linux' } },
        {
          ...attestation,
          platform: { architecture: 'unknown', os: 'unknown' },
          annotations: { 'vnd.docker.reference.type': 'attestation-manifest' }
        }
      ]
    })
    await putManifest(registry(), 'e2e/attested', 'buildkit', OCI_INDEX, buildkitIndex)
    const result = await action({
      image: `${registry()}/e2e/attested`,
      merge: 'buildkit, arm64',
      tags: 'v1'
    })
    expectSuccess(result)
    const { index } = await expectIndex('e2e/attested', 'v1', ['linux/amd64', 'linux/arm64'])
    expect(index.manifests.map(m => m.digest)).toEqual([amd64.outputs.digest, arm64.outputs.digest])
  })

  test('two images of one platform fail, naming both, and push nothing', async () => {
    await pushPlatform('x86_64-linux', 'e2e/twice', 'a', 'docker')
    await pushPlatform('x86_64-linux', 'e2e/twice', 'b', 'skopeo')
    const result = await action({ image: `${registry()}/e2e/twice`, merge: 'a, b', tags: 'v1' })
    expect(result.main.exitCode).toBe(1)
    expect(result.main.stdout).toContain(
      `::error::${registry()}/e2e/twice:a and ${registry()}/e2e/twice:b are both linux/amd64`
    )
    expect((await getRawManifest(registry(), 'e2e/twice', 'v1')).status).toBe(404)
  })
})
