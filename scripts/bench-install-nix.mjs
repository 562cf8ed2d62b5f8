#!/usr/bin/env node
// Benchmark of the install-nix stage: seconds to install Nix into an empty /nix from a release
// tarball served on 127.0.0.1, cold (download, verify, unpack, tool-cache it) and warm (the
// tool cache of an earlier job), measured side by side, alternating, in one run.
// Runs the bundled action (dist/) as the runner does, in a private mount namespace
// (scripts/with-private-nix.sh: needs root); the tarball comes from scripts/make-nix-tarball.sh.
// Usage: npm run bench:install-nix [-- ROUNDS]   (default 5)
import { execFileSync, spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import path from 'node:path'
import process from 'node:process'
import console from 'node:console'
import { performance } from 'node:perf_hooks'
import { fileURLToPath, URL } from 'node:url'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const rounds = Number(process.argv[2] ?? 5)
const work = fs.mkdtempSync('/tmp/nca-bench-')

function serve(dir) {
  const server = http.createServer((request, response) => {
    const file = path.join(dir, path.basename(new URL(request.url ?? '/', 'http://x').pathname))
    if (!fs.existsSync(file)) {
      response.statusCode = 404
      return void response.end()
    }
    response.setHeader('content-length', fs.statSync(file).size)
    fs.createReadStream(file).pipe(response)
  })
  return new Promise(resolve => server.listen(0, '127.0.0.1', () => resolve(server)))
}

/** One job: the action's main step with build: false, in a fresh private /nix. */
async function installOnce(label, inputs, toolCache) {
  const dir = fs.mkdtempSync(path.join(work, `${label}-`))
  const nixDir = path.join(dir, 'nix')
  fs.mkdirSync(nixDir)
  const optionsFile = path.join(dir, 'options.json')
  const resultFile = path.join(dir, 'result.json')
  const options = {
    inputs: { ...inputs, build: 'false', push: 'false' },
    runPost: false,
    stream: true,
    cwd: repoRoot,
    env: { HOME: path.join(dir, 'home'), RUNNER_TOOL_CACHE: toolCache }
  }
  fs.writeFileSync(optionsFile, JSON.stringify(options))
  const started = performance.now()
  // The step's log streamed as it comes: the stage runs from `::group::Nix` to its endgroup.
  const marks = {}
  await new Promise((resolve, reject) => {
    const child = spawn(
      path.join(repoRoot, 'scripts', 'with-private-nix.sh'),
      [
        nixDir,
        process.execPath,
        path.join(repoRoot, 'scripts', 'run-action-json.mjs'),
        optionsFile,
        resultFile
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] }
    )
    let partial = ''
    child.stdout.setEncoding('utf8')
    child.stdout.on('data', chunk => {
      const lines = (partial + chunk).split('\n')
      partial = lines.pop() ?? ''
      for (const line of lines) {
        if (line === '::group::Nix') marks.start = performance.now()
        else if (line === '::endgroup::' && marks.start && !marks.end) marks.end = performance.now()
      }
    })
    child.on('error', reject)
    child.on('close', code =>
      code === 0 ? resolve() : reject(new Error(`${label}: exit ${code}`))
    )
  })
  const wall = (performance.now() - started) / 1000
  const result = JSON.parse(fs.readFileSync(resultFile, 'utf8'))
  if (result.main.exitCode !== 0 || result.outputs['nix-installed'] !== 'true') {
    throw new Error(`${label}: the install failed:\n${result.main.stdout.slice(-3000)}`)
  }
  if (!marks.start || !marks.end) throw new Error(`${label}: no Nix group in the step's log`)
  fs.rmSync(result.tempDir, { recursive: true, force: true })
  return { stage: (marks.end - marks.start) / 1000, wall }
}

const median = values => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]

async function main() {
  if (!fs.existsSync(path.join(repoRoot, 'dist', 'main', 'index.js'))) {
    throw new Error('dist/main/index.js is missing: run npm run bundle first')
  }
  const tarball = execFileSync(
    path.join(repoRoot, 'scripts', 'make-nix-tarball.sh'),
    [path.join(work, 'tarball')],
    {
      encoding: 'utf8'
    }
  ).trim()
  const version = /^nix-(\d+\.\d+\.\d+)-/.exec(path.basename(tarball))[1]
  const server = await serve(path.dirname(tarball))
  const inputs = {
    'nix-version': version,
    'install-url': `http://127.0.0.1:${server.address().port}/${path.basename(tarball)}`
  }
  const size = (fs.statSync(tarball).size / 1e6).toFixed(1)
  console.log(
    `install-nix stage: Nix ${version} from a ${size} MB tarball on 127.0.0.1, ${rounds} rounds`
  )
  const cold = []
  const warm = []
  try {
    for (let round = 1; round <= rounds; round++) {
      const toolCache = fs.mkdtempSync(path.join(work, 'tool-cache-'))
      cold.push(await installOnce('cold', inputs, toolCache))
      warm.push(await installOnce('warm', inputs, toolCache))
      const last = i => `${cold[i].stage.toFixed(2)} s / ${warm[i].stage.toFixed(2)} s`
      console.log(`  round ${round}: stage cold / warm ${last(round - 1)}`)
    }
  } finally {
    server.close()
  }
  const row = (name, pick) => {
    const c = median(cold.map(pick))
    const w = median(warm.map(pick))
    return `| ${name.padEnd(26)} | ${c.toFixed(2).padStart(8)} | ${w.toFixed(2).padStart(8)} | ${(c / w).toFixed(2).padStart(10)} |`
  }
  console.log('')
  console.log('| median seconds             |     cold |     warm | cold/warm |')
  console.log('| -------------------------- | -------: | -------: | --------: |')
  console.log(row('Nix stage (its log group)', r => r.stage))
  console.log(row('whole main step (wall)', r => r.wall))
}

try {
  await main()
} finally {
  execFileSync('chmod', ['-R', 'u+w', work])
  fs.rmSync(work, { recursive: true, force: true })
}
