/**
 * Image reference grammar, after github.com/distribution/reference (regexp.go):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component { "/" path-component }   (at most 255 characters)
 *   domain    := host [ ":" port ]
 *   host      := domain-component { "." domain-component } | "[" ipv6 "]"
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag       := [\w][\w.-]{0,127}
 *
 * It is parsed in steps rather than with one regular expression so that an error can say which
 * part is wrong. Where this module chooses something the grammar leaves open:
 * - Domain detection follows docker's splitDockerDomain: the first "/"-separated component is a
 *   domain when it contains "." or ":" or is "localhost" (any case: host names are
 *   case-insensitive). Unlike docker, a first component that merely has capitals ("Owner/app")
 *   is NOT a domain: paths are lower-cased here, and `${{ github.repository }}` is a path.
 * - IPv6 hosts in brackets ("[::1]:5000/app") are accepted, as the current grammar does.
 * - Ports must be 1-65535 (the grammar accepts any digits; no registry listens on port 0).
 * - Digests must be sha256 with 64 lowercase hex digits (what registries use and go-digest checks).
 * - Nothing is normalised to docker.io/library: a reference stays as the user wrote it.
 */

export interface ParsedReference {
  /** Registry host with optional :port, null when the reference has none. */
  domain: string | null
  /** Repository path, lower-cased, e.g. 'owner/app'. */
  path: string
  tag: string | null
  /** 'sha256:<64 hex>' when '@digest' was given. */
  digest: string | null
  /** True when the path had capitals and was lower-cased. */
  lowercased: boolean
}

const TAG_MAX = 128
const NAME_MAX = 255

// Characters that can appear anywhere in a reference; everything else (whitespace, quotes, shell
// metacharacters, non-ASCII) is rejected up front with the offending character named.
const REFERENCE_CHAR = /^[A-Za-z0-9._\-/:@[\]]$/
const TAG_CHAR = /^[\w.-]$/
const PATH_SEPARATOR = /^(?:[._]|__|-+)$/
const DOMAIN_COMPONENT_CHAR = /^[A-Za-z0-9-]$/
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/
const SHA256_HEX = /^[a-f0-9]{64}$/

/** JSON quoting shows control characters and quotes unambiguously. */
export function quote(value: string): string {
  return JSON.stringify(value)
}

/** Long values are cut so a length error stays readable. */
function quoteShort(value: string): string {
  return value.length > 40 ? quote(`${value.slice(0, 32)}...`) : quote(value)
}

/** Throws on the first character that `allowed` does not match, naming it. */
function checkCharacters(value: string, allowed: RegExp, what: string): void {
  for (const char of value) {
    if (allowed.test(char)) continue
    if (/\s/.test(char)) throw new Error(`${what} contains whitespace`)
    throw new Error(`${what} contains invalid character ${quote(char)}`)
  }
}

/** Docker's rule for whether the first path component names a registry host. */
function looksLikeDomain(component: string): boolean {
  return (
    component.includes('.') || component.includes(':') || component.toLowerCase() === 'localhost'
  )
}

/** Splits 'host:port' (or '[v6]:port'); the port is null when absent. */
function splitPort(domain: string): { host: string; port: string | null } {
  if (domain.startsWith('[')) {
    const close = domain.indexOf(']')
    if (close === -1) throw new Error(`domain ${quote(domain)} has "[" without a closing "]"`)
    const host = domain.slice(0, close + 1)
    const rest = domain.slice(close + 1)
    if (rest === '') return { host, port: null }
    if (!rest.startsWith(':')) {
      throw new Error(`domain ${quote(domain)} has ${quote(rest)} after "]"; expected ":port"`)
    }
    return { host, port: rest.slice(1) }
  }
  const colon = domain.indexOf(':')
  if (colon === -1) return { host: domain, port: null }
  return { host: domain.slice(0, colon), port: domain.slice(colon + 1) }
}

