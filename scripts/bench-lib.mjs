// What every benchmark script needs: its options, a command's output, a timer, the median.
import { execFileSync } from 'node:child_process'
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
