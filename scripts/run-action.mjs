#!/usr/bin/env node
// Runs the bundled action the way the GitHub runner does: `node dist/main/index.js`, then
// `node dist/post/index.js` with STATE_* from the main step. Emulates the runner's side of
// the contract: INPUT_* (with action.yml defaults), the GITHUB_OUTPUT/STATE/ENV/PATH and
// GITHUB_STEP_SUMMARY files, RUNNER_* variables, and GITHUB_ENV/GITHUB_PATH carried into post.
// Library: `runAction(options)` (types in run-action.d.mts). CLI: see usage() below.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { clearTimeout, setTimeout } from 'node:timers'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { isMain } from './is-main.mjs'
import {
  FOREIGN_ENV,
  ensureRunnerUser,
  giveToUser,
  letRunnerReach,
  machineArgv,
  machineEnv,
  removeAsRoot,
  startMachine,
  stopMachine
} from './runner-machine.mjs'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')

// Variables a step must not inherit from whoever runs this (a CI job, jest): the runner
// sets these itself for each step.
const INHERITED_DROP =
  /^(INPUT_|STATE_|GITHUB_(OUTPUT|STATE|ENV|PATH|STEP_SUMMARY)$|NODE_OPTIONS$|JEST_WORKER_ID$)/

// Process groups of steps still running, so the CLI can stop them on Ctrl-C.
const runningGroups = new Set()

/** @param {import('./run-action.d.mts').RunOptions} o */
export async function runAction(o) {
  const tempDir = fs.mkdtempSync(path.join(shortTmpDir(), 'nca-run-'))
  try {
    return await runInTempDir(o, tempDir)
  } catch (error) {
    // Nothing to hand back: the error carries what the caller needs.
    if (o.machine) removeAsRoot(tempDir)
    else fs.rmSync(tempDir, { recursive: true, force: true })
    throw error
  }
}

async function runInTempDir(o, tempDir) {
  const distDir = path.resolve(o.distDir ?? path.join(repoRoot, 'dist'))
  const cwd = path.resolve(o.cwd ?? process.cwd())
  const dirs = makeRunDirs(tempDir)
  const base = runnerEnv(o.env ?? {}, cwd, dirs, o.machine)
  const inputs = inputVariables(o.inputs, readActionInputs(distDir), base)
  const basePath = base.PATH ?? ''
  const watchDir = o.watch?.length ? writeWatchers(tempDir, o.watch, dirs.commandLog) : null
  const step = {
    cwd,
    timeoutMs: o.timeoutMs,
    stream: o.stream ?? false,
    machine: o.machine,
    onLine: o.onLine
  }
  const mainFiles = stepFiles(tempDir, 'main')
  const postFiles = (o.runPost ?? true) ? stepFiles(tempDir, 'post') : null
  // On a machine, the steps run as its user, who owns the run's files as on GitHub's runners;
  // the caller reads the command files back (secrets below have modes of their own).
  if (o.machine) {
    fs.chmodSync(tempDir, 0o755)
    giveToUser(o.machine, tempDir)
  }
  const main = await runStep('main', bundle(distDir, 'main'), step, {
    ...base,
    ...inputs,
    ...fileVariables(mainFiles),
    PATH: joinPath([watchDir, basePath])
  })
  const state = parseKeyValueFile(mainFiles.state)
  const outputs = parseKeyValueFile(mainFiles.output)
  const envFile = readText(mainFiles.env)
  const pathFile = readText(mainFiles.path)
  const exported = parseKeyValueFile(mainFiles.env)
  const paths = parsePathFile(pathFile)

  let post = null
  if (postFiles) {
    post = await runStep('post', bundle(distDir, 'post'), step, {
      ...base,
      ...exported,
      ...inputs,
      ...stateVariables(state),
      ...fileVariables(postFiles),
      PATH: joinPath([watchDir, ...prependedPaths(paths), exported.PATH ?? basePath])
    })
  }

  return {
    main,
    post,
    outputs,
    state,
    summary: readText(mainFiles.summary) + (postFiles ? readText(postFiles.summary) : ''),
    envFile,
    pathFile,
    env: exported,
    paths,
    commands: readCommandLog(dirs.commandLog),
    masks: [...collectMasks(main), ...(post ? collectMasks(post) : [])],
    tempDir
  }
}

