/**
 * Poly1305 one-time authenticator (RFC 8439 §2.5) for chacha20-poly1305@openssh.com.
 *
 * node:crypto has raw ChaCha20 but no Poly1305, and a Poly1305 in plain JavaScript (about
 * 250 MB/s here) would set the speed of the whole cipher. The block function here is a small
 * WebAssembly module, assembled below from its instructions (no build step, no binary blob):
 * 26-bit limbs with 64-bit products, as in poly1305-donna's 32-bit version. Key setup and the
 * final reduction are done in JavaScript once per message.
 */

import { Code, I64, I32, I64_ADD, I64_AND, I64_MUL, I64_OR, I64_SHR_U, I64_EXTEND_I32_U, I32_ADD, I32_EQZ, I32_SUB, assemble, instantiate } from "./wasm.js";
import type { WasmMemory } from "./wasm.js";

// blocks(m, n, hibit, r0, r1, r2, r3, r4): absorbs n 16-byte blocks at m into the state h, kept
// as five i64 limbs at memory offset 0.
const P_M = 0, P_N = 1, P_HIBIT = 2, P_R = 3; // params (i32)
const L_R = 8, L_H = 13, L_S = 18, L_D = 22, L_C = 27, L_HI = 28; // locals (i64)
const S = (i: number) => L_S + i - 1; // s1..s4 = r1..r4 * 5
const MASK = 0x3ffffff;

function buildBlocks(): Code {
  const c = new Code();
  for (let i = 0; i < 5; i++) c.get(P_R + i).op(I64_EXTEND_I32_U).set(L_R + i);
  c.get(P_HIBIT).op(I64_EXTEND_I32_U).set(L_HI);
  for (let i = 1; i < 5; i++) c.get(L_R + i).i64(5).op(I64_MUL).set(S(i));
  for (let i = 0; i < 5; i++) c.i32(0).i64Load(8 * i).set(L_H + i);
  c.block().loop();
  c.get(P_N).op(I32_EQZ).brIf(1);
  // h += m (26-bit limbs from unaligned 32-bit loads at bytes 0, 3, 6, 9, 12)
  const limbs: Array<[number, number]> = [[0, 0], [3, 2], [6, 4], [9, 6], [12, 8]];
  limbs.forEach(([off, shift], i) => {
    c.get(L_H + i).get(P_M).i64Load32U(off, 0);
    if (shift) c.i64(shift).op(I64_SHR_U);
    if (i < 4) c.i64(MASK).op(I64_AND);
    else c.get(L_HI).op(I64_OR);
    c.op(I64_ADD).set(L_H + i);
  });
  // d = h * r mod (2^130 - 5), limb products
  const rOrS = (hIdx: number, dIdx: number): number => {
    const k = dIdx - hIdx;
    return k >= 0 ? L_R + k : S(k + 5);
  };
  for (let d = 0; d < 5; d++) {
    for (let h = 0; h < 5; h++) {
      c.get(L_H + h).get(rOrS(h, d)).op(I64_MUL);
      if (h > 0) c.op(I64_ADD);
    }
    c.set(L_D + d);
  }
  // carry propagation
  for (let d = 0; d < 5; d++) {
    if (d > 0) c.get(L_D + d).get(L_C).op(I64_ADD).set(L_D + d);
    c.get(L_D + d).i64(26).op(I64_SHR_U).set(L_C);
    c.get(L_D + d).i64(MASK).op(I64_AND).set(L_H + d);
  }
  c.get(L_H).get(L_C).i64(5).op(I64_MUL).op(I64_ADD).set(L_H);
  c.get(L_H).i64(26).op(I64_SHR_U).set(L_C);
  c.get(L_H).i64(MASK).op(I64_AND).set(L_H);
  c.get(L_H + 1).get(L_C).op(I64_ADD).set(L_H + 1);
  // next block
  c.get(P_M).i32(16).op(I32_ADD).set(P_M);
  c.get(P_N).i32(1).op(I32_SUB).set(P_N);
  c.br(0).end().end();
  for (let i = 0; i < 5; i++) c.i32(0).get(L_H + i).i64Store(8 * i);
  return c;
}

/** The module's bytes: `blocks` and its memory (two pages), exported as "blocks" and "mem". */
export function poly1305Module(): Uint8Array {
  const params = [I32, I32, I32, I32, I32, I32, I32, I32];
  return assemble([{ name: "blocks", params, results: [], locals: [[21, I64]], code: buildBlocks() }], 2); // locals 8..28
}

interface PolyExports {
  blocks(m: number, n: number, hibit: number, r0: number, r1: number, r2: number, r3: number, r4: number): void;
  mem: WasmMemory;
}

const MSG = 128; // message area offset; [0, 40) state, [64, 80) the last partial block

/** The instance and views of its memory (replaced when the memory grows). */
interface Poly {
  readonly x: PolyExports;
  mem: Uint8Array;
  view: DataView;
}

// The one instance, made on the first chacha20-poly1305 key rather than at import (importing the
// transport then costs nothing for it, and works without WebAssembly): module state by necessity,
// as instantiating per message would cost more than the arithmetic.
let instance: Poly | undefined;

