/**
 * The reactor's timed calls: an `IDelayedCall` over a Node timer. A call that throws is logged
 * and does not disturb the reactor, as Twisted's `runUntilCurrent` does.
 */
import { Failure } from "../failure.js";
import { AlreadyCalled, AlreadyCancelled } from "./task_errors.js";
import type { IDelayedCall } from "./task_time.js";
import type { Logger } from "../log.js";

/** The reactor side a DelayedCall needs. */
export interface TimerOwner {
  seconds(): number;
  readonly log: Logger;
  readonly delayedCalls: Set<ReactorDelayedCall>;
}

export class ReactorDelayedCall implements IDelayedCall {
  called = false;
  cancelled = false;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly owner: TimerOwner,
    private time: number,
    readonly func: (...args: unknown[]) => unknown,
    readonly args: readonly unknown[],
  ) {
    owner.delayedCalls.add(this);
    this.arm();
  }

  private arm(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    const ms = Math.max(0, (this.time - this.owner.seconds()) * 1000);
    this.timer = setTimeout(() => this.fire(), ms);
  }

  private fire(): void {
    this.timer = null;
    // Node timers may fire a little early relative to our clock; run anyway (never re-arm forever).
    this.called = true;
    this.owner.delayedCalls.delete(this);
    try {
      this.func(...this.args);
    } catch (e) {
      this.owner.log.failure("Unhandled error in delayed call {call}", new Failure(e), "critical", { call: this.func.name || "anonymous" });
    }
  }

  private check(): void {
    if (this.cancelled) throw new AlreadyCancelled();
    if (this.called) throw new AlreadyCalled();
  }

  getTime(): number {
    return this.time;
  }

  cancel(): void {
    this.check();
    this.cancelled = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.owner.delayedCalls.delete(this);
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
    return !(this.called || this.cancelled);
  }

  toString(): string {
    return `<DelayedCall ${this.func.name || "anonymous"} at ${this.time}>`;
  }
}
