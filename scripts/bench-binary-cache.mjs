#!/usr/bin/env node
// Benchmark of `binary-cache` as GitHub runs the action: the bundled action (dist/) as the
// unprivileged runner user, each job on a fresh runner machine (a single-user store the runner
// owns, no caches under HOME), against an HTTP binary cache that takes PUT (lighttpd +
// mod_webdav on 127.0.0.1, scripts/binary-cache-server.mjs) and the store cache's v1 service
// (scripts/cache-server.mjs). Two parts, side by side in one run:
//
// --paths 2000   a fresh runner getting a closure of that many paths (the store cache
//   benchmark's fixture, __tests__/e2e/flakes/cache-bench: 6 blobs of 50 MB of random data,
//   the rest small paths of 5-50 KB with their derivations). A first job builds it, pushes it
//   to the binary cache (main) and saves it to the store cache (post). Then, BENCH_RUNS times
//   (default 3), interleaved, each on a fresh machine: the store cache's exact hit (its
//   "Store cache" stage, then a build that builds nothing) against `cache: false` with the
//   binary cache (the build substitutes the image's closure from it and builds nothing).
//   Each side's time is its restore plus its build stage: what a job waits for before the image.
//
// --commit   the push of a commit whose app changed (__tests__/e2e/flakes/cache-commits, its
//   toolchain sized by --libs, --blobs, --blob-mb as in bench:store-cache): commit 1 on a fresh
//   runner pushes its whole closure; commit 2, the app edited, on another fresh runner,
//   substitutes the toolchain and pushes only what is new. Prints paths and bytes sent and
//   the push's seconds of each.
//
// The cache's NARs are compressed with --compression (default zstd, as the store cache's
// archives; `xz`, Nix's default, is far slower to write on 2 cores).
// Needs root (or passwordless sudo) for the machines, lighttpd and `npm run bundle` first.
// Usage: npm run bench:binary-cache -- --paths 2000 --commit   (default: --paths 14)
// Environment: BENCH_RUNS (samples, default 3), BENCH_DIST (the dist/ to measure).
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { median, nixKey, option, summarySeconds } from './bench-lib.mjs'
import { startBinaryCacheServer } from './binary-cache-server.mjs'
import { cacheEnv, startCacheServer } from './cache-server.mjs'
import { runAction } from './run-action.mjs'
import {
  ensureRunnerUser,
  giveToRunner,
  removeAsRoot,
  startMachine,
  stopMachine,
  userTempDir
} from './runner-machine.mjs'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const benchFixture = path.join(repoRoot, '__tests__/e2e/flakes/cache-bench')
const commitsFixture = path.join(repoRoot, '__tests__/e2e/flakes/cache-commits')
const BLOBS = 6
/** The image, its derivation, and each blob's derivation and output. */
const FIXED_PATHS = 2 + 2 * BLOBS
const RUNS = Math.max(1, Number(process.env.BENCH_RUNS ?? 3))
const node24 = path.join(repoRoot, 'tools/node24/node_modules/.bin/node')
if (!process.env.NCA_ACTION_NODE && fs.existsSync(node24)) process.env.NCA_ACTION_NODE = node24

// As the e2e tests, but for `substituters =`, which would clear the job's own: the machine's
// configuration has no substituter through a user nix.conf read before the job's.
const NIX_CONFIG = [
  process.env.NIX_CONFIG ?? '',
  fs.readFileSync(new URL('./test-nix.conf', import.meta.url), 'utf8')
]
  .join('\n')
  .split('\n')
  .filter(line => !/^\s*substituters\s*=/.test(line))
  .join('\n')

