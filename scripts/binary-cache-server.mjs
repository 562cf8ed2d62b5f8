// An HTTP Nix binary cache that takes PUT, for the tests and the benchmark: Debian's lighttpd
// with mod_webdav on 127.0.0.1 (package lighttpd-mod-webdav), serving a folder. `nix copy --to
// http://...` writes it, `substituters = http://...` reads it. lighttpd answers 409 to a PUT
// into a folder that does not exist, so nar/, log/ and realisations/ are made first.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'

const LIGHTTPD = ['/usr/sbin/lighttpd', '/usr/bin/lighttpd'].find(p => fs.existsSync(p))

/** A free TCP port on 127.0.0.1 (the kernel's choice, released for lighttpd to take). */
async function freePort() {
  const server = net.createServer()
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise(resolve => server.close(resolve))
  return port
}

function config(dir, port) {
  return [
    `server.document-root = "${dir}/root"`,
    'server.bind = "127.0.0.1"',
    `server.port = ${port}`,
    'server.modules = ("mod_webdav")',
    'webdav.activate = "enable"',
    'webdav.is-readonly = "disable"',
    `server.upload-dirs = ("${dir}/upload")`,
    `server.errorlog = "${dir}/error.log"`,
    // Every file as bytes: Nix reads narinfo and NARs whatever the type says.
    'mimetype.assign = ("" => "application/octet-stream")',
    ''
  ].join('\n')
}

/** Wait until the server answers (any status), or fail after `ms`. */
async function waitForServer(url, ms) {
  const deadline = Date.now() + ms
  for (;;) {
    try {
      await fetch(url, { method: 'HEAD' })
      return
    } catch (error) {
      if (Date.now() > deadline) throw error
      await sleep(50)
    }
  }
}

/**
 * Start a cache in `dir` (made if missing; its files under dir/root). Returns its URL, the
 * folder Nix's files land in, and stop().
 * @returns {Promise<{ url: string, root: string, port: number, stop(): Promise<void> }>}
 */
export async function startBinaryCacheServer(dir) {
  if (!LIGHTTPD) {
    throw new Error(
      'lighttpd not found: install lighttpd and lighttpd-mod-webdav (scripts/install-deps.sh)'
    )
  }
  const root = path.join(dir, 'root')
  for (const sub of ['nar', 'log', 'realisations'])
    fs.mkdirSync(path.join(root, sub), { recursive: true })
  fs.mkdirSync(path.join(dir, 'upload'), { recursive: true })
  const port = await freePort()
  const conf = path.join(dir, 'lighttpd.conf')
  fs.writeFileSync(conf, config(dir, port))
  const child = spawn(LIGHTTPD, ['-D', '-f', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', chunk => (stderr += chunk.toString()))
  const exited = new Promise(resolve => child.on('exit', resolve))
  const url = `http://127.0.0.1:${port}`
  try {
    await Promise.race([
      waitForServer(`${url}/`, 10_000),
      exited.then(code => {
        throw new Error(`lighttpd exited (${code}): ${stderr}`)
      })
    ])
  } catch (error) {
    child.kill()
    throw error
  }
  return {
    url,
    root,
    port,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM')
        await exited
      }
    }
  }
}
