/**
 * sntrup761 arithmetic in Rq = Fq[x]/(x^p - x - 1) as WebAssembly (assembled by
 * `sntrup761_wasm.ts`): the inversion of key generation and the products of key generation,
 * encapsulation and decapsulation; and the scalar reductions `sntrup761.ts` uses in JavaScript.
 *
 * The kernels are the JavaScript they replace (kept as the test oracle in
 * test/conch/ssh/_transport/_sntrup761_reference.ts) instruction for instruction: the inversion
 * runs the same f64 operations in the same order (WebAssembly, like JavaScript, never fuses a
 * multiply and an add), so every intermediate double has the same bits; the products run in i32.
 *
 * Constant time: loop bounds and addresses come from the public parameters and the (public) step
 * counter only; the only `br_if`, `if` and `select` conditions are those counters and the
 * public operand length. Secrets meet i32 add, sub, mul, and, or, xor, shifts (fixed latency on
 * x86-64 and arm64), f64 add, sub and mul on normal doubles (scalar or f64x2), f64.floor (one
 * `roundsd`, SSE4.1) and the conversions between i32 and f64 of integers (`cvtsi2sd`,
 * `cvttsd2si`; i32.trunc_f64_s's trap check is a branch never taken for these in-range
 * integers, whatever their value): no data-dependent branch, address or latency.
 */
import { Code, F64, F64X2_ADD, F64X2_MUL, F64X2_SPLAT, F64X2_SUB, F64_ADD, F64_CONVERT_I32_S, F64_FLOOR, F64_MUL, F64_SUB, I32, I32_ADD, I32_AND, I32_GE_S, I32_GT_S, I32_LE_S, I32_LT_S, I32_MUL, I32_OR, I32_SHR_S, I32_SUB, I32_TRUNC_F64_S, I32_XOR, SELECT, V128 } from "./wasm.js";
import type { WasmFunction } from "./wasm.js";

export const P = 761;
export const Q = 4591;
export const W = 286;
const p = P;
const q = Q;
const INV_Q = 1 / q;

/**
 * x mod q in [-(q-1)/2, (q-1)/2] for |x| < 2^30. Exact: x/q + 1/2 is at least 1/(2q) away from an
 * integer (q is odd), and the double product x * (1/q) errs by far less (under 2^-22).
 * `Math.floor` on a double is one `roundsd` in V8's optimized code: no branch, and no
 * data-dependent latency for the normal doubles here.
 */
export function freezeQ(x: number): number {
  return x - q * Math.floor(x * INV_Q + 0.5);
}

/**
 * x mod 3 in {-1, 0, 1} for |x| < 2^13 with integer operations only: 10923 / 2^15 exceeds 1/3 by
 * 1/(3 * 2^15), too little to move x/3 + 1/2 across an integer in that range.
 */
export function freeze3(x: number): number {
  return x - 3 * ((x * 10923 + 16384) >> 15);
}

/**
 * -1 if x (an int32) is nonzero, else 0. A secret is negated as 0 - x, never -x: unary minus of 0
 * is -0, a double, which optimized code specialised for small integers would leave by a
 * deoptimization, a timing difference that depends on the data.
 */
export function nonzeroMask(x: number): number {
  return (x | (0 - x)) >> 31;
}

/** Appends `freezeQ` of the f64 on the stack (through the f64 local `x`), the same operations. */
function emitFreezeQ(c: Code, x: number): void {
  c.tee(x).f64(q).get(x).f64(INV_Q).op(F64_MUL).f64(0.5).op(F64_ADD).op(F64_FLOOR).op(F64_MUL).op(F64_SUB);
}

/**
 * The reductions in the passes: x - q * (x * (1/q) + 1.5 * 2^52 - 1.5 * 2^52), `freezeQ` by the
 * round-to-nearest of adding and subtracting 1.5 * 2^52 (the ulp there is 1), two additions
 * instead of a `roundsd`. Exact for |x| < 2^30 for the same reason (x/q is never within 1/(2q)
 * of a half-integer, so the rounding has no tie to break and the product's error cannot cross one).
 */
