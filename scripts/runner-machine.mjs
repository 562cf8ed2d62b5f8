// Simulated runner machines for the tests, the demo and the benchmarks (scripts/runner-machine.sh
// makes them): each a private mount namespace with a /nix of a given shape, where steps run as
// the unprivileged user GitHub's runners use. Root (or passwordless sudo) starts them.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'runner-machine.sh')
const repoRoot = path.dirname(path.dirname(script))
const isRoot = () => process.getuid?.() === 0

/** Root runs root's commands directly; anyone else through passwordless sudo. */
export function asRoot(argv) {
  return isRoot() ? argv : ['sudo', '-n', '-E', 'env', `PATH=${process.env.PATH ?? ''}`, ...argv]
}

/**
 * The user steps run as: NCA_RUNNER_USER, else `runner`, made by scripts/runner-user.sh as on
 * GitHub's runners (passwordless sudo, the docker group), whoever starts the tests.
 */
export function defaultRunnerUser() {
  return process.env.NCA_RUNNER_USER || 'runner'
}

/** Make sure the runner user exists (as on ubuntu-latest); returns its name. */
export function ensureRunnerUser(user = defaultRunnerUser()) {
  const userScript = path.join(path.dirname(script), 'runner-user.sh')
  return execFileSync(userScript, [user], { encoding: 'utf8' }).trim()
}

/** rm -rf of a run's files, which the runner user owns: through sudo when this process is not root. */
export function removeAsRoot(dir) {
  const [command, ...args] = asRoot(['rm', '-rf', '--', dir])
  execFileSync(command, args)
}

/**
 * Let the runner user reach `dir` (the checkout the action and its flakes are read from): each
 * ancestor it may not search gets the search bit for others (o+x: enter, not list), as a
 * checkout under /root would otherwise be out of its reach. Returns the directories changed.
 */
export function letRunnerReach(dir) {
  const ancestors = []
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    ancestors.unshift(at)
    if (at === path.dirname(at)) break
  }
  const closed = ancestors.filter(ancestor => (fs.statSync(ancestor).mode & 0o001) === 0)
  for (const ancestor of closed) {
    const [command, ...args] = asRoot(['chmod', 'o+x', ancestor])
    execFileSync(command, args)
  }
  return closed
}

/** chown -R, through sudo when this process is not root. */
function chownTree(dir, uid, gid) {
  const [command, ...args] = asRoot(['chown', '-R', `${uid}:${gid}`, dir])
  execFileSync(command, args)
}

function passwdEntry(user) {
  const line = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).trim()
  const [name, , uid, gid, , home] = line.split(':')
  return { name, uid: Number(uid), gid: Number(gid), home }
}

/**
 * The OS a machine runs unless asked for another: NCA_RUNNER_OS, else this machine's own
 * (debian12). The e2e suite sets debian13, today's ubuntu-latest.
 */
export function defaultRunnerOs() {
  const os = process.env.NCA_RUNNER_OS || 'debian12'
  if (os !== 'debian12' && os !== 'debian13') {
    throw new Error(`NCA_RUNNER_OS must be debian12 or debian13, got '${os}'`)
  }
  return os
}

/**
 * The Docker daemon a machine of `os` uses: DOCKER_HOST_DEBIAN12 / DOCKER_HOST_DEBIAN13 as
 * scripts/services.sh writes them, else DOCKER_HOST.
 */
export function dockerHostFor(os) {
  return process.env[`DOCKER_HOST_${os.toUpperCase()}`] || process.env.DOCKER_HOST || null
}

/**
 * The checkout, and the repository it belongs to when that lies outside it: a git worktree's
 * `.git` is a file naming the main repository's, which Nix reads to evaluate a flake in it.
 */
function checkoutDirs() {
  const dirs = [repoRoot]
  try {
    const common = execFileSync(
      'git',
      ['-C', repoRoot, 'rev-parse', '--path-format=absolute', '--git-common-dir'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }
    ).trim()
    if (common && !common.startsWith(repoRoot + path.sep)) dirs.push(common)
  } catch {
    // Not a git checkout (an unpacked tarball): the flakes are plain paths.
  }
  return dirs
}

/**
 * Start a machine. shape: 'none' | 'single-user' | 'daemon' | 'root' (see runner-machine.sh);
 * os: 'debian12' | 'debian13'. Steps and commands run as `user`, or as root for the 'root' shape.
 * @returns {import('./runner-machine.d.mts').Machine}
 */
