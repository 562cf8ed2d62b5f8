// Talking to registries through the standard tools on GitHub runners: skopeo for manifest
// queries and daemonless copies, docker for pushes through the daemon.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { CommandError, run } from '../exec.js'
import { sha256Digest } from '../image/plain-archive.js'
import { fetchRawManifest } from './http.js'
import { isLoopbackHost, parseReference } from './reference.js'
import { errorMessage } from '../errors.js'
import { classifyFailure, httpStatusPattern, withRetries } from './retry.js'
import type { RetryPolicy } from './retry.js'

/** What a registry holds under a reference. */
export interface RemoteManifest {
  /** `sha256:` of the manifest bytes: what the registry calls the digest. */
  digest: string
  mediaType: string | null
  /** The image config's digest (the image ID); null for an index (multi-platform). */
  configDigest: string | null
}

/** Queries and logins answer in seconds; a registry that has not answered by then never will. */
export const QUICK_OPERATION_SECONDS = 30
/** Tests shorten the quick operations' bound (seconds) through this variable: no input. */
export const QUICK_TIMEOUT_VARIABLE = 'NIX_CONTAINER_ACTION_QUICK_TIMEOUT'

/** The quick operations' bound: QUICK_OPERATION_SECONDS unless the test variable says less. */
export function quickOperationSeconds(env: NodeJS.ProcessEnv = process.env): number {
  const value = Number(env[QUICK_TIMEOUT_VARIABLE])
  return Number.isFinite(value) && value > 0 && value < QUICK_OPERATION_SECONDS
    ? value
    : QUICK_OPERATION_SECONDS
}
/** Pushes and copies move whole images: bounded, but generously. */
export const TRANSFER_SECONDS = 3600

export { isLoopbackHost }

export function isLoopbackRegistry(ref: string): boolean {
  const domain = parseReference(ref).domain
  return domain !== null && isLoopbackHost(domain)
}

/** skopeo's TLS flag for one side of a copy (`--src-`, `--dest-` or plain for inspect). */
export function tlsArgs(side: 'src' | 'dest' | null, ref: string): string[] {
  if (!isLoopbackRegistry(ref)) return []
  return [side ? `--${side}-tls-verify=false` : '--tls-verify=false']
}

/** skopeo's credentials file: the action's own Docker config after it logged in. */
export function authArgs(
  flag: '--authfile' | '--src-authfile' | '--dest-authfile',
  authFile: string | null
): string[] {
  return authFile ? [flag, authFile] : []
}

/** Parse a raw manifest (pure, for tests). */
export function parseRemoteManifest(raw: string): RemoteManifest {
  const manifest = JSON.parse(raw) as { mediaType?: string; config?: { digest?: string } }
  return {
    digest: sha256Digest(raw),
    mediaType: manifest.mediaType ?? null,
    configDigest: manifest.config?.digest ?? null
  }
}

// What skopeo says when a registry has no such manifest or repository. Matched as phrases, not
// as a bare `404`: the ref in the same text (a port such as 127.0.0.1:34045) may hold those
// digits, and a 503 taken for "not there" would skip the retry and push blind.
const NOT_FOUND = new RegExp(
  [
    'manifest unknown',
    'name unknown',
    'repository name not known',
    '404 not found',
    httpStatusPattern('404').source
  ].join('|'),
  'i'
)

/** Does skopeo's stderr say the registry has no such manifest (pure, for tests)? */
export function isMissingManifest(stderr: string): boolean {
  return NOT_FOUND.test(stderr)
}

/** The manifest a ref points at, or null when the registry has no such ref. */
export async function inspectManifest(
  ref: string,
  authFile: string | null
): Promise<RemoteManifest | null> {
  const raw = await inspectRawManifest(ref, authFile)
  return raw === null ? null : parseRemoteManifest(raw)
}

/** The manifest's bytes as the registry serves them, or null when there is no such ref. */
export async function inspectRawManifest(
  ref: string,
  authFile: string | null
): Promise<string | null> {
  // One GET where the registry's API can answer for sure (most of a skopeo run is its start).
  const answer = await fetchRawManifest(ref, authFile, quickOperationSeconds() * 1000)
  if (answer !== undefined) return answer
  return skopeoInspect(['--raw'], ref, authFile)
}

/** The image config's bytes (`skopeo inspect --config --raw`), or null when there is no such ref. */
export async function inspectRawConfig(
  ref: string,
  authFile: string | null
): Promise<string | null> {
  return skopeoInspect(['--config', '--raw'], ref, authFile)
}

async function skopeoInspect(
  flags: string[],
  ref: string,
  authFile: string | null
): Promise<string | null> {
  try {
    const { stdout } = await run(
      'skopeo',
      [
        'inspect',
        ...flags,
        ...authArgs('--authfile', authFile),
        ...tlsArgs(null, ref),
        `docker://${ref}`
      ],
      { silent: true, timeoutSeconds: quickOperationSeconds() }
    )
    return stdout
  } catch (error) {
    if (error instanceof CommandError && isMissingManifest(error.stderr)) return null
    throw error
  }
}

