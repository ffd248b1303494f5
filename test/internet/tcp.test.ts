import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";
import { spawn } from "node:child_process";

import { LineReceiver } from "@twisted-ts/internet/basic";
import { Deferred } from "@twisted-ts/internet/defer";
import {
  CannotListenError,
  ConnectionDone,
  ConnectionLost,
  ConnectionRefusedError,
  DNSLookupError,
  TimeoutError,
  UserError,
} from "@twisted-ts/internet/error";
import type { Failure } from "@twisted-ts/internet/failure";
import { ClientCreator, Factory, Protocol, ReconnectingClientFactory } from "@twisted-ts/internet/protocol";
import { NodeReactor } from "@twisted-ts/internet/reactor";
import { Clock } from "@twisted-ts/internet/task";
import { freePort, missing, tempDir } from "../_support/peers.js";
import { Recorder, RecordingClientFactory, captureLogs, sleep, until } from "./_helpers.js";

class LineEcho extends LineReceiver {
  override lineReceived(line: Uint8Array): unknown {
    this.sendLine(line);
    return undefined;
  }
}

class LineCollector extends LineReceiver {
  lines: string[] = [];
  declare onLost: (f: Failure) => void;
  lost: Promise<Failure> = new Promise((r) => (this.onLost = r));
  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.onLost(reason);
  }
  done = new Deferred<string[]>();
  expected = 0;
  override lineReceived(line: Uint8Array): unknown {
    this.lines.push(Buffer.from(line).toString("latin1"));
    if (this.lines.length === this.expected) this.done.callback(this.lines);
    return undefined;
  }
}

async function listen(r: NodeReactor, factory: Factory): Promise<{ port: number; stop: () => Promise<void> }> {
  const p = r.listenTCP(0, factory, 50, "127.0.0.1");
  await p.whenListening();
  const host = p.getHost();
  assert.equal(host.family, "IPv4");
  return { port: host.port, stop: async () => void (await p.stopListening()) };
}

test("TCP: LineReceiver echo works across arbitrary packet splits", async (t) => {
  const r = new NodeReactor();
  const server = await listen(r, Factory.forProtocol(LineEcho));
  t.after(server.stop);
  const lines = Array.from({ length: 200 }, (_, i) => `line ${i} ${"x".repeat(i % 37)}`);
  const wire = Buffer.from(lines.map((l) => `${l}\r\n`).join(""), "latin1");
  const f = new RecordingClientFactory(LineCollector);
  r.connectTCP("127.0.0.1", server.port, f);
  const client = (await new Promise<LineCollector>((resolve) => {
    const orig = f.buildProtocol.bind(f);
    f.buildProtocol = (addr) => {
      const p = orig(addr) as LineCollector;
      p.expected = lines.length;
      resolve(p);
      return p;
    };
  })) as LineCollector;
  await until(() => client.connected, "connection");
  client.transport.setTcpNoDelay(true);
  assert.equal(client.transport.getTcpNoDelay(), true);
  // Write in pieces of 1..17 bytes, yielding to the loop so they go out as separate segments.
  let off = 0;
  let n = 1;
  while (off < wire.length) {
    const piece = wire.subarray(off, off + n);
    client.transport.write(piece);
    off += piece.length;
    n = (n % 17) + 1;
    if (off % 5 === 0) await sleep(0);
  }
  assert.deepEqual(await client.done, lines);
  client.transport.loseConnection();
  const reason = await client.lost;
  assert.ok(reason.check(ConnectionDone));
});

test("TCP: getPeer and getHost report both ends of the connection", async (t) => {
  const r = new NodeReactor();
  const serverSide = new Deferred<Recorder>();
  class S extends Recorder {
    override connectionMade(): void {
      super.connectionMade();
      serverSide.callback(this);
    }
  }
  const server = await listen(r, Factory.forProtocol(S));
  t.after(server.stop);
  const f = new RecordingClientFactory(Recorder);
  r.connectTCP("127.0.0.1", server.port, f);
  const s = await serverSide;
  assert.equal(s.transport.getHost().port, server.port);
  assert.equal(s.transport.getPeer().host, "127.0.0.1");
  assert.equal(s.transport.getPeer().type, "TCP");
  s.transport.loseConnection();
  await s.lost;
});

