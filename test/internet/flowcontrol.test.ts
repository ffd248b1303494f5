import { test } from "node:test";
import assert from "node:assert/strict";

import { ConnectionDone } from "@twisted-ts/internet/error";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IPullProducer, IPushProducer } from "@twisted-ts/internet/interfaces";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { NodeReactor, type TCPTransport } from "@twisted-ts/internet/reactor";
import { RecordingClientFactory, until } from "./_helpers.js";

const TOTAL = 256 * 1024 * 1024;
const CHUNK = 64 * 1024;

/** Writes TOTAL bytes as fast as the transport lets it, pausing when told. */
class BulkSender extends Protocol implements IPushProducer {
  private sent = 0;
  private paused = false;
  private readonly chunk = Buffer.alloc(CHUNK, 0x5a);
  pauses = 0;
  maxBuffered = 0;
  override connectionMade(): void {
    this.transport.setTcpNoDelay(true);
    this.transport.registerProducer(this, true);
    this.resumeProducing();
  }
  pauseProducing(): void {
    this.paused = true;
    this.pauses += 1;
  }
  resumeProducing(): void {
    this.paused = false;
    const t = this.transport as unknown as TCPTransport;
    while (!this.paused && this.sent < TOTAL) {
      // The same buffer every time: the transport must not need a copy.
      this.transport.write(this.chunk);
      this.sent += CHUNK;
      this.maxBuffered = Math.max(this.maxBuffered, t.bufferedBytes);
    }
    if (this.sent >= TOTAL && !this.paused) {
      this.transport.unregisterProducer();
      this.transport.loseConnection();
    }
  }
  stopProducing(): void {
    this.paused = true;
  }
}

/** Connects a reader that counts what it gets to `port`; resolves with the count once the sender closes. */
async function drainFrom(r: NodeReactor, port: number): Promise<number> {
  let received = 0;
  let closed = false;
  class Sink extends Protocol {
    override dataReceived(data: Uint8Array): void {
      received += data.length;
    }
    override connectionLost(): void {
      closed = true;
    }
  }
  r.connectTCP("127.0.0.1", port, new RecordingClientFactory(Sink));
  await until(() => closed, "transfer");
  return received;
}

test("TCP: 256 MiB through a slow consumer keeps the sender's buffer and memory bounded", async (t) => {
  const r = new NodeReactor();
  const senders: BulkSender[] = [];
  class F extends Factory {
    override buildProtocol(): BulkSender {
      const p = new BulkSender();
      senders.push(p);
      return p;
    }
  }
  const port = r.listenTCP(0, new F(), 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());

  let received = 0;
  let consumerPauses = 0;
  let done: (f: Failure) => void = () => {};
  const finished = new Promise<Failure>((resolve) => (done = resolve));
  class SlowConsumer extends Protocol {
    private nextPause = 8 * 1024 * 1024;
    override dataReceived(data: Uint8Array): void {
      received += data.length;
      if (received >= this.nextPause) {
        // A slow reader: stop reading for a moment every 8 MiB.
        this.nextPause += 8 * 1024 * 1024;
        consumerPauses += 1;
        this.transport.pauseProducing();
        setTimeout(() => this.transport.resumeProducing(), 3);
      }
    }
    override connectionLost(reason: Failure): void {
      done(reason);
    }
  }
  const rssBefore = process.memoryUsage().rss;
  let rssPeak = rssBefore;
  const sampler = setInterval(() => {
    rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
  }, 20);
  t.after(() => clearInterval(sampler));
  r.connectTCP("127.0.0.1", port.getHost().port, new RecordingClientFactory(SlowConsumer));
  const reason = await finished;
  clearInterval(sampler);
  assert.ok(reason.check(ConnectionDone), String(reason));
  assert.equal(received, TOTAL);
  const sender = senders[0]!;
  assert.ok(consumerPauses >= 30);
  assert.ok(sender.pauses > 0, "the producer was paused by the transport");
  // The transport buffers at most about one high-water mark plus one chunk before pausing.
  assert.ok(sender.maxBuffered <= 1024 * 1024, `sender buffered ${sender.maxBuffered} bytes`);
  assert.ok(rssPeak - rssBefore < 96 * 1024 * 1024, `RSS grew by ${(rssPeak - rssBefore) >> 20} MiB`);
});

