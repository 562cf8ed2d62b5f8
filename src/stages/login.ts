// Registry login for the push stage. The action logs in through a private copy of the Docker
// config under RUNNER_TEMP: the user's own config is never written, logins made earlier in the
// job (docker/login-action) are used as they are, and the post step's logout plus the removal
// of that directory leave no credentials behind, whatever happened in between.
import * as core from '../core.js'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import type { PushTool } from '../inputs.js'
import { parseReference } from '../registry/reference.js'
import { dockerLogin, dockerLogout, skopeoLogin, skopeoLogout } from '../registry/commands.js'
import type { Credentials } from '../registry/commands.js'
import { OperationError, withRetries } from '../registry/retry.js'
import type { RetryPolicy } from '../registry/retry.js'
import { errorMessage } from '../errors.js'
import { actionTempDir } from '../temp.js'

const GHCR = 'ghcr.io'

export interface LoginOptions {
  refs: string[]
  /** The `registry` input: the login target when given. */
  registry: string | null
  /** From `username` and `password`. */
  credentials: Credentials | null
  githubToken: string | null
  githubActor: string | null
  tool: PushTool
  tempDir: string
  retry: RetryPolicy
  /** Called before each login and after it, so the post step can always undo it. */
  saveSession: (session: LoginSession) => void
}

/** What the post step needs to log out: kept in state, holds no secret. */
export interface LoginSession {
  /** The private DOCKER_CONFIG directory; removed by the post step. */
  configDir: string
  tool: PushTool
  /** Registries logged in to (so far). */
  registries: string[]
}

export interface PlannedLogin {
  registry: string
  credentials: Credentials
  /** For the log: whose credentials. */
  as: string
}

/** The Docker config the user's docker commands read. */
export function userDockerConfigDir(): string {
  return process.env.DOCKER_CONFIG || join(homedir(), '.docker')
}

export function authFileOf(session: Pick<LoginSession, 'configDir'>): string {
  return join(session.configDir, 'config.json')
}

/** Which registries to log in to, with which credentials (pure, for tests). */
export function planLogins(
  options: Pick<LoginOptions, 'refs' | 'registry' | 'credentials' | 'githubToken' | 'githubActor'>,
  existingLogins: readonly string[]
): PlannedLogin[] {
  const domains = [...new Set(options.refs.map(ref => parseReference(ref).domain ?? 'docker.io'))]
  if (options.credentials) {
    const registries = options.registry ? [options.registry] : domains
    return registries.map(registry => ({
      registry,
      credentials: options.credentials as Credentials,
      as: options.credentials?.username ?? ''
    }))
  }
  // ghcr.io with no credentials given: the workflow's own token, unless already logged in.
  const { githubToken, githubActor } = options
  if (!githubToken || !githubActor || !domains.includes(GHCR) || existingLogins.includes(GHCR)) {
    return []
  }
  return [
    {
      registry: GHCR,
      credentials: { username: githubActor, password: githubToken },
      as: `${githubActor} with github-token`
    }
  ]
}

/** Registries the user's Docker config already holds credentials for. */
export async function existingLogins(configDir: string): Promise<string[]> {
  const config = await readDockerConfig(configDir)
  return [...Object.keys(config.auths ?? {}), ...Object.keys(config.credHelpers ?? {})]
}

interface DockerConfig {
  auths?: Record<string, unknown>
  credHelpers?: Record<string, string>
  credsStore?: string
  [key: string]: unknown
}

async function readDockerConfig(configDir: string): Promise<DockerConfig> {
  try {
    return JSON.parse(await readFile(join(configDir, 'config.json'), 'utf8')) as DockerConfig
  } catch {
    return {}
  }
}

/**
 * A private copy of the user's Docker config, without credential helpers, so that the logins
 * made here land in this file alone (and leave with it).
 */
async function makePrivateConfig(configDir: string): Promise<void> {
  const config = await readDockerConfig(userDockerConfigDir())
  delete config.credsStore
  delete config.credHelpers
  await mkdir(configDir, { recursive: true, mode: 0o700 })
  await writeFile(join(configDir, 'config.json'), JSON.stringify(config, null, 2), { mode: 0o600 })
}

function loginHint(registry: string): string {
  return registry === GHCR
    ? 'Check that the token has packages: write (permissions: packages: write in the workflow)'
    : 'Check the username and password'
}

/** Log in where needed; null when nothing needed a login (earlier logins are used as they are). */
export async function loginToRegistries(options: LoginOptions): Promise<LoginSession | null> {
  const plan = planLogins(options, await existingLogins(userDockerConfigDir()))
  if (plan.length === 0) {
    core.info('No credentials given: using the logins already in the Docker config, if any')
    return null
  }
  const session: LoginSession = {
    configDir: join(actionTempDir(options.tempDir), 'docker-config'),
    tool: options.tool,
    registries: []
  }
  await makePrivateConfig(session.configDir)
  // From here on, this process's docker commands read the private config.
  process.env.DOCKER_CONFIG = session.configDir
  options.saveSession(session)
  for (const login of plan) {
    core.info(`Logging in to ${login.registry} as ${login.as}`)
    session.registries.push(login.registry)
    options.saveSession(session)
    await loginOnce(login, session, options.retry)
  }
  return session
}

async function loginOnce(
  login: PlannedLogin,
  session: LoginSession,
  retry: RetryPolicy
): Promise<void> {
  try {
    await withRetries(`login to ${login.registry}`, retry, () =>
      session.tool === 'skopeo'
        ? skopeoLogin(login.registry, login.credentials, authFileOf(session))
        : dockerLogin(login.registry, login.credentials)
    )
  } catch (error) {
    if (error instanceof OperationError && !error.failure.transient) {
      throw new Error(`${error.message}. ${loginHint(login.registry)}`)
    }
    throw error
  }
}

/** Undo a session: log out of each registry, then remove the private config. Never throws. */
export async function logoutOfRegistries(session: LoginSession): Promise<void> {
  process.env.DOCKER_CONFIG = session.configDir
  for (const registry of session.registries) {
    try {
      if (session.tool === 'skopeo') await skopeoLogout(registry, authFileOf(session))
      else await dockerLogout(registry)
      core.info(`Logged out of ${registry}`)
    } catch (error) {
      core.warning(`logout of ${registry}: ${errorMessage(error)}`)
    }
  }
  await rm(session.configDir, { recursive: true, force: true })
}
