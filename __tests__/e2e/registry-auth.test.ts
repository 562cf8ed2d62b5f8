// Login, logout and secrets, through the bundled action against a registry with htpasswd auth.
// Each test is a job on a fresh runner machine, as the runner user, whose own Docker config is
// ~/.docker (no DOCKER_CONFIG), as on GitHub's runners.
import { beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { RunOptions, RunResult } from '../../scripts/run-action.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { action as runAction, freshMachine, inMachine, registryPushes } from './action.js'
import { getManifest } from './registry.js'

const USER = 'pusher'
const PASSWORD = 'S3cret-pushing-Pa55'
const TOKEN = 'ghs_TestTokenNeverPrinted0123456789'
const example = './examples/hello'
let authRegistry = ''

beforeAll(() => {
  const dir = process.env.NCA_SERVICES_DIR
  if (!dir) throw new Error('NCA_SERVICES_DIR is not set: the e2e global setup did not run')
  authRegistry = execFileSync(
    'scripts/services.sh',
    ['registry', dir, `auth-${process.pid}`, '--htpasswd', USER, PASSWORD],
    {
      encoding: 'utf8'
    }
  ).trim()
})

/** A fresh runner and where its user's own Docker config (~/.docker) is, seen from here. */
function freshRunner(): { machine: Machine; dockerConfig: string } {
  const machine = freshMachine()
  return { machine, dockerConfig: `/proc/${machine.pid}/root${machine.home}/.docker` }
}

/** An earlier step's `docker login` (docker/login-action), as the runner. */
function dockerLoginAsUser(machine: Machine): void {
  inMachine(machine, ['docker', 'login', '--username', USER, '--password-stdin', authRegistry], {
    input: PASSWORD
  })
}

function authsIn(dockerConfig: string): string[] {
  const file = join(dockerConfig, 'config.json')
  if (!existsSync(file)) return []
  return Object.keys((JSON.parse(readFileSync(file, 'utf8')) as { auths?: object }).auths ?? {})
}

async function action(inputs: RunOptions['inputs'], machine: Machine): Promise<RunResult> {
  return runAction(
    { flake: example, registry: authRegistry, 'github-token': TOKEN, ...inputs },
    { watch: ['docker', 'skopeo', 'nix'], machine }
  )
}

function log(result: RunResult): string {
  return `${result.main.stdout}\n${result.main.stderr}\n${result.post?.stdout ?? ''}`
}

/** Every place a secret could leak to, other than the ::add-mask:: commands themselves. */
function everythingVisible(result: RunResult): string {
  const logs = [result.main, result.post]
    .flatMap(step => (step ? [step.stdout, step.stderr] : []))
    .join('\n')
    .split('\n')
    .filter(line => !line.startsWith('::add-mask::'))
  return [
    ...logs,
    JSON.stringify(result.outputs),
    JSON.stringify(result.state),
    result.envFile,
    result.pathFile,
    result.summary,
    JSON.stringify(result.commands)
  ].join('\n')
}

describe.each(['docker', 'skopeo'])('push-tool %s', tool => {
  test('a wrong password fails at once with a clear message, and no retry storm', async () => {
    const { machine, dockerConfig } = freshRunner()
    const started = Date.now()
    const result = await action(
      {
        image: `auth/wrong-${tool}`,
        username: USER,
        password: 'not-the-password',
        'push-tool': tool
      },
      machine
    )
    expect(result.main.exitCode).toBe(1)
    expect(result.main.stdout).toContain(
      `::error::login to ${authRegistry} failed: unauthorized. Check the username and password`
    )
    const logins = result.commands.filter(argv => argv[1] === 'login')
    expect(logins).toHaveLength(1)
    expect(registryPushes(result.commands)).toEqual([])
    expect(Date.now() - started).toBeLessThan(60_000)
    // Nothing left behind: no credentials in the user's config, the private one removed.
    expect(authsIn(dockerConfig)).toEqual([])
    expect(
      existsSync(join(result.tempDir, 'runner-temp', 'nix-container-action', 'docker-config'))
    ).toBe(false)
    expect(everythingVisible(result)).not.toContain('not-the-password')
  })

  test('the right password pushes; no secret anywhere; post logs out and leaves no credentials', async () => {
    const { machine, dockerConfig } = freshRunner()
    const image = `auth/right-${tool}`
    const result = await action(
      { image, tags: 'v1,v2', username: USER, password: PASSWORD, 'push-tool': tool },
      machine
    )
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    const manifest = await getManifest(authRegistry, image, 'v2', {
      username: USER,
      password: PASSWORD
    })
    expect(manifest.digest).toBe(result.outputs.digest)
    expect(result.post?.stdout).toContain(`Logged out of ${authRegistry}`)

    expect(result.masks).toEqual(expect.arrayContaining([PASSWORD, TOKEN]))
    const visible = everythingVisible(result)
    expect(visible).not.toContain(PASSWORD)
    expect(visible).not.toContain(TOKEN)
    // The password went in on stdin: no argv holds it, and login used --password-stdin.
    expect(result.commands.find(argv => argv[1] === 'login')).toContain('--password-stdin')

    expect(authsIn(dockerConfig)).toEqual([])
    expect(
      existsSync(join(result.tempDir, 'runner-temp', 'nix-container-action', 'docker-config'))
    ).toBe(false)
  })

  test('a login made before the action is used, and kept', async () => {
    const { machine, dockerConfig } = freshRunner()
    dockerLoginAsUser(machine)
    const before = readFileSync(join(dockerConfig, 'config.json'), 'utf8')
    const image = `auth/earlier-${tool}`
    const result = await action({ image, 'push-tool': tool }, machine)
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(result.main.stdout).toContain(
      'No credentials given: using the logins already in the Docker config'
    )
    expect(result.commands.filter(argv => argv[1] === 'login' || argv[1] === 'logout')).toEqual([])
    expect(readFileSync(join(dockerConfig, 'config.json'), 'utf8')).toBe(before)
    const manifest = await getManifest(authRegistry, image, 'latest', {
      username: USER,
      password: PASSWORD
    })
    expect(manifest.digest).toBe(result.outputs.digest)
  })

  test('credentials given with an earlier login: the earlier one is still there afterwards', async () => {
    const { machine, dockerConfig } = freshRunner()
    dockerLoginAsUser(machine)
    const before = readFileSync(join(dockerConfig, 'config.json'), 'utf8')
    const result = await action(
      { image: `auth/both-${tool}`, username: USER, password: PASSWORD, 'push-tool': tool },
      machine
    )
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(readFileSync(join(dockerConfig, 'config.json'), 'utf8')).toBe(before)
  })
})

test('a failed push still logs out in the post step', async () => {
  const { machine, dockerConfig } = freshRunner()
  // Logged in to the auth registry, but a second ref points at a registry that is not there.
  const result = await action(
    {
      image: 'auth/partial',
      tags: `v1, 127.0.0.1:1/nowhere/app:v1`,
      username: USER,
      password: PASSWORD,
      retries: '1'
    },
    machine
  )
  expect(result.main.exitCode).toBe(1)
  expect(result.main.stdout).toContain(
    `Pushed: ${authRegistry}/auth/partial:v1. Not pushed: 127.0.0.1:1/nowhere/app:v1`
  )
  expect(result.summary).toContain('127.0.0.1:1/nowhere/app:v1 (not pushed)')
  expect(result.post?.stdout).toContain(`Logged out of ${authRegistry}`)
  expect(authsIn(dockerConfig)).toEqual([])
})
