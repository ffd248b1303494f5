/**
 * `twisted.internet.task`: a deterministic `Clock` for tests, `LoopingCall`, `deferLater` and
 * `react`, plus the `IDelayedCall` / `IReactorTime` interfaces the reactor implements too.
 */

import { Deferred, ensureDeferred, maybeDeferred } from "./defer.js";
import type { Awaitable } from "./defer.js";
import { Failure } from "./failure.js";
import { err as logErr } from "./log.js";
import { realTimeClock } from "./_internal/task_realtime.js";
import { AlreadyCalled, AlreadyCancelled } from "./_internal/task_errors.js";
import type { IDelayedCall, IReactorTime } from "./_internal/task_time.js";
import type { IReactor, IReactorCore } from "./interfaces.js";

export type { IDelayedCall, IReactorTime } from "./_internal/task_time.js";
export { AlreadyCalled, AlreadyCancelled } from "./_internal/task_errors.js";

/** A call scheduled on a {@link Clock} (Twisted's `base.DelayedCall`). */
export class DelayedCall implements IDelayedCall {
  /** Set once the call has run. */
  called = false;
  /** Set once the call has been cancelled. */
  cancelled = false;
  time: number;
  delayedTime = 0;

  constructor(
    time: number,
    readonly func: (...args: unknown[]) => unknown,
    readonly args: readonly unknown[],
    private readonly canceller: (c: DelayedCall) => void,
    private readonly resetter: (c: DelayedCall) => void,
    private readonly now: () => number,
  ) {
    this.time = time;
  }

  getTime(): number {
    return this.time + this.delayedTime;
  }

  private check(): void {
    if (this.cancelled) throw new AlreadyCancelled();
    if (this.called) throw new AlreadyCalled();
  }

  /** Unschedules the call; throws `AlreadyCancelled` or `AlreadyCalled` when it is too late. */
  cancel(): void {
    this.check();
    this.canceller(this);
    this.cancelled = true;
  }

  /** Reschedules the call `secondsFromNow` after the current time. */
  reset(secondsFromNow: number): void {
    this.check();
    const newTime = this.now() + secondsFromNow;
    if (newTime < this.time) {
      this.delayedTime = 0;
      this.time = newTime;
      this.resetter(this);
    } else {
      this.delayedTime = newTime - this.time;
    }
  }

  /** Moves the call `secondsLater` later (or earlier, with a negative value). */
  delay(secondsLater: number): void {
    this.check();
    this.delayedTime += secondsLater;
    if (this.delayedTime < 0) {
      this.time += this.delayedTime;
      this.delayedTime = 0;
      this.resetter(this);
    }
  }

  active(): boolean {
    return !(this.cancelled || this.called);
  }

  toString(): string {
    return `<DelayedCall ${this.func.name || "anonymous"} at ${this.getTime()}${this.called ? " called" : ""}${this.cancelled ? " cancelled" : ""}>`;
  }
}

/**
 * A deterministic `IReactorTime`: time moves only when `advance` is called. `callLater(0)` does not
 * run until the next `advance`; `advance` runs every call due at or before the new time, including
 * calls scheduled during the advance that are already due.
 */
export class Clock implements IReactorTime {
  rightNow = 0;
  /** The pending calls, sorted by time (ties in scheduling order). */
  calls: DelayedCall[] = [];

  seconds(): number {
    return this.rightNow;
  }

