// The runner's side of a step, as the action uses it: inputs, outputs, state, the log's
// workflow commands, the job summary. The same functions, names and file formats as
// @actions/core (v3), which this replaces in the action's own code for one reason: importing
// @actions/core evaluates @actions/http-client and undici for its OIDC helper, about 90 ms of
// every step's start (measured on Node 24), which is an eighth of an unchanged re-push. The
// protocol is GitHub's documented one ("Workflow commands for GitHub Actions"); the libraries
// the action loads lazily (@actions/cache, @actions/tool-cache) still use @actions/core.
import { randomUUID } from 'node:crypto'
import { appendFileSync, existsSync } from 'node:fs'
import { appendFile } from 'node:fs/promises'
import { EOL } from 'node:os'
import { delimiter } from 'node:path'

/** What @actions/core's toCommandValue makes of a value: strings as they are, the rest JSON. */
function commandValue(value: unknown): string {
  if (value === null || value === undefined) return ''
  return typeof value === 'string' ? value : JSON.stringify(value)
}

/** A workflow command's data: what would end the line or start an escape is escaped. */
export function escapeData(value: unknown): string {
  return commandValue(value).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A')
}

function issue(command: string, message: unknown = ''): void {
  process.stdout.write(`::${command}::${escapeData(message)}${EOL}`)
}

/** A line appended to one of the runner's files (GITHUB_OUTPUT, GITHUB_STATE, ...). */
function appendToFile(name: string, text: string): void {
  const file = process.env[`GITHUB_${name}`]
  if (!file) throw new Error(`Unable to find environment variable for file command ${name}`)
  if (!existsSync(file)) throw new Error(`Missing file at path: ${file}`)
  appendFileSync(file, `${text}${EOL}`, { encoding: 'utf8' })
}

/** `name<<delimiter` … `delimiter`, with a delimiter neither the name nor the value holds. */
export function keyValueMessage(name: string, value: unknown): string {
  const end = `ghadelimiter_${randomUUID()}`
  const text = commandValue(value)
  if (name.includes(end) || text.includes(end)) {
    throw new Error(`Unexpected input: the name or value contains the delimiter "${end}"`)
  }
  return `${name}<<${end}${EOL}${text}${EOL}${end}`
}

export interface InputOptions {
  required?: boolean
  trimWhitespace?: boolean
}

/** The input's value as the runner passes it (`INPUT_<NAME>`); '' when not given. */
export function getInput(name: string, options: InputOptions = {}): string {
  const value = process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? ''
  if (options.required && !value) throw new Error(`Input required and not supplied: ${name}`)
  return options.trimWhitespace === false ? value : value.trim()
}

export function setOutput(name: string, value: unknown): void {
  if (process.env.GITHUB_OUTPUT) appendToFile('OUTPUT', keyValueMessage(name, value))
  else process.stdout.write(`${EOL}::set-output name=${name}::${escapeData(value)}${EOL}`)
}

export function saveState(name: string, value: unknown): void {
  if (process.env.GITHUB_STATE) appendToFile('STATE', keyValueMessage(name, value))
  else issue(`save-state name=${name}`, value)
}

export function getState(name: string): string {
  return process.env[`STATE_${name}`] ?? ''
}

/** For this step (process.env) and the job's later steps (GITHUB_ENV). */
export function exportVariable(name: string, value: unknown): void {
  process.env[name] = commandValue(value)
  if (process.env.GITHUB_ENV) appendToFile('ENV', keyValueMessage(name, value))
  else issue(`set-env name=${name}`, value)
}

/** First on PATH, for this step and the job's later steps (GITHUB_PATH). */
export function addPath(path: string): void {
  if (process.env.GITHUB_PATH) appendToFile('PATH', path)
  else issue('add-path', path)
  process.env.PATH = `${path}${delimiter}${process.env.PATH ?? ''}`
}

/** The runner masks the value in every later line of the log. */
export function setSecret(secret: string): void {
  issue('add-mask', secret)
}

export function info(message: string): void {
  process.stdout.write(`${message}${EOL}`)
}

export function debug(message: string): void {
  issue('debug', message)
}

function annotationText(message: string | Error): string {
  return message instanceof Error ? message.toString() : message
}

export function notice(message: string | Error): void {
  issue('notice', annotationText(message))
}

export function warning(message: string | Error): void {
  issue('warning', annotationText(message))
}

export function error(message: string | Error): void {
  issue('error', annotationText(message))
}

/** The step fails (exit code 1) with this message as an error annotation. */
export function setFailed(message: string | Error): void {
  process.exitCode = 1
  error(message)
}

export function startGroup(name: string): void {
  issue('group', name)
}

export function endGroup(): void {
  issue('endgroup')
}

/** `fn` inside a collapsible group of the log, closed whatever it does. */
export async function group<T>(name: string, fn: () => Promise<T>): Promise<T> {
  startGroup(name)
  try {
    return await fn()
  } finally {
    endGroup()
  }
}

/** Markdown appended to the job summary (GITHUB_STEP_SUMMARY); nothing when there is none. */
export async function appendSummary(markdown: string): Promise<void> {
  const file = process.env.GITHUB_STEP_SUMMARY
  if (!file) return
  await appendFile(file, markdown, { encoding: 'utf8' })
}
