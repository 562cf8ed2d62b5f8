// The test stage: its pure decisions table-driven, and testImage with docker mocked (the URL
// is requested for real, from a server on 127.0.0.1).
import { afterAll, beforeAll, beforeEach, describe, expect, jest, test } from '@jest/globals'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import * as core from '../../__fixtures__/core.js'
import * as exec from '../../__fixtures__/exec.js'
import type { RunOptions, RunResult } from '../../src/exec.js'
import type { ContainerState, PollDecision, Probe } from '../../src/stages/test.js'

const { CommandError, tailLines } = await import('../../src/exec.js')
jest.unstable_mockModule('../../src/core.js', () => core)
jest.unstable_mockModule('../../src/exec.js', () => ({ ...exec, CommandError, tailLines }))
const {
  CONTAINER_LABEL,
  commandRunArgs,
  containerName,
  decidePoll,
  describeExit,
  describeTest,
  outputTail,
  parseContainerState,
  probeUrl,
  removeContainer,
  serverRunArgs,
  testFailureMessage,
  testImage
} = await import('../../src/stages/test.js')

let server: Server
let base: string

beforeAll(async () => {
  server = createServer((request, response) => {
    if (request.url === '/health') response.writeHead(200).end('ok')
    else if (request.url === '/moved') response.writeHead(302, { Location: '/health' }).end()
    else if (request.url === '/slow') setTimeout(() => response.writeHead(200).end(), 2000)
    else response.writeHead(404).end('no')
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

afterAll(async () => {
  server.closeAllConnections()
  await new Promise(resolve => server.close(resolve))
})

beforeEach(() => {
  jest.resetAllMocks()
})

describe('docker run arguments', () => {
  test('test: the arguments after the image, as given, no shell', () => {
    expect(commandRunArgs('n', 'app:v1', ['/bin/app', '--version', 'a b; $(id)'])).toEqual([
      'run',
      '--rm',
      '--name',
      'n',
      '--label',
      CONTAINER_LABEL,
      '--pull',
      'never',
      'app:v1',
      '/bin/app',
      '--version',
      'a b; $(id)'
    ])
  })

  test("test-url: the image's own command, detached, on the host network", () => {
    expect(serverRunArgs('n', 'sha256:abc')).toEqual([
      'run',
      '--detach',
      '--name',
      'n',
      '--label',
      CONTAINER_LABEL,
      '--pull',
      'never',
      '--network',
      'host',
      'sha256:abc'
    ])
  })

  test('container names are ours and distinct', () => {
    expect(containerName('abc')).toBe('nix-container-test-abc')
    expect(containerName()).toMatch(/^nix-container-test-[0-9a-f]{12}$/)
    expect(containerName()).not.toBe(containerName())
  })
})

describe('decidePoll', () => {
  const running: ContainerState = { running: true }
  test.each<[string, Probe, ContainerState | null, number, PollDecision]>([
    ['200 passes', { status: 200 }, null, 0, { next: 'passed', status: 200 }],
    ['204 passes', { status: 204 }, null, 99, { next: 'passed', status: 204 }],
    ['2xx passes even at the deadline', { status: 299 }, null, 10, { next: 'passed', status: 299 }],
    ['404 while running: wait', { status: 404 }, running, 1, { next: 'wait' }],
    ['refused while running: wait', { error: 'ECONNREFUSED' }, running, 9.9, { next: 'wait' }],
    [
      '404 at the deadline fails',
      { status: 404 },
      running,
      10,
      {
        next: 'failed',
        reason: 'did not answer 2xx within 10 s (last answer: HTTP 404)'
      }
    ],
    [
      '301 is not 2xx',
      { status: 301 },
      running,
      11,
      { next: 'failed', reason: 'did not answer 2xx within 10 s (last answer: HTTP 301)' }
    ],
    [
      'refused after the deadline fails',
      { error: 'ECONNREFUSED' },
      running,
      12,
      { next: 'failed', reason: 'did not answer 2xx within 10 s (last answer: ECONNREFUSED)' }
    ],
    [
      'an exited container fails at once',
      { error: 'ECONNREFUSED' },
      { running: false, exitCode: 1 },
      0.5,
      {
        next: 'failed',
        reason:
          'was never answered 2xx: the container exited with code 1 (last answer: ECONNREFUSED)'
      }
    ],
    [
      'a container that is gone fails at once',
      { status: 500 },
      { running: false, exitCode: null },
      0.5,
      {
        next: 'failed',
        reason: 'was never answered 2xx: the container is gone (last answer: HTTP 500)'
      }
    ]
  ])('%s', (_, probe, container, elapsedSeconds, expected) => {
    expect(
      decidePoll({ url: 'http://x/', probe, container, elapsedSeconds, timeoutSeconds: 10 })
    ).toEqual(expected)
  })
})

describe('parseContainerState', () => {
  test.each<[string | null, ContainerState]>([
    ['running 0\n', { running: true }],
    ['created 0', { running: true }],
    ['restarting 1', { running: true }],
    ['exited 3\n', { running: false, exitCode: 3 }],
    ['dead 137', { running: false, exitCode: 137 }],
    ['', { running: false, exitCode: null }],
    [null, { running: false, exitCode: null }]
  ])('%j', (stdout, expected) => {
    expect(parseContainerState(stdout)).toEqual(expected)
  })
})

describe('messages', () => {
  test.each<[number, string]>([
    [1, 'exited with code 1'],
    [3, 'exited with code 3'],
    [125, 'exited with code 125 (docker could not run the container)'],
    [127, 'exited with code 127 (the command was not found in the image)']
  ])('describeExit(%i)', (code, text) => {
    expect(describeExit(code)).toBe(text)
  })

  test.each<[string, string]>([
    ['', 'The container printed nothing.'],
    ['one\ntwo\n', "The container's last output:\none\ntwo"],
    [
      Array.from({ length: 50 }, (_, i) => `line ${i + 1}`).join('\n'),
      "The container's last output:\nline 31\n"
    ]
  ])('testFailureMessage with output %#', (output, expected) => {
    const message = testFailureMessage({
      what: 'The test `x`',
      reason: 'exited with code 2',
      output
    })
    expect(message).toMatch(/^The test `x` exited with code 2, so nothing was pushed\. /)
    expect(message).toContain(expected)
    expect(message).not.toContain('line 30\n')
  })

  test('the tail is bounded in length too', () => {
    const tail = outputTail('x'.repeat(10_000))
    expect(tail.length).toBeLessThanOrEqual(4003)
    expect(tail.startsWith('...')).toBe(true)
  })

  test.each<[Parameters<typeof describeTest>[0], string]>([
    [{ command: { seconds: 0.42 }, url: null }, 'passed: `/bin/app --version` exited 0 in 0.4 s'],
    [
      { command: null, url: { status: 200, seconds: 1.25 } },
      'passed: http://h/ answered 200 after 1.3 s'
    ],
    [
      { command: { seconds: 1 }, url: { status: 204, seconds: 2 } },
      'passed: `/bin/app --version` exited 0 in 1.0 s; http://h/ answered 204 after 2.0 s'
    ]
  ])('describeTest %#', (result, text) => {
    expect(describeTest(result, { command: ['/bin/app', '--version'], url: 'http://h/' })).toBe(
      text
    )
  })
})

describe('probeUrl', () => {
  test.each<[string, Probe]>([
    ['/health', { status: 200 }],
    ['/moved', { status: 200 }],
    ['/other', { status: 404 }]
  ])('%s', async (path, expected) => {
    await expect(probeUrl(`${base}${path}`, 2000)).resolves.toEqual(expected)
  })

  test('a closed port is a connection error', async () => {
    const closed = createServer()
    await new Promise<void>(resolve => closed.listen(0, '127.0.0.1', resolve))
    const port = (closed.address() as AddressInfo).port
    await new Promise(resolve => closed.close(resolve))
    await expect(probeUrl(`http://127.0.0.1:${port}/`, 2000)).resolves.toEqual({
      error: 'ECONNREFUSED'
    })
  })

  test('no answer within the time is said so', async () => {
    await expect(probeUrl(`${base}/slow`, 200)).resolves.toEqual({
      error: 'no answer within 0.2 s'
    })
  })
})

// --- testImage with docker mocked ---------------------------------------------------------

type Docker = (args: readonly string[], options: RunOptions) => Promise<RunResult> | RunResult
const result = (exitCode: number, stdout = '', stderr = ''): RunResult => ({
  exitCode,
  stdout,
  stderr
})

/** docker answers by subcommand; every call is kept. */
function docker(answers: Partial<Record<string, Docker>>): string[][] {
  const calls: string[][] = []
  exec.run.mockImplementation(async (command, args, options = {}) => {
    expect(command).toBe('docker')
    calls.push([...args])
    const answer = answers[args[0] as string]
    return answer ? answer(args, options) : result(0)
  })
  return calls
}

const subcommands = (calls: string[][]): string[] => calls.map(args => args[0] as string)

describe('testImage', () => {
  const options = { image: 'app:v1', command: [], url: null, timeoutSeconds: 5 }

  test('a command that exits 0 passes; its container is recorded, then removed', async () => {
    const calls = docker({ run: () => result(0, 'app 1.0\n') })
    const recorded: (string | null)[] = []
    const tested = await testImage({
      ...options,
      command: ['/bin/app', '--version'],
      onContainer: name => recorded.push(name)
    })
    expect(tested.command?.seconds).toBeGreaterThanOrEqual(0)
    expect(tested.url).toBeNull()
    expect(subcommands(calls)).toEqual(['run', 'rm'])
    const name = calls[0]?.[3]
    expect(calls[1]).toEqual(['rm', '--force', name])
    expect(recorded).toEqual([name, null])
  })

  test('a command that fails: its exit code and output tail, and the container removed', async () => {
    const calls = docker({
      run: (_, o) => {
        o.onOutput?.('checking\n')
        o.onOutput?.('boom: no config\n')
        return result(3)
      }
    })
    await expect(testImage({ ...options, command: ['/bin/app', 'check'] })).rejects.toThrow(
      "The test `/bin/app check` exited with code 3, so nothing was pushed. The container's last output:\nchecking\nboom: no config"
    )
    expect(subcommands(calls)).toEqual(['run', 'rm'])
  })

  test('a command that hangs is stopped at the timeout by removing its container', async () => {
    let release: (r: RunResult) => void = () => undefined
    const calls = docker({
      run: (_, o) => {
        o.onOutput?.('waiting forever\n')
        return new Promise<RunResult>(resolve => (release = resolve))
      },
      rm: () => {
        release(result(137))
        return result(0, 'gone\n')
      }
    })
    const started = Date.now()
    await expect(
      testImage({ ...options, command: ['sleep', '1000'], timeoutSeconds: 0.2 })
    ).rejects.toThrow(
      "did not finish within 0.2 s: its container was stopped and removed, so nothing was pushed. The container's last output:\nwaiting forever"
    )
    expect(Date.now() - started).toBeLessThan(3000)
    expect(subcommands(calls)).toEqual(['run', 'rm', 'rm'])
  })

  test('a URL that answers 2xx passes; the log is shown and the container removed', async () => {
    const calls = docker({
      run: () => result(0, 'c0ffee\n'),
      inspect: () => result(0, 'running 0\n'),
      logs: (_, o) => {
        o.onOutput?.('listening\n')
        return result(0, 'listening\n')
      }
    })
    const tested = await testImage({ ...options, url: `${base}/health` })
    expect(tested.url?.status).toBe(200)
    expect(subcommands(calls)).toEqual(['run', 'logs', 'rm'])
    expect(calls[0]).toContain('--detach')
  })

  test('a URL that never answers 2xx fails at the timeout with the log', async () => {
    const calls = docker({
      inspect: () => result(0, 'running 0\n'),
      logs: (_, o) => {
        o.onOutput?.('GET /missing 404\n')
        return result(0)
      }
    })
    await expect(
      testImage({ ...options, url: `${base}/missing`, timeoutSeconds: 0.6 })
    ).rejects.toThrow(
      `The test-url ${base}/missing did not answer 2xx within 0.6 s (last answer: HTTP 404), so nothing was pushed. The container's last output:\nGET /missing 404`
    )
    expect(subcommands(calls).slice(-2)).toEqual(['logs', 'rm'])
  })

  test('a server that exits fails at once, with its exit code and log', async () => {
    docker({
      inspect: () => result(0, 'exited 2\n'),
      logs: (_, o) => {
        o.onOutput?.('cannot bind\n')
        return result(0)
      }
    })
    const started = Date.now()
    await expect(
      testImage({ ...options, url: `${base}/missing`, timeoutSeconds: 30 })
    ).rejects.toThrow(
      /was never answered 2xx: the container exited with code 2 .*\n?.*cannot bind/s
    )
    expect(Date.now() - started).toBeLessThan(5000)
  })

  test('a container that cannot start fails with what docker said', async () => {
    docker({
      run: (_, o) => {
        o.onOutput?.('docker: Error response from daemon: port in use\n')
        return result(125)
      }
    })
    await expect(testImage({ ...options, url: `${base}/health` })).rejects.toThrow(
      'could not start: `docker run` exited with code 125 (docker could not run the container), so nothing was pushed'
    )
  })

  test('the command runs before the URL', async () => {
    const calls = docker({ inspect: () => result(0, 'running 0') })
    await testImage({ ...options, command: ['/bin/app'], url: `${base}/health` })
    expect(subcommands(calls)).toEqual(['run', 'rm', 'run', 'logs', 'rm'])
    expect(calls[0]?.[1]).toBe('--rm')
    expect(calls[2]?.[1]).toBe('--detach')
  })
})

describe('removeContainer', () => {
  test.each<[RunResult, boolean]>([
    [result(0, 'nix-container-test-a\n'), true],
    [result(0, '', 'Error response from daemon: No such container: nix-container-test-a'), false],
    [result(1, '', 'Error: No such container: nix-container-test-a'), false]
  ])('%j -> %s', async (answer, removed) => {
    docker({ rm: () => answer })
    await expect(removeContainer('nix-container-test-a')).resolves.toBe(removed)
    expect(core.warning).not.toHaveBeenCalled()
  })

  test('never throws: a failure is a warning', async () => {
    exec.run.mockRejectedValue(new Error('docker: not found'))
    await expect(removeContainer('nix-container-test-a')).resolves.toBe(false)
    expect(core.warning).toHaveBeenCalledWith(
      'could not remove the test container nix-container-test-a: docker: not found'
    )
  })
})