test("TCP: loseWriteConnection half-closes; a half-close-aware peer gets readConnectionLost and can still reply", async (t) => {
  const r = new NodeReactor();
  class HalfServer extends Recorder {
    readConnectionLost(): void {
      this.transport.write(`got ${this.text()}`);
      this.transport.loseConnection();
    }
    writeConnectionLost(): void {}
  }
  const server = await listen(r, Factory.forProtocol(HalfServer));
  t.after(server.stop);
  const writeLost = new Deferred<void>();
  class HalfClient extends Recorder {
    override connectionMade(): void {
      super.connectionMade();
      this.transport.write("request");
      this.transport.loseWriteConnection();
    }
    readConnectionLost(): void {
      this.transport.loseConnection();
    }
    writeConnectionLost(): void {
      writeLost.callback(undefined);
    }
  }
  const f = new RecordingClientFactory(HalfClient);
  let client: HalfClient | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as HalfClient);
  r.connectTCP("127.0.0.1", server.port, f);
  await until(() => client !== null);
  await writeLost;
  const reason = await client!.lost;
  assert.equal(client!.text(), "got request");
  assert.ok(reason.check(ConnectionDone));
});

test("TCP: a peer's EOF closes a protocol that is not half-close-aware with ConnectionDone", async (t) => {
  const r = new NodeReactor();
  const serverSide = new Deferred<Recorder>();
  class S extends Recorder {
    override connectionMade(): void {
      super.connectionMade();
      serverSide.callback(this);
    }
  }
  const server = await listen(r, Factory.forProtocol(S));
  t.after(server.stop);
  const sock = netConnect(server.port, "127.0.0.1");
  sock.on("connect", () => sock.end("bye"));
  sock.resume();
  const s = await serverSide;
  const reason = await s.lost;
  assert.ok(reason.check(ConnectionDone));
  assert.equal(s.text(), "bye");
});

test("TCP: a refused connection calls clientConnectionFailed with ConnectionRefusedError", async () => {
  const r = new NodeReactor();
  const port = await freePort();
  const f = new RecordingClientFactory(Recorder);
  const connector = r.connectTCP("127.0.0.1", port, f);
  assert.equal(f.started.length, 1);
  assert.equal(f.started[0], connector);
  const reason = await f.failed;
  assert.ok(reason.check(ConnectionRefusedError), String(reason));
  assert.equal(connector.getDestination().port, port);
});

/** A listener whose accept queue is full, so further connection attempts hang (SYNs dropped). */
async function blackhole(t: import("node:test").TestContext): Promise<number> {
  const port = await freePort();
  const py = spawn("/usr/bin/python3", [
    "-c",
    `import socket,time,sys
s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("127.0.0.1", ${port})); s.listen(0)
fill=[]
for i in range(3):
    c=socket.socket(); c.setblocking(False)
    try: c.connect(("127.0.0.1", ${port}))
    except BlockingIOError: pass
    fill.append(c)
print("ready", flush=True)
time.sleep(60)`,
  ]);
  t.after(() => py.kill("SIGKILL"));
  await new Promise<void>((resolve, reject) => {
    py.stdout.on("data", (d: Buffer) => (d.toString().includes("ready") ? resolve() : undefined));
    py.on("exit", () => reject(new Error("blackhole helper exited")));
  });
  return port;
}

test("TCP: a connect that does not complete within timeout fails with TimeoutError", async (t) => {
  const port = await blackhole(t);
  const r = new NodeReactor();
  const f = new RecordingClientFactory(Recorder);
  r.connectTCP("127.0.0.1", port, f, 0.3);
  const reason = await f.failed;
  assert.ok(reason.check(TimeoutError), String(reason));
});

test("TCP: stopConnecting fails the attempt with UserError; connecting again is allowed", async (t) => {
  const port = await blackhole(t);
  const r = new NodeReactor();
  const f = new RecordingClientFactory(Recorder);
  const c = r.connectTCP("127.0.0.1", port, f, 30);
  c.stopConnecting();
  const reason = await f.failed;
  assert.ok(reason.check(UserError));
  assert.equal(c.state, "disconnected");
  assert.throws(() => c.stopConnecting(), { name: "NotConnectingError" });
});