// --- the runner's environment ----------------------------------------------------------

// Short, so unix socket paths made below RUNNER_TEMP stay under the ~108-character limit.
function shortTmpDir() {
  return fs.existsSync('/tmp') ? '/tmp' : os.tmpdir()
}

function makeRunDirs(tempDir) {
  const dirs = {
    runnerTemp: path.join(tempDir, 'runner-temp'),
    toolCache: path.join(tempDir, 'tool-cache'),
    event: path.join(tempDir, 'event.json'),
    commandLog: path.join(tempDir, 'commands.log')
  }
  fs.mkdirSync(dirs.runnerTemp)
  fs.mkdirSync(dirs.toolCache)
  fs.writeFileSync(dirs.event, '{}\n')
  fs.writeFileSync(dirs.commandLog, '')
  return dirs
}

// What every step sees: this process's environment (minus the runner-owned variables),
// then the runner's defaults, then the caller's `env` (which may override any default).
function runnerEnv(extra, cwd, dirs, machine) {
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(
      ([k, v]) => v !== undefined && !INHERITED_DROP.test(k) && !(machine && FOREIGN_ENV.test(k))
    )
  )
  return {
    ...inherited,
    ...(machine ? machineEnv(machine) : {}),
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: cwd,
    GITHUB_EVENT_PATH: dirs.event,
    GITHUB_EVENT_NAME: 'push',
    GITHUB_REPOSITORY: 'nca-test/app',
    GITHUB_REPOSITORY_OWNER: 'nca-test',
    GITHUB_ACTOR: 'nca-test',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_REF_NAME: 'main',
    GITHUB_SHA: '0'.repeat(40),
    GITHUB_RUN_ID: '1',
    GITHUB_RUN_NUMBER: '1',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_JOB: 'test',
    GITHUB_WORKFLOW: 'run-action',
    GITHUB_ACTION: 'nix-container-action',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: 'https://api.github.com',
    RUNNER_NAME: 'run-action',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: runnerArch(),
    RUNNER_TEMP: dirs.runnerTemp,
    RUNNER_TOOL_CACHE: dirs.toolCache,
    ...extra
  }
}

function runnerArch() {
  const arch = { x64: 'X64', arm64: 'ARM64', arm: 'ARM', ia32: 'X86' }[process.arch]
  if (!arch) throw new Error(`run-action: no RUNNER_ARCH for node's process.arch ${process.arch}`)
  return arch
}

// The runner creates fresh command files for every step.
function stepFiles(tempDir, step) {
  const dir = path.join(tempDir, step)
  fs.mkdirSync(dir)
  const files = {
    output: path.join(dir, 'output'),
    state: path.join(dir, 'state'),
    env: path.join(dir, 'env'),
    path: path.join(dir, 'path'),
    summary: path.join(dir, 'step_summary')
  }
  for (const file of Object.values(files)) fs.writeFileSync(file, '')
  return files
}

function fileVariables(files) {
  return {
    GITHUB_OUTPUT: files.output,
    GITHUB_STATE: files.state,
    GITHUB_ENV: files.env,
    GITHUB_PATH: files.path,
    GITHUB_STEP_SUMMARY: files.summary
  }
}

function stateVariables(state) {
  return Object.fromEntries(Object.entries(state).map(([k, v]) => [`STATE_${k}`, v]))
}

function joinPath(parts) {
  return parts.filter(Boolean).join(path.delimiter)
}

