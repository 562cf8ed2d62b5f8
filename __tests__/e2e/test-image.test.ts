// Testing the image before it is pushed (`test`, `test-url`, `test-timeout`), through the
// bundled action as the runner user, against the real Docker daemon and registry: an image that
// holds Debian's static busybox, whose own command serves files with busybox httpd on a port
// the test picks. Whatever happens, no test container may be left afterwards.
import { afterAll, afterEach, expect, test } from '@jest/globals'
import { execFileSync } from 'node:child_process'
import { chmod, cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import type { RunResult } from '../../scripts/run-action.mjs'
import { action, findRealProgram, log, registry } from './action.js'
import { getManifest } from './registry.js'

const fixture = resolve('__tests__/e2e/flakes/busybox')
const LABEL = 'nix-container-action.test'
const tempDirs: string[] = []

afterAll(async () => {
  await Promise.all(tempDirs.map(dir => rm(dir, { recursive: true, force: true })))
})

// After every test, whatever it did: none of our containers, running or stopped.
afterEach(() => {
  expect(ourContainers()).toEqual([])
})

/** Every container of ours on the test daemon (DOCKER_HOST from the global setup). */
function ourContainers(): string[] {
  const names = execFileSync(
    'docker',
    ['ps', '--all', '--filter', `label=${LABEL}`, '--format', '{{.Names}}'],
    { encoding: 'utf8' }
  )
  const named = execFileSync(
    'docker',
    ['ps', '--all', '--filter', 'name=nix-container-test-', '--format', '{{.Names}}'],
    { encoding: 'utf8' }
  )
  return [...new Set(`${names}\n${named}`.split('\n').filter(Boolean))]
}

/** A TCP port that was free a moment ago. */
async function freePort(): Promise<number> {
  const server = createServer()
  await new Promise<void>(done => server.listen(0, '127.0.0.1', done))
  const { port } = server.address() as AddressInfo
  await new Promise(done => server.close(done))
  return port
}

/** A directory the runner user can read (mkdtemp makes them 0700, and we are root). */
async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(`/tmp/${prefix}`)
  await chmod(dir, 0o755)
  tempDirs.push(dir)
  return dir
}

/** A copy of the busybox flake whose image serves httpd on a fresh port. */
async function serverFlake(): Promise<{ flake: string; port: number }> {
  const dir = join(await tempDir('nca-test-image-'), 'flake')
  await cp(fixture, dir, { recursive: true })
  const port = await freePort()
  await writeFile(join(dir, 'port'), `${port}\n`)
  return { flake: dir, port }
}

function expectFailure(result: RunResult): string {
  expect(result.main.exitCode).toBe(1)
  expect(result.post?.exitCode).toBe(0)
  const error = /^::error::(.*)$/m.exec(result.main.stdout)?.[1] ?? ''
  expect(error).not.toBe('')
  // Error lines escape their newlines.
  return error.replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%')
}

async function expectNotPushed(image: string): Promise<void> {
  expect((await getManifest(registry(), image, 'v1')).status).toBe(404)
}

/** The subcommands of the watched docker runs, in order (`run`, `push`, ...). */
const dockerVerbs = (result: RunResult): string[] =>
  result.commands.filter(argv => argv[0] === 'docker').map(argv => argv[1] ?? '')

test('a passing test and test-url let the push happen, after them', async () => {
  const { flake, port } = await serverFlake()
  const image = 'e2e/tested'
  const result = await action(
    {
      flake,
      registry: registry(),
      image,
      tags: 'v1',
      test: '/bin/busybox\necho\nthe image runs: %s',
      'test-url': `http://127.0.0.1:${port}/health`,
      'test-timeout': '30'
    },
    { watch: ['docker'] }
  )
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  expect(result.post?.exitCode).toBe(0)
  expect(result.outputs.tested).toBe('true')
  const manifest = await getManifest(registry(), image, 'v1')
  expect(manifest.status).toBe(200)
  expect(manifest.digest).toBe(result.outputs.digest)

  // The command's output and the server's log are in the log, inside the Test group.
  const group = /::group::Test\n([\s\S]*?)::endgroup::/.exec(result.main.stdout)?.[1] ?? ''
  expect(group).toContain('the image runs: %s')
  expect(group).toContain(`httpd starting on port ${port}`)
  expect(group).toContain('response:200')
  expect(result.summary).toMatch(
    new RegExp(
      `\\| Test \\| ✅ done \\| passed: \`/bin/busybox echo the image runs: %s\` exited 0 in [\\d.]+ s; http://127\\.0\\.0\\.1:${port}/health answered 200 after [\\d.]+ s \\| [\\d.]+ \\|`
    )
  )
  // Both containers ran (and were removed) before anything was pushed.
  const verbs = dockerVerbs(result)
  expect(verbs.lastIndexOf('run')).toBeLessThan(verbs.indexOf('push'))
  expect(verbs.filter(verb => verb === 'run')).toHaveLength(2)
})

