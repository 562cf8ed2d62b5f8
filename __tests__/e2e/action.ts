// What the pipeline tests share: the registry global-setup.ts started, and running the
// bundled action as GitHub's runners do: as the unprivileged `runner` user, on a simulated runner
// machine (scripts/runner-machine.sh) whose Nix is of a given shape; each run's temp dir and
// each machine removed after the file's tests.
import { afterAll } from '@jest/globals'
import { execFile } from 'node:child_process'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { runAction } from '../../scripts/run-action.mjs'
import type { RunOptions, RunResult } from '../../scripts/run-action.mjs'
import {
  execInMachine,
  machineArgv,
  machineEnv,
  startMachine,
  stopMachine
} from '../../scripts/runner-machine.mjs'
import type { Machine, MachineOs, MachineShape } from '../../scripts/runner-machine.mjs'

export const registry = (): string => {
  const value = process.env.REGISTRY
  if (!value) throw new Error('REGISTRY is not set: the e2e global setup did not run')
  return value
}

const tempDirs: string[] = []

const machines: Machine[] = []
let sharedMachine: Machine | null = null

afterAll(async () => {
  for (const machine of machines.splice(0)) stopMachine(machine)
  sharedMachine = null
  await Promise.all(tempDirs.splice(0).map(dir => rm(dir, { recursive: true, force: true })))
})

/**
 * A new runner machine: nothing left from earlier jobs (its own /nix, HOME and so Nix's and
 * skopeo's caches). Default shape: a single-user Nix the runner owns (nix-quick-install-action);
 * default OS: Debian 13, today's ubuntu-latest (global-setup.ts).
 */
export function freshMachine(shape: MachineShape = 'single-user', os?: MachineOs): Machine {
  const machine = startMachine(shape, undefined, os)
  machines.push(machine)
  return machine
}

/** The machine a test file's runs share unless they ask for their own. */
export function defaultMachine(): Machine {
  sharedMachine ??= freshMachine()
  return sharedMachine
}

/** Run a command on a machine as its user and return its stdout; throws when it fails. */
export function inMachine(
  machine: Machine,
  command: string[],
  options: { asRootUser?: boolean; cwd?: string; input?: string } = {}
): string {
  const result = execInMachine(machine, command, { cwd: process.cwd(), ...options })
  if (result.exitCode !== 0) {
    throw new Error(`${command.join(' ')} exited ${result.exitCode}: ${result.stderr}`)
  }
  return result.stdout
}

/**
 * inMachine without blocking this process: for commands that talk to a server the test runs
 * in this process (a flake input's, a cache service).
 */
export async function inMachineAsync(
  machine: Machine,
  command: string[],
  options: { cwd?: string } = {}
): Promise<string> {
  const [program = '', ...args] = machineArgv(machine, options.cwd ?? process.cwd(), command)
  const { stdout } = await promisify(execFile)(program, args, {
    env: { ...process.env, ...machineEnv(machine) },
    maxBuffer: 256 * 1024 * 1024
  })
  return stdout
}

const lines = (text: string): string[] => text.split('\n').filter(Boolean)

/** The machine's store, asked through its own Nix as its user (a daemon store: the daemon). */
export const store = {
  closure: (machine: Machine, drvPath: string): string[] =>
    lines(inMachine(machine, ['nix-store', '-qR', '--include-outputs', drvPath])),
  invalid: (machine: Machine, paths: string[]): string[] =>
    lines(inMachine(machine, ['nix-store', '--check-validity', '--print-invalid', ...paths])),
  delete: (machine: Machine, paths: string[]): void => {
    inMachine(machine, ['nix-store', '--delete', ...paths])
  },
  /** Where a store path of the machine is on this machine's disk. */
  hostPath: (machine: Machine, storePath: string): string =>
    join(machine.nixDir, storePath.replace(/^\/nix\//, ''))
}

/** Run the bundled action (main, then post) with these inputs, on the default machine. */
export async function action(
  inputs: RunOptions['inputs'],
  options: Partial<RunOptions> = {}
): Promise<RunResult> {
  const result = await runAction({
    inputs,
    timeoutMs: 240_000,
    ...options,
    machine: options.machine ?? defaultMachine()
  })
  tempDirs.push(result.tempDir)
  return result
}

/**
 * A shell line for a wrapper script in `dir` that sets `real` to the first `name` on PATH
 * outside `dir`: the program of the machine the wrapper runs on (Debian 13's docker is not
 * where this machine's is).
 */
export function findRealProgram(name: string, dir: string): string {
  return `real=$(IFS=:; for d in $PATH; do [ "$d" != '${dir}' ] && [ -x "$d/${name}" ] && { echo "$d/${name}"; break; }; done)`
}

/**
 * The watched commands that sent an image to a registry: `docker push`, and `skopeo copy` to
 * `docker://` (not skopeo's local copies, such as the containerd-store load's `dir:` image).
 */
export function registryPushes(commands: readonly string[][]): string[][] {
  return commands.filter(
    argv =>
      (argv[0] === 'docker' && argv[1] === 'push') ||
      (argv[0] === 'skopeo' && argv[1] === 'copy' && argv.some(a => a.startsWith('docker://')))
  )
}

/** What a failed run printed, for the assertion message. */
export function log(result: RunResult): string {
  return `${result.main.stdout}\n${result.main.stderr}`
}
