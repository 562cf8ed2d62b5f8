// Running `nix` with the action's own settings. Stages and the store cache both call Nix, so
// this lives below them: neither has to import the other to get the same flags.
import { run } from '../exec.js'
import type { RunOptions, RunResult } from '../exec.js'

/** The action's own Nix calls enable these without touching the user's nix.conf. */
export const NIX_FEATURE_ARGS = ['--extra-experimental-features', 'nix-command flakes']

/** `nix <args>` with the features the action relies on (flakes, the nix command). */
export function runNix(args: readonly string[], options?: RunOptions): Promise<RunResult> {
  return run('nix', [...NIX_FEATURE_ARGS, ...args], options)
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