// The runner prepends GITHUB_PATH entries so the one added last comes first; a repeated
// entry moves to the front.
function prependedPaths(paths) {
  const unique = []
  for (const p of paths) {
    const i = unique.indexOf(p)
    if (i >= 0) unique.splice(i, 1)
    unique.push(p)
  }
  return unique.reverse()
}

// --- inputs -----------------------------------------------------------------------------

// core.getInput reads INPUT_<name upper-cased, spaces to underscores>; hyphens stay.
export function inputVariableName(name) {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`
}

// INPUT_* for every input given, plus action.yml's default for every declared input that
// was not, as the runner does. Warns, like the runner, about undeclared inputs.
function inputVariables(given, declared, env) {
  const vars = {}
  if (declared) {
    for (const [name, def] of declared) {
      if (def !== undefined) vars[inputVariableName(name)] = evaluateDefault(name, def, env)
    }
    const known = new Set([...declared.keys()].map(k => k.toLowerCase()))
    const unexpected = Object.keys(given).filter(k => !known.has(k.toLowerCase()))
    if (unexpected.length) {
      const list = names => names.map(n => `'${n}'`).join(', ')
      process.stderr.write(
        `##[warning]Unexpected input(s) ${list(unexpected)}, valid inputs are [${list([...declared.keys()])}]\n`
      )
    }
  }
  for (const [name, value] of Object.entries(given)) vars[inputVariableName(name)] = String(value)
  return vars
}

// The few expressions an action.yml default can reasonably hold.
function evaluateDefault(name, value, env) {
  const contexts = {
    'github.token': env.GITHUB_TOKEN ?? '',
    'github.workspace': env.GITHUB_WORKSPACE,
    'github.repository': env.GITHUB_REPOSITORY,
    'github.repository_owner': env.GITHUB_REPOSITORY_OWNER,
    'github.ref': env.GITHUB_REF,
    'github.sha': env.GITHUB_SHA,
    'runner.os': env.RUNNER_OS,
    'runner.arch': env.RUNNER_ARCH,
    'runner.temp': env.RUNNER_TEMP
  }
  return value.replace(/\$\{\{\s*(.*?)\s*\}\}/g, (_, expr) => {
    if (!(expr in contexts)) {
      throw new Error(
        `run-action: action.yml input '${name}' has default '${value}': cannot evaluate '${expr}'`
      )
    }
    return contexts[expr] ?? ''
  })
}

// action.yml sits beside the dist directory; a dist without one (a test's fake) has no
// declared inputs, so only the given inputs are set.
function readActionInputs(distDir) {
  for (const name of ['action.yml', 'action.yaml']) {
    const file = path.join(distDir, '..', name)
    if (fs.existsSync(file)) return parseActionInputs(fs.readFileSync(file, 'utf8'))
  }
  return null
}

/**
 * The `inputs:` mapping of an action.yml: name -> default (undefined when it has none). The
 * runner hands every default to the step as a string, so `default: 3` becomes '3'.
 */
export function parseActionInputs(text) {
  const declared = parseYaml(text)?.inputs ?? {}
  return new Map(
    Object.entries(declared).map(([name, spec]) => {
      const value = spec?.default
      return [name, value === undefined || value === null ? undefined : String(value)]
    })
  )
}

// --- command files ----------------------------------------------------------------------

function readText(file) {
  return fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : ''
}

/**
 * Parse a GITHUB_OUTPUT/STATE/ENV file as the runner does: `name<<DELIMITER` heredocs
 * (what @actions/core writes) and `name=value` lines; a later entry wins.
 */
export function parseKeyValueText(text, label = 'command file') {
  const lines = text.split(/\r?\n/)
  const result = {}
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]
    if (line === '') continue
    const eq = line.indexOf('=')
    const heredoc = line.indexOf('<<')
    if (eq > 0 && (heredoc < 0 || eq < heredoc)) {
      result[line.slice(0, eq)] = line.slice(eq + 1)
      continue
    }
    if (heredoc <= 0)
      throw new Error(
        `run-action: ${label} line ${i + 1} is not name=value or name<<DELIMITER: ${line}`
      )
    const name = line.slice(0, heredoc)
    const delimiter = line.slice(heredoc + 2)
    const end = lines.indexOf(delimiter, i + 1)
    if (!delimiter || end < 0) {
      throw new Error(`run-action: ${label}: '${name}' has no closing delimiter '${delimiter}'`)
    }
    result[name] = lines.slice(i + 1, end).join('\n')
    i = end
  }
  return result
}

