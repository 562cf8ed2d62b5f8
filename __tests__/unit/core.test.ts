// src/core.ts speaks the runner's protocol as @actions/core does: the same file formats and
// workflow commands, checked here against @actions/core itself where both can write.
import { afterEach, beforeEach, describe, expect, jest, test } from '@jest/globals'
import * as actionsCore from '@actions/core'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as core from '../../src/core.js'

let dir: string
const saved = { ...process.env }
let written: string[]

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'nca-core-'))
  for (const name of ['OUTPUT', 'STATE', 'ENV', 'PATH']) {
    process.env[`GITHUB_${name}`] = join(dir, name)
    writeFileSync(join(dir, name), '')
  }
  process.env.GITHUB_STEP_SUMMARY = join(dir, 'summary')
  written = []
  jest.spyOn(process.stdout, 'write').mockImplementation(chunk => {
    written.push(String(chunk))
    return true
  })
})

afterEach(() => {
  jest.restoreAllMocks()
  process.env = { ...saved }
  process.exitCode = undefined
  rmSync(dir, { recursive: true, force: true })
})

/** name -> value from a GITHUB_OUTPUT-style file (the runner's reading of it). */
function keyValues(file: string): Record<string, string> {
  const lines = readFileSync(file, 'utf8').split('\n')
  const result: Record<string, string> = {}
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(ghadelimiter_[0-9a-f-]+)$/.exec(lines[i] as string)
    if (!match) continue
    const end = lines.indexOf(match[2] as string, i + 1)
    result[match[1] as string] = lines.slice(i + 1, end).join('\n')
    i = end
  }
  return result
}

describe('files the runner reads', () => {
  test('outputs and state: the same values as @actions/core writes, multi-line included', () => {
    core.setOutput('digest', 'sha256:abc')
    core.setOutput('refs', 'a\nb')
    core.setOutput('count', 3)
    core.saveState('key', 'value')
    const ours = { output: keyValues(join(dir, 'OUTPUT')), state: keyValues(join(dir, 'STATE')) }
    for (const name of ['OUTPUT', 'STATE']) writeFileSync(join(dir, name), '')
    actionsCore.setOutput('digest', 'sha256:abc')
    actionsCore.setOutput('refs', 'a\nb')
    actionsCore.setOutput('count', 3)
    actionsCore.saveState('key', 'value')
    expect(ours).toEqual({
      output: keyValues(join(dir, 'OUTPUT')),
      state: keyValues(join(dir, 'STATE'))
    })
    expect(ours.output).toEqual({ digest: 'sha256:abc', refs: 'a\nb', count: '3' })
  })

  test('exportVariable and addPath: for later steps and for this one', () => {
    process.env.PATH = '/usr/bin'
    core.exportVariable('NIX_SSL_CERT_FILE', '/etc/ssl/cert.pem')
    core.addPath('/opt/nix/bin')
    expect(process.env.NIX_SSL_CERT_FILE).toBe('/etc/ssl/cert.pem')
    expect(process.env.PATH).toBe('/opt/nix/bin:/usr/bin')
    expect(keyValues(join(dir, 'ENV'))).toEqual({ NIX_SSL_CERT_FILE: '/etc/ssl/cert.pem' })
    expect(readFileSync(join(dir, 'PATH'), 'utf8')).toBe('/opt/nix/bin\n')
  })

  test('a missing file is an error that names it', () => {
    rmSync(join(dir, 'OUTPUT'))
    expect(() => core.setOutput('a', 'b')).toThrow(`Missing file at path: ${join(dir, 'OUTPUT')}`)
  })

  test('the summary is appended to', async () => {
    await core.appendSummary('one\n')
    await core.appendSummary('two\n')
    expect(readFileSync(join(dir, 'summary'), 'utf8')).toBe('one\ntwo\n')
    delete process.env.GITHUB_STEP_SUMMARY
    await expect(core.appendSummary('three')).resolves.toBeUndefined()
  })
})

describe('inputs and state from the environment', () => {
  test('getInput: INPUT_<NAME>, trimmed unless asked not to', () => {
    process.env['INPUT_NIX-CONF'] = '  a = b\n'
    expect(core.getInput('nix-conf')).toBe('a = b')
    expect(core.getInput('nix-conf', { trimWhitespace: false })).toBe('  a = b\n')
    expect(core.getInput('absent')).toBe('')
    expect(() => core.getInput('absent', { required: true })).toThrow('absent')
    process.env.STATE_mainRan = 'true'
    expect(core.getState('mainRan')).toBe('true')
    expect(core.getState('other')).toBe('')
  })
})

describe('workflow commands in the log', () => {
  test('the same lines as @actions/core prints', () => {
    const lines = (write: () => void): string[] => {
      written = []
      write()
      return written
    }
    const message = 'line 1\nline 2 is 100% done\r'
    for (const [ours, theirs] of [
      [() => core.warning(message), () => actionsCore.warning(message)],
      [() => core.notice(message), () => actionsCore.notice(message)],
      [() => core.error(new Error('boom')), () => actionsCore.error(new Error('boom'))],
      [() => core.setSecret('s3cr%t'), () => actionsCore.setSecret('s3cr%t')],
      [() => core.info(message), () => actionsCore.info(message)],
      [() => core.debug(message), () => actionsCore.debug(message)]
    ] as const) {
      expect(lines(ours)).toEqual(lines(theirs))
    }
  })

  test('a group is closed when its work throws; setFailed sets the exit code', async () => {
    await expect(core.group('Push', () => Promise.reject(new Error('refused')))).rejects.toThrow(
      'refused'
    )
    expect(written).toEqual(['::group::Push\n', '::endgroup::\n'])
    core.setFailed('it failed')
    expect(process.exitCode).toBe(1)
    expect(written.at(-1)).toBe('::error::it failed\n')
  })
})
