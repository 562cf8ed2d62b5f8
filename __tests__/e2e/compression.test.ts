// `compression: zstd` end to end: an image that holds a real program (Debian's static busybox)
// pushed with zstd layers by each push tool, then read back by the clients that must read it:
// Docker on the containerd image store pulls and runs it, skopeo copies it out whole (which
// decompresses every layer); the manifest is OCI and every layer zstd.
import { describe, expect, test } from '@jest/globals'
import { action, defaultMachine, freshMachine, inMachine, log, registry } from './action.js'
import { getManifest } from './registry.js'

const flake = './__tests__/e2e/flakes/busybox'
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json'
const ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd'

describe.each(['docker', 'skopeo'])('compression: zstd with push-tool %s', tool => {
  test('pushes zstd layers under an OCI manifest, which docker pulls and runs and skopeo reads', async () => {
    const image = `e2e/zstd-${tool}`
    const result = await action({
      flake,
      registry: registry(),
      image,
      tags: 'v1',
      'push-tool': tool,
      load: tool === 'docker' ? 'true' : 'false',
      compression: 'zstd',
      'compression-level': '9'
    })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(result.main.stdout).not.toContain('::warning::')
    const manifest = await getManifest(registry(), image, 'v1')
    expect(manifest).toMatchObject({ status: 200, digest: result.outputs.digest })
    expect(manifest.mediaType).toBe(OCI_MANIFEST)
    expect(manifest.configDigest).toBe(result.outputs['image-id'])
    expect(manifest.layers.map(layer => layer.mediaType)).toEqual([ZSTD_LAYER])

    const machine = defaultMachine()
    const pinned = `${registry()}/${image}@${result.outputs.digest}`
    // Nothing of it left in the daemon, so the pull fetches and unpacks every layer.
    for (const name of [`${registry()}/${image}:v1`, 'busybox-test:latest']) {
      inMachine(machine, ['sh', '-c', 'docker image rm "$0" >/dev/null 2>&1 || true', name])
    }
    inMachine(machine, ['docker', 'pull', '--quiet', pinned])
    const said = inMachine(machine, [
      'docker',
      'run',
      '--rm',
      pinned,
      '/bin/busybox',
      'echo',
      'zstd ok'
    ])
    expect(said.trim()).toBe('zstd ok')
    inMachine(machine, ['docker', 'image', 'rm', pinned])
    // skopeo 1.18 writes a docker archive, which holds plain layers: every layer decompressed.
    const archive = `/tmp/nca-zstd-${tool}-${process.pid}.tar`
    inMachine(machine, [
      'skopeo',
      'copy',
      '-q',
      '--src-tls-verify=false',
      `docker://${pinned}`,
      `docker-archive:${archive}`
    ])
    const listed = inMachine(machine, ['sh', '-c', 'tar -tf "$0" && rm -f "$0"', archive])
    expect(listed).toContain('manifest.json')
  })

  test('an unchanged re-push finds the ref up to date, at the same digest', async () => {
    const inputs = {
      flake,
      registry: registry(),
      image: `e2e/zstd-again-${tool}`,
      'push-tool': tool,
      compression: 'zstd'
    }
    const first = await action(inputs)
    expect({ exit: first.main.exitCode, log: log(first) }).toMatchObject({ exit: 0 })
    const again = await action(inputs)
    expect(again.outputs.digest).toBe(first.outputs.digest)
    expect(again.main.stdout).toContain(`${registry()}/e2e/zstd-again-${tool}:latest: up to date`)
  })
})

test('zstd through docker on the classic image store fails before anything is built', async () => {
  const result = await action(
    { flake, registry: registry(), image: 'e2e/zstd-classic', compression: 'zstd' },
    { machine: freshMachine('single-user', 'debian12'), watch: ['nix'] }
  )
  expect(result.main.exitCode).toBe(1)
  expect(result.main.stdout).toContain(
    '::error::Input "compression": "zstd" needs push-tool: skopeo, or docker with its containerd image store'
  )
  expect(result.commands.filter(argv => argv[0] === 'nix')).toEqual([])
  expect((await getManifest(registry(), 'e2e/zstd-classic', 'latest')).status).toBe(404)
})

test('systems with zstd: one index of OCI manifests with zstd layers, each config as built', async () => {
  const result = await action({
    flake: './__tests__/e2e/flakes/multi',
    systems: 'x86_64-linux, aarch64-linux',
    registry: registry(),
    image: 'e2e/zstd-systems',
    tags: 'v1',
    'push-tool': 'skopeo',
    load: 'false',
    compression: 'zstd'
  })
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  const images = JSON.parse(result.outputs.images ?? '[]') as {
    digest: string
    'image-id': string
  }[]
  expect(images).toHaveLength(2)
  for (const entry of images) {
    const manifest = await getManifest(registry(), 'e2e/zstd-systems', entry.digest)
    expect(manifest.mediaType).toBe(OCI_MANIFEST)
    expect(manifest.configDigest).toBe(entry['image-id'])
    expect(manifest.layers.length).toBeGreaterThan(0)
    expect(new Set(manifest.layers.map(layer => layer.mediaType))).toEqual(new Set([ZSTD_LAYER]))
  }
  // A second run finds every platform and the index up to date.
  const again = await action({
    flake: './__tests__/e2e/flakes/multi',
    systems: 'x86_64-linux, aarch64-linux',
    registry: registry(),
    image: 'e2e/zstd-systems',
    tags: 'v1',
    'push-tool': 'skopeo',
    load: 'false',
    compression: 'zstd'
  })
  expect(again.outputs.digest).toBe(result.outputs.digest)
  expect(again.main.stdout).toContain(`${registry()}/e2e/zstd-systems:v1: up to date`)
})
