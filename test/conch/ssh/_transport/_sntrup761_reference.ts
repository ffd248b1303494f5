/**
 * The reference oracle for the sntrup761 WebAssembly kernels: the plain-JavaScript arithmetic
 * the package shipped before issue 16's cold-start work (the Rq inversion on doubles, the
 * bit-sliced R3 inversion, the Karatsuba product, the bitonic sort of ShortFromList and
 * Small_random, the encodings), kept as it was as the tests' oracle. The kernels and the
 * encodings must agree with it bit for bit (sntrup761_wasm.test.ts); it reproduced the
 * submission's known answers before they did.
 */

// ---- Rq, from sntrup761_rq.ts ----

// The scalar reductions are still the package's (sntrup761.ts uses them in JavaScript); they are
// loaded from the built package as _load does.
type Rq = typeof import("../../../../packages/conch/dist/ssh/_transport/sntrup761_rq.js");
const rq = (await import(new URL("dist/ssh/_transport/sntrup761_rq.js", import.meta.resolve("@twisted-ts/conch/package.json")).href)) as Rq;
export const { freezeQ, freeze3, nonzeroMask } = rq;

const p = 761;
const q = 4591;
export const P = p;
export const Q = q;
export const W = 286;
const INV_Q = 1 / q;

/** -1 if x (an int32) is negative, else 0. */
export function negativeMask(x: number): number {
  return x >> 31;
}

/** a^(q-2) = 1/a mod q, square and multiply over the (public) exponent's bits. */
function recipQ(a: number): number {
  let ai = 1;
  for (let bit = 12; bit >= 0; bit--) {
    ai = freezeQ(ai * ai);
    if (((q - 2) >> bit) & 1) ai = freezeQ(ai * a);
  }
  return ai;
}

/**
 * x mod q in [-(q-1)/2, (q-1)/2] for |x| < 2^30, as `freezeQ`, by the round-to-nearest of adding
 * and subtracting 1.5 * 2^52 (the ulp there is 1) instead of `Math.floor`: two additions, cheaper
 * in the inner loops. Exact for the same reason (x/q is never within 1/(2q) of a half-integer, so
 * the rounding has no tie to break and the product's error cannot cross one).
 */
const ROUND = 6755399441055744;

/**
 * 1/(3 * in) in Rq for a short `in` (always invertible: x^p - x - 1 is irreducible mod q), by the
 * reference's constant-time extended GCD: 2p - 1 divsteps on f = x^p - x - 1 and g = in, both
 * reversed, carrying v and r with v * in = f * x^step (mod x^p - x - 1, up to a scalar).
 *
 * Each step swaps (f, g) and (v, r) by a mask, then sets g <- (f0 * g - g0 * f) / x and
 * r <- f0 * r - g0 * v, v <- x * v (f0, g0 taken after the swap). With s = 1 to swap and 0 not,
 * the new f is f + s * (g - f), and f0 * g - g0 * f after the swap is a * g + b * f before it,
 * (a, b) = (f0, -g0) or (-g0, f0) chosen by mask once per step: no branch, no secret index.
 * Coefficients are doubles (exact: every sum below stays under 2^25) so that the reduction needs
 * no conversion; f and g share one array (f[i] at 2i, g[i] at 2i + 1), as do v and r.
 *
 * The passes run over ranges fixed by the step counter alone:
 * - (f, g): a coefficient's index drops by at most one per step (only g shifts, and the swap keeps
 *   indices), and only f[0] and g[0] are ever read as scalars, up to f[0] after the last step; so
 *   at step `loop` the indices above 2p - 1 - loop can no longer matter and are left stale.
 * - (v, r): zero above index `loop` (r starts as a constant; v gains one degree per step).
 */
