// Retrying registry operations that failed for reasons that are not the user's: connection
// refused or reset, timeouts, 5xx, 429. Authentication, permission and "no such thing"
// failures are final and fail at once.
import * as core from '../core.js'
import { CommandError } from '../exec.js'
import { errorMessage } from '../errors.js'

export interface Failure {
  transient: boolean
  /** One line saying what went wrong, for the log and the error. */
  reason: string
}

/**
 * An HTTP status code as registries and their clients print it: after `status`, `code` or
 * `HTTP` (`invalid status code from registry 503`, `HTTP status: 429`). A bare number is not
 * enough: refs, ports and tags in the same text hold digits too (`127.0.0.1:34045`,
 * `app:build-401`), and they must not decide whether a push is retried.
 */
export function httpStatusPattern(codes: string): RegExp {
  return new RegExp(`(?:status|code|http)[^\\d\\n]{0,20}\\b(?:${codes})\\b`, 'i')
}

const FINAL: [RegExp, string][] = [
  [
    /unauthorized|authentication required|(incorrect|invalid) username( or |\/)password/i,
    'unauthorized'
  ],
  [httpStatusPattern('401'), 'unauthorized'],
  [/denied|forbidden/i, 'denied'],
  [httpStatusPattern('403'), 'denied'],
  [/name unknown|repository name not known|\bname invalid\b/i, 'unknown repository name'],
  [
    /manifest invalid|manifest unknown|blob unknown|invalid reference/i,
    'invalid manifest or reference'
  ]
]

const TRANSIENT: [RegExp, string][] = [
  [/too ?many ?requests/i, '429 too many requests'],
  [httpStatusPattern('429'), '429 too many requests'],
  [/connection refused/i, 'connection refused'],
  [/connection reset|broken pipe|\bEOF\b/i, 'connection reset'],
  [/timeout|timed out|deadline exceeded/i, 'timeout'],
  [/no such host|temporary failure in name resolution/i, 'name resolution failed'],
  [/internal server error|bad gateway|service unavailable|gateway timeout/i, 'server error (5xx)'],
  [httpStatusPattern('50[0-9]'), 'server error (5xx)']
]

/** The text a failure is judged by: a command's stderr (and message), or an error's message. */
function failureText(error: unknown): string {
  if (error instanceof CommandError) return `${error.stderr}\n${error.message}`
  return errorMessage(error)
}

/** Decide whether a failure is worth another attempt (pure, for tests). */
export function classifyFailure(text: string): Failure {
  // Final reasons win: "unauthorized" in a 5xx body is still unauthorized.
  for (const [pattern, reason] of FINAL) {
    if (pattern.test(text)) return { transient: false, reason }
  }
  for (const [pattern, reason] of TRANSIENT) {
    if (pattern.test(text)) return { transient: true, reason }
  }
  return { transient: false, reason: lastLine(text) }
}

function lastLine(text: string): string {
  return text.trim().split('\n').pop()?.trim() ?? ''
}

export interface RetryPolicy {
  /** Attempts in all (the `retries` input). */
  attempts: number
  baseDelayMs: number
  maxDelayMs: number
  /** Seconds a 429 asked to wait (Retry-After), when it can be found out. */
  retryAfter?: (error: unknown) => Promise<number | null>
  sleep?: (ms: number) => Promise<void>
  random?: () => number
}

export const DEFAULT_DELAYS = { baseDelayMs: 1000, maxDelayMs: 30_000 }

/** Exponential backoff with jitter: base * 2^(n-1), plus up to half of it again, capped. */
export function backoffMs(
  attempt: number,
  policy: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>,
  random: () => number = Math.random
): number {
  const exponential = policy.baseDelayMs * 2 ** (attempt - 1)
  return Math.min(policy.maxDelayMs, Math.round(exponential * (1 + random() / 2)))
}

const sleepFor = (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

/** Error thrown after the last attempt, or at once for a final failure. */
export class OperationError extends Error {
  constructor(
    readonly what: string,
    readonly failure: Failure,
    readonly attempts: number,
    cause: unknown
  ) {
    const tries = attempts > 1 ? ` after ${attempts} attempts` : ''
    super(`${what} failed${tries}: ${failure.reason}`, { cause })
    this.name = 'OperationError'
  }
}

/**
 * Run `operation`, retrying transient failures up to `policy.attempts` attempts in all, each
 * retry logged with its reason.
 */
export async function withRetries<T>(
  what: string,
  policy: RetryPolicy,
  operation: () => Promise<T>
): Promise<T> {
  const sleep = policy.sleep ?? sleepFor
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation()
    } catch (error) {
      const failure = classifyFailure(failureText(error))
      if (!failure.transient || attempt >= policy.attempts) {
        throw new OperationError(what, failure, attempt, error)
      }
      const askedSeconds = (await policy.retryAfter?.(error).catch(() => null)) ?? null
      const delay =
        askedSeconds !== null
          ? Math.min(askedSeconds * 1000, policy.maxDelayMs)
          : backoffMs(attempt, policy, policy.random)
      const waitText =
        askedSeconds !== null ? `${askedSeconds} s (Retry-After)` : `${(delay / 1000).toFixed(1)} s`
      core.warning(
        `${what}: ${failure.reason} (attempt ${attempt} of ${policy.attempts}); retrying in ${waitText}`
      )
      await sleep(delay)
    }
  }
}
