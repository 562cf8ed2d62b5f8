import { afterEach, describe, expect, test } from '@jest/globals'
import { tmpdir } from 'node:os'
import { actionTempDir, runnerTemp } from '../../src/temp.js'

describe('the action temp folder', () => {
  const saved = process.env.RUNNER_TEMP
  afterEach(() => {
    if (saved === undefined) delete process.env.RUNNER_TEMP
    else process.env.RUNNER_TEMP = saved
  })

  test('RUNNER_TEMP when set', () => {
    process.env.RUNNER_TEMP = '/home/runner/work/_temp'
    expect(runnerTemp()).toBe('/home/runner/work/_temp')
    expect(actionTempDir()).toBe('/home/runner/work/_temp/nix-container-action')
  })

  test.each([undefined, ''])("the system's temp directory when RUNNER_TEMP is %j", value => {
    if (value === undefined) delete process.env.RUNNER_TEMP
    else process.env.RUNNER_TEMP = value
    expect(runnerTemp()).toBe(tmpdir())
    expect(actionTempDir()).toBe(`${tmpdir()}/nix-container-action`)
  })

  test('under another root', () => {
    expect(actionTempDir('/t')).toBe('/t/nix-container-action')
  })
})
