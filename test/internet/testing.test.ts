import { test } from "node:test";
import assert from "node:assert/strict";

import { ConnectionAborted, ConnectionDone, ConnectionLost } from "@twisted-ts/internet/error";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IPushProducer } from "@twisted-ts/internet/interfaces";
import { ClientFactory, Protocol } from "@twisted-ts/internet/protocol";
import { Clock } from "@twisted-ts/internet/task";
import {
  MemoryReactor,
  MemoryReactorClock,
  StringTransport,
  StringTransportWithDisconnection,
  connectedServerAndClient,
  loopbackAsync,
} from "@twisted-ts/internet/testing";

class Recorder extends Protocol {
  received: string[] = [];
  lost: Failure[] = [];
  made = 0;
  override connectionMade(): void {
    this.made += 1;
  }
  override dataReceived(data: Uint8Array): void {
    this.received.push(Buffer.from(data).toString("latin1"));
  }
  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.lost.push(reason);
  }
  text(): string {
    return this.received.join("");
  }
}

class Echo extends Recorder {
  override dataReceived(data: Uint8Array): void {
    super.dataReceived(data);
    this.transport.write(data);
  }
}

test("StringTransport records writes, clears, and tracks producer registration", () => {
  const t = new StringTransport();
  t.write("ab");
  t.writeSequence([Buffer.from("c"), "d"]);
  assert.equal(t.value().toString(), "abcd");
  t.clear();
  assert.equal(t.value().length, 0);
  const producer: IPushProducer = { pauseProducing() {}, resumeProducing() {}, stopProducing() {} };
  t.registerProducer(producer, true);
  assert.equal(t.producer, producer);
  assert.equal(t.streaming, true);
  assert.throws(() => t.registerProducer(producer, true));
  t.unregisterProducer();
  assert.equal(t.producer, null);
  assert.throws(() => t.unregisterProducer());
  t.setTcpNoDelay(true);
  assert.equal(t.getTcpNoDelay(), true);
  assert.equal(t.disconnecting, false);
  t.loseConnection();
  assert.equal(t.disconnecting, true);
});

test("StringTransport copies written bytes, so a caller may reuse its buffer", () => {
  const t = new StringTransport();
  const buf = Buffer.from("xy");
  t.write(buf);
  buf[0] = 0x41;
  assert.equal(t.value().toString(), "xy");
});

test("StringTransportWithDisconnection delivers connectionLost(ConnectionDone) on loseConnection", () => {
  const p = new Recorder();
  const t = new StringTransportWithDisconnection();
  p.makeConnection(t);
  t.protocol = p;
  t.loseConnection();
  t.loseConnection();
  assert.equal(p.lost.length, 1);
  assert.ok(p.lost[0]!.check(ConnectionDone));
  assert.equal(p.connected, false);
});

test("connectedServerAndClient: flush moves bytes both ways until nothing moves", () => {
  const server = new Echo();
  const client = new Recorder();
  const { pump, clientTransport } = connectedServerAndClient(server, client);
  assert.equal(server.made, 1);
  assert.equal(client.made, 1);
  client.transport.write("hello");
  client.transport.writeSequence(["a", "b"]);
  assert.equal(pump.pump(), true);
  assert.equal(server.text(), "helloab");
  assert.equal(client.text(), "");
  pump.flush();
  assert.equal(client.text(), "helloab");
  assert.equal(pump.pump(), false);
  assert.equal(clientTransport.getPeer().port, 22);
});

test("connectedServerAndClient: loseConnection flushes, then both sides get ConnectionDone", () => {
  const server = new Recorder();
  const client = new Recorder();
  const { pump } = connectedServerAndClient(server, client);
  client.transport.write("last words");
  client.transport.loseConnection();
  pump.flush();
  assert.equal(server.text(), "last words");
  assert.equal(server.lost.length, 1);
  assert.equal(client.lost.length, 1);
  assert.ok(server.lost[0]!.check(ConnectionDone));
  assert.ok(client.lost[0]!.check(ConnectionDone));
});

test("connectedServerAndClient: abortConnection drops queued bytes and reports ConnectionAborted / ConnectionLost", () => {
  const server = new Recorder();
  const client = new Recorder();
  const { pump } = connectedServerAndClient(server, client);
  client.transport.write("never delivered");
  client.transport.abortConnection();
  pump.flush();
  assert.equal(server.text(), "");
  assert.ok(client.lost[0]!.check(ConnectionAborted));
  assert.ok(server.lost[0]!.check(ConnectionLost));
});