test("TCP: stopListening closes the port: new connections are refused, open ones stay up", async () => {
  const r = new NodeReactor();
  const serverSide = new Deferred<Recorder>();
  class S extends Recorder {
    override connectionMade(): void {
      super.connectionMade();
      serverSide.callback(this);
    }
    override dataReceived(data: Uint8Array): void {
      super.dataReceived(data);
      this.transport.write(data);
    }
  }
  const calls: string[] = [];
  class F extends Factory {
    override startFactory(): void {
      calls.push("start");
    }
    override stopFactory(): void {
      calls.push("stop");
    }
  }
  const p = r.listenTCP(0, F.forProtocol(S), 50, "127.0.0.1");
  await p.whenListening();
  const port = p.getHost().port;
  const f = new RecordingClientFactory(Recorder);
  let client: Recorder | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as Recorder);
  r.connectTCP("127.0.0.1", port, f);
  await serverSide;
  await p.stopListening();
  assert.deepEqual(calls, ["start", "stop"]);
  const f2 = new RecordingClientFactory(Recorder);
  r.connectTCP("127.0.0.1", port, f2);
  assert.ok((await f2.failed).check(ConnectionRefusedError));
  client!.transport.write("still here");
  await until(() => client!.text() === "still here", "echo over the open connection");
  client!.transport.loseConnection();
  await client!.lost;
});

test("TCP: listening on a port in use fails with CannotListenError", async (t) => {
  const r = new NodeReactor();
  const first = await listen(r, Factory.forProtocol(Recorder));
  t.after(first.stop);
  const logs = captureLogs();
  t.after(logs.stop);
  const p = r.listenTCP(first.port, Factory.forProtocol(Recorder), 50, "127.0.0.1");
  await assert.rejects(Promise.resolve(p.whenListening()), CannotListenError);
});

test("TCP: an exception in dataReceived is logged and drops that connection only", async (t) => {
  const r = new NodeReactor();
  class Fragile extends Recorder {
    override dataReceived(data: Uint8Array): void {
      super.dataReceived(data);
      if (this.text().includes("boom")) throw new RangeError("protocol bug");
      this.transport.write(data);
    }
  }
  const server = await listen(r, Factory.forProtocol(Fragile));
  t.after(server.stop);
  const logs = captureLogs();
  t.after(logs.stop);
  const f1 = new RecordingClientFactory(Recorder);
  const f2 = new RecordingClientFactory(Recorder);
  const protos: Recorder[] = [];
  for (const f of [f1, f2]) {
    const orig = f.buildProtocol.bind(f);
    f.buildProtocol = (addr) => {
      const p = orig(addr) as Recorder;
      protos.push(p);
      return p;
    };
    r.connectTCP("127.0.0.1", server.port, f);
  }
  await until(() => protos.length === 2 && protos.every((p) => p.connected));
  const [bad, good] = protos as [Recorder, Recorder];
  bad.transport.write("boom");
  const reason = await bad.lost;
  assert.ok(reason.check(ConnectionDone, ConnectionLost));
  assert.ok(logs.events.some((e) => e.log_level === "error" && String(e.log_failure).includes("protocol bug")));
  good.transport.write("fine");
  await until(() => good.text() === "fine", "the other connection still echoes");
  // The listening port still accepts.
  const f3 = new RecordingClientFactory(Recorder);
  let third: Recorder | null = null;
  const orig3 = f3.buildProtocol.bind(f3);
  f3.buildProtocol = (addr) => (third = orig3(addr) as Recorder);
  r.connectTCP("127.0.0.1", server.port, f3);
  await until(() => third !== null && third.connected, "a new connection");
  third!.transport.write("again");
  await until(() => third!.text() === "again");
  good.transport.loseConnection();
  third!.transport.loseConnection();
  await good.lost;
  await third!.lost;
});

test("TCP: a line over MAX_LENGTH drops the connection (lineLengthExceeded default)", async (t) => {
  const r = new NodeReactor();
  class Short extends LineEcho {
    override MAX_LENGTH = 64;
  }
  const server = await listen(r, Factory.forProtocol(Short));
  t.after(server.stop);
  const f = new RecordingClientFactory(Recorder);
  let client: Recorder | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as Recorder);
  r.connectTCP("127.0.0.1", server.port, f);
  await until(() => client !== null && client.connected);
  client!.transport.write("short\r\n");
  client!.transport.write("y".repeat(100));
  const reason = await client!.lost;
  assert.ok(reason.check(ConnectionDone));
  assert.equal(client!.text(), "short\r\n");
});

