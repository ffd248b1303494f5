/**
 * sntrup761's WebAssembly kernels and its encodings against the JavaScript they replaced
 * (_sntrup761_reference.ts), bit for bit, on many seeded random inputs and on the extremes: all-zero, all-one and all
 * largest coefficients, non-invertible R3 inputs, words at the sort's and Small_random's edges.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as ref from "./_sntrup761_reference.js";

// The kernels (an internal module, loaded from the built package as _load does).
type Kernels = typeof import("../../../../packages/conch/dist/ssh/_transport/sntrup761_wasm.js");
const conchRoot = import.meta.resolve("@twisted-ts/conch/package.json");
const K = (await import(new URL("dist/ssh/_transport/sntrup761_wasm.js", conchRoot).href)) as Kernels;
type Encoding = typeof import("../../../../packages/conch/dist/ssh/_transport/sntrup761_encoding.js");
const E = (await import(new URL("dist/ssh/_transport/sntrup761_encoding.js", conchRoot).href)) as Encoding;

const P = 761;
const Q12 = (4591 - 1) / 2;

/** A seeded xorshift32, so that a failure names an input that can be replayed. */
function rng(seed: number): () => number {
  let s = seed | 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return s >>> 0;
  };
}

function small(next: () => number, density: number): Int8Array {
  return Int8Array.from({ length: P }, () => (next() / 2 ** 32 < density ? ((next() & 1) === 0 ? 1 : -1) : 0));
}

/** Exactly 286 coefficients +-1 at random positions: what key generation inverts in Rq. */
function short(next: () => number): Int8Array {
  const f = new Int8Array(P);
  let left = 286;
  while (left > 0) {
    const i = next() % P;
    if (f[i] !== 0) continue;
    f[i] = (next() & 1) === 0 ? 1 : -1;
    left--;
  }
  return f;
}

