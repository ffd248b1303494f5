import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AlreadyCalledError,
  CancelledError,
  Deferred,
  TimeoutError,
  fail,
  getDebugging,
  setDebugging,
  maybeDeferred,
  succeed,
} from "@twisted-ts/internet/defer";
import { Failure } from "@twisted-ts/internet/failure";
import { Clock } from "@twisted-ts/internet/task";

class GenericError extends Error {}

test("a callback gets the result and its return value replaces it", () => {
  const d = new Deferred<number>();
  const seen: unknown[] = [];
  d.addCallback((n) => {
    seen.push(n);
    return n * 2;
  }).addCallback((n) => {
    seen.push(n);
    return String(n);
  });
  d.callback(21);
  assert.deepEqual(seen, [21, 42]);
  assert.equal(d.result, "42");
  assert.equal(d.called, true);
});

test("callbacks get extra positional arguments after the result", () => {
  const d = new Deferred<string>();
  let got: unknown[] = [];
  d.addCallback((r: string, a: number, b: string) => {
    got = [r, a, b];
  }, 1, "x");
  d.callback("hello");
  assert.deepEqual(got, ["hello", 1, "x"]);
});

test("a callback added after firing runs at once", () => {
  const d = succeed(5);
  let got = 0;
  d.addCallback((n) => {
    got = n;
  });
  assert.equal(got, 5);
});

test("a throw skips callbacks to the next errback, and an errback's value switches back", () => {
  const log: string[] = [];
  const d = new Deferred<number>();
  d.addCallback(() => {
    throw new RangeError("division by zero");
  })
    .addCallback(() => {
      log.push("skipped");
    })
    .addErrback((f) => {
      log.push(`eb:${f.getErrorMessage()}`);
      assert.ok(f.value instanceof RangeError);
      return "rec";
    })
    .addCallback((r) => {
      log.push(`cb:${String(r)}`);
    });
  d.callback(1);
  assert.deepEqual(log, ["eb:division by zero", "cb:rec"]);
});

test("a callback returning a Failure switches to the errback path", () => {
  const d = succeed(1);
  const f = new Failure(new GenericError("x"));
  let got: Failure | undefined;
  d.addCallback(() => f).addErrback((e) => {
    got = e;
  });
  assert.equal(got, f);
});

test("addCallbacks passes callbackArgs and errbackArgs", () => {
  const got: unknown[] = [];
  succeed(1).addCallbacks((r, a: string) => got.push([r, a]), null, { callbackArgs: ["ca"] });
  fail(new GenericError("e")).addCallbacks(
    () => got.push("no"),
    (f, b: string) => got.push([f.value.message, b]),
    { errbackArgs: ["eb"] },
  );
  assert.deepEqual(got, [[1, "ca"], ["e", "eb"]]);
});

test("addBoth sees results and failures", () => {
  const got: unknown[] = [];
  succeed(1).addBoth((r) => got.push(r));
  const f = new Failure(new GenericError("e"));
  fail(f).addBoth((r) => got.push(r));
  assert.deepEqual(got, [1, f]);
});

test("errback wraps errors and non-errors in a Failure", () => {
  const d = new Deferred();
  let f: Failure | undefined;
  d.addErrback((e) => {
    f = e;
  });
  d.errback("a string");
  assert.ok(f instanceof Failure);
  assert.equal(f.getErrorMessage(), "a string");
});

test("firing twice raises AlreadyCalledError", () => {
  const d = new Deferred<number>();
  d.callback(1);
  assert.throws(() => d.callback(2), AlreadyCalledError);
  assert.throws(() => d.errback(new Error("x")), AlreadyCalledError);
  const e = new Deferred();
  e.errback(new Error("x"));
  e.addErrback(() => null);
  assert.throws(() => e.callback(1), AlreadyCalledError);
});

test("a non-function callback is rejected when it is added", () => {
  const d = new Deferred();
  assert.throws(() => d.addCallback(42 as never), TypeError);
  assert.throws(() => d.addErrback("x" as never), TypeError);
  assert.throws(() => d.addBoth(null as never), TypeError);
  assert.throws(() => d.addCallbacks(() => 1, 3 as never), TypeError);
});

test("a Deferred passed to its own callback is a clear error", () => {
  const d = new Deferred<unknown>();
  assert.throws(() => d.callback(d), /passed the Deferred itself/);
  assert.throws(() => d.callback(new Deferred()), /passed a Deferred/);
  assert.equal(d.called, false);
});

