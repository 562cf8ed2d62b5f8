// The names of what main hands to post (as in actions/setup-node): one place, and no import,
// so that the post step can read them before it loads anything (src/post-quick.ts).
export enum StateKey {
  /** Set by main so that post knows main ran at all (a post after a crash has nothing to do). */
  MainRan = 'main-ran',
  /** Why main did not use the store cache (cache: false, build: false); post says it too. */
  CacheSkipped = 'cache-skipped',
  CachePrimaryKey = 'cache-primary-key',
  /** The key main restored and imported; unset on a miss. */
  CacheRestoredKey = 'cache-restored-key',
  /** File recording the keys and the entries restored (JSON): what post saves builds on them. */
  CacheRestoreRecord = 'cache-restore-record',
  /** When main began (ISO 8601): post deletes only superseded entries saved before it. */
  CacheStartedAt = 'cache-started-at',
  CacheSave = 'cache-save',
  /** The flake reference: post caches the sources of its inputs too. */
  CacheFlake = 'cache-flake',
  CacheWorkDir = 'cache-work-dir',
  /** Set once the build finished: post saves nothing without it. */
  BuiltDrvPath = 'built-drv-path',
  BuiltStorePath = 'built-store-path',
  /** JSON of the push stage's LoginSession (no secrets): what post logs out of. */
  LoginSession = 'login-session',
  /** The test container that may be running ('' once main removed it): post removes it. */
  TestContainer = 'test-container',
  /** The binary cache push's key file: ('' once main removed it): post removes it. */
  BinaryCacheKeyFile = 'binary-cache-key-file',
  /** The `builder-ssh-key` file main wrote: post removes it. */
  BuilderKeyFile = 'builder-key-file'
}
