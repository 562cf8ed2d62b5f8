// The runner emulation itself (scripts/run-action.mjs), against a throwaway fake dist, so
// the action's e2e tests can trust what it reports.
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { actionNode, parseKeyValueText, runAction } from '../../scripts/run-action.mjs'
import type { RunResult } from '../../scripts/run-action.mjs'
import { freshMachine } from './action.js'

// An argument no shell quoting or JSON escaping mistake survives.
const NASTY = 'a "quoted" \\ back\nnew line\ttab\u0001ctl é $HOME `x` \'s'

const ACTION_YML = `name: fake
inputs:
  flake:
    description: 'Flake reference: a path or URL'
    default: .
  github-token:
    description: |
      default: not this one
    default: \${{ github.token }}
  nix-args:
    description: no default
  cache key:
  arg:
  fail:
runs:
  using: node24
  main: dist/main/index.js
  post: dist/post/index.js
`

// Writes the file commands by hand, as @actions/core does (heredoc with a random delimiter).
const MAIN = `
const fs = require('fs')
const { execFileSync } = require('child_process')
const put = (file, name, value) =>
  fs.appendFileSync(process.env[file], name + '<<ghadelimiter_1\\n' + value + '\\nghadelimiter_1\\n')
if (process.env.FAKE_SLEEP) setTimeout(() => {}, 60000)
put('GITHUB_OUTPUT', 'refs', 'r/app:v1\\nr/app:latest')
fs.appendFileSync(process.env.GITHUB_OUTPUT, 'plain=value=with=equals\\n')
put('GITHUB_STATE', 'saved', 'from main')
put('GITHUB_ENV', 'FROM_MAIN', 'exported')
fs.appendFileSync(process.env.GITHUB_PATH, '/opt/first\\n/opt/second\\n')
fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, '## main summary\\n')
console.log('::add-mask::hunter2')
console.log('inputs=' + JSON.stringify(Object.fromEntries(
  Object.entries(process.env).filter(([k]) => k.startsWith('INPUT_')).sort())))
console.log('env=' + JSON.stringify({
  actions: process.env.GITHUB_ACTIONS, ci: process.env.CI, os: process.env.RUNNER_OS,
  arch: process.env.RUNNER_ARCH, temp: process.env.RUNNER_TEMP,
  tools: process.env.RUNNER_TOOL_CACHE, workspace: process.env.GITHUB_WORKSPACE,
  cwd: process.cwd(), extra: process.env.EXTRA
}))
console.log('node=' + process.version)
console.log('who=' + JSON.stringify({
  uid: process.getuid(), home: process.env.HOME, groups: execFileSync('id', ['-Gn'], { encoding: 'utf8' }).trim().split(' '),
  sudo: execFileSync('sudo', ['-n', 'id', '-u'], { encoding: 'utf8' }).trim(),
  tempOwner: fs.statSync(process.env.RUNNER_TEMP).uid, nix: fs.existsSync('/nix')
}))
execFileSync('printf', ['%s\\n', process.env.INPUT_ARG], { stdio: ['ignore', 'inherit', 'inherit'] })
if (process.env.INPUT_FAIL === 'true') process.exitCode = 1
`

const POST = `
const { execFileSync } = require('child_process')
console.log('state=' + process.env.STATE_saved)
console.log('exported=' + process.env.FROM_MAIN)
console.log('path=' + process.env.PATH.split(':').slice(1, 3).join(':'))
execFileSync('true', ['post'])
`

let root: string
let distDir: string

function writeFakeAction(dir: string): void {
  fs.writeFileSync(path.join(dir, 'action.yml'), ACTION_YML)
  for (const [step, code] of [
    ['main', MAIN],
    ['post', POST]
  ] as const) {
    fs.mkdirSync(path.join(dir, 'dist', step), { recursive: true })
    fs.writeFileSync(path.join(dir, 'dist', step, 'index.js'), code)
  }
}

function lineValue(stdout: string, key: string): string {
  const line = stdout.split('\n').find(l => l.startsWith(`${key}=`))
  if (line === undefined) throw new Error(`no ${key}= line in:\n${stdout}`)
  return line.slice(key.length + 1)
}

const runs: RunResult[] = []
async function run(...args: Parameters<typeof runAction>): Promise<RunResult> {
  const result = await runAction(...args)
  runs.push(result)
  return result
}

beforeAll(() => {
  root = fs.mkdtempSync('/tmp/nca-fake-')
  // A checkout other users may read, as the runner reads the action's files.
  fs.chmodSync(root, 0o755)
  distDir = path.join(root, 'dist')
  writeFakeAction(root)
})

afterAll(() => {
  for (const r of runs) fs.rmSync(r.tempDir, { recursive: true, force: true })
  fs.rmSync(root, { recursive: true, force: true })
})