const ROUND = 6755399441055744;

/** 1/3 mod q: 3 * -1530 = 1 - q. */
const RECIP3 = -1530;

/** Byte addresses in the kernels' memory. */
export interface RqLayout {
  /** p input coefficients, int8. */
  readonly input: number;
  /** p output coefficients, i32. */
  readonly out: number;
  /** f, g, v and r: p + 2 f64 each, 8-byte aligned, with 8 KiB or more between them. */
  readonly f: number;
  readonly g: number;
  readonly v: number;
  readonly r: number;
}

/** Bytes zeroed per polynomial before an inversion: p + 2 doubles, rounded up to 16. */
const POLY_BYTES = 16 * ((p + 3) >> 1);

/**
 * Appends x - q * (x * (1/q) + 1.5 * 2^52 - 1.5 * 2^52) lane by lane for the f64x2 local `x`,
 * with the splatted constants in the v128 locals `vq`, `vinv`, `vround`: the reduction by
 * `ROUND` in both lanes, the same f64 operations in the same order as the scalar JavaScript.
 */
function emitReduce2(c: Code, x: number, vq: number, vinv: number, vround: number): void {
  c.get(x).get(vq).get(x).get(vinv).simd(F64X2_MUL).get(vround).simd(F64X2_ADD).get(vround).simd(F64X2_SUB).simd(F64X2_MUL).simd(F64X2_SUB);
}

/**
 * The two passes of a divstep, two coefficients per iteration in f64x2 lanes: the same f64
 * operations per lane as the scalar code, in the same order (f64x2.add, sub and mul are IEEE
 * per lane: addpd, subpd, mulpd, no fusing), over the same coefficients.
 *
 * fgPass(m, s, a, b), for k = 1, 3, 5, ... <= m, lanes (k, k + 1):
 *   f[k] <- f[k] + s (g[k] - f[k]);  g[k - 1] <- reduce(a g[k] + b f[k]);  then g[m] <- 0.
 * vrPass(c, s, a, b), for c, c - 2, ... >= 2, lanes (c - 1, c):
 *   v[c] <- v[c - 1] + s (r[c] - v[c - 1]);  r[c] <- reduce(a r[c] + b v[c - 1]).
 * f moves in place and g down by one; v moves up by one and r in place, descending so that each
 * v[c - 1] is read before it is overwritten. The bounds are public (the step counter's).
 */
