/**
 * sntrup761 inversion in R3 = F3[x]/(x^p - x - 1) as WebAssembly (assembled by
 * `sntrup761_wasm.ts`), bit-sliced: a polynomial is two bit-planes over 32-bit words
 * (coefficient i in bit i % 32 of word i / 32), `nz` (the coefficient is nonzero) and `sg` (it is
 * -1; always within nz). The JavaScript it replaces is the test oracle
 * (test/conch/ssh/_transport/_sntrup761_reference.ts); the kernel does the same i32 operations.
 *
 * In this representation, with masks broadcast from the scalar:
 * - a + b: x = an ^ bn, y = an & bn, o = as | bs; nz = x | (y & ~(as ^ bs)), sg = (x & o) | (y & ~o)
 *   (one nonzero term keeps its sign; two equal ones give the opposite sign; opposite ones cancel);
 * - c * a for a scalar c: nz = an & cnz, sg = (as ^ cs) & nz;
 * so each divstep is a fixed number of i32 and, or, xor and shifts per word, and no coefficient is
 * ever read on its own except bit 0 (f0, g0), which every step reads. Constant time: those are
 * the only operations on secrets; addresses and the `br_if`/`select` conditions come from the step
 * counter and the public parameters only.
 */
import { Code, I32, I32_ADD, I32_AND, I32_LE_S, I32_LT_S, I32_MUL, I32_OR, I32_SHL, I32_SHR_S, I32_SHR_U, I32_SUB, I32_XOR, SELECT } from "./wasm.js";
import type { WasmFunction } from "./wasm.js";
import { P } from "./sntrup761_rq.js";

/** Bytes between planes: 25 words hold p + 1 = 762 coefficients and one zero word after them. */
const PLANE = 128;
// Planes from the layout's base: f, g, v, r, each nz then sg.
const FN = 0, FS = PLANE, GN = 2 * PLANE, GS = 3 * PLANE, VN = 4 * PLANE, VS = 5 * PLANE, RN = 6 * PLANE, RS = 7 * PLANE;

/** Byte addresses in the kernels' memory. */
export interface R3Layout {
  /** p input coefficients, int8. */
  readonly input: number;
  /** p output coefficients, int8. */
  readonly out: number;
  /** 8 * 128 bytes of bit-planes. */
  readonly planes: number;
}

/**
 * swapAndAdd(base, last, swap, cn, cs): over the words 0..last of the planes (an, as, bn, bs) at
 * base, base + 128, + 256, + 384: swap a and b where `swap` (a mask, -1 or 0) is set, then
 * b <- b + c * a, the scalar c given as the masks (cn, cs).
 */
function swapAndAddFunction(): WasmFunction {
  const BASE = 0, LAST = 1, SWAP = 2, CN = 3, CS = 4;
  const K = 5, END = 6, A0 = 7, A1 = 8, B0 = 9, B1 = 10, T = 11, YN = 12, YS = 13, X = 14, Y = 15, O = 16;
  const c = new Code();
  c.get(BASE).set(K);
  c.get(BASE).get(LAST).i32(4).op(I32_MUL).op(I32_ADD).set(END);
  c.loop();
  c.get(K).i32Load(FN).set(A0).get(K).i32Load(FS).set(A1).get(K).i32Load(GN).set(B0).get(K).i32Load(GS).set(B1);
  c.get(SWAP).get(A0).get(B0).op(I32_XOR).op(I32_AND).set(T);
  c.get(A0).get(T).op(I32_XOR).set(A0).get(B0).get(T).op(I32_XOR).set(B0);
  c.get(SWAP).get(A1).get(B1).op(I32_XOR).op(I32_AND).set(T);
  c.get(A1).get(T).op(I32_XOR).set(A1).get(B1).get(T).op(I32_XOR).set(B1);
  c.get(K).get(A0).i32Store(FN).get(K).get(A1).i32Store(FS);
  c.get(A0).get(CN).op(I32_AND).set(YN);
  c.get(A1).get(CS).op(I32_XOR).get(YN).op(I32_AND).set(YS);
  c.get(B0).get(YN).op(I32_XOR).set(X);
  c.get(B0).get(YN).op(I32_AND).set(Y);
  c.get(B1).get(YS).op(I32_OR).set(O);
  // bn = x | (y & ~(b1 ^ ys)), bs = (x & o) | (y & ~o); ~z is z ^ -1
  c.get(K).get(X).get(Y).get(B1).get(YS).op(I32_XOR).i32(-1).op(I32_XOR).op(I32_AND).op(I32_OR).i32Store(GN);
  c.get(K).get(X).get(O).op(I32_AND).get(Y).get(O).i32(-1).op(I32_XOR).op(I32_AND).op(I32_OR).i32Store(GS);
  c.get(K).i32(4).op(I32_ADD).tee(K).get(END).op(I32_LE_S).brIf(0).end();
  return { params: [I32, I32, I32, I32, I32], results: [], locals: [[12, I32]], code: c };
}

