/** `inlineCallbacks` and `ensureDeferred`: generator functions that yield Deferreds or Promises. */

import { Failure } from "../failure.js";
import { Deferred } from "./defer_core.js";

/** Raised by `ensureDeferred` when given something that is neither a Deferred, a Promise nor a generator. */
export class NotACoroutineError extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = "NotACoroutineError";
  }
}

/**
 * The generators `inlineCallbacks` runs. The `never` for the value sent back in means a `yield`
 * expression has no type of its own: annotate it (`const n: number = yield d`).
 */
export type InlineGenerator<R> = Generator<unknown, R, never>;

interface Status<R> {
  deferred: Deferred<R>;
  waitingOn: Deferred<unknown> | null;
}

class InternalCancel extends Error {}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return v !== null && (typeof v === "object" || typeof v === "function") && typeof (v as { then?: unknown }).then === "function";
}

function step<R>(first: unknown, gen: Generator<unknown, R, unknown>, status: Status<R>): void {
  let result = first;
  // waiting[0]: the yielded Deferred has not fired yet; waiting[1]: its result if it fired at once.
  const waiting: [boolean, unknown] = [true, undefined];
  for (;;) {
    let it: IteratorResult<unknown, R>;
    try {
      it = result instanceof Failure ? gen.throw(result.value) : gen.next(result);
    } catch (e) {
      status.deferred.errback(e);
      return;
    }
    if (it.done) {
      status.deferred.callback(it.value);
      return;
    }
    let y: unknown = it.value;
    if (!(y instanceof Deferred) && !(y instanceof Failure) && isThenable(y)) y = Deferred.fromPromise(y);
    if (!(y instanceof Deferred)) {
      // A yielded plain value comes straight back.
      result = y;
      continue;
    }
    const yielded = y as Deferred<unknown>;
    yielded.addBoth((r) => {
      if (waiting[0]) {
        waiting[0] = false;
        waiting[1] = r;
      } else {
        step(r, gen, status);
      }
      return undefined;
    });
    if (waiting[0]) {
      waiting[0] = false;
      status.waitingOn = yielded;
      return;
    }
    result = waiting[1];
    waiting[0] = true;
    waiting[1] = undefined;
  }
}

/**
 * Runs `gen` to completion: each yielded Deferred or Promise is waited for and its result sent
 * back (a failure is thrown into the generator); the returned Deferred fires with the generator's
 * return value. Cancelling it cancels the Deferred the generator is waiting on; if the generator
 * catches that `CancelledError` and goes on, the returned Deferred waits for it.
 */
export function runGenerator<R>(gen: Generator<unknown, R, never>): Deferred<R> {
  const g = gen as unknown as Generator<unknown, R, unknown>;
  const cancel = (it: Deferred<R>): void => {
    it._prependErrback(handleCancel);
    it.errback(new InternalCancel());
  };
  const deferred = new Deferred<R>(cancel);
  const status: Status<R> = { deferred, waitingOn: null };
  const handleCancel = (f: Failure): Deferred<R> => {
    f.trap(InternalCancel);
    status.deferred = new Deferred<R>(cancel);
    const awaited = status.waitingOn;
    awaited?.cancel();
    return status.deferred;
  };
  step(undefined, g, status);
  return deferred;
}

/**
 * Twisted's `@inlineCallbacks`: wraps a generator function so that calling it runs the generator
 * with {@link runGenerator} and returns a Deferred of its return value.
 *
 * ```ts
 * const fetchTwice = inlineCallbacks(function* (url: string) {
 *   const a: string = yield getPage(url);
 *   const b: string = yield getPage(url);
 *   return a + b;
 * });
 * ```
 */
export function inlineCallbacks<A extends unknown[], R>(f: (...args: A) => Generator<unknown, R, never>): (...args: A) => Deferred<R> {
  return function (this: unknown, ...args: A): Deferred<R> {
    let gen: Generator<unknown, R, never>;
    try {
      gen = f.apply(this, args);
    } catch (e) {
      const d = new Deferred<R>();
      d.errback(e);
      return d;
    }
    return runGenerator(gen);
  };
}

function isGenerator(v: unknown): v is Generator<unknown, unknown, never> {
  return (
    v !== null &&
    typeof v === "object" &&
    typeof (v as { next?: unknown }).next === "function" &&
    typeof (v as { throw?: unknown }).throw === "function"
  );
}

/**
 * A Deferred for a Deferred (itself), a Promise or other thenable, or a generator (run as by
 * `inlineCallbacks`). Anything else raises {@link NotACoroutineError}.
 */
export function ensureDeferred<T>(coro: Deferred<T> | PromiseLike<T> | Generator<unknown, T, never>): Deferred<T> {
  if (coro instanceof Deferred) return coro;
  if (isThenable(coro)) return Deferred.fromPromise(coro);
  if (isGenerator(coro)) return runGenerator(coro);
  throw new NotACoroutineError(`${String(coro)} is not a coroutine or a Deferred`);
}
