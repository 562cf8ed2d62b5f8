// Remote builders: the `builders` input's Nix machine lines, checked before anything runs, the
// nix.conf `builders` value made of them, and what a failed build's log says about them. Pure.
//
// A machine line (Nix's /etc/nix/machines format) has up to 8 whitespace-separated fields, `-`
// for "not given": URI, systems, SSH key file, max jobs, speed factor, supported features,
// mandatory features, the host's public key (base64 of its `.pub` line).

/** One machine line, as checked. */
export interface MachineLine {
  /** 1-based line number in the input, for messages. */
  line: number
  uri: string
  /** The fields as Nix reads them (`-` kept), field 3 not yet replaced. */
  fields: string[]
  /** Field 3 is `-` and `builder-ssh-key` is given: the key file goes there. */
  usesInputKey: boolean
}

/** Why a line is refused: names the line and the field, never quotes the line (it may hold a pasted key). */
export class MachineLineError extends Error {
  constructor(
    readonly line: number,
    reason: string
  ) {
    super(`line ${line}: ${reason}`)
    this.name = 'MachineLineError'
  }
}

export const MACHINE_FIELDS = [
  'URI',
  'systems',
  'SSH key file',
  'max jobs',
  'speed factor',
  'supported features',
  'mandatory features',
  'host public key'
] as const

const SYSTEM = /^[a-z0-9_]+-[a-z0-9_]+$/
const FEATURE = /^[A-Za-z0-9_.+-]+$/
// `[user@]host`: what follows ssh:// or ssh-ng:// (Nix passes it to ssh as it is).
const SSH_AUTHORITY =
  /^([A-Za-z0-9._+-]+@)?[A-Za-z0-9._-]+(:\d+)?$|^([A-Za-z0-9._+-]+@)?\[[0-9A-Fa-f:.]+\](:\d+)?$/
// The key types OpenSSH writes in a `.pub` line (field 8 decodes to one).
const PUBLIC_KEY_LINE =
  /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,2}( .*)?$/

/** The URIs that reach a builder over SSH: the host key must be pinned for these. */
export function isSshUri(uri: string): boolean {
  return uri.startsWith('ssh://') || uri.startsWith('ssh-ng://') || !uri.includes('://')
}

/**
 * The `builders` input's lines: blank lines and `#` comments skipped, each line checked.
 * `hasKey`: `builder-ssh-key` is given, so a `-` SSH key field means its file.
 */
export function parseMachineLines(text: string, hasKey: boolean): MachineLine[] {
  const machines: MachineLine[] = []
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const content = raw.replace(/#.*$/, '').trim()
    if (content === '') continue
    machines.push(parseMachineLine(content, index + 1, hasKey))
  }
  return machines
}

function parseMachineLine(content: string, line: number, hasKey: boolean): MachineLine {
  const fail = (reason: string): never => {
    throw new MachineLineError(line, reason)
  }
  if (/PRIVATE KEY/.test(content) || /^b3BlbnNzaC1rZXktdjE/.test(content)) {
    fail('looks like a private key: give the key in "builder-ssh-key", and "-" in field 3')
  }
  const fields = content.split(/\s+/)
  if (fields.length > MACHINE_FIELDS.length) {
    fail(
      `has ${fields.length} fields, a machine line at most ${MACHINE_FIELDS.length}: ` +
        `${MACHINE_FIELDS.join(', ')} (separated by white space, "-" for one not given)`
    )
  }
  const [uri = '', systems = '-', key = '-', maxJobs = '-', speed = '-', supported = '-'] = fields
  const [mandatory = '-', hostKey = '-'] = fields.slice(6)
  const field = (n: number, reason: string): never =>
    fail(`field ${n} (${MACHINE_FIELDS[n - 1]}) ${reason}`)

  checkUri(uri, field)
  if (systems !== '-') {
    for (const system of systems.split(',')) {
      if (!SYSTEM.test(system)) {
        field(2, 'is not a comma-separated list of Nix systems such as x86_64-linux,aarch64-linux')
      }
    }
  }
  if (key !== '-' && !key.startsWith('/')) {
    field(
      3,
      'is not an absolute path: give "-" for the "builder-ssh-key" input\'s key, or a file on the runner'
    )
  }
  if (maxJobs !== '-' && !/^\d+$/.test(maxJobs)) field(4, 'is not a whole number')
  if (speed !== '-' && !(/^\d+(\.\d+)?$/.test(speed) && Number(speed) > 0)) {
    field(5, 'is not a number greater than 0')
  }
  for (const [n, list] of [
    [6, supported],
    [7, mandatory]
  ] as const) {
    if (list !== '-' && !list.split(',').every(feature => FEATURE.test(feature))) {
      field(n, 'is not a comma-separated list of features such as kvm,big-parallel')
    }
  }
  if (isSshUri(uri)) checkHostKey(hostKey, field)
  else if (hostKey !== '-') checkHostKey(hostKey, field)
  return { line, uri, fields, usesInputKey: key === '-' && hasKey }
}

