/**
 * The `Deferred` itself and its small helpers. Lives here (not in `defer.ts`) so that the other
 * `_internal/defer_*` modules can extend and use it without an import cycle through `defer.ts`.
 */

import { Failure, NonErrorThrown, asFailure } from "../failure.js";
import { Logger } from "../log.js";
import type { IReactorTime } from "./task_time.js";

/** Raised when `callback` or `errback` is called on a Deferred that has already fired. */
export class AlreadyCalledError extends Error {
  constructor(message = "Deferred has already been called") {
    super(message);
    this.name = "AlreadyCalledError";
  }
}

/** The error a Deferred fails with when it is cancelled and its canceller did not fire it. */
export class CancelledError extends Error {
  constructor(message = "Deferred was cancelled") {
    super(message);
    this.name = "CancelledError";
  }
}

/** The error a Deferred fails with when `addTimeout`'s timeout expires. */
export class TimeoutError extends Error {
  readonly timeout: number | undefined;
  constructor(timeout?: number, what = "Deferred") {
    super(timeout === undefined ? `${what} timed out` : `${what} timed out after ${timeout} seconds`);
    this.name = "TimeoutError";
    this.timeout = timeout;
  }
}

/** A value or something that will produce it: what a callback may return. */
export type Awaitable<U> = U | PromiseLike<U>;

type AnyFn = (result: unknown, ...args: unknown[]) => unknown;

/**
 * One link of a callback chain. To save an object per link in the common cases, a plain callback
 * without extra arguments is stored as the bare function, and the continuation of a Deferred
 * waiting on this one as that Deferred.
 */
interface Link {
  cb: AnyFn | null; // null: pass the result through
  cbArgs: readonly unknown[];
  eb: AnyFn | null; // null: pass the Failure through
  ebArgs: readonly unknown[];
}

const NO_ARGS: readonly unknown[] = Object.freeze([]);

/** Options of `addCallbacks`: Twisted's `callbackArgs` / `errbackArgs` keyword arguments. */
export interface AddCallbacksOptions<A extends unknown[], B extends unknown[]> {
  callbackArgs?: A;
  errbackArgs?: B;
}

// ---- unhandled-error reporting ----------------------------------------------------------------

/**
 * What outlives a Deferred for unhandled-error reporting (Twisted's `DebugInfo`). It must not refer
 * to the Deferred, or the Deferred would never be collected.
 */
class DebugInfo {
  private _failResult: Failure | null = null;
  creator: string | null = null;
  invoker: string | null = null;

  get failResult(): Failure | null {
    return this._failResult;
  }

  set failResult(f: Failure | null) {
    this._failResult = f;
    if (f === null) failedInfos.delete(this);
    else {
      failedInfos.add(this);
      if (!exitHookInstalled) {
        exitHookInstalled = true;
        process.once("exit", reportAllUnhandled);
      }
    }
  }

  debugTracebacks(): string {
    let info = "";
    if (this.creator !== null) info += ` C: Deferred was created:\n C:${this.creator.replace(/\n/g, "\n C:")}\n`;
    if (this.invoker !== null) info += ` I: First Invoker was:\n I:${this.invoker.replace(/\n/g, "\n I:")}\n`;
    return info;
  }
}

const deferLog = new Logger("twisted-ts.internet.defer");

function reportUnhandled(info: DebugInfo): void {
  const f = info.failResult;
  if (f === null) return;
  info.failResult = null;
  // Two events, as Twisted logs them.
  deferLog.critical("Unhandled error in Deferred:", { isError: true });
  const debugInfo = info.debugTracebacks();
  deferLog.failure(debugInfo ? "(debug: {debugInfo})" : "", f, "critical", { debugInfo, isError: true });
}

const unhandledRegistry = new FinalizationRegistry<DebugInfo>(reportUnhandled);

/** The DebugInfos whose Deferred currently ends in a Failure (they do not keep the Deferred alive). */
const failedInfos = new Set<DebugInfo>();
let exitHookInstalled = false;

/**
 * Reports every Deferred that currently ends in an unhandled Failure, as if it had been collected
 * now, and forgets them. Runs by itself when the process exits (Node often exits before the garbage
 * collector would have found them); a test harness may call it at the end of a test. Returns how
 * many were reported.
 */
export function reportAllUnhandled(): number {
  const infos = [...failedInfos];
  for (const info of infos) reportUnhandled(info);
  return infos.length;
}