test("TCP: abortConnection discards buffered output and reports ConnectionAborted", async (t) => {
  const r = new NodeReactor();
  const server = await listen(r, Factory.forProtocol(Recorder));
  t.after(server.stop);
  const f = new RecordingClientFactory(Recorder);
  let client: Recorder | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as Recorder);
  r.connectTCP("127.0.0.1", server.port, f);
  await until(() => client !== null && client.connected);
  client!.transport.abortConnection();
  const reason = await client!.lost;
  assert.equal(reason.value.name, "ConnectionAborted");
  assert.equal(f.lostReasons.length, 1);
});

test("TCP: ReconnectingClientFactory retries a refused connection on its clock and stops after stopTrying", async () => {
  const r = new NodeReactor();
  const port = await freePort();
  const clock = new Clock();
  const failures: Failure[] = [];
  class F extends ReconnectingClientFactory {
    override clientConnectionFailed(connector: import("@twisted-ts/internet/interfaces").IConnector, reason: Failure): void {
      failures.push(reason);
      super.clientConnectionFailed(connector, reason);
    }
  }
  const f = new F();
  f.protocol = Recorder;
  f.clock = clock;
  f.jitter = 0;
  f.initialDelay = 1;
  f.delay = 1;
  f.factor = 2;
  r.connectTCP("127.0.0.1", port, f);
  await until(() => failures.length === 1, "first refusal");
  assert.ok(failures[0]!.check(ConnectionRefusedError));
  assert.equal(clock.getDelayedCalls().length, 1);
  assert.equal(clock.getDelayedCalls()[0]!.getTime(), 2);
  clock.advance(2);
  await until(() => failures.length === 2, "second refusal");
  assert.equal(clock.getDelayedCalls()[0]!.getTime(), 2 + 4);
  f.stopTrying();
  assert.equal(clock.getDelayedCalls().length, 0);
});

test("TCP: ClientCreator connects a protocol instance and fires with it", async (t) => {
  const r = new NodeReactor();
  const server = await listen(r, Factory.forProtocol(LineEcho));
  t.after(server.stop);
  class Tagged extends Recorder {
    constructor(readonly tag: string) {
      super();
    }
  }
  const cc = new ClientCreator(r, Tagged, "hello");
  const p = await cc.connectTCP("127.0.0.1", server.port);
  assert.equal(p.tag, "hello");
  p.transport.write("x\r\n");
  await until(() => p.text() === "x\r\n");
  p.transport.loseConnection();
  await p.lost;
  const refused = new ClientCreator(r, Tagged, "no");
  await assert.rejects(Promise.resolve(refused.connectTCP("127.0.0.1", await freePort())), ConnectionRefusedError);
});

test("UNIX: listenUNIX and connectUNIX carry data both ways", async (t) => {
  const r = new NodeReactor();
  const path = `${tempDir(t)}/sock`;
  class Echo extends Protocol {
    override dataReceived(data: Uint8Array): void {
      this.transport.write(data);
    }
  }
  const p = r.listenUNIX(path, Factory.forProtocol(Echo));
  await p.whenListening();
  t.after(() => p.stopListening());
  assert.equal(p.getHost().family, "UNIX");
  const f = new RecordingClientFactory(Recorder);
  let client: Recorder | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as Recorder);
  r.connectUNIX(path, f);
  await until(() => client !== null && client.connected);
  client!.transport.write("over unix");
  await until(() => client!.text() === "over unix");
  client!.transport.loseConnection();
  assert.ok((await client!.lost).check(ConnectionDone));
});

