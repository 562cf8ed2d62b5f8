// The Nix stage: use a working Nix when there is one (on PATH, or off it where self-hosted
// machines keep it), otherwise install the pinned, checksummed release tarball single-user;
// then write this job's nix.conf. Decisions are pure functions beside the stage.
import * as core from '../core.js'
import * as io from '@actions/io'
import { existsSync } from 'node:fs'
import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { homedir, userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import { run } from '../exec.js'
import { nixConfText, printableConfText, sslCertFile, userConfFiles } from '../nix/conf.js'
import { buildersSetting, untrustedDaemonMessage } from '../nix/builders.js'
import type { MachineLine } from '../nix/builders.js'
import { builderKeyPath, writeBuilderKey } from '../nix/builder-key.js'
import { storeTrustsUser } from '../nix/command.js'
import { nixSystem } from '../nix/release.js'
import { installSingleUser } from '../nix/single-user.js'
import { allowUserNamespaces } from '../nix/user-namespaces.js'
import { actionTempDir } from '../temp.js'

export interface NixOptions {
  installNix: boolean
  /** The release to install when there is no Nix (the pinned default is filled in by inputs). */
  nixVersion: string
  installUrl: string | null
  nixConf: readonly string[]
  githubToken: string | null
  /** `builders` and `builder-ssh-key`: remote builders for this job; none when empty. */
  builders?: RemoteBuilders
}

export interface RemoteBuilders {
  machines: readonly MachineLine[]
  sshKey: string | null
}

export type NixSource = 'path' | 'adopted' | 'installed'

export interface NixResult {
  version: string
  /** `path`: on PATH already; `adopted`: found off PATH and added to it; `installed`: by this run. */
  found: NixSource
  installed: boolean
  /** The nix program the later stages run. */
  nix: string
}

export interface ExistingNix {
  nix: string
  version: string
  onPath: boolean
}

export type SetupPlan =
  | { action: 'use'; existing: ExistingNix }
  | { action: 'install' }
  | { action: 'fail'; message: string }

/** Find first: an existing Nix is used, never reinstalled; install only when allowed. */
export function planSetup(existing: ExistingNix | null, installNix: boolean): SetupPlan {
  if (existing) return { action: 'use', existing }
  if (installNix) return { action: 'install' }
  return {
    action: 'fail',
    message:
      'Nix is not installed and install-nix is false: set install-nix: true to let this action ' +
      'install it, or install Nix in an earlier step (on PATH, or in ' +
      '/nix/var/nix/profiles/default or ~/.nix-profile, where this action finds it)'
  }
}

/** How the job summary says where Nix came from. */
export function describeSource(found: NixSource): string {
  return { path: 'found on PATH', adopted: 'adopted', installed: 'installed' }[found]
}

/** Where self-hosted machines keep a Nix that is not on PATH. */
export function offPathCandidates(home: string): string[] {
  return [
    '/nix/var/nix/profiles/default/bin/nix',
    join(home, '.nix-profile', 'bin', 'nix'),
    '/run/current-system/sw/bin/nix'
  ]
}

/** `nix (Nix) 2.8.0` -> `2.8.0` */
export function parseNixVersion(output: string): string | null {
  return (
    /\b(\d+\.\d+(?:\.\d+)?(?:[-.\w]*)?)\s*$/.exec(output.trim().split('\n')[0] ?? '')?.[1] ?? null
  )
}

async function nixVersionOf(nix: string): Promise<string | null> {
  const result = await run(nix, ['--version'], { silent: true, allowFailure: true }).catch(
    () => null
  )
  return result?.exitCode === 0 ? parseNixVersion(result.stdout) : null
}

/** A Nix that answers `nix --version`: on PATH first, then the usual places off it. */
async function findExistingNix(): Promise<ExistingNix | null> {
  const onPath = await io.which('nix', false)
  if (onPath) {
    const version = await nixVersionOf(onPath)
    if (version) return { nix: onPath, version, onPath: true }
    core.warning(`${onPath} is on PATH but \`nix --version\` failed; looking further`)
  }
  for (const candidate of offPathCandidates(homedir())) {
    const version = await nixVersionOf(candidate)
    if (version) return { nix: candidate, version, onPath: false }
  }
  return null
}

export async function setupNix(options: NixOptions): Promise<NixResult> {
  const plan = planSetup(await findExistingNix(), options.installNix)
  if (plan.action === 'fail') throw new Error(plan.message)
  const result =
    plan.action === 'use'
      ? useExisting(plan.existing)
      : await installNix(options.nixVersion, options)
  // ubuntu-latest restricts the user namespaces a single-user Nix builds in.
  await allowUserNamespaces()
  await writeJobConf({
    installed: result.installed,
    asRoot: process.getuid?.() === 0,
    githubToken: options.githubToken,
    nixConf: options.nixConf,
    builders: await prepareBuilders(options.builders)
  })
  if (options.builders?.machines.length) await checkDaemonTakesBuilders()
  return result
}

/** Where `builder-ssh-key` is written for this job (the post step removes it). */
export function builderKeyFile(): string {
  return builderKeyPath(actionTempDir())
}

/** The `builders` value for nix.conf, with the key written where its `-` fields point. */
async function prepareBuilders(builders: RemoteBuilders | undefined): Promise<string | null> {
  if (!builders || builders.machines.length === 0) return null
  let keyFile: string | null = null
  if (builders.sshKey !== null) {
    keyFile = builderKeyFile()
    await mkdir(actionTempDir(), { recursive: true, mode: 0o700 })
    await writeBuilderKey(keyFile, builders.sshKey)
  }
  const uris = builders.machines.map(machine => machine.uri).join(', ')
  core.info(`Remote builders: ${uris}${keyFile ? ` (builder-ssh-key in ${keyFile}, 0600)` : ''}`)
  return buildersSetting(builders.machines, keyFile)
}

/** A daemon that does not trust the runner drops `builders` in silence: say so before building. */
async function checkDaemonTakesBuilders(): Promise<void> {
  if ((await storeTrustsUser()) === false) {
    throw new Error(`builders: ${untrustedDaemonMessage(userInfo().username)}`)
  }
}

function useExisting(existing: ExistingNix): NixResult {
  if (existing.onPath) {
    core.info(`Using Nix ${existing.version} at ${existing.nix}: not installing`)
    return { version: existing.version, found: 'path', installed: false, nix: existing.nix }
  }
  core.info(
    `Using Nix ${existing.version} at ${existing.nix} (not on PATH: added for this and later steps)`
  )
  core.addPath(dirname(existing.nix))
  return { version: existing.version, found: 'adopted', installed: false, nix: existing.nix }
}

async function installNix(version: string, options: NixOptions): Promise<NixResult> {
  const system = nixSystem(process.platform, process.arch)
  core.info(`No working Nix found: installing Nix ${version} (${system}), single-user`)
  // The download (and @actions/tool-cache with its HTTP client) loads only when Nix is installed.
  const { fetchRelease } = await import('../nix/download.js')
  const release = await fetchRelease({ version, system, installUrl: options.installUrl })
  const installed = await installSingleUser(release.dir, version)

  const certFile = sslCertFile(process.env, existsSync, installed.cacert)
  if (certFile) {
    core.info(`No system CA bundle: NIX_SSL_CERT_FILE=${certFile}`)
    core.exportVariable('NIX_SSL_CERT_FILE', certFile)
  }
  core.addPath(installed.bin)
  const nix = join(installed.bin, 'nix')
  const actual = await nixVersionOf(nix)
  if (!actual) throw new Error(`the installed ${nix} does not run: \`nix --version\` failed`)
  if (actual !== version) core.warning(`asked for Nix ${version}, but ${nix} is Nix ${actual}`)
  core.info(`Installed Nix ${actual}: ${installed.storePath}, on PATH as ${installed.bin}`)
  return { version: actual, found: 'installed', installed: true, nix }
}

/**
 * Our nix.conf, in RUNNER_TEMP (private to this job, deleted by the runner after it), found
 * through NIX_USER_CONF_FILES by this step's nix calls and every later step's.
 */
async function writeJobConf(options: Parameters<typeof nixConfText>[0]): Promise<void> {
  const dir = actionTempDir()
  const file = join(dir, 'nix.conf')
  await mkdir(dir, { recursive: true, mode: 0o700 })
  // 0600 before the token is written: the file may exist from an earlier step.
  await writeFile(file, '', { mode: 0o600 })
  await chmod(file, 0o600)
  await writeFile(file, nixConfText(options))
  core.info(`Nix configuration for this job (${file}):\n${printableConfText(options).trimEnd()}`)
  core.exportVariable('NIX_USER_CONF_FILES', userConfFiles(file, process.env, homedir()))
}
