// The only file that reads inputs: one typed, validated Inputs object, built before anything
// runs, so that a bad value fails the step with a message naming the input and the value.
import * as core from './core.js'
import { parseReference, validateRegistry, validateTag } from './registry/reference.js'
import type { ParsedReference } from './registry/reference.js'
import { isFullReference } from './registry/refs.js'
import { NIX_VERSION_PATTERN, PINNED_NIX_VERSION } from './nix/release.js'
import { runnerSystem } from './image/platform.js'
import { COMPRESSION_LEVELS, LAYER_COMPRESSION_FORMATS } from './image/layer-compression.js'
import type { LayerCompression } from './image/layer-compression.js'
import { readSigningKey, SigningKeyError } from './signing/cosign-key.js'
import type { SigningKey } from './signing/cosign-key.js'
import { parseNixPublicKey, parseNixSecretKey } from './signing/nix-key.js'
import type { NixPublicKey, NixSecretKey } from './signing/nix-key.js'
import { errorMessage } from './errors.js'
import { storeUrlProblem } from './nix/binary-cache.js'
import type { BinaryCache } from './nix/binary-cache.js'
import { MachineLineError, parseMachineLines } from './nix/builders.js'
import type { MachineLine } from './nix/builders.js'
import { BuilderKeyError, checkBuilderKey } from './nix/builder-key.js'

export type PushTool = 'docker' | 'skopeo'

export interface Inputs {
  flake: string
  attribute: string
  system: string | null
  nixArgs: string[]
  installNix: boolean
  nixVersion: string
  nixConf: string[]
  installUrl: string | null
  githubToken: string | null
  cache: boolean
  cacheKey: string | null
  cacheSave: boolean
  build: boolean
  load: boolean
  image: string | null
  registry: string | null
  tags: string[]
  push: boolean
  pushTool: PushTool
  username: string | null
  password: string | null
  retries: number
  /** Write a CycloneDX SBOM of each image. */
  sbom: boolean
  /** `reuse-from` entries: full references, or bare tags of `image`. */
  reuseFrom: string[]
  /** Several Nix systems, one image each, pushed as one index; empty for a single image. */
  systems: string[]
  /** Refs of images already pushed, combined into one index; empty when not merging. */
  merge: string[]
  /** `test`: a command (argv) run in the built image before any push; empty for none. */
  test: string[]
  /** `test-url`: pushed only once this answers 2xx while the image's own command runs. */
  testUrl: string | null
  /** Seconds that bound `test` and `test-url`, each. */
  testTimeout: number
  /** `compression` and `compression-level`: how pushed layers are compressed. */
  compression: LayerCompression
  /** `signing-key`, decrypted with `signing-passphrase`: sign every pushed digest; null: don't. */
  signingKey: SigningKey | null
  /** `cache-signing-key`: the Nix secret key that signs the store cache entries saved; null: unsigned. */
  cacheSigningKey: NixSecretKey | null
  /** `cache-trusted-keys`: restore only entries whose every path one of these signed; empty: any. */
  cacheTrustedKeys: NixPublicKey[]
  /** `binary-cache` and its keys: substitute from it, push the closure to it; null: none. */
  binaryCache: BinaryCache | null
  /** `builders`: Nix machine lines for remote builds, checked; empty: build here only. */
  builders: MachineLine[]
  /** `builder-ssh-key`: the SSH private key a `-` key field means; null: none given. */
  builderSshKey: string | null
}

/** Whether the image is run before the push (`test` or `test-url`). */
export function testsImage(inputs: Pick<Inputs, 'test' | 'testUrl'>): boolean {
  return inputs.test.length > 0 || inputs.testUrl !== null
}

/** A bad input value: the message names the input and the value. */
export class InputError extends Error {
  constructor(name: string, value: string, reason: string) {
    super(`Input "${name}": ${JSON.stringify(value)} ${reason}`)
    this.name = 'InputError'
  }
}

/** A bad secret input: the message names the input and why, never the value. */
export class SecretInputError extends Error {
  constructor(name: string, reason: string) {
    super(`Input "${name}": ${reason}`)
    this.name = 'InputError'
  }
}

/** Reads one raw input; the runner passes every declared input, defaults included. */
export type InputReader = (name: string) => string

