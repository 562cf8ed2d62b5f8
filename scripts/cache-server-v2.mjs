#!/usr/bin/env node
// The GitHub Actions cache service v2, as GitHub-hosted runners speak it (ACTIONS_CACHE_SERVICE_V2
// set), on 127.0.0.1: a Twirp JSON API at ACTIONS_RESULTS_URL that hands out signed URLs of an
// Azure Blob service, here Azurite (npm `azurite`, a real Blob service) in a child process:
//   POST twirp/github.actions.results.api.v1.CacheService/CreateCacheEntry          {key, version}
//        -> {ok, signed_upload_url}    a write SAS for a new blob
//   POST .../FinalizeCacheEntryUpload {key, version, size_bytes} -> {ok, entry_id}
//   POST .../GetCacheEntryDownloadURL {key, restore_keys, version}
//        -> {ok, signed_download_url, matched_key}    a read SAS; ok false on a miss
// @actions/cache uploads through the Azure SDK whatever the host, but downloads through the SDK
// only from hosts ending in `.blob.core.windows.net` (plain HTTP otherwise). So the signed URLs
// name `http://devstoreaccount1.blob.core.windows.net/...`, and the step gets HTTP_PROXY pointing
// at a forwarding proxy here that sends exactly that host to Azurite and refuses every other:
// the client takes GitHub's path (Azure SDK both ways) and nothing leaves loopback.
// Library: startCacheServerV2() (types in cache-server-v2.d.mts). CLI:
// `node scripts/cache-server-v2.mjs` prints the step's environment, one variable a line.
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  generateBlobSASQueryParameters
} from '@azure/storage-blob'
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import { createRequire } from 'node:module'
import os from 'node:os'
import path from 'node:path'
import process from 'node:process'
import { URL } from 'node:url'
import { findEntry, readBody } from './cache-server.mjs'
import { isMain } from './is-main.mjs'

const TWIRP = '/twirp/github.actions.results.api.v1.CacheService/'
// Azurite's development account, the same on every installation (Azurite's README).
const ACCOUNT = 'devstoreaccount1'
const ACCOUNT_KEY =
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
const BLOB_HOST = `${ACCOUNT}.blob.core.windows.net`
const CONTAINER = 'actions-cache'

/** Start `azurite-blob` on a free port of 127.0.0.1, storing under `dir`; resolves once it listens. */
async function startAzurite(dir) {
  const require = createRequire(import.meta.url)
  const pkg = require.resolve('azurite/package.json')
  const main = path.join(
    path.dirname(pkg),
    JSON.parse(fs.readFileSync(pkg, 'utf8')).bin['azurite-blob']
  )
  const child = spawn(
    process.execPath,
    // No telemetry: Azurite would otherwise report to Microsoft, and nothing leaves loopback.
    [
      main,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      '0',
      '--location',
      dir,
      '--silent',
      '--disableTelemetry'
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] }
  )
  let output = ''
  const port = await new Promise((resolve, reject) => {
    const onData = chunk => {
      output += chunk.toString()
      const listening = /listens on http:\/\/127\.0\.0\.1:(\d+)/.exec(output)
      if (listening) resolve(Number(listening[1]))
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('error', reject)
    child.once('exit', code =>
      reject(new Error(`azurite-blob exited (${code}) before listening: ${output}`))
    )
  })
  child.stdout.removeAllListeners('data')
  child.stderr.removeAllListeners('data')
  child.stdout.resume()
  child.stderr.resume()
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return
    await new Promise(resolve => {
      child.once('exit', resolve)
      child.kill('SIGTERM')
    })
  }
  return { port, stop }
}