test("a callback returning its own Deferred fails instead of waiting forever", () => {
  const d = new Deferred<number>();
  let msg = "";
  d.addCallback(() => d as Deferred<unknown>).addErrback((f) => {
    msg = f.getErrorMessage();
  });
  d.callback(1);
  assert.match(msg, /returned the Deferred it was attached to/);
});

test("a callback returning an unfired Deferred pauses the outer one until it fires", () => {
  const inner = new Deferred<string>();
  const outer = new Deferred<number>();
  const got: unknown[] = [];
  outer.addCallback(() => inner).addCallback((r) => got.push(r));
  outer.callback(1);
  assert.equal(outer.paused, 1);
  assert.equal(outer.result, inner);
  assert.match(String(outer), /waiting on Deferred/);
  assert.deepEqual(got, []);
  inner.callback("inner");
  assert.deepEqual(got, ["inner"]);
  assert.equal(outer.paused, 0);
  assert.equal(inner.result, undefined, "the inner result is moved to the outer Deferred");
});

test("a callback returning a fired Deferred takes its result at once", () => {
  const inner = succeed("now");
  const got: unknown[] = [];
  succeed(1)
    .addCallback(() => inner)
    .addCallback((r) => got.push(r));
  assert.deepEqual(got, ["now"]);
  assert.equal(inner.result, undefined);
});

test("a failure of an inner Deferred goes to the outer errbacks", () => {
  const inner = new Deferred<string>();
  const outer = succeed(1).addCallback(() => inner);
  let msg = "";
  outer.addErrback((f) => {
    msg = f.getErrorMessage();
  });
  inner.errback(new GenericError("inner failed"));
  assert.equal(msg, "inner failed");
  assert.equal(inner.result, undefined);
});

test("a callback returning a Promise pauses the chain until it settles", async () => {
  const d = succeed(2).addCallback((n) => Promise.resolve(n * 10));
  assert.equal(d.paused, 1);
  const got = await d;
  assert.equal(got, 20);
  const e = succeed(2).addCallback(() => Promise.reject(new GenericError("no")));
  await assert.rejects(e.asPromise(), GenericError);
});

test("chainDeferred fires the other Deferred and leaves undefined behind", () => {
  const a = new Deferred<number>();
  const b = new Deferred<number>();
  const got: unknown[] = [];
  b.addCallback((r) => got.push(r));
  a.chainDeferred(b);
  a.callback(3);
  assert.deepEqual(got, [3]);
  assert.equal(a.result, undefined);
});

test("pause is a counter and callback while paused runs nothing", () => {
  const d = new Deferred<number>();
  const got: unknown[] = [];
  d.addCallback((r) => got.push(r));
  d.pause();
  d.pause();
  d.callback(1);
  assert.deepEqual(got, []);
  d.unpause();
  assert.deepEqual(got, []);
  d.unpause();
  assert.deepEqual(got, [1]);
});

test("cancel without a canceller errbacks CancelledError and swallows one later callback", () => {
  const d = new Deferred<number>();
  let f: Failure | undefined;
  d.addErrback((e) => {
    f = e;
  });
  d.cancel();
  assert.ok(f?.check(CancelledError));
  d.callback(1);
  assert.throws(() => d.callback(2), AlreadyCalledError);
});

test("cancel calls the canceller, which may fire the Deferred itself", () => {
  let calls = 0;
  const d = new Deferred<string>((self) => {
    calls++;
    self.callback("cancelled nicely");
  });
  d.cancel();
  assert.equal(calls, 1);
  assert.equal(d.result, "cancelled nicely");
  assert.throws(() => d.callback("again"), AlreadyCalledError);
});

test("cancel with a canceller that does not fire errbacks CancelledError and swallows nothing", () => {
  const d = new Deferred<string>(() => {});
  d.addErrback(() => null);
  d.cancel();
  assert.throws(() => d.callback("late"), AlreadyCalledError);
});

test("cancelling a Deferred that waits on another cancels that one", () => {
  let innerCancelled = 0;
  const inner = new Deferred<number>(() => innerCancelled++);
  const outer = succeed(1).addCallback(() => inner);
  let f: Failure | undefined;
  outer.addErrback((e) => {
    f = e;
  });
  outer.cancel();
  assert.equal(innerCancelled, 1);
  assert.ok(f?.check(CancelledError));
});

test("cancelling a fired Deferred does nothing", () => {
  const d = succeed(1);
  d.cancel();
  assert.equal(d.result, 1);
});

test("await gives the result or throws failure.value", async () => {
  assert.equal(await succeed(7), 7);
  const err = new GenericError("x");
  await assert.rejects(async () => await fail(err), (e) => e === err);
  const d = new Deferred<string>();
  setImmediate(() => d.callback("later"));
  assert.equal(await d, "later");
});

