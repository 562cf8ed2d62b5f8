// Which image an SBOM is about, from the refs it was tagged with and the pushed digest (pure).
import { parseReference, repositoryOf } from '../registry/reference.js'
import { storePathName } from './drv-name.js'
import type { ImageSubject } from './cyclonedx.js'

export function imageSubject(
  refs: readonly string[],
  digest: string | null,
  storePath: string
): ImageSubject {
  const first = refs[0]
  if (first === undefined) {
    const name = storePathName(storePath)
    return { name, version: digest ?? '', bomRef: storePath, storePath }
  }
  const parsed = parseReference(first)
  const name = repositoryOf(parsed)
  if (digest !== null) return { name, version: digest, bomRef: `${name}@${digest}`, storePath }
  const tag = parsed.tag ?? 'latest'
  return { name, version: tag, bomRef: `${name}:${tag}`, storePath }
}
