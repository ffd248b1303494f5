import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { Deferred, DeferredList, gatherResults, reportAllUnhandled, setDebugging } from "@twisted-ts/internet/defer";
import { Failure } from "@twisted-ts/internet/failure";
import { eventAsText, globalLogPublisher } from "@twisted-ts/internet/log";
import type { LogEvent } from "@twisted-ts/internet/log";

// The test runner does not pass --expose-gc; turning the flag on at run time and fetching `gc` from
// a fresh context gives the same function.
setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

class UnhandledError extends Error {}

function capture(): { events: LogEvent[]; stop: () => void } {
  const events: LogEvent[] = [];
  const observer = (e: LogEvent): void => {
    if (e.log_namespace === "twisted-ts.internet.defer") events.push(e);
  };
  globalLogPublisher.addObserver(observer);
  return { events, stop: () => globalLogPublisher.removeObserver(observer) };
}

async function collect(until: () => boolean): Promise<void> {
  for (let i = 0; i < 20 && !until(); i++) {
    gc();
    await new Promise((r) => setTimeout(r, 0));
  }
}

function dropFailed(message: string): void {
  const d = new Deferred<number>();
  d.errback(new UnhandledError(message));
}

test("a Deferred collected with an unhandled Failure logs it at critical level with its traceback", async () => {
  const { events, stop } = capture();
  try {
    dropFailed("nobody handled me");
    await collect(() => events.length >= 2);
    assert.equal(events.length, 2);
    assert.equal(events[0]?.log_level, "critical");
    assert.equal(eventAsText(events[0]!), "Unhandled error in Deferred:");
    assert.equal(events[1]?.log_level, "critical");
    const f = events[1]?.log_failure;
    assert.ok(f instanceof Failure && f.check(UnhandledError));
    assert.match(eventAsText(events[1]!), /UnhandledError: nobody handled me\n\s+at /);
  } finally {
    stop();
  }
});

test("a handled failure, a consumed DeferredList error and a success are not reported", async () => {
  const { events, stop } = capture();
  try {
    (() => {
      const d = new Deferred<number>();
      d.errback(new UnhandledError("handled"));
      d.addErrback(() => null);
      const e = new Deferred<number>();
      new DeferredList([e], { consumeErrors: true });
      e.errback(new UnhandledError("consumed"));
      const g = new Deferred<number>();
      gatherResults([g], true).addErrback(() => null);
      g.errback(new UnhandledError("gathered"));
      new Deferred<number>().callback(1);
    })();
    // A reported one afterwards shows that collection did happen.
    dropFailed("marker");
    await collect(() => events.length >= 2);
    assert.equal(events.length, 2);
    assert.match(eventAsText(events[1]!), /marker/);
  } finally {
    stop();
  }
});

test("an errback result moved into a waiting Deferred is reported once, by the outer one", async () => {
  const { events, stop } = capture();
  try {
    (() => {
      const inner = new Deferred<number>();
      const outer = new Deferred<number>();
      outer.addCallback(() => inner);
      outer.callback(0);
      inner.errback(new UnhandledError("moved"));
    })();
    await collect(() => events.length >= 2);
    await collect(() => events.length > 2);
    assert.equal(events.length, 2);
    assert.match(eventAsText(events[1]!), /moved/);
  } finally {
    stop();
  }
});

test("reportAllUnhandled reports live Deferreds ending in a failure at once (also run at exit)", () => {
  const { events, stop } = capture();
  try {
    const d = new Deferred<number>();
    d.errback(new UnhandledError("still referenced"));
    assert.equal(reportAllUnhandled(), 1);
    assert.equal(events.length, 2);
    assert.match(eventAsText(events[1]!), /still referenced/);
    assert.equal(reportAllUnhandled(), 0, "each failure is reported once");
    d.addErrback(() => null);
  } finally {
    stop();
  }
});

test("with debugging on, the report says where the Deferred was created and fired", () => {
  const { events, stop } = capture();
  setDebugging(true);
  try {
    const d = new Deferred<number>();
    d.errback(new UnhandledError("debugged"));
    reportAllUnhandled();
    assert.match(eventAsText(events[1]!), /\(debug:  C: Deferred was created:/);
    assert.equal(typeof events[1]?.debugInfo, "string");
    void d;
  } finally {
    setDebugging(false);
    stop();
  }
});

test("a failure cleared by an errback that chains to another Deferred is not reported", async () => {
  const { events, stop } = capture();
  try {
    (() => {
      const bad = new Deferred<void>();
      bad.errback(new UnhandledError("oh no"));
      const good = new Deferred<void>();
      bad.addErrback(() => good);
    })();
    dropFailed("marker");
    await collect(() => events.length >= 2);
    assert.equal(events.length, 2);
    assert.match(eventAsText(events[1]!), /marker/);
  } finally {
    stop();
  }
});
