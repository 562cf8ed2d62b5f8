// Types for runner-machine.mjs: simulated runner machines (see runner-machine.sh).

export type MachineShape = 'none' | 'single-user' | 'daemon' | 'root'

/** debian12: this machine's own system; debian13: today's ubuntu-latest (see runner-machine.sh). */
export type MachineOs = 'debian12' | 'debian13'

export interface Machine {
  /** Holds the machine's state; its /nix is `nixDir` (on this machine's disk). */
  dir: string
  /** The process holding the mount namespace. */
  pid: number
  shape: MachineShape
  os: MachineOs
  /** DOCKER_HOST of the daemon the machine's steps use; null: docker's default. */
  dockerHost: string | null
  /** Who steps run as: `runner` (root for the 'root' shape). */
  user: string
  uid: number
  gid: number
  home: string
  /** The machine's /nix as seen from outside (absent for 'none' until the action makes it). */
  nixDir: string
}

/** argv that runs `argv` as root: itself for root, through passwordless sudo for anyone else. */
export function asRoot(argv: string[]): string[]
export function defaultRunnerUser(): string
export function ensureRunnerUser(user?: string): string
export function defaultRunnerOs(): MachineOs
export function dockerHostFor(os: MachineOs): string | null
export function startMachine(shape?: MachineShape, user?: string, os?: MachineOs): Machine
export function stopMachine(machine: Machine): void
export function machineArgv(
  machine: Machine,
  cwd: string,
  command: string[],
  options?: { asRootUser?: boolean }
): string[]
export function machineEnv(
  machine: Machine,
  options?: { asRootUser?: boolean }
): Record<string, string>
export const FOREIGN_ENV: RegExp
export function execInMachine(
  machine: Machine,
  command: string[],
  options?: { cwd?: string; env?: Record<string, string>; asRootUser?: boolean; input?: string }
): { exitCode: number; stdout: string; stderr: string }
export function giveToUser(machine: Machine, dir: string): void
export function userPath(pathValue: string): string
export function userTempDir(prefix: string, user?: string): string
export function giveToRunner(dir: string, user?: string): void
export function removeAsRoot(dir: string): void
export function letRunnerReach(dir: string): string[]
