import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CancelledError,
  Deferred,
  DeferredList,
  DeferredLock,
  DeferredQueue,
  DeferredSemaphore,
  FirstError,
  NotACoroutineError,
  QueueOverflow,
  QueueUnderflow,
  ensureDeferred,
  fail,
  gatherResults,
  inlineCallbacks,
  succeed,
} from "@twisted-ts/internet/defer";
import type { DeferredListItem } from "@twisted-ts/internet/defer";
import { Failure } from "@twisted-ts/internet/failure";

class GenericError extends Error {}

// ---- DeferredList -------------------------------------------------------------------------------

test("DeferredList fires with [success, result] pairs in input order and never errbacks", () => {
  const d1 = new Deferred<string>();
  const d2 = new Deferred<string>();
  const d3 = new Deferred<string>();
  const dl = new DeferredList([d1, d2, d3]);
  const box: { result?: DeferredListItem<string>[] } = {};
  dl.addCallback((r) => {
    box.result = r;
  });
  d1.callback("1");
  d3.callback("3");
  assert.equal(box.result === undefined, true, "not fired before the last one");
  const err = new GenericError("2");
  d2.errback(err);
  const result = box.result;
  assert.equal(result?.length, 3);
  assert.deepEqual(result?.[0], [true, "1"]);
  assert.equal(result?.[1]?.[0], false);
  assert.equal((result?.[1]?.[1] as Failure).value, err);
  assert.deepEqual(result?.[2], [true, "3"]);
  // Without consumeErrors the failure stays in d2.
  assert.ok(d2.result instanceof Failure);
  d2.addErrback(() => null);
});

test("an empty DeferredList fires at once with []", () => {
  const dl = new DeferredList<number>([]);
  assert.deepEqual(dl.result, []);
});

test("an empty DeferredList with fireOnOneCallback never fires", () => {
  const dl = new DeferredList<number>([], { fireOnOneCallback: true });
  assert.equal(dl.called, false);
});

test("DeferredList with fireOnOneCallback fires with [result, index] of the first success", () => {
  const d1 = new Deferred<string>();
  const d2 = new Deferred<string>();
  const dl = new DeferredList<string, [string, number]>([d1, d2], { fireOnOneCallback: true });
  d2.callback("second");
  assert.deepEqual(dl.result, ["second", 1]);
  d1.callback("first");
  assert.deepEqual(dl.result, ["second", 1]);
});

test("DeferredList with fireOnOneErrback fails with FirstError (index and subFailure)", () => {
  const d1 = new Deferred<string>();
  const d2 = new Deferred<string>();
  const dl = new DeferredList([d1, d2], { fireOnOneErrback: true });
  let f: Failure | undefined;
  dl.addErrback((e) => {
    f = e;
  });
  d1.callback("ok");
  d2.errback(new GenericError("bad"));
  d2.addErrback(() => null);
  assert.ok(f?.value instanceof FirstError);
  const fe = f.value as FirstError;
  assert.equal(fe.index, 1);
  assert.ok(fe.subFailure.check(GenericError));
});

test("DeferredList with fireOnOneErrback and already-failed Deferreds fails at once", () => {
  const d1 = fail<string>(new GenericError("early"));
  const d2 = succeed("ok");
  const dl = new DeferredList([d1, d2], { fireOnOneErrback: true, consumeErrors: true });
  assert.ok((dl.result as Failure).value instanceof FirstError);
  dl.addErrback(() => null);
});

test("DeferredList with consumeErrors leaves undefined in the failed Deferreds", () => {
  const d = new Deferred<string>();
  const dl = new DeferredList([d], { consumeErrors: true });
  d.errback(new GenericError("consumed"));
  assert.equal(d.result, undefined);
  assert.equal((dl.result as DeferredListItem<string>[])[0]?.[0], false);
});

test("cancelling a DeferredList cancels every Deferred in it", () => {
  const d1 = new Deferred<string>();
  const d2 = new Deferred<string>();
  const dl = new DeferredList([d1, d2]);
  dl.cancel();
  assert.ok((d1.result as Failure).check(CancelledError));
  assert.ok((d2.result as Failure).check(CancelledError));
  const items = dl.result as DeferredListItem<string>[];
  assert.equal(items[0]?.[0], false);
  d1.addErrback(() => null);
  d2.addErrback(() => null);
});

test("cancelling a DeferredList that fired does nothing", () => {
  const d1 = new Deferred<string>();
  const dl = new DeferredList([d1], { fireOnOneCallback: true });
  d1.callback("x");
  dl.cancel();
  assert.deepEqual(dl.result, ["x", 0]);
});

