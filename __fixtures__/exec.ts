// A typed jest mock of src/exec.ts: stage tests script what each command returns.
import { jest } from '@jest/globals'
import type * as exec from '../src/exec.js'

export const run = jest.fn<typeof exec.run>()
export const runWithStdin = jest.fn<typeof exec.runWithStdin>()
export const spawnProducer = jest.fn<typeof exec.spawnProducer>()
