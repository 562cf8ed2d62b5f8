// Reading the registry's HTTP API directly, as a client independent of docker and skopeo.
const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json'
].join(', ')

export interface RegistryManifest {
  status: number
  /** The registry's Docker-Content-Digest header. */
  digest: string | null
  mediaType: string | null
  configDigest: string | null
  layerCount: number
  /** Each layer's media type and size, in order. */
  layers: { mediaType: string; size: number }[]
}

/** GET /v2/<name>/manifests/<reference> on a registry at host:port (plain HTTP, loopback). */
export async function getManifest(
  registry: string,
  name: string,
  reference: string,
  basicAuth?: { username: string; password: string }
): Promise<RegistryManifest> {
  const headers: Record<string, string> = { Accept: MANIFEST_TYPES }
  if (basicAuth) {
    const token = Buffer.from(`${basicAuth.username}:${basicAuth.password}`).toString('base64')
    headers.Authorization = `Basic ${token}`
  }
  const response = await fetch(`http://${registry}/v2/${name}/manifests/${reference}`, { headers })
  if (response.status !== 200) {
    return {
      status: response.status,
      digest: null,
      mediaType: null,
      configDigest: null,
      layerCount: 0,
      layers: []
    }
  }
  const body = (await response.json()) as {
    mediaType?: string
    config?: { digest?: string }
    layers?: { mediaType: string; size: number }[]
  }
  return {
    status: response.status,
    digest: response.headers.get('docker-content-digest'),
    mediaType: body.mediaType ?? response.headers.get('content-type'),
    configDigest: body.config?.digest ?? null,
    layerCount: body.layers?.length ?? 0,
    layers: (body.layers ?? []).map(({ mediaType, size }) => ({ mediaType, size }))
  }
}

/** Split `127.0.0.1:5000/e2e/app:v1` into the registry-relative name and the tag. */
export function splitRef(ref: string): { registry: string; name: string; tag: string } {
  const slash = ref.indexOf('/')
  const colon = ref.lastIndexOf(':')
  return {
    registry: ref.slice(0, slash),
    name: ref.slice(slash + 1, colon),
    tag: ref.slice(colon + 1)
  }
}

const INDEX_TYPES = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json'
]

/** A manifest (or index) as the registry returns it: its content type and parsed body. */
export async function getRawManifest(
  registry: string,
  name: string,
  reference: string
): Promise<{ status: number; contentType: string | null; digest: string | null; body: unknown }> {
  const response = await fetch(`http://${registry}/v2/${name}/manifests/${reference}`, {
    headers: { Accept: [...INDEX_TYPES, MANIFEST_TYPES].join(', ') }
  })
  const text = await response.text()
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    digest: response.headers.get('docker-content-digest'),
    body: response.status === 200 ? JSON.parse(text) : null
  }
}

/** GET /v2/<name>/blobs/<digest>, parsed as JSON (an image config). */
export async function getJsonBlob(
  registry: string,
  name: string,
  digest: string
): Promise<unknown> {
  const response = await fetch(`http://${registry}/v2/${name}/blobs/${digest}`)
  if (response.status !== 200) throw new Error(`blob ${name}@${digest}: HTTP ${response.status}`)
  return response.json()
}

/** PUT /v2/<name>/manifests/<reference>: a manifest written by hand (as BuildKit writes indexes). */
export async function putManifest(
  registry: string,
  name: string,
  reference: string,
  mediaType: string,
  body: string
): Promise<void> {
  const response = await fetch(`http://${registry}/v2/${name}/manifests/${reference}`, {
    method: 'PUT',
    headers: { 'Content-Type': mediaType },
    body
  })
  if (response.status !== 201) {
    throw new Error(`PUT ${name}:${reference}: HTTP ${response.status} ${await response.text()}`)
  }
}
