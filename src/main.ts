// run(): inputs -> Nix -> store cache -> one of the pipelines (single image, `systems`, `merge`,
// under pipeline/) -> outputs + job summary. The one setFailed is here.
import * as core from './core.js'
import { InputError, parseInputs } from './inputs.js'
import type { Inputs } from './inputs.js'
import { runMerge } from './pipeline/merge.js'
import { runSingleImage } from './pipeline/single.js'
import { runSystems } from './pipeline/systems.js'
import { Report, writeSummary } from './report.js'
import { saveState, StateKey } from './state.js'
import { builderKeyFile, describeSource, setupNix } from './stages/install-nix.js'
import { daemonImageStore } from './stages/load.js'
import {
  describeRestore,
  prepareStoreCache,
  restoreStoreCache,
  storeCacheWorkDir
} from './stages/store-cache.js'
import { errorMessage } from './errors.js'
import {
  binaryCacheConfLines,
  checkDaemonTakesCache,
  describePush,
  pushedOutput,
  pushToBinaryCache
} from './stages/binary-cache.js'
import type { BuiltImage } from './pipeline/common.js'

export async function run(): Promise<void> {
  const report = new Report()
  try {
    const inputs = parseInputs()
    saveState(StateKey.MainRan, 'true')
    try {
      await runPipeline(inputs, report)
    } finally {
      // Once the inputs are good (bad input sets no output at all), passed or failed.
      core.setOutput('tested', String(report.tested))
    }
  } catch (error) {
    core.setFailed(errorMessage(error))
  } finally {
    await writeSummary(report).catch((error: unknown) => {
      core.warning(`could not write the job summary: ${String(error)}`)
    })
  }
}

async function runPipeline(inputs: Inputs, report: Report): Promise<void> {
  if (inputs.merge.length > 0) {
    await runMerge(inputs, report)
    return
  }
  if (inputs.cache && inputs.build) prepareStoreCache()
  await checkDaemonTakesCompression(inputs)
  // binary-cache: a substituter of this job; the user's own nix-conf lines come after it.
  const nixConf = inputs.binaryCache
    ? [...binaryCacheConfLines(inputs.binaryCache), ...inputs.nixConf]
    : inputs.nixConf
  // Before the file exists, so that post removes it whatever happens after.
  if (inputs.builderSshKey !== null) saveState(StateKey.BuilderKeyFile, builderKeyFile())
  const nix = await report.stage(
    'Nix',
    () =>
      setupNix({
        installNix: inputs.installNix,
        nixVersion: inputs.nixVersion,
        installUrl: inputs.installUrl,
        nixConf,
        githubToken: inputs.githubToken,
        builders: { machines: inputs.builders, sshKey: inputs.builderSshKey }
      }),
    result => `Nix ${result.version} (${describeSource(result.found)})`
  )
  core.setOutput('nix-version', nix.version)
  core.setOutput('nix-installed', String(nix.installed))
  if (inputs.binaryCache) await checkDaemonTakesCache(inputs.binaryCache)

  await restoreCache(inputs, report)

  if (!inputs.build) {
    report.skip('Build', 'build: false')
    return
  }
  const builds =
    inputs.systems.length > 0
      ? await runSystems(inputs, report)
      : await runSingleImage(inputs, report)
  await pushBinaryCache(inputs, report, builds)
}

/**
 * After the image shipped, its build closure to `binary-cache`: here in main, not in post, so
 * that `binary-cache-pushed` is an output later steps can read. A failure only warns.
 */
async function pushBinaryCache(
  inputs: Inputs,
  report: Report,
  builds: readonly BuiltImage[]
): Promise<void> {
  const cache = inputs.binaryCache
  if (cache === null) return
  if (cache.secretKey === null) {
    report.skip('Binary cache push', 'no binary-cache-secret-key: this job only reads the cache')
    return
  }
  const result = await report.stage(
    'Binary cache push',
    () =>
      pushToBinaryCache(
        {
          cache,
          flake: inputs.flake,
          drvPaths: builds.map(b => b.drvPath).join('\n'),
          storePaths: builds.map(b => b.storePath).join('\n')
        },
        file => saveState(StateKey.BinaryCacheKeyFile, file)
      ),
    describePush
  )
  // The push removed its key file: nothing for post to remove.
  saveState(StateKey.BinaryCacheKeyFile, '')
  core.setOutput('binary-cache-pushed', pushedOutput(result))
}

/**
 * What docker pushes on the classic store it compresses itself, gzip at its own level: zstd
 * through docker needs the containerd image store. Asked of the daemon before anything is
 * installed or built, like any other bad input.
 */
async function checkDaemonTakesCompression(inputs: Inputs): Promise<void> {
  const dockerPushes =
    inputs.push && inputs.pushTool === 'docker' && inputs.load && inputs.systems.length === 0
  const { format, level } = inputs.compression
  if (!dockerPushes || (format === 'gzip' && level === null)) return
  if ((await daemonImageStore()) === 'containerd') return
  if (format === 'gzip') {
    core.notice(
      'compression-level: docker on the classic image store compresses at its own level when it pushes'
    )
    return
  }
  throw new InputError(
    'compression',
    inputs.compression.format,
    'needs push-tool: skopeo, or docker with its containerd image store: this daemon uses the classic store, which pushes gzip only'
  )
}

/** Restore the store cache before the build; outputs and post's state say what came back. */
async function restoreCache(inputs: Inputs, report: Report): Promise<void> {
  const skipped = !inputs.cache ? 'cache: false' : !inputs.build ? 'build: false' : null
  if (skipped !== null) {
    report.skip('Store cache', skipped)
    saveState(StateKey.CacheSkipped, skipped)
    return
  }
  const workDir = storeCacheWorkDir()
  saveState(StateKey.CacheStartedAt, new Date().toISOString())
  const restored = await report.stage(
    'Store cache',
    () =>
      restoreStoreCache({
        flake: inputs.flake,
        attribute: inputs.attribute,
        // A `systems` run builds other closures than a single-system one: its own key.
        system: inputs.systems.length > 0 ? inputs.systems.join('+') : inputs.system,
        cacheKey: inputs.cacheKey,
        workDir,
        trustedKeys: inputs.cacheTrustedKeys
      }),
    describeRestore
  )
  saveState(StateKey.CacheSave, String(inputs.cacheSave))
  saveState(StateKey.CacheFlake, inputs.flake)
  saveState(StateKey.CacheWorkDir, workDir)
  saveState(StateKey.CacheRestoreRecord, restored.recordFile)
  if (restored.keys) saveState(StateKey.CachePrimaryKey, restored.keys.primary)
  if (restored.restoredKey) saveState(StateKey.CacheRestoredKey, restored.restoredKey)
  core.setOutput('cache-hit', String(restored.hit))
  core.setOutput('cache-key', restored.keys?.primary ?? '')
  core.setOutput('cache-restored-key', restored.restoredKey ?? '')
}
