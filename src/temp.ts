// The one place that says where the action's temporary files go: the runner's temp directory
// (private to the job, emptied by the runner after it), or the system's outside a runner.
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** RUNNER_TEMP, or the system's temp directory when it is unset or empty. */
export function runnerTemp(): string {
  return process.env.RUNNER_TEMP || tmpdir()
}

/** The action's own folder in it: the job's nix.conf, the store cache's scratch space, logins. */
export function actionTempDir(root: string = runnerTemp()): string {
  return join(root, 'nix-container-action')
}