/** The environment of a skopeo call that may write big temporary files. */
export function skopeoTempEnv(tempDir: string): Record<string, string> {
  // containers/image puts them under TMPDIR (/var/tmp by default).
  return { TMPDIR: tempDir }
}

/** `skopeo copy` to a registry; returns the manifest digest it wrote. */
export async function skopeoCopy(
  source: string,
  destRef: string,
  /** Where skopeo may write temporary files, and the digest file (RUNNER_TEMP). */
  tempDir: string,
  authFile: string | null,
  /** More `skopeo copy` options, e.g. `--preserve-digests`. */
  extraArgs: readonly string[] = []
): Promise<string> {
  const fromRegistry = source.startsWith('docker://')
  const sourceTls = fromRegistry ? tlsArgs('src', source.slice('docker://'.length)) : []
  const digestFile = join(tempDir, `nix-container-digest-${process.pid}`)
  await run(
    'skopeo',
    [
      'copy',
      '--digestfile',
      digestFile,
      ...extraArgs,
      ...(fromRegistry ? authArgs('--src-authfile', authFile) : []),
      ...authArgs('--dest-authfile', authFile),
      ...sourceTls,
      ...tlsArgs('dest', destRef),
      source,
      `docker://${destRef}`
    ],
    { env: skopeoTempEnv(tempDir), timeoutSeconds: TRANSFER_SECONDS }
  )
  return (await readFile(digestFile, 'utf8')).trim()
}

/** `v1: digest: sha256:... size: 528` -> the digest. */
export function parsePushDigest(stdout: string): string | null {
  return /digest:\s*(sha256:[a-f0-9]{64})/.exec(stdout)?.[1] ?? null
}

/** `docker push`; returns the manifest digest it reported. */
export async function dockerPush(ref: string): Promise<string> {
  const { stdout } = await run('docker', ['push', ref], { timeoutSeconds: TRANSFER_SECONDS })
  const digest = parsePushDigest(stdout)
  if (!digest) throw new Error(`docker push ${ref} reported no digest:\n${stdout}`)
  return digest
}

export interface Credentials {
  username: string
  password: string
}

/** `docker login` with the password on stdin (never in argv). */
export async function dockerLogin(registry: string, credentials: Credentials): Promise<void> {
  await run('docker', ['login', '--username', credentials.username, '--password-stdin', registry], {
    input: credentials.password,
    timeoutSeconds: quickOperationSeconds()
  })
}

export async function dockerLogout(registry: string): Promise<void> {
  await run('docker', ['logout', registry], { timeoutSeconds: quickOperationSeconds() })
}

/** `skopeo login` into the given credentials file, password on stdin. */
export async function skopeoLogin(
  registry: string,
  credentials: Credentials,
  authFile: string
): Promise<void> {
  const tls = isLoopbackHost(registry) ? ['--tls-verify=false'] : []
  await run(
    'skopeo',
    [
      'login',
      '--authfile',
      authFile,
      ...tls,
      '--username',
      credentials.username,
      '--password-stdin',
      registry
    ],
    { input: credentials.password, timeoutSeconds: quickOperationSeconds() }
  )
}

export async function skopeoLogout(registry: string, authFile: string): Promise<void> {
  await run('skopeo', ['logout', '--authfile', authFile, registry], {
    timeoutSeconds: quickOperationSeconds()
  })
}

/**
 * How long a registry that answered 429 asks to wait: its Retry-After on the API root, which
 * docker and skopeo do not print. Seconds, or null when it does not say.
 */
export async function probeRetryAfter(registry: string): Promise<number | null> {
  const scheme = isLoopbackHost(registry) ? 'http' : 'https'
  const response = await fetch(`${scheme}://${registry}/v2/`, { signal: AbortSignal.timeout(5000) })
  await response.body?.cancel()
  return response.status === 429 ? parseRetryAfter(response.headers.get('retry-after')) : null
}

/** `withRetries` for an operation on `ref`'s registry: a 429 there is waited out as it asks. */
export function withRegistryRetries<T>(
  what: string,
  ref: string,
  policy: RetryPolicy,
  operation: () => Promise<T>
): Promise<T> {
  return withRetries(what, { ...policy, retryAfter: retryAfterFor(ref) }, operation)
}

/** For a 429, ask the ref's registry how long to wait. */
function retryAfterFor(ref: string): (error: unknown) => Promise<number | null> {
  return async error => {
    const text = errorMessage(error)
    const domain = parseReference(ref).domain
    if (!domain || !classifyFailure(text).reason.startsWith('429')) return null
    return probeRetryAfter(domain)
  }
}

/** `Retry-After: 3` or an HTTP date -> seconds (pure, for tests). */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | null {
  if (value === null || value.trim() === '') return null
  if (/^\d+$/.test(value.trim())) return Number(value.trim())
  const date = Date.parse(value)
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000))
}
