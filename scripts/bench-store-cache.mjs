#!/usr/bin/env node
// Benchmark of the store cache, through the bundled action (dist/) and the real @actions/cache
// client against the v1 cache API server on 127.0.0.1 (cache-server.mjs). One run, side by side:
//   run 1       builds a closure of BENCH_MB (default 300) of incompressible data and saves it;
//   run 2       on a store without those paths: restores, and must build nothing;
//   baseline 1  a plain `tar -xf` of the same paths (uncompressed tar, prepared beforehand);
//   baseline 2  the same paths as a plain tar through @actions/cache (download, unzstd,
//               extract), in a node process of its own: what caches that tar /nix/store do,
//               here extracted beside the store, not into it.
// Run 2 and the baselines are taken BENCH_RUNS times (default 3), interleaved; medians shown.
// Prints the save's seconds (job summary), the restore's (its log group, to the millisecond),
// the archive's size against the closure's (`nix path-info -S`), the restore against each
// baseline (the issue's goal: within 1.5x), and where the restore's time goes: one more restore
// with every command it runs (nix, nix-store, tar, zstd) wrapped to log its start and end,
// measured from outside the action.
// Needs: nix, tar, zstd, and `npm run bundle` first. Usage: npm run bench:store-cache
// Environment: BENCH_MB (closure size, default 300), BENCH_RUNS (samples, default 3),
// BENCH_DIST (the dist/ directory to measure, an action.yml beside it; default this repo's).
import { execFile, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { cacheEnv, startCacheServer } from './cache-server.mjs'
import { runAction } from './run-action.mjs'

const execFileAsync = promisify(execFile)
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const fixture = path.join(repoRoot, '__tests__/e2e/flakes/cache-bench')
const BLOB_MB = 50
const megabytes = Number(process.env.BENCH_MB ?? 300)
const blobCount = Math.max(1, Math.round(megabytes / BLOB_MB))
/** Samples of the restore and of each baseline; the median is reported. */
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))

// As the e2e tests: no substituters, no sandbox (host tools), no build users.
const NIX_CONFIG = [
  process.env.NIX_CONFIG ?? '',
  fs.readFileSync(new URL('./test-nix.conf', import.meta.url), 'utf8')
].join('\n')

const lines = text => text.split('\n').filter(Boolean)
const nixStore = (...args) =>
  execFileSync('nix-store', args, { encoding: 'utf8', env: { ...process.env, NIX_CONFIG } })
const mb = bytes => `${(bytes / 1024 / 1024).toFixed(1)} MB`

function seconds(work) {
  const started = process.hrtime.bigint()
  work()
  return Number(process.hrtime.bigint() - started) / 1e9
}

/** The Seconds column of a job summary row. */
function summarySeconds(summary, row) {
  const match = new RegExp(`^\\| ${row} \\|.*\\| ([0-9.]+) \\|$`, 'm').exec(summary)
  if (!match) throw new Error(`bench: no "${row}" row in the job summary:\n${summary}`)
  return Number(match[1])
}

/**
 * Run the action (main, then post). `stageSeconds(name)`: how long a stage of the main step
 * took, to the millisecond (the job summary rounds to 0.1 s), from when its log group's
 * `::group::` and `::endgroup::` lines arrived here: the step's output is streamed to this
 * process (and swallowed), and a group ends as its stage does.
 */
async function runOnce(flakeRef, server, extraEnv = {}) {
  const lines = []
  const swallow = chunk => {
    lines.push({ at: process.hrtime.bigint(), text: String(chunk) })
    return true
  }
  const { write: out } = process.stdout
  const { write: err } = process.stderr
  let result
  try {
    process.stdout.write = swallow
    process.stderr.write = () => true
    result = await runAction({
      inputs: { flake: flakeRef, load: 'false', push: 'false' },
      env: { ...cacheEnv(server), NIX_CONFIG, ...extraEnv },
      timeoutMs: 1_200_000,
      stream: true,
      // Another build of the action (say, a commit's dist/ and action.yml), to compare.
      ...(process.env.BENCH_DIST ? { distDir: process.env.BENCH_DIST } : {})
    })
  } finally {
    process.stdout.write = out
    process.stderr.write = err
  }
  if (result.main.exitCode !== 0 || result.post?.exitCode !== 0) {
    throw new Error(`bench: the action failed:\n${result.main.stdout}\n${result.main.stderr}`)
  }
  const stageSeconds = name => {
    const start = lines.findIndex(l => l.text === `::group::${name}\n`)
    const end = lines.findIndex((l, i) => i > start && l.text === '::endgroup::\n')
    if (start === -1 || end === -1) throw new Error(`bench: no log group "${name}"`)
    return Number(lines[end].at - lines[start].at) / 1e9
  }
  return { ...result, stageSeconds }
}

