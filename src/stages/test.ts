// The test stage: run the loaded image before anything is pushed. `test` runs a command in it
// (`docker run --rm <image> <args>`); `test-url` starts the image's own command and waits until
// a URL answers 2xx. Each container is named, recorded through `onContainer` (so that post
// removes one a killed main left behind) and removed with `docker rm --force` on a timeout, on
// SIGINT/SIGTERM and in a finally: it never outlives the step.
import * as core from '../core.js'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:os'
import { setTimeout as sleep } from 'node:timers/promises'
import { run, tailLines } from '../exec.js'
import { errorMessage } from '../errors.js'

/** Every test container carries this label (and a `nix-container-test-` name). */
export const CONTAINER_LABEL = 'nix-container-action.test'
const OUTPUT_TAIL_LINES = 20
const OUTPUT_TAIL_CHARS = 4000
/** How much output is kept while a container runs: enough for the tail. */
const OUTPUT_KEPT_CHARS = 64 * 1024
const POLL_INTERVAL_MS = 500
/** One request may take this long before it counts as no answer. */
const PROBE_TIMEOUT_MS = 5000
/** A signal's cleanup gets this long before the process exits anyway. */
const SIGNAL_CLEANUP_MS = 10_000

export interface TestOptions {
  /** The image as docker knows it: a loaded `name:tag` or an image ID. */
  image: string
  /** `test`: arguments for `docker run --rm <image>`; empty for none. */
  command: string[]
  /** `test-url`: polled while the image's own command runs; null for none. */
  url: string | null
  /** Bounds the command and the wait for the URL, each. */
  timeoutSeconds: number
  /** Told each container's name before it starts, and null once it is removed. */
  onContainer?: (name: string | null) => void
}

export interface TestResult {
  /** The `test` command: it exited 0 after this long; null when none was given. */
  command: { seconds: number } | null
  /** The `test-url`: its 2xx status, and how long after the start it came; null when none. */
  url: { status: number; seconds: number } | null
}

export type Probe = { status: number } | { error: string }
export type ContainerState = { running: true } | { running: false; exitCode: number | null }
export type PollDecision =
  { next: 'passed'; status: number } | { next: 'wait' } | { next: 'failed'; reason: string }

export function containerName(random = randomBytes(6).toString('hex')): string {
  return `nix-container-test-${random}`
}

/** What every test container gets: our name and label, and never a pull of another image. */
function ownContainerArgs(name: string): string[] {
  return ['--name', name, '--label', CONTAINER_LABEL, '--pull', 'never']
}

/** `docker run` for `test`: the arguments go after the image, as with `docker run` itself. */
export function commandRunArgs(name: string, image: string, command: readonly string[]): string[] {
  return ['run', '--rm', ...ownContainerArgs(name), image, ...command]
}

/**
 * `docker run` for `test-url`: the image's own command, detached, on the runner's network, so
 * that the URL is fetched as written (`localhost:<port>` is the server's own port) whether the
 * daemon has a bridge or not, and a server that listens on 127.0.0.1 is reachable too.
 */
export function serverRunArgs(name: string, image: string): string[] {
  return ['run', '--detach', ...ownContainerArgs(name), '--network', 'host', image]
}

/** What an exit code of `docker run` means when docker itself chose it. */
export function describeExit(exitCode: number): string {
  const meanings: Record<number, string> = {
    125: 'docker could not run the container',
    126: 'the command in the image could not be invoked',
    127: 'the command was not found in the image',
    137: 'the container was killed'
  }
  const meaning = meanings[exitCode]
  return `exited with code ${exitCode}${meaning ? ` (${meaning})` : ''}`
}

export function describeProbe(probe: Probe): string {
  return 'status' in probe ? `HTTP ${probe.status}` : probe.error
}

/** After one request to the URL: passed, failed, or ask again. */
export function decidePoll(state: {
  url: string
  probe: Probe
  /** null when not asked (the URL answered 2xx). */
  container: ContainerState | null
  elapsedSeconds: number
  timeoutSeconds: number
}): PollDecision {
  const { probe, container } = state
  if ('status' in probe && probe.status >= 200 && probe.status < 300) {
    return { next: 'passed', status: probe.status }
  }
  const last = `last answer: ${describeProbe(probe)}`
  if (container !== null && !container.running) {
    const how = container.exitCode === null ? 'is gone' : describeExit(container.exitCode)
    return { next: 'failed', reason: `was never answered 2xx: the container ${how} (${last})` }
  }
  if (state.elapsedSeconds >= state.timeoutSeconds) {
    return {
      next: 'failed',
      reason: `did not answer 2xx within ${state.timeoutSeconds} s (${last})`
    }
  }
  return { next: 'wait' }
}

