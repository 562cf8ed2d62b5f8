// The whole pipeline through the bundled action (dist/), as the runner runs it, against the
// real Nix, Docker daemon and registry started by global-setup.ts on 127.0.0.1.
import { afterAll, describe, expect, test } from '@jest/globals'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { runAction } from '../../scripts/run-action.mjs'
import type { RunOptions, RunResult } from '../../scripts/run-action.mjs'
import { getManifest, splitRef } from './registry.js'

const registry = (): string => {
  const value = process.env.REGISTRY
  if (!value) throw new Error('REGISTRY is not set: the e2e global setup did not run')
  return value
}
const example = './examples/hello'
const bad = './__tests__/e2e/flakes/bad'
const tempDirs: string[] = []

async function action(
  inputs: RunOptions['inputs'],
  options: Partial<RunOptions> = {}
): Promise<RunResult> {
  const result = await runAction({ inputs, timeoutMs: 240_000, ...options })
  tempDirs.push(result.tempDir)
  return result
}

/** What a failed run printed, for the assertion message. */
function log(result: RunResult): string {
  return `${result.main.stdout}\n${result.main.stderr}`
}

afterAll(async () => {
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

describe.each([
  ['container', 'docker-archive'],
  ['container-tar', 'docker-archive'],
  ['container-zstd', 'docker-archive'],
  ['container-stream', 'stream']
])('example attribute %s', (attribute, format) => {
  test(`is built, loaded, tagged twice and pushed (${format})`, async () => {
    const image = `e2e/${attribute}`
    const result = await action({
      flake: example,
      attribute,
      registry: registry(),
      image,
      tags: 'v1\nlatest'
    })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(result.post?.exitCode).toBe(0)

    const { outputs } = result
    expect(outputs['image-format']).toBe(format)
    expect(outputs['store-path']).toMatch(/^\/nix\/store\/[a-z0-9]{32}-/)
    expect(outputs['loaded-image']).toBe('hello:latest')
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
      expect(manifest.layerCount).toBe(1)
    }
    expect(outputs.digest).toMatch(/^sha256:[a-f0-9]{64}$/)
    expect(outputs['image-ref']).toBe(`${registry()}/${image}@${outputs.digest}`)
    expect(result.summary).toContain(`**Digest:** \`${outputs.digest}\``)
    expect(existsSync(join(process.cwd(), 'result'))).toBe(false)
  })
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
    /::error::flake \.\/examples\/hello has no attribute "nope" for [a-z0-9_]+-linux; packages\.[a-z0-9_]+-linux offers: container, container-stream/
  )
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

describe('bad input fails before any command runs', () => {
  test.each<[Record<string, string>, string]>([
    [{ tags: 'v1;id' }, 'Input "tags": "v1;id" is not a valid tag'],
    [{ tags: '$(touch /tmp/pwned)' }, 'Input "tags": "$(touch /tmp/pwned)" is not a valid'],
    [{ image: 'no-registry' }, 'Input "image": "no-registry" names no registry'],
    [{ 'push-tool': 'podman' }, 'Input "push-tool": "podman" is not one of: docker, skopeo'],
    [{ push: 'yes' }, 'Input "push": "yes" is not a boolean'],
    [{ retries: '-1' }, 'Input "retries": "-1" is not a whole number'],
    [{ registry: 'ghcr.io/owner' }, 'Input "registry": "ghcr.io/owner" is not a registry host'],
    [
      { image: 'ghcr.io/o/App:v1' },
      'Input "image": "ghcr.io/o/App:v1" must be a repository without a tag'
    ]
  ])('%j', async (inputs, message) => {
    const result = await action(
      { flake: example, ...inputs },
      { watch: ['nix', 'docker', 'skopeo'] }
    )
    expect(result.main.exitCode).toBe(1)
    expect(result.main.stdout).toContain(`::error::${message}`)
    expect(result.commands).toEqual([])
    expect(Object.keys(result.outputs)).toEqual([])
  })
})
