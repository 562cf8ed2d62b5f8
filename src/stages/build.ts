// The build stage: `nix build <flake>#<attribute>`, reading the output path from --json
// (Nix 2.8 has no --print-out-paths) and leaving no `result` link in the workspace.
import * as core from '../core.js'
import { userInfo } from 'node:os'
import { CommandError } from '../exec.js'
import { builderFailureMessage, builderFailures } from '../nix/builders.js'
import { currentSystem, runNix } from '../nix/command.js'

export interface BuildOptions {
  flake: string
  attribute: string
  system: string | null
  nixArgs: string[]
}

export interface BuildResult {
  storePath: string
  drvPath: string
}

export function installable(options: Pick<BuildOptions, 'flake' | 'attribute'>): string {
  return `${options.flake}#${options.attribute}`
}

export function buildArgs(options: BuildOptions): string[] {
  return [
    'build',
    installable(options),
    '--no-link',
    '--json',
    '--print-build-logs',
    ...(options.system ? ['--system', options.system] : []),
    ...options.nixArgs
  ]
}

interface BuildJsonEntry {
  drvPath?: string
  outputs?: Record<string, string>
}

/** The `out` path (or the only output) of the first built derivation. */
export function parseBuildJson(stdout: string): BuildResult {
  let entries: BuildJsonEntry[]
  try {
    entries = JSON.parse(stdout) as BuildJsonEntry[]
  } catch {
    throw new Error(`nix build --json printed something that is not JSON: ${stdout.slice(0, 200)}`)
  }
  const first = Array.isArray(entries) ? entries[0] : undefined
  const outputs = first?.outputs ?? {}
  const storePath = outputs.out ?? Object.values(outputs)[0]
  if (!first || !storePath) throw new Error(`nix build --json named no output path: ${stdout}`)
  return { storePath, drvPath: first.drvPath ?? '' }
}

const MISSING_ATTRIBUTE = /does not provide attribute/
// A builder for another architecture that this machine cannot run (no QEMU binfmt handler),
// or a derivation Nix will not build here at all (no extra-platforms, no remote builder).
const FOREIGN_SYSTEM = /Exec format error|is required to build '[^']*', but I am a/

/** What to set when a build for another system fails for want of an emulator or builder. */
export function foreignSystemHint(system: string): string {
  return (
    `Building for ${system} on this machine needs an emulator or a remote builder: ` +
    'register QEMU with binfmt (docker/setup-qemu-action) and add ' +
    `"extra-platforms = ${system}" to nix-conf, or give a "builders" line for a ${system} ` +
    'machine, or build on a native runner and combine the images with merge'
  )
}

export async function buildImage(options: BuildOptions): Promise<BuildResult> {
  try {
    const { stdout, stderr } = await runNix(buildArgs(options))
    const result = parseBuildJson(stdout)
    // Nix falls back to building here when it may: the build passed, but not where it was meant to.
    for (const { uri, said } of builderFailures(stderr)) {
      core.warning(
        `remote builder ${uri || '(unnamed)'} could not be used, Nix built without it: ${said}`
      )
    }
    core.info(`Built ${result.storePath}`)
    return result
  } catch (error) {
    if (error instanceof CommandError && MISSING_ATTRIBUTE.test(error.stderr)) {
      throw new Error(await missingAttributeMessage(options))
    }
    const builders =
      error instanceof CommandError
        ? builderFailureMessage(error.stderr, userInfo().username)
        : null
    if (builders !== null) {
      throw new Error(`nix build ${installable(options)} failed: ${builders}`)
    }
    if (error instanceof CommandError) {
      const hint =
        options.system !== null && FOREIGN_SYSTEM.test(error.stderr)
          ? ` ${foreignSystemHint(options.system)}.`
          : ''
      throw new Error(
        `nix build ${installable(options)} failed.${hint} The end of its log:\n${error.tail()}`
      )
    }
    throw error
  }
}

/** Say what the flake offers instead, for the system the build was for. */
async function missingAttributeMessage(options: BuildOptions): Promise<string> {
  const system = options.system ?? (await currentSystem())
  const head = `flake ${options.flake} has no attribute "${options.attribute}" for ${system}`
  const offered = await runNix(
    ['eval', '--json', `${options.flake}#packages.${system}`, '--apply', 'builtins.attrNames'],
    { silent: true, allowFailure: true }
  )
  if (offered.exitCode !== 0) return `${head}, and it has no packages.${system}`
  const names = JSON.parse(offered.stdout) as string[]
  return `${head}; packages.${system} offers: ${names.join(', ') || '(nothing)'}`
}
