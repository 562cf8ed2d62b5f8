// Platforms (os/architecture/variant) as OCI image configs and indexes name them, and how
// they map to Nix systems: the index entry of each image is read from its own config, and a
// config that names another architecture than the system it was built for is an error.

export interface Platform {
  os: string
  architecture: string
  variant?: string
}

// Nix system -> the platform an image built for it must declare (GOARCH names, as OCI uses).
const SYSTEM_PLATFORMS: Record<string, Platform> = {
  'x86_64-linux': { os: 'linux', architecture: 'amd64' },
  'aarch64-linux': { os: 'linux', architecture: 'arm64' },
  'i686-linux': { os: 'linux', architecture: '386' },
  'armv7l-linux': { os: 'linux', architecture: 'arm', variant: 'v7' },
  'armv6l-linux': { os: 'linux', architecture: 'arm', variant: 'v6' },
  'riscv64-linux': { os: 'linux', architecture: 'riscv64' },
  'powerpc64le-linux': { os: 'linux', architecture: 'ppc64le' },
  's390x-linux': { os: 'linux', architecture: 's390x' },
  'x86_64-darwin': { os: 'darwin', architecture: 'amd64' },
  'aarch64-darwin': { os: 'darwin', architecture: 'arm64' }
}

// Node's process.arch -> the Nix system of a Linux runner.
const NODE_ARCH_SYSTEMS: Record<string, string> = {
  x64: 'x86_64-linux',
  arm64: 'aarch64-linux',
  ia32: 'i686-linux',
  arm: 'armv7l-linux',
  riscv64: 'riscv64-linux',
  ppc64: 'powerpc64le-linux',
  s390x: 's390x-linux'
}

/** `linux/arm64`, `linux/arm/v7` */
export function formatPlatform(platform: Platform): string {
  const { os, architecture, variant } = platform
  return variant ? `${os}/${architecture}/${variant}` : `${os}/${architecture}`
}

/** The os, architecture and variant of an image config (pure, for tests). */
export function platformOfConfig(configJson: string): Platform {
  let config: { os?: unknown; architecture?: unknown; variant?: unknown }
  try {
    config = JSON.parse(configJson) as typeof config
  } catch {
    throw new Error('the image config is not valid JSON')
  }
  const os = typeof config.os === 'string' ? config.os : ''
  const architecture = typeof config.architecture === 'string' ? config.architecture : ''
  if (os === '' || architecture === '') {
    throw new Error(
      `the image config names no platform (os ${JSON.stringify(os)}, ` +
        `architecture ${JSON.stringify(architecture)})`
    )
  }
  const variant = typeof config.variant === 'string' && config.variant ? config.variant : null
  return variant ? { os, architecture, variant } : { os, architecture }
}

/** The platform a Nix system's image declares, or null for a system this table lacks. */
export function platformOfSystem(system: string): Platform | null {
  return SYSTEM_PLATFORMS[system] ?? null
}

/** The Nix system of a platform, or '' when no system in the table has it. */
export function systemOfPlatform(platform: Platform): string {
  const key = formatPlatform(normalise(platform))
  const found = Object.entries(SYSTEM_PLATFORMS).find(([, p]) => formatPlatform(p) === key)
  return found?.[0] ?? ''
}

/** The Nix system of the machine this runs on (a Linux runner). */
export function runnerSystem(arch: string = process.arch): string | null {
  return NODE_ARCH_SYSTEMS[arch] ?? null
}

/** arm64's variant is v8 whether written or not; other variants are kept. */
function normalise(platform: Platform): Platform {
  if (platform.architecture === 'arm64' && platform.variant === 'v8') {
    return { os: platform.os, architecture: 'arm64' }
  }
  return platform
}

export function samePlatform(a: Platform, b: Platform): boolean {
  return formatPlatform(normalise(a)) === formatPlatform(normalise(b))
}

/**
 * An image built for `system` must say so in its config (nixpkgs issues #106695, #87345: an
 * image claiming the wrong architecture is pulled on machines that cannot run it).
 */
export function checkPlatformOfSystem(system: string, platform: Platform, what: string): void {
  const expected = platformOfSystem(system)
  if (expected === null) return
  const sameArch =
    expected.os === platform.os &&
    expected.architecture === platform.architecture &&
    (expected.variant === undefined || samePlatform(expected, platform))
  if (!sameArch) {
    throw new Error(
      `${what} was built for ${system}, but its config says ${formatPlatform(platform)} ` +
        `(an image for ${system} must say ${formatPlatform(expected)}): ` +
        'set "architecture" (and "os") in the image config to match the system'
    )
  }
}

/** Two images of one platform cannot share an index: name both (pure, for tests). */
export function checkDistinctPlatforms(
  images: readonly { name: string; platform: Platform }[]
): void {
  for (const [i, image] of images.entries()) {
    const earlier = images.slice(0, i).find(other => samePlatform(other.platform, image.platform))
    if (earlier) {
      throw new Error(
        `${earlier.name} and ${image.name} are both ${formatPlatform(image.platform)}: ` +
          'an image index holds one image per platform'
      )
    }
  }
}
