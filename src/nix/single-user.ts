// A single-user install from an unpacked release tarball, done step by step in TypeScript (what
// the tarball's `install --no-daemon` does, without running that script): /nix owned by this
// user, the store paths placed and registered, the default profile pointing at Nix.
import * as core from '../core.js'
import { constants, existsSync } from 'node:fs'
import { access, mkdir, readdir, readFile, symlink } from 'node:fs/promises'
import { join } from 'node:path'
import { run } from '../exec.js'
import { moveTree, removeTree } from '../tree.js'
import { releaseLayout } from './release.js'

export const NIX_ROOT = '/nix'
export const NIX_STORE = '/nix/store'
export const DEFAULT_PROFILE = '/nix/var/nix/profiles/default'
/** Keeps the CA bundle alive across garbage collections: it is not in the profile. */
export const CACERT_GC_ROOT = '/nix/var/nix/gcroots/nix-container-action-cacert'

export interface InstalledNix {
  /** `/nix/store/<hash>-nix-<version>` */
  storePath: string
  /** The default profile's bin: what goes on PATH. */
  bin: string
  cacert: string | null
}

export interface NixDirState {
  exists: boolean
  /** /nix exists and this user may write in it. */
  writable: boolean
  /** This user may create /nix (root, usually). */
  parentWritable: boolean
}

export type NixDirPlan = 'ready' | 'create' | 'sudo-create'

/** How to get a /nix this user owns; `sudo` only when /nix must be created and we cannot. */
export function planNixDir(state: NixDirState): NixDirPlan {
  if (state.exists) {
    if (state.writable) return 'ready'
    throw new Error(
      `${NIX_ROOT} exists but is not writable by this user, and it holds no working Nix: ` +
        `remove it or give it to this user (sudo chown -R "$(id -u)" ${NIX_ROOT}) before this step`
    )
  }
  return state.parentWritable ? 'create' : 'sudo-create'
}

export async function installSingleUser(
  releaseDir: string,
  version: string
): Promise<InstalledNix> {
  const storeDir = join(releaseDir, 'store')
  const entries = (await readdir(storeDir)).filter(e => !e.startsWith('.')).sort()
  const installScript = await readFile(join(releaseDir, 'install'), 'utf8').catch(() => null)
  const layout = releaseLayout(installScript, entries, version)
  const reginfo = await readFile(join(releaseDir, '.reginfo')).catch(() => {
    throw new Error(`the release has no .reginfo (${releaseDir}): it cannot be registered`)
  })

  await prepareNixDir()
  const created = [join(NIX_ROOT, 'store'), join(NIX_ROOT, 'var')].filter(d => !existsSync(d))
  await mkdir(NIX_STORE, { recursive: true })
  await mkdir(join(NIX_ROOT, 'var', 'nix'), { recursive: true })
  const placed: string[] = []
  try {
    placed.push(...(await placeStorePaths(storeDir, entries)))
    core.info(`Registering ${entries.length} store paths (nix-store --load-db < .reginfo)`)
    await run(join(layout.nix, 'bin', 'nix-store'), ['--load-db'], { input: reginfo, silent: true })
    core.info(`Creating the default profile ${DEFAULT_PROFILE} -> ${layout.nix}`)
    await run(join(layout.nix, 'bin', 'nix-env'), [
      '--profile',
      DEFAULT_PROFILE,
      '--set',
      layout.nix
    ])
    if (layout.cacert && !existsSync(CACERT_GC_ROOT)) await symlink(layout.cacert, CACERT_GC_ROOT)
  } catch (error) {
    await rollBack(placed, created)
    throw error
  }
  return { storePath: layout.nix, bin: join(DEFAULT_PROFILE, 'bin'), cacert: layout.cacert }
}

async function prepareNixDir(): Promise<void> {
  const exists = existsSync(NIX_ROOT)
  const plan = planNixDir({
    exists,
    writable: exists && (await canWrite(NIX_ROOT)),
    parentWritable: await canWrite('/')
  })
  if (plan === 'ready') return
  if (plan === 'create') {
    core.info(`Creating ${NIX_ROOT}`)
    await mkdir(NIX_ROOT, { mode: 0o755 })
    return
  }
  const owner = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`
  core.info(`Creating ${NIX_ROOT} with sudo, owned by this user (${owner})`)
  await run('sudo', ['-n', 'mkdir', '-m', '0755', NIX_ROOT])
  await run('sudo', ['-n', 'chown', owner, NIX_ROOT])
}

async function canWrite(path: string): Promise<boolean> {
  return access(path, constants.W_OK).then(
    () => true,
    () => false
  )
}

/**
 * Copy the store paths that are missing into /nix/store, read-only, each appearing at once
 * (renamed from a staging directory), so a failure never leaves a partial path behind.
 */
async function placeStorePaths(storeDir: string, entries: readonly string[]): Promise<string[]> {
  const missing = entries.filter(entry => !existsSync(join(NIX_STORE, entry)))
  core.info(
    `Copying ${missing.length} store paths to ${NIX_STORE}` +
      (missing.length < entries.length ? ` (${entries.length - missing.length} already there)` : '')
  )
  if (missing.length === 0) return []
  const staging = join(NIX_STORE, `.nix-container-action-${process.pid}`)
  await mkdir(staging)
  const placed: string[] = []
  try {
    await run('cp', ['-RPp', ...missing.map(entry => join(storeDir, entry)), staging], {
      silent: true
    })
    await run('chmod', ['-R', 'a-w', ...missing.map(entry => join(staging, entry))], {
      silent: true
    })
    for (const entry of missing) {
      moveTree(join(staging, entry), join(NIX_STORE, entry))
      placed.push(join(NIX_STORE, entry))
    }
    return placed
  } catch (error) {
    await rollBack(placed, [])
    throw error
  } finally {
    await removeTree(staging)
  }
}

/** Undo this run's changes under /nix, so that a retry starts from where this one did. */
async function rollBack(placed: readonly string[], createdDirs: readonly string[]): Promise<void> {
  if (placed.length + createdDirs.length === 0) return
  core.info(`Install failed: removing the ${placed.length} store paths this run placed`)
  for (const path of [...placed, ...createdDirs]) {
    await removeTree(path).catch((error: unknown) => {
      core.warning(`could not remove ${path}: ${String(error)}`)
    })
  }
}
