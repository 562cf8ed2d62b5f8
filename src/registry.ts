// Talking to registries through the standard tools on GitHub runners: skopeo for manifest
// queries and daemonless copies, docker for pushes through the daemon.
import { createHash } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { CommandError, run } from './exec.js'
import { parseReference } from './reference.js'

/** What a registry holds under a reference. */
export interface RemoteManifest {
  /** `sha256:` of the manifest bytes: what the registry calls the digest. */
  digest: string
  mediaType: string | null
  /** The image config's digest (the image ID); null for an index (multi-platform). */
  configDigest: string | null
}

// Docker treats 127.0.0.0/8 as an insecure registry (plain HTTP allowed); skopeo needs to be
// told, and only loopback gets that treatment here too.
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i

export function isLoopbackRegistry(ref: string): boolean {
  const domain = parseReference(ref).domain
  return domain !== null && LOOPBACK_HOST.test(domain)
}

/** skopeo's TLS flag for one side of a copy (`--src-`, `--dest-` or plain for inspect). */
export function tlsArgs(side: 'src' | 'dest' | null, ref: string): string[] {
  if (!isLoopbackRegistry(ref)) return []
  return [side ? `--${side}-tls-verify=false` : '--tls-verify=false']
}

/** Parse a raw manifest (pure, for tests). */
export function parseRemoteManifest(raw: string): RemoteManifest {
  const manifest = JSON.parse(raw) as { mediaType?: string; config?: { digest?: string } }
  return {
    digest: `sha256:${createHash('sha256').update(raw, 'utf8').digest('hex')}`,
    mediaType: manifest.mediaType ?? null,
    configDigest: manifest.config?.digest ?? null
  }
}

const NOT_FOUND = /manifest unknown|name unknown|not found|404/i

/** The manifest a ref points at, or null when the registry has no such ref. */
export async function inspectManifest(ref: string): Promise<RemoteManifest | null> {
  try {
    const { stdout } = await run(
      'skopeo',
      ['inspect', '--raw', ...tlsArgs(null, ref), `docker://${ref}`],
      { silent: true }
    )
    return parseRemoteManifest(stdout)
  } catch (error) {
    if (error instanceof CommandError && NOT_FOUND.test(error.stderr)) return null
    throw error
  }
}

/** `skopeo copy` to a registry; returns the manifest digest it wrote. */
export async function skopeoCopy(
  source: string,
  destRef: string,
  digestFile: string,
  env: Record<string, string>
): Promise<string> {
  const sourceTls = source.startsWith('docker://') ? tlsArgs('src', source.slice(9)) : []
  await run(
    'skopeo',
    [
      'copy',
      '--digestfile',
      digestFile,
      ...sourceTls,
      ...tlsArgs('dest', destRef),
      source,
      `docker://${destRef}`
    ],
    { env }
  )
  return (await readFile(digestFile, 'utf8')).trim()
}

/** `v1: digest: sha256:... size: 528` -> the digest. */
export function parsePushDigest(stdout: string): string | null {
  return /digest:\s*(sha256:[a-f0-9]{64})/.exec(stdout)?.[1] ?? null
}

/** `docker push`; returns the manifest digest it reported. */
export async function dockerPush(ref: string): Promise<string> {
  const { stdout } = await run('docker', ['push', ref])
  const digest = parsePushDigest(stdout)
  if (!digest) throw new Error(`docker push ${ref} reported no digest:\n${stdout}`)
  return digest
}