test('push-tool skopeo with load: false still loads the image for the test', async () => {
  const { flake } = await serverFlake()
  const image = 'e2e/tested-skopeo'
  const result = await action({
    flake,
    registry: registry(),
    image,
    tags: 'v1',
    'push-tool': 'skopeo',
    load: 'false',
    test: '/bin/busybox\ntrue'
  })
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  expect(result.main.stdout).toContain(
    'load: false (push-tool: skopeo pushes from the archive), but the image is loaded into docker to run the test'
  )
  expect(result.summary).toMatch(/\| Tag \| .* skipped \| load: false \|/)
  expect(result.outputs.tested).toBe('true')
  expect((await getManifest(registry(), image, 'v1')).digest).toBe(result.outputs.digest)
})

test("systems: the runner's own platform is tested, the others are named as not tested", async () => {
  const { flake } = await serverFlake()
  const image = 'e2e/tested-systems'
  const result = await action({
    flake,
    registry: registry(),
    image,
    tags: 'v1',
    systems: 'x86_64-linux, aarch64-linux',
    load: 'false',
    test: '/bin/busybox\necho\nrunning on the runner'
  })
  expect({ exit: result.main.exitCode, log: log(result) }).toMatchObject({ exit: 0 })
  expect(result.main.stdout).toContain('not tested: aarch64-linux')
  expect(result.main.stdout).toContain('running on the runner')
  expect(result.summary).toMatch(/\| Test \| ✅ done \| passed: .*\(not tested: aarch64-linux\) \|/)
  expect(result.outputs.tested).toBe('true')
  expect((await getManifest(registry(), image, 'v1')).status).toBe(200)
})

test('a failing test stops the step before any login or push, with its output', async () => {
  const { flake } = await serverFlake()
  const image = 'e2e/test-fails'
  const result = await action(
    {
      flake,
      registry: registry(),
      image,
      tags: 'v1',
      username: 'nobody',
      password: 'never-used',
      test: '/bin/busybox\nsh\n-c\necho checking the image; echo it is broken >&2; exit 3'
    },
    { watch: ['docker'] }
  )
  const error = expectFailure(result)
  expect(error).toMatch(
    /^The test `\/bin\/busybox sh -c echo checking the image; echo it is broken >&2; exit 3` exited with code 3, so nothing was pushed\. The container's last output:\n/
  )
  // Its stdout and its stderr (docker hands them over on two pipes, so their order may vary).
  const tail = error.slice(error.indexOf('last output:\n') + 'last output:\n'.length)
  expect(tail.split('\n').sort()).toEqual(['checking the image', 'it is broken'])
  await expectNotPushed(image)
  expect(result.outputs.tested).toBe('false')
  expect(result.summary).toMatch(/\| Test \| ❌ failed \| The test .* exited with code 3, /)
  expect(result.summary).not.toMatch(/\| (Login|Tag|Push) \|/)
  const verbs = dockerVerbs(result)
  expect(verbs).not.toContain('login')
  expect(verbs).not.toContain('push')
  // No ref of the registry was tagged (on the containerd store, the load itself names the
  // image it loaded by ID with the archive's name: hello:latest).
  const tagged = result.commands.filter(argv => argv[0] === 'docker' && argv[1] === 'tag')
  expect(tagged.filter(argv => argv[3]?.startsWith(registry()))).toEqual([])
  expect(result.state['login-session']).toBeUndefined()
})

