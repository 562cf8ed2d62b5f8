import { beforeEach, describe, expect, jest, test } from '@jest/globals'
import * as core from '../../__fixtures__/core.js'
import * as exec from '../../__fixtures__/exec.js'

// The real CommandError, so the stage can recognise failures.
const { CommandError } = await import('../../src/exec.js')
jest.unstable_mockModule('../../src/core.js', () => core)
jest.unstable_mockModule('../../src/exec.js', () => ({ ...exec, CommandError }))
const { buildArgs, buildImage, parseBuildJson } = await import('../../src/stages/build.js')

const options = { flake: './examples/hello', attribute: 'container', system: null, nixArgs: [] }
const ok = (stdout: string) => ({ exitCode: 0, stdout, stderr: '' })

beforeEach(() => {
  jest.resetAllMocks()
})

describe('buildArgs', () => {
  test('leaves no result link, reads --json', () => {
    expect(buildArgs(options)).toEqual([
      'build',
      './examples/hello#container',
      '--no-link',
      '--json',
      '--print-build-logs'
    ])
  })

  test('system and nix-args are passed as separate arguments', () => {
    const args = buildArgs({
      ...options,
      system: 'aarch64-linux',
      nixArgs: ['--option', 'cores 2']
    })
    expect(args.slice(-4)).toEqual(['--system', 'aarch64-linux', '--option', 'cores 2'])
  })
})

describe('parseBuildJson', () => {
  test.each<[string, string]>([
    ['[{"drvPath":"/nix/store/a.drv","outputs":{"out":"/nix/store/a-img"}}]', '/nix/store/a-img'],
    ['[{"drvPath":"/nix/store/a.drv","outputs":{"image":"/nix/store/b-img"}}]', '/nix/store/b-img']
  ])('%s', (stdout, storePath) => {
    expect(parseBuildJson(stdout).storePath).toBe(storePath)
  })

  test.each(['', 'not json', '[]', '[{"outputs":{}}]'])('%j is refused', stdout => {
    expect(() => parseBuildJson(stdout)).toThrow()
  })
})

describe('buildImage', () => {
  test('returns the store path', async () => {
    exec.run.mockResolvedValueOnce(
      ok('[{"drvPath":"/nix/store/x.drv","outputs":{"out":"/nix/store/x-image"}}]')
    )
    await expect(buildImage(options)).resolves.toEqual({
      storePath: '/nix/store/x-image',
      drvPath: '/nix/store/x.drv'
    })
  })

  test('enables flakes for this call only', async () => {
    exec.run.mockResolvedValueOnce(
      ok('[{"drvPath":"/nix/store/x.drv","outputs":{"out":"/nix/store/x-image"}}]')
    )
    await buildImage(options)
    expect(exec.run).toHaveBeenCalledWith(
      'nix',
      ['--extra-experimental-features', 'nix-command flakes', ...buildArgs(options)],
      undefined
    )
  })

  test('a missing attribute names it and lists what the flake offers', async () => {
    exec.run
      .mockRejectedValueOnce(
        new CommandError(
          ['nix'],
          1,
          "error: flake 'x' does not provide attribute 'packages.x86_64-linux.nope'"
        )
      )
      .mockResolvedValueOnce(ok('x86_64-linux'))
      .mockResolvedValueOnce(ok('["container","container-stream"]'))
    await expect(buildImage({ ...options, attribute: 'nope' })).rejects.toThrow(
      'flake ./examples/hello has no attribute "nope" for x86_64-linux; packages.x86_64-linux offers: container, container-stream'
    )
  })

  test('a failed build ends with the tail of its log', async () => {
    const log = Array.from({ length: 60 }, (_, i) => `line ${i}`).join('\n')
    exec.run.mockRejectedValueOnce(new CommandError(['nix', 'build'], 1, log))
    const error = (await buildImage(options).catch((e: unknown) => e)) as Error
    expect(error.message).toContain('nix build ./examples/hello#container failed')
    expect(error.message).toContain('line 59')
    expect(error.message).not.toContain('line 10\n')
  })
})
