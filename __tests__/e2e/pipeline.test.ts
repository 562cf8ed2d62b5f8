// The whole pipeline through the bundled action (dist/), as the runner runs it, against the
// real Nix, Docker daemon and registry started by global-setup.ts on 127.0.0.1.
import { describe, expect, test } from '@jest/globals'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import {
  action,
  defaultMachine,
  freshMachine,
  inMachine,
  log,
  registry,
  registryPushes
} from './action.js'
import { getManifest, splitRef } from './registry.js'

const example = './examples/hello'
const GZIP_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
const bad = './__tests__/e2e/flakes/bad'

const FORMATS: [attribute: string, format: string, layers: number][] = [
  ['container', 'docker-archive', 1],
  ['container-tar', 'docker-archive', 1],
  ['container-zstd', 'docker-archive', 1],
  ['container-layered', 'docker-archive', 3],
  ['container-stream', 'stream', 1],
  ['container-oci', 'oci-layout', 1]
]
const CASES = FORMATS.flatMap(([attribute, format, layers]) =>
  ['docker', 'skopeo'].map(tool => [attribute, format, layers, tool] as const)
)

describe.each(CASES)(
  'example %s (%s, %i layers) with push-tool %s',
  (attribute, format, layers, tool) => {
    test('is built, loaded, tagged twice and pushed', async () => {
      const image = `e2e/${attribute}-${tool}`
      const result = await action({
        flake: example,
        attribute,
        registry: registry(),
        image,
        tags: 'v1\nlatest',
        'push-tool': tool
      })
      expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
      expect(result.post?.exitCode).toBe(0)

      const { outputs } = result
      expect(outputs['image-format']).toBe(format)
      expect(outputs['store-path']).toMatch(/^\/nix\/store\/[a-z0-9]{32}-/)
      // An OCI layout names no repository: docker load reports only the image ID.
      expect(outputs['loaded-image']).toBe(format === 'oci-layout' ? '' : 'hello:latest')
      expect(outputs['nix-version']).toMatch(/^\d+\.\d+/)
      expect(outputs['nix-installed']).toBe('false')
      const refs = [`${registry()}/${image}:v1`, `${registry()}/${image}:latest`]
      expect(outputs.refs?.split('\n')).toEqual(refs)

      for (const ref of refs) {
        const { name, tag } = splitRef(ref)
        const manifest = await getManifest(registry(), name, tag)
        expect(manifest.status).toBe(200)
        expect(manifest.digest).toBe(outputs.digest)
        expect(manifest.configDigest).toBe(outputs['image-id'])
        expect(manifest.layerCount).toBe(layers)
        // Compressed whatever the daemon keeps (docker's containerd image store keeps them
        // as loaded).
        expect(manifest.layers.map(layer => layer.mediaType)).toEqual(
          Array<string>(layers).fill(GZIP_LAYER)
        )
      }
      // A correct run warns about nothing.
      expect(result.main.stdout).not.toContain('::warning::')
      expect(outputs.digest).toMatch(/^sha256:[a-f0-9]{64}$/)
      expect(outputs['image-ref']).toBe(`${registry()}/${image}@${outputs.digest}`)
      expect(result.summary).toContain(`**Digest:** \`${outputs.digest}\``)
      expect(existsSync(join(process.cwd(), 'result'))).toBe(false)
      // skopeo's plain copy of the archive lives in RUNNER_TEMP and is gone afterwards.
      const leftovers = readdirSync(join(result.tempDir, 'runner-temp')).filter(f =>
        f.endsWith('.tar')
      )
      expect(leftovers).toEqual([])
    })
  }
)