function passFunctions(at: RqLayout): WasmFunction[] {
  const N = 0, S = 1, A = 2, B = 3; // params: i32, then f64
  const ADDR = 4, END = 5, VS = 6, VA = 7, VB = 8, VQ = 9, VINV = 10, VROUND = 11, U = 12, WW = 13, X = 14;
  const prologue = (c: Code): void => {
    c.get(S).simd(F64X2_SPLAT).set(VS).get(A).simd(F64X2_SPLAT).set(VA).get(B).simd(F64X2_SPLAT).set(VB);
    c.f64(q).simd(F64X2_SPLAT).set(VQ).f64(INV_Q).simd(F64X2_SPLAT).set(VINV).f64(ROUND).simd(F64X2_SPLAT).set(VROUND);
  };
  /** u + s (w - u) into the store on the stack, then a w + b u into X. */
  const body = (c: Code, store: number): void => {
    c.get(ADDR).get(U).get(VS).get(WW).get(U).simd(F64X2_SUB).simd(F64X2_MUL).simd(F64X2_ADD).v128Store(store);
    c.get(VA).get(WW).simd(F64X2_MUL).get(VB).get(U).simd(F64X2_MUL).simd(F64X2_ADD).set(X);
  };
  const fg = new Code();
  prologue(fg);
  fg.get(N).i32(8).op(I32_MUL).set(END);
  fg.i32(8).set(ADDR).block().loop();
  fg.get(ADDR).get(END).op(I32_GT_S).brIf(1);
  fg.get(ADDR).v128Load(at.f).set(U).get(ADDR).v128Load(at.g).set(WW);
  body(fg, at.f);
  fg.get(ADDR);
  emitReduce2(fg, X, VQ, VINV, VROUND);
  fg.v128Store(at.g - 8);
  fg.get(ADDR).i32(16).op(I32_ADD).set(ADDR).br(0).end().end();
  fg.get(END).f64(0).f64Store(at.g);
  const vr = new Code();
  prologue(vr);
  vr.get(N).i32(8).op(I32_MUL).i32(16).op(I32_SUB).set(ADDR).block().loop(); // ADDR = 8 (c - 2)
  vr.get(ADDR).i32(0).op(I32_LT_S).brIf(1);
  vr.get(ADDR).v128Load(at.v).set(U).get(ADDR).v128Load(at.r + 8).set(WW);
  body(vr, at.v + 8);
  vr.get(ADDR);
  emitReduce2(vr, X, VQ, VINV, VROUND);
  vr.v128Store(at.r + 8);
  vr.get(ADDR).i32(16).op(I32_SUB).set(ADDR).br(0).end().end();
  const locals: Array<[number, number]> = [[2, I32], [9, V128]];
  return [
    { params: [I32, F64, F64, F64], results: [], locals, code: fg },
    { params: [I32, F64, F64, F64], results: [], locals, code: vr },
  ];
}

/**
 * rqRecip3(): out = 1/(3 * in) in Rq for a short `in` (always invertible: x^p - x - 1 is
 * irreducible mod q), by the reference's constant-time extended GCD: 2p - 1 divsteps on
 * f = x^p - x - 1 and g = in, both reversed, carrying v and r with v * in = f * x^step (mod
 * x^p - x - 1, up to a scalar).
 *
 * Each step swaps (f, g) and (v, r) by a mask, then sets g <- (f0 * g - g0 * f) / x and
 * r <- f0 * r - g0 * v, v <- x * v (f0, g0 taken after the swap). With s = 1 to swap and 0 not,
 * the new f is f + s * (g - f), and f0 * g - g0 * f after the swap is a * g + b * f before it,
 * (a, b) = (f0, -g0) or (-g0, f0) chosen by mask once per step (i32 and, xor, sub). Coefficients
 * are doubles (exact: every sum below stays under 2^25) so that the reduction needs no
 * conversion.
 *
 * The passes run over ranges fixed by the step counter alone:
 * - (f, g): a coefficient's index drops by at most one per step (only g shifts, and the swap keeps
 *   indices), and only f[0] and g[0] are ever read as scalars, up to f[0] after the last step; so
 *   at step `loop` the indices above 2p - 1 - loop can no longer matter and are left stale.
 * - (v, r): zero above index `loop` (r starts as a constant; v gains one degree per step).
 * Both are `select`ed on `loop` only. f0 and g0 become i32 by i32.trunc_f64_s of integers under q
 * (JavaScript's `| 0`), and back by f64.convert_i32_s.
 *
 * The passes are functions of their own (`first + 1`, `first + 2`), called once per step: V8
 * tiers up a WebAssembly function that has run long, and a small pass compiles quickly and is
 * then used from the next step on, while a tiered-up whole inversion would be used only by the
 * next inversion.
 */
