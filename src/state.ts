// Typed state from main to post: the keys live in one place (as in actions/setup-node).
import * as core from './core.js'
import { StateKey } from './state-keys.js'

export { StateKey }

export function saveState(key: StateKey, value: string): void {
  core.saveState(key, value)
}

export function getState(key: StateKey): string | null {
  const value = core.getState(key)
  return value === '' ? null : value
}
