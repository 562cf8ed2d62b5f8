// The nix.conf this action writes for the rest of the job, and where Nix finds it: pure.
import { join } from 'node:path'

export interface ConfOptions {
  /** This run installed Nix: its defaults are ours to set (an existing Nix's are not). */
  installed: boolean
  /** Running as root, where Nix's default build-users-group (nixbld) does not exist. */
  asRoot: boolean
  githubToken: string | null
  /** The `nix-conf` input, one line each. */
  nixConf: readonly string[]
  /** The `builders` value (machine lines joined, see nix/builders.ts); null: none given. */
  builders?: string | null
}

/** The lines of our nix.conf; later lines win, so the user's `nix-conf` comes last. */
export function nixConfLines(options: ConfOptions): string[] {
  const lines = [
    '# Written by nix-container-action for the rest of this job.',
    // extra-: add to whatever an existing nix.conf enables, never replace it.
    'extra-experimental-features = nix-command flakes'
  ]
  if (options.installed) {
    lines.push('max-jobs = auto')
    // A single-user install has no build users; as root Nix would look for the nixbld group.
    if (options.asRoot) lines.push('build-users-group =')
  }
  if (options.githubToken) lines.push(`access-tokens = github.com=${options.githubToken}`)
  if (options.builders) lines.push(`builders = ${options.builders}`)
  lines.push(...options.nixConf)
  return lines
}

export function nixConfText(options: ConfOptions): string {
  return nixConfLines(options).join('\n') + '\n'
}

/** The same text with the token replaced, for the log. */
export function printableConfText(options: ConfOptions): string {
  return nixConfText({ ...options, githubToken: options.githubToken ? '***' : null })
}

/**
 * NIX_USER_CONF_FILES: our file first (the first file wins), then the files Nix would read
 * without the variable (or the value it already had), so a user's own nix.conf still counts.
 */
export function userConfFiles(
  ourFile: string,
  env: Readonly<Record<string, string | undefined>>,
  home: string
): string {
  const existing = env.NIX_USER_CONF_FILES
    ? env.NIX_USER_CONF_FILES.split(':')
    : defaultUserConfFiles(env, home)
  const files = [ourFile, ...existing.filter(file => file !== '' && file !== ourFile)]
  return files.join(':')
}

/** Where Nix looks for user configuration when NIX_USER_CONF_FILES is not set (XDG). */
export function defaultUserConfFiles(
  env: Readonly<Record<string, string | undefined>>,
  home: string
): string[] {
  const configHome = env.XDG_CONFIG_HOME || join(home, '.config')
  const configDirs = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':').filter(Boolean)
  return [configHome, ...configDirs].map(dir => join(dir, 'nix', 'nix.conf'))
}

/** Bundles Nix (and programs it starts) find without help: the installer's nix.sh list. */
export const SYSTEM_CA_BUNDLES = [
  '/etc/ssl/certs/ca-certificates.crt',
  '/etc/ssl/ca-bundle.pem',
  '/etc/ssl/certs/ca-bundle.crt',
  '/etc/pki/tls/certs/ca-bundle.crt'
]

/**
 * NIX_SSL_CERT_FILE to set, or null when not needed: a value already set, or a system CA bundle,
 * wins; otherwise the CA bundle that came with the tarball.
 */
export function sslCertFile(
  env: Readonly<Record<string, string | undefined>>,
  exists: (path: string) => boolean,
  cacert: string | null
): string | null {
  if (env.NIX_SSL_CERT_FILE) return null
  if (SYSTEM_CA_BUNDLES.some(exists)) return null
  return cacert ? join(cacert, 'etc', 'ssl', 'certs', 'ca-bundle.crt') : null
}
