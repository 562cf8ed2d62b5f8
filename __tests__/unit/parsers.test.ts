import { describe, expect, test } from '@jest/globals'
import { parseDockerLoad } from '../../src/stages/load.js'
import { imageRefFor } from '../../src/registry/outcome.js'
import { parsePushDigest } from '../../src/registry/commands.js'
import { parseNixVersion } from '../../src/stages/install-nix.js'
import { Report, renderSummary } from '../../src/report.js'

const digest = `sha256:${'ab'.repeat(32)}`

describe('parseDockerLoad', () => {
  test.each<[string, string[], string[]]>([
    ['Loaded image: hello:latest\n', ['hello:latest'], []],
    ['Loaded image ID: sha256:abc\n', [], ['sha256:abc']],
    ['Loaded image: a:1\nLoaded image: b:2\n', ['a:1', 'b:2'], []],
    ['unexpected\n', [], []]
  ])('%j', (stdout, images, imageIds) => {
    expect(parseDockerLoad(stdout)).toEqual({ images, imageIds })
  })
})

describe('parsePushDigest', () => {
  test.each<[string, string | null]>([
    [`abc: Pushed\nv1: digest: ${digest} size: 528\n`, digest],
    ['no digest here', null],
    ['v1: digest: sha256:short size: 1', null]
  ])('%j', (stdout, expected) => {
    expect(parsePushDigest(stdout)).toBe(expected)
  })
})

describe('imageRefFor', () => {
  test.each<[string, string]>([
    ['ghcr.io/o/app:v1', `ghcr.io/o/app@${digest}`],
    ['127.0.0.1:5000/app:latest', `127.0.0.1:5000/app@${digest}`],
    ['localhost:5000/a/b/c:x', `localhost:5000/a/b/c@${digest}`]
  ])('%s', (ref, expected) => {
    expect(imageRefFor(ref, digest)).toBe(expected)
  })
})

describe('parseNixVersion', () => {
  test.each<[string, string | null]>([
    ['nix (Nix) 2.8.0\n', '2.8.0'],
    ['nix (Determinate Nix 3.1.0) 2.26.3', '2.26.3'],
    ['nix (Nix) 2.24.10pre20240101_abc', '2.24.10pre20240101_abc'],
    ['command not found', null]
  ])('%j', (output, expected) => {
    expect(parseNixVersion(output)).toBe(expected)
  })
})

describe('renderSummary', () => {
  test('a row per stage, the refs and the digest', () => {
    const report = new Report()
    report.stages.push({ name: 'Build', status: 'done', detail: '/nix/store/x | y', seconds: 1.25 })
    report.skip('Push', 'push: false')
    report.refs = ['ghcr.io/o/app:v1']
    report.digest = digest
    const markdown = renderSummary(report)
    expect(markdown).toContain('| Build | ✅ done | /nix/store/x \\| y | 1.3 |')
    expect(markdown).toContain('| Push | ⏭️ skipped | push: false | 0.0 |')
    expect(markdown).toContain('- `ghcr.io/o/app:v1`')
    expect(markdown).toContain(`**Digest:** \`${digest}\``)
    expect(markdown).not.toContain('Image ref')
  })
})
