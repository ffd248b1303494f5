/**
 * sntrup761's hot arithmetic as one WebAssembly module, assembled from `sntrup761_rq.ts`,
 * `sntrup761_r3.ts` and the sort below, instantiated once, on first use, synchronously. Internal
 * to `sntrup761.ts`.
 *
 * Why WebAssembly: a CLI run meets the key exchange cold, and V8 would interpret these loops (and
 * box their doubles) until TurboFan compiles them, over 100 ms of CPU for the first handshake.
 * V8's baseline WebAssembly compiler (Liftoff) compiles each function in one quick pass on its
 * first call, so the first key generation runs compiled code; functions that run long tier up to
 * TurboFan in the background (hence the small functions for the long loops).
 *
 * Without WebAssembly (`node --jitless`) the KEM functions throw `WebAssemblyUnavailableError`
 * (there is no second implementation to fall back on).
 */
import { Code, I32, I32_ADD, I32_AND, I32_EQZ, I32_LE_S, I32_LT_S, I32_MUL, I32_NE, I32_OR, I32_SHL, I32_SHR_U, I32_SUB, I32_WRAP_I64, I32_XOR, I64_EXTEND_I32_U, I64_SHR_S, I64_SUB, SELECT, assemble, instantiate } from "./wasm.js";
import type { WasmFunction, WasmMemory } from "./wasm.js";
import { P, W, PADDED, productFunctions, rqRecipFunctions } from "./sntrup761_rq.js";
import { r3RecipFunctions } from "./sntrup761_r3.js";

// Memory map (byte addresses, one 64 KiB page); kernels run one at a time, each from scratch.
const IN8 = 0; // p int8 inputs
const OUT8 = 1024; // p int8 outputs
const OUT32 = 2048; // p i32 outputs
const LIST = 5120; // p u32 random words
const SORT = 8192; // 1024 u32
const PLANES = 12288; // R3 inversion, 8 * 128 bytes
const F = 13312; // Rq inversion: f, g, v, r, p + 2 f64 each
const G = F + 6144;
const V = G + 6144;
const R = V + 6144;
const A = R + 6144; // product operands, 768 i32 each: never written beyond p, so zero there
const B = A + 4 * PADDED;
const PRODUCT = B + 4 * PADDED; // 1536 i32
const TMP = PRODUCT + 8 * PADDED; // 3072 i32
const PAD = TMP + 16 * PADDED; // 54 i32, never written outside [3, 51), so zero there

const SORT_N = 1024;

/**
 * shortFromList(): the short polynomial (exactly w nonzero coefficients in {-1, 1}) of the p
 * random words at LIST, into OUT8: L[i] = list[i] & ~1 for i < w, (list[i] & ~3) | 1 after,
 * sorted ascending as unsigned 32-bit values, then out[i] = (L[i] & 3) - 1.
 *
 * The sort is a bitonic network over 1024 slots (padding with 0xffffffff, above every real value
 * here): its shape depends only on the length, every `br_if` and `select` tests a public index
 * or the selection of words (before the sort: i < w), and each stage is `sortStage` (index
 * `first + 1`). Each compare-exchange takes its mask from the sign of b - a in i64 (both zero-extended,
 * so exact): i64.sub, i64.shr_s, then i32 xor/and, no comparison of data.
 */
