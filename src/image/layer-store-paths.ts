// The Nix store paths an image's layers hold (`nix/store/<hash>-<name>` entries), for the SBOM.
// Read in the pass the action already makes over the image: from the archive stream while it
// feeds `docker load`, or, for an uncompressed archive file, by seeking over the layers' headers.
import { createReadStream } from 'node:fs'
import { open } from 'node:fs/promises'
import { posix } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { Parser } from 'tar'
import type { ReadEntry } from 'tar'
import { errorMessage } from '../errors.js'
import { entryName, indexTar } from './plain-archive.js'
import type { TarEntry } from './plain-archive.js'

const STORE_DIR = '/nix/store'
// A store path's base name: 32 characters of Nix's base32, `-`, a name.
const STORE_ENTRY = /^nix\/store\/([0-9a-df-np-sv-z]{32}-[^/]+)/

/** `nix/store/<hash>-<name>/...` (with or without `./` or `/`) -> `/nix/store/<hash>-<name>`. */
export function storePathOfEntry(path: string): string | null {
  const match = STORE_ENTRY.exec(path.replace(/^(\.?\/)+/, ''))
  return match ? `${STORE_DIR}/${match[1]}` : null
}

/** What was found in each entry of the archive that may be a layer. */
interface EntryScan {
  paths: Set<string>
  error: string | null
}

/**
 * The store paths of the layers `manifest.json` names, in first-seen order. A layer that could
 * not be read as a tar is an error: the SBOM would be incomplete.
 */
function pathsOfLayers(
  layers: readonly string[],
  scans: ReadonlyMap<string, EntryScan>,
  links: ReadonlyMap<string, string>
): string[] {
  const paths = new Set<string>()
  for (const layer of layers) {
    const name = resolveLink(entryName(layer), links)
    const scan = scans.get(name)
    if (!scan) throw new Error(`the image archive has no layer ${layer}`)
    if (scan.error !== null) throw new Error(`cannot list layer ${layer}: ${scan.error}`)
    for (const path of scan.paths) paths.add(path)
  }
  return [...paths]
}

/** A layer may be a symbolic link to another entry (docker save and skopeo share layers so). */
function resolveLink(name: string, links: ReadonlyMap<string, string>): string {
  let current = name
  for (let hops = 0; hops < 8; hops++) {
    const target = links.get(current)
    if (target === undefined) return current
    current = entryName(posix.join(posix.dirname(current), target))
  }
  return current
}

/** A tar parser that only lists the store paths its entries name, skipping their data. */
function storePathLister(paths: Set<string>): Parser {
  return new Parser({
    strict: true,
    // Returning false makes node-tar skip the entry's data.
    filter: path => {
      const storePath = storePathOfEntry(path)
      if (storePath !== null) paths.add(storePath)
      return false
    }
  })
}

/** One layer of an uncompressed archive file, by seeking, or read through when compressed. */
async function scanLayerAt(archivePath: string, layer: TarEntry): Promise<EntryScan> {
  const scan: EntryScan = { paths: new Set(), error: null }
  try {
    const inner = await indexTar(archivePath, { offset: layer.offset, size: layer.size })
    for (const path of inner.keys()) {
      const storePath = storePathOfEntry(path)
      if (storePath !== null) scan.paths.add(storePath)
    }
  } catch (error) {
    if (!(await isGzipAt(archivePath, layer.offset))) {
      scan.error = errorMessage(error)
      return scan
    }
    const end = layer.offset + layer.size - 1
    const lister = storePathLister(scan.paths)
    await pipeline(createReadStream(archivePath, { start: layer.offset, end }), lister).catch(
      (failure: unknown) => {
        scan.error = errorMessage(failure)
      }
    )
  }
  return scan
}

async function isGzipAt(path: string, offset: number): Promise<boolean> {
  const file = await open(path, 'r')
  try {
    const magic = Buffer.alloc(2)
    await file.read(magic, 0, 2, offset)
    return magic[0] === 0x1f && magic[1] === 0x8b
  } finally {
    await file.close()
  }
}

/**
 * Collects the store paths of every file entry of an archive stream, to be fed each entry as
 * node-tar's outer parser reads it. Which entries are layers is only known from manifest.json,
 * which may come last, so every file that parses as a tar is listed; `layerStorePaths` then
 * keeps the layers'. A layer's own data is parsed as it streams (node-tar also unpacks a
 * gzip layer); nothing is buffered.
 */
export class StreamLayerScanner {
  private readonly scans = new Map<string, EntryScan>()
  private readonly links = new Map<string, string>()

  /** Call for each outer entry before anything else consumes it. */
  onEntry(entry: ReadEntry): void {
    const name = entryName(entry.path)
    if (entry.type === 'SymbolicLink' && entry.linkpath) this.links.set(name, entry.linkpath)
    if (entry.type !== 'File' || name.endsWith('.json')) return
    const scan: EntryScan = { paths: new Set(), error: null }
    this.scans.set(name, scan)
    const fail = (error: unknown): void => {
      scan.error ??= errorMessage(error)
    }
    const inner = storePathLister(scan.paths)
    inner.on('error', fail)
    entry.on('data', (chunk: Buffer) => {
      if (scan.error !== null) return
      try {
        inner.write(chunk)
      } catch (error) {
        fail(error)
      }
    })
    entry.on('end', () => {
      if (scan.error === null) inner.end()
    })
  }

  layerStorePaths(layers: readonly string[]): string[] {
    return pathsOfLayers(layers, this.scans, this.links)
  }
}

/**
 * The same for an uncompressed archive file, by seeking: each layer's tar headers are read,
 * its file data skipped. A compressed layer inside it cannot be seeked, and is read in full.
 */
export async function layerStorePathsBySeeking(
  archivePath: string,
  entries: ReadonlyMap<string, TarEntry>,
  layers: readonly string[]
): Promise<string[]> {
  const scans = new Map<string, EntryScan>()
  const links = new Map<string, string>()
  for (const [name, entry] of entries) {
    if (entry.type === 'SymbolicLink' && entry.linkpath) links.set(name, entry.linkpath)
  }
  for (const layer of layers) {
    const name = resolveLink(entryName(layer), links)
    const entry = entries.get(name)
    if (!entry || entry.type !== 'File' || scans.has(name)) continue
    scans.set(name, await scanLayerAt(archivePath, entry))
  }
  return pathsOfLayers(layers, scans, links)
}
