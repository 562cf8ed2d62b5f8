// The bundles run whatever path starts them: self-hosted runners often reach the action
// through a symlinked work folder, and an entry point that compared paths did nothing there.
// A self-hosted runner's shape: steps as root, a root-owned /nix without a daemon.
import { afterAll, expect, test } from '@jest/globals'
import { mkdtempSync, symlinkSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { action, freshMachine } from './action.js'

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const linkDir = mkdtempSync(join(tmpdir(), 'nca-link-'))
const tempDirs: string[] = [linkDir]

afterAll(async () => {
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

test('main and post both run when the action is reached through a symlink', async () => {
  const linkedAction = join(linkDir, 'action')
  symlinkSync(repoRoot, linkedAction)
  const result = await action(
    { flake: './examples/hello', cache: 'false', load: 'false', push: 'false' },
    { distDir: join(linkedAction, 'dist'), machine: freshMachine('root') }
  )
  expect(result.main.exitCode).toBe(0)
  expect(result.outputs['store-path']).toMatch(/^\/nix\/store\/[a-z0-9]{32}-/)
  expect(result.outputs['image-id']).toMatch(/^sha256:[0-9a-f]{64}$/)
  expect(result.post?.exitCode).toBe(0)
  expect(result.post?.stdout).toContain('Store cache save: skipped (cache: false)')
})