test("TCP: IPv6 loopback and hostnames resolve as Node does", async (t) => {
  const r = new NodeReactor();
  class Echo extends Protocol {
    override dataReceived(data: Uint8Array): void {
      this.transport.write(data);
    }
  }
  const p6 = r.listenTCP(0, Factory.forProtocol(Echo), 50, "::1");
  try {
    await p6.whenListening();
  } catch {
    missing(t, "no IPv6 loopback (::1) here");
    return;
  }
  t.after(() => p6.stopListening());
  assert.equal(p6.getHost().family, "IPv6");
  assert.equal(p6.getHost().host, "::1");
  const f = new RecordingClientFactory(Recorder);
  let client: Recorder | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as Recorder);
  const c = r.connectTCP("::1", p6.getHost().port, f);
  assert.equal(c.getDestination().family, "IPv6");
  await until(() => client !== null && client.connected, "IPv6 connection");
  assert.equal(client!.transport.getPeer().family, "IPv6");
  client!.transport.write("six");
  await until(() => client!.text() === "six");
  client!.transport.loseConnection();
  await client!.lost;

  // "localhost" resolves (to 127.0.0.1 or ::1); listen on both families to accept either.
  const any = r.listenTCP(0, Factory.forProtocol(Echo));
  t.after(() => any.stopListening());
  const f2 = new RecordingClientFactory(Recorder);
  let c2: Recorder | null = null;
  const orig2 = f2.buildProtocol.bind(f2);
  f2.buildProtocol = (addr) => (c2 = orig2(addr) as Recorder);
  r.connectTCP("localhost", any.getHost().port, f2);
  await until(() => c2 !== null && c2.connected, "connection to localhost");
  c2!.transport.loseConnection();
  await c2!.lost;
});

test("TCP: a hostname that does not resolve fails with DNSLookupError", async () => {
  const r = new NodeReactor();
  const f = new RecordingClientFactory(Recorder);
  r.connectTCP("nonexistent.invalid", 22, f, 10);
  const reason = await f.failed;
  assert.ok(reason.check(DNSLookupError), String(reason));
});

test("TCP: connectTCP binds the local end to bindAddress", async (t) => {
  const r = new NodeReactor();
  const peers: string[] = [];
  class S extends Recorder {
    override connectionMade(): void {
      super.connectionMade();
      const p = this.transport.getPeer();
      peers.push(`${p.host}:${p.port}`);
      this.transport.loseConnection();
    }
  }
  const server = await listen(r, Factory.forProtocol(S));
  t.after(server.stop);
  const local = await freePort();
  const f = new RecordingClientFactory(Recorder);
  r.connectTCP("127.0.0.1", server.port, f, 30, { host: "127.0.0.1", port: local });
  await until(() => f.lostReasons.length === 1, "connection made and closed");
  assert.deepEqual(peers, [`127.0.0.1:${local}`]);
});

/** Sends `total` bytes of a counting pattern to each client, in 100 KiB writes, then closes. */
class PatternSender extends Protocol {
  static total = 2 * 1024 * 1024 + 123;
  override connectionMade(): void {
    const all = Buffer.alloc(PatternSender.total);
    for (let i = 0; i < all.length; i++) all[i] = (i * 13) & 0xff;
    for (let off = 0; off < all.length; off += 100 * 1024) this.transport!.write(all.subarray(off, off + 100 * 1024));
    this.transport!.loseConnection();
  }
}

/** Keeps every chunk it is given as is; records the memory each one lives in. */
class KeepingRecorder extends Recorder {
  buffers = new Set<ArrayBufferLike>();
  override dataReceived(data: Uint8Array): void {
    this.buffers.add(data.buffer);
    this.chunks.push(data as Buffer);
  }
}

/** Borrows: copies each chunk and scribbles over what it was given. */
class BorrowingRecorder extends KeepingRecorder {
  readonly borrowsReceivedData = true as const;
  override dataReceived(data: Uint8Array): void {
    this.buffers.add(data.buffer);
    this.chunks.push(Buffer.from(data));
    data.fill(0xa5);
  }
}

function checkPattern(chunks: Buffer[]): void {
  const got = Buffer.concat(chunks);
  assert.equal(got.length, PatternSender.total);
  for (let i = 0; i < got.length; i++) if (got[i] !== ((i * 13) & 0xff)) assert.fail(`byte ${i} is wrong`);
}

