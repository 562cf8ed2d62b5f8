// Whether post saves the store cache, and as what (pure): the rules, before and after looking
// at the store.

export interface SaveFacts {
  cacheSave: boolean
  /** Why there is no cache service (the variable the client lacks); null: there is one. */
  serviceMissing: string | null
  primaryKey: string | null
  /** The key restored when it is this commit's own entry (an exact hit); else null. */
  exactHit: string | null
  /** The build's derivation or output path is known: the build ran to the end. */
  built: boolean
}

/** Why the post step does not save, before looking at the store; null: look further. */
export function saveSkipReason(facts: SaveFacts): string | null {
  if (!facts.cacheSave) return 'cache-save: false'
  if (facts.serviceMissing !== null) return facts.serviceMissing
  if (facts.primaryKey === null) return 'no cache key: the restore step could not compute one'
  if (!facts.built) return 'the build did not run to the end'
  if (facts.exactHit !== null) {
    return `exact hit on ${facts.exactHit}: the entry already holds this build`
  }
  return null
}

/** The closure's paths that the restored cache did not have (sorted). */
export function pathsNotRestored(
  closure: readonly string[],
  restored: readonly string[]
): string[] {
  const had = new Set(restored)
  return closure.filter(p => !had.has(p)).sort()
}

export function closureSkipReason(
  closure: readonly string[],
  restored: readonly string[]
): string | null {
  if (pathsNotRestored(closure, restored).length > 0) return null
  return `the closure holds no path that the restored cache did not already have (${closure.length} paths)`
}

/**
 * A delta may hold at most this share of its base's NAR bytes; beyond it the commit saves a new
 * base. It bounds what a lock and branch keep (a base and one delta: 1.25x a closure) and what
 * a restore downloads that the build may not need.
 */
export const DELTA_SHARE = 0.25

/** Whether a delta of `deltaBytes` may build on a base of `baseBytes` (NAR bytes). */
export function deltaFits(deltaBytes: number, baseBytes: number): boolean {
  return deltaBytes <= DELTA_SHARE * baseBytes
}
