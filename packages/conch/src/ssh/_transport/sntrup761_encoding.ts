/**
 * sntrup761's encodings of Rq polynomials (public keys) and rounded ones (ciphertexts): the
 * specification's mixed-radix Encode and Decode. Internal to `sntrup761.ts`. They only ever see
 * public data, or (Encode, in decapsulation) the re-encryption, and branch on the public moduli
 * alone; Decode divides and is variable-time.
 */
import { P, Q } from "./sntrup761_rq.js";

const Q12 = (Q - 1) / 2;
/** Bytes of an encoded Rq polynomial (a public key). */
export const RQ_BYTES = 1158;
/** Bytes of an encoded rounded polynomial (a ciphertext without its confirmation hash). */
export const ROUNDED_BYTES = 1007;

/**
 * The spec's Encode: 0 <= R[i] < M[i] < 16384, into a mixed-radix byte string written to `out`
 * from `at` (public data only); returns the position after it. Every r and m stays under 2^28, so
 * Int32Arrays hold them.
 */
function encode(out: Uint8Array, at: number, R: Int32Array, M: Int32Array, len: number): number {
  if (len === 1) {
    let r = R[0]!;
    let m = M[0]!;
    while (m > 1) {
      out[at++] = r & 0xff;
      r >>>= 8;
      m = (m + 255) >>> 8;
    }
    return at;
  }
  const half = (len + 1) >> 1;
  const R2 = new Int32Array(half);
  const M2 = new Int32Array(half);
  let i = 0;
  for (; i < len - 1; i += 2) {
    const m0 = M[i]!;
    let r = R[i]! + R[i + 1]! * m0;
    let m = M[i + 1]! * m0;
    while (m >= 16384) {
      out[at++] = r & 0xff;
      r >>>= 8;
      m = (m + 255) >>> 8;
    }
    R2[i >> 1] = r;
    M2[i >> 1] = m;
  }
  if (i < len) {
    R2[i >> 1] = R[i]!;
    M2[i >> 1] = M[i]!;
  }
  return encode(out, at, R2, M2, half);
}

/**
 * The spec's Decode, inverse of `encode`, into `out` (len values); out-of-range input is reduced as
 * the reference does. Every value stays under 2^28 (each decoded R is reduced below its M).
 */
function decode(S: Uint8Array, at: number, M: Int32Array, len: number, out: Int32Array): void {
  if (len === 1) {
    const m = M[0]!;
    out[0] = m === 1 ? 0 : m <= 256 ? S[at]! % m : (S[at]! + (S[at + 1]! << 8)) % m;
    return;
  }
  const half = (len + 1) >> 1;
  const M2 = new Int32Array(half);
  const bottomR = new Int32Array(half);
  const bottomT = new Int32Array(half);
  let i = 0;
  for (; i < len - 1; i += 2) {
    const m = M[i]! * M[i + 1]!;
    if (m > 256 * 16383) {
      bottomT[i >> 1] = 65536;
      bottomR[i >> 1] = S[at]! + 256 * S[at + 1]!;
      at += 2;
      M2[i >> 1] = (((m + 255) >>> 8) + 255) >>> 8;
    } else if (m >= 16384) {
      bottomT[i >> 1] = 256;
      bottomR[i >> 1] = S[at]!;
      at += 1;
      M2[i >> 1] = (m + 255) >>> 8;
    } else {
      bottomT[i >> 1] = 1;
      M2[i >> 1] = m;
    }
  }
  if (i < len) M2[i >> 1] = M[i]!;
  const R2 = new Int32Array(half);
  decode(S, at, M2, half, R2);
  for (i = 0; i < len - 1; i += 2) {
    const r = bottomR[i >> 1]! + bottomT[i >> 1]! * R2[i >> 1]!;
    const m = M[i]!;
    const quotient = Math.floor(r / m);
    out[i] = r - quotient * m;
    out[i + 1] = quotient % M[i + 1]!;
  }
  if (i < len) out[i] = R2[i >> 1]!;
}

const MOD_Q = new Int32Array(P).fill(Q);
const MOD_ROUNDED = new Int32Array(P).fill((Q + 2) / 3);

/** Encode of the p values R under the moduli M into a fresh array of `bytes` bytes. */
function encodeAll(R: Int32Array, M: Int32Array, bytes: number): Uint8Array {
  const out = new Uint8Array(bytes);
  encode(out, 0, R, M, P);
  return out;
}

/** Decode of p values under the moduli M from `s`. */
function decodeAll(s: Uint8Array, M: Int32Array): Int32Array {
  const out = new Int32Array(P);
  decode(s, 0, M, P, out);
  return out;
}

/** A public key's bytes: h in Rq, each coefficient shifted into [0, q). */
export function rqEncode(h: Int32Array): Uint8Array {
  const R = new Int32Array(P);
  for (let i = 0; i < P; i++) R[i] = h[i]! + Q12;
  return encodeAll(R, MOD_Q, RQ_BYTES);
}

export function rqDecode(s: Uint8Array): Int32Array {
  const out = decodeAll(s, MOD_Q);
  for (let i = 0; i < P; i++) out[i] = out[i]! - Q12;
  return out;
}

/** A ciphertext's rounded part: each coefficient (a multiple of 3) as its index in [0, (q + 2) / 3). */
export function roundedEncode(c: Int32Array): Uint8Array {
  const R = new Int32Array(P);
  for (let i = 0; i < P; i++) R[i] = ((c[i]! + Q12) * 10923) >> 15;
  return encodeAll(R, MOD_ROUNDED, ROUNDED_BYTES);
}

export function roundedDecode(s: Uint8Array): Int32Array {
  const out = decodeAll(s, MOD_ROUNDED);
  for (let i = 0; i < P; i++) out[i] = out[i]! * 3 - Q12;
  return out;
}
