// run(): the post step. It cleans up after main and only ever warns: a post step must never
// fail a job whose work is done.
import * as core from '@actions/core'
import { pathToFileURL } from 'node:url'
import { getState, StateKey } from './state.js'

export async function run(): Promise<void> {
  try {
    if (getState(StateKey.MainRan) === null) {
      core.info('The main step did not get past its inputs: nothing to clean up')
      return
    }
    await Promise.resolve()
    core.info('Nothing to clean up')
  } catch (error) {
    core.warning(`post step: ${error instanceof Error ? error.message : String(error)}`)
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  void run()
}
