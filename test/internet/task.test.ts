import { test } from "node:test";
import assert from "node:assert/strict";
import { CancelledError, Deferred, fail, succeed } from "@twisted-ts/internet/defer";
import { Failure } from "@twisted-ts/internet/failure";
import { globalLogPublisher, eventAsText } from "@twisted-ts/internet/log";
import type { LogEvent } from "@twisted-ts/internet/log";
import { AlreadyCalled, AlreadyCancelled, Clock, LoopingCall, SystemExit, deferLater, react } from "@twisted-ts/internet/task";
import type { IReactorTime } from "@twisted-ts/internet/task";

class TestException extends Error {}

// ---- Clock --------------------------------------------------------------------------------------

test("Clock starts at 0 and seconds() follows advance", () => {
  const c = new Clock();
  assert.equal(c.seconds(), 0);
  c.advance(1.5);
  assert.equal(c.seconds(), 1.5);
});

test("callLater returns an IDelayedCall with its time, active until it runs", () => {
  const c = new Clock();
  const got: unknown[] = [];
  const call = c.callLater(1, (a: string, b: number) => got.push([a, b]), "x", 2);
  assert.equal(call.getTime(), 1);
  assert.equal(call.active(), true);
  c.advance(1);
  assert.deepEqual(got, [["x", 2]]);
  assert.equal(call.active(), false);
  assert.throws(() => call.cancel(), AlreadyCalled);
  assert.throws(() => call.reset(1), AlreadyCalled);
  assert.throws(() => call.delay(1), AlreadyCalled);
});

test("callLater(0) does not run until advance", () => {
  const c = new Clock();
  let ran = false;
  c.callLater(0, () => {
    ran = true;
  });
  assert.equal(ran, false);
  c.advance(0);
  assert.equal(ran, true);
});

test("a cancelled call does not run, and cancelling twice throws AlreadyCancelled", () => {
  const c = new Clock();
  let ran = false;
  const call = c.callLater(1, () => {
    ran = true;
  });
  call.cancel();
  assert.equal(call.active(), false);
  assert.deepEqual(c.getDelayedCalls(), []);
  assert.throws(() => call.cancel(), AlreadyCancelled);
  assert.throws(() => call.delay(1), AlreadyCancelled);
  c.advance(2);
  assert.equal(ran, false);
});

test("calls run in time order, ties in the order they were scheduled", () => {
  const c = new Clock();
  const order: string[] = [];
  c.callLater(2, () => order.push("b"));
  c.callLater(1, () => order.push("a1"));
  c.callLater(1, () => order.push("a2"));
  c.callLater(3, () => order.push("c"));
  c.advance(2);
  assert.deepEqual(order, ["a1", "a2", "b"]);
  c.advance(1);
  assert.deepEqual(order, ["a1", "a2", "b", "c"]);
});

test("advance runs calls scheduled during the advance whose time has already come", () => {
  const c = new Clock();
  const order: string[] = [];
  c.callLater(1, () => {
    order.push("first");
    c.callLater(0, () => order.push("zero-delay from inside"));
    c.callLater(5, () => order.push("later"));
  });
  c.advance(2);
  assert.deepEqual(order, ["first", "zero-delay from inside"]);
});

test("a call can cancel another call due in the same advance", () => {
  const c = new Clock();
  const order: string[] = [];
  const second = c.callLater(2, () => order.push("second"));
  c.callLater(1, () => {
    order.push("first");
    second.cancel();
  });
  c.advance(3);
  assert.deepEqual(order, ["first"]);
});

test("delay moves a call later, reset moves it relative to now", () => {
  const c = new Clock();
  const order: string[] = [];
  const a = c.callLater(1, () => order.push("a"));
  const b = c.callLater(2, () => order.push("b"));
  a.delay(2);
  assert.equal(a.getTime(), 3);
  c.advance(2);
  assert.deepEqual(order, ["b"]);
  a.reset(5);
  assert.equal(a.getTime(), 7);
  c.advance(4);
  assert.deepEqual(order, ["b"]);
  c.advance(1);
  assert.deepEqual(order, ["b", "a"]);
  void b;
});

