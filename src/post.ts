// run(): the post step. It cleans up after main and only ever warns: a post step must never
// fail a job whose work is done.
import * as core from './core.js'
import { getState, StateKey } from './state.js'
import { describeSave, saveStoreCache, storeCacheWorkDir } from './stages/store-cache.js'
import type { SaveResult } from './stages/store-cache.js'
import { logoutOfRegistries } from './stages/login.js'
import { removeContainer } from './stages/test.js'
import type { LoginSession } from './stages/login.js'
import { errorMessage } from './errors.js'
import { readCacheSigningKey, readGithubToken } from './inputs.js'
import { removeKeyFile } from './stages/binary-cache.js'
import { removeBuilderKey } from './nix/builder-key.js'

export async function run(): Promise<void> {
  try {
    if (getState(StateKey.MainRan) === null) {
      core.info('The main step did not get past its inputs: nothing to clean up')
      return
    }
    await saveCache()
  } catch (error) {
    core.warning(`post step: ${errorMessage(error)}`)
  } finally {
    await removeTestContainer()
    await logout()
    await removeBinaryCacheKey()
    await removeBuilderKeyFile()
  }
}

/** The binary cache push's key file, when main stopped before it removed it. */
async function removeBinaryCacheKey(): Promise<void> {
  const file = getState(StateKey.BinaryCacheKeyFile)
  if (file !== null && (await removeKeyFile(file))) {
    core.info('Removed the binary cache key file the main step left behind')
  }
}

/** The `builder-ssh-key` file main wrote under RUNNER_TEMP: gone before the job's next step. */
async function removeBuilderKeyFile(): Promise<void> {
  const file = getState(StateKey.BuilderKeyFile)
  if (file === null) return
  try {
    if (await removeBuilderKey(file)) core.info('Removed the builder-ssh-key file')
  } catch (error) {
    core.warning(`could not remove the builder-ssh-key file ${file}: ${errorMessage(error)}`)
  }
}

/** A test container main could not remove (it was killed, or cancelled mid-test). */
async function removeTestContainer(): Promise<void> {
  const name = getState(StateKey.TestContainer)
  if (name === null) return
  if (await removeContainer(name)) {
    core.info(`Removed the test container ${name}, which the main step left behind`)
  }
}

/** Log out of exactly the registries main logged in to (even when its push failed). */
async function logout(): Promise<void> {
  const saved = getState(StateKey.LoginSession)
  if (saved === null) return
  try {
    await core.group('Registry logout', () => logoutOfRegistries(JSON.parse(saved) as LoginSession))
  } catch (error) {
    core.warning(`registry logout: ${errorMessage(error)}`)
  }
}

/** Save the store cache. Every error is a warning: the job's result never changes here. */
async function saveCache(): Promise<void> {
  const skipped = getState(StateKey.CacheSkipped)
  if (skipped !== null) {
    core.info(`Store cache save: skipped (${skipped})`)
    return
  }
  if (getState(StateKey.CacheWorkDir) === null) {
    core.info('Store cache save: skipped (the main step stopped before the store cache stage)')
    return
  }
  const started = performance.now()
  let result: SaveResult
  try {
    result = await core.group('Store cache save', () =>
      saveStoreCache({
        flake: getState(StateKey.CacheFlake) ?? '.',
        cacheSave: getState(StateKey.CacheSave) !== 'false',
        primaryKey: getState(StateKey.CachePrimaryKey),
        restoredKey: getState(StateKey.CacheRestoredKey),
        recordFile: getState(StateKey.CacheRestoreRecord),
        githubToken: readGithubToken(),
        startedAt: startedAt(),
        drvPath: getState(StateKey.BuiltDrvPath),
        storePath: getState(StateKey.BuiltStorePath),
        workDir: getState(StateKey.CacheWorkDir) ?? storeCacheWorkDir(),
        signingKey: readCacheSigningKey()
      })
    )
  } catch (error) {
    result = {
      saved: false,
      failed: true,
      reason: errorMessage(error)
    }
  }
  const seconds = (performance.now() - started) / 1000
  if (result.saved) core.info(`Store cache save: ${describeSave(result)}`)
  else if (result.failed) core.warning(`Store cache save failed, the job goes on: ${result.reason}`)
  else core.info(`Store cache save: skipped (${result.reason})`)
  await appendSaveSummary(result, seconds)
}

function startedAt(): Date | null {
  const text = getState(StateKey.CacheStartedAt)
  return text === null ? null : new Date(text)
}

async function appendSaveSummary(result: SaveResult, seconds: number): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return
  const status = result.saved ? '✅ saved' : result.failed ? '⚠️ failed' : '⏭️ skipped'
  const detail = describeSave(result).replace(/\|/g, '\\|').replace(/\n/g, ' ')
  const table = [
    '',
    '| Post step | Status | Result | Seconds |',
    '| --- | --- | --- | ---: |',
    `| Store cache save | ${status} | ${detail} | ${seconds.toFixed(1)} |`,
    ''
  ]
  await core
    .appendSummary(table.join('\n'))
    .catch((error: unknown) => core.warning(`could not write the job summary: ${String(error)}`))
}
