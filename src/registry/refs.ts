// Turning `tags`, `merge` and `reuse-from` entries into full references, with one rule for
// which entries are references already (isFullReference). The grammar is in reference.ts.
import { errorMessage } from '../errors.js'
import {
  checkNameLength,
  formatReference,
  parseReference,
  quote,
  repositoryOf,
  validateRegistry,
  validateTag
} from './reference.js'
import type { ParsedReference } from './reference.js'

export interface ResolveOptions {
  /** Input `image`: a repository, with or without a domain; never a tag or digest. */
  image: string | null
  /** Input `registry`: a host with optional port, prefixed to repositories without a domain. */
  registry: string | null
  /** Input `tags` entries, already split and trimmed; may be empty. */
  tags: string[]
  /** First RepoTag of the built archive, e.g. 'hello:latest': the default image and tag. */
  archiveRepoTag: string | null
}

export interface ResolvedRefs {
  refs: string[]
  notices: string[]
}

const DEFAULT_TAG = 'latest'
const ARCHIVE_LABEL = 'image from the built archive'

/**
 * The one rule: an entry containing `/` or `:` is a full reference (perhaps by digest, whose
 * `sha256:` has the colon); anything else is a tag of the image. So the `tags` output of
 * docker/metadata-action plugs straight in.
 */
export function isFullReference(entry: string): boolean {
  return entry.includes('/') || entry.includes(':')
}

/** A reference without a domain gets `registry` (the `registry` input), when there is one. */
function inRegistry(ref: ParsedReference, registry: string | null): ParsedReference {
  return ref.domain === null && registry !== null ? { ...ref, domain: registry } : ref
}

/** Runs a validation and prefixes its error with which value failed. */
function labelled<T>(label: string, value: string, parse: () => T): T {
  try {
    return parse()
  } catch (error) {
    const reason = errorMessage(error)
    throw new Error(`invalid ${label} ${quote(value)}: ${reason}`)
  }
}

function lowercaseNotice(label: string, value: string, ref: ParsedReference): string {
  return (
    `${label} ${quote(value)} lower-cased to ${quote(formatReference(ref))} ` +
    '(repository paths must be lowercase)'
  )
}

/** Parses a value that names a repository to tag, recording a notice if it was lower-cased. */
function parseRepository(label: string, value: string, notices: string[]): ParsedReference {
  const ref = labelled(label, value, () => parseReference(value))
  if (ref.digest !== null) {
    throw new Error(
      `invalid ${label} ${quote(value)}: a digest reference cannot be tagged or pushed to; remove "@${ref.digest}"`
    )
  }
  if (ref.lowercased) notices.push(lowercaseNotice(label, value, ref))
  return ref
}

function parseImage(value: string, notices: string[]): ParsedReference {
  const ref = parseRepository('image', value, notices)
  if (ref.tag !== null) {
    // 'localhost:5000' parses as repository 'localhost' with tag '5000': most likely a registry.
    const hint =
      ref.domain === null && !ref.path.includes('/') && /^[0-9]+$/.test(ref.tag)
        ? '; if this is a registry host, use registry'
        : ''
    throw new Error(
      `invalid image ${quote(value)}: image must not have a tag; use tags (e.g. tags: ${ref.tag})${hint}`
    )
  }
  return ref
}

/** Where the image repository and default tag come from when the inputs leave them out. */
interface Defaults {
  repository: ParsedReference | null
  tag: string
}

function defaultsFrom(o: ResolveOptions, notices: string[]): Defaults {
  const image = o.image === null ? null : parseImage(o.image, notices)
  // The archive is read only when something is taken from it, so a RepoTag nobody uses cannot
  // fail the step, and its lower-casing is noticed only when its repository is used.
  const needRepository = image === null && (o.tags.length === 0 || !o.tags.every(isFullReference))
  const needArchive = needRepository || o.tags.length === 0
  const archive =
    needArchive && o.archiveRepoTag !== null
      ? parseRepository(ARCHIVE_LABEL, o.archiveRepoTag, needRepository ? notices : [])
      : null
  const repository = image ?? (archive === null ? null : { ...archive, tag: null })
  return { repository, tag: archive?.tag ?? DEFAULT_TAG }
}

function noImageError(what: string): Error {
  return new Error(
    `${what}, but there is no image to tag: set image (e.g. ghcr.io/owner/app), ` +
      'or give tags as full references (e.g. ghcr.io/owner/app:v1); the built archive names no image'
  )
}

/** A full reference as it is (`latest` when it has no tag); a bare tag of the image. */
function targetOf(entry: string, defaults: Defaults, notices: string[]): ParsedReference {
  if (isFullReference(entry)) {
    const ref = parseRepository('tags entry', entry, notices)
    // As `docker tag img repo` does, a reference without a tag means 'latest'.
    return { ...ref, tag: ref.tag ?? DEFAULT_TAG }
  }
  labelled('tags entry', entry, () => validateTag(entry))
  if (defaults.repository === null) throw noImageError(`tags entry ${quote(entry)} is a bare tag`)
  return { ...defaults.repository, tag: entry }
}

function withRegistry(ref: ParsedReference, registry: string | null): ParsedReference {
  const prefixed = inRegistry(ref, registry)
  labelled('reference', formatReference(prefixed), () => checkNameLength(prefixed))
  return prefixed
}

function unique(values: string[]): string[] {
  return [...new Set(values)]
}

/**
 * Compute every full reference to tag and push, in order, without duplicates.
 * Throws Error (message says which value is wrong and why).
 */
export function resolveRefs(o: ResolveOptions): ResolvedRefs {
  const { registry } = o
  if (registry !== null) labelled('registry', registry, () => validateRegistry(registry))
  const notices: string[] = []
  const entries = o.tags.filter(entry => entry !== '')
  const defaults = defaultsFrom({ ...o, tags: entries }, notices)
  let targets: ParsedReference[]
  if (entries.length > 0) {
    targets = entries.map(entry => targetOf(entry, defaults, notices))
  } else if (defaults.repository !== null) {
    targets = [{ ...defaults.repository, tag: defaults.tag }]
  } else {
    throw noImageError('tags is empty')
  }
  const refs = targets.map(target => formatReference(withRegistry(target, registry)))
  return { refs: unique(refs), notices: unique(notices) }
}

/**
 * A `merge` entry as a full reference: a bare tag is a tag of `image`, a reference without
 * a registry gets `registry` (pure, for tests).
 */
export function resolveMergeRef(
  entry: string,
  image: string | null,
  registry: string | null
): string {
  const isFull = isFullReference(entry)
  if (!isFull && image === null) {
    throw new Error(`merge entry ${JSON.stringify(entry)} is a tag, but "image" is not set`)
  }
  const ref = inRegistry(parseReference(isFull ? entry : `${image}:${entry}`), registry)
  if (ref.domain === null) {
    throw new Error(
      `merge entry ${JSON.stringify(entry)} names no registry: write it as ` +
        'registry/repository:tag (or @sha256:...) or set "registry"'
    )
  }
  return formatReference(ref)
}

/**
 * `reuse-from` entries as full references (pure, for tests): a bare tag names a tag of the
 * first ref's repository; a reference without a registry gets `registry`, as `tags` entries do.
 */
export function resolveReuseFrom(
  entries: readonly string[],
  firstRef: string,
  registry: string | null
): string[] {
  const resolved = entries.map(entry =>
    isFullReference(entry)
      ? formatReference(inRegistry(parseReference(entry), registry))
      : `${repositoryOf(parseReference(firstRef))}:${entry}`
  )
  return unique(resolved)
}