/** Secret inputs read as they are (a passphrase may begin or end with a space, as cosign reads it). */
const UNTRIMMED_INPUTS = ['signing-passphrase']
/** Inputs whose INPUT_* variable is removed once read, so that no command the action runs inherits it. */
const SECRET_INPUTS = [
  'signing-key',
  'signing-passphrase',
  'cache-signing-key',
  'binary-cache-secret-key',
  'builder-ssh-key'
]

const readActionInput: InputReader = name =>
  core.getInput(name, { trimWhitespace: !UNTRIMMED_INPUTS.includes(name) })

// The values @actions/core's getBooleanInput accepts (YAML 1.2 core schema).
const TRUE_VALUES = ['true', 'True', 'TRUE']
const FALSE_VALUES = ['false', 'False', 'FALSE']
const PUSH_TOOLS: readonly PushTool[] = ['docker', 'skopeo']
const SYSTEM_PATTERN = /^[a-z0-9_]+-[a-z0-9_]+$/
const MAX_RETRIES = 20
export const DEFAULT_TEST_TIMEOUT = 60
/** GitHub's longest job: a longer bound would never be reached. */
const MAX_TEST_TIMEOUT = 6 * 60 * 60

/** Newline- or comma-separated, like docker/build-push-action's `tags`. */
export function splitList(value: string): string[] {
  return value
    .split(/[\n,]/)
    .map(item => item.trim())
    .filter(item => item !== '')
}

/** One item per line: for arguments, which may contain commas. */
export function splitLines(value: string): string[] {
  return value
    .split('\n')
    .map(item => item.trim())
    .filter(item => item !== '')
}

/**
 * The `github-token` input, for the post step (which deletes the cache entries a save
 * superseded): masked before anything else is done with it; null when empty.
 */
export function readGithubToken(read: InputReader = readActionInput): string | null {
  const token = read('github-token').trim()
  if (token === '') return null
  core.setSecret(token)
  return token
}

/**
 * The `cache-signing-key` input, for the post step (which signs what it saves): masked, its
 * INPUT_* variable removed, then parsed; null when empty.
 */
export function readCacheSigningKey(read: InputReader = readActionInput): NixSecretKey | null {
  const text = read('cache-signing-key').trim()
  maskNixSecretKey(text)
  if (read === readActionInput) delete process.env['INPUT_CACHE-SIGNING-KEY']
  return parseCacheSigningKey(text)
}

/** A Nix secret key is one line: masked whole and its base64 part alone. */
function maskNixSecretKey(text: string): void {
  if (text === '') return
  core.setSecret(text)
  const data = text.slice(text.indexOf(':') + 1)
  if (data !== '' && data !== text) core.setSecret(data)
}

function parseCacheSigningKey(text: string): NixSecretKey | null {
  if (text === '') return null
  try {
    return parseNixSecretKey(text)
  } catch (error) {
    // The message never quotes the key (nix-key.ts); the fallback says nothing of it either.
    const reason = error instanceof Error ? error.message : 'could not be read'
    throw new SecretInputError('cache-signing-key', reason)
  }
}

function parseCacheTrustedKeys(value: string): NixPublicKey[] {
  return splitList(value).map(entry => {
    try {
      return parseNixPublicKey(entry)
    } catch (error) {
      throw new InputError(
        'cache-trusted-keys',
        entry,
        `is not a Nix public key: ${shortReason(error)}`
      )
    }
  })
}

/**
 * `binary-cache`, `binary-cache-secret-key` and `binary-cache-public-key`: a store URL of a
 * scheme Nix has, keys Nix reads. The trusted keys are the public ones given, else the secret
 * key's public half.
 */