test("TCP: connectTCP reads into one reused buffer; a borrowing protocol gets views of it, others their own copies", async (t) => {
  const r = new NodeReactor();
  const server = await listen(r, Factory.forProtocol(PatternSender));
  t.after(server.stop);
  for (const Kind of [KeepingRecorder, BorrowingRecorder]) {
    const f = new RecordingClientFactory(Kind);
    let proto: KeepingRecorder | undefined;
    const orig = f.buildProtocol.bind(f);
    f.buildProtocol = (addr) => (proto = orig(addr) as KeepingRecorder);
    r.connectTCP("127.0.0.1", server.port, f);
    await until(() => proto !== undefined, "connection");
    const reason = await proto!.lost;
    assert.ok(reason.check(ConnectionDone));
    // The chunks a keeping protocol holds are still right after later reads; a borrowing one's
    // copies are right even though it scribbled over every view it was given.
    checkPattern(proto!.chunks);
    assert.ok(proto!.chunks.length > 1, "several reads");
    if (Kind === BorrowingRecorder) assert.equal(proto!.buffers.size, 1, "every read in the same buffer");
  }
});

test("TCP: an accepted connection reads into one reused buffer when its protocol borrows; the server's bookkeeping still closes", async (t) => {
  const r = new NodeReactor();
  let serverProto: BorrowingRecorder | undefined;
  const f = new Factory();
  f.buildProtocol = () => (serverProto = new BorrowingRecorder());
  const port = r.listenTCP(0, f, 50, "127.0.0.1");
  await port.whenListening();
  const host = port.getHost();
  t.after(() => port.stopListening());
  // The client sends the pattern and closes.
  const cf = new RecordingClientFactory(PatternSender);
  r.connectTCP("127.0.0.1", "port" in host ? host.port : 0, cf);
  await until(() => serverProto !== undefined, "accepted");
  const reason = await serverProto!.lost;
  assert.ok(reason.check(ConnectionDone));
  checkPattern(serverProto!.chunks);
  assert.equal(serverProto!.buffers.size, 1, "every read in the same buffer");
  // Node's own count of the server's connections comes back to 0.
  const server = (port as unknown as { server: import("node:net").Server }).server;
  const count = (): Promise<number> => new Promise((resolve) => server.getConnections((_e, c) => resolve(c)));
  for (let i = 0; (await count()) !== 0; i++) {
    if (i > 100) assert.fail("the server still counts the connection");
    await sleep(20);
  }
});

test("issue 13: TCP: an accepted connection half-closes first; the connecting side reads EOF, still replies, and both end with ConnectionDone", async (t) => {
  const r = new NodeReactor();
  // Accepted sockets are moved to a reused read buffer when the protocol borrows: half-close must
  // survive the move, so both kinds of protocol are tried.
  for (const borrows of [false, true]) {
    let server: Recorder | undefined;
    class HalfFirst extends Recorder {
      readonly borrowsReceivedData = borrows;
      gotEOF = false;
      override connectionMade(): void {
        super.connectionMade();
        server = this;
        this.transport.write("greeting");
        this.transport.loseWriteConnection();
      }
      override dataReceived(data: Uint8Array): void {
        super.dataReceived(Buffer.from(data));
      }
      readConnectionLost(): void {
        this.gotEOF = true;
      }
      writeConnectionLost(): void {}
    }
    const listening = await listen(r, Factory.forProtocol(HalfFirst));
    t.after(listening.stop);
    class Replier extends Recorder {
      readConnectionLost(): void {
        this.transport.write(`after ${this.text()}`);
        this.transport.loseWriteConnection();
      }
      writeConnectionLost(): void {}
    }
    const f = new RecordingClientFactory(Replier);
    let client: Replier | undefined;
    const orig = f.buildProtocol.bind(f);
    f.buildProtocol = (addr) => (client = orig(addr) as Replier);
    r.connectTCP("127.0.0.1", listening.port, f);
    await until(() => client !== undefined && server !== undefined, "both ends");
    // Neither side calls loseConnection: once both directions are shut the socket is closed.
    const [clientReason, serverReason] = await Promise.all([client!.lost, server!.lost]);
    assert.ok(clientReason.check(ConnectionDone));
    assert.ok(serverReason.check(ConnectionDone));
    assert.equal(client!.text(), "greeting");
    assert.equal(server!.text(), "after greeting");
    assert.equal((server as HalfFirst).gotEOF, true);
  }
});