/** `docker inspect --format '{{.State.Status}} {{.State.ExitCode}}'`; null when there is none. */
export function parseContainerState(stdout: string | null): ContainerState {
  const [status, code] = (stdout ?? '').trim().split(/\s+/)
  if (status === 'running' || status === 'created' || status === 'restarting') {
    return { running: true }
  }
  const exitCode = code !== undefined && /^-?\d+$/.test(code) ? Number(code) : null
  return { running: false, exitCode: status ? exitCode : null }
}

/** The last lines of a container's output, bounded in length, for an error message. */
export function outputTail(output: string): string {
  const tail = tailLines(output, OUTPUT_TAIL_LINES)
  return tail.length > OUTPUT_TAIL_CHARS ? `...${tail.slice(-OUTPUT_TAIL_CHARS)}` : tail
}

/** The step's error: what failed and how, that nothing was pushed, and the output's tail. */
export function testFailureMessage(failure: {
  what: string
  reason: string
  output: string
}): string {
  const tail = outputTail(failure.output)
  const output = tail ? `The container's last output:\n${tail}` : 'The container printed nothing.'
  return `${failure.what} ${failure.reason}, so nothing was pushed. ${output}`
}

/** The summary's line: `passed: ...`. */
export function describeTest(
  result: TestResult,
  options: Pick<TestOptions, 'command' | 'url'>
): string {
  const parts: string[] = []
  if (result.command) {
    parts.push(
      `\`${options.command.join(' ')}\` exited 0 in ${result.command.seconds.toFixed(1)} s`
    )
  }
  if (result.url) {
    parts.push(
      `${options.url ?? ''} answered ${result.url.status} after ${result.url.seconds.toFixed(1)} s`
    )
  }
  return `passed: ${parts.join('; ')}`
}

export async function testImage(options: TestOptions): Promise<TestResult> {
  const command = options.command.length > 0 ? await testCommand(options) : null
  const url = options.url !== null ? await testUrl(options, options.url) : null
  return { command, url }
}

/** `docker run --rm <image> <command>`, bounded by the timeout. */
async function testCommand(options: TestOptions): Promise<{ seconds: number }> {
  const name = containerName()
  const what = `The test \`${options.command.join(' ')}\``
  return withContainer(name, options.onContainer, async () => {
    let output = ''
    // Set when the timeout removed the container (which ends `docker run`).
    const stopped: { removal: Promise<boolean> | null } = { removal: null }
    const started = performance.now()
    const timer = setTimeout(() => {
      core.info(`Still running after ${options.timeoutSeconds} s: removing ${name}`)
      stopped.removal = removeContainer(name)
    }, options.timeoutSeconds * 1000)
    let exitCode: number
    try {
      ;({ exitCode } = await run('docker', commandRunArgs(name, options.image, options.command), {
        allowFailure: true,
        onOutput: text => {
          output = (output + text).slice(-OUTPUT_KEPT_CHARS)
        }
      }))
    } finally {
      clearTimeout(timer)
    }
    const seconds = (performance.now() - started) / 1000
    if (stopped.removal !== null) {
      await stopped.removal
      const reason = `did not finish within ${options.timeoutSeconds} s: its container was stopped and removed`
      throw new Error(testFailureMessage({ what, reason, output }))
    }
    if (exitCode !== 0) {
      throw new Error(testFailureMessage({ what, reason: describeExit(exitCode), output }))
    }
    core.info(`${what} exited 0 in ${seconds.toFixed(1)} s`)
    return { seconds }
  })
}

