import { describe, expect, jest, test } from '@jest/globals'
import * as core from '../../__fixtures__/core.js'

jest.unstable_mockModule('../../src/core.js', () => core)
const { CommandError } = await import('../../src/exec.js')
const { backoffMs, classifyFailure, OperationError, withRetries } =
  await import('../../src/registry/retry.js')

describe('classifyFailure', () => {
  test.each<[string, boolean, string]>([
    ['dial tcp 127.0.0.1:5000: connect: connection refused', true, 'connection refused'],
    ['read: connection reset by peer', true, 'connection reset'],
    ['net/http: TLS handshake timeout', true, 'timeout'],
    ['context deadline exceeded', true, 'timeout'],
    ['received unexpected HTTP status: 503 Service Unavailable', true, 'server error (5xx)'],
    ['received unexpected HTTP status: 502 Bad Gateway', true, 'server error (5xx)'],
    ['toomanyrequests: You have reached your pull rate limit', true, '429 too many requests'],
    ['received unexpected HTTP status: 429 Too Many Requests', true, '429 too many requests'],
    [
      'Error response from daemon: Get "https://r/v2/": unauthorized: incorrect username or password',
      false,
      'unauthorized'
    ],
    ['logging into "r": invalid username/password', false, 'unauthorized'],
    ['denied: requested access to the resource is denied', false, 'denied'],
    ['name unknown: repository name not known to registry', false, 'unknown repository name'],
    ['manifest invalid: manifest invalid', false, 'invalid manifest or reference'],
    // A final reason wins over a transient-looking one in the same text.
    ['503 Service Unavailable: unauthorized', false, 'unauthorized'],
    ['something else entirely\nlast line here', false, 'last line here'],
    // Status codes count only where a status is printed; digits in refs and ports do not.
    [
      'pinging container registry 127.0.0.1:34045: invalid status code from registry 503 (Service Unavailable)',
      true,
      'server error (5xx)'
    ],
    [
      'reading manifest build-401 in 127.0.0.1:5000/app: StatusCode: 502',
      true,
      'server error (5xx)'
    ],
    [
      'copying to 127.0.0.1:5000/app:pr-429: read: connection reset by peer',
      true,
      'connection reset'
    ],
    ['writing blob to 127.0.0.1:40301/app: unexpected EOF', true, 'connection reset'],
    ['reading manifest v1 in r/app: StatusCode: 401, ""', false, 'unauthorized'],
    ['HTTP status: 403', false, 'denied']
  ])('%j -> transient %s (%s)', (text, transient, reason) => {
    expect(classifyFailure(text)).toEqual({ transient, reason })
  })
})

describe('backoffMs', () => {
  const policy = { baseDelayMs: 1000, maxDelayMs: 30_000 }
  test.each<[number, number, number]>([
    [1, 0, 1000],
    [2, 0, 2000],
    [3, 0, 4000],
    [1, 1, 1500],
    [3, 1, 6000],
    [10, 0, 30_000]
  ])('attempt %i, random %d -> %i ms', (attempt, random, expected) => {
    expect(backoffMs(attempt, policy, () => random)).toBe(expected)
  })
})

describe('withRetries', () => {
  const sleeps: number[] = []
  const policy = (attempts: number) => ({
    attempts,
    baseDelayMs: 100,
    maxDelayMs: 10_000,
    random: () => 0,
    sleep: (ms: number) => {
      sleeps.push(ms)
      return Promise.resolve()
    }
  })
  const refused = () =>
    new CommandError(['docker', 'push', 'r/a:1'], 1, 'dial tcp: connection refused')

  test('retries transient failures, then succeeds, logging each retry', async () => {
    sleeps.length = 0
    core.warning.mockClear()
    const operation = jest.fn<() => Promise<string>>()
    operation
      .mockRejectedValueOnce(refused())
      .mockRejectedValueOnce(refused())
      .mockResolvedValueOnce('ok')
    await expect(withRetries('push r/a:1', policy(3), operation)).resolves.toBe('ok')
    expect(operation).toHaveBeenCalledTimes(3)
    expect(sleeps).toEqual([100, 200])
    expect(core.warning).toHaveBeenCalledWith(
      'push r/a:1: connection refused (attempt 1 of 3); retrying in 0.1 s'
    )
  })

  test('gives up after the last attempt, saying how many', async () => {
    const operation = jest.fn<() => Promise<string>>().mockRejectedValue(refused())
    const error = (await withRetries('push r/a:1', policy(3), operation).catch(
      (e: unknown) => e
    )) as Error
    expect(error).toBeInstanceOf(OperationError)
    expect(error.message).toBe('push r/a:1 failed after 3 attempts: connection refused')
    expect(operation).toHaveBeenCalledTimes(3)
  })

  test('a final failure is not retried', async () => {
    const operation = jest
      .fn<() => Promise<string>>()
      .mockRejectedValue(
        new CommandError(['docker', 'login'], 1, 'unauthorized: incorrect username or password')
      )
    await expect(withRetries('login to r', policy(5), operation)).rejects.toThrow(
      'login to r failed: unauthorized'
    )
    expect(operation).toHaveBeenCalledTimes(1)
  })

  test('Retry-After replaces the backoff when the registry gives it', async () => {
    sleeps.length = 0
    const operation = jest
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(new Error('429 Too Many Requests'))
      .mockResolvedValueOnce('ok')
    const retryAfter = jest.fn(() => Promise.resolve(7))
    await expect(withRetries('push r/a:1', { ...policy(2), retryAfter }, operation)).resolves.toBe(
      'ok'
    )
    expect(sleeps).toEqual([7000])
  })

  test('Retry-After is capped by maxDelayMs', async () => {
    sleeps.length = 0
    const operation = jest
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(new Error('429 Too Many Requests'))
      .mockResolvedValueOnce('ok')
    await withRetries('push', { ...policy(2), retryAfter: () => Promise.resolve(3600) }, operation)
    expect(sleeps).toEqual([10_000])
  })
})
