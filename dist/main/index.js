import { createRequire as __WEBPACK_EXTERNAL_createRequire } from "module";
/******/ var __webpack_modules__ = ({

/***/ 668:
/***/ ((module, __unused_webpack_exports, __nccwpck_require__) => {

(function(nacl) {
'use strict';

// Ported in 2014 by Dmitry Chestnykh and Devi Mandiri.
// Public domain.
//
// Implementation derived from TweetNaCl version 20140427.
// See for details: http://tweetnacl.cr.yp.to/

var gf = function(init) {
  var i, r = new Float64Array(16);
  if (init) for (i = 0; i < init.length; i++) r[i] = init[i];
  return r;
};

//  Pluggable, initialized in high-level API below.
var randombytes = function(/* x, n */) { throw new Error('no PRNG'); };

var _0 = new Uint8Array(16);
var _9 = new Uint8Array(32); _9[0] = 9;

var gf0 = gf(),
    gf1 = gf([1]),
    _121665 = gf([0xdb41, 1]),
    D = gf([0x78a3, 0x1359, 0x4dca, 0x75eb, 0xd8ab, 0x4141, 0x0a4d, 0x0070, 0xe898, 0x7779, 0x4079, 0x8cc7, 0xfe73, 0x2b6f, 0x6cee, 0x5203]),
    D2 = gf([0xf159, 0x26b2, 0x9b94, 0xebd6, 0xb156, 0x8283, 0x149a, 0x00e0, 0xd130, 0xeef3, 0x80f2, 0x198e, 0xfce7, 0x56df, 0xd9dc, 0x2406]),
    X = gf([0xd51a, 0x8f25, 0x2d60, 0xc956, 0xa7b2, 0x9525, 0xc760, 0x692c, 0xdc5c, 0xfdd6, 0xe231, 0xc0a4, 0x53fe, 0xcd6e, 0x36d3, 0x2169]),
    Y = gf([0x6658, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666, 0x6666]),
    I = gf([0xa0b0, 0x4a0e, 0x1b27, 0xc4ee, 0xe478, 0xad2f, 0x1806, 0x2f43, 0xd7a7, 0x3dfb, 0x0099, 0x2b4d, 0xdf0b, 0x4fc1, 0x2480, 0x2b83]);

function ts64(x, i, h, l) {
  x[i]   = (h >> 24) & 0xff;
  x[i+1] = (h >> 16) & 0xff;
  x[i+2] = (h >>  8) & 0xff;
  x[i+3] = h & 0xff;
  x[i+4] = (l >> 24)  & 0xff;
  x[i+5] = (l >> 16)  & 0xff;
  x[i+6] = (l >>  8)  & 0xff;
  x[i+7] = l & 0xff;
}

function vn(x, xi, y, yi, n) {
  var i,d = 0;
  for (i = 0; i < n; i++) d |= x[xi+i]^y[yi+i];
  return (1 & ((d - 1) >>> 8)) - 1;
}

function crypto_verify_16(x, xi, y, yi) {
  return vn(x,xi,y,yi,16);
}

function crypto_verify_32(x, xi, y, yi) {
  return vn(x,xi,y,yi,32);
}

function core_salsa20(o, p, k, c) {
  var j0  = c[ 0] & 0xff | (c[ 1] & 0xff)<<8 | (c[ 2] & 0xff)<<16 | (c[ 3] & 0xff)<<24,
      j1  = k[ 0] & 0xff | (k[ 1] & 0xff)<<8 | (k[ 2] & 0xff)<<16 | (k[ 3] & 0xff)<<24,
      j2  = k[ 4] & 0xff | (k[ 5] & 0xff)<<8 | (k[ 6] & 0xff)<<16 | (k[ 7] & 0xff)<<24,
      j3  = k[ 8] & 0xff | (k[ 9] & 0xff)<<8 | (k[10] & 0xff)<<16 | (k[11] & 0xff)<<24,
      j4  = k[12] & 0xff | (k[13] & 0xff)<<8 | (k[14] & 0xff)<<16 | (k[15] & 0xff)<<24,
      j5  = c[ 4] & 0xff | (c[ 5] & 0xff)<<8 | (c[ 6] & 0xff)<<16 | (c[ 7] & 0xff)<<24,
      j6  = p[ 0] & 0xff | (p[ 1] & 0xff)<<8 | (p[ 2] & 0xff)<<16 | (p[ 3] & 0xff)<<24,
      j7  = p[ 4] & 0xff | (p[ 5] & 0xff)<<8 | (p[ 6] & 0xff)<<16 | (p[ 7] & 0xff)<<24,
      j8  = p[ 8] & 0xff | (p[ 9] & 0xff)<<8 | (p[10] & 0xff)<<16 | (p[11] & 0xff)<<24,
      j9  = p[12] & 0xff | (p[13] & 0xff)<<8 | (p[14] & 0xff)<<16 | (p[15] & 0xff)<<24,
      j10 = c[ 8] & 0xff | (c[ 9] & 0xff)<<8 | (c[10] & 0xff)<<16 | (c[11] & 0xff)<<24,
      j11 = k[16] & 0xff | (k[17] & 0xff)<<8 | (k[18] & 0xff)<<16 | (k[19] & 0xff)<<24,
      j12 = k[20] & 0xff | (k[21] & 0xff)<<8 | (k[22] & 0xff)<<16 | (k[23] & 0xff)<<24,
      j13 = k[24] & 0xff | (k[25] & 0xff)<<8 | (k[26] & 0xff)<<16 | (k[27] & 0xff)<<24,
      j14 = k[28] & 0xff | (k[29] & 0xff)<<8 | (k[30] & 0xff)<<16 | (k[31] & 0xff)<<24,
      j15 = c[12] & 0xff | (c[13] & 0xff)<<8 | (c[14] & 0xff)<<16 | (c[15] & 0xff)<<24;

  var x0 = j0, x1 = j1, x2 = j2, x3 = j3, x4 = j4, x5 = j5, x6 = j6, x7 = j7,
      x8 = j8, x9 = j9, x10 = j10, x11 = j11, x12 = j12, x13 = j13, x14 = j14,
      x15 = j15, u;

  for (var i = 0; i < 20; i += 2) {
    u = x0 + x12 | 0;
    x4 ^= u<<7 | u>>>(32-7);
    u = x4 + x0 | 0;
    x8 ^= u<<9 | u>>>(32-9);
    u = x8 + x4 | 0;
    x12 ^= u<<13 | u>>>(32-13);
    u = x12 + x8 | 0;
    x0 ^= u<<18 | u>>>(32-18);

    u = x5 + x1 | 0;
    x9 ^= u<<7 | u>>>(32-7);
    u = x9 + x5 | 0;
    x13 ^= u<<9 | u>>>(32-9);
    u = x13 + x9 | 0;
    x1 ^= u<<13 | u>>>(32-13);
    u = x1 + x13 | 0;
    x5 ^= u<<18 | u>>>(32-18);

    u = x10 + x6 | 0;
    x14 ^= u<<7 | u>>>(32-7);
    u = x14 + x10 | 0;
    x2 ^= u<<9 | u>>>(32-9);
    u = x2 + x14 | 0;
    x6 ^= u<<13 | u>>>(32-13);
    u = x6 + x2 | 0;
    x10 ^= u<<18 | u>>>(32-18);

    u = x15 + x11 | 0;
    x3 ^= u<<7 | u>>>(32-7);
    u = x3 + x15 | 0;
    x7 ^= u<<9 | u>>>(32-9);
    u = x7 + x3 | 0;
    x11 ^= u<<13 | u>>>(32-13);
    u = x11 + x7 | 0;
    x15 ^= u<<18 | u>>>(32-18);

    u = x0 + x3 | 0;
    x1 ^= u<<7 | u>>>(32-7);
    u = x1 + x0 | 0;
    x2 ^= u<<9 | u>>>(32-9);
    u = x2 + x1 | 0;
    x3 ^= u<<13 | u>>>(32-13);
    u = x3 + x2 | 0;
    x0 ^= u<<18 | u>>>(32-18);

    u = x5 + x4 | 0;
    x6 ^= u<<7 | u>>>(32-7);
    u = x6 + x5 | 0;
    x7 ^= u<<9 | u>>>(32-9);
    u = x7 + x6 | 0;
    x4 ^= u<<13 | u>>>(32-13);
    u = x4 + x7 | 0;
    x5 ^= u<<18 | u>>>(32-18);

    u = x10 + x9 | 0;
    x11 ^= u<<7 | u>>>(32-7);
    u = x11 + x10 | 0;
    x8 ^= u<<9 | u>>>(32-9);
    u = x8 + x11 | 0;
    x9 ^= u<<13 | u>>>(32-13);
    u = x9 + x8 | 0;
    x10 ^= u<<18 | u>>>(32-18);

    u = x15 + x14 | 0;
    x12 ^= u<<7 | u>>>(32-7);
    u = x12 + x15 | 0;
    x13 ^= u<<9 | u>>>(32-9);
    u = x13 + x12 | 0;
    x14 ^= u<<13 | u>>>(32-13);
    u = x14 + x13 | 0;
    x15 ^= u<<18 | u>>>(32-18);
  }
   x0 =  x0 +  j0 | 0;
   x1 =  x1 +  j1 | 0;
   x2 =  x2 +  j2 | 0;
   x3 =  x3 +  j3 | 0;
   x4 =  x4 +  j4 | 0;
   x5 =  x5 +  j5 | 0;
   x6 =  x6 +  j6 | 0;
   x7 =  x7 +  j7 | 0;
   x8 =  x8 +  j8 | 0;
   x9 =  x9 +  j9 | 0;
  x10 = x10 + j10 | 0;
  x11 = x11 + j11 | 0;
  x12 = x12 + j12 | 0;
  x13 = x13 + j13 | 0;
  x14 = x14 + j14 | 0;
  x15 = x15 + j15 | 0;

  o[ 0] = x0 >>>  0 & 0xff;
  o[ 1] = x0 >>>  8 & 0xff;
  o[ 2] = x0 >>> 16 & 0xff;
  o[ 3] = x0 >>> 24 & 0xff;

  o[ 4] = x1 >>>  0 & 0xff;
  o[ 5] = x1 >>>  8 & 0xff;
  o[ 6] = x1 >>> 16 & 0xff;
  o[ 7] = x1 >>> 24 & 0xff;

  o[ 8] = x2 >>>  0 & 0xff;
  o[ 9] = x2 >>>  8 & 0xff;
  o[10] = x2 >>> 16 & 0xff;
  o[11] = x2 >>> 24 & 0xff;

  o[12] = x3 >>>  0 & 0xff;
  o[13] = x3 >>>  8 & 0xff;
  o[14] = x3 >>> 16 & 0xff;
  o[15] = x3 >>> 24 & 0xff;

  o[16] = x4 >>>  0 & 0xff;
  o[17] = x4 >>>  8 & 0xff;
  o[18] = x4 >>> 16 & 0xff;
  o[19] = x4 >>> 24 & 0xff;

  o[20] = x5 >>>  0 & 0xff;
  o[21] = x5 >>>  8 & 0xff;
  o[22] = x5 >>> 16 & 0xff;
  o[23] = x5 >>> 24 & 0xff;

  o[24] = x6 >>>  0 & 0xff;
  o[25] = x6 >>>  8 & 0xff;
  o[26] = x6 >>> 16 & 0xff;
  o[27] = x6 >>> 24 & 0xff;

  o[28] = x7 >>>  0 & 0xff;
  o[29] = x7 >>>  8 & 0xff;
  o[30] = x7 >>> 16 & 0xff;
  o[31] = x7 >>> 24 & 0xff;

  o[32] = x8 >>>  0 & 0xff;
  o[33] = x8 >>>  8 & 0xff;
  o[34] = x8 >>> 16 & 0xff;
  o[35] = x8 >>> 24 & 0xff;

  o[36] = x9 >>>  0 & 0xff;
  o[37] = x9 >>>  8 & 0xff;
  o[38] = x9 >>> 16 & 0xff;
  o[39] = x9 >>> 24 & 0xff;

  o[40] = x10 >>>  0 & 0xff;
  o[41] = x10 >>>  8 & 0xff;
  o[42] = x10 >>> 16 & 0xff;
  o[43] = x10 >>> 24 & 0xff;

  o[44] = x11 >>>  0 & 0xff;
  o[45] = x11 >>>  8 & 0xff;
  o[46] = x11 >>> 16 & 0xff;
  o[47] = x11 >>> 24 & 0xff;

  o[48] = x12 >>>  0 & 0xff;
  o[49] = x12 >>>  8 & 0xff;
  o[50] = x12 >>> 16 & 0xff;
  o[51] = x12 >>> 24 & 0xff;

  o[52] = x13 >>>  0 & 0xff;
  o[53] = x13 >>>  8 & 0xff;
  o[54] = x13 >>> 16 & 0xff;
  o[55] = x13 >>> 24 & 0xff;

  o[56] = x14 >>>  0 & 0xff;
  o[57] = x14 >>>  8 & 0xff;
  o[58] = x14 >>> 16 & 0xff;
  o[59] = x14 >>> 24 & 0xff;

  o[60] = x15 >>>  0 & 0xff;
  o[61] = x15 >>>  8 & 0xff;
  o[62] = x15 >>> 16 & 0xff;
  o[63] = x15 >>> 24 & 0xff;
}

function core_hsalsa20(o,p,k,c) {
  var j0  = c[ 0] & 0xff | (c[ 1] & 0xff)<<8 | (c[ 2] & 0xff)<<16 | (c[ 3] & 0xff)<<24,
      j1  = k[ 0] & 0xff | (k[ 1] & 0xff)<<8 | (k[ 2] & 0xff)<<16 | (k[ 3] & 0xff)<<24,
      j2  = k[ 4] & 0xff | (k[ 5] & 0xff)<<8 | (k[ 6] & 0xff)<<16 | (k[ 7] & 0xff)<<24,
      j3  = k[ 8] & 0xff | (k[ 9] & 0xff)<<8 | (k[10] & 0xff)<<16 | (k[11] & 0xff)<<24,
      j4  = k[12] & 0xff | (k[13] & 0xff)<<8 | (k[14] & 0xff)<<16 | (k[15] & 0xff)<<24,
      j5  = c[ 4] & 0xff | (c[ 5] & 0xff)<<8 | (c[ 6] & 0xff)<<16 | (c[ 7] & 0xff)<<24,
      j6  = p[ 0] & 0xff | (p[ 1] & 0xff)<<8 | (p[ 2] & 0xff)<<16 | (p[ 3] & 0xff)<<24,
      j7  = p[ 4] & 0xff | (p[ 5] & 0xff)<<8 | (p[ 6] & 0xff)<<16 | (p[ 7] & 0xff)<<24,
      j8  = p[ 8] & 0xff | (p[ 9] & 0xff)<<8 | (p[10] & 0xff)<<16 | (p[11] & 0xff)<<24,
      j9  = p[12] & 0xff | (p[13] & 0xff)<<8 | (p[14] & 0xff)<<16 | (p[15] & 0xff)<<24,
      j10 = c[ 8] & 0xff | (c[ 9] & 0xff)<<8 | (c[10] & 0xff)<<16 | (c[11] & 0xff)<<24,
      j11 = k[16] & 0xff | (k[17] & 0xff)<<8 | (k[18] & 0xff)<<16 | (k[19] & 0xff)<<24,
      j12 = k[20] & 0xff | (k[21] & 0xff)<<8 | (k[22] & 0xff)<<16 | (k[23] & 0xff)<<24,
      j13 = k[24] & 0xff | (k[25] & 0xff)<<8 | (k[26] & 0xff)<<16 | (k[27] & 0xff)<<24,
      j14 = k[28] & 0xff | (k[29] & 0xff)<<8 | (k[30] & 0xff)<<16 | (k[31] & 0xff)<<24,
      j15 = c[12] & 0xff | (c[13] & 0xff)<<8 | (c[14] & 0xff)<<16 | (c[15] & 0xff)<<24;

  var x0 = j0, x1 = j1, x2 = j2, x3 = j3, x4 = j4, x5 = j5, x6 = j6, x7 = j7,
      x8 = j8, x9 = j9, x10 = j10, x11 = j11, x12 = j12, x13 = j13, x14 = j14,
      x15 = j15, u;

  for (var i = 0; i < 20; i += 2) {
    u = x0 + x12 | 0;
    x4 ^= u<<7 | u>>>(32-7);
    u = x4 + x0 | 0;
    x8 ^= u<<9 | u>>>(32-9);
    u = x8 + x4 | 0;
    x12 ^= u<<13 | u>>>(32-13);
    u = x12 + x8 | 0;
    x0 ^= u<<18 | u>>>(32-18);

    u = x5 + x1 | 0;
    x9 ^= u<<7 | u>>>(32-7);
    u = x9 + x5 | 0;
    x13 ^= u<<9 | u>>>(32-9);
    u = x13 + x9 | 0;
    x1 ^= u<<13 | u>>>(32-13);
    u = x1 + x13 | 0;
    x5 ^= u<<18 | u>>>(32-18);

    u = x10 + x6 | 0;
    x14 ^= u<<7 | u>>>(32-7);
    u = x14 + x10 | 0;
    x2 ^= u<<9 | u>>>(32-9);
    u = x2 + x14 | 0;
    x6 ^= u<<13 | u>>>(32-13);
    u = x6 + x2 | 0;
    x10 ^= u<<18 | u>>>(32-18);

    u = x15 + x11 | 0;
    x3 ^= u<<7 | u>>>(32-7);
    u = x3 + x15 | 0;
    x7 ^= u<<9 | u>>>(32-9);
    u = x7 + x3 | 0;
    x11 ^= u<<13 | u>>>(32-13);
    u = x11 + x7 | 0;
    x15 ^= u<<18 | u>>>(32-18);

    u = x0 + x3 | 0;
    x1 ^= u<<7 | u>>>(32-7);
    u = x1 + x0 | 0;
    x2 ^= u<<9 | u>>>(32-9);
    u = x2 + x1 | 0;
    x3 ^= u<<13 | u>>>(32-13);
    u = x3 + x2 | 0;
    x0 ^= u<<18 | u>>>(32-18);

    u = x5 + x4 | 0;
    x6 ^= u<<7 | u>>>(32-7);
    u = x6 + x5 | 0;
    x7 ^= u<<9 | u>>>(32-9);
    u = x7 + x6 | 0;
    x4 ^= u<<13 | u>>>(32-13);
    u = x4 + x7 | 0;
    x5 ^= u<<18 | u>>>(32-18);

    u = x10 + x9 | 0;
    x11 ^= u<<7 | u>>>(32-7);
    u = x11 + x10 | 0;
    x8 ^= u<<9 | u>>>(32-9);
    u = x8 + x11 | 0;
    x9 ^= u<<13 | u>>>(32-13);
    u = x9 + x8 | 0;
    x10 ^= u<<18 | u>>>(32-18);

    u = x15 + x14 | 0;
    x12 ^= u<<7 | u>>>(32-7);
    u = x12 + x15 | 0;
    x13 ^= u<<9 | u>>>(32-9);
    u = x13 + x12 | 0;
    x14 ^= u<<13 | u>>>(32-13);
    u = x14 + x13 | 0;
    x15 ^= u<<18 | u>>>(32-18);
  }

  o[ 0] = x0 >>>  0 & 0xff;
  o[ 1] = x0 >>>  8 & 0xff;
  o[ 2] = x0 >>> 16 & 0xff;
  o[ 3] = x0 >>> 24 & 0xff;

  o[ 4] = x5 >>>  0 & 0xff;
  o[ 5] = x5 >>>  8 & 0xff;
  o[ 6] = x5 >>> 16 & 0xff;
  o[ 7] = x5 >>> 24 & 0xff;

  o[ 8] = x10 >>>  0 & 0xff;
  o[ 9] = x10 >>>  8 & 0xff;
  o[10] = x10 >>> 16 & 0xff;
  o[11] = x10 >>> 24 & 0xff;

  o[12] = x15 >>>  0 & 0xff;
  o[13] = x15 >>>  8 & 0xff;
  o[14] = x15 >>> 16 & 0xff;
  o[15] = x15 >>> 24 & 0xff;

  o[16] = x6 >>>  0 & 0xff;
  o[17] = x6 >>>  8 & 0xff;
  o[18] = x6 >>> 16 & 0xff;
  o[19] = x6 >>> 24 & 0xff;

  o[20] = x7 >>>  0 & 0xff;
  o[21] = x7 >>>  8 & 0xff;
  o[22] = x7 >>> 16 & 0xff;
  o[23] = x7 >>> 24 & 0xff;

  o[24] = x8 >>>  0 & 0xff;
  o[25] = x8 >>>  8 & 0xff;
  o[26] = x8 >>> 16 & 0xff;
  o[27] = x8 >>> 24 & 0xff;

  o[28] = x9 >>>  0 & 0xff;
  o[29] = x9 >>>  8 & 0xff;
  o[30] = x9 >>> 16 & 0xff;
  o[31] = x9 >>> 24 & 0xff;
}

function crypto_core_salsa20(out,inp,k,c) {
  core_salsa20(out,inp,k,c);
}

function crypto_core_hsalsa20(out,inp,k,c) {
  core_hsalsa20(out,inp,k,c);
}

var sigma = new Uint8Array([101, 120, 112, 97, 110, 100, 32, 51, 50, 45, 98, 121, 116, 101, 32, 107]);
            // "expand 32-byte k"

function crypto_stream_salsa20_xor(c,cpos,m,mpos,b,n,k) {
  var z = new Uint8Array(16), x = new Uint8Array(64);
  var u, i;
  for (i = 0; i < 16; i++) z[i] = 0;
  for (i = 0; i < 8; i++) z[i] = n[i];
  while (b >= 64) {
    crypto_core_salsa20(x,z,k,sigma);
    for (i = 0; i < 64; i++) c[cpos+i] = m[mpos+i] ^ x[i];
    u = 1;
    for (i = 8; i < 16; i++) {
      u = u + (z[i] & 0xff) | 0;
      z[i] = u & 0xff;
      u >>>= 8;
    }
    b -= 64;
    cpos += 64;
    mpos += 64;
  }
  if (b > 0) {
    crypto_core_salsa20(x,z,k,sigma);
    for (i = 0; i < b; i++) c[cpos+i] = m[mpos+i] ^ x[i];
  }
  return 0;
}

function crypto_stream_salsa20(c,cpos,b,n,k) {
  var z = new Uint8Array(16), x = new Uint8Array(64);
  var u, i;
  for (i = 0; i < 16; i++) z[i] = 0;
  for (i = 0; i < 8; i++) z[i] = n[i];
  while (b >= 64) {
    crypto_core_salsa20(x,z,k,sigma);
    for (i = 0; i < 64; i++) c[cpos+i] = x[i];
    u = 1;
    for (i = 8; i < 16; i++) {
      u = u + (z[i] & 0xff) | 0;
      z[i] = u & 0xff;
      u >>>= 8;
    }
    b -= 64;
    cpos += 64;
  }
  if (b > 0) {
    crypto_core_salsa20(x,z,k,sigma);
    for (i = 0; i < b; i++) c[cpos+i] = x[i];
  }
  return 0;
}

function crypto_stream(c,cpos,d,n,k) {
  var s = new Uint8Array(32);
  crypto_core_hsalsa20(s,n,k,sigma);
  var sn = new Uint8Array(8);
  for (var i = 0; i < 8; i++) sn[i] = n[i+16];
  return crypto_stream_salsa20(c,cpos,d,sn,s);
}

function crypto_stream_xor(c,cpos,m,mpos,d,n,k) {
  var s = new Uint8Array(32);
  crypto_core_hsalsa20(s,n,k,sigma);
  var sn = new Uint8Array(8);
  for (var i = 0; i < 8; i++) sn[i] = n[i+16];
  return crypto_stream_salsa20_xor(c,cpos,m,mpos,d,sn,s);
}

/*
* Port of Andrew Moon's Poly1305-donna-16. Public domain.
* https://github.com/floodyberry/poly1305-donna
*/

var poly1305 = function(key) {
  this.buffer = new Uint8Array(16);
  this.r = new Uint16Array(10);
  this.h = new Uint16Array(10);
  this.pad = new Uint16Array(8);
  this.leftover = 0;
  this.fin = 0;

  var t0, t1, t2, t3, t4, t5, t6, t7;

  t0 = key[ 0] & 0xff | (key[ 1] & 0xff) << 8; this.r[0] = ( t0                     ) & 0x1fff;
  t1 = key[ 2] & 0xff | (key[ 3] & 0xff) << 8; this.r[1] = ((t0 >>> 13) | (t1 <<  3)) & 0x1fff;
  t2 = key[ 4] & 0xff | (key[ 5] & 0xff) << 8; this.r[2] = ((t1 >>> 10) | (t2 <<  6)) & 0x1f03;
  t3 = key[ 6] & 0xff | (key[ 7] & 0xff) << 8; this.r[3] = ((t2 >>>  7) | (t3 <<  9)) & 0x1fff;
  t4 = key[ 8] & 0xff | (key[ 9] & 0xff) << 8; this.r[4] = ((t3 >>>  4) | (t4 << 12)) & 0x00ff;
  this.r[5] = ((t4 >>>  1)) & 0x1ffe;
  t5 = key[10] & 0xff | (key[11] & 0xff) << 8; this.r[6] = ((t4 >>> 14) | (t5 <<  2)) & 0x1fff;
  t6 = key[12] & 0xff | (key[13] & 0xff) << 8; this.r[7] = ((t5 >>> 11) | (t6 <<  5)) & 0x1f81;
  t7 = key[14] & 0xff | (key[15] & 0xff) << 8; this.r[8] = ((t6 >>>  8) | (t7 <<  8)) & 0x1fff;
  this.r[9] = ((t7 >>>  5)) & 0x007f;

  this.pad[0] = key[16] & 0xff | (key[17] & 0xff) << 8;
  this.pad[1] = key[18] & 0xff | (key[19] & 0xff) << 8;
  this.pad[2] = key[20] & 0xff | (key[21] & 0xff) << 8;
  this.pad[3] = key[22] & 0xff | (key[23] & 0xff) << 8;
  this.pad[4] = key[24] & 0xff | (key[25] & 0xff) << 8;
  this.pad[5] = key[26] & 0xff | (key[27] & 0xff) << 8;
  this.pad[6] = key[28] & 0xff | (key[29] & 0xff) << 8;
  this.pad[7] = key[30] & 0xff | (key[31] & 0xff) << 8;
};

poly1305.prototype.blocks = function(m, mpos, bytes) {
  var hibit = this.fin ? 0 : (1 << 11);
  var t0, t1, t2, t3, t4, t5, t6, t7, c;
  var d0, d1, d2, d3, d4, d5, d6, d7, d8, d9;

  var h0 = this.h[0],
      h1 = this.h[1],
      h2 = this.h[2],
      h3 = this.h[3],
      h4 = this.h[4],
      h5 = this.h[5],
      h6 = this.h[6],
      h7 = this.h[7],
      h8 = this.h[8],
      h9 = this.h[9];

  var r0 = this.r[0],
      r1 = this.r[1],
      r2 = this.r[2],
      r3 = this.r[3],
      r4 = this.r[4],
      r5 = this.r[5],
      r6 = this.r[6],
      r7 = this.r[7],
      r8 = this.r[8],
      r9 = this.r[9];

  while (bytes >= 16) {
    t0 = m[mpos+ 0] & 0xff | (m[mpos+ 1] & 0xff) << 8; h0 += ( t0                     ) & 0x1fff;
    t1 = m[mpos+ 2] & 0xff | (m[mpos+ 3] & 0xff) << 8; h1 += ((t0 >>> 13) | (t1 <<  3)) & 0x1fff;
    t2 = m[mpos+ 4] & 0xff | (m[mpos+ 5] & 0xff) << 8; h2 += ((t1 >>> 10) | (t2 <<  6)) & 0x1fff;
    t3 = m[mpos+ 6] & 0xff | (m[mpos+ 7] & 0xff) << 8; h3 += ((t2 >>>  7) | (t3 <<  9)) & 0x1fff;
    t4 = m[mpos+ 8] & 0xff | (m[mpos+ 9] & 0xff) << 8; h4 += ((t3 >>>  4) | (t4 << 12)) & 0x1fff;
    h5 += ((t4 >>>  1)) & 0x1fff;
    t5 = m[mpos+10] & 0xff | (m[mpos+11] & 0xff) << 8; h6 += ((t4 >>> 14) | (t5 <<  2)) & 0x1fff;
    t6 = m[mpos+12] & 0xff | (m[mpos+13] & 0xff) << 8; h7 += ((t5 >>> 11) | (t6 <<  5)) & 0x1fff;
    t7 = m[mpos+14] & 0xff | (m[mpos+15] & 0xff) << 8; h8 += ((t6 >>>  8) | (t7 <<  8)) & 0x1fff;
    h9 += ((t7 >>> 5)) | hibit;

    c = 0;

    d0 = c;
    d0 += h0 * r0;
    d0 += h1 * (5 * r9);
    d0 += h2 * (5 * r8);
    d0 += h3 * (5 * r7);
    d0 += h4 * (5 * r6);
    c = (d0 >>> 13); d0 &= 0x1fff;
    d0 += h5 * (5 * r5);
    d0 += h6 * (5 * r4);
    d0 += h7 * (5 * r3);
    d0 += h8 * (5 * r2);
    d0 += h9 * (5 * r1);
    c += (d0 >>> 13); d0 &= 0x1fff;

    d1 = c;
    d1 += h0 * r1;
    d1 += h1 * r0;
    d1 += h2 * (5 * r9);
    d1 += h3 * (5 * r8);
    d1 += h4 * (5 * r7);
    c = (d1 >>> 13); d1 &= 0x1fff;
    d1 += h5 * (5 * r6);
    d1 += h6 * (5 * r5);
    d1 += h7 * (5 * r4);
    d1 += h8 * (5 * r3);
    d1 += h9 * (5 * r2);
    c += (d1 >>> 13); d1 &= 0x1fff;

    d2 = c;
    d2 += h0 * r2;
    d2 += h1 * r1;
    d2 += h2 * r0;
    d2 += h3 * (5 * r9);
    d2 += h4 * (5 * r8);
    c = (d2 >>> 13); d2 &= 0x1fff;
    d2 += h5 * (5 * r7);
    d2 += h6 * (5 * r6);
    d2 += h7 * (5 * r5);
    d2 += h8 * (5 * r4);
    d2 += h9 * (5 * r3);
    c += (d2 >>> 13); d2 &= 0x1fff;

    d3 = c;
    d3 += h0 * r3;
    d3 += h1 * r2;
    d3 += h2 * r1;
    d3 += h3 * r0;
    d3 += h4 * (5 * r9);
    c = (d3 >>> 13); d3 &= 0x1fff;
    d3 += h5 * (5 * r8);
    d3 += h6 * (5 * r7);
    d3 += h7 * (5 * r6);
    d3 += h8 * (5 * r5);
    d3 += h9 * (5 * r4);
    c += (d3 >>> 13); d3 &= 0x1fff;

    d4 = c;
    d4 += h0 * r4;
    d4 += h1 * r3;
    d4 += h2 * r2;
    d4 += h3 * r1;
    d4 += h4 * r0;
    c = (d4 >>> 13); d4 &= 0x1fff;
    d4 += h5 * (5 * r9);
    d4 += h6 * (5 * r8);
    d4 += h7 * (5 * r7);
    d4 += h8 * (5 * r6);
    d4 += h9 * (5 * r5);
    c += (d4 >>> 13); d4 &= 0x1fff;

    d5 = c;
    d5 += h0 * r5;
    d5 += h1 * r4;
    d5 += h2 * r3;
    d5 += h3 * r2;
    d5 += h4 * r1;
    c = (d5 >>> 13); d5 &= 0x1fff;
    d5 += h5 * r0;
    d5 += h6 * (5 * r9);
    d5 += h7 * (5 * r8);
    d5 += h8 * (5 * r7);
    d5 += h9 * (5 * r6);
    c += (d5 >>> 13); d5 &= 0x1fff;

    d6 = c;
    d6 += h0 * r6;
    d6 += h1 * r5;
    d6 += h2 * r4;
    d6 += h3 * r3;
    d6 += h4 * r2;
    c = (d6 >>> 13); d6 &= 0x1fff;
    d6 += h5 * r1;
    d6 += h6 * r0;
    d6 += h7 * (5 * r9);
    d6 += h8 * (5 * r8);
    d6 += h9 * (5 * r7);
    c += (d6 >>> 13); d6 &= 0x1fff;

    d7 = c;
    d7 += h0 * r7;
    d7 += h1 * r6;
    d7 += h2 * r5;
    d7 += h3 * r4;
    d7 += h4 * r3;
    c = (d7 >>> 13); d7 &= 0x1fff;
    d7 += h5 * r2;
    d7 += h6 * r1;
    d7 += h7 * r0;
    d7 += h8 * (5 * r9);
    d7 += h9 * (5 * r8);
    c += (d7 >>> 13); d7 &= 0x1fff;

    d8 = c;
    d8 += h0 * r8;
    d8 += h1 * r7;
    d8 += h2 * r6;
    d8 += h3 * r5;
    d8 += h4 * r4;
    c = (d8 >>> 13); d8 &= 0x1fff;
    d8 += h5 * r3;
    d8 += h6 * r2;
    d8 += h7 * r1;
    d8 += h8 * r0;
    d8 += h9 * (5 * r9);
    c += (d8 >>> 13); d8 &= 0x1fff;

    d9 = c;
    d9 += h0 * r9;
    d9 += h1 * r8;
    d9 += h2 * r7;
    d9 += h3 * r6;
    d9 += h4 * r5;
    c = (d9 >>> 13); d9 &= 0x1fff;
    d9 += h5 * r4;
    d9 += h6 * r3;
    d9 += h7 * r2;
    d9 += h8 * r1;
    d9 += h9 * r0;
    c += (d9 >>> 13); d9 &= 0x1fff;

    c = (((c << 2) + c)) | 0;
    c = (c + d0) | 0;
    d0 = c & 0x1fff;
    c = (c >>> 13);
    d1 += c;

    h0 = d0;
    h1 = d1;
    h2 = d2;
    h3 = d3;
    h4 = d4;
    h5 = d5;
    h6 = d6;
    h7 = d7;
    h8 = d8;
    h9 = d9;

    mpos += 16;
    bytes -= 16;
  }
  this.h[0] = h0;
  this.h[1] = h1;
  this.h[2] = h2;
  this.h[3] = h3;
  this.h[4] = h4;
  this.h[5] = h5;
  this.h[6] = h6;
  this.h[7] = h7;
  this.h[8] = h8;
  this.h[9] = h9;
};

poly1305.prototype.finish = function(mac, macpos) {
  var g = new Uint16Array(10);
  var c, mask, f, i;

  if (this.leftover) {
    i = this.leftover;
    this.buffer[i++] = 1;
    for (; i < 16; i++) this.buffer[i] = 0;
    this.fin = 1;
    this.blocks(this.buffer, 0, 16);
  }

  c = this.h[1] >>> 13;
  this.h[1] &= 0x1fff;
  for (i = 2; i < 10; i++) {
    this.h[i] += c;
    c = this.h[i] >>> 13;
    this.h[i] &= 0x1fff;
  }
  this.h[0] += (c * 5);
  c = this.h[0] >>> 13;
  this.h[0] &= 0x1fff;
  this.h[1] += c;
  c = this.h[1] >>> 13;
  this.h[1] &= 0x1fff;
  this.h[2] += c;

  g[0] = this.h[0] + 5;
  c = g[0] >>> 13;
  g[0] &= 0x1fff;
  for (i = 1; i < 10; i++) {
    g[i] = this.h[i] + c;
    c = g[i] >>> 13;
    g[i] &= 0x1fff;
  }
  g[9] -= (1 << 13);

  mask = (c ^ 1) - 1;
  for (i = 0; i < 10; i++) g[i] &= mask;
  mask = ~mask;
  for (i = 0; i < 10; i++) this.h[i] = (this.h[i] & mask) | g[i];

  this.h[0] = ((this.h[0]       ) | (this.h[1] << 13)                    ) & 0xffff;
  this.h[1] = ((this.h[1] >>>  3) | (this.h[2] << 10)                    ) & 0xffff;
  this.h[2] = ((this.h[2] >>>  6) | (this.h[3] <<  7)                    ) & 0xffff;
  this.h[3] = ((this.h[3] >>>  9) | (this.h[4] <<  4)                    ) & 0xffff;
  this.h[4] = ((this.h[4] >>> 12) | (this.h[5] <<  1) | (this.h[6] << 14)) & 0xffff;
  this.h[5] = ((this.h[6] >>>  2) | (this.h[7] << 11)                    ) & 0xffff;
  this.h[6] = ((this.h[7] >>>  5) | (this.h[8] <<  8)                    ) & 0xffff;
  this.h[7] = ((this.h[8] >>>  8) | (this.h[9] <<  5)                    ) & 0xffff;

  f = this.h[0] + this.pad[0];
  this.h[0] = f & 0xffff;
  for (i = 1; i < 8; i++) {
    f = (((this.h[i] + this.pad[i]) | 0) + (f >>> 16)) | 0;
    this.h[i] = f & 0xffff;
  }

  mac[macpos+ 0] = (this.h[0] >>> 0) & 0xff;
  mac[macpos+ 1] = (this.h[0] >>> 8) & 0xff;
  mac[macpos+ 2] = (this.h[1] >>> 0) & 0xff;
  mac[macpos+ 3] = (this.h[1] >>> 8) & 0xff;
  mac[macpos+ 4] = (this.h[2] >>> 0) & 0xff;
  mac[macpos+ 5] = (this.h[2] >>> 8) & 0xff;
  mac[macpos+ 6] = (this.h[3] >>> 0) & 0xff;
  mac[macpos+ 7] = (this.h[3] >>> 8) & 0xff;
  mac[macpos+ 8] = (this.h[4] >>> 0) & 0xff;
  mac[macpos+ 9] = (this.h[4] >>> 8) & 0xff;
  mac[macpos+10] = (this.h[5] >>> 0) & 0xff;
  mac[macpos+11] = (this.h[5] >>> 8) & 0xff;
  mac[macpos+12] = (this.h[6] >>> 0) & 0xff;
  mac[macpos+13] = (this.h[6] >>> 8) & 0xff;
  mac[macpos+14] = (this.h[7] >>> 0) & 0xff;
  mac[macpos+15] = (this.h[7] >>> 8) & 0xff;
};

poly1305.prototype.update = function(m, mpos, bytes) {
  var i, want;

  if (this.leftover) {
    want = (16 - this.leftover);
    if (want > bytes)
      want = bytes;
    for (i = 0; i < want; i++)
      this.buffer[this.leftover + i] = m[mpos+i];
    bytes -= want;
    mpos += want;
    this.leftover += want;
    if (this.leftover < 16)
      return;
    this.blocks(this.buffer, 0, 16);
    this.leftover = 0;
  }

  if (bytes >= 16) {
    want = bytes - (bytes % 16);
    this.blocks(m, mpos, want);
    mpos += want;
    bytes -= want;
  }

  if (bytes) {
    for (i = 0; i < bytes; i++)
      this.buffer[this.leftover + i] = m[mpos+i];
    this.leftover += bytes;
  }
};

function crypto_onetimeauth(out, outpos, m, mpos, n, k) {
  var s = new poly1305(k);
  s.update(m, mpos, n);
  s.finish(out, outpos);
  return 0;
}

function crypto_onetimeauth_verify(h, hpos, m, mpos, n, k) {
  var x = new Uint8Array(16);
  crypto_onetimeauth(x,0,m,mpos,n,k);
  return crypto_verify_16(h,hpos,x,0);
}

function crypto_secretbox(c,m,d,n,k) {
  var i;
  if (d < 32) return -1;
  crypto_stream_xor(c,0,m,0,d,n,k);
  crypto_onetimeauth(c, 16, c, 32, d - 32, c);
  for (i = 0; i < 16; i++) c[i] = 0;
  return 0;
}

function crypto_secretbox_open(m,c,d,n,k) {
  var i;
  var x = new Uint8Array(32);
  if (d < 32) return -1;
  crypto_stream(x,0,32,n,k);
  if (crypto_onetimeauth_verify(c, 16,c, 32,d - 32,x) !== 0) return -1;
  crypto_stream_xor(m,0,c,0,d,n,k);
  for (i = 0; i < 32; i++) m[i] = 0;
  return 0;
}

function set25519(r, a) {
  var i;
  for (i = 0; i < 16; i++) r[i] = a[i]|0;
}

function car25519(o) {
  var i, v, c = 1;
  for (i = 0; i < 16; i++) {
    v = o[i] + c + 65535;
    c = Math.floor(v / 65536);
    o[i] = v - c * 65536;
  }
  o[0] += c-1 + 37 * (c-1);
}

function sel25519(p, q, b) {
  var t, c = ~(b-1);
  for (var i = 0; i < 16; i++) {
    t = c & (p[i] ^ q[i]);
    p[i] ^= t;
    q[i] ^= t;
  }
}

function pack25519(o, n) {
  var i, j, b;
  var m = gf(), t = gf();
  for (i = 0; i < 16; i++) t[i] = n[i];
  car25519(t);
  car25519(t);
  car25519(t);
  for (j = 0; j < 2; j++) {
    m[0] = t[0] - 0xffed;
    for (i = 1; i < 15; i++) {
      m[i] = t[i] - 0xffff - ((m[i-1]>>16) & 1);
      m[i-1] &= 0xffff;
    }
    m[15] = t[15] - 0x7fff - ((m[14]>>16) & 1);
    b = (m[15]>>16) & 1;
    m[14] &= 0xffff;
    sel25519(t, m, 1-b);
  }
  for (i = 0; i < 16; i++) {
    o[2*i] = t[i] & 0xff;
    o[2*i+1] = t[i]>>8;
  }
}

function neq25519(a, b) {
  var c = new Uint8Array(32), d = new Uint8Array(32);
  pack25519(c, a);
  pack25519(d, b);
  return crypto_verify_32(c, 0, d, 0);
}

function par25519(a) {
  var d = new Uint8Array(32);
  pack25519(d, a);
  return d[0] & 1;
}

function unpack25519(o, n) {
  var i;
  for (i = 0; i < 16; i++) o[i] = n[2*i] + (n[2*i+1] << 8);
  o[15] &= 0x7fff;
}

function A(o, a, b) {
  for (var i = 0; i < 16; i++) o[i] = a[i] + b[i];
}

function Z(o, a, b) {
  for (var i = 0; i < 16; i++) o[i] = a[i] - b[i];
}

function M(o, a, b) {
  var v, c,
     t0 = 0,  t1 = 0,  t2 = 0,  t3 = 0,  t4 = 0,  t5 = 0,  t6 = 0,  t7 = 0,
     t8 = 0,  t9 = 0, t10 = 0, t11 = 0, t12 = 0, t13 = 0, t14 = 0, t15 = 0,
    t16 = 0, t17 = 0, t18 = 0, t19 = 0, t20 = 0, t21 = 0, t22 = 0, t23 = 0,
    t24 = 0, t25 = 0, t26 = 0, t27 = 0, t28 = 0, t29 = 0, t30 = 0,
    b0 = b[0],
    b1 = b[1],
    b2 = b[2],
    b3 = b[3],
    b4 = b[4],
    b5 = b[5],
    b6 = b[6],
    b7 = b[7],
    b8 = b[8],
    b9 = b[9],
    b10 = b[10],
    b11 = b[11],
    b12 = b[12],
    b13 = b[13],
    b14 = b[14],
    b15 = b[15];

  v = a[0];
  t0 += v * b0;
  t1 += v * b1;
  t2 += v * b2;
  t3 += v * b3;
  t4 += v * b4;
  t5 += v * b5;
  t6 += v * b6;
  t7 += v * b7;
  t8 += v * b8;
  t9 += v * b9;
  t10 += v * b10;
  t11 += v * b11;
  t12 += v * b12;
  t13 += v * b13;
  t14 += v * b14;
  t15 += v * b15;
  v = a[1];
  t1 += v * b0;
  t2 += v * b1;
  t3 += v * b2;
  t4 += v * b3;
  t5 += v * b4;
  t6 += v * b5;
  t7 += v * b6;
  t8 += v * b7;
  t9 += v * b8;
  t10 += v * b9;
  t11 += v * b10;
  t12 += v * b11;
  t13 += v * b12;
  t14 += v * b13;
  t15 += v * b14;
  t16 += v * b15;
  v = a[2];
  t2 += v * b0;
  t3 += v * b1;
  t4 += v * b2;
  t5 += v * b3;
  t6 += v * b4;
  t7 += v * b5;
  t8 += v * b6;
  t9 += v * b7;
  t10 += v * b8;
  t11 += v * b9;
  t12 += v * b10;
  t13 += v * b11;
  t14 += v * b12;
  t15 += v * b13;
  t16 += v * b14;
  t17 += v * b15;
  v = a[3];
  t3 += v * b0;
  t4 += v * b1;
  t5 += v * b2;
  t6 += v * b3;
  t7 += v * b4;
  t8 += v * b5;
  t9 += v * b6;
  t10 += v * b7;
  t11 += v * b8;
  t12 += v * b9;
  t13 += v * b10;
  t14 += v * b11;
  t15 += v * b12;
  t16 += v * b13;
  t17 += v * b14;
  t18 += v * b15;
  v = a[4];
  t4 += v * b0;
  t5 += v * b1;
  t6 += v * b2;
  t7 += v * b3;
  t8 += v * b4;
  t9 += v * b5;
  t10 += v * b6;
  t11 += v * b7;
  t12 += v * b8;
  t13 += v * b9;
  t14 += v * b10;
  t15 += v * b11;
  t16 += v * b12;
  t17 += v * b13;
  t18 += v * b14;
  t19 += v * b15;
  v = a[5];
  t5 += v * b0;
  t6 += v * b1;
  t7 += v * b2;
  t8 += v * b3;
  t9 += v * b4;
  t10 += v * b5;
  t11 += v * b6;
  t12 += v * b7;
  t13 += v * b8;
  t14 += v * b9;
  t15 += v * b10;
  t16 += v * b11;
  t17 += v * b12;
  t18 += v * b13;
  t19 += v * b14;
  t20 += v * b15;
  v = a[6];
  t6 += v * b0;
  t7 += v * b1;
  t8 += v * b2;
  t9 += v * b3;
  t10 += v * b4;
  t11 += v * b5;
  t12 += v * b6;
  t13 += v * b7;
  t14 += v * b8;
  t15 += v * b9;
  t16 += v * b10;
  t17 += v * b11;
  t18 += v * b12;
  t19 += v * b13;
  t20 += v * b14;
  t21 += v * b15;
  v = a[7];
  t7 += v * b0;
  t8 += v * b1;
  t9 += v * b2;
  t10 += v * b3;
  t11 += v * b4;
  t12 += v * b5;
  t13 += v * b6;
  t14 += v * b7;
  t15 += v * b8;
  t16 += v * b9;
  t17 += v * b10;
  t18 += v * b11;
  t19 += v * b12;
  t20 += v * b13;
  t21 += v * b14;
  t22 += v * b15;
  v = a[8];
  t8 += v * b0;
  t9 += v * b1;
  t10 += v * b2;
  t11 += v * b3;
  t12 += v * b4;
  t13 += v * b5;
  t14 += v * b6;
  t15 += v * b7;
  t16 += v * b8;
  t17 += v * b9;
  t18 += v * b10;
  t19 += v * b11;
  t20 += v * b12;
  t21 += v * b13;
  t22 += v * b14;
  t23 += v * b15;
  v = a[9];
  t9 += v * b0;
  t10 += v * b1;
  t11 += v * b2;
  t12 += v * b3;
  t13 += v * b4;
  t14 += v * b5;
  t15 += v * b6;
  t16 += v * b7;
  t17 += v * b8;
  t18 += v * b9;
  t19 += v * b10;
  t20 += v * b11;
  t21 += v * b12;
  t22 += v * b13;
  t23 += v * b14;
  t24 += v * b15;
  v = a[10];
  t10 += v * b0;
  t11 += v * b1;
  t12 += v * b2;
  t13 += v * b3;
  t14 += v * b4;
  t15 += v * b5;
  t16 += v * b6;
  t17 += v * b7;
  t18 += v * b8;
  t19 += v * b9;
  t20 += v * b10;
  t21 += v * b11;
  t22 += v * b12;
  t23 += v * b13;
  t24 += v * b14;
  t25 += v * b15;
  v = a[11];
  t11 += v * b0;
  t12 += v * b1;
  t13 += v * b2;
  t14 += v * b3;
  t15 += v * b4;
  t16 += v * b5;
  t17 += v * b6;
  t18 += v * b7;
  t19 += v * b8;
  t20 += v * b9;
  t21 += v * b10;
  t22 += v * b11;
  t23 += v * b12;
  t24 += v * b13;
  t25 += v * b14;
  t26 += v * b15;
  v = a[12];
  t12 += v * b0;
  t13 += v * b1;
  t14 += v * b2;
  t15 += v * b3;
  t16 += v * b4;
  t17 += v * b5;
  t18 += v * b6;
  t19 += v * b7;
  t20 += v * b8;
  t21 += v * b9;
  t22 += v * b10;
  t23 += v * b11;
  t24 += v * b12;
  t25 += v * b13;
  t26 += v * b14;
  t27 += v * b15;
  v = a[13];
  t13 += v * b0;
  t14 += v * b1;
  t15 += v * b2;
  t16 += v * b3;
  t17 += v * b4;
  t18 += v * b5;
  t19 += v * b6;
  t20 += v * b7;
  t21 += v * b8;
  t22 += v * b9;
  t23 += v * b10;
  t24 += v * b11;
  t25 += v * b12;
  t26 += v * b13;
  t27 += v * b14;
  t28 += v * b15;
  v = a[14];
  t14 += v * b0;
  t15 += v * b1;
  t16 += v * b2;
  t17 += v * b3;
  t18 += v * b4;
  t19 += v * b5;
  t20 += v * b6;
  t21 += v * b7;
  t22 += v * b8;
  t23 += v * b9;
  t24 += v * b10;
  t25 += v * b11;
  t26 += v * b12;
  t27 += v * b13;
  t28 += v * b14;
  t29 += v * b15;
  v = a[15];
  t15 += v * b0;
  t16 += v * b1;
  t17 += v * b2;
  t18 += v * b3;
  t19 += v * b4;
  t20 += v * b5;
  t21 += v * b6;
  t22 += v * b7;
  t23 += v * b8;
  t24 += v * b9;
  t25 += v * b10;
  t26 += v * b11;
  t27 += v * b12;
  t28 += v * b13;
  t29 += v * b14;
  t30 += v * b15;

  t0  += 38 * t16;
  t1  += 38 * t17;
  t2  += 38 * t18;
  t3  += 38 * t19;
  t4  += 38 * t20;
  t5  += 38 * t21;
  t6  += 38 * t22;
  t7  += 38 * t23;
  t8  += 38 * t24;
  t9  += 38 * t25;
  t10 += 38 * t26;
  t11 += 38 * t27;
  t12 += 38 * t28;
  t13 += 38 * t29;
  t14 += 38 * t30;
  // t15 left as is

  // first car
  c = 1;
  v =  t0 + c + 65535; c = Math.floor(v / 65536);  t0 = v - c * 65536;
  v =  t1 + c + 65535; c = Math.floor(v / 65536);  t1 = v - c * 65536;
  v =  t2 + c + 65535; c = Math.floor(v / 65536);  t2 = v - c * 65536;
  v =  t3 + c + 65535; c = Math.floor(v / 65536);  t3 = v - c * 65536;
  v =  t4 + c + 65535; c = Math.floor(v / 65536);  t4 = v - c * 65536;
  v =  t5 + c + 65535; c = Math.floor(v / 65536);  t5 = v - c * 65536;
  v =  t6 + c + 65535; c = Math.floor(v / 65536);  t6 = v - c * 65536;
  v =  t7 + c + 65535; c = Math.floor(v / 65536);  t7 = v - c * 65536;
  v =  t8 + c + 65535; c = Math.floor(v / 65536);  t8 = v - c * 65536;
  v =  t9 + c + 65535; c = Math.floor(v / 65536);  t9 = v - c * 65536;
  v = t10 + c + 65535; c = Math.floor(v / 65536); t10 = v - c * 65536;
  v = t11 + c + 65535; c = Math.floor(v / 65536); t11 = v - c * 65536;
  v = t12 + c + 65535; c = Math.floor(v / 65536); t12 = v - c * 65536;
  v = t13 + c + 65535; c = Math.floor(v / 65536); t13 = v - c * 65536;
  v = t14 + c + 65535; c = Math.floor(v / 65536); t14 = v - c * 65536;
  v = t15 + c + 65535; c = Math.floor(v / 65536); t15 = v - c * 65536;
  t0 += c-1 + 37 * (c-1);

  // second car
  c = 1;
  v =  t0 + c + 65535; c = Math.floor(v / 65536);  t0 = v - c * 65536;
  v =  t1 + c + 65535; c = Math.floor(v / 65536);  t1 = v - c * 65536;
  v =  t2 + c + 65535; c = Math.floor(v / 65536);  t2 = v - c * 65536;
  v =  t3 + c + 65535; c = Math.floor(v / 65536);  t3 = v - c * 65536;
  v =  t4 + c + 65535; c = Math.floor(v / 65536);  t4 = v - c * 65536;
  v =  t5 + c + 65535; c = Math.floor(v / 65536);  t5 = v - c * 65536;
  v =  t6 + c + 65535; c = Math.floor(v / 65536);  t6 = v - c * 65536;
  v =  t7 + c + 65535; c = Math.floor(v / 65536);  t7 = v - c * 65536;
  v =  t8 + c + 65535; c = Math.floor(v / 65536);  t8 = v - c * 65536;
  v =  t9 + c + 65535; c = Math.floor(v / 65536);  t9 = v - c * 65536;
  v = t10 + c + 65535; c = Math.floor(v / 65536); t10 = v - c * 65536;
  v = t11 + c + 65535; c = Math.floor(v / 65536); t11 = v - c * 65536;
  v = t12 + c + 65535; c = Math.floor(v / 65536); t12 = v - c * 65536;
  v = t13 + c + 65535; c = Math.floor(v / 65536); t13 = v - c * 65536;
  v = t14 + c + 65535; c = Math.floor(v / 65536); t14 = v - c * 65536;
  v = t15 + c + 65535; c = Math.floor(v / 65536); t15 = v - c * 65536;
  t0 += c-1 + 37 * (c-1);

  o[ 0] = t0;
  o[ 1] = t1;
  o[ 2] = t2;
  o[ 3] = t3;
  o[ 4] = t4;
  o[ 5] = t5;
  o[ 6] = t6;
  o[ 7] = t7;
  o[ 8] = t8;
  o[ 9] = t9;
  o[10] = t10;
  o[11] = t11;
  o[12] = t12;
  o[13] = t13;
  o[14] = t14;
  o[15] = t15;
}

function S(o, a) {
  M(o, a, a);
}

function inv25519(o, i) {
  var c = gf();
  var a;
  for (a = 0; a < 16; a++) c[a] = i[a];
  for (a = 253; a >= 0; a--) {
    S(c, c);
    if(a !== 2 && a !== 4) M(c, c, i);
  }
  for (a = 0; a < 16; a++) o[a] = c[a];
}

function pow2523(o, i) {
  var c = gf();
  var a;
  for (a = 0; a < 16; a++) c[a] = i[a];
  for (a = 250; a >= 0; a--) {
      S(c, c);
      if(a !== 1) M(c, c, i);
  }
  for (a = 0; a < 16; a++) o[a] = c[a];
}

function crypto_scalarmult(q, n, p) {
  var z = new Uint8Array(32);
  var x = new Float64Array(80), r, i;
  var a = gf(), b = gf(), c = gf(),
      d = gf(), e = gf(), f = gf();
  for (i = 0; i < 31; i++) z[i] = n[i];
  z[31]=(n[31]&127)|64;
  z[0]&=248;
  unpack25519(x,p);
  for (i = 0; i < 16; i++) {
    b[i]=x[i];
    d[i]=a[i]=c[i]=0;
  }
  a[0]=d[0]=1;
  for (i=254; i>=0; --i) {
    r=(z[i>>>3]>>>(i&7))&1;
    sel25519(a,b,r);
    sel25519(c,d,r);
    A(e,a,c);
    Z(a,a,c);
    A(c,b,d);
    Z(b,b,d);
    S(d,e);
    S(f,a);
    M(a,c,a);
    M(c,b,e);
    A(e,a,c);
    Z(a,a,c);
    S(b,a);
    Z(c,d,f);
    M(a,c,_121665);
    A(a,a,d);
    M(c,c,a);
    M(a,d,f);
    M(d,b,x);
    S(b,e);
    sel25519(a,b,r);
    sel25519(c,d,r);
  }
  for (i = 0; i < 16; i++) {
    x[i+16]=a[i];
    x[i+32]=c[i];
    x[i+48]=b[i];
    x[i+64]=d[i];
  }
  var x32 = x.subarray(32);
  var x16 = x.subarray(16);
  inv25519(x32,x32);
  M(x16,x16,x32);
  pack25519(q,x16);
  return 0;
}

function crypto_scalarmult_base(q, n) {
  return crypto_scalarmult(q, n, _9);
}

function crypto_box_keypair(y, x) {
  randombytes(x, 32);
  return crypto_scalarmult_base(y, x);
}

function crypto_box_beforenm(k, y, x) {
  var s = new Uint8Array(32);
  crypto_scalarmult(s, x, y);
  return crypto_core_hsalsa20(k, _0, s, sigma);
}

var crypto_box_afternm = crypto_secretbox;
var crypto_box_open_afternm = crypto_secretbox_open;

function crypto_box(c, m, d, n, y, x) {
  var k = new Uint8Array(32);
  crypto_box_beforenm(k, y, x);
  return crypto_box_afternm(c, m, d, n, k);
}

function crypto_box_open(m, c, d, n, y, x) {
  var k = new Uint8Array(32);
  crypto_box_beforenm(k, y, x);
  return crypto_box_open_afternm(m, c, d, n, k);
}

var K = [
  0x428a2f98, 0xd728ae22, 0x71374491, 0x23ef65cd,
  0xb5c0fbcf, 0xec4d3b2f, 0xe9b5dba5, 0x8189dbbc,
  0x3956c25b, 0xf348b538, 0x59f111f1, 0xb605d019,
  0x923f82a4, 0xaf194f9b, 0xab1c5ed5, 0xda6d8118,
  0xd807aa98, 0xa3030242, 0x12835b01, 0x45706fbe,
  0x243185be, 0x4ee4b28c, 0x550c7dc3, 0xd5ffb4e2,
  0x72be5d74, 0xf27b896f, 0x80deb1fe, 0x3b1696b1,
  0x9bdc06a7, 0x25c71235, 0xc19bf174, 0xcf692694,
  0xe49b69c1, 0x9ef14ad2, 0xefbe4786, 0x384f25e3,
  0x0fc19dc6, 0x8b8cd5b5, 0x240ca1cc, 0x77ac9c65,
  0x2de92c6f, 0x592b0275, 0x4a7484aa, 0x6ea6e483,
  0x5cb0a9dc, 0xbd41fbd4, 0x76f988da, 0x831153b5,
  0x983e5152, 0xee66dfab, 0xa831c66d, 0x2db43210,
  0xb00327c8, 0x98fb213f, 0xbf597fc7, 0xbeef0ee4,
  0xc6e00bf3, 0x3da88fc2, 0xd5a79147, 0x930aa725,
  0x06ca6351, 0xe003826f, 0x14292967, 0x0a0e6e70,
  0x27b70a85, 0x46d22ffc, 0x2e1b2138, 0x5c26c926,
  0x4d2c6dfc, 0x5ac42aed, 0x53380d13, 0x9d95b3df,
  0x650a7354, 0x8baf63de, 0x766a0abb, 0x3c77b2a8,
  0x81c2c92e, 0x47edaee6, 0x92722c85, 0x1482353b,
  0xa2bfe8a1, 0x4cf10364, 0xa81a664b, 0xbc423001,
  0xc24b8b70, 0xd0f89791, 0xc76c51a3, 0x0654be30,
  0xd192e819, 0xd6ef5218, 0xd6990624, 0x5565a910,
  0xf40e3585, 0x5771202a, 0x106aa070, 0x32bbd1b8,
  0x19a4c116, 0xb8d2d0c8, 0x1e376c08, 0x5141ab53,
  0x2748774c, 0xdf8eeb99, 0x34b0bcb5, 0xe19b48a8,
  0x391c0cb3, 0xc5c95a63, 0x4ed8aa4a, 0xe3418acb,
  0x5b9cca4f, 0x7763e373, 0x682e6ff3, 0xd6b2b8a3,
  0x748f82ee, 0x5defb2fc, 0x78a5636f, 0x43172f60,
  0x84c87814, 0xa1f0ab72, 0x8cc70208, 0x1a6439ec,
  0x90befffa, 0x23631e28, 0xa4506ceb, 0xde82bde9,
  0xbef9a3f7, 0xb2c67915, 0xc67178f2, 0xe372532b,
  0xca273ece, 0xea26619c, 0xd186b8c7, 0x21c0c207,
  0xeada7dd6, 0xcde0eb1e, 0xf57d4f7f, 0xee6ed178,
  0x06f067aa, 0x72176fba, 0x0a637dc5, 0xa2c898a6,
  0x113f9804, 0xbef90dae, 0x1b710b35, 0x131c471b,
  0x28db77f5, 0x23047d84, 0x32caab7b, 0x40c72493,
  0x3c9ebe0a, 0x15c9bebc, 0x431d67c4, 0x9c100d4c,
  0x4cc5d4be, 0xcb3e42b6, 0x597f299c, 0xfc657e2a,
  0x5fcb6fab, 0x3ad6faec, 0x6c44198c, 0x4a475817
];

function crypto_hashblocks_hl(hh, hl, m, n) {
  var wh = new Int32Array(16), wl = new Int32Array(16),
      bh0, bh1, bh2, bh3, bh4, bh5, bh6, bh7,
      bl0, bl1, bl2, bl3, bl4, bl5, bl6, bl7,
      th, tl, i, j, h, l, a, b, c, d;

  var ah0 = hh[0],
      ah1 = hh[1],
      ah2 = hh[2],
      ah3 = hh[3],
      ah4 = hh[4],
      ah5 = hh[5],
      ah6 = hh[6],
      ah7 = hh[7],

      al0 = hl[0],
      al1 = hl[1],
      al2 = hl[2],
      al3 = hl[3],
      al4 = hl[4],
      al5 = hl[5],
      al6 = hl[6],
      al7 = hl[7];

  var pos = 0;
  while (n >= 128) {
    for (i = 0; i < 16; i++) {
      j = 8 * i + pos;
      wh[i] = (m[j+0] << 24) | (m[j+1] << 16) | (m[j+2] << 8) | m[j+3];
      wl[i] = (m[j+4] << 24) | (m[j+5] << 16) | (m[j+6] << 8) | m[j+7];
    }
    for (i = 0; i < 80; i++) {
      bh0 = ah0;
      bh1 = ah1;
      bh2 = ah2;
      bh3 = ah3;
      bh4 = ah4;
      bh5 = ah5;
      bh6 = ah6;
      bh7 = ah7;

      bl0 = al0;
      bl1 = al1;
      bl2 = al2;
      bl3 = al3;
      bl4 = al4;
      bl5 = al5;
      bl6 = al6;
      bl7 = al7;

      // add
      h = ah7;
      l = al7;

      a = l & 0xffff; b = l >>> 16;
      c = h & 0xffff; d = h >>> 16;

      // Sigma1
      h = ((ah4 >>> 14) | (al4 << (32-14))) ^ ((ah4 >>> 18) | (al4 << (32-18))) ^ ((al4 >>> (41-32)) | (ah4 << (32-(41-32))));
      l = ((al4 >>> 14) | (ah4 << (32-14))) ^ ((al4 >>> 18) | (ah4 << (32-18))) ^ ((ah4 >>> (41-32)) | (al4 << (32-(41-32))));

      a += l & 0xffff; b += l >>> 16;
      c += h & 0xffff; d += h >>> 16;

      // Ch
      h = (ah4 & ah5) ^ (~ah4 & ah6);
      l = (al4 & al5) ^ (~al4 & al6);

      a += l & 0xffff; b += l >>> 16;
      c += h & 0xffff; d += h >>> 16;

      // K
      h = K[i*2];
      l = K[i*2+1];

      a += l & 0xffff; b += l >>> 16;
      c += h & 0xffff; d += h >>> 16;

      // w
      h = wh[i%16];
      l = wl[i%16];

      a += l & 0xffff; b += l >>> 16;
      c += h & 0xffff; d += h >>> 16;

      b += a >>> 16;
      c += b >>> 16;
      d += c >>> 16;

      th = c & 0xffff | d << 16;
      tl = a & 0xffff | b << 16;

      // add
      h = th;
      l = tl;

      a = l & 0xffff; b = l >>> 16;
      c = h & 0xffff; d = h >>> 16;

      // Sigma0
      h = ((ah0 >>> 28) | (al0 << (32-28))) ^ ((al0 >>> (34-32)) | (ah0 << (32-(34-32)))) ^ ((al0 >>> (39-32)) | (ah0 << (32-(39-32))));
      l = ((al0 >>> 28) | (ah0 << (32-28))) ^ ((ah0 >>> (34-32)) | (al0 << (32-(34-32)))) ^ ((ah0 >>> (39-32)) | (al0 << (32-(39-32))));

      a += l & 0xffff; b += l >>> 16;
      c += h & 0xffff; d += h >>> 16;

      // Maj
      h = (ah0 & ah1) ^ (ah0 & ah2) ^ (ah1 & ah2);
      l = (al0 & al1) ^ (al0 & al2) ^ (al1 & al2);

      a += l & 0xffff; b += l >>> 16;
      c += h & 0xffff; d += h >>> 16;

      b += a >>> 16;
      c += b >>> 16;
      d += c >>> 16;

      bh7 = (c & 0xffff) | (d << 16);
      bl7 = (a & 0xffff) | (b << 16);

      // add
      h = bh3;
      l = bl3;

      a = l & 0xffff; b = l >>> 16;
      c = h & 0xffff; d = h >>> 16;

      h = th;
      l = tl;

      a += l & 0xffff; b += l >>> 16;
      c += h & 0xffff; d += h >>> 16;

      b += a >>> 16;
      c += b >>> 16;
      d += c >>> 16;

      bh3 = (c & 0xffff) | (d << 16);
      bl3 = (a & 0xffff) | (b << 16);

      ah1 = bh0;
      ah2 = bh1;
      ah3 = bh2;
      ah4 = bh3;
      ah5 = bh4;
      ah6 = bh5;
      ah7 = bh6;
      ah0 = bh7;

      al1 = bl0;
      al2 = bl1;
      al3 = bl2;
      al4 = bl3;
      al5 = bl4;
      al6 = bl5;
      al7 = bl6;
      al0 = bl7;

      if (i%16 === 15) {
        for (j = 0; j < 16; j++) {
          // add
          h = wh[j];
          l = wl[j];

          a = l & 0xffff; b = l >>> 16;
          c = h & 0xffff; d = h >>> 16;

          h = wh[(j+9)%16];
          l = wl[(j+9)%16];

          a += l & 0xffff; b += l >>> 16;
          c += h & 0xffff; d += h >>> 16;

          // sigma0
          th = wh[(j+1)%16];
          tl = wl[(j+1)%16];
          h = ((th >>> 1) | (tl << (32-1))) ^ ((th >>> 8) | (tl << (32-8))) ^ (th >>> 7);
          l = ((tl >>> 1) | (th << (32-1))) ^ ((tl >>> 8) | (th << (32-8))) ^ ((tl >>> 7) | (th << (32-7)));

          a += l & 0xffff; b += l >>> 16;
          c += h & 0xffff; d += h >>> 16;

          // sigma1
          th = wh[(j+14)%16];
          tl = wl[(j+14)%16];
          h = ((th >>> 19) | (tl << (32-19))) ^ ((tl >>> (61-32)) | (th << (32-(61-32)))) ^ (th >>> 6);
          l = ((tl >>> 19) | (th << (32-19))) ^ ((th >>> (61-32)) | (tl << (32-(61-32)))) ^ ((tl >>> 6) | (th << (32-6)));

          a += l & 0xffff; b += l >>> 16;
          c += h & 0xffff; d += h >>> 16;

          b += a >>> 16;
          c += b >>> 16;
          d += c >>> 16;

          wh[j] = (c & 0xffff) | (d << 16);
          wl[j] = (a & 0xffff) | (b << 16);
        }
      }
    }

    // add
    h = ah0;
    l = al0;

    a = l & 0xffff; b = l >>> 16;
    c = h & 0xffff; d = h >>> 16;

    h = hh[0];
    l = hl[0];

    a += l & 0xffff; b += l >>> 16;
    c += h & 0xffff; d += h >>> 16;

    b += a >>> 16;
    c += b >>> 16;
    d += c >>> 16;

    hh[0] = ah0 = (c & 0xffff) | (d << 16);
    hl[0] = al0 = (a & 0xffff) | (b << 16);

    h = ah1;
    l = al1;

    a = l & 0xffff; b = l >>> 16;
    c = h & 0xffff; d = h >>> 16;

    h = hh[1];
    l = hl[1];

    a += l & 0xffff; b += l >>> 16;
    c += h & 0xffff; d += h >>> 16;

    b += a >>> 16;
    c += b >>> 16;
    d += c >>> 16;

    hh[1] = ah1 = (c & 0xffff) | (d << 16);
    hl[1] = al1 = (a & 0xffff) | (b << 16);

    h = ah2;
    l = al2;

    a = l & 0xffff; b = l >>> 16;
    c = h & 0xffff; d = h >>> 16;

    h = hh[2];
    l = hl[2];

    a += l & 0xffff; b += l >>> 16;
    c += h & 0xffff; d += h >>> 16;

    b += a >>> 16;
    c += b >>> 16;
    d += c >>> 16;

    hh[2] = ah2 = (c & 0xffff) | (d << 16);
    hl[2] = al2 = (a & 0xffff) | (b << 16);

    h = ah3;
    l = al3;

    a = l & 0xffff; b = l >>> 16;
    c = h & 0xffff; d = h >>> 16;

    h = hh[3];
    l = hl[3];

    a += l & 0xffff; b += l >>> 16;
    c += h & 0xffff; d += h >>> 16;

    b += a >>> 16;
    c += b >>> 16;
    d += c >>> 16;

    hh[3] = ah3 = (c & 0xffff) | (d << 16);
    hl[3] = al3 = (a & 0xffff) | (b << 16);

    h = ah4;
    l = al4;

    a = l & 0xffff; b = l >>> 16;
    c = h & 0xffff; d = h >>> 16;

    h = hh[4];
    l = hl[4];

    a += l & 0xffff; b += l >>> 16;
    c += h & 0xffff; d += h >>> 16;

    b += a >>> 16;
    c += b >>> 16;
    d += c >>> 16;

    hh[4] = ah4 = (c & 0xffff) | (d << 16);
    hl[4] = al4 = (a & 0xffff) | (b << 16);

    h = ah5;
    l = al5;

    a = l & 0xffff; b = l >>> 16;
    c = h & 0xffff; d = h >>> 16;

    h = hh[5];
    l = hl[5];

    a += l & 0xffff; b += l >>> 16;
    c += h & 0xffff; d += h >>> 16;

    b += a >>> 16;
    c += b >>> 16;
    d += c >>> 16;

    hh[5] = ah5 = (c & 0xffff) | (d << 16);
    hl[5] = al5 = (a & 0xffff) | (b << 16);

    h = ah6;
    l = al6;

    a = l & 0xffff; b = l >>> 16;
    c = h & 0xffff; d = h >>> 16;

    h = hh[6];
    l = hl[6];

    a += l & 0xffff; b += l >>> 16;
    c += h & 0xffff; d += h >>> 16;

    b += a >>> 16;
    c += b >>> 16;
    d += c >>> 16;

    hh[6] = ah6 = (c & 0xffff) | (d << 16);
    hl[6] = al6 = (a & 0xffff) | (b << 16);

    h = ah7;
    l = al7;

    a = l & 0xffff; b = l >>> 16;
    c = h & 0xffff; d = h >>> 16;

    h = hh[7];
    l = hl[7];

    a += l & 0xffff; b += l >>> 16;
    c += h & 0xffff; d += h >>> 16;

    b += a >>> 16;
    c += b >>> 16;
    d += c >>> 16;

    hh[7] = ah7 = (c & 0xffff) | (d << 16);
    hl[7] = al7 = (a & 0xffff) | (b << 16);

    pos += 128;
    n -= 128;
  }

  return n;
}

function crypto_hash(out, m, n) {
  var hh = new Int32Array(8),
      hl = new Int32Array(8),
      x = new Uint8Array(256),
      i, b = n;

  hh[0] = 0x6a09e667;
  hh[1] = 0xbb67ae85;
  hh[2] = 0x3c6ef372;
  hh[3] = 0xa54ff53a;
  hh[4] = 0x510e527f;
  hh[5] = 0x9b05688c;
  hh[6] = 0x1f83d9ab;
  hh[7] = 0x5be0cd19;

  hl[0] = 0xf3bcc908;
  hl[1] = 0x84caa73b;
  hl[2] = 0xfe94f82b;
  hl[3] = 0x5f1d36f1;
  hl[4] = 0xade682d1;
  hl[5] = 0x2b3e6c1f;
  hl[6] = 0xfb41bd6b;
  hl[7] = 0x137e2179;

  crypto_hashblocks_hl(hh, hl, m, n);
  n %= 128;

  for (i = 0; i < n; i++) x[i] = m[b-n+i];
  x[n] = 128;

  n = 256-128*(n<112?1:0);
  x[n-9] = 0;
  ts64(x, n-8,  (b / 0x20000000) | 0, b << 3);
  crypto_hashblocks_hl(hh, hl, x, n);

  for (i = 0; i < 8; i++) ts64(out, 8*i, hh[i], hl[i]);

  return 0;
}

function add(p, q) {
  var a = gf(), b = gf(), c = gf(),
      d = gf(), e = gf(), f = gf(),
      g = gf(), h = gf(), t = gf();

  Z(a, p[1], p[0]);
  Z(t, q[1], q[0]);
  M(a, a, t);
  A(b, p[0], p[1]);
  A(t, q[0], q[1]);
  M(b, b, t);
  M(c, p[3], q[3]);
  M(c, c, D2);
  M(d, p[2], q[2]);
  A(d, d, d);
  Z(e, b, a);
  Z(f, d, c);
  A(g, d, c);
  A(h, b, a);

  M(p[0], e, f);
  M(p[1], h, g);
  M(p[2], g, f);
  M(p[3], e, h);
}

function cswap(p, q, b) {
  var i;
  for (i = 0; i < 4; i++) {
    sel25519(p[i], q[i], b);
  }
}

function pack(r, p) {
  var tx = gf(), ty = gf(), zi = gf();
  inv25519(zi, p[2]);
  M(tx, p[0], zi);
  M(ty, p[1], zi);
  pack25519(r, ty);
  r[31] ^= par25519(tx) << 7;
}

function scalarmult(p, q, s) {
  var b, i;
  set25519(p[0], gf0);
  set25519(p[1], gf1);
  set25519(p[2], gf1);
  set25519(p[3], gf0);
  for (i = 255; i >= 0; --i) {
    b = (s[(i/8)|0] >> (i&7)) & 1;
    cswap(p, q, b);
    add(q, p);
    add(p, p);
    cswap(p, q, b);
  }
}

function scalarbase(p, s) {
  var q = [gf(), gf(), gf(), gf()];
  set25519(q[0], X);
  set25519(q[1], Y);
  set25519(q[2], gf1);
  M(q[3], X, Y);
  scalarmult(p, q, s);
}

function crypto_sign_keypair(pk, sk, seeded) {
  var d = new Uint8Array(64);
  var p = [gf(), gf(), gf(), gf()];
  var i;

  if (!seeded) randombytes(sk, 32);
  crypto_hash(d, sk, 32);
  d[0] &= 248;
  d[31] &= 127;
  d[31] |= 64;

  scalarbase(p, d);
  pack(pk, p);

  for (i = 0; i < 32; i++) sk[i+32] = pk[i];
  return 0;
}

var L = new Float64Array([0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);

function modL(r, x) {
  var carry, i, j, k;
  for (i = 63; i >= 32; --i) {
    carry = 0;
    for (j = i - 32, k = i - 12; j < k; ++j) {
      x[j] += carry - 16 * x[i] * L[j - (i - 32)];
      carry = Math.floor((x[j] + 128) / 256);
      x[j] -= carry * 256;
    }
    x[j] += carry;
    x[i] = 0;
  }
  carry = 0;
  for (j = 0; j < 32; j++) {
    x[j] += carry - (x[31] >> 4) * L[j];
    carry = x[j] >> 8;
    x[j] &= 255;
  }
  for (j = 0; j < 32; j++) x[j] -= carry * L[j];
  for (i = 0; i < 32; i++) {
    x[i+1] += x[i] >> 8;
    r[i] = x[i] & 255;
  }
}

function reduce(r) {
  var x = new Float64Array(64), i;
  for (i = 0; i < 64; i++) x[i] = r[i];
  for (i = 0; i < 64; i++) r[i] = 0;
  modL(r, x);
}

// Note: difference from C - smlen returned, not passed as argument.
function crypto_sign(sm, m, n, sk) {
  var d = new Uint8Array(64), h = new Uint8Array(64), r = new Uint8Array(64);
  var i, j, x = new Float64Array(64);
  var p = [gf(), gf(), gf(), gf()];

  crypto_hash(d, sk, 32);
  d[0] &= 248;
  d[31] &= 127;
  d[31] |= 64;

  var smlen = n + 64;
  for (i = 0; i < n; i++) sm[64 + i] = m[i];
  for (i = 0; i < 32; i++) sm[32 + i] = d[32 + i];

  crypto_hash(r, sm.subarray(32), n+32);
  reduce(r);
  scalarbase(p, r);
  pack(sm, p);

  for (i = 32; i < 64; i++) sm[i] = sk[i];
  crypto_hash(h, sm, n + 64);
  reduce(h);

  for (i = 0; i < 64; i++) x[i] = 0;
  for (i = 0; i < 32; i++) x[i] = r[i];
  for (i = 0; i < 32; i++) {
    for (j = 0; j < 32; j++) {
      x[i+j] += h[i] * d[j];
    }
  }

  modL(sm.subarray(32), x);
  return smlen;
}

function unpackneg(r, p) {
  var t = gf(), chk = gf(), num = gf(),
      den = gf(), den2 = gf(), den4 = gf(),
      den6 = gf();

  set25519(r[2], gf1);
  unpack25519(r[1], p);
  S(num, r[1]);
  M(den, num, D);
  Z(num, num, r[2]);
  A(den, r[2], den);

  S(den2, den);
  S(den4, den2);
  M(den6, den4, den2);
  M(t, den6, num);
  M(t, t, den);

  pow2523(t, t);
  M(t, t, num);
  M(t, t, den);
  M(t, t, den);
  M(r[0], t, den);

  S(chk, r[0]);
  M(chk, chk, den);
  if (neq25519(chk, num)) M(r[0], r[0], I);

  S(chk, r[0]);
  M(chk, chk, den);
  if (neq25519(chk, num)) return -1;

  if (par25519(r[0]) === (p[31]>>7)) Z(r[0], gf0, r[0]);

  M(r[3], r[0], r[1]);
  return 0;
}

function crypto_sign_open(m, sm, n, pk) {
  var i;
  var t = new Uint8Array(32), h = new Uint8Array(64);
  var p = [gf(), gf(), gf(), gf()],
      q = [gf(), gf(), gf(), gf()];

  if (n < 64) return -1;

  if (unpackneg(q, pk)) return -1;

  for (i = 0; i < n; i++) m[i] = sm[i];
  for (i = 0; i < 32; i++) m[i+32] = pk[i];
  crypto_hash(h, m, n);
  reduce(h);
  scalarmult(p, q, h);

  scalarbase(q, sm.subarray(32));
  add(p, q);
  pack(t, p);

  n -= 64;
  if (crypto_verify_32(sm, 0, t, 0)) {
    for (i = 0; i < n; i++) m[i] = 0;
    return -1;
  }

  for (i = 0; i < n; i++) m[i] = sm[i + 64];
  return n;
}

var crypto_secretbox_KEYBYTES = 32,
    crypto_secretbox_NONCEBYTES = 24,
    crypto_secretbox_ZEROBYTES = 32,
    crypto_secretbox_BOXZEROBYTES = 16,
    crypto_scalarmult_BYTES = 32,
    crypto_scalarmult_SCALARBYTES = 32,
    crypto_box_PUBLICKEYBYTES = 32,
    crypto_box_SECRETKEYBYTES = 32,
    crypto_box_BEFORENMBYTES = 32,
    crypto_box_NONCEBYTES = crypto_secretbox_NONCEBYTES,
    crypto_box_ZEROBYTES = crypto_secretbox_ZEROBYTES,
    crypto_box_BOXZEROBYTES = crypto_secretbox_BOXZEROBYTES,
    crypto_sign_BYTES = 64,
    crypto_sign_PUBLICKEYBYTES = 32,
    crypto_sign_SECRETKEYBYTES = 64,
    crypto_sign_SEEDBYTES = 32,
    crypto_hash_BYTES = 64;

nacl.lowlevel = {
  crypto_core_hsalsa20: crypto_core_hsalsa20,
  crypto_stream_xor: crypto_stream_xor,
  crypto_stream: crypto_stream,
  crypto_stream_salsa20_xor: crypto_stream_salsa20_xor,
  crypto_stream_salsa20: crypto_stream_salsa20,
  crypto_onetimeauth: crypto_onetimeauth,
  crypto_onetimeauth_verify: crypto_onetimeauth_verify,
  crypto_verify_16: crypto_verify_16,
  crypto_verify_32: crypto_verify_32,
  crypto_secretbox: crypto_secretbox,
  crypto_secretbox_open: crypto_secretbox_open,
  crypto_scalarmult: crypto_scalarmult,
  crypto_scalarmult_base: crypto_scalarmult_base,
  crypto_box_beforenm: crypto_box_beforenm,
  crypto_box_afternm: crypto_box_afternm,
  crypto_box: crypto_box,
  crypto_box_open: crypto_box_open,
  crypto_box_keypair: crypto_box_keypair,
  crypto_hash: crypto_hash,
  crypto_sign: crypto_sign,
  crypto_sign_keypair: crypto_sign_keypair,
  crypto_sign_open: crypto_sign_open,

  crypto_secretbox_KEYBYTES: crypto_secretbox_KEYBYTES,
  crypto_secretbox_NONCEBYTES: crypto_secretbox_NONCEBYTES,
  crypto_secretbox_ZEROBYTES: crypto_secretbox_ZEROBYTES,
  crypto_secretbox_BOXZEROBYTES: crypto_secretbox_BOXZEROBYTES,
  crypto_scalarmult_BYTES: crypto_scalarmult_BYTES,
  crypto_scalarmult_SCALARBYTES: crypto_scalarmult_SCALARBYTES,
  crypto_box_PUBLICKEYBYTES: crypto_box_PUBLICKEYBYTES,
  crypto_box_SECRETKEYBYTES: crypto_box_SECRETKEYBYTES,
  crypto_box_BEFORENMBYTES: crypto_box_BEFORENMBYTES,
  crypto_box_NONCEBYTES: crypto_box_NONCEBYTES,
  crypto_box_ZEROBYTES: crypto_box_ZEROBYTES,
  crypto_box_BOXZEROBYTES: crypto_box_BOXZEROBYTES,
  crypto_sign_BYTES: crypto_sign_BYTES,
  crypto_sign_PUBLICKEYBYTES: crypto_sign_PUBLICKEYBYTES,
  crypto_sign_SECRETKEYBYTES: crypto_sign_SECRETKEYBYTES,
  crypto_sign_SEEDBYTES: crypto_sign_SEEDBYTES,
  crypto_hash_BYTES: crypto_hash_BYTES,

  gf: gf,
  D: D,
  L: L,
  pack25519: pack25519,
  unpack25519: unpack25519,
  M: M,
  A: A,
  S: S,
  Z: Z,
  pow2523: pow2523,
  add: add,
  set25519: set25519,
  modL: modL,
  scalarmult: scalarmult,
  scalarbase: scalarbase,
};

/* High-level API */

function checkLengths(k, n) {
  if (k.length !== crypto_secretbox_KEYBYTES) throw new Error('bad key size');
  if (n.length !== crypto_secretbox_NONCEBYTES) throw new Error('bad nonce size');
}

function checkBoxLengths(pk, sk) {
  if (pk.length !== crypto_box_PUBLICKEYBYTES) throw new Error('bad public key size');
  if (sk.length !== crypto_box_SECRETKEYBYTES) throw new Error('bad secret key size');
}

function checkArrayTypes() {
  for (var i = 0; i < arguments.length; i++) {
    if (!(arguments[i] instanceof Uint8Array))
      throw new TypeError('unexpected type, use Uint8Array');
  }
}

function cleanup(arr) {
  for (var i = 0; i < arr.length; i++) arr[i] = 0;
}

nacl.randomBytes = function(n) {
  var b = new Uint8Array(n);
  randombytes(b, n);
  return b;
};

nacl.secretbox = function(msg, nonce, key) {
  checkArrayTypes(msg, nonce, key);
  checkLengths(key, nonce);
  var m = new Uint8Array(crypto_secretbox_ZEROBYTES + msg.length);
  var c = new Uint8Array(m.length);
  for (var i = 0; i < msg.length; i++) m[i+crypto_secretbox_ZEROBYTES] = msg[i];
  crypto_secretbox(c, m, m.length, nonce, key);
  return c.subarray(crypto_secretbox_BOXZEROBYTES);
};

nacl.secretbox.open = function(box, nonce, key) {
  checkArrayTypes(box, nonce, key);
  checkLengths(key, nonce);
  var c = new Uint8Array(crypto_secretbox_BOXZEROBYTES + box.length);
  var m = new Uint8Array(c.length);
  for (var i = 0; i < box.length; i++) c[i+crypto_secretbox_BOXZEROBYTES] = box[i];
  if (c.length < 32) return null;
  if (crypto_secretbox_open(m, c, c.length, nonce, key) !== 0) return null;
  return m.subarray(crypto_secretbox_ZEROBYTES);
};

nacl.secretbox.keyLength = crypto_secretbox_KEYBYTES;
nacl.secretbox.nonceLength = crypto_secretbox_NONCEBYTES;
nacl.secretbox.overheadLength = crypto_secretbox_BOXZEROBYTES;

nacl.scalarMult = function(n, p) {
  checkArrayTypes(n, p);
  if (n.length !== crypto_scalarmult_SCALARBYTES) throw new Error('bad n size');
  if (p.length !== crypto_scalarmult_BYTES) throw new Error('bad p size');
  var q = new Uint8Array(crypto_scalarmult_BYTES);
  crypto_scalarmult(q, n, p);
  return q;
};

nacl.scalarMult.base = function(n) {
  checkArrayTypes(n);
  if (n.length !== crypto_scalarmult_SCALARBYTES) throw new Error('bad n size');
  var q = new Uint8Array(crypto_scalarmult_BYTES);
  crypto_scalarmult_base(q, n);
  return q;
};

nacl.scalarMult.scalarLength = crypto_scalarmult_SCALARBYTES;
nacl.scalarMult.groupElementLength = crypto_scalarmult_BYTES;

nacl.box = function(msg, nonce, publicKey, secretKey) {
  var k = nacl.box.before(publicKey, secretKey);
  return nacl.secretbox(msg, nonce, k);
};

nacl.box.before = function(publicKey, secretKey) {
  checkArrayTypes(publicKey, secretKey);
  checkBoxLengths(publicKey, secretKey);
  var k = new Uint8Array(crypto_box_BEFORENMBYTES);
  crypto_box_beforenm(k, publicKey, secretKey);
  return k;
};

nacl.box.after = nacl.secretbox;

nacl.box.open = function(msg, nonce, publicKey, secretKey) {
  var k = nacl.box.before(publicKey, secretKey);
  return nacl.secretbox.open(msg, nonce, k);
};

nacl.box.open.after = nacl.secretbox.open;

nacl.box.keyPair = function() {
  var pk = new Uint8Array(crypto_box_PUBLICKEYBYTES);
  var sk = new Uint8Array(crypto_box_SECRETKEYBYTES);
  crypto_box_keypair(pk, sk);
  return {publicKey: pk, secretKey: sk};
};

nacl.box.keyPair.fromSecretKey = function(secretKey) {
  checkArrayTypes(secretKey);
  if (secretKey.length !== crypto_box_SECRETKEYBYTES)
    throw new Error('bad secret key size');
  var pk = new Uint8Array(crypto_box_PUBLICKEYBYTES);
  crypto_scalarmult_base(pk, secretKey);
  return {publicKey: pk, secretKey: new Uint8Array(secretKey)};
};

nacl.box.publicKeyLength = crypto_box_PUBLICKEYBYTES;
nacl.box.secretKeyLength = crypto_box_SECRETKEYBYTES;
nacl.box.sharedKeyLength = crypto_box_BEFORENMBYTES;
nacl.box.nonceLength = crypto_box_NONCEBYTES;
nacl.box.overheadLength = nacl.secretbox.overheadLength;

nacl.sign = function(msg, secretKey) {
  checkArrayTypes(msg, secretKey);
  if (secretKey.length !== crypto_sign_SECRETKEYBYTES)
    throw new Error('bad secret key size');
  var signedMsg = new Uint8Array(crypto_sign_BYTES+msg.length);
  crypto_sign(signedMsg, msg, msg.length, secretKey);
  return signedMsg;
};

nacl.sign.open = function(signedMsg, publicKey) {
  checkArrayTypes(signedMsg, publicKey);
  if (publicKey.length !== crypto_sign_PUBLICKEYBYTES)
    throw new Error('bad public key size');
  var tmp = new Uint8Array(signedMsg.length);
  var mlen = crypto_sign_open(tmp, signedMsg, signedMsg.length, publicKey);
  if (mlen < 0) return null;
  var m = new Uint8Array(mlen);
  for (var i = 0; i < m.length; i++) m[i] = tmp[i];
  return m;
};

nacl.sign.detached = function(msg, secretKey) {
  var signedMsg = nacl.sign(msg, secretKey);
  var sig = new Uint8Array(crypto_sign_BYTES);
  for (var i = 0; i < sig.length; i++) sig[i] = signedMsg[i];
  return sig;
};

nacl.sign.detached.verify = function(msg, sig, publicKey) {
  checkArrayTypes(msg, sig, publicKey);
  if (sig.length !== crypto_sign_BYTES)
    throw new Error('bad signature size');
  if (publicKey.length !== crypto_sign_PUBLICKEYBYTES)
    throw new Error('bad public key size');
  var sm = new Uint8Array(crypto_sign_BYTES + msg.length);
  var m = new Uint8Array(crypto_sign_BYTES + msg.length);
  var i;
  for (i = 0; i < crypto_sign_BYTES; i++) sm[i] = sig[i];
  for (i = 0; i < msg.length; i++) sm[i+crypto_sign_BYTES] = msg[i];
  return (crypto_sign_open(m, sm, sm.length, publicKey) >= 0);
};

nacl.sign.keyPair = function() {
  var pk = new Uint8Array(crypto_sign_PUBLICKEYBYTES);
  var sk = new Uint8Array(crypto_sign_SECRETKEYBYTES);
  crypto_sign_keypair(pk, sk);
  return {publicKey: pk, secretKey: sk};
};

nacl.sign.keyPair.fromSecretKey = function(secretKey) {
  checkArrayTypes(secretKey);
  if (secretKey.length !== crypto_sign_SECRETKEYBYTES)
    throw new Error('bad secret key size');
  var pk = new Uint8Array(crypto_sign_PUBLICKEYBYTES);
  for (var i = 0; i < pk.length; i++) pk[i] = secretKey[32+i];
  return {publicKey: pk, secretKey: new Uint8Array(secretKey)};
};

nacl.sign.keyPair.fromSeed = function(seed) {
  checkArrayTypes(seed);
  if (seed.length !== crypto_sign_SEEDBYTES)
    throw new Error('bad seed size');
  var pk = new Uint8Array(crypto_sign_PUBLICKEYBYTES);
  var sk = new Uint8Array(crypto_sign_SECRETKEYBYTES);
  for (var i = 0; i < 32; i++) sk[i] = seed[i];
  crypto_sign_keypair(pk, sk, true);
  return {publicKey: pk, secretKey: sk};
};

nacl.sign.publicKeyLength = crypto_sign_PUBLICKEYBYTES;
nacl.sign.secretKeyLength = crypto_sign_SECRETKEYBYTES;
nacl.sign.seedLength = crypto_sign_SEEDBYTES;
nacl.sign.signatureLength = crypto_sign_BYTES;

nacl.hash = function(msg) {
  checkArrayTypes(msg);
  var h = new Uint8Array(crypto_hash_BYTES);
  crypto_hash(h, msg, msg.length);
  return h;
};

nacl.hash.hashLength = crypto_hash_BYTES;

nacl.verify = function(x, y) {
  checkArrayTypes(x, y);
  // Zero length arguments are considered not equal.
  if (x.length === 0 || y.length === 0) return false;
  if (x.length !== y.length) return false;
  return (vn(x, 0, y, 0, x.length) === 0) ? true : false;
};

nacl.setPRNG = function(fn) {
  randombytes = fn;
};

(function() {
  // Initialize PRNG if environment provides CSPRNG.
  // If not, methods calling randombytes will throw.
  var crypto = typeof self !== 'undefined' ? (self.crypto || self.msCrypto) : null;
  if (crypto && crypto.getRandomValues) {
    // Browsers.
    var QUOTA = 65536;
    nacl.setPRNG(function(x, n) {
      var i, v = new Uint8Array(n);
      for (i = 0; i < n; i += QUOTA) {
        crypto.getRandomValues(v.subarray(i, i + Math.min(n - i, QUOTA)));
      }
      for (i = 0; i < n; i++) x[i] = v[i];
      cleanup(v);
    });
  } else if (true) {
    // Node.js.
    crypto = __nccwpck_require__(6982);
    if (crypto && crypto.randomBytes) {
      nacl.setPRNG(function(x, n) {
        var i, v = crypto.randomBytes(n);
        for (i = 0; i < n; i++) x[i] = v[i];
        cleanup(v);
      });
    }
  }
})();

})( true && module.exports ? module.exports : (self.nacl = self.nacl || {}));


/***/ }),

/***/ 828:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   $e: () => (/* binding */ warning),
/* harmony export */   C1: () => (/* binding */ setFailed),
/* harmony export */   LZ: () => (/* binding */ saveState),
/* harmony export */   Os: () => (/* binding */ group),
/* harmony export */   Pq: () => (/* binding */ setSecret),
/* harmony export */   V4: () => (/* binding */ getInput),
/* harmony export */   Yz: () => (/* binding */ debug),
/* harmony export */   dN: () => (/* binding */ exportVariable),
/* harmony export */   fM: () => (/* binding */ addPath),
/* harmony export */   fe: () => (/* binding */ appendSummary),
/* harmony export */   lm: () => (/* binding */ notice),
/* harmony export */   pq: () => (/* binding */ info),
/* harmony export */   uH: () => (/* binding */ setOutput)
/* harmony export */ });
/* unused harmony exports escapeData, keyValueMessage, getState, error, startGroup, endGroup */
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(7598);
/* harmony import */ var node_crypto__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__nccwpck_require__.n(node_crypto__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__nccwpck_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_2__ = __nccwpck_require__(1455);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__nccwpck_require__.n(node_fs_promises__WEBPACK_IMPORTED_MODULE_2__);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_3__ = __nccwpck_require__(8161);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_3___default = /*#__PURE__*/__nccwpck_require__.n(node_os__WEBPACK_IMPORTED_MODULE_3__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_4__ = __nccwpck_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_4___default = /*#__PURE__*/__nccwpck_require__.n(node_path__WEBPACK_IMPORTED_MODULE_4__);
// The runner's side of a step, as the action uses it: inputs, outputs, state, the log's
// workflow commands, the job summary. The same functions, names and file formats as
// @actions/core (v3), which this replaces in the action's own code for one reason: importing
// @actions/core evaluates @actions/http-client and undici for its OIDC helper, about 90 ms of
// every step's start (measured on Node 24), which is an eighth of an unchanged re-push. The
// protocol is GitHub's documented one ("Workflow commands for GitHub Actions"); the libraries
// the action loads lazily (@actions/cache, @actions/tool-cache) still use @actions/core.





/** What @actions/core's toCommandValue makes of a value: strings as they are, the rest JSON. */
function commandValue(value) {
    if (value === null || value === undefined)
        return '';
    return typeof value === 'string' ? value : JSON.stringify(value);
}
/** A workflow command's data: what would end the line or start an escape is escaped. */
function escapeData(value) {
    return commandValue(value).replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
function issue(command, message = '') {
    process.stdout.write(`::${command}::${escapeData(message)}${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}`);
}
/** A line appended to one of the runner's files (GITHUB_OUTPUT, GITHUB_STATE, ...). */
function appendToFile(name, text) {
    const file = process.env[`GITHUB_${name}`];
    if (!file)
        throw new Error(`Unable to find environment variable for file command ${name}`);
    if (!(0,node_fs__WEBPACK_IMPORTED_MODULE_1__.existsSync)(file))
        throw new Error(`Missing file at path: ${file}`);
    (0,node_fs__WEBPACK_IMPORTED_MODULE_1__.appendFileSync)(file, `${text}${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}`, { encoding: 'utf8' });
}
/** `name<<delimiter` … `delimiter`, with a delimiter neither the name nor the value holds. */
function keyValueMessage(name, value) {
    const end = `ghadelimiter_${(0,node_crypto__WEBPACK_IMPORTED_MODULE_0__.randomUUID)()}`;
    const text = commandValue(value);
    if (name.includes(end) || text.includes(end)) {
        throw new Error(`Unexpected input: the name or value contains the delimiter "${end}"`);
    }
    return `${name}<<${end}${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}${text}${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}${end}`;
}
/** The input's value as the runner passes it (`INPUT_<NAME>`); '' when not given. */
function getInput(name, options = {}) {
    const value = process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] ?? '';
    if (options.required && !value)
        throw new Error(`Input required and not supplied: ${name}`);
    return options.trimWhitespace === false ? value : value.trim();
}
function setOutput(name, value) {
    if (process.env.GITHUB_OUTPUT)
        appendToFile('OUTPUT', keyValueMessage(name, value));
    else
        process.stdout.write(`${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}::set-output name=${name}::${escapeData(value)}${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}`);
}
function saveState(name, value) {
    if (process.env.GITHUB_STATE)
        appendToFile('STATE', keyValueMessage(name, value));
    else
        issue(`save-state name=${name}`, value);
}
function getState(name) {
    return process.env[`STATE_${name}`] ?? '';
}
/** For this step (process.env) and the job's later steps (GITHUB_ENV). */
function exportVariable(name, value) {
    process.env[name] = commandValue(value);
    if (process.env.GITHUB_ENV)
        appendToFile('ENV', keyValueMessage(name, value));
    else
        issue(`set-env name=${name}`, value);
}
/** First on PATH, for this step and the job's later steps (GITHUB_PATH). */
function addPath(path) {
    if (process.env.GITHUB_PATH)
        appendToFile('PATH', path);
    else
        issue('add-path', path);
    process.env.PATH = `${path}${node_path__WEBPACK_IMPORTED_MODULE_4__.delimiter}${process.env.PATH ?? ''}`;
}
/** The runner masks the value in every later line of the log. */
function setSecret(secret) {
    issue('add-mask', secret);
}
function info(message) {
    process.stdout.write(`${message}${node_os__WEBPACK_IMPORTED_MODULE_3__.EOL}`);
}
function debug(message) {
    issue('debug', message);
}
function annotationText(message) {
    return message instanceof Error ? message.toString() : message;
}
function notice(message) {
    issue('notice', annotationText(message));
}
function warning(message) {
    issue('warning', annotationText(message));
}
function error(message) {
    issue('error', annotationText(message));
}
/** The step fails (exit code 1) with this message as an error annotation. */
function setFailed(message) {
    process.exitCode = 1;
    error(message);
}
function startGroup(name) {
    issue('group', name);
}
function endGroup() {
    issue('endgroup');
}
/** `fn` inside a collapsible group of the log, closed whatever it does. */
async function group(name, fn) {
    startGroup(name);
    try {
        return await fn();
    }
    finally {
        endGroup();
    }
}
/** Markdown appended to the job summary (GITHUB_STEP_SUMMARY); nothing when there is none. */
async function appendSummary(markdown) {
    const file = process.env.GITHUB_STEP_SUMMARY;
    if (!file)
        return;
    await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_2__.appendFile)(file, markdown, { encoding: 'utf8' });
}


/***/ }),

/***/ 3916:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   T: () => (/* binding */ firstLine),
/* harmony export */   g: () => (/* binding */ errorMessage)
/* harmony export */ });
// What an error says, whatever was thrown.
function errorMessage(error) {
    return error instanceof Error ? error.message : String(error);
}
function firstLine(text) {
    return text.split('\n')[0] ?? '';
}


/***/ }),

/***/ 3190:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   Qd: () => (/* binding */ CommandError),
/* harmony export */   eF: () => (/* binding */ run),
/* harmony export */   gi: () => (/* binding */ spawnProducer),
/* harmony export */   i2: () => (/* binding */ runWithStdin),
/* harmony export */   j3: () => (/* binding */ settleAll),
/* harmony export */   os: () => (/* binding */ tailLines)
/* harmony export */ });
/* harmony import */ var _actions_exec__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(5260);
/* harmony import */ var node_child_process__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(1421);
/* harmony import */ var node_child_process__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__nccwpck_require__.n(node_child_process__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var node_string_decoder__WEBPACK_IMPORTED_MODULE_2__ = __nccwpck_require__(6193);
/* harmony import */ var node_string_decoder__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__nccwpck_require__.n(node_string_decoder__WEBPACK_IMPORTED_MODULE_2__);
/* harmony import */ var _errors_js__WEBPACK_IMPORTED_MODULE_3__ = __nccwpck_require__(3916);
// The one place that runs programs. Every command is an argument array: no value from a
// workflow ever reaches a shell. Failures carry the command and the tail of its stderr.




const STDERR_TAIL_LINES = 25;
/** coreutils `timeout`'s exit code when it stopped the command. */
const TIMED_OUT = 124;
/** A command that exited non-zero (or could not start). */
class CommandError extends Error {
    command;
    exitCode;
    stderr;
    constructor(command, exitCode, stderr) {
        const tail = tailLines(stderr, STDERR_TAIL_LINES);
        const status = exitCode === null ? 'could not run' : `failed with exit code ${exitCode}`;
        super(`\`${command.join(' ')}\` ${status}${tail ? `:\n${tail}` : ''}`);
        this.command = command;
        this.exitCode = exitCode;
        this.stderr = stderr;
        this.name = 'CommandError';
    }
    /** The last lines of stderr, for one-line error messages. */
    tail(lines = STDERR_TAIL_LINES) {
        return tailLines(this.stderr, lines);
    }
}
function tailLines(text, lines) {
    return text.trimEnd().split('\n').slice(-lines).join('\n').trim();
}
/** Run a command and capture its output; throws CommandError on a non-zero exit. */
async function run(command, args, options = {}) {
    const argv = [command, ...args];
    const limit = options.timeoutSeconds;
    const [program, programArgs] = limit
        ? ['timeout', ['--kill-after=5', String(limit), ...argv]]
        : [command, [...args]];
    let result;
    try {
        result = await _actions_exec__WEBPACK_IMPORTED_MODULE_0__/* .getExecOutput */ .H(program, programArgs, {
            input: typeof options.input === 'string' ? Buffer.from(options.input) : options.input,
            env: options.env ? { ...processEnv(), ...options.env } : undefined,
            cwd: options.cwd,
            silent: options.silent ?? false,
            ignoreReturnCode: true,
            listeners: options.onOutput ? interleaved(options.onOutput) : undefined
        });
    }
    catch (error) {
        // @actions/exec throws when the program cannot be found or started.
        throw new CommandError(argv, null, (0,_errors_js__WEBPACK_IMPORTED_MODULE_3__/* .errorMessage */ .g)(error));
    }
    if (result.exitCode !== 0 && !options.allowFailure) {
        const stderr = limit && result.exitCode === TIMED_OUT
            ? `${result.stderr}\ntimed out after ${limit} s`
            : result.stderr;
        throw new CommandError(argv, result.exitCode, stderr);
    }
    return result;
}
/** stdout and stderr listeners feeding one callback, multi-byte characters kept whole. */
function interleaved(onOutput) {
    const decoders = { stdout: new node_string_decoder__WEBPACK_IMPORTED_MODULE_2__.StringDecoder('utf8'), stderr: new node_string_decoder__WEBPACK_IMPORTED_MODULE_2__.StringDecoder('utf8') };
    return {
        stdout: (data) => onOutput(decoders.stdout.write(data)),
        stderr: (data) => onOutput(decoders.stderr.write(data))
    };
}
/** The current environment without undefined values, as @actions/exec wants it. */
function processEnv() {
    const env = {};
    for (const [name, value] of Object.entries(process.env)) {
        if (value !== undefined)
            env[name] = value;
    }
    return env;
}
/**
 * Start a command whose stdout is consumed as a stream (an image stream script, `zstd -dc`).
 * @actions/exec only takes a Buffer on stdin and collects stdout, so streams need spawn.
 */
function spawnProducer(command, args, stdin) {
    const argv = [command, ...args];
    const child = (0,node_child_process__WEBPACK_IMPORTED_MODULE_1__.spawn)(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    if (stdin)
        stdin.pipe(child.stdin);
    else
        child.stdin.end();
    let stderr = '';
    child.stderr.on('data', (chunk) => {
        stderr = tailLines(stderr + chunk.toString(), STDERR_TAIL_LINES * 4);
    });
    const done = new Promise((resolve, reject) => {
        child.on('error', error => reject(new CommandError(argv, null, error.message)));
        child.on('close', code => {
            if (code === 0)
                resolve();
            else
                reject(new CommandError(argv, code, stderr));
        });
    });
    return { stdout: child.stdout, done };
}
/**
 * Run a command with a stream on its stdin and capture its output (e.g. `docker load`).
 * The command line is echoed like @actions/exec does, so the log reads the same.
 */
async function runWithStdin(command, args, stdin) {
    const argv = [command, ...args];
    process.stdout.write(`[command]${argv.join(' ')}\n`);
    const child = (0,node_child_process__WEBPACK_IMPORTED_MODULE_1__.spawn)(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
        stdout += chunk.toString();
        process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk) => {
        stderr += chunk.toString();
        process.stderr.write(chunk);
    });
    // The consumer may exit early (bad archive): don't let EPIPE crash the action.
    child.stdin.on('error', () => undefined);
    stdin.pipe(child.stdin);
    const exitCode = await new Promise((resolve, reject) => {
        child.on('error', error => reject(new CommandError(argv, null, error.message)));
        child.on('close', resolve);
    });
    if (exitCode !== 0)
        throw new CommandError(argv, exitCode, stderr);
    return { exitCode, stdout, stderr };
}
/**
 * Wait for every promise, then throw the first failure. Unlike Promise.all, a second failure
 * (a producer that dies of EPIPE after its consumer failed) is never left unhandled.
 */
async function settleAll(promises) {
    const results = await Promise.allSettled(promises);
    for (const result of results) {
        if (result.status === 'rejected')
            throw result.reason;
    }
    return results.map(result => result.value);
}


/***/ }),

/***/ 3286:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   DH: () => (/* binding */ nixSystem),
/* harmony export */   OG: () => (/* binding */ PINNED_NIX_VERSION),
/* harmony export */   W9: () => (/* binding */ NIX_VERSION_PATTERN),
/* harmony export */   XA: () => (/* binding */ releaseUrl),
/* harmony export */   Zo: () => (/* binding */ parseSha256File),
/* harmony export */   "do": () => (/* binding */ releaseName),
/* harmony export */   kD: () => (/* binding */ releaseLayout),
/* harmony export */   z_: () => (/* binding */ checksumSource)
/* harmony export */ });
/* unused harmony exports PINNED_CHECKSUMS, OFFICIAL_RELEASES */
// Which Nix release tarball to fetch and how to check it: pure decisions, tested table-driven.
/** The release installed when `nix-version` is not given. */
const PINNED_NIX_VERSION = '2.35.2';
/**
 * SHA-256 of the official release tarballs, as published in each release's `install` script
 * (`hash=` beside `path=.../nix-<version>-<system>.tar.xz`). Only versions whose sums were
 * checked against more than one published copy belong here; any other version is checked
 * against the `.sha256` file published beside its tarball.
 */
const PINNED_CHECKSUMS = {
    '2.35.2': {
        'x86_64-linux': '0c3960a9792331a22081c3c7a5d8465db9b17c50b3acdf18587fa4c6f2cb1158',
        'aarch64-linux': '4d0302a2910f5eec1c33b8deef634f04899a75737e7001ec49908d003ae5efda'
    }
};
const OFFICIAL_RELEASES = 'https://releases.nixos.org/nix';
/** A version as releases.nixos.org names them: `2.35.2`. */
const NIX_VERSION_PATTERN = /^\d+\.\d+\.\d+$/;
/** The Nix system of this runner; installing is supported on Linux x86_64 and aarch64 only. */
function nixSystem(platform, arch) {
    if (platform === 'linux' && arch === 'x64')
        return 'x86_64-linux';
    if (platform === 'linux' && arch === 'arm64')
        return 'aarch64-linux';
    if (platform === 'darwin') {
        // A macOS install needs its own APFS volume for /nix: not done here yet.
        throw new Error('installing Nix on macOS is not supported yet: install Nix in an earlier step ' +
            '(this action then finds it), or use a Linux runner');
    }
    throw new Error(`installing Nix is not supported on ${platform}/${arch}: only Linux x86_64 and aarch64; ` +
        'install Nix in an earlier step and this action finds it');
}
/** `nix-2.35.2-x86_64-linux`: the tarball's name without `.tar.xz`, and its top directory. */
function releaseName(version, system) {
    return `nix-${version}-${system}`;
}
/**
 * Where to download the tarball. `install-url` is either the tarball itself (ends in `.tar.xz`)
 * or a mirror of releases.nixos.org/nix, to which `nix-<v>/nix-<v>-<system>.tar.xz` is added.
 */
function releaseUrl(version, system, installUrl) {
    if (installUrl !== null && installUrl.endsWith('.tar.xz'))
        return installUrl;
    const base = (installUrl ?? OFFICIAL_RELEASES).replace(/\/+$/, '');
    return `${base}/nix-${version}/${releaseName(version, system)}.tar.xz`;
}
/** The pinned sum when there is one (a mirror must serve the same bytes), else `<url>.sha256`. */
function checksumSource(version, system, url) {
    const pinned = PINNED_CHECKSUMS[version]?.[system];
    return pinned ? { kind: 'pinned', sha256: pinned } : { kind: 'published', url: `${url}.sha256` };
}
/** The hex digest in a `.sha256` file: a bare digest, or `sha256sum` output. */
function parseSha256File(text) {
    const digest = /^\s*([0-9a-fA-F]{64})(?:\s|$)/.exec(text)?.[1];
    if (!digest) {
        throw new Error(`is not a SHA-256 checksum file (it starts ${JSON.stringify(text.slice(0, 40))})`);
    }
    return digest.toLowerCase();
}
/**
 * Which of the tarball's store paths are Nix and the CA bundle. The tarball's `install` script
 * names them (`nix="/nix/store/..."`); without it, the entry named `<hash>-nix-<version>`.
 */
function releaseLayout(installScript, storeEntries, version) {
    const assigned = (name) => new RegExp(`^${name}="(/nix/store/[^"/]+)"\\s*$`, 'm').exec(installScript ?? '')?.[1] ?? null;
    const byName = (pattern) => {
        const entry = storeEntries.find(e => pattern.test(e));
        return entry ? `/nix/store/${entry}` : null;
    };
    const escaped = version.replace(/\./g, '\\.');
    const nix = assigned('nix') ?? byName(new RegExp(`^[a-z0-9]{32}-nix-${escaped}$`));
    if (!nix) {
        throw new Error(`the tarball holds no store path for Nix ${version} (no nix= line in its install script, ` +
            `no store/<hash>-nix-${version})`);
    }
    const base = (path) => path.slice('/nix/store/'.length);
    if (!storeEntries.includes(base(nix))) {
        throw new Error(`the tarball's install script names ${nix}, which is not in its store/`);
    }
    const cacert = assigned('cacert') ?? byName(/^[a-z0-9]{32}-nss-cacert-/);
    return { nix, cacert: cacert && storeEntries.includes(base(cacert)) ? cacert : null };
}


/***/ }),

/***/ 1837:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   n: () => (/* binding */ parseDrvName),
/* harmony export */   y: () => (/* binding */ storePathName)
/* harmony export */ });
// A store path's name split into package name and version exactly as Nix's
// `builtins.parseDrvName` does (DrvName in libexpr/names.cc): the version starts after the
// first `-` that is followed by something other than an ASCII letter.
const ASCII_LETTER = /[A-Za-z]/;
function parseDrvName(fullName) {
    for (let i = 0; i + 1 < fullName.length; i++) {
        if (fullName[i] === '-' && !ASCII_LETTER.test(fullName[i + 1])) {
            return { name: fullName.slice(0, i), version: fullName.slice(i + 1) };
        }
    }
    return { name: fullName, version: '' };
}
/** `/nix/store/<hash>-<name>` -> `<name>`. */
function storePathName(storePath) {
    const base = storePath.slice(storePath.lastIndexOf('/') + 1);
    return base.slice(base.indexOf('-') + 1);
}


/***/ }),

/***/ 5369:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   O: () => (/* binding */ actionTempDir),
/* harmony export */   X: () => (/* binding */ runnerTemp)
/* harmony export */ });
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(8161);
/* harmony import */ var node_os__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__nccwpck_require__.n(node_os__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__nccwpck_require__.n(node_path__WEBPACK_IMPORTED_MODULE_1__);
// The one place that says where the action's temporary files go: the runner's temp directory
// (private to the job, emptied by the runner after it), or the system's outside a runner.


/** RUNNER_TEMP, or the system's temp directory when it is unset or empty. */
function runnerTemp() {
    return process.env.RUNNER_TEMP || (0,node_os__WEBPACK_IMPORTED_MODULE_0__.tmpdir)();
}
/** The action's own folder in it: the job's nix.conf, the store cache's scratch space, logins. */
function actionTempDir(root = runnerTemp()) {
    return (0,node_path__WEBPACK_IMPORTED_MODULE_1__.join)(root, 'nix-container-action');
}


/***/ }),

/***/ 9191:
/***/ ((__unused_webpack_module, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   E: () => (/* binding */ moveTree),
/* harmony export */   d: () => (/* binding */ removeTree)
/* harmony export */ });
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(3024);
/* harmony import */ var node_fs__WEBPACK_IMPORTED_MODULE_0___default = /*#__PURE__*/__nccwpck_require__.n(node_fs__WEBPACK_IMPORTED_MODULE_0__);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(1455);
/* harmony import */ var node_fs_promises__WEBPACK_IMPORTED_MODULE_1___default = /*#__PURE__*/__nccwpck_require__.n(node_fs_promises__WEBPACK_IMPORTED_MODULE_1__);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_2__ = __nccwpck_require__(6760);
/* harmony import */ var node_path__WEBPACK_IMPORTED_MODULE_2___default = /*#__PURE__*/__nccwpck_require__.n(node_path__WEBPACK_IMPORTED_MODULE_2__);
// Moving and removing directory trees that may be read-only, as store paths are. Root skips
// these permission checks; the unprivileged `runner` user on GitHub's runners does not.



const OWNER_WRITE = 0o200;
/**
 * rename(2) a file or directory to another parent. Linux needs write permission on a directory
 * to move it to another parent (its `..` entry changes), which a read-only store path's owner
 * lacks: the directory is made writable for the move only, then given its mode back, so the
 * path ends as read-only as Nix would have it. Synchronous system calls: a restore moves
 * thousands of paths in a row, and the thread pool's round trip costs more than each call.
 */
function moveTree(from, to) {
    const { mode } = (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.lstatSync)(from);
    const readOnlyDir = (mode & 0o170000) === 0o040000 && (mode & OWNER_WRITE) === 0;
    if (!readOnlyDir)
        return (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.renameSync)(from, to);
    // Not our directory (chmod refused): the rename says whether we may move it anyway (root).
    let opened = true;
    try {
        (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.chmodSync)(from, (mode | OWNER_WRITE) & 0o7777);
    }
    catch {
        opened = false;
    }
    try {
        (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.renameSync)(from, to);
    }
    catch (error) {
        if (opened)
            (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.chmodSync)(from, mode & 0o7777);
        throw error;
    }
    if (opened)
        (0,node_fs__WEBPACK_IMPORTED_MODULE_0__.chmodSync)(to, mode & 0o7777);
}
/**
 * rm -rf for a tree whose directories may be read-only. Only directories are made writable:
 * files may be hard links to the store's own, whose mode must not change.
 */
async function removeTree(dir) {
    const entries = await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.readdir)(dir, { withFileTypes: true, recursive: true }).catch(() => null);
    if (entries === null) {
        await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.rm)(dir, { force: true });
        return;
    }
    await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.chmod)(dir, 0o755).catch(() => undefined);
    for (const entry of entries) {
        if (entry.isDirectory()) {
            await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.chmod)((0,node_path__WEBPACK_IMPORTED_MODULE_2__.join)(entry.parentPath, entry.name), 0o755).catch(() => undefined);
        }
    }
    await (0,node_fs_promises__WEBPACK_IMPORTED_MODULE_1__.rm)(dir, { recursive: true, force: true });
}


/***/ }),

/***/ 2613:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("assert");

/***/ }),

/***/ 181:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("buffer");

/***/ }),

/***/ 5317:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("child_process");

/***/ }),

/***/ 6982:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("crypto");

/***/ }),

/***/ 4434:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("events");

/***/ }),

/***/ 9896:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("fs");

/***/ }),

/***/ 8611:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("http");

/***/ }),

/***/ 5692:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("https");

/***/ }),

/***/ 9278:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("net");

/***/ }),

/***/ 4589:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:assert");

/***/ }),

/***/ 4317:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:async_hooks");

/***/ }),

/***/ 4573:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:buffer");

/***/ }),

/***/ 1421:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:child_process");

/***/ }),

/***/ 7540:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:console");

/***/ }),

/***/ 7598:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:crypto");

/***/ }),

/***/ 3053:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:diagnostics_channel");

/***/ }),

/***/ 610:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:dns");

/***/ }),

/***/ 8474:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:events");

/***/ }),

/***/ 3024:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs");

/***/ }),

/***/ 1455:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:fs/promises");

/***/ }),

/***/ 7067:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:http");

/***/ }),

/***/ 2467:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:http2");

/***/ }),

/***/ 4708:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:https");

/***/ }),

/***/ 8995:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:module");

/***/ }),

/***/ 7030:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:net");

/***/ }),

/***/ 8161:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:os");

/***/ }),

/***/ 6760:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:path");

/***/ }),

/***/ 643:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:perf_hooks");

/***/ }),

/***/ 1708:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:process");

/***/ }),

/***/ 1792:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:querystring");

/***/ }),

/***/ 7075:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream");

/***/ }),

/***/ 6193:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:string_decoder");

/***/ }),

/***/ 1692:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:tls");

/***/ }),

/***/ 3136:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:url");

/***/ }),

/***/ 7975:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:util");

/***/ }),

/***/ 3429:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:util/types");

/***/ }),

/***/ 5919:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:worker_threads");

/***/ }),

/***/ 8522:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:zlib");

/***/ }),

/***/ 857:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("os");

/***/ }),

/***/ 6928:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("path");

/***/ }),

/***/ 2203:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("stream");

/***/ }),

/***/ 3193:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("string_decoder");

/***/ }),

/***/ 4756:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("tls");

/***/ }),

/***/ 2018:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("tty");

/***/ }),

/***/ 7016:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("url");

/***/ }),

/***/ 9023:
/***/ ((module) => {

module.exports = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("util");

/***/ }),

/***/ 5260:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __nccwpck_require__) => {


// EXPORTS
__nccwpck_require__.d(__webpack_exports__, {
  m: () => (/* binding */ exec),
  H: () => (/* binding */ getExecOutput)
});

// EXTERNAL MODULE: external "string_decoder"
var external_string_decoder_ = __nccwpck_require__(3193);
// EXTERNAL MODULE: external "os"
var external_os_ = __nccwpck_require__(857);
// EXTERNAL MODULE: external "events"
var external_events_ = __nccwpck_require__(4434);
// EXTERNAL MODULE: external "child_process"
var external_child_process_ = __nccwpck_require__(5317);
// EXTERNAL MODULE: external "path"
var external_path_ = __nccwpck_require__(6928);
// EXTERNAL MODULE: ./node_modules/@actions/io/lib/io.js
var io = __nccwpck_require__(8701);
// EXTERNAL MODULE: ./node_modules/@actions/io/lib/io-util.js
var io_util = __nccwpck_require__(90);
;// CONCATENATED MODULE: external "timers"
const external_timers_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("timers");
;// CONCATENATED MODULE: ./node_modules/@actions/exec/lib/toolrunner.js
var __awaiter = (undefined && undefined.__awaiter) || function (thisArg, _arguments, P, generator) {
    function adopt(value) { return value instanceof P ? value : new P(function (resolve) { resolve(value); }); }
    return new (P || (P = Promise))(function (resolve, reject) {
        function fulfilled(value) { try { step(generator.next(value)); } catch (e) { reject(e); } }
        function rejected(value) { try { step(generator["throw"](value)); } catch (e) { reject(e); } }
        function step(result) { result.done ? resolve(result.value) : adopt(result.value).then(fulfilled, rejected); }
        step((generator = generator.apply(thisArg, _arguments || [])).next());
    });
};







/* eslint-disable @typescript-eslint/unbound-method */
const IS_WINDOWS = process.platform === 'win32';
/*
 * Class for running command line tools. Handles quoting and arg parsing in a platform agnostic way.
 */
class ToolRunner extends external_events_.EventEmitter {
    constructor(toolPath, args, options) {
        super();
        if (!toolPath) {
            throw new Error("Parameter 'toolPath' cannot be null or empty.");
        }
        this.toolPath = toolPath;
        this.args = args || [];
        this.options = options || {};
    }
    _debug(message) {
        if (this.options.listeners && this.options.listeners.debug) {
            this.options.listeners.debug(message);
        }
    }
    _getCommandString(options, noPrefix) {
        const toolPath = this._getSpawnFileName();
        const args = this._getSpawnArgs(options);
        let cmd = noPrefix ? '' : '[command]'; // omit prefix when piped to a second tool
        if (IS_WINDOWS) {
            // Windows + cmd file
            if (this._isCmdFile()) {
                cmd += toolPath;
                for (const a of args) {
                    cmd += ` ${a}`;
                }
            }
            // Windows + verbatim
            else if (options.windowsVerbatimArguments) {
                cmd += `"${toolPath}"`;
                for (const a of args) {
                    cmd += ` ${a}`;
                }
            }
            // Windows (regular)
            else {
                cmd += this._windowsQuoteCmdArg(toolPath);
                for (const a of args) {
                    cmd += ` ${this._windowsQuoteCmdArg(a)}`;
                }
            }
        }
        else {
            // OSX/Linux - this can likely be improved with some form of quoting.
            // creating processes on Unix is fundamentally different than Windows.
            // on Unix, execvp() takes an arg array.
            cmd += toolPath;
            for (const a of args) {
                cmd += ` ${a}`;
            }
        }
        return cmd;
    }
    _processLineBuffer(data, strBuffer, onLine) {
        try {
            let s = strBuffer + data.toString();
            let n = s.indexOf(external_os_.EOL);
            while (n > -1) {
                const line = s.substring(0, n);
                onLine(line);
                // the rest of the string ...
                s = s.substring(n + external_os_.EOL.length);
                n = s.indexOf(external_os_.EOL);
            }
            return s;
        }
        catch (err) {
            // streaming lines to console is best effort.  Don't fail a build.
            this._debug(`error processing line. Failed with error ${err}`);
            return '';
        }
    }
    _getSpawnFileName() {
        if (IS_WINDOWS) {
            if (this._isCmdFile()) {
                return process.env['COMSPEC'] || 'cmd.exe';
            }
        }
        return this.toolPath;
    }
    _getSpawnArgs(options) {
        if (IS_WINDOWS) {
            if (this._isCmdFile()) {
                let argline = `/D /S /C "${this._windowsQuoteCmdArg(this.toolPath)}`;
                for (const a of this.args) {
                    argline += ' ';
                    argline += options.windowsVerbatimArguments
                        ? a
                        : this._windowsQuoteCmdArg(a);
                }
                argline += '"';
                return [argline];
            }
        }
        return this.args;
    }
    _endsWith(str, end) {
        return str.endsWith(end);
    }
    _isCmdFile() {
        const upperToolPath = this.toolPath.toUpperCase();
        return (this._endsWith(upperToolPath, '.CMD') ||
            this._endsWith(upperToolPath, '.BAT'));
    }
    _windowsQuoteCmdArg(arg) {
        // for .exe, apply the normal quoting rules that libuv applies
        if (!this._isCmdFile()) {
            return this._uvQuoteCmdArg(arg);
        }
        // otherwise apply quoting rules specific to the cmd.exe command line parser.
        // the libuv rules are generic and are not designed specifically for cmd.exe
        // command line parser.
        //
        // for a detailed description of the cmd.exe command line parser, refer to
        // http://stackoverflow.com/questions/4094699/how-does-the-windows-command-interpreter-cmd-exe-parse-scripts/7970912#7970912
        // need quotes for empty arg
        if (!arg) {
            return '""';
        }
        // determine whether the arg needs to be quoted
        const cmdSpecialChars = [
            ' ',
            '\t',
            '&',
            '(',
            ')',
            '[',
            ']',
            '{',
            '}',
            '^',
            '=',
            ';',
            '!',
            "'",
            '+',
            ',',
            '`',
            '~',
            '|',
            '<',
            '>',
            '"'
        ];
        let needsQuotes = false;
        for (const char of arg) {
            if (cmdSpecialChars.some(x => x === char)) {
                needsQuotes = true;
                break;
            }
        }
        // short-circuit if quotes not needed
        if (!needsQuotes) {
            return arg;
        }
        // the following quoting rules are very similar to the rules that by libuv applies.
        //
        // 1) wrap the string in quotes
        //
        // 2) double-up quotes - i.e. " => ""
        //
        //    this is different from the libuv quoting rules. libuv replaces " with \", which unfortunately
        //    doesn't work well with a cmd.exe command line.
        //
        //    note, replacing " with "" also works well if the arg is passed to a downstream .NET console app.
        //    for example, the command line:
        //          foo.exe "myarg:""my val"""
        //    is parsed by a .NET console app into an arg array:
        //          [ "myarg:\"my val\"" ]
        //    which is the same end result when applying libuv quoting rules. although the actual
        //    command line from libuv quoting rules would look like:
        //          foo.exe "myarg:\"my val\""
        //
        // 3) double-up slashes that precede a quote,
        //    e.g.  hello \world    => "hello \world"
        //          hello\"world    => "hello\\""world"
        //          hello\\"world   => "hello\\\\""world"
        //          hello world\    => "hello world\\"
        //
        //    technically this is not required for a cmd.exe command line, or the batch argument parser.
        //    the reasons for including this as a .cmd quoting rule are:
        //
        //    a) this is optimized for the scenario where the argument is passed from the .cmd file to an
        //       external program. many programs (e.g. .NET console apps) rely on the slash-doubling rule.
        //
        //    b) it's what we've been doing previously (by deferring to node default behavior) and we
        //       haven't heard any complaints about that aspect.
        //
        // note, a weakness of the quoting rules chosen here, is that % is not escaped. in fact, % cannot be
        // escaped when used on the command line directly - even though within a .cmd file % can be escaped
        // by using %%.
        //
        // the saving grace is, on the command line, %var% is left as-is if var is not defined. this contrasts
        // the line parsing rules within a .cmd file, where if var is not defined it is replaced with nothing.
        //
        // one option that was explored was replacing % with ^% - i.e. %var% => ^%var^%. this hack would
        // often work, since it is unlikely that var^ would exist, and the ^ character is removed when the
        // variable is used. the problem, however, is that ^ is not removed when %* is used to pass the args
        // to an external program.
        //
        // an unexplored potential solution for the % escaping problem, is to create a wrapper .cmd file.
        // % can be escaped within a .cmd file.
        let reverse = '"';
        let quoteHit = true;
        for (let i = arg.length; i > 0; i--) {
            // walk the string in reverse
            reverse += arg[i - 1];
            if (quoteHit && arg[i - 1] === '\\') {
                reverse += '\\'; // double the slash
            }
            else if (arg[i - 1] === '"') {
                quoteHit = true;
                reverse += '"'; // double the quote
            }
            else {
                quoteHit = false;
            }
        }
        reverse += '"';
        return reverse.split('').reverse().join('');
    }
    _uvQuoteCmdArg(arg) {
        // Tool runner wraps child_process.spawn() and needs to apply the same quoting as
        // Node in certain cases where the undocumented spawn option windowsVerbatimArguments
        // is used.
        //
        // Since this function is a port of quote_cmd_arg from Node 4.x (technically, lib UV,
        // see https://github.com/nodejs/node/blob/v4.x/deps/uv/src/win/process.c for details),
        // pasting copyright notice from Node within this function:
        //
        //      Copyright Joyent, Inc. and other Node contributors. All rights reserved.
        //
        //      Permission is hereby granted, free of charge, to any person obtaining a copy
        //      of this software and associated documentation files (the "Software"), to
        //      deal in the Software without restriction, including without limitation the
        //      rights to use, copy, modify, merge, publish, distribute, sublicense, and/or
        //      sell copies of the Software, and to permit persons to whom the Software is
        //      furnished to do so, subject to the following conditions:
        //
        //      The above copyright notice and this permission notice shall be included in
        //      all copies or substantial portions of the Software.
        //
        //      THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
        //      IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
        //      FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
        //      AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
        //      LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING
        //      FROM, OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS
        //      IN THE SOFTWARE.
        if (!arg) {
            // Need double quotation for empty argument
            return '""';
        }
        if (!arg.includes(' ') && !arg.includes('\t') && !arg.includes('"')) {
            // No quotation needed
            return arg;
        }
        if (!arg.includes('"') && !arg.includes('\\')) {
            // No embedded double quotes or backslashes, so I can just wrap
            // quote marks around the whole thing.
            return `"${arg}"`;
        }
        // Expected input/output:
        //   input : hello"world
        //   output: "hello\"world"
        //   input : hello""world
        //   output: "hello\"\"world"
        //   input : hello\world
        //   output: hello\world
        //   input : hello\\world
        //   output: hello\\world
        //   input : hello\"world
        //   output: "hello\\\"world"
        //   input : hello\\"world
        //   output: "hello\\\\\"world"
        //   input : hello world\
        //   output: "hello world\\" - note the comment in libuv actually reads "hello world\"
        //                             but it appears the comment is wrong, it should be "hello world\\"
        let reverse = '"';
        let quoteHit = true;
        for (let i = arg.length; i > 0; i--) {
            // walk the string in reverse
            reverse += arg[i - 1];
            if (quoteHit && arg[i - 1] === '\\') {
                reverse += '\\';
            }
            else if (arg[i - 1] === '"') {
                quoteHit = true;
                reverse += '\\';
            }
            else {
                quoteHit = false;
            }
        }
        reverse += '"';
        return reverse.split('').reverse().join('');
    }
    _cloneExecOptions(options) {
        options = options || {};
        const result = {
            cwd: options.cwd || process.cwd(),
            env: options.env || process.env,
            silent: options.silent || false,
            windowsVerbatimArguments: options.windowsVerbatimArguments || false,
            failOnStdErr: options.failOnStdErr || false,
            ignoreReturnCode: options.ignoreReturnCode || false,
            delay: options.delay || 10000
        };
        result.outStream = options.outStream || process.stdout;
        result.errStream = options.errStream || process.stderr;
        return result;
    }
    _getSpawnOptions(options, toolPath) {
        options = options || {};
        const result = {};
        result.cwd = options.cwd;
        result.env = options.env;
        result['windowsVerbatimArguments'] =
            options.windowsVerbatimArguments || this._isCmdFile();
        if (options.windowsVerbatimArguments) {
            result.argv0 = `"${toolPath}"`;
        }
        return result;
    }
    /**
     * Exec a tool.
     * Output will be streamed to the live console.
     * Returns promise with return code
     *
     * @param     tool     path to tool to exec
     * @param     options  optional exec options.  See ExecOptions
     * @returns   number
     */
    exec() {
        return __awaiter(this, void 0, void 0, function* () {
            // root the tool path if it is unrooted and contains relative pathing
            if (!io_util/* isRooted */.Qh(this.toolPath) &&
                (this.toolPath.includes('/') ||
                    (IS_WINDOWS && this.toolPath.includes('\\')))) {
                // prefer options.cwd if it is specified, however options.cwd may also need to be rooted
                this.toolPath = external_path_.resolve(process.cwd(), this.options.cwd || process.cwd(), this.toolPath);
            }
            // if the tool is only a file name, then resolve it from the PATH
            // otherwise verify it exists (add extension on Windows if necessary)
            this.toolPath = yield io/* which */.K7(this.toolPath, true);
            return new Promise((resolve, reject) => __awaiter(this, void 0, void 0, function* () {
                this._debug(`exec tool: ${this.toolPath}`);
                this._debug('arguments:');
                for (const arg of this.args) {
                    this._debug(`   ${arg}`);
                }
                const optionsNonNull = this._cloneExecOptions(this.options);
                if (!optionsNonNull.silent && optionsNonNull.outStream) {
                    optionsNonNull.outStream.write(this._getCommandString(optionsNonNull) + external_os_.EOL);
                }
                const state = new ExecState(optionsNonNull, this.toolPath);
                state.on('debug', (message) => {
                    this._debug(message);
                });
                if (this.options.cwd && !(yield io_util/* exists */.t2(this.options.cwd))) {
                    return reject(new Error(`The cwd: ${this.options.cwd} does not exist!`));
                }
                const fileName = this._getSpawnFileName();
                const cp = external_child_process_.spawn(fileName, this._getSpawnArgs(optionsNonNull), this._getSpawnOptions(this.options, fileName));
                let stdbuffer = '';
                if (cp.stdout) {
                    cp.stdout.on('data', (data) => {
                        if (this.options.listeners && this.options.listeners.stdout) {
                            this.options.listeners.stdout(data);
                        }
                        if (!optionsNonNull.silent && optionsNonNull.outStream) {
                            optionsNonNull.outStream.write(data);
                        }
                        stdbuffer = this._processLineBuffer(data, stdbuffer, (line) => {
                            if (this.options.listeners && this.options.listeners.stdline) {
                                this.options.listeners.stdline(line);
                            }
                        });
                    });
                }
                let errbuffer = '';
                if (cp.stderr) {
                    cp.stderr.on('data', (data) => {
                        state.processStderr = true;
                        if (this.options.listeners && this.options.listeners.stderr) {
                            this.options.listeners.stderr(data);
                        }
                        if (!optionsNonNull.silent &&
                            optionsNonNull.errStream &&
                            optionsNonNull.outStream) {
                            const s = optionsNonNull.failOnStdErr
                                ? optionsNonNull.errStream
                                : optionsNonNull.outStream;
                            s.write(data);
                        }
                        errbuffer = this._processLineBuffer(data, errbuffer, (line) => {
                            if (this.options.listeners && this.options.listeners.errline) {
                                this.options.listeners.errline(line);
                            }
                        });
                    });
                }
                cp.on('error', (err) => {
                    state.processError = err.message;
                    state.processExited = true;
                    state.processClosed = true;
                    state.CheckComplete();
                });
                cp.on('exit', (code) => {
                    state.processExitCode = code;
                    state.processExited = true;
                    this._debug(`Exit code ${code} received from tool '${this.toolPath}'`);
                    state.CheckComplete();
                });
                cp.on('close', (code) => {
                    state.processExitCode = code;
                    state.processExited = true;
                    state.processClosed = true;
                    this._debug(`STDIO streams have closed for tool '${this.toolPath}'`);
                    state.CheckComplete();
                });
                state.on('done', (error, exitCode) => {
                    if (stdbuffer.length > 0) {
                        this.emit('stdline', stdbuffer);
                    }
                    if (errbuffer.length > 0) {
                        this.emit('errline', errbuffer);
                    }
                    cp.removeAllListeners();
                    if (error) {
                        reject(error);
                    }
                    else {
                        resolve(exitCode);
                    }
                });
                if (this.options.input) {
                    if (!cp.stdin) {
                        throw new Error('child process missing stdin');
                    }
                    cp.stdin.end(this.options.input);
                }
            }));
        });
    }
}
/**
 * Convert an arg string to an array of args. Handles escaping
 *
 * @param    argString   string of arguments
 * @returns  string[]    array of arguments
 */
function argStringToArray(argString) {
    const args = [];
    let inQuotes = false;
    let escaped = false;
    let arg = '';
    function append(c) {
        // we only escape double quotes.
        if (escaped && c !== '"') {
            arg += '\\';
        }
        arg += c;
        escaped = false;
    }
    for (let i = 0; i < argString.length; i++) {
        const c = argString.charAt(i);
        if (c === '"') {
            if (!escaped) {
                inQuotes = !inQuotes;
            }
            else {
                append(c);
            }
            continue;
        }
        if (c === '\\' && escaped) {
            append(c);
            continue;
        }
        if (c === '\\' && inQuotes) {
            escaped = true;
            continue;
        }
        if (c === ' ' && !inQuotes) {
            if (arg.length > 0) {
                args.push(arg);
                arg = '';
            }
            continue;
        }
        append(c);
    }
    if (arg.length > 0) {
        args.push(arg.trim());
    }
    return args;
}
class ExecState extends external_events_.EventEmitter {
    constructor(options, toolPath) {
        super();
        this.processClosed = false; // tracks whether the process has exited and stdio is closed
        this.processError = '';
        this.processExitCode = 0;
        this.processExited = false; // tracks whether the process has exited
        this.processStderr = false; // tracks whether stderr was written to
        this.delay = 10000; // 10 seconds
        this.done = false;
        this.timeout = null;
        if (!toolPath) {
            throw new Error('toolPath must not be empty');
        }
        this.options = options;
        this.toolPath = toolPath;
        if (options.delay) {
            this.delay = options.delay;
        }
    }
    CheckComplete() {
        if (this.done) {
            return;
        }
        if (this.processClosed) {
            this._setResult();
        }
        else if (this.processExited) {
            this.timeout = (0,external_timers_namespaceObject.setTimeout)(ExecState.HandleTimeout, this.delay, this);
        }
    }
    _debug(message) {
        this.emit('debug', message);
    }
    _setResult() {
        // determine whether there is an error
        let error;
        if (this.processExited) {
            if (this.processError) {
                error = new Error(`There was an error when attempting to execute the process '${this.toolPath}'. This may indicate the process failed to start. Error: ${this.processError}`);
            }
            else if (this.processExitCode !== 0 && !this.options.ignoreReturnCode) {
                error = new Error(`The process '${this.toolPath}' failed with exit code ${this.processExitCode}`);
            }
            else if (this.processStderr && this.options.failOnStdErr) {
                error = new Error(`The process '${this.toolPath}' failed because one or more lines were written to the STDERR stream`);
            }
        }
        // clear the timeout
        if (this.timeout) {
            clearTimeout(this.timeout);
            this.timeout = null;
        }
        this.done = true;
        this.emit('done', error, this.processExitCode);
    }
    static HandleTimeout(state) {
        if (state.done) {
            return;
        }
        if (!state.processClosed && state.processExited) {
            const message = `The STDIO streams did not close within ${state.delay / 1000} seconds of the exit event from process '${state.toolPath}'. This may indicate a child process inherited the STDIO streams and has not yet exited.`;
            state._debug(message);
        }
        state._setResult();
    }
}
//# sourceMappingURL=toolrunner.js.map
;// CONCATENATED MODULE: ./node_modules/@actions/exec/lib/exec.js
var exec_awaiter = (undefined && undefined.__awaiter) || function (thisArg, _arguments, P, generator) {
    function adopt(value) { return value instanceof P ? value : new P(function (resolve) { resolve(value); }); }
    return new (P || (P = Promise))(function (resolve, reject) {
        function fulfilled(value) { try { step(generator.next(value)); } catch (e) { reject(e); } }
        function rejected(value) { try { step(generator["throw"](value)); } catch (e) { reject(e); } }
        function step(result) { result.done ? resolve(result.value) : adopt(result.value).then(fulfilled, rejected); }
        step((generator = generator.apply(thisArg, _arguments || [])).next());
    });
};


/**
 * Exec a command.
 * Output will be streamed to the live console.
 * Returns promise with return code
 *
 * @param     commandLine        command to execute (can include additional args). Must be correctly escaped.
 * @param     args               optional arguments for tool. Escaping is handled by the lib.
 * @param     options            optional exec options.  See ExecOptions
 * @returns   Promise<number>    exit code
 */
function exec(commandLine, args, options) {
    return exec_awaiter(this, void 0, void 0, function* () {
        const commandArgs = argStringToArray(commandLine);
        if (commandArgs.length === 0) {
            throw new Error(`Parameter 'commandLine' cannot be null or empty.`);
        }
        // Path to tool to execute should be first arg
        const toolPath = commandArgs[0];
        args = commandArgs.slice(1).concat(args || []);
        const runner = new ToolRunner(toolPath, args, options);
        return runner.exec();
    });
}
/**
 * Exec a command and get the output.
 * Output will be streamed to the live console.
 * Returns promise with the exit code and collected stdout and stderr
 *
 * @param     commandLine           command to execute (can include additional args). Must be correctly escaped.
 * @param     args                  optional arguments for tool. Escaping is handled by the lib.
 * @param     options               optional exec options.  See ExecOptions
 * @returns   Promise<ExecOutput>   exit code, stdout, and stderr
 */
function getExecOutput(commandLine, args, options) {
    return exec_awaiter(this, void 0, void 0, function* () {
        var _a, _b;
        let stdout = '';
        let stderr = '';
        //Using string decoder covers the case where a mult-byte character is split
        const stdoutDecoder = new external_string_decoder_.StringDecoder('utf8');
        const stderrDecoder = new external_string_decoder_.StringDecoder('utf8');
        const originalStdoutListener = (_a = options === null || options === void 0 ? void 0 : options.listeners) === null || _a === void 0 ? void 0 : _a.stdout;
        const originalStdErrListener = (_b = options === null || options === void 0 ? void 0 : options.listeners) === null || _b === void 0 ? void 0 : _b.stderr;
        const stdErrListener = (data) => {
            stderr += stderrDecoder.write(data);
            if (originalStdErrListener) {
                originalStdErrListener(data);
            }
        };
        const stdOutListener = (data) => {
            stdout += stdoutDecoder.write(data);
            if (originalStdoutListener) {
                originalStdoutListener(data);
            }
        };
        const listeners = Object.assign(Object.assign({}, options === null || options === void 0 ? void 0 : options.listeners), { stdout: stdOutListener, stderr: stdErrListener });
        const exitCode = yield exec(commandLine, args, Object.assign(Object.assign({}, options), { listeners }));
        //flush any remaining characters
        stdout += stdoutDecoder.end();
        stderr += stderrDecoder.end();
        return {
            exitCode,
            stdout,
            stderr
        };
    });
}
//# sourceMappingURL=exec.js.map

/***/ }),

/***/ 90:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   $1: () => (/* binding */ lstat),
/* harmony export */   Ck: () => (/* binding */ mkdir),
/* harmony export */   Cy: () => (/* binding */ readdir),
/* harmony export */   H8: () => (/* binding */ IS_WINDOWS),
/* harmony export */   Qh: () => (/* binding */ isRooted),
/* harmony export */   YN: () => (/* binding */ symlink),
/* harmony export */   dJ: () => (/* binding */ stat),
/* harmony export */   h_: () => (/* binding */ readlink),
/* harmony export */   k6: () => (/* binding */ chmod),
/* harmony export */   m3: () => (/* binding */ copyFile),
/* harmony export */   rm: () => (/* binding */ rm),
/* harmony export */   t2: () => (/* binding */ exists),
/* harmony export */   vr: () => (/* binding */ tryGetExecutablePath),
/* harmony export */   y1: () => (/* binding */ unlink)
/* harmony export */ });
/* unused harmony exports open, rename, rmdir, UV_FS_O_EXLOCK, READONLY, isDirectory, getCmdPath */
/* harmony import */ var fs__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(9896);
/* harmony import */ var path__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(6928);
var __awaiter = (undefined && undefined.__awaiter) || function (thisArg, _arguments, P, generator) {
    function adopt(value) { return value instanceof P ? value : new P(function (resolve) { resolve(value); }); }
    return new (P || (P = Promise))(function (resolve, reject) {
        function fulfilled(value) { try { step(generator.next(value)); } catch (e) { reject(e); } }
        function rejected(value) { try { step(generator["throw"](value)); } catch (e) { reject(e); } }
        function step(result) { result.done ? resolve(result.value) : adopt(result.value).then(fulfilled, rejected); }
        step((generator = generator.apply(thisArg, _arguments || [])).next());
    });
};


const { chmod, copyFile, lstat, mkdir, open, readdir, rename, rm, rmdir, stat, symlink, unlink } = fs__WEBPACK_IMPORTED_MODULE_0__.promises;
// export const {open} = 'fs'
const IS_WINDOWS = process.platform === 'win32';
/**
 * Custom implementation of readlink to ensure Windows junctions
 * maintain trailing backslash for backward compatibility with Node.js < 24
 *
 * In Node.js 20, Windows junctions (directory symlinks) always returned paths
 * with trailing backslashes. Node.js 24 removed this behavior, which breaks
 * code that relied on this format for path operations.
 *
 * This implementation restores the Node 20 behavior by adding a trailing
 * backslash to all junction results on Windows.
 */
function readlink(fsPath) {
    return __awaiter(this, void 0, void 0, function* () {
        const result = yield fs__WEBPACK_IMPORTED_MODULE_0__.promises.readlink(fsPath);
        // On Windows, restore Node 20 behavior: add trailing backslash to all results
        // since junctions on Windows are always directory links
        if (IS_WINDOWS && !result.endsWith('\\')) {
            return `${result}\\`;
        }
        return result;
    });
}
// See https://github.com/nodejs/node/blob/d0153aee367422d0858105abec186da4dff0a0c5/deps/uv/include/uv/win.h#L691
const UV_FS_O_EXLOCK = 0x10000000;
const READONLY = fs__WEBPACK_IMPORTED_MODULE_0__.constants.O_RDONLY;
function exists(fsPath) {
    return __awaiter(this, void 0, void 0, function* () {
        try {
            yield stat(fsPath);
        }
        catch (err) {
            if (err.code === 'ENOENT') {
                return false;
            }
            throw err;
        }
        return true;
    });
}
function isDirectory(fsPath_1) {
    return __awaiter(this, arguments, void 0, function* (fsPath, useStat = false) {
        const stats = useStat ? yield stat(fsPath) : yield lstat(fsPath);
        return stats.isDirectory();
    });
}
/**
 * On OSX/Linux, true if path starts with '/'. On Windows, true for paths like:
 * \, \hello, \\hello\share, C:, and C:\hello (and corresponding alternate separator cases).
 */
function isRooted(p) {
    p = normalizeSeparators(p);
    if (!p) {
        throw new Error('isRooted() parameter "p" cannot be empty');
    }
    if (IS_WINDOWS) {
        return (p.startsWith('\\') || /^[A-Z]:/i.test(p) // e.g. \ or \hello or \\hello
        ); // e.g. C: or C:\hello
    }
    return p.startsWith('/');
}
/**
 * Best effort attempt to determine whether a file exists and is executable.
 * @param filePath    file path to check
 * @param extensions  additional file extensions to try
 * @return if file exists and is executable, returns the file path. otherwise empty string.
 */
function tryGetExecutablePath(filePath, extensions) {
    return __awaiter(this, void 0, void 0, function* () {
        let stats = undefined;
        try {
            // test file exists
            stats = yield stat(filePath);
        }
        catch (err) {
            if (err.code !== 'ENOENT') {
                // eslint-disable-next-line no-console
                console.log(`Unexpected error attempting to determine if executable file exists '${filePath}': ${err}`);
            }
        }
        if (stats && stats.isFile()) {
            if (IS_WINDOWS) {
                // on Windows, test for valid extension
                const upperExt = path__WEBPACK_IMPORTED_MODULE_1__.extname(filePath).toUpperCase();
                if (extensions.some(validExt => validExt.toUpperCase() === upperExt)) {
                    return filePath;
                }
            }
            else {
                if (isUnixExecutable(stats)) {
                    return filePath;
                }
            }
        }
        // try each extension
        const originalFilePath = filePath;
        for (const extension of extensions) {
            filePath = originalFilePath + extension;
            stats = undefined;
            try {
                stats = yield stat(filePath);
            }
            catch (err) {
                if (err.code !== 'ENOENT') {
                    // eslint-disable-next-line no-console
                    console.log(`Unexpected error attempting to determine if executable file exists '${filePath}': ${err}`);
                }
            }
            if (stats && stats.isFile()) {
                if (IS_WINDOWS) {
                    // preserve the case of the actual file (since an extension was appended)
                    try {
                        const directory = path__WEBPACK_IMPORTED_MODULE_1__.dirname(filePath);
                        const upperName = path__WEBPACK_IMPORTED_MODULE_1__.basename(filePath).toUpperCase();
                        for (const actualName of yield readdir(directory)) {
                            if (upperName === actualName.toUpperCase()) {
                                filePath = path__WEBPACK_IMPORTED_MODULE_1__.join(directory, actualName);
                                break;
                            }
                        }
                    }
                    catch (err) {
                        // eslint-disable-next-line no-console
                        console.log(`Unexpected error attempting to determine the actual case of the file '${filePath}': ${err}`);
                    }
                    return filePath;
                }
                else {
                    if (isUnixExecutable(stats)) {
                        return filePath;
                    }
                }
            }
        }
        return '';
    });
}
function normalizeSeparators(p) {
    p = p || '';
    if (IS_WINDOWS) {
        // convert slashes on Windows
        p = p.replace(/\//g, '\\');
        // remove redundant slashes
        return p.replace(/\\\\+/g, '\\');
    }
    // remove redundant slashes
    return p.replace(/\/\/+/g, '/');
}
// on Mac/Linux, test the execute bit
//     R   W  X  R  W X R W X
//   256 128 64 32 16 8 4 2 1
function isUnixExecutable(stats) {
    return ((stats.mode & 1) > 0 ||
        ((stats.mode & 8) > 0 &&
            process.getgid !== undefined &&
            stats.gid === process.getgid()) ||
        ((stats.mode & 64) > 0 &&
            process.getuid !== undefined &&
            stats.uid === process.getuid()));
}
// Get the path of cmd.exe in windows
function getCmdPath() {
    var _a;
    return (_a = process.env['COMSPEC']) !== null && _a !== void 0 ? _a : `cmd.exe`;
}
//# sourceMappingURL=io-util.js.map

/***/ }),

/***/ 8701:
/***/ ((__unused_webpack___webpack_module__, __webpack_exports__, __nccwpck_require__) => {

/* harmony export */ __nccwpck_require__.d(__webpack_exports__, {
/* harmony export */   K7: () => (/* binding */ which),
/* harmony export */   U$: () => (/* binding */ mkdirP),
/* harmony export */   Yz: () => (/* binding */ rmRF),
/* harmony export */   cp: () => (/* binding */ cp)
/* harmony export */ });
/* unused harmony exports mv, findInPath */
/* harmony import */ var assert__WEBPACK_IMPORTED_MODULE_0__ = __nccwpck_require__(2613);
/* harmony import */ var path__WEBPACK_IMPORTED_MODULE_1__ = __nccwpck_require__(6928);
/* harmony import */ var _io_util_js__WEBPACK_IMPORTED_MODULE_2__ = __nccwpck_require__(90);
var __awaiter = (undefined && undefined.__awaiter) || function (thisArg, _arguments, P, generator) {
    function adopt(value) { return value instanceof P ? value : new P(function (resolve) { resolve(value); }); }
    return new (P || (P = Promise))(function (resolve, reject) {
        function fulfilled(value) { try { step(generator.next(value)); } catch (e) { reject(e); } }
        function rejected(value) { try { step(generator["throw"](value)); } catch (e) { reject(e); } }
        function step(result) { result.done ? resolve(result.value) : adopt(result.value).then(fulfilled, rejected); }
        step((generator = generator.apply(thisArg, _arguments || [])).next());
    });
};



/**
 * Copies a file or folder.
 * Based off of shelljs - https://github.com/shelljs/shelljs/blob/9237f66c52e5daa40458f94f9565e18e8132f5a6/src/cp.js
 *
 * @param     source    source path
 * @param     dest      destination path
 * @param     options   optional. See CopyOptions.
 */
function cp(source_1, dest_1) {
    return __awaiter(this, arguments, void 0, function* (source, dest, options = {}) {
        const { force, recursive, copySourceDirectory } = readCopyOptions(options);
        const destStat = (yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .exists */ .t2(dest)) ? yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .stat */ .dJ(dest) : null;
        // Dest is an existing file, but not forcing
        if (destStat && destStat.isFile() && !force) {
            return;
        }
        // If dest is an existing directory, should copy inside.
        const newDest = destStat && destStat.isDirectory() && copySourceDirectory
            ? path__WEBPACK_IMPORTED_MODULE_1__.join(dest, path__WEBPACK_IMPORTED_MODULE_1__.basename(source))
            : dest;
        if (!(yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .exists */ .t2(source))) {
            throw new Error(`no such file or directory: ${source}`);
        }
        const sourceStat = yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .stat */ .dJ(source);
        if (sourceStat.isDirectory()) {
            if (!recursive) {
                throw new Error(`Failed to copy. ${source} is a directory, but tried to copy without recursive flag.`);
            }
            else {
                yield cpDirRecursive(source, newDest, 0, force);
            }
        }
        else {
            if (path__WEBPACK_IMPORTED_MODULE_1__.relative(source, newDest) === '') {
                // a file cannot be copied to itself
                throw new Error(`'${newDest}' and '${source}' are the same file`);
            }
            yield copyFile(source, newDest, force);
        }
    });
}
/**
 * Moves a path.
 *
 * @param     source    source path
 * @param     dest      destination path
 * @param     options   optional. See MoveOptions.
 */
function mv(source_1, dest_1) {
    return __awaiter(this, arguments, void 0, function* (source, dest, options = {}) {
        if (yield ioUtil.exists(dest)) {
            let destExists = true;
            if (yield ioUtil.isDirectory(dest)) {
                // If dest is directory copy src into dest
                dest = path.join(dest, path.basename(source));
                destExists = yield ioUtil.exists(dest);
            }
            if (destExists) {
                if (options.force == null || options.force) {
                    yield rmRF(dest);
                }
                else {
                    throw new Error('Destination already exists');
                }
            }
        }
        yield mkdirP(path.dirname(dest));
        yield ioUtil.rename(source, dest);
    });
}
/**
 * Remove a path recursively with force
 *
 * @param inputPath path to remove
 */
function rmRF(inputPath) {
    return __awaiter(this, void 0, void 0, function* () {
        if (_io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .IS_WINDOWS */ .H8) {
            // Check for invalid characters
            // https://docs.microsoft.com/en-us/windows/win32/fileio/naming-a-file
            if (/[*"<>|]/.test(inputPath)) {
                throw new Error('File path must not contain `*`, `"`, `<`, `>` or `|` on Windows');
            }
        }
        try {
            // note if path does not exist, error is silent
            yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__.rm(inputPath, {
                force: true,
                maxRetries: 3,
                recursive: true,
                retryDelay: 300
            });
        }
        catch (err) {
            throw new Error(`File was unable to be removed ${err}`);
        }
    });
}
/**
 * Make a directory.  Creates the full path with folders in between
 * Will throw if it fails
 *
 * @param   fsPath        path to create
 * @returns Promise<void>
 */
function mkdirP(fsPath) {
    return __awaiter(this, void 0, void 0, function* () {
        (0,assert__WEBPACK_IMPORTED_MODULE_0__.ok)(fsPath, 'a path argument must be provided');
        yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .mkdir */ .Ck(fsPath, { recursive: true });
    });
}
/**
 * Returns path of a tool had the tool actually been invoked.  Resolves via paths.
 * If you check and the tool does not exist, it will throw.
 *
 * @param     tool              name of the tool
 * @param     check             whether to check if tool exists
 * @returns   Promise<string>   path to tool
 */
function which(tool, check) {
    return __awaiter(this, void 0, void 0, function* () {
        if (!tool) {
            throw new Error("parameter 'tool' is required");
        }
        // recursive when check=true
        if (check) {
            const result = yield which(tool, false);
            if (!result) {
                if (_io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .IS_WINDOWS */ .H8) {
                    throw new Error(`Unable to locate executable file: ${tool}. Please verify either the file path exists or the file can be found within a directory specified by the PATH environment variable. Also verify the file has a valid extension for an executable file.`);
                }
                else {
                    throw new Error(`Unable to locate executable file: ${tool}. Please verify either the file path exists or the file can be found within a directory specified by the PATH environment variable. Also check the file mode to verify the file is executable.`);
                }
            }
            return result;
        }
        const matches = yield findInPath(tool);
        if (matches && matches.length > 0) {
            return matches[0];
        }
        return '';
    });
}
/**
 * Returns a list of all occurrences of the given tool on the system path.
 *
 * @returns   Promise<string[]>  the paths of the tool
 */
function findInPath(tool) {
    return __awaiter(this, void 0, void 0, function* () {
        if (!tool) {
            throw new Error("parameter 'tool' is required");
        }
        // build the list of extensions to try
        const extensions = [];
        if (_io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .IS_WINDOWS */ .H8 && process.env['PATHEXT']) {
            for (const extension of process.env['PATHEXT'].split(path__WEBPACK_IMPORTED_MODULE_1__.delimiter)) {
                if (extension) {
                    extensions.push(extension);
                }
            }
        }
        // if it's rooted, return it if exists. otherwise return empty.
        if (_io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .isRooted */ .Qh(tool)) {
            const filePath = yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .tryGetExecutablePath */ .vr(tool, extensions);
            if (filePath) {
                return [filePath];
            }
            return [];
        }
        // if any path separators, return empty
        if (tool.includes(path__WEBPACK_IMPORTED_MODULE_1__.sep)) {
            return [];
        }
        // build the list of directories
        //
        // Note, technically "where" checks the current directory on Windows. From a toolkit perspective,
        // it feels like we should not do this. Checking the current directory seems like more of a use
        // case of a shell, and the which() function exposed by the toolkit should strive for consistency
        // across platforms.
        const directories = [];
        if (process.env.PATH) {
            for (const p of process.env.PATH.split(path__WEBPACK_IMPORTED_MODULE_1__.delimiter)) {
                if (p) {
                    directories.push(p);
                }
            }
        }
        // find all matches
        const matches = [];
        for (const directory of directories) {
            const filePath = yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .tryGetExecutablePath */ .vr(path__WEBPACK_IMPORTED_MODULE_1__.join(directory, tool), extensions);
            if (filePath) {
                matches.push(filePath);
            }
        }
        return matches;
    });
}
function readCopyOptions(options) {
    const force = options.force == null ? true : options.force;
    const recursive = Boolean(options.recursive);
    const copySourceDirectory = options.copySourceDirectory == null
        ? true
        : Boolean(options.copySourceDirectory);
    return { force, recursive, copySourceDirectory };
}
function cpDirRecursive(sourceDir, destDir, currentDepth, force) {
    return __awaiter(this, void 0, void 0, function* () {
        // Ensure there is not a run away recursive copy
        if (currentDepth >= 255)
            return;
        currentDepth++;
        yield mkdirP(destDir);
        const files = yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .readdir */ .Cy(sourceDir);
        for (const fileName of files) {
            const srcFile = `${sourceDir}/${fileName}`;
            const destFile = `${destDir}/${fileName}`;
            const srcFileStat = yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .lstat */ .$1(srcFile);
            if (srcFileStat.isDirectory()) {
                // Recurse
                yield cpDirRecursive(srcFile, destFile, currentDepth, force);
            }
            else {
                yield copyFile(srcFile, destFile, force);
            }
        }
        // Change the mode for the newly created directory
        yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .chmod */ .k6(destDir, (yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .stat */ .dJ(sourceDir)).mode);
    });
}
// Buffered file copy
function copyFile(srcFile, destFile, force) {
    return __awaiter(this, void 0, void 0, function* () {
        if ((yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .lstat */ .$1(srcFile)).isSymbolicLink()) {
            // unlink/re-link it
            try {
                yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .lstat */ .$1(destFile);
                yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .unlink */ .y1(destFile);
            }
            catch (e) {
                // Try to override file permission
                if (e.code === 'EPERM') {
                    yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .chmod */ .k6(destFile, '0666');
                    yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .unlink */ .y1(destFile);
                }
                // other errors = it doesn't exist, no work to do
            }
            // Copy over symlink
            const symlinkFull = yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .readlink */ .h_(srcFile);
            yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .symlink */ .YN(symlinkFull, destFile, _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .IS_WINDOWS */ .H8 ? 'junction' : null);
        }
        else if (!(yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .exists */ .t2(destFile)) || force) {
            yield _io_util_js__WEBPACK_IMPORTED_MODULE_2__/* .copyFile */ .m3(srcFile, destFile);
        }
    });
}
//# sourceMappingURL=io.js.map

/***/ })

/******/ });
/************************************************************************/
/******/ // The module cache
/******/ var __webpack_module_cache__ = {};
/******/ 
/******/ // The require function
/******/ function __nccwpck_require__(moduleId) {
/******/ 	// Check if module is in cache
/******/ 	var cachedModule = __webpack_module_cache__[moduleId];
/******/ 	if (cachedModule !== undefined) {
/******/ 		return cachedModule.exports;
/******/ 	}
/******/ 	// Create a new module (and put it into the cache)
/******/ 	var module = __webpack_module_cache__[moduleId] = {
/******/ 		// no module.id needed
/******/ 		// no module.loaded needed
/******/ 		exports: {}
/******/ 	};
/******/ 
/******/ 	// Execute the module function
/******/ 	var threw = true;
/******/ 	try {
/******/ 		__webpack_modules__[moduleId].call(module.exports, module, module.exports, __nccwpck_require__);
/******/ 		threw = false;
/******/ 	} finally {
/******/ 		if(threw) delete __webpack_module_cache__[moduleId];
/******/ 	}
/******/ 
/******/ 	// Return the exports of the module
/******/ 	return module.exports;
/******/ }
/******/ 
/******/ // expose the modules object (__webpack_modules__)
/******/ __nccwpck_require__.m = __webpack_modules__;
/******/ 
/************************************************************************/
/******/ /* webpack/runtime/compat get default export */
/******/ (() => {
/******/ 	// getDefaultExport function for compatibility with non-harmony modules
/******/ 	__nccwpck_require__.n = (module) => {
/******/ 		var getter = module && module.__esModule ?
/******/ 			() => (module['default']) :
/******/ 			() => (module);
/******/ 		__nccwpck_require__.d(getter, { a: getter });
/******/ 		return getter;
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/create fake namespace object */
/******/ (() => {
/******/ 	var getProto = Object.getPrototypeOf ? (obj) => (Object.getPrototypeOf(obj)) : (obj) => (obj.__proto__);
/******/ 	var leafPrototypes;
/******/ 	// create a fake namespace object
/******/ 	// mode & 1: value is a module id, require it
/******/ 	// mode & 2: merge all properties of value into the ns
/******/ 	// mode & 4: return value when already ns object
/******/ 	// mode & 16: return value when it's Promise-like
/******/ 	// mode & 8|1: behave like require
/******/ 	__nccwpck_require__.t = function(value, mode) {
/******/ 		if(mode & 1) value = this(value);
/******/ 		if(mode & 8) return value;
/******/ 		if(typeof value === 'object' && value) {
/******/ 			if((mode & 4) && value.__esModule) return value;
/******/ 			if((mode & 16) && typeof value.then === 'function') return value;
/******/ 		}
/******/ 		var ns = Object.create(null);
/******/ 		__nccwpck_require__.r(ns);
/******/ 		var def = {};
/******/ 		leafPrototypes = leafPrototypes || [null, getProto({}), getProto([]), getProto(getProto)];
/******/ 		for(var current = mode & 2 && value; typeof current == 'object' && !~leafPrototypes.indexOf(current); current = getProto(current)) {
/******/ 			Object.getOwnPropertyNames(current).forEach((key) => (def[key] = () => (value[key])));
/******/ 		}
/******/ 		def['default'] = () => (value);
/******/ 		__nccwpck_require__.d(ns, def);
/******/ 		return ns;
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/define property getters */
/******/ (() => {
/******/ 	// define getter functions for harmony exports
/******/ 	__nccwpck_require__.d = (exports, definition) => {
/******/ 		for(var key in definition) {
/******/ 			if(__nccwpck_require__.o(definition, key) && !__nccwpck_require__.o(exports, key)) {
/******/ 				Object.defineProperty(exports, key, { enumerable: true, get: definition[key] });
/******/ 			}
/******/ 		}
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/ensure chunk */
/******/ (() => {
/******/ 	__nccwpck_require__.f = {};
/******/ 	// This file contains only the entry chunk.
/******/ 	// The chunk loading function for additional chunks
/******/ 	__nccwpck_require__.e = (chunkId) => {
/******/ 		return Promise.all(Object.keys(__nccwpck_require__.f).reduce((promises, key) => {
/******/ 			__nccwpck_require__.f[key](chunkId, promises);
/******/ 			return promises;
/******/ 		}, []));
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/get javascript chunk filename */
/******/ (() => {
/******/ 	// This function allow to reference async chunks
/******/ 	__nccwpck_require__.u = (chunkId) => {
/******/ 		// return url for filenames based on template
/******/ 		return "" + chunkId + ".index.js";
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/hasOwnProperty shorthand */
/******/ (() => {
/******/ 	__nccwpck_require__.o = (obj, prop) => (Object.prototype.hasOwnProperty.call(obj, prop))
/******/ })();
/******/ 
/******/ /* webpack/runtime/make namespace object */
/******/ (() => {
/******/ 	// define __esModule on exports
/******/ 	__nccwpck_require__.r = (exports) => {
/******/ 		if(typeof Symbol !== 'undefined' && Symbol.toStringTag) {
/******/ 			Object.defineProperty(exports, Symbol.toStringTag, { value: 'Module' });
/******/ 		}
/******/ 		Object.defineProperty(exports, '__esModule', { value: true });
/******/ 	};
/******/ })();
/******/ 
/******/ /* webpack/runtime/compat */
/******/ 
/******/ if (typeof __nccwpck_require__ !== 'undefined') __nccwpck_require__.ab = new URL('.', import.meta.url).pathname.slice(import.meta.url.match(/^file:\/\/\/\w:/) ? 1 : 0, -1) + "/";
/******/ 
/******/ /* webpack/runtime/import chunk loading */
/******/ (() => {
/******/ 	// no baseURI
/******/ 	
/******/ 	// object to store loaded and loading chunks
/******/ 	// undefined = chunk not loaded, null = chunk preloaded/prefetched
/******/ 	// [resolve, Promise] = chunk loading, 0 = chunk loaded
/******/ 	var installedChunks = {
/******/ 		792: 0
/******/ 	};
/******/ 	
/******/ 	var installChunk = (data) => {
/******/ 		var {ids, modules, runtime} = data;
/******/ 		// add "modules" to the modules object,
/******/ 		// then flag all "ids" as loaded and fire callback
/******/ 		var moduleId, chunkId, i = 0;
/******/ 		for(moduleId in modules) {
/******/ 			if(__nccwpck_require__.o(modules, moduleId)) {
/******/ 				__nccwpck_require__.m[moduleId] = modules[moduleId];
/******/ 			}
/******/ 		}
/******/ 		if(runtime) runtime(__nccwpck_require__);
/******/ 		for(;i < ids.length; i++) {
/******/ 			chunkId = ids[i];
/******/ 			if(__nccwpck_require__.o(installedChunks, chunkId) && installedChunks[chunkId]) {
/******/ 				installedChunks[chunkId][0]();
/******/ 			}
/******/ 			installedChunks[ids[i]] = 0;
/******/ 		}
/******/ 	
/******/ 	}
/******/ 	
/******/ 	__nccwpck_require__.f.j = (chunkId, promises) => {
/******/ 			// import() chunk loading for javascript
/******/ 			var installedChunkData = __nccwpck_require__.o(installedChunks, chunkId) ? installedChunks[chunkId] : undefined;
/******/ 			if(installedChunkData !== 0) { // 0 means "already installed".
/******/ 	
/******/ 				// a Promise means "currently loading".
/******/ 				if(installedChunkData) {
/******/ 					promises.push(installedChunkData[1]);
/******/ 				} else {
/******/ 					if(true) { // all chunks have JS
/******/ 						// setup Promise in chunk cache
/******/ 						var promise = import("./" + __nccwpck_require__.u(chunkId)).then(installChunk, (e) => {
/******/ 							if(installedChunks[chunkId] !== 0) installedChunks[chunkId] = undefined;
/******/ 							throw e;
/******/ 						});
/******/ 						var promise = Promise.race([promise, new Promise((resolve) => (installedChunkData = installedChunks[chunkId] = [resolve]))])
/******/ 						promises.push(installedChunkData[1] = promise);
/******/ 					}
/******/ 				}
/******/ 			}
/******/ 	};
/******/ 	
/******/ 	// no prefetching
/******/ 	
/******/ 	// no preloaded
/******/ 	
/******/ 	// no external install chunk
/******/ 	
/******/ 	// no on chunks loaded
/******/ })();
/******/ 
/************************************************************************/
var __webpack_exports__ = {};

// EXTERNAL MODULE: ./src/core.ts
var src_core = __nccwpck_require__(828);
;// CONCATENATED MODULE: ./src/registry/reference.ts
/**
 * Image reference grammar, after github.com/distribution/reference (regexp.go):
 *
 *   reference := name [ ":" tag ] [ "@" digest ]
 *   name      := [ domain "/" ] path-component { "/" path-component }   (at most 255 characters)
 *   domain    := host [ ":" port ]
 *   host      := domain-component { "." domain-component } | "[" ipv6 "]"
 *   domain-component := [a-zA-Z0-9] | [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
 *   path-component   := [a-z0-9]+ ( ( "." | "_" | "__" | "-"+ ) [a-z0-9]+ )*
 *   tag       := [\w][\w.-]{0,127}
 *
 * It is parsed in steps rather than with one regular expression so that an error can say which
 * part is wrong. Where this module chooses something the grammar leaves open:
 * - Domain detection follows docker's splitDockerDomain: the first "/"-separated component is a
 *   domain when it contains "." or ":" or is "localhost" (any case: host names are
 *   case-insensitive). Unlike docker, a first component that merely has capitals ("Owner/app")
 *   is NOT a domain: paths are lower-cased here, and `${{ github.repository }}` is a path.
 * - IPv6 hosts in brackets ("[::1]:5000/app") are accepted, as the current grammar does.
 * - Ports must be 1-65535 (the grammar accepts any digits; no registry listens on port 0).
 * - Digests must be sha256 with 64 lowercase hex digits (what registries use and go-digest checks).
 * - Nothing is normalised to docker.io/library: a reference stays as the user wrote it.
 */
const TAG_MAX = 128;
const NAME_MAX = 255;
// Characters that can appear anywhere in a reference; everything else (whitespace, quotes, shell
// metacharacters, non-ASCII) is rejected up front with the offending character named.
const REFERENCE_CHAR = /^[A-Za-z0-9._\-/:@[\]]$/;
const TAG_CHAR = /^[\w.-]$/;
const PATH_SEPARATOR = /^(?:[._]|__|-+)$/;
const DOMAIN_COMPONENT_CHAR = /^[A-Za-z0-9-]$/;
const IPV6_HOST = /^\[[a-fA-F0-9:]+\]$/;
const SHA256_HEX = /^[a-f0-9]{64}$/;
/** JSON quoting shows control characters and quotes unambiguously. */
function quote(value) {
    return JSON.stringify(value);
}
/** Long values are cut so a length error stays readable. */
function quoteShort(value) {
    return value.length > 40 ? quote(`${value.slice(0, 32)}...`) : quote(value);
}
/** Throws on the first character that `allowed` does not match, naming it. */
function checkCharacters(value, allowed, what) {
    for (const char of value) {
        if (allowed.test(char))
            continue;
        if (/\s/.test(char))
            throw new Error(`${what} contains whitespace`);
        throw new Error(`${what} contains invalid character ${quote(char)}`);
    }
}
/** Docker's rule for whether the first path component names a registry host. */
function looksLikeDomain(component) {
    return (component.includes('.') || component.includes(':') || component.toLowerCase() === 'localhost');
}
/** Splits 'host:port' (or '[v6]:port'); the port is null when absent. */
function splitPort(domain) {
    if (domain.startsWith('[')) {
        const close = domain.indexOf(']');
        if (close === -1)
            throw new Error(`domain ${quote(domain)} has "[" without a closing "]"`);
        const host = domain.slice(0, close + 1);
        const rest = domain.slice(close + 1);
        if (rest === '')
            return { host, port: null };
        if (!rest.startsWith(':')) {
            throw new Error(`domain ${quote(domain)} has ${quote(rest)} after "]"; expected ":port"`);
        }
        return { host, port: rest.slice(1) };
    }
    const colon = domain.indexOf(':');
    if (colon === -1)
        return { host: domain, port: null };
    return { host: domain.slice(0, colon), port: domain.slice(colon + 1) };
}
function validateHost(host, domain) {
    if (host.startsWith('[')) {
        if (!IPV6_HOST.test(host)) {
            throw new Error(`domain ${quote(domain)} has an invalid IPv6 address ${quote(host)}`);
        }
        return;
    }
    if (host === '')
        throw new Error(`domain ${quote(domain)} has an empty host name`);
    for (const component of host.split('.')) {
        if (component === '') {
            throw new Error(`domain ${quote(domain)} has an empty component (leading, trailing or "..")`);
        }
        checkCharacters(component, DOMAIN_COMPONENT_CHAR, `domain ${quote(domain)}`);
        if (component.startsWith('-') || component.endsWith('-')) {
            throw new Error(`domain component ${quote(component)} must not start or end with "-"`);
        }
    }
}
function validatePort(port, domain) {
    if (port === '')
        throw new Error(`domain ${quote(domain)} has an empty port after ":"`);
    if (!/^[0-9]+$/.test(port))
        throw new Error(`port ${quote(port)} must be digits`);
    const number = Number(port);
    if (number < 1 || number > 65535)
        throw new Error(`port ${port} is out of range (1-65535)`);
}
/** Validates a registry host with optional port, as found before the first '/'. */
function validateDomain(domain) {
    const { host, port } = splitPort(domain);
    validateHost(host, domain);
    if (port !== null)
        validatePort(port, domain);
}
function validatePathComponent(component) {
    if (component.includes(':')) {
        throw new Error(`path component ${quote(component)} contains ":"; only one ":tag" is allowed, after the last "/"`);
    }
    checkCharacters(component, /^[a-z0-9._-]$/, `path component ${quote(component)}`);
    if (!/^[a-z0-9]/.test(component) || !/[a-z0-9]$/.test(component)) {
        throw new Error(`path component ${quote(component)} must start and end with a letter or digit`);
    }
    // Runs of separators between alphanumerics: only '.', '_', '__' or any number of '-'.
    for (const separator of component.match(/[._-]+/g) ?? []) {
        if (!PATH_SEPARATOR.test(separator)) {
            throw new Error(`path component ${quote(component)} has invalid separator ${quote(separator)} ` +
                '(allowed: ".", "_", "__" or one or more "-")');
        }
    }
}
/** Validates an already lower-cased repository path. */
function validatePath(path) {
    if (path === '')
        throw new Error('repository path is empty');
    const components = path.split('/');
    if (components[0] === '')
        throw new Error(`repository path ${quote(path)} starts with "/"`);
    if (components[components.length - 1] === '') {
        throw new Error(`repository path ${quote(path)} ends with "/"`);
    }
    for (const component of components) {
        if (component === '')
            throw new Error(`repository path ${quote(path)} has an empty component ("//")`);
        validatePathComponent(component);
    }
}
function validateDigest(digest) {
    if (digest === '')
        throw new Error('digest after "@" is empty');
    if (digest.includes('@'))
        throw new Error('reference has more than one "@"');
    const colon = digest.indexOf(':');
    if (colon === -1) {
        throw new Error(`digest ${quoteShort(digest)} has no algorithm; expected "sha256:<64 hex digits>"`);
    }
    const algorithm = digest.slice(0, colon);
    if (algorithm !== 'sha256') {
        throw new Error(`digest algorithm ${quote(algorithm)} is not supported (only sha256)`);
    }
    const hex = digest.slice(colon + 1);
    if (!SHA256_HEX.test(hex)) {
        throw new Error(`digest ${quoteShort(digest)} must have 64 lowercase hex digits after "sha256:" (got ${hex.length} characters)`);
    }
}
/** Validate a bare tag; throws Error with the reason. */
function validateTag(tag) {
    if (tag === '')
        throw new Error('tag is empty');
    checkCharacters(tag, TAG_CHAR, `tag ${quoteShort(tag)}`);
    if (!/^\w/.test(tag)) {
        throw new Error(`tag ${quoteShort(tag)} must start with a letter, digit or "_"`);
    }
    if (tag.length > TAG_MAX) {
        throw new Error(`tag ${quoteShort(tag)} is longer than ${TAG_MAX} characters (${tag.length})`);
    }
}
/** Splits off ':tag' only when that ':' comes after the last '/' (else it is a port). */
function splitTag(nameAndTag) {
    const colon = nameAndTag.lastIndexOf(':');
    if (colon === -1 || colon < nameAndTag.lastIndexOf('/'))
        return { name: nameAndTag, tag: null };
    return { name: nameAndTag.slice(0, colon), tag: nameAndTag.slice(colon + 1) };
}
function splitDomain(name) {
    const slash = name.indexOf('/');
    if (slash === -1 || !looksLikeDomain(name.slice(0, slash)))
        return { domain: null, remainder: name };
    return { domain: name.slice(0, slash), remainder: name.slice(slash + 1) };
}
/** 'domain/path' or 'path' */
function repositoryOf(ref) {
    return ref.domain === null ? ref.path : `${ref.domain}/${ref.path}`;
}
/** Render back: repository + (':' + tag) + ('@' + digest) */
function formatReference(ref) {
    const tag = ref.tag === null ? '' : `:${ref.tag}`;
    const digest = ref.digest === null ? '' : `@${ref.digest}`;
    return `${repositoryOf(ref)}${tag}${digest}`;
}
/** Throws when the repository name (domain included) is longer than the grammar allows. */
function checkNameLength(ref) {
    const name = repositoryOf(ref);
    if (name.length > NAME_MAX) {
        throw new Error(`repository name ${quoteShort(name)} is longer than ${NAME_MAX} characters (${name.length})`);
    }
}
/**
 * Parse and validate an image reference (docker/distribution grammar). Throws Error whose
 * message says why (no input name in it), e.g. `tag "x..." is longer than 128 characters`.
 */
function parseReference(value) {
    if (value === '')
        throw new Error('reference is empty');
    checkCharacters(value, REFERENCE_CHAR, 'reference');
    const at = value.indexOf('@');
    const digest = at === -1 ? null : value.slice(at + 1);
    const { name, tag } = splitTag(at === -1 ? value : value.slice(0, at));
    const { domain, remainder } = splitDomain(name);
    const path = remainder.toLowerCase();
    // Left to right, so the first error reported is the first one in the value.
    if (domain !== null)
        validateDomain(domain);
    validatePath(path);
    const ref = { domain, path, tag, digest, lowercased: path !== remainder };
    checkNameLength(ref);
    if (tag !== null)
        validateTag(tag);
    if (digest !== null)
        validateDigest(digest);
    return ref;
}
/**
 * Validate a registry host value ('ghcr.io', '127.0.0.1:5000', 'localhost',
 * 'my-reg.example.com:443'); throws with the reason.
 */
function validateRegistry(value) {
    if (value === '')
        throw new Error('registry host is empty');
    if (value.includes('://')) {
        throw new Error('must be a host such as ghcr.io, without a scheme like "https://"');
    }
    if (value.includes('/')) {
        throw new Error('must be a host such as ghcr.io, without a path; put the repository path in image');
    }
    checkCharacters(value, REFERENCE_CHAR, 'registry host');
    validateDomain(value);
    // Prefixed to a path, a dotless host would be read by docker as the path's first component.
    if (!looksLikeDomain(value)) {
        throw new Error(`${quote(value)} would be read as a repository path, not a host: ` +
            `use a name with a dot, a port (${value}:5000) or localhost`);
    }
}
// Docker treats 127.0.0.0/8 as an insecure registry (plain HTTP allowed); skopeo needs to be
// told, and only loopback gets that treatment here too.
const LOOPBACK_HOST = /^(localhost|127(\.\d{1,3}){3}|\[::1\])(:\d+)?$/i;
function isLoopbackHost(registry) {
    return LOOPBACK_HOST.test(registry);
}

// EXTERNAL MODULE: ./src/errors.ts
var errors = __nccwpck_require__(3916);
;// CONCATENATED MODULE: ./src/registry/refs.ts
// Turning `tags`, `merge` and `reuse-from` entries into full references, with one rule for
// which entries are references already (isFullReference). The grammar is in reference.ts.


const DEFAULT_TAG = 'latest';
const ARCHIVE_LABEL = 'image from the built archive';
/**
 * The one rule: an entry containing `/` or `:` is a full reference (perhaps by digest, whose
 * `sha256:` has the colon); anything else is a tag of the image. So the `tags` output of
 * docker/metadata-action plugs straight in.
 */
function isFullReference(entry) {
    return entry.includes('/') || entry.includes(':');
}
/** A reference without a domain gets `registry` (the `registry` input), when there is one. */
function inRegistry(ref, registry) {
    return ref.domain === null && registry !== null ? { ...ref, domain: registry } : ref;
}
/** Runs a validation and prefixes its error with which value failed. */
function labelled(label, value, parse) {
    try {
        return parse();
    }
    catch (error) {
        const reason = (0,errors/* errorMessage */.g)(error);
        throw new Error(`invalid ${label} ${quote(value)}: ${reason}`);
    }
}
function lowercaseNotice(label, value, ref) {
    return (`${label} ${quote(value)} lower-cased to ${quote(formatReference(ref))} ` +
        '(repository paths must be lowercase)');
}
/** Parses a value that names a repository to tag, recording a notice if it was lower-cased. */
function parseRepository(label, value, notices) {
    const ref = labelled(label, value, () => parseReference(value));
    if (ref.digest !== null) {
        throw new Error(`invalid ${label} ${quote(value)}: a digest reference cannot be tagged or pushed to; remove "@${ref.digest}"`);
    }
    if (ref.lowercased)
        notices.push(lowercaseNotice(label, value, ref));
    return ref;
}
function parseImage(value, notices) {
    const ref = parseRepository('image', value, notices);
    if (ref.tag !== null) {
        // 'localhost:5000' parses as repository 'localhost' with tag '5000': most likely a registry.
        const hint = ref.domain === null && !ref.path.includes('/') && /^[0-9]+$/.test(ref.tag)
            ? '; if this is a registry host, use registry'
            : '';
        throw new Error(`invalid image ${quote(value)}: image must not have a tag; use tags (e.g. tags: ${ref.tag})${hint}`);
    }
    return ref;
}
function defaultsFrom(o, notices) {
    const image = o.image === null ? null : parseImage(o.image, notices);
    // The archive is read only when something is taken from it, so a RepoTag nobody uses cannot
    // fail the step, and its lower-casing is noticed only when its repository is used.
    const needRepository = image === null && (o.tags.length === 0 || !o.tags.every(isFullReference));
    const needArchive = needRepository || o.tags.length === 0;
    const archive = needArchive && o.archiveRepoTag !== null
        ? parseRepository(ARCHIVE_LABEL, o.archiveRepoTag, needRepository ? notices : [])
        : null;
    const repository = image ?? (archive === null ? null : { ...archive, tag: null });
    return { repository, tag: archive?.tag ?? DEFAULT_TAG };
}
function noImageError(what) {
    return new Error(`${what}, but there is no image to tag: set image (e.g. ghcr.io/owner/app), ` +
        'or give tags as full references (e.g. ghcr.io/owner/app:v1); the built archive names no image');
}
/** A full reference as it is (`latest` when it has no tag); a bare tag of the image. */
function targetOf(entry, defaults, notices) {
    if (isFullReference(entry)) {
        const ref = parseRepository('tags entry', entry, notices);
        // As `docker tag img repo` does, a reference without a tag means 'latest'.
        return { ...ref, tag: ref.tag ?? DEFAULT_TAG };
    }
    labelled('tags entry', entry, () => validateTag(entry));
    if (defaults.repository === null)
        throw noImageError(`tags entry ${quote(entry)} is a bare tag`);
    return { ...defaults.repository, tag: entry };
}
function withRegistry(ref, registry) {
    const prefixed = inRegistry(ref, registry);
    labelled('reference', formatReference(prefixed), () => checkNameLength(prefixed));
    return prefixed;
}
function unique(values) {
    return [...new Set(values)];
}
/**
 * Compute every full reference to tag and push, in order, without duplicates.
 * Throws Error (message says which value is wrong and why).
 */
function resolveRefs(o) {
    const { registry } = o;
    if (registry !== null)
        labelled('registry', registry, () => validateRegistry(registry));
    const notices = [];
    const entries = o.tags.filter(entry => entry !== '');
    const defaults = defaultsFrom({ ...o, tags: entries }, notices);
    let targets;
    if (entries.length > 0) {
        targets = entries.map(entry => targetOf(entry, defaults, notices));
    }
    else if (defaults.repository !== null) {
        targets = [{ ...defaults.repository, tag: defaults.tag }];
    }
    else {
        throw noImageError('tags is empty');
    }
    const refs = targets.map(target => formatReference(withRegistry(target, registry)));
    return { refs: unique(refs), notices: unique(notices) };
}
/**
 * A `merge` entry as a full reference: a bare tag is a tag of `image`, a reference without
 * a registry gets `registry` (pure, for tests).
 */
function resolveMergeRef(entry, image, registry) {
    const isFull = isFullReference(entry);
    if (!isFull && image === null) {
        throw new Error(`merge entry ${JSON.stringify(entry)} is a tag, but "image" is not set`);
    }
    const ref = inRegistry(parseReference(isFull ? entry : `${image}:${entry}`), registry);
    if (ref.domain === null) {
        throw new Error(`merge entry ${JSON.stringify(entry)} names no registry: write it as ` +
            'registry/repository:tag (or @sha256:...) or set "registry"');
    }
    return formatReference(ref);
}
/**
 * `reuse-from` entries as full references (pure, for tests): a bare tag names a tag of the
 * first ref's repository; a reference without a registry gets `registry`, as `tags` entries do.
 */
function resolveReuseFrom(entries, firstRef, registry) {
    const resolved = entries.map(entry => isFullReference(entry)
        ? formatReference(inRegistry(parseReference(entry), registry))
        : `${repositoryOf(parseReference(firstRef))}:${entry}`);
    return unique(resolved);
}

// EXTERNAL MODULE: ./src/nix/release.ts
var nix_release = __nccwpck_require__(3286);
;// CONCATENATED MODULE: ./src/image/platform.ts
// Platforms (os/architecture/variant) as OCI image configs and indexes name them, and how
// they map to Nix systems: the index entry of each image is read from its own config, and a
// config that names another architecture than the system it was built for is an error.
// Nix system -> the platform an image built for it must declare (GOARCH names, as OCI uses).
const SYSTEM_PLATFORMS = {
    'x86_64-linux': { os: 'linux', architecture: 'amd64' },
    'aarch64-linux': { os: 'linux', architecture: 'arm64' },
    'i686-linux': { os: 'linux', architecture: '386' },
    'armv7l-linux': { os: 'linux', architecture: 'arm', variant: 'v7' },
    'armv6l-linux': { os: 'linux', architecture: 'arm', variant: 'v6' },
    'riscv64-linux': { os: 'linux', architecture: 'riscv64' },
    'powerpc64le-linux': { os: 'linux', architecture: 'ppc64le' },
    's390x-linux': { os: 'linux', architecture: 's390x' },
    'x86_64-darwin': { os: 'darwin', architecture: 'amd64' },
    'aarch64-darwin': { os: 'darwin', architecture: 'arm64' }
};
// Node's process.arch -> the Nix system of a Linux runner.
const NODE_ARCH_SYSTEMS = {
    x64: 'x86_64-linux',
    arm64: 'aarch64-linux',
    ia32: 'i686-linux',
    arm: 'armv7l-linux',
    riscv64: 'riscv64-linux',
    ppc64: 'powerpc64le-linux',
    s390x: 's390x-linux'
};
/** `linux/arm64`, `linux/arm/v7` */
function formatPlatform(platform) {
    const { os, architecture, variant } = platform;
    return variant ? `${os}/${architecture}/${variant}` : `${os}/${architecture}`;
}
/** The os, architecture and variant of an image config (pure, for tests). */
function platformOfConfig(configJson) {
    let config;
    try {
        config = JSON.parse(configJson);
    }
    catch {
        throw new Error('the image config is not valid JSON');
    }
    const os = typeof config.os === 'string' ? config.os : '';
    const architecture = typeof config.architecture === 'string' ? config.architecture : '';
    if (os === '' || architecture === '') {
        throw new Error(`the image config names no platform (os ${JSON.stringify(os)}, ` +
            `architecture ${JSON.stringify(architecture)})`);
    }
    const variant = typeof config.variant === 'string' && config.variant ? config.variant : null;
    return variant ? { os, architecture, variant } : { os, architecture };
}
/** The platform a Nix system's image declares, or null for a system this table lacks. */
function platformOfSystem(system) {
    return SYSTEM_PLATFORMS[system] ?? null;
}
/** The Nix system of a platform, or '' when no system in the table has it. */
function systemOfPlatform(platform) {
    const key = formatPlatform(normalise(platform));
    const found = Object.entries(SYSTEM_PLATFORMS).find(([, p]) => formatPlatform(p) === key);
    return found?.[0] ?? '';
}
/** The Nix system of the machine this runs on (a Linux runner). */
function runnerSystem(arch = process.arch) {
    return NODE_ARCH_SYSTEMS[arch] ?? null;
}
/** arm64's variant is v8 whether written or not; other variants are kept. */
function normalise(platform) {
    if (platform.architecture === 'arm64' && platform.variant === 'v8') {
        return { os: platform.os, architecture: 'arm64' };
    }
    return platform;
}
function samePlatform(a, b) {
    return formatPlatform(normalise(a)) === formatPlatform(normalise(b));
}
/**
 * An image built for `system` must say so in its config (nixpkgs issues #106695, #87345: an
 * image claiming the wrong architecture is pulled on machines that cannot run it).
 */
function checkPlatformOfSystem(system, platform, what) {
    const expected = platformOfSystem(system);
    if (expected === null)
        return;
    const sameArch = expected.os === platform.os &&
        expected.architecture === platform.architecture &&
        (expected.variant === undefined || samePlatform(expected, platform));
    if (!sameArch) {
        throw new Error(`${what} was built for ${system}, but its config says ${formatPlatform(platform)} ` +
            `(an image for ${system} must say ${formatPlatform(expected)}): ` +
            'set "architecture" (and "os") in the image config to match the system');
    }
}
/** Two images of one platform cannot share an index: name both (pure, for tests). */
function checkDistinctPlatforms(images) {
    for (const [i, image] of images.entries()) {
        const earlier = images.slice(0, i).find(other => samePlatform(other.platform, image.platform));
        if (earlier) {
            throw new Error(`${earlier.name} and ${image.name} are both ${formatPlatform(image.platform)}: ` +
                'an image index holds one image per platform');
        }
    }
}

// EXTERNAL MODULE: external "node:child_process"
var external_node_child_process_ = __nccwpck_require__(1421);
// EXTERNAL MODULE: external "node:stream"
var external_node_stream_ = __nccwpck_require__(7075);
// EXTERNAL MODULE: external "node:zlib"
var external_node_zlib_ = __nccwpck_require__(8522);
;// CONCATENATED MODULE: ./src/image/layer-compression.ts
// How pushed layers are compressed (`compression`, `compression-level`): what each tool is told,
// and the compressor the action runs itself when it writes layers (docker's containerd store).



const LAYER_COMPRESSION_FORMATS = ['gzip', 'zstd'];
/** The levels each format takes (zstd's ultra levels 20-22 need more memory than runners spare). */
const COMPRESSION_LEVELS = {
    gzip: { min: 1, max: 9 },
    zstd: { min: 1, max: 19 }
};
const DEFAULT_LAYER_COMPRESSION = { format: 'gzip', level: null };
/** Media types of a layer compressed so, in the manifest format that carries it. */
function layerMediaType(format) {
    return format === 'gzip'
        ? 'application/vnd.docker.image.rootfs.diff.tar.gzip'
        : 'application/vnd.oci.image.layer.v1.tar+zstd';
}
/**
 * `skopeo copy` flags for layers compressed so (pure, for tests). zstd layers need an OCI
 * manifest: Docker's schema 2 has no media type for them.
 */
function skopeoCompressionArgs(compression) {
    return [
        '--dest-compress',
        '--dest-compress-format',
        compression.format,
        ...(compression.level === null ? [] : ['--dest-compress-level', String(compression.level)]),
        ...(compression.format === 'zstd' ? ['--format', 'oci'] : [])
    ];
}
const zstdOfZlib = external_node_zlib_.createZstdCompress;
const ZSTD_LEVEL_PARAMETER = 100; // ZSTD_c_compressionLevel
const DEFAULT_ZSTD_LEVEL = 3;
/** A stream that compresses what is written to it. */
function compressor(compression) {
    if (compression.format === 'gzip') {
        return external_node_zlib_.createGzip(compression.level === null ? {} : { level: compression.level });
    }
    const level = compression.level ?? DEFAULT_ZSTD_LEVEL;
    if (zstdOfZlib)
        return zstdOfZlib({ params: { [ZSTD_LEVEL_PARAMETER]: level } });
    return zstdProgram(level);
}
/** The zstd program as a duplex stream: its stdin written, its stdout read. */
function zstdProgram(level) {
    const child = (0,external_node_child_process_.spawn)('zstd', ['-q', '-c', `-${level}`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const duplex = external_node_stream_.Duplex.from({ writable: child.stdin, readable: child.stdout });
    child.on('error', error => duplex.destroy(error));
    child.on('close', code => {
        if (code !== 0)
            duplex.destroy(new Error(`zstd exited with code ${code}`));
    });
    return duplex;
}

// EXTERNAL MODULE: external "node:crypto"
var external_node_crypto_ = __nccwpck_require__(7598);
// EXTERNAL MODULE: ./node_modules/tweetnacl/nacl-fast.js
var nacl_fast = __nccwpck_require__(668);
var nacl_fast_default = /*#__PURE__*/__nccwpck_require__.n(nacl_fast);
;// CONCATENATED MODULE: ./src/signing/cosign-key.ts
// The `signing-key` input: a cosign/sigstore private key as `cosign generate-key-pair` writes
// it. A PEM block (`ENCRYPTED SIGSTORE PRIVATE KEY`, cosign >= 2.0.1, or the older
// `ENCRYPTED COSIGN PRIVATE KEY`) whose body is go-securesystemslib's `encrypted` JSON:
// scrypt derives a 32-byte key from the passphrase, NaCl secretbox (XSalsa20-Poly1305) holds
// the PKCS#8 DER private key. Decrypted here, in memory, once: nothing is written to disk.
//
// Errors never carry the key, the passphrase or anything decoded from them (not even a JSON
// parser's message, which quotes its input): only a fixed reason.


const SIGSTORE_PEM_TYPE = 'ENCRYPTED SIGSTORE PRIVATE KEY';
const COSIGN_PEM_TYPE = 'ENCRYPTED COSIGN PRIVATE KEY';
const PEM_TYPES = [SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE];
/**
 * The scrypt parameters go-securesystemslib accepts (legacy, what cosign wrote before, and
 * skopeo 1.9 reads alone; standard; OWASP): anything else is refused before scrypt runs, as
 * there, so that a crafted key cannot make the step spend minutes or gigabytes.
 */
const SCRYPT_PARAMETERS = [
    { N: 32768, r: 8, p: 1 },
    { N: 65536, r: 8, p: 1 },
    { N: 131072, r: 8, p: 1 }
];
const BOX_KEY_BYTES = 32;
const BOX_NONCE_BYTES = 24;
/** A key that cannot be used; the message says why and holds nothing of the key. */
class SigningKeyError extends Error {
    input;
    constructor(message, 
    /** Which input is at fault: the key itself or its passphrase. */
    input) {
        super(message);
        this.input = input;
        this.name = 'SigningKeyError';
    }
}
/** The PEM block's type and body; the one block there must be. */
function readPem(text) {
    const match = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)\r?\n?-----END \1-----/.exec(text);
    if (!match) {
        throw new SigningKeyError('is not a PEM private key: give the whole cosign.key file (cosign generate-key-pair), ' +
            `from -----BEGIN ${SIGSTORE_PEM_TYPE}----- to its END line`, 'signing-key');
    }
    const type = match[1];
    if (!PEM_TYPES.includes(type)) {
        throw new SigningKeyError(`is a PEM block of type "${type}", not a cosign key: give a key of type ` +
            `${SIGSTORE_PEM_TYPE} or ${COSIGN_PEM_TYPE} (cosign generate-key-pair)`, 'signing-key');
    }
    const base64 = match[2].replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(base64)) {
        throw new SigningKeyError('is not a valid PEM block: its body is not base64', 'signing-key');
    }
    return { type, body: Buffer.from(base64, 'base64') };
}
const notEncrypted = () => new SigningKeyError("is not an encrypted cosign key: its body is not go-securesystemslib's encrypted JSON " +
    '(kdf scrypt, cipher nacl/secretbox)', 'signing-key');
function bytes(value) {
    if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value))
        throw notEncrypted();
    return Buffer.from(value, 'base64');
}
/** go-securesystemslib's `encrypted` JSON, checked field by field (Go's []byte is base64). */
function readEncrypted(body) {
    let json;
    try {
        json = JSON.parse(body.toString('utf8'));
    }
    catch {
        throw notEncrypted();
    }
    const data = json;
    if (typeof data !== 'object' || data === null || !data.kdf || !data.cipher)
        throw notEncrypted();
    if (data.kdf.name !== 'scrypt' || data.cipher.name !== 'nacl/secretbox') {
        throw new SigningKeyError(`is encrypted with kdf ${JSON.stringify(data.kdf.name)} and cipher ` +
            `${JSON.stringify(data.cipher.name)}; cosign keys use scrypt and nacl/secretbox`, 'signing-key');
    }
    const { N, r, p } = data.kdf.params ?? {};
    const params = SCRYPT_PARAMETERS.find(known => known.N === N && known.r === r && known.p === p);
    if (!params) {
        throw new SigningKeyError(`has scrypt parameters N=${String(N)}, r=${String(r)}, p=${String(p)}, which cosign never ` +
            `writes (accepted: ${SCRYPT_PARAMETERS.map(k => `N=${k.N}`).join(', ')} with r=8, p=1)`, 'signing-key');
    }
    const nonce = bytes(data.cipher.nonce);
    if (nonce.length !== BOX_NONCE_BYTES)
        throw notEncrypted();
    return {
        kdf: { name: 'scrypt', params, salt: bytes(data.kdf.salt) },
        cipher: { name: 'nacl/secretbox', nonce },
        ciphertext: bytes(data.ciphertext)
    };
}
/** The secretbox key: scrypt over the passphrase. */
function boxKey(passphrase, kdf) {
    const { N, r, p } = kdf.params;
    // scrypt needs 128 * N * r bytes (128 MiB at N=131072); Node's default limit is 32 MiB.
    return (0,external_node_crypto_.scryptSync)(Buffer.from(passphrase, 'utf8'), kdf.salt, BOX_KEY_BYTES, {
        N,
        r,
        p,
        maxmem: 2 * 128 * N * r
    });
}
/**
 * Decrypt a cosign private key. Wrong passphrase, wrong format or a key type that cannot sign
 * a cosign signature throw SigningKeyError, naming the input at fault.
 */
function readSigningKey(pem, passphrase) {
    const { type, body } = readPem(pem);
    const encrypted = readEncrypted(body);
    const opened = nacl_fast_default().secretbox.open(encrypted.ciphertext, encrypted.cipher.nonce, boxKey(passphrase, encrypted.kdf));
    if (opened === null) {
        throw new SigningKeyError(passphrase === ''
            ? 'is empty, and the key does not decrypt without a passphrase: give the passphrase ' +
                'it was made with (COSIGN_PASSWORD)'
            : 'does not decrypt signing-key: it is not the passphrase the key was made with', 'signing-passphrase');
    }
    let privateKey;
    try {
        privateKey = (0,external_node_crypto_.createPrivateKey)({ key: Buffer.from(opened), format: 'der', type: 'pkcs8' });
    }
    catch {
        throw new SigningKeyError('decrypts to something that is not a PKCS#8 private key', 'signing-key');
    }
    const curve = privateKey.asymmetricKeyDetails?.namedCurve;
    if (privateKey.asymmetricKeyType !== 'ec' || curve !== 'prime256v1') {
        const what = privateKey.asymmetricKeyType === 'ec'
            ? `an EC key on curve ${String(curve)}`
            : `a ${String(privateKey.asymmetricKeyType)} key`;
        throw new SigningKeyError(`is ${what}: only ECDSA P-256 keys, which cosign generate-key-pair makes, are supported`, 'signing-key');
    }
    return { privateKey, publicKey: (0,external_node_crypto_.createPublicKey)(privateKey), pemType: type };
}

;// CONCATENATED MODULE: ./src/signing/nix-key.ts
// Store paths' signatures as Nix makes them (`secret-key-files`, `nix store sign`) and checks
// them (`trusted-public-keys`): ed25519 over the path's fingerprint
// `1;<path>;sha256:<nix32 NAR hash>;<NAR size>;<references, comma-separated>`, written
// `<key name>:<base64 signature>`. Keys are Nix's: `<name>:<base64 of the 64-byte secret key
// (seed and public key)>` as `nix key generate-secret` prints it, `<name>:<base64 of the 32-byte
// public key>` as `nix key convert-secret-to-public` does.
//
// Errors never carry a secret key or anything decoded from it: only a fixed reason.

const NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._+@-]*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const SEED_BYTES = 32;
const SECRET_BYTES = 64;
const PUBLIC_BYTES = 32;
const SIGNATURE_BYTES = 64;
/** Nix's base32 (libutil's printHash32): the last character holds the lowest bits. */
function encodeNix32(bytes) {
    const length = Math.ceil((bytes.length * 8) / 5);
    let text = '';
    for (let n = length - 1; n >= 0; n--) {
        const bit = n * 5;
        const i = Math.floor(bit / 8);
        const j = bit % 8;
        const low = (bytes[i] ?? 0) >> j;
        const high = i + 1 < bytes.length ? (bytes[i + 1] ?? 0) << (8 - j) : 0;
        text += NIX32_ALPHABET[(low | high) & 0x1f];
    }
    return text;
}
/** The fingerprint Nix signs (ValidPathInfo::fingerprint). */
function fingerprint(info) {
    const hash = encodeNix32(Buffer.from(info.narHash, 'hex'));
    return `1;${info.path};sha256:${hash};${info.narSize};${info.references.join(',')}`;
}
function base64Of(text, bytes) {
    if (!BASE64.test(text))
        return null;
    const decoded = Buffer.from(text, 'base64');
    return decoded.length === bytes ? decoded : null;
}
function splitKey(text) {
    const colon = text.indexOf(':');
    if (colon <= 0)
        return null;
    const name = text.slice(0, colon);
    return KEY_NAME.test(name) ? { name, data: text.slice(colon + 1) } : null;
}
function ed25519Jwk(publicKey, seed) {
    return {
        kty: 'OKP',
        crv: 'Ed25519',
        x: publicKey.toString('base64url'),
        ...(seed ? { d: seed.toString('base64url') } : {})
    };
}
/**
 * A secret key as `nix key generate-secret` prints it. Throws an Error whose message never
 * holds the key; its public half must be what its seed makes.
 */
function parseNixSecretKey(text) {
    const fail = (why) => new Error(why);
    const parts = splitKey(text.trim());
    if (parts === null) {
        throw fail('is not a Nix secret key: expected <name>:<base64>, as `nix key generate-secret` prints it');
    }
    const bytes = base64Of(parts.data, SECRET_BYTES);
    if (bytes === null) {
        throw fail(`is not a Nix secret key: the part after "${parts.name}:" is not 64 bytes in base64`);
    }
    const seed = bytes.subarray(0, SEED_BYTES);
    const half = bytes.subarray(SEED_BYTES);
    let privateKey;
    try {
        privateKey = (0,external_node_crypto_.createPrivateKey)({ key: ed25519Jwk(half, seed), format: 'jwk' });
    }
    catch {
        throw fail('is not a Nix secret key: not an ed25519 key');
    }
    const derived = Buffer.from((0,external_node_crypto_.createPublicKey)(privateKey).export({ format: 'jwk' }).x, 'base64url');
    if (!derived.equals(half)) {
        throw fail('is not a Nix secret key: its public half does not match its secret half');
    }
    return { name: parts.name, privateKey, publicKey: `${parts.name}:${half.toString('base64')}` };
}
/** One public key as `nix key convert-secret-to-public` prints it; throws naming what is wrong. */
function parseNixPublicKey(text) {
    const parts = splitKey(text);
    const bytes = parts && base64Of(parts.data, PUBLIC_BYTES);
    if (!parts || !bytes) {
        throw new Error(`${JSON.stringify(text)} is not a Nix public key (<name>:<base64 of 32 bytes>, as \`nix key convert-secret-to-public\` prints it)`);
    }
    try {
        return { name: parts.name, key: (0,external_node_crypto_.createPublicKey)({ key: ed25519Jwk(bytes), format: 'jwk' }) };
    }
    catch {
        throw new Error(`${JSON.stringify(text)} is not an ed25519 public key`);
    }
}
/** The path's signature as Nix writes it: `<key name>:<base64>`. */
function nix_key_signPath(key, info) {
    const signature = sign(null, Buffer.from(fingerprint(info)), key.privateKey);
    return `${key.name}:${signature.toString('base64')}`;
}
/** The names of the keys a signature string claims (for messages); '' when unparseable. */
function signatureKeyName(signature) {
    return splitKey(signature)?.name ?? '';
}
/** Each (key, signature bytes) pair worth checking: a well-formed signature by a key's name. */
function candidates(signatures, keys) {
    return signatures.flatMap(text => {
        const parts = splitKey(text);
        const bytes = parts && base64Of(parts.data, SIGNATURE_BYTES);
        if (!parts || !bytes)
            return [];
        return keys.filter(k => k.name === parts.name).map(k => ({ key: k.key, bytes }));
    });
}
/**
 * Whether one of `signatures` is a valid signature of the path by one of `keys`
 * (Nix's checkSignatures with a threshold of one).
 */
function verifyPath(info, signatures, keys) {
    const message = Buffer.from(fingerprint(info));
    return candidates(signatures, keys).some(c => (0,external_node_crypto_.verify)(null, message, c.key, c.bytes));
}
/** verifyPath, each check in libuv's thread pool: thousands of paths are checked on every core. */
async function verifyPathInPool(info, signatures, keys) {
    const message = Buffer.from(fingerprint(info));
    for (const { key, bytes } of candidates(signatures, keys)) {
        const valid = await new Promise((resolve, reject) => {
            (0,external_node_crypto_.verify)(null, message, key, bytes, (error, ok) => (error ? reject(error) : resolve(ok)));
        });
        if (valid)
            return true;
    }
    return false;
}
/** The key as `nix key generate-secret` prints it, for a file Nix reads (`secret-key=`). */
function formatNixSecretKey(key) {
    const jwk = key.privateKey.export({ format: 'jwk' });
    const seed = Buffer.from(jwk.d ?? '', 'base64url');
    const publicKey = Buffer.from(jwk.x ?? '', 'base64url');
    return `${key.name}:${Buffer.concat([seed, publicKey]).toString('base64')}`;
}

;// CONCATENATED MODULE: ./src/nix/binary-cache.ts
/** The store URL schemes a binary cache may have: Nix's HTTP, file, S3 and SSH stores. */
const BINARY_CACHE_SCHEMES = ['https', 'http', 'file', 's3', 'ssh', 'ssh-ng'];
/** Why a `binary-cache` value is no store URL this action takes, or null when it is one. */
function storeUrlProblem(value) {
    if (/\s/.test(value))
        return 'must not contain white space';
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//.exec(value)?.[1];
    if (scheme === undefined) {
        return `is not a Nix store URL: expected one of ${BINARY_CACHE_SCHEMES.map(s => `${s}://`).join(', ')}`;
    }
    if (!BINARY_CACHE_SCHEMES.includes(scheme)) {
        return `has the scheme ${scheme}://, not one of ${BINARY_CACHE_SCHEMES.map(s => `${s}://`).join(', ')}`;
    }
    const rest = value.slice(scheme.length + 3);
    const [location = ''] = rest.split('?');
    if (scheme === 'file' && !location.startsWith('/')) {
        return 'is a file:// URL without an absolute path (file:///path/to/cache)';
    }
    if (scheme !== 'file' && location === '')
        return `names no host or bucket after ${scheme}://`;
    if (/[?&]secret-key=/.test(value)) {
        return 'carries secret-key=: give the key in "binary-cache-secret-key" (written to a private file for the push)';
    }
    return null;
}
/** The lines that make the cache a substituter of this job, trusted by these keys. */
function substituterConfLines(url, publicKeys) {
    const lines = [`extra-substituters = ${url}`];
    if (publicKeys.length > 0)
        lines.push(`extra-trusted-public-keys = ${publicKeys.join(' ')}`);
    return lines;
}
/** The URL `nix copy --to` gets: the cache's, signing with the key in `keyFile`. */
function pushStoreUrl(url, keyFile) {
    const separator = url.includes('?') ? '&' : '?';
    return `${url}${separator}secret-key=${keyFile}`;
}
/**
 * The cache's URL for the log and the summary: scheme, host and path, without the query (its
 * parameters may name profiles or files) and without user information.
 */
function printableStoreUrl(url) {
    const [withoutQuery = ''] = url.split('?');
    return withoutQuery.replace(/^([a-z-]+:\/\/)[^/@]*@/, '$1');
}
/**
 * `nix copy` arguments: internal-json logs say which paths it sent (it skips what is there).
 * Store derivations go with `--derivation` (copied as themselves, not built for their outputs),
 * other paths without it (Nix 2.26 takes an output with `--derivation` for its deriver).
 */
function copyArgs(pushUrl, paths, derivations) {
    const which = derivations ? ['--derivation'] : [];
    return ['copy', ...which, '--log-format', 'internal-json', '--to', pushUrl, ...paths];
}
/** Nix's activity type for copying one path (ActivityType actCopyPath). */
const ACT_COPY_PATH = 100;
/** The paths a `nix copy --log-format internal-json` began to send, from its stderr (pure). */
function parseCopiedPaths(stderr) {
    const paths = new Set();
    for (const line of stderr.split('\n')) {
        if (!line.startsWith('@nix '))
            continue;
        let event;
        try {
            event = JSON.parse(line.slice(5));
        }
        catch {
            continue;
        }
        const path = event.fields?.[0];
        if (event.action === 'start' && event.type === ACT_COPY_PATH && typeof path === 'string') {
            paths.add(path);
        }
    }
    return [...paths].sort();
}
/** What Nix said, from internal-json stderr: its messages as text, for a warning (pure). */
function logMessages(stderr) {
    const messages = [];
    for (const line of stderr.split('\n')) {
        if (!line.startsWith('@nix ')) {
            if (line.trim() !== '')
                messages.push(line);
            continue;
        }
        try {
            const event = JSON.parse(line.slice(5));
            // Errors and warnings (levels 0 and 1), without the terminal's colours.
            if (event.action === 'msg' && typeof event.msg === 'string' && (event.level ?? 9) <= 1) {
                messages.push(stripAnsi(event.msg));
            }
        }
        catch {
            messages.push(line);
        }
    }
    return messages.join('\n');
}
function stripAnsi(text) {
    // eslint-disable-next-line no-control-regex
    return text.replace(/\u001b\[[0-9;]*m/g, '');
}

;// CONCATENATED MODULE: ./src/nix/builders.ts
// Remote builders: the `builders` input's Nix machine lines, checked before anything runs, the
// nix.conf `builders` value made of them, and what a failed build's log says about them. Pure.
//
// A machine line (Nix's /etc/nix/machines format) has up to 8 whitespace-separated fields, `-`
// for "not given": URI, systems, SSH key file, max jobs, speed factor, supported features,
// mandatory features, the host's public key (base64 of its `.pub` line).
/** Why a line is refused: names the line and the field, never quotes the line (it may hold a pasted key). */
class MachineLineError extends Error {
    line;
    constructor(line, reason) {
        super(`line ${line}: ${reason}`);
        this.line = line;
        this.name = 'MachineLineError';
    }
}
const MACHINE_FIELDS = [
    'URI',
    'systems',
    'SSH key file',
    'max jobs',
    'speed factor',
    'supported features',
    'mandatory features',
    'host public key'
];
const SYSTEM = /^[a-z0-9_]+-[a-z0-9_]+$/;
const FEATURE = /^[A-Za-z0-9_.+-]+$/;
// `[user@]host`: what follows ssh:// or ssh-ng:// (Nix passes it to ssh as it is).
const SSH_AUTHORITY = /^([A-Za-z0-9._+-]+@)?[A-Za-z0-9._-]+(:\d+)?$|^([A-Za-z0-9._+-]+@)?\[[0-9A-Fa-f:.]+\](:\d+)?$/;
// The key types OpenSSH writes in a `.pub` line (field 8 decodes to one).
const PUBLIC_KEY_LINE = /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) AAAA[A-Za-z0-9+/]+={0,2}( .*)?$/;
/** The URIs that reach a builder over SSH: the host key must be pinned for these. */
function isSshUri(uri) {
    return uri.startsWith('ssh://') || uri.startsWith('ssh-ng://') || !uri.includes('://');
}
/**
 * The `builders` input's lines: blank lines and `#` comments skipped, each line checked.
 * `hasKey`: `builder-ssh-key` is given, so a `-` SSH key field means its file.
 */
function parseMachineLines(text, hasKey) {
    const machines = [];
    for (const [index, raw] of text.split(/\r?\n/).entries()) {
        const content = raw.replace(/#.*$/, '').trim();
        if (content === '')
            continue;
        machines.push(parseMachineLine(content, index + 1, hasKey));
    }
    return machines;
}
function parseMachineLine(content, line, hasKey) {
    const fail = (reason) => {
        throw new MachineLineError(line, reason);
    };
    if (/PRIVATE KEY/.test(content) || /^b3BlbnNzaC1rZXktdjE/.test(content)) {
        fail('looks like a private key: give the key in "builder-ssh-key", and "-" in field 3');
    }
    const fields = content.split(/\s+/);
    if (fields.length > MACHINE_FIELDS.length) {
        fail(`has ${fields.length} fields, a machine line at most ${MACHINE_FIELDS.length}: ` +
            `${MACHINE_FIELDS.join(', ')} (separated by white space, "-" for one not given)`);
    }
    const [uri = '', systems = '-', key = '-', maxJobs = '-', speed = '-', supported = '-'] = fields;
    const [mandatory = '-', hostKey = '-'] = fields.slice(6);
    const field = (n, reason) => fail(`field ${n} (${MACHINE_FIELDS[n - 1]}) ${reason}`);
    checkUri(uri, field);
    if (systems !== '-') {
        for (const system of systems.split(',')) {
            if (!SYSTEM.test(system)) {
                field(2, 'is not a comma-separated list of Nix systems such as x86_64-linux,aarch64-linux');
            }
        }
    }
    if (key !== '-' && !key.startsWith('/')) {
        field(3, 'is not an absolute path: give "-" for the "builder-ssh-key" input\'s key, or a file on the runner');
    }
    if (maxJobs !== '-' && !/^\d+$/.test(maxJobs))
        field(4, 'is not a whole number');
    if (speed !== '-' && !(/^\d+(\.\d+)?$/.test(speed) && Number(speed) > 0)) {
        field(5, 'is not a number greater than 0');
    }
    for (const [n, list] of [
        [6, supported],
        [7, mandatory]
    ]) {
        if (list !== '-' && !list.split(',').every(feature => FEATURE.test(feature))) {
            field(n, 'is not a comma-separated list of features such as kvm,big-parallel');
        }
    }
    if (isSshUri(uri))
        checkHostKey(hostKey, field);
    else if (hostKey !== '-')
        checkHostKey(hostKey, field);
    return { line, uri, fields, usesInputKey: key === '-' && hasKey };
}
function checkUri(uri, field) {
    if (uri.startsWith('@')) {
        field(1, 'names a machines file: give the machine lines themselves, one per line');
    }
    const scheme = /^([a-z][a-z0-9+.-]*):\/\/(.*)$/.exec(uri);
    if (scheme && scheme[1] !== 'ssh' && scheme[1] !== 'ssh-ng') {
        field(1, 'is not an ssh:// or ssh-ng:// URI (remote builders are reached over SSH)');
    }
    const authority = scheme ? (scheme[2] ?? '') : uri;
    // Store parameters (`?remote-store=...`, `?remote-program=...`) are Nix's to read.
    const host = authority.replace(/\?.*$/, '');
    if (!SSH_AUTHORITY.test(host)) {
        field(1, 'is not a builder URI such as ssh://builder@host or ssh-ng://builder@host');
    }
}
function checkHostKey(hostKey, field) {
    const how = "the base64 of the host's public key line, as `base64 -w0 /etc/ssh/ssh_host_ed25519_key.pub` " +
        'prints it on the builder (or of `ssh-keyscan -t ed25519 HOST` without the host name)';
    if (hostKey === '-') {
        field(8, `is missing: the builder's host key must be pinned (an SSH builder is never trusted on ` +
            `first use): give ${how}`);
    }
    if (hostKey.startsWith('AAAA')) {
        field(8, `is the key itself, not its whole line: give ${how}`);
    }
    const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(hostKey)
        ? Buffer.from(hostKey, 'base64').toString('utf8').trim()
        : '';
    if (!PUBLIC_KEY_LINE.test(decoded)) {
        field(8, `is not an SSH public host key: give ${how}`);
    }
}
/**
 * The nix.conf `builders` value: the lines joined with `;` (one conf line), a `-` SSH key field
 * replaced by `keyFile` where the line takes the input's key.
 */
function buildersSetting(machines, keyFile) {
    return machines
        .map(machine => {
        const fields = [...machine.fields];
        if (machine.usesInputKey && keyFile !== null) {
            while (fields.length < 3)
                fields.push('-');
            fields[2] = keyFile;
        }
        return fields.join(' ');
    })
        .join(' ; ');
}
// build-remote's "cannot build on 'URI': <error>", up to the next message of its own.
const CANNOT_BUILD = /^cannot build on '([^']+)': ([\s\S]*?)(?=^cannot build on '|^Failed to find a machine|^error:|(?![\s\S]))/gm;
const HOST_KEY_CHANGED = /REMOTE HOST IDENTIFICATION HAS CHANGED|Host key verification failed/;
/** Each builder Nix gave up on in this log, with what it said (one per builder, last kept). */
function builderFailures(log) {
    const found = new Map();
    for (const match of log.matchAll(CANNOT_BUILD)) {
        const uri = match[1] ?? '';
        const said = (match[2] ?? '').trim();
        found.set(uri, summarise(said));
    }
    // Nix 2.8 prints ssh's own complaint on a line of its own, before any "cannot build on".
    if (found.size === 0 && /^Host key verification failed\.$/m.test(log)) {
        found.set('', 'Host key verification failed.');
    }
    return [...found].map(([uri, said]) => ({ uri, said }));
}
/** ssh's host key banner is twenty lines: say what it means, keep the rest short. */
function summarise(said) {
    if (HOST_KEY_CHANGED.test(said)) {
        const head = said.split('\n')[0]?.replace(/@+$/, '').trim() ?? '';
        return `${head} the host key the builder offered is not the one in field 8 of its line (Host key verification failed)`;
    }
    return said.split('\n').slice(0, 6).join('\n');
}
const UNTRUSTED = /ignoring the client-specified setting 'builders'/;
/** The daemon dropped our `builders` setting: the runner user is not a trusted user. */
function daemonIgnoredBuilders(log) {
    return UNTRUSTED.test(log);
}
/** Why a daemon ignores `builders`, and the ways out. */
function untrustedDaemonMessage(user) {
    return (`the Nix daemon does not trust ${user}, so it ignores the builders this job sets ` +
        "(only trusted users may set them): add the user to trusted-users in the daemon's " +
        'nix.conf (cachix/install-nix-action and DeterminateSystems/nix-installer-action do so by ' +
        "default), or configure the machines in the daemon's own nix.conf (builders) and leave " +
        'the "builders" input empty');
}
// Nix saw no machine at all: with `builders` given, a daemon dropped them (Nix 2.8's without a
// word: it has no warning and no `trusted` in `nix store ping`).
const NO_BUILDERS = /unable to start any build;\s*either increase '--max-jobs' or enable remote builds/i;
/** The error a failed build gets when its log says a builder could not be used; null otherwise. */
function builderFailureMessage(log, user) {
    if (daemonIgnoredBuilders(log))
        return untrustedDaemonMessage(user);
    if (NO_BUILDERS.test(log)) {
        return ('Nix had no remote builder to use and may not build here (--max-jobs 0). If "builders" ' +
            `is set, ${untrustedDaemonMessage(user)}; otherwise give "builders" or drop --max-jobs 0`);
    }
    const failures = builderFailures(log);
    if (failures.length === 0)
        return null;
    return failures
        .map(({ uri, said }) => uri === ''
        ? `a remote builder could not be used: ${said}`
        : `remote builder ${uri} could not be used: ${said}`)
        .join('\n');
}

// EXTERNAL MODULE: external "node:fs/promises"
var promises_ = __nccwpck_require__(1455);
// EXTERNAL MODULE: external "node:path"
var external_node_path_ = __nccwpck_require__(6760);
;// CONCATENATED MODULE: ./src/nix/builder-key.ts
// The `builder-ssh-key` input: checked as an SSH private key ssh can use without a prompt, then
// written 0600 under RUNNER_TEMP (never argv, never a log), where Nix's ssh reads it: the
// runner's ssh for a store it owns, the daemon's (root's) for a daemon store. The post step
// removes it.


/** Why a key is refused; never quotes the key. */
class BuilderKeyError extends Error {
    constructor(reason) {
        super(reason);
        this.name = 'BuilderKeyError';
    }
}
const PEM = /^-----BEGIN ((?:OPENSSH|RSA|EC|DSA) )?PRIVATE KEY-----\n([\s\S]*?)\n-----END \1?PRIVATE KEY-----$/;
/** The key as ssh wants the file: LF line ends, one final newline (OpenSSH refuses a key without). */
function normalizeKey(text) {
    return text.replace(/\r\n?/g, '\n').trim() + '\n';
}
/** Throws BuilderKeyError unless `text` is an unencrypted SSH private key (OpenSSH or PEM). */
function checkBuilderKey(text) {
    const key = normalizeKey(text).trimEnd();
    const match = PEM.exec(key);
    if (!match) {
        throw new BuilderKeyError('is not an SSH private key: give the whole file ssh-keygen wrote (-----BEGIN OPENSSH PRIVATE KEY----- ...)');
    }
    const body = match[2] ?? '';
    const encrypted = match[1] === 'OPENSSH ' ? openSshCipher(body) !== 'none' : /^Proc-Type: 4,ENCRYPTED/m.test(body);
    if (encrypted) {
        throw new BuilderKeyError('is encrypted with a passphrase, which ssh cannot ask for in a job: give a key without one ' +
            '(ssh-keygen -N "")');
    }
}
/** The cipher named in an `openssh-key-v1` key ("none" when unencrypted); null if unreadable. */
function openSshCipher(body) {
    const data = Buffer.from(body.replace(/\s+/g, ''), 'base64');
    const magic = 'openssh-key-v1\0';
    if (data.subarray(0, magic.length).toString('latin1') !== magic)
        return null;
    if (data.length < magic.length + 4)
        return null;
    const length = data.readUInt32BE(magic.length);
    const start = magic.length + 4;
    return data.subarray(start, start + length).toString('latin1');
}
/** Where the key goes: beside the job's nix.conf, in the action's folder of RUNNER_TEMP. */
function builderKeyPath(actionDir) {
    return (0,external_node_path_.join)(actionDir, 'builder-ssh-key');
}
/** Write the key 0600 (the mode set before the key is written: the file may be there already). */
async function writeBuilderKey(file, key) {
    await (0,promises_.writeFile)(file, '', { mode: 0o600 });
    await (0,promises_.chmod)(file, 0o600);
    await (0,promises_.writeFile)(file, normalizeKey(key));
}
/** Remove the key file (post step); a file that is not there is fine. */
async function removeBuilderKey(file) {
    try {
        await rm(file);
        return true;
    }
    catch (error) {
        if (error.code === 'ENOENT')
            return false;
        throw error;
    }
}

;// CONCATENATED MODULE: ./src/inputs.ts
// The only file that reads inputs: one typed, validated Inputs object, built before anything
// runs, so that a bad value fails the step with a message naming the input and the value.












/** Whether the image is run before the push (`test` or `test-url`). */
function testsImage(inputs) {
    return inputs.test.length > 0 || inputs.testUrl !== null;
}
/** A bad input value: the message names the input and the value. */
class InputError extends Error {
    constructor(name, value, reason) {
        super(`Input "${name}": ${JSON.stringify(value)} ${reason}`);
        this.name = 'InputError';
    }
}
/** A bad secret input: the message names the input and why, never the value. */
class SecretInputError extends Error {
    constructor(name, reason) {
        super(`Input "${name}": ${reason}`);
        this.name = 'InputError';
    }
}
/** Secret inputs read as they are (a passphrase may begin or end with a space, as cosign reads it). */
const UNTRIMMED_INPUTS = ['signing-passphrase'];
/** Inputs whose INPUT_* variable is removed once read, so that no command the action runs inherits it. */
const SECRET_INPUTS = [
    'signing-key',
    'signing-passphrase',
    'cache-signing-key',
    'binary-cache-secret-key',
    'builder-ssh-key'
];
const readActionInput = name => src_core/* getInput */.V4(name, { trimWhitespace: !UNTRIMMED_INPUTS.includes(name) });
// The values @actions/core's getBooleanInput accepts (YAML 1.2 core schema).
const TRUE_VALUES = ['true', 'True', 'TRUE'];
const FALSE_VALUES = ['false', 'False', 'FALSE'];
const PUSH_TOOLS = ['docker', 'skopeo'];
const SYSTEM_PATTERN = /^[a-z0-9_]+-[a-z0-9_]+$/;
const MAX_RETRIES = 20;
const DEFAULT_TEST_TIMEOUT = 60;
/** GitHub's longest job: a longer bound would never be reached. */
const MAX_TEST_TIMEOUT = 6 * 60 * 60;
/** Newline- or comma-separated, like docker/build-push-action's `tags`. */
function splitList(value) {
    return value
        .split(/[\n,]/)
        .map(item => item.trim())
        .filter(item => item !== '');
}
/** One item per line: for arguments, which may contain commas. */
function splitLines(value) {
    return value
        .split('\n')
        .map(item => item.trim())
        .filter(item => item !== '');
}
/**
 * The `github-token` input, for the post step (which deletes the cache entries a save
 * superseded): masked before anything else is done with it; null when empty.
 */
function readGithubToken(read = readActionInput) {
    const token = read('github-token').trim();
    if (token === '')
        return null;
    core.setSecret(token);
    return token;
}
/**
 * The `cache-signing-key` input, for the post step (which signs what it saves): masked, its
 * INPUT_* variable removed, then parsed; null when empty.
 */
function readCacheSigningKey(read = readActionInput) {
    const text = read('cache-signing-key').trim();
    maskNixSecretKey(text);
    if (read === readActionInput)
        delete process.env['INPUT_CACHE-SIGNING-KEY'];
    return parseCacheSigningKey(text);
}
/** A Nix secret key is one line: masked whole and its base64 part alone. */
function maskNixSecretKey(text) {
    if (text === '')
        return;
    src_core/* setSecret */.Pq(text);
    const data = text.slice(text.indexOf(':') + 1);
    if (data !== '' && data !== text)
        src_core/* setSecret */.Pq(data);
}
function parseCacheSigningKey(text) {
    if (text === '')
        return null;
    try {
        return parseNixSecretKey(text);
    }
    catch (error) {
        // The message never quotes the key (nix-key.ts); the fallback says nothing of it either.
        const reason = error instanceof Error ? error.message : 'could not be read';
        throw new SecretInputError('cache-signing-key', reason);
    }
}
function parseCacheTrustedKeys(value) {
    return splitList(value).map(entry => {
        try {
            return parseNixPublicKey(entry);
        }
        catch (error) {
            throw new InputError('cache-trusted-keys', entry, `is not a Nix public key: ${shortReason(error)}`);
        }
    });
}
/**
 * `binary-cache`, `binary-cache-secret-key` and `binary-cache-public-key`: a store URL of a
 * scheme Nix has, keys Nix reads. The trusted keys are the public ones given, else the secret
 * key's public half.
 */
function parseBinaryCache(url, secretKeyText, publicKeyText) {
    const publicKeys = splitList(publicKeyText);
    if (url === null) {
        if (secretKeyText !== '') {
            throw new SecretInputError('binary-cache-secret-key', 'is set but "binary-cache" is empty');
        }
        if (publicKeys.length > 0) {
            throw new InputError('binary-cache-public-key', publicKeyText.trim(), 'needs "binary-cache"');
        }
        return null;
    }
    const problem = storeUrlProblem(url);
    if (problem !== null)
        throw new InputError('binary-cache', url, problem);
    for (const key of publicKeys) {
        try {
            parseNixPublicKey(key);
        }
        catch (error) {
            throw new InputError('binary-cache-public-key', key, `is not a Nix public key: ${shortReason(error)}`);
        }
    }
    let secretKey = null;
    if (secretKeyText !== '') {
        try {
            secretKey = parseNixSecretKey(secretKeyText);
        }
        catch (error) {
            const reason = error instanceof Error ? error.message : 'could not be read';
            throw new SecretInputError('binary-cache-secret-key', reason);
        }
    }
    const trusted = publicKeys.length > 0 ? publicKeys : secretKey ? [secretKey.publicKey] : [];
    return { url, secretKey, publicKeys: trusted };
}
function shortReason(error) {
    const message = error instanceof Error ? error.message : String(error);
    return /not an ed25519/.test(message)
        ? 'not an ed25519 key'
        : 'expected <name>:<base64 of 32 bytes>, as `nix key convert-secret-to-public` prints it';
}
function parseInputs(read = readActionInput) {
    const text = (name) => {
        const value = read(name).trim();
        return value === '' ? null : value;
    };
    const bool = (name, fallback) => {
        const value = read(name).trim();
        if (value === '')
            return fallback;
        if (TRUE_VALUES.includes(value))
            return true;
        if (FALSE_VALUES.includes(value))
            return false;
        throw new InputError(name, value, 'is not a boolean: use true or false');
    };
    const password = text('password');
    const githubToken = text('github-token');
    const signingKey = read('signing-key').trim();
    const signingPassphrase = read('signing-passphrase');
    // Masked first, so that nothing below (not even an error) can print them.
    if (password)
        src_core/* setSecret */.Pq(password);
    if (githubToken)
        src_core/* setSecret */.Pq(githubToken);
    maskSecret(signingKey);
    maskSecret(signingPassphrase);
    const cacheSigningKey = read('cache-signing-key').trim();
    maskNixSecretKey(cacheSigningKey);
    const binaryCacheSecretKey = read('binary-cache-secret-key').trim();
    maskNixSecretKey(binaryCacheSecretKey);
    const builderSshKey = read('builder-ssh-key').trim();
    maskSecret(builderSshKey);
    if (read === readActionInput) {
        for (const name of SECRET_INPUTS)
            delete process.env[`INPUT_${name.toUpperCase()}`];
    }
    const inputs = {
        flake: text('flake') ?? '.',
        attribute: parseAttribute(text('attribute') ?? 'container'),
        system: parseSystem(text('system')),
        nixArgs: splitLines(read('nix-args')),
        installNix: bool('install-nix', true),
        nixVersion: parseNixVersionInput(text('nix-version') ?? nix_release/* PINNED_NIX_VERSION */.OG),
        nixConf: splitLines(read('nix-conf')),
        installUrl: parseInstallUrl(text('install-url')),
        githubToken,
        cache: bool('cache', true),
        cacheKey: text('cache-key'),
        cacheSave: bool('cache-save', true),
        build: bool('build', true),
        load: bool('load', true),
        image: inputs_parseImage(text('image')),
        registry: parseRegistry(text('registry')),
        tags: splitList(read('tags')).map(entry => parseTagEntry('tags', entry)),
        push: bool('push', true),
        pushTool: parsePushTool(text('push-tool') ?? 'docker'),
        username: text('username'),
        password,
        retries: parseRetries(text('retries') ?? '3'),
        sbom: bool('sbom', true),
        reuseFrom: splitList(read('reuse-from')).map(entry => parseTagEntry('reuse-from', entry)),
        systems: parseSystems(read('systems')),
        merge: splitList(read('merge')).map(entry => parseTagEntry('merge', entry)),
        test: parseTestCommand(read('test')),
        testUrl: parseTestUrl(text('test-url')),
        testTimeout: parseTestTimeout(text('test-timeout') ?? String(DEFAULT_TEST_TIMEOUT)),
        compression: parseCompression(text('compression') ?? 'gzip', text('compression-level')),
        signingKey: null,
        cacheSigningKey: parseCacheSigningKey(cacheSigningKey),
        cacheTrustedKeys: parseCacheTrustedKeys(read('cache-trusted-keys')),
        binaryCache: parseBinaryCache(text('binary-cache'), binaryCacheSecretKey, read('binary-cache-public-key')),
        ...parseBuilders(read('builders'), builderSshKey)
    };
    checkCombinations(inputs);
    // Last: decrypting takes scrypt's tenth of a second or more, and every cheaper check is done.
    inputs.signingKey = parseSigningKey(signingKey, signingPassphrase);
    return inputs;
}
/** `builders` and `builder-ssh-key`: each line checked, the key checked and used by some line. */
function parseBuilders(text, key) {
    let builders;
    try {
        builders = parseMachineLines(text, key !== '');
    }
    catch (error) {
        // Never the line itself: a private key pasted into the wrong input must not be printed.
        if (error instanceof MachineLineError)
            throw new SecretInputError('builders', error.message);
        throw error;
    }
    if (key === '')
        return { builders, builderSshKey: null };
    try {
        checkBuilderKey(key);
    }
    catch (error) {
        if (error instanceof BuilderKeyError)
            throw new SecretInputError('builder-ssh-key', error.message);
        throw new SecretInputError('builder-ssh-key', 'could not be read as an SSH private key');
    }
    if (!builders.some(machine => machine.usesInputKey)) {
        throw new SecretInputError('builder-ssh-key', builders.length === 0
            ? 'is set but "builders" is empty: give the machine lines that use it'
            : 'is set but no line of "builders" uses it: give "-" as the SSH key field (field 3) of the lines it opens');
    }
    return { builders, builderSshKey: key };
}
/**
 * Mask a secret whole and line by line: the runner matches masks within one line of the log,
 * so a PEM key is masked by its base64 lines (its BEGIN and END lines are no secret).
 */
function maskSecret(value) {
    if (value === '')
        return;
    src_core/* setSecret */.Pq(value);
    for (const line of value.split(/\r?\n/)) {
        const trimmed = line.trim();
        if (trimmed !== '' && trimmed !== value && !/^-----(BEGIN|END) /.test(trimmed)) {
            src_core/* setSecret */.Pq(trimmed);
        }
    }
}
/** `signing-key` decrypted with `signing-passphrase` (an empty passphrase is cosign's too). */
function parseSigningKey(pem, passphrase) {
    if (pem === '') {
        if (passphrase !== '') {
            throw new SecretInputError('signing-passphrase', 'is set but "signing-key" is empty: give the key too, or neither');
        }
        return null;
    }
    try {
        return readSigningKey(pem, passphrase);
    }
    catch (error) {
        if (error instanceof SigningKeyError)
            throw new SecretInputError(error.input, error.message);
        // Anything else (scrypt, the key parser) may not say why without quoting: say what failed.
        throw new SecretInputError('signing-key', 'could not be read as a cosign private key');
    }
}
function parseAttribute(value) {
    if (/\s/.test(value))
        throw new InputError('attribute', value, 'must not contain white space');
    return value;
}
function parseSystem(value) {
    if (value !== null && !SYSTEM_PATTERN.test(value)) {
        throw new InputError('system', value, 'is not a Nix system such as x86_64-linux');
    }
    return value;
}
function parseSystems(value) {
    const systems = splitList(value);
    for (const [i, system] of systems.entries()) {
        if (!SYSTEM_PATTERN.test(system)) {
            throw new InputError('systems', system, 'is not a Nix system such as aarch64-linux');
        }
        if (systems.indexOf(system) !== i) {
            throw new InputError('systems', value.trim(), `lists ${system} twice`);
        }
    }
    return systems;
}
function parseNixVersionInput(value) {
    if (!nix_release/* NIX_VERSION_PATTERN */.W9.test(value)) {
        throw new InputError('nix-version', value, 'is not a Nix release version such as 2.35.2');
    }
    return value;
}
/** A tarball URL or a mirror of releases.nixos.org/nix, fetched over HTTP(S). */
function parseInstallUrl(value) {
    if (value === null)
        return null;
    let url;
    try {
        url = new URL(value);
    }
    catch {
        throw new InputError('install-url', value, 'is not a URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new InputError('install-url', value, 'must be an http:// or https:// URL');
    }
    return value;
}
/**
 * One argument per line, like nix-args, but an empty line inside is refused rather than
 * dropped: it would silently shift the arguments (an empty argument cannot be given).
 */
function parseTestCommand(value) {
    const trimmed = value.trim();
    if (trimmed === '')
        return [];
    const lines = trimmed.split('\n').map(line => line.trim());
    const empty = lines.indexOf('');
    if (empty >= 0) {
        throw new InputError('test', trimmed, `has an empty line (line ${empty + 1}): give one argument per line, with no blank lines`);
    }
    return lines;
}
/** An http(s) URL the runner can fetch (the test container shares the runner's network). */
function parseTestUrl(value) {
    if (value === null)
        return null;
    let url;
    try {
        url = new URL(value);
    }
    catch {
        throw new InputError('test-url', value, 'is not a URL: give one such as http://localhost:8080/health');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new InputError('test-url', value, 'must be an http:// or https:// URL');
    }
    return value;
}
function parseTestTimeout(value) {
    const seconds = Number(value);
    if (!/^\d+(\.\d+)?$/.test(value) || seconds <= 0 || seconds > MAX_TEST_TIMEOUT) {
        throw new InputError('test-timeout', value, `is not a number of seconds greater than 0 and at most ${MAX_TEST_TIMEOUT}`);
    }
    return seconds;
}
function inputs_parseImage(value) {
    if (value === null)
        return null;
    const ref = parseOrFail('image', value);
    if (ref.tag !== null || ref.digest !== null) {
        throw new InputError('image', value, 'must be a repository without a tag or digest: give tags in "tags"');
    }
    return value;
}
function parseRegistry(value) {
    if (value === null)
        return null;
    try {
        validateRegistry(value);
    }
    catch (error) {
        throw new InputError('registry', value, `is not a registry host: ${(0,errors/* errorMessage */.g)(error)}`);
    }
    return value;
}
/** A `tags`, `merge` or `reuse-from` entry: a full reference or a tag (isFullReference decides). */
function parseTagEntry(name, value) {
    if (isFullReference(value)) {
        parseOrFail(name, value);
        return value;
    }
    try {
        validateTag(value);
    }
    catch (error) {
        const expected = name === 'reuse-from' ? 'a reference or tag' : 'a valid tag';
        throw new InputError(name, value, `is not ${expected}: ${(0,errors/* errorMessage */.g)(error)}`);
    }
    return value;
}
function parsePushTool(value) {
    const tool = PUSH_TOOLS.find(name => name === value);
    if (!tool)
        throw new InputError('push-tool', value, `is not one of: ${PUSH_TOOLS.join(', ')}`);
    return tool;
}
function parseCompression(format, level) {
    const known = LAYER_COMPRESSION_FORMATS.find(name => name === format);
    if (!known) {
        throw new InputError('compression', format, `is not one of: ${LAYER_COMPRESSION_FORMATS.join(', ')}`);
    }
    if (level === null)
        return { format: known, level: null };
    const { min, max } = COMPRESSION_LEVELS[known];
    const number = Number(level);
    if (!/^\d+$/.test(level) || number < min || number > max) {
        throw new InputError('compression-level', level, `is not a ${known} level: a whole number from ${min} to ${max}`);
    }
    return { format: known, level: number };
}
function parseRetries(value) {
    const retries = Number(value);
    if (!/^\d+$/.test(value) || retries < 1 || retries > MAX_RETRIES) {
        throw new InputError('retries', value, `is not a whole number from 1 to ${MAX_RETRIES}`);
    }
    return retries;
}
function parseOrFail(name, value) {
    try {
        return parseReference(value);
    }
    catch (error) {
        throw new InputError(name, value, `is not a valid image reference: ${(0,errors/* errorMessage */.g)(error)}`);
    }
}
/** Values that are each fine but cannot work together. */
function checkCombinations(inputs) {
    if ((inputs.username === null) !== (inputs.password === null)) {
        const [given, missing] = inputs.username === null ? ['password', 'username'] : ['username', 'password'];
        throw new InputError(missing, '', `is empty but "${given}" is set: give both to log in, or neither`);
    }
    checkMultiPlatform(inputs);
    checkTest(inputs);
    if (inputs.push && inputs.pushTool === 'docker' && !inputs.load && inputs.systems.length === 0) {
        throw new InputError('load', 'false', 'cannot go with push: true and push-tool: docker, which pushes what docker loaded; ' +
            'set load: true, push: false, or push-tool: skopeo');
    }
    if (inputs.push)
        checkPushDestination(inputs);
}
/** `systems` and `merge` each make an index: with `system`, each other, or nowhere to push. */
function checkMultiPlatform(inputs) {
    const systems = inputs.systems.join(', ');
    if (inputs.systems.length > 0 && inputs.system !== null) {
        throw new InputError('systems', systems, `cannot go with "system" (${JSON.stringify(inputs.system)}): list every system in "systems"`);
    }
    if (inputs.merge.length === 0)
        return;
    const merge = inputs.merge.join(', ');
    if (inputs.systems.length > 0) {
        throw new InputError('merge', merge, `cannot go with "systems" (${JSON.stringify(systems)}): merge combines images already ` +
            'pushed and builds nothing; build them in other steps or jobs');
    }
    if (!inputs.push) {
        throw new InputError('merge', merge, 'needs push: true: it only pushes an index');
    }
    if (inputs.tags.length === 0 && inputs.image === null) {
        throw new InputError('merge', merge, 'has nothing to push to: set "tags" (and "image" for bare tags) for the index');
    }
    for (const entry of inputs.merge) {
        if (isFullReference(entry)) {
            if (inputs.registry === null && parseReference(entry).domain === null) {
                throw new InputError('merge', entry, 'names no registry: write it as registry/repository:tag (or @sha256:...) or set "registry"');
            }
        }
        else if (inputs.image === null) {
            throw new InputError('merge', entry, 'is a tag, but "image" is not set: give a full reference or set "image"');
        }
    }
}
/** `test` and `test-url` need an image built here, of the runner's own system. */
function checkTest(inputs) {
    if (!testsImage(inputs))
        return;
    const [name, value] = inputs.test.length > 0 ? ['test', inputs.test.join('\n')] : ['test-url', inputs.testUrl ?? ''];
    if (inputs.merge.length > 0) {
        throw new InputError(name, value, 'cannot go with "merge": merge builds nothing here, so there is no image to run; ' +
            'test each platform image in the job that builds it');
    }
    if (!inputs.build) {
        throw new InputError(name, value, 'needs build: true: with build: false there is no image to run');
    }
    const own = runnerSystem();
    if (inputs.systems.length > 0 && (own === null || !inputs.systems.includes(own))) {
        throw new InputError('systems', inputs.systems.join(', '), `has no image of the runner's own system (${own ?? process.arch}), so "${name}" ` +
            `cannot run any here: add ${own ?? "the runner's system"} to "systems" or drop "${name}"`);
    }
}
/** Every ref that will be pushed must name a registry: no silent pushes to Docker Hub. */
function checkPushDestination(inputs) {
    if (inputs.registry !== null)
        return;
    const imageHasRegistry = inputs.image !== null && parseReference(inputs.image).domain !== null;
    const bareTags = inputs.tags.filter(tag => !isFullReference(tag));
    const usesImage = bareTags.length > 0 || inputs.tags.length === 0;
    if (usesImage && !imageHasRegistry) {
        const value = inputs.image ?? '';
        throw new InputError('image', value, 'names no registry, so push: true has nowhere to push: set "registry" (e.g. ghcr.io), ' +
            'give "image" with a registry (ghcr.io/owner/app), or set push: false');
    }
    for (const tag of inputs.tags.filter(isFullReference)) {
        if (parseReference(tag).domain === null) {
            throw new InputError('tags', tag, 'names no registry, so push: true has nowhere to push it: write it as ' +
                'registry/repository:tag or set "registry"');
        }
    }
}

;// CONCATENATED MODULE: ./src/state-keys.ts
// The names of what main hands to post (as in actions/setup-node): one place, and no import,
// so that the post step can read them before it loads anything (src/post-quick.ts).
var StateKey;
(function (StateKey) {
    /** Set by main so that post knows main ran at all (a post after a crash has nothing to do). */
    StateKey["MainRan"] = "main-ran";
    /** Why main did not use the store cache (cache: false, build: false); post says it too. */
    StateKey["CacheSkipped"] = "cache-skipped";
    StateKey["CachePrimaryKey"] = "cache-primary-key";
    /** The key main restored and imported; unset on a miss. */
    StateKey["CacheRestoredKey"] = "cache-restored-key";
    /** File recording the keys and the entries restored (JSON): what post saves builds on them. */
    StateKey["CacheRestoreRecord"] = "cache-restore-record";
    /** When main began (ISO 8601): post deletes only superseded entries saved before it. */
    StateKey["CacheStartedAt"] = "cache-started-at";
    StateKey["CacheSave"] = "cache-save";
    /** The flake reference: post caches the sources of its inputs too. */
    StateKey["CacheFlake"] = "cache-flake";
    StateKey["CacheWorkDir"] = "cache-work-dir";
    /** Set once the build finished: post saves nothing without it. */
    StateKey["BuiltDrvPath"] = "built-drv-path";
    StateKey["BuiltStorePath"] = "built-store-path";
    /** JSON of the push stage's LoginSession (no secrets): what post logs out of. */
    StateKey["LoginSession"] = "login-session";
    /** The test container that may be running ('' once main removed it): post removes it. */
    StateKey["TestContainer"] = "test-container";
    /** The binary cache push's key file: ('' once main removed it): post removes it. */
    StateKey["BinaryCacheKeyFile"] = "binary-cache-key-file";
    /** The `builder-ssh-key` file main wrote: post removes it. */
    StateKey["BuilderKeyFile"] = "builder-key-file";
})(StateKey || (StateKey = {}));

;// CONCATENATED MODULE: ./src/state.ts
// Typed state from main to post: the keys live in one place (as in actions/setup-node).



function saveState(key, value) {
    src_core/* saveState */.LZ(key, value);
}
function getState(key) {
    const value = core.getState(key);
    return value === '' ? null : value;
}

// EXTERNAL MODULE: external "events"
var external_events_ = __nccwpck_require__(4434);
// EXTERNAL MODULE: external "fs"
var external_fs_ = __nccwpck_require__(9896);
// EXTERNAL MODULE: external "node:events"
var external_node_events_ = __nccwpck_require__(8474);
// EXTERNAL MODULE: external "node:string_decoder"
var external_node_string_decoder_ = __nccwpck_require__(6193);
// EXTERNAL MODULE: external "node:fs"
var external_node_fs_ = __nccwpck_require__(3024);
// EXTERNAL MODULE: external "path"
var external_path_ = __nccwpck_require__(6928);
// EXTERNAL MODULE: external "assert"
var external_assert_ = __nccwpck_require__(2613);
// EXTERNAL MODULE: external "buffer"
var external_buffer_ = __nccwpck_require__(181);
;// CONCATENATED MODULE: external "zlib"
const external_zlib_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("zlib");
var external_zlib_namespaceObject_0 = /*#__PURE__*/__nccwpck_require__.t(external_zlib_namespaceObject, 2);
// EXTERNAL MODULE: external "node:assert"
var external_node_assert_ = __nccwpck_require__(4589);
;// CONCATENATED MODULE: ./node_modules/tar/dist/esm/index.min.js
var zr=Object.defineProperty;var Ur=(s,t)=>{for(var e in t)zr(s,e,{get:t[e],enumerable:!0})};var Ds=typeof process=="object"&&process?process:{stdout:null,stderr:null},Wr=s=>!!s&&typeof s=="object"&&(s instanceof A||s instanceof external_node_stream_||Gr(s)||Zr(s)),Gr=s=>!!s&&typeof s=="object"&&s instanceof external_node_events_.EventEmitter&&typeof s.pipe=="function"&&s.pipe!==external_node_stream_.Writable.prototype.pipe,Zr=s=>!!s&&typeof s=="object"&&s instanceof external_node_events_.EventEmitter&&typeof s.write=="function"&&typeof s.end=="function",Q=Symbol("EOF"),J=Symbol("maybeEmitEnd"),nt=Symbol("emittedEnd"),De=Symbol("emittingEnd"),qt=Symbol("emittedError"),Ne=Symbol("closed"),Ns=Symbol("read"),Ae=Symbol("flush"),As=Symbol("flushChunk"),z=Symbol("encoding"),Mt=Symbol("decoder"),g=Symbol("flowing"),Qt=Symbol("paused"),Bt=Symbol("resume"),b=Symbol("buffer"),N=Symbol("pipes"),_=Symbol("bufferLength"),bi=Symbol("bufferPush"),Ie=Symbol("bufferShift"),L=Symbol("objectMode"),S=Symbol("destroyed"),_i=Symbol("error"),Oi=Symbol("emitData"),Is=Symbol("emitEnd"),Ti=Symbol("emitEnd2"),Z=Symbol("async"),xi=Symbol("abort"),Ce=Symbol("aborted"),Jt=Symbol("signal"),Rt=Symbol("dataListeners"),C=Symbol("discarded"),jt=s=>Promise.resolve().then(s),Yr=s=>s(),Kr=s=>s==="end"||s==="finish"||s==="prefinish",Vr=s=>s instanceof ArrayBuffer||!!s&&typeof s=="object"&&s.constructor&&s.constructor.name==="ArrayBuffer"&&s.byteLength>=0,$r=s=>!Buffer.isBuffer(s)&&ArrayBuffer.isView(s),Fe=class{src;dest;opts;ondrain;constructor(t,e,i){this.src=t,this.dest=e,this.opts=i,this.ondrain=()=>t[Bt](),this.dest.on("drain",this.ondrain)}unpipe(){this.dest.removeListener("drain",this.ondrain)}proxyErrors(t){}end(){this.unpipe(),this.opts.end&&this.dest.end()}},Li=class extends Fe{unpipe(){this.src.removeListener("error",this.proxyErrors),super.unpipe()}constructor(t,e,i){super(t,e,i),this.proxyErrors=r=>this.dest.emit("error",r),t.on("error",this.proxyErrors)}},Xr=s=>!!s.objectMode,qr=s=>!s.objectMode&&!!s.encoding&&s.encoding!=="buffer",A=class extends external_node_events_.EventEmitter{[g]=!1;[Qt]=!1;[N]=[];[b]=[];[L];[z];[Z];[Mt];[Q]=!1;[nt]=!1;[De]=!1;[Ne]=!1;[qt]=null;[_]=0;[S]=!1;[Jt];[Ce]=!1;[Rt]=0;[C]=!1;writable=!0;readable=!0;constructor(...t){let e=t[0]||{};if(super(),e.objectMode&&typeof e.encoding=="string")throw new TypeError("Encoding and objectMode may not be used together");Xr(e)?(this[L]=!0,this[z]=null):qr(e)?(this[z]=e.encoding,this[L]=!1):(this[L]=!1,this[z]=null),this[Z]=!!e.async,this[Mt]=this[z]?new external_node_string_decoder_.StringDecoder(this[z]):null,e&&e.debugExposeBuffer===!0&&Object.defineProperty(this,"buffer",{get:()=>this[b]}),e&&e.debugExposePipes===!0&&Object.defineProperty(this,"pipes",{get:()=>this[N]});let{signal:i}=e;i&&(this[Jt]=i,i.aborted?this[xi]():i.addEventListener("abort",()=>this[xi]()))}get bufferLength(){return this[_]}get encoding(){return this[z]}set encoding(t){throw new Error("Encoding must be set at instantiation time")}setEncoding(t){throw new Error("Encoding must be set at instantiation time")}get objectMode(){return this[L]}set objectMode(t){throw new Error("objectMode must be set at instantiation time")}get async(){return this[Z]}set async(t){this[Z]=this[Z]||!!t}[xi](){this[Ce]=!0,this.emit("abort",this[Jt]?.reason),this.destroy(this[Jt]?.reason)}get aborted(){return this[Ce]}set aborted(t){}write(t,e,i){if(this[Ce])return!1;if(this[Q])throw new Error("write after end");if(this[S])return this.emit("error",Object.assign(new Error("Cannot call write after a stream was destroyed"),{code:"ERR_STREAM_DESTROYED"})),!0;typeof e=="function"&&(i=e,e="utf8"),e||(e="utf8");let r=this[Z]?jt:Yr;if(!this[L]&&!Buffer.isBuffer(t)){if($r(t))t=Buffer.from(t.buffer,t.byteOffset,t.byteLength);else if(Vr(t))t=Buffer.from(t);else if(typeof t!="string")throw new Error("Non-contiguous data written to non-objectMode stream")}return this[L]?(this[g]&&this[_]!==0&&this[Ae](!0),this[g]?this.emit("data",t):this[bi](t),this[_]!==0&&this.emit("readable"),i&&r(i),this[g]):t.length?(typeof t=="string"&&!(e===this[z]&&!this[Mt]?.lastNeed)&&(t=Buffer.from(t,e)),Buffer.isBuffer(t)&&this[z]&&(t=this[Mt].write(t)),this[g]&&this[_]!==0&&this[Ae](!0),this[g]?this.emit("data",t):this[bi](t),this[_]!==0&&this.emit("readable"),i&&r(i),this[g]):(this[_]!==0&&this.emit("readable"),i&&r(i),this[g])}read(t){if(this[S])return null;if(this[C]=!1,this[_]===0||t===0||t&&t>this[_])return this[J](),null;this[L]&&(t=null),this[b].length>1&&!this[L]&&(this[b]=[this[z]?this[b].join(""):Buffer.concat(this[b],this[_])]);let e=this[Ns](t||null,this[b][0]);return this[J](),e}[Ns](t,e){if(this[L])this[Ie]();else{let i=e;t===i.length||t===null?this[Ie]():typeof i=="string"?(this[b][0]=i.slice(t),e=i.slice(0,t),this[_]-=t):(this[b][0]=i.subarray(t),e=i.subarray(0,t),this[_]-=t)}return this.emit("data",e),!this[b].length&&!this[Q]&&this.emit("drain"),e}end(t,e,i){return typeof t=="function"&&(i=t,t=void 0),typeof e=="function"&&(i=e,e="utf8"),t!==void 0&&this.write(t,e),i&&this.once("end",i),this[Q]=!0,this.writable=!1,(this[g]||!this[Qt])&&this[J](),this}[Bt](){this[S]||(!this[Rt]&&!this[N].length&&(this[C]=!0),this[Qt]=!1,this[g]=!0,this.emit("resume"),this[b].length?this[Ae]():this[Q]?this[J]():this.emit("drain"))}resume(){return this[Bt]()}pause(){this[g]=!1,this[Qt]=!0,this[C]=!1}get destroyed(){return this[S]}get flowing(){return this[g]}get paused(){return this[Qt]}[bi](t){this[L]?this[_]+=1:this[_]+=t.length,this[b].push(t)}[Ie](){return this[L]?this[_]-=1:this[_]-=this[b][0].length,this[b].shift()}[Ae](t=!1){do;while(this[As](this[Ie]())&&this[b].length);!t&&!this[b].length&&!this[Q]&&this.emit("drain")}[As](t){return this.emit("data",t),this[g]}pipe(t,e){if(this[S])return t;this[C]=!1;let i=this[nt];return e=e||{},t===Ds.stdout||t===Ds.stderr?e.end=!1:e.end=e.end!==!1,e.proxyErrors=!!e.proxyErrors,i?e.end&&t.end():(this[N].push(e.proxyErrors?new Li(this,t,e):new Fe(this,t,e)),this[Z]?jt(()=>this[Bt]()):this[Bt]()),t}unpipe(t){let e=this[N].find(i=>i.dest===t);e&&(this[N].length===1?(this[g]&&this[Rt]===0&&(this[g]=!1),this[N]=[]):this[N].splice(this[N].indexOf(e),1),e.unpipe())}addListener(t,e){return this.on(t,e)}on(t,e){let i=super.on(t,e);if(t==="data")this[C]=!1,this[Rt]++,!this[N].length&&!this[g]&&this[Bt]();else if(t==="readable"&&this[_]!==0)super.emit("readable");else if(Kr(t)&&this[nt])super.emit(t),this.removeAllListeners(t);else if(t==="error"&&this[qt]){let r=e;this[Z]?jt(()=>r.call(this,this[qt])):r.call(this,this[qt])}return i}removeListener(t,e){return this.off(t,e)}off(t,e){let i=super.off(t,e);return t==="data"&&(this[Rt]=this.listeners("data").length,this[Rt]===0&&!this[C]&&!this[N].length&&(this[g]=!1)),i}removeAllListeners(t){let e=super.removeAllListeners(t);return(t==="data"||t===void 0)&&(this[Rt]=0,!this[C]&&!this[N].length&&(this[g]=!1)),e}get emittedEnd(){return this[nt]}[J](){!this[De]&&!this[nt]&&!this[S]&&this[b].length===0&&this[Q]&&(this[De]=!0,this.emit("end"),this.emit("prefinish"),this.emit("finish"),this[Ne]&&this.emit("close"),this[De]=!1)}emit(t,...e){let i=e[0];if(t!=="error"&&t!=="close"&&t!==S&&this[S])return!1;if(t==="data")return!this[L]&&!i?!1:this[Z]?(jt(()=>this[Oi](i)),!0):this[Oi](i);if(t==="end")return this[Is]();if(t==="close"){if(this[Ne]=!0,!this[nt]&&!this[S])return!1;let n=super.emit("close");return this.removeAllListeners("close"),n}else if(t==="error"){this[qt]=i,super.emit(_i,i);let n=!this[Jt]||this.listeners("error").length?super.emit("error",i):!1;return this[J](),n}else if(t==="resume"){let n=super.emit("resume");return this[J](),n}else if(t==="finish"||t==="prefinish"){let n=super.emit(t);return this.removeAllListeners(t),n}let r=super.emit(t,...e);return this[J](),r}[Oi](t){for(let i of this[N])i.dest.write(t)===!1&&this.pause();let e=this[C]?!1:super.emit("data",t);return this[J](),e}[Is](){return this[nt]?!1:(this[nt]=!0,this.readable=!1,this[Z]?(jt(()=>this[Ti]()),!0):this[Ti]())}[Ti](){if(this[Mt]){let e=this[Mt].end();if(e){for(let i of this[N])i.dest.write(e);this[C]||super.emit("data",e)}}for(let e of this[N])e.end();let t=super.emit("end");return this.removeAllListeners("end"),t}async collect(){let t=Object.assign([],{dataLength:0});this[L]||(t.dataLength=0);let e=this.promise();return this.on("data",i=>{t.push(i),this[L]||(t.dataLength+=i.length)}),await e,t}async concat(){if(this[L])throw new Error("cannot concat in objectMode");let t=await this.collect();return this[z]?t.join(""):Buffer.concat(t,t.dataLength)}async promise(){return new Promise((t,e)=>{this.on(S,()=>e(new Error("stream destroyed"))),this.on("error",i=>e(i)),this.on("end",()=>t())})}[Symbol.asyncIterator](){this[C]=!1;let t=!1,e=async()=>(this.pause(),t=!0,{value:void 0,done:!0});return{next:()=>{if(t)return e();let r=this.read();if(r!==null)return Promise.resolve({done:!1,value:r});if(this[Q])return e();let n,o,h=d=>{this.off("data",a),this.off("end",l),this.off(S,c),e(),o(d)},a=d=>{this.off("error",h),this.off("end",l),this.off(S,c),this.pause(),n({value:d,done:!!this[Q]})},l=()=>{this.off("error",h),this.off("data",a),this.off(S,c),e(),n({done:!0,value:void 0})},c=()=>h(new Error("stream destroyed"));return new Promise((d,y)=>{o=y,n=d,this.once(S,c),this.once("error",h),this.once("end",l),this.once("data",a)})},throw:e,return:e,[Symbol.asyncIterator](){return this},[Symbol.asyncDispose]:async()=>{}}}[Symbol.iterator](){this[C]=!1;let t=!1,e=()=>(this.pause(),this.off(_i,e),this.off(S,e),this.off("end",e),t=!0,{done:!0,value:void 0}),i=()=>{if(t)return e();let r=this.read();return r===null?e():{done:!1,value:r}};return this.once("end",e),this.once(_i,e),this.once(S,e),{next:i,throw:e,return:e,[Symbol.iterator](){return this},[Symbol.dispose]:()=>{}}}destroy(t){if(this[S])return t?this.emit("error",t):this.emit(S),this;this[S]=!0,this[C]=!0,this[b].length=0,this[_]=0;let e=this;return typeof e.close=="function"&&!this[Ne]&&e.close(),t?this.emit("error",t):this.emit(S),this}static get isStream(){return Wr}};var Jr=external_fs_.writev,ht=Symbol("_autoClose"),H=Symbol("_close"),te=Symbol("_ended"),m=Symbol("_fd"),Ni=Symbol("_finished"),tt=Symbol("_flags"),Ai=Symbol("_flush"),ki=Symbol("_handleChunk"),vi=Symbol("_makeBuf"),ie=Symbol("_mode"),ke=Symbol("_needDrain"),Ut=Symbol("_onerror"),Ht=Symbol("_onopen"),Ii=Symbol("_onread"),Pt=Symbol("_onwrite"),at=Symbol("_open"),U=Symbol("_path"),ot=Symbol("_pos"),Y=Symbol("_queue"),zt=Symbol("_read"),Ci=Symbol("_readSize"),j=Symbol("_reading"),ee=Symbol("_remain"),Fi=Symbol("_size"),ve=Symbol("_write"),gt=Symbol("_writing"),Me=Symbol("_defaultFlag"),bt=Symbol("_errored"),_t=class extends A{[bt]=!1;[m];[U];[Ci];[j]=!1;[Fi];[ee];[ht];constructor(t,e){if(e=e||{},super(e),this.readable=!0,this.writable=!1,typeof t!="string")throw new TypeError("path must be a string");this[bt]=!1,this[m]=typeof e.fd=="number"?e.fd:void 0,this[U]=t,this[Ci]=e.readSize||16*1024*1024,this[j]=!1,this[Fi]=typeof e.size=="number"?e.size:1/0,this[ee]=this[Fi],this[ht]=typeof e.autoClose=="boolean"?e.autoClose:!0,typeof this[m]=="number"?this[zt]():this[at]()}get fd(){return this[m]}get path(){return this[U]}write(){throw new TypeError("this is a readable stream")}end(){throw new TypeError("this is a readable stream")}[at](){external_fs_.open(this[U],"r",(t,e)=>this[Ht](t,e))}[Ht](t,e){t?this[Ut](t):(this[m]=e,this.emit("open",e),this[zt]())}[vi](){return Buffer.allocUnsafe(Math.min(this[Ci],this[ee]))}[zt](){if(!this[j]){this[j]=!0;let t=this[vi]();if(t.length===0)return process.nextTick(()=>this[Ii](null,0,t));external_fs_.read(this[m],t,0,t.length,null,(e,i,r)=>this[Ii](e,i,r))}}[Ii](t,e,i){this[j]=!1,t?this[Ut](t):this[ki](e,i)&&this[zt]()}[H](){if(this[ht]&&typeof this[m]=="number"){let t=this[m];this[m]=void 0,external_fs_.close(t,e=>e?this.emit("error",e):this.emit("close"))}}[Ut](t){this[j]=!0,this[H](),this.emit("error",t)}[ki](t,e){let i=!1;return this[ee]-=t,t>0&&(i=super.write(t<e.length?e.subarray(0,t):e)),(t===0||this[ee]<=0)&&(i=!1,this[H](),super.end()),i}emit(t,...e){switch(t){case"prefinish":case"finish":return!1;case"drain":return typeof this[m]=="number"&&this[zt](),!1;case"error":return this[bt]?!1:(this[bt]=!0,super.emit(t,...e));default:return super.emit(t,...e)}}},Be=class extends _t{[at](){let t=!0;try{this[Ht](null,external_fs_.openSync(this[U],"r")),t=!1}finally{t&&this[H]()}}[zt](){let t=!0;try{if(!this[j]){this[j]=!0;do{let e=this[vi](),i=e.length===0?0:external_fs_.readSync(this[m],e,0,e.length,null);if(!this[ki](i,e))break}while(!0);this[j]=!1}t=!1}finally{t&&this[H]()}}[H](){if(this[ht]&&typeof this[m]=="number"){let t=this[m];this[m]=void 0,external_fs_.closeSync(t),this.emit("close")}}},et=class extends external_events_{readable=!1;writable=!0;[bt]=!1;[gt]=!1;[te]=!1;[Y]=[];[ke]=!1;[U];[ie];[ht];[m];[Me];[tt];[Ni]=!1;[ot];constructor(t,e){e=e||{},super(e),this[U]=t,this[m]=typeof e.fd=="number"?e.fd:void 0,this[ie]=e.mode===void 0?438:e.mode,this[ot]=typeof e.start=="number"?e.start:void 0,this[ht]=typeof e.autoClose=="boolean"?e.autoClose:!0;let i=this[ot]!==void 0?"r+":"w";this[Me]=e.flags===void 0,this[tt]=e.flags===void 0?i:e.flags,this[m]===void 0&&this[at]()}emit(t,...e){if(t==="error"){if(this[bt])return!1;this[bt]=!0}return super.emit(t,...e)}get fd(){return this[m]}get path(){return this[U]}[Ut](t){this[H](),this[gt]=!0,this.emit("error",t)}[at](){external_fs_.open(this[U],this[tt],this[ie],(t,e)=>this[Ht](t,e))}[Ht](t,e){this[Me]&&this[tt]==="r+"&&t&&t.code==="ENOENT"?(this[tt]="w",this[at]()):t?this[Ut](t):(this[m]=e,this.emit("open",e),this[gt]||this[Ai]())}end(t,e){return t&&this.write(t,e),this[te]=!0,!this[gt]&&!this[Y].length&&typeof this[m]=="number"&&this[Pt](null,0),this}write(t,e){return typeof t=="string"&&(t=Buffer.from(t,e)),this[te]?(this.emit("error",new Error("write() after end()")),!1):this[m]===void 0||this[gt]||this[Y].length?(this[Y].push(t),this[ke]=!0,!1):(this[gt]=!0,this[ve](t),!0)}[ve](t){external_fs_.write(this[m],t,0,t.length,this[ot],(e,i)=>this[Pt](e,i))}[Pt](t,e){t?this[Ut](t):(this[ot]!==void 0&&typeof e=="number"&&(this[ot]+=e),this[Y].length?this[Ai]():(this[gt]=!1,this[te]&&!this[Ni]?(this[Ni]=!0,this[H](),this.emit("finish")):this[ke]&&(this[ke]=!1,this.emit("drain"))))}[Ai](){if(this[Y].length===0)this[te]&&this[Pt](null,0);else if(this[Y].length===1)this[ve](this[Y].pop());else{let t=this[Y];this[Y]=[],Jr(this[m],t,this[ot],(e,i)=>this[Pt](e,i))}}[H](){if(this[ht]&&typeof this[m]=="number"){let t=this[m];this[m]=void 0,external_fs_.close(t,e=>e?this.emit("error",e):this.emit("close"))}}},Wt=class extends et{[at](){let t;if(this[Me]&&this[tt]==="r+")try{t=external_fs_.openSync(this[U],this[tt],this[ie])}catch(e){if(e?.code==="ENOENT")return this[tt]="w",this[at]();throw e}else t=external_fs_.openSync(this[U],this[tt],this[ie]);this[Ht](null,t)}[H](){if(this[ht]&&typeof this[m]=="number"){let t=this[m];this[m]=void 0,external_fs_.closeSync(t),this.emit("close")}}[ve](t){let e=!0;try{this[Pt](null,external_fs_.writeSync(this[m],t,0,t.length,this[ot])),e=!1}finally{if(e)try{this[H]()}catch{}}}};var jr=new Map([["C","cwd"],["f","file"],["z","gzip"],["P","preservePaths"],["U","unlink"],["strip-components","strip"],["stripComponents","strip"],["keep-newer","newer"],["keepNewer","newer"],["keep-newer-files","newer"],["keepNewerFiles","newer"],["k","keep"],["keep-existing","keep"],["keepExisting","keep"],["m","noMtime"],["no-mtime","noMtime"],["p","preserveOwner"],["L","follow"],["h","follow"],["onentry","onReadEntry"]]),Fs=s=>!!s.sync&&!!s.file,ks=s=>!s.sync&&!!s.file,vs=s=>!!s.sync&&!s.file,Ms=s=>!s.sync&&!s.file;var Bs=s=>!!s.file;var tn=s=>{let t=jr.get(s);return t||s},se=(s={})=>{if(!s)return{};let t={};for(let[e,i]of Object.entries(s)){let r=tn(e);t[r]=i}return t.chmod===void 0&&t.noChmod===!1&&(t.chmod=!0),delete t.noChmod,t};var K=(s,t,e,i,r)=>Object.assign((n=[],o,h)=>{Array.isArray(n)&&(o=n,n={}),typeof o=="function"&&(h=o,o=void 0),o=o?Array.from(o):[];let a=se(n);if(r?.(a,o),Fs(a)){if(typeof h=="function")throw new TypeError("callback not supported for sync tar functions");return s(a,o)}else if(ks(a)){let l=t(a,o);return h?l.then(()=>h(),h):l}else if(vs(a)){if(typeof h=="function")throw new TypeError("callback not supported for sync tar functions");return e(a,o)}else if(Ms(a)){if(typeof h=="function")throw new TypeError("callback only supported with file option");return i(a,o)}throw new Error("impossible options??")},{syncFile:s,asyncFile:t,syncNoFile:e,asyncNoFile:i,validate:r});var sn=external_zlib_namespaceObject.constants||{ZLIB_VERNUM:4736},M=Object.freeze(Object.assign(Object.create(null),{Z_NO_FLUSH:0,Z_PARTIAL_FLUSH:1,Z_SYNC_FLUSH:2,Z_FULL_FLUSH:3,Z_FINISH:4,Z_BLOCK:5,Z_OK:0,Z_STREAM_END:1,Z_NEED_DICT:2,Z_ERRNO:-1,Z_STREAM_ERROR:-2,Z_DATA_ERROR:-3,Z_MEM_ERROR:-4,Z_BUF_ERROR:-5,Z_VERSION_ERROR:-6,Z_NO_COMPRESSION:0,Z_BEST_SPEED:1,Z_BEST_COMPRESSION:9,Z_DEFAULT_COMPRESSION:-1,Z_FILTERED:1,Z_HUFFMAN_ONLY:2,Z_RLE:3,Z_FIXED:4,Z_DEFAULT_STRATEGY:0,DEFLATE:1,INFLATE:2,GZIP:3,GUNZIP:4,DEFLATERAW:5,INFLATERAW:6,UNZIP:7,BROTLI_DECODE:8,BROTLI_ENCODE:9,Z_MIN_WINDOWBITS:8,Z_MAX_WINDOWBITS:15,Z_DEFAULT_WINDOWBITS:15,Z_MIN_CHUNK:64,Z_MAX_CHUNK:1/0,Z_DEFAULT_CHUNK:16384,Z_MIN_MEMLEVEL:1,Z_MAX_MEMLEVEL:9,Z_DEFAULT_MEMLEVEL:8,Z_MIN_LEVEL:-1,Z_MAX_LEVEL:9,Z_DEFAULT_LEVEL:-1,BROTLI_OPERATION_PROCESS:0,BROTLI_OPERATION_FLUSH:1,BROTLI_OPERATION_FINISH:2,BROTLI_OPERATION_EMIT_METADATA:3,BROTLI_MODE_GENERIC:0,BROTLI_MODE_TEXT:1,BROTLI_MODE_FONT:2,BROTLI_DEFAULT_MODE:0,BROTLI_MIN_QUALITY:0,BROTLI_MAX_QUALITY:11,BROTLI_DEFAULT_QUALITY:11,BROTLI_MIN_WINDOW_BITS:10,BROTLI_MAX_WINDOW_BITS:24,BROTLI_LARGE_MAX_WINDOW_BITS:30,BROTLI_DEFAULT_WINDOW:22,BROTLI_MIN_INPUT_BLOCK_BITS:16,BROTLI_MAX_INPUT_BLOCK_BITS:24,BROTLI_PARAM_MODE:0,BROTLI_PARAM_QUALITY:1,BROTLI_PARAM_LGWIN:2,BROTLI_PARAM_LGBLOCK:3,BROTLI_PARAM_DISABLE_LITERAL_CONTEXT_MODELING:4,BROTLI_PARAM_SIZE_HINT:5,BROTLI_PARAM_LARGE_WINDOW:6,BROTLI_PARAM_NPOSTFIX:7,BROTLI_PARAM_NDIRECT:8,BROTLI_DECODER_RESULT_ERROR:0,BROTLI_DECODER_RESULT_SUCCESS:1,BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT:2,BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT:3,BROTLI_DECODER_PARAM_DISABLE_RING_BUFFER_REALLOCATION:0,BROTLI_DECODER_PARAM_LARGE_WINDOW:1,BROTLI_DECODER_NO_ERROR:0,BROTLI_DECODER_SUCCESS:1,BROTLI_DECODER_NEEDS_MORE_INPUT:2,BROTLI_DECODER_NEEDS_MORE_OUTPUT:3,BROTLI_DECODER_ERROR_FORMAT_EXUBERANT_NIBBLE:-1,BROTLI_DECODER_ERROR_FORMAT_RESERVED:-2,BROTLI_DECODER_ERROR_FORMAT_EXUBERANT_META_NIBBLE:-3,BROTLI_DECODER_ERROR_FORMAT_SIMPLE_HUFFMAN_ALPHABET:-4,BROTLI_DECODER_ERROR_FORMAT_SIMPLE_HUFFMAN_SAME:-5,BROTLI_DECODER_ERROR_FORMAT_CL_SPACE:-6,BROTLI_DECODER_ERROR_FORMAT_HUFFMAN_SPACE:-7,BROTLI_DECODER_ERROR_FORMAT_CONTEXT_MAP_REPEAT:-8,BROTLI_DECODER_ERROR_FORMAT_BLOCK_LENGTH_1:-9,BROTLI_DECODER_ERROR_FORMAT_BLOCK_LENGTH_2:-10,BROTLI_DECODER_ERROR_FORMAT_TRANSFORM:-11,BROTLI_DECODER_ERROR_FORMAT_DICTIONARY:-12,BROTLI_DECODER_ERROR_FORMAT_WINDOW_BITS:-13,BROTLI_DECODER_ERROR_FORMAT_PADDING_1:-14,BROTLI_DECODER_ERROR_FORMAT_PADDING_2:-15,BROTLI_DECODER_ERROR_FORMAT_DISTANCE:-16,BROTLI_DECODER_ERROR_DICTIONARY_NOT_SET:-19,BROTLI_DECODER_ERROR_INVALID_ARGUMENTS:-20,BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES:-21,BROTLI_DECODER_ERROR_ALLOC_TREE_GROUPS:-22,BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MAP:-25,BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_1:-26,BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_2:-27,BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES:-30,BROTLI_DECODER_ERROR_UNREACHABLE:-31},sn));var rn=external_buffer_.Buffer.concat,zs=Object.getOwnPropertyDescriptor(external_buffer_.Buffer,"concat"),nn=s=>s,Bi=zs?.writable===!0||zs?.set!==void 0?s=>{external_buffer_.Buffer.concat=s?nn:rn}:s=>{},Tt=Symbol("_superWrite"),Gt=class extends Error{code;errno;constructor(t,e){super("zlib: "+t.message,{cause:t}),this.code=t.code,this.errno=t.errno,this.code||(this.code="ZLIB_ERROR"),this.message="zlib: "+t.message,Error.captureStackTrace(this,e??this.constructor)}get name(){return"ZlibError"}},Pi=Symbol("flushFlag"),re=class extends A{#t=!1;#i=!1;#s;#n;#r;#e;#o;get sawError(){return this.#t}get handle(){return this.#e}get flushFlag(){return this.#s}constructor(t,e){if(!t||typeof t!="object")throw new TypeError("invalid options for ZlibBase constructor");if(super(t),this.#s=t.flush??0,this.#n=t.finishFlush??0,this.#r=t.fullFlushFlag??0,typeof external_zlib_namespaceObject_0[e]!="function")throw new TypeError("Compression method not supported: "+e);try{this.#e=new external_zlib_namespaceObject_0[e](t)}catch(i){throw new Gt(i,this.constructor)}this.#o=i=>{this.#t||(this.#t=!0,this.close(),this.emit("error",i))},this.#e?.on("error",i=>this.#o(new Gt(i))),this.once("end",()=>this.close)}close(){this.#e&&(this.#e.close(),this.#e=void 0,this.emit("close"))}reset(){if(!this.#t)return external_assert_(this.#e,"zlib binding closed"),this.#e.reset?.()}flush(t){this.ended||(typeof t!="number"&&(t=this.#r),this.write(Object.assign(external_buffer_.Buffer.alloc(0),{[Pi]:t})))}end(t,e,i){return typeof t=="function"&&(i=t,e=void 0,t=void 0),typeof e=="function"&&(i=e,e=void 0),t&&(e?this.write(t,e):this.write(t)),this.flush(this.#n),this.#i=!0,super.end(i)}get ended(){return this.#i}[Tt](t){return super.write(t)}write(t,e,i){if(typeof e=="function"&&(i=e,e="utf8"),typeof t=="string"&&(t=external_buffer_.Buffer.from(t,e)),this.#t)return;external_assert_(this.#e,"zlib binding closed");let r=this.#e._handle,n=r.close;r.close=()=>{};let o=this.#e.close;this.#e.close=()=>{},Bi(!0);let h;try{let l=typeof t[Pi]=="number"?t[Pi]:this.#s;h=this.#e._processChunk(t,l),Bi(!1)}catch(l){Bi(!1),this.#o(new Gt(l,this.write))}finally{this.#e&&(this.#e._handle=r,r.close=n,this.#e.close=o,this.#e.removeAllListeners("error"))}this.#e&&this.#e.on("error",l=>this.#o(new Gt(l,this.write)));let a;if(h)if(Array.isArray(h)&&h.length>0){let l=h[0];a=this[Tt](external_buffer_.Buffer.from(l));for(let c=1;c<h.length;c++)a=this[Tt](h[c])}else a=this[Tt](external_buffer_.Buffer.from(h));return i&&i(),a}},Pe=class extends re{#t;#i;constructor(t,e){t=t||{},t.flush=t.flush||M.Z_NO_FLUSH,t.finishFlush=t.finishFlush||M.Z_FINISH,t.fullFlushFlag=M.Z_FULL_FLUSH,super(t,e),this.#t=t.level,this.#i=t.strategy}params(t,e){if(!this.sawError){if(!this.handle)throw new Error("cannot switch params when binding is closed");if(!this.handle.params)throw new Error("not supported in this implementation");if(this.#t!==t||this.#i!==e){this.flush(M.Z_SYNC_FLUSH),external_assert_(this.handle,"zlib binding closed");let i=this.handle.flush;this.handle.flush=(r,n)=>{typeof r=="function"&&(n=r,r=this.flushFlag),this.flush(r),n?.()};try{this.handle.params(t,e)}finally{this.handle.flush=i}this.handle&&(this.#t=t,this.#i=e)}}}};var ze=class extends Pe{#t;constructor(t){super(t,"Gzip"),this.#t=t&&!!t.portable}[Tt](t){return this.#t?(this.#t=!1,t[9]=255,super[Tt](t)):super[Tt](t)}};var Ue=class extends Pe{constructor(t){super(t,"Unzip")}},He=class extends re{constructor(t,e){t=t||{},t.flush=t.flush||M.BROTLI_OPERATION_PROCESS,t.finishFlush=t.finishFlush||M.BROTLI_OPERATION_FINISH,t.fullFlushFlag=M.BROTLI_OPERATION_FLUSH,super(t,e)}},We=class extends He{constructor(t){super(t,"BrotliCompress")}},Ge=class extends He{constructor(t){super(t,"BrotliDecompress")}},Ze=class extends re{constructor(t,e){t=t||{},t.flush=t.flush||M.ZSTD_e_continue,t.finishFlush=t.finishFlush||M.ZSTD_e_end,t.fullFlushFlag=M.ZSTD_e_flush,super(t,e)}},Ye=class extends Ze{constructor(t){super(t,"ZstdCompress")}},Ke=class extends Ze{constructor(t){super(t,"ZstdDecompress")}};var Us=(s,t)=>{if(Number.isSafeInteger(s))s<0?an(s,t):hn(s,t);else throw Error("cannot encode number outside of javascript safe integer range");return t},hn=(s,t)=>{t[0]=128;for(var e=t.length;e>1;e--)t[e-1]=s&255,s=Math.floor(s/256)},an=(s,t)=>{t[0]=255;var e=!1;s=s*-1;for(var i=t.length;i>1;i--){var r=s&255;s=Math.floor(s/256),e?t[i-1]=Ws(r):r===0?t[i-1]=0:(e=!0,t[i-1]=Gs(r))}},Hs=s=>{let t=s[0],e=t===128?cn(s.subarray(1,s.length)):t===255?ln(s):null;if(e===null)throw Error("invalid base256 encoding");if(!Number.isSafeInteger(e))throw Error("parsed number outside of javascript safe integer range");return e},ln=s=>{for(var t=s.length,e=0,i=!1,r=t-1;r>-1;r--){var n=Number(s[r]),o;i?o=Ws(n):n===0?o=n:(i=!0,o=Gs(n)),o!==0&&(e-=o*Math.pow(256,t-r-1))}return e},cn=s=>{for(var t=s.length,e=0,i=t-1;i>-1;i--){var r=Number(s[i]);r!==0&&(e+=r*Math.pow(256,t-i-1))}return e},Ws=s=>(255^s)&255,Gs=s=>(255^s)+1&255;var Hi={};Ur(Hi,{code:()=>Ve,isCode:()=>ne,isName:()=>dn,name:()=>oe,normalFsTypes:()=>Ui});var ne=s=>oe.has(s),dn=s=>Ve.has(s),Ui=new Set(["0","","1","2","3","4","5","6","7","D"]),oe=new Map([["0","File"],["","OldFile"],["1","Link"],["2","SymbolicLink"],["3","CharacterDevice"],["4","BlockDevice"],["5","Directory"],["6","FIFO"],["7","ContiguousFile"],["g","GlobalExtendedHeader"],["x","ExtendedHeader"],["A","SolarisACL"],["D","GNUDumpDir"],["I","Inode"],["K","NextFileHasLongLinkpath"],["L","NextFileHasLongPath"],["M","ContinuationFile"],["N","OldGnuLongPath"],["S","SparseFile"],["V","TapeVolumeHeader"],["X","OldExtendedHeader"]]),Ve=new Map(Array.from(oe).map(s=>[s[1],s[0]]));var un=s=>s===void 0||s<0?void 0:s,F=class{cksumValid=!1;needPax=!1;nullBlock=!1;block;path;mode;uid;gid;size;cksum;#t="Unsupported";linkpath;uname;gname;devmaj=0;devmin=0;atime;ctime;mtime;charset;comment;constructor(t,e=0,i,r){Buffer.isBuffer(t)?this.decode(t,e||0,i,r):t&&this.#i(t)}decode(t,e,i,r){if(e||(e=0),!t||!(t.length>=e+512))throw new Error("need 512 bytes for header");let n=xt(t,e+156,1),o=Ui.has(n),h=o?i:void 0,a=o?r:void 0;if(this.path=h?.path??xt(t,e,100),this.mode=h?.mode??a?.mode??lt(t,e+100,8),this.uid=h?.uid??a?.uid??lt(t,e+108,8),this.gid=h?.gid??a?.gid??lt(t,e+116,8),this.size=un(h?.size??a?.size??lt(t,e+124,12)),this.mtime=h?.mtime??a?.mtime??Wi(t,e+136,12),this.cksum=lt(t,e+148,12),a&&this.#i(a,!0),h&&this.#i(h),ne(n)&&(this.#t=n||"0"),this.#t==="0"&&this.path.slice(-1)==="/"&&(this.#t="5"),this.#t==="5"&&(this.size=0),this.linkpath=xt(t,e+157,100),t.subarray(e+257,e+265).toString()==="ustar\x0000")if(this.uname=h?.uname??a?.uname??xt(t,e+265,32),this.gname=h?.gname??a?.gname??xt(t,e+297,32),this.devmaj=h?.devmaj??a?.devmaj??lt(t,e+329,8)??0,this.devmin=h?.devmin??a?.devmin??lt(t,e+337,8)??0,t[e+475]!==0){let c=xt(t,e+345,155);this.path=c+"/"+this.path}else{let c=xt(t,e+345,130);c&&(this.path=c+"/"+this.path),this.atime=i?.atime??r?.atime??Wi(t,e+476,12),this.ctime=i?.ctime??r?.ctime??Wi(t,e+488,12)}let l=256;for(let c=e;c<e+148;c++)l+=t[c];for(let c=e+156;c<e+512;c++)l+=t[c];this.cksumValid=l===this.cksum,this.cksum===void 0&&l===256&&(this.nullBlock=!0)}#i(t,e=!1){Object.assign(this,Object.fromEntries(Object.entries(t).filter(([i,r])=>!(r==null||i==="size"&&Number(r)<0||i==="path"&&e||i==="linkpath"&&e||i==="global"))))}encode(t,e=0){if(t||(t=this.block=Buffer.alloc(512)),this.#t==="Unsupported"&&(this.#t="0"),!(t.length>=e+512))throw new Error("need 512 bytes for header");let i=this.ctime||this.atime?130:155,r=mn(this.path||"",i),n=r[0],o=r[1];this.needPax=!!r[2],this.needPax=Lt(t,e,100,n)||this.needPax,this.needPax=ct(t,e+100,8,this.mode)||this.needPax,this.needPax=ct(t,e+108,8,this.uid)||this.needPax,this.needPax=ct(t,e+116,8,this.gid)||this.needPax,this.needPax=ct(t,e+124,12,this.size)||this.needPax,this.needPax=Gi(t,e+136,12,this.mtime)||this.needPax,t[e+156]=Number(this.#t.codePointAt(0)),this.needPax=Lt(t,e+157,100,this.linkpath)||this.needPax,t.write("ustar\x0000",e+257,8),this.needPax=Lt(t,e+265,32,this.uname)||this.needPax,this.needPax=Lt(t,e+297,32,this.gname)||this.needPax,this.needPax=ct(t,e+329,8,this.devmaj)||this.needPax,this.needPax=ct(t,e+337,8,this.devmin)||this.needPax,this.needPax=Lt(t,e+345,i,o)||this.needPax,t[e+475]!==0?this.needPax=Lt(t,e+345,155,o)||this.needPax:(this.needPax=Lt(t,e+345,130,o)||this.needPax,this.needPax=Gi(t,e+476,12,this.atime)||this.needPax,this.needPax=Gi(t,e+488,12,this.ctime)||this.needPax);let h=256;for(let a=e;a<e+148;a++)h+=t[a];for(let a=e+156;a<e+512;a++)h+=t[a];return this.cksum=h,ct(t,e+148,8,this.cksum),this.cksumValid=!0,this.needPax}get type(){return this.#t==="Unsupported"?this.#t:oe.get(this.#t)}get typeKey(){return this.#t}set type(t){let e=String(Ve.get(t));if(ne(e)||e==="Unsupported")this.#t=e;else if(ne(t))this.#t=t;else throw new TypeError("invalid entry type: "+t)}},mn=(s,t)=>{let i=s,r="",n,o=external_node_path_.posix.parse(s).root||".";if(Buffer.byteLength(i)<100)n=[i,r,!1];else{r=external_node_path_.posix.dirname(i),i=external_node_path_.posix.basename(i);do Buffer.byteLength(i)<=100&&Buffer.byteLength(r)<=t?n=[i,r,!1]:Buffer.byteLength(i)>100&&Buffer.byteLength(r)<=t?n=[i.slice(0,99),r,!0]:(i=external_node_path_.posix.join(external_node_path_.posix.basename(r),i),r=external_node_path_.posix.dirname(r));while(r!==o&&n===void 0);n||(n=[s.slice(0,99),"",!0])}return n},xt=(s,t,e)=>s.subarray(t,t+e).toString("utf8").replace(/\0.*/,""),Wi=(s,t,e)=>pn(lt(s,t,e)),pn=s=>s===void 0?void 0:new Date(s*1e3),lt=(s,t,e)=>Number(s[t])&128?Hs(s.subarray(t,t+e)):wn(s,t,e),En=s=>isNaN(s)?void 0:s,wn=(s,t,e)=>En(parseInt(s.subarray(t,t+e).toString("utf8").replace(/\0.*$/,"").trim(),8)),Sn={12:8589934591,8:2097151},ct=(s,t,e,i)=>i===void 0?!1:i>Sn[e]||i<0?(Us(i,s.subarray(t,t+e)),!0):(yn(s,t,e,i),!1),yn=(s,t,e,i)=>s.write(Rn(i,e),t,e,"ascii"),Rn=(s,t)=>gn(Math.floor(s).toString(8),t),gn=(s,t)=>(s.length===t-1?s:new Array(t-s.length-1).join("0")+s+" ")+"\0",Gi=(s,t,e,i)=>i===void 0?!1:ct(s,t,e,i.getTime()/1e3),bn=new Array(156).join("\0"),Lt=(s,t,e,i)=>i===void 0?!1:(s.write(i+bn,t,e,"utf8"),i.length!==Buffer.byteLength(i)||i.length>e);var ft=class s{atime;mtime;ctime;charset;comment;gid;uid;gname;uname;linkpath;dev;ino;nlink;path;size;mode;global;constructor(t,e=!1){this.atime=t.atime,this.charset=t.charset,this.comment=t.comment,this.ctime=t.ctime,this.dev=t.dev,this.gid=t.gid,this.global=e,this.gname=t.gname,this.ino=t.ino,this.linkpath=t.linkpath,this.mtime=t.mtime,this.nlink=t.nlink,this.path=t.path,this.size=t.size,this.uid=t.uid,this.uname=t.uname}encode(){let t=this.encodeBody();if(t==="")return Buffer.allocUnsafe(0);let e=Buffer.byteLength(t),i=512*Math.ceil(1+e/512),r=Buffer.allocUnsafe(i);for(let n=0;n<512;n++)r[n]=0;new F({path:("PaxHeader/"+(0,external_node_path_.basename)(this.path??"")).slice(0,99),mode:this.mode||420,uid:this.uid,gid:this.gid,size:e,mtime:this.mtime,type:this.global?"GlobalExtendedHeader":"ExtendedHeader",linkpath:"",uname:this.uname||"",gname:this.gname||"",devmaj:0,devmin:0,atime:this.atime,ctime:this.ctime}).encode(r),r.write(t,512,e,"utf8");for(let n=e+512;n<r.length;n++)r[n]=0;return r}encodeBody(){return this.encodeField("path")+this.encodeField("ctime")+this.encodeField("atime")+this.encodeField("dev")+this.encodeField("ino")+this.encodeField("nlink")+this.encodeField("charset")+this.encodeField("comment")+this.encodeField("gid")+this.encodeField("gname")+this.encodeField("linkpath")+this.encodeField("mtime")+this.encodeField("size")+this.encodeField("uid")+this.encodeField("uname")}encodeField(t){if(this[t]===void 0)return"";let e=this[t],i=e instanceof Date?e.getTime()/1e3:e,r=" "+(t==="dev"||t==="ino"||t==="nlink"?"SCHILY.":"")+t+"="+i+`
`,n=Buffer.byteLength(r),o=Math.floor(Math.log(n)/Math.log(10))+1;return n+o>=Math.pow(10,o)&&(o+=1),o+n+r}static parse(t,e,i=!1){return new s(On(Tn(t),e),i)}},On=(s,t)=>t?Object.assign({},t,s):s,Tn=s=>s.replace(/\n$/,"").split(`
`).reduce(xn,Object.create(null)),xn=(s,t)=>{let e=parseInt(t,10);if(e!==Buffer.byteLength(t)+1)return s;t=t.slice((e+" ").length);let i=t.split("="),r=i.shift();if(!r)return s;let n=r.replace(/^SCHILY\.(dev|ino|nlink)/,"$1"),o=i.join("=").replace(/\0.*/,"");switch(n){case"path":case"linkpath":case"type":case"charset":case"comment":case"gname":case"uname":s[n]=o;break;case"ctime":case"atime":case"mtime":s[n]=new Date(Number(o)*1e3);break;case"size":let h=+o;h>=0&&(s[n]=h);break;case"gid":case"uid":case"dev":case"ino":case"nlink":case"mode":s[n]=+o;break}return s};var Ln=process.env.TESTING_TAR_FAKE_PLATFORM||process.platform,f=Ln!=="win32"?s=>String(s):s=>String(s).replaceAll(/\\/g,"/");var $e=class extends A{extended;globalExtended;header;startBlockSize;blockRemain;remain;type;meta=!1;ignore=!1;path;mode;uid;gid;uname;gname;size=0;mtime;atime;ctime;linkpath;dev;ino;nlink;invalid=!1;absolute;unsupported=!1;constructor(t,e,i){switch(super({}),this.pause(),this.extended=e,this.globalExtended=i,this.header=t,this.remain=t.size??0,this.startBlockSize=512*Math.ceil(this.remain/512),this.blockRemain=this.startBlockSize,this.type=t.type,this.type){case"File":case"OldFile":case"Link":case"SymbolicLink":case"CharacterDevice":case"BlockDevice":case"Directory":case"FIFO":case"ContiguousFile":case"GNUDumpDir":break;case"NextFileHasLongLinkpath":case"NextFileHasLongPath":case"OldGnuLongPath":case"GlobalExtendedHeader":case"ExtendedHeader":case"OldExtendedHeader":this.meta=!0;break;default:this.ignore=!0}if(!t.path)throw new Error("no path provided for tar.ReadEntry");this.path=f(t.path),this.mode=t.mode,this.mode&&(this.mode=this.mode&4095),this.uid=t.uid,this.gid=t.gid,this.uname=t.uname,this.gname=t.gname,this.size=this.remain,this.mtime=t.mtime,this.atime=t.atime,this.ctime=t.ctime,this.linkpath=t.linkpath?f(t.linkpath):void 0,this.uname=t.uname,this.gname=t.gname,e&&this.#t(e),i&&this.#t(i,!0)}write(t){let e=t.length;if(e>this.blockRemain)throw new Error("writing more to entry than is appropriate");let i=this.remain,r=this.blockRemain;return this.remain=Math.max(0,i-e),this.blockRemain=Math.max(0,r-e),this.ignore?!0:i>=e?super.write(t):super.write(t.subarray(0,i))}#t(t,e=!1){t.path&&(t.path=f(t.path)),t.linkpath&&(t.linkpath=f(t.linkpath)),Object.assign(this,Object.fromEntries(Object.entries(t).filter(([i,r])=>!(r==null||i==="path"&&e))))}};var Dt=(s,t,e,i={})=>{s.file&&(i.file=s.file),s.cwd&&(i.cwd=s.cwd),i.code=e instanceof Error&&e.code||t,i.tarCode=t,!s.strict&&i.recoverable!==!1?(e instanceof Error&&(i=Object.assign(e,i),e=e.message),s.emit("warn",t,e,i)):e instanceof Error?s.emit("error",Object.assign(e,i)):s.emit("error",Object.assign(new Error(`${t}: ${e}`),i))};var Nn=1024*1024,Xi=Buffer.from([31,139]),qi=Buffer.from([40,181,47,253]),An=Math.max(Xi.length,qi.length),B=Symbol("state"),Nt=Symbol("writeEntry"),it=Symbol("readEntry"),Zi=Symbol("nextEntry"),Zs=Symbol("processEntry"),V=Symbol("extendedHeader"),he=Symbol("globalExtendedHeader"),dt=Symbol("meta"),Ys=Symbol("emitMeta"),p=Symbol("buffer"),st=Symbol("queue"),ut=Symbol("ended"),Yi=Symbol("emittedEnd"),At=Symbol("emit"),w=Symbol("unzip"),Xe=Symbol("consumeChunk"),qe=Symbol("consumeChunkSub"),Ki=Symbol("consumeBody"),Ks=Symbol("consumeMeta"),Vs=Symbol("consumeHeader"),ae=Symbol("consuming"),Vi=Symbol("bufferConcat"),Qe=Symbol("maybeEnd"),Yt=Symbol("writing"),$=Symbol("aborted"),Je=Symbol("onDone"),It=Symbol("sawValidEntry"),je=Symbol("sawNullBlock"),ti=Symbol("sawEOF"),$s=Symbol("closeStream"),In=1e3,le=Symbol("compressedBytesRead"),$i=Symbol("decompressedBytesRead"),Xs=Symbol("checkDecompressionRatio"),Cn=()=>!0,rt=class extends external_events_.EventEmitter{file;strict;maxMetaEntrySize;filter;brotli;zstd;maxDecompressionRatio;writable=!0;readable=!1;[st]=[];[p];[it];[Nt];[B]="begin";[dt]="";[V];[he];[ut]=!1;[w];[$]=!1;[It];[je]=!1;[ti]=!1;[Yt]=!1;[ae]=!1;[Yi]=!1;[le]=0;[$i]=0;constructor(t={}){super(),this.file=t.file||"",this.on(Je,()=>{(this[B]==="begin"||this[It]===!1)&&this.warn("TAR_BAD_ARCHIVE","Unrecognized archive format")}),t.ondone?this.on(Je,t.ondone):this.on(Je,()=>{this.emit("prefinish"),this.emit("finish"),this.emit("end")}),this.strict=!!t.strict,this.maxDecompressionRatio=typeof t.maxDecompressionRatio=="number"?t.maxDecompressionRatio:In,this.maxMetaEntrySize=t.maxMetaEntrySize||Nn,this.filter=typeof t.filter=="function"?t.filter:Cn;let e=t.file&&(t.file.endsWith(".tar.br")||t.file.endsWith(".tbr"));this.brotli=!(t.gzip||t.zstd)&&t.brotli!==void 0?t.brotli:e?void 0:!1;let i=t.file&&(t.file.endsWith(".tar.zst")||t.file.endsWith(".tzst"));this.zstd=!(t.gzip||t.brotli)&&t.zstd!==void 0?t.zstd:i?!0:void 0,this.on("end",()=>this[$s]()),typeof t.onwarn=="function"&&this.on("warn",t.onwarn),typeof t.onReadEntry=="function"&&this.on("entry",t.onReadEntry)}warn(t,e,i={}){Dt(this,t,e,i)}[Vs](t,e){this[It]===void 0&&(this[It]=!1);let i;try{i=new F(t,e,this[V],this[he])}catch(r){return this.warn("TAR_ENTRY_INVALID",r)}if(i.nullBlock)this[je]?(this[ti]=!0,this[B]==="begin"&&(this[B]="header"),this[At]("eof")):(this[je]=!0,this[At]("nullBlock"));else if(this[je]=!1,!i.cksumValid)this.warn("TAR_ENTRY_INVALID","checksum failure",{header:i});else if(!i.path)this.warn("TAR_ENTRY_INVALID","path is required",{header:i});else{let r=i.type;if(/^(Symbolic)?Link$/.test(r)&&!i.linkpath)this.warn("TAR_ENTRY_INVALID","linkpath required",{header:i});else if(!/^(Symbolic)?Link$/.test(r)&&!/^(Global)?ExtendedHeader$/.test(r)&&i.linkpath)this.warn("TAR_ENTRY_INVALID","linkpath forbidden",{header:i});else{let n=this[Nt]=new $e(i,this[V],this[he]);if(!this[It])if(n.remain){let o=()=>{n.invalid||(this[It]=!0)};n.on("end",o)}else this[It]=!0;n.meta?n.size>this.maxMetaEntrySize?(n.ignore=!0,this[At]("ignoredEntry",n),this[B]="ignore",n.resume()):n.size>0&&(this[dt]="",n.on("data",o=>this[dt]+=o),this[B]="meta"):(this[V]=void 0,n.ignore=n.ignore||!this.filter(n.path,n),n.ignore?(this[At]("ignoredEntry",n),this[B]=n.remain?"ignore":"header",n.resume()):(n.remain?this[B]="body":(this[B]="header",n.end()),this[it]?this[st].push(n):(this[st].push(n),this[Zi]())))}}}[$s](){queueMicrotask(()=>this.emit("close"))}[Zs](t){let e=!0;if(!t)this[it]=void 0,e=!1;else if(Array.isArray(t)){let[i,...r]=t;this.emit(i,...r)}else this[it]=t,this.emit("entry",t),t.emittedEnd||(t.on("end",()=>this[Zi]()),e=!1);return e}[Zi](){do;while(this[Zs](this[st].shift()));if(this[st].length===0){let t=this[it];!t||t.flowing||t.size===t.remain?this[Yt]||this.emit("drain"):t.once("drain",()=>this.emit("drain"))}}[Ki](t,e){let i=this[Nt];if(!i)throw new Error("attempt to consume body without entry??");let r=i.blockRemain??0,n=r>=t.length&&e===0?t:t.subarray(e,e+r);return i.write(n),i.blockRemain||(this[B]="header",this[Nt]=void 0,i.end()),n.length}[Ks](t,e){let i=this[Nt],r=this[Ki](t,e);return!this[Nt]&&i&&this[Ys](i),r}[At](t,e,i){this[st].length===0&&!this[it]?this.emit(t,e,i):this[st].push([t,e,i])}[Ys](t){switch(this[At]("meta",this[dt]),t.type){case"ExtendedHeader":case"OldExtendedHeader":this[V]=ft.parse(this[dt],this[V],!1);break;case"GlobalExtendedHeader":this[he]=ft.parse(this[dt],this[he],!0);break;case"NextFileHasLongPath":case"OldGnuLongPath":{let e=this[V]??Object.create(null);this[V]=e,e.path=this[dt].replace(/\0.*/,"");break}case"NextFileHasLongLinkpath":{let e=this[V]||Object.create(null);this[V]=e,e.linkpath=this[dt].replace(/\0.*/,"");break}default:throw new Error("unknown meta: "+t.type)}}abort(t){if(!this[$]){if(this[w]){let e=this[w];e.write=()=>!0,e.end=()=>e,e.emit=()=>!1,e.destroy?.()}this[$]=!0,this.emit("abort",t),this.warn("TAR_ABORT",t,{recoverable:!1})}}[Xs](t){this[$i]+=t.length;let e=this[$i]/this[le];return e>this.maxDecompressionRatio?(this.abort(new Error(`max decompression ratio exceeded: ${e.toFixed(2)} > ${this.maxDecompressionRatio}`)),!1):!0}write(t,e,i){if(typeof e=="function"&&(i=e,e=void 0),typeof t=="string"&&(t=Buffer.from(t,typeof e=="string"?e:"utf8")),this[$])return i?.(),!1;if((this[w]===void 0||this.brotli===void 0&&this[w]===!1)&&t){if(this[p]&&(t=Buffer.concat([this[p],t]),this[p]=void 0),t.length<An)return this[p]=t,i?.(),!0;for(let a=0;this[w]===void 0&&a<Xi.length;a++)t[a]!==Xi[a]&&(this[w]=!1);let o=!1;if(this[w]===!1&&this.zstd!==!1){o=!0;for(let a=0;a<qi.length;a++)if(t[a]!==qi[a]){o=!1;break}}let h=this.brotli===void 0&&!o;if(this[w]===!1&&h)if(t.length<512)if(this[ut])this.brotli=!0;else return this[p]=t,i?.(),!0;else try{new F(t.subarray(0,512)),this.brotli=!1}catch{this.brotli=!0}if(this[w]===void 0||this[w]===!1&&(this.brotli||o)){let a=this[ut];this[ut]=!1,this[w]=this[w]===void 0?new Ue({}):o?new Ke({}):new Ge({}),this[w].on("data",c=>{this[Xs](c)&&this[Xe](c)}),this[w].on("error",c=>{this[$]||this.abort(c)}),this[w].on("end",()=>{this[ut]=!0,this[Xe]()}),this[Yt]=!0,this[le]+=t.length;let l=!!this[w][a?"end":"write"](t);return this[Yt]=!1,i?.(),l}}this[Yt]=!0,this[w]?(this[le]+=t.length,this[w].write(t)):this[Xe](t),this[Yt]=!1;let n=this[st].length>0?!1:this[it]?this[it].flowing:!0;return!n&&this[st].length===0&&this[it]?.once("drain",()=>this.emit("drain")),i?.(),n}[Vi](t){t&&!this[$]&&(this[p]=this[p]?Buffer.concat([this[p],t]):t)}[Qe](){if(this[ut]&&!this[Yi]&&!this[$]&&!this[ae]){this[Yi]=!0;let t=this[Nt];if(t?.blockRemain){let e=this[p]?this[p].length:0;this.warn("TAR_BAD_ARCHIVE",`Truncated input (needed ${t.blockRemain} more bytes, only ${e} available)`,{entry:t}),this[p]&&t.write(this[p]),t.end()}this[At](Je)}}[Xe](t){if(this[ae]&&t)this[Vi](t);else if(!t&&!this[p])this[Qe]();else if(t){if(this[ae]=!0,this[p]){this[Vi](t);let e=this[p];this[p]=void 0,this[qe](e)}else this[qe](t);for(;this[p]&&this[p]?.length>=512&&!this[$]&&!this[ti];){let e=this[p];this[p]=void 0,this[qe](e)}this[ae]=!1}(!this[p]||this[ut])&&this[Qe]()}[qe](t){let e=0,i=t.length;for(;e+512<=i&&!this[$]&&!this[ti];)switch(this[B]){case"begin":case"header":this[Vs](t,e),e+=512;break;case"ignore":case"body":e+=this[Ki](t,e);break;case"meta":e+=this[Ks](t,e);break;default:throw new Error("invalid state: "+this[B])}e<i&&(this[p]=this[p]?Buffer.concat([t.subarray(e),this[p]]):t.subarray(e))}end(t,e,i){return typeof t=="function"&&(i=t,e=void 0,t=void 0),typeof e=="function"&&(i=e,e=void 0),typeof t=="string"&&(t=Buffer.from(t,e)),i&&this.once("finish",i),this[$]||(this[w]?(t&&(this[le]+=t.length,this[w].write(t)),this[w].end()):(this[ut]=!0,(this.brotli===void 0||this.zstd===void 0)&&(t=t||Buffer.alloc(0)),t&&this.write(t),this[Qe]())),this}};var mt=s=>{let t=s.length-1,e=-1;for(;t>-1&&s.charAt(t)==="/";)e=t,t--;return e===-1?s:s.slice(0,e)};var vn=s=>{let t=s.onReadEntry;s.onReadEntry=t?e=>{t(e),e.resume()}:e=>e.resume()},Qi=(s,t)=>{let e=new Map(t.map(o=>[mt(o),!0])),i=s.filter,r=100,n=(o,h="",a=0)=>{if(a>=r)return e.set(o,!1),!1;let l=h||(0,external_path_.parse)(o).root||".",c;if(o===l)c=!1;else{let d=e.get(o);c=d!==void 0?d:n((0,external_path_.dirname)(o),l,a+1)}return e.set(o,c),c};s.filter=i?(o,h)=>i(o,h)&&n(mt(o)):o=>n(mt(o))},Mn=s=>{let t=new rt(s),e=s.file,i;try{i=external_node_fs_.openSync(e,"r");let r=external_node_fs_.fstatSync(i),n=s.maxReadSize||16*1024*1024;if(r.size<n){let o=Buffer.allocUnsafe(r.size),h=external_node_fs_.readSync(i,o,0,r.size,0);t.end(h===o.byteLength?o:o.subarray(0,h))}else{let o=0,h=Buffer.allocUnsafe(n);for(;o<r.size;){let a=external_node_fs_.readSync(i,h,0,n,o);if(a===0)break;o+=a,t.write(h.subarray(0,a))}t.end()}}finally{if(typeof i=="number")try{external_node_fs_.closeSync(i)}catch{}}},Bn=(s,t)=>{let e=new rt(s),i=s.maxReadSize||16*1024*1024,r=s.file;return new Promise((o,h)=>{e.on("error",h),e.on("end",o),external_node_fs_.stat(r,(a,l)=>{if(a)h(a);else{let c=new _t(r,{readSize:i,size:l.size});c.on("error",h),c.pipe(e)}})})},Ct=K(Mn,Bn,s=>new rt(s),s=>new rt(s),(s,t)=>{t?.length&&Qi(s,t),s.noResume||vn(s)});var Ji=(s,t,e)=>(s&=4095,e&&(s=(s|384)&-19),t&&(s&256&&(s|=64),s&32&&(s|=8),s&4&&(s|=1)),s);var{isAbsolute:zn,parse:qs}=external_node_path_.win32,ce=s=>{let t="",e=qs(s);for(;zn(s)||e.root;){let i=s.charAt(0)==="/"&&s.slice(0,4)!=="//?/"?"/":e.root;s=s.slice(i.length),t+=i,e=qs(s)}return[t,s]};var ei=["|","<",">","?",":"],ji=ei.map(s=>String.fromCodePoint(61440+Number(s.codePointAt(0)))),Un=new Map(ei.map((s,t)=>[s,ji[t]])),Hn=new Map(ji.map((s,t)=>[s,ei[t]])),ts=s=>ei.reduce((t,e)=>t.split(e).join(Un.get(e)),s),Qs=s=>ji.reduce((t,e)=>t.split(e).join(Hn.get(e)),s);var rr=(s,t)=>t?(s=f(s).replace(/^\.(\/|$)/,""),mt(t)+"/"+s):f(s),Wn=16*1024*1024,tr=Symbol("process"),er=Symbol("file"),ir=Symbol("directory"),is=Symbol("symlink"),sr=Symbol("hardlink"),fe=Symbol("header"),ii=Symbol("read"),ss=Symbol("lstat"),si=Symbol("onlstat"),rs=Symbol("onread"),ns=Symbol("onreadlink"),os=Symbol("openfile"),hs=Symbol("onopenfile"),pt=Symbol("close"),ri=Symbol("mode"),as=Symbol("awaitDrain"),es=Symbol("ondrain"),q=Symbol("prefix"),de=class extends A{path;portable;myuid=process.getuid&&process.getuid()||0;myuser=process.env.USER||"";maxReadSize;linkCache;statCache;preservePaths;cwd;strict;mtime;noPax;noMtime;prefix;fd;blockLen=0;blockRemain=0;buf;pos=0;remain=0;length=0;offset=0;win32;absolute;header;type;linkpath;stat;onWriteEntry;#t=!1;constructor(t,e={}){let i=se(e);super(),this.path=f(t),this.portable=!!i.portable,this.maxReadSize=i.maxReadSize||Wn,this.linkCache=i.linkCache||new Map,this.statCache=i.statCache||new Map,this.preservePaths=!!i.preservePaths,this.cwd=f(i.cwd||process.cwd()),this.strict=!!i.strict,this.noPax=!!i.noPax,this.noMtime=!!i.noMtime,this.mtime=i.mtime,this.prefix=i.prefix?f(i.prefix):void 0,this.onWriteEntry=i.onWriteEntry,typeof i.onwarn=="function"&&this.on("warn",i.onwarn);let r=!1;if(!this.preservePaths){let[o,h]=ce(this.path);o&&typeof h=="string"&&(this.path=h,r=o)}this.win32=!!i.win32||process.platform==="win32",this.win32&&(this.path=Qs(this.path.replaceAll(/\\/g,"/")),t=t.replaceAll(/\\/g,"/")),this.absolute=f(i.absolute||external_path_.resolve(this.cwd,t)),this.path===""&&(this.path="./"),r&&this.warn("TAR_ENTRY_INFO",`stripping ${r} from absolute path`,{entry:this,path:r+this.path});let n=this.statCache.get(this.absolute);n?this[si](n):this[ss]()}warn(t,e,i={}){return Dt(this,t,e,i)}emit(t,...e){return t==="error"&&(this.#t=!0),super.emit(t,...e)}[ss](){external_fs_.lstat(this.absolute,(t,e)=>{if(t)return this.emit("error",t);this[si](e)})}[si](t){this.statCache.set(this.absolute,t),this.stat=t,t.isFile()||(t.size=0),this.type=Gn(t),this.emit("stat",t),this[tr]()}[tr](){switch(this.type){case"File":return this[er]();case"Directory":return this[ir]();case"SymbolicLink":return this[is]();default:return this.end()}}[ri](t){return Ji(t,this.type==="Directory",this.portable)}[q](t){return rr(t,this.prefix)}[fe](){if(!this.stat)throw new Error("cannot write header before stat");this.type==="Directory"&&this.portable&&(this.noMtime=!0),this.onWriteEntry?.(this),this.header=new F({path:this[q](this.path),linkpath:this.type==="Link"&&this.linkpath!==void 0?this[q](this.linkpath):this.linkpath,mode:this[ri](this.stat.mode),uid:this.portable?void 0:this.stat.uid,gid:this.portable?void 0:this.stat.gid,size:this.stat.size,mtime:this.noMtime?void 0:this.mtime||this.stat.mtime,type:this.type==="Unsupported"?void 0:this.type,uname:this.portable?void 0:this.stat.uid===this.myuid?this.myuser:"",atime:this.portable?void 0:this.stat.atime,ctime:this.portable?void 0:this.stat.ctime}),this.header.encode()&&!this.noPax&&super.write(new ft({atime:this.portable?void 0:this.header.atime,ctime:this.portable?void 0:this.header.ctime,gid:this.portable?void 0:this.header.gid,mtime:this.noMtime?void 0:this.mtime||this.header.mtime,path:this[q](this.path),linkpath:this.type==="Link"&&this.linkpath!==void 0?this[q](this.linkpath):this.linkpath,size:this.header.size,uid:this.portable?void 0:this.header.uid,uname:this.portable?void 0:this.header.uname,dev:this.portable?void 0:this.stat.dev,ino:this.portable?void 0:this.stat.ino,nlink:this.portable?void 0:this.stat.nlink}).encode());let t=this.header?.block;if(!t)throw new Error("failed to encode header");super.write(t)}[ir](){if(!this.stat)throw new Error("cannot create directory entry without stat");this.path.slice(-1)!=="/"&&(this.path+="/"),this.stat.size=0,this[fe](),this.end()}[is](){external_fs_.readlink(this.absolute,(t,e)=>{if(t)return this.emit("error",t);this[ns](e)})}[ns](t){this.linkpath=f(t),this[fe](),this.end()}[sr](t){if(!this.stat)throw new Error("cannot create link entry without stat");this.type="Link",this.linkpath=f(external_path_.relative(this.cwd,t)),this.stat.size=0,this[fe](),this.end()}[er](){if(!this.stat)throw new Error("cannot create file entry without stat");if(this.stat.nlink>1){let t=`${this.stat.dev}:${this.stat.ino}`,e=this.linkCache.get(t);if(e?.indexOf(this.cwd)===0)return this[sr](e);this.linkCache.set(t,this.absolute)}if(this[fe](),this.stat.size===0)return this.end();this[os]()}[os](){external_fs_.open(this.absolute,"r",(t,e)=>{if(t)return this.emit("error",t);this[hs](e)})}[hs](t){if(this.fd=t,this.#t)return this[pt]();if(!this.stat)throw new Error("should stat before calling onopenfile");this.blockLen=512*Math.ceil(this.stat.size/512),this.blockRemain=this.blockLen;let e=Math.min(this.blockLen,this.maxReadSize);this.buf=Buffer.allocUnsafe(e),this.offset=0,this.pos=0,this.remain=this.stat.size,this.length=this.buf.length,this[ii]()}[ii](){let{fd:t,buf:e,offset:i,length:r,pos:n}=this;if(t===void 0||e===void 0)throw new Error("cannot read file without first opening");external_fs_.read(t,e,i,r,n,(o,h)=>{if(o)return this[pt](()=>this.emit("error",o));this[rs](h)})}[pt](t=()=>{}){this.fd!==void 0&&external_fs_.close(this.fd,t)}[rs](t){if(t<=0&&this.remain>0){let r=Object.assign(new Error("encountered unexpected EOF"),{path:this.absolute,syscall:"read",code:"EOF"});return this[pt](()=>this.emit("error",r))}if(t>this.remain){let r=Object.assign(new Error("did not encounter expected EOF"),{path:this.absolute,syscall:"read",code:"EOF"});return this[pt](()=>this.emit("error",r))}if(!this.buf)throw new Error("should have created buffer prior to reading");if(t===this.remain)for(let r=t;r<this.length&&t<this.blockRemain;r++)this.buf[r+this.offset]=0,t++,this.remain++;let e=this.offset===0&&t===this.buf.length?this.buf:this.buf.subarray(this.offset,this.offset+t);this.write(e)?this[es]():this[as](()=>this[es]())}[as](t){this.once("drain",t)}write(t,e,i){if(typeof e=="function"&&(i=e,e=void 0),typeof t=="string"&&(t=Buffer.from(t,typeof e=="string"?e:"utf8")),this.blockRemain<t.length){let r=Object.assign(new Error("writing more data than expected"),{path:this.absolute});return this.emit("error",r)}return this.remain-=t.length,this.blockRemain-=t.length,this.pos+=t.length,this.offset+=t.length,super.write(t,null,i)}[es](){if(!this.remain)return this.blockRemain&&super.write(Buffer.alloc(this.blockRemain)),this[pt](t=>t?this.emit("error",t):this.end());if(!this.buf)throw new Error("buffer lost somehow in ONDRAIN");this.offset>=this.length&&(this.buf=Buffer.allocUnsafe(Math.min(this.blockRemain,this.buf.length)),this.offset=0),this.length=this.buf.length-this.offset,this[ii]()}},ni=class extends de{sync=!0;[ss](){this[si](external_fs_.lstatSync(this.absolute))}[is](){this[ns](external_fs_.readlinkSync(this.absolute))}[os](){this[hs](external_fs_.openSync(this.absolute,"r"))}[ii](){let t=!0;try{let{fd:e,buf:i,offset:r,length:n,pos:o}=this;if(e===void 0||i===void 0)throw new Error("fd and buf must be set in READ method");let h=external_fs_.readSync(e,i,r,n,o);this[rs](h),t=!1}finally{if(t)try{this[pt](()=>{})}catch{}}}[as](t){t()}[pt](t=()=>{}){this.fd!==void 0&&external_fs_.closeSync(this.fd),t()}},oi=class extends A{blockLen=0;blockRemain=0;buf=0;pos=0;remain=0;length=0;preservePaths;portable;strict;noPax;noMtime;readEntry;type;prefix;path;mode;uid;gid;uname;gname;header;mtime;atime;ctime;linkpath;size;onWriteEntry;warn(t,e,i={}){return Dt(this,t,e,i)}constructor(t,e={}){let i=se(e);super(),this.preservePaths=!!i.preservePaths,this.portable=!!i.portable,this.strict=!!i.strict,this.noPax=!!i.noPax,this.noMtime=!!i.noMtime,this.onWriteEntry=i.onWriteEntry,this.readEntry=t;let{type:r}=t;if(r==="Unsupported")throw new Error("writing entry that should be ignored");this.type=r,this.type==="Directory"&&this.portable&&(this.noMtime=!0),this.prefix=i.prefix,this.path=f(t.path),this.mode=t.mode!==void 0?this[ri](t.mode):void 0,this.uid=this.portable?void 0:t.uid,this.gid=this.portable?void 0:t.gid,this.uname=this.portable?void 0:t.uname,this.gname=this.portable?void 0:t.gname,this.size=t.size,this.mtime=this.noMtime?void 0:i.mtime||t.mtime,this.atime=this.portable?void 0:t.atime,this.ctime=this.portable?void 0:t.ctime,this.linkpath=t.linkpath!==void 0?f(t.linkpath):void 0,typeof i.onwarn=="function"&&this.on("warn",i.onwarn);let n=!1;if(!this.preservePaths){let[h,a]=ce(this.path);h&&typeof a=="string"&&(this.path=a,n=h)}this.remain=t.size,this.blockRemain=t.startBlockSize,this.onWriteEntry?.(this),this.header=new F({path:this[q](this.path),linkpath:this.type==="Link"&&this.linkpath!==void 0?this[q](this.linkpath):this.linkpath,mode:this.mode,uid:this.portable?void 0:this.uid,gid:this.portable?void 0:this.gid,size:this.size,mtime:this.noMtime?void 0:this.mtime,type:this.type,uname:this.portable?void 0:this.uname,atime:this.portable?void 0:this.atime,ctime:this.portable?void 0:this.ctime}),n&&this.warn("TAR_ENTRY_INFO",`stripping ${n} from absolute path`,{entry:this,path:n+this.path}),this.header.encode()&&!this.noPax&&super.write(new ft({atime:this.portable?void 0:this.atime,ctime:this.portable?void 0:this.ctime,gid:this.portable?void 0:this.gid,mtime:this.noMtime?void 0:this.mtime,path:this[q](this.path),linkpath:this.type==="Link"&&this.linkpath!==void 0?this[q](this.linkpath):this.linkpath,size:this.size,uid:this.portable?void 0:this.uid,uname:this.portable?void 0:this.uname,dev:this.portable?void 0:this.readEntry.dev,ino:this.portable?void 0:this.readEntry.ino,nlink:this.portable?void 0:this.readEntry.nlink}).encode());let o=this.header?.block;if(!o)throw new Error("failed to encode header");super.write(o),t.pipe(this)}[q](t){return rr(t,this.prefix)}[ri](t){return Ji(t,this.type==="Directory",this.portable)}write(t,e,i){typeof e=="function"&&(i=e,e=void 0),typeof t=="string"&&(t=Buffer.from(t,typeof e=="string"?e:"utf8"));let r=t.length;if(r>this.blockRemain)throw new Error("writing more to entry than is appropriate");return this.blockRemain-=r,super.write(t,i)}end(t,e,i){return this.blockRemain&&super.write(Buffer.alloc(this.blockRemain)),typeof t=="function"&&(i=t,e=void 0,t=void 0),typeof e=="function"&&(i=e,e=void 0),typeof t=="string"&&(t=Buffer.from(t,e??"utf8")),i&&this.once("finish",i),t?super.end(t,i):super.end(i),this}},Gn=s=>s.isFile()?"File":s.isDirectory()?"Directory":s.isSymbolicLink()?"SymbolicLink":"Unsupported";var hi=class s{tail;head;length=0;static create(t=[]){return new s(t)}constructor(t=[]){for(let e of t)this.push(e)}*[Symbol.iterator](){for(let t=this.head;t;t=t.next)yield t.value}removeNode(t){if(t.list!==this)throw new Error("removing node which does not belong to this list");let e=t.next,i=t.prev;return e&&(e.prev=i),i&&(i.next=e),t===this.head&&(this.head=e),t===this.tail&&(this.tail=i),this.length--,t.next=void 0,t.prev=void 0,t.list=void 0,e}unshiftNode(t){if(t===this.head)return;t.list&&t.list.removeNode(t);let e=this.head;t.list=this,t.next=e,e&&(e.prev=t),this.head=t,this.tail||(this.tail=t),this.length++}pushNode(t){if(t===this.tail)return;t.list&&t.list.removeNode(t);let e=this.tail;t.list=this,t.prev=e,e&&(e.next=t),this.tail=t,this.head||(this.head=t),this.length++}push(...t){for(let e=0,i=t.length;e<i;e++)Yn(this,t[e]);return this.length}unshift(...t){for(var e=0,i=t.length;e<i;e++)Kn(this,t[e]);return this.length}pop(){if(!this.tail)return;let t=this.tail.value,e=this.tail;return this.tail=this.tail.prev,this.tail?this.tail.next=void 0:this.head=void 0,e.list=void 0,this.length--,t}shift(){if(!this.head)return;let t=this.head.value,e=this.head;return this.head=this.head.next,this.head?this.head.prev=void 0:this.tail=void 0,e.list=void 0,this.length--,t}forEach(t,e){e=e||this;for(let i=this.head,r=0;i;r++)t.call(e,i.value,r,this),i=i.next}forEachReverse(t,e){e=e||this;for(let i=this.tail,r=this.length-1;i;r--)t.call(e,i.value,r,this),i=i.prev}get(t){let e=0,i=this.head;for(;i&&e<t;e++)i=i.next;if(e===t&&i)return i.value}getReverse(t){let e=0,i=this.tail;for(;i&&e<t;e++)i=i.prev;if(e===t&&i)return i.value}map(t,e){e=e||this;let i=new s;for(let r=this.head;r;)i.push(t.call(e,r.value,this)),r=r.next;return i}mapReverse(t,e){e=e||this;var i=new s;for(let r=this.tail;r;)i.push(t.call(e,r.value,this)),r=r.prev;return i}reduce(t,e){let i,r=this.head;if(arguments.length>1)i=e;else if(this.head)r=this.head.next,i=this.head.value;else throw new TypeError("Reduce of empty list with no initial value");for(var n=0;r;n++)i=t(i,r.value,n),r=r.next;return i}reduceReverse(t,e){let i,r=this.tail;if(arguments.length>1)i=e;else if(this.tail)r=this.tail.prev,i=this.tail.value;else throw new TypeError("Reduce of empty list with no initial value");for(let n=this.length-1;r;n--)i=t(i,r.value,n),r=r.prev;return i}toArray(){let t=new Array(this.length);for(let e=0,i=this.head;i;e++)t[e]=i.value,i=i.next;return t}toArrayReverse(){let t=new Array(this.length);for(let e=0,i=this.tail;i;e++)t[e]=i.value,i=i.prev;return t}slice(t=0,e=this.length){e<0&&(e+=this.length),t<0&&(t+=this.length);let i=new s;if(e<t||e<0)return i;t<0&&(t=0),e>this.length&&(e=this.length);let r=this.head,n=0;for(n=0;r&&n<t;n++)r=r.next;for(;r&&n<e;n++,r=r.next)i.push(r.value);return i}sliceReverse(t=0,e=this.length){e<0&&(e+=this.length),t<0&&(t+=this.length);let i=new s;if(e<t||e<0)return i;t<0&&(t=0),e>this.length&&(e=this.length);let r=this.length,n=this.tail;for(;n&&r>e;r--)n=n.prev;for(;n&&r>t;r--,n=n.prev)i.push(n.value);return i}splice(t,e=0,...i){t>this.length&&(t=this.length-1),t<0&&(t=this.length+t);let r=this.head;for(let o=0;r&&o<t;o++)r=r.next;let n=[];for(let o=0;r&&o<e;o++)n.push(r.value),r=this.removeNode(r);r?r!==this.tail&&(r=r.prev):r=this.tail;for(let o of i)r=Zn(this,r,o);return n}reverse(){let t=this.head,e=this.tail;for(let i=t;i;i=i.prev){let r=i.prev;i.prev=i.next,i.next=r}return this.head=e,this.tail=t,this}};function Zn(s,t,e){let i=t,r=t?t.next:s.head,n=new ue(e,i,r,s);return n.next===void 0&&(s.tail=n),n.prev===void 0&&(s.head=n),s.length++,n}function Yn(s,t){s.tail=new ue(t,s.tail,void 0,s),s.head||(s.head=s.tail),s.length++}function Kn(s,t){s.head=new ue(t,void 0,s.head,s),s.tail||(s.tail=s.head),s.length++}var ue=class{list;next;prev;value;constructor(t,e,i,r){this.list=r,this.value=t,e?(e.next=this,this.prev=e):this.prev=void 0,i?(i.prev=this,this.next=i):this.next=void 0}};var pi=class{path;absolute;entry;stat;readdir;pending=!1;pendingLink=!1;ignore=!1;piped=!1;constructor(t,e){this.path=t||"./",this.absolute=e}},nr=Buffer.alloc(1024),li=Symbol("onStat"),me=Symbol("ended"),W=Symbol("queue"),pe=Symbol("pendingLinks"),Et=Symbol("current"),Ft=Symbol("process"),Ee=Symbol("processing"),ai=Symbol("processJob"),G=Symbol("jobs"),ls=Symbol("jobDone"),ci=Symbol("addFSEntry"),or=Symbol("addTarEntry"),ds=Symbol("stat"),us=Symbol("readdir"),fi=Symbol("onreaddir"),di=Symbol("pipe"),hr=Symbol("entry"),cs=Symbol("entryOpt"),ui=Symbol("writeEntryClass"),lr=Symbol("write"),fs=Symbol("ondrain"),wt=class extends A{sync=!1;opt;cwd;maxReadSize;preservePaths;strict;noPax;prefix;linkCache;statCache;file;portable;zip;readdirCache;noDirRecurse;follow;noMtime;mtime;filter;jobs;[ui];onWriteEntry;[W];[pe]=new Map;[G]=0;[Ee]=!1;[me]=!1;constructor(t={}){if(super(),this.opt=t,this.file=t.file||"",this.cwd=t.cwd||process.cwd(),this.maxReadSize=t.maxReadSize,this.preservePaths=!!t.preservePaths,this.strict=!!t.strict,this.noPax=!!t.noPax,this.prefix=f(t.prefix||""),this.linkCache=t.linkCache||new Map,this.statCache=t.statCache||new Map,this.readdirCache=t.readdirCache||new Map,this.onWriteEntry=t.onWriteEntry,this[ui]=de,typeof t.onwarn=="function"&&this.on("warn",t.onwarn),this.portable=!!t.portable,t.gzip||t.brotli||t.zstd){if((t.gzip?1:0)+(t.brotli?1:0)+(t.zstd?1:0)>1)throw new TypeError("gzip, brotli, zstd are mutually exclusive");if(t.gzip&&(typeof t.gzip!="object"&&(t.gzip={}),this.portable&&(t.gzip.portable=!0),this.zip=new ze(t.gzip)),t.brotli&&(typeof t.brotli!="object"&&(t.brotli={}),this.zip=new We(t.brotli)),t.zstd&&(typeof t.zstd!="object"&&(t.zstd={}),this.zip=new Ye(t.zstd)),!this.zip)throw new Error("impossible");let e=this.zip;e.on("data",i=>super.write(i)),e.on("end",()=>super.end()),e.on("drain",()=>this[fs]()),this.on("resume",()=>e.resume())}else this.on("drain",this[fs]);this.noDirRecurse=!!t.noDirRecurse,this.follow=!!t.follow,this.noMtime=!!t.noMtime,t.mtime&&(this.mtime=t.mtime),this.filter=typeof t.filter=="function"?t.filter:()=>!0,this[W]=new hi,this[G]=0,this.jobs=Number(t.jobs)||4,this[Ee]=!1,this[me]=!1}[lr](t){return super.write(t)}add(t){return this.write(t),this}end(t,e,i){return typeof t=="function"&&(i=t,t=void 0),typeof e=="function"&&(i=e,e=void 0),t&&this.add(t),this[me]=!0,this[Ft](),i&&i(),this}write(t){if(this[me])throw new Error("write after end");return typeof t=="string"?this[ci](t):this[or](t),this.flowing}[or](t){let e=f(external_path_.resolve(this.cwd,t.path));if(!this.filter(t.path,t))t.resume();else{let i=new pi(t.path,e);i.entry=new oi(t,this[cs](i)),i.entry.on("end",()=>this[ls](i)),this[G]+=1,this[W].push(i)}this[Ft]()}[ci](t){let e=f(external_path_.resolve(this.cwd,t));this[W].push(new pi(t,e)),this[Ft]()}[ds](t){t.pending=!0,this[G]+=1;let e=this.follow?"stat":"lstat";external_fs_[e](t.absolute,(i,r)=>{t.pending=!1,this[G]-=1,i?this.emit("error",i):this[li](t,r)})}[li](t,e){if(this.statCache.set(t.absolute,e),t.stat=e,!this.filter(t.path,e))t.ignore=!0;else if(e.isFile()&&e.nlink>1&&!this.linkCache.get(`${e.dev}:${e.ino}`)&&!this.sync)if(t===this[Et])this[ai](t);else{let i=`${e.dev}:${e.ino}`,r=this[pe].get(i);r?r.push(t):this[pe].set(i,[t]),t.pendingLink=!0,t.pending=!0}this[Ft]()}[us](t){t.pending=!0,this[G]+=1,external_fs_.readdir(t.absolute,(e,i)=>{if(t.pending=!1,this[G]-=1,e)return this.emit("error",e);this[fi](t,i)})}[fi](t,e){this.readdirCache.set(t.absolute,e),t.readdir=e,this[Ft]()}[Ft](){if(!this[Ee]){this[Ee]=!0;for(let t=this[W].head;t&&this[G]<this.jobs;t=t.next)if(this[ai](t.value),t.value.ignore){let e=t.next;this[W].removeNode(t),t.next=e}this[Ee]=!1,this[me]&&this[W].length===0&&this[G]===0&&(this.zip?this.zip.end(nr):(super.write(nr),super.end()))}}get[Et](){return this[W]&&this[W].head&&this[W].head.value}[ls](t){this[W].shift(),this[G]-=1;let{stat:e}=t;if(e&&e.isFile()&&e.nlink>1){let i=`${e.dev}:${e.ino}`,r=this[pe].get(i);if(r){this[pe].delete(i);for(let n of r)n.pending=!1,this[ai](n)}}this[Ft]()}[ai](t){if(t.pending&&t.pendingLink&&t===this[Et]&&(t.pending=!1,t.pendingLink=!1),!t.pending){if(t.entry){t===this[Et]&&!t.piped&&this[di](t);return}if(!t.stat){let e=this.statCache.get(t.absolute);e?this[li](t,e):this[ds](t)}if(t.stat&&!t.ignore){if(!this.noDirRecurse&&t.stat.isDirectory()&&!t.readdir){let e=this.readdirCache.get(t.absolute);if(e?this[fi](t,e):this[us](t),!t.readdir)return}if(t.entry=this[hr](t),!t.entry){t.ignore=!0;return}t===this[Et]&&!t.piped&&this[di](t)}}}[cs](t){return{onwarn:(e,i,r)=>this.warn(e,i,r),noPax:this.noPax,cwd:this.cwd,absolute:t.absolute,preservePaths:this.preservePaths,maxReadSize:this.maxReadSize,strict:this.strict,portable:this.portable,linkCache:this.linkCache,statCache:this.statCache,noMtime:this.noMtime,mtime:this.mtime,prefix:this.prefix,onWriteEntry:this.onWriteEntry}}[hr](t){this[G]+=1;try{return new this[ui](t.path,this[cs](t)).on("end",()=>this[ls](t)).on("error",i=>this.emit("error",i))}catch(e){this.emit("error",e)}}[fs](){this[Et]&&this[Et].entry&&this[Et].entry.resume()}[di](t){t.piped=!0,t.readdir&&t.readdir.forEach(r=>{let n=t.path,o=n==="./"?"":n.replace(/\/*$/,"/");this[ci](o+r)});let e=t.entry,i=this.zip;if(!e)throw new Error("cannot pipe without source");i?e.on("data",r=>{i.write(r)||e.pause()}):e.on("data",r=>{super.write(r)||e.pause()})}pause(){return this.zip&&this.zip.pause(),super.pause()}warn(t,e,i={}){Dt(this,t,e,i)}},kt=class extends wt{sync=!0;constructor(t){super(t),this[ui]=ni}pause(){}resume(){}[ds](t){let e=this.follow?"statSync":"lstatSync";this[li](t,external_fs_[e](t.absolute))}[us](t){this[fi](t,external_fs_.readdirSync(t.absolute))}[di](t){let e=t.entry,i=this.zip;if(t.readdir&&t.readdir.forEach(r=>{let n=t.path,o=n==="./"?"":n.replace(/\/*$/,"/");this[ci](o+r)}),!e)throw new Error("Cannot pipe without source");i?e.on("data",r=>{i.write(r)}):e.on("data",r=>{super[lr](r)})}};var Vn=(s,t)=>{let e=new kt(s),i=new Wt(s.file,{mode:s.mode||438});e.pipe(i),fr(e,t)},$n=(s,t)=>{let e=new wt(s),i=new et(s.file,{mode:s.mode||438});e.pipe(i);let r=new Promise((n,o)=>{i.on("error",o),i.on("close",n),e.on("error",o)});return dr(e,t).catch(n=>e.emit("error",n)),r},fr=(s,t)=>{t.forEach(e=>{e.charAt(0)==="@"?Ct({file:external_node_path_.resolve(s.cwd,e.slice(1)),sync:!0,noResume:!0,onReadEntry:i=>s.add(i)}):s.add(e)}),s.end()},dr=async(s,t)=>{for(let e of t)e.charAt(0)==="@"?await Ct({file:external_node_path_.resolve(String(s.cwd),e.slice(1)),noResume:!0,onReadEntry:i=>{s.add(i)}}):s.add(e);s.end()},Xn=(s,t)=>{let e=new kt(s);return fr(e,t),e},qn=(s,t)=>{let e=new wt(s);return dr(e,t).catch(i=>e.emit("error",i)),e},Qn=K(Vn,$n,Xn,qn,(s,t)=>{if(!t?.length)throw new TypeError("no paths specified to add to archive")});var Jn=process.env.__FAKE_PLATFORM__||process.platform,Er=Jn==="win32",{O_CREAT:wr,O_NOFOLLOW:ur,O_TRUNC:Sr,O_WRONLY:yr}=external_fs_.constants,Rr=Number(process.env.__FAKE_FS_O_FILENAME__)||external_fs_.constants.UV_FS_O_FILEMAP||0,jn=Er&&!!Rr,to=512*1024,eo=Rr|Sr|wr|yr,mr=!Er&&typeof ur=="number"?ur|Sr|wr|yr:null,ms=mr!==null?()=>mr:jn?s=>s<to?eo:"w":()=>"w";var ps=(s,t,e)=>{try{return external_node_fs_.lchownSync(s,t,e)}catch(i){if(i?.code!=="ENOENT")throw i}},Ei=(s,t,e,i)=>{external_node_fs_.lchown(s,t,e,r=>{i(r&&r?.code!=="ENOENT"?r:null)})},io=(s,t,e,i,r)=>{if(t.isDirectory())Es(external_node_path_.resolve(s,t.name),e,i,n=>{if(n)return r(n);let o=external_node_path_.resolve(s,t.name);Ei(o,e,i,r)});else{let n=external_node_path_.resolve(s,t.name);Ei(n,e,i,r)}},Es=(s,t,e,i)=>{external_node_fs_.readdir(s,{withFileTypes:!0},(r,n)=>{if(r){if(r.code==="ENOENT")return i();if(r.code!=="ENOTDIR"&&r.code!=="ENOTSUP")return i(r)}if(r||!n.length)return Ei(s,t,e,i);let o=n.length,h=null,a=l=>{if(!h){if(l)return i(h=l);if(--o===0)return Ei(s,t,e,i)}};for(let l of n)io(s,l,t,e,a)})},so=(s,t,e,i)=>{t.isDirectory()&&ws(external_node_path_.resolve(s,t.name),e,i),ps(external_node_path_.resolve(s,t.name),e,i)},ws=(s,t,e)=>{let i;try{i=external_node_fs_.readdirSync(s,{withFileTypes:!0})}catch(r){let n=r;if(n?.code==="ENOENT")return;if(n?.code==="ENOTDIR"||n?.code==="ENOTSUP")return ps(s,t,e);throw n}for(let r of i)so(s,r,t,e);return ps(s,t,e)};var Se=class extends Error{path;code;syscall="chdir";constructor(t,e){super(`${e}: Cannot cd into '${t}'`),this.path=t,this.code=e}get name(){return"CwdError"}};var St=class extends Error{path;symlink;syscall="symlink";code="TAR_SYMLINK_ERROR";constructor(t,e){super("TAR_SYMLINK_ERROR: Cannot extract through symbolic link"),this.symlink=t,this.path=e}get name(){return"SymlinkError"}};var no=(s,t)=>{external_node_fs_.stat(s,(e,i)=>{(e||!i.isDirectory())&&(e=new Se(s,e?.code||"ENOTDIR")),t(e)})},gr=(s,t,e)=>{s=f(s);let i=t.umask??18,r=t.mode|448,n=(r&i)!==0,o=t.uid,h=t.gid,a=typeof o=="number"&&typeof h=="number"&&(o!==t.processUid||h!==t.processGid),l=t.preserve,c=t.unlink,d=f(t.cwd),y=(E,x)=>{E?e(E):x&&a?Es(x,o,h,Le=>y(Le)):n?external_node_fs_.chmod(s,r,e):e()};if(s===d)return no(s,y);if(l)return promises_.mkdir(s,{mode:r,recursive:!0}).then(E=>y(null,E??void 0),y);let D=f(external_node_path_.relative(d,s)).split("/");Ss(d,D,r,c,d,void 0,y)},Ss=(s,t,e,i,r,n,o)=>{if(t.length===0)return o(null,n);let h=t.shift(),a=f(external_node_path_.resolve(s+"/"+h));external_node_fs_.mkdir(a,e,br(a,t,e,i,r,n,o))},br=(s,t,e,i,r,n,o)=>h=>{h?external_node_fs_.lstat(s,(a,l)=>{if(a)a.path=a.path&&f(a.path),o(a);else if(l.isDirectory())Ss(s,t,e,i,r,n,o);else if(i)external_node_fs_.unlink(s,c=>{if(c)return o(c);external_node_fs_.mkdir(s,e,br(s,t,e,i,r,n,o))});else{if(l.isSymbolicLink())return o(new St(s,s+"/"+t.join("/")));o(h)}}):(n=n||s,Ss(s,t,e,i,r,n,o))},oo=s=>{let t=!1,e;try{t=external_node_fs_.statSync(s).isDirectory()}catch(i){e=i?.code}finally{if(!t)throw new Se(s,e??"ENOTDIR")}},_r=(s,t)=>{s=f(s);let e=t.umask??18,i=t.mode|448,r=(i&e)!==0,n=t.uid,o=t.gid,h=typeof n=="number"&&typeof o=="number"&&(n!==t.processUid||o!==t.processGid),a=t.preserve,l=t.unlink,c=f(t.cwd),d=E=>{E&&h&&ws(E,n,o),r&&external_node_fs_.chmodSync(s,i)};if(s===c)return oo(c),d();if(a)return d(external_node_fs_.mkdirSync(s,{mode:i,recursive:!0})??void 0);let T=f(external_node_path_.relative(c,s)).split("/"),D;for(let E=T.shift(),x=c;E&&(x+="/"+E);E=T.shift()){x=f(external_node_path_.resolve(x));try{external_node_fs_.mkdirSync(x,i),D=D||x}catch{let Le=external_node_fs_.lstatSync(x);if(Le.isDirectory())continue;if(l){external_node_fs_.unlinkSync(x),external_node_fs_.mkdirSync(x,i),D=D||x;continue}else if(Le.isSymbolicLink())return new St(x,x+"/"+T.join("/"))}}return d(D)};var ys=Object.create(null),Or=1e4,Vt=new Set,Tr=s=>{Vt.has(s)?Vt.delete(s):ys[s]=s.normalize("NFD").toLocaleLowerCase("en").toLocaleUpperCase("en"),Vt.add(s);let t=ys[s],e=Vt.size-Or;if(e>Or/10){for(let i of Vt)if(Vt.delete(i),delete ys[i],--e<=0)break}return t};var ho=process.env.TESTING_TAR_FAKE_PLATFORM||process.platform,ao=ho==="win32",lo=s=>s.split("/").slice(0,-1).reduce((e,i)=>{let r=e.at(-1);return r!==void 0&&(i=(0,external_node_path_.join)(r,i)),e.push(i||"/"),e},[]),yi=class{#t=new Map;#i=new Map;#s=new Set;reserve(t,e){t=ao?["win32 parallelization disabled"]:t.map(r=>mt((0,external_node_path_.join)(Tr(r))));let i=new Set(t.map(r=>lo(r)).reduce((r,n)=>r.concat(n)));this.#i.set(e,{dirs:i,paths:t});for(let r of t){let n=this.#t.get(r);n?n.push(e):this.#t.set(r,[e])}for(let r of i){let n=this.#t.get(r);if(!n)this.#t.set(r,[new Set([e])]);else{let o=n.at(-1);o instanceof Set?o.add(e):n.push(new Set([e]))}}return this.#r(e)}#n(t){let e=this.#i.get(t);if(!e)throw new Error("function does not have any path reservations");return{paths:e.paths.map(i=>this.#t.get(i)),dirs:[...e.dirs].map(i=>this.#t.get(i))}}check(t){let{paths:e,dirs:i}=this.#n(t);return e.every(r=>r&&r[0]===t)&&i.every(r=>r&&r[0]instanceof Set&&r[0].has(t))}#r(t){return this.#s.has(t)||!this.check(t)?!1:(this.#s.add(t),t(()=>this.#e(t)),!0)}#e(t){if(!this.#s.has(t))return!1;let e=this.#i.get(t);if(!e)throw new Error("invalid reservation");let{paths:i,dirs:r}=e,n=new Set;for(let o of i){let h=this.#t.get(o);if(!h||h?.[0]!==t)continue;let a=h[1];if(!a){this.#t.delete(o);continue}if(h.shift(),typeof a=="function")n.add(a);else for(let l of a)n.add(l)}for(let o of r){let h=this.#t.get(o),a=h?.[0];if(!(!h||!(a instanceof Set)))if(a.size===1&&h.length===1){this.#t.delete(o);continue}else if(a.size===1){h.shift();let l=h[0];typeof l=="function"&&n.add(l)}else a.delete(t)}return this.#s.delete(t),n.forEach(o=>this.#r(o)),!0}};var Lr=()=>process.umask();var Dr=Symbol("onEntry"),_s=Symbol("checkFs"),Nr=Symbol("checkFs2"),Os=Symbol("isReusable"),P=Symbol("makeFs"),Ts=Symbol("file"),xs=Symbol("directory"),gi=Symbol("link"),Ar=Symbol("symlink"),Ir=Symbol("hardlink"),Re=Symbol("ensureNoSymlink"),Cr=Symbol("unsupported"),Fr=Symbol("checkPath"),Rs=Symbol("stripAbsolutePath"),yt=Symbol("mkdir"),O=Symbol("onError"),Ri=Symbol("pending"),kr=Symbol("pend"),$t=Symbol("unpend"),gs=Symbol("ended"),bs=Symbol("maybeClose"),Ls=Symbol("skip"),ge=Symbol("doChown"),be=Symbol("uid"),_e=Symbol("gid"),Oe=Symbol("checkedCwd"),fo=process.env.TESTING_TAR_FAKE_PLATFORM||process.platform,Te=fo==="win32",uo=1024,mo=(s,t)=>{if(!Te)return external_node_fs_.unlink(s,t);let e=s+".DELETE."+(0,external_node_crypto_.randomBytes)(16).toString("hex");external_node_fs_.rename(s,e,i=>{if(i)return t(i);external_node_fs_.unlink(e,t)})},po=s=>{if(!Te)return external_node_fs_.unlinkSync(s);let t=s+".DELETE."+(0,external_node_crypto_.randomBytes)(16).toString("hex");external_node_fs_.renameSync(s,t),external_node_fs_.unlinkSync(t)},vr=(s,t,e)=>s!==void 0&&s===s>>>0?s:t!==void 0&&t===t>>>0?t:e,Xt=class extends rt{[gs]=!1;[Oe]=!1;[Ri]=0;reservations=new yi;transform;writable=!0;readable=!1;uid;gid;setOwner;preserveOwner;processGid;processUid;maxDepth;forceChown;win32;newer;keep;noMtime;preservePaths;unlink;cwd;strip;processUmask;umask;dmode;fmode;chmod;constructor(t={}){if(t.ondone=()=>{this[gs]=!0,this[bs]()},super(t),this.transform=t.transform,this.chmod=!!t.chmod,typeof t.uid=="number"||typeof t.gid=="number"){if(typeof t.uid!="number"||typeof t.gid!="number")throw new TypeError("cannot set owner without number uid and gid");if(t.preserveOwner)throw new TypeError("cannot preserve owner in archive and also set owner explicitly");this.uid=t.uid,this.gid=t.gid,this.setOwner=!0}else this.uid=void 0,this.gid=void 0,this.setOwner=!1;this.preserveOwner=t.preserveOwner===void 0&&typeof t.uid!="number"?process.getuid?.()===0:!!t.preserveOwner,this.processUid=(this.preserveOwner||this.setOwner)&&process.getuid?process.getuid():void 0,this.processGid=(this.preserveOwner||this.setOwner)&&process.getgid?process.getgid():void 0,this.maxDepth=typeof t.maxDepth=="number"?t.maxDepth:uo,this.forceChown=t.forceChown===!0,this.win32=!!t.win32||Te,this.newer=!!t.newer,this.keep=!!t.keep,this.noMtime=!!t.noMtime,this.preservePaths=!!t.preservePaths,this.unlink=!!t.unlink,this.cwd=f(external_node_path_.resolve(t.cwd||process.cwd())),this.strip=Number(t.strip)||0,this.processUmask=this.chmod?typeof t.processUmask=="number"?t.processUmask:Lr():0,this.umask=typeof t.umask=="number"?t.umask:this.processUmask,this.dmode=t.dmode||511&~this.umask,this.fmode=t.fmode||438&~this.umask,this.on("entry",e=>this[Dr](e))}warn(t,e,i={}){return(t==="TAR_BAD_ARCHIVE"||t==="TAR_ABORT")&&(i.recoverable=!1),super.warn(t,e,i)}[bs](){this[gs]&&this[Ri]===0&&(this.emit("prefinish"),this.emit("finish"),this.emit("end"))}[Rs](t,e){let i=t[e],{type:r}=t;if(!i||this.preservePaths)return!0;let[n,o]=ce(i),h=o.replaceAll(/\\/g,"/").split("/");if(h.includes("..")||Te&&/^[a-z]:\.\.$/i.test(h[0]??"")){if(e==="path"||r==="Link")return this.warn("TAR_ENTRY_ERROR",`${e} contains '..'`,{entry:t,[e]:i}),!1;let a=external_node_path_.posix.dirname(t.path),l=external_node_path_.posix.normalize(external_node_path_.posix.join(a,h.join("/")));if(l.startsWith("../")||l==="..")return this.warn("TAR_ENTRY_ERROR",`${e} escapes extraction directory`,{entry:t,[e]:i}),!1}return n&&(t[e]=String(o),this.warn("TAR_ENTRY_INFO",`stripping ${n} from absolute ${e}`,{entry:t,[e]:i})),!0}[Fr](t){let e=f(t.path),i=e.split("/");if(this.strip){if(i.length<this.strip)return!1;if(t.type==="Link"){let r=f(String(t.linkpath)).split("/");if(r.length>=this.strip)t.linkpath=r.slice(this.strip).join("/");else return!1}i.splice(0,this.strip),t.path=i.join("/")}if(isFinite(this.maxDepth)&&i.length>this.maxDepth)return this.warn("TAR_ENTRY_ERROR","path excessively deep",{entry:t,path:e,depth:i.length,maxDepth:this.maxDepth}),!1;if(!this[Rs](t,"path")||!this[Rs](t,"linkpath"))return!1;if(t.absolute=external_node_path_.isAbsolute(t.path)?f(external_node_path_.resolve(t.path)):f(external_node_path_.resolve(this.cwd,t.path)),!this.preservePaths&&typeof t.absolute=="string"&&t.absolute.indexOf(this.cwd+"/")!==0&&t.absolute!==this.cwd)return this.warn("TAR_ENTRY_ERROR","path escaped extraction target",{entry:t,path:f(t.path),resolvedPath:t.absolute,cwd:this.cwd}),!1;if(t.absolute===this.cwd&&t.type!=="Directory"&&t.type!=="GNUDumpDir")return!1;if(this.win32){let{root:r}=external_node_path_.win32.parse(String(t.absolute));t.absolute=r+ts(String(t.absolute).slice(r.length));let{root:n}=external_node_path_.win32.parse(t.path);t.path=n+ts(t.path.slice(n.length))}return!0}[Dr](t){if(!this[Fr](t))return t.resume();switch(external_node_assert_.equal(typeof t.absolute,"string"),t.type){case"Directory":case"GNUDumpDir":t.mode&&(t.mode=t.mode|448);case"File":case"OldFile":case"ContiguousFile":case"Link":case"SymbolicLink":return this[_s](t);default:return this[Cr](t)}}[O](t,e){t.name==="CwdError"?this.emit("error",t):(this.warn("TAR_ENTRY_ERROR",t,{entry:e}),this[$t](),e.resume())}[yt](t,e,i){gr(f(t),{uid:this.uid,gid:this.gid,processUid:this.processUid,processGid:this.processGid,umask:this.processUmask,preserve:this.preservePaths,unlink:this.unlink,cwd:this.cwd,mode:e},i)}[ge](t){return this.forceChown||this.preserveOwner&&(typeof t.uid=="number"&&t.uid!==this.processUid||typeof t.gid=="number"&&t.gid!==this.processGid)||typeof this.uid=="number"&&this.uid!==this.processUid||typeof this.gid=="number"&&this.gid!==this.processGid}[be](t){return vr(this.uid,t.uid,this.processUid)}[_e](t){return vr(this.gid,t.gid,this.processGid)}[Ts](t,e){let i=typeof t.mode=="number"?t.mode&4095:this.fmode,r=new et(String(t.absolute),{flags:ms(t.size),mode:i,autoClose:!1});r.on("error",a=>{r.fd&&external_node_fs_.close(r.fd,()=>{}),r.write=()=>!0,this[O](a,t),e()});let n=1,o=a=>{if(a){r.fd&&external_node_fs_.close(r.fd,()=>{}),this[O](a,t),e();return}--n===0&&r.fd!==void 0&&external_node_fs_.close(r.fd,l=>{l?this[O](l,t):this[$t](),e()})};r.on("finish",()=>{let a=String(t.absolute),l=r.fd;if(typeof l=="number"&&t.mtime&&!this.noMtime){n++;let c=t.atime||new Date,d=t.mtime;external_node_fs_.futimes(l,c,d,y=>y?external_node_fs_.utimes(a,c,d,T=>o(T&&y)):o())}if(typeof l=="number"&&this[ge](t)){n++;let c=this[be](t),d=this[_e](t);typeof c=="number"&&typeof d=="number"&&external_node_fs_.fchown(l,c,d,y=>y?external_node_fs_.chown(a,c,d,T=>o(T&&y)):o())}o()});let h=this.transform&&this.transform(t)||t;h!==t&&(h.on("error",a=>{this[O](a,t),e()}),t.pipe(h)),h.pipe(r)}[xs](t,e){let i=typeof t.mode=="number"?t.mode&4095:this.dmode;this[yt](String(t.absolute),i,r=>{if(r){this[O](r,t),e();return}let n=1,o=()=>{--n===0&&(e(),this[$t](),t.resume())};t.mtime&&!this.noMtime&&(n++,external_node_fs_.utimes(String(t.absolute),t.atime||new Date,t.mtime,o)),this[ge](t)&&(n++,external_node_fs_.chown(String(t.absolute),Number(this[be](t)),Number(this[_e](t)),o)),o()})}[Cr](t){t.unsupported=!0,this.warn("TAR_ENTRY_UNSUPPORTED",`unsupported entry type: ${t.type}`,{entry:t}),t.resume()}[Ar](t,e){let i=f(external_node_path_.relative(this.cwd,external_node_path_.resolve(external_node_path_.dirname(String(t.absolute)),String(t.linkpath)))).split("/");this[Re](t,this.cwd,i,()=>this[gi](t,String(t.linkpath),"symlink",e),r=>{this[O](r,t),e()})}[Ir](t,e){let i=f(external_node_path_.resolve(this.cwd,String(t.linkpath))),r=f(String(t.linkpath)).split("/");this[Re](t,this.cwd,r,()=>this[gi](t,i,"link",e),n=>{this[O](n,t),e()})}[Re](t,e,i,r,n){let o=i.shift();if(this.preservePaths||o===void 0)return r();let h=external_node_path_.resolve(e,o);external_node_fs_.lstat(h,(a,l)=>{if(a)return r();if(l?.isSymbolicLink())return n(new St(h,external_node_path_.resolve(h,i.join("/"))));this[Re](t,h,i,r,n)})}[kr](){this[Ri]++}[$t](){this[Ri]--,this[bs]()}[Ls](t){this[$t](),t.resume()}[Os](t,e){return t.type==="File"&&!this.unlink&&e.isFile()&&e.nlink<=1&&!Te}[_s](t){this[kr]();let e=[t.path];t.linkpath&&e.push(t.linkpath),this.reservations.reserve(e,i=>this[Nr](t,i))}[Nr](t,e){let i=h=>{e(h)},r=()=>{this[yt](this.cwd,this.dmode,h=>{if(h){this[O](h,t),i();return}this[Oe]=!0,n()})},n=()=>{if(t.absolute!==this.cwd){let h=f(external_node_path_.dirname(String(t.absolute)));if(h!==this.cwd)return this[yt](h,this.dmode,a=>{if(a){this[O](a,t),i();return}o()})}o()},o=()=>{external_node_fs_.lstat(String(t.absolute),(h,a)=>{if(a&&(this.keep||this.newer&&a.mtime>(t.mtime??a.mtime))){this[Ls](t),i();return}if(h||this[Os](t,a))return this[P](null,t,i);if(a.isDirectory()){if(t.type==="Directory"){let l=this.chmod&&t.mode&&(a.mode&4095)!==t.mode,c=d=>this[P](d??null,t,i);return l?external_node_fs_.chmod(String(t.absolute),Number(t.mode),c):c()}if(t.absolute!==this.cwd)return external_node_fs_.rmdir(String(t.absolute),l=>this[P](l??null,t,i))}if(t.absolute===this.cwd)return this[P](null,t,i);mo(String(t.absolute),l=>this[P](l??null,t,i))})};this[Oe]?n():r()}[P](t,e,i){if(t){this[O](t,e),i();return}switch(e.type){case"File":case"OldFile":case"ContiguousFile":return this[Ts](e,i);case"Link":return this[Ir](e,i);case"SymbolicLink":return this[Ar](e,i);case"Directory":case"GNUDumpDir":return this[xs](e,i)}}[gi](t,e,i,r){external_node_fs_[i](e,String(t.absolute),n=>{n?this[O](n,t):(this[$t](),t.resume()),r()})}},ye=s=>{try{return[null,s()]}catch(t){return[t,null]}},xe=class extends Xt{sync=!0;[P](t,e){return super[P](t,e,()=>{})}[_s](t){if(!this[Oe]){let n=this[yt](this.cwd,this.dmode);if(n)return this[O](n,t);this[Oe]=!0}if(t.absolute!==this.cwd){let n=f(external_node_path_.dirname(String(t.absolute)));if(n!==this.cwd){let o=this[yt](n,this.dmode);if(o)return this[O](o,t)}}let[e,i]=ye(()=>external_node_fs_.lstatSync(String(t.absolute)));if(i&&(this.keep||this.newer&&i.mtime>(t.mtime??i.mtime)))return this[Ls](t);if(e||this[Os](t,i))return this[P](null,t);if(i.isDirectory()){if(t.type==="Directory"){let o=this.chmod&&t.mode&&(i.mode&4095)!==t.mode,[h]=o?ye(()=>{external_node_fs_.chmodSync(String(t.absolute),Number(t.mode))}):[];return this[P](h,t)}let[n]=ye(()=>external_node_fs_.rmdirSync(String(t.absolute)));this[P](n,t)}let[r]=t.absolute===this.cwd?[]:ye(()=>po(String(t.absolute)));this[P](r,t)}[Ts](t,e){let i=typeof t.mode=="number"?t.mode&4095:this.fmode,r=h=>{let a;try{external_node_fs_.closeSync(n)}catch(l){a=l}(h||a)&&this[O](h||a,t),e()},n;try{n=external_node_fs_.openSync(String(t.absolute),ms(t.size),i)}catch(h){return r(h)}let o=this.transform&&this.transform(t)||t;o!==t&&(o.on("error",h=>this[O](h,t)),t.pipe(o)),o.on("data",h=>{try{external_node_fs_.writeSync(n,h,0,h.length)}catch(a){r(a)}}),o.on("end",()=>{let h=null;if(t.mtime&&!this.noMtime){let a=t.atime||new Date,l=t.mtime;try{external_node_fs_.futimesSync(n,a,l)}catch(c){try{external_node_fs_.utimesSync(String(t.absolute),a,l)}catch{h=c}}}if(this[ge](t)){let a=this[be](t),l=this[_e](t);try{external_node_fs_.fchownSync(n,Number(a),Number(l))}catch(c){try{external_node_fs_.chownSync(String(t.absolute),Number(a),Number(l))}catch{h=h||c}}}r(h)})}[xs](t,e){let i=typeof t.mode=="number"?t.mode&4095:this.dmode,r=this[yt](String(t.absolute),i);if(r){this[O](r,t),e();return}if(t.mtime&&!this.noMtime)try{external_node_fs_.utimesSync(String(t.absolute),t.atime||new Date,t.mtime)}catch{}if(this[ge](t))try{external_node_fs_.chownSync(String(t.absolute),Number(this[be](t)),Number(this[_e](t)))}catch{}e(),t.resume()}[yt](t,e){try{return _r(f(t),{uid:this.uid,gid:this.gid,processUid:this.processUid,processGid:this.processGid,umask:this.processUmask,preserve:this.preservePaths,unlink:this.unlink,cwd:this.cwd,mode:e})}catch(i){return i}}[Re](t,e,i,r,n){if(this.preservePaths||i.length===0)return r();let o=e;for(let h of i){o=external_node_path_.resolve(o,h);let[a,l]=ye(()=>external_node_fs_.lstatSync(o));if(a)return r();if(l.isSymbolicLink())return n(new St(o,external_node_path_.resolve(e,i.join("/"))))}r()}[gi](t,e,i,r){let n=`${i}Sync`;try{external_node_fs_[n](e,String(t.absolute)),r(),t.resume()}catch(o){return this[O](o,t)}}};var Eo=s=>{let t=new xe(s),e=s.file,i=external_node_fs_.statSync(e),r=s.maxReadSize||16*1024*1024;new Be(e,{readSize:r,size:i.size}).pipe(t)},wo=(s,t)=>{let e=new Xt(s),i=s.maxReadSize||16*1024*1024,r=s.file;return new Promise((o,h)=>{e.on("error",h),e.on("close",o),external_node_fs_.stat(r,(a,l)=>{if(a)h(a);else{let c=new _t(r,{readSize:i,size:l.size});c.on("error",h),c.pipe(e)}})})},So=K(Eo,wo,s=>new xe(s),s=>new Xt(s),(s,t)=>{t?.length&&Qi(s,t)});var yo=(s,t)=>{let e=new kt(s),i=!0,r,n;try{try{r=external_node_fs_.openSync(s.file,"r+")}catch(a){if(a?.code==="ENOENT")r=external_node_fs_.openSync(s.file,"w+");else throw a}let o=external_node_fs_.fstatSync(r),h=Buffer.alloc(512);t:for(n=0;n<o.size;n+=512){for(let c=0,d=0;c<512;c+=d){if(d=external_node_fs_.readSync(r,h,c,h.length-c,n+c),n===0&&h[0]===31&&h[1]===139)throw new Error("cannot append to compressed archives");if(!d)break t}let a=new F(h);if(!a.cksumValid)break;let l=512*Math.ceil((a.size||0)/512);if(n+l+512>o.size)break;n+=l,s.mtimeCache&&a.mtime&&s.mtimeCache.set(String(a.path),a.mtime)}i=!1,Ro(s,e,n,r,t)}finally{if(i)try{external_node_fs_.closeSync(r)}catch{}}},Ro=(s,t,e,i,r)=>{let n=new Wt(s.file,{fd:i,start:e});t.pipe(n),bo(t,r)},go=(s,t)=>{t=Array.from(t);let e=new wt(s),i=(n,o,h)=>{let a=(T,D)=>{T?external_node_fs_.close(n,E=>h(T)):h(null,D)},l=0;if(o===0)return a(null,0);let c=0,d=Buffer.alloc(512),y=(T,D)=>{if(T||D===void 0)return a(T);if(c+=D,c<512&&D)return external_node_fs_.read(n,d,c,d.length-c,l+c,y);if(l===0&&d[0]===31&&d[1]===139)return a(new Error("cannot append to compressed archives"));if(c<512)return a(null,l);let E=new F(d);if(!E.cksumValid)return a(null,l);let x=512*Math.ceil((E.size??0)/512);if(l+x+512>o||(l+=x+512,l>=o))return a(null,l);s.mtimeCache&&E.mtime&&s.mtimeCache.set(String(E.path),E.mtime),c=0,external_node_fs_.read(n,d,0,512,l,y)};external_node_fs_.read(n,d,0,512,l,y)};return new Promise((n,o)=>{e.on("error",o);let h="r+",a=(l,c)=>{if(l&&l.code==="ENOENT"&&h==="r+")return h="w+",external_node_fs_.open(s.file,h,a);if(l||!c)return o(l);external_node_fs_.fstat(c,(d,y)=>{if(d)return external_node_fs_.close(c,()=>o(d));i(c,y.size,(T,D)=>{if(T)return o(T);let E=new et(s.file,{fd:c,start:D});e.pipe(E),E.on("error",o),E.on("close",n),_o(e,t)})})};external_node_fs_.open(s.file,h,a)})},bo=(s,t)=>{t.forEach(e=>{e.charAt(0)==="@"?Ct({file:external_node_path_.resolve(s.cwd,e.slice(1)),sync:!0,noResume:!0,onReadEntry:i=>s.add(i)}):s.add(e)}),s.end()},_o=async(s,t)=>{for(let e of t)e.charAt(0)==="@"?await Ct({file:external_node_path_.resolve(String(s.cwd),e.slice(1)),noResume:!0,onReadEntry:i=>s.add(i)}):s.add(e);s.end()},vt=K(yo,go,()=>{throw new TypeError("file is required")},()=>{throw new TypeError("file is required")},(s,t)=>{if(!Bs(s))throw new TypeError("file is required");if(s.gzip||s.brotli||s.zstd||s.file.endsWith(".br")||s.file.endsWith(".tbr"))throw new TypeError("cannot append to compressed archives");if(!t?.length)throw new TypeError("no paths specified to add/replace")});var Oo=K(vt.syncFile,vt.asyncFile,vt.syncNoFile,vt.asyncNoFile,(s,t=[])=>{vt.validate?.(s,t),To(s)}),To=s=>{let t=s.filter;s.mtimeCache||(s.mtimeCache=new Map),s.filter=t?(e,i)=>t(e,i)&&!((s.mtimeCache?.get(e)??i.mtime??0)>(i.mtime??0)):(e,i)=>!((s.mtimeCache?.get(e)??i.mtime??0)>(i.mtime??0))};
//# sourceMappingURL=index.min.js.map

;// CONCATENATED MODULE: ./src/image/plain-archive.ts
// Reading an uncompressed docker archive by seeking: tar has no index, but each header says
// how far to skip, so manifest.json and the config are found without reading the layers.
// (node-tar parses the headers; only the skipping is done here.)




const BLOCK = 512;
/** `./a/b` and `a/b` are the same entry. */
function entryName(path) {
    return external_node_path_.posix.normalize(path).replace(/^\.\//, '').replace(/\/$/, '');
}
async function readAt(file, offset, length) {
    const buffer = Buffer.alloc(length);
    const { bytesRead } = await file.read(buffer, 0, length, offset);
    return buffer.subarray(0, bytesRead);
}
// Headers of small files lie close together: read ahead, so a layer of many small files
// costs one read per window rather than one per header.
const READ_AHEAD = 64 * 1024;
/** Reads at offsets through a read-ahead window. */
class WindowReader {
    file;
    window = Buffer.alloc(0);
    windowOffset = 0;
    constructor(file) {
        this.file = file;
    }
    async read(offset, length) {
        const start = offset - this.windowOffset;
        if (start < 0 || start + length > this.window.length) {
            this.window = await readAt(this.file, offset, Math.max(length, READ_AHEAD));
            this.windowOffset = offset;
            return this.window.subarray(0, length);
        }
        return this.window.subarray(start, start + length);
    }
}
/** Every entry of an uncompressed tar file (or of a tar inside it), by name, with where its data is. */
async function indexTar(path, region) {
    const entries = new Map();
    const file = await (0,promises_.open)(path, 'r');
    const reader = new WindowReader(file);
    const end = region ? region.offset + region.size : Infinity;
    try {
        let offset = region?.offset ?? 0;
        // A pax header or GNU long name describes the entry after it.
        let extended;
        while (offset < end) {
            if (offset + BLOCK > end)
                throw new Error(`not a tar archive (cut short at byte ${offset})`);
            const block = await reader.read(offset, BLOCK);
            if (block.length < BLOCK)
                break;
            const header = new F(block, 0, extended);
            if (header.nullBlock)
                break;
            if (!header.cksumValid)
                throw new Error(`not a tar archive (bad header at byte ${offset})`);
            const size = header.size ?? 0;
            const dataOffset = offset + BLOCK;
            if (header.type === 'ExtendedHeader') {
                extended = ft.parse((await reader.read(dataOffset, size)).toString('utf8'));
            }
            else if (header.type === 'NextFileHasLongPath') {
                const longPath = (await reader.read(dataOffset, size)).toString('utf8').replace(/\0+$/, '');
                extended = { path: longPath };
            }
            else if (header.type !== 'GlobalExtendedHeader') {
                entries.set(entryName(header.path ?? ''), {
                    offset: dataOffset,
                    size,
                    type: header.type,
                    linkpath: header.linkpath ?? null
                });
                extended = undefined;
            }
            offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
        }
    }
    finally {
        await file.close();
    }
    return entries;
}
/** The file entry `name` names, following a symbolic link within the archive; null if none. */
function fileEntry(entries, name) {
    let entry = entries.get(entryName(name));
    if (entry?.type === 'SymbolicLink' && entry.linkpath) {
        entry = entries.get(entryName(external_node_path_.posix.join(external_node_path_.posix.dirname(entryName(name)), entry.linkpath)));
    }
    return entry?.type === 'File' ? entry : null;
}
/** The content of an entry, following a symbolic link within the archive. */
async function readEntry(path, entries, name) {
    const entry = fileEntry(entries, name);
    if (!entry)
        return null;
    const file = await (0,promises_.open)(path, 'r');
    try {
        return await readAt(file, entry.offset, entry.size);
    }
    finally {
        await file.close();
    }
}
function sha256Digest(content) {
    return `sha256:${(0,external_node_crypto_.createHash)('sha256').update(content).digest('hex')}`;
}

;// CONCATENATED MODULE: external "node:stream/promises"
const external_node_stream_promises_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:stream/promises");
// EXTERNAL MODULE: external "node:os"
var external_node_os_ = __nccwpck_require__(8161);
// EXTERNAL MODULE: ./src/exec.ts
var exec = __nccwpck_require__(3190);
;// CONCATENATED MODULE: ./src/image/layer-store-paths.ts
// The Nix store paths an image's layers hold (`nix/store/<hash>-<name>` entries), for the SBOM.
// Read in the pass the action already makes over the image: from the archive stream while it
// feeds `docker load`, or, for an uncompressed archive file, by seeking over the layers' headers.







const STORE_DIR = '/nix/store';
// A store path's base name: 32 characters of Nix's base32, `-`, a name.
const STORE_ENTRY = /^nix\/store\/([0-9a-df-np-sv-z]{32}-[^/]+)/;
/** `nix/store/<hash>-<name>/...` (with or without `./` or `/`) -> `/nix/store/<hash>-<name>`. */
function storePathOfEntry(path) {
    const match = STORE_ENTRY.exec(path.replace(/^(\.?\/)+/, ''));
    return match ? `${STORE_DIR}/${match[1]}` : null;
}
/**
 * The store paths of the layers `manifest.json` names, in first-seen order. A layer that could
 * not be read as a tar is an error: the SBOM would be incomplete.
 */
function pathsOfLayers(layers, scans, links) {
    const paths = new Set();
    for (const layer of layers) {
        const name = resolveLink(entryName(layer), links);
        const scan = scans.get(name);
        if (!scan)
            throw new Error(`the image archive has no layer ${layer}`);
        if (scan.error !== null)
            throw new Error(`cannot list layer ${layer}: ${scan.error}`);
        for (const path of scan.paths)
            paths.add(path);
    }
    return [...paths];
}
/** A layer may be a symbolic link to another entry (docker save and skopeo share layers so). */
function resolveLink(name, links) {
    let current = name;
    for (let hops = 0; hops < 8; hops++) {
        const target = links.get(current);
        if (target === undefined)
            return current;
        current = entryName(external_node_path_.posix.join(external_node_path_.posix.dirname(current), target));
    }
    return current;
}
/** A tar parser that only lists the store paths its entries name, skipping their data. */
function storePathLister(paths) {
    return new rt({
        strict: true,
        // Returning false makes node-tar skip the entry's data.
        filter: path => {
            const storePath = storePathOfEntry(path);
            if (storePath !== null)
                paths.add(storePath);
            return false;
        }
    });
}
/** One layer of an uncompressed archive file, by seeking, or read through when compressed. */
async function scanLayerAt(archivePath, layer) {
    const scan = { paths: new Set(), error: null };
    try {
        const inner = await indexTar(archivePath, { offset: layer.offset, size: layer.size });
        for (const path of inner.keys()) {
            const storePath = storePathOfEntry(path);
            if (storePath !== null)
                scan.paths.add(storePath);
        }
    }
    catch (error) {
        if (!(await isGzipAt(archivePath, layer.offset))) {
            scan.error = (0,errors/* errorMessage */.g)(error);
            return scan;
        }
        const end = layer.offset + layer.size - 1;
        const lister = storePathLister(scan.paths);
        await (0,external_node_stream_promises_namespaceObject.pipeline)((0,external_node_fs_.createReadStream)(archivePath, { start: layer.offset, end }), lister).catch((failure) => {
            scan.error = (0,errors/* errorMessage */.g)(failure);
        });
    }
    return scan;
}
async function isGzipAt(path, offset) {
    const file = await (0,promises_.open)(path, 'r');
    try {
        const magic = Buffer.alloc(2);
        await file.read(magic, 0, 2, offset);
        return magic[0] === 0x1f && magic[1] === 0x8b;
    }
    finally {
        await file.close();
    }
}
/**
 * Collects the store paths of every file entry of an archive stream, to be fed each entry as
 * node-tar's outer parser reads it. Which entries are layers is only known from manifest.json,
 * which may come last, so every file that parses as a tar is listed; `layerStorePaths` then
 * keeps the layers'. A layer's own data is parsed as it streams (node-tar also unpacks a
 * gzip layer); nothing is buffered.
 */
class StreamLayerScanner {
    scans = new Map();
    links = new Map();
    /** Call for each outer entry before anything else consumes it. */
    onEntry(entry) {
        const name = entryName(entry.path);
        if (entry.type === 'SymbolicLink' && entry.linkpath)
            this.links.set(name, entry.linkpath);
        if (entry.type !== 'File' || name.endsWith('.json'))
            return;
        const scan = { paths: new Set(), error: null };
        this.scans.set(name, scan);
        const fail = (error) => {
            scan.error ??= (0,errors/* errorMessage */.g)(error);
        };
        const inner = storePathLister(scan.paths);
        inner.on('error', fail);
        entry.on('data', (chunk) => {
            if (scan.error !== null)
                return;
            try {
                inner.write(chunk);
            }
            catch (error) {
                fail(error);
            }
        });
        entry.on('end', () => {
            if (scan.error === null)
                inner.end();
        });
    }
    layerStorePaths(layers) {
        return pathsOfLayers(layers, this.scans, this.links);
    }
}
/**
 * The same for an uncompressed archive file, by seeking: each layer's tar headers are read,
 * its file data skipped. A compressed layer inside it cannot be seeked, and is read in full.
 */
async function layerStorePathsBySeeking(archivePath, entries, layers) {
    const scans = new Map();
    const links = new Map();
    for (const [name, entry] of entries) {
        if (entry.type === 'SymbolicLink' && entry.linkpath)
            links.set(name, entry.linkpath);
    }
    for (const layer of layers) {
        const name = resolveLink(entryName(layer), links);
        const entry = entries.get(name);
        if (!entry || entry.type !== 'File' || scans.has(name))
            continue;
        scans.set(name, await scanLayerAt(archivePath, entry));
    }
    return pathsOfLayers(layers, scans, links);
}

;// CONCATENATED MODULE: ./src/image/archive.ts
// Reading a docker archive as a stream: manifest.json for the RepoTags and the config digest,
// in the same single pass that feeds `docker load`, so a streamed image is never written to disk.













async function listing(read) {
    try {
        return { paths: await read() };
    }
    catch (error) {
        return { error: (0,errors/* errorMessage */.g)(error) };
    }
}
// Configs and manifest.json are small; layers are not read into memory.
const SMALL_ENTRY_LIMIT = 4 * 1024 * 1024;
/**
 * The archive as a plain tar stream: the file, decompressed, or the stream script's output.
 * Always uncompressed, so every consumer (docker load, skopeo, the parser) reads the same
 * thing: docker 20.10 cannot load zstd, and skopeo 1.9 cannot read a gzip docker-archive.
 */
function openArchive(storePath, format) {
    if (format.kind === 'stream')
        return (0,exec/* spawnProducer */.gi)(storePath, []);
    if (format.kind === 'oci-layout')
        return streamOciLayout(storePath);
    if (format.compression === 'zstd')
        return (0,exec/* spawnProducer */.gi)('zstd', ['-dc', '--', storePath]);
    const file = (0,external_node_fs_.createReadStream)(storePath);
    if (format.compression === 'none')
        return { stdout: file, done: (0,external_node_stream_promises_namespaceObject.finished)(file) };
    const gunzip = (0,external_node_zlib_.createGunzip)();
    return { stdout: gunzip, done: (0,external_node_stream_promises_namespaceObject.pipeline)(file, gunzip) };
}
/**
 * An OCI layout as a docker archive stream (docker 20.10 cannot load an OCI layout). skopeo
 * writes a docker archive sequentially, so it can write into a FIFO that is read as it goes;
 * it cannot open /dev/stdout when that is node's socket pair.
 */
function streamOciLayout(layoutDir) {
    const archive = new external_node_stream_.PassThrough();
    const done = (async () => {
        const fifoDir = await (0,promises_.mkdtemp)((0,external_node_path_.join)((0,external_node_os_.tmpdir)(), 'nix-container-oci-'));
        const fifo = (0,external_node_path_.join)(fifoDir, 'archive.tar');
        try {
            await (0,exec/* run */.eF)('mkfifo', [fifo], { silent: true });
            const skopeo = (0,exec/* spawnProducer */.gi)('skopeo', [
                'copy',
                '-q',
                `oci:${layoutDir}`,
                `docker-archive:${fifo}`
            ]);
            skopeo.stdout.resume();
            await (0,exec/* settleAll */.j3)([(0,external_node_stream_promises_namespaceObject.pipeline)((0,external_node_fs_.createReadStream)(fifo), archive), skopeo.done]);
        }
        finally {
            await (0,promises_.rm)(fifoDir, { recursive: true, force: true });
        }
    })();
    return { stdout: archive, done };
}
/** An uncompressed docker archive: docker, skopeo and the metadata reader use the file itself. */
function isPlainArchive(format) {
    return format.kind === 'docker-archive' && format.compression === 'none';
}
/** A path skopeo can read as `docker-archive:`: seekable and uncompressed. */
function needsPlainCopy(format) {
    return !isPlainArchive(format);
}
/** Also write the plain archive to `path` while others read it. */
function copyArchiveTo(archive, path) {
    const file = (0,external_node_fs_.createWriteStream)(path);
    archive.pipe(file);
    return (0,external_node_stream_promises_namespaceObject.finished)(file);
}
/** Parse manifest.json (pure, for tests). */
function parseManifest(text) {
    let parsed;
    try {
        parsed = JSON.parse(text);
    }
    catch {
        throw new Error('manifest.json in the image archive is not valid JSON');
    }
    const valid = Array.isArray(parsed) &&
        parsed.length > 0 &&
        parsed.every((entry) => typeof entry?.Config === 'string' && Array.isArray(entry.Layers));
    if (!valid)
        throw new Error('manifest.json in the image archive has no image (Config, Layers)');
    return parsed;
}
/** Read the metadata from an archive stream. The stream may be read by others at the same time. */
async function readArchiveMetadata(archive, options = {}) {
    const digests = new Map();
    // Configs are JSON files; layers never are, so only these are kept.
    const jsonFiles = new Map();
    let manifestText = null;
    const layers = options.storePaths ? new StreamLayerScanner() : null;
    const parser = new rt({
        onReadEntry: (entry) => {
            layers?.onEntry(entry);
            const path = entryName(entry.path);
            if (entry.type !== 'File' || entry.size > SMALL_ENTRY_LIMIT) {
                entry.resume();
                return;
            }
            const chunks = [];
            entry.on('data', (chunk) => chunks.push(chunk));
            entry.on('end', () => {
                const content = Buffer.concat(chunks);
                if (path === 'manifest.json')
                    manifestText = content.toString('utf8');
                digests.set(path, sha256Digest(content));
                if (path.endsWith('.json'))
                    jsonFiles.set(path, content);
            });
        }
    });
    const parsed = new Promise((resolve, reject) => {
        parser.on('end', resolve);
        parser.on('error', reject);
        archive.on('error', reject);
    });
    archive.pipe(parser);
    await parsed;
    const manifest = manifestOf(manifestText);
    const metadata = metadataFrom(manifest, config => {
        const content = jsonFiles.get(entryName(config));
        const digest = digests.get(entryName(config));
        return content && digest ? { digest, content } : null;
    });
    if (!layers)
        return metadata;
    return { ...metadata, storePaths: await listing(() => layers.layerStorePaths(manifest.Layers)) };
}
/**
 * The same from an uncompressed archive file, by seeking: milliseconds instead of a read of
 * every layer.
 */
async function readPlainArchiveMetadata(path, options = {}) {
    const entries = await indexTar(path);
    const manifest = await readEntry(path, entries, 'manifest.json');
    const config = manifest && parseManifest(manifest.toString('utf8'))[0]?.Config;
    const configContent = config ? await readEntry(path, entries, config) : null;
    const first = manifestOf(manifest?.toString('utf8') ?? null);
    const metadata = metadataFrom(first, () => configContent ? { digest: sha256Digest(configContent), content: configContent } : null);
    if (!options.storePaths)
        return metadata;
    const storePaths = await listing(() => layerStorePathsBySeeking(path, entries, first.Layers));
    return { ...metadata, storePaths };
}
/** The image manifest.json describes (its first entry), with every entry's RepoTags. */
function manifestOf(manifestText) {
    if (manifestText === null)
        throw new Error('the image archive has no manifest.json');
    const manifest = parseManifest(manifestText);
    const allRepoTags = manifest.flatMap(entry => entry.RepoTags ?? []);
    return { ...manifest[0], allRepoTags };
}
function metadataFrom(first, configOf) {
    const config = configOf(first.Config);
    if (!config)
        throw new Error(`the image archive has no config file ${first.Config}`);
    return {
        repoTags: first.allRepoTags,
        configDigest: config.digest,
        layerCount: first.Layers.length,
        platform: platformOrNull(config.content.toString('utf8'))
    };
}
/** A single-platform run does not need the platform: a config without one is not an error here. */
function platformOrNull(configJson) {
    try {
        return platformOfConfig(configJson);
    }
    catch {
        return null;
    }
}

;// CONCATENATED MODULE: ./src/image/layers.ts
// An uncompressed docker archive, layer by layer: the image config names each layer by its
// uncompressed digest (`rootfs.diff_ids`), so what a registry already holds can be known
// without reading a layer. And the `dir:` layout skopeo copies from, whose manifest names the
// registry's compressed blobs for reused layers and the archive's plain tars for new ones.






const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const DOCKER_LAYER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
/** An uncompressed layer: skopeo compresses it on the way to the registry. */
const DOCKER_LAYER_TAR = 'application/vnd.docker.image.rootfs.diff.tar';
/** `rootfs.diff_ids` of an image config (pure, for tests). */
function diffIdsOf(config) {
    const parsed = JSON.parse(config.toString());
    const ids = parsed.rootfs?.diff_ids;
    if (!Array.isArray(ids) || !ids.every(id => typeof id === 'string')) {
        throw new Error('the image config has no rootfs.diff_ids');
    }
    return ids;
}
/** The config and each layer's place in an uncompressed archive file, by seeking. */
async function readArchiveImage(path) {
    const entries = await indexTar(path);
    const manifestText = await readEntry(path, entries, 'manifest.json');
    if (!manifestText)
        throw new Error('the image archive has no manifest.json');
    const first = parseManifest(manifestText.toString('utf8'))[0];
    const config = first && (await readEntry(path, entries, first.Config));
    if (!first || !config)
        throw new Error(`the image archive has no config file ${first?.Config}`);
    const diffIds = diffIdsOf(config);
    if (diffIds.length !== first.Layers.length) {
        throw new Error(`the image config lists ${diffIds.length} layers, manifest.json ${first.Layers.length}`);
    }
    const layers = first.Layers.map((name, index) => {
        const entry = layers_fileEntry(entries, name);
        return { diffId: diffIds[index], offset: entry.offset, size: entry.size };
    });
    return { path, config, configDigest: sha256Digest(config), layers };
}
/** A file entry, following symbolic links within the archive (docker save links equal layers). */
function layers_fileEntry(entries, name) {
    let entry = entries.get(entryName(name));
    for (let hops = 0; entry?.type === 'SymbolicLink' && entry.linkpath && hops < 8; hops++) {
        const target = entryName((0,external_node_path_.join)(name, '..', entry.linkpath));
        entry = entries.get(target);
        name = target;
    }
    if (!entry || entry.type !== 'File')
        throw new Error(`the image archive has no layer ${name}`);
    return entry;
}
/** The layout's manifest: the archive's config, each layer as planned (pure, for tests). */
function layoutManifest(image, layers) {
    return JSON.stringify({
        schemaVersion: 2,
        mediaType: DOCKER_MANIFEST,
        config: { mediaType: DOCKER_CONFIG, size: image.config.length, digest: image.configDigest },
        layers: layers.map(planned => planned.kind === 'reused'
            ? { ...planned.descriptor, mediaType: DOCKER_LAYER_GZIP }
            : { mediaType: DOCKER_LAYER_TAR, size: planned.layer.size, digest: planned.layer.diffId })
    });
}
const hexOf = (digest) => digest.replace(/^sha256:/, '');
/**
 * Write a skopeo `dir:` layout: manifest, config and the new layers' plain tars (copied out of
 * the archive, side by side). Reused blobs are named but absent: skopeo finds them in the
 * destination repository before it would read them.
 */
async function writeDirLayout(image, layers, dir) {
    await (0,promises_.mkdir)(dir, { recursive: true });
    // An image may hold the same layer twice: one blob.
    const newLayers = new Map();
    for (const planned of layers) {
        if (planned.kind === 'new')
            newLayers.set(planned.layer.diffId, planned.layer);
    }
    const copies = [...newLayers.values()].map(layer => copyLayer(image.path, layer, dir));
    await Promise.all([
        ...copies,
        (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'version'), 'Directory Transport Version: 1.1\n'),
        (0,promises_.writeFile)((0,external_node_path_.join)(dir, hexOf(image.configDigest)), image.config),
        (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'manifest.json'), layoutManifest(image, layers))
    ]);
}
async function copyLayer(archivePath, layer, dir) {
    const target = (0,external_node_path_.join)(dir, hexOf(layer.diffId));
    if (layer.size === 0)
        return (0,promises_.writeFile)(target, '');
    const range = { start: layer.offset, end: layer.offset + layer.size - 1 };
    await (0,external_node_stream_promises_namespaceObject.pipeline)((0,external_node_fs_.createReadStream)(archivePath, range), (0,external_node_fs_.createWriteStream)(target));
}

;// CONCATENATED MODULE: ./src/image/oci-index.ts
// OCI image indexes: written here (a few lines of JSON, so its digest is known before any
// push and an unchanged index is recognised as up to date), read back from registries (a ref
// that already is an index contributes its images), and laid out as an OCI layout directory
// that `skopeo copy --multi-arch index-only` pushes as it is.




const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const DOCKER_MANIFEST_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
// One definition of the image manifest type, shared with the layer code.

/** The index JSON for these images, in this order (pure, for tests). */
function buildIndex(entries) {
    const index = {
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: entries.map(entry => ({
            mediaType: entry.mediaType,
            digest: entry.digest,
            size: entry.size,
            platform: orderedPlatform(entry.platform)
        }))
    };
    const bytes = Buffer.from(JSON.stringify(index), 'utf8');
    return { bytes, digest: sha256Digest(bytes) };
}
/** Fixed key order, so that the same images always give the same bytes. */
function orderedPlatform(platform) {
    const { architecture, os, variant } = platform;
    return variant ? { architecture, os, variant } : { architecture, os };
}
function isIndexMediaType(mediaType) {
    return mediaType === OCI_INDEX || mediaType === DOCKER_MANIFEST_LIST;
}
/** What a raw manifest is: an index (its manifests) or one image (pure, for tests). */
function parseManifestKind(raw) {
    const manifest = JSON.parse(raw);
    if (Array.isArray(manifest.manifests) || isIndexMediaType(manifest.mediaType ?? null)) {
        return { kind: 'index', entries: manifest.manifests ?? [] };
    }
    // An OCI manifest may leave its mediaType out; it has a config either way.
    return { kind: 'image', mediaType: manifest.mediaType ?? OCI_MANIFEST };
}
/**
 * The image entries of an index, without attestation manifests (`unknown/unknown`, which
 * BuildKit adds beside each image) (pure, for tests).
 */
function imageEntriesOf(raw, where) {
    const parsed = parseManifestKind(raw);
    if (parsed.kind !== 'index')
        throw new Error(`${where} is not an image index`);
    const images = [];
    for (const entry of parsed.entries) {
        const platform = entry.platform;
        if (!platform?.os || !platform.architecture)
            continue;
        if (platform.os === 'unknown' && platform.architecture === 'unknown')
            continue;
        if (!entry.digest || entry.size === undefined || !entry.mediaType) {
            throw new Error(`${where} has an entry without digest, size or mediaType`);
        }
        if (isIndexMediaType(entry.mediaType)) {
            throw new Error(`${where} nests an index (${entry.digest}): give its images instead`);
        }
        const { os, architecture, variant } = platform;
        images.push({
            mediaType: entry.mediaType,
            digest: entry.digest,
            size: entry.size,
            platform: variant ? { os, architecture, variant } : { os, architecture }
        });
    }
    if (images.length === 0)
        throw new Error(`${where} is an index without any platform image`);
    return images;
}
/** `linux/amd64 sha256:...` for logs and errors. */
function describeEntry(entry) {
    return `${formatPlatform(entry.platform)} ${entry.digest}`;
}
/**
 * An OCI layout whose only image is this index: `skopeo copy --multi-arch index-only
 * oci:<dir>` then pushes the index bytes as they are, its images being in the registry already.
 */
async function writeIndexLayout(dir, index) {
    const blobs = (0,external_node_path_.join)(dir, 'blobs', 'sha256');
    await (0,promises_.mkdir)(blobs, { recursive: true });
    await (0,promises_.writeFile)((0,external_node_path_.join)(blobs, index.digest.slice('sha256:'.length)), index.bytes);
    await (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
    const layoutIndex = {
        schemaVersion: 2,
        manifests: [{ mediaType: OCI_INDEX, digest: index.digest, size: index.bytes.length }]
    };
    await (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'index.json'), JSON.stringify(layoutIndex));
}

// EXTERNAL MODULE: external "node:http"
var external_node_http_ = __nccwpck_require__(7067);
// EXTERNAL MODULE: external "node:https"
var external_node_https_ = __nccwpck_require__(4708);
;// CONCATENATED MODULE: ./src/registry/http.ts
// The registry's HTTP API (distribution spec), spoken directly where a skopeo process costs more
// than the request itself: a manifest query is one GET, and skopeo's start-up is most of its
// 40-50 ms. Credentials come from the Docker config files skopeo reads (their `auths`); Basic
// and token (Bearer) authentication are both spoken. Anything this cannot answer for sure (a
// credential helper, Docker Hub, a proxy, TLS it cannot verify, an unexpected status) is left
// to skopeo.








/** Registries refuse manifests over 4 MiB; an answer bigger than that is not one to read. */
const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
/**
 * One GET with node:http(s), on a connection of its own that closes after it. Not fetch: its
 * first request in a process costs 70-80 ms of loading undici, more than the whole question.
 */
const httpGet = (url, headers, timeoutMs) => new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? external_node_https_.request : external_node_http_.request;
    const fail = (error) => {
        clearTimeout(timer);
        request.destroy();
        reject(error);
    };
    const request = send(target, { method: 'GET', headers, agent: false }, response => {
        const chunks = [];
        let bytes = 0;
        response.on('data', (chunk) => {
            bytes += chunk.length;
            if (bytes > MAX_ANSWER_BYTES)
                fail(new Error(`GET ${url}: an answer over 4 MiB`));
            else
                chunks.push(chunk);
        });
        response.on('error', fail);
        response.on('end', () => {
            clearTimeout(timer);
            resolve({
                status: response.statusCode ?? 0,
                header: name => {
                    const value = response.headers[name.toLowerCase()];
                    return Array.isArray(value) ? value.join(', ') : (value ?? null);
                },
                body: Buffer.concat(chunks)
            });
        });
    });
    // unref: a bound on this request, never a reason for the step's process to stay.
    const timer = setTimeout(() => {
        fail(Object.assign(new Error(`GET ${url} timed out`), { name: 'TimeoutError' }));
    }, timeoutMs).unref();
    request.on('error', fail);
    request.end();
});
/** A Get made of a fetch (the mount's, whose callers and tests give one). */
function getOverFetch(fetchImpl) {
    return async (url, headers, timeoutMs) => {
        const response = await fetchImpl(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
        const body = Buffer.from(await response.arrayBuffer());
        return { status: response.status, header: name => response.headers.get(name), body };
    };
}
/** A registry failure worth another attempt: the message names the status, as retry.ts reads it. */
class TransientRegistryError extends Error {
}
/** Who asks, in the registry's logs. */
const USER_AGENT = 'nix-container-action';
/** Docker Hub's references say docker.io; its API lives elsewhere. */
function apiHost(registry) {
    return registry === 'docker.io' ? 'registry-1.docker.io' : registry;
}
/** `http://` for loopback registries (as docker and the action's skopeo flags treat them). */
function baseUrl(registry) {
    return `${isLoopbackHost(registry) ? 'http' : 'https'}://${apiHost(registry)}`;
}
/** `Bearer realm="...",service="..."` -> scheme and parameters (pure, for tests). */
function parseChallenge(header) {
    if (!header)
        return null;
    const match = /^\s*(\w+)\s*(.*)$/.exec(header);
    if (!match)
        return null;
    const params = {};
    for (const [, key, quoted, bare] of (match[2] ?? '').matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]*))/g)) {
        params[key.toLowerCase()] = quoted ?? bare ?? '';
    }
    return { scheme: match[1].toLowerCase(), params };
}
/** The token URL for a Bearer challenge, asking for these scopes (pure, for tests). */
function tokenUrl(params, scopes) {
    if (!params.realm)
        throw new Error('the registry asked for a token but named no realm');
    const url = new URL(params.realm);
    if (params.service)
        url.searchParams.set('service', params.service);
    for (const scope of scopes)
        url.searchParams.append('scope', scope);
    return url.toString();
}
function basicHeader(credentials) {
    return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
}
function failIfTransient(status, what) {
    if (status === 429 || status >= 500) {
        throw new TransientRegistryError(`${what}: HTTP ${status}`);
    }
}
/** The Authorization header a 401's challenge asks for, or null when there is no way to answer it. */
async function authorize(challengeHeader, scopes, credentials, get, timeoutMs) {
    const challenge = parseChallenge(challengeHeader);
    if (challenge?.scheme === 'basic')
        return credentials ? basicHeader(credentials) : null;
    if (challenge?.scheme !== 'bearer')
        return null;
    const headers = { 'User-Agent': USER_AGENT };
    if (credentials)
        headers.Authorization = basicHeader(credentials);
    const response = await get(tokenUrl(challenge.params, scopes), headers, timeoutMs);
    failIfTransient(response.status, 'token request');
    if (response.status < 200 || response.status > 299)
        return null;
    const body = JSON.parse(response.body.toString('utf8'));
    const token = body.token ?? body.access_token;
    if (!token)
        return null;
    src_core/* setSecret */.Pq(token);
    return `Bearer ${token}`;
}
/** The Docker config files skopeo would read for credentials, in its order. */
function credentialFiles(authFile) {
    if (authFile)
        return [authFile];
    const files = [];
    if (process.env.REGISTRY_AUTH_FILE)
        files.push(process.env.REGISTRY_AUTH_FILE);
    if (process.env.XDG_RUNTIME_DIR) {
        files.push((0,external_node_path_.join)(process.env.XDG_RUNTIME_DIR, 'containers', 'auth.json'));
    }
    files.push((0,external_node_path_.join)((0,external_node_os_.homedir)(), '.config', 'containers', 'auth.json'));
    files.push((0,external_node_path_.join)(process.env.DOCKER_CONFIG || (0,external_node_path_.join)((0,external_node_os_.homedir)(), '.docker'), 'config.json'));
    return files;
}
/** `https://ghcr.io/v1/` and `ghcr.io` name the same registry. */
function hostOfAuthKey(key) {
    return key.replace(/^https?:\/\//, '').split('/')[0] ?? '';
}
/** The `auths` entry for a registry in a Docker config's text (pure, for tests). */
function credentialsIn(configText, registry) {
    return credentialsOf(JSON.parse(configText), registry);
}
function credentialsOf(config, registry) {
    const wanted = registry === 'docker.io' ? ['docker.io', 'index.docker.io'] : [registry];
    for (const [key, entry] of Object.entries(config.auths ?? {})) {
        if (!wanted.includes(hostOfAuthKey(key)))
            continue;
        if (entry.username && entry.password) {
            return { username: entry.username, password: entry.password };
        }
        if (entry.auth) {
            const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
            const colon = decoded.indexOf(':');
            if (colon > 0)
                return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
        }
    }
    return null;
}
/**
 * Does a Docker config hold what only skopeo can use for this registry: a credential helper,
 * or an `auths` entry without a user and password (an identity or registry token)?
 */
function needsSkopeo(config, registry) {
    if (config.credsStore || Object.keys(config.credHelpers ?? {}).length > 0)
        return true;
    const listed = Object.keys(config.auths ?? {}).some(key => hostOfAuthKey(key) === registry);
    return listed && credentialsOf(config, registry) === null;
}
/**
 * Credentials for a registry from the first config file that has them (null: anonymous), and
 * whether a file read on the way is not JSON or holds what only skopeo can use (needsSkopeo):
 * then only skopeo can say what it would send.
 */
async function searchCredentials(registry, authFile) {
    let unsure = false;
    for (const file of credentialFiles(authFile)) {
        const text = await (0,promises_.readFile)(file, 'utf8').catch(() => null);
        if (text === null)
            continue;
        let config;
        try {
            config = JSON.parse(text);
        }
        catch {
            unsure = true; // not JSON: skopeo would fail on it too
            continue;
        }
        unsure ||= needsSkopeo(config, registry);
        const credentials = credentialsOf(config, registry);
        if (credentials)
            return { credentials, unsure };
    }
    return { credentials: null, unsure };
}
/** Credentials for a registry from the first config file that has them; null: anonymous. */
async function findCredentials(registry, authFile) {
    return (await searchCredentials(registry, authFile)).credentials;
}
/** The manifest types skopeo accepts, so that the registry answers both alike. */
const MANIFEST_TYPES = [
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.docker.distribution.manifest.v1+prettyjws',
    'application/vnd.docker.distribution.manifest.v1+json'
].join(', ');
/** Distribution's error codes for "no such manifest" and "no such repository". */
const MISSING_CODES = new Set(['MANIFEST_UNKNOWN', 'NAME_UNKNOWN']);
/** Does a 404's body say the manifest or repository is unknown (pure, for tests)? */
function saysMissing(body) {
    try {
        const parsed = JSON.parse(body);
        return (parsed.errors ?? []).some(error => MISSING_CODES.has(error.code ?? ''));
    }
    catch {
        return false;
    }
}
/** Network failures of a request that another attempt may get past, in retry.ts's words. */
const TRANSIENT_NETWORK = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    EPIPE: 'connection reset (broken pipe)',
    ETIMEDOUT: 'timed out',
    UND_ERR_CONNECT_TIMEOUT: 'timed out',
    UND_ERR_SOCKET: 'connection reset',
    ENOTFOUND: 'no such host',
    EAI_AGAIN: 'temporary failure in name resolution'
};
/** The transient network failure behind a fetch error, in retry.ts's words; null: another. */
function transientNetworkFailure(error) {
    // Read by shape: AbortSignal's DOMException and undici's errors may come from another realm.
    const failure = error;
    if (failure?.name === 'TimeoutError')
        return 'timed out';
    const code = failure?.code ?? failure?.cause?.code;
    return (typeof code === 'string' && TRANSIENT_NETWORK[code]) || null;
}
/** The variables through which skopeo (Go's net/http) would use a proxy. */
const PROXY_VARIABLES = ['HTTPS_PROXY', 'HTTP_PROXY', 'ALL_PROXY'];
/** Is a proxy configured for this job (any case, as Go and curl read them)? (pure, for tests) */
function proxyConfigured(env) {
    return PROXY_VARIABLES.some(name => Boolean(env[name] || env[name.toLowerCase()]));
}
/**
 * The manifest's bytes under a ref, asked with one GET: its text; null when the registry says
 * it has no such manifest or repository. A transient failure (5xx, 429, a refused or reset
 * connection, a timeout) throws, for the caller's retries: each attempt is one request.
 * undefined when this way cannot tell for sure (a credential helper, an authentication it
 * cannot answer, TLS it cannot verify, any other status): skopeo is asked then, and its answers
 * and errors are the ones the action has always had.
 */
async function fetchRawManifest(ref, authFile, timeoutMs, get = httpGet) {
    const parsed = parseReference(ref);
    const registry = parsed.domain;
    // Docker Hub (library/ names, its own limits) and refs without a registry: skopeo's. So is
    // a job behind a proxy: skopeo goes through it, node:http would not.
    if (registry === null || registry === 'docker.io' || proxyConfigured(process.env)) {
        return undefined;
    }
    const { credentials, unsure } = await searchCredentials(registry, authFile);
    if (unsure)
        return undefined;
    const reference = parsed.digest ?? parsed.tag ?? 'latest';
    const url = `${baseUrl(registry)}/v2/${parsed.path}/manifests/${reference}`;
    const ask = (authorization) => get(url, {
        Accept: MANIFEST_TYPES,
        'User-Agent': USER_AGENT,
        ...(authorization ? { Authorization: authorization } : {})
    }, timeoutMs);
    try {
        let response = await ask(null);
        if (response.status === 401) {
            const scopes = [`repository:${parsed.path}:pull`];
            const header = response.header('www-authenticate');
            const authorization = await authorize(header, scopes, credentials, get, timeoutMs);
            if (authorization === null)
                return undefined;
            response = await ask(authorization);
        }
        failIfTransient(response.status, `query ${ref}`);
        const body = response.body.toString('utf8');
        if (response.status === 404)
            return saysMissing(body) ? null : undefined;
        if (response.status !== 200)
            return undefined;
        // The digest is of the bytes: a text that does not give them back is skopeo's to read. A
        // pinned ref's answer must be those very bytes.
        if (!Buffer.from(body, 'utf8').equals(response.body))
            return undefined;
        if (parsed.digest !== null && sha256Digest(body) !== parsed.digest)
            return undefined;
        return body;
    }
    catch (error) {
        if (error instanceof TransientRegistryError)
            throw error;
        const transient = transientNetworkFailure(error);
        if (transient !== null)
            throw new TransientRegistryError(`query ${ref}: ${transient}`);
        src_core/* debug */.Yz(`${ref}: the registry's API did not answer (${String(error)}); asking skopeo`);
        return undefined;
    }
}

;// CONCATENATED MODULE: ./src/registry/retry.ts
// Retrying registry operations that failed for reasons that are not the user's: connection
// refused or reset, timeouts, 5xx, 429. Authentication, permission and "no such thing"
// failures are final and fail at once.



/**
 * An HTTP status code as registries and their clients print it: after `status`, `code` or
 * `HTTP` (`invalid status code from registry 503`, `HTTP status: 429`). A bare number is not
 * enough: refs, ports and tags in the same text hold digits too (`127.0.0.1:34045`,
 * `app:build-401`), and they must not decide whether a push is retried.
 */
function httpStatusPattern(codes) {
    return new RegExp(`(?:status|code|http)[^\\d\\n]{0,20}\\b(?:${codes})\\b`, 'i');
}
const FINAL = [
    [
        /unauthorized|authentication required|(incorrect|invalid) username( or |\/)password/i,
        'unauthorized'
    ],
    [httpStatusPattern('401'), 'unauthorized'],
    [/denied|forbidden/i, 'denied'],
    [httpStatusPattern('403'), 'denied'],
    [/name unknown|repository name not known|\bname invalid\b/i, 'unknown repository name'],
    [
        /manifest invalid|manifest unknown|blob unknown|invalid reference/i,
        'invalid manifest or reference'
    ]
];
const TRANSIENT = [
    [/too ?many ?requests/i, '429 too many requests'],
    [httpStatusPattern('429'), '429 too many requests'],
    [/connection refused/i, 'connection refused'],
    [/connection reset|broken pipe|\bEOF\b/i, 'connection reset'],
    [/timeout|timed out|deadline exceeded/i, 'timeout'],
    [/no such host|temporary failure in name resolution/i, 'name resolution failed'],
    [/internal server error|bad gateway|service unavailable|gateway timeout/i, 'server error (5xx)'],
    [httpStatusPattern('50[0-9]'), 'server error (5xx)']
];
/** The text a failure is judged by: a command's stderr (and message), or an error's message. */
function failureText(error) {
    if (error instanceof exec/* CommandError */.Qd)
        return `${error.stderr}\n${error.message}`;
    return (0,errors/* errorMessage */.g)(error);
}
/** Decide whether a failure is worth another attempt (pure, for tests). */
function classifyFailure(text) {
    // Final reasons win: "unauthorized" in a 5xx body is still unauthorized.
    for (const [pattern, reason] of FINAL) {
        if (pattern.test(text))
            return { transient: false, reason };
    }
    for (const [pattern, reason] of TRANSIENT) {
        if (pattern.test(text))
            return { transient: true, reason };
    }
    return { transient: false, reason: lastLine(text) };
}
function lastLine(text) {
    return text.trim().split('\n').pop()?.trim() ?? '';
}
const DEFAULT_DELAYS = { baseDelayMs: 1000, maxDelayMs: 30_000 };
/** Exponential backoff with jitter: base * 2^(n-1), plus up to half of it again, capped. */
function backoffMs(attempt, policy, random = Math.random) {
    const exponential = policy.baseDelayMs * 2 ** (attempt - 1);
    return Math.min(policy.maxDelayMs, Math.round(exponential * (1 + random() / 2)));
}
const sleepFor = (ms) => new Promise(resolve => setTimeout(resolve, ms));
/** Error thrown after the last attempt, or at once for a final failure. */
class OperationError extends Error {
    what;
    failure;
    attempts;
    constructor(what, failure, attempts, cause) {
        const tries = attempts > 1 ? ` after ${attempts} attempts` : '';
        super(`${what} failed${tries}: ${failure.reason}`, { cause });
        this.what = what;
        this.failure = failure;
        this.attempts = attempts;
        this.name = 'OperationError';
    }
}
/**
 * Run `operation`, retrying transient failures up to `policy.attempts` attempts in all, each
 * retry logged with its reason.
 */
async function withRetries(what, policy, operation) {
    const sleep = policy.sleep ?? sleepFor;
    for (let attempt = 1;; attempt++) {
        try {
            return await operation();
        }
        catch (error) {
            const failure = classifyFailure(failureText(error));
            if (!failure.transient || attempt >= policy.attempts) {
                throw new OperationError(what, failure, attempt, error);
            }
            const askedSeconds = (await policy.retryAfter?.(error).catch(() => null)) ?? null;
            const delay = askedSeconds !== null
                ? Math.min(askedSeconds * 1000, policy.maxDelayMs)
                : backoffMs(attempt, policy, policy.random);
            const waitText = askedSeconds !== null ? `${askedSeconds} s (Retry-After)` : `${(delay / 1000).toFixed(1)} s`;
            src_core/* warning */.$e(`${what}: ${failure.reason} (attempt ${attempt} of ${policy.attempts}); retrying in ${waitText}`);
            await sleep(delay);
        }
    }
}

;// CONCATENATED MODULE: ./src/registry/commands.ts
// Talking to registries through the standard tools on GitHub runners: skopeo for manifest
// queries and daemonless copies, docker for pushes through the daemon.








/** Queries and logins answer in seconds; a registry that has not answered by then never will. */
const QUICK_OPERATION_SECONDS = 30;
/** Tests shorten the quick operations' bound (seconds) through this variable: no input. */
const QUICK_TIMEOUT_VARIABLE = 'NIX_CONTAINER_ACTION_QUICK_TIMEOUT';
/** The quick operations' bound: QUICK_OPERATION_SECONDS unless the test variable says less. */
function quickOperationSeconds(env = process.env) {
    const value = Number(env[QUICK_TIMEOUT_VARIABLE]);
    return Number.isFinite(value) && value > 0 && value < QUICK_OPERATION_SECONDS
        ? value
        : QUICK_OPERATION_SECONDS;
}
/** Pushes and copies move whole images: bounded, but generously. */
const TRANSFER_SECONDS = 3600;

function isLoopbackRegistry(ref) {
    const domain = parseReference(ref).domain;
    return domain !== null && isLoopbackHost(domain);
}
/** skopeo's TLS flag for one side of a copy (`--src-`, `--dest-` or plain for inspect). */
function tlsArgs(side, ref) {
    if (!isLoopbackRegistry(ref))
        return [];
    return [side ? `--${side}-tls-verify=false` : '--tls-verify=false'];
}
/** skopeo's credentials file: the action's own Docker config after it logged in. */
function authArgs(flag, authFile) {
    return authFile ? [flag, authFile] : [];
}
/** Parse a raw manifest (pure, for tests). */
function parseRemoteManifest(raw) {
    const manifest = JSON.parse(raw);
    return {
        digest: sha256Digest(raw),
        mediaType: manifest.mediaType ?? null,
        configDigest: manifest.config?.digest ?? null
    };
}
// What skopeo says when a registry has no such manifest or repository. Matched as phrases, not
// as a bare `404`: the ref in the same text (a port such as 127.0.0.1:34045) may hold those
// digits, and a 503 taken for "not there" would skip the retry and push blind.
const NOT_FOUND = new RegExp([
    'manifest unknown',
    'name unknown',
    'repository name not known',
    '404 not found',
    httpStatusPattern('404').source
].join('|'), 'i');
/** Does skopeo's stderr say the registry has no such manifest (pure, for tests)? */
function isMissingManifest(stderr) {
    return NOT_FOUND.test(stderr);
}
/** The manifest a ref points at, or null when the registry has no such ref. */
async function inspectManifest(ref, authFile) {
    const raw = await inspectRawManifest(ref, authFile);
    return raw === null ? null : parseRemoteManifest(raw);
}
/** The manifest's bytes as the registry serves them, or null when there is no such ref. */
async function inspectRawManifest(ref, authFile) {
    // One GET where the registry's API can answer for sure (most of a skopeo run is its start).
    const answer = await fetchRawManifest(ref, authFile, quickOperationSeconds() * 1000);
    if (answer !== undefined)
        return answer;
    return skopeoInspect(['--raw'], ref, authFile);
}
/** The image config's bytes (`skopeo inspect --config --raw`), or null when there is no such ref. */
async function inspectRawConfig(ref, authFile) {
    return skopeoInspect(['--config', '--raw'], ref, authFile);
}
async function skopeoInspect(flags, ref, authFile) {
    try {
        const { stdout } = await (0,exec/* run */.eF)('skopeo', [
            'inspect',
            ...flags,
            ...authArgs('--authfile', authFile),
            ...tlsArgs(null, ref),
            `docker://${ref}`
        ], { silent: true, timeoutSeconds: quickOperationSeconds() });
        return stdout;
    }
    catch (error) {
        if (error instanceof exec/* CommandError */.Qd && isMissingManifest(error.stderr))
            return null;
        throw error;
    }
}
/** The environment of a skopeo call that may write big temporary files. */
function skopeoTempEnv(tempDir) {
    // containers/image puts them under TMPDIR (/var/tmp by default).
    return { TMPDIR: tempDir };
}
/** `skopeo copy` to a registry; returns the manifest digest it wrote. */
async function skopeoCopy(source, destRef, 
/** Where skopeo may write temporary files, and the digest file (RUNNER_TEMP). */
tempDir, authFile, 
/** More `skopeo copy` options, e.g. `--preserve-digests`. */
extraArgs = []) {
    const fromRegistry = source.startsWith('docker://');
    const sourceTls = fromRegistry ? tlsArgs('src', source.slice('docker://'.length)) : [];
    const digestFile = (0,external_node_path_.join)(tempDir, `nix-container-digest-${process.pid}`);
    await (0,exec/* run */.eF)('skopeo', [
        'copy',
        '--digestfile',
        digestFile,
        ...extraArgs,
        ...(fromRegistry ? authArgs('--src-authfile', authFile) : []),
        ...authArgs('--dest-authfile', authFile),
        ...sourceTls,
        ...tlsArgs('dest', destRef),
        source,
        `docker://${destRef}`
    ], { env: skopeoTempEnv(tempDir), timeoutSeconds: TRANSFER_SECONDS });
    return (await (0,promises_.readFile)(digestFile, 'utf8')).trim();
}
/** `v1: digest: sha256:... size: 528` -> the digest. */
function parsePushDigest(stdout) {
    return /digest:\s*(sha256:[a-f0-9]{64})/.exec(stdout)?.[1] ?? null;
}
/** `docker push`; returns the manifest digest it reported. */
async function dockerPush(ref) {
    const { stdout } = await (0,exec/* run */.eF)('docker', ['push', ref], { timeoutSeconds: TRANSFER_SECONDS });
    const digest = parsePushDigest(stdout);
    if (!digest)
        throw new Error(`docker push ${ref} reported no digest:\n${stdout}`);
    return digest;
}
/** `docker login` with the password on stdin (never in argv). */
async function dockerLogin(registry, credentials) {
    await (0,exec/* run */.eF)('docker', ['login', '--username', credentials.username, '--password-stdin', registry], {
        input: credentials.password,
        timeoutSeconds: quickOperationSeconds()
    });
}
async function commands_dockerLogout(registry) {
    await run('docker', ['logout', registry], { timeoutSeconds: quickOperationSeconds() });
}
/** `skopeo login` into the given credentials file, password on stdin. */
async function skopeoLogin(registry, credentials, authFile) {
    const tls = isLoopbackHost(registry) ? ['--tls-verify=false'] : [];
    await (0,exec/* run */.eF)('skopeo', [
        'login',
        '--authfile',
        authFile,
        ...tls,
        '--username',
        credentials.username,
        '--password-stdin',
        registry
    ], { input: credentials.password, timeoutSeconds: quickOperationSeconds() });
}
async function commands_skopeoLogout(registry, authFile) {
    await run('skopeo', ['logout', '--authfile', authFile, registry], {
        timeoutSeconds: quickOperationSeconds()
    });
}
/**
 * How long a registry that answered 429 asks to wait: its Retry-After on the API root, which
 * docker and skopeo do not print. Seconds, or null when it does not say.
 */
async function probeRetryAfter(registry) {
    const scheme = isLoopbackHost(registry) ? 'http' : 'https';
    const response = await fetch(`${scheme}://${registry}/v2/`, { signal: AbortSignal.timeout(5000) });
    await response.body?.cancel();
    return response.status === 429 ? parseRetryAfter(response.headers.get('retry-after')) : null;
}
/** `withRetries` for an operation on `ref`'s registry: a 429 there is waited out as it asks. */
function withRegistryRetries(what, ref, policy, operation) {
    return withRetries(what, { ...policy, retryAfter: retryAfterFor(ref) }, operation);
}
/** For a 429, ask the ref's registry how long to wait. */
function retryAfterFor(ref) {
    return async (error) => {
        const text = (0,errors/* errorMessage */.g)(error);
        const domain = parseReference(ref).domain;
        if (!domain || !classifyFailure(text).reason.startsWith('429'))
            return null;
        return probeRetryAfter(domain);
    };
}
/** `Retry-After: 3` or an HTTP date -> seconds (pure, for tests). */
function parseRetryAfter(value, now = Date.now()) {
    if (value === null || value.trim() === '')
        return null;
    if (/^\d+$/.test(value.trim()))
        return Number(value.trim());
    const date = Date.parse(value);
    return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

;// CONCATENATED MODULE: ./src/registry/merge-sources.ts
// The `merge` input: images already pushed (by tag or by digest, perhaps as indexes of their
// own) become the entries of one new index. Nothing is built; every platform is read from the
// image's own config in the registry.





async function inspect(ref, what, options) {
    const raw = await withRegistryRetries(`read ${what} of ${ref}`, ref, options.retry, () => what === 'config'
        ? inspectRawConfig(ref, options.authFile)
        : inspectRawManifest(ref, options.authFile));
    if (raw === null)
        throw new Error(`merge: ${ref} is not in the registry`);
    return raw;
}
/** Every platform image the `merge` refs name, each checked against its config. */
async function readMergeSources(refs, options) {
    const images = [];
    for (const ref of refs) {
        const repository = repositoryOf(parseReference(ref));
        const raw = await inspect(ref, 'manifest', options);
        const kind = parseManifestKind(raw);
        const manifests = kind.kind === 'index'
            ? imageEntriesOf(raw, ref)
            : [{ mediaType: kind.mediaType, digest: sha256Digest(raw), size: Buffer.byteLength(raw) }];
        for (const manifest of manifests) {
            const source = `${repository}@${manifest.digest}`;
            const manifestRaw = kind.kind === 'index' ? await inspect(source, 'manifest', options) : raw;
            const configDigest = JSON.parse(manifestRaw).config
                ?.digest;
            if (!configDigest)
                throw new Error(`merge: ${source} (from ${ref}) has no image config`);
            const platform = platformOfConfig(await inspect(source, 'config', options));
            images.push({
                from: ref,
                source,
                entry: { ...manifest, platform },
                configDigest,
                fromIndex: kind.kind === 'index'
            });
        }
    }
    checkDistinctPlatforms(images.map(image => ({
        name: image.fromIndex ? `${image.from} (its entry ${image.entry.digest})` : image.from,
        platform: image.entry.platform
    })));
    return images;
}
/** `linux/amd64 from app:amd64` for the log. */
function describeMergeImage(image) {
    return `${formatPlatform(image.entry.platform)} from ${image.from}`;
}

;// CONCATENATED MODULE: ./src/image/compressed-archive.ts
// An image archive with compressed layers, made from a plain docker archive, for `docker load`.
// Docker's containerd image store keeps the blobs it loads as they are and pushes them so:
// loaded from a plain archive (what Nix's images hold inside), every layer would go to the
// registry uncompressed. Loaded from this one, the store keeps compressed blobs and `docker push`
// sends them, as the classic store compresses on push.
//
// It is an OCI image layout (which that store loads) whose manifest the action writes: Docker's
// schema 2 for gzip layers (what the classic store and skopeo push), OCI for zstd. So the
// manifest digest, which is that store's image ID, is known before the load. The layers are
// compressed side by side, each hashed as it is written.












const compressed_archive_DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const compressed_archive_DOCKER_CONFIG = 'application/vnd.docker.container.image.v1+json';
const compressed_archive_OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
const compressed_archive_OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
/** The image manifest's media type for layers compressed so. */
function manifestMediaType(compression) {
    return compression.format === 'gzip' ? compressed_archive_DOCKER_MANIFEST : compressed_archive_OCI_MANIFEST;
}
/** The image manifest (pure, for tests): the config and the layers, as they were written. */
function compressedManifest(config, layers, compression) {
    const docker = compression.format === 'gzip';
    return JSON.stringify({
        schemaVersion: 2,
        mediaType: manifestMediaType(compression),
        config: { mediaType: docker ? compressed_archive_DOCKER_CONFIG : OCI_CONFIG, ...config },
        layers: layers.map(layer => ({ mediaType: layerMediaType(compression.format), ...layer }))
    });
}
/**
 * index.json (pure, for tests). It names no image, so that `docker load` reports the ID of
 * exactly this image rather than a name another load on the same daemon could take meanwhile.
 */
function layoutIndex(manifest, manifestType) {
    return JSON.stringify({
        schemaVersion: 2,
        mediaType: compressed_archive_OCI_INDEX,
        manifests: [{ mediaType: manifestType, ...manifest }]
    });
}
/**
 * Write the first image of the plain docker archive at `plainPath` into `dir` (made if missing)
 * as an OCI layout with compressed layers: the same config, so the same image ID on the classic
 * store and the same `image-id`. Deterministic for a given compressor: the same image makes the
 * same blobs, and so the same manifest digest.
 */
async function writeCompressedArchive(plainPath, dir, compression) {
    const entries = await indexTar(plainPath);
    const manifestText = await readEntry(plainPath, entries, 'manifest.json');
    if (!manifestText)
        throw new Error('the image archive has no manifest.json');
    const image = parseManifest(manifestText.toString('utf8'))[0];
    if (!image)
        throw new Error('manifest.json in the image archive has no image');
    const config = await readEntry(plainPath, entries, image.Config);
    if (!config)
        throw new Error(`the image archive has no config file ${image.Config}`);
    const layerEntries = image.Layers.map(name => {
        const entry = fileEntry(entries, name);
        if (!entry)
            throw new Error(`the image archive has no layer file ${name}`);
        return entry;
    });
    const blobs = (0,external_node_path_.join)(dir, 'blobs', 'sha256');
    await (0,promises_.mkdir)(blobs, { recursive: true });
    const layers = await mapConcurrently(layerEntries, (0,external_node_os_.availableParallelism)(), entry => compressRegion(plainPath, entry, blobs, compression));
    const configBlob = await writeBlob(blobs, config);
    const manifestBlob = await writeBlob(blobs, Buffer.from(compressedManifest(configBlob, layers, compression)));
    return finishLayout(dir, [configBlob, ...layers], manifestBlob, manifestMediaType(compression));
}
/**
 * The same with gzip layers compressed by skopeo (its parallel gzip, which also stores what
 * does not compress, several times faster than zlib on both): skopeo writes the image as a
 * `dir:` image, whose manifest is the one a skopeo push writes (Docker schema 2, the config as
 * built), and its blobs become the layout's.
 */
async function writeCompressedArchiveWithSkopeo(plainPath, dir, compression, tempDir) {
    const dirImage = `${dir}-dir`;
    try {
        await (0,exec/* run */.eF)('skopeo', [
            'copy',
            '-q',
            ...skopeoCompressionArgs(compression),
            `docker-archive:${plainPath}`,
            `dir:${dirImage}`
        ], { env: { TMPDIR: tempDir } });
        const manifestText = await (0,promises_.readFile)((0,external_node_path_.join)(dirImage, 'manifest.json'));
        const manifest = JSON.parse(manifestText.toString('utf8'));
        const blobs = (0,external_node_path_.join)(dir, 'blobs', 'sha256');
        await (0,promises_.mkdir)(blobs, { recursive: true });
        const parts = [manifest.config, ...manifest.layers];
        for (const part of new Set(parts.map(p => p.digest.slice('sha256:'.length)))) {
            await (0,promises_.rename)((0,external_node_path_.join)(dirImage, part), (0,external_node_path_.join)(blobs, part));
        }
        const manifestBlob = await writeBlob(blobs, manifestText);
        return await finishLayout(dir, parts, manifestBlob, manifest.mediaType);
    }
    finally {
        await (0,promises_.rm)(dirImage, { recursive: true, force: true });
    }
}
async function finishLayout(dir, parts, manifestBlob, manifestType) {
    await (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
    await (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'index.json'), layoutIndex(manifestBlob, manifestType));
    const blobFiles = [...new Set([...parts, manifestBlob].map(blobPath))];
    return {
        dir,
        files: ['oci-layout', 'index.json', ...blobFiles],
        manifestDigest: manifestBlob.digest,
        layerCount: parts.length - 1 // the config is the first part
    };
}
/** The archive as a tar stream, for `docker load`. */
function archiveStream(archive) {
    // node-tar's stream is a Minipass, which iterates as a Node stream reads.
    return external_node_stream_.Readable.from(Qn({ cwd: archive.dir, portable: true, noMtime: true }, archive.files));
}
const blobPath = (blob) => `blobs/sha256/${blob.digest.slice('sha256:'.length)}`;
async function writeBlob(blobs, content) {
    const blob = { digest: sha256Digest(content), size: content.length };
    await (0,promises_.writeFile)((0,external_node_path_.join)(blobs, blob.digest.slice('sha256:'.length)), content);
    return blob;
}
/** Compress one layer of the plain archive into a blob, hashing it as it is written. */
async function compressRegion(path, entry, blobs, compression) {
    // Read streams take an inclusive end, which an empty entry does not have.
    const source = entry.size === 0
        ? external_node_stream_.Readable.from([])
        : (0,external_node_fs_.createReadStream)(path, { start: entry.offset, end: entry.offset + entry.size - 1 });
    const hash = (0,external_node_crypto_.createHash)('sha256');
    let size = 0;
    const counting = new external_node_stream_.Transform({
        transform(chunk, _encoding, done) {
            hash.update(chunk);
            size += chunk.length;
            done(null, chunk);
        }
    });
    const partial = (0,external_node_path_.join)(blobs, `.partial-${(0,external_node_crypto_.randomBytes)(6).toString('hex')}`);
    await (0,external_node_stream_promises_namespaceObject.pipeline)(source, compressor(compression), counting, (0,external_node_fs_.createWriteStream)(partial));
    const blob = { digest: `sha256:${hash.digest('hex')}`, size };
    await (0,promises_.rename)(partial, (0,external_node_path_.join)(blobs, blob.digest.slice('sha256:'.length)));
    return blob;
}
/** `work` on every item, at most `limit` at a time; the results in the items' order. */
async function mapConcurrently(items, limit, work) {
    const results = new Array(items.length);
    let next = 0;
    const worker = async () => {
        while (next < items.length) {
            const index = next++;
            results[index] = await work(items[index]);
        }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
    return results;
}

// EXTERNAL MODULE: ./node_modules/@actions/io/lib/io.js
var lib_io = __nccwpck_require__(8701);
;// CONCATENATED MODULE: ./src/registry/outcome.ts
// What a push did to each ref, and what the refs ended up as: shared by the single-image push
// and the index pushes.


/** `<repository>@<digest>` for a full reference. */
function imageRefFor(ref, digest) {
    return `${repositoryOf(parseReference(ref))}@${digest}`;
}
/** One digest for all refs, or an error that lists them. */
function commonDigest(outcomes) {
    const distinct = [...new Set(outcomes.map(outcome => outcome.digest))];
    if (distinct.length !== 1) {
        const list = outcomes.map(outcome => `${outcome.ref} -> ${outcome.digest}`).join(', ');
        throw new Error(`the refs ended up at different manifest digests: ${list}`);
    }
    return distinct[0];
}
/** The failure, and which refs made it before it (pure, for tests). */
function partialPushMessage(error, done, refs) {
    const reason = (0,errors/* errorMessage */.g)(error);
    if (done.length === 0)
        return reason;
    const doneRefs = done.map(outcome => outcome.ref);
    const notDone = refs.filter(ref => !doneRefs.includes(ref));
    return `${reason}\nPushed: ${doneRefs.join(', ')}. Not pushed: ${notDone.join(', ')}`;
}

;// CONCATENATED MODULE: ./src/registry/index-push.ts
// Multi-platform pushes, all with skopeo (docker can push neither an untagged image nor an
// index): each platform image goes to every target repository by digest, with no tag, then
// one OCI image index naming them goes under every ref. The index is written here, so its
// digest is known before the push and a ref that already holds it is left alone.












/** The distinct repositories of these refs, in order. */
function repositoriesOf(refs) {
    return [...new Set(refs.map(ref => repositoryOf(parseReference(ref))))];
}
async function requireSkopeo(why) {
    if ((await lib_io/* which */.K7('skopeo', false)) === '') {
        throw new Error(`${why} needs skopeo on PATH (preinstalled on GitHub-hosted Ubuntu runners; ` +
            'apt-get install skopeo elsewhere)');
    }
}
/**
 * Write a plain docker archive as a `dir:` image with compressed layers: its manifest.json
 * is the manifest the registry will hold (gzip: the same one a plain skopeo push writes,
 * docker schema 2; zstd: the action's OCI manifest; the config as built either way), so its
 * digest is known before the push.
 */
async function archiveToManifestDir(archivePath, options) {
    const dir = await (0,promises_.mkdtemp)((0,external_node_path_.join)(options.tempDir, 'nix-container-image-'));
    const layoutDir = `${dir}-layout`;
    try {
        const compression = options.compression ?? DEFAULT_LAYER_COMPRESSION;
        // zstd: the action's own layout (skopeo's OCI conversion would rewrite the config).
        const source = compression.format === 'zstd'
            ? await writeCompressedArchive(archivePath, layoutDir, compression)
            : null;
        await (0,exec/* run */.eF)('skopeo', [
            'copy',
            '-q',
            ...(source ? ['--preserve-digests'] : skopeoCompressionArgs(compression)),
            source ? `oci:${source.dir}` : `docker-archive:${archivePath}`,
            `dir:${dir}`
        ], {
            env: skopeoTempEnv(options.tempDir),
            timeoutSeconds: TRANSFER_SECONDS
        });
        const manifest = await (0,promises_.readFile)((0,external_node_path_.join)(dir, 'manifest.json'));
        const mediaType = JSON.parse(manifest.toString('utf8')).mediaType;
        if (!mediaType)
            throw new Error(`skopeo wrote a manifest without mediaType to ${dir}`);
        return { dir, mediaType, digest: sha256Digest(manifest), size: manifest.length };
    }
    catch (error) {
        await (0,promises_.rm)(dir, { recursive: true, force: true });
        throw error;
    }
    finally {
        await (0,promises_.rm)(layoutDir, { recursive: true, force: true });
    }
}
/**
 * Make `repository@<digest>` hold the manifest: up to date when it already does, otherwise
 * copied with its digest preserved.
 */
async function pushManifestByDigest(source, digest, repository, options) {
    const target = `${repository}@${digest}`;
    const existing = await withRegistryRetries(`query ${target}`, target, options.retry, () => inspectManifest(target, options.authFile));
    if (existing?.digest === digest)
        return { repository, action: 'up to date' };
    const from = 'dir' in source ? `dir:${source.dir}` : `docker://${source.ref}`;
    const action = 'dir' in source ? 'pushed' : 'copied';
    const written = await withRegistryRetries(`${action === 'pushed' ? 'push' : 'copy'} ${target}`, target, options.retry, () => skopeoCopy(from, target, options.tempDir, options.authFile, ['--preserve-digests']));
    if (written !== digest) {
        throw new Error(`pushing ${target} wrote manifest ${written} instead`);
    }
    return { repository, action };
}
/** Push one index of `entries` (already in every ref's repository) under every ref. */
async function pushIndex(options) {
    const index = buildIndex(options.entries);
    src_core/* info */.pq(`Index ${index.digest}: ${options.entries.map(describeEntry).join(', ')}`);
    const layout = await (0,promises_.mkdtemp)((0,external_node_path_.join)(options.tempDir, 'nix-container-index-'));
    const outcomes = [];
    try {
        await writeIndexLayout(layout, index);
        for (const ref of options.refs) {
            try {
                const outcome = await pushIndexTo(ref, index, layout, options);
                src_core/* info */.pq(`${ref}: ${outcome.action} (${outcome.digest})`);
                outcomes.push(outcome);
                options.onOutcome?.(outcome);
            }
            catch (error) {
                throw new Error(partialPushMessage(error, outcomes, options.refs), { cause: error });
            }
        }
    }
    finally {
        await (0,promises_.rm)(layout, { recursive: true, force: true });
    }
    const digest = commonDigest(outcomes);
    return { ...index, digest, imageRef: imageRefFor(options.refs[0], digest), outcomes };
}
async function pushIndexTo(ref, index, layout, options) {
    const existing = await withRegistryRetries(`query ${ref}`, ref, options.retry, () => inspectManifest(ref, options.authFile));
    if (existing?.digest === index.digest)
        return { ref, digest: index.digest, action: 'up to date' };
    const digest = await withRegistryRetries(`push index to ${ref}`, ref, options.retry, () => skopeoCopy(`oci:${layout}`, ref, options.tempDir, options.authFile, [
        '--multi-arch',
        'index-only',
        '--preserve-digests'
    ]));
    return { ref, digest, action: 'pushed' };
}

;// CONCATENATED MODULE: ./src/image/format.ts
// What a Nix build output is, decided by its content rather than its name: dockerTools
// names outputs freely (`image.tar.gz`, `stream-app`, ...).


/** The `image-format` output. */
function formatName(format) {
    return format.kind;
}
function describeFormat(format) {
    if (format.kind === 'stream')
        return 'an executable that streams a docker archive';
    if (format.kind === 'oci-layout')
        return 'an OCI image layout directory';
    const compression = { none: 'uncompressed', gzip: 'gzip', zstd: 'zstd' }[format.compression];
    return `a docker archive (${compression})`;
}
const HEADER_BYTES = 512;
const EXECUTABLE_BITS = 0o111;
/** Classify the first bytes of a regular file (pure, for tests). */
function classifyHeader(header, executable) {
    const startsWith = (...bytes) => bytes.every((b, i) => header[i] === b);
    if (startsWith(0x1f, 0x8b))
        return { kind: 'docker-archive', compression: 'gzip' };
    if (startsWith(0x28, 0xb5, 0x2f, 0xfd))
        return { kind: 'docker-archive', compression: 'zstd' };
    // POSIX and GNU tar both put "ustar" at offset 257.
    if (header.subarray(257, 262).toString('latin1') === 'ustar') {
        return { kind: 'docker-archive', compression: 'none' };
    }
    const isScript = startsWith(0x23, 0x21); // "#!"
    const isElf = startsWith(0x7f, 0x45, 0x4c, 0x46);
    if (executable && (isScript || isElf))
        return { kind: 'stream' };
    return null;
}
/** Detect the format of a build output, or throw an error that says what was found. */
async function detectFormat(path) {
    const info = await (0,promises_.stat)(path);
    if (info.isDirectory())
        return detectDirectoryFormat(path);
    const header = Buffer.alloc(HEADER_BYTES);
    const file = await (0,promises_.open)(path, 'r');
    try {
        await file.read(header, 0, HEADER_BYTES, 0);
    }
    finally {
        await file.close();
    }
    const format = classifyHeader(header, (info.mode & EXECUTABLE_BITS) !== 0);
    if (format)
        return format;
    if (looksLikeNix2container(header)) {
        throw new Error(`${path} looks like nix2container's image JSON, whose layers stay in the Nix store: ` +
            "it needs nix2container's own skopeo (the nix: transport). Push it with its " +
            '`copyToRegistry` app, or build a docker archive (dockerTools) for this action');
    }
    const preview = JSON.stringify(header.subarray(0, 16).toString('latin1'));
    throw new Error(`${path} is not a container image: expected a docker archive (tar, tar.gz, tar.zst), an ` +
        `executable that streams one, or an OCI layout directory, but it starts with ${preview}. ` +
        'Does the flake attribute build an image (dockerTools.buildImage, buildLayeredImage, ' +
        'streamLayeredImage)?');
}
async function detectDirectoryFormat(path) {
    const isOciLayout = await (0,promises_.access)((0,external_node_path_.join)(path, 'oci-layout')).then(() => true, () => false);
    if (isOciLayout)
        return { kind: 'oci-layout' };
    throw new Error(`${path} is a directory without an oci-layout file; expected a docker archive ` +
        '(tar, tar.gz, tar.zst), an executable that streams one, or an OCI image layout');
}
/** nix2container's image JSON: `{"version": 1, "image-config": {...}, "layers": [...]}`. */
function looksLikeNix2container(header) {
    const start = header.toString('utf8').trimStart();
    return start.startsWith('{') && start.includes('"image-config"');
}

;// CONCATENATED MODULE: ./src/nix/command.ts
// Running `nix` with the action's own settings, and store paths in batches a command line holds.
// Stages, the store cache and the SBOM all call Nix, so this lives below them: none has to
// import another to get the same flags.

/** The action's own Nix calls enable these without touching the user's nix.conf. */
const NIX_FEATURE_ARGS = ['--extra-experimental-features', 'nix-command flakes'];
/** `nix <args>` with the features the action relies on (flakes, the nix command). */
function runNix(args, options) {
    return (0,exec/* run */.eF)('nix', [...NIX_FEATURE_ARGS, ...args], options);
}
// Keeps each command line far below the kernel's argument limit (2 MiB for argv and the
// environment), whatever the closure size: a store path is at most 256 bytes, and even staged
// under a scratch directory 2,000 of them take under 700 KiB. Each command costs a start of
// Nix (~50 ms), so the batches are as large as that allows.
const PATHS_PER_COMMAND = 2000;
/** Store paths (or anything) in groups small enough for one command line each. */
function command_batches(items, size = PATHS_PER_COMMAND) {
    const result = [];
    for (let i = 0; i < items.length; i += size)
        result.push(items.slice(i, i + size));
    return result;
}
/** The Nix system this machine builds for by default (`x86_64-linux`, ...). */
async function currentSystem() {
    const { stdout } = await runNix(['eval', '--impure', '--raw', '--expr', 'builtins.currentSystem'], {
        silent: true
    });
    return stdout.trim();
}
/** NIX_REMOTE that leaves Nix opening the store itself (unset, `local`, `auto`), not a daemon. */
function isLocalStore(nixRemote) {
    return ['', 'local', 'auto'].includes(nixRemote ?? '');
}
/**
 * Whether the store trusts this user (a daemon ignores restricted settings, such as `builders`,
 * from a user it does not trust): `nix store info --json` (2.19+), `nix store ping --json`
 * before it; null when neither says (Nix 2.8 has no --json there).
 */
async function storeTrustsUser() {
    for (const command of ['info', 'ping']) {
        const result = await runNix(['store', command, '--json'], { silent: true, allowFailure: true });
        if (result.exitCode === 0)
            return parseTrusted(result.stdout);
    }
    return null;
}
/**
 * Whether the store trusts this user, from `nix store info|ping --json` (Nix 2.15 on says
 * `trusted`, as 1/0 or true/false); null when Nix does not say (older Nix, or not a daemon).
 */
function parseTrusted(stdout) {
    try {
        const json = JSON.parse(stdout);
        if (json.trusted === 1 || json.trusted === true)
            return true;
        if (json.trusted === 0 || json.trusted === false)
            return false;
    }
    catch {
        // Nix before --json: nothing said.
    }
    return null;
}

;// CONCATENATED MODULE: ./src/sbom/nar-hash.ts
// A store path's NAR hash, as `nix path-info --json` prints it, to the hex digest an SBOM
// carries. Nix has printed it in several ways: `sha256:<nix32>` (Nix 2.3), SRI
// `sha256-<base64>` (Nix 2.4 to 2.32), and `{"algorithm", "format", "hash"}` (JSON format
// version 2 of later releases).
const SHA256_BYTES = 32;
// Nix's own base32 ("nix32"): no e, o, u, t; digits are read from the end of the string.
const nar_hash_NIX32_ALPHABET = '0123456789abcdfghijklmnpqrsvwxyz';
/** Decode Nix's base32 (libutil's parseHash): the last character holds the lowest bits. */
function decodeNix32(text, byteLength) {
    if (text.length !== Math.ceil((byteLength * 8) / 5)) {
        throw new Error(`"${text}" is not ${byteLength} bytes in Nix's base32`);
    }
    const bytes = Buffer.alloc(byteLength);
    for (let n = 0; n < text.length; n++) {
        const digit = nar_hash_NIX32_ALPHABET.indexOf(text[text.length - n - 1]);
        if (digit < 0)
            throw new Error(`"${text}" is not Nix's base32`);
        const bit = n * 5;
        const i = Math.floor(bit / 8);
        const j = bit % 8;
        bytes[i] = bytes[i] | ((digit << j) & 0xff);
        const carry = digit >> (8 - j);
        if (i + 1 < byteLength)
            bytes[i + 1] = bytes[i + 1] | carry;
        else if (carry !== 0)
            throw new Error(`"${text}" overflows ${byteLength} bytes`);
    }
    return bytes;
}
/** The digest of a `sha256` hash written in any of Nix's encodings, by its length. */
function decodeSha256(encoded) {
    if (/^[0-9a-f]{64}$/i.test(encoded))
        return Buffer.from(encoded, 'hex');
    if (encoded.length === 52)
        return decodeNix32(encoded, SHA256_BYTES);
    const bytes = Buffer.from(encoded, 'base64');
    if (bytes.length !== SHA256_BYTES || !/^[A-Za-z0-9+/]+=*$/.test(encoded)) {
        throw new Error(`"${encoded}" is not a SHA-256 digest in base16, nix32 or base64`);
    }
    return bytes;
}
/** `narHash` from `nix path-info --json`, as lower-case hex (a SHA-256 digest). */
function narHashToHex(narHash) {
    if (typeof narHash === 'string') {
        const match = /^([a-z0-9]+)[-:](.+)$/.exec(narHash);
        if (!match || match[1] !== 'sha256')
            throw new Error(`unexpected narHash ${narHash}`);
        return decodeSha256(match[2]).toString('hex');
    }
    if (typeof narHash === 'object' && narHash !== null) {
        const { algorithm, hash } = narHash;
        if (algorithm === 'sha256' && typeof hash === 'string') {
            return /^sha256[-:]/.test(hash) ? narHashToHex(hash) : decodeSha256(hash).toString('hex');
        }
    }
    throw new Error(`unexpected narHash ${JSON.stringify(narHash)}`);
}

;// CONCATENATED MODULE: ./src/sbom/path-info.ts
// What Nix knows about store paths: NAR hash, references, deriver (`nix path-info --json`).
// The JSON has changed shape across Nix releases: an array of objects with full paths
// (up to 2.18), an object keyed by path (2.19 on), base names beside `storeDir` (format
// version 2); all are read here.


const path_info_STORE_DIR = '/nix/store';
// Fewer, bigger calls than the default batch (one process start each), still well under the
// kernel's argument limit.
const PATHS_PER_CALL = 2000;
/** A base name (`<hash>-<name>`) or a full path, as a full path. */
function fullPath(path, storeDir) {
    return path.startsWith('/') ? path : `${storeDir}/${path}`;
}
/** Parse `nix path-info --json` output (pure, for tests). Invalid paths are left out. */
function parsePathInfo(json) {
    const parsed = JSON.parse(json);
    const entries = Array.isArray(parsed)
        ? parsed.map(info => [undefined, info])
        : Object.entries(parsed);
    const infos = new Map();
    for (const [key, raw] of entries) {
        // Nix 2.8 lists an invalid path as `{"path": ..., "valid": false}`; 2.19+ as null.
        if (!raw || raw.narHash === undefined)
            continue;
        const storeDir = raw.storeDir ?? path_info_STORE_DIR;
        const path = raw.path ?? key;
        if (!path)
            throw new Error('nix path-info --json gave an entry without a path');
        infos.set(fullPath(path, storeDir), {
            narHashHex: narHashToHex(raw.narHash),
            references: (raw.references ?? []).map(ref => fullPath(ref, storeDir)),
            deriver: raw.deriver ? fullPath(raw.deriver, storeDir) : null
        });
    }
    return infos;
}
/** Ask Nix about each path; a path Nix does not have is missing from the result. */
async function queryPathInfo(paths) {
    const infos = new Map();
    for (const batch of command_batches(paths, PATHS_PER_CALL)) {
        const { stdout } = await runNix(['path-info', '--json', '--', ...batch], { silent: true });
        for (const [path, info] of parsePathInfo(stdout))
            infos.set(path, info);
    }
    return infos;
}

// EXTERNAL MODULE: ./src/sbom/drv-name.ts
var drv_name = __nccwpck_require__(1837);
;// CONCATENATED MODULE: ./src/sbom/subject.ts
// Which image an SBOM is about, from the refs it was tagged with and the pushed digest (pure).


function imageSubject(refs, digest, storePath) {
    const first = refs[0];
    if (first === undefined) {
        const name = (0,drv_name/* storePathName */.y)(storePath);
        return { name, version: digest ?? '', bomRef: storePath, storePath };
    }
    const parsed = parseReference(first);
    const name = repositoryOf(parsed);
    if (digest !== null)
        return { name, version: digest, bomRef: `${name}@${digest}`, storePath };
    const tag = parsed.tag ?? 'latest';
    return { name, version: tag, bomRef: `${name}:${tag}`, storePath };
}

;// CONCATENATED MODULE: ./src/sbom/index.ts
// The SBOM of one image: the store paths its layers hold (read by image/ in the pass that
// loads or inspects it), what Nix knows of each, written as one CycloneDX JSON file.





// The CycloneDX library takes about 50 ms to load: loaded once an image has been read (when
// the SBOM is certain to be wanted), while the push waits on the registry, not at start-up.
let cycloneDx;
function loadCycloneDx() {
    cycloneDx ??= Promise.all(/* import() */[__nccwpck_require__.e(761), __nccwpck_require__.e(660)]).then(__nccwpck_require__.bind(__nccwpck_require__, 5660));
    return cycloneDx;
}
/**
 * Ask Nix about the layers' store paths now, while the image is tested and pushed (the answer
 * does not depend on them), so that the SBOM stage only writes the file. An error waits for
 * writeSbom to report it; undefined when there is nothing to ask.
 */
function askPathInfoEarly(listed) {
    if (!listed || 'error' in listed)
        return undefined;
    const asked = queryPathInfo(listed.paths);
    asked.catch(() => undefined); // not unhandled: writeSbom awaits it
    loadCycloneDx().catch(() => undefined); // the same
    return asked;
}
async function writeSbom(options) {
    const listed = options.storePaths;
    if (!listed)
        throw new Error('the store paths of the layers were not read');
    // The image loaded (or was read) fine: only the SBOM's reader could not list a layer.
    if ('error' in listed)
        throw new Error(`cannot list the store paths in the image: ${listed.error}`);
    const infos = await (options.pathInfo ?? queryPathInfo(listed.paths));
    const unknown = listed.paths.filter(path => !infos.has(path));
    if (unknown.length > 0) {
        src_core/* warning */.$e(`${unknown.length} store paths in the image are not in this machine's Nix store, so the ` +
            `SBOM gives no hash for them (e.g. layers of a base image): ${unknown.join(', ')}`);
    }
    const { buildBom, serializeBom } = await loadCycloneDx();
    const bom = buildBom(options.image, listed.paths, infos);
    const path = (0,external_node_path_.join)(options.dir, `nix-container-sbom-${sbomFileId(options.configDigest)}.cdx.json`);
    await (0,promises_.writeFile)(path, serializeBom(bom));
    src_core/* info */.pq(`SBOM: ${listed.paths.length} store paths, written to ${path}`);
    return { path, componentCount: listed.paths.length };
}
/** One file per image, and per run: the config digest and the process. */
function sbomFileId(configDigest) {
    return `${configDigest.replace(/^sha256:/, '').slice(0, 12)}-${process.pid}`;
}

;// CONCATENATED MODULE: ./src/stages/build.ts
// The build stage: `nix build <flake>#<attribute>`, reading the output path from --json
// (Nix 2.8 has no --print-out-paths) and leaving no `result` link in the workspace.





function installable(options) {
    return `${options.flake}#${options.attribute}`;
}
function buildArgs(options) {
    return [
        'build',
        installable(options),
        '--no-link',
        '--json',
        '--print-build-logs',
        ...(options.system ? ['--system', options.system] : []),
        ...options.nixArgs
    ];
}
/** The `out` path (or the only output) of the first built derivation. */
function parseBuildJson(stdout) {
    let entries;
    try {
        entries = JSON.parse(stdout);
    }
    catch {
        throw new Error(`nix build --json printed something that is not JSON: ${stdout.slice(0, 200)}`);
    }
    const first = Array.isArray(entries) ? entries[0] : undefined;
    const outputs = first?.outputs ?? {};
    const storePath = outputs.out ?? Object.values(outputs)[0];
    if (!first || !storePath)
        throw new Error(`nix build --json named no output path: ${stdout}`);
    return { storePath, drvPath: first.drvPath ?? '' };
}
const MISSING_ATTRIBUTE = /does not provide attribute/;
// A builder for another architecture that this machine cannot run (no QEMU binfmt handler),
// or a derivation Nix will not build here at all (no extra-platforms, no remote builder).
const FOREIGN_SYSTEM = /Exec format error|is required to build '[^']*', but I am a/;
/** What to set when a build for another system fails for want of an emulator or builder. */
function foreignSystemHint(system) {
    return (`Building for ${system} on this machine needs an emulator or a remote builder: ` +
        'register QEMU with binfmt (docker/setup-qemu-action) and add ' +
        `"extra-platforms = ${system}" to nix-conf, or give a "builders" line for a ${system} ` +
        'machine, or build on a native runner and combine the images with merge');
}
async function buildImage(options) {
    try {
        const { stdout, stderr } = await runNix(buildArgs(options));
        const result = parseBuildJson(stdout);
        // Nix falls back to building here when it may: the build passed, but not where it was meant to.
        for (const { uri, said } of builderFailures(stderr)) {
            src_core/* warning */.$e(`remote builder ${uri || '(unnamed)'} could not be used, Nix built without it: ${said}`);
        }
        src_core/* info */.pq(`Built ${result.storePath}`);
        return result;
    }
    catch (error) {
        if (error instanceof exec/* CommandError */.Qd && MISSING_ATTRIBUTE.test(error.stderr)) {
            throw new Error(await missingAttributeMessage(options));
        }
        const builders = error instanceof exec/* CommandError */.Qd
            ? builderFailureMessage(error.stderr, (0,external_node_os_.userInfo)().username)
            : null;
        if (builders !== null) {
            throw new Error(`nix build ${installable(options)} failed: ${builders}`);
        }
        if (error instanceof exec/* CommandError */.Qd) {
            const hint = options.system !== null && FOREIGN_SYSTEM.test(error.stderr)
                ? ` ${foreignSystemHint(options.system)}.`
                : '';
            throw new Error(`nix build ${installable(options)} failed.${hint} The end of its log:\n${error.tail()}`);
        }
        throw error;
    }
}
/** Say what the flake offers instead, for the system the build was for. */
async function missingAttributeMessage(options) {
    const system = options.system ?? (await currentSystem());
    const head = `flake ${options.flake} has no attribute "${options.attribute}" for ${system}`;
    const offered = await runNix(['eval', '--json', `${options.flake}#packages.${system}`, '--apply', 'builtins.attrNames'], { silent: true, allowFailure: true });
    if (offered.exitCode !== 0)
        return `${head}, and it has no packages.${system}`;
    const names = JSON.parse(offered.stdout);
    return `${head}; packages.${system} offers: ${names.join(', ') || '(nothing)'}`;
}

// EXTERNAL MODULE: ./src/temp.ts
var temp = __nccwpck_require__(5369);
;// CONCATENATED MODULE: ./src/stages/load.ts
// The load stage: `docker load` the build output, reading its manifest in the same pass.
// Also `inspectImage`, the same metadata without docker, for runs that do not load.









/** Parse every `Loaded image:` and `Loaded image ID:` line of `docker load`. */
function parseDockerLoad(stdout) {
    const images = [];
    const imageIds = [];
    for (const line of stdout.split('\n')) {
        const id = /^Loaded image ID:\s*(\S+)/.exec(line)?.[1];
        const image = /^Loaded image:\s*(\S+)/.exec(line)?.[1];
        if (id)
            imageIds.push(id);
        else if (image)
            images.push(image);
    }
    return { images, imageIds };
}
/** The store `docker info`'s DriverStatus (as JSON) describes (pure, for tests). */
function imageStoreOf(driverStatusJson) {
    return driverStatusJson.includes('io.containerd.snapshotter') ? 'containerd' : 'classic';
}
/**
 * The daemon's image store. A daemon that does not answer is taken for the classic store: the
 * load then fails with docker's own words.
 */
async function daemonImageStore() {
    const info = await (0,exec/* run */.eF)('docker', ['info', '--format', '{{json .DriverStatus}}'], {
        silent: true,
        allowFailure: true
    });
    return info.exitCode === 0 ? imageStoreOf(info.stdout) : 'classic';
}
async function loadImage(options) {
    const compression = options.compression ?? DEFAULT_LAYER_COMPRESSION;
    // The classic store compresses on push, as it always does (gzip, at its own level).
    if ((await daemonImageStore()) === 'containerd')
        return loadCompressed(options, compression);
    const [metadata, load] = isPlainArchive(options.format)
        ? // docker reads the file itself while the metadata is read by seeking.
            await (0,exec/* settleAll */.j3)([
                readPlainArchiveMetadata(options.storePath, options),
                (0,exec/* run */.eF)('docker', ['load', '--input', options.storePath])
            ])
        : await loadStream(options);
    const loaded = parseDockerLoad(load.stdout);
    const named = loaded.images[0] ?? loaded.imageIds[0];
    if (!named)
        throw new Error(`docker load reported no image:\n${load.stdout}`);
    const dockerImage = await ownImage(named, metadata.configDigest);
    return { metadata, loadedImages: loaded.images, dockerImage };
}
/**
 * What the later stages tag, test and push: the image's own ID (its config digest) when the
 * daemon knows the image by it, not the name the archive gave it (`hello:latest`), which
 * another load on the same daemon (a job beside this one) may move to its own image meanwhile.
 * Otherwise the name, checked against the archive.
 */
async function ownImage(named, configDigest) {
    const byId = await (0,exec/* run */.eF)('docker', ['image', 'inspect', '--format', '{{.Id}}', configDigest], {
        silent: true,
        allowFailure: true
    });
    if (byId.exitCode === 0 && byId.stdout.trim() === configDigest)
        return configDigest;
    await crossCheckImageId(named, configDigest);
    return named;
}
/**
 * The containerd image store keeps the layers as loaded and pushes them so: load them compressed
 * (docs/pushing.md). The plain archive on disk (the output itself, the copy for skopeo, or a
 * copy of our own) is read by seeking, each layer compressed side by side, and the OCI layout of
 * them streamed into `docker load`. It names no image, so docker reports the ID of exactly this
 * image (on this store the manifest digest, which the action wrote), which then gets the
 * archive's names.
 */
async function loadCompressed(options, compression) {
    const work = await (0,promises_.mkdtemp)((0,external_node_path_.join)((0,temp/* runnerTemp */.X)(), 'nix-container-load-'));
    try {
        const plainPath = isPlainArchive(options.format)
            ? options.storePath
            : (options.copyTo ?? (0,external_node_path_.join)(work, 'plain.tar'));
        const metadata = await inspectImage({ ...options, copyTo: plainPath });
        if (options.willPushLayers && !(await options.willPushLayers(metadata))) {
            src_core/* info */.pq('Every ref already holds this image, so docker will push none of its layers: loading them as they are');
            return await loadAsItIs(plainPath, metadata);
        }
        src_core/* info */.pq(`docker keeps images in the containerd image store: loading the image's layers ${compression.format}-compressed, so that they are stored and pushed compressed`);
        const layout = (0,external_node_path_.join)(work, 'compressed');
        // gzip by skopeo where it is (GitHub's runners have it): far faster than zlib.
        const archive = compression.format === 'gzip' && (await lib_io/* which */.K7('skopeo', false)) !== ''
            ? await writeCompressedArchiveWithSkopeo(plainPath, layout, compression, work)
            : await writeCompressedArchive(plainPath, layout, compression);
        const load = await (0,exec/* runWithStdin */.i2)('docker', ['load'], archiveStream(archive));
        const imageId = parseDockerLoad(load.stdout).imageIds[0];
        if (imageId !== archive.manifestDigest) {
            throw new Error(`docker load reported ${imageId ?? 'no image ID'} for the image whose manifest is ${archive.manifestDigest}:\n${load.stdout}`);
        }
        for (const name of metadata.repoTags)
            await (0,exec/* run */.eF)('docker', ['tag', imageId, name]);
        return { metadata, loadedImages: metadata.repoTags, dockerImage: imageId };
    }
    finally {
        await (0,promises_.rm)(work, { recursive: true, force: true });
    }
}
/**
 * A plain `docker load` into the containerd store, for an image nothing will be pushed from.
 * Its ID there is a manifest digest docker makes, not the config digest: the loaded name is
 * what the later stages use.
 */
async function loadAsItIs(plainPath, metadata) {
    const load = await (0,exec/* run */.eF)('docker', ['load', '--input', plainPath]);
    const loaded = parseDockerLoad(load.stdout);
    const named = loaded.images[0] ?? loaded.imageIds[0];
    if (!named)
        throw new Error(`docker load reported no image:\n${load.stdout}`);
    return { metadata, loadedImages: loaded.images, dockerImage: named };
}
/** Stream the archive, as plain tar, into docker load, reading its metadata (and copying it) on the way. */
async function loadStream(options) {
    const archive = openArchive(options.storePath, options.format);
    const [metadata, load] = await (0,exec/* settleAll */.j3)([
        readArchiveMetadata(archive.stdout, options),
        (0,exec/* runWithStdin */.i2)('docker', ['load'], archive.stdout),
        archive.done,
        options.copyTo ? copyArchiveTo(archive.stdout, options.copyTo) : Promise.resolve()
    ]);
    return [metadata, load];
}
/** The daemon's image ID should be the archive's config digest; say so when it is not. */
async function crossCheckImageId(dockerImage, configDigest) {
    const { stdout } = await (0,exec/* run */.eF)('docker', ['image', 'inspect', '--format', '{{.Id}}', dockerImage], {
        silent: true
    });
    const daemonId = stdout.trim();
    if (daemonId !== configDigest) {
        src_core/* warning */.$e(`docker reports image ID ${daemonId} for ${dockerImage}, the archive's config is ${configDigest}`);
    }
}
/** The archive's metadata without loading it into docker. */
async function inspectImage(options) {
    if (isPlainArchive(options.format))
        return readPlainArchiveMetadata(options.storePath, options);
    const archive = openArchive(options.storePath, options.format);
    const [metadata] = await (0,exec/* settleAll */.j3)([
        readArchiveMetadata(archive.stdout, options),
        archive.done,
        options.copyTo ? copyArchiveTo(archive.stdout, options.copyTo) : Promise.resolve()
    ]);
    return metadata;
}

;// CONCATENATED MODULE: ./src/stages/login.ts
// Registry login for the push stage. The action logs in through a private copy of the Docker
// config under RUNNER_TEMP: the user's own config is never written, logins made earlier in the
// job (docker/login-action) are used as they are, and the post step's logout plus the removal
// of that directory leave no credentials behind, whatever happened in between.









const GHCR = 'ghcr.io';
/** The Docker config the user's docker commands read. */
function userDockerConfigDir() {
    return process.env.DOCKER_CONFIG || (0,external_node_path_.join)((0,external_node_os_.homedir)(), '.docker');
}
function authFileOf(session) {
    return (0,external_node_path_.join)(session.configDir, 'config.json');
}
/** Which registries to log in to, with which credentials (pure, for tests). */
function planLogins(options, existingLogins) {
    const domains = [...new Set(options.refs.map(ref => parseReference(ref).domain ?? 'docker.io'))];
    if (options.credentials) {
        const registries = options.registry ? [options.registry] : domains;
        return registries.map(registry => ({
            registry,
            credentials: options.credentials,
            as: options.credentials?.username ?? ''
        }));
    }
    // ghcr.io with no credentials given: the workflow's own token, unless already logged in.
    const { githubToken, githubActor } = options;
    if (!githubToken || !githubActor || !domains.includes(GHCR) || existingLogins.includes(GHCR)) {
        return [];
    }
    return [
        {
            registry: GHCR,
            credentials: { username: githubActor, password: githubToken },
            as: `${githubActor} with github-token`
        }
    ];
}
/** Registries the user's Docker config already holds credentials for. */
async function existingLogins(configDir) {
    const config = await readDockerConfig(configDir);
    return [...Object.keys(config.auths ?? {}), ...Object.keys(config.credHelpers ?? {})];
}
async function readDockerConfig(configDir) {
    try {
        return JSON.parse(await (0,promises_.readFile)((0,external_node_path_.join)(configDir, 'config.json'), 'utf8'));
    }
    catch {
        return {};
    }
}
/**
 * A private copy of the user's Docker config, without credential helpers, so that the logins
 * made here land in this file alone (and leave with it).
 */
async function makePrivateConfig(configDir) {
    const config = await readDockerConfig(userDockerConfigDir());
    delete config.credsStore;
    delete config.credHelpers;
    await (0,promises_.mkdir)(configDir, { recursive: true, mode: 0o700 });
    await (0,promises_.writeFile)((0,external_node_path_.join)(configDir, 'config.json'), JSON.stringify(config, null, 2), { mode: 0o600 });
}
function loginHint(registry) {
    return registry === GHCR
        ? 'Check that the token has packages: write (permissions: packages: write in the workflow)'
        : 'Check the username and password';
}
/** Log in where needed; null when nothing needed a login (earlier logins are used as they are). */
async function loginToRegistries(options) {
    const plan = planLogins(options, await existingLogins(userDockerConfigDir()));
    if (plan.length === 0) {
        src_core/* info */.pq('No credentials given: using the logins already in the Docker config, if any');
        return null;
    }
    const session = {
        configDir: (0,external_node_path_.join)((0,temp/* actionTempDir */.O)(options.tempDir), 'docker-config'),
        tool: options.tool,
        registries: []
    };
    await makePrivateConfig(session.configDir);
    // From here on, this process's docker commands read the private config.
    process.env.DOCKER_CONFIG = session.configDir;
    options.saveSession(session);
    for (const login of plan) {
        src_core/* info */.pq(`Logging in to ${login.registry} as ${login.as}`);
        session.registries.push(login.registry);
        options.saveSession(session);
        await loginOnce(login, session, options.retry);
    }
    return session;
}
async function loginOnce(login, session, retry) {
    try {
        await withRetries(`login to ${login.registry}`, retry, () => session.tool === 'skopeo'
            ? skopeoLogin(login.registry, login.credentials, authFileOf(session))
            : dockerLogin(login.registry, login.credentials));
    }
    catch (error) {
        if (error instanceof OperationError && !error.failure.transient) {
            throw new Error(`${error.message}. ${loginHint(login.registry)}`);
        }
        throw error;
    }
}
/** Undo a session: log out of each registry, then remove the private config. Never throws. */
async function logoutOfRegistries(session) {
    process.env.DOCKER_CONFIG = session.configDir;
    for (const registry of session.registries) {
        try {
            if (session.tool === 'skopeo')
                await skopeoLogout(registry, authFileOf(session));
            else
                await dockerLogout(registry);
            core.info(`Logged out of ${registry}`);
        }
        catch (error) {
            core.warning(`logout of ${registry}: ${errorMessage(error)}`);
        }
    }
    await rm(session.configDir, { recursive: true, force: true });
}

;// CONCATENATED MODULE: external "node:timers/promises"
const external_node_timers_promises_namespaceObject = __WEBPACK_EXTERNAL_createRequire(import.meta.url)("node:timers/promises");
;// CONCATENATED MODULE: ./src/stages/test.ts
// The test stage: run the loaded image before anything is pushed. `test` runs a command in it
// (`docker run --rm <image> <args>`); `test-url` starts the image's own command and waits until
// a URL answers 2xx. Each container is named, recorded through `onContainer` (so that post
// removes one a killed main left behind) and removed with `docker rm --force` on a timeout, on
// SIGINT/SIGTERM and in a finally: it never outlives the step.






/** Every test container carries this label (and a `nix-container-test-` name). */
const CONTAINER_LABEL = 'nix-container-action.test';
const OUTPUT_TAIL_LINES = 20;
const OUTPUT_TAIL_CHARS = 4000;
/** How much output is kept while a container runs: enough for the tail. */
const OUTPUT_KEPT_CHARS = 64 * 1024;
const POLL_INTERVAL_MS = 500;
/** One request may take this long before it counts as no answer. */
const PROBE_TIMEOUT_MS = 5000;
/** A signal's cleanup gets this long before the process exits anyway. */
const SIGNAL_CLEANUP_MS = 10_000;
function containerName(random = (0,external_node_crypto_.randomBytes)(6).toString('hex')) {
    return `nix-container-test-${random}`;
}
/** What every test container gets: our name and label, and never a pull of another image. */
function ownContainerArgs(name) {
    return ['--name', name, '--label', CONTAINER_LABEL, '--pull', 'never'];
}
/** `docker run` for `test`: the arguments go after the image, as with `docker run` itself. */
function commandRunArgs(name, image, command) {
    return ['run', '--rm', ...ownContainerArgs(name), image, ...command];
}
/**
 * `docker run` for `test-url`: the image's own command, detached, on the runner's network, so
 * that the URL is fetched as written (`localhost:<port>` is the server's own port) whether the
 * daemon has a bridge or not, and a server that listens on 127.0.0.1 is reachable too.
 */
function serverRunArgs(name, image) {
    return ['run', '--detach', ...ownContainerArgs(name), '--network', 'host', image];
}
/** What an exit code of `docker run` means when docker itself chose it. */
function describeExit(exitCode) {
    const meanings = {
        125: 'docker could not run the container',
        126: 'the command in the image could not be invoked',
        127: 'the command was not found in the image',
        137: 'the container was killed'
    };
    const meaning = meanings[exitCode];
    return `exited with code ${exitCode}${meaning ? ` (${meaning})` : ''}`;
}
function describeProbe(probe) {
    return 'status' in probe ? `HTTP ${probe.status}` : probe.error;
}
/** After one request to the URL: passed, failed, or ask again. */
function decidePoll(state) {
    const { probe, container } = state;
    if ('status' in probe && probe.status >= 200 && probe.status < 300) {
        return { next: 'passed', status: probe.status };
    }
    const last = `last answer: ${describeProbe(probe)}`;
    if (container !== null && !container.running) {
        const how = container.exitCode === null ? 'is gone' : describeExit(container.exitCode);
        return { next: 'failed', reason: `was never answered 2xx: the container ${how} (${last})` };
    }
    if (state.elapsedSeconds >= state.timeoutSeconds) {
        return {
            next: 'failed',
            reason: `did not answer 2xx within ${state.timeoutSeconds} s (${last})`
        };
    }
    return { next: 'wait' };
}
/** `docker inspect --format '{{.State.Status}} {{.State.ExitCode}}'`; null when there is none. */
function parseContainerState(stdout) {
    const [status, code] = (stdout ?? '').trim().split(/\s+/);
    if (status === 'running' || status === 'created' || status === 'restarting') {
        return { running: true };
    }
    const exitCode = code !== undefined && /^-?\d+$/.test(code) ? Number(code) : null;
    return { running: false, exitCode: status ? exitCode : null };
}
/** The last lines of a container's output, bounded in length, for an error message. */
function outputTail(output) {
    const tail = (0,exec/* tailLines */.os)(output, OUTPUT_TAIL_LINES);
    return tail.length > OUTPUT_TAIL_CHARS ? `...${tail.slice(-OUTPUT_TAIL_CHARS)}` : tail;
}
/** The step's error: what failed and how, that nothing was pushed, and the output's tail. */
function testFailureMessage(failure) {
    const tail = outputTail(failure.output);
    const output = tail ? `The container's last output:\n${tail}` : 'The container printed nothing.';
    return `${failure.what} ${failure.reason}, so nothing was pushed. ${output}`;
}
/** The summary's line: `passed: ...`. */
function describeTest(result, options) {
    const parts = [];
    if (result.command) {
        parts.push(`\`${options.command.join(' ')}\` exited 0 in ${result.command.seconds.toFixed(1)} s`);
    }
    if (result.url) {
        parts.push(`${options.url ?? ''} answered ${result.url.status} after ${result.url.seconds.toFixed(1)} s`);
    }
    return `passed: ${parts.join('; ')}`;
}
async function testImage(options) {
    const command = options.command.length > 0 ? await testCommand(options) : null;
    const url = options.url !== null ? await testUrl(options, options.url) : null;
    return { command, url };
}
/** `docker run --rm <image> <command>`, bounded by the timeout. */
async function testCommand(options) {
    const name = containerName();
    const what = `The test \`${options.command.join(' ')}\``;
    return withContainer(name, options.onContainer, async () => {
        let output = '';
        // Set when the timeout removed the container (which ends `docker run`).
        const stopped = { removal: null };
        const started = performance.now();
        const timer = setTimeout(() => {
            src_core/* info */.pq(`Still running after ${options.timeoutSeconds} s: removing ${name}`);
            stopped.removal = removeContainer(name);
        }, options.timeoutSeconds * 1000);
        let exitCode;
        try {
            ;
            ({ exitCode } = await (0,exec/* run */.eF)('docker', commandRunArgs(name, options.image, options.command), {
                allowFailure: true,
                onOutput: text => {
                    output = (output + text).slice(-OUTPUT_KEPT_CHARS);
                }
            }));
        }
        finally {
            clearTimeout(timer);
        }
        const seconds = (performance.now() - started) / 1000;
        if (stopped.removal !== null) {
            await stopped.removal;
            const reason = `did not finish within ${options.timeoutSeconds} s: its container was stopped and removed`;
            throw new Error(testFailureMessage({ what, reason, output }));
        }
        if (exitCode !== 0) {
            throw new Error(testFailureMessage({ what, reason: describeExit(exitCode), output }));
        }
        src_core/* info */.pq(`${what} exited 0 in ${seconds.toFixed(1)} s`);
        return { seconds };
    });
}
/** The image's own command, detached, until the URL answers 2xx or the timeout passes. */
async function testUrl(options, url) {
    const name = containerName();
    const what = `The test-url ${url}`;
    return withContainer(name, options.onContainer, async () => {
        src_core/* info */.pq(`Starting the image's own command (container ${name}, host network); waiting up to ` +
            `${options.timeoutSeconds} s for ${url} to answer 2xx`);
        let output = '';
        const keep = (text) => {
            output = (output + text).slice(-OUTPUT_KEPT_CHARS);
        };
        const start = await (0,exec/* run */.eF)('docker', serverRunArgs(name, options.image), {
            allowFailure: true,
            onOutput: keep
        });
        if (start.exitCode !== 0) {
            const reason = `could not start: \`docker run\` ${describeExit(start.exitCode)}`;
            throw new Error(testFailureMessage({ what, reason, output }));
        }
        const started = performance.now();
        const elapsed = () => (performance.now() - started) / 1000;
        let decision = { next: 'wait' };
        while (decision.next === 'wait') {
            const remainingMs = (options.timeoutSeconds - elapsed()) * 1000;
            const probe = await probeUrl(url, Math.max(100, Math.min(PROBE_TIMEOUT_MS, remainingMs)));
            const answered = 'status' in probe && probe.status >= 200 && probe.status < 300;
            const container = answered ? null : await containerState(name);
            decision = decidePoll({
                url,
                probe,
                container,
                elapsedSeconds: elapsed(),
                timeoutSeconds: options.timeoutSeconds
            });
            if (decision.next === 'wait') {
                await (0,external_node_timers_promises_namespaceObject.setTimeout)(Math.max(0, Math.min(POLL_INTERVAL_MS, (options.timeoutSeconds - elapsed()) * 1000)));
            }
        }
        const seconds = elapsed();
        src_core/* info */.pq(`The container's log:`);
        output = '';
        await (0,exec/* run */.eF)('docker', ['logs', name], { allowFailure: true, onOutput: keep });
        if (decision.next === 'failed') {
            throw new Error(testFailureMessage({ what, reason: decision.reason, output }));
        }
        src_core/* info */.pq(`${url} answered ${decision.status} after ${seconds.toFixed(1)} s`);
        return { status: decision.status, seconds };
    });
}
/** One GET of the URL: its status (after redirects), or why there was none. */
async function probeUrl(url, timeoutMs) {
    const limitMs = Math.max(1, Math.ceil(timeoutMs));
    try {
        const response = await fetch(url, { signal: AbortSignal.timeout(limitMs) });
        await response.body?.cancel();
        return { status: response.status };
    }
    catch (error) {
        // fetch's errors may come from another realm (jest's VM): read them, don't instanceof them.
        const { name, cause } = (error ?? {});
        if (name === 'TimeoutError')
            return { error: `no answer within ${(limitMs / 1000).toFixed(1)} s` };
        const reason = (cause ?? {});
        if (typeof reason.code === 'string')
            return { error: reason.code };
        if (typeof reason.message === 'string')
            return { error: reason.message };
        return { error: (0,errors/* errorMessage */.g)(error) };
    }
}
async function containerState(name) {
    const { exitCode, stdout } = await (0,exec/* run */.eF)('docker', ['inspect', '--format', '{{.State.Status}} {{.State.ExitCode}}', name], { allowFailure: true, silent: true });
    return parseContainerState(exitCode === 0 ? stdout : null);
}
/**
 * Run `work` while the container `name` may exist: it is recorded first, and removed
 * afterwards however `work` ends, or at once when the step is cancelled (SIGINT, SIGTERM).
 */
async function withContainer(name, onContainer, work) {
    onContainer?.(name);
    const onSignal = (signal) => {
        const code = 128 + (external_node_os_.constants.signals[signal] ?? 0);
        src_core/* info */.pq(`${signal}: removing the test container ${name} before exiting`);
        setTimeout(() => process.exit(code), SIGNAL_CLEANUP_MS).unref();
        void removeContainer(name).finally(() => process.exit(code));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    try {
        return await work();
    }
    finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await removeContainer(name);
        onContainer?.(null);
    }
}
/**
 * `docker rm --force`: stops and removes a test container; true when there was one. Never
 * throws (it runs in finally blocks, signal handlers and the post step): a failure is a warning.
 */
async function removeContainer(name) {
    try {
        const result = await (0,exec/* run */.eF)('docker', ['rm', '--force', name], {
            allowFailure: true,
            silent: true
        });
        // A container that is not there: exit 0 (or 1 before docker 23), "No such container".
        if (/no such container/i.test(result.stderr))
            return false;
        if (result.exitCode !== 0) {
            src_core/* warning */.$e(`could not remove the test container ${name}: ${(0,exec/* tailLines */.os)(result.stderr, 5)}`);
            return false;
        }
        return result.stdout.trim() !== '';
    }
    catch (error) {
        src_core/* warning */.$e(`could not remove the test container ${name}: ${(0,errors/* errorMessage */.g)(error)}`);
        return false;
    }
}

;// CONCATENATED MODULE: ./src/signing/simple-signing.ts
// A cosign signature of an image manifest digest, as the registry holds it (pure, for tests):
// the simple-signing payload naming the digest, ECDSA P-256 over its SHA-256, and the OCI
// manifest under the tag `sha256-<hex>.sig` whose layers are the payloads, each with its
// base64 signature in the `dev.cosignproject.cosign/signature` annotation. That is the layout
// cosign writes and that containers/image (skopeo, podman) reads with
// `use-sigstore-attachments`.


const SIMPLE_SIGNING_MEDIA_TYPE = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const OCI_MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
const OCI_CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
const SIGNATURE_TYPE = 'cosign container image signature';
const DIGEST = /^sha256:[a-f0-9]{64}$/;
function checkDigest(digest) {
    if (!DIGEST.test(digest))
        throw new Error(`${JSON.stringify(digest)} is not a sha256: digest`);
}
/** `sha256:<hex>` -> `sha256-<hex>.sig`: the tag cosign and skopeo keep a digest's signatures in. */
function signatureTag(digest) {
    checkDigest(digest);
    return `${digest.replace(':', '-')}.sig`;
}
/** `<repository>:sha256-<hex>.sig`: one line of the `signatures` output. */
function signatureRef(repository, digest) {
    return `${repository}:${signatureTag(digest)}`;
}
/**
 * The payload `cosign sign` writes for a digest (sigstore's payload.Cosign with no
 * annotations): the repository without tag as the identity, `"optional": null`. These exact
 * bytes are signed and stored, so the same repository and digest always give the same payload.
 */
function signaturePayload(repository, digest) {
    checkDigest(digest);
    return Buffer.from(JSON.stringify({
        critical: {
            identity: { 'docker-reference': repository },
            image: { 'docker-manifest-digest': digest },
            type: SIGNATURE_TYPE
        },
        optional: null
    }));
}
/** ECDSA over the payload's SHA-256, ASN.1 DER, base64: the annotation's value. */
function signPayload(payload, privateKey) {
    return (0,external_node_crypto_.sign)('sha256', payload, privateKey).toString('base64');
}
function verifyPayload(payload, signature, publicKey) {
    try {
        return (0,external_node_crypto_.verify)('sha256', payload, publicKey, Buffer.from(signature, 'base64'));
    }
    catch {
        return false;
    }
}
/** The layer that holds one signed payload. */
function signatureLayer(payload, signature) {
    return {
        mediaType: SIMPLE_SIGNING_MEDIA_TYPE,
        digest: sha256Digest(payload),
        size: payload.length,
        annotations: { [SIGNATURE_ANNOTATION]: signature }
    };
}
/** The layers of a `.sig` manifest the registry already holds (parsed from its raw bytes). */
function existingLayers(raw) {
    if (raw === null)
        return [];
    let manifest;
    try {
        manifest = JSON.parse(raw);
    }
    catch {
        throw new Error('it holds something that is not JSON, so it is left alone');
    }
    if (!Array.isArray(manifest.layers) || manifest.manifests !== undefined) {
        throw new Error('it holds something that is not a signature manifest, so it is left alone');
    }
    return manifest.layers;
}
/**
 * Whether `layers` already hold this payload signed by this key: then there is nothing to
 * add (ECDSA signatures differ every time, so the signature itself is not compared; a layer
 * is a match when it names these payload bytes and its signature verifies with the key).
 */
function alreadySigned(layers, payload, publicKey) {
    const digest = sha256Digest(payload);
    return layers.some(layer => {
        const signature = layer.annotations?.[SIGNATURE_ANNOTATION];
        return (layer.mediaType === SIMPLE_SIGNING_MEDIA_TYPE &&
            layer.digest === digest &&
            layer.size === payload.length &&
            typeof signature === 'string' &&
            verifyPayload(payload, signature, publicKey));
    });
}
/**
 * The `.sig` manifest with `layer` appended to the layers already there (those of other keys
 * or other payloads are kept as they are, as cosign and containers/image do). The config is
 * the one containers/image writes: empty but for `rootfs.diff_ids`, one per layer.
 */
function signatureImage(existing, payload, signature) {
    const layers = [...existing, signatureLayer(payload, signature)];
    const config = Buffer.from(JSON.stringify({
        architecture: '',
        os: '',
        config: {},
        rootfs: { type: 'layers', diff_ids: layers.map(layer => layer.digest) }
    }));
    const configDigest = sha256Digest(config);
    const manifest = Buffer.from(JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST_MEDIA_TYPE,
        config: { mediaType: OCI_CONFIG_MEDIA_TYPE, digest: configDigest, size: config.length },
        layers
    }));
    return {
        manifest,
        manifestDigest: sha256Digest(manifest),
        config,
        configDigest,
        blobs: [
            { digest: configDigest, bytes: config },
            { digest: sha256Digest(payload), bytes: payload }
        ],
        layers
    };
}

;// CONCATENATED MODULE: ./src/signing/attach.ts
// Putting a digest's cosign signature into the registry, beside the image: read what the
// `sha256-<hex>.sig` tag holds, leave it alone when this key already signed this payload,
// otherwise append the new signature layer and push the `.sig` manifest with skopeo from a
// `dir:` layout written here (the new payload and config only: the layers already there are
// named but absent, and skopeo finds them in the repository before it would read them).
// `--preserve-digests` makes skopeo push these manifest bytes as they are, media types and
// annotations included, or fail; the digest it reports is checked against them.





/** Sign one pushed digest in one repository, and push the signature beside it. */
async function attachSignature(target, key, options) {
    const ref = signatureRef(target.repository, target.digest);
    const payload = signaturePayload(target.repository, target.digest);
    const raw = await withRegistryRetries(`query ${ref}`, ref, options.retry, () => inspectRawManifest(ref, options.authFile));
    let layers;
    try {
        layers = existingLayers(raw);
    }
    catch (error) {
        throw new Error(`cannot add a signature to ${ref}: ${(0,errors/* errorMessage */.g)(error)}`);
    }
    if (alreadySigned(layers, payload, key.publicKey)) {
        return { ...target, ref, action: 'up to date', signatureCount: layers.length };
    }
    const image = signatureImage(layers, payload, signPayload(payload, key.privateKey));
    const dir = await (0,promises_.mkdtemp)((0,external_node_path_.join)(options.tempDir, 'nix-container-signature-'));
    try {
        await attach_writeDirLayout(dir, image);
        const written = await withRegistryRetries(`push ${ref}`, ref, options.retry, () => skopeoCopy(`dir:${dir}`, ref, options.tempDir, options.authFile, ['--preserve-digests']));
        if (written !== image.manifestDigest) {
            throw new Error(`pushing ${ref} wrote manifest ${written} instead of ${image.manifestDigest}`);
        }
    }
    finally {
        await (0,promises_.rm)(dir, { recursive: true, force: true });
    }
    return { ...target, ref, action: 'signed', signatureCount: image.layers.length };
}
/** skopeo's `dir:` layout: `manifest.json`, `version`, and blobs named by their hex digest. */
async function attach_writeDirLayout(dir, image) {
    await Promise.all([
        (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'version'), 'Directory Transport Version: 1.1\n'),
        (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'manifest.json'), image.manifest),
        ...image.blobs.map(blob => (0,promises_.writeFile)((0,external_node_path_.join)(dir, blob.digest.replace(/^sha256:/, '')), blob.bytes))
    ]);
}

;// CONCATENATED MODULE: ./src/stages/sign.ts
// The sign stage, after the push: a cosign signature for every manifest digest pushed (the
// image; with an index, each platform image and the index), in every repository it was pushed
// to, under the `sha256-<hex>.sig` tag beside it. The key was decrypted when the inputs were
// read; it stays in this process's memory and is never written or passed to a command.



/** The targets without repeats, in order (pure, for tests). */
function distinctTargets(targets) {
    const seen = new Set();
    return targets.filter(target => {
        const key = `${target.repository}@${target.digest}`;
        if (seen.has(key))
            return false;
        seen.add(key);
        return true;
    });
}
async function signImages(options) {
    const outcomes = [];
    for (const target of distinctTargets(options.targets)) {
        let outcome;
        try {
            outcome = await attachSignature(target, options.key, options);
        }
        catch (error) {
            const done = outcomes.length > 0 ? ` (signed before it: ${describeSigned(outcomes)})` : '';
            throw new Error(`signing ${target.repository}@${target.digest} failed: ${(0,errors/* errorMessage */.g)(error)}${done}`, { cause: error });
        }
        src_core/* info */.pq(`${outcome.ref}: ${outcome.action} (${outcome.signatureCount} signature` +
            `${outcome.signatureCount === 1 ? '' : 's'} in the tag)`);
        outcomes.push(outcome);
        options.onOutcome?.(outcome);
    }
    return outcomes;
}
function describeSigned(outcomes) {
    return outcomes.map(outcome => outcome.ref).join(', ');
}

;// CONCATENATED MODULE: ./src/registry/layers.ts

/** Gzip blobs, whichever manifest format listed them: the same bytes under either name. */
const REUSABLE_LAYER_TYPES = [
    'application/vnd.docker.image.rootfs.diff.tar.gzip',
    'application/vnd.oci.image.layer.v1.tar+gzip'
];
const IMAGE_MANIFEST_TYPES = [
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.oci.image.manifest.v1+json'
];
/** An image manifest's layer descriptors; null for an index or anything else (pure). */
function manifestLayers(raw) {
    const manifest = JSON.parse(raw);
    const isImage = (manifest.mediaType === undefined || IMAGE_MANIFEST_TYPES.includes(manifest.mediaType)) &&
        Array.isArray(manifest.layers);
    if (!isImage)
        return null;
    return manifest.layers.map(layer => ({
        mediaType: String(layer.mediaType ?? ''),
        digest: String(layer.digest ?? ''),
        size: Number(layer.size ?? 0)
    }));
}
/**
 * diff_id -> the gzip blob holding that layer, from one remote image (pure, for tests).
 * Layers stored any other way (zstd, uncompressed, foreign) are not offered.
 */
function remoteLayersOf(ref, layers, diffIds) {
    const found = new Map();
    if (layers.length !== diffIds.length)
        return found;
    const repository = repositoryOf(parseReference(ref));
    layers.forEach((descriptor, index) => {
        if (REUSABLE_LAYER_TYPES.includes(descriptor.mediaType)) {
            found.set(diffIds[index], { repository, descriptor });
        }
    });
    return found;
}
/**
 * For each archive layer, the remote blob to reuse: one in the target repository first (no
 * mount needed), else the first other repository that has it; else the layer is new (pure).
 */
function planLayers(layers, remotes, targetRepository) {
    return layers.map(layer => {
        const candidates = remotes.flatMap(remote => remote.get(layer.diffId) ?? []);
        const remote = candidates.find(candidate => candidate.repository === targetRepository) ?? candidates[0];
        return remote ? { kind: 'reused', layer, remote } : { kind: 'new', layer };
    });
}

;// CONCATENATED MODULE: ./src/registry/mount.ts
// Cross-repository blob mount: one registry API call (POST /v2/<repo>/blobs/uploads/?mount=
// <digest>&from=<other repo>) that makes a blob of another repository in the same registry
// part of this one, without a byte moving. Hand-written because skopeo (containers/image)
// mounts only blobs its blob-info cache remembers seeing there, and that cache is empty on a
// fresh runner: it would compress and upload the layer instead. Credentials come from the same
// Docker config files skopeo reads; Basic and token (Bearer) authentication are both spoken.


/** A mount asks for push here and pull there (pure, for tests). */
function mountScopes(request) {
    return [`repository:${request.repository}:pull,push`, `repository:${request.from}:pull`];
}
/**
 * Ask the registry to mount a blob from another repository. Not mounted (a registry that does
 * not allow it, no permission to read the other repository) is an answer, not an error: the
 * layer is then uploaded. Transient failures throw, for the caller's retries.
 */
async function mountBlob(request, credentials, fetchImpl = fetch) {
    const url = `${baseUrl(request.registry)}/v2/${request.repository}/blobs/uploads/` +
        `?mount=${encodeURIComponent(request.digest)}&from=${encodeURIComponent(request.from)}`;
    const post = (authorization) => fetchImpl(url, {
        method: 'POST',
        headers: {
            'Content-Length': '0',
            ...(authorization ? { Authorization: authorization } : {})
        },
        redirect: 'manual',
        signal: AbortSignal.timeout(quickOperationSeconds() * 1000)
    });
    let response = await post(null);
    if (response.status === 401) {
        await response.body?.cancel();
        const authorization = await authorize(response.headers.get('www-authenticate'), mountScopes(request), credentials, getOverFetch(fetchImpl), quickOperationSeconds() * 1000);
        if (authorization === null)
            return { mounted: false, reason: 'not authorized (HTTP 401)' };
        response = await post(authorization);
    }
    await response.body?.cancel();
    failIfTransient(response.status, `mount ${request.digest}`);
    if (response.status === 201)
        return { mounted: true };
    if (response.status === 202) {
        // The registry opened an upload instead of mounting: cancel it (best effort).
        const location = response.headers.get('location');
        if (location) {
            await fetchImpl(new URL(location, url), { method: 'DELETE' })
                .then(r => r.body?.cancel())
                .catch(() => undefined);
        }
        return { mounted: false, reason: 'the registry did not mount it (HTTP 202)' };
    }
    return { mounted: false, reason: `HTTP ${response.status}` };
}

;// CONCATENATED MODULE: ./src/registry/reuse.ts
// Push only what changed. Before the first push, the manifests and configs of what the refs
// point at now and of the `reuse-from` refs say which of the archive's layers the registry
// already holds, compressed, and as which blob. skopeo then copies a `dir:` layout whose
// manifest names those blobs as they are and the new layers as plain tars: it finds the reused
// blobs in the destination before it would read them, and compresses (on every core) and
// uploads only the new layers. Blobs in another repository of the registry are mounted first.










const domainOf = (ref) => parseReference(ref).domain;
/** Whom to ask, in order: the ref itself, the other refs, then reuse-from; same registry only. */
function reuseCandidates(ref, otherRefs, reuseFrom) {
    const all = [...new Set([ref, ...otherRefs, ...reuseFrom])];
    const domain = domainOf(ref);
    return {
        candidates: all.filter(candidate => domainOf(candidate) === domain),
        elsewhere: reuseFrom.filter(candidate => domainOf(candidate) !== domain)
    };
}
async function preparePush(options) {
    const image = await readArchiveImage(options.archivePath);
    const { candidates, elsewhere } = reuseCandidates(options.ref, options.otherRefs, options.reuseFrom);
    for (const ref of elsewhere) {
        src_core/* notice */.lm(`reuse-from ${ref} is not in the registry of ${options.ref}: not used`);
    }
    const remotes = await Promise.all(candidates.map(candidate => remoteLayersFor(candidate, image, options).catch((error) => {
        src_core/* warning */.$e(`${candidate}: could not read its layers (${(0,errors/* errorMessage */.g)(error)}); not reused`);
        return new Map();
    })));
    const targetRepository = repositoryOf(parseReference(options.ref));
    const planned = await mountOtherRepositories(planLayers(image.layers, remotes, targetRepository), options);
    const reusedLayers = planned.filter(layer => layer.kind === 'reused').length;
    const mountedLayers = planned.filter(layer => layer.kind === 'reused' && layer.remote.repository !== targetRepository).length;
    const newLayerIndexes = planned.flatMap((layer, index) => (layer.kind === 'new' ? [index] : []));
    src_core/* info */.pq(`${options.ref}: ${reusedLayers} of ${planned.length} layers are in the registry` +
        (mountedLayers > 0 ? ` (${mountedLayers} mounted from other repositories)` : '') +
        `; ${newLayerIndexes.length} to compress and upload`);
    const nothingReused = { reusedLayers, mountedLayers, newLayerIndexes, cleanup: async () => { } };
    if (reusedLayers === 0)
        return { ...nothingReused, source: `docker-archive:${image.path}` };
    const dir = (0,external_node_path_.join)(options.tempDir, `nix-container-layout-${process.pid}`);
    await writeDirLayout(image, planned.map(toLayoutLayer), dir);
    return {
        ...nothingReused,
        source: `dir:${dir}`,
        cleanup: () => (0,promises_.rm)(dir, { recursive: true, force: true })
    };
}
function toLayoutLayer(planned) {
    return planned.kind === 'reused'
        ? { kind: 'reused', descriptor: planned.remote.descriptor }
        : { kind: 'new', layer: planned.layer };
}
/** diff_id -> blob for what `ref` points at; empty when it is nothing reusable. */
async function remoteLayersFor(ref, image, options) {
    const raw = await options.rawManifest(ref);
    const isReuseFrom = options.reuseFrom.includes(ref) && ref !== options.ref;
    if (raw === null) {
        if (isReuseFrom)
            src_core/* notice */.lm(`reuse-from ${ref} does not exist in the registry: not used`);
        return new Map();
    }
    const layers = manifestLayers(raw);
    if (layers === null) {
        if (isReuseFrom)
            src_core/* notice */.lm(`reuse-from ${ref} is not a single image manifest: not used`);
        return new Map();
    }
    const manifest = parseRemoteManifest(raw);
    // The same config is the same image: its diff_ids are the archive's.
    const diffIds = manifest.configDigest === image.configDigest
        ? image.layers.map(layer => layer.diffId)
        : await configDiffIds(ref, manifest.digest, options);
    return remoteLayersOf(ref, layers, diffIds);
}
async function configDiffIds(ref, manifestDigest, options) {
    // By digest: the config of the very manifest read above, even if the tag moves meanwhile.
    const pinned = `${repositoryOf(parseReference(ref))}@${manifestDigest}`;
    const config = await options.retrying(`read the config of ${ref}`, () => inspectRawConfig(pinned, options.authFile));
    return config === null ? [] : diffIdsOf(config);
}
/** Mount blobs from other repositories; a layer whose mount fails is uploaded instead. */
async function mountOtherRepositories(planned, options) {
    const target = parseReference(options.ref);
    const foreign = planned.filter(layer => layer.kind === 'reused' && layer.remote.repository !== repositoryOf(target));
    if (foreign.length === 0)
        return planned;
    const registry = target.domain ?? 'docker.io';
    const credentials = await findCredentials(registry, options.authFile);
    const fromPathOf = (repository) => parseReference(repository).path;
    const outcomes = new Map();
    const mount = (remote) => {
        const digest = remote.descriptor.digest;
        const request = {
            registry,
            repository: target.path,
            from: fromPathOf(remote.repository),
            digest
        };
        return options
            .retrying(`mount ${digest} from ${remote.repository}`, () => mountBlob(request, credentials))
            .catch((error) => ({ mounted: false, reason: (0,errors/* errorMessage */.g)(error) }))
            .then(result => {
            if (!result.mounted)
                src_core/* info */.pq(`${digest} not mounted from ${remote.repository}: ${result.reason}; uploading it`);
            return result.mounted;
        });
    };
    for (const layer of foreign) {
        if (layer.kind !== 'reused')
            continue;
        const digest = layer.remote.descriptor.digest;
        if (!outcomes.has(digest))
            outcomes.set(digest, mount(layer.remote));
    }
    const mounted = new Map(await Promise.all([...outcomes].map(async ([digest, outcome]) => [digest, await outcome])));
    return planned.map(layer => layer.kind === 'reused' && mounted.get(layer.remote.descriptor.digest) === false
        ? { kind: 'new', layer: layer.layer }
        : layer);
}
/** Bytes of the blobs this push uploaded, from the manifest it wrote (pure, for tests). */
function uploadedBytes(pushedManifest, newLayerIndexes) {
    const layers = manifestLayers(pushedManifest) ?? [];
    const blobs = new Map(newLayerIndexes.flatMap(index => {
        const layer = layers[index];
        return layer ? [[layer.digest, layer.size]] : [];
    }));
    return [...blobs.values()].reduce((sum, size) => sum + size, 0);
}

;// CONCATENATED MODULE: ./src/stages/push.ts
// The push stage: every ref ends up at the same manifest in its registry. A ref that already
// points at this image (same config digest) is left alone; the first ref is pushed with the
// chosen tool, and the others are copied from it registry-to-registry when skopeo is there,
// which reuses every blob and keeps one manifest digest (docker and skopeo compress layers
// differently, so the same image pushed by each gets two digests).









async function pushImage(options) {
    const hasSkopeo = (await lib_io/* which */.K7('skopeo', false)) !== '';
    if (options.tool === 'skopeo' && !hasSkopeo) {
        throw new Error('push-tool: skopeo needs skopeo on PATH (preinstalled on GitHub-hosted Ubuntu runners; ' +
            'apt-get install skopeo elsewhere), or use push-tool: docker');
    }
    if (!hasSkopeo)
        src_core/* info */.pq('skopeo is not on PATH: every ref is pushed with docker, unchecked');
    if (options.tool === 'docker' && (options.reuseFrom ?? []).length > 0) {
        src_core/* notice */.lm('reuse-from is used by push-tool: skopeo; with push-tool: docker the daemon decides which layers to upload');
    }
    const pusher = makePusher(options, hasSkopeo);
    const outcomes = [];
    for (const ref of options.refs) {
        try {
            const outcome = await pushRef(ref, outcomes[0] ?? null, pusher, options);
            if (outcome.reusedLayers !== undefined) {
                src_core/* info */.pq(`${ref}: ${describeTransfer(outcome)}`);
            }
            src_core/* info */.pq(`${ref}: ${outcome.action} (${outcome.digest})`);
            outcomes.push(outcome);
            options.onOutcome?.(outcome);
        }
        catch (error) {
            throw new Error(partialPushMessage(error, outcomes, options.refs), { cause: error });
        }
    }
    const digest = commonDigest(outcomes);
    return { digest, imageRef: imageRefFor(options.refs[0], digest), outcomes };
}
/**
 * zstd layers, compressed by the action into an OCI layout that skopeo pushes as it is
 * (`--preserve-digests`): skopeo's own conversion to an OCI manifest would rewrite the config,
 * and with it the image ID. Every layer is new: the registry's gzip blobs are not reused.
 */
async function zstdLayout(archivePath, tempDir, compression) {
    const dir = await (0,promises_.mkdtemp)((0,external_node_path_.join)(tempDir, 'nix-container-zstd-'));
    try {
        const layout = await writeCompressedArchive(archivePath, dir, compression);
        return {
            source: `oci:${dir}`,
            reusedLayers: 0,
            mountedLayers: 0,
            newLayerIndexes: Array.from({ length: layout.layerCount }, (_, i) => i),
            cleanup: () => (0,promises_.rm)(dir, { recursive: true, force: true })
        };
    }
    catch (error) {
        await (0,promises_.rm)(dir, { recursive: true, force: true });
        throw error;
    }
}
/** `3 layers reused, 1.2 MB uploaded` (pure, for tests). */
function describeTransfer(outcome) {
    const parts = [];
    if (outcome.reusedLayers !== undefined) {
        parts.push(`${outcome.reusedLayers} layer${outcome.reusedLayers === 1 ? '' : 's'} reused`);
    }
    if (outcome.uploadedBytes !== undefined)
        parts.push(`${formatBytes(outcome.uploadedBytes)} uploaded`);
    return parts.join(', ');
}
function formatBytes(bytes) {
    if (bytes < 1000)
        return `${bytes} B`;
    if (bytes < 1e6)
        return `${(bytes / 1e3).toFixed(1)} kB`;
    return `${(bytes / 1e6).toFixed(1)} MB`;
}
function askOnce(answers, ref, ask) {
    let answer = answers.get(ref);
    if (!answer) {
        answer = ask();
        answer.catch(() => undefined); // not unhandled: the push awaits it and reports it
        answers.set(ref, answer);
    }
    return answer;
}
/**
 * Whether every ref already holds this image (isUpToDate and one manifest), asked with skopeo
 * and the default credentials, retried as the push's own queries are, and kept in `answers`
 * for the push. False when skopeo is not there or a registry did not answer: the push then
 * meets the same answer and reports it.
 */
async function refsHoldImage(refs, configDigest, answers, retry) {
    if (refs.length === 0 || (await lib_io/* which */.K7('skopeo', false)) === '')
        return false;
    try {
        const raws = await Promise.all(refs.map(ref => askOnce(answers, ref, () => withRegistryRetries(`query ${ref}`, ref, retry, () => inspectRawManifest(ref, null)))));
        const manifests = raws.map(raw => (raw === null ? null : parseRemoteManifest(raw)));
        const first = manifests[0] ?? null;
        return manifests.every(m => isUpToDate(m, configDigest, null) && m.digest === first?.digest);
    }
    catch {
        return false;
    }
}
/** Is what the registry has under a ref already this image (and the first ref's manifest)? */
function isUpToDate(existing, configDigest, first) {
    if (!existing || existing.configDigest !== configDigest)
        return false;
    return first === null || existing.digest === first.digest;
}
async function pushRef(ref, first, pusher, options) {
    const retrying = (what, operation) => withRegistryRetries(what, ref, options.retry, operation);
    const raw = pusher.canQuery ? await pusher.rawManifest(ref) : null;
    const existing = raw === null ? null : parseRemoteManifest(raw);
    if (isUpToDate(existing, options.configDigest, first)) {
        return { ref, digest: existing.digest, action: 'up to date' };
    }
    const copyFrom = pusher.copyFrom;
    if (first !== null && copyFrom) {
        const digest = await retrying(`copy ${first.ref} to ${ref}`, () => copyFrom(first.ref, ref));
        return { ref, digest, action: 'copied' };
    }
    return { ref, ...(await pusher.push(ref, retrying)), action: 'pushed' };
}
/** Each ref's manifest asked once (retried), however many times it is needed. */
function manifestQuery(options) {
    // Answers given before the load hold for the push's credentials when those are the defaults.
    const answers = options.authFile === null && options.answers ? options.answers : new Map();
    return ref => askOnce(answers, ref, () => withRegistryRetries(`query ${ref}`, ref, options.retry, () => inspectRawManifest(ref, options.authFile)));
}
async function pushWithDocker(ref, retrying) {
    const digest = await retrying(`push ${ref}`, () => dockerPush(ref));
    return { digest };
}
function makePusher(options, hasSkopeo) {
    const copy = (source, ref) => skopeoCopy(source, ref, options.tempDir, options.authFile);
    const rawManifest = manifestQuery(options);
    // Without skopeo there is no way to ask the registry or copy within it: push every ref.
    if (!hasSkopeo)
        return { push: pushWithDocker, copyFrom: null, canQuery: false, rawManifest };
    const copyFrom = (source, ref) => copy(`docker://${source}`, ref);
    if (options.tool === 'docker') {
        return { push: pushWithDocker, copyFrom, canQuery: true, rawManifest };
    }
    const archivePath = options.archivePath;
    if (!archivePath)
        throw new Error('push-tool: skopeo needs the image archive on disk');
    const compression = options.compression ?? DEFAULT_LAYER_COMPRESSION;
    const zstd = compression.format === 'zstd';
    const copyArgs = zstd ? ['--preserve-digests'] : skopeoCompressionArgs(compression);
    const push = async (ref, retrying) => {
        const prepared = zstd
            ? await zstdLayout(archivePath, options.tempDir, compression)
            : await preparePush({
                ref,
                otherRefs: options.refs.filter(other => other !== ref),
                reuseFrom: options.reuseFrom ?? [],
                archivePath,
                tempDir: options.tempDir,
                authFile: options.authFile,
                rawManifest,
                retrying
            });
        try {
            const digest = await retrying(`push ${ref}`, () => skopeoCopy(prepared.source, ref, options.tempDir, options.authFile, copyArgs));
            // The manifest skopeo wrote says how big the uploaded blobs came out.
            const pinned = imageRefFor(ref, digest);
            const pushed = await retrying(`query ${pinned}`, () => inspectRawManifest(pinned, options.authFile));
            return {
                digest,
                reusedLayers: prepared.reusedLayers,
                ...(pushed === null
                    ? {}
                    : { uploadedBytes: uploadedBytes(pushed, prepared.newLayerIndexes) })
            };
        }
        finally {
            await prepared.cleanup();
        }
    };
    return { push, copyFrom, canQuery: true, rawManifest };
}

;// CONCATENATED MODULE: ./src/pipeline/common.ts
// What the single-image, `systems` and `merge` pipelines share: the build, the load or read,
// the refs, the login, the SBOM, the index push, and the outputs they set on the way.
















async function build(inputs) {
    const { storePath, drvPath } = await buildImage({
        flake: inputs.flake,
        attribute: inputs.attribute,
        system: inputs.system,
        nixArgs: inputs.nixArgs
    });
    const format = await detectFormat(storePath).catch((error) => {
        const reason = (0,errors/* errorMessage */.g)(error);
        throw new Error(`${installable(inputs)} built ${reason}`);
    });
    src_core/* info */.pq(`${storePath} is ${describeFormat(format)}`);
    return { storePath, drvPath, format };
}
/** Load into docker when asked; otherwise only read the archive's metadata. */
async function loadOrInspect(inputs, built, report, copyTo, 
/** ` <system>` after each stage name in a `systems` run. */
suffix = '', 
/** Whether docker will push the loaded image's layers (LoadOptions.willPushLayers). */
willPushLayers) {
    if (!inputs.load) {
        if (suffix === '')
            report.skip('Load', 'load: false');
        const metadata = await report.stage(`Read image${suffix}`, () => inspectImage({ ...built, copyTo, storePaths: inputs.sbom }), m => `${m.layerCount} layers, config ${m.configDigest}`);
        return { metadata, dockerImage: null };
    }
    const loaded = await report.stage(`Load${suffix}`, () => loadImage({
        ...built,
        copyTo,
        storePaths: inputs.sbom,
        compression: inputs.compression,
        ...(willPushLayers ? { willPushLayers } : {})
    }), l => l.dockerImage);
    src_core/* setOutput */.uH('loaded-image', loaded.loadedImages[0] ?? '');
    return { metadata: loaded.metadata, dockerImage: loaded.dockerImage };
}
/**
 * For a docker push of one image: whether docker will push its layers, i.e. whether some ref
 * lacks it. Asked of the registry before the containerd store's compressed load, whose
 * compression is wasted on an unchanged re-push. Only where the answer holds for the push:
 * with the credentials it will use (no login of the action's own); undefined otherwise.
 */
function dockerPushesLayers(inputs, answers) {
    if (!inputs.push || inputs.pushTool !== 'docker' || !inputs.load)
        return undefined;
    if (inputs.username || inputs.password)
        return undefined;
    return async (metadata) => {
        let refs;
        try {
            refs = resolveRefs({
                image: inputs.image,
                registry: inputs.registry,
                tags: inputs.tags,
                archiveRepoTag: metadata.repoTags[0] ?? null
            }).refs;
        }
        catch {
            return true; // the push stage says what is wrong with them
        }
        return !(await refsHoldImage(refs, metadata.configDigest, answers, retryPolicy(inputs)));
    };
}
/** How registry operations are retried (`retries`). */
function retryPolicy(inputs) {
    return { attempts: inputs.retries, ...DEFAULT_DELAYS };
}
/**
 * Whether to load the image only to test it: `load: false` (perhaps with `push-tool: skopeo`,
 * which pushes from the archive) and a test to run. Says so in the log.
 */
function loadForTest(inputs) {
    if (inputs.load || !testsImage(inputs))
        return false;
    const skopeo = inputs.pushTool === 'skopeo' ? ' (push-tool: skopeo pushes from the archive)' : '';
    src_core/* info */.pq(`load: false${skopeo}, but the image is loaded into docker to run the test; it is not tagged`);
    return true;
}
/**
 * Run the loaded image before anything is pushed (`test`, then `test-url`): a failure fails
 * the step here, before any login or push.
 */
async function testStage(inputs, report, dockerImage, 
/** Systems of a `systems` run whose images are not run here. */
untested = []) {
    if (!testsImage(inputs)) {
        report.skip('Test', 'no test or test-url');
        return;
    }
    if (dockerImage === null)
        throw new Error('the image to test was not loaded into docker');
    const notTested = untested.length > 0 ? ` (not tested: ${untested.join(', ')})` : '';
    if (notTested)
        src_core/* info */.pq(`Testing ${dockerImage}; not the runner's platform, so not tested: ${untested.join(', ')}`);
    await report.stage('Test', () => testImage({
        image: dockerImage,
        command: inputs.test,
        url: inputs.testUrl,
        timeoutSeconds: inputs.testTimeout,
        onContainer: name => saveState(StateKey.TestContainer, name ?? '')
    }), result => describeTest(result, { command: inputs.test, url: inputs.testUrl }) + notTested);
    report.tested = true;
}
/** Every full reference to push, from `image`, `registry` and `tags`: the `refs` output. */
function resolveTargets(inputs, report, archiveRepoTag) {
    const resolved = resolveRefs({
        image: inputs.image,
        registry: inputs.registry,
        tags: inputs.tags,
        archiveRepoTag
    });
    for (const notice of resolved.notices)
        src_core/* notice */.lm(notice);
    report.refs = resolved.refs;
    src_core/* setOutput */.uH('refs', resolved.refs.join('\n'));
    return resolved.refs;
}
function skipPush(report) {
    report.skip('Login', 'push: false');
    report.skip('Push', 'push: false');
    report.skip('Sign', 'push: false');
}
/** Log in to the registries of `refs` when credentials are given; what pushes then need. */
async function login(inputs, report, refs) {
    const retry = retryPolicy(inputs);
    const session = await report.stage('Login', () => loginToRegistries({
        refs,
        registry: inputs.registry,
        credentials: inputs.username && inputs.password
            ? { username: inputs.username, password: inputs.password }
            : null,
        githubToken: inputs.githubToken,
        githubActor: process.env.GITHUB_ACTOR ?? null,
        tool: inputs.pushTool,
        tempDir: (0,temp/* runnerTemp */.X)(),
        retry,
        saveSession: s => saveState(StateKey.LoginSession, JSON.stringify(s))
    }), s => (s ? `logged in to ${s.registries.join(', ')}` : 'no credentials given: existing logins'));
    return {
        tempDir: (0,temp/* runnerTemp */.X)(),
        authFile: session ? authFileOf(session) : null,
        retry,
        compression: inputs.compression
    };
}
/**
 * The image's SBOM, after the push so that it can name the digest. By then the image itself is
 * fine (a layer that cannot be read failed the load already), so a failure here is the SBOM's
 * own, and fails the step: a workflow that attests the SBOM must not go on without it.
 */
async function writeImageSbom(inputs, report, image, 
/** ` <system>` after the stage name in a `systems` run. */
suffix = '') {
    if (!inputs.sbom) {
        report.skip(`SBOM${suffix}`, 'sbom: false');
        return '';
    }
    const sbom = await report.stage(`SBOM${suffix}`, () => writeSbom({
        image: imageSubject(image.refs, image.digest, image.storePath),
        configDigest: image.metadata.configDigest,
        storePaths: image.metadata.storePaths,
        dir: (0,temp/* runnerTemp */.X)(),
        ...(image.pathInfo ? { pathInfo: image.pathInfo } : {})
    }).catch((error) => {
        const done = image.digest ? `was pushed (${image.digest})` : 'is fine';
        throw new Error(`The image ${done}, but its SBOM failed: ${(0,errors/* errorMessage */.g)(error)}`);
    }), s => `${s.componentCount} store paths: ${s.path}`);
    report.sboms.push(sbom);
    src_core/* setOutput */.uH('sbom', report.sboms.map(s => s.path).join('\n'));
    return sbom.path;
}
/**
 * One index of `entries` under every ref (`systems` and `merge`), then the signatures of the
 * platform images (in the target repositories, where a merge may have just copied them) and
 * of the index.
 */
async function pushIndexStage(inputs, report, refs, entries, options) {
    report.refs = refs.map(ref => `${ref} (not pushed)`);
    const pushed = await report.stage('Push index', () => pushIndex({
        ...options,
        refs,
        entries,
        onOutcome: o => {
            report.refs[refs.indexOf(o.ref)] = `${o.ref} (${o.action})`;
        }
    }), p => `${entries.length} platforms: ${describeOutcomes(p.outcomes)}`);
    setPushOutputs(report, pushed);
    const digests = [...entries.map(entry => entry.digest), pushed.digest];
    await signStage(inputs, report, refs, digests, options);
}
/**
 * Sign every manifest digest pushed (`signing-key`), in every repository of `refs`, once the
 * push is done: the `signatures` output. A failure fails the step and says that the image is
 * in the registry, unsigned or partly signed.
 */
async function signStage(inputs, report, refs, digests, options) {
    const key = inputs.signingKey;
    if (key === null) {
        report.skip('Sign', 'no signing-key');
        return;
    }
    const targets = digests.flatMap(digest => repositoriesOf(refs).map(repository => ({ repository, digest })));
    await report.stage('Sign', () => signImages({
        ...options,
        key,
        targets,
        onOutcome: outcome => {
            report.signatures.push(outcome.ref);
            src_core/* setOutput */.uH('signatures', report.signatures.join('\n'));
        }
    }).catch((error) => {
        const pushed = report.digest ?? digests[digests.length - 1] ?? '';
        throw new Error(`The image was pushed (${pushed}), but ${(0,errors/* errorMessage */.g)(error)}`, {
            cause: error
        });
    }), describeOutcomes);
}
function setPushOutputs(report, pushed) {
    report.digest = pushed.digest;
    report.imageRef = pushed.imageRef;
    src_core/* setOutput */.uH('digest', pushed.digest);
    src_core/* setOutput */.uH('image-ref', pushed.imageRef);
}
function setImagesOutput(images) {
    const entries = images.map(image => ({
        system: image.system,
        platform: image.platform,
        digest: image.digest,
        'image-id': image.imageId,
        sbom: image.sbom
    }));
    src_core/* setOutput */.uH('images', JSON.stringify(entries));
}
/** `2 pushed, 1 up to date` (or `2 signed, 1 up to date`) */
function describeOutcomes(outcomes) {
    const counts = new Map();
    for (const { action } of outcomes)
        counts.set(action, (counts.get(action) ?? 0) + 1);
    return [...counts].map(([action, count]) => `${count} ${action}`).join(', ');
}
/** `localhost:5000/app pushed, ghcr.io/o/app up to date` */
function describeRepositories(outcomes) {
    return outcomes.map(o => `${o.repository} ${o.action}`).join(', ');
}

;// CONCATENATED MODULE: ./src/pipeline/merge.ts
// `merge`: images already pushed, combined under `tags`; no Nix, no build.






async function runMerge(inputs, report) {
    const why = 'merge: nothing to build';
    for (const stage of ['Nix', 'Store cache', 'Build', 'Load'])
        report.skip(stage, why);
    saveState(StateKey.CacheSkipped, why);
    const refs = resolveTargets(inputs, report, null);
    const sources = inputs.merge.map(entry => resolveMergeRef(entry, inputs.image, inputs.registry));
    await requireSkopeo('merge');
    const registryOptions = await login(inputs, report, [...refs, ...sources]);
    const images = await report.stage('Read merge sources', () => readMergeSources(sources, registryOptions), found => found.map(describeMergeImage).join(', '));
    const results = images.map(image => ({
        system: systemOfPlatform(image.entry.platform),
        platform: formatPlatform(image.entry.platform),
        digest: image.entry.digest,
        imageId: image.configDigest,
        sbom: ''
    }));
    report.platforms = [...results];
    setImagesOutput(results);
    for (const image of images) {
        await report.stage(`Copy ${formatPlatform(image.entry.platform)}`, async () => {
            const outcomes = [];
            for (const repository of repositoriesOf(refs)) {
                outcomes.push(await pushManifestByDigest({ ref: image.source }, image.entry.digest, repository, registryOptions));
            }
            return outcomes;
        }, describeRepositories);
    }
    await pushIndexStage(inputs, report, refs, images.map(image => image.entry), registryOptions);
}

;// CONCATENATED MODULE: ./src/stages/tag.ts
// The tag stage: give the loaded image every reference it will be pushed as.

async function tagImage(options) {
    for (const ref of options.refs) {
        if (ref !== options.source)
            await (0,exec/* run */.eF)('docker', ['tag', options.source, ref]);
    }
}

;// CONCATENATED MODULE: ./src/pipeline/single.ts
// One image: build -> load (or read) -> tag -> push -> SBOM.














/** Returns the image built, once it shipped (for the binary cache push after it). */
async function runSingleImage(inputs, report) {
    const built = await report.stage('Build', () => build(inputs), b => b.storePath);
    src_core/* setOutput */.uH('store-path', built.storePath);
    // From here on, post may save the store cache.
    saveState(StateKey.BuiltStorePath, built.storePath);
    if (built.drvPath)
        saveState(StateKey.BuiltDrvPath, built.drvPath);
    src_core/* setOutput */.uH('image-format', formatName(built.format));
    const archiveCopy = plainArchiveCopyFor(inputs, built);
    // What the registry says before the load (docker on the containerd store), kept for the push.
    const answers = new Map();
    try {
        const load = inputs.load || loadForTest(inputs);
        const { metadata, dockerImage } = await loadOrInspect({ ...inputs, load }, built, report, archiveCopy, '', dockerPushesLayers(inputs, answers));
        // Nix is asked for the SBOM while the image is tested and pushed.
        const pathInfo = inputs.sbom ? askPathInfoEarly(metadata.storePaths) : undefined;
        await testStage(inputs, report, dockerImage);
        // An image loaded only for the test is not tagged.
        const tagged = await tagAndPush(inputs, report, metadata, inputs.load ? dockerImage : null, archiveCopy ?? built.storePath, answers);
        const sbom = await writeImageSbom(inputs, report, {
            ...tagged,
            metadata,
            storePath: built.storePath,
            pathInfo
        });
        setImagesOutput([
            {
                system: inputs.system ?? runnerSystem() ?? '',
                platform: metadata.platform ? formatPlatform(metadata.platform) : '',
                digest: tagged.digest ?? '',
                imageId: metadata.configDigest,
                sbom
            }
        ]);
        return [built];
    }
    finally {
        if (archiveCopy)
            await (0,promises_.rm)(archiveCopy, { force: true });
    }
}
/**
 * skopeo reads `docker-archive:` from a seekable, uncompressed file: a plain tar output is used
 * as it is, anything else is written out once, under RUNNER_TEMP, in the pass that loads it.
 */
function plainArchiveCopyFor(inputs, built) {
    if (!inputs.push || inputs.pushTool !== 'skopeo' || !needsPlainCopy(built.format))
        return null;
    return (0,external_node_path_.join)((0,temp/* runnerTemp */.X)(), `nix-container-${process.pid}.tar`);
}
async function tagAndPush(inputs, report, metadata, dockerImage, archivePath, answers) {
    src_core/* setOutput */.uH('image-id', metadata.configDigest);
    const refs = resolveTargets(inputs, report, metadata.repoTags[0] ?? null);
    if (dockerImage === null)
        report.skip('Tag', 'load: false');
    else
        await report.stage('Tag', () => tagImage({ source: dockerImage, refs }), () => `${refs.length} refs`);
    if (!inputs.push) {
        skipPush(report);
        return { refs, digest: null };
    }
    // The signature is pushed with skopeo whatever the push tool: known before anything is pushed.
    if (inputs.signingKey)
        await requireSkopeo('signing-key (the signature is pushed with skopeo)');
    const options = await login(inputs, report, refs);
    // Each ref is reported as it is done, so a partial push shows what made it.
    report.refs = refs.map(ref => `${ref} (not pushed)`);
    const pushed = await report.stage('Push', () => pushImage({
        refs,
        tool: inputs.pushTool,
        configDigest: metadata.configDigest,
        archivePath: inputs.pushTool === 'skopeo' ? archivePath : null,
        tempDir: options.tempDir,
        authFile: options.authFile,
        reuseFrom: resolveReuseFrom(inputs.reuseFrom, refs[0], inputs.registry),
        compression: inputs.compression,
        retry: options.retry,
        answers,
        onOutcome: o => {
            const transfer = describeTransfer(o);
            report.refs[refs.indexOf(o.ref)] =
                `${o.ref} (${o.action}${transfer ? `: ${transfer}` : ''})`;
        }
    }), p => `${describeOutcomes(p.outcomes)} with ${inputs.pushTool}`);
    setPushOutputs(report, pushed);
    await signStage(inputs, report, refs, [pushed.digest], options);
    return { refs, digest: pushed.digest };
}

;// CONCATENATED MODULE: ./src/pipeline/systems.ts
// `systems`: build -> read (load the runner's own) -> push by digest, for each system in turn,
// then one index under every ref.













/** Returns the images built, once they shipped (for the binary cache push after them). */
async function runSystems(inputs, report) {
    const images = [];
    const copies = [];
    const builds = [];
    // The runner's own image is loaded to be tested, even with load: false.
    const load = inputs.load || loadForTest(inputs);
    if (!load)
        report.skip('Load', 'load: false');
    try {
        for (const system of inputs.systems) {
            images.push(await buildAndRead({ ...inputs, load }, report, system, copies, builds));
        }
        src_core/* setOutput */.uH('store-path', images.map(image => image.built.storePath).join('\n'));
        src_core/* setOutput */.uH('image-format', images.map(image => formatName(image.built.format)).join('\n'));
        checkDistinctPlatforms(images.map(image => ({
            name: `the image for ${image.system}`,
            platform: image.platform
        })));
        const own = images.find(image => image.dockerImage !== null) ?? null;
        src_core/* setOutput */.uH('image-id', (own ?? images[0]).metadata.configDigest);
        const refs = resolveTargets(inputs, report, images[0]?.metadata.repoTags[0] ?? null);
        await testStage(inputs, report, own?.dockerImage ?? null, images.filter(image => image !== own).map(image => image.system));
        // An image loaded only for the test is not tagged.
        if (own?.dockerImage && inputs.load)
            await report.stage(`Tag ${own.system}`, () => tagImage({ source: own.dockerImage, refs }), () => `${refs.length} refs`);
        const results = images.map(image => systemResult(image, '', ''));
        report.platforms = [...results];
        // Each image's SBOM once its digest is known (after its push, or none without a push).
        const finish = async (i, digest) => {
            const image = images[i];
            const sbom = await writeImageSbom(inputs, report, {
                refs,
                digest,
                metadata: image.metadata,
                storePath: image.built.storePath,
                pathInfo: image.pathInfo
            }, ` ${image.system}`);
            const result = systemResult(image, digest ?? '', sbom);
            results[i] = result;
            report.platforms[i] = result;
        };
        if (!inputs.push) {
            skipPush(report);
            for (const i of images.keys())
                await finish(i, null);
            setImagesOutput(results);
            return builds;
        }
        await requireSkopeo('systems (an image index)');
        const registryOptions = await login(inputs, report, refs);
        const entries = [];
        for (const [i, image] of images.entries()) {
            const entry = await report.stage(`Push ${image.system}`, () => pushByDigest(image, refs, registryOptions), e => `${e.digest}: ${describeRepositories(e.outcomes)}`);
            entries.push(entry);
            await finish(i, entry.digest);
        }
        setImagesOutput(results);
        await pushIndexStage(inputs, report, refs, entries, registryOptions);
        return builds;
    }
    finally {
        await Promise.all(copies.map(copy => (0,promises_.rm)(copy, { force: true })));
    }
}
function systemResult(image, digest, sbom) {
    return {
        system: image.system,
        platform: formatPlatform(image.platform),
        digest,
        imageId: image.metadata.configDigest,
        sbom
    };
}
async function buildAndRead(inputs, report, system, copies, builds) {
    const built = await report.stage(`Build ${system}`, () => build({ ...inputs, system }), b => b.storePath);
    // From here on, post may save the store cache: of every image built so far.
    builds.push(built);
    saveState(StateKey.BuiltStorePath, builds.map(b => b.storePath).join('\n'));
    saveState(StateKey.BuiltDrvPath, builds.map(b => b.drvPath).join('\n'));
    const archiveCopy = inputs.push && needsPlainCopy(built.format)
        ? (0,external_node_path_.join)((0,temp/* runnerTemp */.X)(), `nix-container-${process.pid}-${system}.tar`)
        : null;
    if (archiveCopy)
        copies.push(archiveCopy);
    // A daemon holds one platform per tag: only the runner's own image is loaded.
    const ownSystem = runnerSystem();
    const load = inputs.load && system === ownSystem;
    if (inputs.load && !load)
        report.skip(`Load ${system}`, `not the runner's system (${ownSystem})`);
    const { metadata, dockerImage } = await loadOrInspect({ ...inputs, load }, built, report, archiveCopy, ` ${system}`);
    const what = `${installable(inputs)} (${built.storePath})`;
    const platform = metadata.platform;
    if (!platform) {
        throw new Error(`${what} was built for ${system}, but its config names no os or architecture`);
    }
    checkPlatformOfSystem(system, platform, what);
    return {
        system,
        built,
        metadata,
        platform,
        archivePath: archiveCopy ?? built.storePath,
        dockerImage,
        // Nix is asked for the SBOM while the other systems build and the images are pushed.
        pathInfo: inputs.sbom ? askPathInfoEarly(metadata.storePaths) : undefined
    };
}
/** Push one platform image, by digest, to every repository the refs name. */
async function pushByDigest(image, refs, options) {
    const { dir, ...manifest } = await archiveToManifestDir(image.archivePath, options);
    try {
        const outcomes = [];
        for (const repository of repositoriesOf(refs)) {
            outcomes.push(await pushManifestByDigest({ dir }, manifest.digest, repository, options));
        }
        return { ...manifest, platform: image.platform, outcomes };
    }
    finally {
        await (0,promises_.rm)(dir, { recursive: true, force: true });
    }
}

;// CONCATENATED MODULE: ./src/report.ts
// What each stage did, kept for the job summary: the log reads as the pipeline, and the
// summary shows it at a glance.


class Report {
    stages = [];
    refs = [];
    digest = null;
    imageRef = null;
    /** Each SBOM written: its file and how many store paths it lists. */
    sboms = [];
    /** The platform images of an index, one summary row each; empty for a single image. */
    platforms = [];
    /** A `test` or `test-url` ran and passed: the `tested` output. */
    tested = false;
    /** `<repository>:sha256-<hex>.sig` of each digest signed: the `signatures` output. */
    signatures = [];
    skip(name, why) {
        src_core/* info */.pq(`${name}: skipped (${why})`);
        this.stages.push({ name, status: 'skipped', detail: why, seconds: 0 });
    }
    /** Run one stage in a log group, timing it and recording how it ended. */
    async stage(name, work, describe) {
        const started = performance.now();
        const seconds = () => (performance.now() - started) / 1000;
        try {
            const result = await src_core/* group */.Os(name, work);
            this.stages.push({ name, status: 'done', detail: describe(result), seconds: seconds() });
            return result;
        }
        catch (error) {
            const message = (0,errors/* errorMessage */.g)(error);
            this.stages.push({ name, status: 'failed', detail: (0,errors/* firstLine */.T)(message), seconds: seconds() });
            throw error;
        }
    }
}
const STATUS_ICON = { done: '✅', skipped: '⏭️', failed: '❌' };
/** The job summary as markdown (pure, for tests). */
function renderSummary(report) {
    const rows = report.stages.map(s => `| ${s.name} | ${STATUS_ICON[s.status]} ${s.status} | ${escapeCell(s.detail)} | ${s.seconds.toFixed(1)} |`);
    const lines = [
        '## Nix container',
        '',
        '| Stage | Status | Result | Seconds |',
        '| --- | --- | --- | ---: |',
        ...rows,
        ''
    ];
    if (report.platforms.length > 0) {
        lines.push('| System | Platform | Manifest digest | Image ID |', '| --- | --- | --- | --- |', ...report.platforms.map(p => `| ${escapeCell(p.system || '-')} | ${escapeCell(p.platform)} | \`${p.digest || 'not pushed'}\` | \`${p.imageId}\` |`), '');
    }
    if (report.refs.length > 0) {
        lines.push('**Refs**', '', ...report.refs.map(ref => `- \`${ref}\``), '');
    }
    if (report.digest)
        lines.push(`**Digest:** \`${report.digest}\``, '');
    if (report.imageRef)
        lines.push(`**Image ref:** \`${report.imageRef}\``, '');
    if (report.signatures.length > 0) {
        lines.push('**Signatures**', '', ...report.signatures.map(ref => `- \`${ref}\``), '');
    }
    for (const sbom of report.sboms) {
        lines.push(`**SBOM:** \`${sbom.path}\` (CycloneDX, ${sbom.componentCount} components)`, '');
    }
    return lines.join('\n');
}
function escapeCell(text) {
    return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
async function writeSummary(report) {
    if (!process.env.GITHUB_STEP_SUMMARY)
        return;
    await src_core/* appendSummary */.fe(renderSummary(report));
}

;// CONCATENATED MODULE: ./src/nix/conf.ts
// The nix.conf this action writes for the rest of the job, and where Nix finds it: pure.

/** The lines of our nix.conf; later lines win, so the user's `nix-conf` comes last. */
function nixConfLines(options) {
    const lines = [
        '# Written by nix-container-action for the rest of this job.',
        // extra-: add to whatever an existing nix.conf enables, never replace it.
        'extra-experimental-features = nix-command flakes'
    ];
    if (options.installed) {
        lines.push('max-jobs = auto');
        // A single-user install has no build users; as root Nix would look for the nixbld group.
        if (options.asRoot)
            lines.push('build-users-group =');
    }
    if (options.githubToken)
        lines.push(`access-tokens = github.com=${options.githubToken}`);
    if (options.builders)
        lines.push(`builders = ${options.builders}`);
    lines.push(...options.nixConf);
    return lines;
}
function nixConfText(options) {
    return nixConfLines(options).join('\n') + '\n';
}
/** The same text with the token replaced, for the log. */
function printableConfText(options) {
    return nixConfText({ ...options, githubToken: options.githubToken ? '***' : null });
}
/**
 * NIX_USER_CONF_FILES: our file first (the first file wins), then the files Nix would read
 * without the variable (or the value it already had), so a user's own nix.conf still counts.
 */
function userConfFiles(ourFile, env, home) {
    const existing = env.NIX_USER_CONF_FILES
        ? env.NIX_USER_CONF_FILES.split(':')
        : defaultUserConfFiles(env, home);
    const files = [ourFile, ...existing.filter(file => file !== '' && file !== ourFile)];
    return files.join(':');
}
/** Where Nix looks for user configuration when NIX_USER_CONF_FILES is not set (XDG). */
function defaultUserConfFiles(env, home) {
    const configHome = env.XDG_CONFIG_HOME || (0,external_node_path_.join)(home, '.config');
    const configDirs = (env.XDG_CONFIG_DIRS || '/etc/xdg').split(':').filter(Boolean);
    return [configHome, ...configDirs].map(dir => (0,external_node_path_.join)(dir, 'nix', 'nix.conf'));
}
/** Bundles Nix (and programs it starts) find without help: the installer's nix.sh list. */
const SYSTEM_CA_BUNDLES = [
    '/etc/ssl/certs/ca-certificates.crt',
    '/etc/ssl/ca-bundle.pem',
    '/etc/ssl/certs/ca-bundle.crt',
    '/etc/pki/tls/certs/ca-bundle.crt'
];
/**
 * NIX_SSL_CERT_FILE to set, or null when not needed: a value already set, or a system CA bundle,
 * wins; otherwise the CA bundle that came with the tarball.
 */
function sslCertFile(env, exists, cacert) {
    if (env.NIX_SSL_CERT_FILE)
        return null;
    if (SYSTEM_CA_BUNDLES.some(exists))
        return null;
    return cacert ? (0,external_node_path_.join)(cacert, 'etc', 'ssl', 'certs', 'ca-bundle.crt') : null;
}

// EXTERNAL MODULE: ./src/tree.ts
var tree = __nccwpck_require__(9191);
;// CONCATENATED MODULE: ./src/nix/single-user.ts
// A single-user install from an unpacked release tarball, done step by step in TypeScript (what
// the tarball's `install --no-daemon` does, without running that script): /nix owned by this
// user, the store paths placed and registered, the default profile pointing at Nix.







const NIX_ROOT = '/nix';
const NIX_STORE = '/nix/store';
const DEFAULT_PROFILE = '/nix/var/nix/profiles/default';
/** Keeps the CA bundle alive across garbage collections: it is not in the profile. */
const CACERT_GC_ROOT = '/nix/var/nix/gcroots/nix-container-action-cacert';
/** How to get a /nix this user owns; `sudo` only when /nix must be created and we cannot. */
function planNixDir(state) {
    if (state.exists) {
        if (state.writable)
            return 'ready';
        throw new Error(`${NIX_ROOT} exists but is not writable by this user, and it holds no working Nix: ` +
            `remove it or give it to this user (sudo chown -R "$(id -u)" ${NIX_ROOT}) before this step`);
    }
    return state.parentWritable ? 'create' : 'sudo-create';
}
async function installSingleUser(releaseDir, version) {
    const storeDir = (0,external_node_path_.join)(releaseDir, 'store');
    const entries = (await (0,promises_.readdir)(storeDir)).filter(e => !e.startsWith('.')).sort();
    const installScript = await (0,promises_.readFile)((0,external_node_path_.join)(releaseDir, 'install'), 'utf8').catch(() => null);
    const layout = (0,nix_release/* releaseLayout */.kD)(installScript, entries, version);
    const reginfo = await (0,promises_.readFile)((0,external_node_path_.join)(releaseDir, '.reginfo')).catch(() => {
        throw new Error(`the release has no .reginfo (${releaseDir}): it cannot be registered`);
    });
    await prepareNixDir();
    const created = [(0,external_node_path_.join)(NIX_ROOT, 'store'), (0,external_node_path_.join)(NIX_ROOT, 'var')].filter(d => !(0,external_node_fs_.existsSync)(d));
    await (0,promises_.mkdir)(NIX_STORE, { recursive: true });
    await (0,promises_.mkdir)((0,external_node_path_.join)(NIX_ROOT, 'var', 'nix'), { recursive: true });
    const placed = [];
    try {
        placed.push(...(await placeStorePaths(storeDir, entries)));
        src_core/* info */.pq(`Registering ${entries.length} store paths (nix-store --load-db < .reginfo)`);
        await (0,exec/* run */.eF)((0,external_node_path_.join)(layout.nix, 'bin', 'nix-store'), ['--load-db'], { input: reginfo, silent: true });
        src_core/* info */.pq(`Creating the default profile ${DEFAULT_PROFILE} -> ${layout.nix}`);
        await (0,exec/* run */.eF)((0,external_node_path_.join)(layout.nix, 'bin', 'nix-env'), [
            '--profile',
            DEFAULT_PROFILE,
            '--set',
            layout.nix
        ]);
        if (layout.cacert && !(0,external_node_fs_.existsSync)(CACERT_GC_ROOT))
            await (0,promises_.symlink)(layout.cacert, CACERT_GC_ROOT);
    }
    catch (error) {
        await rollBack(placed, created);
        throw error;
    }
    return { storePath: layout.nix, bin: (0,external_node_path_.join)(DEFAULT_PROFILE, 'bin'), cacert: layout.cacert };
}
async function prepareNixDir() {
    const exists = (0,external_node_fs_.existsSync)(NIX_ROOT);
    const plan = planNixDir({
        exists,
        writable: exists && (await canWrite(NIX_ROOT)),
        parentWritable: await canWrite('/')
    });
    if (plan === 'ready')
        return;
    if (plan === 'create') {
        src_core/* info */.pq(`Creating ${NIX_ROOT}`);
        await (0,promises_.mkdir)(NIX_ROOT, { mode: 0o755 });
        return;
    }
    const owner = `${process.getuid?.() ?? 0}:${process.getgid?.() ?? 0}`;
    src_core/* info */.pq(`Creating ${NIX_ROOT} with sudo, owned by this user (${owner})`);
    await (0,exec/* run */.eF)('sudo', ['-n', 'mkdir', '-m', '0755', NIX_ROOT]);
    await (0,exec/* run */.eF)('sudo', ['-n', 'chown', owner, NIX_ROOT]);
}
async function canWrite(path) {
    return (0,promises_.access)(path, external_node_fs_.constants.W_OK).then(() => true, () => false);
}
/**
 * Copy the store paths that are missing into /nix/store, read-only, each appearing at once
 * (renamed from a staging directory), so a failure never leaves a partial path behind.
 */
async function placeStorePaths(storeDir, entries) {
    const missing = entries.filter(entry => !(0,external_node_fs_.existsSync)((0,external_node_path_.join)(NIX_STORE, entry)));
    src_core/* info */.pq(`Copying ${missing.length} store paths to ${NIX_STORE}` +
        (missing.length < entries.length ? ` (${entries.length - missing.length} already there)` : ''));
    if (missing.length === 0)
        return [];
    const staging = (0,external_node_path_.join)(NIX_STORE, `.nix-container-action-${process.pid}`);
    await (0,promises_.mkdir)(staging);
    const placed = [];
    try {
        await (0,exec/* run */.eF)('cp', ['-RPp', ...missing.map(entry => (0,external_node_path_.join)(storeDir, entry)), staging], {
            silent: true
        });
        await (0,exec/* run */.eF)('chmod', ['-R', 'a-w', ...missing.map(entry => (0,external_node_path_.join)(staging, entry))], {
            silent: true
        });
        for (const entry of missing) {
            (0,tree/* moveTree */.E)((0,external_node_path_.join)(staging, entry), (0,external_node_path_.join)(NIX_STORE, entry));
            placed.push((0,external_node_path_.join)(NIX_STORE, entry));
        }
        return placed;
    }
    catch (error) {
        await rollBack(placed, []);
        throw error;
    }
    finally {
        await (0,tree/* removeTree */.d)(staging);
    }
}
/** Undo this run's changes under /nix, so that a retry starts from where this one did. */
async function rollBack(placed, createdDirs) {
    if (placed.length + createdDirs.length === 0)
        return;
    src_core/* info */.pq(`Install failed: removing the ${placed.length} store paths this run placed`);
    for (const path of [...placed, ...createdDirs]) {
        await (0,tree/* removeTree */.d)(path).catch((error) => {
            src_core/* warning */.$e(`could not remove ${path}: ${String(error)}`);
        });
    }
}

;// CONCATENATED MODULE: ./src/nix/user-namespaces.ts
// Ubuntu 23.10 and later (ubuntu-latest is 24.04) restrict unprivileged user namespaces through
// AppArmor (kernel.apparmor_restrict_unprivileged_userns=1): an unconfined process may create
// one but gets no capabilities in it, so a single-user Nix, which builds as this user inside a
// user namespace (its sandbox), fails to set up the sandbox ("setting up uid map: Permission
// denied"). Nix's sandbox-fallback does not help: creating the namespace succeeds. The runner
// has passwordless sudo and is thrown away after the job, so the action lifts the restriction
// there, as DeterminateSystems/nix-installer-action#193 and others advise. A daemon store
// builds as root, and root is not restricted: nothing to do there.






const USERNS_SYSCTL_FILE = '/proc/sys/kernel/apparmor_restrict_unprivileged_userns';
const USERNS_SYSCTL = 'kernel.apparmor_restrict_unprivileged_userns';
/** Lift the restriction only where it is on and would stop this user's sandboxed builds. */
function planUserNamespaces(facts) {
    if (facts.restricted !== true)
        return { lift: false, reason: 'not restricted' };
    if (facts.asRoot)
        return { lift: false, reason: 'builds run as root' };
    if (!facts.buildsAsThisUser)
        return { lift: false, reason: 'a Nix daemon builds' };
    return { lift: true };
}
function parseSysctlFlag(text) {
    if (text === null)
        return null;
    const value = text.trim();
    return value === '' ? null : value !== '0';
}
/**
 * Where the runner restricts user namespaces and this user builds single-user, turn the
 * restriction off through sudo (a notice says so). Never throws: without sudo it warns how
 * builds will fail and what to do.
 */
async function allowUserNamespaces(options = {}) {
    const sysctlFile = options.sysctlFile ?? USERNS_SYSCTL_FILE;
    const plan = planUserNamespaces({
        restricted: parseSysctlFlag(await (0,promises_.readFile)(sysctlFile, 'utf8').catch(() => null)),
        asRoot: process.getuid?.() === 0,
        buildsAsThisUser: await buildsAsThisUser(options.storeDir ?? '/nix/store')
    });
    if (!plan.lift)
        return 'not-needed';
    try {
        await (0,exec/* run */.eF)('sudo', ['-n', 'sysctl', '-w', `${USERNS_SYSCTL}=0`], { silent: true });
        src_core/* notice */.lm(`${USERNS_SYSCTL} was 1 (Ubuntu's AppArmor restriction on user namespaces), which stops a ` +
            `single-user Nix from setting up its build sandbox: set to 0 with sudo for this runner`);
        return 'lifted';
    }
    catch (error) {
        src_core/* warning */.$e(`${USERNS_SYSCTL} is 1 and could not be set to 0 (sudo -n sysctl failed: ` +
            `${(0,errors/* errorMessage */.g)(error)}): sandboxed builds of this single-user Nix will fail to set up ` +
            `their user namespace. Give the job passwordless sudo, or add "sandbox = false" to nix-conf`);
        return 'failed';
    }
}
/** A single-user store: this user may write it (no NIX_REMOTE daemon in between). */
async function buildsAsThisUser(storeDir) {
    if (!isLocalStore(process.env.NIX_REMOTE))
        return false;
    return (0,promises_.access)(storeDir, external_node_fs_.constants.W_OK).then(() => true, () => false);
}

;// CONCATENATED MODULE: ./src/stages/install-nix.ts
// The Nix stage: use a working Nix when there is one (on PATH, or off it where self-hosted
// machines keep it), otherwise install the pinned, checksummed release tarball single-user;
// then write this job's nix.conf. Decisions are pure functions beside the stage.















/** Find first: an existing Nix is used, never reinstalled; install only when allowed. */
function planSetup(existing, installNix) {
    if (existing)
        return { action: 'use', existing };
    if (installNix)
        return { action: 'install' };
    return {
        action: 'fail',
        message: 'Nix is not installed and install-nix is false: set install-nix: true to let this action ' +
            'install it, or install Nix in an earlier step (on PATH, or in ' +
            '/nix/var/nix/profiles/default or ~/.nix-profile, where this action finds it)'
    };
}
/** How the job summary says where Nix came from. */
function describeSource(found) {
    return { path: 'found on PATH', adopted: 'adopted', installed: 'installed' }[found];
}
/** Where self-hosted machines keep a Nix that is not on PATH. */
function offPathCandidates(home) {
    return [
        '/nix/var/nix/profiles/default/bin/nix',
        (0,external_node_path_.join)(home, '.nix-profile', 'bin', 'nix'),
        '/run/current-system/sw/bin/nix'
    ];
}
/** `nix (Nix) 2.8.0` -> `2.8.0` */
function parseNixVersion(output) {
    return (/\b(\d+\.\d+(?:\.\d+)?(?:[-.\w]*)?)\s*$/.exec(output.trim().split('\n')[0] ?? '')?.[1] ?? null);
}
async function nixVersionOf(nix) {
    const result = await (0,exec/* run */.eF)(nix, ['--version'], { silent: true, allowFailure: true }).catch(() => null);
    return result?.exitCode === 0 ? parseNixVersion(result.stdout) : null;
}
/** A Nix that answers `nix --version`: on PATH first, then the usual places off it. */
async function findExistingNix() {
    const onPath = await lib_io/* which */.K7('nix', false);
    if (onPath) {
        const version = await nixVersionOf(onPath);
        if (version)
            return { nix: onPath, version, onPath: true };
        src_core/* warning */.$e(`${onPath} is on PATH but \`nix --version\` failed; looking further`);
    }
    for (const candidate of offPathCandidates((0,external_node_os_.homedir)())) {
        const version = await nixVersionOf(candidate);
        if (version)
            return { nix: candidate, version, onPath: false };
    }
    return null;
}
async function setupNix(options) {
    const plan = planSetup(await findExistingNix(), options.installNix);
    if (plan.action === 'fail')
        throw new Error(plan.message);
    const result = plan.action === 'use'
        ? useExisting(plan.existing)
        : await installNix(options.nixVersion, options);
    // ubuntu-latest restricts the user namespaces a single-user Nix builds in.
    await allowUserNamespaces();
    await writeJobConf({
        installed: result.installed,
        asRoot: process.getuid?.() === 0,
        githubToken: options.githubToken,
        nixConf: options.nixConf,
        builders: await prepareBuilders(options.builders)
    });
    if (options.builders?.machines.length)
        await checkDaemonTakesBuilders();
    return result;
}
/** Where `builder-ssh-key` is written for this job (the post step removes it). */
function builderKeyFile() {
    return builderKeyPath((0,temp/* actionTempDir */.O)());
}
/** The `builders` value for nix.conf, with the key written where its `-` fields point. */
async function prepareBuilders(builders) {
    if (!builders || builders.machines.length === 0)
        return null;
    let keyFile = null;
    if (builders.sshKey !== null) {
        keyFile = builderKeyFile();
        await (0,promises_.mkdir)((0,temp/* actionTempDir */.O)(), { recursive: true, mode: 0o700 });
        await writeBuilderKey(keyFile, builders.sshKey);
    }
    const uris = builders.machines.map(machine => machine.uri).join(', ');
    src_core/* info */.pq(`Remote builders: ${uris}${keyFile ? ` (builder-ssh-key in ${keyFile}, 0600)` : ''}`);
    return buildersSetting(builders.machines, keyFile);
}
/** A daemon that does not trust the runner drops `builders` in silence: say so before building. */
async function checkDaemonTakesBuilders() {
    if ((await storeTrustsUser()) === false) {
        throw new Error(`builders: ${untrustedDaemonMessage((0,external_node_os_.userInfo)().username)}`);
    }
}
function useExisting(existing) {
    if (existing.onPath) {
        src_core/* info */.pq(`Using Nix ${existing.version} at ${existing.nix}: not installing`);
        return { version: existing.version, found: 'path', installed: false, nix: existing.nix };
    }
    src_core/* info */.pq(`Using Nix ${existing.version} at ${existing.nix} (not on PATH: added for this and later steps)`);
    src_core/* addPath */.fM((0,external_node_path_.dirname)(existing.nix));
    return { version: existing.version, found: 'adopted', installed: false, nix: existing.nix };
}
async function installNix(version, options) {
    const system = (0,nix_release/* nixSystem */.DH)(process.platform, process.arch);
    src_core/* info */.pq(`No working Nix found: installing Nix ${version} (${system}), single-user`);
    // The download (and @actions/tool-cache with its HTTP client) loads only when Nix is installed.
    const { fetchRelease } = await Promise.all(/* import() */[__nccwpck_require__.e(838), __nccwpck_require__.e(805), __nccwpck_require__.e(807)]).then(__nccwpck_require__.bind(__nccwpck_require__, 807));
    const release = await fetchRelease({ version, system, installUrl: options.installUrl });
    const installed = await installSingleUser(release.dir, version);
    const certFile = sslCertFile(process.env, external_node_fs_.existsSync, installed.cacert);
    if (certFile) {
        src_core/* info */.pq(`No system CA bundle: NIX_SSL_CERT_FILE=${certFile}`);
        src_core/* exportVariable */.dN('NIX_SSL_CERT_FILE', certFile);
    }
    src_core/* addPath */.fM(installed.bin);
    const nix = (0,external_node_path_.join)(installed.bin, 'nix');
    const actual = await nixVersionOf(nix);
    if (!actual)
        throw new Error(`the installed ${nix} does not run: \`nix --version\` failed`);
    if (actual !== version)
        src_core/* warning */.$e(`asked for Nix ${version}, but ${nix} is Nix ${actual}`);
    src_core/* info */.pq(`Installed Nix ${actual}: ${installed.storePath}, on PATH as ${installed.bin}`);
    return { version: actual, found: 'installed', installed: true, nix };
}
/**
 * Our nix.conf, in RUNNER_TEMP (private to this job, deleted by the runner after it), found
 * through NIX_USER_CONF_FILES by this step's nix calls and every later step's.
 */
async function writeJobConf(options) {
    const dir = (0,temp/* actionTempDir */.O)();
    const file = (0,external_node_path_.join)(dir, 'nix.conf');
    await (0,promises_.mkdir)(dir, { recursive: true, mode: 0o700 });
    // 0600 before the token is written: the file may exist from an earlier step.
    await (0,promises_.writeFile)(file, '', { mode: 0o600 });
    await (0,promises_.chmod)(file, 0o600);
    await (0,promises_.writeFile)(file, nixConfText(options));
    src_core/* info */.pq(`Nix configuration for this job (${file}):\n${printableConfText(options).trimEnd()}`);
    src_core/* exportVariable */.dN('NIX_USER_CONF_FILES', userConfFiles(file, process.env, (0,external_node_os_.homedir)()));
}

;// CONCATENATED MODULE: ./src/cache/nix-store.ts
// The Nix side of the store cache: what a flake's key is made of, which paths a build and the
// flake's inputs need, and which of them the store lacks.


/** Parse `nix flake metadata --json` (pure). */
function parseFlakeMetadata(stdout) {
    const json = JSON.parse(stdout);
    const sourceHash = json.locked?.narHash ?? json.path;
    if (!sourceHash)
        throw new Error('nix flake metadata named neither a narHash nor a path');
    const nodes = Object.keys(json.locks?.nodes ?? {});
    const hasInputs = nodes.some(node => node !== 'root');
    return { sourceHash, lock: hasInputs ? JSON.stringify(json.locks) : null };
}
async function flakeMetadata(flake) {
    const { stdout } = await runNix(['flake', 'metadata', '--json', flake], { silent: true });
    return parseFlakeMetadata(stdout);
}
function isDerivation(storePath) {
    return storePath.endsWith('.drv');
}
function lines(text) {
    return text
        .split('\n')
        .map(line => line.trim())
        .filter(line => line !== '');
}
/**
 * What building the image needed: the derivation's requisites with their (valid) outputs, the
 * output included. Without a derivation, the output's runtime closure.
 */
async function buildClosure(drvPath, storePath) {
    const args = drvPath ? ['-qR', '--include-outputs', drvPath] : ['-qR', storePath];
    const { stdout } = await (0,exec/* run */.eF)('nix-store', args, { silent: true });
    return [...new Set([...lines(stdout), storePath])].sort();
}
/**
 * The store paths of a flake's inputs, however deep, from `nix flake archive --json --dry-run`
 * (pure). The flake's own source is left out: it is the checkout, copied into the store anew
 * by every evaluation of it.
 */
function parseFlakeArchive(stdout) {
    const found = new Set();
    const visit = (node) => {
        for (const input of Object.values(node.inputs ?? {})) {
            if (input.path)
                found.add(input.path);
            visit(input);
        }
    };
    visit(JSON.parse(stdout));
    return [...found].sort();
}
/**
 * The sources of the flake's locked inputs. `--dry-run` computes their store paths from the
 * lock file instead of fetching them (after a build they are in the store anyway).
 */
async function flakeInputPaths(flake) {
    const { stdout } = await runNix(['flake', 'archive', '--json', '--dry-run', flake], {
        silent: true
    });
    return parseFlakeArchive(stdout);
}
/** The paths that are not valid in the local store. */
async function invalidPaths(paths) {
    const invalid = [];
    for (const batch of command_batches(paths)) {
        const { stdout } = await (0,exec/* run */.eF)('nix-store', ['--check-validity', '--print-invalid', ...batch], {
            silent: true
        });
        invalid.push(...lines(stdout));
    }
    return invalid;
}
/** Delete paths that nothing else keeps alive (never forced). */
async function deletePaths(paths) {
    if (paths.length === 0)
        return;
    await (0,exec/* run */.eF)('nix-store', ['--delete', ...paths], { silent: true });
}

;// CONCATENATED MODULE: ./src/cache/keys.ts
// The store cache's keys: which entries a run restores, and under which key post saves.
//
// Entries are layered by how often things change. A base holds a whole closure and is keyed by
// the lock (what flake.lock pins changes rarely); a delta holds only what a commit's closure
// adds to a base and names that base in its key, so the restore knows which base to download
// with it:
//   <system>/<attribute>/lock-<h>/base-<source h>                    a base (a whole closure)
//   <system>/<attribute>/lock-<h>/source-<h>/on-base-<source h>      a delta on that base
// The primary key (`lock-<h>/source-<h>`, the `cache-key` output) names the commit; an entry
// saved by it is its delta or its base.



const KEY_PREFIX = 'nix-container-store';
function shortHash(text) {
    return (0,external_node_crypto_.createHash)('sha256').update(text).digest('hex').slice(0, 16);
}
const HASH = '[0-9a-f]{16}';
const BASE_KEY = new RegExp(`^(.*/lock-(?:none|${HASH})/)base-${HASH}$`);
const DELTA_KEY = new RegExp(`^(.*/lock-(?:none|${HASH})/)source-${HASH}/on-base-(${HASH})$`);
/** The base an entry of this lock prefix and source hash would be saved as. */
function baseKey(lockPrefix, sourceHash) {
    return `${lockPrefix}base-${sourceHash}`;
}
/** Read an entry's key: a base, a delta (and the base it needs), or a whole entry. */
function parseEntryKey(key) {
    const delta = DELTA_KEY.exec(key);
    if (delta?.[1] && delta[2]) {
        return { kind: 'delta', key, lock: delta[1], base: baseKey(delta[1], delta[2]) };
    }
    const base = BASE_KEY.exec(key);
    if (base?.[1])
        return { kind: 'base', key, lock: base[1] };
    return { kind: 'whole', key };
}
/** The key of a delta of this commit on `base`. */
function keys_deltaKey(keys, base) {
    const parsed = parseEntryKey(base);
    if (keys.layers === null || parsed.kind !== 'base' || !keys_isSameLock(keys, base)) {
        throw new Error(`no delta on ${base}: not a base of this lock, or cache-key is set`);
    }
    return `${keys.layers.deltaPrefix}on-${base.slice(parsed.lock.length)}`;
}
/** The entry was saved under this commit's lock (a delta may only build on such a base). */
function keys_isSameLock(keys, key) {
    const entry = parseEntryKey(key);
    return entry.kind !== 'whole' && entry.lock === keys.layers?.lock;
}
/** The restored entry is this commit's own: its delta, its base, or the primary key. */
function keys_isExactHit(keys, restoredKey) {
    if (restoredKey === keys.primary)
        return true;
    if (keys.layers === null)
        return false;
    return restoredKey === keys.layers.base || restoredKey.startsWith(keys.layers.deltaPrefix);
}
/**
 * `nix-container-store/<system>/<attribute>/lock-<hash>/source-<hash>`. The attribute is
 * URI-encoded and every part ends in `/`, so `container` never prefix-matches `container-zstd`
 * and no key holds a comma (which the cache service refuses).
 */
function cacheKeys(facts) {
    const scope = `${KEY_PREFIX}/${facts.system}/${encodeURIComponent(facts.attribute)}/`;
    const lock = `${scope}lock-${facts.metadata.lock === null ? 'none' : shortHash(facts.metadata.lock)}/`;
    const source = shortHash(facts.metadata.sourceHash);
    if (facts.override !== null) {
        return { primary: facts.override, restore: [lock, scope], layers: null, scope };
    }
    const primary = `${lock}source-${source}`;
    const layers = { lock, base: baseKey(lock, source), deltaPrefix: `${primary}/` };
    return { primary, restore: [layers.deltaPrefix, layers.base, lock, scope], layers, scope };
}
/** The keys of this run: the system and the flake's lock and source asked of Nix. */
async function computeKeys(source) {
    const [system, metadata] = await Promise.all([
        source.system ?? currentSystem(),
        flakeMetadata(source.flake)
    ]);
    return cacheKeys({ system, attribute: source.attribute, metadata, override: source.cacheKey });
}

;// CONCATENATED MODULE: ./src/cache/phases.ts
// Where a restore's seconds go, for its log: each phase's time since the one before.
function phases(now = () => performance.now()) {
    const ended = [];
    let last = now();
    return {
        end(name) {
            const at = now();
            ended.push([name, (at - last) / 1000]);
            last = at;
        },
        summary() {
            return ended.map(([name, seconds]) => `${name} ${seconds.toFixed(2)} s`).join(', ');
        }
    };
}

;// CONCATENATED MODULE: ./src/cache/github-caches.ts
// GitHub's REST API for a repository's Actions caches: list the entries of a key prefix on a ref,
// delete those of one key on one ref. @actions/cache can only restore and save, so the entries a
// newer save superseded would otherwise stay until GitHub evicts them, crowding the repository's
// cache quota. Endpoints and status codes (API version 2022-11-28):
// https://docs.github.com/en/rest/actions/cache
// Both document 200 only; the 404 of a delete that matched nothing is what GitHub answers (and
// what `gh cache delete` reads as "no such cache"), every other status is an error here.
/** How long one request may take before it is abandoned (milliseconds). */
const REQUEST_TIMEOUT_MS = 30_000;
/** The largest page the list endpoint serves. */
const PER_PAGE = 100;
class github_caches_CachesApiError extends Error {
    /** The HTTP status, or 0 when no answer came (network error, timeout). */
    status;
    /** 403: the token may not do this (a job's token without `actions: write`, say). */
    forbidden;
    constructor(status, message) {
        super(message);
        this.name = 'CachesApiError';
        this.status = status;
        this.forbidden = status === 403;
    }
}
/**
 * The API to talk to from the runner's environment, and the token; or why not, naming what is
 * missing. The runner sets GITHUB_API_URL (GitHub Enterprise Server has its own) and
 * GITHUB_REPOSITORY; the token is the action's github-token input.
 */
function github_caches_cachesApiFrom(env, token) {
    if (!token)
        return { missing: 'no github-token' };
    const repository = env.GITHUB_REPOSITORY;
    if (!repository)
        return { missing: 'GITHUB_REPOSITORY is not set' };
    if (!/^[^/\s]+\/[^/\s]+$/.test(repository)) {
        return { missing: `GITHUB_REPOSITORY is not owner/name: ${repository}` };
    }
    const apiUrl = (env.GITHUB_API_URL || 'https://api.github.com').replace(/\/+$/, '');
    return { apiUrl, repository, token };
}
/**
 * Every committed entry whose key starts with `keyPrefix` on `ref`, page after page. Oldest
 * first: new entries then land on later pages, so a save while paging shifts nothing already
 * read (the default order, last access, changes with every restore).
 */
async function github_caches_listCaches(api, filter, timeoutMs = REQUEST_TIMEOUT_MS) {
    const records = new Map();
    for (let page = 1;; page++) {
        const query = {
            key: filter.keyPrefix,
            ref: filter.ref,
            sort: 'created_at',
            direction: 'asc',
            per_page: String(PER_PAGE),
            page: String(page)
        };
        const { body } = await call(api, 'GET', query, [200], timeoutMs);
        const list = cacheList(body, `GET ${cachesPath(api, query)}`);
        for (const record of list.records)
            records.set(record.id, record);
        // A short page is the last; total_count stops a server whose last page is exactly full.
        if (list.records.length < PER_PAGE || page * PER_PAGE >= list.totalCount)
            break;
    }
    return [...records.values()];
}
/**
 * Delete the entries of `key` on `ref`: how many went (0 when none matched). The docs promise a
 * complete key, but github.com has been seen deleting the entries the key is a prefix of
 * (cli/cli#10624): a caller keeping `k-1` should not delete a key `k`. A 404 also answers a
 * repository the token cannot see; listCaches, which says so, comes first.
 */
async function github_caches_deleteCachesByKey(api, entry, timeoutMs = REQUEST_TIMEOUT_MS) {
    const query = { key: entry.key, ref: entry.ref };
    const { status, body } = await call(api, 'DELETE', query, [200, 404], timeoutMs);
    if (status === 404)
        return 0;
    return cacheList(body, `DELETE ${cachesPath(api, query)}`).records.length;
}
/** The path (and query) of the repository's caches: what an error names, never the token. */
function cachesPath(api, query) {
    const [owner = '', repo = ''] = api.repository.split('/');
    const path = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/actions/caches`;
    return `${path}?${new URLSearchParams(query).toString()}`;
}
/**
 * One request; its status (one of `expected`) and JSON body (null if none). Any other status,
 * no answer in time, or no answer at all throws a CachesApiError naming the method, the path
 * and GitHub's message.
 */
async function call(api, method, query, expected, timeoutMs) {
    const path = cachesPath(api, query);
    const what = `GitHub API ${method} ${path}`;
    let response;
    let text;
    try {
        response = await fetch(`${api.apiUrl}${path}`, {
            method,
            headers: {
                Accept: 'application/vnd.github+json',
                Authorization: `Bearer ${api.token}`,
                'X-GitHub-Api-Version': '2022-11-28',
                'User-Agent': 'nix-container-action'
            },
            signal: AbortSignal.timeout(timeoutMs)
        });
        text = await response.text();
    }
    catch (error) {
        throw apiError(api, 0, `${what}: no answer (${failure(error, timeoutMs)})`);
    }
    const body = parseJson(text);
    if (!expected.includes(response.status)) {
        const hint = response.status === 403 ? forbiddenHint(method) : '';
        const message = githubMessage(body) ?? (text.trim().slice(0, 200) || response.statusText);
        throw apiError(api, response.status, `${what}: ${response.status} ${message}${hint}`);
    }
    return { status: response.status, body };
}
/** The permission a job's token lacks when GitHub answers 403. */
function forbiddenHint(method) {
    const permission = method === 'GET' ? 'actions: read' : 'actions: write';
    return ` (the token may not do this: a job's GITHUB_TOKEN needs \`permissions: ${permission}\`)`;
}
/**
 * Why fetch threw: the timeout by name, else the cause undici hides behind "fetch failed".
 * Duck-typed: the abort's DOMException need not be an Error of this realm.
 */
function failure(error, timeoutMs) {
    const { name, message, cause } = isObject(error) ? error : {};
    if (name === 'TimeoutError')
        return `no response within ${timeoutMs / 1000} s`;
    if (isObject(cause) && typeof cause.message === 'string')
        return cause.message;
    return typeof message === 'string' ? message : String(error);
}
/** The error, with the token cut out should anything (a proxy, an echo) have repeated it. */
function apiError(api, status, message) {
    return new github_caches_CachesApiError(status, api.token ? message.split(api.token).join('***') : message);
}
function parseJson(text) {
    try {
        return text ? JSON.parse(text) : null;
    }
    catch {
        return null;
    }
}
/** GitHub's error bodies are `{ message, documentation_url }`. */
function githubMessage(body) {
    const message = isObject(body) ? body.message : undefined;
    return typeof message === 'string' && message ? message : undefined;
}
function isObject(value) {
    return typeof value === 'object' && value !== null && !Array.isArray(value);
}
/** `{ total_count, actions_caches: [...] }`, checked: a body of another shape is an error. */
function cacheList(body, what) {
    const caches = isObject(body) ? body.actions_caches : undefined;
    const totalCount = isObject(body) ? body.total_count : undefined;
    if (!Array.isArray(caches) || typeof totalCount !== 'number') {
        throw new github_caches_CachesApiError(200, `GitHub API ${what}: not a list of caches`);
    }
    return { totalCount, records: caches.map(cache => cacheRecord(cache, what)) };
}
function cacheRecord(cache, what) {
    if (!isObject(cache) || typeof cache.id !== 'number' || typeof cache.key !== 'string') {
        throw new github_caches_CachesApiError(200, `GitHub API ${what}: a cache without an id or a key`);
    }
    const text = (value) => (typeof value === 'string' ? value : '');
    return {
        id: cache.id,
        key: cache.key,
        ref: text(cache.ref),
        version: text(cache.version),
        createdAt: text(cache.created_at),
        lastAccessedAt: text(cache.last_accessed_at),
        sizeInBytes: typeof cache.size_in_bytes === 'number' ? cache.size_in_bytes : 0
    };
}

;// CONCATENATED MODULE: ./src/cache/prune.ts
// Deleting the entries a save superseded, through GitHub's REST API, so that a lock and branch
// keep one base and one delta however many commits go by. Only this ref's entries of the same
// lock, saved before this job began (a job running beside this one keeps what it saved).


/**
 * The listed entries the save superseded (pure). Never a key that a kept key starts with:
 * github.com has been seen deleting by prefix (cli/cli#10624).
 */
function supersededEntries(records, scope) {
    return records.filter(r => r.ref === scope.ref &&
        r.key.startsWith(scope.lockPrefix) &&
        !scope.keep.some(kept => kept.startsWith(r.key)) &&
        Date.parse(r.createdAt) < scope.startedAt.getTime());
}
const PERMISSION = 'give the job `permissions: actions: write` to let the action delete the entries it superseded';
/** Delete the superseded entries; never throws: what could not be done is a notice. */
async function prune_pruneSuperseded(scope, env, token) {
    const api = cachesApiFrom(env, token);
    if ('missing' in api) {
        return {
            deleted: [],
            notice: null,
            skipped: `superseded entries not looked for: ${api.missing}`
        };
    }
    const deleted = [];
    try {
        const records = await listCaches(api, { keyPrefix: scope.lockPrefix, ref: scope.ref });
        const keys = [...new Set(supersededEntries(records, scope).map(r => r.key))];
        for (const key of keys) {
            if ((await deleteCachesByKey(api, { key, ref: scope.ref })) > 0)
                deleted.push(key);
        }
        return { deleted, notice: null, skipped: null };
    }
    catch (error) {
        const why = error instanceof CachesApiError && error.forbidden
            ? `the token may not (${PERMISSION})`
            : errorMessage(error);
        const done = deleted.length > 0 ? ` after deleting ${deleted.length}` : '';
        return {
            deleted,
            notice: `superseded entries were not all deleted${done}: ${why}`,
            skipped: null
        };
    }
}

;// CONCATENATED MODULE: ./src/cache/nar-hash.ts
// NAR hashes of the trees an extraction writes, computed from the bytes as they go by: the
// restore checks each store path against the NAR hash of its registration, and hashing what
// the extraction already holds in hand costs no second pass over the bytes (nor a `nix hash
// path` process per core), while the other core decompresses. A NAR (Nix's archive format) is
// the tree serialised with each directory's entries sorted by name: a tar lists them in the
// order its writer read them, so a directory tree's files are kept (by reference to the chunks
// read) until the tree is whole, then serialised; a tree that is one file is hashed as it
// streams. What cannot be hashed here (a tree over the memory budget, or whose members do not
// come together) gets no hash, and the caller hashes it with Nix.


/** The memory a tree's kept bytes may hold, at most (a bigger tree is hashed by Nix). */
const TREE_BUDGET = 256 * 1024 * 1024;
const PADDING = Buffer.alloc(8);
/** NAR's string: its length (u64, little-endian), its bytes, zeros to a multiple of 8. */
function putString(hash, value) {
    const bytes = typeof value === 'string' ? Buffer.from(value) : value;
    putContentsHeader(hash, bytes.length);
    hash.update(bytes);
    putPadding(hash, bytes.length);
}
function putContentsHeader(hash, length) {
    const size = Buffer.alloc(8);
    size.writeBigUInt64LE(BigInt(length));
    hash.update(size);
}
function putPadding(hash, length) {
    const pad = (8 - (length % 8)) % 8;
    if (pad > 0)
        hash.update(PADDING.subarray(0, pad));
}
function putFileHeader(hash, executable) {
    for (const s of ['(', 'type', 'regular'])
        putString(hash, s);
    if (executable) {
        putString(hash, 'executable');
        putString(hash, '');
    }
    putString(hash, 'contents');
}
/** Serialise a node into the hash, as `nix-store --dump` writes it. */
function putNode(hash, node) {
    switch (node.type) {
        case 'symlink':
            for (const s of ['(', 'type', 'symlink', 'target', node.target, ')'])
                putString(hash, s);
            return;
        case 'regular': {
            const size = node.chunks.reduce((sum, chunk) => sum + chunk.length, 0);
            putFileHeader(hash, node.executable);
            putContentsHeader(hash, size);
            for (const chunk of node.chunks)
                hash.update(chunk);
            putPadding(hash, size);
            putString(hash, ')');
            return;
        }
        case 'link': {
            const bytes = (0,external_node_fs_.readFileSync)(node.path);
            const executable = ((0,external_node_fs_.statSync)(node.path).mode & 0o100) !== 0;
            putNode(hash, { type: 'regular', executable, chunks: [bytes] });
            return;
        }
        case 'directory': {
            for (const s of ['(', 'type', 'directory'])
                putString(hash, s);
            const names = [...node.entries.keys()]
                .map(name => Buffer.from(name))
                .sort((a, b) => Buffer.compare(a, b));
            for (const name of names) {
                putString(hash, 'entry');
                putString(hash, '(');
                putString(hash, 'name');
                putString(hash, name);
                putString(hash, 'node');
                putNode(hash, node.entries.get(name.toString()));
                putString(hash, ')');
            }
            putString(hash, ')');
        }
    }
}
function narHash(node) {
    const hash = (0,external_node_crypto_.createHash)('sha256');
    putString(hash, 'nix-archive-1');
    putNode(hash, node);
    return hash.digest('hex');
}
/**
 * The NAR hashes (sha256, base16) of the trees extracted, by root name, each computed once its
 * tree is whole. Members must come tree by tree, each tree's together (as tar writes a
 * directory walk); a tree whose members come apart, or that is bigger than `budget`, gets no
 * hash.
 */
class TreeHashes {
    budget;
    current = null;
    hashes = new Map();
    unhashed = new Set();
    constructor(budget = TREE_BUDGET) {
        this.budget = budget;
    }
    /**
     * A member of the tree `root` at `rel` (its parts below the root; [] for the root itself).
     * For a file, where its bytes go.
     */
    member(root, rel, member) {
        if (this.current?.root !== root)
            this.start(root);
        const current = this.current;
        if (current === null || this.unhashed.has(root))
            return null;
        if (rel.length === 0 && member.kind === 'file') {
            // A tree that is one file: hashed as it streams.
            const hash = (0,external_node_crypto_.createHash)('sha256');
            putString(hash, 'nix-archive-1');
            putFileHeader(hash, member.executable);
            putContentsHeader(hash, member.size);
            current.streaming = hash;
            return {
                data: chunk => hash.update(chunk),
                end: () => {
                    putPadding(hash, member.size);
                    putString(hash, ')');
                }
            };
        }
        const node = this.nodeOf(member);
        if (!this.place(current, rel, node)) {
            this.giveUp(root);
            return null;
        }
        if (node.type !== 'regular')
            return null;
        return {
            data: chunk => {
                if (this.current !== current || current.node === null)
                    return;
                // A small piece of a read keeps the whole read's memory: copied, it keeps its own.
                const small = chunk.length * 2 < chunk.buffer.byteLength;
                current.bytes += small ? chunk.length : chunk.buffer.byteLength;
                if (current.bytes > this.budget)
                    this.giveUp(root);
                else
                    node.chunks.push(small ? Buffer.from(chunk) : chunk);
            },
            end: () => undefined
        };
    }
    /** Every tree's hash, the last one's included; the trees that got none are left out. */
    finish() {
        this.end();
        return this.hashes;
    }
    nodeOf(member) {
        switch (member.kind) {
            case 'directory':
                return { type: 'directory', entries: new Map() };
            case 'symlink':
                return { type: 'symlink', target: member.target };
            case 'file':
                return { type: 'regular', executable: member.executable, chunks: [] };
            case 'hardlink':
                return { type: 'link', path: member.path };
        }
    }
    /** Put `node` at `rel` in the current tree (parents made as directories); false: no place. */
    place(current, rel, node) {
        if (rel.length === 0) {
            if (current.node !== null)
                return current.node.type === 'directory' && node.type === 'directory';
            current.node = node;
            return true;
        }
        current.node ??= { type: 'directory', entries: new Map() };
        let dir = current.node;
        for (const part of rel.slice(0, -1)) {
            if (dir.type !== 'directory')
                return false;
            let next = dir.entries.get(part);
            if (next === undefined) {
                next = { type: 'directory', entries: new Map() };
                dir.entries.set(part, next);
            }
            dir = next;
        }
        if (dir.type !== 'directory')
            return false;
        const name = rel[rel.length - 1] ?? '';
        const there = dir.entries.get(name);
        if (there !== undefined)
            return there.type === 'directory' && node.type === 'directory';
        dir.entries.set(name, node);
        return true;
    }
    start(root) {
        this.end();
        if (this.unhashed.has(root))
            return;
        if (this.hashes.has(root)) {
            // Its members came apart: what was hashed is not the whole tree.
            this.giveUp(root);
            return;
        }
        this.current = { root, node: null, streaming: null, bytes: 0 };
    }
    end() {
        const current = this.current;
        this.current = null;
        if (current === null || this.unhashed.has(current.root))
            return;
        if (current.streaming !== null)
            this.hashes.set(current.root, current.streaming.digest('hex'));
        else if (current.node !== null)
            this.hashes.set(current.root, narHash(current.node));
    }
    giveUp(root) {
        this.unhashed.add(root);
        this.hashes.delete(root);
        if (this.current?.root === root)
            this.current = null;
    }
}

;// CONCATENATED MODULE: ./src/cache/extract.ts
// Extracting a store cache archive, which is untrusted input, confined to a folder: nothing is
// written outside it, whatever the archive holds. Every member is checked before anything is
// written for it, against the rules below and the layout the caller expects; the first member
// that breaks one stops the writing: the rest of the archive is only read, to name every member
// that breaks one (RefusedMembers), and the caller discards what was extracted (the whole
// entry). Only regular files, directories, symbolic links and
// hard links are written, each by this process with calls that never follow a symbolic link
// (O_EXCL | O_NOFOLLOW, mkdir, symlink, link), owned by the user that runs the action, with the
// modes Nix gives the store (0444 or 0555 for files, 0555 for directories): no special bits, no
// device, no owner taken from the archive. Refused:
// - a name that is absolute, holds `..`, or an empty or `.` part;
// - a member inside a member that is not a directory (a symbolic link: the classic way out,
//   a symlink to a folder outside followed by a file "through" it);
// - a hard link whose target is not a regular file extracted before it from the same archive;
// - a device, a FIFO, or any other type; setuid, setgid or sticky bits;
// - a second member of the same name (it would replace or write through the first);
// - anything the layout does not have where it stands (which also keeps symbolic links out of
//   everything but the store paths' own trees).







/** A member that may not be extracted. */
class RefusedMember extends Error {
    member;
    why;
    constructor(member, why) {
        super(`${JSON.stringify(member)} is ${why}`);
        this.member = member;
        this.why = why;
        this.name = 'RefusedMember';
    }
}
/** How many refused members an error names. */
const NAMED_AT_MOST = 20;
/** The members of an archive that may not be extracted, each named with why. */
class RefusedMembers extends Error {
    refused;
    constructor(refused) {
        const named = refused.slice(0, NAMED_AT_MOST).map(r => r.message);
        const more = refused.length > NAMED_AT_MOST ? `; and ${refused.length - NAMED_AT_MOST} more` : '';
        super(refused.length === 1
            ? `its member ${named.join('')}`
            : `${refused.length} of its members may not be extracted: ${named.join('; ')}${more}`);
        this.refused = refused;
        this.name = 'RefusedMembers';
    }
}
const KINDS = {
    File: 'file',
    OldFile: 'file',
    ContiguousFile: 'file',
    Directory: 'directory',
    SymbolicLink: 'symlink',
    Link: 'hardlink'
};
const TYPE_NAMES = {
    CharacterDevice: 'a character device',
    BlockDevice: 'a block device',
    FIFO: 'a FIFO'
};
const SPECIAL_BITS = 0o7000;
/** What is wrong with a member's name or a hard link's target, or null. */
function nameProblem(name) {
    if (name.startsWith('/'))
        return 'an absolute name';
    const parts = name.split('/');
    if (parts.includes('..'))
        return 'a name with `..`';
    if (parts.some(part => part === '' || part === '.'))
        return 'a name with an empty or `.` part';
    return null;
}
function fits(kind, place) {
    if (place === 'tree')
        return true;
    return kind === place;
}
/**
 * Check one member against the rules and the layout (pure, but for `written`, which the caller
 * updates once the member is written): its name's parts and its kind, or a RefusedMember.
 * Parents of the member that `written` does not know are checked by the caller on disk.
 */
function checkMember(member, written, layout) {
    // A directory's name ends with a slash in the archive.
    const name = member.type === 'Directory' ? member.path.replace(/\/+$/, '') : member.path;
    const refuse = (why) => new RefusedMember(member.path, why);
    const problem = nameProblem(name);
    if (problem !== null)
        throw refuse(problem);
    const parts = name.split('/');
    const kind = KINDS[member.type];
    if (kind === undefined) {
        throw refuse(TYPE_NAMES[member.type] ?? `of type ${member.type} (not a file, directory or link)`);
    }
    const mode = member.mode ?? 0;
    if ((mode & SPECIAL_BITS) !== 0) {
        throw refuse(`setuid, setgid or sticky (mode ${(mode & 0o7777).toString(8).padStart(4, '0')})`);
    }
    for (let i = parts.length - 1; i > 0; i--) {
        const parent = parts.slice(0, i).join('/');
        const there = written.get(parent);
        if (there === undefined)
            continue;
        if (there !== 'directory' && there !== 'implicit') {
            throw refuse(`inside ${JSON.stringify(parent)}, a ${describeKind(there)}`);
        }
        break; // checked when it was written, with its own parents
    }
    const before = written.get(name);
    if (before !== undefined && !(before === 'implicit' && kind === 'directory')) {
        throw refuse('a second member of that name');
    }
    const place = layout(parts);
    if (place === null)
        throw refuse("not part of the store cache's layout");
    if (!fits(kind, place))
        throw refuse(`a ${describeKind(kind)} where the layout has a ${place}`);
    if (kind === 'hardlink') {
        const target = member.linkpath ?? '';
        const targetProblem = nameProblem(target);
        if (targetProblem !== null) {
            throw refuse(`a hard link to ${JSON.stringify(target)}, ${targetProblem}`);
        }
        if (written.get(target) !== 'file') {
            throw refuse(`a hard link to ${JSON.stringify(target)}, not a file extracted before it from this archive`);
        }
    }
    return { name, parts, kind, place };
}
function describeKind(kind) {
    return kind === 'symlink' ? 'symbolic link' : kind === 'hardlink' ? 'hard link' : kind;
}
// --- the archive's bytes -------------------------------------------------------------------
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const GZIP_MAGIC = Buffer.from([0x1f, 0x8b]);
/** As @actions/cache's own extraction (`unzstd --long=30`): a window of up to 1 GiB. */
const ZSTD_WINDOW_LOG_MAX = 30;
const READ_CHUNK = 1 << 16;
function startsWith(head, magic) {
    return head.subarray(0, magic.length).equals(magic);
}
/**
 * The archive as a tar stream: zstd (what @actions/cache writes) decompressed by the `zstd`
 * program through a pipe, which @actions/cache saves zstd only where it is installed (measured
 * faster than Node 24's own zstd here: it decompresses on the other core, and Node 20 has none);
 * gzip (its fallback without zstd) by Node. `done` settles when the decompression has ended
 * (the program's exit status).
 */
function tarStream(archive) {
    const head = Buffer.alloc(4);
    const fd = (0,external_node_fs_.openSync)(archive, 'r');
    try {
        (0,external_node_fs_.readSync)(fd, head, 0, head.length, 0);
    }
    finally {
        (0,external_node_fs_.closeSync)(fd);
    }
    if (startsWith(head, ZSTD_MAGIC)) {
        return (0,exec/* spawnProducer */.gi)('zstd', ['-d', '-c', `--long=${ZSTD_WINDOW_LOG_MAX}`, '--', archive]);
    }
    const source = (0,external_node_fs_.createReadStream)(archive, { highWaterMark: READ_CHUNK });
    if (!startsWith(head, GZIP_MAGIC)) {
        return { stdout: source, done: (0,external_node_events_.once)(source, 'end').then(() => undefined) };
    }
    const gunzip = (0,external_node_zlib_.createGunzip)();
    source.on('error', error => gunzip.destroy(error));
    gunzip.on('close', () => source.destroy());
    source.pipe(gunzip);
    return { stdout: gunzip, done: (0,external_node_events_.once)(gunzip, 'end').then(() => undefined) };
}
const extract_BLOCK = 512;
/** Extended headers (pax, GNU long names) bigger than this are not a store cache's. */
const META_LIMIT = 1 << 20;
const META_TYPES = new Set([
    'ExtendedHeader',
    'OldExtendedHeader',
    'GlobalExtendedHeader',
    'NextFileHasLongPath',
    'OldGnuLongPath',
    'NextFileHasLongLinkpath'
]);
/**
 * The framing of a tar stream (ustar, pax, GNU long names), fed chunk by chunk: each member's
 * header (decoded by node-tar's Header, pax records by its Pax) goes to `member`, whose sink
 * takes its bytes straight from the chunks (no copy, no stream per member: a store cache holds
 * thousands of small files). The end-of-archive blocks are required: an archive cut short is
 * an error, whether mid-member or between members.
 */
class TarReader {
    member;
    block = Buffer.alloc(extract_BLOCK);
    filled = 0;
    remain = 0;
    padding = 0;
    sink = null;
    meta = null;
    ex;
    gex;
    nullBlocks = 0;
    ended = false;
    constructor(member) {
        this.member = member;
    }
    write(chunk) {
        let at = 0;
        while (at < chunk.length && !this.ended) {
            if (this.remain > 0) {
                const n = Math.min(this.remain, chunk.length - at);
                this.body(chunk.subarray(at, at + n));
                this.remain -= n;
                at += n;
                if (this.remain === 0)
                    this.endMember();
            }
            else if (this.padding > 0) {
                const n = Math.min(this.padding, chunk.length - at);
                this.padding -= n;
                at += n;
            }
            else {
                const n = Math.min(extract_BLOCK - this.filled, chunk.length - at);
                chunk.copy(this.block, this.filled, at, at + n);
                this.filled += n;
                at += n;
                if (this.filled === extract_BLOCK) {
                    this.filled = 0;
                    this.header();
                }
            }
        }
    }
    /** The input has ended: throws when the archive has not. */
    end() {
        if (!this.ended)
            throw new Error('the archive is truncated (it ends before its end-of-archive blocks)');
    }
    header() {
        const header = new F(this.block, 0, this.ex, this.gex);
        if (header.nullBlock) {
            if (++this.nullBlocks === 2)
                this.ended = true;
            return;
        }
        if (this.nullBlocks > 0)
            throw new Error('the archive has a lone zero block between members');
        if (!header.cksumValid)
            throw new Error('the archive has a header with a bad checksum');
        const size = header.size ?? 0;
        this.remain = size;
        this.padding = (extract_BLOCK - (size % extract_BLOCK)) % extract_BLOCK;
        if (META_TYPES.has(header.type)) {
            if (size > META_LIMIT)
                throw new Error(`the archive has an extended header of ${size} bytes`);
            this.meta = { type: header.type, chunks: [] };
        }
        else {
            // Header puts the ustar fields (a truncated name, a prefix) over the pax ones for the
            // name and the link's target: the pax record is the member's, as in GNU tar.
            const ex = this.ex;
            this.ex = undefined;
            this.sink = this.member({
                path: ex?.path ?? header.path ?? '',
                type: header.type,
                mode: header.mode,
                linkpath: ex?.linkpath ?? header.linkpath,
                mtime: header.mtime,
                size
            });
        }
        if (this.remain === 0)
            this.endMember();
    }
    body(chunk) {
        if (this.meta !== null)
            this.meta.chunks.push(Buffer.from(chunk));
        else
            this.sink?.data(chunk);
    }
    endMember() {
        if (this.meta !== null) {
            const { type, chunks } = this.meta;
            this.meta = null;
            const text = Buffer.concat(chunks).toString('utf8');
            if (type === 'GlobalExtendedHeader')
                this.gex = ft.parse(text, this.gex, true);
            else if (type === 'ExtendedHeader' || type === 'OldExtendedHeader') {
                this.ex = ft.parse(text, this.ex, false);
            }
            else {
                const value = text.replace(/\0.*/s, '');
                this.ex = { ...this.ex, [type === 'NextFileHasLongLinkpath' ? 'linkpath' : 'path']: value };
            }
            return;
        }
        const sink = this.sink;
        this.sink = null;
        sink?.end();
    }
}
// --- writing -------------------------------------------------------------------------------
/** The modes Nix gives the store: no write bit, executable or not. */
function fileMode(mode) {
    return (mode & 0o111) !== 0 ? 0o555 : 0o444;
}
/** A store path's directories are 0555 (set once their contents are in); the layout's own stay writable. */
function directoryMode(place) {
    return place === 'tree' ? 0o555 : 0o755;
}
const CREATE_FILE = external_node_fs_.constants.O_WRONLY | external_node_fs_.constants.O_CREAT | external_node_fs_.constants.O_EXCL | external_node_fs_.constants.O_NOFOLLOW;
function writeAll(fd, chunk) {
    for (let at = 0; at < chunk.length;)
        at += (0,external_node_fs_.writeSync)(fd, chunk, at, chunk.length - at);
}
/** The name of the tree a member of a `tree` place belongs to: its shortest `tree` prefix. */
function treeRoot(parts, layout) {
    for (let i = 1; i < parts.length; i++)
        if (layout(parts.slice(0, i)) === 'tree')
            return i;
    return parts.length;
}
/**
 * Extract `archive` (a tar, zstd- or gzip-compressed) into the folder `into`, which this process
 * made: only what the rules and `layout` allow, and nothing at all from the first member they
 * refuse on (RefusedMembers names every one of them). An archive that does not read (truncated,
 * a bad header) is an error too. Either way, what was written stays inside `into`, for the caller to remove.
 */
async function extractConfined(archive, into, layout, { hashTrees = true } = {}) {
    const written = new Map();
    const directories = [];
    let members = 0;
    const trees = new TreeHashes();
    let openFd = null;
    /** Parents the archive did not list (or that an earlier archive made): real directories only. */
    const parentsOf = (parts) => {
        for (let i = 1; i < parts.length; i++) {
            const name = parts.slice(0, i).join('/');
            if (written.has(name))
                continue;
            const place = layout(parts.slice(0, i));
            if (place === null || place === 'file') {
                throw new RefusedMember(parts.join('/'), `inside ${JSON.stringify(name)}, which the layout does not have as a directory`);
            }
            const path = (0,external_node_path_.join)(into, name);
            const stat = (0,external_node_fs_.lstatSync)(path, { throwIfNoEntry: false });
            if (stat === undefined) {
                (0,external_node_fs_.mkdirSync)(path, 0o700);
                directories.push({ path, mode: directoryMode(place), mtime: undefined });
            }
            else if (!stat.isDirectory()) {
                throw new RefusedMember(parts.join('/'), `inside ${JSON.stringify(name)}, which is not a directory`);
            }
            written.set(name, 'implicit');
        }
    };
    /** Once a member is refused, nothing more is written: the rest is only checked. */
    const refused = [];
    const onMember = (member) => {
        let checked;
        try {
            checked = checkMember(member, written, layout);
            if (refused.length === 0)
                parentsOf(checked.parts);
        }
        catch (error) {
            if (!(error instanceof RefusedMember))
                throw error;
            refused.push(error);
            return null;
        }
        const { name, parts, kind, place } = checked;
        const tree = hashTrees && place === 'tree' ? treeRoot(parts, layout) : null;
        const root = tree === null ? '' : parts.slice(0, tree).join('/');
        const rel = tree === null ? [] : parts.slice(tree);
        if (refused.length > 0) {
            // As if written, so that what comes after it is checked against it.
            for (let i = 1; i < parts.length; i++) {
                const parent = parts.slice(0, i).join('/');
                if (!written.has(parent))
                    written.set(parent, 'implicit');
            }
            written.set(name, kind);
            return null;
        }
        const path = (0,external_node_path_.join)(into, name);
        const mtime = member.mtime;
        members++;
        switch (kind) {
            case 'directory':
                if (written.get(name) !== 'implicit') {
                    try {
                        (0,external_node_fs_.mkdirSync)(path, 0o700);
                    }
                    catch (error) {
                        // Made by an earlier archive into the same folder: a real directory only.
                        if (error.code !== 'EEXIST')
                            throw error;
                        if (!(0,external_node_fs_.lstatSync)(path).isDirectory())
                            throw error;
                    }
                }
                directories.push({ path, mode: directoryMode(place), mtime });
                written.set(name, 'directory');
                if (tree !== null)
                    trees.member(root, rel, { kind: 'directory' });
                return null;
            case 'symlink': {
                const target = member.linkpath ?? '';
                (0,external_node_fs_.symlinkSync)(target, path);
                if (mtime)
                    (0,external_node_fs_.lutimesSync)(path, mtime, mtime);
                written.set(name, 'symlink');
                if (tree !== null)
                    trees.member(root, rel, { kind: 'symlink', target });
                return null;
            }
            case 'hardlink': {
                const target = (0,external_node_path_.join)(into, member.linkpath ?? '');
                (0,external_node_fs_.linkSync)(target, path);
                written.set(name, 'hardlink');
                if (tree !== null)
                    trees.member(root, rel, { kind: 'hardlink', path: target });
                return null;
            }
            case 'file': {
                const fd = (0,external_node_fs_.openSync)(path, CREATE_FILE, 0o600);
                openFd = fd;
                written.set(name, 'file');
                const mode = fileMode(member.mode ?? 0);
                const size = member.size ?? 0;
                const hash = tree === null
                    ? null
                    : trees.member(root, rel, { kind: 'file', executable: mode === 0o555, size });
                return {
                    data: chunk => {
                        writeAll(fd, chunk);
                        hash?.data(chunk);
                    },
                    end: () => {
                        hash?.end();
                        if (mtime)
                            (0,external_node_fs_.futimesSync)(fd, mtime, mtime);
                        (0,external_node_fs_.fchmodSync)(fd, mode);
                        openFd = null;
                        (0,external_node_fs_.closeSync)(fd);
                    }
                };
            }
        }
    };
    const reader = new TarReader(onMember);
    const { stdout: stream, done } = tarStream(archive);
    // Awaited below; a rejection while the loop still runs must not go unhandled meanwhile.
    done.catch(() => undefined);
    try {
        for await (const chunk of stream) {
            reader.write(chunk);
            if (reader.ended)
                break;
        }
        reader.end();
        if (!stream.destroyed)
            await done;
    }
    catch (error) {
        // A hostile archive that is also cut short: the members it holds are what to say.
        if (refused.length === 0)
            throw error;
    }
    finally {
        stream.destroy();
        if (openFd !== null)
            (0,external_node_fs_.closeSync)(openFd);
    }
    if (refused.length > 0)
        throw new RefusedMembers(refused);
    // Deepest first, once their contents are in: a store path's directories become read-only.
    for (const { path, mode, mtime } of directories.reverse()) {
        (0,external_node_fs_.chmodSync)(path, mode);
        if (mtime)
            (0,external_node_fs_.utimesSync)(path, mtime, mtime);
    }
    const narHashes = new Map();
    for (const [root, hash] of trees.finish())
        narHashes.set((0,external_node_path_.join)(into, root), hash);
    return { members, narHashes };
}

;// CONCATENATED MODULE: ./src/cache/manifest.ts
// The archive's manifest: its layout version and the store paths it holds.


/** Bump when the archive's layout changes, so old entries are never restored. */
const MANIFEST_VERSION = 2;
const MANIFEST_FILE = 'nix-container-action.json';
const STORE_PATH = /^\/[^\n]*\/[0-9a-z]{32}-[^/\n]+$/;
/** Parse and check a manifest (pure, for tests): an older layout or a non-path is an error. */
function manifest_parseManifest(text) {
    const json = JSON.parse(text);
    if (json.version !== MANIFEST_VERSION) {
        throw new Error(`the archive's manifest has version ${String(json.version)}, not ${MANIFEST_VERSION}`);
    }
    const paths = Array.isArray(json.paths) ? json.paths : [];
    const bad = paths.find(p => typeof p !== 'string' || !STORE_PATH.test(p));
    if (bad !== undefined)
        throw new Error(`the archive's manifest lists ${JSON.stringify(bad)}, not a store path`);
    if (json.signatures === undefined)
        return { version: MANIFEST_VERSION, paths };
    return { version: MANIFEST_VERSION, paths, signatures: parseSignatures(json.signatures) };
}
function parseSignatures(value) {
    const ok = typeof value === 'object' &&
        value !== null &&
        !Array.isArray(value) &&
        Object.values(value).every(sigs => Array.isArray(sigs) && sigs.every(sig => typeof sig === 'string'));
    if (!ok)
        throw new Error("the archive's manifest has signatures that are not lists of strings");
    // No prototype: a path named like an Object member must not find one.
    return Object.assign(Object.create(null), value);
}
/** The manifest of the archive in `dir`. */
async function readManifest(dir) {
    return manifest_parseManifest(await (0,promises_.readFile)((0,external_node_path_.join)(dir, MANIFEST_FILE), 'utf8'));
}
/** Write the manifest of an archive of `paths` into `dir`. */
async function manifest_writeManifest(dir, paths, signatures = null) {
    const manifest = { version: MANIFEST_VERSION, paths };
    if (signatures !== null)
        manifest.signatures = signatures;
    await writeFile(join(dir, MANIFEST_FILE), JSON.stringify(manifest));
}

;// CONCATENATED MODULE: ./src/cache/service.ts
// The GitHub cache service through @actions/cache, for one directory.

/**
 * @actions/cache and its Azure SDK are most of the bundle: loaded only when the cache is used,
 * so that a run with `cache: false` starts as fast as a shell step. The download (download.ts,
 * the client's own modules without its extraction) comes with it.
 */
const loadCacheClient = () => Promise.all(/* import() */[__nccwpck_require__.e(838), __nccwpck_require__.e(409), __nccwpck_require__.e(682)]).then(__nccwpck_require__.bind(__nccwpck_require__, 8682));
const loadDownload = () => Promise.all(/* import() */[__nccwpck_require__.e(838), __nccwpck_require__.e(409), __nccwpck_require__.e(728)]).then(__nccwpck_require__.bind(__nccwpck_require__, 728));
/**
 * The directory's name is all @actions/cache sees of it: the entry's "version" is a hash of the
 * paths as given, so a name relative to a fixed parent keeps entries restorable on every runner
 * (an absolute path would differ between runners and between RUNNER_TEMPs). Its suffix changes
 * with the archive's layout, so that entries of an older layout are not even found.
 */
const service_CACHE_DIR_NAME = 'nix-container-action-store-v3';
/**
 * The protocol @actions/cache speaks, decided as its config does: v2 (Twirp at
 * ACTIONS_RESULTS_URL, archives in Azure Blob storage) when ACTIONS_CACHE_SERVICE_V2 is set,
 * except on GitHub Enterprise Server, which has only v1 (the REST API at ACTIONS_CACHE_URL).
 */
function cacheServiceVersion(env) {
    const host = new URL(env.GITHUB_SERVER_URL || 'https://github.com').hostname.toLowerCase();
    const ghes = host !== 'github.com' && !host.endsWith('.ghe.com') && !host.endsWith('.localhost');
    return env.ACTIONS_CACHE_SERVICE_V2 && !ghes ? 'v2' : 'v1';
}
/**
 * Why the client has no cache service, naming the variable it lacks; null when it has one.
 * `urlAvailable` is the client's own verdict (isFeatureAvailable), which checks only the URL;
 * without ACTIONS_RUNTIME_TOKEN every call would fail, so that counts as no service too.
 */
function missingCacheService(env, urlAvailable) {
    if (!urlAvailable) {
        if (cacheServiceVersion(env) === 'v2') {
            return 'no cache service: ACTIONS_RESULTS_URL is not set (ACTIONS_CACHE_SERVICE_V2 is, so @actions/cache speaks the v2 protocol)';
        }
        const results = env.ACTIONS_RESULTS_URL
            ? ' (ACTIONS_RESULTS_URL is, but without ACTIONS_CACHE_SERVICE_V2 @actions/cache speaks v1)'
            : '';
        return `no cache service: ACTIONS_CACHE_URL is not set${results}`;
    }
    if (!env.ACTIONS_RUNTIME_TOKEN)
        return 'no cache service: ACTIONS_RUNTIME_TOKEN is not set';
    return null;
}
/**
 * The client's isFeatureAvailable, read from the same variables without loading the client
 * (pure; its unit test compares the two): the service URL of the protocol it speaks is set.
 */
function serviceUrlAvailable(env) {
    return Boolean(cacheServiceVersion(env) === 'v2' ? env.ACTIONS_RESULTS_URL : env.ACTIONS_CACHE_URL);
}
/**
 * Why there is no cache service to use (see missingCacheService), or null. Decided from the
 * environment: a job without a cache service never loads the client (2.4 MB of code, about
 * 0.1 s of every step's CPU).
 */
function service_cacheServiceMissing() {
    return missingCacheService(process.env, serviceUrlAvailable(process.env));
}
/**
 * @actions/cache archives paths relative to GITHUB_WORKSPACE and resolves them from the working
 * directory, so both point at the parent for the duration of the call. Nothing else runs in this
 * process meanwhile.
 */
async function inParent(parent, work) {
    await mkdir(parent, { recursive: true });
    const workspace = process.env.GITHUB_WORKSPACE;
    const cwd = process.cwd();
    process.env.GITHUB_WORKSPACE = parent;
    process.chdir(parent);
    try {
        return await work();
    }
    finally {
        process.chdir(cwd);
        if (workspace === undefined)
            delete process.env.GITHUB_WORKSPACE;
        else
            process.env.GITHUB_WORKSPACE = workspace;
    }
}
/** Start loading the cache client now, so that it is ready when the restore begins. */
function preloadCacheClient() {
    if (service_cacheServiceMissing() !== null)
        return;
    loadCacheClient().catch(() => undefined);
    loadDownload().catch(() => undefined);
}
/**
 * Download the archive of the entry of `primaryKey`, else of the newest one of each of
 * `restoreKeys` prefixes, to `archivePath`, without extracting it (an entry is untrusted input:
 * extract.ts extracts it): the key found, or null on a miss. A service or download error is a
 * warning (as @actions/cache words it) and a miss.
 */
async function downloadFirst(primaryKey, restoreKeys, archivePath) {
    const { downloadArchive } = await loadDownload();
    return downloadArchive([service_CACHE_DIR_NAME], primaryKey, restoreKeys, archivePath);
}
/**
 * Save <parent>/CACHE_DIR_NAME under key. False when the service refused or failed:
 * @actions/cache has logged why (a warning, or a line for a reservation conflict).
 */
async function service_saveDirectory(parent, key) {
    const cache = await loadCacheClient();
    const id = await inParent(parent, () => cache.saveCache([service_CACHE_DIR_NAME], key));
    return id !== -1;
}

;// CONCATENATED MODULE: ./src/cache/signatures.ts
// The store cache's signatures: a save signs each path it writes with `cache-signing-key`
// (recorded in the manifest, beside the registration); a restore with `cache-trusted-keys`
// takes an entry only when every one of its paths carries a valid signature by one of them;
// the signatures then go into Nix's database with the paths (a narinfo per path, which
// `nix store copy-sigs` reads), so that a daemon with `require-sigs` accepts them.





/** Each path's signature by `key`, by path (pure). */
function signatures_signRegistrations(key, registrations) {
    const signatures = {};
    for (const r of registrations)
        signatures[r.path] = [signPath(key, r)];
    return signatures;
}
/** The signatures of `path` a manifest recorded (none when it recorded none). */
function signaturesOf(signatures, path) {
    const found = signatures && Object.hasOwn(signatures, path) ? signatures[path] : undefined;
    return found ?? [];
}
/**
 * Why the entry may not be restored, naming the first path that is not signed by a trusted key
 * and the key(s) it is signed by; null when every path is (pure).
 */
function untrustedPath(entries, trusted) {
    const names = trusted.map(k => k.name).join(', ');
    for (const entry of entries) {
        if (verifyPath(entry, entry.signatures, trusted))
            continue;
        if (entry.signatures.length === 0) {
            return `${entry.path} is not signed (trusted keys: ${names})`;
        }
        const by = [...new Set(entry.signatures.map(s => signatureKeyName(s) || '(unreadable)'))];
        const claims = by.some(name => trusted.some(k => k.name === name))
            ? 'whose signature does not verify'
            : 'not by a trusted key';
        return `${entry.path} is signed by key ${by.map(n => JSON.stringify(n)).join(', ')}, ${claims} (trusted keys: ${names})`;
    }
    return null;
}
/** untrustedPath, with every path's signatures checked at once on all cores. */
async function firstUntrustedPath(entries, trusted) {
    const verified = await Promise.all(entries.map(e => verifyPathInPool(e, e.signatures, trusted)));
    const first = verified.indexOf(false);
    return first === -1 ? null : untrustedPath([entries[first]], trusted);
}
/** A narinfo that holds what `nix store copy-sigs` reads of a path: its hash, size, signatures. */
function narinfo(entry) {
    return [
        `StorePath: ${entry.path}`,
        // Never fetched: copy-sigs reads the path's info only.
        `URL: nar/${(0,external_node_path_.basename)(entry.path)}.nar`,
        'Compression: none',
        `NarHash: sha256:${encodeNix32(Buffer.from(entry.narHash, 'hex'))}`,
        `NarSize: ${entry.narSize}`,
        `References: ${entry.references.map(r => (0,external_node_path_.basename)(r)).join(' ')}`,
        ...entry.signatures.map(sig => `Sig: ${sig}`),
        ''
    ].join('\n');
}
/**
 * Add the recorded signatures of these (valid) paths to the store's database: a local binary
 * cache of narinfos only under `dir`, from which `nix store copy-sigs` copies them (it checks
 * that each narinfo's NAR hash is the path's). `store`: a store URI, or null for the default.
 */
async function addSignatures(dir, storeDir, entries, store) {
    const signed = entries.filter(e => e.signatures.length > 0);
    if (signed.length === 0)
        return 0;
    await (0,promises_.mkdir)(dir, { recursive: true });
    await (0,promises_.writeFile)((0,external_node_path_.join)(dir, 'nix-cache-info'), `StoreDir: ${storeDir}\n`);
    await Promise.all(signed.map(e => (0,promises_.writeFile)((0,external_node_path_.join)(dir, `${(0,external_node_path_.basename)(e.path).slice(0, 32)}.narinfo`), narinfo(e))));
    const storeArgs = store === null ? [] : ['--store', store];
    const paths = signed.map(e => e.path);
    // A `.drv` stands for its outputs unless `--derivation` is given, and with `--derivation`
    // other paths are left out (Nix 2.8): two calls.
    for (const [group, extra] of [
        [paths.filter(p => !isDerivation(p)), []],
        [paths.filter(isDerivation), ['--derivation']]
    ]) {
        for (const batch of command_batches(group)) {
            await runNix(['store', 'copy-sigs', ...storeArgs, ...extra, '--substituter', `file://${dir}`, ...batch], { silent: true });
        }
    }
    return signed.length;
}

;// CONCATENATED MODULE: ./src/nix/db.ts
// Nix's SQLite database, written directly for one thing only: the signatures of paths the
// store cache's fast path has just registered. `nix-store --load-db` takes no signatures, and
// `nix store copy-sigs` reads a narinfo and commits a transaction per path (1.2-2 s at 2,000
// paths, measured); the same column written here in one transaction takes milliseconds. The
// column is the one Nix's own addSignatures updates (ValidPaths.sigs, signatures separated by
// spaces, there since Nix 2.0's schema). Node's built-in SQLite is there from Node 22.5 (the
// action runs on 24); without it the caller falls back to copy-sigs.

/** The folder of the local store's database (NIX_STATE_DIR as Nix reads it). */
function nixDatabaseDir() {
    return (0,external_node_path_.join)(process.env.NIX_STATE_DIR ?? '/nix/var/nix', 'db');
}
/** The database of the store this process may write. */
function nixDatabaseFile() {
    return (0,external_node_path_.join)(nixDatabaseDir(), 'db.sqlite');
}
async function loadSqlite() {
    try {
        // Not bundled (a builtin the bundler's list may not know), and not typed by this
        // project's @types/node: a name in a variable.
        const builtin = 'node:sqlite';
        return (await import(/* webpackIgnore: true */ builtin));
    }
    catch {
        return null;
    }
}
/** Each path's signatures once, in order: the recorded ones, then the new ones (pure). */
function mergeSignatures(recorded, added) {
    const all = [...recorded.split(' '), ...added].filter(s => s !== '');
    return [...new Set(all)].join(' ');
}
/**
 * Add signatures to valid paths, all in one transaction: every path must be valid, or nothing
 * is written and this throws. Returns false when this Node has no SQLite (nothing written).
 */
async function addSignaturesToDatabase(databaseFile, signatures) {
    const sqlite = await loadSqlite();
    if (sqlite === null)
        return false;
    // Nix's own writers retry while the database is busy; so does this, for up to a minute.
    const db = new sqlite.DatabaseSync(databaseFile, { timeout: 60_000 });
    try {
        db.exec('BEGIN IMMEDIATE');
        try {
            const select = db.prepare('SELECT sigs FROM ValidPaths WHERE path = ?');
            const update = db.prepare('UPDATE ValidPaths SET sigs = ? WHERE path = ?');
            for (const [path, added] of signatures) {
                const row = select.get(path);
                if (row === undefined)
                    throw new Error(`${path} is not valid in ${databaseFile}`);
                update.run(mergeSignatures(row.sigs ?? '', added), path);
            }
            db.exec('COMMIT');
        }
        catch (error) {
            db.exec('ROLLBACK');
            throw error;
        }
    }
    finally {
        db.close();
    }
    return true;
}

;// CONCATENATED MODULE: ./src/cache/store-archive.ts
// The store cache's archive: the store paths themselves (as files, under `store/`) and their
// registration in the form `nix-store --dump-db` writes and `--load-db` reads (the release
// tarball's `.reginfo`). Restoring is one extraction into a staging directory on the store's
// filesystem, a NAR hash check of every path against its registration, a rename of each missing
// path into the store and one `nix-store --load-db` for them: no byte is written twice, and no
// path is registered valid before it is whole and checked.










/** The directory (under the archive's root) holding the store paths' files. */
const STORE_SUBDIR = 'store';
const REGISTRATION_FILE = 'registration';
/**
 * Parse `nix-store --dump-db` output: per path, its path, NAR hash, NAR size, deriver (maybe
 * empty), the number of references and the references, one a line.
 */
function parseRegistrations(text) {
    const rows = text.split('\n');
    const result = [];
    let at = 0;
    while (at < rows.length && rows[at] !== '') {
        const [path = '', narHash = '', size = '', deriver = '', count = ''] = rows.slice(at, at + 5);
        const refCount = Number(count);
        if (!/^[0-9a-f]{64}$/.test(narHash) || !Number.isInteger(refCount) || refCount < 0) {
            throw new Error(`the registration of ${JSON.stringify(path)} is not in --dump-db form`);
        }
        const references = rows.slice(at + 5, at + 5 + refCount);
        if (references.length !== refCount)
            throw new Error(`the registration ends inside ${path}`);
        result.push({ path, narHash, narSize: Number(size) || 0, deriver, references });
        at += 5 + refCount;
    }
    return result;
}
/** The inverse of parseRegistrations, for `nix-store --load-db`. */
function formatRegistrations(entries) {
    return entries
        .map(e => [
        e.path,
        e.narHash,
        String(e.narSize),
        e.deriver,
        String(e.references.length),
        ...e.references
    ]
        .map(row => `${row}\n`)
        .join(''))
        .join('');
}
/**
 * Extract into the store and register directly when this process may write both the store and
 * its database, as Nix would open it (a single-user store, or root); otherwise let Nix import
 * the paths (`nix copy`, through the daemon), which is slower but needs no rights.
 */
function restoreMethod(facts) {
    if (!isLocalStore(facts.nixRemote)) {
        return { fast: false, reason: `NIX_REMOTE=${facts.nixRemote}: the store is not local` };
    }
    if (!facts.storeWritable)
        return { fast: false, reason: 'the store directory is not writable' };
    if (!facts.dbWritable) {
        return { fast: false, reason: 'the Nix database is not writable (a daemon store)' };
    }
    return { fast: true };
}
async function writable(path) {
    return (0,promises_.access)(path, promises_.constants.W_OK).then(() => true, () => false);
}
function storeDirectory() {
    return process.env.NIX_STORE_DIR ?? '/nix/store';
}
async function storeAccess(storeDir = storeDirectory()) {
    const [storeWritable, dbWritable] = await Promise.all([
        writable(storeDir),
        writable(nixDatabaseDir())
    ]);
    return { nixRemote: process.env.NIX_REMOTE ?? null, storeWritable, dbWritable };
}
// --- save ------------------------------------------------------------------------------------
/** The registrations of valid paths (`nix-store --dump-db`), in the order given. */
async function store_archive_registrationsOf(paths) {
    const registrations = [];
    for (const batch of command_batches(paths)) {
        const { stdout } = await (0,exec/* run */.eF)('nix-store', ['--dump-db', ...batch], { silent: true });
        registrations.push(...parseRegistrations(stdout));
    }
    return registrations;
}
/** NAR bytes of these paths, as registered. */
function store_archive_narBytes(registrations) {
    return registrations.reduce((sum, r) => sum + r.narSize, 0);
}
/**
 * Write the archive's contents into `dir`: the registration, and the paths under `store/` as
 * hard links (no copy: the files are read-only and nothing writes to them) where the filesystem
 * and the kernel allow it, else as a copy.
 */
async function store_archive_writeArchive(dir, registrations) {
    const paths = registrations.map(r => r.path);
    await writeFile(join(dir, REGISTRATION_FILE), formatRegistrations(registrations));
    const storeCopy = join(dir, STORE_SUBDIR);
    try {
        await copyInto(storeCopy, paths, '-al');
    }
    catch {
        // Another filesystem, or fs.protected_hardlinks with a store someone else owns.
        await removeTree(storeCopy);
        await copyInto(storeCopy, paths, '-a');
    }
}
async function copyInto(target, paths, mode) {
    await run('mkdir', ['-p', target], { silent: true });
    for (const batch of batches(paths)) {
        await run('cp', [mode, '--', ...batch, target], { silent: true });
    }
}
// --- restore ---------------------------------------------------------------------------------
/** How many hashing processes run side by side: one per core, at most 4. */
function hashLanes() {
    return Math.max(1, Math.min(4, (0,external_node_os_.availableParallelism)()));
}
/** Split paths into at most `lanes` groups of about equal NAR bytes (largest first). */
function balance(entries, lanes) {
    const groups = Array.from({ length: Math.max(1, lanes) }, () => ({
        bytes: 0,
        entries: []
    }));
    const bySize = [...entries].sort((a, b) => b.narSize - a.narSize || a.path.localeCompare(b.path));
    for (const entry of bySize) {
        const lightest = groups.reduce((best, group) => (group.bytes < best.bytes ? group : best));
        lightest.bytes += entry.narSize;
        lightest.entries.push(entry);
    }
    return groups.filter(group => group.entries.length > 0).map(group => group.entries);
}
/** The entries whose staged copy's NAR hash differs from the registration (pure). */
function hashMismatches(entries, hashes) {
    return entries.filter((entry, i) => hashes[i]?.trim() !== entry.narHash);
}
/**
 * Check each staged path's NAR hash against its registration and throw when one differs or is
 * missing: the hashes the extraction computed as it wrote them (`known`, by staged path), and
 * for the paths it has none of, `nix hash path` (one process per lane).
 */
async function checkStagedHashes(entries, known = new Map(), lanes = hashLanes()) {
    const differ = (bad) => new Error(`${bad.length} path(s) differ from their registered NAR hash, e.g. ${bad[0]?.path ?? ''}`);
    const hashed = entries.filter(e => known.has(e.staged));
    const bad = hashMismatches(hashed, hashed.map(e => known.get(e.staged) ?? ''));
    if (bad.length > 0)
        throw differ(bad);
    const rest = entries.filter(e => !known.has(e.staged));
    await (0,exec/* settleAll */.j3)(balance(rest, lanes).map(async (group) => {
        for (const batch of command_batches(group)) {
            const { stdout } = await runNix(['hash', 'path', '--type', 'sha256', '--base16', ...batch.map(e => e.staged)], { silent: true });
            const mismatched = hashMismatches(batch, lines(stdout));
            if (mismatched.length > 0)
                throw differ(mismatched);
        }
    }));
}
/**
 * Move the checked paths from the staging store into the store and register them in one
 * `nix-store --load-db`. A leftover of an earlier, unregistered path of the same name (invalid,
 * so Nix's own garbage) is moved aside into the staging directory first. When registering
 * fails, the moved paths go back to the staging directory: nothing of the archive stays.
 */
async function moveIntoStore(stagingDir, entries, 
/** Called between the moves and the registration (the restore's log times both). */
onMoved = () => undefined) {
    const trash = (0,external_node_path_.join)(stagingDir, 'trash');
    const moved = [];
    try {
        for (const entry of entries) {
            // lstat: a leftover may be a dangling symlink.
            if ((0,external_node_fs_.lstatSync)(entry.path, { throwIfNoEntry: false }) !== undefined) {
                await (0,exec/* run */.eF)('mkdir', ['-p', trash], { silent: true });
                (0,tree/* moveTree */.E)(entry.path, (0,external_node_path_.join)(trash, (0,external_node_path_.basename)(entry.path)));
            }
            (0,tree/* moveTree */.E)(entry.staged, entry.path);
            moved.push(entry);
        }
        onMoved();
        await (0,exec/* run */.eF)('nix-store', ['--load-db'], { input: formatRegistrations(entries), silent: true });
    }
    catch (error) {
        for (const entry of moved) {
            try {
                (0,tree/* moveTree */.E)(entry.path, entry.staged);
            }
            catch {
                // Left where it is: invalid, so Nix's own garbage.
            }
        }
        throw error;
    }
}
/**
 * Where Nix must do the writing (a daemon store): register the staged paths in a store of their
 * own (`local?root=`, the staged files in its store directory), then `nix copy` them from there,
 * which checks each NAR hash as it adds the path.
 */
async function importThroughNix(chrootDir, storeDir, staged, missing) {
    const chrootStore = (0,external_node_path_.join)(chrootDir, storeDir);
    await (0,exec/* run */.eF)('mkdir', ['-p', chrootStore], { silent: true });
    // Every staged path, so that `nix copy` finds each missing path's references there too.
    for (const entry of staged)
        (0,tree/* moveTree */.E)(entry.staged, (0,external_node_path_.join)(chrootStore, (0,external_node_path_.basename)(entry.path)));
    const from = `local?root=${chrootDir}`;
    await (0,exec/* run */.eF)('nix-store', ['--store', from, '--load-db'], {
        input: formatRegistrations(staged),
        silent: true
    });
    // `nix copy` takes each path's signatures along: a daemon with `require-sigs` checks them.
    await addSignatures((0,external_node_path_.join)(chrootDir, '..', 'narinfo-chroot'), storeDir, missing, from);
    const paths = missing.map(e => e.path);
    // A `.drv` given to `nix copy` stands for its outputs unless `--derivation` is given, and with
    // `--derivation` other paths are left out (Nix 2.8): two calls, sources and outputs first.
    for (const [group, extra] of [
        [paths.filter(p => !isDerivation(p)), []],
        [paths.filter(isDerivation), ['--derivation']]
    ]) {
        for (const batch of command_batches(group)) {
            await runNix(['copy', '--from', from, '--no-check-sigs', ...extra, ...batch], {
                silent: true
            });
        }
    }
}

;// CONCATENATED MODULE: ./src/cache/restore.ts
// Restoring the store cache: the newest entry for the keys is downloaded and, when it is a
// delta, the base it builds on; each is extracted, confined (an entry is untrusted input:
// extract.ts), into a staging folder beside the store (or in the scratch directory), every NAR
// hash is checked, and only the paths the store lacks, with their references whole, are moved
// in (or imported through Nix). The import is whole or not at all.
















/** The subdirectory of CACHE_DIR_NAME an entry of this kind is archived under. */
function restore_layerDirectory(kind) {
    return kind === 'delta' ? 'delta' : 'base';
}
/** File holding the RestoreRecord as JSON, for post. */
function restoreRecordFile(workDir) {
    return (0,external_node_path_.join)(workDir, 'restored.json');
}
async function writeRestoreRecord(file, record) {
    await (0,promises_.writeFile)(file, JSON.stringify(record));
}
/** The record main wrote; null when there is none (a miss before the keys were known). */
async function restore_readRestoreRecord(file) {
    if (file === null)
        return null;
    const text = await readFile(file, 'utf8').catch(() => '');
    return text === '' ? null : JSON.parse(text);
}
/**
 * Where the archive is extracted: beside the store (same filesystem, so that moving a path in
 * is a rename) when the paths go straight in, else the scratch directory.
 */
function stagingDirFor(fast, storeDir, workDir) {
    const name = `.nca-staging-${(0,external_node_crypto_.randomBytes)(6).toString('hex')}`;
    return fast ? (0,external_node_path_.join)(storeDir, name) : (0,external_node_path_.join)(workDir, name);
}
/**
 * Download the entries for `keys` and import what the store lacks; null when there is none.
 * Throws when the archives cannot be used (they are then discarded and the store left as it
 * was).
 */
async function restoreEntry(keys, workDir, timer = phases(), 
/** `cache-trusted-keys`: when any, every path must carry a valid signature by one of them. */
trustedKeys = []) {
    const storeDir = storeDirectory();
    const method = restoreMethod(await storeAccess(storeDir));
    if (!method.fast)
        src_core/* info */.pq(`Paths will be imported through nix copy: ${method.reason}`);
    const staging = stagingDirFor(method.fast, storeDir, workDir);
    try {
        await (0,promises_.mkdir)(staging);
        // The NAR hash of each staged path, computed as it was extracted (the fast path checks
        // them; `nix copy` checks its own).
        const narHashes = new Map();
        const fetch = (primary, restore) => fetchLayer({ staging, workDir, primary, restore, narHashes: method.fast ? narHashes : null });
        const first = await fetch(keys.primary, keys.restore);
        if (first === null)
            return null;
        const found = first.key;
        const entries = await withBase(fetch, first);
        timer.end('download and extract');
        const layers = await readLayers((0,external_node_path_.join)(staging, service_CACHE_DIR_NAME), entries);
        timer.end('read the registrations');
        if (trustedKeys.length > 0) {
            await checkSignatures(layers, trustedKeys);
            timer.end('check signatures');
        }
        const staged = uniqueRegistrations(layers);
        const { importedCount, leftOut } = await importAll({
            staging,
            storeDir,
            method,
            staged,
            narHashes,
            timer
        });
        src_core/* info */.pq(`Restore phases: ${timer.summary()}`);
        const valid = staged.filter(r => !leftOut.has(r.path));
        // What post builds on: a path left out is not in the store, whatever its entry holds.
        const restored = layers.map(({ layer }) => ({
            ...layer,
            paths: layer.paths.filter(p => !leftOut.has(p))
        }));
        return {
            key: found,
            layers: restored,
            paths: valid.map(r => r.path).sort(),
            importedCount,
            bytes: store_archive_narBytes(valid)
        };
    }
    finally {
        // What was moved into the store is no longer here; the rest (a discarded archive, paths
        // that were valid already) only takes disk.
        await (0,tree/* removeTree */.d)(staging).catch(() => undefined);
    }
}
/**
 * Where each member of an entry's archive may stand: its layer's folder (`base/` or `delta/`,
 * so that a delta and its base never write into each other's), holding the manifest, the
 * registration and `store/`, under which lie the store paths' own trees (the only place for a
 * symbolic link or a hard link).
 */
function layerLayout(kind) {
    const layer = restore_layerDirectory(kind);
    return parts => {
        const [root, dir, name] = parts;
        if (root !== service_CACHE_DIR_NAME)
            return null;
        if (dir === undefined)
            return 'directory';
        if (dir !== layer)
            return null;
        if (name === undefined)
            return 'directory';
        if (name === STORE_SUBDIR)
            return parts.length === 3 ? 'directory' : 'tree';
        if (parts.length === 3 && (name === REGISTRATION_FILE || name === MANIFEST_FILE))
            return 'file';
        return null;
    };
}
/**
 * Download the entry of `primary` (else the newest of each `restore` prefix) and extract it,
 * confined, into the staging folder: its key, or null on a miss. An archive that holds a
 * member that may not be extracted, or that does not extract, is an error: the caller discards
 * the whole staging folder.
 */
async function fetchLayer(o) {
    const archive = (0,external_node_path_.join)(o.workDir, `entry-${(0,external_node_crypto_.randomBytes)(6).toString('hex')}.tar.zst`);
    try {
        const found = await downloadFirst(o.primary, o.restore, archive);
        if (found === null)
            return null;
        const entry = parseEntryKey(found);
        const started = performance.now();
        try {
            const { members, narHashes } = await extractConfined(archive, o.staging, layerLayout(entry.kind), { hashTrees: o.narHashes !== null });
            for (const [path, hash] of narHashes)
                o.narHashes?.set(path, hash);
            const seconds = ((performance.now() - started) / 1000).toFixed(2);
            src_core/* info */.pq(`Extracted ${found}: ${members} members in ${seconds} s`);
        }
        catch (error) {
            if (error instanceof RefusedMembers) {
                throw new Error(`the entry ${found} was discarded: ${error.message}`);
            }
            throw new Error(`the entry ${found} does not extract: ${(0,errors/* errorMessage */.g)(error)}`);
        }
        return entry;
    }
    finally {
        await (0,promises_.rm)(archive, { force: true });
    }
}
/**
 * The entry restored and, for a delta, its base, downloaded after it (a delta is small: one
 * look-up less for a base than looking up first and downloading both side by side). A base
 * that is gone (evicted, or superseded and deleted) is replaced by the newest base of the same
 * lock, if any.
 */
async function withBase(fetch, found) {
    if (found.kind !== 'delta')
        return [found];
    // A base key is never the prefix of another: what this finds is that base.
    const base = await fetch(found.base, []);
    if (base !== null)
        return [found, base];
    src_core/* info */.pq(`The base ${found.base} of ${found.key} is not in the cache: looking for another one`);
    const newest = `${found.lock}base-`;
    const other = await fetch(newest, [newest]);
    if (other === null || !other.key.startsWith(newest))
        return [found];
    src_core/* info */.pq(`Restored the base ${other.key}; paths of the delta that need the old one are left out`);
    return [found, other];
}
/** Every path of the manifest with its registration, or an error naming what is wrong. */
function manifestRegistrations(paths, text, storeDir) {
    const registrations = parseRegistrations(text);
    const registered = new Set(registrations.map(r => r.path));
    const unregistered = paths.find(p => !registered.has(p));
    if (unregistered !== undefined)
        throw new Error(`the archive does not register ${unregistered}`);
    const elsewhere = registrations.find(r => (0,external_node_path_.dirname)(r.path) !== storeDir);
    if (elsewhere !== undefined)
        throw new Error(`${elsewhere.path} is not in the store ${storeDir}`);
    return registrations.filter(r => registered.has(r.path));
}
async function readLayers(cacheDir, entries) {
    const storeDir = storeDirectory();
    return Promise.all(entries.map(async (entry) => {
        const dir = (0,external_node_path_.join)(cacheDir, restore_layerDirectory(entry.kind));
        const manifest = await readManifest(dir);
        const text = await (0,promises_.readFile)((0,external_node_path_.join)(dir, REGISTRATION_FILE), 'utf8');
        const registrations = manifestRegistrations(manifest.paths, text, storeDir);
        const staged = registrations.map(r => ({
            ...r,
            staged: (0,external_node_path_.join)(dir, STORE_SUBDIR, r.path.slice(storeDir.length + 1)),
            signatures: signaturesOf(manifest.signatures, r.path)
        }));
        const layer = {
            key: entry.key,
            kind: entry.kind,
            paths: manifest.paths,
            narBytes: store_archive_narBytes(registrations)
        };
        return { layer, staged };
    }));
}
/**
 * Every path of every downloaded entry must carry a valid signature by a trusted key, checked
 * before anything is registered; the first entry that has one that does not is discarded
 * whole, and with it the restore (a miss), naming the path and the key.
 */
async function checkSignatures(layers, trusted) {
    for (const { layer, staged } of layers) {
        const why = await firstUntrustedPath(staged, trusted);
        if (why !== null)
            throw new Error(`the entry ${layer.key} was discarded: ${why}`);
    }
}
/** Each path once (a path two layers hold is taken from the first). */
function uniqueRegistrations(layers) {
    const byPath = new Map();
    for (const staged of layers.flatMap(l => l.staged)) {
        if (!byPath.has(staged.path))
            byPath.set(staged.path, staged);
    }
    return [...byPath.values()];
}
/**
 * The missing paths whose every reference is valid or imported with them (pure): a path whose
 * closure the downloaded entries do not hold (a delta whose base is gone) is left out, and so
 * is every path that refers to it.
 */
function wholeClosures(missing, isValid) {
    const importing = new Map(missing.map(r => [r.path, r]));
    for (let changed = true; changed;) {
        changed = false;
        for (const [path, entry] of importing) {
            if (entry.references.some(ref => !isValid(ref) && !importing.has(ref))) {
                importing.delete(path);
                changed = true;
            }
        }
    }
    return missing.filter(r => importing.has(r.path));
}
/**
 * The paths the store does not hold valid. In a local store this process writes, only those
 * with a file in the store are asked of Nix: Nix keeps every valid path on disk, so a path
 * without one is not valid (on a fresh runner, none are asked).
 */
async function invalidAmong(paths, local) {
    if (!local)
        return new Set(await invalidPaths(paths));
    const onDisk = paths.filter(p => (0,external_node_fs_.lstatSync)(p, { throwIfNoEntry: false }) !== undefined);
    const asked = new Set(onDisk);
    const invalid = new Set(paths.filter(p => !asked.has(p)));
    for (const path of await invalidPaths(onDisk))
        invalid.add(path);
    return invalid;
}
/** Which of the staged paths to import: the missing ones with whole closures. */
async function pathsToImport(staged, local) {
    const inArchive = new Set(staged.map(s => s.path));
    const elsewhere = [...new Set(staged.flatMap(s => s.references).filter(r => !inArchive.has(r)))];
    const invalid = await invalidAmong([...inArchive, ...elsewhere], local);
    const missing = staged.filter(s => invalid.has(s.path));
    const whole = wholeClosures(missing, path => !invalid.has(path));
    const importing = new Set(whole.map(s => s.path));
    const leftOut = new Set(missing.map(s => s.path).filter(p => !importing.has(p)));
    if (leftOut.size > 0) {
        src_core/* info */.pq(`${leftOut.size} paths left out: they need paths neither the store nor the entries hold`);
    }
    return { importing: whole, leftOut };
}
/**
 * Bring in the paths the store lacks, each checked against its NAR hash before it is
 * registered. A failure leaves the store as it was: the import is whole or not at all.
 */
async function importAll(o) {
    const { staged } = o;
    const { importing: missing, leftOut } = await pathsToImport(staged, o.method.fast);
    o.timer.end('check validity');
    if (missing.length === 0)
        return { importedCount: 0, leftOut };
    src_core/* info */.pq(`Importing ${missing.length} of ${staged.length} paths`);
    try {
        if (o.method.fast) {
            await checkStagedHashes(missing, o.narHashes);
            o.timer.end('check NAR hashes');
            await moveIntoStore(o.staging, missing, () => o.timer.end('move in'));
            o.timer.end('register (load-db)');
            await keepSignatures(o, missing);
        }
        else {
            await importThroughNix((0,external_node_path_.join)(o.staging, 'chroot'), o.storeDir, staged, missing);
            o.timer.end('import through nix copy');
        }
        return { importedCount: missing.length, leftOut };
    }
    catch (error) {
        // Nix checked each path it added; still, the import goes whole or not at all.
        if (!o.method.fast)
            await restore_rollBack(missing.map(r => r.path));
        throw new Error(`the archive did not import cleanly and was discarded: ${(0,errors/* errorMessage */.g)(error)}`);
    }
}
/**
 * The fast path: the paths are registered (load-db takes no signatures); add theirs, straight
 * into the database this process just registered them in (copy-sigs where this Node has no
 * SQLite). A failure leaves valid paths without signatures, which is a warning, not a reason to
 * discard them.
 */
async function keepSignatures(o, paths) {
    const signed = new Map(paths.filter(p => p.signatures.length > 0).map(p => [p.path, p.signatures]));
    if (signed.size === 0)
        return;
    try {
        if (await addSignaturesToDatabase(nixDatabaseFile(), signed)) {
            o.timer.end('add signatures');
        }
        else if (await addSignatures((0,external_node_path_.join)(o.staging, 'narinfo'), o.storeDir, paths, null)) {
            o.timer.end('add signatures (copy-sigs)');
        }
    }
    catch (error) {
        src_core/* warning */.$e(`Store cache: the restored paths are valid but their signatures were not recorded: ${(0,errors/* errorMessage */.g)(error)}`);
    }
}
async function restore_rollBack(missing) {
    try {
        const stillInvalid = new Set(await invalidPaths(missing));
        const added = missing.filter(p => !stillInvalid.has(p));
        await deletePaths(added);
        if (added.length > 0)
            src_core/* info */.pq(`Removed the ${added.length} paths this import had added`);
    }
    catch (error) {
        src_core/* warning */.$e(`Store cache: could not remove the paths of a failed import: ${(0,errors/* errorMessage */.g)(error)}`);
    }
}

;// CONCATENATED MODULE: ./src/cache/save.ts
// Saving the store cache: what goes in (the build closures and the flake inputs' sources), as
// what (a delta on the restored base, or a new base), and writing the archive.












/** The union of every build's closure. */
async function closureOfBuilds(drvPaths, storePaths) {
    const drvs = (drvPaths ?? '').split('\n');
    const closure = new Set();
    for (const [i, storePath] of storePaths.split('\n').filter(Boolean).entries()) {
        for (const path of await buildClosure(drvs[i] || null, storePath))
            closure.add(path);
    }
    return [...closure].sort();
}
/**
 * The build closures (one per system built) and the sources of the flake's inputs (sorted).
 * `drvPaths` and `storePaths` are one a line, in the same order ('' where a drv is unknown).
 */
async function save_pathsToCache(flake, drvPaths, storePaths) {
    const [closure, inputs] = await Promise.all([
        closureOfBuilds(drvPaths, storePaths),
        flakeInputPaths(flake)
    ]);
    // An input the evaluation never needed may not be in the store: nothing to keep of it.
    const absent = new Set(await invalidPaths(inputs));
    return [...new Set([...closure, ...inputs.filter(p => !absent.has(p))])].sort();
}
/**
 * A delta when this lock's base was restored and what the closure adds to it stays within
 * DELTA_SHARE of it; otherwise a new base (or, with `cache-key`, one whole entry).
 */
async function save_planSave(keys, closure, layers) {
    const whole = async (note) => ({
        kind: keys.layers === null ? 'whole' : 'base',
        key: keys.layers?.base ?? keys.primary,
        registrations: await registrationsOf(closure),
        base: null,
        note
    });
    const base = layers.find(l => l.kind === 'base' && isSameLock(keys, l.key));
    if (keys.layers === null || base === undefined)
        return whole(null);
    const delta = await registrationsOf(pathsNotRestored(closure, base.paths));
    const bytes = narBytes(delta);
    if (!deltaFits(bytes, base.narBytes)) {
        return whole(`what the closure adds to the base ${base.key} (${save_megabytes(bytes)}) is more than ${DELTA_SHARE * 100}% of it (${save_megabytes(base.narBytes)}): a new base`);
    }
    return {
        kind: 'delta',
        key: deltaKey(keys, base.key),
        registrations: delta,
        base: base.key,
        note: null
    };
}
function save_megabytes(bytes) {
    return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
/**
 * Write the archive of the plan under `workDir` and save it: its NAR bytes (its size before
 * compression), or null when the cache service did not take it (@actions/cache has said why).
 */
async function save_saveEntry(workDir, plan, 
/** `cache-signing-key`: each path is signed with it; null: the entry is unsigned. */
signingKey = null) {
    const dir = join(workDir, CACHE_DIR_NAME);
    const layerDir = join(dir, layerDirectory(plan.kind));
    await removeTree(dir);
    await mkdir(layerDir, { recursive: true });
    try {
        const paths = plan.registrations.map(r => r.path);
        const bytes = narBytes(plan.registrations);
        const on = plan.base === null ? '' : ` (a delta on ${plan.base})`;
        core.info(`Saving ${paths.length} paths, ${save_megabytes(bytes)}, as ${plan.key}${on}`);
        await writeArchive(layerDir, plan.registrations);
        const signatures = signingKey && signRegistrations(signingKey, plan.registrations);
        if (signingKey)
            core.info(`Signed the ${paths.length} paths with the key ${signingKey.name}`);
        await writeManifest(layerDir, paths, signatures);
        return (await saveDirectory(workDir, plan.key)) ? bytes : null;
    }
    finally {
        await removeTree(dir).catch(() => undefined);
    }
}

;// CONCATENATED MODULE: ./src/stages/store-cache.ts
// The store cache stage: restore before the build (main), save after it (post).
//
// What is cached is the build closure of the image (the derivation's requisites with their
// outputs) and the sources of the flake's locked inputs, so that an exact hit needs the network
// for nothing, in layers: a base per lock and a delta per commit. This file is the order of
// things; the keys, the save rules, the archive, its restore and save, and the deletion of
// superseded entries live in src/cache/.











/**
 * Begin loading the cache client (most of the bundle) while the stages before the restore run:
 * it is then ready when the restore starts.
 */
function prepareStoreCache() {
    preloadCacheClient();
}
/** Restore the store cache; never throws: a failed restore is a warning and a miss. */
async function restoreStoreCache(options) {
    const recordFile = restoreRecordFile(options.workDir);
    const result = {
        outcome: 'miss',
        keys: null,
        restoredKey: null,
        hit: false,
        recordFile,
        pathCount: 0,
        importedCount: 0,
        bytes: 0,
        reason: null
    };
    try {
        await (0,promises_.mkdir)(options.workDir, { recursive: true });
        await (0,promises_.writeFile)(recordFile, '');
        const timer = phases();
        // Nix computes the keys while the cache client loads (preloadCacheClient).
        const missingService = service_cacheServiceMissing();
        const keys = await computeKeys(options);
        result.keys = keys;
        await writeRestoreRecord(recordFile, { keys, layers: [] });
        src_core/* info */.pq(`Primary key: ${keys.primary}`);
        src_core/* info */.pq(`Restore keys: ${keys.restore.join(', ')}`);
        if (missingService !== null)
            return { ...result, outcome: 'unavailable', reason: missingService };
        timer.end('keys and service');
        const entry = await restoreEntry(keys, options.workDir, timer, options.trustedKeys ?? []);
        if (entry === null)
            return { ...result, reason: `no entry for ${keys.primary} or its restore keys` };
        await writeRestoreRecord(recordFile, { keys, layers: entry.layers });
        const from = entry.layers.map(l => `${l.kind} ${l.key}`).join(' + ');
        src_core/* info */.pq(`Restored ${from}: ${entry.paths.length} paths (${save_megabytes(entry.bytes)}), ${entry.importedCount} imported, the rest already valid`);
        return {
            ...result,
            outcome: 'restored',
            restoredKey: entry.key,
            hit: keys_isExactHit(keys, entry.key),
            pathCount: entry.paths.length,
            importedCount: entry.importedCount,
            bytes: entry.bytes
        };
    }
    catch (error) {
        const reason = (0,errors/* errorMessage */.g)(error);
        src_core/* warning */.$e(`Store cache: restore failed, building without the cache: ${reason}`);
        return { ...result, outcome: 'failed', reason: (0,errors/* firstLine */.T)(reason) };
    }
}
function describeRestore(result) {
    switch (result.outcome) {
        case 'restored': {
            const which = result.hit ? 'hit' : 'restore-key hit';
            return `${which} ${result.restoredKey ?? ''}: ${result.pathCount} paths, ${save_megabytes(result.bytes)}, ${result.importedCount} imported`;
        }
        case 'miss':
            return `miss: ${result.reason ?? ''}`;
        case 'unavailable':
            return `skipped: ${result.reason ?? ''}`;
        case 'failed':
            return `failed (warning): ${result.reason ?? ''}`;
    }
}
/**
 * Save what the build needed that the restored entries lacked: a delta on this lock's base, or
 * a new base; then delete what that superseded. Unless there is no point.
 */
async function saveStoreCache(options) {
    const record = await readRestoreRecord(options.recordFile);
    const restoredKey = options.restoredKey;
    const skip = saveSkipReason({
        cacheSave: options.cacheSave,
        serviceMissing: cacheServiceMissing(),
        primaryKey: options.primaryKey,
        exactHit: record && restoredKey && isExactHit(record.keys, restoredKey) ? restoredKey : null,
        built: options.storePath !== null
    });
    if (skip !== null || record === null || options.storePath === null) {
        return { saved: false, reason: skip ?? 'nothing to save: main recorded no keys' };
    }
    const closure = await pathsToCache(options.flake, options.drvPath, options.storePath);
    const restored = [...new Set(record.layers.flatMap(l => l.paths))];
    const noNewPaths = closureSkipReason(closure, restored);
    if (noNewPaths !== null)
        return { saved: false, reason: noNewPaths };
    const plan = await planSave(record.keys, closure, record.layers);
    if (plan.note !== null)
        core.info(plan.note);
    const bytes = await saveEntry(options.workDir, plan, options.signingKey ?? null);
    if (bytes === null) {
        return {
            saved: false,
            failed: true,
            reason: 'the cache service did not take the entry (see the message above)'
        };
    }
    const pruned = await pruneAfterSave(record.keys, plan, options);
    return {
        saved: true,
        key: plan.key,
        kind: plan.kind,
        pathCount: plan.registrations.length,
        newCount: pathsNotRestored(closure, restored).length,
        bytes,
        pruned
    };
}
/** Delete the lock's entries on this ref that the new one superseded (not with `cache-key`). */
async function pruneAfterSave(keys, plan, options) {
    const ref = process.env.GITHUB_REF;
    if (keys.layers === null || !ref || options.startedAt === null)
        return null;
    const lockPrefix = keys.layers.lock;
    const keep = [plan.key, ...(plan.base === null ? [] : [plan.base])];
    const result = await pruneSuperseded({ lockPrefix, keep, ref, startedAt: options.startedAt }, process.env, options.githubToken);
    for (const key of result.deleted)
        core.info(`Deleted the superseded entry ${key}`);
    if (result.notice !== null)
        core.notice(`Store cache: ${result.notice}`);
    if (result.skipped !== null)
        core.info(result.skipped);
    return result;
}
function describeSave(result) {
    if (!result.saved)
        return `not saved: ${result.reason}`;
    const pruned = result.pruned?.deleted.length ?? 0;
    const deleted = pruned > 0 ? `; ${pruned} superseded deleted` : '';
    return `saved ${result.kind} ${result.key}: ${result.pathCount} paths (${result.newCount} new), ${megabytes(result.bytes)}${deleted}`;
}
// --- helpers --------------------------------------------------------------------------------
/** Scratch space for the archive: the runner's temp directory, emptied after each job. */
function storeCacheWorkDir() {
    return (0,temp/* actionTempDir */.O)();
}

;// CONCATENATED MODULE: ./src/stages/binary-cache.ts
// The binary cache stage (`binary-cache`): before the build, the cache is a substituter of the
// job (nix.conf lines, written by the Nix stage); after the image shipped, the image's build
// closure (what the store cache saves) goes to it, signed, only what it lacks. A push that
// fails warns: the image is already in the registry.













/** The nix.conf lines that make the cache a substituter of this job. */
function binaryCacheConfLines(cache) {
    if (cache.secretKey && !cache.publicKeys.includes(cache.secretKey.publicKey)) {
        src_core/* warning */.$e('binary-cache-public-key does not name the public half of binary-cache-secret-key: what ' +
            'this job pushes is signed by a key that jobs trusting only binary-cache-public-key refuse');
    }
    if (cache.publicKeys.length === 0) {
        src_core/* notice */.lm(`binary-cache: no key given, so Nix takes from ${printableStoreUrl(cache.url)} only paths signed by a key its own configuration trusts`);
    }
    return substituterConfLines(cache.url, cache.publicKeys);
}
/**
 * A daemon that does not trust the runner's user ignores the job's substituters and keys:
 * say so, and what the daemon's configuration needs, before the build goes without the cache.
 */
async function checkDaemonTakesCache(cache) {
    if ((await storeTrustsUser()) !== false)
        return;
    const url = printableStoreUrl(cache.url);
    src_core/* warning */.$e(`binary-cache: the Nix daemon does not trust this user, so it will not substitute from ${url}: ` +
        `add the user to trusted-users in the daemon's nix.conf, or list the cache there ` +
        `(trusted-substituters = ${cache.url}, trusted-public-keys = ${cache.publicKeys.join(' ') || '<its key>'}). ` +
        'The push after the image still works.');
}
/** The `binary-cache-pushed` output: what the push sent (no URL, no key). */
function pushedOutput(result) {
    return JSON.stringify({
        paths: result.paths.length,
        bytes: result.bytes,
        closure: result.closureCount,
        ...(result.outcome === 'failed' ? { failed: true } : {})
    });
}
function describePush(result) {
    const sent = `${result.paths.length} of ${result.closureCount} paths sent (${save_megabytes(result.bytes)})`;
    switch (result.outcome) {
        case 'pushed':
            return `${sent}, the rest already there`;
        case 'failed':
            return `failed (warning): ${result.reason ?? ''}`;
    }
}
/**
 * Copy the build closure to the cache, signed with the secret key (in a 0600 file under
 * RUNNER_TEMP for the copy only). Never throws: a failure is a warning and the result says it.
 */
async function pushToBinaryCache(options, onKeyFile = () => undefined) {
    const result = {
        outcome: 'pushed',
        closureCount: 0,
        paths: [],
        bytes: 0,
        reason: null
    };
    const key = options.cache.secretKey;
    if (key === null)
        throw new Error('pushToBinaryCache needs binary-cache-secret-key');
    const keyFile = (0,external_node_path_.join)((0,temp/* actionTempDir */.O)(), `binary-cache-key-${process.pid}`);
    try {
        const closure = await save_pathsToCache(options.flake, options.drvPaths, options.storePaths);
        result.closureCount = closure.length;
        await writeKeyFile(keyFile, formatNixSecretKey(key));
        onKeyFile(keyFile);
        const url = pushStoreUrl(options.cache.url, keyFile);
        src_core/* info */.pq(`Copying the build closure (${closure.length} paths) to ${printableStoreUrl(options.cache.url)}, signed by ${key.name}`);
        // The derivations' copy and the outputs' side by side (each `nix copy` also sends its
        // paths several at a time): they share at most the derivations' sources.
        const [drvs, outputs] = await (0,exec/* settleAll */.j3)([
            copyAll(url, closure.filter(isDerivation), true),
            copyAll(url, closure.filter(path => !isDerivation(path)), false)
        ]);
        result.paths = [...new Set([...drvs, ...outputs])].sort();
        result.bytes = store_archive_narBytes(await store_archive_registrationsOf(result.paths));
        src_core/* info */.pq(`Sent ${result.paths.length} paths (${save_megabytes(result.bytes)}), the rest were there`);
        return result;
    }
    catch (error) {
        const reason = (0,errors/* errorMessage */.g)(error);
        src_core/* warning */.$e(`Binary cache push failed, the job goes on (the image came first): ${reason}`);
        return { ...result, outcome: 'failed', reason: (0,errors/* firstLine */.T)(reason) };
    }
    finally {
        await (0,promises_.rm)(keyFile, { force: true });
    }
}
/** Copy paths in command-line-sized batches, one after another: the paths sent. */
async function copyAll(url, paths, derivations) {
    const sent = [];
    for (const batch of command_batches(paths))
        sent.push(...(await copyBatch(url, batch, derivations)));
    return sent;
}
/** One `nix copy`: the paths it sent; on failure, what Nix said (not its JSON log). */
async function copyBatch(url, paths, derivations) {
    const { exitCode, stderr } = await runNix(copyArgs(url, paths, derivations), {
        silent: true,
        allowFailure: true
    });
    if (exitCode !== 0) {
        const argv = ['nix', 'copy', '--to', '<binary-cache>', `<${paths.length} paths>`];
        throw new exec/* CommandError */.Qd(argv, exitCode, logMessages(stderr));
    }
    return parseCopiedPaths(stderr);
}
/** The key, readable by this user only, written before it holds anything. */
async function writeKeyFile(file, key) {
    await (0,promises_.mkdir)((0,temp/* actionTempDir */.O)(), { recursive: true, mode: 0o700 });
    await (0,promises_.writeFile)(file, '', { mode: 0o600 });
    await (0,promises_.chmod)(file, 0o600);
    await (0,promises_.writeFile)(file, `${key}\n`);
}
/** Remove a key file main left (it stopped mid-push); for post. */
async function removeKeyFile(file) {
    try {
        await rm(file);
        return true;
    }
    catch {
        return false;
    }
}

;// CONCATENATED MODULE: ./src/main.ts
// run(): inputs -> Nix -> store cache -> one of the pipelines (single image, `systems`, `merge`,
// under pipeline/) -> outputs + job summary. The one setFailed is here.












async function main_run() {
    const report = new Report();
    try {
        const inputs = parseInputs();
        saveState(StateKey.MainRan, 'true');
        try {
            await runPipeline(inputs, report);
        }
        finally {
            // Once the inputs are good (bad input sets no output at all), passed or failed.
            src_core/* setOutput */.uH('tested', String(report.tested));
        }
    }
    catch (error) {
        src_core/* setFailed */.C1((0,errors/* errorMessage */.g)(error));
    }
    finally {
        await writeSummary(report).catch((error) => {
            src_core/* warning */.$e(`could not write the job summary: ${String(error)}`);
        });
    }
}
async function runPipeline(inputs, report) {
    if (inputs.merge.length > 0) {
        await runMerge(inputs, report);
        return;
    }
    if (inputs.cache && inputs.build)
        prepareStoreCache();
    await checkDaemonTakesCompression(inputs);
    // binary-cache: a substituter of this job; the user's own nix-conf lines come after it.
    const nixConf = inputs.binaryCache
        ? [...binaryCacheConfLines(inputs.binaryCache), ...inputs.nixConf]
        : inputs.nixConf;
    // Before the file exists, so that post removes it whatever happens after.
    if (inputs.builderSshKey !== null)
        saveState(StateKey.BuilderKeyFile, builderKeyFile());
    const nix = await report.stage('Nix', () => setupNix({
        installNix: inputs.installNix,
        nixVersion: inputs.nixVersion,
        installUrl: inputs.installUrl,
        nixConf,
        githubToken: inputs.githubToken,
        builders: { machines: inputs.builders, sshKey: inputs.builderSshKey }
    }), result => `Nix ${result.version} (${describeSource(result.found)})`);
    src_core/* setOutput */.uH('nix-version', nix.version);
    src_core/* setOutput */.uH('nix-installed', String(nix.installed));
    if (inputs.binaryCache)
        await checkDaemonTakesCache(inputs.binaryCache);
    await restoreCache(inputs, report);
    if (!inputs.build) {
        report.skip('Build', 'build: false');
        return;
    }
    const builds = inputs.systems.length > 0
        ? await runSystems(inputs, report)
        : await runSingleImage(inputs, report);
    await pushBinaryCache(inputs, report, builds);
}
/**
 * After the image shipped, its build closure to `binary-cache`: here in main, not in post, so
 * that `binary-cache-pushed` is an output later steps can read. A failure only warns.
 */
async function pushBinaryCache(inputs, report, builds) {
    const cache = inputs.binaryCache;
    if (cache === null)
        return;
    if (cache.secretKey === null) {
        report.skip('Binary cache push', 'no binary-cache-secret-key: this job only reads the cache');
        return;
    }
    const result = await report.stage('Binary cache push', () => pushToBinaryCache({
        cache,
        flake: inputs.flake,
        drvPaths: builds.map(b => b.drvPath).join('\n'),
        storePaths: builds.map(b => b.storePath).join('\n')
    }, file => saveState(StateKey.BinaryCacheKeyFile, file)), describePush);
    // The push removed its key file: nothing for post to remove.
    saveState(StateKey.BinaryCacheKeyFile, '');
    src_core/* setOutput */.uH('binary-cache-pushed', pushedOutput(result));
}
/**
 * What docker pushes on the classic store it compresses itself, gzip at its own level: zstd
 * through docker needs the containerd image store. Asked of the daemon before anything is
 * installed or built, like any other bad input.
 */
async function checkDaemonTakesCompression(inputs) {
    const dockerPushes = inputs.push && inputs.pushTool === 'docker' && inputs.load && inputs.systems.length === 0;
    const { format, level } = inputs.compression;
    if (!dockerPushes || (format === 'gzip' && level === null))
        return;
    if ((await daemonImageStore()) === 'containerd')
        return;
    if (format === 'gzip') {
        src_core/* notice */.lm('compression-level: docker on the classic image store compresses at its own level when it pushes');
        return;
    }
    throw new InputError('compression', inputs.compression.format, 'needs push-tool: skopeo, or docker with its containerd image store: this daemon uses the classic store, which pushes gzip only');
}
/** Restore the store cache before the build; outputs and post's state say what came back. */
async function restoreCache(inputs, report) {
    const skipped = !inputs.cache ? 'cache: false' : !inputs.build ? 'build: false' : null;
    if (skipped !== null) {
        report.skip('Store cache', skipped);
        saveState(StateKey.CacheSkipped, skipped);
        return;
    }
    const workDir = storeCacheWorkDir();
    saveState(StateKey.CacheStartedAt, new Date().toISOString());
    const restored = await report.stage('Store cache', () => restoreStoreCache({
        flake: inputs.flake,
        attribute: inputs.attribute,
        // A `systems` run builds other closures than a single-system one: its own key.
        system: inputs.systems.length > 0 ? inputs.systems.join('+') : inputs.system,
        cacheKey: inputs.cacheKey,
        workDir,
        trustedKeys: inputs.cacheTrustedKeys
    }), describeRestore);
    saveState(StateKey.CacheSave, String(inputs.cacheSave));
    saveState(StateKey.CacheFlake, inputs.flake);
    saveState(StateKey.CacheWorkDir, workDir);
    saveState(StateKey.CacheRestoreRecord, restored.recordFile);
    if (restored.keys)
        saveState(StateKey.CachePrimaryKey, restored.keys.primary);
    if (restored.restoredKey)
        saveState(StateKey.CacheRestoredKey, restored.restoredKey);
    src_core/* setOutput */.uH('cache-hit', String(restored.hit));
    src_core/* setOutput */.uH('cache-key', restored.keys?.primary ?? '');
    src_core/* setOutput */.uH('cache-restored-key', restored.restoredKey ?? '');
}

;// CONCATENATED MODULE: ./src/entrypoints/main.ts
// The main step's entry point: the file the runner starts (bundled to dist/main/index.js).
// It runs unconditionally, so no path comparison (which symlinks defeat) can skip the step;
// tests import ../main.ts, which has no side effects.

void main_run();

