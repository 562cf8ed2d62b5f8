// The store cache's keys: which entry a run restores, and under which key post saves.
import { createHash } from 'node:crypto'
import { currentSystem } from '../nix/command.js'
import { flakeMetadata } from './nix-store.js'
import type { FlakeMetadata } from './nix-store.js'

export const KEY_PREFIX = 'nix-container-store'

export interface KeyFacts {
  system: string
  attribute: string
  metadata: FlakeMetadata
  /** The `cache-key` input: replaces the primary key. */
  override: string | null
}

export interface CacheKeys {
  primary: string
  /** Prefixes tried in order after the primary key: the same lock, then system + attribute. */
  restore: string[]
}

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

/**
 * `nix-container-store/<system>/<attribute>/lock-<hash>/source-<hash>`. The attribute is
 * URI-encoded and every part ends in `/`, so `container` never prefix-matches `container-zstd`
 * and no key holds a comma (which the cache service refuses).
 */
export function cacheKeys(facts: KeyFacts): CacheKeys {
  const base = `${KEY_PREFIX}/${facts.system}/${encodeURIComponent(facts.attribute)}/`
  const lock = `${base}lock-${facts.metadata.lock === null ? 'none' : shortHash(facts.metadata.lock)}/`
  const primary = facts.override ?? `${lock}source-${shortHash(facts.metadata.sourceHash)}`
  return { primary, restore: [lock, base] }
}

/** The keys of this run: the system and the flake's lock and source asked of Nix. */
export async function computeKeys(source: KeySource): Promise<CacheKeys> {
  const [system, metadata] = await Promise.all([
    source.system ?? currentSystem(),
    flakeMetadata(source.flake)
  ])
  return cacheKeys({ system, attribute: source.attribute, metadata, override: source.cacheKey })
}
