#!/usr/bin/env node
// Release helpers for .github/workflows/release.yml, runnable locally too:
//   release.mjs check TAG   the tag is vX.Y.Z, equals package.json's version, and CHANGELOG.md
//                           has a filled-in section for it
//   release.mjs notes TAG   print that section (the GitHub release's text)
//   release.mjs major TAG   print the major tag the release moves (v1 for v1.2.3)
import fs from 'node:fs'
import path from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'
import { isMain } from './is-main.mjs'

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const RELEASE_TAG = /^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/

/** `{ version: '1.2.3', major: 'v1' }` for `v1.2.3`; anything else is refused. */
export function parseReleaseTag(tag) {
  const match = RELEASE_TAG.exec(tag)
  if (!match) throw new Error(`release tag "${tag}" is not of the form vX.Y.Z (e.g. v1.2.3)`)
  return { version: tag.slice(1), major: `v${match[1]}` }
}

/** The body of CHANGELOG.md's `## [version]` section, without its heading. */
export function changelogSection(changelog, version) {
  const lines = changelog.split('\n')
  const heading = new RegExp(`^## \\[${version.replace(/\./g, '\\.')}\\](\\s|$)`)
  const start = lines.findIndex(line => heading.test(line))
  if (start < 0) throw new Error(`CHANGELOG.md has no "## [${version}]" section`)
  const next = lines.findIndex((line, i) => i > start && /^## /.test(line))
  const body = lines
    .slice(start + 1, next < 0 ? undefined : next)
    .join('\n')
    .trim()
  if (!body) throw new Error(`CHANGELOG.md's "## [${version}]" section is empty`)
  return body
}

/** Everything a release needs before it is published; throws with what is wrong. */
export function checkRelease(tag, { packageVersion, changelog }) {
  const { version } = parseReleaseTag(tag)
  if (packageVersion !== version) {
    throw new Error(`tag ${tag} does not match package.json's version ${packageVersion}`)
  }
  changelogSection(changelog, version)
}

function readRepoFile(name) {
  return fs.readFileSync(path.join(repoRoot, name), 'utf8')
}

function main([command, tag]) {
  if (!tag) throw new Error('usage: release.mjs check|notes|major TAG')
  if (command === 'major') return parseReleaseTag(tag).major
  const changelog = readRepoFile('CHANGELOG.md')
  if (command === 'notes') return changelogSection(changelog, parseReleaseTag(tag).version)
  if (command === 'check') {
    const packageVersion = JSON.parse(readRepoFile('package.json')).version
    checkRelease(tag, { packageVersion, changelog })
    return `${tag}: package.json and CHANGELOG.md agree`
  }
  throw new Error(`unknown command "${command}": use check, notes or major`)
}

if (isMain(import.meta.url)) {
  try {
    console.log(main(process.argv.slice(2)))
  } catch (error) {
    console.error(`release: ${error.message}`)
    process.exit(1)
  }
}
