// Getting a Nix release onto the runner: from the tool cache when an earlier job left it there,
// otherwise downloaded (with retries), verified against its SHA-256, extracted and cached.
// Nothing under /nix is touched here, so a bad download cannot leave a half-installed Nix.
import * as core from '../core.js'
import * as tc from '@actions/tool-cache'
import { createHash, randomUUID } from 'node:crypto'
import { createReadStream, existsSync } from 'node:fs'
import { mkdir, readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../exec.js'
import { checksumSource, parseSha256File, releaseName, releaseUrl } from './release.js'
import type { NixSystem } from './release.js'
import { errorMessage } from '../errors.js'
import { removeTree } from '../tree.js'
import { runnerTemp } from '../temp.js'

export const TOOL_NAME = 'nix'

export interface FetchOptions {
  version: string
  system: NixSystem
  installUrl: string | null
}

export interface FetchedRelease {
  /** The unpacked `nix-<version>-<system>` directory: install, .reginfo, store/. */
  dir: string
  /** Where it was downloaded from; null on a tool-cache hit. */
  url: string | null
}

export async function fetchRelease(options: FetchOptions): Promise<FetchedRelease> {
  const { version, system } = options
  const cached = tc.find(TOOL_NAME, version, system)
  if (cached) {
    core.info(`Nix ${version} (${system}) is in the tool cache: ${cached}`)
    return { dir: cached, url: null }
  }
  const url = releaseUrl(version, system, options.installUrl)
  const expected = await expectedSha256(version, system, url)
  core.info(`Downloading ${url}`)
  const tarball = await download(url, 'the Nix release tarball')
  try {
    const actual = await sha256File(tarball)
    if (actual !== expected.sha256) {
      throw new Error(
        `the Nix release tarball ${url} has SHA-256 ${actual}, but ${expected.from} says ` +
          `${expected.sha256}: it is corrupt, truncated or not that release; nothing was installed`
      )
    }
    core.info(`SHA-256 ${actual} matches ${expected.from}`)
    const dir = await unpackAndCache(tarball, options)
    return { dir, url }
  } finally {
    await rm(tarball, { force: true })
  }
}

interface ExpectedSum {
  sha256: string
  /** Where the sum came from, for messages. */
  from: string
}

async function expectedSha256(
  version: string,
  system: NixSystem,
  url: string
): Promise<ExpectedSum> {
  const source = checksumSource(version, system, url)
  if (source.kind === 'pinned') {
    return { sha256: source.sha256, from: `the checksum pinned for Nix ${version} (${system})` }
  }
  const file = await download(source.url, 'the checksum published beside the tarball')
  try {
    const text = await readFile(file, 'utf8')
    try {
      return { sha256: parseSha256File(text), from: source.url }
    } catch (error) {
      throw new Error(`${source.url} ${errorMessage(error)}`)
    }
  } finally {
    await rm(file, { force: true })
  }
}

async function download(url: string, what: string): Promise<string> {
  try {
    return await tc.downloadTool(url, join(runnerTemp(), randomUUID()))
  } catch (error) {
    throw new Error(`could not download ${what} from ${url}: ${errorMessage(error)}`)
  }
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Unpack next to the download, copy into the tool cache, and drop the unpacked copy. */
async function unpackAndCache(tarball: string, options: FetchOptions): Promise<string> {
  const { version, system } = options
  const unpacked = join(runnerTemp(), randomUUID())
  await mkdir(unpacked, { recursive: true })
  try {
    await run('tar', ['-xJf', tarball, '-C', unpacked], { silent: true })
    const top = join(unpacked, releaseName(version, system))
    if (!existsSync(join(top, 'store'))) {
      throw new Error(
        `the tarball does not hold ${releaseName(version, system)}/store: is it the Nix ${version} ` +
          `release for ${system}?`
      )
    }
    const dir = await tc.cacheDir(top, TOOL_NAME, version, system)
    core.info(`Cached in the tool cache for later jobs on this runner: ${dir}`)
    return dir
  } finally {
    await removeTree(unpacked)
  }
}