test("fromPromise and asPromise convert both ways", async () => {
  const d = Deferred.fromPromise(Promise.resolve(3));
  assert.equal(d.called, false);
  assert.equal(await d.asPromise(), 3);
  const e = Deferred.fromPromise(Promise.reject(new GenericError("r")));
  let f: Failure | undefined;
  await e.addErrback((x) => {
    f = x;
  });
  assert.ok(f?.value instanceof GenericError);
});

test("maybeDeferred wraps values, throws, Failures, Deferreds and Promises", async () => {
  assert.equal(maybeDeferred(() => 1).result, 1);
  const thrown = maybeDeferred(() => {
    throw new GenericError("t");
  });
  assert.ok(thrown.result instanceof Failure);
  thrown.addErrback(() => null);
  const f = new Failure(new GenericError("f"));
  const failed = maybeDeferred(() => f);
  assert.equal(failed.result, f);
  failed.addErrback(() => null);
  const d = new Deferred<number>();
  assert.equal(maybeDeferred(() => d), d);
  assert.equal(await maybeDeferred((a: number, b: number) => Promise.resolve(a + b), 1, 2), 3);
});

test("addTimeout fails with TimeoutError when the clock passes the timeout", () => {
  const clock = new Clock();
  const d = new Deferred<number>();
  d.addTimeout(10, clock);
  let f: Failure | undefined;
  d.addErrback((e) => {
    f = e;
  });
  clock.advance(9);
  assert.equal(d.called, false);
  clock.advance(1);
  assert.ok(f?.check(TimeoutError));
});

test("addTimeout cancels its timer when the Deferred fires in time", () => {
  const clock = new Clock();
  const d = new Deferred<number>();
  d.addTimeout(10, clock);
  d.callback(1);
  assert.deepEqual(clock.getDelayedCalls(), []);
  assert.equal(d.result, 1);
});

test("addTimeout uses onTimeoutCancel to convert the cancellation", () => {
  const clock = new Clock();
  const d = new Deferred<string>();
  d.addTimeout(2, clock, (v, t) => `timed out after ${t}: ${(v as Failure).type.name}`);
  clock.advance(2);
  assert.equal(d.result, "timed out after 2: CancelledError");
});

test("addTimeout covers only the callbacks added before it", () => {
  const clock = new Clock();
  const d = new Deferred<number>();
  const inner = new Deferred<number>();
  d.addCallback(() => inner);
  d.addTimeout(5, clock);
  const afterInner = new Deferred<number>();
  d.addCallback(() => afterInner);
  d.callback(1);
  inner.callback(2);
  clock.advance(10);
  assert.equal(afterInner.called, false, "the callback added after addTimeout is not timed out");
  afterInner.callback(3);
  assert.equal(d.result, 3);
});

test("a chain of 100,000 callbacks runs without stack overflow", () => {
  const d = new Deferred<number>();
  for (let i = 0; i < 100_000; i++) d.addCallback((n) => n + 1);
  d.callback(0);
  assert.equal(d.result, 100_000);
});

test("20,000 Deferreds each waiting on the next fire without stack overflow", () => {
  const ds: Deferred<number>[] = [];
  for (let i = 0; i < 20_000; i++) ds.push(new Deferred<number>());
  for (let i = 0; i < ds.length - 1; i++) {
    const next = ds[i + 1]!;
    ds[i]!.addCallback(() => next);
  }
  for (let i = 0; i < ds.length - 1; i++) ds[i]!.callback(0);
  const got: number[] = [];
  ds[0]!.addCallback((r) => got.push(r));
  ds[ds.length - 1]!.callback(42);
  assert.deepEqual(got, [42]);
});

test("20,000 nested Deferreds fired from the inside out run without stack overflow", () => {
  let d = new Deferred<number>();
  const first = d;
  const inners: Deferred<number>[] = [];
  for (let i = 0; i < 20_000; i++) {
    const inner = new Deferred<number>();
    inners.push(inner);
    d.addCallback(() => inner);
    d = inner;
  }
  first.callback(0);
  for (let i = 0; i < inners.length - 1; i++) inners[i]!.callback(0);
  let got = -1;
  first.addCallback((r) => {
    got = r;
  });
  inners[inners.length - 1]!.callback(7);
  assert.equal(got, 7);
});

