#!/usr/bin/env node
// Benchmark: the hand-written chain against the bundled action, side by side in one run.
//
//   (a) chain:  nix build; docker load < result; docker tag; docker push
//   (b) action: push-tool docker
//   (c) action: push-tool skopeo, load: false (no daemon)
//   (b'), (c') the same with sbom: false: what the SBOM costs
//
// Each "first push" goes to a new, empty registry; each "re-push" to the registry the first
// push filled. Before every run that loads into docker, the image is removed from the daemon,
// as on a fresh runner. Medians of N runs (default 5), and their ratios to (a).
//
//   npm run bench [-- --runs 5 --attribute container-big]
import { execFileSync, spawnSync } from 'node:child_process'
import { accessSync, constants, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { runAction } from './run-action.mjs'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const services = path.join(repo, 'scripts', 'services.sh')
const NIX_CONFIG = readFileSync(path.join(repo, 'scripts', 'test-nix.conf'), 'utf8')

function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`)
  return index === -1 ? fallback : process.argv[index + 1]
}
const runs = Number(option('runs', '5'))
const attribute = option('attribute', 'container-big')
const flake = `${repo}/examples/hello`

function sh(command, args, options = {}) {
  return (execFileSync(command, args, { encoding: 'utf8', ...options }) ?? '').trim()
}

function seconds(work) {
  const started = process.hrtime.bigint()
  return Promise.resolve(work()).then(() => Number(process.hrtime.bigint() - started) / 1e9)
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

function startServices() {
  const dir = mkdtempSync('/tmp/nca-bench-')
  sh(services, ['start', dir], { stdio: ['ignore', 'ignore', 'inherit'] })
  const env = Object.fromEntries(
    readFileSync(path.join(dir, 'env'), 'utf8')
      .split('\n')
      .filter(line => line.includes('='))
      .map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
  )
  return { dir, env }
}

function newRegistry(dir, name) {
  return sh(services, ['registry', dir, name], { stdio: ['ignore', 'pipe', 'inherit'] })
}

function checked(result, what) {
  if (result.status !== 0) {
    throw new Error(`${what} failed (${result.status}):\n${result.stderr?.toString().slice(-2000)}`)
  }
}

/** (a): what workflows write by hand today. */
function handWrittenChain(registry, env) {
  const work = mkdtempSync(path.join(tmpdir(), 'nca-chain-'))
  try {
    const run = (command, args, input) => {
      const result = spawnSync(command, args, {
        cwd: work,
        env,
        input,
        stdio: ['pipe', 'ignore', 'pipe']
      })
      checked(result, `${command} ${args.join(' ')}`)
    }
    run('nix', ['build', `${flake}#${attribute}`])
    const result = path.join(work, 'result')
    // A stream image is run and piped in: `./result | docker load`.
    if (isExecutable(result)) run('sh', ['-c', '"$0" | docker load', result])
    else run('docker', ['load', '-i', result])
    run('docker', ['tag', 'big:latest', `${registry}/bench/chain:v1`])
    run('docker', ['push', `${registry}/bench/chain:v1`])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

async function theAction(registry, env, tool, sbom = 'true') {
  const inputs = {
    flake,
    attribute,
    registry,
    image: `bench/action-${tool}`,
    tags: 'v1',
    'push-tool': tool,
    // Like for like: the chain has no store cache either.
    cache: 'false',
    sbom
  }
  if (tool === 'skopeo') inputs.load = 'false'
  const result = await runAction({ inputs, env, cwd: repo, timeoutMs: 600_000 })
  rmSync(result.tempDir, { recursive: true, force: true })
  if (result.main.exitCode !== 0)
    throw new Error(`action (${tool}) failed:\n${result.main.stdout.slice(-3000)}`)
  // The SBOM stage's own time, from the job summary (nix path-info and the file).
  const sbomStage = /^\| SBOM \| ✅ done \| .* \| ([\d.]+) \|$/m.exec(result.summary)
  if (sbomStage) sbomSeconds.push(Number(sbomStage[1]))
}

const sbomSeconds = []

function isExecutable(file) {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** The plain archive: the file, or what a stream image writes. */
function archiveBytes(storePath, env) {
  const options = { env, maxBuffer: 2 ** 31 - 1 }
  return isExecutable(storePath) ? execFileSync(storePath, [], options) : readFileSync(storePath)
}

function forgetImage(env) {
  spawnSync('docker', ['image', 'rm', '-f', 'big:latest'], { env, stdio: 'ignore' })
  const ids = spawnSync('docker', ['image', 'ls', '-q'], { env, encoding: 'utf8' })
    .stdout.split('\n')
    .filter(Boolean)
  if (ids.length > 0) spawnSync('docker', ['image', 'rm', '-f', ...ids], { env, stdio: 'ignore' })
}

const variants = [
  [
    '(a) nix build + docker load/tag/push',
    (registry, env) => handWrittenChain(registry, env),
    true
  ],
  ['(b) action, push-tool docker', (registry, env) => theAction(registry, env, 'docker'), true],
  [
    '(c) action, push-tool skopeo, load false',
    (registry, env) => theAction(registry, env, 'skopeo'),
    false
  ],
  [
    "(b') action, push-tool docker, sbom false",
    (registry, env) => theAction(registry, env, 'docker', 'false'),
    true
  ],
  [
    "(c') action, push-tool skopeo, load false, sbom false",
    (registry, env) => theAction(registry, env, 'skopeo', 'false'),
    false
  ]
]

async function main() {
  const { dir, env: serviceEnv } = startServices()
  const env = { ...process.env, ...serviceEnv, NIX_CONFIG }
  try {
    console.log(`Building ${flake}#${attribute} once (not timed) ...`)
    const storePath = JSON.parse(
      sh('nix', ['build', '--no-link', '--json', `${flake}#${attribute}`], { env })
    )[0].outputs.out
    const archive = archiveBytes(storePath, env)
    const manifest = execFileSync('tar', ['-xOf', '-', './manifest.json'], {
      input: archive,
      encoding: 'utf8'
    })
    const layers = JSON.parse(manifest)[0].Layers.length
    const size = archive.length
    console.log(
      `${storePath}: ${(size / 1e6).toFixed(0)} MB, ${layers} layers; ${runs} runs of each\n`
    )

    const times = { first: variants.map(() => []), repush: variants.map(() => []) }
    for (let round = 1; round <= runs; round++) {
      for (const [index, [name, run, loadsIntoDocker]] of variants.entries()) {
        const registry = newRegistry(dir, `r${round}-${index}`)
        for (const phase of ['first', 'repush']) {
          if (loadsIntoDocker) forgetImage(env)
          const elapsed = await seconds(() => run(registry, env))
          times[phase][index].push(elapsed)
          console.log(
            `round ${round} ${phase.padEnd(6)} ${name.padEnd(42)} ${elapsed.toFixed(2)} s`
          )
        }
      }
    }
    printTable(times)
  } finally {
    spawnSync(services, ['stop', dir], { stdio: 'inherit' })
  }
}

function printTable(times) {
  console.log('\nMedians (seconds) and ratios to (a):\n')
  console.log(`| variant | first push | ratio | re-push | ratio |`)
  console.log(`| --- | ---: | ---: | ---: | ---: |`)
  const base = { first: median(times.first[0]), repush: median(times.repush[0]) }
  for (const [index, [name]] of variants.entries()) {
    const first = median(times.first[index])
    const repush = median(times.repush[index])
    console.log(
      `| ${name} | ${first.toFixed(2)} | ${(first / base.first).toFixed(2)} | ${repush.toFixed(2)} | ${(repush / base.repush).toFixed(2)} |`
    )
  }
  const ratio = (withSbom, without, phase) =>
    (median(times[phase][withSbom]) / median(times[phase][without])).toFixed(3)
  console.log('\nWhat the SBOM costs (with sbom / sbom false):\n')
  console.log(`| push-tool | first push | re-push |`)
  console.log(`| --- | ---: | ---: |`)
  console.log(`| docker: (b) / (b') | ${ratio(1, 3, 'first')} | ${ratio(1, 3, 'repush')} |`)
  console.log(`| skopeo: (c) / (c') | ${ratio(2, 4, 'first')} | ${ratio(2, 4, 'repush')} |`)
  console.log(
    `\nSBOM stage alone (median of ${sbomSeconds.length}): ${median(sbomSeconds).toFixed(2)} s`
  )
}

main().catch(error => {
  console.error(error)
  process.exit(1)
})
