// Typed jest mocks of the src/core.ts functions the stages use.
import { jest } from '@jest/globals'
import type * as core from '../src/core.js'

export const info = jest.fn<typeof core.info>()
export const warning = jest.fn<typeof core.warning>()
export const notice = jest.fn<typeof core.notice>()
export const debug = jest.fn<typeof core.debug>()
export const setSecret = jest.fn<typeof core.setSecret>()
export const setOutput = jest.fn<typeof core.setOutput>()
export const addPath = jest.fn<typeof core.addPath>()
export const group = jest.fn(async <T>(_name: string, work: () => Promise<T>): Promise<T> => work())
