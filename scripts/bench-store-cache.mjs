#!/usr/bin/env node
// Benchmark of the store cache as GitHub runs the action: the bundled action (dist/) as the
// unprivileged runner user, each job on a fresh runner machine (scripts/runner-machine.sh: an
// empty single-user store the runner owns, no caches under HOME), the real @actions/cache client
// against the v1 cache API server on 127.0.0.1 (cache-server.mjs, which also serves the REST
// API's list and delete of caches). Two parts, each side by side in one run:
//
// --paths 14,500,2000   the restore against a plain tar. For each closure size: a job builds
//   a closure of that many paths (6 blobs of 50 MB of random data, the rest small paths of
//   5-50 KB with their derivations) and saves it; then, BENCH_RUNS times (default 3),
//   interleaved, on a fresh machine each: the action's restore (an exact hit, its "Store cache"
//   log group to the millisecond; `nix build` must then build nothing) and the same paths as one
//   plain tar through @actions/cache (look-up, download, unzstd, extract), in a node process of
//   its own, extracted on the same filesystem as the machine's /nix. Prints medians, their
//   ratio (the goal: within 1.3x at 2,000 paths) and the restore's phases (its log line).
//   With --signed, each sample also restores an entry of the same closure saved with
//   `cache-signing-key` and restored with `cache-trusted-keys` (the goal: within 1.1x of the
//   unsigned restore).
//
// --commits 3   the commit sequence: a flake whose app (one source file) changes on every
//   commit over a toolchain that does not (__tests__/e2e/flakes/cache-commits: --libs small
//   library paths, --blobs toolchain blobs of --blob-mb MB; default 250, 4, 40: 516 paths,
//   ~170 MB). Per commit, on a fresh machine: what was restored, the new paths' NAR bytes (the
//   floor), the bytes uploaded, the save's and the restore's seconds, the entries deleted.
//   Then, BENCH_RUNS times interleaved: the last commit's exact hit (a base plus a delta)
//   against one whole entry of the same closure (saved under `cache-key` to a server of its
//   own).
//
// Needs root (or passwordless sudo) for the machines, nix, tar, zstd, and `npm run bundle`.
// Usage: npm run bench:store-cache -- --paths 14,500,2000 [--signed] --commits 3
//   (default: --paths 14)
// Environment: BENCH_RUNS (samples, default 3), BENCH_DIST (the dist/ to measure, an action.yml
// beside it; default this repo's).
import { execFile, execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { median, nixKey, option, summarySeconds } from './bench-lib.mjs'
import { cacheEnv, startCacheServer } from './cache-server.mjs'
import { runAction } from './run-action.mjs'
import {
  ensureRunnerUser,
  execInMachine,
  giveToRunner,
  machineArgv,
  machineEnv,
  removeAsRoot,
  startMachine,
  stopMachine,
  userTempDir
} from './runner-machine.mjs'

const execFileAsync = promisify(execFile)
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const benchFixture = path.join(repoRoot, '__tests__/e2e/flakes/cache-bench')
const commitsFixture = path.join(repoRoot, '__tests__/e2e/flakes/cache-commits')
const BLOB_MB = 50
const BLOBS = 6
/** The image, its derivation, and each blob's derivation and output. */
const FIXED_PATHS = 2 + 2 * BLOBS
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))
// The action (and the baseline) on the Node action.yml declares, as the e2e tests run it.
const node24 = path.join(repoRoot, 'tools/node24/node_modules/.bin/node')
if (!process.env.NCA_ACTION_NODE && fs.existsSync(node24)) process.env.NCA_ACTION_NODE = node24
const GITHUB_TOKEN = 'nca-test-github-token'

// As the e2e tests: no substituters, no sandbox (host tools), no build users.
const NIX_CONFIG = [
  process.env.NIX_CONFIG ?? '',
  fs.readFileSync(new URL('./test-nix.conf', import.meta.url), 'utf8')
].join('\n')

