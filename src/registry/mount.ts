// Cross-repository blob mount: one registry API call (POST /v2/<repo>/blobs/uploads/?mount=
// <digest>&from=<other repo>) that makes a blob of another repository in the same registry
// part of this one, without a byte moving. Hand-written because skopeo (containers/image)
// mounts only blobs its blob-info cache remembers seeing there, and that cache is empty on a
// fresh runner: it would compress and upload the layer instead. Credentials come from the same
// Docker config files skopeo reads; Basic and token (Bearer) authentication are both spoken.
import * as core from '../core.js'
import { readFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { isLoopbackHost, quickOperationSeconds } from './commands.js'

export interface MountRequest {
  /** Registry host[:port] as in the reference. */
  registry: string
  /** Repository path in the registry (no host): where the blob should appear. */
  repository: string
  /** Repository path that holds the blob. */
  from: string
  digest: string
}

export interface BasicCredentials {
  username: string
  password: string
}

export type MountResult = { mounted: true } | { mounted: false; reason: string }

type Fetch = typeof fetch

/** A registry failure worth another attempt: the message names the status, as retry.ts reads it. */
class TransientRegistryError extends Error {}

/** Docker Hub's references say docker.io; its API lives elsewhere. */
function apiHost(registry: string): string {
  return registry === 'docker.io' ? 'registry-1.docker.io' : registry
}

function baseUrl(registry: string): string {
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

/** The token URL for a Bearer challenge, asking for push here and pull there (pure, for tests). */
export function tokenUrl(params: Record<string, string>, request: MountRequest): string {
  if (!params.realm) throw new Error('the registry asked for a token but named no realm')
  const url = new URL(params.realm)
  if (params.service) url.searchParams.set('service', params.service)
  url.searchParams.append('scope', `repository:${request.repository}:pull,push`)
  url.searchParams.append('scope', `repository:${request.from}:pull`)
  return url.toString()
}

function basicHeader(credentials: BasicCredentials): string {
  return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`
}

function failIfTransient(status: number, what: string): void {
  if (status === 429 || status >= 500) {
    throw new TransientRegistryError(`${what}: HTTP ${status}`)
  }
}

/** The Authorization header a 401 asks for, or null when there is no way to answer it. */
async function authorize(
  challenge: ReturnType<typeof parseChallenge>,
  request: MountRequest,
  credentials: BasicCredentials | null,
  fetchImpl: Fetch
): Promise<string | null> {
  if (challenge?.scheme === 'basic') return credentials ? basicHeader(credentials) : null
  if (challenge?.scheme !== 'bearer') return null
  const response = await fetchImpl(tokenUrl(challenge.params, request), {
    headers: credentials ? { Authorization: basicHeader(credentials) } : {},
    signal: AbortSignal.timeout(quickOperationSeconds() * 1000)
  })
  failIfTransient(response.status, 'token request')
  if (!response.ok) {
    await response.body?.cancel()
    return null
  }
  const body = (await response.json()) as { token?: string; access_token?: string }
  const token = body.token ?? body.access_token
  if (!token) return null
  core.setSecret(token)
  return `Bearer ${token}`
}

/**
 * Ask the registry to mount a blob from another repository. Not mounted (a registry that does
 * not allow it, no permission to read the other repository) is an answer, not an error: the
 * layer is then uploaded. Transient failures throw, for the caller's retries.
 */
export async function mountBlob(
  request: MountRequest,
  credentials: BasicCredentials | null,
  fetchImpl: Fetch = fetch
): Promise<MountResult> {
  const url =
    `${baseUrl(request.registry)}/v2/${request.repository}/blobs/uploads/` +
    `?mount=${encodeURIComponent(request.digest)}&from=${encodeURIComponent(request.from)}`
  const post = (authorization: string | null): Promise<Response> =>
    fetchImpl(url, {
      method: 'POST',
      headers: {
        'Content-Length': '0',
        ...(authorization ? { Authorization: authorization } : {})
      },
      redirect: 'manual',
      signal: AbortSignal.timeout(quickOperationSeconds() * 1000)
    })
  let response = await post(null)
  if (response.status === 401) {
    await response.body?.cancel()
    const challenge = parseChallenge(response.headers.get('www-authenticate'))
    const authorization = await authorize(challenge, request, credentials, fetchImpl)
    if (authorization === null) return { mounted: false, reason: 'not authorized (HTTP 401)' }
    response = await post(authorization)
  }
  await response.body?.cancel()
  failIfTransient(response.status, `mount ${request.digest}`)
  if (response.status === 201) return { mounted: true }
  if (response.status === 202) {
    // The registry opened an upload instead of mounting: cancel it (best effort).
    const location = response.headers.get('location')
    if (location) {
      await fetchImpl(new URL(location, url), { method: 'DELETE' })
        .then(r => r.body?.cancel())
        .catch(() => undefined)
    }
    return { mounted: false, reason: 'the registry did not mount it (HTTP 202)' }
  }
  return { mounted: false, reason: `HTTP ${response.status}` }
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

/** The `auths` entry for a registry in a Docker config's text (pure, for tests). */
export function credentialsIn(configText: string, registry: string): BasicCredentials | null {
  const config = JSON.parse(configText) as {
    auths?: Record<string, { auth?: string; username?: string; password?: string }>
  }
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

/** Credentials for a registry from the first config file that has them; null: anonymous. */
export async function findCredentials(
  registry: string,
  authFile: string | null
): Promise<BasicCredentials | null> {
  for (const file of credentialFiles(authFile)) {
    const text = await readFile(file, 'utf8').catch(() => null)
    if (text === null) continue
    try {
      const found = credentialsIn(text, registry)
      if (found) return found
    } catch {
      // Not JSON: skopeo would fail on it too; go on to the next file.
    }
  }
  return null
}

export { TransientRegistryError }