test('docker push on the containerd image store sends gzip layers, within 1.15x of skopeo', async () => {
  const store = inMachine(defaultMachine(), [
    'docker',
    'info',
    '--format',
    '{{.Driver}} {{json .DriverStatus}}'
  ])
  expect(store).toContain('io.containerd.snapshotter.v1')
  const pushed = async (tool: string): Promise<number> => {
    const image = `e2e/containerd-bytes-${tool}`
    const result = await action({
      flake: example,
      attribute: 'container-layered',
      registry: registry(),
      image,
      'push-tool': tool
    })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    const manifest = await getManifest(registry(), image, 'latest')
    expect(manifest.layers.map(layer => layer.mediaType)).toEqual([
      GZIP_LAYER,
      GZIP_LAYER,
      GZIP_LAYER
    ])
    return manifest.layers.reduce((sum, layer) => sum + layer.size, 0)
  }
  const byDocker = await pushed('docker')
  const bySkopeo = await pushed('skopeo')
  // skopeo compresses for both (when it is there): one image, one manifest, whichever tool.
  const digests = await Promise.all(
    ['docker', 'skopeo'].map(
      async tool => (await getManifest(registry(), `e2e/containerd-bytes-${tool}`, 'latest')).digest
    )
  )
  expect(digests[0]).toBe(digests[1])
  // Uncompressed, the layers are 143,360 bytes; gzip brings them to about a third.
  expect(bySkopeo).toBeLessThan(60_000)
  expect(byDocker / bySkopeo).toBeLessThanOrEqual(1.15)
})

describe.each(['docker', 'skopeo'])('an unchanged re-push with push-tool %s', tool => {
  test('finds every ref up to date and pushes nothing', async () => {
    const inputs = {
      flake: example,
      registry: registry(),
      image: `e2e/repush-${tool}`,
      tags: 'a,b',
      'push-tool': tool
    }
    const first = await action(inputs)
    expect({ exit: first.main.exitCode, log: log(first) }).toMatchObject({ exit: 0 })
    const again = await action(inputs, { watch: ['docker', 'skopeo'] })
    expect({ exit: again.main.exitCode, log: log(again) }).toMatchObject({ exit: 0 })
    expect(again.outputs.digest).toBe(first.outputs.digest)
    if (tool === 'docker') {
      // The first push loaded the layers compressed; every ref holds the image now, so the
      // re-push loads them as they are, compressing nothing (no skopeo copy at all), and tags.
      expect(first.main.stdout).toContain(`Loaded image ID: ${first.outputs.digest}`)
      expect(again.main.stdout).toContain(
        'Every ref already holds this image, so docker will push none of its layers: loading them as they are'
      )
      expect(again.commands.filter(c => c[0] === 'skopeo' && c[1] === 'copy')).toEqual([])
      expect(again.commands.some(c => c[0] === 'docker' && c[1] === 'load')).toBe(true)
      expect(again.commands.filter(c => c[0] === 'docker' && c[1] === 'tag').length).toBe(2)
    }
    expect(again.main.stdout).toContain(`${registry()}/e2e/repush-${tool}:a: up to date`)
    expect(again.main.stdout).toContain(`${registry()}/e2e/repush-${tool}:b: up to date`)
    expect(registryPushes(again.commands)).toEqual([])
    expect(again.summary).toContain('2 up to date')
  })
})

test('push-tool skopeo with load: false never talks to the docker daemon', async () => {
  const result = await action(
    {
      flake: example,
      attribute: 'container-stream',
      registry: registry(),
      image: 'e2e/daemonless',
      load: 'false',
      'push-tool': 'skopeo'
    },
    { watch: ['docker', 'skopeo'] }
  )
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  expect(result.commands.filter(argv => argv[0] === 'docker')).toEqual([])
  expect(result.commands.some(argv => argv[0] === 'skopeo' && argv[1] === 'copy')).toBe(true)
  const manifest = await getManifest(registry(), 'e2e/daemonless', 'latest')
  expect(manifest.digest).toBe(result.outputs.digest)
  expect(manifest.configDigest).toBe(result.outputs['image-id'])
})

test('refs that already hold the image under another digest are made to agree', async () => {
  // On the classic store the same image pushed by docker and by skopeo gets two manifest
  // digests (each compresses its own way; on the containerd store skopeo compresses for both);
  // a run that finds one ref of each must leave both at one digest.
  const base = { flake: example, registry: registry(), image: 'e2e/mixed' }
  const machine = freshMachine('single-user', 'debian12')
  const byDocker = await action({ ...base, tags: 'd', 'push-tool': 'docker' }, { machine })
  const bySkopeo = await action({ ...base, tags: 's', 'push-tool': 'skopeo' }, { machine })
  expect(byDocker.outputs.digest).not.toBe(bySkopeo.outputs.digest)
  const both = await action({ ...base, tags: 'd,s', 'push-tool': 'docker' }, { machine })
  expect({ exit: both.main.exitCode, log: log(both) }).toMatchObject({ exit: 0 })
  expect(both.outputs.digest).toBe(byDocker.outputs.digest)
  expect((await getManifest(registry(), 'e2e/mixed', 's')).digest).toBe(byDocker.outputs.digest)
})

