/**
 * Streamlined NTRU Prime 761 (sntrup761), the post-quantum half of sntrup761x25519-sha512: key
 * generation, encapsulation and decapsulation with implicit rejection, written from the NTRU Prime
 * round 3 specification and checked byte for byte against the submission's known answers
 * (test/conch/ssh/_transport/sntrup761_vectors.test.ts).
 *
 * Parameters: p = 761, q = 4591, w = 286. Sizes: public key 1158, secret key 1763, ciphertext
 * 1039 (1007 rounded + 32 confirmation), shared secret 32 bytes.
 *
 * The hot arithmetic is WebAssembly, assembled at first use from the listings beside this file
 * (`sntrup761_wasm.ts`: the module, ShortFromList's sort and Small_random; `sntrup761_rq.ts`:
 * the Rq inversion and the products; `sntrup761_r3.ts`: the bit-sliced R3 inversion), so that a
 * fresh process's first key exchange runs compiled code instead of V8's interpreter. Without
 * WebAssembly (`node --jitless`) the three KEM functions throw `WebAssemblyUnavailableError`.
 *
 * Constant time. Every loop bound and every memory address depends only on the public parameters
 * (and, in the two inversions, on the public step counter), never on a secret; the kernels'
 * `br_if`, `if` and `select` test only those. Secrets meet i32 add, sub, mul and bitwise
 * operations, f64 add, sub and mul on normal doubles (f64x2 in the Rq inversion's passes),
 * f64.floor (one `roundsd`) and exact i32/f64 conversions: no branch, no secret address, no
 * data-dependent latency on x86-64 or arm64. Each kernel's comment says which operations it uses
 * and why the results are exact. Here in JavaScript, secrets are combined with arithmetic and
 * masks, never with `if` or `?:` (the reductions `freezeQ`, `freeze3` and `nonzeroMask` in
 * `sntrup761_rq.ts`). `encode` branches only on the (public) moduli, so it may see the
 * re-encryption made from secret data during decapsulation. `decode` divides and is
 * variable-time, and only ever sees public keys and received ciphertexts. The number of attempts
 * in key generation leaks only whether discarded candidates were invertible, as in the reference
 * implementation.
 */
import { createHash, randomFillSync } from "node:crypto";
import { P, W, freeze3, freezeQ, nonzeroMask } from "./sntrup761_rq.js";
import { multiply, r3Recip, rqRecip3, shortFromList, smallFromList } from "./sntrup761_wasm.js";
import { ROUNDED_BYTES, RQ_BYTES, roundedDecode, roundedEncode, rqDecode, rqEncode } from "./sntrup761_encoding.js";


const SMALL_BYTES = (P + 3) >> 2; // 191
const HASH_BYTES = 32;

/** Public key length in bytes. */
export const SNTRUP761_PUBLIC_KEY_BYTES = RQ_BYTES;
/** Secret key length in bytes: f, 1/g mod 3, the public key, rho and SHA-512(4 || pk)[0..32]. */
export const SNTRUP761_SECRET_KEY_BYTES = 2 * SMALL_BYTES + RQ_BYTES + SMALL_BYTES + HASH_BYTES;
/** Ciphertext length in bytes. */
export const SNTRUP761_CIPHERTEXT_BYTES = ROUNDED_BYTES + HASH_BYTES;
/** Shared secret length in bytes. */
export const SNTRUP761_SHARED_SECRET_BYTES = HASH_BYTES;

/** A source of random bytes: returns `n` fresh bytes. Tests pass a deterministic one. */
export type RandomBytes = (n: number) => Uint8Array;

const systemRandom: RandomBytes = (n) => randomFillSync(new Uint8Array(n));

// ---- arithmetic ----

/** h = f * g in R3 = F3[x]/(x^p - x - 1); sums stay under 3p, inside freeze3's range. */
function r3Mult(f: Int8Array, g: Int8Array): Int8Array {
  return Int8Array.from(multiply(f, g, 3));
}

