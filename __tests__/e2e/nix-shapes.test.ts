// The pipeline on the other shapes of Nix a runner may have before the step (the rest of the
// suite runs on a single-user store the runner owns, and install-nix.test.ts on none): a
// root-owned store behind nix-daemon, used as the unprivileged runner user (the daemon builds),
// and root's own store on a self-hosted runner. On each: build, docker load and push, a skopeo
// push of `systems` as one index, and the SBOM, read back from the registry.
import { describe, expect, test } from '@jest/globals'
import { existsSync } from 'node:fs'
import type { RunResult } from '../../scripts/run-action.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { action, freshMachine, log, registry, store } from './action.js'
import { getManifest, getRawManifest } from './registry.js'

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json'

function expectGreen(result: RunResult): void {
  expect({ exit: [result.main.exitCode, result.post?.exitCode], log: log(result) }).toMatchObject({
    exit: [0, 0]
  })
}

describe.each(['daemon', 'root'] as const)('Nix as a %s store', shape => {
  let machine: Machine
  const image = `e2e/shape-${shape}`

  test('docker: built, loaded, tagged and pushed, with its SBOM', async () => {
    machine = freshMachine(shape)
    const result = await action(
      { flake: './examples/hello', registry: registry(), image, tags: 'docker' },
      { machine }
    )
    expectGreen(result)
    expect(result.outputs['loaded-image']).toBeTruthy()
    const manifest = await getManifest(registry(), image, 'docker')
    expect(manifest.digest).toBe(result.outputs.digest)
    expect(store.invalid(machine, [result.outputs['store-path'] ?? ''])).toEqual([])
    expect(existsSync(result.outputs.sbom ?? '')).toBe(true)
  })

  test('skopeo: both systems pushed as one index, without the daemon', async () => {
    const result = await action(
      {
        flake: './__tests__/e2e/flakes/multi',
        systems: 'x86_64-linux, aarch64-linux',
        registry: registry(),
        image,
        tags: 'systems',
        'push-tool': 'skopeo',
        load: 'false'
      },
      { machine, watch: ['docker'] }
    )
    expectGreen(result)
    expect(result.commands).toEqual([])
    const index = await getRawManifest(registry(), image, 'systems')
    expect([index.status, index.contentType, index.digest]).toEqual([
      200,
      OCI_INDEX,
      result.outputs.digest
    ])
    const images = JSON.parse(result.outputs.images ?? '[]') as { platform: string; sbom: string }[]
    expect(images.map(i => i.platform).sort()).toEqual(['linux/amd64', 'linux/arm64'])
    expect(images.every(i => existsSync(i.sbom))).toBe(true)
  })
})