export function rqRecip3(input: Int8Array): Int32Array {
  // Room for index p + 1, where the paired passes below may step.
  const fg = new Float64Array(2 * p + 4);
  const vr = new Float64Array(2 * p + 4);
  fg[0] = 1;
  fg[2 * (p - 1)] = -1;
  fg[2 * p] = -1;
  for (let i = 0; i < p; i++) fg[2 * (p - 1 - i) + 1] = input[i]!;
  vr[1] = recipQ(3);
  let delta = 1;
  for (let loop = 0; loop < 2 * p - 1; loop++) {
    const f00: number = fg[0]! | 0;
    const g00 = fg[1]! | 0;
    const swap = negativeMask(0 - delta) & nonzeroMask(g00);
    delta ^= swap & (delta ^ (0 - delta));
    delta += 1;
    const s = swap & 1;
    // f0 and g0 after the swap, and the multipliers of g and f before it.
    const t0 = swap & (f00 ^ g00);
    const f0: number = f00 ^ t0;
    const g0 = g00 ^ t0;
    const ta = swap & (f0 ^ (0 - g0));
    const a = f0 ^ ta;
    const b = (0 - g0) ^ ta;
    fg[0] = f0;
    // Two coefficients per iteration; the pair past the range (when its length is odd) only
    // touches stale indices, or zeros beyond p.
    const top = 2 * Math.min(p, 2 * p - 1 - loop);
    for (let i = 2; i <= top; i += 4) {
      const fi = fg[i]!;
      const gi = fg[i + 1]!;
      const fj = fg[i + 2]!;
      const gj = fg[i + 3]!;
      fg[i] = fi + s * (gi - fi);
      fg[i + 2] = fj + s * (gj - fj);
      const x = a * gi + b * fi;
      const y = a * gj + b * fj;
      fg[i - 1] = x - q * (x * INV_Q + ROUND - ROUND);
      fg[i + 1] = y - q * (y * INV_Q + ROUND - ROUND);
    }
    fg[top + 1] = 0;
    // Also in pairs, from index min(loop, p) rounded up to even: one above the range is 0 in v and
    // r while loop < p, and beyond p otherwise, where v's coefficients only ever move up.
    for (let i = 2 * ((Math.min(loop, p) + 1) & ~1); i >= 4; i -= 4) {
      const vi = vr[i - 2]!;
      const ri = vr[i + 1]!;
      const vj = vr[i - 4]!;
      const rj = vr[i - 1]!;
      vr[i] = vi + s * (ri - vi);
      vr[i - 2] = vj + s * (rj - vj);
      const x = a * ri + b * vi;
      const y = a * rj + b * vj;
      vr[i + 1] = x - q * (x * INV_Q + ROUND - ROUND);
      vr[i - 1] = y - q * (y * INV_Q + ROUND - ROUND);
    }
    const r0 = vr[1]!; // v[-1] is 0
    vr[0] = s * r0;
    vr[1] = freezeQ(a * r0);
  }
  const scale = recipQ(fg[0]!);
  const out = new Int32Array(p);
  for (let i = 0; i < p; i++) out[i] = freezeQ(scale * vr[2 * (p - 1 - i)]!);
  return out;
}

/** Operand length for `multiply`: p padded to 48 * 2^4, so that Karatsuba halves it four times. */
const PADDED = 768;
const SCHOOLBOOK = 48;

/**
 * out[oo .. oo + 2n) = a[ao .. ao + n) * b[bo .. bo + n) by schoolbook, four rows of a at a time
 * (one load and store of `out` per four products); `pad` (n + 6 long, zero outside [3, n + 3))
 * holds b between three zeros each side, so that b[j - 3 .. j] need no bounds. n is a multiple of 4.
 */
function schoolbook(a: Float64Array, ao: number, b: Float64Array, bo: number, n: number, out: Float64Array, oo: number, pad: Float64Array): void {
  out.fill(0, oo, oo + 2 * n);
  for (let j = 0; j < n; j++) pad[3 + j] = b[bo + j]!;
  for (let i = 0; i < n; i += 4) {
    const a0 = a[ao + i]!;
    const a1 = a[ao + i + 1]!;
    const a2 = a[ao + i + 2]!;
    const a3 = a[ao + i + 3]!;
    let b1 = 0;
    let b2 = 0;
    let b3 = 0;
    for (let j = 0; j < n + 3; j++) {
      const b0 = pad[3 + j]!;
      out[oo + i + j] = out[oo + i + j]! + a0 * b0 + a1 * b1 + a2 * b2 + a3 * b3;
      b3 = b2;
      b2 = b1;
      b1 = b0;
    }
  }
}

/**
 * out[oo .. oo + 2n) = a[ao .. ao + n) * b[bo .. bo + n), by Karatsuba down to 48 coefficients,
 * then schoolbook; `tmp` from `to` on is scratch (2n at this level, under 4n with the levels below).
 * Everything is exact in doubles: the operands of the deepest products are sums of at most 16
 * inputs, so no coefficient comes near 2^53. Only the public length chooses the path.
 */
