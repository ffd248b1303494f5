/**
 * The time interfaces shared by `task.Clock`, the reactor and `Deferred.addTimeout`
 * (`twisted.internet.interfaces.IDelayedCall` / `IReactorTime`). Re-exported from `task`.
 */

/** A call scheduled with `callLater`. */
export interface IDelayedCall {
  /** The time (in the scheduler's `seconds()`) at which the call will run. */
  getTime(): number;
  /** Stops the call from running. Throws `AlreadyCancelled` / `AlreadyCalled` when it is too late. */
  cancel(): void;
  /** Moves the call `secondsLater` further into the future. Throws like `cancel` when inactive. */
  delay(secondsLater: number): void;
  /** Reschedules the call to run `secondsFromNow` after the current time. Throws like `cancel` when inactive. */
  reset(secondsFromNow: number): void;
  /** True until the call has run or been cancelled. */
  active(): boolean;
}

/** A scheduler of timed calls: the reactor, or a `task.Clock` in tests. */
export interface IReactorTime {
  /** The current time in seconds. */
  seconds(): number;
  /** Runs `fn(...args)` after `delay` seconds. */
  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => unknown, ...args: A): IDelayedCall;
  /** The calls that are scheduled and have not run or been cancelled. */
  getDelayedCalls(): IDelayedCall[];
}
