/** `DeferredLock`, `DeferredSemaphore` and `DeferredQueue`. */

import type { Failure } from "../failure.js";
import { Deferred, maybeDeferred, succeed } from "./defer_core.js";
import type { Awaitable } from "./defer_core.js";

abstract class ConcurrencyPrimitive {
  /** The Deferreds waiting in `acquire`, first come first served. */
  waiting: Deferred<this>[] = [];

  abstract acquire(): Deferred<this>;
  abstract release(): void;

  /**
   * Acquires, runs `fn(...args)` (which may return a Deferred or Promise), releases whatever the
   * outcome, and fires with `fn`'s result.
   */
  run<U, A extends unknown[]>(fn: (...args: A) => Awaitable<U> | Failure, ...args: A): Deferred<U> {
    return this.acquire().addCallback(() =>
      maybeDeferred(fn, ...args).addBoth((r) => {
        this.release();
        return r;
      }),
    ) as Deferred<U>;
  }

  protected cancelAcquire = (d: Deferred<this>): void => {
    const i = this.waiting.indexOf(d);
    if (i >= 0) this.waiting.splice(i, 1);
  };
}

/**
 * A lock for Deferred-using code: `acquire()` fires (with the lock) once it is free. Cancelling a
 * pending `acquire()` removes it from the queue.
 */
export class DeferredLock extends ConcurrencyPrimitive {
  locked = false;

  acquire(): Deferred<this> {
    const d = new Deferred<this>(this.cancelAcquire);
    if (this.locked) {
      this.waiting.push(d);
    } else {
      this.locked = true;
      d.callback(this);
    }
    return d;
  }

  /** Releases the lock, handing it to the next waiter if there is one. */
  release(): void {
    if (!this.locked) throw new Error("Tried to release an unlocked lock");
    this.locked = false;
    const next = this.waiting.shift();
    if (next !== undefined) {
      this.locked = true;
      next.callback(this);
    }
  }
}

/** A semaphore with `tokens` tokens: at most that many `acquire()`s hold it at once. */
export class DeferredSemaphore extends ConcurrencyPrimitive {
  tokens: number;
  readonly limit: number;

  constructor(tokens: number) {
    super();
    if (tokens < 1) throw new RangeError("DeferredSemaphore requires tokens >= 1");
    this.tokens = tokens;
    this.limit = tokens;
  }

  acquire(): Deferred<this> {
    const d = new Deferred<this>(this.cancelAcquire);
    if (this.tokens === 0) {
      this.waiting.push(d);
    } else {
      this.tokens--;
      d.callback(this);
    }
    return d;
  }

  /** Returns a token, handing it to the next waiter if there is one. */
  release(): void {
    if (this.tokens >= this.limit) throw new Error("Someone released me too many times: too many tokens!");
    this.tokens++;
    const next = this.waiting.shift();
    if (next !== undefined) {
      this.tokens--;
      next.callback(this);
    }
  }
}

/** `put` on a DeferredQueue that already holds `size` objects. */
export class QueueOverflow extends Error {
  constructor() {
    super("DeferredQueue is full");
    this.name = "QueueOverflow";
  }
}

/** `get` on a DeferredQueue that already has `backlog` waiting gets. */
export class QueueUnderflow extends Error {
  constructor() {
    super("DeferredQueue has too many pending gets");
    this.name = "QueueUnderflow";
  }
}

/**
 * A queue whose `get()` returns a Deferred: fired at once with the oldest object, or later by a
 * `put`. `size` bounds the stored objects (QueueOverflow), `backlog` the waiting gets (QueueUnderflow).
 */
export class DeferredQueue<T> {
  waiting: Deferred<T>[] = [];
  pending: T[] = [];
  readonly size: number | null;
  readonly backlog: number | null;

  constructor(size: number | null = null, backlog: number | null = null) {
    this.size = size;
    this.backlog = backlog;
  }

  private cancelGet = (d: Deferred<T>): void => {
    const i = this.waiting.indexOf(d);
    if (i >= 0) this.waiting.splice(i, 1);
  };

  /** Adds an object: to the oldest waiting `get`, else to the queue. */
  put(obj: T): void {
    const w = this.waiting.shift();
    if (w !== undefined) w.callback(obj);
    else if (this.size === null || this.pending.length < this.size) this.pending.push(obj);
    else throw new QueueOverflow();
  }

  /** A Deferred for the next object. Cancelling it withdraws the request. */
  get(): Deferred<T> {
    if (this.pending.length > 0) return succeed(this.pending.shift() as T);
    if (this.backlog === null || this.waiting.length < this.backlog) {
      const d = new Deferred<T>(this.cancelGet);
      this.waiting.push(d);
      return d;
    }
    throw new QueueUnderflow();
  }
}
