// Image signing through the bundled action (`signing-key`, `signing-passphrase`): cosign keys
// made here in both PEM types, every pushed digest signed with either push tool, single image
// and `systems`. The judge is independent of the signer: Debian 13's skopeo 1.18 pulling under
// a policy.json `sigstoreSigned` rule (keyPath) with `use-sigstore-attachments`, run on a
// Debian 13 runner machine; and Node's crypto verifying each signature layer read over the
// registry's HTTP API against the digest that was pushed. Also: the secrets never leave the
// action's memory (masks, no argv, no env of the commands it runs, no file), and a wrong
// passphrase fails before anything is built or pushed.
import { afterAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { verify } from 'node:crypto'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { COSIGN, makeCosignKey, SIGSTORE } from '../../__fixtures__/cosign-key.js'
import type { TestKey } from '../../__fixtures__/cosign-key.js'
import type { RunOptions, RunResult } from '../../scripts/run-action.mjs'
import {
  execInMachine,
  giveToRunner,
  userPath,
  userTempDir
} from '../../scripts/runner-machine.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { action, defaultMachine, findRealProgram, freshMachine, log, registry } from './action.js'
import { getRawManifest } from './registry.js'

const example = './examples/hello'
const multi = './__tests__/e2e/flakes/multi'
const PASSPHRASE = 'a passphrase: with spaces '
const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json'
const ANNOTATION = 'dev.cosignproject.cosign/signature'

const tempDirs: string[] = []
afterAll(async () => {
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

function tempDir(prefix: string): string {
  const dir = userTempDir(prefix)
  tempDirs.push(dir)
  return dir
}

// Made once: scrypt takes a tenth of a second per key.
const keys = {
  sigstore: makeCosignKey(PASSPHRASE, { pemType: SIGSTORE }),
  cosign: makeCosignKey(PASSPHRASE, { pemType: COSIGN }),
  other: makeCosignKey(PASSPHRASE)
}

/** A key's inputs. */
const signing = (key: TestKey): Record<string, string> => ({
  'signing-key': key.pem,
  'signing-passphrase': PASSPHRASE
})

function expectSuccess(result: RunResult): void {
  if (result.main.exitCode !== 0) throw new Error(`the step failed:\n${log(result)}`)
  expect(result.post?.exitCode).toBe(0)
}

/** `<registry>/<name>` -> `<name>` */
const nameOf = (repository: string): string => repository.slice(registry().length + 1)

type Identity = 'matchRepository' | 'default'

/**
 * A policy.json that accepts only images signed by `key` (for this registry), and a
 * registries.d that reads signatures from sigstore attachments: files the runner can read.
 */
function verifierConfig(key: TestKey, identity: Identity): { policy: string; registriesD: string } {
  const dir = tempDir('nca-sign-policy-')
  const keyPath = join(dir, 'cosign.pub')
  writeFileSync(keyPath, key.publicPem)
  const rule: Record<string, unknown> = { type: 'sigstoreSigned', keyPath }
  // cosign's payload names the repository without a tag, which only matchRepository (or
  // exactRepository) accepts: containers-policy.json(5) says so of cosign signatures.
  if (identity === 'matchRepository') rule.signedIdentity = { type: 'matchRepository' }
  const policy = join(dir, 'policy.json')
  writeFileSync(
    policy,
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: { docker: { [registry()]: [rule] } }
    })
  )
  const registriesD = join(dir, 'registries.d')
  execInMachine(defaultMachine(), ['mkdir', '-p', registriesD])
  writeFileSync(
    join(registriesD, 'default.yaml'),
    'default-docker:\n  use-sigstore-attachments: true\n'
  )
  giveToRunner(dir)
  return { policy, registriesD }
}

/**
 * Pull `ref` with Debian 13's skopeo under a policy that trusts `key` alone: what a podman or
 * CRI-O with that policy would do. `all`: every platform image of an index.
 */
function skopeoVerify(
  ref: string,
  key: TestKey,
  options: { identity?: Identity; all?: boolean } = {}
): { ok: boolean; stderr: string } {
  const machine: Machine = defaultMachine()
  expect(machine.os).toBe('debian13')
  const { policy, registriesD } = verifierConfig(key, options.identity ?? 'matchRepository')
  const out = join(tempDir('nca-sign-pull-'), 'image')
  const result = execInMachine(machine, [
    'skopeo',
    '--policy',
    policy,
    '--registries.d',
    registriesD,
    'copy',
    '--src-tls-verify=false',
    // An oci: layout cannot hold signatures: not copying them changes nothing of the check.
    ...(options.all ? ['--all', '--remove-signatures'] : []),
    `docker://${ref}`,
    options.all ? `oci:${out}` : `dir:${out}`
  ])
  return { ok: result.exitCode === 0, stderr: result.stderr }
}

interface SignatureLayer {
  mediaType: string
  digest: string
  size: number
  annotations?: Record<string, string>
}

/**
 * Read `repository`'s `sha256-<hex>.sig` over the registry API and check it as cosign would,
 * with Node's crypto: some layer's payload names `digest` and this repository, and its
 * signature verifies with `key`. Returns the layers.
 */
async function expectSignedBy(
  repository: string,
  digest: string,
  key: TestKey
): Promise<SignatureLayer[]> {
  const name = nameOf(repository)
  const tag = `${digest.replace(':', '-')}.sig`
  const got = await getRawManifest(registry(), name, tag)
  expect(got.status).toBe(200)
  expect(got.contentType).toBe('application/vnd.oci.image.manifest.v1+json')
  const manifest = got.body as { mediaType: string; layers: SignatureLayer[] }
  expect(manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json')
  const verified: string[] = []
  for (const layer of manifest.layers) {
    expect(layer.mediaType).toBe(SIMPLE_SIGNING)
    const response = await fetch(`http://${registry()}/v2/${name}/blobs/${layer.digest}`)
    const payload = Buffer.from(await response.arrayBuffer())
    const body = JSON.parse(payload.toString()) as {
      critical: { identity: Record<string, string>; image: Record<string, string>; type: string }
      optional: unknown
    }
    const signature = layer.annotations?.[ANNOTATION] ?? ''
    if (!verify('sha256', payload, key.publicKey, Buffer.from(signature, 'base64'))) continue
    expect(body).toEqual({
      critical: {
        identity: { 'docker-reference': repository },
        image: { 'docker-manifest-digest': digest },
        type: 'cosign container image signature'
      },
      optional: null
    })
    verified.push(layer.digest)
  }
  expect(verified).toHaveLength(1)
  return manifest.layers
}

/** Every file under `dir`, recursively, that can be read. */
function filesUnder(dir: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) found.push(...filesUnder(path))
    else if (entry.isFile() && statSync(path).size < 16 * 1024 * 1024) found.push(path)
  }
  return found
}

