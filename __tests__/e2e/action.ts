// What the pipeline tests share: the registry global-setup.ts started, and running the
// bundled action with each run's temp dir removed after the file's tests.
import { afterAll } from '@jest/globals'
import { rm } from 'node:fs/promises'
import { runAction } from '../../scripts/run-action.mjs'
import type { RunOptions, RunResult } from '../../scripts/run-action.mjs'

export const registry = (): string => {
  const value = process.env.REGISTRY
  if (!value) throw new Error('REGISTRY is not set: the e2e global setup did not run')
  return value
}

const tempDirs: string[] = []

afterAll(async () => {
  await Promise.all(tempDirs.splice(0).map(dir => rm(dir, { recursive: true, force: true })))
})

/** Run the bundled action (main, then post) with these inputs. */
export async function action(
  inputs: RunOptions['inputs'],
  options: Partial<RunOptions> = {}
): Promise<RunResult> {
  const result = await runAction({ inputs, timeoutMs: 240_000, ...options })
  tempDirs.push(result.tempDir)
  return result
}

/** What a failed run printed, for the assertion message. */
export function log(result: RunResult): string {
  return `${result.main.stdout}\n${result.main.stderr}`
}