const lines = text => text.split('\n').filter(Boolean)
const mb = bytes =>
  bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`
const settle = () => execFileSync('sync')

/** A command's stdout inside the machine, as its user; throws when it fails. */
function inMachine(machine, command) {
  const result = execInMachine(machine, command, { env: { NIX_CONFIG } })
  if (result.exitCode !== 0) throw new Error(`bench: ${command.join(' ')}: ${result.stderr}`)
  return result.stdout
}

/**
 * One job (main, then post) on `machine` (default: a fresh one, stopped afterwards unless
 * `keep`). `stageSeconds(name)`: how long a stage of the main step took, to the millisecond,
 * from when its log group's `::group::` and `::endgroup::` lines arrived here (the step's
 * output is streamed to this process, and swallowed).
 */
async function job(flake, server, { inputs = {}, machine, keep = false } = {}) {
  const onMachine = machine ?? startMachine('single-user')
  const arrived = []
  const { write: out } = process.stdout
  const { write: err } = process.stderr
  let result
  try {
    process.stdout.write = chunk =>
      arrived.push({ at: process.hrtime.bigint(), text: String(chunk) })
    process.stderr.write = () => true
    result = await runAction({
      inputs: { flake, load: 'false', push: 'false', 'github-token': GITHUB_TOKEN, ...inputs },
      env: { ...cacheEnv(server), NIX_CONFIG },
      timeoutMs: 1_200_000,
      stream: true,
      machine: onMachine,
      ...(process.env.BENCH_DIST ? { distDir: process.env.BENCH_DIST } : {})
    })
  } finally {
    process.stdout.write = out
    process.stderr.write = err
    if (!keep) stopMachine(onMachine)
  }
  removeAsRoot(result.tempDir)
  if (result.main.exitCode !== 0 || result.post?.exitCode !== 0) {
    throw new Error(`bench: the action failed:\n${result.main.stdout}\n${result.post?.stdout}`)
  }
  const stageSeconds = name => {
    const start = arrived.findIndex(l => l.text === `::group::${name}\n`)
    const end = arrived.findIndex((l, i) => i > start && l.text === '::endgroup::\n')
    if (start === -1 || end === -1) throw new Error(`bench: no log group "${name}"`)
    return Number(arrived[end].at - arrived[start].at) / 1e9
  }
  return { ...result, machine: onMachine, stageSeconds }
}

function expectNothingBuilt(result, what) {
  if (result.outputs['cache-hit'] !== 'true' || /building '/.test(result.main.stdout)) {
    throw new Error(
      `bench: ${what} was not an exact hit that built nothing:\n${result.main.stdout}`
    )
  }
}

/** The restore's own account of its phases (its log line). */
const restorePhases = result => {
  const phases = /Restore phases: (.*)/.exec(result.main.stdout)?.[1] ?? '?'
  // Of "download and extract", the extraction's own seconds (the rest is the download).
  const extracted = [...result.main.stdout.matchAll(/Extracted .*: \d+ members in ([\d.]+) s/g)]
  const extract = extracted.reduce((sum, match) => sum + Number(match[1]), 0)
  return extracted.length ? `${phases} (of which extract ${extract.toFixed(2)} s)` : phases
}

// --- the restore against a plain tar ---------------------------------------------------

// The baseline's restore, in a node process of its own on the job's machine, as the runner user
// (as the action's restore runs): in a process that already restored once, a second restore
// runs up to twice as fast (measured), which would flatter it. Times restoreCache() alone, its
// module already loaded.
const RESTORE_CHILD = `
const fs = await import('node:fs')
const cache = await import(process.env.BENCH_CACHE_MODULE)
const paths = JSON.parse(fs.readFileSync(process.env.BENCH_PATHS_FILE, 'utf8'))
fs.mkdirSync(process.env.GITHUB_WORKSPACE, { recursive: true })
const started = process.hrtime.bigint()
const key = await cache.restoreCache(paths, process.env.BENCH_KEY)
const seconds = Number(process.hrtime.bigint() - started) / 1e9
process.stderr.write(JSON.stringify({ key: key ?? null, seconds }))
`

/**
 * The closure as a plain tar through @actions/cache: saved once from the machine that built it
 * (`nix/store/<name>`, relative to the machine's directory), then restoreSeconds(machine) times
 * a restore (look-up, download, unzstd, extract) on that machine, into its /nix (the store's
 * filesystem), by the same Node the action runs on.
 */
async function plainTar(server, machine, storePaths, key) {
  const cache = await import('@actions/cache')
  const work = userTempDir('nca-bench-tar-')
  const env = { ...cacheEnv(server), RUNNER_TEMP: path.join(work, 'runner-temp') }
  fs.mkdirSync(env.RUNNER_TEMP, { recursive: true })
  const relative = storePaths.map(p => p.slice(1))
  const pathsFile = path.join(work, 'paths.json')
  fs.writeFileSync(pathsFile, JSON.stringify(relative))
  giveToRunner(work)
  const saved = { ...process.env }
  const cwd = process.cwd()
  const write = process.stdout.write
  try {
    Object.assign(process.env, env, { GITHUB_WORKSPACE: machine.dir })
    process.chdir(machine.dir)
    process.stdout.write = () => true // @actions/cache logs through stdout
    await cache.saveCache(relative, key)
  } finally {
    process.stdout.write = write
    process.chdir(cwd)
    process.env = saved
  }
  const node = process.env.NCA_ACTION_NODE ?? process.execPath
  const restoreSeconds = async on => {
    settle()
    const argv = machineArgv(on, '/', [node, '--input-type=module', '--eval', RESTORE_CHILD])
    // Asynchronously: the cache server answering it runs in this process.
    const { stderr } = await execFileAsync(argv[0], argv.slice(1), {
      env: {
        ...process.env,
        ...machineEnv(on),
        ...env,
        GITHUB_WORKSPACE: '/nix/plain-tar',
        BENCH_CACHE_MODULE: import.meta.resolve('@actions/cache'),
        BENCH_PATHS_FILE: pathsFile,
        BENCH_KEY: key
      },
      maxBuffer: 1 << 24
    })
    const result = JSON.parse(stderr.slice(stderr.lastIndexOf('{')))
    if (result.key !== key) throw new Error(`bench: the plain tar did not restore: ${stderr}`)
    return result.seconds
  }
  return { restoreSeconds, cleanup: () => removeAsRoot(work) }
}

/** `--paths 14,500,2000`: closure sizes, each at least the fixed 14 paths. */
function pathCounts() {
  const value = option('paths', String(FIXED_PATHS))
  const counts = value.split(',').map(Number)
  if (counts.some(n => !Number.isInteger(n) || n < FIXED_PATHS)) {
    throw new Error(`bench: --paths takes closure sizes of ${FIXED_PATHS} or more, not ${value}`)
  }
  return counts
}

function benchFlake(root, wantedPaths) {
  const dir = path.join(root, `flake-${wantedPaths}`)
  fs.cpSync(benchFixture, dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'salt'), randomUUID())
  fs.writeFileSync(path.join(dir, 'blobs'), String(BLOBS))
  // Each small path comes with its derivation.
  fs.writeFileSync(path.join(dir, 'smalls'), String(Math.round((wantedPaths - FIXED_PATHS) / 2)))
  giveToRunner(root)
  return `path:${dir}`
}

async function measureSize(root, server, wantedPaths, signed) {
  const flake = benchFlake(root, wantedPaths)
  const run1 = await job(flake, server, { keep: true })
  const key = nixKey('bench-cache-1')
  // The signed entry: the same closure saved to a server of its own (a save over an unsigned
  // base would only add a delta) by a second job on the machine that built it.
  const signedServer = signed ? await startCacheServer() : undefined
  let restoreTar
  let storePaths
  let closureBytes
  try {
    if (signed) {
      await job(flake, signedServer, {
        machine: run1.machine,
        keep: true,
        inputs: { 'cache-signing-key': key.secret }
      })
    }
    storePaths = lines(
      inMachine(run1.machine, [
        'nix-store',
        '-qR',
        '--include-outputs',
        run1.state['built-drv-path']
      ])
    )
    closureBytes = narBytes(run1.machine, storePaths)
    restoreTar = await plainTar(server, run1.machine, storePaths, `plain-tar-${wantedPaths}`)
  } finally {
    stopMachine(run1.machine)
  }
  const saved = /Store cache save: saved \S+ (\S+):/.exec(run1.post?.stdout ?? '')?.[1]
  const archive = server.entries().find(e => e.key === saved)
  const samples = { restore: [], tar: [], phases: [], signed: [], signedPhases: [] }
  for (let i = 0; i < RUNS; i++) {
    settle()
    const run2 = await job(flake, server, { keep: true })
    try {
      expectNothingBuilt(run2, `the restore of ${wantedPaths} paths`)
      samples.restore.push(run2.stageSeconds('Store cache'))
      samples.phases.push(restorePhases(run2))
      samples.tar.push(await restoreTar.restoreSeconds(run2.machine))
    } finally {
      stopMachine(run2.machine)
    }
    if (!signed) continue
    settle()
    const run3 = await job(flake, signedServer, { inputs: { 'cache-trusted-keys': key.public } })
    expectNothingBuilt(run3, `the signed restore of ${wantedPaths} paths`)
    samples.signed.push(run3.stageSeconds('Store cache'))
    samples.signedPhases.push(restorePhases(run3))
  }
  restoreTar.cleanup()
  await signedServer?.close()
  return {
    paths: storePaths.length,
    closureBytes,
    archiveBytes: archive?.size ?? 0,
    save: summarySeconds(run1.summary, 'Store cache save'),
    ...samples
  }
}

function printSizes(results) {
  const all = list => list.map(x => x.toFixed(2)).join(', ')
  const head = [
    'paths',
    'restore s (samples)',
    'tar via @actions/cache s (samples)',
    'ratio',
    'ms/path restore / tar',
    'archive / closure',
    'save s'
  ]
  const signed = results.some(r => r.signed.length > 0)
  if (signed) head.splice(3, 0, 'signed restore s (samples)', 'signed / unsigned')
  const rows = results.map(r => {
    const restore = median(r.restore)
    const tar = median(r.tar)
    const signedCells = signed
      ? [
          `${median(r.signed).toFixed(2)} (${all(r.signed)})`,
          `${(median(r.signed) / restore).toFixed(2)}x`
        ]
      : []
    return [
      String(r.paths),
      `${restore.toFixed(2)} (${all(r.restore)})`,
      `${tar.toFixed(2)} (${all(r.tar)})`,
      ...signedCells,
      `${(restore / tar).toFixed(2)}x`,
      `${((restore * 1000) / r.paths).toFixed(2)} / ${((tar * 1000) / r.paths).toFixed(2)}`,
      `${mb(r.archiveBytes)} / ${mb(r.closureBytes)}`,
      r.save.toFixed(1)
    ]
  })
  const table = [head, head.map(() => '---'), ...rows].map(row => `| ${row.join(' | ')} |`)
  const last = results[results.length - 1]
  process.stdout.write(
    [
      '',
      ...table,
      '',
      `medians of ${RUNS} samples, interleaved, each on a fresh runner machine; goal: ratio <= 1.3x at 2,000 paths.`,
      `restore phases at ${last.paths} paths (the action's log, each sample):`,
      ...last.phases.map(p => `  ${p}`),
      ...(signed
        ? [
            'signed entries: goal within 1.1x of the unsigned restore; their phases:',
            ...last.signedPhases.map(p => `  ${p}`)
          ]
        : []),
      ''
    ].join('\n')
  )
}

