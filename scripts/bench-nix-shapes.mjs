#!/usr/bin/env node
// What the store cache's restore costs for each way Nix can be on the runner, as GitHub runs the
// action (the unprivileged `runner` user on a fresh runner machine, scripts/runner-machine.sh):
// a single-user store the runner owns and root's own store (the fast path: extract, check NAR
// hashes, rename, one load-db) against a root-owned store behind nix-daemon (registered in a
// temporary local store, then `nix copy` through the daemon). One entry is saved first; then,
// interleaved, each shape restores it on a fresh machine and must build nothing. Prints the
// median of the "Store cache" stage's seconds per shape and its ratio to the single-user one.
// Needs root (or passwordless sudo), `npm run bundle` first, and the e2e services' programs.
// Usage: node scripts/bench-nix-shapes.mjs [--paths 500] [--blobs 2] [--runs 3]
import { randomUUID } from 'node:crypto'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { median, option, summarySeconds } from './bench-lib.mjs'
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
const fixture = path.join(repoRoot, '__tests__/e2e/flakes/cache-bench')
const SHAPES = ['single-user', 'root', 'daemon']
const paths = Number(option('paths', '500'))
const blobs = Number(option('blobs', '2'))
const runs = Number(option('runs', '3'))
process.env.NIX_CONFIG = [
  process.env.NIX_CONFIG ?? '',
  fs.readFileSync(path.join(repoRoot, 'scripts/test-nix.conf'), 'utf8')
].join('\n')

async function job(shape, flake, server) {
  const machine = startMachine(shape)
  try {
    const result = await runAction({
      inputs: { flake, load: 'false', push: 'false' },
      env: cacheEnv(server),
      timeoutMs: 1_200_000,
      machine
    })
    removeAsRoot(result.tempDir)
    if (result.main.exitCode !== 0 || result.post?.exitCode !== 0) {
      throw new Error(`bench: the action failed on ${shape}:\n${result.main.stdout}`)
    }
    return result
  } finally {
    stopMachine(machine)
  }
}

async function main() {
  ensureRunnerUser()
  const root = userTempDir('nca-bench-shapes-')
  const flakeDir = path.join(root, 'flake')
  fs.cpSync(fixture, flakeDir, { recursive: true })
  fs.writeFileSync(path.join(flakeDir, 'salt'), randomUUID())
  fs.writeFileSync(path.join(flakeDir, 'blobs'), String(blobs))
  // The image and its derivation, each blob's derivation and output, the small paths' too.
  fs.writeFileSync(path.join(flakeDir, 'smalls'), String(Math.max(0, (paths - 2 - 2 * blobs) / 2)))
  giveToRunner(root)
  const server = await startCacheServer()
  try {
    const flake = `path:${flakeDir}`
    const saved = await job('single-user', flake, server)
    console.log(
      `saved ${saved.outputs['cache-key']}: ${saved.post?.stdout.match(/\d+ paths \(\d+ new\), [0-9.]+ MB/)?.[0]}`
    )
    const samples = Object.fromEntries(SHAPES.map(shape => [shape, []]))
    for (let run = 0; run < runs; run++) {
      for (const shape of SHAPES) {
        const result = await job(shape, flake, server)
        if (result.outputs['cache-hit'] !== 'true' || /building '/.test(result.main.stdout)) {
          throw new Error(`bench: ${shape} did not restore everything:\n${result.main.stdout}`)
        }
        samples[shape].push(summarySeconds(result.summary, 'Store cache'))
      }
    }
    const base = median(samples['single-user'])
    console.log(`\n| Nix on the runner | restore s (median of ${runs}) | / single-user |`)
    console.log('| --- | --- | --- |')
    for (const shape of SHAPES) {
      const value = median(samples[shape])
      console.log(`| ${shape} | ${value.toFixed(1)} | ${(value / base).toFixed(2)} |`)
    }
  } finally {
    await server.close()
    removeAsRoot(root)
  }
}

main().catch(error => {
  console.error(error instanceof Error ? error.message : error)
  process.exit(1)
})