export function rqRecipFunctions(at: RqLayout, first: number): WasmFunction[] {
  const FG_PASS = first + 1, VR_PASS = first + 2;
  // locals: i32, then f64
  const LOOP = 0, DELTA = 1, F00 = 2, G00 = 3, SWAP = 4, T0 = 5, F0 = 6, G0 = 7, TA = 8, ADDR = 9;
  const S = 10, A = 11, B = 12, X = 13, R0 = 14, AI = 15, SCALE = 16;
  const c = new Code();

  // f = x^p - x - 1 and g = in, reversed; v = 0, r = 1/3; everything else zero.
  c.i32(0).set(ADDR).loop();
  c.get(ADDR).f64(0).f64Store(at.f).get(ADDR).f64(0).f64Store(at.g).get(ADDR).f64(0).f64Store(at.v).get(ADDR).f64(0).f64Store(at.r);
  c.get(ADDR).i32(8).op(I32_ADD).tee(ADDR).i32(POLY_BYTES).op(I32_LT_S).brIf(0).end();
  c.i32(0).f64(1).f64Store(at.f);
  c.i32(0).f64(-1).f64Store(at.f + 8 * (p - 1));
  c.i32(0).f64(-1).f64Store(at.f + 8 * p);
  // g[p - 1 - i] = in[i]
  c.i32(0).set(ADDR).loop();
  c.i32(8 * (p - 1)).get(ADDR).i32(8).op(I32_MUL).op(I32_SUB);
  c.get(ADDR).i32Load8S(at.input).op(F64_CONVERT_I32_S).f64Store(at.g);
  c.get(ADDR).i32(1).op(I32_ADD).tee(ADDR).i32(p).op(I32_LT_S).brIf(0).end();
  c.i32(0).f64(RECIP3).f64Store(at.r);
  c.i32(1).set(DELTA);

  c.i32(0).set(LOOP).loop();
  {
    c.i32(0).f64Load(at.f).op(I32_TRUNC_F64_S).set(F00);
    c.i32(0).f64Load(at.g).op(I32_TRUNC_F64_S).set(G00);
    // swap = ((0 - delta) >> 31) & nonzeroMask(g00): -1 when delta > 0 and g0 != 0
    c.i32(0).get(DELTA).op(I32_SUB).i32(31).op(I32_SHR_S);
    c.get(G00).i32(0).get(G00).op(I32_SUB).op(I32_OR).i32(31).op(I32_SHR_S).op(I32_AND).set(SWAP);
    // delta = (swap ? -delta : delta) + 1
    c.get(DELTA).get(SWAP).get(DELTA).i32(0).get(DELTA).op(I32_SUB).op(I32_XOR).op(I32_AND).op(I32_XOR);
    c.i32(1).op(I32_ADD).set(DELTA);
    c.get(SWAP).i32(1).op(I32_AND).op(F64_CONVERT_I32_S).set(S);
    // f0 and g0 after the swap, and the multipliers a, b of g and f before it.
    c.get(SWAP).get(F00).get(G00).op(I32_XOR).op(I32_AND).set(T0);
    c.get(F00).get(T0).op(I32_XOR).set(F0);
    c.get(G00).get(T0).op(I32_XOR).set(G0);
    c.get(SWAP).get(F0).i32(0).get(G0).op(I32_SUB).op(I32_XOR).op(I32_AND).set(TA);
    c.get(F0).get(TA).op(I32_XOR).op(F64_CONVERT_I32_S).set(A);
    c.i32(0).get(G0).op(I32_SUB).get(TA).op(I32_XOR).op(F64_CONVERT_I32_S).set(B);
    c.i32(0).get(F0).op(F64_CONVERT_I32_S).f64Store(at.f);
    // (f, g) for k <= min(p, 2p - 1 - loop)
    c.i32(p).i32(2 * p - 1).get(LOOP).op(I32_SUB).i32(p).i32(2 * p - 1).get(LOOP).op(I32_SUB).op(I32_LT_S).op(SELECT);
    c.get(S).get(A).get(B).call(FG_PASS);
    // (v, r) from c = (min(loop, p) + 1) & ~1 down: one above the range is 0 in v and r while
    // loop < p, and beyond p otherwise.
    c.get(LOOP).i32(p).get(LOOP).i32(p).op(I32_LT_S).op(SELECT).i32(1).op(I32_ADD).i32(-2).op(I32_AND);
    c.get(S).get(A).get(B).call(VR_PASS);
    // v[0] = s r[0] (v[-1] is 0), r[0] = freezeQ(a r[0])
    c.i32(0).f64Load(at.r).set(R0);
    c.i32(0).get(S).get(R0).op(F64_MUL).f64Store(at.v);
    c.i32(0).get(A).get(R0).op(F64_MUL);
    emitFreezeQ(c, X);
    c.f64Store(at.r);
    c.get(LOOP).i32(1).op(I32_ADD).tee(LOOP).i32(2 * p - 1).op(I32_LT_S).brIf(0);
  }
  c.end();
  // scale = f[0]^(q - 2), square and multiply over the public exponent's bits (unrolled here).
  c.i32(0).f64Load(at.f).set(A);
  c.f64(1).set(AI);
  for (let bit = 12; bit >= 0; bit--) {
    c.get(AI).get(AI).op(F64_MUL);
    emitFreezeQ(c, X);
    c.set(AI);
    if (((q - 2) >> bit) & 1) {
      c.get(AI).get(A).op(F64_MUL);
      emitFreezeQ(c, X);
      c.set(AI);
    }
  }
  c.get(AI).set(SCALE);
  // out[i] = freezeQ(scale * v[p - 1 - i])
  c.i32(0).set(ADDR).loop();
  c.get(ADDR).i32(4).op(I32_MUL);
  c.get(SCALE).i32(8 * (p - 1)).get(ADDR).i32(8).op(I32_MUL).op(I32_SUB).f64Load(at.v).op(F64_MUL);
  emitFreezeQ(c, X);
  c.op(I32_TRUNC_F64_S).i32Store(at.out);
  c.get(ADDR).i32(1).op(I32_ADD).tee(ADDR).i32(p).op(I32_LT_S).brIf(0).end();
  return [{ name: "rqRecip3", params: [], results: [], locals: [[10, I32], [7, F64]], code: c }, ...passFunctions(at)];
}

