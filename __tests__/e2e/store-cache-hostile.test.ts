// A store cache entry is untrusted input: anyone who can write the repository's cache chose its
// bytes. Here an attacker's entry: run 1 saves a genuine one, its archive is then replaced by
// the same zstd tar with hostile members added (an absolute name, `../`, a symlink to a folder
// outside followed by a file through it, hard links to a file outside, members that replace the
// archive's folder and the staging folder itself with a symlink); run 2, on a fresh runner,
// must write none of them: nothing at the targets (the runner's HOME, a folder in /tmp), the
// log names each member, the entry is discarded whole and the image built without it. Through
// the bundled action as the runner user, the real @actions/cache client: v1 on a store the
// runner owns (the fast path), v2 on a daemon store (`nix copy`). The other hostile members
// (devices, FIFOs, setuid bits, pax tricks) are unit tests of the extraction
// (__tests__/unit/store-cache-extract.test.ts).
import { expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { startCacheServer } from '../../scripts/cache-server.mjs'
import { startCacheServerV2 } from '../../scripts/cache-server-v2.mjs'
import { execInMachine, giveToRunner, userTempDir } from '../../scripts/runner-machine.mjs'
import type { Machine } from '../../scripts/runner-machine.mjs'
import { END_OF_ARCHIVE, membersEnd, tarMembers } from '../tar-members.js'
import type { Entry } from '../tar-members.js'
import { freshMachine, inMachine, store } from './action.js'
import {
  action,
  baseOf,
  BUILD_STEPS,
  builds,
  expectGreen,
  makeFixture,
  TOKEN
} from './store-cache-kit.js'

/** What every hostile member writes: found nowhere after the run. */
const MARK = 'written-by-a-poisoned-store-cache-entry'
const ROOT = 'nix-container-action-store-v3'
const STORE = `${ROOT}/base/store`
/** Enough `..` to reach / from the staging folder, beside the store or in RUNNER_TEMP. */
const UP = '../'.repeat(24)

/** Where the hostile members aim: the runner's HOME and a folder of the runner's in /tmp. */
interface Targets {
  home: string
  dir: string
}

/** A hostile member and what the log must say of it (null: harmless itself, not named). */
type Hostile = Entry & { why: string | null }

/** Before the genuine members (the archive's folder must not be a symlink even first). */
const prepended = (t: Targets): Hostile[] => [
  {
    path: ROOT,
    type: 'SymbolicLink',
    linkpath: `${t.dir}/redirect`,
    why: 'a symbolic link where the layout has a directory'
  }
]

/** After the genuine members. */
const appended = (t: Targets): Hostile[] => [
  { path: `${t.home}/nca-abs`, data: MARK, why: 'an absolute name' },
  { path: `${STORE}/${UP}${t.dir.slice(1)}/dotdot`, data: MARK, why: 'a name with `..`' },
  // A symlink in a store path may point anywhere (store paths' do): it is never followed.
  { path: `${STORE}/${'z'.repeat(32)}-link`, type: 'SymbolicLink', linkpath: t.home, why: null },
  {
    path: `${STORE}/${'z'.repeat(32)}-link/nca-through`,
    data: MARK,
    why: `inside "${STORE}/${'z'.repeat(32)}-link", a symbolic link`
  },
  {
    path: `${STORE}/${'y'.repeat(32)}-hard`,
    type: 'Link',
    linkpath: `${t.home}/.bashrc`,
    why: `a hard link to "${t.home}/.bashrc", an absolute name`
  },
  // What would write through that link into ~/.bashrc.
  { path: `${STORE}/${'y'.repeat(32)}-hard`, data: MARK, why: null },
  {
    path: `${STORE}/${'x'.repeat(32)}-hard`,
    type: 'Link',
    linkpath: `${UP}${t.dir.slice(1)}/secret`,
    why: `a hard link to "${UP}${t.dir.slice(1)}/secret", a name with \`..\``
  },
  // The staging folder itself, replaced by a symlink, then a file through it.
  {
    path: '.',
    type: 'SymbolicLink',
    linkpath: `${t.dir}/dot`,
    why: 'a name with an empty or `.` part'
  },
  { path: 'nca-dot-through', data: MARK, why: "not part of the store cache's layout" }
]

/** The entry's archive with the hostile members around its own, compressed as before. */
function poisoned(archive: Buffer, t: Targets): Buffer {
  const tar = execFileSync('zstd', ['-d', '--long=30', '-c'], {
    input: archive,
    maxBuffer: 1 << 28
  })
  const whole = Buffer.concat([
    tarMembers(prepended(t)),
    tar.subarray(0, membersEnd(tar)),
    tarMembers(appended(t)),
    END_OF_ARCHIVE
  ])
  return execFileSync('zstd', ['-c'], { input: whole, maxBuffer: 1 << 28 })
}

/** The runner's dotfiles as they are: content and link count (a hard link would raise it). */
function dotfiles(machine: Machine): string {
  return inMachine(machine, ['stat', '-c', '%n %h %s %Y', '.bashrc', '.profile'], {
    cwd: machine.home
  }).concat(inMachine(machine, ['sha256sum', '.bashrc', '.profile'], { cwd: machine.home }))
}

// Debian 13 (the default) with both services and both ways in; Debian 12's Nix 2.8 (an older
// self-hosted runner) on the fast path.
const cases = [
  {
    version: 'v1' as const,
    shape: 'single-user' as const,
    os: undefined,
    how: 'extracted beside the store (the fast path)'
  },
  {
    version: 'v2' as const,
    shape: 'daemon' as const,
    os: undefined,
    how: 'extracted in RUNNER_TEMP (nix copy)'
  },
  {
    version: 'v1' as const,
    shape: 'single-user' as const,
    os: 'debian12' as const,
    how: 'on Debian 12 (Nix 2.8), extracted beside the store'
  }
]

test.each(cases)(
  'cache service $version, a $shape store: a poisoned entry writes nothing outside its folder, $how',
  async ({ version, shape, os }) => {
    const service =
      version === 'v1'
        ? await startCacheServer({ token: TOKEN })
        : await startCacheServerV2({ token: TOKEN })
    const archiveOf = async (key: string) =>
      'readArchive' in service
        ? service.readArchive(key)
        : readFileSync(service.entries().find(e => e.key === key)?.file ?? '')
    const t: Targets = { home: '', dir: userTempDir('nca-hostile-') }
    try {
      const fixture = await makeFixture()
      const run1 = await action(fixture, service, { machine: freshMachine(shape, os) })
      expectGreen(run1)
      const key = baseOf(run1.outputs['cache-key'])

      const machine = freshMachine(shape, os)
      t.home = machine.home
      writeFileSync(join(t.dir, 'secret'), "the runner's own file\n")
      mkdirSync(join(t.dir, 'redirect'))
      giveToRunner(t.dir)
      const home = dotfiles(machine)
      const bad = poisoned(await archiveOf(key), t)
      if ('readArchive' in service) await service.replaceArchive(key, bad)
      else service.replaceArchive(key, bad)

      const run2 = await action(fixture, service, { machine })
      expectGreen(run2)

      // Discarded whole, every hostile member named.
      const named = [...prepended(t), ...appended(t)].filter(h => h.why !== null)
      expect(run2.main.stdout).toContain(
        `::warning::Store cache: restore failed, building without the cache: the entry ${key} was discarded: ${named.length} of its members may not be extracted: `
      )
      for (const member of named) {
        expect(run2.main.stdout).toContain(`${JSON.stringify(member.path)} is ${member.why ?? ''}`)
      }
      expect(run2.outputs['cache-hit']).toBe('false')
      expect(run2.outputs['cache-restored-key']).toBe('')

      // Nothing at the targets: the folder in /tmp as the test left it, the runner's HOME too.
      expect(readdirSync(t.dir).sort()).toEqual(['redirect', 'secret'])
      expect(readdirSync(join(t.dir, 'redirect'))).toEqual([])
      expect(readFileSync(join(t.dir, 'secret'), 'utf8')).toBe("the runner's own file\n")
      expect(statSync(join(t.dir, 'secret')).nlink).toBe(1)
      expect(dotfiles(machine)).toBe(home)
      for (const name of ['nca-abs', 'nca-through', 'nca-dot-through']) {
        expect(execInMachine(machine, ['test', '-e', join(t.home, name)]).exitCode).toBe(1)
      }
      // grep -r: 1 when no file holds the mark.
      const grep = execInMachine(machine, ['grep', '-rlI', MARK, t.home, t.dir])
      expect({ exitCode: grep.exitCode, files: grep.stdout }).toEqual({ exitCode: 1, files: '' })

      // The image is built without the entry, which left nothing behind.
      expect(run2.outputs['store-path']).toBe(run1.outputs['store-path'])
      expect(builds(fixture)).toEqual([...BUILD_STEPS, ...BUILD_STEPS])
      const staged = execInMachine(machine, [
        'find',
        '/nix/store',
        run2.tempDir,
        '-maxdepth',
        '3',
        '-name',
        '.nca-staging-*'
      ])
      expect(staged.stdout).toBe('')
      expect(store.invalid(machine, [run1.outputs['store-path'] ?? ''])).toEqual([])
    } finally {
      await service.close()
      rmSync(t.dir, { recursive: true, force: true })
    }
  }
)