/** An HTTP server on 127.0.0.1; resolves with its port. */
async function listen(server) {
  await new Promise((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const address = server.address()
  return typeof address === 'object' && address ? address.port : 0
}

/** @param {import('./cache-server-v2.d.mts').CacheServerV2Options} [options] */
export async function startCacheServerV2(options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nca-cache-server-v2-'))
  const azurite = await startAzurite(dir)
  const credential = new StorageSharedKeyCredential(ACCOUNT, ACCOUNT_KEY)
  const container = new BlobServiceClient(
    `http://127.0.0.1:${azurite.port}/${ACCOUNT}`,
    credential
  ).getContainerClient(CONTAINER)
  await container.create()

  /** @type {Map<number, import('./cache-server-v2.d.mts').CacheEntryV2>} */
  const entries = new Map()
  const requests = []
  const blobRequests = []
  let nextId = 1

  const signedUrl = (blob, permissions) => {
    const sas = generateBlobSASQueryParameters(
      {
        containerName: CONTAINER,
        blobName: blob,
        permissions: BlobSASPermissions.parse(permissions),
        expiresOn: new Date(Date.now() + 60 * 60 * 1000)
      },
      credential
    )
    return `http://${BLOB_HOST}/${CONTAINER}/${blob}?${sas.toString()}`
  }

  // Twirp's JSON mapping: proto field names in, proto field names out, errors as {code, msg}.
  const reply = (res, status, body) => {
    res.writeHead(status, { 'Content-Type': 'application/json' })
    res.end(JSON.stringify(body))
  }
  const twirpError = (res, status, code, msg) => reply(res, status, { code, msg })

  const methods = {
    CreateCacheEntry: ({ key, version }) => {
      if ([...entries.values()].some(e => e.key === key && e.version === version)) {
        return [409, { code: 'already_exists', msg: `cache entry ${key} already exists` }]
      }
      const id = nextId++
      const blob = `entry-${id}`
      entries.set(id, { id, key, version, blob, size: null, committed: false })
      return [200, { ok: true, signed_upload_url: signedUrl(blob, 'cw') }]
    },
    FinalizeCacheEntryUpload: async ({ key, version, size_bytes }) => {
      const entry = [...entries.values()].find(
        e => e.key === key && e.version === version && !e.committed
      )
      if (!entry) return [200, { ok: false, message: `no upload in progress for ${key}` }]
      const uploaded = (await container.getBlobClient(entry.blob).getProperties()).contentLength
      if (String(uploaded) !== String(size_bytes)) {
        return [200, { ok: false, message: `finalized ${size_bytes} bytes, uploaded ${uploaded}` }]
      }
      entry.committed = true
      entry.size = uploaded ?? null
      return [200, { ok: true, entry_id: String(entry.id) }]
    },
    GetCacheEntryDownloadURL: ({ key, restore_keys, version }) => {
      const committed = [...entries.values()].filter(e => e.committed)
      const found = findEntry(committed, [key, ...(restore_keys ?? [])], version)
      if (!found) return [200, { ok: false }]
      return [
        200,
        { ok: true, signed_download_url: signedUrl(found.blob, 'r'), matched_key: found.key }
      ]
    }
  }

  const handleTwirp = async (req, res) => {
    const body = await readBody(req)
    const method = req.url?.startsWith(TWIRP) ? req.url.slice(TWIRP.length) : ''
    requests.push({ method: req.method ?? '', path: req.url ?? '' })
    if (options.failWith !== undefined) {
      return twirpError(
        res,
        options.failWith,
        'unavailable',
        'the test cache service fails every call'
      )
    }
    if (options.token && req.headers.authorization !== `Bearer ${options.token}`) {
      return twirpError(res, 401, 'unauthenticated', 'bad or missing runtime token')
    }
    const handler = Object.hasOwn(methods, method) ? methods[method] : undefined
    if (req.method !== 'POST' || !handler) {
      return twirpError(res, 404, 'bad_route', `no route for ${req.method} ${req.url}`)
    }
    const [status, answer] = await handler(JSON.parse(body.toString() || '{}'))
    reply(res, status, answer)
  }

  // A forward proxy (HTTP_PROXY) for the blob host only: absolute-form requests, Host kept, so
  // Azurite takes the account from the host as Azure does.
  const handleProxy = (req, res) => {
    const target = new URL(req.url ?? '/', 'http://invalid')
    blobRequests.push({
      method: req.method ?? '',
      host: target.host,
      path: target.pathname,
      comp: target.searchParams.get('comp'),
      userAgent: req.headers['user-agent'] ?? ''
    })
    if (target.host !== BLOB_HOST) {
      req.resume()
      res.writeHead(502).end(`the test proxy forwards ${BLOB_HOST} only, not ${target.host}`)
      return
    }
    const upstream = http.request(
      {
        host: '127.0.0.1',
        port: azurite.port,
        method: req.method,
        path: target.pathname + target.search,
        headers: req.headers
      },
      answer => {
        res.writeHead(answer.statusCode ?? 502, answer.headers)
        answer.pipe(res)
      }
    )
    upstream.on('error', error => {
      if (!res.headersSent) res.writeHead(502).end(String(error))
      else res.destroy()
    })
    req.pipe(upstream)
  }

  const twirp = http.createServer((req, res) => {
    handleTwirp(req, res).catch(error => {
      if (!res.headersSent) twirpError(res, 500, 'internal', String(error))
      else res.destroy()
    })
  })
  const proxy = http.createServer(handleProxy)
  const [twirpPort, proxyPort] = await Promise.all([listen(twirp), listen(proxy)])
  const url = `http://127.0.0.1:${twirpPort}/`
  const proxyUrl = `http://127.0.0.1:${proxyPort}`

  return {
    url,
    proxyUrl,
    requests,
    blobRequests,
    entries: () => [...entries.values()].filter(e => e.committed).map(e => ({ ...e })),
    readArchive: async key => {
      const entry = [...entries.values()].find(e => e.committed && e.key === key)
      if (!entry) throw new Error(`cache-server-v2: no entry with key ${key}`)
      return container.getBlobClient(entry.blob).downloadToBuffer()
    },
    replaceArchive: async (key, data) => {
      const entry = [...entries.values()].find(e => e.committed && e.key === key)
      if (!entry) throw new Error(`cache-server-v2: no entry with key ${key}`)
      await container.getBlockBlobClient(entry.blob).upload(data, data.length)
      entry.size = data.length
    },
    blockList: async blob => {
      const list = await container.getBlockBlobClient(blob).getBlockList('committed')
      return (list.committedBlocks ?? []).map(b => b.size)
    },
    env: (token = 'nca-test-token') => ({
      ACTIONS_CACHE_SERVICE_V2: 'True',
      ACTIONS_RESULTS_URL: url,
      ACTIONS_RUNTIME_TOKEN: token,
      // v1's variable, unset: the client must not need it.
      ACTIONS_CACHE_URL: '',
      HTTP_PROXY: proxyUrl,
      NO_PROXY: '127.0.0.1,localhost'
    }),
    close: async () => {
      for (const server of [twirp, proxy]) server.closeAllConnections()
      await Promise.all(
        [twirp, proxy].map(server => new Promise(resolve => server.close(() => resolve(undefined))))
      )
      await azurite.stop()
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
}

if (isMain(import.meta.url)) {
  startCacheServerV2().then(
    server => {
      const env = server.env(process.argv[2] ?? 'nca-test-token')
      for (const [name, value] of Object.entries(env)) process.stdout.write(`${name}=${value}\n`)
      const stop = () => void server.close().then(() => process.exit(0))
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    },
    error => {
      process.stderr.write(
        `cache-server-v2: ${error instanceof Error ? error.message : String(error)}\n`
      )
      process.exit(1)
    }
  )
}
