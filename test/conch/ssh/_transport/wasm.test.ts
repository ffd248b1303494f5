/**
 * The transport's WebAssembly assembler: LEB128 at its edges, modules that validate, and
 * assembled code that runs as written (constants, locals, memory, structured control flow).
 */
import { test } from "node:test";
import assert from "node:assert/strict";

type Wasm = typeof import("../../../../packages/conch/dist/ssh/_transport/wasm.js");
type Poly = typeof import("../../../../packages/conch/dist/ssh/_transport/poly1305.js");
type Sntrup = typeof import("../../../../packages/conch/dist/ssh/_transport/sntrup761_wasm.js");
const conchRoot = import.meta.resolve("@twisted-ts/conch/package.json");
const load = async <T>(path: string): Promise<T> => (await import(new URL(`dist/ssh/_transport/${path}`, conchRoot).href)) as T;
const A = await load<Wasm>("wasm.js");
const { poly1305Module } = await load<Poly>("poly1305.js");
const { sntrup761Module } = await load<Sntrup>("sntrup761_wasm.js");

const hex = (w: InstanceType<Wasm["ByteWriter"]>): string => Buffer.from(w.bytes()).toString("hex");
const WA = (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly;

test("unsigned LEB128 encodes 0, 127, 128, 624485 and 2^32 - 1 as the specification's examples do", () => {
  const cases: Array<[number, string]> = [[0, "00"], [1, "01"], [127, "7f"], [128, "8001"], [16383, "ff7f"], [16384, "808001"], [624485, "e58e26"], [2 ** 32 - 1, "ffffffff0f"]];
  for (const [n, want] of cases) {
    const w = new A.ByteWriter();
    A.uleb(w, n);
    assert.equal(hex(w), want, String(n));
  }
});

test("signed LEB128 encodes the sign bit's edges (63, 64, -64, -65) and the int32 extremes", () => {
  const cases: Array<[number, string]> = [[0, "00"], [-1, "7f"], [63, "3f"], [64, "c000"], [-64, "40"], [-65, "bf7f"], [-123456, "c0bb78"], [2 ** 31 - 1, "ffffffff07"], [-(2 ** 31), "8080808078"]];
  for (const [n, want] of cases) {
    const w = new A.ByteWriter();
    A.sleb(w, n);
    assert.equal(hex(w), want, String(n));
  }
});

test("ByteWriter grows past its first buffer without losing bytes", () => {
  const w = new A.ByteWriter();
  for (let i = 0; i < 5000; i++) w.byte(i & 0xff);
  w.append(new Uint8Array(3000).fill(7));
  const b = w.bytes();
  assert.equal(b.length, 8000);
  assert.deepEqual([b[0], b[255], b[256], b[4999], b[5000], b[7999]], [0, 255, 0, 4999 & 0xff, 7, 7]);
});

test("the Poly1305 and sntrup761 modules validate", () => {
  assert.equal(WA.validate(poly1305Module()), true);
  assert.equal(WA.validate(sntrup761Module()), true);
  assert.equal(WA.validate(sntrup761Module().subarray(0, 100)), false);
});

test("an assembled function runs as written: a loop summing memory, f64 constants, calls and exports", () => {
  const c = new A.Code();
  // sum(n): i32 sum of the n i32 words at 0, by block/loop/br_if, plus f64 1.5 * 2 truncated (3)
  const N = 0, I = 1, S = 2;
  c.i32(0).set(I).i32(0).set(S).block().loop();
  c.get(I).get(N).op(A.I32_GE_S).brIf(1);
  c.get(S).get(I).i32(4).op(A.I32_MUL).i32Load().op(A.I32_ADD).set(S);
  c.get(I).i32(1).op(A.I32_ADD).set(I).br(0);
  c.end().end();
  c.get(S).f64(1.5).f64(2).op(A.F64_MUL).op(A.I32_TRUNC_F64_S).op(A.I32_ADD);
  const twice = new A.Code().get(0).call(0).get(0).call(0).op(A.I32_ADD);
  const bytes = A.assemble(
    [
      { name: "sum", params: [A.I32], results: [A.I32], locals: [[2, A.I32]], code: c },
      { name: "twice", params: [A.I32], results: [A.I32], locals: [], code: twice },
    ],
    1,
  );
  assert.equal(WA.validate(bytes), true);
  const x = A.instantiate<{ sum(n: number): number; twice(n: number): number; mem: { buffer: ArrayBuffer } }>(bytes, "test");
  new Int32Array(x.mem.buffer).set([10, -20, 300, 4000, 50000]);
  assert.equal(x.sum(0), 3);
  assert.equal(x.sum(5), 10 - 20 + 300 + 4000 + 50000 + 3);
  assert.equal(x.twice(2), 2 * (10 - 20 + 3));
});

test("instantiate throws a typed error when the runtime has no WebAssembly", () => {
  const g = globalThis as { WebAssembly?: unknown };
  const saved = g.WebAssembly;
  g.WebAssembly = undefined;
  try {
    assert.throws(() => A.instantiate(poly1305Module(), "Poly1305"), (e: unknown) => e instanceof A.WebAssemblyUnavailableError && e.code === "ERR_WEBASSEMBLY_UNAVAILABLE" && /Poly1305 needs WebAssembly/.test(e.message));
  } finally {
    g.WebAssembly = saved;
  }
});