const mb = bytes =>
  bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(1)} KB` : `${(bytes / 1024 / 1024).toFixed(1)} MB`

/** One job (main, then post) on a fresh machine, stopped afterwards; throws when it fails. */
async function job(flake, env, inputs) {
  const machine = startMachine('single-user')
  let result
  try {
    result = await runAction({
      inputs: { flake, load: 'false', push: 'false', 'github-token': 'nca-bench', ...inputs },
      env: { ...env, NIX_CONFIG },
      timeoutMs: 1_800_000,
      machine,
      ...(process.env.BENCH_DIST ? { distDir: process.env.BENCH_DIST } : {})
    })
  } finally {
    stopMachine(machine)
  }
  removeAsRoot(result.tempDir)
  if (result.main.exitCode !== 0 || result.post?.exitCode !== 0) {
    throw new Error(`bench: the action failed:\n${result.main.stdout}\n${result.post?.stdout}`)
  }
  return result
}

function expectNothingBuilt(result, what) {
  if (/building '/.test(result.main.stdout)) {
    throw new Error(`bench: ${what} built something:\n${result.main.stdout}`)
  }
}

const pushed = result => JSON.parse(result.outputs['binary-cache-pushed'] ?? '{}')
const substituted = result => (result.main.stdout.match(/^copying path '.*' from '/gm) ?? []).length

function copyFixture(fixture, root, name, files) {
  const dir = path.join(root, name)
  fs.cpSync(fixture, dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'salt'), randomUUID())
  for (const [file, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, file), text)
  giveToRunner(root)
  return dir
}

// --- a fresh runner: the store cache against the binary cache ---------------------------

async function closureFromEither(root, env, binaryCache, key, wanted) {
  const dir = copyFixture(benchFixture, root, `flake-${wanted}`, {
    blobs: String(BLOBS),
    smalls: String(Math.round((wanted - FIXED_PATHS) / 2))
  })
  const flake = `path:${dir}`
  const first = await job(flake, env, {
    'binary-cache': binaryCache,
    'binary-cache-secret-key': key.secret
  })
  const push = pushed(first)
  const samples = { storeCache: [], binaryCache: [], fetched: 0 }
  for (let i = 0; i < RUNS; i++) {
    const fromStore = await job(flake, env, {})
    expectNothingBuilt(fromStore, 'the store cache restore')
    if (fromStore.outputs['cache-hit'] !== 'true') throw new Error('bench: no store cache hit')
    samples.storeCache.push(
      summarySeconds(fromStore.summary, 'Store cache') + summarySeconds(fromStore.summary, 'Build')
    )
    const fromBinary = await job(flake, env, {
      cache: 'false',
      'binary-cache': binaryCache,
      'binary-cache-public-key': key.public
    })
    expectNothingBuilt(fromBinary, 'the binary cache substitution')
    samples.binaryCache.push(summarySeconds(fromBinary.summary, 'Build'))
    samples.fetched = substituted(fromBinary)
  }
  return {
    wanted,
    push,
    pushSeconds: summarySeconds(first.summary, 'Binary cache push'),
    ...samples
  }
}

function printFresh(r) {
  const all = list => list.map(x => x.toFixed(2)).join(', ')
  const store = median(r.storeCache)
  const binary = median(r.binaryCache)
  process.stdout.write(
    [
      '',
      `A fresh runner getting the image's closure (${r.push.closure} paths in the build closure, ${mb(r.push.bytes)} of NARs):`,
      '',
      '| from | seconds before the image (samples) | paths fetched |',
      '| --- | --- | --- |',
      `| the store cache (restore + a build that builds nothing) | ${store.toFixed(2)} (${all(r.storeCache)}) | ${r.push.closure} (the build closure) |`,
      `| the HTTP binary cache (\`cache: false\`, a build that substitutes) | ${binary.toFixed(2)} (${all(r.binaryCache)}) | ${r.fetched} (what the image needs) |`,
      `| ratio binary / store | ${(binary / store).toFixed(2)}x | |`,
      '',
      `First push of the whole closure: ${r.push.paths} paths, ${mb(r.push.bytes)}, ${r.pushSeconds.toFixed(1)} s.`,
      `medians of ${RUNS} samples, interleaved, each on a fresh runner machine.`,
      ''
    ].join('\n')
  )
}

// --- the push of a commit whose app changed ------------------------------------------------

async function commitPushes(root, env, binaryCache, key) {
  const dir = copyFixture(commitsFixture, root, 'flake-commits', {
    libs: option('libs', '250'),
    blobs: option('blobs', '4'),
    'blob-mb': option('blob-mb', '40')
  })
  const rows = []
  for (const n of [1, 2]) {
    fs.writeFileSync(path.join(dir, 'app.txt'), `the app at commit ${n}\n`)
    giveToRunner(root)
    const run = await job(`path:${dir}`, env, {
      cache: 'false',
      'binary-cache': binaryCache,
      'binary-cache-secret-key': key.secret
    })
    rows.push({
      n,
      substituted: substituted(run),
      ...pushed(run),
      seconds: summarySeconds(run.summary, 'Binary cache push')
    })
  }
  return rows
}

function printCommits(rows) {
  process.stdout.write(
    [
      '',
      'The binary cache push of each commit (a fresh runner each, `cache: false`):',
      '',
      '| commit | substituted | build closure | paths sent | NAR bytes sent | push s |',
      '| --- | --- | --- | --- | --- | --- |',
      ...rows.map(
        r =>
          `| ${r.n} | ${r.substituted} | ${r.closure} | ${r.paths} | ${mb(r.bytes)} | ${r.seconds.toFixed(1)} |`
      ),
      ''
    ].join('\n')
  )
}

async function main() {
  ensureRunnerUser()
  const wanted = Number(option('paths', String(FIXED_PATHS)))
  if (!Number.isInteger(wanted) || wanted < FIXED_PATHS) {
    throw new Error(`bench: --paths takes a closure size of ${FIXED_PATHS} or more`)
  }
  const root = userTempDir('nca-bench-bc-')
  // The machine's own nix.conf has no substituter: the job's is the binary cache alone.
  const conf = path.join(root, 'nix.conf')
  fs.writeFileSync(conf, 'substituters =\n')
  giveToRunner(root)
  const compression = option('compression', 'zstd')
  const key = nixKey('bench-binary-cache-1')
  const servers = []
  try {
    const store = await startCacheServer()
    servers.push(store)
    const env = { ...cacheEnv(store), NIX_USER_CONF_FILES: conf }
    const http = await startBinaryCacheServer(path.join(root, 'http-cache'))
    servers.push({ close: () => http.stop() })
    const binaryCache = `${http.url}?compression=${compression}`
    process.stdout.write(`bench: ${wanted} paths, ${RUNS} samples, NARs ${compression}\n`)
    printFresh(await closureFromEither(root, env, binaryCache, key, wanted))
    if (process.argv.includes('--commit')) {
      const commits = await startBinaryCacheServer(path.join(root, 'http-cache-commits'))
      servers.push({ close: () => commits.stop() })
      process.stdout.write('bench: the push of a commit whose app changed\n')
      printCommits(await commitPushes(root, env, `${commits.url}?compression=${compression}`, key))
    }
  } finally {
    for (const server of servers) await server.close()
    removeAsRoot(root)
  }
}

main().catch(error => {
  process.stderr.write(`${error instanceof Error ? error.stack : String(error)}\n`)
  process.exit(1)
})
