import { describe, expect, test } from '@jest/globals'
import { CommandError, run, settleAll } from '../../src/exec.js'
import { classifyFailure } from '../../src/registry/retry.js'

describe('run', () => {
  test('captures output; arguments reach the program as they are, no shell', async () => {
    const result = await run('printf', ['%s|', 'a b', '$(id)', ';'], { silent: true })
    expect(result.stdout).toBe('a b|$(id)|;|')
  })

  test('a non-zero exit throws with the command and the tail of stderr', async () => {
    const error = (await run('sh', ['-c', 'echo oops >&2; exit 3'], { silent: true }).catch(
      (e: unknown) => e
    )) as CommandError
    expect(error).toBeInstanceOf(CommandError)
    expect(error.exitCode).toBe(3)
    expect(error.message).toContain('failed with exit code 3:\noops')
  })

  test('input goes to stdin', async () => {
    expect((await run('cat', [], { input: 'secret', silent: true })).stdout).toBe('secret')
  })

  test('onOutput gets stdout and stderr in the order they came', async () => {
    let output = ''
    const script = 'echo one; sleep 0.1; echo two >&2; sleep 0.1; echo three'
    await run('sh', ['-c', script], { silent: true, onOutput: text => (output += text) })
    expect(output).toBe('one\ntwo\nthree\n')
  })

  test('a command that outlives its timeout is stopped, and the failure reads as a timeout', async () => {
    const started = Date.now()
    const error = (await run('sleep', ['30'], { silent: true, timeoutSeconds: 1 }).catch(
      (e: unknown) => e
    )) as CommandError
    expect(Date.now() - started).toBeLessThan(10_000)
    expect(error.command).toEqual(['sleep', '30'])
    expect(error.stderr).toContain('timed out after 1 s')
    expect(classifyFailure(error.stderr)).toEqual({ transient: true, reason: 'timeout' })
  })
})

describe('settleAll', () => {
  test('all values when all succeed', async () => {
    await expect(settleAll([Promise.resolve(1), Promise.resolve('a')])).resolves.toEqual([1, 'a'])
  })

  test('the first failure, after every promise has settled', async () => {
    let lateSettled = false
    const late = new Promise<void>((_, reject) =>
      setTimeout(() => {
        lateSettled = true
        reject(new Error('second'))
      }, 50)
    )
    await expect(settleAll([Promise.reject(new Error('first')), late])).rejects.toThrow('first')
    expect(lateSettled).toBe(true)
  })
})
