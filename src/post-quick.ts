// The post step of a run that left it nothing to do: the store cache was skipped (cache: false,
// build: false), nothing was logged in to, no test container can be left and no key file
// (the binary cache's, the builders') was written. It says so and ends without loading the
// toolkit and the stages, which is most of such a post step's time (@actions/core alone
// evaluates its HTTP client). Reads the state as @actions/core does: STATE_<key> in the
// environment.
import { StateKey } from './state-keys.js'

type Environment = Record<string, string | undefined>

const stateOf = (env: Environment, key: StateKey): string => env[`STATE_${key}`] ?? ''

/** What post would print, when that is all it would do; null when post has work (pure). */
export function quickPostMessage(env: Environment): string | null {
  if (stateOf(env, StateKey.MainRan) === '') {
    return 'The main step did not get past its inputs: nothing to clean up'
  }
  const skipped = stateOf(env, StateKey.CacheSkipped)
  const idle =
    skipped !== '' &&
    stateOf(env, StateKey.LoginSession) === '' &&
    stateOf(env, StateKey.TestContainer) === '' &&
    stateOf(env, StateKey.BinaryCacheKeyFile) === '' &&
    stateOf(env, StateKey.BuilderKeyFile) === ''
  return idle ? `Store cache save: skipped (${skipped})` : null
}
