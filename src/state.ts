// Typed state from main to post: the keys live in one place (as in actions/setup-node).
import * as core from '@actions/core'

export enum StateKey {
  /** Set by main so that post knows main ran at all (a post after a crash has nothing to do). */
  MainRan = 'main-ran'
}

export function saveState(key: StateKey, value: string): void {
  core.saveState(key, value)
}

export function getState(key: StateKey): string | null {
  const value = core.getState(key)
  return value === '' ? null : value
}