function karatsuba(
  a: Float64Array,
  ao: number,
  b: Float64Array,
  bo: number,
  n: number,
  out: Float64Array,
  oo: number,
  tmp: Float64Array,
  to: number,
  pad: Float64Array,
): void {
  if (n <= SCHOOLBOOK) {
    schoolbook(a, ao, b, bo, n, out, oo, pad);
    return;
  }
  const h = n >> 1;
  karatsuba(a, ao, b, bo, h, out, oo, tmp, to + 4 * h, pad);
  karatsuba(a, ao + h, b, bo + h, h, out, oo + 2 * h, tmp, to + 4 * h, pad);
  for (let i = 0; i < h; i++) {
    tmp[to + i] = a[ao + i]! + a[ao + h + i]!;
    tmp[to + h + i] = b[bo + i]! + b[bo + h + i]!;
  }
  const mid = to + 2 * h;
  karatsuba(tmp, to, tmp, to + h, h, tmp, mid, tmp, to + 4 * h, pad);
  for (let i = 0; i < 2 * h; i++) tmp[mid + i] = tmp[mid + i]! - out[oo + i]! - out[oo + 2 * h + i]!;
  for (let i = 0; i < 2 * h; i++) out[oo + h + i] = out[oo + h + i]! + tmp[mid + i]!;
}

/**
 * h = f * g in Z[x]/(x^p - x - 1), every coefficient then reduced by `freeze`: f in Rq or R3
 * (|f| <= (q-1)/2), g small. The unreduced coefficients stay under 3 * p * (q-1)/2 < 2^30.
 */
export function multiply(f: ArrayLike<number>, g: Int8Array, freeze: (x: number) => number): Int32Array {
  const a = new Float64Array(PADDED);
  const b = new Float64Array(PADDED);
  for (let i = 0; i < p; i++) {
    a[i] = f[i]!;
    b[i] = g[i]!;
  }
  const fg = new Float64Array(2 * PADDED);
  karatsuba(a, 0, b, 0, PADDED, fg, 0, new Float64Array(4 * PADDED), 0, new Float64Array(SCHOOLBOOK + 6));
  // x^p = x + 1
  for (let i = 2 * p - 2; i >= p; i--) {
    fg[i - p] = fg[i - p]! + fg[i]!;
    fg[i - p + 1] = fg[i - p + 1]! + fg[i]!;
  }
  const h = new Int32Array(p);
  for (let i = 0; i < p; i++) h[i] = freeze(fg[i]!);
  return h;
}

// ---- R3, from sntrup761_r3.ts ----

/** Words per bit-plane: 24 * 32 = 768 bits hold p + 1 = 762 coefficients. One zero word follows. */
const WORDS = (P + 1 + 31) >> 5;

/** Sets coefficient `i` of (nz, sg) to `c` in {-1, 0, 1} (only for public positions and setup). */
function setCoefficient(nz: Int32Array, sg: Int32Array, i: number, c: number): void {
  nz[i >> 5] = nz[i >> 5]! | ((c & 1) << (i & 31));
  sg[i >> 5] = sg[i >> 5]! | ((c >>> 31) << (i & 31));
}

/**
 * Over words 0..last: swap a and b where `swap` is set (a mask, -1 or 0), then b <- b + c * a,
 * with the scalar c given as the masks (cn, cs).
 */
function swapAndAdd(an: Int32Array, as: Int32Array, bn: Int32Array, bs: Int32Array, last: number, swap: number, cn: number, cs: number): void {
  for (let k = 0; k <= last; k++) {
    let a0 = an[k]!;
    let a1 = as[k]!;
    let b0 = bn[k]!;
    let b1 = bs[k]!;
    let t = swap & (a0 ^ b0);
    a0 ^= t;
    b0 ^= t;
    t = swap & (a1 ^ b1);
    a1 ^= t;
    b1 ^= t;
    an[k] = a0;
    as[k] = a1;
    const yn = a0 & cn;
    const ys = (a1 ^ cs) & yn;
    const x = b0 ^ yn;
    const y = b0 & yn;
    const o = b1 | ys;
    bn[k] = x | (y & ~(b1 ^ ys));
    bs[k] = (x & o) | (y & ~o);
  }
}

/**
 * 1/in in R3 by the reference's constant-time extended GCD: 2p - 1 divsteps on f = x^p - x - 1
 * and g = in, both reversed; returns the inverse and a mask, 0 when it exists and -1 otherwise.
 *
 * Each step: v <- x * v; swap (f, g) and (v, r) when delta > 0 and g0 != 0 (a mask on every
 * word); with c = -f0 * g0, g <- (g + c * f) / x and r <- r + c * v. The passes run over word
 * ranges fixed by the step counter alone, as `rqRecip3` argues: (f, g) matter only up to index
 * 2p - 1 - loop, and (v, r) are zero above index `loop`. Bits beyond those bounds (in the last
 * word of a range, or shifted in from the next word) are stale or junk that can never move down
 * into a position that matters: indices only ever shift down in g by one per step, as fast as the
 * bound falls, and only ever up in v.
 */