test("callback and errback on a fired Deferred raise AlreadyCalledError in every order", () => {
  const pairs: [string, (d: Deferred<number>) => void][] = [
    ["callback", (d) => d.callback(1)],
    ["errback", (d) => d.errback(new GenericError("e"))],
  ];
  for (const [, first] of pairs) {
    for (const [, second] of pairs) {
      const d = new Deferred<number>();
      d.addErrback(() => null);
      first(d);
      assert.throws(() => second(d), AlreadyCalledError);
    }
  }
});

test("with debugging on, AlreadyCalledError shows where the Deferred was created and first fired", () => {
  setDebugging(true);
  try {
    assert.equal(getDebugging(), true);
    const d = new Deferred<number>();
    d.callback(1);
    assert.throws(
      () => d.callback(2),
      (e: unknown) => e instanceof AlreadyCalledError && /C: Deferred was created/.test(e.message) && /I: First Invoker was/.test(e.message),
    );
  } finally {
    setDebugging(false);
  }
});

test("unpause before callback does nothing, and a paused failure waits too", () => {
  const d = new Deferred<number>();
  d.pause();
  d.unpause();
  d.pause();
  d.errback(new GenericError("paused"));
  let seen = false;
  d.addErrback(() => {
    seen = true;
  });
  assert.equal(seen, false);
  d.unpause();
  assert.equal(seen, true);
});

test("a fired but paused inner Deferred is waited on, not stolen from", () => {
  const inner = succeed("inner");
  inner.pause();
  const outer = succeed(1).addCallback(() => inner);
  assert.equal(outer.paused, 1);
  inner.unpause();
  assert.equal(outer.paused, 0);
  assert.equal(outer.result, "inner");
});

test("callbacks added to an inner Deferred before chaining run before the outer resumes", () => {
  const order: string[] = [];
  const inner = new Deferred<string>();
  inner.addCallback((r) => {
    order.push(`inner1:${r}`);
    return r + "!";
  });
  const outer = succeed(0).addCallback(() => inner);
  outer.addCallback((r) => order.push(`outer:${r}`));
  inner.addCallback((r) => {
    order.push(`inner2:${String(r)}`);
  });
  inner.callback("x");
  assert.deepEqual(order, ["inner1:x", "outer:x!", "inner2:undefined"]);
});

test("a callback may add callbacks to its own Deferred; they run after it, in order", () => {
  const d = new Deferred<number>();
  const order: string[] = [];
  d.addCallback((r) => {
    order.push("first");
    d.addCallback(() => order.push("added in first"));
    return r;
  });
  d.addCallback(() => order.push("second"));
  d.callback(1);
  assert.deepEqual(order, ["first", "second", "added in first"]);
});

test("a callback firing another Deferred that chains back works re-entrantly", () => {
  const d1 = new Deferred<number>();
  const d2 = new Deferred<number>();
  const got: number[] = [];
  d1.addCallback((r) => {
    d2.callback(r + 1);
    return d2;
  });
  d2.addCallback((r) => r * 10);
  d1.addCallback((r) => got.push(r));
  d1.callback(1);
  assert.deepEqual(got, [20]);
});

test("nested asynchronous chained Deferreds deliver results in order", () => {
  const first = new Deferred<string>();
  const second = new Deferred<string>();
  const third = new Deferred<string>();
  const results: string[] = [];
  first
    .addCallback((r) => {
      results.push(r);
      return second.addCallback((s) => {
        results.push(s);
        return third;
      });
    })
    .addCallback((r) => results.push(`final:${r}`));
  first.callback("1");
  second.callback("2");
  assert.deepEqual(results, ["1", "2"]);
  third.callback("3");
  assert.deepEqual(results, ["1", "2", "final:3"]);
});

test("toString shows the state like Twisted's repr", () => {
  const d = new Deferred<number>();
  assert.equal(String(d), "<Deferred>");
  d.callback(5);
  assert.equal(String(d), "<Deferred current result: 5>");
});

test("chainDeferred is explicit chaining: both get the failure in turn", () => {
  const a = new Deferred<number>();
  const b = new Deferred<number>();
  let msg = "";
  b.addErrback((f) => {
    msg = f.getErrorMessage();
  });
  a.chainDeferred(b);
  a.errback(new GenericError("chained"));
  assert.equal(msg, "chained");
  assert.equal(a.result, undefined);
});

test("cancel twice without a canceller raises nothing and keeps the CancelledError", () => {
  const d = new Deferred<number>();
  d.cancel();
  d.cancel();
  assert.ok((d.result as Failure).check(CancelledError));
  d.addErrback(() => null);
});

