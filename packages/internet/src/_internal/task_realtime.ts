/**
 * A real-time `IReactorTime` over Node timers: the default clock of `LoopingCall`, `react` and
 * `deferLater` when no reactor or Clock is passed (task cannot import the reactor, which imports
 * task). Its calls are the reactor's own DelayedCalls: they keep the event loop alive, and one
 * that throws is logged rather than crashing the process.
 */
import { Logger } from "../log.js";
import { ReactorDelayedCall } from "./reactor_time.js";
import type { IDelayedCall, IReactorTime } from "./task_time.js";

export class RealTimeClock implements IReactorTime {
  readonly delayedCalls = new Set<ReactorDelayedCall>();
  readonly log = new Logger("twisted-ts.internet.task");
  seconds(): number {
    return (performance.timeOrigin + performance.now()) / 1000;
  }
  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => unknown, ...args: A): IDelayedCall {
    return new ReactorDelayedCall(this, this.seconds() + delay, fn as (...a: unknown[]) => unknown, args);
  }
  getDelayedCalls(): IDelayedCall[] {
    return [...this.delayedCalls];
  }
}

let shared: RealTimeClock | null = null;

/** The process-wide real-time clock. */
export function realTimeClock(): IReactorTime {
  shared ??= new RealTimeClock();
  return shared;
}
