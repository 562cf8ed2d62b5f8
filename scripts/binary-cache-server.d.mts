// Types for binary-cache-server.mjs: an HTTP Nix binary cache (lighttpd + mod_webdav) on
// 127.0.0.1 that takes `nix copy --to http://...`.
export interface BinaryCacheServer {
  /** `http://127.0.0.1:<port>`: the store URL. */
  url: string
  /** The folder its files are in (nix-cache-info, *.narinfo, nar/). */
  root: string
  port: number
  stop(): Promise<void>
}

/** Start a cache whose files live under `dir` (made if missing). */
export function startBinaryCacheServer(dir: string): Promise<BinaryCacheServer>