function validateHost(host: string, domain: string): void {
  if (host.startsWith('[')) {
    if (!IPV6_HOST.test(host)) {
      throw new Error(`domain ${quote(domain)} has an invalid IPv6 address ${quote(host)}`)
    }
    return
  }
  if (host === '') throw new Error(`domain ${quote(domain)} has an empty host name`)
  for (const component of host.split('.')) {
    if (component === '') {
      throw new Error(`domain ${quote(domain)} has an empty component (leading, trailing or "..")`)
    }
    checkCharacters(component, DOMAIN_COMPONENT_CHAR, `domain ${quote(domain)}`)
    if (component.startsWith('-') || component.endsWith('-')) {
      throw new Error(`domain component ${quote(component)} must not start or end with "-"`)
    }
  }
}

function validatePort(port: string, domain: string): void {
  if (port === '') throw new Error(`domain ${quote(domain)} has an empty port after ":"`)
  if (!/^[0-9]+$/.test(port)) throw new Error(`port ${quote(port)} must be digits`)
  const number = Number(port)
  if (number < 1 || number > 65535) throw new Error(`port ${port} is out of range (1-65535)`)
}

/** Validates a registry host with optional port, as found before the first '/'. */
function validateDomain(domain: string): void {
  const { host, port } = splitPort(domain)
  validateHost(host, domain)
  if (port !== null) validatePort(port, domain)
}

function validatePathComponent(component: string): void {
  if (component.includes(':')) {
    throw new Error(
      `path component ${quote(component)} contains ":"; only one ":tag" is allowed, after the last "/"`
    )
  }
  checkCharacters(component, /^[a-z0-9._-]$/, `path component ${quote(component)}`)
  if (!/^[a-z0-9]/.test(component) || !/[a-z0-9]$/.test(component)) {
    throw new Error(`path component ${quote(component)} must start and end with a letter or digit`)
  }
  // Runs of separators between alphanumerics: only '.', '_', '__' or any number of '-'.
  for (const separator of component.match(/[._-]+/g) ?? []) {
    if (!PATH_SEPARATOR.test(separator)) {
      throw new Error(
        `path component ${quote(component)} has invalid separator ${quote(separator)} ` +
          '(allowed: ".", "_", "__" or one or more "-")'
      )
    }
  }
}

/** Validates an already lower-cased repository path. */
function validatePath(path: string): void {
  if (path === '') throw new Error('repository path is empty')
  const components = path.split('/')
  if (components[0] === '') throw new Error(`repository path ${quote(path)} starts with "/"`)
  if (components[components.length - 1] === '') {
    throw new Error(`repository path ${quote(path)} ends with "/"`)
  }
  for (const component of components) {
    if (component === '')
      throw new Error(`repository path ${quote(path)} has an empty component ("//")`)
    validatePathComponent(component)
  }
}

function validateDigest(digest: string): void {
  if (digest === '') throw new Error('digest after "@" is empty')
  if (digest.includes('@')) throw new Error('reference has more than one "@"')
  const colon = digest.indexOf(':')
  if (colon === -1) {
    throw new Error(
      `digest ${quoteShort(digest)} has no algorithm; expected "sha256:<64 hex digits>"`
    )
  }
  const algorithm = digest.slice(0, colon)
  if (algorithm !== 'sha256') {
    throw new Error(`digest algorithm ${quote(algorithm)} is not supported (only sha256)`)
  }
  const hex = digest.slice(colon + 1)
  if (!SHA256_HEX.test(hex)) {
    throw new Error(
      `digest ${quoteShort(digest)} must have 64 lowercase hex digits after "sha256:" (got ${hex.length} characters)`
    )
  }
}

/** Validate a bare tag; throws Error with the reason. */
export function validateTag(tag: string): void {
  if (tag === '') throw new Error('tag is empty')
  checkCharacters(tag, TAG_CHAR, `tag ${quoteShort(tag)}`)
  if (!/^\w/.test(tag)) {
    throw new Error(`tag ${quoteShort(tag)} must start with a letter, digit or "_"`)
  }
  if (tag.length > TAG_MAX) {
    throw new Error(`tag ${quoteShort(tag)} is longer than ${TAG_MAX} characters (${tag.length})`)
  }
}