test("connectedServerAndClient: the clock is advanced by 0 on each pump, so callLater(0) work runs", () => {
  const clock = new Clock();
  class Later extends Recorder {
    override dataReceived(data: Uint8Array): void {
      super.dataReceived(data);
      clock.callLater(0, () => this.transport.write("later"));
    }
  }
  const server = new Later();
  const client = new Recorder();
  const { pump } = connectedServerAndClient(server, client, { clock });
  client.transport.write("x");
  pump.flush();
  assert.equal(client.text(), "later");
});

test("connectedServerAndClient: a paused transport holds incoming bytes until resumed", () => {
  const server = new Recorder();
  const client = new Recorder();
  const { pump, serverTransport } = connectedServerAndClient(server, client);
  serverTransport.pauseProducing();
  client.transport.write("held");
  pump.flush();
  assert.equal(server.text(), "");
  serverTransport.resumeProducing();
  pump.flush();
  assert.equal(server.text(), "held");
});

test("connectedServerAndClient: a streaming producer is paused over the buffer size and resumed after the pump drains it", () => {
  const server = new Recorder();
  const client = new Recorder();
  const { pump, clientTransport } = connectedServerAndClient(server, client);
  const events: string[] = [];
  clientTransport.bufferSize = 10;
  clientTransport.registerProducer(
    {
      pauseProducing: () => events.push("pause"),
      resumeProducing: () => events.push("resume"),
      stopProducing: () => events.push("stop"),
    },
    true,
  );
  client.transport.write("0123456789ABC");
  assert.deepEqual(events, ["pause"]);
  pump.pump();
  assert.deepEqual(events, ["pause", "resume"]);
  assert.equal(server.text(), "0123456789ABC");
  client.transport.loseConnection();
  pump.flush();
  assert.deepEqual(events, ["pause", "resume", "stop"]);
});

test("connectedServerAndClient: loseWriteConnection reaches a half-close-aware peer as readConnectionLost", () => {
  class Half extends Recorder {
    events: string[] = [];
    readConnectionLost(): void {
      this.events.push("read");
      this.transport.write("bye");
      this.transport.loseConnection();
    }
    writeConnectionLost(): void {
      this.events.push("write");
    }
  }
  const server = new Half();
  const client = new Half();
  const { pump } = connectedServerAndClient(server, client);
  client.transport.write("req");
  client.transport.loseWriteConnection();
  pump.flush();
  assert.equal(server.text(), "req");
  assert.deepEqual(client.events, ["write"]);
  assert.deepEqual(server.events, ["read"]);
  assert.equal(client.text(), "bye");
  assert.equal(server.lost.length, 1);
  assert.equal(client.lost.length, 1);
});

test("loopbackAsync moves bytes on the event loop and resolves when both sides are closed", async () => {
  class Greeter extends Recorder {
    override connectionMade(): void {
      this.transport.write("ping");
    }
  }
  class Closer extends Recorder {
    override dataReceived(data: Uint8Array): void {
      super.dataReceived(data);
      this.transport.write("pong");
      this.transport.loseConnection();
    }
  }
  const server = new Closer();
  const client = new Greeter();
  await loopbackAsync(server, client);
  assert.equal(server.text(), "ping");
  assert.equal(client.text(), "pong");
  assert.equal(client.lost.length, 1);
});

test("MemoryReactor records connectTCP and listenTCP; MemoryReactorClock keeps Clock time", () => {
  const r = new MemoryReactor();
  const started: unknown[] = [];
  class F extends ClientFactory {
    override startedConnecting(c: unknown): void {
      started.push(c);
    }
  }
  const f = new F();
  const c = r.connectTCP("example.com", 22, f, 5);
  assert.equal(r.tcpClients[0]!.host, "example.com");
  assert.equal(r.tcpClients[0]!.factory, f);
  assert.deepEqual(started, [c]);
  const port = r.listenTCP(2222, f, 10, "127.0.0.1");
  assert.equal(port.getHost().port, 2222);
  assert.equal(r.tcpServers[0]!.backlog, 10);

  const rc = new MemoryReactorClock();
  let ran = false;
  rc.callLater(2, () => {
    ran = true;
  });
  rc.advance(1);
  assert.equal(ran, false);
  rc.advance(1);
  assert.equal(ran, true);
  assert.equal(rc.seconds(), 2);
});
