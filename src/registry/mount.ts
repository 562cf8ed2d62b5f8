// Cross-repository blob mount: one registry API call (POST /v2/<repo>/blobs/uploads/?mount=
// <digest>&from=<other repo>) that makes a blob of another repository in the same registry
// part of this one, without a byte moving. Hand-written because skopeo (containers/image)
// mounts only blobs its blob-info cache remembers seeing there, and that cache is empty on a
// fresh runner: it would compress and upload the layer instead. Credentials come from the same
// Docker config files skopeo reads; Basic and token (Bearer) authentication are both spoken.
import { quickOperationSeconds } from './commands.js'
import { authorize, baseUrl, failIfTransient, getOverFetch } from './http.js'
import type { BasicCredentials, Fetch } from './http.js'

export interface MountRequest {
  /** Registry host[:port] as in the reference. */
  registry: string
  /** Repository path in the registry (no host): where the blob should appear. */
  repository: string
  /** Repository path that holds the blob. */
  from: string
  digest: string
}

export type MountResult = { mounted: true } | { mounted: false; reason: string }

/** A mount asks for push here and pull there (pure, for tests). */
export function mountScopes(request: MountRequest): string[] {
  return [`repository:${request.repository}:pull,push`, `repository:${request.from}:pull`]
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
    const authorization = await authorize(
      response.headers.get('www-authenticate'),
      mountScopes(request),
      credentials,
      getOverFetch(fetchImpl),
      quickOperationSeconds() * 1000
    )
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