  private sortCalls(): void {
    this.calls.sort((a, b) => a.getTime() - b.getTime());
  }

  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => unknown, ...args: A): DelayedCall {
    const dc = new DelayedCall(
      this.seconds() + delay,
      fn as (...args: unknown[]) => unknown,
      args,
      (c) => {
        const i = this.calls.indexOf(c);
        if (i >= 0) this.calls.splice(i, 1);
      },
      () => {},
      () => this.seconds(),
    );
    this.calls.push(dc);
    this.sortCalls();
    return dc;
  }

  getDelayedCalls(): DelayedCall[] {
    return this.calls;
  }

  /** Moves time forward by `amount` seconds and runs the calls that are due. A call's throw propagates. */
  advance(amount: number): void {
    this.rightNow += amount;
    this.sortCalls();
    while (this.calls.length > 0 && this.calls[0]!.getTime() <= this.seconds()) {
      const call = this.calls.shift()!;
      call.called = true;
      call.func(...call.args);
      this.sortCalls();
    }
  }

  /** `advance` by each amount in turn. */
  pump(timings: Iterable<number>): void {
    for (const t of timings) this.advance(t);
  }
}

/**
 * Calls a function every `interval` seconds (Twisted's `LoopingCall`). If the function returns a
 * Deferred or Promise, the next call is scheduled after it fires; a failure stops the loop and fails
 * the Deferred `start` returned. Calls stay on the `starttime + k * interval` grid (skipped
 * intervals are not made up; see `withCount`).
 */
export class LoopingCall<A extends unknown[] = []> {
  /** The scheduler; a real-time clock unless replaced (tests assign a `Clock`). */
  clock: IReactorTime = realTimeClock();
  running = false;
  interval: number | null = null;
  starttime: number | null = null;
  /** The pending scheduled call, if any. */
  call: IDelayedCall | null = null;
  readonly f: (...args: A) => unknown;
  readonly a: A;
  private deferred: Deferred<LoopingCall<A>> | null = null;
  private runAtStart = false;
  private realLastTime: number | null = null;

  constructor(f: (...args: A) => unknown, ...a: A) {
    this.f = f;
    this.a = a;
  }

  /**
   * A LoopingCall that calls `countCallable(n)` with the number of intervals that have passed since
   * the last call (more than 1 when the clock jumped past several intervals).
   */
  static withCount(countCallable: (count: number) => unknown): LoopingCall {
    const self: LoopingCall = new LoopingCall(() => {
      const now = self.clock.seconds();
      const interval = self.interval!;
      if (interval === 0) {
        self.realLastTime = now;
        return countCallable(1);
      }
      let lastTime = self.realLastTime;
      if (lastTime === null) {
        lastTime = self.starttime!;
        if (self.runAtStart) lastTime -= interval;
      }
      const count = self.intervalOf(now) - self.intervalOf(lastTime);
      if (count > 0) {
        self.realLastTime = now;
        return countCallable(count);
      }
      return undefined;
    });
    return self;
  }

  private intervalOf(t: number): number {
    return Math.trunc((t - this.starttime!) / this.interval!);
  }

  /**
   * Starts calling every `interval` seconds, at once when `now` is true. Returns a Deferred fired
   * with this LoopingCall when `stop()` is called, or failed when the function fails.
   */
  start(interval: number, now = true): Deferred<LoopingCall<A>> {
    if (this.running) throw new Error("Tried to start an already running LoopingCall.");
    if (interval < 0) throw new RangeError("interval must be >= 0");
    this.running = true;
    const deferred = new Deferred<LoopingCall<A>>();
    this.deferred = deferred;
    this.starttime = this.clock.seconds();
    this.interval = interval;
    this.runAtStart = now;
    if (now) this.run();
    else this.scheduleFrom(this.starttime);
    return deferred;
  }

  /** Stops the loop; the Deferred from `start` fires with this LoopingCall (after a pending run ends). */
  stop(): void {
    if (!this.running) throw new Error("Tried to stop a LoopingCall that was not running.");
    this.running = false;
    if (this.call !== null) {
      this.call.cancel();
      this.call = null;
      const d = this.deferred!;
      this.deferred = null;
      d.callback(this);
    }
  }

  /** Skips the next iteration and restarts the interval from now. */
  reset(): void {
    if (!this.running) throw new Error("Tried to reset a LoopingCall that was not running.");
    if (this.call !== null) {
      this.call.cancel();
      this.call = null;
      this.starttime = this.clock.seconds();
      this.scheduleFrom(this.starttime);
    }
  }

