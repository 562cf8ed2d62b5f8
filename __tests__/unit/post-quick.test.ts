import { expect, test } from '@jest/globals'
import { quickPostMessage } from '../../src/post-quick.js'

const ran = { 'STATE_main-ran': 'true' }

test.each<[string, Record<string, string>, string | null]>([
  [
    'main stopped at its inputs',
    {},
    'The main step did not get past its inputs: nothing to clean up'
  ],
  [
    'the store cache skipped, nothing else',
    { ...ran, 'STATE_cache-skipped': 'cache: false' },
    'Store cache save: skipped (cache: false)'
  ],
  ['a cache to save', { ...ran, 'STATE_cache-work-dir': '/tmp/w' }, null],
  [
    'a login to undo',
    { ...ran, 'STATE_cache-skipped': 'cache: false', 'STATE_login-session': '{"registries":[]}' },
    null
  ],
  [
    'a test container that may be left',
    {
      ...ran,
      'STATE_cache-skipped': 'build: false',
      'STATE_test-container': 'nix-container-test-1'
    },
    null
  ],
  [
    'a builder key file to remove',
    { ...ran, 'STATE_cache-skipped': 'cache: false', 'STATE_builder-key-file': '/tmp/k' },
    null
  ]
])('%s', (_what, env, message) => {
  expect(quickPostMessage(env)).toBe(message)
})
