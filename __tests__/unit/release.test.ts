// The release workflow's scripts, run here as the workflow runs them: the tag/changelog checks
// as functions, and the major-tag move with real git against a scratch "origin".
import { afterAll, describe, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { changelogSection, checkRelease, parseReleaseTag } from '../../scripts/release.mjs'

const CHANGELOG = `# Changelog

## [Unreleased]

## [1.2.3] - 2026-11-20

### Fixed

- a thing

## [1.2.2] - 2026-11-01

- older
`

describe('parseReleaseTag', () => {
  test.each([
    ['v1.2.3', '1.2.3', 'v1'],
    ['v0.1.0', '0.1.0', 'v0'],
    ['v10.0.12', '10.0.12', 'v10']
  ])('%s', (tag, version, major) => {
    expect(parseReleaseTag(tag)).toEqual({ version, major })
  })

  test.each(['1.2.3', 'v1.2', 'v1.2.3-rc.1', 'v01.2.3', 'v1', 'latest'])('%s is refused', tag => {
    expect(() => parseReleaseTag(tag)).toThrow(`release tag "${tag}" is not of the form vX.Y.Z`)
  })
})

describe('changelogSection', () => {
  test('the section of that version, without its heading or the next one', () => {
    expect(changelogSection(CHANGELOG, '1.2.3')).toBe('### Fixed\n\n- a thing')
    expect(changelogSection(CHANGELOG, '1.2.2')).toBe('- older')
  })

  test('a missing or empty section is an error', () => {
    expect(() => changelogSection(CHANGELOG, '1.2.4')).toThrow('has no "## [1.2.4]" section')
    expect(() => changelogSection('## [1.0.0]\n\n## [0.9.0]\n- x', '1.0.0')).toThrow('is empty')
  })

  test('this repository has a section for its package.json version', () => {
    const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string })
      .version
    expect(() =>
      checkRelease(`v${version}`, {
        packageVersion: version,
        changelog: readFileSync('CHANGELOG.md', 'utf8')
      })
    ).not.toThrow()
  })
})

test('checkRelease refuses a tag that is not package.json version', () => {
  expect(() => checkRelease('v1.2.3', { packageVersion: '1.2.2', changelog: CHANGELOG })).toThrow(
    "tag v1.2.3 does not match package.json's version 1.2.2"
  )
})

describe('move-major-tag.sh', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'nca-release-'))
  afterAll(() => rmSync(scratch, { recursive: true, force: true }))
  const script = resolve('scripts/move-major-tag.sh')
  const git = (cwd: string, ...args: string[]): string =>
    execFileSync('git', args, {
      cwd,
      encoding: 'utf8',
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: 't',
        GIT_AUTHOR_EMAIL: 't@example.invalid',
        GIT_COMMITTER_NAME: 't',
        GIT_COMMITTER_EMAIL: 't@example.invalid'
      }
    }).trim()

  test('points v1 at each new v1.x.y release in the remote', () => {
    const origin = join(scratch, 'origin.git')
    const work = join(scratch, 'work')
    git(scratch, 'init', '-q', '--bare', origin)
    git(scratch, 'clone', '-q', origin, work)
    const release = (tag: string): string => {
      writeFileSync(join(work, 'file'), tag)
      git(work, 'add', 'file')
      git(work, 'commit', '-q', '-m', tag)
      git(work, 'tag', '-a', tag, '-m', tag)
      git(work, 'push', '-q', 'origin', 'HEAD:refs/heads/main', `refs/tags/${tag}`)
      execFileSync(script, [tag], { cwd: work, stdio: 'pipe' })
      return git(work, 'rev-parse', `${tag}^{commit}`)
    }
    const first = release('v1.0.0')
    expect(git(origin, 'rev-parse', 'v1^{commit}')).toBe(first)
    const second = release('v1.1.0')
    expect(second).not.toBe(first)
    expect(git(origin, 'rev-parse', 'v1^{commit}')).toBe(second)
    expect(git(origin, 'rev-parse', 'v1.0.0^{commit}')).toBe(first)
  })
})