export function startMachine(
  shape = 'single-user',
  user = defaultRunnerUser(),
  os = defaultRunnerOs()
) {
  const runAs = shape === 'root' ? 'root' : user
  const dir = fs.mkdtempSync('/tmp/nca-machine-')
  // The checkout (the action's bundles, the flakes) is shared with a machine of another OS.
  const binds = { NCA_MACHINE_BINDS: checkoutDirs().join(':') }
  const [command, ...args] = asRoot([script, 'start', dir, shape, runAs, os])
  const pid = Number(
    execFileSync(command, args, { encoding: 'utf8', env: { ...process.env, ...binds } }).trim()
  )
  const account = passwdEntry(runAs)
  return {
    dir,
    pid,
    shape,
    os,
    dockerHost: dockerHostFor(os),
    user: account.name,
    uid: account.uid,
    gid: account.gid,
    home: account.home,
    // 'none': the /nix the action makes lives in the machine's own root.
    nixDir: shape === 'none' ? `/proc/${pid}/root/nix` : path.join(dir, 'nix')
  }
}

export function stopMachine(machine) {
  const argv = asRoot([script, 'stop', machine.dir])
  execFileSync(argv[0], argv.slice(1), { stdio: 'inherit' })
}

/**
 * argv that runs `command` inside the machine, in `cwd`, as its user (or root): the caller
 * gives the environment (HOME etc.: see machineEnv).
 */
export function machineArgv(machine, cwd, command, { asRootUser = false } = {}) {
  const enter = ['nsenter', '-t', String(machine.pid), '-m', '-r', `--wdns=${cwd}`, '--']
  const user = asRootUser ? 'root' : machine.user
  const drop =
    user === 'root' ? [] : ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--init-groups', '--']
  return asRoot([...enter, ...drop, ...command])
}

/** What a login of the machine's user has that root's environment would get wrong. */
export function machineEnv(machine, { asRootUser = false } = {}) {
  const root = asRootUser || machine.user === 'root'
  return {
    HOME: root ? '/root' : machine.home,
    USER: root ? 'root' : machine.user,
    LOGNAME: root ? 'root' : machine.user,
    PATH: root ? (process.env.PATH ?? '') : userPath(process.env.PATH ?? ''),
    // The daemon of the machine's OS (the containerd image store on debian13).
    ...(machine.dockerHost ? { DOCKER_HOST: machine.dockerHost } : {})
  }
}

/** PATH without root's own directories (~/.cargo/bin etc.), which the user may not search. */
export function userPath(pathValue) {
  return pathValue
    .split(':')
    .filter(dir => dir && dir !== '/root' && !dir.startsWith('/root/'))
    .join(':')
}

/** Variables of the invoking user that would point the machine's user at someone else's files. */
export const FOREIGN_ENV =
  /^(XDG_RUNTIME_DIR|XDG_CONFIG_HOME|XDG_CACHE_HOME|XDG_DATA_HOME|XDG_STATE_HOME|DOCKER_CONFIG|REGISTRY_AUTH_FILE|SUDO_.*)$/

/** Run a command inside the machine and wait for it (tests' own look at the machine's state). */
export function execInMachine(
  machine,
  command,
  { cwd = '/', env = {}, asRootUser = false, input } = {}
) {
  const argv = machineArgv(machine, cwd, command, { asRootUser })
  const result = spawnSync(argv[0], argv.slice(1), {
    encoding: 'utf8',
    input,
    env: { ...process.env, ...machineEnv(machine, { asRootUser }), ...env },
    maxBuffer: 256 * 1024 * 1024
  })
  if (result.error) throw result.error
  return { exitCode: result.status ?? 1, stdout: result.stdout, stderr: result.stderr }
}

/** Give a directory the machine made for its user (RUNNER_TEMP etc.) to that user. */
export function giveToUser(machine, dir) {
  if (machine.uid === process.getuid?.()) return
  chownTree(dir, machine.uid, machine.gid)
}

/**
 * A new directory under /tmp (shared with every machine) owned by the runner user: a checkout,
 * a flake or a tool cache the runner's steps read and write, as on GitHub's runners.
 */
export function userTempDir(prefix, user = defaultRunnerUser()) {
  const dir = fs.mkdtempSync(path.join('/tmp', prefix))
  giveToRunner(dir, user)
  return dir
}

/** Give a tree the tests wrote (as root) to the runner user, as if the runner had written it. */
export function giveToRunner(dir, user = defaultRunnerUser()) {
  const account = passwdEntry(user)
  if (account.uid === process.getuid?.()) return
  chownTree(dir, account.uid, account.gid)
}
