/**
 * An evaluation, not shipped code (issue 16, cold start): the two inner passes of sntrup761's
 * Rq inversion (`rqRecip3` in packages/conch/src/ssh/_transport/sntrup761_rq.ts) as a hand-written
 * WebAssembly module, assembled below from named opcodes, beside the JavaScript in fresh
 * processes. Liftoff compiles a module at once, so the first inversion runs compiled code instead
 * of waiting for TurboFan. The outer divstep loop stays in JavaScript, exactly as in the package.
 *
 * The kernels do what the JavaScript passes do, in the same order of f64 operations (WebAssembly
 * forbids fusing a multiply and an add, as JavaScript does), so the results are the same bits;
 * the check below compares them on random inputs before timing anything. No branch or address
 * depends on the data: the loop bounds are the public `top` / `start`.
 *
 *     npx tsc -b && node bench/dist/cold_rq_wasm.js [processes]
 */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { median } from "./_util.js";

type Rq = typeof import("../packages/conch/dist/ssh/_transport/sntrup761_rq.js");
const root = import.meta.resolve("@twisted-ts/conch/package.json");
const rq = (await import(new URL("dist/ssh/_transport/sntrup761_rq.js", root).href)) as Rq;
const SELF = fileURLToPath(import.meta.url);
const p = 761;
const q = 4591;

// ---- a few opcodes (WebAssembly core spec 5.4) ---------------------------------------------------

const uleb = (n: number): number[] => {
  const out: number[] = [];
  do {
    const b = n & 0x7f;
    n >>>= 7;
    out.push(n !== 0 ? b | 0x80 : b);
  } while (n !== 0);
  return out;
};
const sleb = (n: number): number[] => {
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) return [...out, b];
    out.push(b | 0x80);
  }
};
const f64bytes = (x: number): number[] => [...new Uint8Array(new Float64Array([x]).buffer)];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body];
const get = (i: number): number[] => [0x20, ...uleb(i)];
const set = (i: number): number[] => [0x21, ...uleb(i)];
const i32 = (n: number): number[] => [0x41, ...sleb(n)];
const f64 = (x: number): number[] => [0x44, ...f64bytes(x)];
const load = (offset: number): number[] => [0x2b, 3, ...uleb(offset)];
const store = (offset: number): number[] => [0x39, 3, ...uleb(offset)];
const [F_ADD, F_SUB, F_MUL, I_ADD, I_SUB, I_MUL, I_GT_S, I_LT_S] = [[0xa0], [0xa1], [0xa2], [0x6a], [0x6b], [0x6c], [0x4a], [0x48]];
const LOOP_START = [0x02, 0x40, 0x03, 0x40]; // block, loop
const EXIT_IF = [0x0d, 1]; // br_if to the block's end
const AGAIN_END = [0x0c, 0, 0x0b, 0x0b]; // br to the loop's head; end loop; end block

// Parameters: 0 top or start (i32), 1 s, 2 a, 3 b (f64). Locals: 4 the byte address, then
// u0, w0, u1, w1 (two coefficient pairs) and x, y.
const [BASE, U0, W0, U1, W1, X, Y] = [4, 5, 6, 7, 8, 9, 10];
const ROUND = 6755399441055744;
/** x - q * (x * (1/q) + ROUND - ROUND), as `freezeQ`'s inline form in the passes. */
const reduce = (x: number): number[] => [...get(x), ...f64(q), ...get(x), ...f64(1 / q), ...F_MUL, ...f64(ROUND), ...F_ADD, ...f64(ROUND), ...F_SUB, ...F_MUL, ...F_SUB];
/** u + s * (w - u): the masked swap. */
const blend = (u: number, w: number): number[] => [...get(u), ...get(1), ...get(w), ...get(u), ...F_SUB, ...F_MUL, ...F_ADD];
/** a * w + b * u. */
const combine = (w: number, u: number): number[] => [...get(2), ...get(w), ...F_MUL, ...get(3), ...get(u), ...F_MUL, ...F_ADD];
const loads = (o: [number, number, number, number]): number[] =>
  [U0, W0, U1, W1].flatMap((local, k) => [...get(BASE), ...load(o[k]!), ...set(local)]);

