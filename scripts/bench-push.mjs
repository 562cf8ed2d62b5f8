#!/usr/bin/env node
// Benchmark: the hand-written chain against the bundled action, side by side in one run.
//
//   (a) chain:  nix build; docker load < result; docker tag; docker push
//   (b) action: push-tool docker
//   (c) action: push-tool skopeo, load: false (no daemon)
//   (b'), (c') the same with sbom: false: what the SBOM costs
//   (d) action: push-tool skopeo, load: false, compression: zstd
//
// Each "first push" goes to a new, empty registry; each "re-push" to the registry the first
// push filled. Before every run that loads into docker, the image is removed from the daemon,
// and skopeo's blob-info cache is removed before every run, as on a fresh runner. Medians of N
// runs (default 5), and their ratios to (a).
//
// Then the everyday commit: the registry holds the previous commit's image and the new one
// differs in the app layer only (__tests__/e2e/flakes/app-layers, container-big-stream: 3 base
// layers of 100 MiB, each its own derivation, plus app.txt). Each run writes a new app.txt, so
// `nix build` builds the new app layer. (a) gets a new docker daemon for every run (untimed);
// the action's unchanged re-push of the same commit right after is the floor.
//
//   npm run bench [-- --runs 5 --attribute container-big --changed-runs 3]
import { execFileSync, spawn, spawnSync } from 'node:child_process'
import {
  accessSync,
  constants,
  cpSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync
} from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { median, option, seconds, sh } from './bench-lib.mjs'
import { runAction } from './run-action.mjs'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const services = path.join(repo, 'scripts', 'services.sh')
const NIX_CONFIG = readFileSync(path.join(repo, 'scripts', 'test-nix.conf'), 'utf8')

const runs = Number(option('runs', '5'))
const changedRuns = Number(option('changed-runs', '3'))
const attribute = option('attribute', 'container-big')
const flake = `${repo}/examples/hello`
const appLayersFixture = path.join(repo, '__tests__', 'e2e', 'flakes', 'app-layers')
const CHANGED_ATTRIBUTE = 'container-big-stream'
// Where containers/image keeps its blob-info cache (as root, and as a user).
const BLOB_INFO_CACHES = [
  '/var/lib/containers/cache',
  path.join(homedir(), '.local', 'share', 'containers', 'cache')
]

