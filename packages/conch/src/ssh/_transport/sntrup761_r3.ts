/**
 * sntrup761 inversion in R3 = F3[x]/(x^p - x - 1), bit-sliced: a polynomial is two bit-planes over
 * 32-bit words (coefficient i in bit i % 32 of word i / 32), `nz` (the coefficient is nonzero) and
 * `sg` (it is -1; always within nz). Internal to `sntrup761.ts`.
 *
 * In this representation, with masks broadcast from the scalar:
 * - a + b: x = an ^ bn, y = an & bn, o = as | bs; nz = x | (y & ~(as ^ bs)), sg = (x & o) | (y & ~o)
 *   (one nonzero term keeps its sign; two equal ones give the opposite sign; opposite ones cancel);
 * - c * a for a scalar c: nz = an & cnz, sg = (as ^ cs) & nz;
 * so each divstep is a fixed number of bitwise operations per word and no coefficient is ever
 * read on its own except bit 0 (f0, g0), which every step reads.
 */
import { P, negativeMask, nonzeroMask } from "./sntrup761_rq.js";

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