function parseBinaryCache(
  url: string | null,
  secretKeyText: string,
  publicKeyText: string
): BinaryCache | null {
  const publicKeys = splitList(publicKeyText)
  if (url === null) {
    if (secretKeyText !== '') {
      throw new SecretInputError('binary-cache-secret-key', 'is set but "binary-cache" is empty')
    }
    if (publicKeys.length > 0) {
      throw new InputError('binary-cache-public-key', publicKeyText.trim(), 'needs "binary-cache"')
    }
    return null
  }
  const problem = storeUrlProblem(url)
  if (problem !== null) throw new InputError('binary-cache', url, problem)
  for (const key of publicKeys) {
    try {
      parseNixPublicKey(key)
    } catch (error) {
      throw new InputError(
        'binary-cache-public-key',
        key,
        `is not a Nix public key: ${shortReason(error)}`
      )
    }
  }
  let secretKey: NixSecretKey | null = null
  if (secretKeyText !== '') {
    try {
      secretKey = parseNixSecretKey(secretKeyText)
    } catch (error) {
      const reason = error instanceof Error ? error.message : 'could not be read'
      throw new SecretInputError('binary-cache-secret-key', reason)
    }
  }
  const trusted = publicKeys.length > 0 ? publicKeys : secretKey ? [secretKey.publicKey] : []
  return { url, secretKey, publicKeys: trusted }
}

function shortReason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error)
  return /not an ed25519/.test(message)
    ? 'not an ed25519 key'
    : 'expected <name>:<base64 of 32 bytes>, as `nix key convert-secret-to-public` prints it'
}

export function parseInputs(read: InputReader = readActionInput): Inputs {
  const text = (name: string): string | null => {
    const value = read(name).trim()
    return value === '' ? null : value
  }
  const bool = (name: string, fallback: boolean): boolean => {
    const value = read(name).trim()
    if (value === '') return fallback
    if (TRUE_VALUES.includes(value)) return true
    if (FALSE_VALUES.includes(value)) return false
    throw new InputError(name, value, 'is not a boolean: use true or false')
  }

  const password = text('password')
  const githubToken = text('github-token')
  const signingKey = read('signing-key').trim()
  const signingPassphrase = read('signing-passphrase')
  // Masked first, so that nothing below (not even an error) can print them.
  if (password) core.setSecret(password)
  if (githubToken) core.setSecret(githubToken)
  maskSecret(signingKey)
  maskSecret(signingPassphrase)
  const cacheSigningKey = read('cache-signing-key').trim()
  maskNixSecretKey(cacheSigningKey)
  const binaryCacheSecretKey = read('binary-cache-secret-key').trim()
  maskNixSecretKey(binaryCacheSecretKey)
  const builderSshKey = read('builder-ssh-key').trim()
  maskSecret(builderSshKey)
  if (read === readActionInput) {
    for (const name of SECRET_INPUTS) delete process.env[`INPUT_${name.toUpperCase()}`]
  }

  const inputs: Inputs = {
    flake: text('flake') ?? '.',
    attribute: parseAttribute(text('attribute') ?? 'container'),
    system: parseSystem(text('system')),
    nixArgs: splitLines(read('nix-args')),
    installNix: bool('install-nix', true),
    nixVersion: parseNixVersionInput(text('nix-version') ?? PINNED_NIX_VERSION),
    nixConf: splitLines(read('nix-conf')),
    installUrl: parseInstallUrl(text('install-url')),
    githubToken,
    cache: bool('cache', true),
    cacheKey: text('cache-key'),
    cacheSave: bool('cache-save', true),
    build: bool('build', true),
    load: bool('load', true),
    image: parseImage(text('image')),
    registry: parseRegistry(text('registry')),
    tags: splitList(read('tags')).map(entry => parseTagEntry('tags', entry)),
    push: bool('push', true),
    pushTool: parsePushTool(text('push-tool') ?? 'docker'),
    username: text('username'),
    password,
    retries: parseRetries(text('retries') ?? '3'),
    sbom: bool('sbom', true),
    reuseFrom: splitList(read('reuse-from')).map(entry => parseTagEntry('reuse-from', entry)),
    systems: parseSystems(read('systems')),
    merge: splitList(read('merge')).map(entry => parseTagEntry('merge', entry)),
    test: parseTestCommand(read('test')),
    testUrl: parseTestUrl(text('test-url')),
    testTimeout: parseTestTimeout(text('test-timeout') ?? String(DEFAULT_TEST_TIMEOUT)),
    compression: parseCompression(text('compression') ?? 'gzip', text('compression-level')),
    signingKey: null,
    cacheSigningKey: parseCacheSigningKey(cacheSigningKey),
    cacheTrustedKeys: parseCacheTrustedKeys(read('cache-trusted-keys')),
    binaryCache: parseBinaryCache(
      text('binary-cache'),
      binaryCacheSecretKey,
      read('binary-cache-public-key')
    ),
    ...parseBuilders(read('builders'), builderSshKey)
  }
  checkCombinations(inputs)
  // Last: decrypting takes scrypt's tenth of a second or more, and every cheaper check is done.
  inputs.signingKey = parseSigningKey(signingKey, signingPassphrase)
  return inputs
}

