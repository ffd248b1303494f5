import { test } from "node:test";
import assert from "node:assert/strict";

import { ConnectionRefusedError, NotConnectingError } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import { Factory, Protocol, ReconnectingClientFactory, ServerFactory } from "@twisted-ts/internet/protocol";
import { Clock } from "@twisted-ts/internet/task";
import { FakeConnector, StringTransport } from "@twisted-ts/internet/testing";
import { IPv4Address } from "@twisted-ts/internet/address";

class P extends Protocol {}

test("Factory.forProtocol builds protocols of the class with factory set", () => {
  class MyFactory extends ServerFactory {
    constructor(readonly tag: string) {
      super();
    }
  }
  const f = MyFactory.forProtocol(P, "t");
  assert.ok(f instanceof MyFactory);
  assert.equal(f.tag, "t");
  const p = f.buildProtocol(new IPv4Address("TCP", "127.0.0.1", 1));
  assert.ok(p instanceof P);
  assert.equal(p.factory, f);
});

test("Factory.doStart/doStop call startFactory once on the first port and stopFactory on the last", () => {
  const calls: string[] = [];
  class F extends Factory {
    override startFactory(): void {
      calls.push("start");
    }
    override stopFactory(): void {
      calls.push("stop");
    }
  }
  const f = new F();
  f.doStart();
  f.doStart();
  f.doStop();
  assert.deepEqual(calls, ["start"]);
  f.doStop();
  f.doStop();
  assert.deepEqual(calls, ["start", "stop"]);
});

test("Protocol.makeConnection sets transport and connected and calls connectionMade", () => {
  let made = false;
  class M extends Protocol {
    override connectionMade(): void {
      made = this.connected && this.transport !== undefined;
    }
  }
  const p = new M();
  p.makeConnection(new StringTransport());
  assert.equal(made, true);
});

function refused(): Failure {
  return new Failure(new ConnectionRefusedError());
}

test("ReconnectingClientFactory: delays grow by factor up to maxDelay and jitter is applied after the cap", () => {
  const clock = new Clock();
  const f = new ReconnectingClientFactory();
  f.clock = clock;
  f.initialDelay = 1;
  f.delay = 1;
  f.factor = 2;
  f.maxDelay = 5;
  const seen: Array<[number, number]> = [];
  f.normalVariate = (mu, sigma) => {
    seen.push([mu, sigma]);
    return mu + sigma;
  };
  f.jitter = 0.1;
  const c = new FakeConnector(new IPv4Address("TCP", "127.0.0.1", 9));
  f.clientConnectionFailed(c, refused());
  // 1 * 2 = 2, jittered to 2.2
  assert.deepEqual(seen[0], [2, 2 * 0.1]);
  assert.ok(Math.abs(f.delay - 2.2) < 1e-9);
  clock.advance(2.1);
  assert.equal(c.connectCalled, false);
  clock.advance(0.1);
  assert.equal(c.connectCalled, true);
  f.clientConnectionFailed(c, refused());
  f.clientConnectionFailed(c, refused());
  // 2.2*2 = 4.4 → 4.84; then min(9.68, 5) = 5 → jitter after the cap: 5.5
  assert.deepEqual(seen[2], [5, 0.5]);
  assert.ok(Math.abs(f.delay - 5.5) < 1e-9);
  assert.equal(f.retries, 3);
});

test("ReconnectingClientFactory: retries beyond maxRetries stop; resetDelay starts over", () => {
  const clock = new Clock();
  const f = new ReconnectingClientFactory();
  f.clock = clock;
  f.jitter = 0;
  f.maxRetries = 2;
  const c = new FakeConnector(new IPv4Address("TCP", "127.0.0.1", 9));
  f.clientConnectionFailed(c, refused());
  clock.advance(100);
  f.clientConnectionFailed(c, refused());
  clock.advance(100);
  assert.equal(clock.getDelayedCalls().length, 0);
  f.clientConnectionFailed(c, refused());
  assert.equal(f.retries, 3);
  assert.equal(clock.getDelayedCalls().length, 0, "no retry is scheduled after maxRetries");
  f.resetDelay();
  assert.equal(f.delay, f.initialDelay);
  assert.equal(f.retries, 0);
});

test("ReconnectingClientFactory: stopTrying cancels the pending call and stops the connector, ignoring NotConnectingError", () => {
  const clock = new Clock();
  const f = new ReconnectingClientFactory();
  f.clock = clock;
  const c = new FakeConnector(new IPv4Address("TCP", "127.0.0.1", 9));
  f.clientConnectionLost(c, refused());
  assert.equal(clock.getDelayedCalls().length, 1);
  f.stopTrying();
  assert.equal(clock.getDelayedCalls().length, 0);
  assert.equal(c.stoppedConnecting, true);
  clock.advance(10_000);
  assert.equal(c.connectCalled, false);
  f.clientConnectionFailed(c, refused());
  assert.equal(clock.getDelayedCalls().length, 0, "no retries after stopTrying");

  class Idle extends FakeConnector {
    override stopConnecting(): void {
      throw new NotConnectingError();
    }
  }
  const g = new ReconnectingClientFactory();
  g.clock = clock;
  g.clientConnectionFailed(new Idle(new IPv4Address("TCP", "127.0.0.1", 9)), refused());
  assert.doesNotThrow(() => g.stopTrying());
});

/** A ReconnectingClientFactory with no clock that retries after 1 ms, and the connector it retries. */
function clocklessRetrying(): { f: ReconnectingClientFactory; c: FakeConnector } {
  const f = new ReconnectingClientFactory();
  f.delay = 0.001;
  f.factor = 1;
  f.jitter = 0;
  return { f, c: new FakeConnector(new IPv4Address("TCP", "127.0.0.1", 9)) };
}

/** Waits 20 ms on the global reactor (importing it), long enough for a 1 ms retry to have run. */
async function afterRetryDelay(): Promise<void> {
  const { reactor } = await import("@twisted-ts/internet/reactor");
  await new Promise<void>((resolve) => reactor.callLater(0.02, resolve));
}

test("ReconnectingClientFactory: stopTrying before the global reactor is loaded (the first retry without a clock) leaves no retry scheduled", async () => {
  const { f, c } = clocklessRetrying();
  f.retry(c);
  f.stopTrying();
  await afterRetryDelay();
  assert.equal(c.connectCalled, false);
  assert.equal((f as unknown as { _callID: unknown })._callID, null);
});

test("ReconnectingClientFactory: without a clock, a retry is scheduled on the global reactor, imported when first needed", async () => {
  const { f, c } = clocklessRetrying();
  f.retry(c);
  await afterRetryDelay();
  assert.equal(c.connectCalled, true);
  assert.equal(f.retries, 1);
  // Once the reactor is known, the next retry is scheduled at once.
  c.connectCalled = false;
  f.retry(c);
  assert.notEqual((f as unknown as { _callID: unknown })._callID, null);
  f.stopTrying();
});
