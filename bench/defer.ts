/**
 * Deferred callback chains against native Promise chains doing the same arithmetic.
 *
 *   npx tsc -b && node --expose-gc bench/dist/defer.js            (about 15 s)
 *   node --expose-gc bench/dist/defer.js --quick                   (about 4 s)
 *
 * (a) one Deferred with N callbacks `n => n + 1`, fired once, against `p.then(n => n + 1)` N times;
 * (b) every step returns a nested Deferred / Promise: one that has already fired, or one fired a
 *     microtask later. Each "op" builds and runs a whole chain; callbacks/s = N x ops/s.
 */
import { Deferred, succeed } from "@twisted-ts/internet/defer";

const QUICK = process.argv.includes("--quick");
const ROUNDS = QUICK ? 3 : 6;
const ROUND_SECONDS = QUICK ? 0.15 : 0.3;
const N = 1000;
const gc = (globalThis as { gc?: () => void }).gc;

function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

/** Ops per CPU-second of one round of `op`. */
async function round(op: () => unknown): Promise<number> {
  gc?.();
  let n = 0;
  const t0 = process.cpuUsage();
  let elapsed = 0;
  while (elapsed < ROUND_SECONDS) {
    for (let i = 0; i < 10; i++) await op();
    n += 10;
    elapsed = cpuSeconds(t0);
  }
  return n / elapsed;
}

/** Best ops/s of each of `a` and `b` over alternating rounds, after a warm-up of both. */
async function compare(a: () => unknown, b: () => unknown): Promise<[number, number]> {
  await round(a);
  await round(b);
  let bestA = 0;
  let bestB = 0;
  for (let r = 0; r < ROUNDS; r++) {
    bestA = Math.max(bestA, await round(a));
    bestB = Math.max(bestB, await round(b));
  }
  return [bestA, bestB];
}

function check(v: unknown): void {
  if (v !== N) throw new Error(`wrong result ${String(v)}`);
}

// (a) synchronous chain on one Deferred vs a Promise chain.
function deferredChain(): void {
  const d = new Deferred<number>();
  let r = 0;
  for (let i = 0; i < N; i++) d.addCallback((n) => n + 1);
  d.addCallback((n) => {
    r = n;
  });
  d.callback(0);
  check(r);
}

async function promiseChain(): Promise<void> {
  let p: Promise<number> = Promise.resolve(0);
  for (let i = 0; i < N; i++) p = p.then((n) => n + 1);
  check(await p);
}

// (b1) each step returns an already-fired Deferred / an already-resolved Promise.
function deferredNestedFired(): void {
  const d = new Deferred<number>();
  let r = 0;
  for (let i = 0; i < N; i++) d.addCallback((n) => succeed(n + 1));
  d.addCallback((n) => {
    r = n;
  });
  d.callback(0);
  check(r);
}

async function promiseNestedResolved(): Promise<void> {
  let p: Promise<number> = Promise.resolve(0);
  for (let i = 0; i < N; i++) p = p.then((n) => Promise.resolve(n + 1));
  check(await p);
}

// (b2) each step returns a Deferred / Promise settled a microtask later.
async function deferredNestedSoon(): Promise<void> {
  const d = new Deferred<number>();
  for (let i = 0; i < N; i++) {
    d.addCallback((n) => {
      const inner = new Deferred<number>();
      queueMicrotask(() => inner.callback(n + 1));
      return inner;
    });
  }
  d.callback(0);
  check(await d);
}

async function promiseNestedSoon(): Promise<void> {
  let p: Promise<number> = Promise.resolve(0);
  for (let i = 0; i < N; i++) p = p.then((n) => new Promise<number>((resolve) => queueMicrotask(() => resolve(n + 1))));
  check(await p);
}

// (b3) N Deferreds each waiting on the next, fired from the innermost; Promises: each awaits the next.
function deferredWaitingChain(): void {
  const ds: Deferred<number>[] = [];
  for (let i = 0; i <= N; i++) ds.push(new Deferred<number>());
  for (let i = 0; i < N; i++) {
    const next = ds[i + 1]!;
    ds[i]!.addCallback(() => next).addCallback((n) => n + 1);
  }
  for (let i = 0; i < N; i++) ds[i]!.callback(0);
  let r = 0;
  ds[0]!.addCallback((n) => {
    r = n;
  });
  ds[N]!.callback(0);
  check(r);
}

async function promiseWaitingChain(): Promise<void> {
  let resolveLast!: (n: number) => void;
  let p = new Promise<number>((resolve) => {
    resolveLast = resolve;
  });
  for (let i = 0; i < N; i++) {
    const inner = p;
    p = Promise.resolve(0).then(() => inner).then((n) => n + 1);
  }
  resolveLast(0);
  check(await p);
}

const rows: [string, () => unknown, () => unknown][] = [
  ["(a) sync chain, N callbacks on one Deferred vs N x then", deferredChain, promiseChain],
  ["(b1) each step returns an already-fired Deferred / resolved Promise", deferredNestedFired, promiseNestedResolved],
  ["(b2) each step returns one fired a microtask later", deferredNestedSoon, promiseNestedSoon],
  ["(b3) N Deferreds each waiting on the next / N nested awaits", deferredWaitingChain, promiseWaitingChain],
];

console.log(`Deferred vs Promise, N = ${N} steps per chain, best of ${ROUNDS} rounds, node ${process.version}${gc ? "" : " (run with --expose-gc for steadier figures)"}\n`);
console.log("| case | Deferred chains/s | Promise chains/s | Deferred steps/s | Deferred / Promise |");
console.log("|---|---:|---:|---:|---:|");
const fmt = (x: number): string => Math.round(x).toLocaleString("en-US");
for (const [name, dFn, pFn] of rows) {
  const [d, p] = await compare(dFn, pFn);
  console.log(`| ${name} | ${fmt(d)} | ${fmt(p)} | ${fmt(d * N)} | ${(d / p).toFixed(2)}x |`);
}
