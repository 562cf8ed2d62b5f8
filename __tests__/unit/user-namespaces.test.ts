// Lifting Ubuntu's AppArmor restriction on user namespaces for a single-user Nix: the decision
// table, and the stage part with sudo mocked (no machine here has the restriction).
import { afterAll, beforeEach, describe, expect, jest, test } from '@jest/globals'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import * as core from '../../__fixtures__/core.js'
import * as exec from '../../__fixtures__/exec.js'
import type { UserNamespaceFacts } from '../../src/nix/user-namespaces.js'

jest.unstable_mockModule('../../src/core.js', () => core)
jest.unstable_mockModule('../../src/exec.js', () => exec)
const { allowUserNamespaces, parseSysctlFlag, planUserNamespaces } =
  await import('../../src/nix/user-namespaces.js')

describe('planUserNamespaces', () => {
  const singleUser = { restricted: true, asRoot: false, buildsAsThisUser: true }
  test.each<[string, UserNamespaceFacts, boolean]>([
    ['restricted, single-user, not root: lift', singleUser, true],
    ['not restricted', { ...singleUser, restricted: false }, false],
    ['no such sysctl (not Ubuntu)', { ...singleUser, restricted: null }, false],
    ['root builds', { ...singleUser, asRoot: true }, false],
    ['a daemon builds', { ...singleUser, buildsAsThisUser: false }, false]
  ])('%s', (_name, facts, lift) => {
    expect(planUserNamespaces(facts).lift).toBe(lift)
  })

  test.each<[string | null, boolean | null]>([
    ['1\n', true],
    ['0\n', false],
    ['2', true],
    ['', null],
    [null, null]
  ])('parseSysctlFlag(%j) is %j', (text, flag) => {
    expect(parseSysctlFlag(text)).toBe(flag)
  })
})

describe('allowUserNamespaces', () => {
  const dir = mkdtempSync(join(tmpdir(), 'nca-userns-'))
  const sysctlFile = join(dir, 'apparmor_restrict_unprivileged_userns')
  const storeDir = join(dir, 'store')
  mkdirSync(storeDir)
  const uid = jest.spyOn(process, 'getuid')

  beforeEach(() => {
    exec.run.mockReset()
    core.notice.mockReset()
    core.warning.mockReset()
    uid.mockReturnValue(1001)
  })
  afterAll(() => {
    uid.mockRestore()
    rmSync(dir, { recursive: true, force: true })
  })

  test('restricted: sets it to 0 through sudo, with a notice', async () => {
    writeFileSync(sysctlFile, '1\n')
    exec.run.mockResolvedValue({ exitCode: 0, stdout: '', stderr: '' })
    expect(await allowUserNamespaces({ sysctlFile, storeDir })).toBe('lifted')
    expect(exec.run).toHaveBeenCalledWith(
      'sudo',
      ['-n', 'sysctl', '-w', 'kernel.apparmor_restrict_unprivileged_userns=0'],
      { silent: true }
    )
    expect(core.notice.mock.calls[0]?.[0]).toMatch(/set to 0 with sudo/)
  })

  test('without sudo: a warning that says what to do, and the step goes on', async () => {
    writeFileSync(sysctlFile, '1\n')
    exec.run.mockRejectedValue(new Error('sudo: a password is required'))
    expect(await allowUserNamespaces({ sysctlFile, storeDir })).toBe('failed')
    expect(core.warning.mock.calls[0]?.[0]).toMatch(
      /could not be set to 0 \(sudo -n sysctl failed: sudo: a password is required\).*sandbox = false/
    )
  })

  test.each([
    ['not restricted', '0\n', () => storeDir],
    ['no such sysctl', null, () => storeDir],
    ['a store this user cannot write (a daemon store)', '1\n', () => join(dir, 'missing')]
  ])('%s: nothing is run', async (_name, value, store) => {
    rmSync(sysctlFile, { force: true })
    if (value !== null) writeFileSync(sysctlFile, value)
    expect(await allowUserNamespaces({ sysctlFile, storeDir: store() })).toBe('not-needed')
    expect(exec.run).not.toHaveBeenCalled()
  })

  test('as root nothing is run', async () => {
    writeFileSync(sysctlFile, '1\n')
    uid.mockReturnValue(0)
    expect(await allowUserNamespaces({ sysctlFile, storeDir })).toBe('not-needed')
    expect(exec.run).not.toHaveBeenCalled()
  })
})