/** The instance, with room for `size` bytes of message. */
function polyWith(size: number): Poly {
  if (instance === undefined) {
    const x = instantiate<PolyExports>(poly1305Module(), "Poly1305 (chacha20-poly1305@openssh.com)");
    instance = { x, mem: new Uint8Array(x.mem.buffer), view: new DataView(x.mem.buffer) };
  }
  const p = instance;
  if (MSG + size > p.mem.length) {
    p.x.mem.grow(Math.ceil((MSG + size - p.mem.length) / 65536));
    p.mem = new Uint8Array(p.x.mem.buffer);
    p.view = new DataView(p.x.mem.buffer);
  }
  return p;
}

/** Instantiates Poly1305 now (a chacha20-poly1305 key does, so a runtime without WebAssembly fails at key setup). */
export function poly1305Ready(): void {
  polyWith(0);
}

function le32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}

/** Writes the 16-byte tag of `data` under the 32-byte one-time `key` into `out` at `offset`. */
export function poly1305Into(key: Uint8Array, data: Uint8Array, out: Uint8Array, offset: number): void {
  poly1305PartsInto(key, [data], out, offset);
}

/**
 * Writes the 16-byte tag of the concatenation of `parts` under `key` into `out` at `offset`. The
 * block function reads WebAssembly memory, so each part is copied there once, end to end; the
 * caller need not join them first (a sealed packet's pieces stay as the cipher returned them).
 */
export function poly1305PartsInto(key: Uint8Array, parts: readonly Uint8Array[], out: Uint8Array, offset: number): void {
  // r, clamped, in 26-bit limbs
  const r0 = le32(key, 0) & 0x3ffffff;
  const r1 = (le32(key, 3) >>> 2) & 0x3ffff03;
  const r2 = (le32(key, 6) >>> 4) & 0x3ffc0ff;
  const r3 = (le32(key, 9) >>> 6) & 0x3f03fff;
  const r4 = (le32(key, 12) >>> 8) & 0x00fffff;
  let len = 0;
  for (const p of parts) len += p.length;
  const { x: wasm, mem, view: memView } = polyWith(len);
  let at = MSG;
  for (const p of parts) {
    mem.set(p, at);
    at += p.length;
  }
  mem.fill(0, 0, 40);
  const full = len >>> 4;
  if (full > 0) wasm.blocks(MSG, full, 1 << 24, r0, r1, r2, r3, r4);
  const rest = len & 15;
  if (rest > 0) {
    // The last partial block, padded with 1 then zeros (RFC 8439 §2.5.1).
    mem.copyWithin(64, MSG + (full << 4), MSG + len);
    mem.fill(0, 64 + rest, 80);
    mem[64 + rest] = 1;
    wasm.blocks(64, 1, 0, r0, r1, r2, r3, r4);
  }
  // Final reduction mod 2^130 - 5 (limbs are below 2^27 here).
  let h0 = memView.getUint32(0, true);
  let h1 = memView.getUint32(8, true);
  let h2 = memView.getUint32(16, true);
  let h3 = memView.getUint32(24, true);
  let h4 = memView.getUint32(32, true);
  let c = h1 >>> 26; h1 &= 0x3ffffff;
  h2 += c; c = h2 >>> 26; h2 &= 0x3ffffff;
  h3 += c; c = h3 >>> 26; h3 &= 0x3ffffff;
  h4 += c; c = h4 >>> 26; h4 &= 0x3ffffff;
  h0 += c * 5; c = h0 >>> 26; h0 &= 0x3ffffff;
  h1 += c;
  // g = h + 5 - 2^130; use it when it does not go negative (h >= p).
  let g0 = h0 + 5; c = g0 >>> 26; g0 &= 0x3ffffff;
  let g1 = h1 + c; c = g1 >>> 26; g1 &= 0x3ffffff;
  let g2 = h2 + c; c = g2 >>> 26; g2 &= 0x3ffffff;
  let g3 = h3 + c; c = g3 >>> 26; g3 &= 0x3ffffff;
  const g4 = h4 + c - (1 << 26);
  if (g4 >= 0) {
    h0 = g0; h1 = g1; h2 = g2; h3 = g3; h4 = g4;
  }
  // h mod 2^128 as four 32-bit words, plus s.
  const w0 = (h0 | (h1 << 26)) >>> 0;
  const w1 = ((h1 >>> 6) | (h2 << 20)) >>> 0;
  const w2 = ((h2 >>> 12) | (h3 << 14)) >>> 0;
  const w3 = ((h3 >>> 18) | (h4 << 8)) >>> 0;
  let f = w0 + le32(key, 16);
  writeLe32(out, offset, f);
  f = w1 + le32(key, 20) + (f > 0xffffffff ? 1 : 0);
  writeLe32(out, offset + 4, f);
  f = w2 + le32(key, 24) + (f > 0xffffffff ? 1 : 0);
  writeLe32(out, offset + 8, f);
  f = w3 + le32(key, 28) + (f > 0xffffffff ? 1 : 0);
  writeLe32(out, offset + 12, f);
}

function writeLe32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** The 16-byte tag of `data` under `key`. */
export function poly1305(key: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  poly1305Into(key, data, out, 0);
  return out;
}