function shortFromListFunctions(first: number): WasmFunction[] {
  const stage = first + 1;
  const I = 0, J = 1, K = 2;
  const c = new Code();
  c.i32(0).set(I).loop();
  c.get(I).get(I).i32Load(LIST).i32(-2).i32(-4).get(I).i32(4 * W).op(I32_LT_S).op(SELECT).op(I32_AND);
  c.i32(0).i32(1).get(I).i32(4 * W).op(I32_LT_S).op(SELECT).op(I32_OR).i32Store(SORT);
  c.get(I).i32(4).op(I32_ADD).tee(I).i32(4 * P).op(I32_LT_S).brIf(0).end();
  c.loop().get(I).i32(-1).i32Store(SORT);
  c.get(I).i32(4).op(I32_ADD).tee(I).i32(4 * SORT_N).op(I32_LT_S).brIf(0).end();
  c.i32(2).set(K).loop();
  c.get(K).i32(1).op(I32_SHR_U).set(J).loop();
  c.get(J).get(K).call(stage);
  c.get(J).i32(1).op(I32_SHR_U).tee(J).i32(0).op(I32_NE).brIf(0).end();
  c.get(K).i32(1).op(I32_SHL).tee(K).i32(SORT_N).op(I32_LE_S).brIf(0).end();
  c.i32(0).set(I).loop();
  c.get(I).get(I).i32(4).op(I32_MUL).i32Load(SORT).i32(3).op(I32_AND).i32(1).op(I32_SUB).i32Store8(OUT8);
  c.get(I).i32(1).op(I32_ADD).tee(I).i32(P).op(I32_LT_S).brIf(0).end();
  return [{ name: "shortFromList", params: [], results: [], locals: [[3, I32]], code: c }, sortStageFunction()];
}

/**
 * sortStage(j, k): one stage of the network, compare-exchanges of (i, i ^ j) for every i with
 * i & j = 0, ascending where i & k = 0 and descending elsewhere (a function of its own, so that
 * only it, small, runs long enough for V8 to tier it up).
 */
function sortStageFunction(): WasmFunction {
  const J = 0, K = 1, I = 2, LO = 3, HI = 4, X = 5, Y = 6, T = 7;
  const c = new Code();
  c.i32(0).set(I).loop();
  c.block();
  {
    c.get(I).get(J).op(I32_AND).brIf(0);
    c.get(I).get(I).get(J).op(I32_XOR).get(I).get(K).op(I32_AND).op(I32_EQZ).op(SELECT).set(LO);
    c.get(LO).get(J).op(I32_XOR).set(HI);
    c.get(LO).i32(4).op(I32_MUL).set(LO).get(HI).i32(4).op(I32_MUL).set(HI);
    c.get(LO).i32Load(SORT).set(X).get(HI).i32Load(SORT).set(Y);
    // t = (x ^ y) & (y < x ? -1 : 0), from the sign of the 64-bit y - x
    c.get(X).get(Y).op(I32_XOR);
    c.get(Y).op(I64_EXTEND_I32_U).get(X).op(I64_EXTEND_I32_U).op(I64_SUB).i64(63).op(I64_SHR_S).op(I32_WRAP_I64);
    c.op(I32_AND).set(T);
    c.get(LO).get(X).get(T).op(I32_XOR).i32Store(SORT);
    c.get(HI).get(Y).get(T).op(I32_XOR).i32Store(SORT);
  }
  c.end();
  c.get(I).i32(1).op(I32_ADD).tee(I).i32(SORT_N).op(I32_LT_S).brIf(0).end();
  return { params: [I32, I32], results: [], locals: [[6, I32]], code: c };
}

/**
 * smallFromList(): a small polynomial (coefficients in {-1, 0, 1}) from the p random words at
 * LIST, into OUT8: floor(3x / 2^30) - 1 for x = word & (2^30 - 1), in i32 arithmetic only: it is
 * 1 + 1 exactly when x >= ceil(2^30 / 3) and x >= ceil(2^31 / 3), each read off a sign bit.
 */
function smallFromListFunction(): WasmFunction {
  const I = 0, X = 1;
  const c = new Code();
  c.i32(0).set(I).loop();
  c.get(I).i32(4).op(I32_MUL).i32Load(LIST).i32(0x3fffffff).op(I32_AND).set(X);
  c.get(I).i32(357913941).get(X).op(I32_SUB).i32(31).op(I32_SHR_U);
  c.i32(715827882).get(X).op(I32_SUB).i32(31).op(I32_SHR_U).op(I32_ADD).i32(1).op(I32_SUB).i32Store8(OUT8);
  c.get(I).i32(1).op(I32_ADD).tee(I).i32(P).op(I32_LT_S).brIf(0).end();
  return { name: "smallFromList", params: [], results: [], locals: [[2, I32]], code: c };
}