/** `builders` and `builder-ssh-key`: each line checked, the key checked and used by some line. */
function parseBuilders(text: string, key: string): Pick<Inputs, 'builders' | 'builderSshKey'> {
  let builders: MachineLine[]
  try {
    builders = parseMachineLines(text, key !== '')
  } catch (error) {
    // Never the line itself: a private key pasted into the wrong input must not be printed.
    if (error instanceof MachineLineError) throw new SecretInputError('builders', error.message)
    throw error
  }
  if (key === '') return { builders, builderSshKey: null }
  try {
    checkBuilderKey(key)
  } catch (error) {
    if (error instanceof BuilderKeyError)
      throw new SecretInputError('builder-ssh-key', error.message)
    throw new SecretInputError('builder-ssh-key', 'could not be read as an SSH private key')
  }
  if (!builders.some(machine => machine.usesInputKey)) {
    throw new SecretInputError(
      'builder-ssh-key',
      builders.length === 0
        ? 'is set but "builders" is empty: give the machine lines that use it'
        : 'is set but no line of "builders" uses it: give "-" as the SSH key field (field 3) of the lines it opens'
    )
  }
  return { builders, builderSshKey: key }
}

/**
 * Mask a secret whole and line by line: the runner matches masks within one line of the log,
 * so a PEM key is masked by its base64 lines (its BEGIN and END lines are no secret).
 */
function maskSecret(value: string): void {
  if (value === '') return
  core.setSecret(value)
  for (const line of value.split(/\r?\n/)) {
    const trimmed = line.trim()
    if (trimmed !== '' && trimmed !== value && !/^-----(BEGIN|END) /.test(trimmed)) {
      core.setSecret(trimmed)
    }
  }
}

/** `signing-key` decrypted with `signing-passphrase` (an empty passphrase is cosign's too). */
function parseSigningKey(pem: string, passphrase: string): SigningKey | null {
  if (pem === '') {
    if (passphrase !== '') {
      throw new SecretInputError(
        'signing-passphrase',
        'is set but "signing-key" is empty: give the key too, or neither'
      )
    }
    return null
  }
  try {
    return readSigningKey(pem, passphrase)
  } catch (error) {
    if (error instanceof SigningKeyError) throw new SecretInputError(error.input, error.message)
    // Anything else (scrypt, the key parser) may not say why without quoting: say what failed.
    throw new SecretInputError('signing-key', 'could not be read as a cosign private key')
  }
}

function parseAttribute(value: string): string {
  if (/\s/.test(value)) throw new InputError('attribute', value, 'must not contain white space')
  return value
}

function parseSystem(value: string | null): string | null {
  if (value !== null && !SYSTEM_PATTERN.test(value)) {
    throw new InputError('system', value, 'is not a Nix system such as x86_64-linux')
  }
  return value
}

function parseSystems(value: string): string[] {
  const systems = splitList(value)
  for (const [i, system] of systems.entries()) {
    if (!SYSTEM_PATTERN.test(system)) {
      throw new InputError('systems', system, 'is not a Nix system such as aarch64-linux')
    }
    if (systems.indexOf(system) !== i) {
      throw new InputError('systems', value.trim(), `lists ${system} twice`)
    }
  }
  return systems
}

function parseNixVersionInput(value: string): string {
  if (!NIX_VERSION_PATTERN.test(value)) {
    throw new InputError('nix-version', value, 'is not a Nix release version such as 2.35.2')
  }
  return value
}

/** A tarball URL or a mirror of releases.nixos.org/nix, fetched over HTTP(S). */
function parseInstallUrl(value: string | null): string | null {
  if (value === null) return null
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InputError('install-url', value, 'is not a URL')
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InputError('install-url', value, 'must be an http:// or https:// URL')
  }
  return value
}

