#!/usr/bin/env node
// Benchmark: how the action makes an image index, against podman's manifest commands, side
// by side in one run. Both start from two platform images already in the registry and end
// with one index of both under a new tag, each reading the platforms from the images:
//
//   (a) the bundled action with `merge` (main step): reads each image's config, writes the
//       index JSON, `skopeo copy --multi-arch index-only oci:<layout>`
//   (b) podman: `podman manifest create`, `manifest add` x2, `manifest push --all=false`,
//       with a fresh podman storage each run (as on a fresh runner)
//
// Medians of N runs (default 5), and their ratios to (a).
//
//   npm run bench:index [-- --runs 5]
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { median, option, seconds, sh } from './bench-lib.mjs'
import { runAction } from './run-action.mjs'

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const services = path.join(repo, 'scripts', 'services.sh')
const NIX_CONFIG = readFileSync(path.join(repo, 'scripts', 'test-nix.conf'), 'utf8')
const runs = Number(option('runs', '5'))

async function main() {
  try {
    sh('podman', ['--version'])
  } catch {
    console.error('bench-index: podman is not installed (apt-get install podman)')
    process.exit(2)
  }
  const dir = mkdtempSync('/tmp/nca-bench-index-')
  sh(services, ['start', dir], { stdio: ['ignore', 'ignore', 'inherit'] })
  const registry = /^REGISTRY=(.*)$/m.exec(readFileSync(path.join(dir, 'env'), 'utf8'))[1]
  const tmp = mkdtempSync('/tmp/nca-bench-index-tmp-')
  try {
    // The two platform images, each under a tag, as a matrix job pushes them.
    const env = { ...process.env, NIX_CONFIG, TMPDIR: tmp }
    const digests = ['x86_64-linux', 'aarch64-linux'].map(system => {
      const built = JSON.parse(
        sh(
          'nix',
          [
            'build',
            `${repo}/examples/hello#container-tar`,
            '--system',
            system,
            '--no-link',
            '--json'
          ],
          { env }
        )
      )[0].outputs.out
      const digestFile = path.join(dir, `digest-${system}`)
      sh(
        'skopeo',
        [
          'copy',
          '-q',
          '--dest-tls-verify=false',
          '--digestfile',
          digestFile,
          `docker-archive:${built}`,
          `docker://${registry}/bench/app:${system}`
        ],
        { env }
      )
      return readFileSync(digestFile, 'utf8').trim()
    })
    const sources = digests.map(digest => `docker://${registry}/bench/app@${digest}`)
    const times = { a: [], b: [] }
    for (let run = 1; run <= runs; run++) {
      const inputs = {
        image: `${registry}/bench/app`,
        merge: 'x86_64-linux, aarch64-linux',
        tags: `action-${run}`
      }
      let result
      times.a.push(
        await seconds(
          async () => (result = await runAction({ inputs, env: { TMPDIR: tmp }, runPost: false }))
        )
      )
      rmSync(result.tempDir, { recursive: true, force: true })
      if (result.main.exitCode !== 0) throw new Error(`the action failed:\n${result.main.stdout}`)
      const storage = mkdtempSync(path.join(dir, 'podman-'))
      const podman = [
        '--root',
        `${storage}/root`,
        '--runroot',
        `${storage}/run`,
        '--storage-driver',
        'vfs'
      ]
      times.b.push(
        await seconds(() => {
          sh('podman', [...podman, 'manifest', 'create', `bench-${run}`], { env })
          for (const source of sources) {
            sh(
              'podman',
              [...podman, 'manifest', 'add', '--tls-verify=false', `bench-${run}`, source],
              { env }
            )
          }
          sh(
            'podman',
            [
              ...podman,
              'manifest',
              'push',
              '--all=false',
              '--tls-verify=false',
              `bench-${run}`,
              `docker://${registry}/bench/app:podman-${run}`
            ],
            { env }
          )
        })
      )
      rmSync(storage, { recursive: true, force: true })
    }
    const a = median(times.a)
    const b = median(times.b)
    console.log(`index of 2 images, medians of ${runs} runs`)
    console.log('| variant | seconds | ratio |')
    console.log('| --- | ---: | ---: |')
    console.log(`| (a) this action, merge (index JSON + skopeo) | ${a.toFixed(2)} | 1.00 |`)
    console.log(
      `| (b) podman manifest create, add x2, push | ${b.toFixed(2)} | ${(b / a).toFixed(2)} |`
    )
  } finally {
    sh(services, ['stop', dir], { stdio: 'ignore' })
    rmSync(tmp, { recursive: true, force: true })
  }
}

await main()