/** Byte addresses of the products' operands (i32, 768 each, zero beyond p), result and scratch. */
export interface ProductLayout {
  readonly a: number;
  readonly b: number;
  /** 2 * 768 i32. */
  readonly product: number;
  /** 4 * 768 i32 of Karatsuba scratch. */
  readonly tmp: number;
  /** SCHOOLBOOK + 6 i32: zero outside [3, SCHOOLBOOK + 3). */
  readonly pad: number;
  /** p i32 results. */
  readonly out: number;
}

/** Operand length: p padded to 48 * 2^4, so that Karatsuba halves it four times. */
export const PADDED = 768;
const SCHOOLBOOK = 48;

/**
 * The products: h = f * g in Z[x]/(x^p - x - 1), each coefficient then reduced mod q (`mulQ`) or
 * mod 3 (`mul3`). Karatsuba down to 48 coefficients, then a schoolbook four rows of a at a time.
 *
 * All in i32 arithmetic, which is exact without any bound on the intermediate sums: i32.add, sub
 * and mul compute in Z/2^32, so the wrapped result is the true one mod 2^32, and the true
 * coefficients after the reduction by x^p = x + 1 are under 3 * p * (q-1)/2 < 2^23 in absolute
 * value (f in Rq, g small), so the i32 value is the integer itself. mod q goes through f64 (exact
 * conversions both ways) with `freezeQ`'s operations; mod 3 is `freeze3`'s integer form, its
 * product x * 10923 under 2^31 for the |x| < 3p of R3 products.
 *
 * `functions[k]` are given the indices `first + k` (the calls between them need them).
 */