/** The secret strings a key's inputs give: the whole PEM, each base64 line, the passphrase. */
function secretsOf(key: TestKey): string[] {
  const lines = key.pem.split('\n').filter(line => line !== '' && !line.startsWith('-----'))
  return [key.pem.trim(), ...lines, PASSPHRASE]
}

/**
 * skopeo and docker wrapped to record the arguments and the environment each run of them got
 * (then the runner machine's own program runs): the secrets must be in none of it.
 */
function commandRecorder(): { file: string; env: Record<string, string> } {
  const dir = tempDir('nca-sign-env-')
  const bin = join(dir, 'bin')
  const file = join(dir, 'commands.log')
  execInMachine(defaultMachine(), ['mkdir', '-p', bin])
  for (const name of ['docker', 'skopeo']) {
    writeFileSync(
      join(bin, name),
      `#!/bin/sh\n${findRealProgram(name, bin)}\n` +
        `{ echo "argv: ${name} $*"; env; } >> '${file}'\nexec "$real" "$@"\n`,
      { mode: 0o755 }
    )
  }
  writeFileSync(file, '')
  giveToRunner(dir)
  return { file, env: { PATH: `${bin}:${userPath(process.env.PATH ?? '')}` } }
}

async function push(
  inputs: RunOptions['inputs'],
  options: Partial<RunOptions> = {}
): Promise<RunResult> {
  const result = await action({ flake: example, registry: registry(), ...inputs }, options)
  expectSuccess(result)
  return result
}

