// The README's input and output tables must say what action.yml declares.
import { describe, expect, test } from '@jest/globals'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'

interface ActionYaml {
  inputs: Record<string, { description: string; default?: string }>
  outputs: Record<string, { description: string }>
}

const action = parse(readFileSync('action.yml', 'utf8')) as ActionYaml
const readme = readFileSync('README.md', 'utf8')

/** The rows of the markdown table between `<!-- NAME:start` and `<!-- NAME:end -->`. */
function tableRows(name: string): string[][] {
  const section = new RegExp(`<!-- ${name}:start[^\\n]*\\n([\\s\\S]*?)<!-- ${name}:end -->`).exec(
    readme
  )
  if (!section?.[1]) throw new Error(`README.md has no ${name} table`)
  return section[1]
    .trim()
    .split('\n')
    .slice(2) // header and separator
    .map(line =>
      line
        .replace(/^\||\|$/g, '')
        .split('|')
        .map(cell => cell.trim())
    )
}

const code = (value: string | undefined): string => (value ? `\`${value}\`` : '')

describe('README tables match action.yml', () => {
  test('inputs: same names, order, defaults and descriptions', () => {
    const expected = Object.entries(action.inputs).map(([name, input]) => [
      code(name),
      code(input.default),
      input.description
    ])
    expect(tableRows('inputs')).toEqual(expected)
  })

  test('outputs: same names, order and descriptions', () => {
    const expected = Object.entries(action.outputs).map(([name, output]) => [
      code(name),
      output.description
    ])
    expect(tableRows('outputs')).toEqual(expected)
  })

  test('the action runs on node24 with a main and a post bundle', () => {
    const runs = (parse(readFileSync('action.yml', 'utf8')) as { runs: Record<string, string> })
      .runs
    expect(runs).toMatchObject({
      using: 'node24',
      main: 'dist/main/index.js',
      post: 'dist/post/index.js'
    })
  })
})
