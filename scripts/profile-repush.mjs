#!/usr/bin/env node
// Where an unchanged re-push's time goes: the bundled action (push-tool skopeo, load false, or
// with --tool docker, load true; no store cache, as in `npm run bench`) pushes an image once, then re-pushes it N times; each
// re-push prints the time from the step's start to each log group's start and end, and the
// post step's time. Run as root (the bench's services).
// With --dist A,B (dist/ folders, each with an action.yml beside it) the re-pushes alternate
// between the bundles and the medians are printed side by side.
//   node scripts/profile-repush.mjs [--attribute container-big --runs 3 --tool skopeo --dist dist,/tmp/old/dist --lines all]
import { mkdtempSync, readFileSync } from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { median, option, sh } from './bench-lib.mjs'
import { runAction } from './run-action.mjs'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const services = path.join(repo, 'scripts', 'services.sh')
const attribute = option('attribute', 'container-big')
const runs = Number(option('runs', '3'))
const tool = option('tool', 'skopeo')
// --lines all: every log line with its time, not only the groups.
const allLines = option('lines', 'groups') === 'all'
const dists = option('dist', path.join(repo, 'dist'))
  .split(',')
  .map(d => path.resolve(d))

const dir = mkdtempSync('/tmp/nca-profile-')
sh(services, ['start', dir], { stdio: ['ignore', 'ignore', 'inherit'] })
try {
  const env = Object.fromEntries(
    readFileSync(path.join(dir, 'env'), 'utf8')
      .split('\n')
      .filter(line => line.includes('='))
      .map(line => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)])
  )
  const registry = sh(services, ['registry', dir, 'profile'], {
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const inputs = {
    flake: path.join(repo, 'examples', 'hello'),
    attribute,
    registry,
    image: 'bench/profile',
    tags: 'v1',
    'push-tool': tool,
    load: String(tool === 'docker'),
    cache: 'false'
  }
  await profiledRun(inputs, env, 'first push', dists[0])
  const totals = dists.map(() => [])
  for (let i = 1; i <= runs; i++) {
    for (const [d, dist] of dists.entries()) {
      totals[d].push(await profiledRun(inputs, env, `re-push ${i}, ${dist}`, dist))
    }
  }
  for (const [d, dist] of dists.entries()) {
    process.stdout.write(`${dist}: median ${median(totals[d]).toFixed(3)} s of ${runs}\n`)
  }
} finally {
  sh(services, ['stop', dir], { stdio: ['ignore', 'ignore', 'inherit'] })
}

async function profiledRun(inputs, env, label, distDir) {
  const arrived = []
  const { write } = process.stdout
  const started = process.hrtime.bigint()
  let result
  try {
    process.stdout.write = chunk => {
      for (const text of String(chunk).split('\n'))
        arrived.push({ at: process.hrtime.bigint(), text })
      return true
    }
    result = await runAction({
      inputs,
      env,
      cwd: repo,
      timeoutMs: 600_000,
      stream: true,
      distDir
    })
  } finally {
    process.stdout.write = write
  }
  const total = Number(process.hrtime.bigint() - started) / 1e9
  if (result.main.exitCode !== 0) throw new Error(result.main.stdout.slice(-3000))
  const ms = at => Math.round(Number(at - started) / 1e6)
  const marks = arrived
    .filter(
      l => allLines || /^::(group|endgroup)::|skipped|up to date|Store cache save/.test(l.text)
    )
    .map(l => `${String(ms(l.at)).padStart(6)} ms  ${l.text.slice(0, 100)}`)
  process.stdout.write(`--- ${label}: ${total.toFixed(3)} s in all\n${marks.join('\n')}\n`)
  return total
}
