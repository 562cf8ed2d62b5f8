// What a push did to each ref, and what the refs ended up as: shared by the single-image push
// and the index pushes.
import { errorMessage } from '../errors.js'
import { parseReference, repositoryOf } from './reference.js'

export type RefAction = 'pushed' | 'copied' | 'up to date'

export interface RefOutcome {
  ref: string
  digest: string
  action: RefAction
  /** Layers found in the registry instead of uploaded; absent when the tool does not say. */
  reusedLayers?: number
  /** Compressed bytes of the blobs uploaded; absent when the tool does not say. */
  uploadedBytes?: number
}

/** What an index push did to one repository (a platform image copied there by digest). */
export interface RepositoryOutcome {
  repository: string
  action: RefAction
}

export interface PushResult {
  /** `sha256:` manifest digest, the same for every ref. */
  digest: string
  /** `<repository>@<digest>` of the first ref. */
  imageRef: string
  outcomes: RefOutcome[]
}

/** `<repository>@<digest>` for a full reference. */
export function imageRefFor(ref: string, digest: string): string {
  return `${repositoryOf(parseReference(ref))}@${digest}`
}

/** One digest for all refs, or an error that lists them. */
export function commonDigest(outcomes: readonly RefOutcome[]): string {
  const distinct = [...new Set(outcomes.map(outcome => outcome.digest))]
  if (distinct.length !== 1) {
    const list = outcomes.map(outcome => `${outcome.ref} -> ${outcome.digest}`).join(', ')
    throw new Error(`the refs ended up at different manifest digests: ${list}`)
  }
  return distinct[0] as string
}

/** The failure, and which refs made it before it (pure, for tests). */
export function partialPushMessage(
  error: unknown,
  done: readonly RefOutcome[],
  refs: readonly string[]
): string {
  const reason = errorMessage(error)
  if (done.length === 0) return reason
  const doneRefs = done.map(outcome => outcome.ref)
  const notDone = refs.filter(ref => !doneRefs.includes(ref))
  return `${reason}\nPushed: ${doneRefs.join(', ')}. Not pushed: ${notDone.join(', ')}`
}