test("TCP: a pull producer is asked for one chunk each time the socket drains", async (t) => {
  const r = new NodeReactor();
  const chunks = 64;
  class PullSender extends Protocol implements IPullProducer {
    calls = 0;
    override connectionMade(): void {
      this.transport.registerProducer(this, false);
    }
    resumeProducing(): void {
      this.calls += 1;
      if (this.calls > chunks) {
        this.transport.unregisterProducer();
        this.transport.loseConnection();
        return;
      }
      this.transport.write(Buffer.alloc(32 * 1024, this.calls));
    }
    stopProducing(): void {}
  }
  const port = r.listenTCP(0, Factory.forProtocol(PullSender), 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());
  const received = await drainFrom(r, port.getHost().port);
  assert.equal(received, chunks * 32 * 1024);
});

test("TCP: loseConnection with a pull producer registered waits until it unregisters", async (t) => {
  const r = new NodeReactor();
  class EarlyClose extends Protocol implements IPullProducer {
    calls = 0;
    override connectionMade(): void {
      this.transport.registerProducer(this, false);
      this.transport.loseConnection();
    }
    resumeProducing(): void {
      this.calls += 1;
      if (this.calls > 10) {
        this.transport.unregisterProducer();
        return;
      }
      this.transport.write(Buffer.alloc(1000, this.calls));
    }
    stopProducing(): void {}
  }
  const port = r.listenTCP(0, Factory.forProtocol(EarlyClose), 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());
  let received = 0;
  let reason: Failure | null = null;
  class Sink extends Protocol {
    override dataReceived(data: Uint8Array): void {
      received += data.length;
    }
    override connectionLost(why: Failure): void {
      reason = why;
    }
  }
  r.connectTCP("127.0.0.1", port.getHost().port, new RecordingClientFactory(Sink));
  await until(() => reason !== null, "close");
  assert.equal(received, 10_000);
  assert.ok(reason!.check(ConnectionDone));
});

test("TCP: writes in the same turn as loseConnection are sent, later ones dropped, and the close stays clean", async (t) => {
  const r = new NodeReactor();
  let serverReason: Failure | null = null;
  class Closer extends Protocol {
    override connectionMade(): void {
      this.transport.write("before");
      this.transport.loseConnection();
      this.transport.write(" same turn");
      setImmediate(() => setImmediate(() => this.transport.write(" too late")));
    }
    override connectionLost(why: Failure): void {
      serverReason = why;
    }
  }
  const port = r.listenTCP(0, Factory.forProtocol(Closer), 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());
  let text = "";
  let closed = false;
  class Sink extends Protocol {
    override dataReceived(data: Uint8Array): void {
      text += Buffer.from(data).toString();
    }
    override connectionLost(): void {
      closed = true;
    }
  }
  r.connectTCP("127.0.0.1", port.getHost().port, new RecordingClientFactory(Sink));
  await until(() => closed && serverReason !== null, "close");
  assert.equal(text, "before same turn");
  assert.ok(serverReason!.check(ConnectionDone), String(serverReason));
});

test("TCP: writes held by coalesceWrites pause a streaming producer only past 1 MiB in one turn", async (t) => {
  const r = new NodeReactor();
  const pausedAfter: number[] = [];
  let resumes = 0;
  class TurnWriter extends Protocol implements IPushProducer {
    private written = 0;
    private paused = false;
    override connectionMade(): void {
      this.transport.registerProducer(this, true);
      (this.transport as unknown as TCPTransport).coalesceWrites();
      // One turn: 20 × 64 KiB, all held until the turn ends.
      for (let i = 0; i < 20; i++) {
        this.transport.write(Buffer.alloc(64 * 1024, i));
        this.written += 64 * 1024;
        if (this.paused && pausedAfter.length === 0) pausedAfter.push(this.written);
      }
    }
    pauseProducing(): void {
      this.paused = true;
    }
    resumeProducing(): void {
      this.paused = false;
      resumes += 1;
      this.transport.unregisterProducer();
      this.transport.loseConnection();
    }
    stopProducing(): void {}
  }
  const port = r.listenTCP(0, Factory.forProtocol(TurnWriter), 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());
  const received = await drainFrom(r, port.getHost().port);
  // Not at the socket's 16 KiB high-water mark: only once the held bytes reach 1 MiB.
  assert.deepEqual(pausedAfter, [1024 * 1024]);
  assert.equal(resumes, 1, "resumed once the held bytes were sent");
  assert.equal(received, 20 * 64 * 1024);
});
