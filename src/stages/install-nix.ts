// The nix stage: find a working Nix. Installing one is its own piece of work (issue 3);
// until then a missing Nix fails with a message that says how to get one.
import * as core from '@actions/core'
import * as io from '@actions/io'
import { homedir } from 'node:os'
import { dirname, join } from 'node:path'
import { run } from '../exec.js'

export interface NixOptions {
  installNix: boolean
}

export interface NixResult {
  version: string
  /** `path`: on PATH already; `adopted`: found off PATH and added to it. */
  found: 'path' | 'adopted'
  installed: false
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

export async function setupNix(options: NixOptions): Promise<NixResult> {
  const onPath = await io.which('nix', false)
  if (onPath) {
    const version = await nixVersionOf(onPath)
    if (version) {
      core.info(`Using Nix ${version} at ${onPath}`)
      return { version, found: 'path', installed: false }
    }
    core.warning(`${onPath} is on PATH but \`nix --version\` failed; looking further`)
  }
  for (const candidate of offPathCandidates(homedir())) {
    const version = await nixVersionOf(candidate)
    if (version) {
      core.info(
        `Using Nix ${version} at ${candidate} (not on PATH: added for this and later steps)`
      )
      core.addPath(dirname(candidate))
      return { version, found: 'adopted', installed: false }
    }
  }
  if (!options.installNix) {
    throw new Error(
      'Nix is not installed and install-nix is false: install Nix in an earlier step, ' +
        'or set install-nix: true'
    )
  }
  throw new Error(
    'Nix is not installed on this runner, and this version of the action cannot install it yet: ' +
      'install Nix in an earlier step (e.g. cachix/install-nix-action)'
  )
}