test("cancel, then callback, then callback again raises AlreadyCalledError", () => {
  const d = new Deferred<number>();
  d.addErrback(() => null);
  d.cancel();
  d.callback(1);
  assert.throws(() => d.callback(2), AlreadyCalledError);
  const e = new Deferred<number>();
  e.addErrback(() => null);
  e.cancel();
  e.errback(new GenericError("late"));
  assert.throws(() => e.errback(new GenericError("later")), AlreadyCalledError);
});

test("a canceller that errbacks with its own error is respected", () => {
  const d = new Deferred<number>((self) => self.errback(new GenericError("mine")));
  let f: Failure | undefined;
  d.addErrback((e) => {
    f = e;
  });
  d.cancel();
  assert.ok(f?.check(GenericError));
});

test("addTimeout: an errback added before the timeout can suppress the cancellation", () => {
  const clock = new Clock();
  const d = new Deferred<string>();
  d.addErrback((f) => {
    f.trap(CancelledError);
    return "suppressed";
  });
  d.addTimeout(1, clock);
  clock.advance(1);
  assert.equal(d.result, "suppressed");
});

test("addTimeout: a failure before the timeout passes through unchanged", () => {
  const clock = new Clock();
  const d = new Deferred<string>();
  d.addTimeout(10, clock);
  d.errback(new GenericError("early"));
  let f: Failure | undefined;
  d.addErrback((e) => {
    f = e;
  });
  assert.ok(f?.check(GenericError));
  assert.equal(clock.getDelayedCalls().length, 0);
});

test("addTimeout: a canceller that callbacks wins over the TimeoutError", () => {
  const clock = new Clock();
  const d = new Deferred<string>((self) => self.callback("I was cancelled"));
  d.addTimeout(10, clock);
  clock.advance(10);
  assert.equal(d.result, "I was cancelled");
});

test("addTimeout: cancelling before the timeout gives CancelledError, not TimeoutError", () => {
  const clock = new Clock();
  const d = new Deferred<string>();
  d.addTimeout(10, clock);
  d.cancel();
  assert.ok((d.result as Failure).check(CancelledError));
  assert.equal(clock.getDelayedCalls().length, 0);
  d.addErrback(() => null);
});

test("a thrown Failure moves on unchanged (trap inside an errback)", () => {
  const f = new Failure(new GenericError("x"));
  let seen: Failure | undefined;
  fail(f)
    .addErrback((e) => e.trap(RangeError))
    .addErrback((e) => {
      seen = e;
    });
  assert.equal(seen, f);
});

test("callbacks added to the middle of three chained Deferreds run once the last one fires", () => {
  const first = new Deferred<void>();
  const second = new Deferred<void>();
  const third = new Deferred<void>();
  first.addCallback(() => second);
  second.addCallback(() => third);
  second.callback(undefined);
  first.callback(undefined);
  third.callback(undefined);
  const results: unknown[] = [];
  second.addCallback((r) => results.push(r));
  assert.deepEqual(results, [undefined]);
});

test("a callback added by a callback that then throws reaches the first errback", () => {
  const d = new Deferred<void>();
  d.addCallback(() => {
    d.addCallback(() => {
      throw new GenericError("callback raised exception");
    });
  });
  d.callback(undefined);
  assert.ok(d.result instanceof Failure);
  assert.equal(d.result.getErrorMessage(), "callback raised exception");
  d.addErrback(() => null);
});

test("a chained Deferred that is paused but fired waits for unpause", () => {
  const expected = {};
  const paused = succeed(expected);
  paused.pause();
  const chained = new Deferred<void>();
  chained.addCallback(() => paused);
  chained.callback(undefined);
  const result: unknown[] = [];
  chained.addCallback((r) => result.push(r));
  assert.deepEqual(result, []);
  paused.unpause();
  assert.deepEqual(result, [expected]);
});

test("a paused outer Deferred does not stop the inner one from running its own callbacks", () => {
  const first = new Deferred<void>();
  const second = new Deferred<void>();
  first.addCallback(() => second);
  first.callback(undefined);
  first.pause();
  second.callback(undefined);
  const result: unknown[] = [];
  second.addCallback((r) => result.push(r));
  assert.deepEqual(result, [undefined]);
});

test("a callback throwing a non-Error wraps it in a Failure", () => {
  const d = succeed(1).addCallback(() => {
    throw "a string"; // eslint-disable-line no-throw-literal
  });
  assert.ok(d.result instanceof Failure);
  assert.equal(d.result.getErrorMessage(), "a string");
  d.addErrback(() => null);
});

test("a non-Error rejection survives the round trip through a Deferred", async () => {
  const d = Deferred.fromPromise(Promise.reject("plain string"));
  await assert.rejects(d.asPromise(), (e: unknown) => e === "plain string");
});
