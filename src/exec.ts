// The one place that runs programs. Every command is an argument array: no value from a
// workflow ever reaches a shell. Failures carry the command and the tail of its stderr.
import * as actionsExec from '@actions/exec'
import { spawn } from 'node:child_process'
import type { Readable } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
import { errorMessage } from './errors.js'

export interface RunOptions {
  /** Written to the command's stdin (how secrets reach docker/skopeo login). */
  input?: string | Buffer
  env?: Record<string, string>
  cwd?: string
  /** Don't echo the command or stream its output to the log. */
  silent?: boolean
  /** Return a non-zero exit instead of throwing. */
  allowFailure?: boolean
  /**
   * Stop the command after this long (coreutils `timeout`, as @actions/exec cannot kill): a
   * registry that accepts connections but never answers must not hang the job.
   */
  timeoutSeconds?: number
  /**
   * Called with stdout and stderr text as it comes, in the order it comes: one interleaved
   * transcript (the tail of a container's output), which the separate captures cannot give.
   */
  onOutput?: (text: string) => void
}

export interface RunResult {
  exitCode: number
  stdout: string
  stderr: string
}

const STDERR_TAIL_LINES = 25
/** coreutils `timeout`'s exit code when it stopped the command. */
const TIMED_OUT = 124

/** A command that exited non-zero (or could not start). */
export class CommandError extends Error {
  constructor(
    readonly command: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string
  ) {
    const tail = tailLines(stderr, STDERR_TAIL_LINES)
    const status = exitCode === null ? 'could not run' : `failed with exit code ${exitCode}`
    super(`\`${command.join(' ')}\` ${status}${tail ? `:\n${tail}` : ''}`)
    this.name = 'CommandError'
  }

  /** The last lines of stderr, for one-line error messages. */
  tail(lines = STDERR_TAIL_LINES): string {
    return tailLines(this.stderr, lines)
  }
}

export function tailLines(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n').trim()
}

/** Run a command and capture its output; throws CommandError on a non-zero exit. */
export async function run(
  command: string,
  args: readonly string[],
  options: RunOptions = {}
): Promise<RunResult> {
  const argv = [command, ...args]
  const limit = options.timeoutSeconds
  const [program, programArgs] = limit
    ? ['timeout', ['--kill-after=5', String(limit), ...argv]]
    : [command, [...args]]
  let result: actionsExec.ExecOutput
  try {
    result = await actionsExec.getExecOutput(program, programArgs, {
      input: typeof options.input === 'string' ? Buffer.from(options.input) : options.input,
      env: options.env ? { ...processEnv(), ...options.env } : undefined,
      cwd: options.cwd,
      silent: options.silent ?? false,
      ignoreReturnCode: true,
      listeners: options.onOutput ? interleaved(options.onOutput) : undefined
    })
  } catch (error) {
    // @actions/exec throws when the program cannot be found or started.
    throw new CommandError(argv, null, errorMessage(error))
  }
  if (result.exitCode !== 0 && !options.allowFailure) {
    const stderr =
      limit && result.exitCode === TIMED_OUT
        ? `${result.stderr}\ntimed out after ${limit} s`
        : result.stderr
    throw new CommandError(argv, result.exitCode, stderr)
  }
  return result
}

/** stdout and stderr listeners feeding one callback, multi-byte characters kept whole. */
function interleaved(onOutput: (text: string) => void): actionsExec.ExecListeners {
  const decoders = { stdout: new StringDecoder('utf8'), stderr: new StringDecoder('utf8') }
  return {
    stdout: (data: Buffer) => onOutput(decoders.stdout.write(data)),
    stderr: (data: Buffer) => onOutput(decoders.stderr.write(data))
  }
}

/** The current environment without undefined values, as @actions/exec wants it. */
function processEnv(): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined) env[name] = value
  }
  return env
}

export interface Producer {
  /** What the producer writes: consumed by the pipe. */
  stdout: Readable
  /** Resolves when the producer has finished successfully; rejects with a CommandError. */
  done: Promise<void>
}

/**
 * Start a command whose stdout is consumed as a stream (an image stream script, `zstd -dc`).
 * @actions/exec only takes a Buffer on stdin and collects stdout, so streams need spawn.
 */
export function spawnProducer(
  command: string,
  args: readonly string[],
  stdin?: Readable
): Producer {
  const argv = [command, ...args]
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  if (stdin) stdin.pipe(child.stdin)
  else child.stdin.end()
  let stderr = ''
  child.stderr.on('data', (chunk: Buffer) => {
    stderr = tailLines(stderr + chunk.toString(), STDERR_TAIL_LINES * 4)
  })
  const done = new Promise<void>((resolve, reject) => {
    child.on('error', error => reject(new CommandError(argv, null, error.message)))
    child.on('close', code => {
      if (code === 0) resolve()
      else reject(new CommandError(argv, code, stderr))
    })
  })
  return { stdout: child.stdout, done }
}

/**
 * Run a command with a stream on its stdin and capture its output (e.g. `docker load`).
 * The command line is echoed like @actions/exec does, so the log reads the same.
 */
export async function runWithStdin(
  command: string,
  args: readonly string[],
  stdin: Readable
): Promise<RunResult> {
  const argv = [command, ...args]
  process.stdout.write(`[command]${argv.join(' ')}\n`)
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString()
    process.stdout.write(chunk)
  })
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString()
    process.stderr.write(chunk)
  })
  // The consumer may exit early (bad archive): don't let EPIPE crash the action.
  child.stdin.on('error', () => undefined)
  stdin.pipe(child.stdin)
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.on('error', error => reject(new CommandError(argv, null, error.message)))
    child.on('close', resolve)
  })
  if (exitCode !== 0) throw new CommandError(argv, exitCode, stderr)
  return { exitCode, stdout, stderr }
}

/**
 * Wait for every promise, then throw the first failure. Unlike Promise.all, a second failure
 * (a producer that dies of EPIPE after its consumer failed) is never left unhandled.
 */
export async function settleAll<T extends readonly unknown[]>(promises: {
  [K in keyof T]: Promise<T[K]>
}): Promise<T> {
  const results = await Promise.allSettled(promises as readonly Promise<unknown>[])
  for (const result of results) {
    if (result.status === 'rejected') throw result.reason
  }
  return results.map(result => (result as PromiseFulfilledResult<unknown>).value) as unknown as T
}
