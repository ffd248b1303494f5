/**
 * Poly1305 one-time authenticator (RFC 8439 §2.5) for chacha20-poly1305@openssh.com.
 *
 * node:crypto has raw ChaCha20 but no Poly1305, and a Poly1305 in plain JavaScript (about
 * 250 MB/s here) would set the speed of the whole cipher. The block function here is a small
 * WebAssembly module, assembled below from its instructions (no build step, no binary blob):
 * 26-bit limbs with 64-bit products, as in poly1305-donna's 32-bit version. Key setup and the
 * final reduction are done in JavaScript once per message.
 */

// ---- a minimal WebAssembly assembler for the one function we need ----

function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

function sleb(n: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

function section(id: number, body: number[]): number[] {
  return [id, ...uleb(body.length), ...body];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): number[] {
  return [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
}

const I32 = 0x7f;
const I64 = 0x7e;
const op = {
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  end: [0x0b],
  br: (d: number) => [0x0c, ...uleb(d)],
  brIf: (d: number) => [0x0d, ...uleb(d)],
  get: (i: number) => [0x20, ...uleb(i)],
  set: (i: number) => [0x21, ...uleb(i)],
  i32const: (v: number) => [0x41, ...sleb(v)],
  i64const: (v: number) => [0x42, ...sleb(v)],
  i32eqz: [0x45],
  i32add: [0x6a],
  i32sub: [0x6b],
  i64add: [0x7c],
  i64mul: [0x7e],
  i64and: [0x83],
  i64or: [0x84],
  i64shrU: [0x88],
  i64ExtendI32U: [0xad],
  i64load: (offset: number) => [0x29, 3, ...uleb(offset)],
  i64load32u: (offset: number) => [0x35, 0, ...uleb(offset)],
  i64store: (offset: number) => [0x37, 3, ...uleb(offset)],
};

// blocks(m, n, hibit, r0, r1, r2, r3, r4): absorbs n 16-byte blocks at m into the state h, kept
// as five i64 limbs at memory offset 0.
const P_M = 0, P_N = 1, P_HIBIT = 2, P_R = 3; // params (i32)
const L_R = 8, L_H = 13, L_S = 18, L_D = 22, L_C = 27, L_HI = 28; // locals (i64)
const S = (i: number) => L_S + i - 1; // s1..s4 = r1..r4 * 5
const MASK = 0x3ffffff;

function buildBlocks(): number[] {
  const c: number[] = [];
  const emit = (...parts: number[][]) => {
    for (const p of parts) c.push(...p);
  };
  for (let i = 0; i < 5; i++) emit(op.get(P_R + i), op.i64ExtendI32U, op.set(L_R + i));
  emit(op.get(P_HIBIT), op.i64ExtendI32U, op.set(L_HI));
  for (let i = 1; i < 5; i++) emit(op.get(L_R + i), op.i64const(5), op.i64mul, op.set(S(i)));
  for (let i = 0; i < 5; i++) emit(op.i32const(0), op.i64load(8 * i), op.set(L_H + i));
  emit(op.block, op.loop);
  emit(op.get(P_N), op.i32eqz, op.brIf(1));
  // h += m (26-bit limbs from unaligned 32-bit loads at bytes 0, 3, 6, 9, 12)
  const limbs: Array<[number, number]> = [[0, 0], [3, 2], [6, 4], [9, 6], [12, 8]];
  limbs.forEach(([off, shift], i) => {
    emit(op.get(L_H + i), op.get(P_M), op.i64load32u(off));
    if (shift) emit(op.i64const(shift), op.i64shrU);
    if (i < 4) emit(op.i64const(MASK), op.i64and);
    else emit(op.get(L_HI), op.i64or);
    emit(op.i64add, op.set(L_H + i));
  });
  // d = h * r mod (2^130 - 5), limb products
  const rOrS = (hIdx: number, dIdx: number): number => {
    const k = dIdx - hIdx;
    return k >= 0 ? L_R + k : S(k + 5);
  };
  for (let d = 0; d < 5; d++) {
    for (let h = 0; h < 5; h++) {
      emit(op.get(L_H + h), op.get(rOrS(h, d)), op.i64mul);
      if (h > 0) emit(op.i64add);
    }
    emit(op.set(L_D + d));
  }
  // carry propagation
  for (let d = 0; d < 5; d++) {
    if (d > 0) emit(op.get(L_D + d), op.get(L_C), op.i64add, op.set(L_D + d));
    emit(op.get(L_D + d), op.i64const(26), op.i64shrU, op.set(L_C));
    emit(op.get(L_D + d), op.i64const(MASK), op.i64and, op.set(L_H + d));
  }
  emit(op.get(L_H), op.get(L_C), op.i64const(5), op.i64mul, op.i64add, op.set(L_H));
  emit(op.get(L_H), op.i64const(26), op.i64shrU, op.set(L_C));
  emit(op.get(L_H), op.i64const(MASK), op.i64and, op.set(L_H));
  emit(op.get(L_H + 1), op.get(L_C), op.i64add, op.set(L_H + 1));
  // next block
  emit(op.get(P_M), op.i32const(16), op.i32add, op.set(P_M));
  emit(op.get(P_N), op.i32const(1), op.i32sub, op.set(P_N));
  emit(op.br(0), op.end, op.end);
  for (let i = 0; i < 5; i++) emit(op.i32const(0), op.get(L_H + i), op.i64store(8 * i));
  emit(op.end);
  const locals = vec([[21, I64]]); // locals 8..28
  const body = [...locals, ...c];
  return [...uleb(body.length), ...body];
}

function buildModule(): Uint8Array {
  const bytes = [
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec([[0x60, ...vec([[I32], [I32], [I32], [I32], [I32], [I32], [I32], [I32]]), 0]])),
    ...section(3, vec([[0]])),
    ...section(5, vec([[0x00, ...uleb(2)]])),
    ...section(7, vec([[...name("blocks"), 0x00, 0], [...name("mem"), 0x02, 0]])),
    ...section(10, vec([buildBlocks()])),
  ];
  return Uint8Array.from(bytes);
}

interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}

interface PolyExports {
  blocks(m: number, n: number, hibit: number, r0: number, r1: number, r2: number, r3: number, r4: number): void;
  mem: WasmMemory;
}

/** The WebAssembly global (the project's `lib` setting leaves out its type declarations). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}

const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
const wasm = new WA.Instance(new WA.Module(buildModule())).exports as PolyExports;
const MSG = 128; // message area offset; [0, 40) state, [64, 80) the last partial block
let mem = new Uint8Array(wasm.mem.buffer);
let memView = new DataView(wasm.mem.buffer);

function ensure(size: number): void {
  if (MSG + size <= mem.length) return;
  wasm.mem.grow(Math.ceil((MSG + size - mem.length) / 65536));
  mem = new Uint8Array(wasm.mem.buffer);
  memView = new DataView(wasm.mem.buffer);
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
  ensure(len);
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