// --- where the restore's time goes ------------------------------------------------------

const TIMED_COMMANDS = ['nix', 'nix-store', 'tar', 'zstd', 'unzstd']

/**
 * A directory of bash wrappers, first on PATH, that run each command and append
 * `<start> <end> <argv>` (seconds since the epoch) to `log`: the restore's phases, measured
 * from outside the action (nothing is added to its log). The wrappers cost a few ms each, so
 * the breakdown comes from a run of its own, not from the run whose seconds are reported.
 */
function timingWrappers(dir, log) {
  fs.mkdirSync(dir)
  for (const name of TIMED_COMMANDS) {
    let real
    try {
      real = execFileSync('bash', ['-c', `command -v ${name}`], { encoding: 'utf8' }).trim()
    } catch {
      continue
    }
    const script = [
      '#!/bin/bash',
      'start=$EPOCHREALTIME',
      `'${real}' "$@"`,
      'rc=$?',
      `printf '%s %s %s\\n' "$start" "$EPOCHREALTIME" "${name} $*" >> '${log}'`,
      'exit $rc',
      ''
    ].join('\n')
    fs.writeFileSync(path.join(dir, name), script, { mode: 0o755 })
  }
  return dir
}

/** The commands a timed run ran, in order of start (seconds since the epoch). */
function readTimings(log) {
  const entries = lines(fs.existsSync(log) ? fs.readFileSync(log, 'utf8') : '').map(line => {
    const [start, end, ...argv] = line.split(' ')
    return { start: Number(start), end: Number(end), command: argv.join(' ') }
  })
  return entries.sort((a, b) => a.start - b.start)
}

/** A short label for a command line: the program and its first few arguments. */
function label(command) {
  const words = command
    .split(' ')
    .filter(w => !w.startsWith('/nix/store/') && !w.startsWith('--extra-experimental'))
    .map(w => (w.length > 40 ? `${w.slice(0, 37)}...` : w))
  return words.slice(0, 6).join(' ')
}

/** The restore's commands, in order, and its phases (from the timed run's wrapper log). */
function printBreakdown(timings, total) {
  // From the first command of the restore (the key computation) to the build, which is not timed.
  const first = timings.findIndex(t => / (eval|flake metadata) /.test(` ${t.command} `))
  const build = timings.findIndex(t => / build /.test(` ${t.command} `))
  const restore = timings.slice(Math.max(0, first), build === -1 ? undefined : build)
  if (restore.length === 0) return
  const t0 = restore[0].start
  const at = t => (t - t0).toFixed(3)
  const out = [
    '',
    `where a restore's time goes (a run of its own, every command wrapped: ${total.toFixed(2)} s in all)`
  ]
  for (const t of restore) {
    out.push(
      `  ${at(t.start)}-${at(t.end)}  ${(t.end - t.start).toFixed(3)} s  ${label(t.command)}`
    )
  }
  const span = (list, from = Math.min(...list.map(t => t.start))) =>
    list.length === 0 ? 0 : Math.max(...list.map(t => t.end)) - from
  const keys = restore.filter(t => / (eval|flake metadata) /.test(` ${t.command} `))
  const tar = restore.filter(t => /^tar /.test(t.command))
  const nixAfter = restore.filter(t => tar.length > 0 && t.start >= tar[0].end)
  const keysEnd = Math.max(...keys.map(t => t.end))
  const phases = [
    ['keys (nix eval, nix flake metadata, side by side)', span(keys)],
    [
      'load @actions/cache, look up, download (to tar start)',
      tar.length ? tar[0].start - keysEnd : 0
    ],
    ['extract (tar + unzstd)', span(tar)],
    [
      'from extraction to import (manifest, narinfos)',
      tar.length && nixAfter.length ? nixAfter[0].start - tar[0].end : 0
    ],
    ['check validity, import, verify', span(nixAfter)],
    [
      'outside every command (before the first, after the last)',
      total - (Math.max(...restore.map(t => t.end)) - t0)
    ]
  ]
  out.push('  phases:')
  for (const [name, secs] of phases) out.push(`    ${secs.toFixed(3)} s  ${name}`)
  process.stdout.write(`${out.join('\n')}\n`)
}