/** The module's bytes (exported for the tests, which validate them). */
export function sntrup761Module(): Uint8Array {
  const functions: WasmFunction[] = [smallFromListFunction()];
  functions.push(...shortFromListFunctions(functions.length));
  functions.push(...rqRecipFunctions({ input: IN8, out: OUT32, f: F, g: G, v: V, r: R }, functions.length));
  functions.push(...r3RecipFunctions({ input: IN8, out: OUT8, planes: PLANES }, functions.length));
  functions.push(...productFunctions({ a: A, b: B, product: PRODUCT, tmp: TMP, pad: PAD, out: OUT32 }, functions.length));
  return assemble(functions, 1);
}

interface Exports {
  rqRecip3(): void;
  r3Recip(): number;
  mulQ(): void;
  mul3(): void;
  shortFromList(): void;
  smallFromList(): void;
  mem: WasmMemory;
}

interface Kernels {
  readonly x: Exports;
  readonly i8: Int8Array;
  readonly u8: Uint8Array;
  readonly i32: Int32Array;
}

// The one instance, made on first use (module state by necessity: instantiating per call would
// cost more than the arithmetic). The memory never grows, so the views stay valid.
let instance: Kernels | undefined;

function kernels(): Kernels {
  if (instance === undefined) {
    const x = instantiate<Exports>(sntrup761Module(), "sntrup761");
    const buffer = x.mem.buffer;
    instance = { x, i8: new Int8Array(buffer), u8: new Uint8Array(buffer), i32: new Int32Array(buffer) };
  }
  return instance;
}

/** 1/(3 * in) in Rq for a short `in`. */
export function rqRecip3(input: Int8Array): Int32Array {
  const k = kernels();
  k.i8.set(input, IN8);
  k.x.rqRecip3();
  return k.i32.slice(OUT32 >> 2, (OUT32 >> 2) + P);
}

/** 1/in in R3 and a mask, 0 when the inverse exists and -1 otherwise. */
export function r3Recip(input: Int8Array): { out: Int8Array; mask: number } {
  const k = kernels();
  k.i8.set(input, IN8);
  const mask = k.x.r3Recip();
  return { out: k.i8.slice(OUT8, OUT8 + P), mask };
}

/**
 * h = f * g in Z[x]/(x^p - x - 1), every coefficient then reduced mod q (`mod` 3: mod 3): f in Rq
 * or R3 (|f| <= (q-1)/2), g small.
 */
export function multiply(f: Int32Array | Int8Array, g: Int8Array, mod: 3 | "q"): Int32Array {
  const k = kernels();
  k.i32.set(f, A >> 2);
  k.i32.set(g, B >> 2);
  if (mod === 3) k.x.mul3();
  else k.x.mulQ();
  return k.i32.slice(OUT32 >> 2, (OUT32 >> 2) + P);
}

/** The short polynomial of 4p random bytes (p little-endian words), as the specification's ShortFromList. */
export function shortFromList(random: Uint8Array): Int8Array {
  const k = kernels();
  k.u8.set(random.subarray(0, 4 * P), LIST);
  k.x.shortFromList();
  return k.i8.slice(OUT8, OUT8 + P);
}

/** The small polynomial of 4p random bytes (p little-endian words), as the specification's Small_random. */
export function smallFromList(random: Uint8Array): Int8Array {
  const k = kernels();
  k.u8.set(random.subarray(0, 4 * P), LIST);
  k.x.smallFromList();
  return k.i8.slice(OUT8, OUT8 + P);
}
