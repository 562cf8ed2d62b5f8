// Running `nix` with the action's own settings, and store paths in batches a command line holds.
// Stages, the store cache and the SBOM all call Nix, so this lives below them: none has to
// import another to get the same flags.
import { run } from '../exec.js'
import type { RunOptions, RunResult } from '../exec.js'

/** The action's own Nix calls enable these without touching the user's nix.conf. */
export const NIX_FEATURE_ARGS = ['--extra-experimental-features', 'nix-command flakes']

/** `nix <args>` with the features the action relies on (flakes, the nix command). */
export function runNix(args: readonly string[], options?: RunOptions): Promise<RunResult> {
  return run('nix', [...NIX_FEATURE_ARGS, ...args], options)
}

// Keeps each command line far below the kernel's argument limit (2 MiB for argv and the
// environment), whatever the closure size: a store path is at most 256 bytes, and even staged
// under a scratch directory 2,000 of them take under 700 KiB. Each command costs a start of
// Nix (~50 ms), so the batches are as large as that allows.
const PATHS_PER_COMMAND = 2000

/** Store paths (or anything) in groups small enough for one command line each. */
export function batches<T>(items: readonly T[], size = PATHS_PER_COMMAND): T[][] {
  const result: T[][] = []
  for (let i = 0; i < items.length; i += size) result.push(items.slice(i, i + size))
  return result
}

/** The Nix system this machine builds for by default (`x86_64-linux`, ...). */
export async function currentSystem(): Promise<string> {
  const { stdout } = await runNix(
    ['eval', '--impure', '--raw', '--expr', 'builtins.currentSystem'],
    {
      silent: true
    }
  )
  return stdout.trim()
}

/** NIX_REMOTE that leaves Nix opening the store itself (unset, `local`, `auto`), not a daemon. */
export function isLocalStore(nixRemote: string | null | undefined): boolean {
  return ['', 'local', 'auto'].includes(nixRemote ?? '')
}

/**
 * Whether the store trusts this user (a daemon ignores restricted settings, such as `builders`,
 * from a user it does not trust): `nix store info --json` (2.19+), `nix store ping --json`
 * before it; null when neither says (Nix 2.8 has no --json there).
 */
export async function storeTrustsUser(): Promise<boolean | null> {
  for (const command of ['info', 'ping']) {
    const result = await runNix(['store', command, '--json'], { silent: true, allowFailure: true })
    if (result.exitCode === 0) return parseTrusted(result.stdout)
  }
  return null
}

/**
 * Whether the store trusts this user, from `nix store info|ping --json` (Nix 2.15 on says
 * `trusted`, as 1/0 or true/false); null when Nix does not say (older Nix, or not a daemon).
 */
export function parseTrusted(stdout: string): boolean | null {
  try {
    const json = JSON.parse(stdout) as { trusted?: unknown }
    if (json.trusted === 1 || json.trusted === true) return true
    if (json.trusted === 0 || json.trusted === false) return false
  } catch {
    // Nix before --json: nothing said.
  }
  return null
}
