// The registry's HTTP API (distribution spec), spoken directly where a skopeo process costs more
// than the request itself: a manifest query is one GET, and skopeo's start-up is most of its
// 40-50 ms. Credentials come from the Docker config files skopeo reads (their `auths`); Basic
// and token (Bearer) authentication are both spoken. Anything this cannot answer for sure (a
// credential helper, Docker Hub, a proxy, TLS it cannot verify, an unexpected status) is left
// to skopeo.
import * as core from '../core.js'
import { readFile } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { sha256Digest } from '../image/plain-archive.js'
import { isLoopbackHost, parseReference } from './reference.js'

export type Fetch = typeof fetch

/** A response, whole. */
export interface HttpAnswer {
  status: number
  header: (name: string) => string | null
  body: Buffer
}

/** One GET: what the registry answered, or a thrown network failure. */
export type Get = (
  url: string,
  headers: Record<string, string>,
  timeoutMs: number
) => Promise<HttpAnswer>

/** Registries refuse manifests over 4 MiB; an answer bigger than that is not one to read. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024

/**
 * One GET with node:http(s), on a connection of its own that closes after it. Not fetch: its
 * first request in a process costs 70-80 ms of loading undici, more than the whole question.
 */
export const httpGet: Get = (url, headers, timeoutMs) =>
  new Promise((resolve, reject) => {
    const target = new URL(url)
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest
    const fail = (error: Error): void => {
      clearTimeout(timer)
      request.destroy()
      reject(error)
    }
    const request = send(target, { method: 'GET', headers, agent: false }, response => {
      const chunks: Buffer[] = []
      let bytes = 0
      response.on('data', (chunk: Buffer) => {
        bytes += chunk.length
        if (bytes > MAX_ANSWER_BYTES) fail(new Error(`GET ${url}: an answer over 4 MiB`))
        else chunks.push(chunk)
      })
      response.on('error', fail)
      response.on('end', () => {
        clearTimeout(timer)
        resolve({
          status: response.statusCode ?? 0,
          header: name => {
            const value = response.headers[name.toLowerCase()]
            return Array.isArray(value) ? value.join(', ') : (value ?? null)
          },
          body: Buffer.concat(chunks)
        })
      })
    })
    // unref: a bound on this request, never a reason for the step's process to stay.
    const timer = setTimeout(() => {
      fail(Object.assign(new Error(`GET ${url} timed out`), { name: 'TimeoutError' }))
    }, timeoutMs).unref()
    request.on('error', fail)
    request.end()
  })

/** A Get made of a fetch (the mount's, whose callers and tests give one). */
export function getOverFetch(fetchImpl: Fetch): Get {
  return async (url, headers, timeoutMs) => {
    const response = await fetchImpl(url, { headers, signal: AbortSignal.timeout(timeoutMs) })
    const body = Buffer.from(await response.arrayBuffer())
    return { status: response.status, header: name => response.headers.get(name), body }
  }
}

export interface BasicCredentials {
  username: string
  password: string
}

/** A registry failure worth another attempt: the message names the status, as retry.ts reads it. */
export class TransientRegistryError extends Error {}

/** Who asks, in the registry's logs. */
const USER_AGENT = 'nix-container-action'

/** Docker Hub's references say docker.io; its API lives elsewhere. */
function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry
}

/** `http://` for loopback registries (as docker and the action's skopeo flags treat them). */
export function baseUrl(registry: string): string {
  return `${isLoopbackHost(registry) ? 'http' : 'https'}://${apiHost(registry)}`
}

/** `Bearer realm="...",service="..."` -> scheme and parameters (pure, for tests). */
export function parseChallenge(
  header: string | null
): { scheme: string; params: Record<string, string> } | null {
  if (!header) return null
  const match = /^\s*(\w+)\s*(.*)$/.exec(header)
  if (!match) return null
  const params: Record<string, string> = {}
  for (const [, key, quoted, bare] of (match[2] ?? '').matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) {
    params[(key as string).toLowerCase()] = quoted ?? bare ?? ''
  }
  return { scheme: (match[1] as string).toLowerCase(), params }
}

/** The token URL for a Bearer challenge, asking for these scopes (pure, for tests). */
export function tokenUrl(params: Record<string, string>, scopes: readonly string[]): string {
  if (!params.realm) throw new Error('the registry asked for a token but named no realm')
  const url = new URL(params.realm)
  if (params.service) url.searchParams.set('service', params.service)
  for (const scope of scopes) url.searchParams.append('scope', scope)
  return url.toString()
}

function basicHeader(credentials: BasicCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
}