const same = (a: ArrayLike<number>, b: ArrayLike<number>, what: string): void => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: coefficient ${i} is ${a[i]}, reference ${b[i]}`);
};

test("sntrup761 Rq inversion: the kernel's output is the reference's, bit for bit, on 60 random and extreme inputs", () => {
  const next = rng(1);
  const inputs: Int8Array[] = [new Int8Array(P), new Int8Array(P).fill(1), new Int8Array(P).fill(-1), Int8Array.from({ length: P }, (_, i) => (i === P - 1 ? 1 : 0))];
  for (let i = 0; i < 56; i++) inputs.push(i % 2 === 0 ? short(next) : small(next, [1, 0.3, 0.02][i % 3]!));
  inputs.forEach((x, i) => same(K.rqRecip3(x), ref.rqRecip3(x), `input ${i}`));
});

test("sntrup761 Rq inversion: 1/(3f) * 3f = 1 for short f, so the kernels also compute the right thing", () => {
  const next = rng(2);
  const one = [1, ...new Array<number>(P - 1).fill(0)].join();
  for (let i = 0; i < 6; i++) {
    const f = short(next);
    const product = K.multiply(K.rqRecip3(f), f, "q").map((c) => ref.freezeQ(3 * c));
    assert.equal(product.join(), one, `input ${i}`);
  }
});

/** The degree-19 factor of x^761 - x - 1 mod 3 (coefficients from x^0 up): its multiples have no inverse in R3. */
const FACTOR19 = [-1, -1, 0, -1, -1, -1, 1, -1, 1, -1, 0, -1, 1, 1, 1, 1, -1, 0, 1, 1];

function multipleOfFactor(next: () => number): Int8Array {
  const m = small(next, 0.7);
  const g = new Int32Array(P);
  for (let i = 0; i + 19 < P; i++) for (let j = 0; j < 20; j++) g[i + j] = g[i + j]! + m[i]! * FACTOR19[j]!;
  return Int8Array.from(g, (c) => ref.freeze3(c));
}

test("sntrup761 R3 inversion: output and mask are the reference's on 80 inputs, 20 of them without an inverse", () => {
  const next = rng(3);
  const inputs: Int8Array[] = [new Int8Array(P), new Int8Array(P).fill(1), new Int8Array(P).fill(-1)];
  for (let i = 0; i < 20; i++) inputs.push(multipleOfFactor(next));
  for (let i = 0; i < 57; i++) inputs.push(small(next, [1, 0.3, 0.02][i % 3]!));
  let noInverse = 0;
  inputs.forEach((x, i) => {
    const got = K.r3Recip(x);
    const want = ref.r3Recip(x);
    assert.equal(got.mask, want.mask, `input ${i}: mask`);
    same(got.out, want.out, `input ${i}`);
    if (want.mask === -1) noInverse++;
  });
  assert.ok(noInverse >= 21, `${noInverse} inputs without an inverse`); // zero and the 20 multiples
  const one = [1, ...new Array<number>(P - 1).fill(0)].join();
  for (const x of inputs.slice(23, 29)) {
    const { out, mask } = K.r3Recip(x);
    if (mask === 0) assert.equal(Array.from(K.multiply(out, x, 3)).join(), one);
  }
});

test("sntrup761 products mod q and mod 3 are the reference's on random and extreme operands", () => {
  const next = rng(4);
  const rq = (): Int32Array => Int32Array.from({ length: P }, () => (next() % (2 * Q12 + 1)) - Q12);
  const cases: Array<[Int32Array | Int8Array, Int8Array]> = [
    [new Int32Array(P), new Int8Array(P)],
    [new Int32Array(P).fill(Q12), new Int8Array(P).fill(1)], // the largest sums
    [new Int32Array(P).fill(-Q12), new Int8Array(P).fill(1)],
    [new Int32Array(P).fill(Q12), new Int8Array(P).fill(-1)],
    [Int32Array.from({ length: P }, (_, i) => (i % 2 === 0 ? Q12 : -Q12)), Int8Array.from({ length: P }, (_, i) => (i % 2 === 0 ? 1 : -1))],
  ];
  for (let i = 0; i < 40; i++) cases.push([rq(), i % 2 === 0 ? short(next) : small(next, 1)]);
  cases.forEach(([f, g], i) => same(K.multiply(f, g, "q"), ref.multiply(f, g, ref.freezeQ), `mod q, case ${i}`));
  const r3cases: Array<[Int8Array, Int8Array]> = [
    [new Int8Array(P), new Int8Array(P)],
    [new Int8Array(P).fill(1), new Int8Array(P).fill(1)],
    [new Int8Array(P).fill(-1), new Int8Array(P).fill(1)],
  ];
  for (let i = 0; i < 30; i++) r3cases.push([small(next, 1), small(next, [1, 0.3][i % 2]!)]);
  r3cases.forEach(([f, g], i) => same(K.multiply(f, g, 3), ref.multiply(f, g, ref.freeze3), `mod 3, case ${i}`));
});

test("sntrup761 ShortFromList and Small_random are the reference's, including words at their edges", () => {
  const next = rng(5);
  const lists: Uint32Array[] = [
    new Uint32Array(P),
    new Uint32Array(P).fill(0xffffffff),
    new Uint32Array(P).fill(0x80000000),
    Uint32Array.from({ length: P }, (_, i) => [357913940, 357913941, 715827881, 715827882, 0x3fffffff, 0x40000000][i % 6]!),
    Uint32Array.from({ length: P }, (_, i) => (i % 2 === 0 ? 0xfffffffc : 3)), // equal keys after masking
  ];
  for (let i = 0; i < 40; i++) lists.push(Uint32Array.from({ length: P }, next));
  lists.forEach((list, i) => {
    const bytes = new Uint8Array(list.buffer); // little-endian words, as the KEM draws them
    const s = K.shortFromList(bytes);
    same(s, ref.shortFromList(list), `short, list ${i}`);
    assert.equal(s.reduce((n, c) => n + (c & 1), 0), 286, `short, list ${i}: weight`);
    same(K.smallFromList(bytes), ref.smallFromList(list), `small, list ${i}`);
  });
});

test("sntrup761 kernels leave no state behind: interleaved calls give what fresh ones do", () => {
  const next = rng(6);
  const f = short(next);
  const g = small(next, 1);
  const inv = ref.rqRecip3(f);
  const r3 = ref.r3Recip(g);
  for (let i = 0; i < 3; i++) {
    same(K.rqRecip3(f), inv, `Rq, round ${i}`);
    K.multiply(new Int32Array(P).fill(Q12), new Int8Array(P).fill(1), "q");
    same(K.r3Recip(g).out, r3.out, `R3, round ${i}`);
    K.shortFromList(new Uint8Array(4 * P).fill(0xff));
    same(K.multiply(inv, f, "q"), ref.multiply(inv, f, ref.freezeQ), `product, round ${i}`);
  }
});

test("sntrup761 Encode and Decode of public keys and ciphertexts are the reference's, on valid and on arbitrary bytes", () => {
  const next = rng(7);
  const bytes = (n: number, fill?: number): Uint8Array => Uint8Array.from({ length: n }, () => fill ?? next() & 0xff);
  const rq = (): Int32Array => Int32Array.from({ length: P }, () => (next() % (2 * Q12 + 1)) - Q12);
  const rounded = (): Int32Array => Int32Array.from({ length: P }, () => 3 * (next() % 1531) - Q12);
  for (let i = 0; i < 20; i++) {
    const h = i === 0 ? new Int32Array(P).fill(Q12) : i === 1 ? new Int32Array(P).fill(-Q12) : rq();
    const pk = E.rqEncode(h);
    assert.equal(Buffer.from(pk).toString("hex"), Buffer.from(ref.rqEncode(h)).toString("hex"), `rqEncode ${i}`);
    same(E.rqDecode(pk), h, `rqDecode of rqEncode ${i}`);
    const c = i === 0 ? new Int32Array(P).fill(Q12) : i === 1 ? new Int32Array(P).fill(-Q12) : rounded();
    const ct = E.roundedEncode(c);
    assert.equal(Buffer.from(ct).toString("hex"), Buffer.from(ref.roundedEncode(c)).toString("hex"), `roundedEncode ${i}`);
    same(E.roundedDecode(ct), c, `roundedDecode of roundedEncode ${i}`);
  }
  // Any bytes decode to something (values out of range are reduced), as in the reference.
  for (let i = 0; i < 20; i++) {
    const pk = bytes(E.RQ_BYTES, i === 0 ? 0xff : i === 1 ? 0 : undefined);
    same(E.rqDecode(pk), ref.rqDecode(pk), `rqDecode of arbitrary bytes ${i}`);
    const ct = bytes(E.ROUNDED_BYTES, i === 0 ? 0xff : i === 1 ? 0 : undefined);
    same(E.roundedDecode(ct), ref.roundedDecode(ct), `roundedDecode of arbitrary bytes ${i}`);
  }
});

test("sntrup761 without WebAssembly (as under node --jitless): each KEM function throws WebAssemblyUnavailableError", () => {
  // A fresh process, since this one has its instance already; WebAssembly is removed before the
  // KEM module is loaded (the transport's index would fail earlier, on Poly1305's module).
  const url = new URL("dist/ssh/_transport/sntrup761.js", conchRoot).href;
  const script = `delete globalThis.WebAssembly;
    const m = await import(${JSON.stringify(url)});
    const codes = [];
    for (const f of [() => m.sntrup761KeyPair(), () => m.sntrup761Encapsulate(new Uint8Array(1158)), () => m.sntrup761Decapsulate(new Uint8Array(1039), new Uint8Array(1763))]) {
      try { f(); codes.push("returned"); } catch (e) { codes.push(e.name + " " + e.code); }
    }
    console.log(JSON.stringify(codes));`;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout), new Array(3).fill("WebAssemblyUnavailableError ERR_WEBASSEMBLY_UNAVAILABLE"));
});