function parseKeyValueFile(file) {
  return parseKeyValueText(readText(file), file)
}

// GITHUB_PATH: one directory a line; the runner skips blank lines.
function parsePathFile(text) {
  return text.split(/\r?\n/).filter(line => line.trim() !== '')
}

// --- watched commands -------------------------------------------------------------------

// A bash wrapper that appends its argv to LOG as one JSON array, then execs the real
// command: the first one on PATH that is not in the wrapper's own directory.
function watcherScript(name, dir, log) {
  const q = s => `'${s.replace(/'/g, `'\\''`)}'`
  return `#!/bin/bash
# Written by scripts/run-action.mjs: records how ${name} was run, then runs it.
log=${q(log)}
name=${q(name)}
self=${q(dir)}
json() {
  local LC_ALL=C s=$1 code hex c
  s=\${s//\\\\/\\\\\\\\}
  s=\${s//\\"/\\\\\\"}
  s=\${s//$'\\n'/\\\\n}
  s=\${s//$'\\r'/\\\\r}
  s=\${s//$'\\t'/\\\\t}
  if [[ $s == *[[:cntrl:]]* ]]; then
    for code in {1..31}; do
      printf -v hex %02x "$code"
      printf -v c "\\\\x$hex"
      s=\${s//"$c"/$(printf '\\\\u%04x' "$code")}
    done
  fi
  REPLY="\\"$s\\""
}
json "$name"
line="[$REPLY"
for arg in "$@"; do
  json "$arg"
  line+=",$REPLY"
done
printf '%s\\n' "$line]" >>"$log"
IFS=: read -ra dirs <<<"$PATH"
for dir in "\${dirs[@]}"; do
  [[ $dir -ef $self ]] && continue
  [[ -f \${dir:-.}/$name && -x \${dir:-.}/$name ]] && exec "\${dir:-.}/$name" "$@"
done
echo "$name: command not found (run-action.mjs watch wrapper searched PATH without $self)" >&2
exit 127
`
}

function writeWatchers(tempDir, names, log) {
  const dir = path.join(tempDir, 'bin')
  fs.mkdirSync(dir)
  for (const name of names) {
    if (!/^[A-Za-z0-9._+-]+$/.test(name)) {
      throw new Error(`run-action: cannot watch '${name}': give a command name, not a path`)
    }
    fs.writeFileSync(path.join(dir, name), watcherScript(name, dir, log), { mode: 0o755 })
  }
  return dir
}

function readCommandLog(file) {
  return readText(file)
    .split('\n')
    .filter(Boolean)
    .map(line => {
      try {
        return JSON.parse(line)
      } catch {
        throw new Error(`run-action: bad line in watched command log ${file}: ${line}`)
      }
    })
}

// --- running a step ---------------------------------------------------------------------

function bundle(distDir, step) {
  const file = path.join(distDir, step, 'index.js')
  if (!fs.existsSync(file)) {
    throw new Error(
      `run-action: ${step} bundle not found: ${file} (build it with 'npm run bundle')`
    )
  }
  return file
}

// Run one step in its own process group, so a timeout stops its children (nix, docker)
// too and nothing keeps its output pipes open.
function runStep(name, script, opts, env) {
  return new Promise((resolve, reject) => {
    if (opts.stream)
      process.stdout.write(`\n=== ${name}: node ${path.relative(process.cwd(), script)}\n`)
    const command = opts.machine
      ? machineArgv(opts.machine, opts.cwd, [actionNode(), script])
      : [actionNode(), script]
    const child = spawn(command[0], command.slice(1), {
      cwd: opts.cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true
    })
    runningGroups.add(child.pid)
    const masks = []
    const out = captureStream(child.stdout, opts.stream && process.stdout, masks, opts.onLine)
    const err = captureStream(child.stderr, opts.stream && process.stderr, masks)
    let timedOut = false
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true
          stopGroup(child.pid)
        }, opts.timeoutMs)
      : null
    child.on('error', error => {
      if (timer) clearTimeout(timer)
      runningGroups.delete(child.pid)
      reject(new Error(`run-action: could not start the ${name} step: ${error.message}`))
    })
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer)
      runningGroups.delete(child.pid)
      out.flush()
      err.flush()
      const result = {
        exitCode: code ?? 128 + (os.constants.signals[signal] ?? 0),
        stdout: out.text(),
        stderr: err.text()
      }
      if (!timedOut) return resolve(result)
      reject(
        new Error(`run-action: ${name} step timed out after ${opts.timeoutMs} ms; ${tail(result)}`)
      )
    })
  })
}

/**
 * The Node that runs the bundles: NCA_ACTION_NODE when set (CI runs the e2e suite again with
 * the Node 24 that action.yml declares), else the one running this script.
 */
export function actionNode() {
  return process.env.NCA_ACTION_NODE || process.execPath
}

function stopGroup(pid) {
  const signal = sig => {
    try {
      process.kill(-pid, sig)
    } catch {
      // already gone
    }
  }
  signal('SIGTERM')
  setTimeout(() => signal('SIGKILL'), 5000).unref()
}

function tail({ stdout, stderr }) {
  const last = s => s.split('\n').slice(-20).join('\n')
  return `last output:\n${last(stdout)}\n--- stderr:\n${last(stderr)}`
}

// Keep everything a step printed; when streaming, echo it line by line the way the
// runner's log shows it: `::add-mask::` lines hidden, `::debug::` lines too unless
// RUNNER_DEBUG=1 (as with step debug logging), and masked values as ***.
function captureStream(stream, echo, masks, onLine) {
  const chunks = []
  let partial = ''
  const show = line => {
    onLine?.(line)
    const mask = /^::add-mask::(.*)$/.exec(line)
    if (mask) {
      masks.push(unescapeCommandData(mask[1]))
      return
    }
    if (line.startsWith('::debug::') && process.env.RUNNER_DEBUG !== '1') return
    if (echo) echo.write(applyMasks(line, masks) + '\n')
  }
  stream.setEncoding('utf8')
  stream.on('data', chunk => {
    chunks.push(chunk)
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    lines.forEach(show)
  })
  return {
    flush: () => {
      if (partial) show(partial)
      partial = ''
    },
    text: () => chunks.join('')
  }
}

function unescapeCommandData(s) {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%')
}

function applyMasks(line, masks) {
  return masks.reduce((l, m) => (m ? l.split(m).join('***') : l), line)
}

function collectMasks(step) {
  const found = []
  for (const line of (step.stdout + '\n' + step.stderr).split('\n')) {
    const m = /^::add-mask::(.*)$/.exec(line)
    if (m) found.push(unescapeCommandData(m[1]))
  }
  return found
}

// --- CLI --------------------------------------------------------------------------------

function usage() {
  return `usage: node scripts/run-action.mjs [options] name=value ...

Runs dist/main/index.js then dist/post/index.js as the GitHub runner does; each
name=value is an input. Options:
  --dist DIR        bundles directory (default: ${path.join(repoRoot, 'dist')})
  --cwd DIR         GITHUB_WORKSPACE and working directory (default: current directory)
  --no-post         run only the main step
  --watch a,b       log every run of these commands
  --timeout MS      stop a step that runs longer than this
  --keep            keep the run's temp dir (RUNNER_TEMP, command files)
  --machine SHAPE   run the steps as GitHub does, as the unprivileged \`runner\` user (made
                    with sudo when missing) on a fresh simulated runner machine whose Nix is
                    SHAPE: none, single-user, daemon or root (scripts/runner-machine.sh)
`
}

function parseArgs(argv) {
  const o = { inputs: {}, stream: true }
  let keep = false
  let machineShape = null
  const value = (flag, i) => {
    if (i >= argv.length) throw new Error(`${flag} needs a value`)
    return argv[i]
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--dist') o.distDir = value(arg, ++i)
    else if (arg === '--cwd') o.cwd = value(arg, ++i)
    else if (arg === '--no-post') o.runPost = false
    else if (arg === '--watch') o.watch = value(arg, ++i).split(',').filter(Boolean)
    else if (arg === '--timeout') o.timeoutMs = Number(value(arg, ++i))
    else if (arg === '--keep') keep = true
    else if (arg === '--machine') machineShape = value(arg, ++i)
    else if (arg === '-h' || arg === '--help') return { help: true }
    else if (arg.startsWith('-')) throw new Error(`unknown option ${arg}`)
    else {
      const eq = arg.indexOf('=')
      if (eq <= 0) throw new Error(`inputs are name=value, got '${arg}'`)
      o.inputs[arg.slice(0, eq)] = arg.slice(eq + 1)
    }
  }
  if (machineShape !== null && !MACHINE_SHAPES.includes(machineShape)) {
    throw new Error(`--machine is one of ${MACHINE_SHAPES.join(', ')}, got '${machineShape}'`)
  }
  return { options: o, keep, machineShape }
}

const MACHINE_SHAPES = ['none', 'single-user', 'daemon', 'root']

function printOutputs(outputs) {
  process.stdout.write('\nOutputs:\n')
  if (Object.keys(outputs).length === 0) process.stdout.write('  (none)\n')
  for (const [name, value] of Object.entries(outputs)) {
    const lines = value.split('\n')
    const rest = lines
      .slice(1)
      .map(l => `\n    ${l}`)
      .join('')
    process.stdout.write(`  ${name}: ${lines[0]}${rest}\n`)
  }
}

function printCommands(commands) {
  process.stdout.write('\nCommands:\n')
  for (const argv of commands)
    process.stdout.write(`  ${argv.map(a => JSON.stringify(a)).join(' ')}\n`)
}

async function cli(argv) {
  let parsed
  try {
    parsed = parseArgs(argv)
  } catch (error) {
    process.stderr.write(`run-action: ${error.message}\n\n${usage()}`)
    return 2
  }
  if (parsed.help) {
    process.stdout.write(usage())
    return 0
  }
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      for (const pid of runningGroups) stopGroup(pid)
      process.exit(130)
    })
  }
  let machine = null
  if (parsed.machineShape) {
    const user = ensureRunnerUser()
    // The runner reads the action and the flake from here (a checkout under /root, say).
    for (const dir of [repoRoot, parsed.options.cwd ?? process.cwd()]) letRunnerReach(dir)
    machine = startMachine(parsed.machineShape, user)
    process.stdout.write(
      `run-action: a fresh runner machine (Nix: ${parsed.machineShape}); steps run as ${machine.user}\n`
    )
  }
  let result
  try {
    result = await runAction({ ...parsed.options, ...(machine ? { machine } : {}) })
  } finally {
    if (machine) stopMachine(machine)
  }
  printOutputs(result.outputs)
  if (parsed.options.watch?.length) printCommands(result.commands)
  if (parsed.keep) process.stdout.write(`\nRun files kept in ${result.tempDir}\n`)
  else if (machine) removeAsRoot(result.tempDir)
  else fs.rmSync(result.tempDir, { recursive: true, force: true })
  if (result.main.exitCode !== 0) return result.main.exitCode
  return result.post?.exitCode ?? 0
}

if (isMain(import.meta.url)) {
  cli(process.argv.slice(2)).then(
    code => process.exit(code),
    error => {
      process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`)
      process.exit(1)
    }
  )
}