function stackHere(): string {
  const s = new Error().stack ?? "";
  return s.split("\n").slice(3).join("\n");
}

// ---- Deferred ---------------------------------------------------------------------------------

/**
 * A result that is not there yet: Twisted's `Deferred`.
 *
 * Callbacks run synchronously as soon as a result is available. A callback's return value replaces
 * the result; a throw (or a returned `Failure`) switches to the errback path; an errback's return
 * value switches back. A returned Deferred or Promise pauses this chain until it fires, iteratively
 * (no stack growth however long the chain). Deferreds are thenables: `await d` gives the result or
 * throws `failure.value`.
 */
export class Deferred<T = unknown> implements PromiseLike<T> {
  /** When true, creation and first-invocation stacks are recorded for error messages (`setDebugging`). */
  static debug = false;

  /** True once `callback` or `errback` has been called. */
  called = false;
  /** The pause counter: callbacks run only while it is 0. */
  paused = 0;
  /**
   * The current result: `undefined` before firing; a `Failure` on the errback path; the Deferred
   * this one waits on while chained; `undefined` after the result was moved to a waiting Deferred.
   */
  result: unknown = undefined;

  private _callbacks: (Link | AnyFn | Deferred<unknown>)[] = [];
  private _cbIndex = 0;
  private readonly _canceller: ((d: Deferred<T>) => void) | undefined;
  private _suppressAlreadyCalled = false;
  private _runningCallbacks = false;
  private _chainedTo: Deferred<unknown> | null = null;
  private _debugInfo: DebugInfo | null = null;

  /**
   * @param canceller called by `cancel()` before this Deferred has fired; if it does not fire the
   *   Deferred, `cancel()` errbacks it with `CancelledError`.
   */
  constructor(canceller?: (d: Deferred<T>) => void) {
    this._canceller = canceller;
    if (Deferred.debug) {
      this._debugInfo = this._newDebugInfo();
      this._debugInfo.creator = stackHere();
    }
  }

  /** A Deferred that fires when `p` settles (a rejection becomes a Failure). */
  static fromPromise<U>(p: PromiseLike<U>): Deferred<U> {
    const d = new Deferred<U>();
    p.then(
      (v) => d.callback(v),
      (e: unknown) => d.errback(e),
    );
    return d;
  }

  /** Adds a callback and an errback (Twisted's `addCallbacks`); `errback` defaults to pass-through. */
  addCallbacks<U, V = never, A extends unknown[] = [], B extends unknown[] = []>(
    callback: (result: T, ...args: A) => Awaitable<U> | Failure,
    errback?: ((failure: Failure, ...args: B) => Awaitable<V> | Failure) | null,
    options?: AddCallbacksOptions<A, B>,
  ): Deferred<U | V> {
    if (typeof callback !== "function") throw new TypeError(`addCallbacks: callback must be a function, got ${typeof callback}`);
    if (errback !== undefined && errback !== null && typeof errback !== "function") {
      throw new TypeError(`addCallbacks: errback must be a function, got ${typeof errback}`);
    }
    return this._add(
      callback as AnyFn,
      options?.callbackArgs ?? NO_ARGS,
      (errback ?? null) as AnyFn | null,
      options?.errbackArgs ?? NO_ARGS,
    ) as Deferred<U | V>;
  }

  /** Adds a callback, called as `fn(result, ...args)`. */
  addCallback<U, A extends unknown[] = []>(fn: (result: T, ...args: A) => Awaitable<U> | Failure, ...args: A): Deferred<U>;
  addCallback(fn: (result: never, ...args: never[]) => unknown): Deferred<unknown> {
    if (typeof fn !== "function") throw new TypeError(`addCallback: callback must be a function, got ${typeof fn}`);
    // `arguments` rather than a rest parameter: no array is allocated for the common no-argument case.
    // eslint-disable-next-line prefer-rest-params
    if (arguments.length > 1) {
      this._callbacks.push({ cb: fn as AnyFn, cbArgs: Array.prototype.slice.call(arguments, 1), eb: null, ebArgs: NO_ARGS });
    } else {
      this._callbacks.push(fn as AnyFn);
    }
    if (this.called) this._runCallbacks();
    return this as Deferred<unknown>;
  }