export function failIfTransient(status: number, what: string): void {
  if (status === 429 || status >= 500) {
    throw new TransientRegistryError(`${what}: HTTP ${status}`)
  }
}

/** The Authorization header a 401's challenge asks for, or null when there is no way to answer it. */
export async function authorize(
  challengeHeader: string | null,
  scopes: readonly string[],
  credentials: BasicCredentials | null,
  get: Get,
  timeoutMs: number
): Promise<string | null> {
  const challenge = parseChallenge(challengeHeader)
  if (challenge?.scheme === 'basic') return credentials ? basicHeader(credentials) : null
  if (challenge?.scheme !== 'bearer') return null
  const headers: Record<string, string> = { 'User-Agent': USER_AGENT }
  if (credentials) headers.Authorization = basicHeader(credentials)
  const response = await get(tokenUrl(challenge.params, scopes), headers, timeoutMs)
  failIfTransient(response.status, 'token request')
  if (response.status < 200 || response.status > 299) return null
  const body = JSON.parse(response.body.toString('utf8')) as {
    token?: string
    access_token?: string
  }
  const token = body.token ?? body.access_token
  if (!token) return null
  core.setSecret(token)
  return `Bearer ${token}`
}

/** The Docker config files skopeo would read for credentials, in its order. */
export function credentialFiles(authFile: string | null): string[] {
  if (authFile) return [authFile]
  const files: string[] = []
  if (process.env.REGISTRY_AUTH_FILE) files.push(process.env.REGISTRY_AUTH_FILE)
  if (process.env.XDG_RUNTIME_DIR) {
    files.push(join(process.env.XDG_RUNTIME_DIR, 'containers', 'auth.json'))
  }
  files.push(join(homedir(), '.config', 'containers', 'auth.json'))
  files.push(join(process.env.DOCKER_CONFIG || join(homedir(), '.docker'), 'config.json'))
  return files
}

/** `https://ghcr.io/v1/` and `ghcr.io` name the same registry. */
function hostOfAuthKey(key: string): string {
  return key.replace(/^https?:\/\//, '').split('/')[0] ?? ''
}

interface DockerConfig {
  auths?: Record<string, { auth?: string; username?: string; password?: string }>
  credHelpers?: Record<string, string>
  credsStore?: string
}

/** The `auths` entry for a registry in a Docker config's text (pure, for tests). */
export function credentialsIn(configText: string, registry: string): BasicCredentials | null {
  return credentialsOf(JSON.parse(configText) as DockerConfig, registry)
}

function credentialsOf(config: DockerConfig, registry: string): BasicCredentials | null {
  const wanted = registry === 'docker.io' ? ['docker.io', 'index.docker.io'] : [registry]
  for (const [key, entry] of Object.entries(config.auths ?? {})) {
    if (!wanted.includes(hostOfAuthKey(key))) continue
    if (entry.username && entry.password) {
      return { username: entry.username, password: entry.password }
    }
    if (entry.auth) {
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8')
      const colon = decoded.indexOf(':')
      if (colon > 0)
        return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
    }
  }
  return null
}

/**
 * Does a Docker config hold what only skopeo can use for this registry: a credential helper,
 * or an `auths` entry without a user and password (an identity or registry token)?
 */
function needsSkopeo(config: DockerConfig, registry: string): boolean {
  if (config.credsStore || Object.keys(config.credHelpers ?? {}).length > 0) return true
  const listed = Object.keys(config.auths ?? {}).some(key => hostOfAuthKey(key) === registry)
  return listed && credentialsOf(config, registry) === null
}

/**
 * Credentials for a registry from the first config file that has them (null: anonymous), and
 * whether a file read on the way is not JSON or holds what only skopeo can use (needsSkopeo):
 * then only skopeo can say what it would send.
 */
async function searchCredentials(
  registry: string,
  authFile: string | null
): Promise<{ credentials: BasicCredentials | null; unsure: boolean }> {
  let unsure = false
  for (const file of credentialFiles(authFile)) {
    const text = await readFile(file, 'utf8').catch(() => null)
    if (text === null) continue
    let config: DockerConfig
    try {
      config = JSON.parse(text) as DockerConfig
    } catch {
      unsure = true // not JSON: skopeo would fail on it too
      continue
    }
    unsure ||= needsSkopeo(config, registry)
    const credentials = credentialsOf(config, registry)
    if (credentials) return { credentials, unsure }
  }
  return { credentials: null, unsure }
}

/** Credentials for a registry from the first config file that has them; null: anonymous. */
export async function findCredentials(
  registry: string,
  authFile: string | null
): Promise<BasicCredentials | null> {
  return (await searchCredentials(registry, authFile)).credentials
}

/** The manifest types skopeo accepts, so that the registry answers both alike. */
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json'
].join(', ')

