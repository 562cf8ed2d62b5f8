// Ubuntu 23.10 and later (ubuntu-latest is 24.04) restrict unprivileged user namespaces through
// AppArmor (kernel.apparmor_restrict_unprivileged_userns=1): an unconfined process may create
// one but gets no capabilities in it, so a single-user Nix, which builds as this user inside a
// user namespace (its sandbox), fails to set up the sandbox ("setting up uid map: Permission
// denied"). Nix's sandbox-fallback does not help: creating the namespace succeeds. The runner
// has passwordless sudo and is thrown away after the job, so the action lifts the restriction
// there, as DeterminateSystems/nix-installer-action#193 and others advise. A daemon store
// builds as root, and root is not restricted: nothing to do there.
import * as core from '../core.js'
import { constants } from 'node:fs'
import { access, readFile } from 'node:fs/promises'
import { run } from '../exec.js'
import { errorMessage } from '../errors.js'
import { isLocalStore } from './command.js'

export const USERNS_SYSCTL_FILE = '/proc/sys/kernel/apparmor_restrict_unprivileged_userns'
export const USERNS_SYSCTL = 'kernel.apparmor_restrict_unprivileged_userns'

export interface UserNamespaceFacts {
  /** The sysctl's value; null where the kernel has no such setting (not Ubuntu, or older). */
  restricted: boolean | null
  asRoot: boolean
  /** This user builds in the store itself (single-user), rather than a daemon. */
  buildsAsThisUser: boolean
}

export type UserNamespacePlan = { lift: false; reason: string } | { lift: true }

/** Lift the restriction only where it is on and would stop this user's sandboxed builds. */
export function planUserNamespaces(facts: UserNamespaceFacts): UserNamespacePlan {
  if (facts.restricted !== true) return { lift: false, reason: 'not restricted' }
  if (facts.asRoot) return { lift: false, reason: 'builds run as root' }
  if (!facts.buildsAsThisUser) return { lift: false, reason: 'a Nix daemon builds' }
  return { lift: true }
}

export function parseSysctlFlag(text: string | null): boolean | null {
  if (text === null) return null
  const value = text.trim()
  return value === '' ? null : value !== '0'
}

export interface UserNamespaceOptions {
  sysctlFile?: string
  storeDir?: string
}

export type UserNamespaceOutcome = 'not-needed' | 'lifted' | 'failed'

/**
 * Where the runner restricts user namespaces and this user builds single-user, turn the
 * restriction off through sudo (a notice says so). Never throws: without sudo it warns how
 * builds will fail and what to do.
 */
export async function allowUserNamespaces(
  options: UserNamespaceOptions = {}
): Promise<UserNamespaceOutcome> {
  const sysctlFile = options.sysctlFile ?? USERNS_SYSCTL_FILE
  const plan = planUserNamespaces({
    restricted: parseSysctlFlag(await readFile(sysctlFile, 'utf8').catch(() => null)),
    asRoot: process.getuid?.() === 0,
    buildsAsThisUser: await buildsAsThisUser(options.storeDir ?? '/nix/store')
  })
  if (!plan.lift) return 'not-needed'
  try {
    await run('sudo', ['-n', 'sysctl', '-w', `${USERNS_SYSCTL}=0`], { silent: true })
    core.notice(
      `${USERNS_SYSCTL} was 1 (Ubuntu's AppArmor restriction on user namespaces), which stops a ` +
        `single-user Nix from setting up its build sandbox: set to 0 with sudo for this runner`
    )
    return 'lifted'
  } catch (error) {
    core.warning(
      `${USERNS_SYSCTL} is 1 and could not be set to 0 (sudo -n sysctl failed: ` +
        `${errorMessage(error)}): sandboxed builds of this single-user Nix will fail to set up ` +
        `their user namespace. Give the job passwordless sudo, or add "sandbox = false" to nix-conf`
    )
    return 'failed'
  }
}

/** A single-user store: this user may write it (no NIX_REMOTE daemon in between). */
async function buildsAsThisUser(storeDir: string): Promise<boolean> {
  if (!isLocalStore(process.env.NIX_REMOTE)) return false
  return access(storeDir, constants.W_OK).then(
    () => true,
    () => false
  )
}
