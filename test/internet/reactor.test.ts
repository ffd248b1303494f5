import { test } from "node:test";
import assert from "node:assert/strict";

import { reactor as globalReactor } from "@twisted-ts/internet";
import defaultReactor, { NodeReactor, reactor as namedReactor } from "@twisted-ts/internet/reactor";
import { Deferred } from "@twisted-ts/internet/defer";
import { AlreadyCalled, AlreadyCancelled, ConnectionLost, ConnectionRefusedError, ReactorNotRunning } from "@twisted-ts/internet/error";
import { Factory } from "@twisted-ts/internet/protocol";
import { Recorder, RecordingClientFactory, captureLogs, until } from "./_helpers.js";

test("the global reactor is one instance under both import paths", () => {
  assert.equal(globalReactor, namedReactor);
  assert.equal(globalReactor, defaultReactor);
  assert.ok(globalReactor instanceof NodeReactor);
  assert.equal(globalReactor.running, false);
});

test("stop() on a reactor that is not running throws ReactorNotRunning", () => {
  const r = new NodeReactor();
  assert.throws(() => r.stop(), ReactorNotRunning);
});

test("callLater runs after the delay; cancel, reset and delay behave as IDelayedCall", async () => {
  const r = new NodeReactor();
  const order: string[] = [];
  const a = r.callLater(0.02, (x: string) => order.push(x), "a");
  const b = r.callLater(0, () => order.push("b"));
  const c = r.callLater(0.01, () => order.push("c"));
  c.cancel();
  assert.throws(() => c.cancel(), AlreadyCancelled);
  assert.equal(c.active(), false);
  assert.equal(r.getDelayedCalls().length, 2);
  assert.ok(a.getTime() > r.seconds());
  await until(() => order.length === 2);
  assert.deepEqual(order, ["b", "a"]);
  assert.throws(() => b.cancel(), AlreadyCalled);
  assert.equal(r.getDelayedCalls().length, 0);
  const d = r.callLater(10, () => order.push("d"));
  d.reset(0);
  await until(() => order.length === 3);
  const e = r.callLater(0, () => order.push("e"));
  e.delay(0.01);
  await until(() => order.length === 4);
  assert.deepEqual(order, ["b", "a", "d", "e"]);
});

test("an exception in a delayed call is logged and later calls still run", async (t) => {
  const r = new NodeReactor();
  const logs = captureLogs();
  t.after(logs.stop);
  let ran = false;
  r.callLater(0, () => {
    throw new Error("delayed failure");
  });
  r.callLater(0.005, () => {
    ran = true;
  });
  await until(() => ran);
  assert.ok(logs.events.some((e) => e.log_level === "critical" && String(e.log_failure).includes("delayed failure")));
});

test("run() fires startup triggers and callWhenRunning; stop() runs shutdown triggers in order, waits for before-shutdown Deferreds, and closes what is open", async () => {
  const r = new NodeReactor();
  const events: string[] = [];
  r.addSystemEventTrigger("before", "startup", () => events.push("before-startup"));
  r.callWhenRunning((x: string) => events.push(x), "running");
  const slow = new Deferred<void>();
  r.addSystemEventTrigger("before", "shutdown", () => {
    events.push("before-shutdown");
    setTimeout(() => {
      events.push("slow done");
      slow.callback(undefined);
    }, 20);
    return slow;
  });
  r.addSystemEventTrigger("during", "shutdown", () => events.push("during-shutdown"));
  r.addSystemEventTrigger("after", "shutdown", () => events.push("after-shutdown"));
  const removed = r.addSystemEventTrigger("after", "shutdown", () => events.push("removed"));
  r.removeSystemEventTrigger(removed);

  const finished = r.run({ installSignalHandlers: false });
  assert.equal(r.running, true);
  assert.deepEqual(events, ["before-startup", "running"]);
  let now = false;
  r.callWhenRunning(() => (now = true));
  assert.equal(now, true);

  const port = r.listenTCP(0, Factory.forProtocol(Recorder), 50, "127.0.0.1");
  await port.whenListening();
  const portNumber = port.getHost().port;
  const serverProtocols: Recorder[] = [];
  const f = new RecordingClientFactory(Recorder);
  let client: Recorder | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as Recorder);
  r.connectTCP("127.0.0.1", portNumber, f);
  await until(() => client !== null && client.connected);
  void serverProtocols;
  const timer = r.callLater(1000, () => events.push("never"));

  r.stop();
  assert.throws(() => r.stop(), ReactorNotRunning);
  await finished;
  assert.equal(r.running, false);
  assert.deepEqual(events, ["before-startup", "running", "before-shutdown", "slow done", "during-shutdown", "after-shutdown"]);
  const reason = await client!.lost;
  assert.ok(reason.check(ConnectionLost));
  assert.equal(timer.active(), false, "pending calls are cancelled so the process can exit");
  // The port is closed.
  const r2 = new NodeReactor();
  const f2 = new RecordingClientFactory(Recorder);
  r2.connectTCP("127.0.0.1", portNumber, f2);
  assert.ok((await f2.failed).check(ConnectionRefusedError));
  assert.throws(() => r.run(), { name: "ReactorNotRestartable" });
});

test("callSoon runs work on a later turn and logs its errors", async (t) => {
  const r = new NodeReactor();
  const logs = captureLogs();
  t.after(logs.stop);
  const seen: number[] = [];
  r.callSoon((n: number) => seen.push(n), 1);
  r.callFromThread(() => {
    throw new Error("soon failure");
  });
  assert.deepEqual(seen, []);
  await until(() => seen.length === 1);
  await until(() => logs.events.some((e) => String(e.log_failure).includes("soon failure")));
});
