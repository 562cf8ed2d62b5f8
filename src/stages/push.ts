// The push stage: `docker push` every ref; every ref must end up at the same manifest digest.
import * as core from '@actions/core'
import { run } from '../exec.js'
import { parseReference, repositoryOf } from '../reference.js'

export interface PushOptions {
  refs: string[]
}

export interface PushResult {
  /** `sha256:` manifest digest, the same for every ref. */
  digest: string
  /** `<repository>@<digest>` of the first ref. */
  imageRef: string
  pushed: string[]
}

/** `v1: digest: sha256:... size: 528` -> the digest. */
export function parsePushDigest(stdout: string): string | null {
  return /digest:\s*(sha256:[a-f0-9]{64})/.exec(stdout)?.[1] ?? null
}

/** `<repository>@<digest>` for a full reference. */
export function imageRefFor(ref: string, digest: string): string {
  return `${repositoryOf(parseReference(ref))}@${digest}`
}

export async function pushImage(options: PushOptions): Promise<PushResult> {
  const digests = new Map<string, string>()
  for (const ref of options.refs) {
    const { stdout } = await run('docker', ['push', ref])
    const digest = parsePushDigest(stdout)
    if (!digest) throw new Error(`docker push ${ref} reported no digest:\n${stdout}`)
    digests.set(ref, digest)
    core.info(`Pushed ${ref} (${digest})`)
  }
  const distinct = [...new Set(digests.values())]
  if (distinct.length !== 1) {
    const list = [...digests].map(([ref, digest]) => `${ref} -> ${digest}`).join(', ')
    throw new Error(`the refs were pushed with different manifest digests: ${list}`)
  }
  const digest = distinct[0] as string
  const first = options.refs[0] as string
  return { digest, imageRef: imageRefFor(first, digest), pushed: [...digests.keys()] }
}