/** Splits off ':tag' only when that ':' comes after the last '/' (else it is a port). */
function splitTag(nameAndTag: string): { name: string; tag: string | null } {
  const colon = nameAndTag.lastIndexOf(':')
  if (colon === -1 || colon < nameAndTag.lastIndexOf('/')) return { name: nameAndTag, tag: null }
  return { name: nameAndTag.slice(0, colon), tag: nameAndTag.slice(colon + 1) }
}

function splitDomain(name: string): { domain: string | null; remainder: string } {
  const slash = name.indexOf('/')
  if (slash === -1 || !looksLikeDomain(name.slice(0, slash)))
    return { domain: null, remainder: name }
  return { domain: name.slice(0, slash), remainder: name.slice(slash + 1) }
}

/** 'domain/path' or 'path' */
export function repositoryOf(ref: ParsedReference): string {
  return ref.domain === null ? ref.path : `${ref.domain}/${ref.path}`
}

/** Render back: repository + (':' + tag) + ('@' + digest) */
export function formatReference(ref: ParsedReference): string {
  const tag = ref.tag === null ? '' : `:${ref.tag}`
  const digest = ref.digest === null ? '' : `@${ref.digest}`
  return `${repositoryOf(ref)}${tag}${digest}`
}

/** Throws when the repository name (domain included) is longer than the grammar allows. */
export function checkNameLength(ref: ParsedReference): void {
  const name = repositoryOf(ref)
  if (name.length > NAME_MAX) {
    throw new Error(
      `repository name ${quoteShort(name)} is longer than ${NAME_MAX} characters (${name.length})`
    )
  }
}

/**
 * Parse and validate an image reference (docker/distribution grammar). Throws Error whose
 * message says why (no input name in it), e.g. `tag "x..." is longer than 128 characters`.
 */
export function parseReference(value: string): ParsedReference {
  if (value === '') throw new Error('reference is empty')
  checkCharacters(value, REFERENCE_CHAR, 'reference')
  const at = value.indexOf('@')
  const digest = at === -1 ? null : value.slice(at + 1)
  const { name, tag } = splitTag(at === -1 ? value : value.slice(0, at))
  const { domain, remainder } = splitDomain(name)
  const path = remainder.toLowerCase()
  // Left to right, so the first error reported is the first one in the value.
  if (domain !== null) validateDomain(domain)
  validatePath(path)
  const ref: ParsedReference = { domain, path, tag, digest, lowercased: path !== remainder }
  checkNameLength(ref)
  if (tag !== null) validateTag(tag)
  if (digest !== null) validateDigest(digest)
  return ref
}

/**
 * Validate a registry host value ('ghcr.io', '127.0.0.1:5000', 'localhost',
 * 'my-reg.example.com:443'); throws with the reason.
 */
export function validateRegistry(value: string): void {
  if (value === '') throw new Error('registry host is empty')
  if (value.includes('://')) {
    throw new Error('must be a host such as ghcr.io, without a scheme like "https://"')
  }
  if (value.includes('/')) {
    throw new Error(
      'must be a host such as ghcr.io, without a path; put the repository path in image'
    )
  }
  checkCharacters(value, REFERENCE_CHAR, 'registry host')
  validateDomain(value)
  // Prefixed to a path, a dotless host would be read by docker as the path's first component.
  if (!looksLikeDomain(value)) {
    throw new Error(
      `${quote(value)} would be read as a repository path, not a host: ` +
        `use a name with a dot, a port (${value}:5000) or localhost`
    )
  }
}

// Docker treats 127.0.0.0/8 as an insecure registry (plain HTTP allowed); skopeo needs to be
// told, and only loopback gets that treatment here too.
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i

export function isLoopbackHost(registry: string): boolean {
  return LOOPBACK_HOST.test(registry)
}