test("reset to an earlier time reorders the calls", () => {
  const c = new Clock();
  const order: string[] = [];
  c.callLater(2, () => order.push("two"));
  const late = c.callLater(10, () => order.push("reset sooner"));
  late.reset(1);
  c.advance(2);
  assert.deepEqual(order, ["reset sooner", "two"]);
});

test("getDelayedCalls lists the pending calls sorted by time", () => {
  const c = new Clock();
  assert.deepEqual(c.getDelayedCalls(), []);
  const b = c.callLater(2, () => {});
  const a = c.callLater(1, () => {});
  assert.deepEqual(c.getDelayedCalls(), [a, b]);
});

test("pump advances by each amount in turn", () => {
  const c = new Clock();
  const times: number[] = [];
  for (const t of [1, 2, 3]) c.callLater(t, () => times.push(c.seconds()));
  c.pump([0.5, 1, 1, 1]);
  assert.deepEqual(times, [1.5, 2.5, 3.5]);
});

test("Clock is an IReactorTime", () => {
  const t: IReactorTime = new Clock();
  assert.equal(typeof t.callLater, "function");
});

// ---- LoopingCall --------------------------------------------------------------------------------

function loop<A extends unknown[]>(f: (...a: A) => unknown, ...a: A): [LoopingCall<A>, Clock] {
  const lc = new LoopingCall<A>(f, ...a);
  const clock = new Clock();
  lc.clock = clock;
  return [lc, clock];
}

test("LoopingCall with now=true runs at once, then every interval, with its arguments", () => {
  const calls: unknown[] = [];
  const [lc, clock] = loop((a: string) => calls.push([a, 0]), "arg");
  const d = lc.start(1);
  assert.equal(calls.length, 1);
  clock.pump([1, 1, 1]);
  assert.equal(calls.length, 4);
  assert.deepEqual(calls[0], ["arg", 0]);
  let stopped: unknown;
  d.addCallback((r) => {
    stopped = r;
  });
  lc.stop();
  assert.equal(stopped, lc);
  assert.equal(lc.running, false);
  assert.deepEqual(clock.getDelayedCalls(), []);
});

test("LoopingCall with now=false waits one interval before the first call", () => {
  let n = 0;
  const [lc, clock] = loop(() => n++);
  lc.start(10, false);
  assert.equal(n, 0);
  clock.advance(10);
  assert.equal(n, 1);
  lc.stop();
});

test("LoopingCall stays on the start + k * interval grid when a call is late", () => {
  const times: number[] = [];
  const clock = new Clock();
  const lc = new LoopingCall(() => times.push(clock.seconds()));
  lc.clock = clock;
  lc.start(1);
  clock.advance(0.5);
  clock.advance(0.75); // now 1.25: the 1.0 call runs late
  clock.advance(0.75); // now 2.0
  clock.advance(3.5); // now 5.5: skipped intervals are not made up
  clock.advance(0.5); // now 6.0
  assert.deepEqual(times, [0, 1.25, 2, 5.5, 6]);
  lc.stop();
});

test("LoopingCall waits for a returned Deferred before scheduling the next call", () => {
  const pending: Deferred<void>[] = [];
  const [lc, clock] = loop(() => {
    const d = new Deferred<void>();
    pending.push(d);
    return d;
  });
  lc.start(1);
  clock.advance(5);
  assert.equal(pending.length, 1);
  pending[0]!.callback(undefined);
  clock.advance(1);
  assert.equal(pending.length, 2);
  pending[1]!.callback(undefined);
  lc.stop();
});

test("stopping a LoopingCall while its call is pending fires the start Deferred when the call ends", () => {
  const inner = new Deferred<void>();
  const [lc] = loop(() => inner);
  const d = lc.start(1);
  lc.stop();
  assert.equal(d.called, false);
  inner.callback(undefined);
  assert.equal(d.result, lc);
});

test("a failing call stops the LoopingCall and fails the start Deferred", () => {
  let n = 0;
  const [lc, clock] = loop(() => {
    if (++n === 3) throw new TestException("third");
  });
  const d = lc.start(1);
  clock.pump([1, 1, 1, 1]);
  assert.equal(n, 3);
  assert.equal(lc.running, false);
  assert.ok((d.result as Failure).check(TestException));
  d.addErrback(() => null);
});