function forgetBlobInfo() {
  for (const dir of BLOB_INFO_CACHES) rmSync(dir, { recursive: true, force: true })
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
function handWrittenChain(
  registry,
  env,
  flakeDir = flake,
  attr = attribute,
  repository = 'bench/chain'
) {
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
    run('nix', ['build', `${flakeDir}#${attr}`])
    const result = path.join(work, 'result')
    // A stream image is run and piped in: `./result | docker load`.
    const load = isExecutable(result)
      ? spawnSync('sh', ['-c', '"$0" | docker load', result], { cwd: work, env, encoding: 'utf8' })
      : spawnSync('docker', ['load', '-i', result], { cwd: work, env, encoding: 'utf8' })
    checked(load, 'docker load')
    const loaded = /Loaded image: (\S+)/.exec(load.stdout)?.[1] ?? 'big:latest'
    run('docker', ['tag', loaded, `${registry}/${repository}:v1`])
    run('docker', ['push', `${registry}/${repository}:v1`])
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

async function theAction(
  registry,
  env,
  tool,
  { sbom = 'true', flakeDir = flake, attr = attribute, compression = 'gzip' } = {}
) {
  const inputs = {
    flake: flakeDir,
    attribute: attr,
    registry,
    image: `bench/action-${tool}${compression === 'zstd' ? '-zstd' : ''}`,
    tags: 'v1',
    'push-tool': tool,
    // Like for like: the chain has no store cache either.
    cache: 'false',
    sbom,
    compression
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

/** The archive's layers as files with their digests (untimed), for the registry's floor. */
function layerFiles(storePath, env) {
  const dir = mkdtempSync(path.join(tmpdir(), 'nca-bench-layers-'))
  execFileSync('tar', ['-xf', '-', '-C', dir], { input: archiveBytes(storePath, env) })
  const manifest = JSON.parse(readFileSync(path.join(dir, 'manifest.json'), 'utf8'))
  const files = manifest[0].Layers.map(layer => path.join(dir, layer))
  const digests = files.map(file => `sha256:${sh('sha256sum', [file]).split(' ')[0]}`)
  return { dir, layers: files.map((file, i) => ({ file, digest: digests[i] })) }
}

/** (z): each layer's bytes uploaded by curl (POST, then one streamed PUT), all at once. */
async function registryIngest(registry, layers) {
  const upload = ({ file, digest }) =>
    new Promise((resolve, reject) => {
      const script =
        'loc=$(curl -sf -D - -o /dev/null -X POST "http://$0/v2/bench/floor/blobs/uploads/" |' +
        " tr -d '\\r' | sed -n 's/^[Ll]ocation: //p'); case $loc in http*) ;; *) loc=http://$0$loc;; esac;" +
        ' curl -sf -o /dev/null -X PUT -H "Content-Type: application/octet-stream" -T "$1" "$loc&digest=$2"'
      const child = spawn('sh', ['-c', script, registry, file, digest], { stdio: 'inherit' })
      child.on('error', reject)
      child.on('close', code => (code === 0 ? resolve() : reject(new Error(`upload ${code}`))))
    })
  await Promise.all(layers.map(upload))
}

const FLOOR = '(z) the registry alone: curl PUTs the layers'

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
    (registry, env) => theAction(registry, env, 'docker', { sbom: 'false' }),
    true
  ],
  [
    "(c') action, push-tool skopeo, load false, sbom false",
    (registry, env) => theAction(registry, env, 'skopeo', { sbom: 'false' }),
    false
  ],
  [
    '(d) action, push-tool skopeo, load false, compression zstd',
    (registry, env) => theAction(registry, env, 'skopeo', { compression: 'zstd' }),
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

    const times = { first: variants.map(() => []), repush: variants.map(() => []), floor: [] }
    const floor = layerFiles(storePath, env)
    for (let round = 1; round <= runs; round++) {
      const floorRegistry = newRegistry(dir, `r${round}-floor`)
      const ingest = await seconds(() => registryIngest(floorRegistry, floor.layers))
      times.floor.push(ingest)
      console.log(`round ${round} first  ${FLOOR.padEnd(42)} ${ingest.toFixed(2)} s`)
      for (const [index, [name, run, loadsIntoDocker]] of variants.entries()) {
        const registry = newRegistry(dir, `r${round}-${index}`)
        for (const phase of ['first', 'repush']) {
          if (loadsIntoDocker) forgetImage(env)
          forgetBlobInfo()
          const elapsed = await seconds(() => run(registry, env))
          times[phase][index].push(elapsed)
          console.log(
            `round ${round} ${phase.padEnd(6)} ${name.padEnd(42)} ${elapsed.toFixed(2)} s`
          )
        }
      }
    }
    rmSync(floor.dir, { recursive: true, force: true })
    printTable(times)
    await changedLayerBench(dir, env)
  } finally {
    spawnSync(services, ['stop', dir], { stdio: 'inherit' })
  }
}

/** A private copy of the app-layers flake; `commit(text)` writes its app.txt. */
function appLayersFlake() {
  const root = mkdtempSync(path.join(tmpdir(), 'nca-bench-app-'))
  const dir = path.join(root, 'flake')
  cpSync(appLayersFixture, dir, { recursive: true })
  return { root, dir, commit: text => writeFileSync(path.join(dir, 'app.txt'), `${text}\n`) }
}

/** A new docker daemon (its services dir also holds an unused registry), for one chain run. */
function freshDaemon() {
  const { dir, env } = startServices()
  return { env, stop: () => spawnSync(services, ['stop', dir], { stdio: 'ignore' }) }
}

async function changedLayerBench(servicesDir, env) {
  const flakeCopy = appLayersFlake()
  try {
    console.log(`\nChanged app layer: ${CHANGED_ATTRIBUTE}, ${changedRuns} runs of each\n`)
    // The base layers are built once, untimed, like a warm builder's.
    flakeCopy.commit('warm-up')
    sh('nix', ['build', '--no-link', `${flakeCopy.dir}#${CHANGED_ATTRIBUTE}`], { env })
    const names = [
      '(a) nix build + docker load/tag/push, new daemon',
      '(c) action, push-tool skopeo, load false',
      '(c) unchanged re-push (the floor)'
    ]
    const times = names.map(() => [])
    const record = (index, round, elapsed) => {
      times[index].push(elapsed)
      console.log(`round ${round} ${names[index].padEnd(48)} ${elapsed.toFixed(2)} s`)
    }
    // The registry holds the previous commit, pushed by the action (untimed) as a CI run would.
    const previous = async (registry, tag) => {
      flakeCopy.commit(`${tag} previous`)
      forgetBlobInfo()
      await theAction(registry, env, 'skopeo', { flakeDir: flakeCopy.dir, attr: CHANGED_ATTRIBUTE })
    }
    for (let round = 1; round <= changedRuns; round++) {
      const chainRegistry = newRegistry(servicesDir, `c${round}-chain`)
      await previous(chainRegistry, `r${round}-chain`)
      // The chain's repository gets the same previous image, copied registry-side (untimed).
      sh('skopeo', [
        'copy',
        '-q',
        '--src-tls-verify=false',
        '--dest-tls-verify=false',
        `docker://${chainRegistry}/bench/action-skopeo:v1`,
        `docker://${chainRegistry}/bench/changed-chain:v1`
      ])
      flakeCopy.commit(`r${round}-chain new`)
      const daemon = freshDaemon()
      try {
        forgetBlobInfo()
        const chainEnv = { ...env, DOCKER_HOST: daemon.env.DOCKER_HOST }
        record(
          0,
          round,
          await seconds(() =>
            handWrittenChain(
              chainRegistry,
              chainEnv,
              flakeCopy.dir,
              CHANGED_ATTRIBUTE,
              'bench/changed-chain'
            )
          )
        )
      } finally {
        daemon.stop()
      }

      const actionRegistry = newRegistry(servicesDir, `c${round}-action`)
      await previous(actionRegistry, `r${round}-action`)
      flakeCopy.commit(`r${round}-action new`)
      forgetBlobInfo()
      const push = () =>
        theAction(actionRegistry, env, 'skopeo', {
          flakeDir: flakeCopy.dir,
          attr: CHANGED_ATTRIBUTE
        })
      record(1, round, await seconds(push))
      forgetBlobInfo()
      record(2, round, await seconds(push))
    }
    console.log('\nMedians (seconds) and ratios:\n')
    console.log('| variant | seconds | vs (a) | vs floor |')
    console.log('| --- | ---: | ---: | ---: |')
    const medians = times.map(median)
    for (const [index, name] of names.entries()) {
      const value = medians[index]
      console.log(
        `| ${name} | ${value.toFixed(2)} | ${(value / medians[0]).toFixed(2)} | ${(value / medians[2]).toFixed(2)} |`
      )
    }
  } finally {
    rmSync(flakeCopy.root, { recursive: true, force: true })
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
  const floor = median(times.floor)
  console.log(`| ${FLOOR} | ${floor.toFixed(2)} | ${(floor / base.first).toFixed(2)} | - | - |`)
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
