// The `builder-ssh-key` input: checked as an SSH private key ssh can use without a prompt, then
// written 0600 under RUNNER_TEMP (never argv, never a log), where Nix's ssh reads it: the
// runner's ssh for a store it owns, the daemon's (root's) for a daemon store. The post step
// removes it.
import { chmod, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Why a key is refused; never quotes the key. */
export class BuilderKeyError extends Error {
  constructor(reason: string) {
    super(reason)
    this.name = 'BuilderKeyError'
  }
}

const PEM =
  /^-----BEGIN ((?:OPENSSH|RSA|EC|DSA) )?PRIVATE KEY-----\n([\s\S]*?)\n-----END \1?PRIVATE KEY-----$/

/** The key as ssh wants the file: LF line ends, one final newline (OpenSSH refuses a key without). */
export function normalizeKey(text: string): string {
  return text.replace(/\r\n?/g, '\n').trim() + '\n'
}

/** Throws BuilderKeyError unless `text` is an unencrypted SSH private key (OpenSSH or PEM). */
export function checkBuilderKey(text: string): void {
  const key = normalizeKey(text).trimEnd()
  const match = PEM.exec(key)
  if (!match) {
    throw new BuilderKeyError(
      'is not an SSH private key: give the whole file ssh-keygen wrote (-----BEGIN OPENSSH PRIVATE KEY----- ...)'
    )
  }
  const body = match[2] ?? ''
  const encrypted =
    match[1] === 'OPENSSH ' ? openSshCipher(body) !== 'none' : /^Proc-Type: 4,ENCRYPTED/m.test(body)
  if (encrypted) {
    throw new BuilderKeyError(
      'is encrypted with a passphrase, which ssh cannot ask for in a job: give a key without one ' +
        '(ssh-keygen -N "")'
    )
  }
}

/** The cipher named in an `openssh-key-v1` key ("none" when unencrypted); null if unreadable. */
function openSshCipher(body: string): string | null {
  const data = Buffer.from(body.replace(/\s+/g, ''), 'base64')
  const magic = 'openssh-key-v1\0'
  if (data.subarray(0, magic.length).toString('latin1') !== magic) return null
  if (data.length < magic.length + 4) return null
  const length = data.readUInt32BE(magic.length)
  const start = magic.length + 4
  return data.subarray(start, start + length).toString('latin1')
}

/** Where the key goes: beside the job's nix.conf, in the action's folder of RUNNER_TEMP. */
export function builderKeyPath(actionDir: string): string {
  return join(actionDir, 'builder-ssh-key')
}

/** Write the key 0600 (the mode set before the key is written: the file may be there already). */
export async function writeBuilderKey(file: string, key: string): Promise<void> {
  await writeFile(file, '', { mode: 0o600 })
  await chmod(file, 0o600)
  await writeFile(file, normalizeKey(key))
}

/** Remove the key file (post step); a file that is not there is fine. */
export async function removeBuilderKey(file: string): Promise<boolean> {
  try {
    await rm(file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
    throw error
  }
}
