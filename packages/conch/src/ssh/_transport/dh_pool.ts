/**
 * Diffie-Hellman off the event loop. The two exponentiations of a server's exchange in an
 * 8192-bit group take about 20 ms; a peer can ask for one every connection, so groups above the
 * transport's inline limit are computed on one worker thread, one job at a time, while the event
 * loop serves everyone else. One thread: the machine's other cores belong to the other
 * connections' ciphers, and a flood of big exchanges should wait in line, not take them all.
 */
import { Worker } from "node:worker_threads";
import { KeyExchangeError } from "../../error.js";
import type { DHGroup } from "./dh_groups.js";

interface Pending {
  resolve: (r: { f: bigint; shared: bigint }) => void;
  reject: (e: Error) => void;
}

interface Reply {
  id: number;
  f?: bigint;
  shared?: bigint;
  error?: string;
}

let worker: Worker | undefined;
let nextId = 0;
const pending = new Map<number, Pending>();
let idleWaiters: Array<() => void> = [];

function notifyIdle(): void {
  if (pending.size !== 0 || idleWaiters.length === 0) return;
  const waiters = idleWaiters;
  idleWaiters = [];
  // After the jobs' own continuations (promise callbacks) have run.
  setImmediate(() => {
    for (const w of waiters) w();
  });
}

function failAll(error: Error): void {
  const all = [...pending.values()];
  pending.clear();
  for (const p of all) p.reject(error);
  notifyIdle();
}

function theWorker(): Worker {
  if (worker !== undefined) return worker;
  const w = new Worker(new URL("./dh_worker.js", import.meta.url));
  // The worker must never keep a process alive; pending jobs keep it referenced (below).
  w.unref();
  w.on("message", (r: Reply) => {
    const p = pending.get(r.id);
    if (p === undefined) return;
    pending.delete(r.id);
    if (r.error !== undefined || r.f === undefined || r.shared === undefined) p.reject(new KeyExchangeError(r.error ?? "no result"));
    else p.resolve({ f: r.f, shared: r.shared });
    if (pending.size === 0) w.unref();
    notifyIdle();
  });
  w.on("error", (e) => {
    if (worker === w) worker = undefined;
    failAll(new KeyExchangeError(`Diffie-Hellman worker failed: ${e.message}`));
  });
  w.on("exit", () => {
    if (worker === w) worker = undefined;
    failAll(new KeyExchangeError("Diffie-Hellman worker exited"));
  });
  worker = w;
  return w;
}

/**
 * The server's half of a DH exchange in `group` for the client's value `e`, computed on the worker
 * thread: our public value f and the shared secret (unsigned big-endian). Rejects with a
 * `KeyExchangeError` when e is out of range or the worker fails.
 */
export function dhRespondOffThread(group: DHGroup, e: bigint): Promise<{ f: bigint; shared: bigint }> {
  const w = theWorker();
  const id = nextId++;
  const result = new Promise<{ f: bigint; shared: bigint }>((resolve, reject) => pending.set(id, { resolve, reject }));
  w.ref();
  w.postMessage({ id, p: group.p, g: group.g, e });
  return result;
}

/**
 * Resolves once no job is waiting on the worker and what their results started has run (for
 * tests driving transports in memory, and for an orderly shutdown).
 */
export function dhPoolIdle(): Promise<void> {
  if (pending.size === 0) return Promise.resolve();
  return new Promise((resolve) => idleWaiters.push(resolve));
}

/** Jobs sent to the worker and not answered yet. */
export function dhPoolPending(): number {
  return pending.size;
}