// --- the commit sequence ---------------------------------------------------------------

function commitsFlake(root) {
  const dir = path.join(root, 'flake-commits')
  fs.cpSync(commitsFixture, dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'salt'), randomUUID())
  fs.writeFileSync(path.join(dir, 'libs'), option('libs', '250'))
  fs.writeFileSync(path.join(dir, 'blobs'), option('blobs', '4'))
  fs.writeFileSync(path.join(dir, 'blob-mb'), option('blob-mb', '40'))
  return dir
}

/** NAR bytes of store paths on the machine. */
function narBytes(machine, storePaths) {
  if (storePaths.length === 0) return 0
  return lines(inMachine(machine, ['nix-store', '-q', '--size', ...storePaths]))
    .map(Number)
    .reduce((a, b) => a + b, 0)
}

async function commitSequence(root, server, count) {
  const dir = commitsFlake(root)
  const flake = `path:${dir}`
  const rows = []
  let previous = new Set()
  for (let n = 1; n <= count; n++) {
    fs.writeFileSync(path.join(dir, 'app.txt'), `the app at commit ${n}\n`)
    giveToRunner(root)
    settle()
    const run = await job(flake, server, { keep: true })
    try {
      const closure = lines(
        inMachine(run.machine, [
          'nix-store',
          '-qR',
          '--include-outputs',
          run.state['built-drv-path']
        ])
      )
      const fresh = closure.filter(p => !previous.has(p))
      const saved = /Store cache save: saved (\S+) (\S+):/.exec(run.post?.stdout ?? '')
      rows.push({
        n,
        restored: run.outputs['cache-restored-key'] || 'nothing',
        paths: closure.length,
        newPaths: fresh.length,
        floor: narBytes(run.machine, fresh),
        kind: saved?.[1] ?? 'nothing',
        uploaded: server.entries().find(e => e.key === saved?.[2])?.size ?? 0,
        save: summarySeconds(run.summary, 'Store cache save'),
        restore: run.stageSeconds('Store cache'),
        deleted: (run.post?.stdout.match(/Deleted the superseded entry/g) ?? []).length
      })
      previous = new Set(closure)
    } finally {
      stopMachine(run.machine)
    }
  }
  return { flake, rows }
}

