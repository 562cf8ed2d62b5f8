// A reverse proxy in front of a test registry that misbehaves on purpose: it can start
// listening late, answer the first requests with an error status (503, or 429 with
// Retry-After), then pass everything through. Loopback only.
import http from 'node:http'
import net from 'node:net'
import type { AddressInfo, Socket } from 'node:net'

export interface FaultOptions {
  /** host:port of the real registry. */
  target: string
  /** How many requests get `status` before the proxy passes through. */
  failFirst?: number
  /** Only requests like this one can get the fault (others pass through); default all. */
  failOnly?: { method: string; path: RegExp }
  /** Or: every request gets `status` for this long after the first one. */
  failForMs?: number
  status?: number
  /** Send Retry-After: a number of seconds, or 'remaining' (what is left of failForMs). */
  retryAfterSeconds?: number | 'remaining'
  /** Listen only after this long: connections are refused until then. */
  listenAfterMs?: number
  /** Listen only once this says so (polled): connections are refused until then. */
  listenWhen?: () => boolean
  /** Listen on this port (to start late on a port chosen ahead); default a free one. */
  port?: number
}

export interface PassedRequest {
  method: string
  path: string
  bodyBytes: number
}

/** Body bytes of blob uploads (PATCH/PUT to /blobs/uploads/): what a push sent. */
export function uploadedBlobBytes(passed: readonly PassedRequest[]): number {
  return passed
    .filter(r => (r.method === 'PATCH' || r.method === 'PUT') && r.path.includes('/blobs/uploads/'))
    .reduce((sum, r) => sum + r.bodyBytes, 0)
}

export interface FaultProxy {
  /** host:port the action should push to. */
  address: string
  /** Requests answered with the fault, and the times they came. */
  faults: number[]
  /** The same requests: method, path and the client (User-Agent), for what met a fault. */
  faulted: string[]
  /** Every request passed through: method, path and how many body bytes it carried. */
  passed: PassedRequest[]
  listening: Promise<void>
  close(): Promise<void>
}

/**
 * A free port whose digits contain `digits` (e.g. '404'): registry addresses appear in every
 * error text, and their digits must never be read as an HTTP status.
 */
export async function freePortContaining(digits: string): Promise<number> {
  for (let port = 30000; port < 60000; port++) {
    if (String(port).includes(digits) && (await portIsFree(port))) return port
  }
  throw new Error(`no free port with ${digits} in it`)
}

async function portIsFree(port: number): Promise<boolean> {
  const server = http.createServer()
  return new Promise(resolve => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

export async function freePort(): Promise<number> {
  const server = http.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return port
}

export async function startFaultProxy(options: FaultOptions): Promise<FaultProxy> {
  const [targetHost, targetPort] = options.target.split(':') as [string, string]
  const faults: number[] = []
  const faulted: string[] = []
  const passed: PassedRequest[] = []
  let firstRequestAt: number | null = null
  const failing = (request: http.IncomingMessage): boolean => {
    const only = options.failOnly
    if (only && (request.method !== only.method || !only.path.test(request.url ?? ''))) return false
    firstRequestAt ??= Date.now()
    if (options.failForMs !== undefined) return Date.now() - firstRequestAt < options.failForMs
    return faults.length < (options.failFirst ?? 0)
  }
  const retryAfter = (): string | null => {
    if (options.retryAfterSeconds === undefined) return null
    if (options.retryAfterSeconds !== 'remaining') return String(options.retryAfterSeconds)
    const left = (options.failForMs ?? 0) - (Date.now() - (firstRequestAt ?? Date.now()))
    return String(Math.max(1, Math.ceil(left / 1000)))
  }
  const server = http.createServer((request, response) => {
    if (failing(request)) {
      faults.push(Date.now())
      faulted.push(`${request.method} ${request.url} (${request.headers['user-agent'] ?? '?'})`)
      const headers: Record<string, string> = { 'content-type': 'application/json' }
      const seconds = retryAfter()
      if (seconds !== null) headers['retry-after'] = seconds
      response.writeHead(options.status ?? 503, headers)
      response.end(JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'injected fault' }] }))
      request.resume()
      return
    }
    const upstream = http.request(
      {
        host: targetHost,
        port: Number(targetPort),
        method: request.method,
        path: request.url,
        headers: request.headers
      },
      upstreamResponse => {
        response.writeHead(upstreamResponse.statusCode ?? 502, upstreamResponse.headers)
        upstreamResponse.pipe(response)
      }
    )
    upstream.on('error', () => response.destroy())
    const record: PassedRequest = {
      method: request.method ?? '',
      path: request.url ?? '',
      bodyBytes: 0
    }
    passed.push(record)
    request.on('data', (chunk: Buffer) => {
      record.bodyBytes += chunk.length
    })
    request.pipe(upstream)
  })
  const port = options.port ?? (await freePort())
  const listening = new Promise<void>(resolve => {
    const listen = () => server.listen(port, '127.0.0.1', resolve)
    const when = options.listenWhen
    if (!when) return void setTimeout(listen, options.listenAfterMs ?? 0)
    const poll = setInterval(() => {
      if (!when()) return
      clearInterval(poll)
      listen()
    }, 20)
  })
  if (!options.listenAfterMs && !options.listenWhen) await listening
  return {
    address: `127.0.0.1:${port}`,
    faults,
    faulted,
    passed,
    listening,
    close: async () => {
      await listening
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}

/** A registry that accepts connections and never answers. */
export async function startBlackHole(): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server = net.createServer(socket => {
    sockets.add(socket)
    socket.on('error', () => undefined)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    address: `127.0.0.1:${port}`,
    close: async () => {
      for (const socket of sockets) socket.destroy()
      await new Promise<void>(resolve => server.close(() => resolve()))
    }
  }
}
