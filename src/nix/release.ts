// Which Nix release tarball to fetch and how to check it: pure decisions, tested table-driven.

export type NixSystem = 'x86_64-linux' | 'aarch64-linux'

/** The release installed when `nix-version` is not given. */
export const PINNED_NIX_VERSION = '2.35.2'

/**
 * SHA-256 of the official release tarballs, as published in each release's `install` script
 * (`hash=` beside `path=.../nix-<version>-<system>.tar.xz`). Only versions whose sums were
 * checked against more than one published copy belong here; any other version is checked
 * against the `.sha256` file published beside its tarball.
 */
export const PINNED_CHECKSUMS: Readonly<
  Record<string, Readonly<Partial<Record<NixSystem, string>>>>
> = {
  '2.35.2': {
    'x86_64-linux': '0c3960a9792331a22081c3c7a5d8465db9b17c50b3acdf18587fa4c6f2cb1158',
    'aarch64-linux': '4d0302a2910f5eec1c33b8deef634f04899a75737e7001ec49908d003ae5efda'
  }
}

export const OFFICIAL_RELEASES = 'https://releases.nixos.org/nix'

/** A version as releases.nixos.org names them: `2.35.2`. */
export const NIX_VERSION_PATTERN = /^\d+\.\d+\.\d+$/

/** The Nix system of this runner; installing is supported on Linux x86_64 and aarch64 only. */
export function nixSystem(platform: string, arch: string): NixSystem {
  if (platform === 'linux' && arch === 'x64') return 'x86_64-linux'
  if (platform === 'linux' && arch === 'arm64') return 'aarch64-linux'
  if (platform === 'darwin') {
    // A macOS install needs its own APFS volume for /nix: not done here yet.
    throw new Error(
      'installing Nix on macOS is not supported yet: install Nix in an earlier step ' +
        '(this action then finds it), or use a Linux runner'
    )
  }
  throw new Error(
    `installing Nix is not supported on ${platform}/${arch}: only Linux x86_64 and aarch64; ` +
      'install Nix in an earlier step and this action finds it'
  )
}

/** `nix-2.35.2-x86_64-linux`: the tarball's name without `.tar.xz`, and its top directory. */
export function releaseName(version: string, system: NixSystem): string {
  return `nix-${version}-${system}`
}

/**
 * Where to download the tarball. `install-url` is either the tarball itself (ends in `.tar.xz`)
 * or a mirror of releases.nixos.org/nix, to which `nix-<v>/nix-<v>-<system>.tar.xz` is added.
 */
export function releaseUrl(version: string, system: NixSystem, installUrl: string | null): string {
  if (installUrl !== null && installUrl.endsWith('.tar.xz')) return installUrl
  const base = (installUrl ?? OFFICIAL_RELEASES).replace(/\/+$/, '')
  return `${base}/nix-${version}/${releaseName(version, system)}.tar.xz`
}

export type ChecksumSource = { kind: 'pinned'; sha256: string } | { kind: 'published'; url: string }

/** The pinned sum when there is one (a mirror must serve the same bytes), else `<url>.sha256`. */
export function checksumSource(version: string, system: NixSystem, url: string): ChecksumSource {
  const pinned = PINNED_CHECKSUMS[version]?.[system]
  return pinned ? { kind: 'pinned', sha256: pinned } : { kind: 'published', url: `${url}.sha256` }
}

/** The hex digest in a `.sha256` file: a bare digest, or `sha256sum` output. */
export function parseSha256File(text: string): string {
  const digest = /^\s*([0-9a-fA-F]{64})(?:\s|$)/.exec(text)?.[1]
  if (!digest) {
    throw new Error(
      `is not a SHA-256 checksum file (it starts ${JSON.stringify(text.slice(0, 40))})`
    )
  }
  return digest.toLowerCase()
}

export interface ReleaseLayout {
  /** The store path of Nix itself: `/nix/store/<hash>-nix-<version>`. */
  nix: string
  /** The CA bundle package the installer puts in the profile, when the tarball has one. */
  cacert: string | null
}

/**
 * Which of the tarball's store paths are Nix and the CA bundle. The tarball's `install` script
 * names them (`nix="/nix/store/..."`); without it, the entry named `<hash>-nix-<version>`.
 */
export function releaseLayout(
  installScript: string | null,
  storeEntries: readonly string[],
  version: string
): ReleaseLayout {
  const assigned = (name: string): string | null =>
    new RegExp(`^${name}="(/nix/store/[^"/]+)"\\s*$`, 'm').exec(installScript ?? '')?.[1] ?? null
  const byName = (pattern: RegExp): string | null => {
    const entry = storeEntries.find(e => pattern.test(e))
    return entry ? `/nix/store/${entry}` : null
  }
  const escaped = version.replace(/\./g, '\\.')
  const nix = assigned('nix') ?? byName(new RegExp(`^[a-z0-9]{32}-nix-${escaped}$`))
  if (!nix) {
    throw new Error(
      `the tarball holds no store path for Nix ${version} (no nix= line in its install script, ` +
        `no store/<hash>-nix-${version})`
    )
  }
  const base = (path: string): string => path.slice('/nix/store/'.length)
  if (!storeEntries.includes(base(nix))) {
    throw new Error(`the tarball's install script names ${nix}, which is not in its store/`)
  }
  const cacert = assigned('cacert') ?? byName(/^[a-z0-9]{32}-nss-cacert-/)
  return { nix, cacert: cacert && storeEntries.includes(base(cacert)) ? cacert : null }
}
