#!/usr/bin/env node
// runAction (run-action.mjs) for a caller in another process, e.g. one inside a private mount
// namespace: reads the RunOptions as JSON from the file OPTIONS and writes the RunResult as
// JSON to the file RESULT. Usage: node scripts/run-action-json.mjs OPTIONS RESULT
import fs from 'node:fs'
import process from 'node:process'
import { runAction } from './run-action.mjs'

const [optionsFile, resultFile] = process.argv.slice(2)
if (!optionsFile || !resultFile) {
  process.stderr.write('usage: node scripts/run-action-json.mjs OPTIONS RESULT\n')
  process.exit(2)
}
const result = await runAction(JSON.parse(fs.readFileSync(optionsFile, 'utf8')))
fs.writeFileSync(resultFile, JSON.stringify(result))