/**
 * One argument per line, like nix-args, but an empty line inside is refused rather than
 * dropped: it would silently shift the arguments (an empty argument cannot be given).
 */
function parseTestCommand(value: string): string[] {
  const trimmed = value.trim()
  if (trimmed === '') return []
  const lines = trimmed.split('\n').map(line => line.trim())
  const empty = lines.indexOf('')
  if (empty >= 0) {
    throw new InputError(
      'test',
      trimmed,
      `has an empty line (line ${empty + 1}): give one argument per line, with no blank lines`
    )
  }
  return lines
}

/** An http(s) URL the runner can fetch (the test container shares the runner's network). */
function parseTestUrl(value: string | null): string | null {
  if (value === null) return null
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw new InputError(
      'test-url',
      value,
      'is not a URL: give one such as http://localhost:8080/health'
    )
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new InputError('test-url', value, 'must be an http:// or https:// URL')
  }
  return value
}

function parseTestTimeout(value: string): number {
  const seconds = Number(value)
  if (!/^\d+(\.\d+)?$/.test(value) || seconds <= 0 || seconds > MAX_TEST_TIMEOUT) {
    throw new InputError(
      'test-timeout',
      value,
      `is not a number of seconds greater than 0 and at most ${MAX_TEST_TIMEOUT}`
    )
  }
  return seconds
}

function parseImage(value: string | null): string | null {
  if (value === null) return null
  const ref = parseOrFail('image', value)
  if (ref.tag !== null || ref.digest !== null) {
    throw new InputError(
      'image',
      value,
      'must be a repository without a tag or digest: give tags in "tags"'
    )
  }
  return value
}

function parseRegistry(value: string | null): string | null {
  if (value === null) return null
  try {
    validateRegistry(value)
  } catch (error) {
    throw new InputError('registry', value, `is not a registry host: ${errorMessage(error)}`)
  }
  return value
}

/** A `tags`, `merge` or `reuse-from` entry: a full reference or a tag (isFullReference decides). */
function parseTagEntry(name: 'tags' | 'merge' | 'reuse-from', value: string): string {
  if (isFullReference(value)) {
    parseOrFail(name, value)
    return value
  }
  try {
    validateTag(value)
  } catch (error) {
    const expected = name === 'reuse-from' ? 'a reference or tag' : 'a valid tag'
    throw new InputError(name, value, `is not ${expected}: ${errorMessage(error)}`)
  }
  return value
}

function parsePushTool(value: string): PushTool {
  const tool = PUSH_TOOLS.find(name => name === value)
  if (!tool) throw new InputError('push-tool', value, `is not one of: ${PUSH_TOOLS.join(', ')}`)
  return tool
}

function parseCompression(format: string, level: string | null): LayerCompression {
  const known = LAYER_COMPRESSION_FORMATS.find(name => name === format)
  if (!known) {
    throw new InputError(
      'compression',
      format,
      `is not one of: ${LAYER_COMPRESSION_FORMATS.join(', ')}`
    )
  }
  if (level === null) return { format: known, level: null }
  const { min, max } = COMPRESSION_LEVELS[known]
  const number = Number(level)
  if (!/^\d+$/.test(level) || number < min || number > max) {
    throw new InputError(
      'compression-level',
      level,
      `is not a ${known} level: a whole number from ${min} to ${max}`
    )
  }
  return { format: known, level: number }
}

function parseRetries(value: string): number {
  const retries = Number(value)
  if (!/^\d+$/.test(value) || retries < 1 || retries > MAX_RETRIES) {
    throw new InputError('retries', value, `is not a whole number from 1 to ${MAX_RETRIES}`)
  }
  return retries
}

function parseOrFail(name: string, value: string): ParsedReference {
  try {
    return parseReference(value)
  } catch (error) {
    throw new InputError(name, value, `is not a valid image reference: ${errorMessage(error)}`)
  }
}