/**
 * shiftUp(base, last): x * a over words last .. 0 of the planes at base and base + 128 (each word
 * takes the top bit of the one below); shiftDown(base, last): a / x over words 0 .. last (each
 * word takes the bottom bit of the one above).
 */
function shiftFunctions(): WasmFunction[] {
  const BASE = 0, LAST = 1, K = 2, END = 3;
  const up = new Code();
  up.get(BASE).get(LAST).i32(4).op(I32_MUL).op(I32_ADD).set(K);
  up.block().loop();
  up.get(K).get(BASE).op(I32_LE_S).brIf(1);
  for (const plane of [0, PLANE]) {
    up.get(K).get(K).i32Load(plane).i32(1).op(I32_SHL).get(K).i32(4).op(I32_SUB).i32Load(plane).i32(31).op(I32_SHR_U).op(I32_OR).i32Store(plane);
  }
  up.get(K).i32(4).op(I32_SUB).set(K).br(0);
  up.end().end();
  for (const plane of [0, PLANE]) up.get(BASE).get(BASE).i32Load(plane).i32(1).op(I32_SHL).i32Store(plane);
  const down = new Code();
  down.get(BASE).set(K).get(BASE).get(LAST).i32(4).op(I32_MUL).op(I32_ADD).set(END);
  down.loop();
  for (const plane of [0, PLANE]) {
    down.get(K).get(K).i32Load(plane).i32(1).op(I32_SHR_U).get(K).i32Load(plane + 4).i32(31).op(I32_SHL).op(I32_OR).i32Store(plane);
  }
  down.get(K).i32(4).op(I32_ADD).tee(K).get(END).op(I32_LE_S).brIf(0).end();
  return [
    { params: [I32, I32], results: [], locals: [[1, I32]], code: up },
    { params: [I32, I32], results: [], locals: [[2, I32]], code: down },
  ];
}

/**
 * r3Recip() -> mask: out = 1/in in R3 by the reference's constant-time extended GCD: 2p - 1
 * divsteps on f = x^p - x - 1 and g = in, both reversed; the mask is 0 when the inverse exists
 * and -1 otherwise (then out is junk).
 *
 * Each step: v <- x * v; swap (f, g) and (v, r) when delta > 0 and g0 != 0 (a mask on every
 * word); with c = -f0 * g0, g <- (g + c * f) / x and r <- r + c * v. The passes run over word
 * ranges fixed by the step counter alone, as the Rq inversion argues: (f, g) matter only up to
 * index 2p - 1 - loop, and (v, r) are zero above index `loop`. Bits beyond those bounds (in the
 * last word of a range, or shifted in from the next word) are stale or junk that can never move
 * down into a position that matters: indices only ever shift down in g by one per step, as fast
 * as the bound falls, and only ever up in v.
 *
 * `swapAndAdd`, `shiftUp` and `shiftDown` are given the indices `first + 1` to `first + 3`: the
 * word loops are functions of their own so that only they, small and quick to compile, run long
 * enough for V8 to tier them up.
 */