test('the image ID is the config of what Nix built, the same for every format', async () => {
  const ids = new Set<string>()
  for (const attribute of ['container', 'container-stream']) {
    const result = await action({ flake: example, attribute, push: 'false' })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    ids.add(result.outputs['image-id'] ?? '')
  }
  expect(ids.size).toBe(1)
  expect([...ids][0]).toMatch(/^sha256:[a-f0-9]{64}$/)
})

test('push: false builds, loads and tags, and pushes nothing', async () => {
  const image = `${registry()}/e2e/not-pushed`
  const result = await action({ flake: example, image, tags: 'v1', push: 'false' })
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  expect(result.outputs.refs).toBe(`${image}:v1`)
  expect(result.outputs.digest).toBeUndefined()
  expect((await getManifest(registry(), 'e2e/not-pushed', 'v1')).status).toBe(404)
  expect(result.summary).toMatch(/\| Push \| .* skipped \| push: false \|/)
})

test('full references in tags (docker/metadata-action style) and a capitalised image', async () => {
  const result = await action({
    flake: example,
    image: `${registry()}/E2E/Mixed-Case`,
    tags: `v2, ${registry()}/e2e/other:v3`
  })
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  expect(result.outputs.refs?.split('\n')).toEqual([
    `${registry()}/e2e/mixed-case:v2`,
    `${registry()}/e2e/other:v3`
  ])
  expect(result.main.stdout).toContain('::notice::image')
  expect(result.main.stdout).toContain('lower-cased to')
  expect((await getManifest(registry(), 'e2e/other', 'v3')).digest).toBe(result.outputs.digest)
})

test('without image and tags, the archive name and tag are used under the registry', async () => {
  const result = await action({ flake: example, registry: registry() })
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  expect(result.outputs.refs).toBe(`${registry()}/hello:latest`)
  expect((await getManifest(registry(), 'hello', 'latest')).digest).toBe(result.outputs.digest)
})

test('a missing attribute names it and lists what the flake offers', async () => {
  const result = await action({ flake: example, attribute: 'nope', registry: registry() })
  expect(result.main.exitCode).toBe(1)
  expect(result.main.stdout).toMatch(
    /::error::flake \.\/examples\/hello has no attribute "nope" for [a-z0-9_]+-linux; packages\.[a-z0-9_]+-linux offers: container, container-big, .*container-stream/
  )
})

test('nix2container JSON is recognised and refused with what to do instead', async () => {
  const result = await action({ flake: bad, attribute: 'nix2container-json', registry: registry() })
  expect(result.main.exitCode).toBe(1)
  expect(result.main.stdout).toMatch(/::error::.*looks like nix2container's image JSON/)
})

test('an output that is not an image fails with what it is', async () => {
  const result = await action({ flake: bad, attribute: 'not-an-image', registry: registry() })
  expect(result.main.exitCode).toBe(1)
  expect(result.main.stdout).toMatch(
    /::error::.*#not-an-image built \/nix\/store\/\S+ is not a container image/
  )
})

test('a failed build ends with the tail of the build log', async () => {
  const result = await action({ flake: bad, attribute: 'broken', registry: registry() })
  expect(result.main.exitCode).toBe(1)
  expect(result.main.stdout).toMatch(
    /::error::nix build \.\/__tests__\/e2e\/flakes\/bad#broken failed/
  )
  expect(result.main.stdout).toContain('the example build fails on purpose')
})

// The table of bad values is the unit tests' (parseInputs); this is the end-to-end proof that a
// bad input stops the bundle before any command, and that no value reaches a shell.
test('bad input fails before any command runs', async () => {
  const marker = `/tmp/nca-pwned-${process.pid}`
  const result = await action(
    { flake: example, tags: `v1, $(touch ${marker})` },
    { watch: ['nix', 'docker', 'skopeo', 'touch'] }
  )
  expect(result.main.exitCode).toBe(1)
  expect(result.main.stdout).toContain(`::error::Input "tags": "$(touch ${marker})" is not a valid`)
  expect(result.commands).toEqual([])
  expect(Object.keys(result.outputs)).toEqual([])
  expect(existsSync(marker)).toBe(false)
})
