/**
 * Diffie-Hellman off the event loop. The two exponentiations of a server's exchange in an
 * 8192-bit group take about 20 ms; a peer can ask for one every connection, so groups above the
 * transport's inline limit are computed on a worker thread, one job at a time, while the event
 * loop serves everyone else. One thread: the machine's other cores belong to the other
 * connections' ciphers, and a flood of big exchanges should wait in line, not take them all.
 *
 * `node:worker_threads` is loaded on the pool's first job (about 5 ms of a fresh process's CPU
 * that a client, or a server without big groups, never needs).
 */
import { createRequire } from "node:module";
import type { Worker } from "node:worker_threads";
import { KeyExchangeError } from "../../error.js";
import type { DHGroup } from "./dh_groups.js";

/** The server's half of a DH exchange: its public value f and the shared secret. */
export interface DHResponse {
  readonly f: bigint;
  readonly shared: bigint;
}

interface Pending {
  resolve: (r: DHResponse) => void;
  reject: (e: Error) => void;
}

interface Reply {
  id: number;
  f?: bigint;
  shared?: bigint;
  error?: string;
}

/** One worker thread (started on first use, never keeping the process alive when idle) and its jobs. */
export class DHWorkerPool {
  private worker: Worker | undefined = undefined;
  private nextId = 0;
  private readonly pending = new Map<number, Pending>();
  private idleWaiters: Array<() => void> = [];

  /**
   * The server's half of a DH exchange in `group` for the client's value `e` (already checked),
   * computed on the worker thread. Rejects with a `KeyExchangeError` when the worker fails.
   */
  respond(group: DHGroup, e: bigint): Promise<DHResponse> {
    const w = this.theWorker();
    const id = this.nextId++;
    const result = new Promise<DHResponse>((resolve, reject) => this.pending.set(id, { resolve, reject }));
    w.ref();
    w.postMessage({ id, p: group.p, g: group.g, e });
    return result;
  }

  /** Jobs sent to the worker and not answered yet. */
  get pendingJobs(): number {
    return this.pending.size;
  }

  /**
   * Resolves once no job is waiting and what their results started has run (for tests driving
   * transports in memory, and for an orderly shutdown).
   */
  whenIdle(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private theWorker(): Worker {
    if (this.worker !== undefined) return this.worker;
    const threads = createRequire(import.meta.url)("node:worker_threads") as typeof import("node:worker_threads");
    const w = new threads.Worker(new URL("./dh_worker.js", import.meta.url));
    // Referenced only while a job is pending (respond, and the message handler below).
    w.unref();
    w.on("message", (r: Reply) => {
      const p = this.pending.get(r.id);
      if (p === undefined) return;
      this.pending.delete(r.id);
      if (r.error !== undefined || r.f === undefined || r.shared === undefined) p.reject(new KeyExchangeError(r.error ?? "no result"));
      else p.resolve({ f: r.f, shared: r.shared });
      if (this.pending.size === 0) w.unref();
      this.notifyIdle();
    });
    const lost = (why: string): void => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(new KeyExchangeError(why));
    };
    w.on("error", (e) => lost(`Diffie-Hellman worker failed: ${e.message}`));
    w.on("exit", () => lost("Diffie-Hellman worker exited"));
    this.worker = w;
    return w;
  }

  private notifyIdle(): void {
    if (this.pending.size !== 0 || this.idleWaiters.length === 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    // After the jobs' own continuations (promise callbacks) have run.
    setImmediate(() => {
      for (const w of waiters) w();
    });
  }

  private failAll(error: Error): void {
    const all = [...this.pending.values()];
    this.pending.clear();
    for (const p of all) p.reject(error);
    this.notifyIdle();
  }
}

/** The pool every transport uses: one worker thread per process. */
export const sharedDhPool = new DHWorkerPool();

/** Resolves once no job is pending on the shared pool; see {@link DHWorkerPool.whenIdle}. */
export function dhPoolIdle(): Promise<void> {
  return sharedDhPool.whenIdle();
}

/** Jobs pending on the shared pool. */
export function dhPoolPending(): number {
  return sharedDhPool.pendingJobs;
}