// Baseline 2's restore, in a node process of its own as the action's restore is: in a process
// that already restored once, a second restore runs up to twice as fast (measured here), which
// would flatter the baseline. Times restoreCache() alone, its module already loaded.
const RESTORE_CHILD = `
const cache = await import(process.env.BENCH_CACHE_MODULE)
const paths = JSON.parse(process.env.BENCH_PATHS)
const started = process.hrtime.bigint()
const key = await cache.restoreCache(paths, process.env.BENCH_KEY)
const seconds = Number(process.hrtime.bigint() - started) / 1e9
process.stderr.write(JSON.stringify({ key: key ?? null, seconds }))
`

/**
 * \`paths\` as a plain tar through @actions/cache: save() once (the paths must be valid), then
 * restoreSeconds(dir) times a restore (download, unzstd, extract) into an empty directory.
 */
async function actionsCacheTar(server, work, paths) {
  const cache = await import('@actions/cache')
  const key = 'bench-plain-tar'
  const env = { ...cacheEnv(server), RUNNER_TEMP: path.join(work, 'runner-temp') }
  fs.mkdirSync(env.RUNNER_TEMP)
  const relative = paths.map(p => p.slice(1))
  const save = async () => {
    const saved = { ...process.env }
    const cwd = process.cwd()
    // @actions/cache logs through stdout: keep it out of the bench's output.
    const write = process.stdout.write
    try {
      Object.assign(process.env, env, { GITHUB_WORKSPACE: '/' })
      process.chdir('/')
      process.stdout.write = () => true
      await cache.saveCache(relative, key)
    } finally {
      process.stdout.write = write
      process.chdir(cwd)
      process.env = saved
    }
  }
  const restoreSeconds = async (extractDir, settle) => {
    settle()
    // Asynchronously: the cache server answering it runs in this process.
    const { stderr } = await execFileAsync(
      process.execPath,
      ['--input-type=module', '--eval', RESTORE_CHILD],
      {
        cwd: '/',
        env: {
          ...process.env,
          ...env,
          GITHUB_WORKSPACE: extractDir,
          BENCH_CACHE_MODULE: import.meta.resolve('@actions/cache'),
          BENCH_PATHS: JSON.stringify(relative),
          BENCH_KEY: key
        },
        maxBuffer: 1 << 24
      }
    )
    const result = JSON.parse(stderr.slice(stderr.lastIndexOf('{')))
    if (result.key !== key) throw new Error(`bench: the plain tar entry did not restore: ${stderr}`)
    return result.seconds
  }
  return { save, restoreSeconds }
}

const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