test('a test-url that never answers 2xx stops the step, with the container log', async () => {
  const { flake, port } = await serverFlake()
  const image = 'e2e/test-url-fails'
  const result = await action({
    flake,
    registry: registry(),
    image,
    tags: 'v1',
    'test-url': `http://127.0.0.1:${port}/missing`,
    'test-timeout': '3'
  })
  const error = expectFailure(result)
  expect(error).toContain(
    `The test-url http://127.0.0.1:${port}/missing did not answer 2xx within 3 s (last answer: HTTP 404), so nothing was pushed. The container's last output:\n`
  )
  expect(error).toContain(`httpd starting on port ${port}`)
  expect(error).toContain('response:404')
  // The whole log, not only the tail, is in the Test group.
  expect(result.main.stdout).toContain(`httpd starting on port ${port}`)
  await expectNotPushed(image)
  expect(result.outputs.tested).toBe('false')
})

test('a test that hangs is stopped at test-timeout, and its container removed', async () => {
  const { flake } = await serverFlake()
  const image = 'e2e/test-hangs'
  const started = Date.now()
  const result = await action({
    flake,
    registry: registry(),
    image,
    tags: 'v1',
    test: '/bin/busybox\nsh\n-c\necho going to sleep; exec /bin/busybox sleep 1000',
    'test-timeout': '2'
  })
  const error = expectFailure(result)
  expect(error).toBe(
    "The test `/bin/busybox sh -c echo going to sleep; exec /bin/busybox sleep 1000` did not finish within 2 s: its container was stopped and removed, so nothing was pushed. The container's last output:\ngoing to sleep"
  )
  // The build and load are quick; the sleep's 1000 s never come into it.
  expect(Date.now() - started).toBeLessThan(200_000)
  await expectNotPushed(image)
})

/**
 * A docker that passes every command on, except that once the container of a test that
 * sleeps is running, it sends `signal` to the action's main process (its parent), as a
 * cancelled job or a killed runner would.
 */
async function signallingDocker(signal: 'TERM' | 'KILL'): Promise<string> {
  const dir = await tempDir('nca-test-docker-')
  const script = `#!/bin/bash
${findRealProgram('docker', dir)}
if [[ $1 == run && " $* " == *" sleep 1000 "* ]]; then
  "$real" "$@" >/dev/null 2>&1 </dev/null &
  until [[ -n $("$real" ps -q --filter label=${LABEL} --filter status=running) ]]; do sleep 0.2; done
  kill -${signal} "$PPID"
  [[ ${signal} == KILL ]] && exit 0
  wait
  exit $?
fi
exec "$real" "$@"
`
  await writeFile(join(dir, 'docker'), script, { mode: 0o755 })
  return dir
}

test.each<['TERM' | 'KILL', string]>([
  ['TERM', 'the main step removes the container as it exits'],
  ['KILL', 'the post step removes the container the main step left']
])('a main step that gets SIG%s in the test: %s', async signal => {
  const { flake } = await serverFlake()
  const image = `e2e/test-sig${signal.toLowerCase()}`
  const docker = await signallingDocker(signal)
  const result = await action(
    {
      flake,
      registry: registry(),
      image,
      tags: 'v1',
      test: '/bin/busybox\nsleep\n1000',
      'test-timeout': '600'
    },
    { env: { PATH: `${docker}:${process.env.PATH ?? ''}` } }
  )
  expect(result.main.exitCode).toBe(signal === 'TERM' ? 143 : 137)
  expect(result.state['test-container']).toMatch(/^nix-container-test-[0-9a-f]{12}$/)
  const removedByPost = `Removed the test container ${result.state['test-container']}, which the main step left behind`
  if (signal === 'TERM') {
    expect(result.main.stdout).toContain('SIGTERM: removing the test container')
    expect(result.post?.stdout).not.toContain(removedByPost)
  } else {
    expect(result.post?.stdout).toContain(removedByPost)
  }
  expect(result.post?.exitCode).toBe(0)
  await expectNotPushed(image)
})
