// What every benchmark script needs: its options, a command's output, a timer, the median, a job
// summary's seconds, a Nix key pair.
import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import process from 'node:process'

/** `--name value` from the command line, or the fallback. */
export function option(name, fallback) {
  const index = process.argv.indexOf(`--${name}`)
  return index === -1 ? fallback : process.argv[index + 1]
}

/** A command's stdout, trimmed; throws when it fails. */
export function sh(command, args, options = {}) {
  return (execFileSync(command, args, { encoding: 'utf8', ...options }) ?? '').trim()
}

/** Seconds `work` took (it may return a promise). */
export async function seconds(work) {
  const started = process.hrtime.bigint()
  await work()
  return Number(process.hrtime.bigint() - started) / 1e9
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}

/** The Seconds column of a job summary row. */
export function summarySeconds(summary, row) {
  const match = new RegExp(`^\\| ${row} \\|.*\\| ([0-9.]+) \\|$`, 'm').exec(summary)
  if (!match) throw new Error(`bench: no "${row}" row in the job summary:\n${summary}`)
  return Number(match[1])
}

/** A Nix key pair as `nix key generate-secret` / `convert-secret-to-public` print them. */
export function nixKey(name) {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const d = Buffer.from(privateKey.export({ format: 'jwk' }).d, 'base64url')
  const x = Buffer.from(publicKey.export({ format: 'jwk' }).x, 'base64url')
  return {
    secret: `${name}:${Buffer.concat([d, x]).toString('base64')}`,
    public: `${name}:${x.toString('base64')}`
  }
}
