// A registry that accepts connections and never answers: the action must not hang. One push tool: with either,
// the first thing that reaches the registry is the same `skopeo inspect` query.
import { afterAll, describe, expect, test } from '@jest/globals'
import { action } from './action.js'
import { startBlackHole } from './fault-proxy.js'

const closers: (() => Promise<void>)[] = []

afterAll(async () => {
  await Promise.all(closers.map(close => close()))
})

describe.each(['docker'])('push-tool %s', tool => {
  test('a registry that never answers fails after the last retry, in bounded time, naming it', async () => {
    const hole = await startBlackHole()
    closers.push(() => hole.close())
    const started = Date.now()
    // The quick operations' 30 s bound, shortened for the test: the behaviour is the same.
    const result = await action(
      {
        flake: './examples/hello',
        registry: hole.address,
        image: 'silent/app',
        'push-tool': tool,
        retries: '2'
      },
      { env: { NIX_CONTAINER_ACTION_QUICK_TIMEOUT: '3' } }
    )
    const seconds = (Date.now() - started) / 1000
    expect(result.main.exitCode).toBe(1)
    expect(result.main.stdout).toContain(
      `::error::query ${hole.address}/silent/app:latest failed after 2 attempts: timeout`
    )
    // Two attempts of 3 s and a backoff: well under the 240 s the run was given.
    expect(seconds).toBeLessThan(60)
  })
})