describe('signing-key', () => {
  test('push-tool docker, an ENCRYPTED SIGSTORE PRIVATE KEY: signed, skopeo accepts it, the secrets go nowhere', async () => {
    const recorder = commandRecorder()
    const inputs = { image: 'e2e/signed-docker', tags: 'v1, latest', ...signing(keys.sigstore) }
    const result = await push(inputs, { env: recorder.env })
    const digest = result.outputs.digest as string
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/)
    const repository = `${registry()}/e2e/signed-docker`
    // One digest, one repository: one signature, named as cosign names it.
    expect(result.outputs.signatures).toBe(`${repository}:${digest.replace(':', '-')}.sig`)
    expect(result.summary).toContain(`- \`${result.outputs.signatures}\``)
    expect(result.summary).toMatch(/\| Sign \| .* done \| 1 signed \|/)
    const layers = await expectSignedBy(repository, digest, keys.sigstore)
    expect(layers).toHaveLength(1)

    // The judge: Debian 13's skopeo under a sigstoreSigned policy, by tag and by digest.
    expect(skopeoVerify(`${repository}:v1`, keys.sigstore)).toEqual({ ok: true, stderr: '' })
    expect(skopeoVerify(result.outputs['image-ref'] as string, keys.sigstore).ok).toBe(true)
    // Another key is refused; so is the default signedIdentity, which wants a tag in the
    // payload (cosign writes the repository alone: the docs say to use matchRepository).
    const other = skopeoVerify(`${repository}:v1`, keys.other)
    expect(other.ok).toBe(false)
    expect(other.stderr).toContain('cryptographic signature verification failed')
    const exact = skopeoVerify(`${repository}:v1`, keys.sigstore, { identity: 'default' })
    expect(exact.ok).toBe(false)
    expect(exact.stderr).toContain(`Signature for identity \\"${repository}\\" is not accepted`)

    // The secrets: masked (whole and line by line), and nowhere the step leaves text.
    const secrets = secretsOf(keys.sigstore)
    for (const secret of secrets) expect(result.masks).toContain(secret)
    const written = [
      result.main.stdout,
      result.main.stderr,
      result.post?.stdout ?? '',
      result.post?.stderr ?? '',
      JSON.stringify(result.outputs),
      JSON.stringify(result.state),
      result.summary,
      result.envFile,
      result.pathFile,
      readFileSync(recorder.file, 'utf8'),
      ...filesUnder(join(result.tempDir, 'runner-temp')).map(file => readFileSync(file, 'latin1'))
    ]
    // The masks themselves are how the runner learns them: leave those lines out.
    const unmasked = written.map(text =>
      text
        .split('\n')
        .filter(line => !line.startsWith('::add-mask::'))
        .join('\n')
    )
    for (const secret of secrets) {
      for (const text of unmasked) expect(text.includes(secret)).toBe(false)
    }
    // docker pushed and skopeo signed (so the check saw them); no run inherited the inputs'
    // variables (the runner hands every INPUT_* to the step's process).
    const commands = readFileSync(recorder.file, 'utf8')
    expect(commands).toMatch(/^argv: docker push /m)
    expect(commands).toMatch(
      /^argv: skopeo copy .*--preserve-digests .*dir:\S+ docker:\/\/\S+\.sig$/m
    )
    expect(commands).toMatch(/^INPUT_IMAGE=e2e\/signed-docker$/m)
    expect(commands).not.toMatch(/^INPUT_SIGNING/m)

    // An unchanged re-run: the signature is there already, nothing is added.
    const again = await push(inputs)
    expect(again.outputs.digest).toBe(digest)
    expect(again.outputs.signatures).toBe(result.outputs.signatures)
    expect(again.summary).toMatch(/\| Sign \| .* done \| 1 up to date/)
    expect(await expectSignedBy(repository, digest, keys.sigstore)).toEqual(layers)
  })

  test('push-tool skopeo, an ENCRYPTED COSIGN PRIVATE KEY, two repositories: each signed; a signature of another key is kept', async () => {
    const repository = `${registry()}/e2e/signed-skopeo`
    const mirror = `${registry()}/e2e/signed-skopeo-mirror`
    const inputs = {
      image: 'e2e/signed-skopeo',
      tags: `v1, ${mirror}:v1`,
      'push-tool': 'skopeo',
      load: 'false'
    }
    // First signed with another key, then with this one: both signatures stay in the tag.
    const first = await push({ ...inputs, ...signing(keys.other) })
    const result = await push({ ...inputs, ...signing(keys.cosign) })
    const digest = result.outputs.digest as string
    expect(first.outputs.digest).toBe(digest)
    const tag = `${digest.replace(':', '-')}.sig`
    expect(result.outputs.signatures?.split('\n')).toEqual([
      `${repository}:${tag}`,
      `${mirror}:${tag}`
    ])
    for (const repo of [repository, mirror]) {
      const layers = await expectSignedBy(repo, digest, keys.cosign)
      expect(layers).toHaveLength(2)
      await expectSignedBy(repo, digest, keys.other)
      expect(skopeoVerify(`${repo}:v1`, keys.cosign).ok).toBe(true)
      expect(skopeoVerify(`${repo}:v1`, keys.other).ok).toBe(true)
      expect(skopeoVerify(`${repo}:v1`, keys.sigstore).ok).toBe(false)
    }
  })

  test('a tag pushed without signing-key is refused by the same policy', async () => {
    const result = await push({ image: 'e2e/unsigned', tags: 'v1' })
    expect(result.outputs.signatures).toBeUndefined()
    expect(result.summary).toMatch(/\| Sign \| .* skipped \| no signing-key \|/)
    const refused = skopeoVerify(`${registry()}/e2e/unsigned:v1`, keys.sigstore)
    expect(refused.ok).toBe(false)
    expect(refused.stderr).toContain('A signature was required, but no signature exists')
  })

  test('systems, push-tool docker: each platform image and the index signed; skopeo accepts every platform', async () => {
    const repository = `${registry()}/e2e/signed-systems`
    const result = await push({
      flake: multi,
      systems: 'x86_64-linux, aarch64-linux',
      image: 'e2e/signed-systems',
      tags: 'v1',
      ...signing(keys.sigstore)
    })
    const images = JSON.parse(result.outputs.images ?? '[]') as { digest: string }[]
    const digests = [...images.map(image => image.digest), result.outputs.digest as string]
    expect(new Set(digests).size).toBe(3)
    expect(result.outputs.signatures?.split('\n')).toEqual(
      digests.map(digest => `${repository}:${digest.replace(':', '-')}.sig`)
    )
    for (const digest of digests) await expectSignedBy(repository, digest, keys.sigstore)
    // containers/image checks each platform image it pulls (the index's signature is what
    // `cosign verify` checks, done above): both platforms, then the runner's own.
    expect(skopeoVerify(`${repository}:v1`, keys.sigstore, { all: true })).toEqual({
      ok: true,
      stderr: ''
    })
    expect(skopeoVerify(`${repository}:v1`, keys.sigstore).ok).toBe(true)
    expect(skopeoVerify(`${repository}:v1`, keys.other, { all: true }).ok).toBe(false)
  })

  test('merge: the index and the platform images copied into the target repository signed', async () => {
    const source = { flake: example, image: 'e2e/signed-merge-src', 'push-tool': 'skopeo' }
    const amd64 = await push({ ...source, system: 'x86_64-linux', tags: 'amd64' })
    const arm64 = await push({ ...source, system: 'aarch64-linux', tags: 'arm64' })
    const repository = `${registry()}/e2e/signed-merge`
    const result = await push({
      merge: 'e2e/signed-merge-src:amd64, e2e/signed-merge-src:arm64',
      tags: `${repository}:v1`,
      ...signing(keys.cosign)
    })
    const digests = [amd64.outputs.digest, arm64.outputs.digest, result.outputs.digest] as string[]
    expect(result.outputs.signatures?.split('\n')).toEqual(
      digests.map(digest => `${repository}:${digest.replace(':', '-')}.sig`)
    )
    for (const digest of digests) await expectSignedBy(repository, digest, keys.cosign)
    expect(skopeoVerify(`${repository}:v1`, keys.cosign, { all: true })).toEqual({
      ok: true,
      stderr: ''
    })
  })

  test('a wrong passphrase fails at once, naming the input: nothing is built or pushed', async () => {
    const wrong = 'wrong-horse-battery'
    const result = await action(
      {
        flake: example,
        registry: registry(),
        image: 'e2e/signed-never',
        tags: 'v1',
        'signing-key': keys.sigstore.pem,
        'signing-passphrase': wrong
      },
      { watch: ['nix', 'docker', 'skopeo'] }
    )
    expect(result.main.exitCode).toBe(1)
    expect(result.main.stdout).toContain(
      '::error::Input "signing-passphrase": does not decrypt signing-key: it is not the passphrase the key was made with'
    )
    expect(result.masks).toContain(wrong)
    const lines = result.main.stdout.split('\n').filter(line => !line.startsWith('::add-mask::'))
    expect(lines.join('\n')).not.toContain(wrong)
    expect(result.commands).toEqual([])
    const tags = await fetch(`http://${registry()}/v2/e2e/signed-never/tags/list`)
    expect(tags.status).toBe(404)
    expect(result.outputs.signatures).toBeUndefined()
  })
})

