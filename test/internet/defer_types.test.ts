import { test } from "node:test";
import assert from "node:assert/strict";
import { Deferred, succeed, inlineCallbacks, gatherResults, maybeDeferred } from "@twisted-ts/internet/defer";
import { Failure } from "@twisted-ts/internet/failure";
import { defer, failure, task, log } from "@twisted-ts/internet";

// Compile-time checks: these assignments fail to build if the types regress.
test("callback return types flow through the chain (values, Deferreds, Promises)", async () => {
  const a: Deferred<string> = succeed(1).addCallback((n) => String(n));
  const b: Deferred<number> = a.addCallback((s) => succeed(s.length));
  const c: Deferred<boolean> = b.addCallback((n) => Promise.resolve(n > 0));
  const d: Deferred<boolean | string> = c.addErrback((f: Failure) => f.getErrorMessage());
  const e: Deferred<number> = d.addBoth((r) => (r instanceof Failure ? 0 : 1));
  const f: Deferred<number> = e.addCallback((n, k: number) => n + k, 10);
  const g: Deferred<number | "err"> = f.addCallbacks(
    (n) => n * 2,
    () => "err" as const,
  );
  const h: Deferred<number[]> = gatherResults([succeed(1), succeed(2)]);
  const i: Deferred<number> = maybeDeferred((x: number) => x + 1, 1);
  const j: Deferred<number> = inlineCallbacks(function* () {
    const x: number = yield succeed(2);
    return x;
  })();
  const n: number | "err" = await g;
  assert.equal(n, 22);
  assert.deepEqual(await h, [1, 2]);
  assert.equal(await i, 2);
  assert.equal(await j, 2);
});

test("the package barrel exposes defer, failure, task and log", () => {
  assert.equal(typeof defer.Deferred, "function");
  assert.equal(typeof failure.Failure, "function");
  assert.equal(typeof task.Clock, "function");
  assert.equal(typeof log.startLogging, "function");
});
