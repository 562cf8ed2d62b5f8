#!/usr/bin/env node
// Benchmark of the store cache, through the bundled action (dist/) and the real @actions/cache
// client against the v1 cache API server on 127.0.0.1 (cache-server.mjs). One run, side by side:
//   run 1  builds a closure of BENCH_MB (default 300) of incompressible data and saves it;
//   run 2  on a store without those paths: restores, and must build nothing;
//   tar    a plain `tar -xf` of the same paths (uncompressed tar, prepared beforehand), and the
//          same paths as a plain tar through @actions/cache (download, unzstd, extract): what
//          caches that tar /nix/store do, here extracted beside the store, not into it.
// Prints restore and save seconds (as the job summary reports them), the archive's size against
// the closure's (`nix path-info -S`) and the restore against the tar extraction.
// Needs: nix, tar, zstd, and `npm run bundle` first. Usage: npm run bench:store-cache
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { cacheEnv, startCacheServer } from './cache-server.mjs'
import { runAction } from './run-action.mjs'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const fixture = path.join(repoRoot, '__tests__/e2e/flakes/cache-bench')
const BLOB_MB = 50
const megabytes = Number(process.env.BENCH_MB ?? 300)
const blobCount = Math.max(1, Math.round(megabytes / BLOB_MB))

// As the e2e tests: no substituters, no sandbox (host tools), no build users.
const NIX_CONFIG = [
  process.env.NIX_CONFIG ?? '',
  'experimental-features = nix-command flakes',
  'sandbox = false',
  'substituters =',
  'build-users-group ='
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

async function runOnce(flakeRef, server) {
  const result = await runAction({
    inputs: { flake: flakeRef, load: 'false', push: 'false' },
    env: { ...cacheEnv(server), NIX_CONFIG },
    timeoutMs: 1_200_000
  })
  if (result.main.exitCode !== 0 || result.post?.exitCode !== 0) {
    throw new Error(`bench: the action failed:\n${result.main.stdout}\n${result.main.stderr}`)
  }
  return result
}

/** Seconds to restore `paths` as a plain tar through @actions/cache, into extractDir. */
async function actionsCacheTarSeconds(server, work, paths, extractDir) {
  const cache = await import('@actions/cache')
  const env = { ...cacheEnv(server), RUNNER_TEMP: path.join(work, 'runner-temp') }
  fs.mkdirSync(env.RUNNER_TEMP)
  const saved = { ...process.env }
  const cwd = process.cwd()
  const relative = paths.map(p => p.slice(1))
  // @actions/cache logs through stdout: keep it out of the bench's output.
  const write = process.stdout.write
  try {
    Object.assign(process.env, env, { GITHUB_WORKSPACE: '/' })
    process.chdir('/')
    process.stdout.write = () => true
    await cache.saveCache(relative, 'bench-plain-tar')
    process.env.GITHUB_WORKSPACE = extractDir
    const started = process.hrtime.bigint()
    const key = await cache.restoreCache(relative, 'bench-plain-tar')
    if (key !== 'bench-plain-tar') throw new Error('bench: the plain tar entry did not restore')
    return Number(process.hrtime.bigint() - started) / 1e9
  } finally {
    process.stdout.write = write
    process.chdir(cwd)
    process.env = saved
  }
}

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

    nixStore('--delete', ...paths)
    const run2 = await runOnce(flakeRef, server)
    if (run2.outputs['cache-hit'] !== 'true') throw new Error('bench: run 2 was not a cache hit')
    if (!/Built /.test(run2.main.stdout) || /building '/.test(run2.main.stdout)) {
      throw new Error(`bench: run 2 built something:\n${run2.main.stdout}`)
    }

    const extractDir = path.join(work, 'extract')
    fs.mkdirSync(extractDir)
    const tarSeconds = seconds(() => execFileSync('tar', ['-xf', baselineTar, '-C', extractDir]))
    const cacheTarDir = path.join(work, 'extract-cache-tar')
    fs.mkdirSync(cacheTarDir)
    const cacheTarSeconds = await actionsCacheTarSeconds(server, work, paths, cacheTarDir)

    const restore = summarySeconds(run2.summary, 'Store cache')
    const save = summarySeconds(run1.summary, 'Store cache save')
    const rows = [
      ['closure (nix path-info -S)', mb(closureSize)],
      ['cached paths, NAR total', `${mb(narTotal)} (${paths.length} paths)`],
      ['cache archive', mb(entry.size)],
      ['archive / closure', (entry.size / closureSize).toFixed(3)],
      ['save seconds (run 1 post)', save.toFixed(2)],
      ['restore seconds (run 2)', restore.toFixed(2)],
      ['plain tar -xf seconds', tarSeconds.toFixed(2)],
      ['restore / tar', (restore / tarSeconds).toFixed(2)],
      ['same tar via @actions/cache sec', cacheTarSeconds.toFixed(2)],
      ['restore / tar via @actions/cache', (restore / cacheTarSeconds).toFixed(2)],
      ['run 2 built', 'nothing']
    ]
    const width = Math.max(...rows.map(([name]) => name.length))
    process.stdout.write(`\n${rows.map(([n, v]) => `${n.padEnd(width)}  ${v}`).join('\n')}\n`)
    for (const dir of [run1.tempDir, run2.tempDir]) fs.rmSync(dir, { recursive: true, force: true })
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