// ---- gatherResults ------------------------------------------------------------------------------

test("gatherResults fires with the list of results", () => {
  const d1 = new Deferred<number>();
  const d2 = new Deferred<number>();
  const g = gatherResults([d1, d2]);
  d2.callback(2);
  d1.callback(1);
  assert.deepEqual(g.result, [1, 2]);
});

test("gatherResults fails with FirstError, not with the original error", () => {
  const d1 = new Deferred<number>();
  const d2 = new Deferred<number>();
  const g = gatherResults([d1, d2]);
  let f: Failure | undefined;
  g.addErrback((e) => {
    f = e;
  });
  d1.errback(new GenericError("first"));
  assert.ok(f !== undefined && f.check(FirstError));
  assert.equal((f.value as FirstError).index, 0);
  assert.equal((f.value as FirstError).subFailure.getErrorMessage(), "first");
  assert.ok(d1.result instanceof Failure, "without consumeErrors the input keeps its failure");
  d1.addErrback(() => null);
  d2.callback(2);
});

test("gatherResults with consumeErrors clears the inputs' failures", () => {
  const d1 = fail<number>(new GenericError("x"));
  const g = gatherResults([d1], true);
  assert.equal(d1.result, undefined);
  g.addErrback(() => null);
});

test("cancelling gatherResults cancels the inputs", () => {
  const d1 = new Deferred<number>();
  const d2 = new Deferred<number>();
  const g = gatherResults([d1, d2], true);
  g.cancel();
  assert.ok((g.result as Failure).check(FirstError));
  g.addErrback(() => null);
});

// ---- inlineCallbacks / ensureDeferred -----------------------------------------------------------

test("inlineCallbacks sends each yielded Deferred's result back and fires with the return value", () => {
  const d1 = new Deferred<number>();
  const f = inlineCallbacks(function* (base: number) {
    const a: number = yield d1;
    const b: number = yield succeed(a + 1);
    return base + a + b;
  });
  const d = f(100);
  assert.equal(d.called, false);
  d1.callback(1);
  assert.equal(d.result, 103);
  assert.equal(d1.result, undefined, "a yielded Deferred's own result becomes undefined");
});

test("inlineCallbacks: a yielded plain value comes straight back", () => {
  const d = inlineCallbacks(function* () {
    const x: number = yield 5;
    return x * 2;
  })();
  assert.equal(d.result, 10);
});

test("inlineCallbacks throws a failed Deferred's error into the generator", () => {
  const d = inlineCallbacks(function* () {
    try {
      yield fail(new GenericError("thrown in"));
      return "not reached";
    } catch (e) {
      return `caught ${(e as Error).message}`;
    }
  })();
  assert.equal(d.result, "caught thrown in");
});

test("inlineCallbacks fails the Deferred with an uncaught error", () => {
  const d = inlineCallbacks(function* () {
    yield succeed(1);
    throw new GenericError("uncaught");
  })();
  assert.ok((d.result as Failure).check(GenericError));
  d.addErrback(() => null);
});

test("inlineCallbacks waits on Promises too", async () => {
  const d = inlineCallbacks(function* () {
    const x: number = yield Promise.resolve(4);
    return x + 1;
  })();
  assert.equal(await d, 5);
});

test("cancelling an inlineCallbacks Deferred cancels the Deferred it waits on", () => {
  let cancelled = 0;
  const waitedOn = new Deferred<number>(() => cancelled++);
  const d = inlineCallbacks(function* () {
    yield waitedOn;
    return "done";
  })();
  d.cancel();
  assert.equal(cancelled, 1);
  assert.ok((d.result as Failure).check(CancelledError));
  d.addErrback(() => null);
});

test("an inlineCallbacks generator that catches the cancellation can go on", () => {
  const waitedOn = new Deferred<number>();
  const next = new Deferred<string>();
  const d = inlineCallbacks(function* () {
    try {
      yield waitedOn;
    } catch (e) {
      assert.ok(e instanceof CancelledError);
    }
    const r: string = yield next;
    return `after cancel: ${r}`;
  })();
  d.cancel();
  assert.equal(d.called, true);
  assert.equal(d.paused, 1, "the outer Deferred waits for the generator");
  next.callback("next");
  assert.equal(d.result, "after cancel: next");
});

test("a long run of synchronously fired yields does not grow the stack", () => {
  const d = inlineCallbacks(function* () {
    let total = 0;
    for (let i = 0; i < 20_000; i++) total += (yield succeed(1)) as number;
    return total;
  })();
  assert.equal(d.result, 20_000);
});