test("a failed Deferred from the call also fails the start Deferred", () => {
  const [lc] = loop(() => fail(new TestException("deferred failure")));
  const d = lc.start(1);
  assert.ok((d.result as Failure).check(TestException));
  d.addErrback(() => null);
});

test("LoopingCall rejects a negative interval, a second start and a stop when stopped", () => {
  const [lc] = loop(() => {});
  assert.throws(() => lc.start(-1), RangeError);
  lc.start(1);
  assert.throws(() => lc.start(1), /already running/);
  lc.stop();
  assert.throws(() => lc.stop(), /not running/);
});

test("stopping a LoopingCall before its delayed first call means it never runs", () => {
  let n = 0;
  const [lc, clock] = loop(() => n++);
  const d = lc.start(10, false);
  lc.stop();
  clock.advance(30);
  assert.equal(n, 0);
  assert.equal(d.result, lc);
});

test("LoopingCall.reset skips the next iteration and restarts the interval from now", () => {
  const times: number[] = [];
  const clock = new Clock();
  const lc = new LoopingCall(() => times.push(clock.seconds()));
  lc.clock = clock;
  lc.start(2, false);
  clock.advance(1);
  lc.reset();
  clock.advance(1.5);
  assert.deepEqual(times, []);
  clock.advance(0.5);
  assert.deepEqual(times, [3]);
  lc.stop();
});

test("LoopingCall.withCount reports how many intervals passed", () => {
  const counts: number[] = [];
  const lc = LoopingCall.withCount((n) => counts.push(n));
  const clock = new Clock();
  lc.clock = clock;
  lc.start(1);
  clock.advance(1);
  clock.advance(3);
  clock.advance(0.5);
  clock.advance(0.5);
  assert.deepEqual(counts, [1, 1, 3, 1]);
  lc.stop();
});

test("LoopingCall.withCount never reports 0 at a floating-point boundary and sums to the intervals", () => {
  const counts: number[] = [];
  const lc = LoopingCall.withCount((n) => counts.push(n));
  const clock = new Clock();
  lc.clock = clock;
  const interval = 1 / 10;
  lc.start(interval, false);
  for (let i = 0; i < 10; i++) clock.advance(interval);
  const epsilon = 1 - Array.from({ length: 10 }, () => interval).reduce((a, b) => a + b, 0);
  assert.ok(Math.abs(epsilon) > 0);
  clock.advance(epsilon);
  assert.ok(clock.seconds() >= 1);
  assert.equal(counts.reduce((a, b) => a + b, 0), 10);
  assert.ok(!counts.includes(0));
  lc.stop();
});

test("LoopingCall.withCount with interval 0 counts 1 each time", () => {
  const counts: number[] = [];
  const lc = LoopingCall.withCount((n) => {
    counts.push(n);
    if (counts.length === 3) lc.stop();
  });
  const clock = new Clock();
  lc.clock = clock;
  lc.start(0);
  clock.advance(0);
  clock.advance(0);
  assert.deepEqual(counts, [1, 1, 1]);
});

// ---- deferLater / react -------------------------------------------------------------------------

test("deferLater fires with the function's result after the delay", () => {
  const clock = new Clock();
  const d = deferLater(clock, 3, (a: number, b: number) => a + b, 1, 2);
  clock.advance(2);
  assert.equal(d.called, false);
  clock.advance(1);
  assert.equal(d.result, 3);
});

test("deferLater without a function fires with undefined", () => {
  const clock = new Clock();
  const d = deferLater(clock, 1);
  clock.advance(1);
  assert.equal(d.called, true);
  assert.equal(d.result, undefined);
});

test("deferLater fails when the function throws", () => {
  const clock = new Clock();
  const d = deferLater(clock, 1, () => {
    throw new TestException("later");
  });
  clock.advance(1);
  assert.ok((d.result as Failure).check(TestException));
  d.addErrback(() => null);
});

test("cancelling deferLater cancels the scheduled call", () => {
  const clock = new Clock();
  let ran = false;
  const d = deferLater(clock, 1, () => {
    ran = true;
  });
  d.cancel();
  assert.deepEqual(clock.getDelayedCalls(), []);
  assert.ok((d.result as Failure).check(CancelledError));
  d.addErrback(() => null);
  clock.advance(1);
  assert.equal(ran, false);
});