async function main() {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nca-bench-'))
  const server = await startCacheServer()
  const cleanup = []
  try {
    const flakeDir = path.join(work, 'flake')
    fs.cpSync(fixture, flakeDir, { recursive: true })
    fs.writeFileSync(path.join(flakeDir, 'salt'), randomUUID())
    fs.writeFileSync(path.join(flakeDir, 'blobs'), String(blobCount))
    const flakeRef = `path:${flakeDir}`
    process.stdout.write(`bench: ${blobCount} blobs of ${BLOB_MB} MB of random data\n`)

    const run1 = await runOnce(flakeRef, server)
    const storePath = run1.outputs['store-path']
    const paths = lines(nixStore('-qR', '--include-outputs', run1.state['built-drv-path']))
    cleanup.push(() => {
      const valid = paths.filter(
        p => lines(nixStore('--check-validity', '--print-invalid', p)).length === 0
      )
      if (valid.length) nixStore('--delete', ...valid)
    })
    const entry = server.entries().find(e => e.key === run1.outputs['cache-key'])
    if (!entry?.size) throw new Error('bench: run 1 saved no cache entry')
    const closureSize = Number(
      execFileSync('nix', ['path-info', '-S', storePath], {
        encoding: 'utf8',
        env: { ...process.env, NIX_CONFIG }
      })
        .trim()
        .split(/\s+/)[1]
    )
    const narTotal = lines(nixStore('-q', '--size', ...paths)).reduce(
      (sum, n) => sum + Number(n),
      0
    )

    // The baseline's tar, made while the paths are there (not timed).
    const baselineTar = path.join(work, 'closure.tar')
    execFileSync('tar', ['-cf', baselineTar, ...paths])

    // Each measurement starts with nothing left to write back from the one before (the disk is
    // the same for all of them): `sync`, not timed. Each is taken RUNS times, interleaved, and
    // the median reported: one sample of a 300 MB download varies by a third from run to run.
    const settle = () => execFileSync('sync')
    const cacheTar = await actionsCacheTar(server, work, paths)
    const samples = { restore: [], tar: [], cacheTar: [] }
    for (let i = 0; i < RUNS; i++) {
      nixStore('--delete', ...paths)
      settle()
      const run2 = await runOnce(flakeRef, server)
      if (run2.outputs['cache-hit'] !== 'true') throw new Error('bench: run 2 was not a cache hit')
      if (!/Built /.test(run2.main.stdout) || /building '/.test(run2.main.stdout)) {
        throw new Error(`bench: run 2 built something:\n${run2.main.stdout}`)
      }
      samples.restore.push(run2.stageSeconds('Store cache'))
      fs.rmSync(run2.tempDir, { recursive: true, force: true })

      // Baseline 1: a plain `tar -xf` of the same paths, the tar local and in the page cache.
      const extractDir = path.join(work, 'extract')
      fs.rmSync(extractDir, { recursive: true, force: true })
      fs.mkdirSync(extractDir)
      settle()
      samples.tar.push(seconds(() => execFileSync('tar', ['-xf', baselineTar, '-C', extractDir])))
      fs.rmSync(extractDir, { recursive: true, force: true })

      // Baseline 2: the same paths as a plain tar through @actions/cache (download, unzstd, tar).
      if (i === 0) await cacheTar.save()
      const cacheTarDir = path.join(work, 'extract-cache-tar')
      fs.rmSync(cacheTarDir, { recursive: true, force: true })
      fs.mkdirSync(cacheTarDir)
      samples.cacheTar.push(await cacheTar.restoreSeconds(cacheTarDir, settle))
      fs.rmSync(cacheTarDir, { recursive: true, force: true })
    }

    // The same restore again, with every command timed: where its seconds go.
    nixStore('--delete', ...paths)
    settle()
    const timingLog = path.join(work, 'timings.log')
    const wrappers = timingWrappers(path.join(work, 'timed-bin'), timingLog)
    const run2timed = await runOnce(flakeRef, server, {
      PATH: `${wrappers}:${process.env.PATH ?? ''}`
    })
    if (run2timed.outputs['cache-hit'] !== 'true') throw new Error('bench: the timed run missed')
    const timedRestore = run2timed.stageSeconds('Store cache')

    const restore = median(samples.restore)
    const tarSeconds = median(samples.tar)
    const cacheTarSeconds = median(samples.cacheTar)
    const all = list => `(${list.map(x => x.toFixed(2)).join(', ')})`
    const save = summarySeconds(run1.summary, 'Store cache save')
    const ratio = baseline => {
      const r = restore / baseline
      return `${r.toFixed(2)}x (goal 1.5x: ${r <= 1.5 ? 'met' : 'not met'})`
    }
    const rows = [
      ['closure (nix path-info -S)', mb(closureSize)],
      ['cached paths, NAR total', `${mb(narTotal)} (${paths.length} paths)`],
      ['cache archive', mb(entry.size)],
      ['archive / closure', (entry.size / closureSize).toFixed(3)],
      ['save seconds (run 1 post)', save.toFixed(2)],
      ['restore seconds (run 2)', `${restore.toFixed(2)} ${all(samples.restore)}`],
      ['baseline 1: plain tar -xf seconds', `${tarSeconds.toFixed(2)} ${all(samples.tar)}`],
      ['restore / baseline 1', ratio(tarSeconds)],
      [
        'baseline 2: tar via @actions/cache s',
        `${cacheTarSeconds.toFixed(2)} ${all(samples.cacheTar)}`
      ],
      ['restore / baseline 2', ratio(cacheTarSeconds)],
      ['run 2 built', 'nothing']
    ]
    const width = Math.max(...rows.map(([name]) => name.length))
    process.stdout.write(`\n${rows.map(([n, v]) => `${n.padEnd(width)}  ${v}`).join('\n')}\n`)
    process.stdout.write(
      [
        '',
        'baseline 1: the tar is uncompressed, local and in the page cache: extraction only.',
        'baseline 2: what a cache that tars the store paths costs: the download, unzstd and the',
        '            extraction, through the same @actions/cache client and server as the restore.',
        ''
      ].join('\n')
    )
    printBreakdown(readTimings(timingLog), timedRestore)
    for (const dir of [run1.tempDir, run2timed.tempDir])
      fs.rmSync(dir, { recursive: true, force: true })
  } finally {
    for (const step of cleanup) step()
    await server.close()
    fs.rmSync(work, { recursive: true, force: true })
  }
}

main().catch(error => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