function shortRandom(random: RandomBytes): Int8Array {
  return shortFromList(random(4 * P));
}

function smallRandom(random: RandomBytes): Int8Array {
  return smallFromList(random(4 * P));
}

// ---- encodings ----

function smallEncode(f: Int8Array): Uint8Array {
  const s = new Uint8Array(SMALL_BYTES);
  for (let i = 0; i < P >> 2; i++) {
    s[i] = (f[4 * i]! + 1) | ((f[4 * i + 1]! + 1) << 2) | ((f[4 * i + 2]! + 1) << 4) | ((f[4 * i + 3]! + 1) << 6);
  }
  s[P >> 2] = f[P - 1]! + 1;
  return s;
}

function smallDecode(s: Uint8Array): Int8Array {
  const f = new Int8Array(P);
  for (let i = 0; i < P >> 2; i++) {
    const x = s[i]!;
    f[4 * i] = (x & 3) - 1;
    f[4 * i + 1] = ((x >> 2) & 3) - 1;
    f[4 * i + 2] = ((x >> 4) & 3) - 1;
    f[4 * i + 3] = ((x >> 6) & 3) - 1;
  }
  f[P - 1] = (s[P >> 2]! & 3) - 1;
  return f;
}

// ---- hashes ----

/** Hash_b(in): the first 32 bytes of SHA-512(b || in). */
function hashPrefix(b: number, ...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha512").update(Uint8Array.of(b));
  for (const part of parts) h.update(part);
  return new Uint8Array(h.digest().subarray(0, HASH_BYTES));
}

/** HashConfirm(r, pk) = Hash_2(Hash_3(r) || Hash_4(pk)); `cache` is Hash_4(pk). */
function hashConfirm(rEnc: Uint8Array, cache: Uint8Array): Uint8Array {
  return hashPrefix(2, hashPrefix(3, rEnc), cache);
}

/** HashSession(b, y, z) = Hash_b(Hash_3(y) || z). */
function hashSession(b: number, y: Uint8Array, z: Uint8Array): Uint8Array {
  return hashPrefix(b, hashPrefix(3, y), z);
}

// ---- the core and the KEM ----

/** Rounded (h * r): the ciphertext polynomial, each coefficient rounded to a multiple of 3. */
function encrypt(r: Int8Array, h: Int32Array): Int32Array {
  const hr = multiply(h, r, "q");
  for (let i = 0; i < P; i++) hr[i] = hr[i]! - freeze3(hr[i]!);
  return hr;
}

/** Ciphertext bytes and r's encoding for input r under pk (Hide in the specification). */
function hide(r: Int8Array, pk: Uint8Array, cache: Uint8Array): { ct: Uint8Array; rEnc: Uint8Array } {
  const rEnc = smallEncode(r);
  const ct = new Uint8Array(SNTRUP761_CIPHERTEXT_BYTES);
  ct.set(roundedEncode(encrypt(r, rqDecode(pk))), 0);
  ct.set(hashConfirm(rEnc, cache), ROUNDED_BYTES);
  return { ct, rEnc };
}

/**
 * Generates a key pair. `random` is called for 4p bytes per candidate g, 4p bytes for f, then
 * 191 bytes for rho, the order the reference draws them in (which the known answers depend on).
 */
export function sntrup761KeyPair(random: RandomBytes = systemRandom): { publicKey: Uint8Array; secretKey: Uint8Array } {
  let g: Int8Array;
  let ginv: Int8Array;
  for (;;) {
    g = smallRandom(random);
    const { out, mask } = r3Recip(g);
    ginv = out;
    if (mask === 0) break;
  }
  const f = shortRandom(random);
  const h = multiply(rqRecip3(f), g, "q");
  const publicKey = rqEncode(h);
  const secretKey = new Uint8Array(SNTRUP761_SECRET_KEY_BYTES);
  let at = 0;
  for (const part of [smallEncode(f), smallEncode(ginv), publicKey, random(SMALL_BYTES), hashPrefix(4, publicKey)]) {
    secretKey.set(part, at);
    at += part.length;
  }
  return { publicKey, secretKey };
}