export function r3RecipFunctions(at: R3Layout, first: number): WasmFunction[] {
  const SWAP_AND_ADD = first + 1, SHIFT_UP = first + 2, SHIFT_DOWN = first + 3;
  const LOOP = 0, DELTA = 1, I = 2, J = 3, K = 4, LASTV = 5, LASTF = 6, SWAP = 7, F0N = 8, F0S = 9, G0N = 10, G0S = 11, CN = 12, CS = 13, NZ = 14;
  const base = at.planes;
  const c = new Code();
  // All planes zero, then f = x^p - x - 1 reversed: coefficient 0 is 1, p - 1 and p are -1.
  c.i32(0).set(K).loop().get(K).i32(0).i32Store(base);
  c.get(K).i32(4).op(I32_ADD).tee(K).i32(8 * PLANE).op(I32_LT_S).brIf(0).end();
  c.i32(0).i32(1).i32Store(base + FN);
  c.i32(0).i32(3 << 24).i32Store(base + FN + 4 * ((P - 1) >> 5)); // bits 760 and 761 are 24, 25 of word 23
  c.i32(0).i32(3 << 24).i32Store(base + FS + 4 * ((P - 1) >> 5));
  // g = in reversed: coefficient j = p - 1 - i, word j >> 5, bit j & 31 (i32.shl takes it mod 32)
  c.i32(0).set(I).loop();
  c.i32(P - 1).get(I).op(I32_SUB).set(J);
  c.get(J).i32(5).op(I32_SHR_U).i32(4).op(I32_MUL).set(K);
  c.get(K).get(K).i32Load(base + GN).get(I).i32Load8S(at.input).i32(1).op(I32_AND).get(J).op(I32_SHL).op(I32_OR).i32Store(base + GN);
  c.get(K).get(K).i32Load(base + GS).get(I).i32Load8S(at.input).i32(31).op(I32_SHR_U).get(J).op(I32_SHL).op(I32_OR).i32Store(base + GS);
  c.get(I).i32(1).op(I32_ADD).tee(I).i32(P).op(I32_LT_S).brIf(0).end();
  c.i32(0).i32(1).i32Store(base + RN);
  c.i32(1).set(DELTA);

  c.i32(0).set(LOOP).loop();
  {
    // v <- x * v over words lastV .. 0, lastV = min(loop, p) >> 5
    c.get(LOOP).i32(P).get(LOOP).i32(P).op(I32_LT_S).op(SELECT).i32(5).op(I32_SHR_U).set(LASTV);
    c.i32(base + VN).get(LASTV).call(SHIFT_UP);

    c.i32(0).i32Load(base + FN).i32(1).op(I32_AND).set(F0N);
    c.i32(0).i32Load(base + FS).i32(1).op(I32_AND).set(F0S);
    c.i32(0).i32Load(base + GN).i32(1).op(I32_AND).set(G0N);
    c.i32(0).i32Load(base + GS).i32(1).op(I32_AND).set(G0S);
    // swap = ((0 - delta) >> 31) & (0 - g0n): -1 when delta > 0 and g0 != 0; delta = (swap ? -delta : delta) + 1
    c.i32(0).get(DELTA).op(I32_SUB).i32(31).op(I32_SHR_S).i32(0).get(G0N).op(I32_SUB).op(I32_AND).set(SWAP);
    c.get(DELTA).get(SWAP).get(DELTA).i32(0).get(DELTA).op(I32_SUB).op(I32_XOR).op(I32_AND).op(I32_XOR);
    c.i32(1).op(I32_ADD).set(DELTA);
    // c = -f0 * g0, the same before and after the swap: cn = -(f0n & g0n), cs = -((f0s ^ g0s ^ 1) & f0n & g0n)
    c.i32(0).get(F0N).get(G0N).op(I32_AND).op(I32_SUB).set(CN);
    c.i32(0).get(F0S).get(G0S).op(I32_XOR).i32(1).op(I32_XOR).get(F0N).op(I32_AND).get(G0N).op(I32_AND).op(I32_SUB).set(CS);

    // lastF = min(p, 2p - 1 - loop) >> 5
    c.i32(P).i32(2 * P - 1).get(LOOP).op(I32_SUB).i32(P).i32(2 * P - 1).get(LOOP).op(I32_SUB).op(I32_LT_S).op(SELECT);
    c.i32(5).op(I32_SHR_U).set(LASTF);
    c.i32(base + FN).get(LASTF).get(SWAP).get(CN).get(CS).call(SWAP_AND_ADD);
    // g <- g / x over words 0 .. lastF
    c.i32(base + GN).get(LASTF).call(SHIFT_DOWN);
    c.i32(base + VN).get(LASTV).get(SWAP).get(CN).get(CS).call(SWAP_AND_ADD);

    c.get(LOOP).i32(1).op(I32_ADD).tee(LOOP).i32(2 * P - 1).op(I32_LT_S).brIf(0);
  }
  c.end();
  // out = f0 * v, reversed (f0 is +-1 when the inverse exists): v's planes masked by f0's nz and
  // flipped by its sign, then read as nz - 2 * sg. F0N, F0S now hold keep and flip masks.
  c.i32(0).i32(0).i32Load(base + FN).i32(1).op(I32_AND).op(I32_SUB).set(F0N);
  c.i32(0).i32(0).i32Load(base + FS).i32(1).op(I32_AND).op(I32_SUB).set(F0S);
  c.i32(0).set(I).loop();
  c.i32(P - 1).get(I).op(I32_SUB).set(J);
  c.get(J).i32(5).op(I32_SHR_U).i32(4).op(I32_MUL).set(K);
  c.get(K).i32Load(base + VN).get(J).op(I32_SHR_U).get(F0N).op(I32_AND).i32(1).op(I32_AND).set(NZ);
  c.get(I);
  c.get(NZ).get(K).i32Load(base + VS).get(F0S).op(I32_XOR).get(J).op(I32_SHR_U).get(NZ).op(I32_AND).i32(2).op(I32_MUL).op(I32_SUB);
  c.i32Store8(at.out);
  c.get(I).i32(1).op(I32_ADD).tee(I).i32(P).op(I32_LT_S).brIf(0).end();
  // the mask: nonzeroMask(delta)
  c.get(DELTA).i32(0).get(DELTA).op(I32_SUB).op(I32_OR).i32(31).op(I32_SHR_S);
  return [{ name: "r3Recip", params: [], results: [I32], locals: [[15, I32]], code: c }, swapAndAddFunction(), ...shiftFunctions()];
}
