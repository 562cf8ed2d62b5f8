// The store cache's signatures: a save signs each path it writes with `cache-signing-key`
// (recorded in the manifest, beside the registration); a restore with `cache-trusted-keys`
// takes an entry only when every one of its paths carries a valid signature by one of them;
// the signatures then go into Nix's database with the paths (a narinfo per path, which
// `nix store copy-sigs` reads), so that a daemon with `require-sigs` accepts them.
import { mkdir, writeFile } from 'node:fs/promises'
import { basename, join } from 'node:path'
import { batches, runNix } from '../nix/command.js'
import {
  encodeNix32,
  signatureKeyName,
  signPath,
  verifyPath,
  verifyPathInPool
} from '../signing/nix-key.js'
import type { NixPublicKey, NixSecretKey } from '../signing/nix-key.js'
import { isDerivation } from './nix-store.js'
import type { Registration } from './store-archive.js'

/** A registration and the signatures its entry recorded for it. */
export interface SignedRegistration extends Registration {
  signatures: string[]
}

/** Each path's signature by `key`, by path (pure). */
export function signRegistrations(
  key: NixSecretKey,
  registrations: readonly Registration[]
): Record<string, string[]> {
  const signatures: Record<string, string[]> = {}
  for (const r of registrations) signatures[r.path] = [signPath(key, r)]
  return signatures
}

/** The signatures of `path` a manifest recorded (none when it recorded none). */
export function signaturesOf(
  signatures: Readonly<Record<string, string[]>> | undefined,
  path: string
): string[] {
  const found = signatures && Object.hasOwn(signatures, path) ? signatures[path] : undefined
  return found ?? []
}

/**
 * Why the entry may not be restored, naming the first path that is not signed by a trusted key
 * and the key(s) it is signed by; null when every path is (pure).
 */
export function untrustedPath(
  entries: readonly SignedRegistration[],
  trusted: readonly NixPublicKey[]
): string | null {
  const names = trusted.map(k => k.name).join(', ')
  for (const entry of entries) {
    if (verifyPath(entry, entry.signatures, trusted)) continue
    if (entry.signatures.length === 0) {
      return `${entry.path} is not signed (trusted keys: ${names})`
    }
    const by = [...new Set(entry.signatures.map(s => signatureKeyName(s) || '(unreadable)'))]
    const claims = by.some(name => trusted.some(k => k.name === name))
      ? 'whose signature does not verify'
      : 'not by a trusted key'
    return `${entry.path} is signed by key ${by.map(n => JSON.stringify(n)).join(', ')}, ${claims} (trusted keys: ${names})`
  }
  return null
}

/** untrustedPath, with every path's signatures checked at once on all cores. */
export async function firstUntrustedPath(
  entries: readonly SignedRegistration[],
  trusted: readonly NixPublicKey[]
): Promise<string | null> {
  const verified = await Promise.all(entries.map(e => verifyPathInPool(e, e.signatures, trusted)))
  const first = verified.indexOf(false)
  return first === -1 ? null : untrustedPath([entries[first] as SignedRegistration], trusted)
}

/** A narinfo that holds what `nix store copy-sigs` reads of a path: its hash, size, signatures. */
export function narinfo(entry: SignedRegistration): string {
  return [
    `StorePath: ${entry.path}`,
    // Never fetched: copy-sigs reads the path's info only.
    `URL: nar/${basename(entry.path)}.nar`,
    'Compression: none',
    `NarHash: sha256:${encodeNix32(Buffer.from(entry.narHash, 'hex'))}`,
    `NarSize: ${entry.narSize}`,
    `References: ${entry.references.map(r => basename(r)).join(' ')}`,
    ...entry.signatures.map(sig => `Sig: ${sig}`),
    ''
  ].join('\n')
}

/**
 * Add the recorded signatures of these (valid) paths to the store's database: a local binary
 * cache of narinfos only under `dir`, from which `nix store copy-sigs` copies them (it checks
 * that each narinfo's NAR hash is the path's). `store`: a store URI, or null for the default.
 */
export async function addSignatures(
  dir: string,
  storeDir: string,
  entries: readonly SignedRegistration[],
  store: string | null
): Promise<number> {
  const signed = entries.filter(e => e.signatures.length > 0)
  if (signed.length === 0) return 0
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, 'nix-cache-info'), `StoreDir: ${storeDir}\n`)
  await Promise.all(
    signed.map(e => writeFile(join(dir, `${basename(e.path).slice(0, 32)}.narinfo`), narinfo(e)))
  )
  const storeArgs = store === null ? [] : ['--store', store]
  const paths = signed.map(e => e.path)
  // A `.drv` stands for its outputs unless `--derivation` is given, and with `--derivation`
  // other paths are left out (Nix 2.8): two calls.
  for (const [group, extra] of [
    [paths.filter(p => !isDerivation(p)), []],
    [paths.filter(isDerivation), ['--derivation']]
  ] as const) {
    for (const batch of batches(group)) {
      await runNix(
        ['store', 'copy-sigs', ...storeArgs, ...extra, '--substituter', `file://${dir}`, ...batch],
        { silent: true }
      )
    }
  }
  return signed.length
}