/** Values that are each fine but cannot work together. */
function checkCombinations(inputs: Inputs): void {
  if ((inputs.username === null) !== (inputs.password === null)) {
    const [given, missing] =
      inputs.username === null ? ['password', 'username'] : ['username', 'password']
    throw new InputError(
      missing,
      '',
      `is empty but "${given}" is set: give both to log in, or neither`
    )
  }
  checkMultiPlatform(inputs)
  checkTest(inputs)
  if (inputs.push && inputs.pushTool === 'docker' && !inputs.load && inputs.systems.length === 0) {
    throw new InputError(
      'load',
      'false',
      'cannot go with push: true and push-tool: docker, which pushes what docker loaded; ' +
        'set load: true, push: false, or push-tool: skopeo'
    )
  }
  if (inputs.push) checkPushDestination(inputs)
}

/** `systems` and `merge` each make an index: with `system`, each other, or nowhere to push. */
function checkMultiPlatform(inputs: Inputs): void {
  const systems = inputs.systems.join(', ')
  if (inputs.systems.length > 0 && inputs.system !== null) {
    throw new InputError(
      'systems',
      systems,
      `cannot go with "system" (${JSON.stringify(inputs.system)}): list every system in "systems"`
    )
  }
  if (inputs.merge.length === 0) return
  const merge = inputs.merge.join(', ')
  if (inputs.systems.length > 0) {
    throw new InputError(
      'merge',
      merge,
      `cannot go with "systems" (${JSON.stringify(systems)}): merge combines images already ` +
        'pushed and builds nothing; build them in other steps or jobs'
    )
  }
  if (!inputs.push) {
    throw new InputError('merge', merge, 'needs push: true: it only pushes an index')
  }
  if (inputs.tags.length === 0 && inputs.image === null) {
    throw new InputError(
      'merge',
      merge,
      'has nothing to push to: set "tags" (and "image" for bare tags) for the index'
    )
  }
  for (const entry of inputs.merge) {
    if (isFullReference(entry)) {
      if (inputs.registry === null && parseReference(entry).domain === null) {
        throw new InputError(
          'merge',
          entry,
          'names no registry: write it as registry/repository:tag (or @sha256:...) or set "registry"'
        )
      }
    } else if (inputs.image === null) {
      throw new InputError(
        'merge',
        entry,
        'is a tag, but "image" is not set: give a full reference or set "image"'
      )
    }
  }
}

/** `test` and `test-url` need an image built here, of the runner's own system. */
function checkTest(inputs: Inputs): void {
  if (!testsImage(inputs)) return
  const [name, value] =
    inputs.test.length > 0 ? ['test', inputs.test.join('\n')] : ['test-url', inputs.testUrl ?? '']
  if (inputs.merge.length > 0) {
    throw new InputError(
      name,
      value,
      'cannot go with "merge": merge builds nothing here, so there is no image to run; ' +
        'test each platform image in the job that builds it'
    )
  }
  if (!inputs.build) {
    throw new InputError(
      name,
      value,
      'needs build: true: with build: false there is no image to run'
    )
  }
  const own = runnerSystem()
  if (inputs.systems.length > 0 && (own === null || !inputs.systems.includes(own))) {
    throw new InputError(
      'systems',
      inputs.systems.join(', '),
      `has no image of the runner's own system (${own ?? process.arch}), so "${name}" ` +
        `cannot run any here: add ${own ?? "the runner's system"} to "systems" or drop "${name}"`
    )
  }
}

/** Every ref that will be pushed must name a registry: no silent pushes to Docker Hub. */
function checkPushDestination(inputs: Inputs): void {
  if (inputs.registry !== null) return
  const imageHasRegistry = inputs.image !== null && parseReference(inputs.image).domain !== null
  const bareTags = inputs.tags.filter(tag => !isFullReference(tag))
  const usesImage = bareTags.length > 0 || inputs.tags.length === 0
  if (usesImage && !imageHasRegistry) {
    const value = inputs.image ?? ''
    throw new InputError(
      'image',
      value,
      'names no registry, so push: true has nowhere to push: set "registry" (e.g. ghcr.io), ' +
        'give "image" with a registry (ghcr.io/owner/app), or set push: false'
    )
  }
  for (const tag of inputs.tags.filter(isFullReference)) {
    if (parseReference(tag).domain === null) {
      throw new InputError(
        'tags',
        tag,
        'names no registry, so push: true has nowhere to push it: write it as ' +
          'registry/repository:tag or set "registry"'
      )
    }
  }
}