/** The image's own command, detached, until the URL answers 2xx or the timeout passes. */
async function testUrl(
  options: TestOptions,
  url: string
): Promise<{ status: number; seconds: number }> {
  const name = containerName()
  const what = `The test-url ${url}`
  return withContainer(name, options.onContainer, async () => {
    core.info(
      `Starting the image's own command (container ${name}, host network); waiting up to ` +
        `${options.timeoutSeconds} s for ${url} to answer 2xx`
    )
    let output = ''
    const keep = (text: string): void => {
      output = (output + text).slice(-OUTPUT_KEPT_CHARS)
    }
    const start = await run('docker', serverRunArgs(name, options.image), {
      allowFailure: true,
      onOutput: keep
    })
    if (start.exitCode !== 0) {
      const reason = `could not start: \`docker run\` ${describeExit(start.exitCode)}`
      throw new Error(testFailureMessage({ what, reason, output }))
    }
    const started = performance.now()
    const elapsed = (): number => (performance.now() - started) / 1000
    let decision: PollDecision = { next: 'wait' }
    while (decision.next === 'wait') {
      const remainingMs = (options.timeoutSeconds - elapsed()) * 1000
      const probe = await probeUrl(url, Math.max(100, Math.min(PROBE_TIMEOUT_MS, remainingMs)))
      const answered = 'status' in probe && probe.status >= 200 && probe.status < 300
      const container = answered ? null : await containerState(name)
      decision = decidePoll({
        url,
        probe,
        container,
        elapsedSeconds: elapsed(),
        timeoutSeconds: options.timeoutSeconds
      })
      if (decision.next === 'wait') {
        await sleep(
          Math.max(0, Math.min(POLL_INTERVAL_MS, (options.timeoutSeconds - elapsed()) * 1000))
        )
      }
    }
    const seconds = elapsed()
    core.info(`The container's log:`)
    output = ''
    await run('docker', ['logs', name], { allowFailure: true, onOutput: keep })
    if (decision.next === 'failed') {
      throw new Error(testFailureMessage({ what, reason: decision.reason, output }))
    }
    core.info(`${url} answered ${decision.status} after ${seconds.toFixed(1)} s`)
    return { status: decision.status, seconds }
  })
}

/** One GET of the URL: its status (after redirects), or why there was none. */
export async function probeUrl(url: string, timeoutMs: number): Promise<Probe> {
  const limitMs = Math.max(1, Math.ceil(timeoutMs))
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(limitMs) })
    await response.body?.cancel()
    return { status: response.status }
  } catch (error) {
    // fetch's errors may come from another realm (jest's VM): read them, don't instanceof them.
    const { name, cause } = (error ?? {}) as { name?: string; cause?: unknown }
    if (name === 'TimeoutError')
      return { error: `no answer within ${(limitMs / 1000).toFixed(1)} s` }
    const reason = (cause ?? {}) as { code?: unknown; message?: unknown }
    if (typeof reason.code === 'string') return { error: reason.code }
    if (typeof reason.message === 'string') return { error: reason.message }
    return { error: errorMessage(error) }
  }
}

async function containerState(name: string): Promise<ContainerState> {
  const { exitCode, stdout } = await run(
    'docker',
    ['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name],
    { allowFailure: true, silent: true }
  )
  return parseContainerState(exitCode === 0 ? stdout : null)
}

/**
 * Run `work` while the container `name` may exist: it is recorded first, and removed
 * afterwards however `work` ends, or at once when the step is cancelled (SIGINT, SIGTERM).
 */
async function withContainer<T>(
  name: string,
  onContainer: TestOptions['onContainer'],
  work: () => Promise<T>
): Promise<T> {
  onContainer?.(name)
  const onSignal = (signal: NodeJS.Signals): void => {
    const code = 128 + (constants.signals[signal] ?? 0)
    core.info(`${signal}: removing the test container ${name} before exiting`)
    setTimeout(() => process.exit(code), SIGNAL_CLEANUP_MS).unref()
    void removeContainer(name).finally(() => process.exit(code))
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    return await work()
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    await removeContainer(name)
    onContainer?.(null)
  }
}

/**
 * `docker rm --force`: stops and removes a test container; true when there was one. Never
 * throws (it runs in finally blocks, signal handlers and the post step): a failure is a warning.
 */
export async function removeContainer(name: string): Promise<boolean> {
  try {
    const result = await run('docker', ['rm', '--force', name], {
      allowFailure: true,
      silent: true
    })
    // A container that is not there: exit 0 (or 1 before docker 23), "No such container".
    if (/no such container/i.test(result.stderr)) return false
    if (result.exitCode !== 0) {
      core.warning(`could not remove the test container ${name}: ${tailLines(result.stderr, 5)}`)
      return false
    }
    return result.stdout.trim() !== ''
  } catch (error) {
    core.warning(`could not remove the test container ${name}: ${errorMessage(error)}`)
    return false
  }
}