/** fgPass: fg at byte 0; BASE = 8 (i - 1) for i = 2, 6, ... while BASE <= 8 top - 8. */
const FG_PASS = [
  ...i32(8), ...set(BASE), ...LOOP_START,
  ...get(BASE), ...get(0), ...i32(8), ...I_MUL, ...i32(8), ...I_SUB, ...I_GT_S, ...EXIT_IF,
  ...loads([8, 16, 24, 32]), // f[i], g[i], f[i+2], g[i+2]
  ...get(BASE), ...blend(U0, W0), ...store(8),
  ...get(BASE), ...blend(U1, W1), ...store(24),
  ...combine(W0, U0), ...set(X), ...combine(W1, U1), ...set(Y),
  ...get(BASE), ...reduce(X), ...store(0),
  ...get(BASE), ...reduce(Y), ...store(16),
  ...get(BASE), ...i32(32), ...I_ADD, ...set(BASE), ...AGAIN_END,
  ...get(0), ...i32(8), ...I_MUL, ...f64(0), ...store(8), 0x0b, // fg[top + 1] = 0
];
const VR = 16384;
/** vrPass: vr at byte VR; BASE = 8 (i - 4) for i = start, start - 4, ... while BASE >= 0. */
const VR_PASS = [
  ...get(0), ...i32(4), ...I_SUB, ...i32(8), ...I_MUL, ...set(BASE), ...LOOP_START,
  ...get(BASE), ...i32(0), ...I_LT_S, ...EXIT_IF,
  ...loads([VR + 16, VR + 40, VR, VR + 24]), // v[i-2], r[i+1], v[i-4], r[i-1]
  ...get(BASE), ...blend(U0, W0), ...store(VR + 32),
  ...get(BASE), ...blend(U1, W1), ...store(VR + 16),
  ...combine(W0, U0), ...set(X), ...combine(W1, U1), ...set(Y),
  ...get(BASE), ...reduce(X), ...store(VR + 40),
  ...get(BASE), ...reduce(Y), ...store(VR + 24),
  ...get(BASE), ...i32(32), ...I_SUB, ...set(BASE), ...AGAIN_END, 0x0b,
];
const body = (code: number[]): number[] => {
  const b = [...vec([[1, 0x7f], [6, 0x7c]]), ...code];
  return [...uleb(b.length), ...b];
};
const utf8 = (s: string): number[] => [...uleb(s.length), ...Buffer.from(s)];
export const MODULE = Uint8Array.from([
  ...[0x00, 0x61, 0x73, 0x6d, 1, 0, 0, 0],
  ...section(1, vec([[0x60, ...vec([[0x7f], [0x7c], [0x7c], [0x7c]]), 0]])), // (i32 f64 f64 f64) -> ()
  ...section(3, vec([[0], [0]])),
  ...section(5, vec([[0, 1]])), // one page
  ...section(7, vec([[...utf8("fg"), 0, 0], [...utf8("vr"), 0, 1], [...utf8("mem"), 2, 0]])),
  ...section(10, vec([body(FG_PASS), body(VR_PASS)])),
]);

// ---- rqRecip3 with the kernels ------------------------------------------------------------------

/** The little of the WebAssembly API used here (this project's lib settings leave it out). */
interface Wasm {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (m: object) => { exports: unknown };
}
const { Module, Instance } = (globalThis as unknown as { WebAssembly: Wasm }).WebAssembly;