describe('runAction', () => {
  let result: RunResult

  beforeAll(async () => {
    result = await run({
      distDir,
      cwd: root,
      inputs: { 'nix-args': '--foo\n--bar', 'cache key': 'k', arg: NASTY },
      env: { EXTRA: 'extra', GITHUB_TOKEN: 'tok' },
      watch: ['printf', 'true']
    })
  })

  test('both steps succeed', () => {
    expect(result.main).toMatchObject({ exitCode: 0 })
    expect(result.post).toMatchObject({ exitCode: 0 })
  })

  test('the steps run on the chosen Node (NCA_ACTION_NODE, else this one)', () => {
    const version = execFileSync(actionNode(), ['--version'], { encoding: 'utf8' }).trim()
    expect(lineValue(result.main.stdout, 'node')).toBe(version)
  })

  test('inputs: upper-cased, spaces to _, hyphens kept, action.yml defaults filled in', () => {
    expect(JSON.parse(lineValue(result.main.stdout, 'inputs'))).toEqual({
      INPUT_ARG: NASTY,
      INPUT_CACHE_KEY: 'k',
      INPUT_FLAKE: '.',
      'INPUT_GITHUB-TOKEN': 'tok',
      'INPUT_NIX-ARGS': '--foo\n--bar'
    })
  })

  test('runner variables', () => {
    const env = JSON.parse(lineValue(result.main.stdout, 'env')) as Record<string, string>
    expect(env).toMatchObject({ actions: 'true', ci: 'true', os: 'Linux', extra: 'extra' })
    expect(env.arch).toMatch(/^(X64|ARM64)$/)
    expect(env.workspace).toBe(root)
    expect(fs.realpathSync(env.cwd!)).toBe(fs.realpathSync(root))
    expect(env.temp!.startsWith(result.tempDir)).toBe(true)
    expect(env.tools!.startsWith(result.tempDir)).toBe(true)
  })

  test('outputs and state parsed from the heredoc and name=value formats', () => {
    expect(result.outputs).toEqual({ refs: 'r/app:v1\nr/app:latest', plain: 'value=with=equals' })
    expect(result.state).toEqual({ saved: 'from main' })
  })

  test('post gets STATE_*, GITHUB_ENV and GITHUB_PATH (last added first)', () => {
    const stdout = result.post!.stdout
    expect(lineValue(stdout, 'state')).toBe('from main')
    expect(lineValue(stdout, 'exported')).toBe('exported')
    expect(lineValue(stdout, 'path')).toBe('/opt/second:/opt/first')
    expect(result.env).toEqual({ FROM_MAIN: 'exported' })
    expect(result.paths).toEqual(['/opt/first', '/opt/second'])
    expect(result.pathFile).toBe('/opt/first\n/opt/second\n')
  })

  test('summary, masks and watched commands', () => {
    expect(result.summary).toBe('## main summary\n')
    expect(result.masks).toEqual(['hunter2'])
    expect(result.commands).toEqual([
      ['printf', '%s\n', NASTY],
      ['true', 'post']
    ])
    // The real printf ran behind the wrapper.
    expect(result.main.stdout).toContain(NASTY)
  })
})

test('on a runner machine the steps run as the runner: its uid, HOME, docker group, sudo', async () => {
  const machine = freshMachine('none')
  const result = await run({ distDir, cwd: root, inputs: { arg: 'x' }, machine })
  expect({ exit: result.main.exitCode, stderr: result.main.stderr }).toMatchObject({ exit: 0 })
  const who = JSON.parse(lineValue(result.main.stdout, 'who')) as Record<string, unknown>
  expect(machine.uid).not.toBe(0)
  expect(who).toEqual({
    uid: machine.uid,
    home: machine.home,
    groups: expect.arrayContaining(['docker']),
    sudo: '0',
    tempOwner: machine.uid,
    nix: false
  })
})

test('post still runs after main fails; runPost: false skips it', async () => {
  const failed = await run({ distDir, inputs: { fail: 'true', arg: 'x' } })
  expect(failed.main.exitCode).toBe(1)
  expect(failed.post?.exitCode).toBe(0)
  const mainOnly = await run({ distDir, inputs: { arg: 'x' }, runPost: false })
  expect(mainOnly.post).toBeNull()
})

test('a step over timeoutMs is stopped and reported', async () => {
  await expect(
    runAction({ distDir, inputs: { arg: 'x' }, env: { FAKE_SLEEP: '1' }, timeoutMs: 500 })
  ).rejects.toThrow(/main step timed out after 500 ms/)
})

test('a missing bundle is a clear error', async () => {
  await expect(runAction({ distDir: path.join(root, 'nope'), inputs: {} })).rejects.toThrow(
    /main bundle not found: .*nope\/main\/index\.js/
  )
})

describe('parseKeyValueText', () => {
  test.each([
    ['name=value\n', { name: 'value' }],
    ['a<<EOF\n\nEOF\n', { a: '' }],
    ['a<<EOF\r\nx\r\ny\r\nEOF\r\n', { a: 'x\ny' }],
    ['a=1\na<<D\n2\nD\n', { a: '2' }],
    ['k<<D\nv=w<<x\nD\n', { k: 'v=w<<x' }]
  ])('%j', (text, expected) => {
    expect(parseKeyValueText(text)).toEqual(expected)
  })

  test('unterminated heredoc is an error', () => {
    expect(() => parseKeyValueText('a<<EOF\nvalue\n')).toThrow(/'a' has no closing delimiter 'EOF'/)
  })
})

// What global-setup.ts hands every e2e test.
describe('e2e services', () => {
  test('DOCKER_HOST, REGISTRY and NIX_CONFIG are set and the registry answers', async () => {
    expect(process.env.DOCKER_HOST).toMatch(/^unix:\/\/\/tmp\/nca-.*\/docker\.sock$/)
    expect(process.env.NIX_CONFIG).toContain('sandbox = false')
    const response = await fetch(`http://${process.env.REGISTRY}/v2/`)
    expect(response.status).toBe(200)
  })
})
