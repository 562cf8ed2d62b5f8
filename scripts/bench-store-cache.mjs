#!/usr/bin/env node
// Benchmark of the store cache, through the bundled action (dist/) and the real @actions/cache
// client against the v1 cache API server on 127.0.0.1 (cache-server.mjs). For each closure size
// asked for (`--paths 14,500,2000`), in one run, side by side:
//   run 1       builds a closure of that many paths (6 blobs of 50 MB of incompressible data,
//               the rest small paths of 5-50 KB with their derivations) and saves it;
//   run 2       on a store without those paths: restores, and must build nothing;
//   baseline    the same paths as a plain tar through @actions/cache (look-up, download,
//               unzstd, extract), in a node process of its own: what caches that tar /nix/store
//               do, here extracted beside the store, not into it.
// Run 2 and the baseline are taken BENCH_RUNS times (default 3), interleaved; medians shown.
// Prints one row per size: the restore's seconds (its log group, to the millisecond), the
// baseline's, their ratio (the goal: within 1.3x), ms per path, and the archive's size against
// the closure's (`nix path-info -S`). Then, for the last size, where the restore's time goes:
// one more restore with every command it runs (nix, nix-store, tar, zstd) wrapped to log its
// start and end, measured from outside the action.
// Needs: nix, tar, zstd, and `npm run bundle` first.
// Usage: npm run bench:store-cache -- --paths 14,500,2000   (default: --paths 14)
// Environment: BENCH_RUNS (samples, default 3), BENCH_DIST (the dist/ directory to measure, an
// action.yml beside it; default this repo's), BENCH_COMPARE_DIST (another build of the action,
// say the last release's dist/: its restore is measured too, on its own copy of the flake,
// interleaved with the others, in an extra column).
import { execFile, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { median } from './bench-lib.mjs'
import { cacheEnv, startCacheServer } from './cache-server.mjs'
import { runAction } from './run-action.mjs'

const execFileAsync = promisify(execFile)
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const fixture = path.join(repoRoot, '__tests__/e2e/flakes/cache-bench')
const BLOB_MB = 50
const BLOBS = 6
/** The image, its derivation, and each blob's derivation and output. */
const FIXED_PATHS = 2 + 2 * BLOBS
/** Samples of the restore and of each baseline; the median is reported. */
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))

// As the e2e tests: no substituters, no sandbox (host tools), no build users.
const NIX_CONFIG = [
  process.env.NIX_CONFIG ?? '',
  fs.readFileSync(new URL('./test-nix.conf', import.meta.url), 'utf8')
].join('\n')

const lines = text => text.split('\n').filter(Boolean)
const nixStore = (...args) =>
  execFileSync('nix-store', args, {
    encoding: 'utf8',
    env: { ...process.env, NIX_CONFIG },
    stdio: ['ignore', 'pipe', 'pipe']
  })
