// The binary cache stage (`binary-cache`): before the build, the cache is a substituter of the
// job (nix.conf lines, written by the Nix stage); after the image shipped, the image's build
// closure (what the store cache saves) goes to it, signed, only what it lacks. A push that
// fails warns: the image is already in the registry.
import * as core from '../core.js'
import { storeTrustsUser } from '../nix/command.js'
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { pathsToCache, megabytes } from '../cache/save.js'
import { isDerivation } from '../cache/nix-store.js'
import { narBytes, registrationsOf } from '../cache/store-archive.js'
import { errorMessage, firstLine } from '../errors.js'
import { CommandError, settleAll } from '../exec.js'
import {
  copyArgs,
  logMessages,
  parseCopiedPaths,
  printableStoreUrl,
  pushStoreUrl,
  substituterConfLines
} from '../nix/binary-cache.js'
import type { BinaryCache } from '../nix/binary-cache.js'
import { batches, runNix } from '../nix/command.js'
import { formatNixSecretKey } from '../signing/nix-key.js'
import { actionTempDir } from '../temp.js'

/** The nix.conf lines that make the cache a substituter of this job. */
export function binaryCacheConfLines(cache: BinaryCache): string[] {
  if (cache.secretKey && !cache.publicKeys.includes(cache.secretKey.publicKey)) {
    core.warning(
      'binary-cache-public-key does not name the public half of binary-cache-secret-key: what ' +
        'this job pushes is signed by a key that jobs trusting only binary-cache-public-key refuse'
    )
  }
  if (cache.publicKeys.length === 0) {
    core.notice(
      `binary-cache: no key given, so Nix takes from ${printableStoreUrl(cache.url)} only paths signed by a key its own configuration trusts`
    )
  }
  return substituterConfLines(cache.url, cache.publicKeys)
}

/**
 * A daemon that does not trust the runner's user ignores the job's substituters and keys:
 * say so, and what the daemon's configuration needs, before the build goes without the cache.
 */
export async function checkDaemonTakesCache(cache: BinaryCache): Promise<void> {
  if ((await storeTrustsUser()) !== false) return
  const url = printableStoreUrl(cache.url)
  core.warning(
    `binary-cache: the Nix daemon does not trust this user, so it will not substitute from ${url}: ` +
      `add the user to trusted-users in the daemon's nix.conf, or list the cache there ` +
      `(trusted-substituters = ${cache.url}, trusted-public-keys = ${cache.publicKeys.join(' ') || '<its key>'}). ` +
      'The push after the image still works.'
  )
}

export interface BinaryCachePushOptions {
  cache: BinaryCache
  flake: string
  /** One a line, in `storePaths` order ('' where unknown). */
  drvPaths: string
  /** One a line: each image built. */
  storePaths: string
}

export interface BinaryCachePushResult {
  /** pushed: something or nothing sent; failed: a warning. */
  outcome: 'pushed' | 'failed'
  /** Paths in the image's build closure (what the store cache saves). */
  closureCount: number
  /** Paths sent: those the cache lacked. */
  paths: string[]
  /** NAR bytes of the paths sent. */
  bytes: number
  reason: string | null
}

/** The `binary-cache-pushed` output: what the push sent (no URL, no key). */
export function pushedOutput(result: BinaryCachePushResult): string {
  return JSON.stringify({
    paths: result.paths.length,
    bytes: result.bytes,
    closure: result.closureCount,
    ...(result.outcome === 'failed' ? { failed: true } : {})
  })
}

export function describePush(result: BinaryCachePushResult): string {
  const sent = `${result.paths.length} of ${result.closureCount} paths sent (${megabytes(result.bytes)})`
  switch (result.outcome) {
    case 'pushed':
      return `${sent}, the rest already there`
    case 'failed':
      return `failed (warning): ${result.reason ?? ''}`
  }
}

/**
 * Copy the build closure to the cache, signed with the secret key (in a 0600 file under
 * RUNNER_TEMP for the copy only). Never throws: a failure is a warning and the result says it.
 */
export async function pushToBinaryCache(
  options: BinaryCachePushOptions,
  onKeyFile: (file: string) => void = () => undefined
): Promise<BinaryCachePushResult> {
  const result: BinaryCachePushResult = {
    outcome: 'pushed',
    closureCount: 0,
    paths: [],
    bytes: 0,
    reason: null
  }
  const key = options.cache.secretKey
  if (key === null) throw new Error('pushToBinaryCache needs binary-cache-secret-key')
  const keyFile = join(actionTempDir(), `binary-cache-key-${process.pid}`)
  try {
    const closure = await pathsToCache(options.flake, options.drvPaths, options.storePaths)
    result.closureCount = closure.length
    await writeKeyFile(keyFile, formatNixSecretKey(key))
    onKeyFile(keyFile)
    const url = pushStoreUrl(options.cache.url, keyFile)
    core.info(
      `Copying the build closure (${closure.length} paths) to ${printableStoreUrl(options.cache.url)}, signed by ${key.name}`
    )
    // The derivations' copy and the outputs' side by side (each `nix copy` also sends its
    // paths several at a time): they share at most the derivations' sources.
    const [drvs, outputs] = await settleAll<[string[], string[]]>([
      copyAll(url, closure.filter(isDerivation), true),
      copyAll(
        url,
        closure.filter(path => !isDerivation(path)),
        false
      )
    ])
    result.paths = [...new Set([...drvs, ...outputs])].sort()
    result.bytes = narBytes(await registrationsOf(result.paths))
    core.info(`Sent ${result.paths.length} paths (${megabytes(result.bytes)}), the rest were there`)
    return result
  } catch (error) {
    const reason = errorMessage(error)
    core.warning(`Binary cache push failed, the job goes on (the image came first): ${reason}`)
    return { ...result, outcome: 'failed', reason: firstLine(reason) }
  } finally {
    await rm(keyFile, { force: true })
  }
}

/** Copy paths in command-line-sized batches, one after another: the paths sent. */
async function copyAll(url: string, paths: readonly string[], derivations: boolean) {
  const sent: string[] = []
  for (const batch of batches(paths)) sent.push(...(await copyBatch(url, batch, derivations)))
  return sent
}

/** One `nix copy`: the paths it sent; on failure, what Nix said (not its JSON log). */
async function copyBatch(
  url: string,
  paths: readonly string[],
  derivations: boolean
): Promise<string[]> {
  const { exitCode, stderr } = await runNix(copyArgs(url, paths, derivations), {
    silent: true,
    allowFailure: true
  })
  if (exitCode !== 0) {
    const argv = ['nix', 'copy', '--to', '<binary-cache>', `<${paths.length} paths>`]
    throw new CommandError(argv, exitCode, logMessages(stderr))
  }
  return parseCopiedPaths(stderr)
}

/** The key, readable by this user only, written before it holds anything. */
async function writeKeyFile(file: string, key: string): Promise<void> {
  await mkdir(actionTempDir(), { recursive: true, mode: 0o700 })
  await writeFile(file, '', { mode: 0o600 })
  await chmod(file, 0o600)
  await writeFile(file, `${key}\n`)
}

/** Remove a key file main left (it stopped mid-push); for post. */
export async function removeKeyFile(file: string): Promise<boolean> {
  try {
    await rm(file)
    return true
  } catch {
    return false
  }
}