/** A reactor for `react`: a Clock with Twisted's run/stop lifecycle and shutdown triggers. */
class FakeReactor extends Clock {
  running = false;
  stopCount = 0;
  private whenRunning: (() => void)[] = [];
  private beforeShutdown: (() => void)[] = [];
  private finish: (() => void) | null = null;

  run(): Promise<void> {
    this.running = true;
    const calls = this.whenRunning;
    this.whenRunning = [];
    for (const c of calls) c();
    return new Promise<void>((resolve) => {
      this.finish = resolve;
      if (!this.running) resolve();
    });
  }
  stop(): void {
    if (!this.running) throw Object.assign(new Error("Can't stop reactor that isn't running."), { name: "ReactorNotRunning" });
    this.stopCount++;
    for (const t of this.beforeShutdown) t();
    this.running = false;
    this.finish?.();
  }
  callWhenRunning(fn: (...args: never[]) => unknown, ...args: unknown[]): unknown {
    const call = (): void => void (fn as (...a: unknown[]) => unknown)(...args);
    if (this.running) call();
    else this.whenRunning.push(call);
    return null;
  }
  addSystemEventTrigger(phase: string, event: string, fn: (...args: never[]) => unknown): unknown {
    if (phase === "before" && event === "shutdown") this.beforeShutdown.push(fn as () => void);
    return null;
  }
  removeSystemEventTrigger(): void {}
}

async function withExitCode<T>(body: () => Promise<T>): Promise<T> {
  const saved = process.exitCode;
  try {
    return await body();
  } finally {
    process.exitCode = saved;
  }
}

test("react runs the reactor, passes it and argv to main, and stops it when main's Deferred fires", async () => {
  const reactor = new FakeReactor();
  const seen: unknown[] = [];
  const code = await withExitCode(async () => {
    const p = react(
      (r, a: string, b: string) => {
        seen.push(r, a, b, r.running);
        return deferLater(r, 1);
      },
      ["x", "y"],
      reactor,
    );
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(reactor.running, true);
    reactor.advance(1);
    return p;
  });
  assert.equal(code, 0);
  assert.deepEqual(seen, [reactor, "x", "y", false]);
  assert.equal(reactor.running, false);
  assert.equal(reactor.stopCount, 1);
});

test("react with a synchronous result stops the reactor once it is running", async () => {
  const reactor = new FakeReactor();
  const code = await withExitCode(() => react(() => succeed("ok"), [], reactor));
  assert.equal(code, 0);
  assert.equal(reactor.stopCount, 1);
});

test("react logs a failure from main and ends with exit code 1; SystemExit sets the code", async () => {
  const events: LogEvent[] = [];
  const obs = (e: LogEvent): void => void events.push(e);
  globalLogPublisher.addObserver(obs);
  try {
    await withExitCode(async () => {
      assert.equal(await react(() => fail(new TestException("main broke")), [], new FakeReactor()), 1);
      assert.equal(process.exitCode, 1);
      assert.ok(events.some((e) => /main function encountered error\n[\s\S]*main broke/.test(eventAsText(e))));
      assert.equal(await react(() => Promise.reject(new SystemExit(7)), [], new FakeReactor()), 7);
    });
  } finally {
    globalLogPublisher.removeObserver(obs);
  }
});

test("react does not stop a reactor that is already shutting down, but still takes main's failure", async () => {
  const reactor = new FakeReactor();
  const d = new Deferred<void>();
  const events: LogEvent[] = [];
  const obs = (e: LogEvent): void => void events.push(e);
  globalLogPublisher.addObserver(obs);
  try {
    const code = await withExitCode(async () => {
      const p = react(() => d, [], reactor);
      await new Promise((resolve) => setImmediate(resolve));
      reactor.stop();
      d.errback(new TestException("during shutdown"));
      return p;
    });
    assert.equal(reactor.stopCount, 1);
    assert.equal(code, 1);
    assert.ok(events.some((e) => /during shutdown/.test(eventAsText(e))));
  } finally {
    globalLogPublisher.removeObserver(obs);
  }
});
