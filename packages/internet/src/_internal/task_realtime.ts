/**
 * A real-time `IReactorTime` over Node timers: the default clock of `LoopingCall`, `react` and
 * `deferLater` when no reactor or Clock is passed. Calls keep the event loop alive, as the reactor's do.
 */

import type { IDelayedCall, IReactorTime } from "./task_time.js";
import { AlreadyCalled, AlreadyCancelled } from "./task_errors.js";

class TimerCall implements IDelayedCall {
  private timer: NodeJS.Timeout | null = null;
  private state: "pending" | "called" | "cancelled" = "pending";

  constructor(
    private readonly owner: RealTimeClock,
    private time: number,
    private readonly run: () => void,
  ) {
    this.arm();
  }

  private arm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    const ms = Math.max(0, (this.time - this.owner.seconds()) * 1000);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.state = "called";
      this.owner.calls.delete(this);
      this.run();
    }, ms);
  }

  private check(): void {
    if (this.state === "cancelled") throw new AlreadyCancelled();
    if (this.state === "called") throw new AlreadyCalled();
  }

  getTime(): number {
    return this.time;
  }
  cancel(): void {
    this.check();
    this.state = "cancelled";
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.owner.calls.delete(this);
  }
  delay(secondsLater: number): void {
    this.check();
    this.time += secondsLater;
    this.arm();
  }
  reset(secondsFromNow: number): void {
    this.check();
    this.time = this.owner.seconds() + secondsFromNow;
    this.arm();
  }
  active(): boolean {
    return this.state === "pending";
  }
}

export class RealTimeClock implements IReactorTime {
  readonly calls = new Set<TimerCall>();
  seconds(): number {
    return (performance.timeOrigin + performance.now()) / 1000;
  }
  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => unknown, ...args: A): IDelayedCall {
    const c = new TimerCall(this, this.seconds() + delay, () => void fn(...args));
    this.calls.add(c);
    return c;
  }
  getDelayedCalls(): IDelayedCall[] {
    return [...this.calls];
  }
}

let shared: RealTimeClock | null = null;

/** The process-wide real-time clock. */
export function realTimeClock(): IReactorTime {
  shared ??= new RealTimeClock();
  return shared;
}