function wasmRecip3(): (input: Int8Array) => Int32Array {
  const e = new Instance(new Module(MODULE)).exports as {
    fg: (top: number, s: number, a: number, b: number) => void;
    vr: (start: number, s: number, a: number, b: number) => void;
    mem: { buffer: ArrayBuffer };
  };
  const fg = new Float64Array(e.mem.buffer, 0, 2 * p + 4);
  const vr = new Float64Array(e.mem.buffer, VR, 2 * p + 4);
  const recipQ = (a: number): number => {
    let ai = 1;
    for (let bit = 12; bit >= 0; bit--) {
      ai = rq.freezeQ(ai * ai);
      if (((q - 2) >> bit) & 1) ai = rq.freezeQ(ai * a);
    }
    return ai;
  };
  return (input) => {
    fg.fill(0);
    vr.fill(0);
    fg[0] = 1;
    fg[2 * (p - 1)] = -1;
    fg[2 * p] = -1;
    for (let i = 0; i < p; i++) fg[2 * (p - 1 - i) + 1] = input[i]!;
    vr[1] = recipQ(3);
    let delta = 1;
    for (let loop = 0; loop < 2 * p - 1; loop++) {
      const f00: number = fg[0]! | 0;
      const g00 = fg[1]! | 0;
      const swap = rq.negativeMask(0 - delta) & rq.nonzeroMask(g00);
      delta ^= swap & (delta ^ (0 - delta));
      delta += 1;
      const s = swap & 1;
      const t0 = swap & (f00 ^ g00);
      const f0: number = f00 ^ t0;
      const g0 = g00 ^ t0;
      const ta = swap & (f0 ^ (0 - g0));
      const a = f0 ^ ta;
      const b = (0 - g0) ^ ta;
      fg[0] = f0;
      e.fg(2 * Math.min(p, 2 * p - 1 - loop), s, a, b);
      e.vr(2 * ((Math.min(loop, p) + 1) & ~1), s, a, b);
      const r0 = vr[1]!;
      vr[0] = s * r0;
      vr[1] = rq.freezeQ(a * r0);
    }
    const scale = recipQ(fg[0]!);
    const out = new Int32Array(p);
    for (let i = 0; i < p; i++) out[i] = rq.freezeQ(scale * vr[2 * (p - 1 - i)]!);
    return out;
  };
}

function randomInput(dense: boolean): Int8Array {
  const f = new Int8Array(p);
  for (let i = 0; i < p; i++) f[i] = dense ? Math.floor(Math.random() * 3) - 1 : i < 286 ? (Math.random() < 0.5 ? 1 : -1) : 0;
  return f;
}

const cpuMs = (since?: NodeJS.CpuUsage): number => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

/** In a fresh process: the CPU ms of the first three inversions, then the least of warm ones. */
function childRun(which: "js" | "wasm"): void {
  const c0 = process.cpuUsage();
  const recip = which === "wasm" ? wasmRecip3() : rq.rqRecip3;
  const setup = cpuMs(c0);
  const f = randomInput(false);
  const first: number[] = [];
  for (let k = 0; k < 3; k++) {
    const c = process.cpuUsage();
    recip(f);
    first.push(cpuMs(c));
  }
  for (let k = 0; k < 200; k++) recip(f);
  let warm = Infinity;
  for (let k = 0; k < 5; k++) {
    const c = process.cpuUsage();
    for (let j = 0; j < 20; j++) recip(f);
    warm = Math.min(warm, cpuMs(c) / 20);
  }
  console.log(JSON.stringify({ setup, first: first[0], second: first[1], third: first[2], warm }));
}

function child(which: string): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [SELF, "--child", which], { stdio: ["ignore", "pipe", "inherit"] });
    let s = "";
    c.stdout.on("data", (d: Buffer) => (s += d.toString()));
    c.once("close", (code) => (code === 0 ? resolve(JSON.parse(s) as Record<string, number>) : reject(new Error(`child exited ${code}`))));
  });
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10);
  const recip = wasmRecip3();
  for (let t = 0; t < 100; t++) {
    const f = randomInput(t % 2 === 0);
    const ours = recip(f);
    if (!rq.rqRecip3(f).every((x, i) => x === ours[i])) throw new Error("the kernels disagree with rqRecip3");
  }
  console.log(`\nmodule: ${MODULE.length} bytes; 100 random inversions identical to rqRecip3`);
  console.log(`\nrqRecip3 in a fresh process, CPU ms, median (min) of ${n} processes each, interleaved\n`);
  console.log("| passes | setup | 1st | 2nd | 3rd | warm |");
  console.log("|---|---:|---:|---:|---:|---:|");
  const runs: Record<string, Array<Record<string, number>>> = { js: [], wasm: [] };
  for (let i = 0; i < n; i++) for (const which of ["js", "wasm"]) runs[which]!.push(await child(which));
  for (const which of ["js", "wasm"]) {
    const cells = ["setup", "first", "second", "third", "warm"].map((k) => {
      const xs = runs[which]!.map((r) => r[k]!);
      return `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)})`;
    });
    console.log(`| ${which === "js" ? "JavaScript (the package)" : "WebAssembly kernels"} | ${cells.join(" | ")} |`);
  }
}

if (process.argv[2] === "--child") childRun(process.argv[3] === "wasm" ? "wasm" : "js");
else await main();
