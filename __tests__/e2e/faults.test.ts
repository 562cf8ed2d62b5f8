// Transient registry faults, through the bundled action: a registry that comes up late, one
// that answers 503 or 429 (with Retry-After) at first, and one that is gone for good.
import { afterAll, describe, expect, test } from '@jest/globals'
import type { RunOptions, RunResult } from '../../scripts/run-action.mjs'
import { action } from './action.js'
import { freePort, freePortContaining, startFaultProxy } from './fault-proxy.js'
import type { FaultProxy } from './fault-proxy.js'
import { getManifest } from './registry.js'

const proxies: FaultProxy[] = []

afterAll(async () => {
  await Promise.all(proxies.map(proxy => proxy.close()))
})

function realRegistry(): string {
  const registry = process.env.REGISTRY
  if (!registry) throw new Error('REGISTRY is not set: the e2e global setup did not run')
  return registry
}

async function proxy(
  options: Omit<Parameters<typeof startFaultProxy>[0], 'target'>
): Promise<FaultProxy> {
  const started = await startFaultProxy({ target: realRegistry(), ...options })
  proxies.push(started)
  return started
}

async function push(
  registry: string,
  tool: string,
  inputs: RunOptions['inputs'] = {},
  env: Record<string, string> = {},
  onLine?: (line: string) => void
): Promise<{ result: RunResult; seconds: number }> {
  const started = Date.now()
  const result = await action(
    {
      flake: './examples/hello',
      registry,
      image: `faults/${tool}`,
      'push-tool': tool,
      ...inputs
    },
    { env, ...(onLine ? { onLine } : {}) }
  )
  return { result, seconds: (Date.now() - started) / 1000 }
}

function log(result: RunResult): string {
  return `${result.main.stdout}\n${result.main.stderr}`
}

describe.each(['docker', 'skopeo'])('push-tool %s', tool => {
  test('a registry that starts after the action first found it down is waited for', async () => {
    // Up only once the action has logged its first refused attempt: the first attempt is
    // refused whatever the machine's speed, a retry finds it.
    let refused = false
    const late = await proxy({ port: await freePort(), listenWhen: () => refused })
    const { result } = await push(late.address, tool, { retries: '6' }, {}, line => {
      if (/^::warning::.*connection refused \(attempt 1 of 6\)/.test(line)) refused = true
    })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(result.main.stdout).toMatch(
      /::warning::.*connection refused \(attempt 1 of 6\); retrying in/
    )
    const manifest = await getManifest(realRegistry(), `faults/${tool}`, 'latest')
    expect(manifest.digest).toBe(result.outputs.digest)
  })

  test("503 to the action's own query is retried, on a port whose digits hold 404", async () => {
    // The faults go to the manifest GETs, which only the action's query (its own GET, each
    // attempt one request) makes before a push, so which client meets them is fixed. The
    // port's 404 once made a 503 look like "no such manifest": no retry, a blind push.
    const flaky = await proxy({
      port: await freePortContaining('404'),
      failFirst: 2,
      status: 503,
      failOnly: { method: 'GET', path: /^\/v2\/faults\/[a-z]+\/manifests\// }
    })
    const { result } = await push(flaky.address, tool, { tags: 'after-5xx' })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(flaky.faulted).toEqual([
      expect.stringMatching(/^GET \/v2\/faults\/.*\/manifests\/after-5xx \(nix-container-action\)/),
      expect.stringMatching(/^GET \/v2\/faults\/.*\/manifests\/after-5xx \(nix-container-action\)/)
    ])
    const retries = result.main.stdout.match(
      /::warning::query 127\.0\.0\.1:\d+\/faults\/\w+:after-5xx: server error \(5xx\) \(attempt [12] of 3\)/g
    )
    expect(retries).toHaveLength(2)
    expect((await getManifest(realRegistry(), `faults/${tool}`, 'after-5xx')).digest).toBe(
      result.outputs.digest
    )
  })

  test('503 to the push itself (the manifest upload) still ends with the image pushed', async () => {
    // Whether the push tool retries this itself or the action retries the push is the tools'
    // business; what the action guarantees is the image in the registry and a green step.
    const flaky = await proxy({
      failFirst: 1,
      status: 503,
      failOnly: { method: 'PUT', path: /^\/v2\/faults\/[a-z]+\/manifests\// }
    })
    const { result } = await push(flaky.address, tool, { tags: 'after-put-5xx' })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(flaky.faulted).toEqual([
      expect.stringMatching(/^PUT \/v2\/faults\/.*\/manifests\/after-put-5xx /)
    ])
    expect((await getManifest(realRegistry(), `faults/${tool}`, 'after-put-5xx')).digest).toBe(
      result.outputs.digest
    )
  })

  test('429 with Retry-After is waited out', async () => {
    // Rate limited for 5 s from the first request, each 429 saying how long is left. skopeo
    // and docker retry some 429s themselves; whichever layer waits, the push must succeed,
    // and no sooner than the registry allowed.
    const limited = await proxy({ failForMs: 5000, status: 429, retryAfterSeconds: 'remaining' })
    const { result, seconds } = await push(limited.address, tool, {
      tags: 'after-429',
      retries: '4'
    })
    expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
    expect(limited.faults.length).toBeGreaterThan(0)
    expect(seconds).toBeGreaterThanOrEqual(5)
    expect((await getManifest(realRegistry(), `faults/${tool}`, 'after-429')).digest).toBe(
      result.outputs.digest
    )
    const ourRetries = result.main.stdout.match(
      /::warning::.*429 too many requests.*retrying in \d+ s \(Retry-After\)/g
    )
    console.log(
      `429 for 5 s with push-tool ${tool}: ${limited.faults.length} requests refused, ${ourRetries?.length ?? 0} retries by the action after Retry-After`
    )
  })

  test('a registry that is gone for good fails after `retries` attempts, in bounded time, naming it', async () => {
    const nowhere = `127.0.0.1:${await freePort()}`
    const { result, seconds } = await push(nowhere, tool, { retries: '3' })
    expect(result.main.exitCode).toBe(1)
    expect(result.main.stdout).toMatch(
      new RegExp(
        `::error::(query|push) ${nowhere.replace(/\./g, '\\.')}/faults/${tool}:latest failed after 3 attempts: connection refused`
      )
    )
    expect(result.main.stdout.match(/::warning::.*connection refused/g)).toHaveLength(2)
    expect(seconds).toBeLessThan(60)
  })
})