describe('signing-key with a registry that wants a login', () => {
  const USER = 'signer'
  const PASSWORD = 'S1gning-Pa55-word'
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`

  /** The .sig layer's payload and signature, read with the login, checked with Node's crypto. */
  async function expectSignedBehindLogin(host: string, name: string, digest: string, key: TestKey) {
    const tag = `${digest.replace(':', '-')}.sig`
    const headers = { Authorization: basic, Accept: 'application/vnd.oci.image.manifest.v1+json' }
    const manifest = (await (
      await fetch(`http://${host}/v2/${name}/manifests/${tag}`, { headers })
    ).json()) as { layers: SignatureLayer[] }
    expect(manifest.layers).toHaveLength(1)
    const layer = manifest.layers[0] as SignatureLayer
    const blob = await fetch(`http://${host}/v2/${name}/blobs/${layer.digest}`, { headers })
    const payload = Buffer.from(await blob.arrayBuffer())
    const signature = Buffer.from(layer.annotations?.[ANNOTATION] ?? '', 'base64')
    expect(verify('sha256', payload, key.publicKey, signature)).toBe(true)
    expect(JSON.parse(payload.toString())).toMatchObject({
      critical: {
        identity: { 'docker-reference': `${host}/${name}` },
        image: { 'docker-manifest-digest': digest }
      }
    })
  }

  test("the push's credentials sign too: the action's own login, and an earlier docker login", async () => {
    const dir = process.env.NCA_SERVICES_DIR as string
    const host = execFileSync(
      'scripts/services.sh',
      ['registry', dir, `sign-${process.pid}`, '--htpasswd', USER, PASSWORD],
      { encoding: 'utf8' }
    ).trim()
    // username and password: the action logs in (docker, into its private config).
    const own = await action(
      {
        flake: example,
        image: `${host}/e2e/signed-login`,
        tags: 'v1',
        username: USER,
        password: PASSWORD,
        ...signing(keys.sigstore)
      },
      { machine: freshMachine() }
    )
    expectSuccess(own)
    await expectSignedBehindLogin(
      host,
      'e2e/signed-login',
      own.outputs.digest as string,
      keys.sigstore
    )
    // An earlier step's docker login (docker/login-action), push-tool skopeo.
    const machine = freshMachine()
    execInMachine(machine, ['docker', 'login', '--username', USER, '--password-stdin', host], {
      input: PASSWORD
    })
    const earlier = await action(
      {
        flake: example,
        image: `${host}/e2e/signed-earlier-login`,
        tags: 'v1',
        'push-tool': 'skopeo',
        ...signing(keys.cosign)
      },
      { machine }
    )
    expectSuccess(earlier)
    await expectSignedBehindLogin(
      host,
      'e2e/signed-earlier-login',
      earlier.outputs.digest as string,
      keys.cosign
    )
  })
})

