// The SBOM of each example format, made by the bundled action, against the truth computed here
// independently: the layers' store paths listed with GNU tar, and what `nix path-info`,
// `nix hash to-base16` and `builtins.parseDrvName` say of them. Validated with the CycloneDX
// JSON schema.
import { afterAll, describe, expect, test } from '@jest/globals'
import { Spec1dot6 } from '@cyclonedx/cyclonedx-library/Spec'
import { JsonStrictValidator } from '@cyclonedx/cyclonedx-library/Validation'
import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import type { RunOptions, RunResult } from '../../scripts/run-action.mjs'
import { userTempDir } from '../../scripts/runner-machine.mjs'
import { narHashToHex } from '../../src/sbom/nar-hash.js'
import { parseDrvName } from '../../src/sbom/drv-name.js'
import { action as runAction, defaultMachine, inMachine, registry, store } from './action.js'

const example = './examples/hello'
const tempDirs: string[] = []

afterAll(async () => {
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

async function action(inputs: RunOptions['inputs']): Promise<RunResult> {
  const result = await runAction(inputs)
  expect({ exit: result.main.exitCode, log: result.main.stdout }).toMatchObject({ exit: 0 })
  return result
}

/** Nix on the runner machine the action ran on, as the runner. */
function nix(args: string[]): string {
  return inMachine(defaultMachine(), [
    'nix',
    '--extra-experimental-features',
    'nix-command',
    ...args
  ])
}

function tarList(file: string): string[] {
  return execFileSync('tar', ['-tf', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
    .split('\n')
    .filter(Boolean)
}

/** The layer tar files of a build output, unpacked with the system's tools. */
function layerFiles(storePath: string): string[] {
  const dir = userTempDir('nca-sbom-truth-')
  tempDirs.push(dir)
  const onDisk = store.hostPath(defaultMachine(), storePath)
  if (statSync(onDisk).isDirectory()) {
    // OCI layout: index.json -> manifest -> layers, all blobs.
    const blob = (digest: string): string => join(onDisk, 'blobs', ...digest.split(':'))
    const index = JSON.parse(readFileSync(join(onDisk, 'index.json'), 'utf8')) as {
      manifests: { digest: string }[]
    }
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as {
      layers: { digest: string }[]
    }
    return manifest.layers.map(layer => blob(layer.digest))
  }
  if (statSync(onDisk).mode & 0o111) {
    // A stream script: it runs where its store is.
    inMachine(defaultMachine(), ['sh', '-c', '"$0" | tar -xf - -C "$1"', storePath, dir])
  } else {
    execFileSync('tar', ['-xf', onDisk, '-C', dir])
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as {
    Layers: string[]
  }[]
  return manifest[0]!.Layers.map(layer => join(dir, layer))
}

/** What the SBOM must say, from the image and Nix alone. */
interface Truth {
  components: Record<string, unknown>[]
  dependencies: Map<string, string[]>
}

interface NixPathInfo {
  path: string
  narHash: string
  references: string[]
  deriver?: string
}

/**
 * `nix path-info --json` as a list: Nix 2.8 prints one; later releases (2.26 on Debian 13) an
 * object keyed by path.
 */
function pathInfos(args: string[]): NixPathInfo[] {
  const parsed = JSON.parse(nix(['path-info', '--json', ...args])) as
    NixPathInfo[] | Record<string, Omit<NixPathInfo, 'path'>>
  if (Array.isArray(parsed)) return parsed
  return Object.entries(parsed).map(([path, info]) => ({ ...info, path }))
}

function truthOf(storePath: string): Truth {
  const paths = new Set<string>()
  for (const layer of layerFiles(storePath)) {
    for (const entry of tarList(layer)) {
      const match = /^(?:\.\/)?nix\/store\/([^/]+)/.exec(entry)
      if (match) paths.add(`/nix/store/${match[1]}`)
    }
  }
  const sorted = [...paths].sort()
  expect(sorted.length).toBeGreaterThan(0)
  const infos = pathInfos(['-r', ...sorted])
  // The example's layers hold their closures, as dockerTools' do.
  expect(infos.map(info => info.path).sort()).toEqual(sorted)
  const hex = nix(['hash', 'to-base16', ...infos.map(info => info.narHash)])
    .trim()
    .split('\n')
  const names = JSON.parse(
    nix([
      'eval',
      '--json',
      '--expr',
      `map builtins.parseDrvName (builtins.fromJSON ''${JSON.stringify(infos.map(i => i.path.slice(44)))}'')`
    ])
  ) as { name: string; version: string }[]
  const components = infos.map((info, i) => ({
    'bom-ref': info.path,
    name: names[i]!.name,
    ...(names[i]!.version ? { version: names[i]!.version } : {}),
    hashes: [{ alg: 'SHA-256', content: hex[i] }],
    ...(info.deriver ? { properties: [{ name: 'nix:deriver', value: info.deriver }] } : {})
  }))
  const dependencies = new Map(
    infos.map(info => [
      info.path,
      info.references.filter(ref => ref !== info.path && paths.has(ref)).sort()
    ])
  )
  return { components, dependencies }
}

interface CycloneDx {
  specVersion: string
  metadata: { component: Record<string, unknown> }
  components: Record<string, unknown>[]
  dependencies: { ref: string; dependsOn?: string[] }[]
}

const FORMATS: [attribute: string, tool: string, load: string][] = [
  ['container', 'docker', 'true'],
  ['container-tar', 'skopeo', 'false'],
  ['container-zstd', 'docker', 'true'],
  ['container-layered', 'docker', 'true'],
  ['container-stream', 'skopeo', 'false'],
  ['container-oci', 'docker', 'true']
]

describe.each(FORMATS)('the SBOM of %s (push-tool %s, load %s)', (attribute, tool, load) => {
  test('lists exactly the store paths of its layers, as Nix knows them', async () => {
    const image = `e2e/sbom-${attribute}`
    const result = await action({
      flake: example,
      attribute,
      registry: registry(),
      image,
      tags: 'v1',
      'push-tool': tool,
      load
    })
    const file = result.outputs.sbom ?? ''
    expect(file.startsWith(join(result.tempDir, 'runner-temp'))).toBe(true)
    const text = readFileSync(file, 'utf8')
    expect(await new JsonStrictValidator(Spec1dot6.version).validate(text)).toBeNull()
    const sbom = JSON.parse(text) as CycloneDx
    expect(sbom.specVersion).toBe('1.6')

    const truth = truthOf(result.outputs['store-path'] ?? '')
    const byRef = (a: Record<string, unknown>, b: Record<string, unknown>): number =>
      String(a['bom-ref']).localeCompare(String(b['bom-ref']))
    const components = sbom.components.map(({ type, ...rest }) => {
      expect(type).toBe('library')
      return rest
    })
    expect(components.sort(byRef)).toEqual(truth.components.sort(byRef))

    const name = `${registry()}/${image}`
    const digest = result.outputs.digest
    expect(sbom.metadata.component).toMatchObject({
      type: 'container',
      name,
      version: digest,
      'bom-ref': `${name}@${digest}`
    })
    const dependsOn = new Map(sbom.dependencies.map(d => [d.ref, [...(d.dependsOn ?? [])].sort()]))
    for (const [path, references] of truth.dependencies) {
      expect({ path, dependsOn: dependsOn.get(path) }).toEqual({ path, dependsOn: references })
    }
    const referenced = new Set([...truth.dependencies.values()].flat())
    const roots = [...truth.dependencies.keys()].filter(path => !referenced.has(path)).sort()
    expect(dependsOn.get(`${name}@${digest}`)).toEqual(roots)

    expect(result.summary).toContain(
      `**SBOM:** \`${file}\` (CycloneDX, ${truth.components.length} components)`
    )
  })
})

test('sbom: false writes no SBOM', async () => {
  const result = await action({ flake: example, push: 'false', sbom: 'false' })
  expect(result.outputs.sbom).toBeUndefined()
  const files = readdirSync(join(result.tempDir, 'runner-temp'))
  expect(files.filter(name => name.endsWith('.cdx.json'))).toEqual([])
  expect(result.summary).toMatch(/\| SBOM \| .* skipped \| sbom: false \|/)
  expect(result.summary).not.toContain('**SBOM:**')
})

test('without a push, the SBOM names the image by its tag', async () => {
  const result = await action({ flake: example, push: 'false', tags: 'v7', image: 'e2e/local' })
  const sbom = JSON.parse(readFileSync(result.outputs.sbom ?? '', 'utf8')) as CycloneDx
  expect(sbom.metadata.component).toMatchObject({ name: 'e2e/local', version: 'v7' })
})

// The pure conversions the SBOM relies on, against Nix itself.
describe("against the runner's Nix", () => {
  const NAMES = [
    'hello-2.12.1',
    'hello',
    'glibc-2.38-lib',
    'foo--bar',
    'foo-',
    '-1.0',
    'x-.5',
    'a-_b',
    'python3.11-requests-2.31.0',
    'perl5.38.2-URI-5.21',
    'nix-2.8.0pre20220311_d532269',
    'Foo-Bar',
    'a-B-1',
    'hello-image.tar.gz',
    'source',
    'gcc-wrapper-13.2.0',
    'bash-interactive-5.2-p15-man',
    'zlib-1.3.1-dev',
    'a-é1',
    'a-1-2-3',
    'a-b-c',
    'util-linux-minimal-2.39.3-lib'
  ]
  test('parseDrvName splits every name as builtins.parseDrvName does', () => {
    const expected = JSON.parse(
      nix([
        'eval',
        '--json',
        '--expr',
        `map builtins.parseDrvName (builtins.fromJSON ''${JSON.stringify(NAMES)}'')`
      ])
    ) as unknown[]
    expect(NAMES.map(parseDrvName)).toEqual(expected)
  })

  test('narHashToHex gives what nix hash to-base16 gives, from every encoding', async () => {
    // Paths this test built: never whatever else a store holds (a .drv's outputs may be gone).
    const built = await action({ flake: example, attribute: 'container-layered', push: 'false' })
    const paths = store
      .closure(defaultMachine(), built.state['built-drv-path'] ?? '')
      .filter(path => !path.endsWith('.drv'))
    const infos = pathInfos(paths)
    const sri = infos.map(info => info.narHash)
    expect(sri.length).toBeGreaterThan(5)
    const base16 = nix(['hash', 'to-base16', ...sri])
      .trim()
      .split('\n')
    const base32 = nix(['hash', 'to-base32', ...sri])
      .trim()
      .split('\n')
    expect(sri.map(narHashToHex)).toEqual(base16)
    expect(base32.map(hash => narHashToHex(`sha256:${hash}`))).toEqual(base16)
    expect(base16.map(hash => narHashToHex({ algorithm: 'sha256', hash }))).toEqual(base16)
  })
})
