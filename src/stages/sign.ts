// The sign stage, after the push: a cosign signature for every manifest digest pushed (the
// image; with an index, each platform image and the index), in every repository it was pushed
// to, under the `sha256-<hex>.sig` tag beside it. The key was decrypted when the inputs were
// read; it stays in this process's memory and is never written or passed to a command.
import * as core from '../core.js'
import { errorMessage } from '../errors.js'
import type { RegistryOptions } from '../registry/index-push.js'
import { attachSignature } from '../signing/attach.js'
import type { SignatureOutcome, SignatureTarget } from '../signing/attach.js'
import type { SigningKey } from '../signing/cosign-key.js'

export interface SignOptions extends RegistryOptions {
  key: SigningKey
  /** Every digest pushed, in each repository it went to; repeats are signed once. */
  targets: SignatureTarget[]
  /** Told about each signature as soon as it is in the registry. */
  onOutcome?: (outcome: SignatureOutcome) => void
}

/** The targets without repeats, in order (pure, for tests). */
export function distinctTargets(targets: readonly SignatureTarget[]): SignatureTarget[] {
  const seen = new Set<string>()
  return targets.filter(target => {
    const key = `${target.repository}@${target.digest}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}

export async function signImages(options: SignOptions): Promise<SignatureOutcome[]> {
  const outcomes: SignatureOutcome[] = []
  for (const target of distinctTargets(options.targets)) {
    let outcome: SignatureOutcome
    try {
      outcome = await attachSignature(target, options.key, options)
    } catch (error) {
      const done = outcomes.length > 0 ? ` (signed before it: ${describeSigned(outcomes)})` : ''
      throw new Error(
        `signing ${target.repository}@${target.digest} failed: ${errorMessage(error)}${done}`,
        { cause: error }
      )
    }
    core.info(
      `${outcome.ref}: ${outcome.action} (${outcome.signatureCount} signature` +
        `${outcome.signatureCount === 1 ? '' : 's'} in the tag)`
    )
    outcomes.push(outcome)
    options.onOutcome?.(outcome)
  }
  return outcomes
}

function describeSigned(outcomes: readonly SignatureOutcome[]): string {
  return outcomes.map(outcome => outcome.ref).join(', ')
}
