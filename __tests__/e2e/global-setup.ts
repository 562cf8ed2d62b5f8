// jest globalSetup for the e2e project: makes sure the real programs are installed, starts a
// private Docker daemon and registry on loopback, and points the tests (and the action they
// run) at them through process.env. Stopped again by global-teardown.ts.
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { asRoot, ensureRunnerUser, letRunnerReach } from '../../scripts/runner-machine.mjs'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
const servicesScript = path.join(repoRoot, 'scripts', 'services.sh')
const debian13Script = path.join(repoRoot, 'scripts', 'debian13-root.sh')

/** Run a setup script as root (through passwordless sudo for a contributor's own user). */
function execAsRoot(argv: string[]): void {
  const [command = '', ...args] = asRoot(argv)
  execFileSync(command, args, { stdio: 'inherit' })
}

// Builds with no network, no sandbox and no build users (see the file).
const TEST_NIX_CONFIG = fs.readFileSync(path.join(repoRoot, 'scripts', 'test-nix.conf'), 'utf8')

const REQUIRED_COMMANDS = [
  'nix',
  'dockerd',
  'docker',
  'docker-registry',
  'skopeo',
  'htpasswd',
  'sudo',
  // The static program in the images test-image.test.ts runs (package busybox-static).
  'busybox',
  // The HTTP binary cache of binary-cache.test.ts (with lighttpd-mod-webdav).
  'lighttpd',
  // The remote builder of remote-builders.test.ts (package openssh-server).
  'sshd'
]

function onPath(command: string): boolean {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/sbin', '/sbin']
  return dirs.some(dir => {
    try {
      fs.accessSync(path.join(dir || '.', command), fs.constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

function installMissingDeps(): void {
  const missing = REQUIRED_COMMANDS.filter(c => !onPath(c))
  if (missing.length === 0) return
  console.log(`e2e setup: ${missing.join(', ')} not found; running scripts/install-deps.sh`)
  execFileSync(path.join(repoRoot, 'scripts', 'install-deps.sh'), { stdio: 'inherit' })
}

function readEnvFile(file: string): Record<string, string> {
  const entries = fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(line => line.includes('='))
    .map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
  return Object.fromEntries(entries) as Record<string, string>
}

// Services started by someone else (NCA_SERVICES_DIR set, e.g. while iterating on a test)
// are reused and left running.
function servicesDir(): { dir: string; owned: boolean } {
  const given = process.env.NCA_SERVICES_DIR
  if (given && fs.existsSync(path.join(given, 'env'))) return { dir: given, owned: false }
  // Short path under /tmp: the daemon's unix socket lives inside it.
  const dir = fs.mkdtempSync('/tmp/nca-')
  execAsRoot([servicesScript, 'start', dir])
  return { dir, owned: true }
}

function setup(): void {
  installMissingDeps()
  // Today's runner shape (Debian 13's Docker on the containerd image store, skopeo 1.18, Nix
  // 2.26): built once per machine, a quick check after that.
  execAsRoot([debian13Script, 'ensure'])
  // The users the machines share must be there before a daemon's socket is given to a group.
  process.env.NCA_RUNNER_USER = ensureRunnerUser()
  const { dir, owned } = servicesDir()
  const env = readEnvFile(path.join(dir, 'env'))
  if (!env.DOCKER_HOST_DEBIAN12 || !env.DOCKER_HOST_DEBIAN13 || !env.REGISTRY) {
    throw new Error(
      `e2e setup: ${dir}/env lacks DOCKER_HOST_DEBIAN12, DOCKER_HOST_DEBIAN13 or REGISTRY`
    )
  }
  // Machines run Debian 13 unless a test asks for Debian 12 (an older self-hosted runner);
  // DOCKER_HOST, for the tests' own docker commands, is the daemon of that default.
  process.env.NCA_RUNNER_OS ??= 'debian13'
  process.env.DOCKER_HOST_DEBIAN12 = env.DOCKER_HOST_DEBIAN12
  process.env.DOCKER_HOST_DEBIAN13 = env.DOCKER_HOST_DEBIAN13
  process.env.DOCKER_HOST =
    process.env.NCA_RUNNER_OS === 'debian12' ? env.DOCKER_HOST_DEBIAN12 : env.DOCKER_HOST_DEBIAN13
  process.env.REGISTRY = env.REGISTRY
  process.env.NCA_SERVICES_DIR = dir
  process.env.NCA_SERVICES_OWNED = owned ? '1' : '0'
  // The runner reads the action and the test flakes from this checkout, wherever it is.
  for (const dir of letRunnerReach(repoRoot)) {
    console.log(`e2e setup: ${dir} made searchable (o+x) for the runner user`)
  }
  const userConfig = process.env.NIX_CONFIG
  // Ours last: in nix.conf a later line wins.
  process.env.NIX_CONFIG = userConfig ? `${userConfig}\n${TEST_NIX_CONFIG}` : TEST_NIX_CONFIG
}

export default function globalSetup(): Promise<void> {
  return Promise.resolve().then(setup)
}