function checkUri(uri: string, field: (n: number, reason: string) => never): void {
  if (uri.startsWith('@')) {
    field(1, 'names a machines file: give the machine lines themselves, one per line')
  }
  const scheme = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/.exec(uri)
  if (scheme && scheme[1] !== 'ssh' && scheme[1] !== 'ssh-ng') {
    field(1, 'is not an ssh:// or ssh-ng:// URI (remote builders are reached over SSH)')
  }
  const authority = scheme ? (scheme[2] ?? '') : uri
  // Store parameters (`?remote-store=...`, `?remote-program=...`) are Nix's to read.
  const host = authority.replace(/\?.*$/, '')
  if (!SSH_AUTHORITY.test(host)) {
    field(1, 'is not a builder URI such as ssh://builder@host or ssh-ng://builder@host')
  }
}

function checkHostKey(hostKey: string, field: (n: number, reason: string) => never): void {
  const how =
    "the base64 of the host's public key line, as `base64 -w0 /etc/ssh/ssh_host_ed25519_key.pub` " +
    'prints it on the builder (or of `ssh-keyscan -t ed25519 HOST` without the host name)'
  if (hostKey === '-') {
    field(
      8,
      `is missing: the builder's host key must be pinned (an SSH builder is never trusted on ` +
        `first use): give ${how}`
    )
  }
  if (hostKey.startsWith('AAAA')) {
    field(8, `is the key itself, not its whole line: give ${how}`)
  }
  const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(hostKey)
    ? Buffer.from(hostKey, 'base64').toString('utf8').trim()
    : ''
  if (!PUBLIC_KEY_LINE.test(decoded)) {
    field(8, `is not an SSH public host key: give ${how}`)
  }
}

/**
 * The nix.conf `builders` value: the lines joined with `;` (one conf line), a `-` SSH key field
 * replaced by `keyFile` where the line takes the input's key.
 */
export function buildersSetting(machines: readonly MachineLine[], keyFile: string | null): string {
  return machines
    .map(machine => {
      const fields = [...machine.fields]
      if (machine.usesInputKey && keyFile !== null) {
        while (fields.length < 3) fields.push('-')
        fields[2] = keyFile
      }
      return fields.join(' ')
    })
    .join(' ; ')
}

/** What Nix said about one builder it could not use. */
export interface BuilderFailure {
  uri: string
  said: string
}

// build-remote's "cannot build on 'URI': <error>", up to the next message of its own.
const CANNOT_BUILD =
  /^cannot build on '([^']+)': ([\s\S]*?)(?=^cannot build on '|^Failed to find a machine|^error:|(?![\s\S]))/gm
const HOST_KEY_CHANGED = /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/

/** Each builder Nix gave up on in this log, with what it said (one per builder, last kept). */
export function builderFailures(log: string): BuilderFailure[] {
  const found = new Map<string, string>()
  for (const match of log.matchAll(CANNOT_BUILD)) {
    const uri = match[1] ?? ''
    const said = (match[2] ?? '').trim()
    found.set(uri, summarise(said))
  }
  // Nix 2.8 prints ssh's own complaint on a line of its own, before any "cannot build on".
  if (found.size === 0 && /^Host key verification failed\.$/m.test(log)) {
    found.set('', 'Host key verification failed.')
  }
  return [...found].map(([uri, said]) => ({ uri, said }))
}

/** ssh's host key banner is twenty lines: say what it means, keep the rest short. */
function summarise(said: string): string {
  if (HOST_KEY_CHANGED.test(said)) {
    const head = said.split('\n')[0]?.replace(/@+$/, '').trim() ?? ''
    return `${head} the host key the builder offered is not the one in field 8 of its line (Host key verification failed)`
  }
  return said.split('\n').slice(0, 6).join('\n')
}

const UNTRUSTED = /ignoring the client-specified setting 'builders'/

/** The daemon dropped our `builders` setting: the runner user is not a trusted user. */
export function daemonIgnoredBuilders(log: string): boolean {
  return UNTRUSTED.test(log)
}

/** Why a daemon ignores `builders`, and the ways out. */
export function untrustedDaemonMessage(user: string): string {
  return (
    `the Nix daemon does not trust ${user}, so it ignores the builders this job sets ` +
    "(only trusted users may set them): add the user to trusted-users in the daemon's " +
    'nix.conf (cachix/install-nix-action and DeterminateSystems/nix-installer-action do so by ' +
    "default), or configure the machines in the daemon's own nix.conf (builders) and leave " +
    'the "builders" input empty'
  )
}

// Nix saw no machine at all: with `builders` given, a daemon dropped them (Nix 2.8's without a
// word: it has no warning and no `trusted` in `nix store ping`).
const NO_BUILDERS =
  /unable to start any build;\s*either increase '--max-jobs' or enable remote builds/i

/** The error a failed build gets when its log says a builder could not be used; null otherwise. */
export function builderFailureMessage(log: string, user: string): string | null {
  if (daemonIgnoredBuilders(log)) return untrustedDaemonMessage(user)
  if (NO_BUILDERS.test(log)) {
    return (
      'Nix had no remote builder to use and may not build here (--max-jobs 0). If "builders" ' +
      `is set, ${untrustedDaemonMessage(user)}; otherwise give "builders" or drop --max-jobs 0`
    )
  }
  const failures = builderFailures(log)
  if (failures.length === 0) return null
  return failures
    .map(({ uri, said }) =>
      uri === ''
        ? `a remote builder could not be used: ${said}`
        : `remote builder ${uri} could not be used: ${said}`
    )
    .join('\n')
}