  /** Adds an errback, called as `fn(failure, ...args)`; successes pass it by. */
  addErrback<U = never, A extends unknown[] = []>(fn: (failure: Failure, ...args: A) => Awaitable<U> | Failure, ...args: A): Deferred<T | U> {
    if (typeof fn !== "function") throw new TypeError(`addErrback: errback must be a function, got ${typeof fn}`);
    return this._add(null, NO_ARGS, fn as AnyFn, args) as Deferred<T | U>;
  }

  /** Adds `fn` as both callback and errback. */
  addBoth<U, A extends unknown[] = []>(fn: (result: T | Failure, ...args: A) => Awaitable<U> | Failure, ...args: A): Deferred<U> {
    if (typeof fn !== "function") throw new TypeError(`addBoth: callback must be a function, got ${typeof fn}`);
    return this._add(fn as AnyFn, args, fn as AnyFn, args) as Deferred<U>;
  }

  private _add(cb: AnyFn | null, cbArgs: readonly unknown[], eb: AnyFn | null, ebArgs: readonly unknown[]): Deferred<unknown> {
    this._callbacks.push({ cb, cbArgs, eb, ebArgs });
    if (this.called) this._runCallbacks();
    return this as Deferred<unknown>;
  }

  /**
   * Times this Deferred out: after `seconds` on `clock` it is cancelled, and a `CancelledError`
   * becomes a `TimeoutError` (or whatever `onTimeoutCancel(value, seconds)` returns). Covers only
   * the callbacks added before this call.
   */
  addTimeout(seconds: number, clock: IReactorTime, onTimeoutCancel?: (value: unknown, timeout: number) => unknown): Deferred<T> {
    let timedOut = false;
    const delayedCall = clock.callLater(seconds, () => {
      timedOut = true;
      this.cancel();
    });
    this.addBoth((value) => {
      if (!timedOut) return value;
      return (onTimeoutCancel ?? cancelledToTimedOutError)(value, seconds);
    });
    this.addBoth((value) => {
      if (delayedCall.active()) delayedCall.cancel();
      return value;
    });
    return this as Deferred<T>;
  }

  /**
   * Fires `d` with this Deferred's result (`addCallbacks(d.callback, d.errback)`); this Deferred's
   * result becomes `undefined`. Not iterative, unlike returning `d` from a callback.
   */
  chainDeferred(d: Deferred<T>): Deferred<void> {
    d._chainedTo = this as Deferred<unknown>;
    return this.addCallbacks(
      (r) => d.callback(r),
      (f) => d.errback(f),
    );
  }

  /** Fires the Deferred with a result. Throws `AlreadyCalledError` if it has already fired. */
  callback(result: T): void {
    if (result instanceof Deferred) {
      throw new TypeError(
        (result as unknown) === this
          ? "Deferred.callback() was passed the Deferred itself"
          : "Deferred.callback() was passed a Deferred; return it from a callback or use chainDeferred instead",
      );
    }
    this._startRunCallbacks(result);
  }

  /** Fails the Deferred: `fail` is wrapped in a `Failure` unless it is one. */
  errback(fail: unknown): void {
    this._startRunCallbacks(asFailure(fail));
  }

  /** Increments the pause counter: no callbacks run until `unpause` brings it back to 0. */
  pause(): void {
    this.paused++;
  }

  /** Decrements the pause counter and, at 0, runs the callbacks added since. */
  unpause(): void {
    this.paused--;
    if (this.paused) return;
    if (this.called) this._runCallbacks();
  }

  /**
   * Cancels: before firing, calls the canceller, then (if still unfired) errbacks with
   * `CancelledError`; with no canceller, the one `callback`/`errback` that comes later is swallowed.
   * A fired Deferred that waits on another forwards the cancellation to that one.
   */
  cancel(): void {
    if (!this.called) {
      const canceller = this._canceller;
      if (canceller) canceller(this);
      else this._suppressAlreadyCalled = true;
      if (!this.called) this.errback(new Failure(new CancelledError()));
    } else if (this.result instanceof Deferred) {
      this.result.cancel();
    }
  }

  /** Thenable: registers `onfulfilled`/`onrejected` like a Promise; see `asPromise`. */
  then<R1 = T, R2 = never>(
    onfulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onrejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.asPromise().then(onfulfilled, onrejected);
  }

