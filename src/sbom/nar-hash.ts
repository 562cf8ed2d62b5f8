// A store path's NAR hash, as `nix path-info --json` prints it, to the hex digest an SBOM
// carries. Nix has printed it in several ways: `sha256:<nix32>` (Nix 2.3), SRI
// `sha256-<base64>` (Nix 2.4 to 2.32), and `{"algorithm", "format", "hash"}` (JSON format
// version 2 of later releases).

const SHA256_BYTES = 32
// Nix's own base32 ("nix32"): no e, o, u, t; digits are read from the end of the string.
const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz'

/** Decode Nix's base32 (libutil's parseHash): the last character holds the lowest bits. */
export function decodeNix32(text: string, byteLength: number): Buffer {
  if (text.length !== Math.ceil((byteLength * 8) / 5)) {
    throw new Error(`"${text}" is not ${byteLength} bytes in Nix's base32`)
  }
  const bytes = Buffer.alloc(byteLength)
  for (let n = 0; n < text.length; n++) {
    const digit = NIX32_ALPHABET.indexOf(text[text.length - n - 1] as string)
    if (digit < 0) throw new Error(`"${text}" is not Nix's base32`)
    const bit = n * 5
    const i = Math.floor(bit / 8)
    const j = bit % 8
    bytes[i] = (bytes[i] as number) | ((digit << j) & 0xff)
    const carry = digit >> (8 - j)
    if (i + 1 < byteLength) bytes[i + 1] = (bytes[i + 1] as number) | carry
    else if (carry !== 0) throw new Error(`"${text}" overflows ${byteLength} bytes`)
  }
  return bytes
}

/** The digest of a `sha256` hash written in any of Nix's encodings, by its length. */
function decodeSha256(encoded: string): Buffer {
  if (/^[0-9a-f]{64}$/i.test(encoded)) return Buffer.from(encoded, 'hex')
  if (encoded.length === 52) return decodeNix32(encoded, SHA256_BYTES)
  const bytes = Buffer.from(encoded, 'base64')
  if (bytes.length !== SHA256_BYTES || !/^[A-Za-z0-9+/]+=*$/.test(encoded)) {
    throw new Error(`"${encoded}" is not a SHA-256 digest in base16, nix32 or base64`)
  }
  return bytes
}

/** `narHash` from `nix path-info --json`, as lower-case hex (a SHA-256 digest). */
export function narHashToHex(narHash: unknown): string {
  if (typeof narHash === 'string') {
    const match = /^([a-z0-9]+)[-:](.+)$/.exec(narHash)
    if (!match || match[1] !== 'sha256') throw new Error(`unexpected narHash ${narHash}`)
    return decodeSha256(match[2] as string).toString('hex')
  }
  if (typeof narHash === 'object' && narHash !== null) {
    const { algorithm, hash } = narHash as { algorithm?: unknown; hash?: unknown }
    if (algorithm === 'sha256' && typeof hash === 'string') {
      return /^sha256[-:]/.test(hash) ? narHashToHex(hash) : decodeSha256(hash).toString('hex')
    }
  }
  throw new Error(`unexpected narHash ${JSON.stringify(narHash)}`)
}
