// What a Nix build output is, decided by its content rather than its name: dockerTools
// names outputs freely (`image.tar.gz`, `stream-app`, ...).
import { access, open, stat } from 'node:fs/promises'
import { join } from 'node:path'

export type Compression = 'none' | 'gzip' | 'zstd'

export type ImageFormat =
  | { kind: 'docker-archive'; compression: Compression }
  /** An executable that writes a docker archive to stdout (dockerTools.streamLayeredImage). */
  | { kind: 'stream' }
  /** A directory in the OCI image layout (oci-layout, index.json, blobs/). */
  | { kind: 'oci-layout' }

/** The `image-format` output. */
export function formatName(format: ImageFormat): string {
  return format.kind
}

export function describeFormat(format: ImageFormat): string {
  if (format.kind === 'stream') return 'an executable that streams a docker archive'
  if (format.kind === 'oci-layout') return 'an OCI image layout directory'
  const compression = { none: 'uncompressed', gzip: 'gzip', zstd: 'zstd' }[format.compression]
  return `a docker archive (${compression})`
}

const HEADER_BYTES = 512
const EXECUTABLE_BITS = 0o111

/** Classify the first bytes of a regular file (pure, for tests). */
export function classifyHeader(header: Buffer, executable: boolean): ImageFormat | null {
  const startsWith = (...bytes: number[]): boolean => bytes.every((b, i) => header[i] === b)
  if (startsWith(0x1f, 0x8b)) return { kind: 'docker-archive', compression: 'gzip' }
  if (startsWith(0x28, 0xb5, 0x2f, 0xfd)) return { kind: 'docker-archive', compression: 'zstd' }
  // POSIX and GNU tar both put "ustar" at offset 257.
  if (header.subarray(257, 262).toString('latin1') === 'ustar') {
    return { kind: 'docker-archive', compression: 'none' }
  }
  const isScript = startsWith(0x23, 0x21) // "#!"
  const isElf = startsWith(0x7f, 0x45, 0x4c, 0x46)
  if (executable && (isScript || isElf)) return { kind: 'stream' }
  return null
}

/** Detect the format of a build output, or throw an error that says what was found. */
export async function detectFormat(path: string): Promise<ImageFormat> {
  const info = await stat(path)
  if (info.isDirectory()) return detectDirectoryFormat(path)
  const header = Buffer.alloc(HEADER_BYTES)
  const file = await open(path, 'r')
  try {
    await file.read(header, 0, HEADER_BYTES, 0)
  } finally {
    await file.close()
  }
  const format = classifyHeader(header, (info.mode & EXECUTABLE_BITS) !== 0)
  if (format) return format
  if (looksLikeNix2container(header)) {
    throw new Error(
      `${path} looks like nix2container's image JSON, whose layers stay in the Nix store: ` +
        "it needs nix2container's own skopeo (the nix: transport). Push it with its " +
        '`copyToRegistry` app, or build a docker archive (dockerTools) for this action'
    )
  }
  const preview = JSON.stringify(header.subarray(0, 16).toString('latin1'))
  throw new Error(
    `${path} is not a container image: expected a docker archive (tar, tar.gz, tar.zst), an ` +
      `executable that streams one, or an OCI layout directory, but it starts with ${preview}. ` +
      'Does the flake attribute build an image (dockerTools.buildImage, buildLayeredImage, ' +
      'streamLayeredImage)?'
  )
}

async function detectDirectoryFormat(path: string): Promise<ImageFormat> {
  const isOciLayout = await access(join(path, 'oci-layout')).then(
    () => true,
    () => false
  )
  if (isOciLayout) return { kind: 'oci-layout' }
  throw new Error(
    `${path} is a directory without an oci-layout file; expected a docker archive ` +
      '(tar, tar.gz, tar.zst), an executable that streams one, or an OCI image layout'
  )
}

/** nix2container's image JSON: `{"version": 1, "image-config": {...}, "layers": [...]}`. */
export function looksLikeNix2container(header: Buffer): boolean {
  const start = header.toString('utf8').trimStart()
  return start.startsWith('{') && start.includes('"image-config"')
}