export function r3Recip(input: Int8Array): { out: Int8Array; mask: number } {
  const fn = new Int32Array(WORDS + 1);
  const fs = new Int32Array(WORDS + 1);
  const gn = new Int32Array(WORDS + 1);
  const gs = new Int32Array(WORDS + 1);
  const vn = new Int32Array(WORDS + 1);
  const vs = new Int32Array(WORDS + 1);
  const rn = new Int32Array(WORDS + 1);
  const rs = new Int32Array(WORDS + 1);
  setCoefficient(fn, fs, 0, 1);
  setCoefficient(fn, fs, P - 1, -1);
  setCoefficient(fn, fs, P, -1);
  for (let i = 0; i < P; i++) setCoefficient(gn, gs, P - 1 - i, input[i]!);
  rn[0] = 1;
  let delta = 1;
  for (let loop = 0; loop < 2 * P - 1; loop++) {
    const lastV = Math.min(loop, P) >> 5;
    for (let k = lastV; k > 0; k--) {
      vn[k] = (vn[k]! << 1) | (vn[k - 1]! >>> 31);
      vs[k] = (vs[k]! << 1) | (vs[k - 1]! >>> 31);
    }
    vn[0] = vn[0]! << 1;
    vs[0] = vs[0]! << 1;

    const f0n = fn[0]! & 1;
    const f0s = fs[0]! & 1;
    const g0n = gn[0]! & 1;
    const g0s = gs[0]! & 1;
    const swap = negativeMask(0 - delta) & (0 - g0n); // 0 - x, not -x: see nonzeroMask
    delta ^= swap & (delta ^ (0 - delta));
    delta += 1;
    // c = -f0 * g0, the same before and after the swap.
    const cn = 0 - (f0n & g0n);
    const cs = 0 - ((f0s ^ g0s ^ 1) & f0n & g0n);

    const lastF = Math.min(P, 2 * P - 1 - loop) >> 5;
    swapAndAdd(fn, fs, gn, gs, lastF, swap, cn, cs);
    for (let k = 0; k <= lastF; k++) {
      gn[k] = (gn[k]! >>> 1) | (gn[k + 1]! << 31);
      gs[k] = (gs[k]! >>> 1) | (gs[k + 1]! << 31);
    }

    swapAndAdd(vn, vs, rn, rs, lastV, swap, cn, cs);
  }
  // out = f0 * v, reversed (f0 is +-1 when the inverse exists): v's planes masked by f0's nz and
  // flipped by its sign, then read as nz - 2 * sg, with no multiplication that could give -0.
  const keep = 0 - (fn[0]! & 1);
  const flip = 0 - (fs[0]! & 1);
  const out = new Int8Array(P);
  for (let i = 0; i < P; i++) {
    const j = P - 1 - i;
    const nz = (vn[j >> 5]! >>> (j & 31)) & keep & 1;
    const sg = ((vs[j >> 5]! ^ flip) >>> (j & 31)) & nz;
    out[i] = nz - 2 * sg;
  }
  return { out, mask: nonzeroMask(delta) };
}

// ---- ShortFromList and Small_random, from sntrup761.ts ----

const SORT_N = 1024;

/**
 * Sorts unsigned 32-bit values ascending with a bitonic network over 1024 slots (padding with
 * 0xffffffff, above every real value here). The network's shape depends only on the length.
 * Each compare-exchange takes its mask from floor((b - a) / 2^32), exactly -1 when b < a and 0
 * otherwise for |b - a| < 2^32, so no comparison becomes a branch.
 */
function sortUint32(values: Float64Array): void {
  const x = new Float64Array(SORT_N).fill(0xffffffff);
  x.set(values);
  for (let k = 2; k <= SORT_N; k <<= 1) {
    for (let j = k >> 1; j > 0; j >>= 1) {
      for (let i = 0; i < SORT_N; i++) {
        const l = i ^ j;
        if (l <= i) continue;
        const lo = (i & k) === 0 ? i : l;
        const hi = lo === i ? l : i;
        const a = x[lo]!;
        const b = x[hi]!;
        const swap = Math.floor((b - a) * 2 ** -32); // -1 or 0
        const t = (a - b) * swap; // b - a when swapping, else 0
        x[lo] = a + t;
        x[hi] = b - t;
      }
    }
  }
  values.set(x.subarray(0, values.length));
}