const mb = bytes => `${(bytes / 1024 / 1024).toFixed(1)} MB`

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
async function runOnce(flakeRef, server, extraEnv = {}, distDir = process.env.BENCH_DIST) {
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
      ...(distDir ? { distDir } : {})
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
const fs = await import('node:fs')
const cache = await import(process.env.BENCH_CACHE_MODULE)
const paths = JSON.parse(fs.readFileSync(process.env.BENCH_PATHS_FILE, 'utf8'))
const started = process.hrtime.bigint()
const key = await cache.restoreCache(paths, process.env.BENCH_KEY)
const seconds = Number(process.hrtime.bigint() - started) / 1e9
process.stderr.write(JSON.stringify({ key: key ?? null, seconds }))
`

/**
 * \`paths\` as a plain tar through @actions/cache: save() once (the paths must be valid), then
 * restoreSeconds(dir) times a restore (download, unzstd, extract) into an empty directory.
 */
async function actionsCacheTar(server, work, paths, key) {
  const cache = await import('@actions/cache')
  const env = { ...cacheEnv(server), RUNNER_TEMP: path.join(work, 'runner-temp') }
  fs.mkdirSync(env.RUNNER_TEMP, { recursive: true })
  const relative = paths.map(p => p.slice(1))
  const pathsFile = path.join(work, `${key}.json`)
  fs.writeFileSync(pathsFile, JSON.stringify(relative))
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
          // A file: 2,000 paths are more than one environment variable may hold.
          BENCH_PATHS_FILE: pathsFile,
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

/** `--paths 14,500,2000`: closure sizes to measure, each at least the fixed 14 paths. */
function pathCounts(argv) {
  const at = argv.indexOf('--paths')
  const value = at === -1 ? String(FIXED_PATHS) : (argv[at + 1] ?? '')
  const counts = value.split(',').map(Number)
  if (counts.some(n => !Number.isInteger(n) || n < FIXED_PATHS)) {
    throw new Error(`bench: --paths takes closure sizes of ${FIXED_PATHS} or more, not ${value}`)
  }
  return counts
}

/** Measure one closure size; returns its row and what the breakdown needs. */
function makeFlake(flakeDir, wantedPaths) {
  fs.cpSync(fixture, flakeDir, { recursive: true })
  fs.writeFileSync(path.join(flakeDir, 'salt'), randomUUID())
  fs.writeFileSync(path.join(flakeDir, 'blobs'), String(BLOBS))
  // Each small path comes with its derivation.
  fs.writeFileSync(
    path.join(flakeDir, 'smalls'),
    String(Math.round((wantedPaths - FIXED_PATHS) / 2))
  )
  return `path:${flakeDir}`
}

/**
 * The other build's restore (BENCH_COMPARE_DIST), on a flake of its own (its own paths, its
 * own entry): save once, then `sample()` deletes its paths and times one restore.
 */
async function compared(work, server, wantedPaths, compareDist) {
  const flakeRef = makeFlake(path.join(work, `flake-compare-${wantedPaths}`), wantedPaths)
  const run1 = await runOnce(flakeRef, server, {}, compareDist)
  fs.rmSync(run1.tempDir, { recursive: true, force: true })
  const paths = lines(nixStore('-qR', '--include-outputs', run1.state['built-drv-path']))
  const deleteAll = () => {
    // One call: a batch would fail on paths that a later batch's paths still refer to.
    nixStore('--delete', ...paths)
  }
  const sample = async () => {
    deleteAll()
    execFileSync('sync')
    const run2 = await runOnce(flakeRef, server, {}, compareDist)
    fs.rmSync(run2.tempDir, { recursive: true, force: true })
    if (run2.outputs['cache-hit'] !== 'true') throw new Error('bench: compared run 2 missed')
    return run2.stageSeconds('Store cache')
  }
  return { sample, cleanup: deleteAll }
}

async function measure(work, server, wantedPaths, { timed }) {
  const flakeDir = path.join(work, `flake-${wantedPaths}`)
  const flakeRef = makeFlake(flakeDir, wantedPaths)
  const cleanup = []
  try {
    const compareDist = process.env.BENCH_COMPARE_DIST
    const other = compareDist ? await compared(work, server, wantedPaths, compareDist) : null
    if (other) cleanup.push(other.cleanup)
    const run1 = await runOnce(flakeRef, server)
    const storePath = run1.outputs['store-path']
    const paths = lines(nixStore('-qR', '--include-outputs', run1.state['built-drv-path']))
    cleanup.push(() => {
      const valid = paths.filter(
        p => lines(nixStore('--check-validity', '--print-invalid', p)).length === 0
      )
      if (valid.length) nixStore('--delete', ...valid)
    })
    const deleteAll = () => {
      // One call: a batch would fail on paths that a later batch's paths still refer to.
      nixStore('--delete', ...paths)
    }
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

    // Each measurement starts with nothing left to write back from the one before (the disk is
    // the same for all of them): `sync`, not timed. Each is taken RUNS times, interleaved, and
    // the median reported: one sample of a 300 MB download varies by a third from run to run.
    const settle = () => execFileSync('sync')
    const cacheTar = await actionsCacheTar(server, work, paths, `bench-plain-tar-${wantedPaths}`)
    const samples = { restore: [], cacheTar: [], compared: [] }
    for (let i = 0; i < RUNS; i++) {
      deleteAll()
      settle()
      const run2 = await runOnce(flakeRef, server)
      if (run2.outputs['cache-hit'] !== 'true') throw new Error('bench: run 2 was not a cache hit')
      if (!/Built /.test(run2.main.stdout) || /building '/.test(run2.main.stdout)) {
        throw new Error(`bench: run 2 built something:\n${run2.main.stdout}`)
      }
      samples.restore.push(run2.stageSeconds('Store cache'))
      fs.rmSync(run2.tempDir, { recursive: true, force: true })

      // The baseline: the same paths as a plain tar through @actions/cache.
      if (i === 0) await cacheTar.save()
      const cacheTarDir = path.join(work, 'extract-cache-tar')
      fs.rmSync(cacheTarDir, { recursive: true, force: true })
      fs.mkdirSync(cacheTarDir)
      samples.cacheTar.push(await cacheTar.restoreSeconds(cacheTarDir, settle))
      fs.rmSync(cacheTarDir, { recursive: true, force: true })
      if (other) samples.compared.push(await other.sample())
    }

    let breakdown = null
    if (timed) {
      // The same restore again, with every command timed: where its seconds go.
      deleteAll()
      settle()
      const timingLog = path.join(work, `timings-${wantedPaths}.log`)
      const wrappers = timingWrappers(path.join(work, `timed-bin-${wantedPaths}`), timingLog)
      const run2timed = await runOnce(flakeRef, server, {
        PATH: `${wrappers}:${process.env.PATH ?? ''}`
      })
      if (run2timed.outputs['cache-hit'] !== 'true') throw new Error('bench: the timed run missed')
      breakdown = { timings: readTimings(timingLog), total: run2timed.stageSeconds('Store cache') }
      fs.rmSync(run2timed.tempDir, { recursive: true, force: true })
    }
    fs.rmSync(run1.tempDir, { recursive: true, force: true })
    return {
      paths: paths.length,
      closureSize,
      archiveSize: entry.size,
      save: summarySeconds(run1.summary, 'Store cache save'),
      restore: samples.restore,
      cacheTar: samples.cacheTar,
      compared: samples.compared,
      breakdown
    }
  } finally {
    for (const step of cleanup) step()
    fs.rmSync(flakeDir, { recursive: true, force: true })
  }
}

function printTable(results) {
  const all = list => list.map(x => x.toFixed(2)).join(', ')
  const rows = results.map(r => {
    const restore = median(r.restore)
    const tar = median(r.cacheTar)
    return [
      String(r.paths),
      `${restore.toFixed(2)} (${all(r.restore)})`,
      `${tar.toFixed(2)} (${all(r.cacheTar)})`,
      `${(restore / tar).toFixed(2)}x`,
      `${((restore * 1000) / r.paths).toFixed(2)} / ${((tar * 1000) / r.paths).toFixed(2)}`,
      `${mb(r.archiveSize)} / ${mb(r.closureSize)} = ${(r.archiveSize / r.closureSize).toFixed(3)}`,
      r.save.toFixed(1),
      ...(r.compared.length ? [`${median(r.compared).toFixed(2)} (${all(r.compared)})`] : [])
    ]
  })
  const head = [
    'paths',
    'restore s (samples)',
    'tar via @actions/cache s (samples)',
    'ratio',
    'ms/path restore / tar',
    'archive / closure',
    'save s',
    ...(process.env.BENCH_COMPARE_DIST ? ['BENCH_COMPARE_DIST restore s (samples)'] : [])
  ]
  const table = [head, head.map(() => '---'), ...rows].map(row => `| ${row.join(' | ')} |`)
  process.stdout.write(`\n${table.join('\n')}\n`)
  process.stdout.write(
    [
      '',
      `medians of ${RUNS} samples, interleaved; the goal: ratio <= 1.3x at 2,000 paths.`,
      'tar via @actions/cache: the same paths as one tar through the same client and server',
      '(look-up, download, unzstd, extract) in a node process of its own.',
      ''
    ].join('\n')
  )
}

async function main() {
  const counts = pathCounts(process.argv.slice(2))
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'nca-bench-'))
  const server = await startCacheServer()
  try {
    const results = []
    for (const [i, count] of counts.entries()) {
      process.stdout.write(`bench: ${count} paths (${BLOBS} blobs of ${BLOB_MB} MB)\n`)
      results.push(await measure(work, server, count, { timed: i === counts.length - 1 }))
      printTable(results.slice(-1))
    }
    printTable(results)
    const last = results[results.length - 1]
    if (last?.breakdown) printBreakdown(last.breakdown.timings, last.breakdown.total)
  } finally {
    await server.close()
    fs.rmSync(work, { recursive: true, force: true })
  }
}

main().catch(error => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