/**
 * Encapsulates a fresh shared secret to `publicKey` (1158 bytes). Any 1158 bytes decode to some
 * polynomial, so a public key is never refused, as in the reference.
 */
export function sntrup761Encapsulate(
  publicKey: Uint8Array,
  random: RandomBytes = systemRandom,
): { cipherText: Uint8Array; sharedSecret: Uint8Array } {
  if (publicKey.length !== SNTRUP761_PUBLIC_KEY_BYTES) {
    throw new RangeError(`sntrup761 public key must be ${SNTRUP761_PUBLIC_KEY_BYTES} bytes, got ${publicKey.length}`);
  }
  const r = shortRandom(random);
  const { ct, rEnc } = hide(r, publicKey, hashPrefix(4, publicKey));
  return { cipherText: ct, sharedSecret: hashSession(1, rEnc, ct) };
}

/**
 * Decapsulates `cipherText` (1039 bytes). A ciphertext that does not re-encrypt to itself gives
 * the implicit-rejection secret HashSession(0, rho, ct), chosen by mask rather than by a branch.
 */
export function sntrup761Decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array {
  if (cipherText.length !== SNTRUP761_CIPHERTEXT_BYTES) {
    throw new RangeError(`sntrup761 ciphertext must be ${SNTRUP761_CIPHERTEXT_BYTES} bytes, got ${cipherText.length}`);
  }
  if (secretKey.length !== SNTRUP761_SECRET_KEY_BYTES) {
    throw new RangeError(`sntrup761 secret key must be ${SNTRUP761_SECRET_KEY_BYTES} bytes, got ${secretKey.length}`);
  }
  const f = smallDecode(secretKey.subarray(0, SMALL_BYTES));
  const ginv = smallDecode(secretKey.subarray(SMALL_BYTES, 2 * SMALL_BYTES));
  const pk = secretKey.subarray(2 * SMALL_BYTES, 2 * SMALL_BYTES + RQ_BYTES);
  const rho = secretKey.subarray(2 * SMALL_BYTES + RQ_BYTES, 3 * SMALL_BYTES + RQ_BYTES);
  const cache = secretKey.subarray(3 * SMALL_BYTES + RQ_BYTES);

  // Decrypt: e = 3 * c * f mod 3, ev = e / g; r = ev when its weight is w, else a fixed short vector.
  const cf = multiply(roundedDecode(cipherText.subarray(0, ROUNDED_BYTES)), f, "q");
  const e = new Int8Array(P);
  for (let i = 0; i < P; i++) e[i] = freeze3(freezeQ(3 * cf[i]!));
  const ev = r3Mult(e, ginv);
  let weight = 0;
  for (let i = 0; i < P; i++) weight += ev[i]! & 1;
  const bad = nonzeroMask(weight - W);
  const r = new Int8Array(P);
  for (let i = 0; i < W; i++) r[i] = ((ev[i]! ^ 1) & ~bad) ^ 1;
  for (let i = W; i < P; i++) r[i] = ev[i]! & ~bad;

  const { ct, rEnc } = hide(r, pk, cache);
  let diff = 0;
  for (let i = 0; i < SNTRUP761_CIPHERTEXT_BYTES; i++) diff |= ct[i]! ^ cipherText[i]!;
  const reject = (1 & ((diff - 1) >> 8)) - 1; // 0 when equal, -1 otherwise
  for (let i = 0; i < SMALL_BYTES; i++) rEnc[i] = rEnc[i]! ^ (reject & (rEnc[i]! ^ rho[i]!));
  return hashSession(1 + reject, rEnc, cipherText);
}