  private run(): void {
    this.call = null;
    const d = maybeDeferred(this.f, ...this.a);
    d.addCallback(() => {
      if (this.running) {
        this.scheduleFrom(this.clock.seconds());
      } else {
        const def = this.deferred!;
        this.deferred = null;
        def.callback(this);
      }
    });
    d.addErrback((f) => {
      this.running = false;
      const def = this.deferred!;
      this.deferred = null;
      def.errback(f);
    });
  }

  private scheduleFrom(when: number): void {
    const interval = this.interval!;
    let howLong: number;
    if (interval === 0) {
      howLong = 0;
    } else {
      const runningFor = when - this.starttime!;
      const untilNextInterval = interval - (runningFor % interval);
      howLong = when === when + untilNextInterval ? interval : untilNextInterval;
    }
    this.call = this.clock.callLater(howLong, () => this.run());
  }

  toString(): string {
    return `LoopingCall<${String(this.interval)}>(${this.f.name || "anonymous"})`;
  }
}

/**
 * A Deferred fired after `delay` seconds on `clock` with `fn(...args)` (or `undefined` without
 * `fn`). Cancelling it cancels the scheduled call.
 */
export function deferLater<U = undefined, A extends unknown[] = []>(
  clock: IReactorTime,
  delay: number,
  fn?: (...args: A) => Awaitable<U>,
  ...args: A
): Deferred<U> {
  const d = new Deferred<undefined>(() => delayedCall.cancel());
  const result = d.addCallback(() => (fn === undefined ? (undefined as U) : fn(...args)));
  const delayedCall = clock.callLater(delay, () => d.callback(undefined));
  return result;
}

/** Thrown (or used to fail) inside `react`'s main function to end with a given exit code. */
export class SystemExit extends Error {
  readonly code: number;
  constructor(code = 0) {
    super(`exit ${code}`);
    this.name = "SystemExit";
    this.code = code;
  }
}

/** What `react` needs of a reactor: run/stop, triggers and time (the real reactor provides it). */
export type ReactReactor = IReactorCore & IReactorTime;

/**
 * Twisted's `task.react`: runs the reactor, calls `main(reactor, ...argv)`, and when the Deferred
 * or Promise it returns settles, stops the reactor. A failure is logged ("main function encountered
 * error") and gives exit code 1; a `SystemExit` failure gives its `code`; success gives 0. The code
 * goes to `process.exitCode` and resolves the returned Promise once the reactor has shut down
 * (Twisted calls `sys.exit`; we leave ending the process to Node). If the reactor is shut down
 * some other way before `main` finishes, the code is 0.
 *
 * `reactor` defaults to the global reactor (`@twisted-ts/internet/reactor`); tests pass their own.
 */
export async function react<A extends unknown[], R extends ReactReactor = IReactor>(
  main: (reactor: R, ...argv: A) => Awaitable<unknown>,
  argv?: A,
  reactor?: R,
): Promise<number> {
  const r = reactor ?? ((await import("./reactor.js")).reactor as unknown as R);
  let code = 0;
  let stopping = false;
  r.addSystemEventTrigger("before", "shutdown", () => {
    stopping = true;
  });
  const stop = (result: unknown, stopReactor: boolean): void => {
    if (stopReactor) {
      try {
        r.stop();
      } catch (e) {
        if (!(e instanceof Error && e.name === "ReactorNotRunning")) throw e;
      }
    }
    if (result instanceof Failure) {
      if (result.value instanceof SystemExit) code = result.value.code;
      else {
        logErr(result, "main function encountered error");
        code = 1;
      }
    }
  };
  const finished = ensureDeferred(maybeDeferred(main, r, ...((argv ?? []) as A)));
  finished.addBoth((result) => {
    if (stopping) stop(result, false);
    else r.callWhenRunning(stop as (...args: never[]) => unknown, result, true);
  });
  await r.run();
  process.exitCode = code;
  return code;
}
