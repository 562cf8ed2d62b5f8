// The "no cache service" message names the variable @actions/cache actually lacks. The client's
// own verdict (the real isFeatureAvailable, not a mock) is checked beside ours, so a change in
// how the client decides shows up here.
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals'
import { isFeatureAvailable } from '@actions/cache'
import {
  cacheServiceVersion,
  missingCacheService,
  serviceUrlAvailable
} from '../../src/cache/service.js'

const VARIABLES = [
  'ACTIONS_CACHE_SERVICE_V2',
  'ACTIONS_CACHE_URL',
  'ACTIONS_RESULTS_URL',
  'ACTIONS_RUNTIME_TOKEN',
  'GITHUB_SERVER_URL'
]
const saved = VARIABLES.map(name => [name, process.env[name]] as const)

function setEnv(env: Record<string, string>): void {
  for (const name of VARIABLES) delete process.env[name]
  Object.assign(process.env, env)
}

beforeEach(() => setEnv({}))
afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name]
    else process.env[name] = value
  }
})

const token = { ACTIONS_RUNTIME_TOKEN: 'tok' }
const v1 = { ACTIONS_CACHE_URL: 'http://cache/' }
const v2 = { ACTIONS_CACHE_SERVICE_V2: 'True', ACTIONS_RESULTS_URL: 'http://results/' }

describe('missingCacheService', () => {
  test.each<[string, Record<string, string>, 'v1' | 'v2', string | null]>([
    ['v1, complete', { ...v1, ...token }, 'v1', null],
    ['v2, complete', { ...v2, ...token }, 'v2', null],
    [
      'v2 as GitHub-hosted runners set it, with the v1 URL too',
      { ...v1, ...v2, ...token },
      'v2',
      null
    ],
    ['nothing set', {}, 'v1', 'no cache service: ACTIONS_CACHE_URL is not set'],
    [
      'v1 without its URL, the v2 URL alone',
      { ACTIONS_RESULTS_URL: 'http://results/', ...token },
      'v1',
      'no cache service: ACTIONS_CACHE_URL is not set (ACTIONS_RESULTS_URL is, but without ACTIONS_CACHE_SERVICE_V2 @actions/cache speaks v1)'
    ],
    [
      'v2 without its URL, the v1 URL alone',
      { ACTIONS_CACHE_SERVICE_V2: 'True', ...v1, ...token },
      'v2',
      'no cache service: ACTIONS_RESULTS_URL is not set (ACTIONS_CACHE_SERVICE_V2 is, so @actions/cache speaks the v2 protocol)'
    ],
    ['v1 without the token', v1, 'v1', 'no cache service: ACTIONS_RUNTIME_TOKEN is not set'],
    ['v2 without the token', v2, 'v2', 'no cache service: ACTIONS_RUNTIME_TOKEN is not set'],
    [
      'GitHub Enterprise Server: v1 whatever the flag says',
      { ...v2, ...token, GITHUB_SERVER_URL: 'https://ghes.example.com' },
      'v1',
      'no cache service: ACTIONS_CACHE_URL is not set (ACTIONS_RESULTS_URL is, but without ACTIONS_CACHE_SERVICE_V2 @actions/cache speaks v1)'
    ],
    [
      'a ghe.com tenant speaks v2',
      { ...v2, ...token, GITHUB_SERVER_URL: 'https://o.ghe.com' },
      'v2',
      null
    ]
  ])('%s', (_name, env, version, reason) => {
    setEnv(env)
    expect(cacheServiceVersion(process.env)).toBe(version)
    expect(missingCacheService(process.env, isFeatureAvailable())).toBe(reason)
    // The action decides without loading the client: the same verdict.
    expect(serviceUrlAvailable(process.env)).toBe(isFeatureAvailable())
  })
})