  /**
   * A Promise for the result: it resolves with the result or rejects with `failure.value` (the
   * original thrown value when that was not an Error).
   * As Twisted's `asFuture`, this consumes the result (the Deferred's result becomes `undefined`,
   * and a failure counts as handled).
   */
  asPromise(): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this._add(
        (r) => {
          resolve(r as T);
          return undefined;
        },
        NO_ARGS,
        (f) => {
          const value = (f as Failure).value;
          reject(value instanceof NonErrorThrown ? value.thrown : value);
          return undefined;
        },
        NO_ARGS,
      );
    });
  }

  /** @internal Puts an errback before all pending ones (`inlineCallbacks`' canceller needs it). */
  _prependErrback(fn: (f: Failure) => unknown): void {
    this._callbacks.splice(this._cbIndex, 0, { cb: null, cbArgs: NO_ARGS, eb: fn as AnyFn, ebArgs: NO_ARGS });
  }

  private _newDebugInfo(): DebugInfo {
    const info = new DebugInfo();
    unhandledRegistry.register(this, info);
    return info;
  }

  private _startRunCallbacks(result: unknown): void {
    if (this.called) {
      if (this._suppressAlreadyCalled) {
        this._suppressAlreadyCalled = false;
        return;
      }
      if (Deferred.debug) {
        if (this._debugInfo === null) this._debugInfo = this._newDebugInfo();
        throw new AlreadyCalledError(`Deferred has already been called\n${this._debugInfo.debugTracebacks()}`);
      }
      throw new AlreadyCalledError();
    }
    if (Deferred.debug) {
      if (this._debugInfo === null) this._debugInfo = this._newDebugInfo();
      this._debugInfo.invoker = stackHere();
    }
    this.called = true;
    this.result = result;
    this._runCallbacks();
  }

  /**
   * Runs the callbacks, following Twisted's iterative algorithm: a Deferred returned by a callback
   * either has its result taken at once, or gets a continuation link and the current Deferred
   * pauses; when the inner one reaches the link, the waiting Deferred is pushed on `chain` and
   * processed in this same loop.
   */
  private _runCallbacks(): void {
    if (this._runningCallbacks) return;
    // The Deferreds below `current` whose results are still to be taken up (Twisted's `chain`),
    // allocated only when a continuation is reached.
    let chain: Deferred<unknown>[] | null = null;
    let current = this as Deferred<unknown>;
    for (;;) {
      if (current.paused) return;
      const chainee = current._runLinks();
      if (chainee !== null) {
        (chain ??= []).push(current);
        current = chainee;
        continue;
      }
      current._finishRun();
      if (chain === null || chain.length === 0) return;
      current = chain.pop()!;
    }
  }

  /**
   * Runs this Deferred's pending links. Returns the waiting Deferred when a continuation link hands
   * it this Deferred's result, or null when the links ran out or this Deferred now waits on another.
   */
  private _runLinks(): Deferred<unknown> | null {
    this._chainedTo = null;
    const links = this._callbacks;
    while (this._cbIndex < links.length) {
      const link = links[this._cbIndex++]!;
      if (typeof link === "function") {
        if (this.result instanceof Failure) continue;
        this._runningCallbacks = true;
        let r: unknown;
        try {
          r = link(this.result);
        } catch (e) {
          this._runningCallbacks = false;
          this.result = asFailure(e);
          continue;
        }
        this._runningCallbacks = false;
        if (r === null || (typeof r !== "object" && typeof r !== "function") || r instanceof Failure) this.result = r;
        else if (!this._adopt(r)) return null;
        continue;
      }
      if (link instanceof Deferred) {
        const chainee = link;
        chainee.result = this.result;
        this.result = undefined;
        if (this._debugInfo !== null) this._debugInfo.failResult = null;
        chainee.paused--;
        return chainee;
      }
      const failed = this.result instanceof Failure;
      const fn = failed ? link.eb : link.cb;
      if (fn === null) continue;
      const args = failed ? link.ebArgs : link.cbArgs;
      this._runningCallbacks = true;
      let r: unknown;
      try {
        r = args.length === 0 ? fn(this.result) : fn(this.result, ...args);
      } catch (e) {
        this._runningCallbacks = false;
        this.result = asFailure(e);
        continue;
      }
      this._runningCallbacks = false;
      if (r === null || (typeof r !== "object" && typeof r !== "function") || r instanceof Failure) {
        this.result = r;
        continue;
      }
      if (!this._adopt(r)) return null;
    }
    return null;
  }

  /**
   * Takes a callback's object result: a fired Deferred's result is taken at once (true: go on);
   * an unfired Deferred or a thenable makes this Deferred pause and wait on it (false: stop).
   */
  private _adopt(r: object): boolean {
    let inner: Deferred<unknown>;
    if (r instanceof Deferred) {
      if (r === this) {
        this.result = new Failure(new TypeError("A callback returned the Deferred it was attached to; that would wait forever"));
        return true;
      }
      inner = r;
      const innerResult = inner.result;
      if (inner.called && !(innerResult instanceof Deferred) && !inner.paused) {
        inner.result = undefined;
        if (inner._debugInfo !== null) inner._debugInfo.failResult = null;
        this.result = innerResult;
        return true;
      }
    } else if (typeof (r as { then?: unknown }).then === "function") {
      inner = Deferred.fromPromise(r as PromiseLike<unknown>);
    } else {
      this.result = r;
      return true;
    }
    // The inner Deferred has no result, so it is not running its callbacks: append directly.
    this.result = inner;
    this.paused++;
    this._chainedTo = inner;
    inner._callbacks.push(this as Deferred<unknown>);
    return false;
  }

  /** Done for now: recycle the consumed links and record a final Failure for unhandled-error reporting. */
  private _finishRun(): void {
    if (this._cbIndex > 0 && this._cbIndex >= this._callbacks.length) {
      this._callbacks = [];
      this._cbIndex = 0;
    }
    if (this.result instanceof Failure) {
      if (this._debugInfo === null) this._debugInfo = this._newDebugInfo();
      this._debugInfo.failResult = this.result;
    } else if (this._debugInfo !== null) {
      this._debugInfo.failResult = null;
    }
  }

  /** `Deferred`, `Deferred (waiting on Deferred)` or `Deferred (current result: …)`, as Twisted's repr. */
  toString(): string {
    if (this._chainedTo !== null) return `<${this.constructor.name} waiting on Deferred>`;
    if (!this.called) return `<${this.constructor.name}>`;
    return `<${this.constructor.name} current result: ${String(this.result)}>`;
  }
}

