// How pushed layers are compressed (`compression`, `compression-level`): what each tool is told,
// and the compressor the action runs itself when it writes layers (docker's containerd store).
import { spawn } from 'node:child_process'
import { Duplex } from 'node:stream'
import * as zlib from 'node:zlib'

export type LayerCompressionFormat = 'gzip' | 'zstd'

export interface LayerCompression {
  format: LayerCompressionFormat
  /** The format's level; null: the tool's default. */
  level: number | null
}

export const LAYER_COMPRESSION_FORMATS: readonly LayerCompressionFormat[] = ['gzip', 'zstd']

/** The levels each format takes (zstd's ultra levels 20-22 need more memory than runners spare). */
export const COMPRESSION_LEVELS: Record<LayerCompressionFormat, { min: number; max: number }> = {
  gzip: { min: 1, max: 9 },
  zstd: { min: 1, max: 19 }
}

export const DEFAULT_LAYER_COMPRESSION: LayerCompression = { format: 'gzip', level: null }

/** Media types of a layer compressed so, in the manifest format that carries it. */
export function layerMediaType(format: LayerCompressionFormat): string {
  return format === 'gzip'
    ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
    : 'application/vnd.oci.image.layer.v1.tar+zstd'
}

/**
 * `skopeo copy` flags for layers compressed so (pure, for tests). zstd layers need an OCI
 * manifest: Docker's schema 2 has no media type for them.
 */
export function skopeoCompressionArgs(compression: LayerCompression): string[] {
  return [
    '--dest-compress',
    '--dest-compress-format',
    compression.format,
    ...(compression.level === null ? [] : ['--dest-compress-level', String(compression.level)]),
    ...(compression.format === 'zstd' ? ['--format', 'oci'] : [])
  ]
}

// zlib's zstd (Node 22.15 and 23.8 on, so the action's Node 24); older Nodes run the zstd program.
type ZstdFactory = (options?: { params?: Record<number, number> }) => Duplex
const zstdOfZlib = (zlib as unknown as { createZstdCompress?: ZstdFactory }).createZstdCompress
const ZSTD_LEVEL_PARAMETER = 100 // ZSTD_c_compressionLevel
const DEFAULT_ZSTD_LEVEL = 3

/** A stream that compresses what is written to it. */
export function compressor(compression: LayerCompression): Duplex {
  if (compression.format === 'gzip') {
    return zlib.createGzip(compression.level === null ? {} : { level: compression.level })
  }
  const level = compression.level ?? DEFAULT_ZSTD_LEVEL
  if (zstdOfZlib) return zstdOfZlib({ params: { [ZSTD_LEVEL_PARAMETER]: level } })
  return zstdProgram(level)
}

/** The zstd program as a duplex stream: its stdin written, its stdout read. */
function zstdProgram(level: number): Duplex {
  const child = spawn('zstd', ['-q', '-c', `-${level}`], { stdio: ['pipe', 'pipe', 'inherit'] })
  const duplex = Duplex.from({ writable: child.stdin, readable: child.stdout })
  child.on('error', error => duplex.destroy(error))
  child.on('close', code => {
    if (code !== 0) duplex.destroy(new Error(`zstd exited with code ${code}`))
  })
  return duplex
}