describe('keyless (docs/signing.md): the outputs the example feeds to actions/attest and cosign', () => {
  test('digest is sha256:<hex>, image-ref is the lower-cased repository @ digest, and the registry serves it there', async () => {
    // `image: ghcr.io/${{ github.repository }}` often has capitals: the refs are lower-cased.
    const result = await push({ image: 'e2e/Keyless-Example', tags: 'v1' })
    const digest = result.outputs.digest as string
    const imageRef = result.outputs['image-ref'] as string
    const repository = `${registry()}/e2e/keyless-example`
    // actions/attest: subject-digest must be "sha256:hex_digest".
    expect(digest).toMatch(/^sha256:[a-f0-9]{64}$/)
    // cosign sign "$IMAGE_REF": a digest reference, no tag.
    expect(imageRef).toBe(`${repository}@${digest}`)
    // actions/attest: subject-name is the fully-qualified repository without tag, as the
    // example's shell line cuts it from image-ref.
    const cut = execInMachine(defaultMachine(), ['sh', '-c', 'printf %s "${IMAGE_REF%@*}"'], {
      env: { IMAGE_REF: imageRef }
    })
    expect(cut.stdout).toBe(repository)
    expect(cut.stdout).toBe(cut.stdout.toLowerCase())
    // What both resolve: the manifest pushed, served under that repository and digest.
    const served = await getRawManifest(registry(), 'e2e/keyless-example', digest)
    expect(served.status).toBe(200)
    expect(served.digest).toBe(digest)
    expect(result.outputs.refs).toBe(`${repository}:v1`)
  })
})

describe('signing on Debian 12 (skopeo 1.9.3, which cannot sign itself)', () => {
  test('push-tool skopeo: the signature it pushes is accepted by Debian 13 skopeo', async () => {
    const machine = freshMachine('single-user', 'debian12')
    const repository = `${registry()}/e2e/signed-debian12`
    const result = await action(
      {
        flake: example,
        registry: registry(),
        image: 'e2e/signed-debian12',
        tags: 'v1',
        'push-tool': 'skopeo',
        ...signing(keys.cosign)
      },
      { machine }
    )
    expectSuccess(result)
    expect(execInMachine(machine, ['skopeo', '--version']).stdout).toContain('1.9.3')
    await expectSignedBy(repository, result.outputs.digest as string, keys.cosign)
    expect(skopeoVerify(`${repository}:v1`, keys.cosign).ok).toBe(true)
  })
})
