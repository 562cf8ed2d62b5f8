// An older self-hosted runner: Debian 12's Docker 20.10 (the classic image store), skopeo 1.9.3
// and Nix 2.8. The rest of the suite runs on Debian 13 (the containerd image store, today's
// ubuntu-latest); here the classic store keeps its own behaviour: a plain `docker load`, the
// image known by its config digest, layers compressed by `docker push`.
import { describe, expect, test } from '@jest/globals'
import { action, freshMachine, inMachine, log, registry } from './action.js'
import { getManifest } from './registry.js'

const GZIP_LAYER = 'application/vnd.docker.image.rootfs.diff.tar.gzip'
const machine = (() => {
  let made: ReturnType<typeof freshMachine> | null = null
  return () => (made ??= freshMachine('single-user', 'debian12'))
})()

describe.each(['docker', 'skopeo'])('Debian 12, push-tool %s', tool => {
  test('loads by config digest, pushes gzip layers, warns about nothing', async () => {
    const image = `e2e/debian12-${tool}`
    const result = await action(
      {
        flake: './examples/hello',
        attribute: 'container-layered',
        registry: registry(),
        image,
        'push-tool': tool
      },
      { machine: machine() }
    )
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(result.outputs['nix-version']).toMatch(/^2\.8\./)
    expect(result.main.stdout).not.toContain('::warning::')
    expect(result.main.stdout).not.toContain('containerd image store')
    const id = inMachine(machine(), [
      'docker',
      'image',
      'inspect',
      '--format',
      '{{.Id}}',
      'hello:latest'
    ])
    expect(id.trim()).toBe(result.outputs['image-id'])
    const manifest = await getManifest(registry(), image, 'latest')
    expect(manifest.digest).toBe(result.outputs.digest)
    expect(manifest.configDigest).toBe(result.outputs['image-id'])
    expect(manifest.layers.map(layer => layer.mediaType)).toEqual([
      GZIP_LAYER,
      GZIP_LAYER,
      GZIP_LAYER
    ])
  })
})
