// A Nix binary cache (`binary-cache`): what Nix needs to substitute from it (nix.conf lines),
// the store URL a push signs with, which paths a `nix copy` sent. Pure functions (whether a
// daemon takes the job's substituter: storeTrustsUser in ./command.ts).
import type { NixSecretKey } from '../signing/nix-key.js'

/** The store URL schemes a binary cache may have: Nix's HTTP, file, S3 and SSH stores. */
export const BINARY_CACHE_SCHEMES = ['https', 'http', 'file', 's3', 'ssh', 'ssh-ng'] as const

/** Why a `binary-cache` value is no store URL this action takes, or null when it is one. */
export function storeUrlProblem(value: string): string | null {
  if (/\s/.test(value)) return 'must not contain white space'
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(value)?.[1]
  if (scheme === undefined) {
    return `is not a Nix store URL: expected one of ${BINARY_CACHE_SCHEMES.map(s => `${s}://`).join(', ')}`
  }
  if (!(BINARY_CACHE_SCHEMES as readonly string[]).includes(scheme)) {
    return `has the scheme ${scheme}://, not one of ${BINARY_CACHE_SCHEMES.map(s => `${s}://`).join(', ')}`
  }
  const rest = value.slice(scheme.length + 3)
  const [location = ''] = rest.split('?')
  if (scheme === 'file' && !location.startsWith('/')) {
    return 'is a file:// URL without an absolute path (file:///path/to/cache)'
  }
  if (scheme !== 'file' && location === '') return `names no host or bucket after ${scheme}://`
  if (/[?&]secret-key=/.test(value)) {
    return 'carries secret-key=: give the key in "binary-cache-secret-key" (written to a private file for the push)'
  }
  return null
}

/** The lines that make the cache a substituter of this job, trusted by these keys. */
export function substituterConfLines(url: string, publicKeys: readonly string[]): string[] {
  const lines = [`extra-substituters = ${url}`]
  if (publicKeys.length > 0) lines.push(`extra-trusted-public-keys = ${publicKeys.join(' ')}`)
  return lines
}

/** The URL `nix copy --to` gets: the cache's, signing with the key in `keyFile`. */
export function pushStoreUrl(url: string, keyFile: string): string {
  const separator = url.includes('?') ? '&' : '?'
  return `${url}${separator}secret-key=${keyFile}`
}

/**
 * The cache's URL for the log and the summary: scheme, host and path, without the query (its
 * parameters may name profiles or files) and without user information.
 */
export function printableStoreUrl(url: string): string {
  const [withoutQuery = ''] = url.split('?')
  return withoutQuery.replace(/^([a-z-]+:\/\/)[^/@]*@/, '$1')
}

/**
 * `nix copy` arguments: internal-json logs say which paths it sent (it skips what is there).
 * Store derivations go with `--derivation` (copied as themselves, not built for their outputs),
 * other paths without it (Nix 2.26 takes an output with `--derivation` for its deriver).
 */
export function copyArgs(
  pushUrl: string,
  paths: readonly string[],
  derivations: boolean
): string[] {
  const which = derivations ? ['--derivation'] : []
  return ['copy', ...which, '--log-format', 'internal-json', '--to', pushUrl, ...paths]
}

/** Nix's activity type for copying one path (ActivityType actCopyPath). */
const ACT_COPY_PATH = 100

interface LogEvent {
  action?: string
  type?: number
  fields?: unknown[]
}

/** The paths a `nix copy --log-format internal-json` began to send, from its stderr (pure). */
export function parseCopiedPaths(stderr: string): string[] {
  const paths = new Set<string>()
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('@nix ')) continue
    let event: LogEvent
    try {
      event = JSON.parse(line.slice(5)) as LogEvent
    } catch {
      continue
    }
    const path = event.fields?.[0]
    if (event.action === 'start' && event.type === ACT_COPY_PATH && typeof path === 'string') {
      paths.add(path)
    }
  }
  return [...paths].sort()
}

/** What Nix said, from internal-json stderr: its messages as text, for a warning (pure). */
export function logMessages(stderr: string): string {
  const messages: string[] = []
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('@nix ')) {
      if (line.trim() !== '') messages.push(line)
      continue
    }
    try {
      const event = JSON.parse(line.slice(5)) as { action?: string; msg?: string; level?: number }
      // Errors and warnings (levels 0 and 1), without the terminal's colours.
      if (event.action === 'msg' && typeof event.msg === 'string' && (event.level ?? 9) <= 1) {
        messages.push(stripAnsi(event.msg))
      }
    } catch {
      messages.push(line)
    }
  }
  return messages.join('\n')
}

function stripAnsi(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/\u001b\[[0-9;]*m/g, '')
}

/** The `binary-cache` inputs, checked. */
export interface BinaryCache {
  /** The store URL, as given (its query parameters are Nix's store settings). */
  url: string
  /** Signs what the job pushes; null: the job only reads the cache. */
  secretKey: NixSecretKey | null
  /** The keys Nix trusts the cache's paths by: `binary-cache-public-key`, else the secret key's. */
  publicKeys: string[]
}