/** The last commit's exact hit (base + delta) against one whole entry of the same closure. */
async function layeredAgainstWhole(flake, server) {
  const WHOLE = { inputs: { 'cache-key': 'bench-whole-entry' } }
  const wholeServer = await startCacheServer()
  const samples = { layered: [], whole: [] }
  try {
    await job(flake, wholeServer, WHOLE)
    for (let i = 0; i < RUNS; i++) {
      settle()
      const layered = await job(flake, server)
      expectNothingBuilt(layered, 'the base + delta hit')
      samples.layered.push(layered.stageSeconds('Store cache'))
      settle()
      const one = await job(flake, wholeServer, WHOLE)
      expectNothingBuilt(one, 'the whole-entry hit')
      samples.whole.push(one.stageSeconds('Store cache'))
    }
    return samples
  } finally {
    await wholeServer.close()
  }
}

function printCommits(rows, compared) {
  const first = rows[0]?.uploaded || 1
  const short = key => key.replace(/^nix-container-store\/[^/]+\/[^/]+\/lock-[^/]+\//, '')
  const head = [
    'commit',
    'restored',
    'new paths (NAR bytes: the floor)',
    'saved',
    'uploaded',
    'of the first save',
    'save s',
    'restore s',
    'superseded deleted'
  ]
  const table = rows.map(r => [
    String(r.n),
    short(r.restored),
    `${r.newPaths} of ${r.paths} (${mb(r.floor)})`,
    r.kind,
    mb(r.uploaded),
    (r.uploaded / first).toFixed(3),
    r.save.toFixed(1),
    r.restore.toFixed(2),
    String(r.deleted)
  ])
  const all = list => list.map(x => x.toFixed(2)).join(', ')
  const layered = median(compared.layered)
  const whole = median(compared.whole)
  process.stdout.write(
    [
      '',
      ...[head, head.map(() => '---'), ...table].map(row => `| ${row.join(' | ')} |`),
      '',
      `| exact hit of commit ${rows.length}, fresh runner | restore s (samples) |`,
      '| --- | --- |',
      `| a base + a delta | ${layered.toFixed(2)} (${all(compared.layered)}) |`,
      `| one whole entry of the same closure | ${whole.toFixed(2)} (${all(compared.whole)}) |`,
      `| ratio | ${(layered / whole).toFixed(2)}x |`,
      ''
    ].join('\n')
  )
}

async function main() {
  ensureRunnerUser()
  const root = userTempDir('nca-bench-cache-')
  let server = await startCacheServer()
  try {
    if (process.argv.includes('--paths') || !process.argv.includes('--commits')) {
      const results = []
      for (const count of pathCounts()) {
        process.stdout.write(`bench: ${count} paths (${BLOBS} blobs of ${BLOB_MB} MB)\n`)
        results.push(await measureSize(root, server, count, process.argv.includes('--signed')))
      }
      printSizes(results)
    }
    const commits = Number(option('commits', '0'))
    if (commits > 0) {
      process.stdout.write(`bench: a sequence of ${commits} commits\n`)
      // A server of its own: the sizes' entries must not be what the first commit restores.
      await server.close()
      server = await startCacheServer()
      const { flake, rows } = await commitSequence(root, server, commits)
      printCommits(rows, await layeredAgainstWhole(flake, server))
    }
  } finally {
    await server.close()
    removeAsRoot(root)
  }
}

main().catch(error => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