function cancelledToTimedOutError(value: unknown, timeout: number): unknown {
  if (value instanceof Failure) {
    value.trap(CancelledError);
    throw new TimeoutError(timeout, "Deferred");
  }
  return value;
}

/** A Deferred that has already fired with `result`. */
export function succeed<T>(result: T): Deferred<T> {
  const d = new Deferred<T>();
  d.callback(result);
  return d;
}

/** A Deferred that has already failed with `error` (wrapped in a Failure unless it is one). */
export function fail<T = never>(error: unknown): Deferred<T> {
  const d = new Deferred<T>();
  d.errback(error);
  return d;
}

/**
 * Calls `fn(...args)` and returns its result as a Deferred: a returned Deferred as is, a Promise
 * converted, a returned Failure or a throw as a failed Deferred, anything else as a fired one.
 */
export function maybeDeferred<U, A extends unknown[]>(fn: (...args: A) => Awaitable<U> | Failure, ...args: A): Deferred<U> {
  let r: unknown;
  try {
    r = fn(...args);
  } catch (e) {
    return fail<U>(e);
  }
  if (r instanceof Deferred) return r as Deferred<U>;
  if (r instanceof Failure) return fail<U>(r);
  if (r !== null && (typeof r === "object" || typeof r === "function") && typeof (r as { then?: unknown }).then === "function") {
    return Deferred.fromPromise(r as PromiseLike<U>);
  }
  return succeed(r as U);
}

/** Calls `fn(...args)` and returns a Deferred fired with its return value or failed with its throw. */
export function execute<U, A extends unknown[]>(fn: (...args: A) => U, ...args: A): Deferred<U> {
  try {
    return succeed(fn(...args));
  } catch (e) {
    return fail<U>(e);
  }
}

/** Returns its argument: the pass-through callback. */
export function passthru<T>(arg: T): T {
  return arg;
}

/** Turns Deferred debugging on or off: creation and invocation stacks go into errors and reports. */
export function setDebugging(on: boolean): void {
  Deferred.debug = on;
}

/** Whether Deferred debugging is on. */
export function getDebugging(): boolean {
  return Deferred.debug;
}

/** An errback that logs the failure and passes it on (Twisted's `defer.logError`). */
export function logError(err: Failure): Failure {
  deferLog.failure("", err);
  return err;
}