/** Distribution's error codes for "no such manifest" and "no such repository". */
const MISSING_CODES = new Set(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN'])

/** Does a 404's body say the manifest or repository is unknown (pure, for tests)? */
export function saysMissing(body: string): boolean {
  try {
    const parsed = JSON.parse(body) as { errors?: { code?: string }[] }
    return (parsed.errors ?? []).some(error => MISSING_CODES.has(error.code ?? ''))
  } catch {
    return false
  }
}

/** Network failures of a request that another attempt may get past, in retry.ts's words. */
const TRANSIENT_NETWORK: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  EPIPE: 'connection reset (broken pipe)',
  ETIMEDOUT: 'timed out',
  UND_ERR_CONNECT_TIMEOUT: 'timed out',
  UND_ERR_SOCKET: 'connection reset',
  ENOTFOUND: 'no such host',
  EAI_AGAIN: 'temporary failure in name resolution'
}

/** The transient network failure behind a fetch error, in retry.ts's words; null: another. */
export function transientNetworkFailure(error: unknown): string | null {
  // Read by shape: AbortSignal's DOMException and undici's errors may come from another realm.
  const failure = error as { name?: unknown; code?: unknown; cause?: { code?: unknown } } | null
  if (failure?.name === 'TimeoutError') return 'timed out'
  const code = failure?.code ?? failure?.cause?.code
  return (typeof code === 'string' && TRANSIENT_NETWORK[code]) || null
}

/** The variables through which skopeo (Go's net/http) would use a proxy. */
const PROXY_VARIABLES = ['HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY']

/** Is a proxy configured for this job (any case, as Go and curl read them)? (pure, for tests) */
export function proxyConfigured(env: Record<string, string | undefined>): boolean {
  return PROXY_VARIABLES.some(name => Boolean(env[name] || env[name.toLowerCase()]))
}

/**
 * The manifest's bytes under a ref, asked with one GET: its text; null when the registry says
 * it has no such manifest or repository. A transient failure (5xx, 429, a refused or reset
 * connection, a timeout) throws, for the caller's retries: each attempt is one request.
 * undefined when this way cannot tell for sure (a credential helper, an authentication it
 * cannot answer, TLS it cannot verify, any other status): skopeo is asked then, and its answers
 * and errors are the ones the action has always had.
 */
export async function fetchRawManifest(
  ref: string,
  authFile: string | null,
  timeoutMs: number,
  get: Get = httpGet
): Promise<string | null | undefined> {
  const parsed = parseReference(ref)
  const registry = parsed.domain
  // Docker Hub (library/ names, its own limits) and refs without a registry: skopeo's. So is
  // a job behind a proxy: skopeo goes through it, node:http would not.
  if (registry === null || registry === 'docker.io' || proxyConfigured(process.env)) {
    return undefined
  }
  const { credentials, unsure } = await searchCredentials(registry, authFile)
  if (unsure) return undefined
  const reference = parsed.digest ?? parsed.tag ?? 'latest'
  const url = `${baseUrl(registry)}/v2/${parsed.path}/manifests/${reference}`
  const ask = (authorization: string | null): Promise<HttpAnswer> =>
    get(
      url,
      {
        Accept: MANIFEST_TYPES,
        'User-Agent': USER_AGENT,
        ...(authorization ? { Authorization: authorization } : {})
      },
      timeoutMs
    )
  try {
    let response = await ask(null)
    if (response.status === 401) {
      const scopes = [`repository:${parsed.path}:pull`]
      const header = response.header('www-authenticate')
      const authorization = await authorize(header, scopes, credentials, get, timeoutMs)
      if (authorization === null) return undefined
      response = await ask(authorization)
    }
    failIfTransient(response.status, `query ${ref}`)
    const body = response.body.toString('utf8')
    if (response.status === 404) return saysMissing(body) ? null : undefined
    if (response.status !== 200) return undefined
    // The digest is of the bytes: a text that does not give them back is skopeo's to read. A
    // pinned ref's answer must be those very bytes.
    if (!Buffer.from(body, 'utf8').equals(response.body)) return undefined
    if (parsed.digest !== null && sha256Digest(body) !== parsed.digest) return undefined
    return body
  } catch (error) {
    if (error instanceof TransientRegistryError) throw error
    const transient = transientNetworkFailure(error)
    if (transient !== null) throw new TransientRegistryError(`query ${ref}: ${transient}`)
    core.debug(`${ref}: the registry's API did not answer (${String(error)}); asking skopeo`)
    return undefined
  }
}