export function productFunctions(at: ProductLayout, first: number): WasmFunction[] {
  const SB = first, KA = first + 1;
  // schoolbook(a, b, n, out): out[0 .. 2n) = a[0 .. n) * b[0 .. n), byte addresses; n % 4 = 0.
  const sb = new Code();
  {
    const A_ = 0, B_ = 1, N = 2, O = 3, J = 4, I = 5, OI = 6, A0 = 7, A1 = 8, A2 = 9, A3 = 10, B0 = 11, B1 = 12, B2 = 13, B3 = 14, END = 15;
    const c = sb;
    // out = 0 over 2n; pad[3 + j] = b[j]
    c.get(N).i32(8).op(I32_MUL).set(END);
    c.i32(0).set(J).loop().get(O).get(J).op(I32_ADD).i32(0).i32Store();
    c.get(J).i32(4).op(I32_ADD).tee(J).get(END).op(I32_LT_S).brIf(0).end();
    c.get(N).i32(4).op(I32_MUL).set(END);
    c.i32(0).set(J).loop().get(J).get(B_).get(J).op(I32_ADD).i32Load().i32Store(at.pad + 12);
    c.get(J).i32(4).op(I32_ADD).tee(J).get(END).op(I32_LT_S).brIf(0).end();
    c.i32(0).set(I).loop();
    {
      c.get(A_).get(I).op(I32_ADD).tee(OI).i32Load(0).set(A0);
      c.get(OI).i32Load(4).set(A1).get(OI).i32Load(8).set(A2).get(OI).i32Load(12).set(A3);
      c.i32(0).set(B1).i32(0).set(B2).i32(0).set(B3);
      c.get(O).get(I).op(I32_ADD).set(OI);
      c.get(N).i32(4).op(I32_MUL).i32(12).op(I32_ADD).set(END);
      c.i32(0).set(J).loop();
      c.get(J).i32Load(at.pad + 12).set(B0);
      // out[i + j] += a0 b0 + a1 b1 + a2 b2 + a3 b3
      c.get(OI).get(J).op(I32_ADD).get(OI).get(J).op(I32_ADD).i32Load();
      c.get(A0).get(B0).op(I32_MUL).op(I32_ADD).get(A1).get(B1).op(I32_MUL).op(I32_ADD);
      c.get(A2).get(B2).op(I32_MUL).op(I32_ADD).get(A3).get(B3).op(I32_MUL).op(I32_ADD).i32Store();
      c.get(B2).set(B3).get(B1).set(B2).get(B0).set(B1);
      c.get(J).i32(4).op(I32_ADD).tee(J).get(END).op(I32_LT_S).brIf(0).end();
      c.get(I).i32(16).op(I32_ADD).tee(I).get(N).i32(4).op(I32_MUL).op(I32_LT_S).brIf(0);
    }
    c.end();
  }
  // karatsuba(a, b, n, out, tmp): out[0 .. 2n) = a * b; tmp is scratch (2n here, under 4n in all).
  const ka = new Code();
  {
    const A_ = 0, B_ = 1, N = 2, O = 3, T = 4, H = 5, H4 = 6, I = 7, MID = 8, DEEP = 9;
    const c = ka;
    c.get(N).i32(SCHOOLBOOK).op(I32_LE_S).if();
    c.get(A_).get(B_).get(N).get(O).call(SB);
    c.else();
    c.get(N).i32(1).op(I32_SHR_S).set(H);
    c.get(H).i32(4).op(I32_MUL).set(H4);
    c.get(T).get(H4).i32(4).op(I32_MUL).op(I32_ADD).set(DEEP);
    c.get(A_).get(B_).get(H).get(O).get(DEEP).call(KA);
    c.get(A_).get(H4).op(I32_ADD).get(B_).get(H4).op(I32_ADD).get(H).get(O).get(H4).i32(2).op(I32_MUL).op(I32_ADD).get(DEEP).call(KA);
    // tmp[i] = a[i] + a[h + i], tmp[h + i] = b[i] + b[h + i]
    c.i32(0).set(I).loop();
    c.get(T).get(I).op(I32_ADD).get(A_).get(I).op(I32_ADD).i32Load().get(A_).get(H4).op(I32_ADD).get(I).op(I32_ADD).i32Load().op(I32_ADD).i32Store();
    c.get(T).get(H4).op(I32_ADD).get(I).op(I32_ADD);
    c.get(B_).get(I).op(I32_ADD).i32Load().get(B_).get(H4).op(I32_ADD).get(I).op(I32_ADD).i32Load().op(I32_ADD).i32Store();
    c.get(I).i32(4).op(I32_ADD).tee(I).get(H4).op(I32_LT_S).brIf(0).end();
    c.get(T).get(H4).i32(2).op(I32_MUL).op(I32_ADD).set(MID);
    c.get(T).get(T).get(H4).op(I32_ADD).get(H).get(MID).get(DEEP).call(KA);
    // mid -= out[0 .. 2h) + out[2h .. 4h); out[h ..] += mid
    c.i32(0).set(I).loop();
    c.get(MID).get(I).op(I32_ADD).get(MID).get(I).op(I32_ADD).i32Load();
    c.get(O).get(I).op(I32_ADD).i32Load().op(I32_SUB).get(O).get(H4).i32(2).op(I32_MUL).op(I32_ADD).get(I).op(I32_ADD).i32Load().op(I32_SUB).i32Store();
    c.get(I).i32(4).op(I32_ADD).tee(I).get(H4).i32(2).op(I32_MUL).op(I32_LT_S).brIf(0).end();
    c.i32(0).set(I).loop();
    c.get(O).get(H4).op(I32_ADD).get(I).op(I32_ADD).get(O).get(H4).op(I32_ADD).get(I).op(I32_ADD).i32Load();
    c.get(MID).get(I).op(I32_ADD).i32Load().op(I32_ADD).i32Store();
    c.get(I).i32(4).op(I32_ADD).tee(I).get(H4).i32(2).op(I32_MUL).op(I32_LT_S).brIf(0).end();
    c.end();
  }
  const ring = (mod3: boolean): Code => {
    const K = 0, X = 1, XF = 2;
    const c = new Code();
    c.i32(at.a).i32(at.b).i32(PADDED).i32(at.product).i32(at.tmp).call(KA);
    // x^p = x + 1: h[i - p] += h[i], h[i - p + 1] += h[i] for i = 2p - 2 down to p (K = 4 (i - p))
    c.i32(4 * (p - 2)).set(K).loop();
    c.get(K).get(K).i32Load(at.product).get(K).i32Load(at.product + 4 * p).op(I32_ADD).i32Store(at.product);
    c.get(K).get(K).i32Load(at.product + 4).get(K).i32Load(at.product + 4 * p).op(I32_ADD).i32Store(at.product + 4);
    c.get(K).i32(4).op(I32_SUB).tee(K).i32(0).op(I32_GE_S).brIf(0).end();
    c.i32(0).set(K).loop();
    c.get(K).get(K).i32Load(at.product);
    if (mod3) {
      // x - 3 ((x * 10923 + 16384) >> 15)
      c.tee(X).get(X).i32(10923).op(I32_MUL).i32(16384).op(I32_ADD).i32(15).op(I32_SHR_S).i32(3).op(I32_MUL).op(I32_SUB);
    } else {
      c.op(F64_CONVERT_I32_S);
      emitFreezeQ(c, XF);
      c.op(I32_TRUNC_F64_S);
    }
    c.i32Store(at.out);
    c.get(K).i32(4).op(I32_ADD).tee(K).i32(4 * p).op(I32_LT_S).brIf(0).end();
    return c;
  };
  return [
    { params: [I32, I32, I32, I32], results: [], locals: [[12, I32]], code: sb },
    { params: [I32, I32, I32, I32, I32], results: [], locals: [[5, I32]], code: ka },
    { name: "mulQ", params: [], results: [], locals: [[2, I32], [1, F64]], code: ring(false) },
    { name: "mul3", params: [], results: [], locals: [[2, I32], [1, F64]], code: ring(true) },
  ];
}
