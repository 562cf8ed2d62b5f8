// The store cache's keys: which entries a run restores, and under which key post saves.
//
// Entries are layered by how often things change. A base holds a whole closure and is keyed by
// the lock (what flake.lock pins changes rarely); a delta holds only what a commit's closure
// adds to a base and names that base in its key, so the restore knows which base to download
// with it:
//   <system>/<attribute>/lock-<h>/base-<source h>                    a base (a whole closure)
//   <system>/<attribute>/lock-<h>/source-<h>/on-base-<source h>      a delta on that base
// The primary key (`lock-<h>/source-<h>`, the `cache-key` output) names the commit; an entry
// saved by it is its delta or its base.
import { createHash } from 'node:crypto'
import { currentSystem } from '../nix/command.js'
import { flakeMetadata } from './nix-store.js'
import type { FlakeMetadata } from './nix-store.js'

export const KEY_PREFIX = 'nix-container-store'

export interface KeyFacts {
  system: string
  attribute: string
  metadata: FlakeMetadata
  /** The `cache-key` input: replaces the primary key, and every entry is then whole. */
  override: string | null
}

export interface CacheKeys {
  primary: string
  /** Prefixes tried in order after the primary key: this commit's delta and base, the same
   * lock, then system + attribute. */
  restore: string[]
  /** Where this commit's entries go; null with `cache-key`, which saves one whole entry. */
  layers: {
    /** Every entry of the lock starts with it (`…/lock-<hash>/`). */
    lock: string
    base: string
    deltaPrefix: string
  } | null
  /** Every entry of this system and attribute starts with it (the prune's scope). */
  scope: string
}

/** What an entry's key says about it. */
export type EntryKey =
  | { kind: 'base'; key: string; lock: string }
  | { kind: 'delta'; key: string; lock: string; base: string }
  /** Anything else (a `cache-key` entry): a whole closure, restored alone. */
  | { kind: 'whole'; key: string }

/** What the keys are computed from: the run's inputs. */
export interface KeySource {
  flake: string
  attribute: string
  /** null: the system Nix builds for here. */
  system: string | null
  /** The `cache-key` input. */
  cacheKey: string | null
}

export function shortHash(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 16)
}

const HASH = '[0-9a-f]{16}'
const BASE_KEY = new RegExp(`^(.*/lock-(?:none|${HASH})/)base-${HASH}$`)
const DELTA_KEY = new RegExp(`^(.*/lock-(?:none|${HASH})/)source-${HASH}/on-base-(${HASH})$`)

/** The base an entry of this lock prefix and source hash would be saved as. */
export function baseKey(lockPrefix: string, sourceHash: string): string {
  return `${lockPrefix}base-${sourceHash}`
}

/** Read an entry's key: a base, a delta (and the base it needs), or a whole entry. */
export function parseEntryKey(key: string): EntryKey {
  const delta = DELTA_KEY.exec(key)
  if (delta?.[1] && delta[2]) {
    return { kind: 'delta', key, lock: delta[1], base: baseKey(delta[1], delta[2]) }
  }
  const base = BASE_KEY.exec(key)
  if (base?.[1]) return { kind: 'base', key, lock: base[1] }
  return { kind: 'whole', key }
}

/** The key of a delta of this commit on `base`. */
export function deltaKey(keys: CacheKeys, base: string): string {
  const parsed = parseEntryKey(base)
  if (keys.layers === null || parsed.kind !== 'base' || !isSameLock(keys, base)) {
    throw new Error(`no delta on ${base}: not a base of this lock, or cache-key is set`)
  }
  return `${keys.layers.deltaPrefix}on-${base.slice(parsed.lock.length)}`
}

/** The entry was saved under this commit's lock (a delta may only build on such a base). */
export function isSameLock(keys: CacheKeys, key: string): boolean {
  const entry = parseEntryKey(key)
  return entry.kind !== 'whole' && entry.lock === keys.layers?.lock
}

/** The restored entry is this commit's own: its delta, its base, or the primary key. */
export function isExactHit(keys: CacheKeys, restoredKey: string): boolean {
  if (restoredKey === keys.primary) return true
  if (keys.layers === null) return false
  return restoredKey === keys.layers.base || restoredKey.startsWith(keys.layers.deltaPrefix)
}

/**
 * `nix-container-store/<system>/<attribute>/lock-<hash>/source-<hash>`. The attribute is
 * URI-encoded and every part ends in `/`, so `container` never prefix-matches `container-zstd`
 * and no key holds a comma (which the cache service refuses).
 */
export function cacheKeys(facts: KeyFacts): CacheKeys {
  const scope = `${KEY_PREFIX}/${facts.system}/${encodeURIComponent(facts.attribute)}/`
  const lock = `${scope}lock-${facts.metadata.lock === null ? 'none' : shortHash(facts.metadata.lock)}/`
  const source = shortHash(facts.metadata.sourceHash)
  if (facts.override !== null) {
    return { primary: facts.override, restore: [lock, scope], layers: null, scope }
  }
  const primary = `${lock}source-${source}`
  const layers = { lock, base: baseKey(lock, source), deltaPrefix: `${primary}/` }
  return { primary, restore: [layers.deltaPrefix, layers.base, lock, scope], layers, scope }
}

/** The keys of this run: the system and the flake's lock and source asked of Nix. */
export async function computeKeys(source: KeySource): Promise<CacheKeys> {
  const [system, metadata] = await Promise.all([
    source.system ?? currentSystem(),
    flakeMetadata(source.flake)
  ])
  return cacheKeys({ system, attribute: source.attribute, metadata, override: source.cacheKey })
}