test("ensureDeferred passes Deferreds through and converts Promises and generators", async () => {
  const d = new Deferred<number>();
  assert.equal(ensureDeferred(d), d);
  assert.equal(await ensureDeferred(Promise.resolve(3)), 3);
  function* gen(): Generator<unknown, number, never> {
    const x: number = yield succeed(2);
    return x * 3;
  }
  assert.equal(ensureDeferred(gen()).result, 6);
  assert.throws(() => ensureDeferred(42 as never), NotACoroutineError);
});

// ---- DeferredLock / DeferredSemaphore / DeferredQueue -------------------------------------------

test("DeferredLock gives the lock to one acquirer at a time, in order", () => {
  const lock = new DeferredLock();
  const order: string[] = [];
  lock.acquire().addCallback(() => order.push("a"));
  assert.equal(lock.locked, true);
  lock.acquire().addCallback(() => order.push("b"));
  assert.deepEqual(order, ["a"]);
  lock.release();
  assert.deepEqual(order, ["a", "b"]);
  lock.release();
  assert.equal(lock.locked, false);
  assert.throws(() => lock.release(), /unlocked lock/);
});

test("DeferredLock.run releases after the function, whether it succeeds or fails", () => {
  const lock = new DeferredLock();
  const inner = new Deferred<string>();
  const r = lock.run((x: string) => inner.addCallback((v) => v + x), "!");
  assert.equal(lock.locked, true);
  const queued = lock.run(() => {
    throw new GenericError("fails");
  });
  inner.callback("done");
  assert.equal(r.result, "done!");
  assert.equal(lock.locked, false);
  assert.ok((queued.result as Failure).check(GenericError));
  queued.addErrback(() => null);
});

test("cancelling a pending DeferredLock.acquire removes it from the queue", () => {
  const lock = new DeferredLock();
  lock.acquire();
  const pending = lock.acquire();
  pending.cancel();
  assert.ok((pending.result as Failure).check(CancelledError));
  pending.addErrback(() => null);
  lock.release();
  assert.equal(lock.locked, false);
});

test("cancelling an acquired lock's Deferred does nothing", () => {
  const lock = new DeferredLock();
  const d = lock.acquire();
  d.cancel();
  assert.equal(d.result, lock);
  assert.equal(lock.locked, true);
});

test("DeferredSemaphore lets `tokens` holders in at once", () => {
  const sem = new DeferredSemaphore(2);
  const got: number[] = [];
  for (let i = 0; i < 4; i++) sem.acquire().addCallback(() => got.push(i));
  assert.deepEqual(got, [0, 1]);
  assert.equal(sem.tokens, 0);
  sem.release();
  assert.deepEqual(got, [0, 1, 2]);
  sem.release();
  sem.release();
  sem.release();
  assert.equal(sem.tokens, 2);
  assert.throws(() => sem.release(), /too many/);
  assert.throws(() => new DeferredSemaphore(0), RangeError);
});

test("DeferredSemaphore.run limits concurrency", () => {
  const sem = new DeferredSemaphore(1);
  const a = new Deferred<number>();
  const r1 = sem.run(() => a);
  const r2 = sem.run(() => 2);
  assert.equal(r2.called, false);
  a.callback(1);
  assert.equal(r1.result, 1);
  assert.equal(r2.result, 2);
});

test("cancelling a pending DeferredSemaphore.acquire removes it from the queue", () => {
  const sem = new DeferredSemaphore(1);
  sem.acquire();
  const pending = sem.acquire();
  pending.cancel();
  pending.addErrback(() => null);
  assert.equal(sem.waiting.length, 0);
});

test("DeferredQueue hands puts to waiting gets and queues the rest", () => {
  const q = new DeferredQueue<number>();
  const got: number[] = [];
  q.get().addCallback((v) => got.push(v));
  q.put(1);
  q.put(2);
  assert.deepEqual(got, [1]);
  q.get().addCallback((v) => got.push(v));
  assert.deepEqual(got, [1, 2]);
});

test("DeferredQueue bounds: size gives QueueOverflow, backlog gives QueueUnderflow", () => {
  const q = new DeferredQueue<number>(1, 1);
  q.put(1);
  assert.throws(() => q.put(2), QueueOverflow);
  q.get();
  q.get();
  assert.throws(() => q.get(), QueueUnderflow);
});

test("cancelling a DeferredQueue.get withdraws it", () => {
  const q = new DeferredQueue<number>();
  const d = q.get();
  d.cancel();
  d.addErrback(() => null);
  assert.equal(q.waiting.length, 0);
  q.put(1);
  assert.deepEqual(q.pending, [1]);
  const s = q.get();
  s.cancel();
  assert.equal(s.result, 1, "cancelling a get that already fired does nothing");
});