/** A short polynomial (exactly w nonzero coefficients in {-1, 1}) from p random uint32 values. */
export function shortFromList(list: Uint32Array): Int8Array {
  const L = new Float64Array(P);
  for (let i = 0; i < W; i++) L[i] = (list[i]! & ~1) >>> 0;
  for (let i = W; i < P; i++) L[i] = ((list[i]! & ~3) | 1) >>> 0;
  sortUint32(L);
  const out = new Int8Array(P);
  for (let i = 0; i < P; i++) out[i] = ((L[i]! >>> 0) & 3) - 1; // L[i] < 2^32: >>> 0 is exact
  return out;
}

/** Small_random's arithmetic on p random words (sntrup761.ts's smallRandom after its draw). */
export function smallFromList(list: Uint32Array): Int8Array {
  const out = new Int8Array(P);
  for (let i = 0; i < P; i++) {
    const x = list[i]! & 0x3fffffff;
    out[i] = ((357913941 - x) >>> 31) + ((715827882 - x) >>> 31) - 1;
  }
  return out;
}

// ---- Encode and Decode, from sntrup761.ts ----

/** The spec's Encode: 0 <= R[i] < M[i] < 16384, into a mixed-radix byte string (public data only). */
function encode(out: number[], R: ArrayLike<number>, M: ArrayLike<number>, len: number): void {
  if (len === 1) {
    let r = R[0]!;
    let m = M[0]!;
    while (m > 1) {
      out.push(r & 0xff);
      r >>>= 8;
      m = (m + 255) >>> 8;
    }
    return;
  }
  const half = (len + 1) >> 1;
  const R2 = new Array<number>(half);
  const M2 = new Array<number>(half);
  let i = 0;
  for (; i < len - 1; i += 2) {
    const m0 = M[i]!;
    let r = R[i]! + R[i + 1]! * m0;
    let m = M[i + 1]! * m0;
    while (m >= 16384) {
      out.push(r & 0xff);
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
  encode(out, R2, M2, half);
}

/** The spec's Decode, inverse of `encode`; out-of-range input is reduced as the reference does. */
function decode(S: Uint8Array, at: number, M: ArrayLike<number>, len: number): number[] {
  if (len === 1) {
    const m = M[0]!;
    if (m === 1) return [0];
    if (m <= 256) return [S[at]! % m];
    return [(S[at]! + (S[at + 1]! << 8)) % m];
  }
  const half = (len + 1) >> 1;
  const M2 = new Array<number>(half);
  const bottomR: number[] = [];
  const bottomT: number[] = [];
  let i = 0;
  for (; i < len - 1; i += 2) {
    const m = M[i]! * M[i + 1]!;
    if (m > 256 * 16383) {
      bottomT.push(65536);
      bottomR.push(S[at]! + 256 * S[at + 1]!);
      at += 2;
      M2[i >> 1] = (((m + 255) >>> 8) + 255) >>> 8;
    } else if (m >= 16384) {
      bottomT.push(256);
      bottomR.push(S[at]!);
      at += 1;
      M2[i >> 1] = (m + 255) >>> 8;
    } else {
      bottomT.push(1);
      bottomR.push(0);
      M2[i >> 1] = m;
    }
  }
  if (i < len) M2[i >> 1] = M[i]!;
  const R2 = decode(S, at, M2, half);
  const out: number[] = [];
  for (i = 0; i < len - 1; i += 2) {
    const r = bottomR[i >> 1]! + bottomT[i >> 1]! * R2[i >> 1]!; // < 2^32: exact as a double
    const m = M[i]!;
    out.push(r % m, Math.floor(r / m) % M[i + 1]!);
  }
  if (i < len) out.push(R2[i >> 1]!);
  return out;
}

const Q12 = (Q - 1) / 2;
const MOD_Q = new Array<number>(P).fill(Q);
const MOD_ROUNDED = new Array<number>(P).fill((Q + 2) / 3);

export function rqEncode(h: Int32Array): Uint8Array {
  const out: number[] = [];
  encode(out, Array.from(h, (x) => x + Q12), MOD_Q, P);
  return Uint8Array.from(out);
}

export function rqDecode(s: Uint8Array): Int32Array {
  return Int32Array.from(decode(s, 0, MOD_Q, P), (x) => x - Q12);
}

export function roundedEncode(c: Int32Array): Uint8Array {
  const out: number[] = [];
  encode(out, Array.from(c, (x) => ((x + Q12) * 10923) >> 15), MOD_ROUNDED, P);
  return Uint8Array.from(out);
}

export function roundedDecode(s: Uint8Array): Int32Array {
  return Int32Array.from(decode(s, 0, MOD_ROUNDED, P), (x) => x * 3 - Q12);
}

