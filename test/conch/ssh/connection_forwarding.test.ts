/**
 * Port forwarding (RFC 4254 §7) over two in-memory connections, with real loopback sockets at the
 * ends.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { connect as netConnect } from "node:net";
import { userInfo } from "node:os";
import type { IProtocolFactory, ITCPTransport, ITransport } from "@twisted-ts/internet/interfaces";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { channel, common, connection, forwarding } from "@twisted-ts/conch/ssh";
import { avatar, error, unix } from "@twisted-ts/conch";
import { cat, hex, Pump, RecordingChannel, text, u32 } from "./_connection_fakes.js";

const { NS } = common;

test("direct-tcpip / forwarded-tcpip payloads", () => {
  const packed = forwarding.packOpen_direct_tcpip(["example.com", 80], ["127.0.0.1", 4242]);
  assert.equal(hex(packed), hex(cat(NS("example.com"), u32(80), NS("127.0.0.1"), u32(4242))));
  assert.deepEqual(forwarding.unpackOpen_direct_tcpip(packed), [
    ["example.com", 80],
    ["127.0.0.1", 4242],
  ]);
  assert.deepEqual(forwarding.unpackOpen_forwarded_tcpip(packed), forwarding.unpackOpen_direct_tcpip(packed));
});

test("tcpip-forward payloads", () => {
  const packed = forwarding.packGlobal_tcpip_forward(["", 0]);
  assert.equal(hex(packed), hex(cat(NS(""), u32(0))));
  assert.deepEqual(forwarding.unpackGlobal_tcpip_forward(cat(NS("localhost"), u32(8080))), ["localhost", 8080]);
});

class Echo extends Protocol<ITransport> {
  override dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
}

/** A client and the Unix realm's server in memory, and a direct-tcpip channel asked for to 127.0.0.1:port. */
function openDirectTcpip(port: number): { ch: RecordingChannel; client: connection.SSHConnection; server: connection.SSHConnection; pump: Pump } {
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(userInfo().username));
  const ch = new RecordingChannel({ conn: client });
  ch.name = "direct-tcpip";
  client.openChannel(ch, forwarding.packOpen_direct_tcpip(["127.0.0.1", port], ["127.0.0.1", 5555]));
  return { ch, client, server, pump };
}

/**
 * Runs `fn` with a direct-tcpip channel opened (from an in-memory client to the Unix realm's
 * server) to a loopback echo server, which stops listening afterwards.
 */
async function withEchoTunnel(
  fn: (ch: RecordingChannel, client: connection.SSHConnection, pump: Pump, server: connection.SSHConnection) => Promise<void>,
  destination: Factory = Factory.forProtocol(Echo),
): Promise<void> {
  const port = reactor.listenTCP(0, destination, 50, "127.0.0.1") as ReturnType<typeof reactor.listenTCP> & {
    whenListening(): PromiseLike<unknown>;
  };
  await port.whenListening();
  try {
    const { ch, client, server, pump } = openDirectTcpip(port.getHost().port);
    // The server confirms once it has connected to the destination, as sshd.
    await pump.until(() => ch.events.includes("open"));
    await fn(ch, client, pump, server);
  } finally {
    await port.stopListening();
  }
}

test("direct-tcpip: the server connects to the destination and joins it to the channel", async () => {
  await withEchoTunnel(async (ch, _client, pump) => {
    ch.write("ping through the tunnel");
    await pump.until(() => ch.receivedText === "ping through the tunnel");
    ch.loseConnection();
    await pump.until(() => ch.events.includes("closed"));
  });
});

test("direct-tcpip: a refused destination gives CHANNEL_OPEN_FAILURE with OPEN_CONNECT_FAILED, as sshd", async () => {
  const probe = reactor.listenTCP(0, Factory.forProtocol(Echo), 50, "127.0.0.1") as ReturnType<typeof reactor.listenTCP> & {
    whenListening(): PromiseLike<unknown>;
  };
  await probe.whenListening();
  const deadPort = probe.getHost().port;
  await probe.stopListening();
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(userInfo().username));
  const ch = new RecordingChannel({ conn: client });
  ch.name = "direct-tcpip";
  client.openChannel(ch, forwarding.packOpen_direct_tcpip(["127.0.0.1", deadPort], ["127.0.0.1", 5555]));
  await pump.until(() => ch.events.includes("openFailed"));
  assert.deepEqual(ch.events, ["openFailed"]);
  const reason = ch.failure as error.ConchError;
  assert.equal(reason.data, connection.OPEN_CONNECT_FAILED);
  assert.match(String(reason.value), new RegExp(`connect to 127\\.0\\.0\\.1:${deadPort} failed`));
  assert.equal(server.channels.size, 0, "nothing is left of it on the server");
});

test("tcpip-forward to port 0: the reply carries the port; connections come back as forwarded-tcpip channels", async () => {
  const opened: Array<[string, number]> = [];
  class ClientConn extends connection.SSHConnection {
    channel_forwarded_tcpip(windowSize: number, maxPacket: number, data: Uint8Array): RecordingChannel {
      const [dest] = forwarding.unpackOpen_forwarded_tcpip(data);
      opened.push([dest[0], dest[1]]);
      const ch = new (class extends RecordingChannel {
        override dataReceived(d: Uint8Array): void {
          super.dataReceived(d);
          this.write(text(d).toUpperCase());
        }
      })({ remoteWindow: windowSize, remoteMaxPacket: maxPacket });
      return ch;
    }
  }
  const client = new ClientConn();
  const server = new connection.SSHConnection();
  const user = new unix.UnixConchUser(userInfo().username);
  const pump = new Pump(client, server, user);
  let bound = -1;
  client.sendGlobalRequest("tcpip-forward", forwarding.packGlobal_tcpip_forward(["localhost", 0]), true).addCallback((reply) => {
    bound = new DataView(reply.buffer, reply.byteOffset).getUint32(0);
  });
  await pump.until(() => bound > 0);
  let got = "";
  class Talker extends Protocol<ITransport> {
    override connectionMade(): void {
      this.transport.write("hello");
    }
    override dataReceived(data: Uint8Array): void {
      got += text(data);
      if (got === "HELLO") this.transport.loseConnection();
    }
  }
  const { ClientCreator } = await import("@twisted-ts/internet/protocol");
  await new ClientCreator(reactor, Talker).connectTCP("127.0.0.1", bound);
  await pump.until(() => got === "HELLO");
  assert.deepEqual(opened, [["localhost", bound]]);
  user.logout();
});

test("issue 11: direct-tcpip: an EOF that arrives before the destination answers still reaches it (ssh -W)", async () => {
  await withEchoTunnel(async (ch, client, pump) => {
    ch.write("ping, then EOF at once");
    client.sendEOF(ch);
    pump.flush();
    // The destination sees EOF, closes, and so the channel closes: without the EOF it never would.
    await pump.until(() => ch.events.includes("closed"));
    assert.equal(ch.receivedText, "ping, then EOF at once");
  });
});

// ---- issue 13: half-close through every forwarding channel (RFC 4254 §5.3) ---------------------

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

/**
 * A destination that reads to EOF and only then answers (as `sha256sum` behind `nc -N` does): the
 * SHA-256 of what it read, once `answer` is called (at once when `answerAtEOF`).
 */
class DigestService extends Protocol<ITCPTransport> {
  static last: DigestService | undefined;
  static answerAtEOF = true;
  readonly chunks: Uint8Array[] = [];
  gotEOF = false;
  override connectionMade(): void {
    DigestService.last = this;
  }
  override dataReceived(data: Uint8Array): void {
    this.chunks.push(data.slice());
  }
  readConnectionLost(): void {
    this.gotEOF = true;
    if (DigestService.answerAtEOF) this.answer();
  }
  writeConnectionLost(): void {}
  answer(): void {
    this.transport.write(sha256(Buffer.concat(this.chunks)) + "\n");
    this.transport.loseConnection();
  }
}

/** A destination that greets, shuts its write side at once, then reads to EOF. */
class HalfClosingService extends Protocol<ITCPTransport> {
  static last: HalfClosingService | undefined;
  readonly chunks: Uint8Array[] = [];
  gotEOF = false;
  override connectionMade(): void {
    HalfClosingService.last = this;
    this.transport.write("hello\n");
    this.transport.loseWriteConnection();
  }
  override dataReceived(data: Uint8Array): void {
    this.chunks.push(data.slice());
  }
  readConnectionLost(): void {
    this.gotEOF = true;
  }
  writeConnectionLost(): void {}
}

test("issue 13: direct-tcpip: CHANNEL_EOF shuts the destination's write side; the channel stays open until its answer, EOF and close", async () => {
  DigestService.answerAtEOF = false;
  try {
    await withEchoTunnel(async (ch, client, pump) => {
      ch.write("read me to the end");
      client.sendEOF(ch);
      await pump.until(() => DigestService.last?.gotEOF === true);
      pump.flush();
      assert.deepEqual(ch.events, ["open"], "the destination's FIN alone does not end the channel");
      DigestService.last!.answer();
      await pump.until(() => ch.events.includes("closed"));
      assert.equal(ch.receivedText, sha256(Buffer.from("read me to the end")) + "\n");
      assert.deepEqual(ch.events, ["open", "eof", "closeReceived", "closed"]);
    }, Factory.forProtocol(DigestService));
  } finally {
    DigestService.answerAtEOF = true;
  }
});

test("issue 13: direct-tcpip: a destination that shuts its write side first still receives what comes after; close only after both EOFs", async () => {
  await withEchoTunnel(async (ch, client, pump) => {
    await pump.until(() => ch.events.includes("eof"));
    assert.equal(ch.receivedText, "hello\n");
    assert.deepEqual(ch.events, ["open", "eof"], "the destination's EOF is CHANNEL_EOF, not CHANNEL_CLOSE");
    ch.write("sent after the destination's EOF");
    client.sendEOF(ch);
    await pump.until(() => ch.events.includes("closed"));
    const dest = HalfClosingService.last!;
    assert.equal(dest.gotEOF, true);
    assert.equal(Buffer.concat(dest.chunks).toString(), "sent after the destination's EOF");
  }, Factory.forProtocol(HalfClosingService));
});

test("issue 13: direct-tcpip: the destination is not read while the channel's window is full, and is read again when it opens", async () => {
  const big = randomBytes(3 * 1024 * 1024);
  class Flood extends Protocol<ITCPTransport> {
    override connectionMade(): void {
      this.transport.write(big);
      this.transport.loseConnection();
    }
  }
  await withEchoTunnel(async (ch, client, pump, server) => {
    // The client consumes nothing: no window goes back, so the server may send one window only.
    ch.pauseProducing();
    const fwd = (): forwarding.SSHConnectForwardingChannel => [...server.channels.values()][0] as forwarding.SSHConnectForwardingChannel;
    await pump.until(() => fwd() !== undefined && fwd().remoteWindowLeft === 0);
    const socket = fwd().client!.transport as ITCPTransport & { readingPaused: boolean };
    assert.equal(socket.readingPaused, true, "reading stops when the window is full");
    assert.ok(fwd().bufferedAmount <= 64 * 1024, `at most one read is held (${fwd().bufferedAmount} bytes)`);
    ch.resumeProducing();
    await pump.until(() => ch.events.includes("eof"));
    assert.equal(sha256(Buffer.concat(ch.received)), sha256(big));
    // The destination is gone, but our direction is still open until we say EOF.
    assert.ok(!ch.events.includes("closeReceived"));
    client.sendEOF(ch);
    await pump.until(() => ch.events.includes("closed"));
  }, Factory.forProtocol(Flood));
});

test("issue 13: direct-tcpip: no window goes back while the destination does not read; what it holds stays within a window", async () => {
  // More than the kernel's loopback buffers take, so the destination's socket does fill up.
  const big = randomBytes(24 * 1024 * 1024);
  class Stalled extends DigestService {
    override connectionMade(): void {
      super.connectionMade();
      this.transport.pauseProducing();
    }
  }
  DigestService.last = undefined;
  await withEchoTunnel(async (ch, client, pump, server) => {
    ch.write(big);
    client.sendEOF(ch);
    const fwd = [...server.channels.values()][0] as forwarding.SSHConnectForwardingChannel;
    // Until it is connected the server gives no window back either; after, only the socket decides.
    await pump.until(() => fwd.client !== undefined && DigestService.last !== undefined && ch.remoteWindowLeft === 0);
    // Delivered at once (the pump is synchronous): had the window gone back, it would not be 0.
    assert.equal(fwd.paused, true, "the channel is paused by the destination's full socket");
    const held = (fwd.client!.transport as ITCPTransport & { bufferedBytes: number }).bufferedBytes;
    assert.ok(held <= fwd.localWindowSize, `the socket holds at most a window (${held} bytes)`);
    assert.ok(ch.bufferedAmount > 0, "the rest waits on the client's side");
    DigestService.last!.transport.resumeProducing();
    await pump.until(() => ch.events.includes("closed"));
    assert.equal(ch.receivedText, sha256(big) + "\n");
  }, Factory.forProtocol(Stalled));
});

/**
 * Connects to 127.0.0.1:port, sends `data`, half-closes, and resolves with all that comes back
 * before the connection closes (as `nc -N` does).
 */
function askAndHalfClose(port: number, data: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = netConnect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const got: Buffer[] = [];
    c.on("data", (d: Buffer) => got.push(d));
    c.on("error", reject);
    c.on("close", () => resolve(Buffer.concat(got).toString()));
    c.on("connect", () => c.end(data));
  });
}

async function listenOn(factory: IProtocolFactory): Promise<{ port: number; stop: () => Promise<unknown> }> {
  const p = reactor.listenTCP(0, factory, 50, "127.0.0.1") as ReturnType<typeof reactor.listenTCP> & { whenListening(): PromiseLike<unknown> };
  await p.whenListening();
  return { port: p.getHost().port, stop: async () => p.stopListening() };
}

test("issue 13: our local forwarding (SSHListenForwardingFactory): a client that half-closes after 3 MiB gets the answer", async () => {
  const dest = await listenOn(Factory.forProtocol(DigestService));
  const client = new connection.SSHConnection();
  const pump = new Pump(client, new connection.SSHConnection(), new unix.UnixConchUser(userInfo().username));
  const local = await listenOn(new forwarding.SSHListenForwardingFactory(client, ["127.0.0.1", dest.port], forwarding.SSHListenClientForwardingChannel));
  try {
    const data = randomBytes(3 * 1024 * 1024);
    const answer = askAndHalfClose(local.port, data);
    let got: string | undefined;
    void answer.then((a) => (got = a));
    await pump.until(() => got !== undefined);
    assert.equal(got, sha256(data) + "\n");
    await pump.until(() => client.channels.size === 0);
  } finally {
    await local.stop();
    await dest.stop();
  }
});

test("issue 13: our remote forwarding (tcpip-forward, forwarded-tcpip to SSHConnectForwardingChannel): a client that half-closes gets the answer", async () => {
  const dest = await listenOn(Factory.forProtocol(DigestService));
  class ClientConn extends connection.SSHConnection {
    channel_forwarded_tcpip(windowSize: number, maxPacket: number): forwarding.SSHConnectForwardingChannel {
      return new forwarding.SSHConnectForwardingChannel(["127.0.0.1", dest.port], { remoteWindow: windowSize, remoteMaxPacket: maxPacket });
    }
  }
  const client = new ClientConn();
  const user = new unix.UnixConchUser(userInfo().username);
  const pump = new Pump(client, new connection.SSHConnection(), user);
  try {
    let bound = -1;
    client.sendGlobalRequest("tcpip-forward", forwarding.packGlobal_tcpip_forward(["localhost", 0]), true).addCallback((reply) => {
      bound = new DataView(reply.buffer, reply.byteOffset).getUint32(0);
    });
    await pump.until(() => bound > 0);
    const data = randomBytes(3 * 1024 * 1024);
    let got: string | undefined;
    void askAndHalfClose(bound, data).then((a) => (got = a));
    await pump.until(() => got !== undefined);
    assert.equal(got, sha256(data) + "\n");
    await pump.until(() => client.channels.size === 0);
  } finally {
    user.logout();
    await dest.stop();
  }
});

// ---- issue 13: opens confirmed once the destination is connected (readyToConfirm) --------------

/** A server channel whose open waits for `ready` (a promise the test settles). */
class SlowChannel extends channel.SSHChannel {
  static settle: { resolve: () => void; reject: (e: unknown) => void } | undefined;
  opened = false;
  readyToConfirm(): Promise<void> {
    return new Promise((resolve, reject) => (SlowChannel.settle = { resolve, reject }));
  }
  override channelOpen(): void {
    this.opened = true;
  }
}

function slowPair(): { client: connection.SSHConnection; server: connection.SSHConnection; pump: Pump } {
  const user = new avatar.ConchUser();
  user.channelLookup["slow"] = SlowChannel;
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  return { client, server, pump: new Pump(client, server, user) };
}

test("issue 13: CHANNEL_OPEN: a channel with readyToConfirm is confirmed once ready, refused with its reason when not", async () => {
  const { client, server, pump } = slowPair();
  const ch = new RecordingChannel({ conn: client });
  ch.name = "slow";
  client.openChannel(ch);
  pump.flush();
  assert.deepEqual(ch.events, [], "no answer while the server's channel is not ready");
  SlowChannel.settle!.resolve();
  await pump.until(() => ch.events.includes("open"));
  assert.equal(([...server.channels.values()][0] as SlowChannel).opened, true);
  const refused = new RecordingChannel({ conn: client });
  refused.name = "slow";
  client.openChannel(refused);
  pump.flush();
  SlowChannel.settle!.reject(new error.ConchError("no route", connection.OPEN_CONNECT_FAILED));
  await pump.until(() => refused.events.includes("openFailed"));
  assert.equal((refused.failure as error.ConchError).data, connection.OPEN_CONNECT_FAILED);
  assert.equal(String((refused.failure as error.ConchError).value), "no route");
  assert.equal(server.channels.size, 1, "only the confirmed channel is left");
});

test("issue 13: CHANNEL_OPEN_CONFIRMATION naming a channel the peer opened and we have not confirmed is a protocol error", () => {
  const { client, server, pump } = slowPair();
  const ch = new RecordingChannel({ conn: client });
  ch.name = "slow";
  client.openChannel(ch);
  pump.flush();
  server.packetReceived(connection.MSG_CHANNEL_OPEN_CONFIRMATION, u32(0, 0, 65536, 32768));
  assert.equal(pump.serverTransport.disconnects.length, 1);
  assert.match(pump.serverTransport.disconnects[0]![1], /CHANNEL_OPEN_CONFIRMATION/);
});

test("issue 13: direct-tcpip: when the SSH connection ends while the server connects, the destination's connection is closed", async () => {
  let accepted = 0;
  let closed = 0;
  const dest = reactor.listenTCP(
    0,
    Factory.forProtocol(
      class extends Protocol<ITransport> {
        override connectionMade(): void {
          accepted++;
        }
        override connectionLost(): void {
          closed++;
        }
      },
    ),
    50,
    "127.0.0.1",
  ) as ReturnType<typeof reactor.listenTCP> & { whenListening(): PromiseLike<unknown> };
  await dest.whenListening();
  try {
    const { ch, server, pump } = openDirectTcpip(dest.getHost().port);
    pump.flush();
    server.serviceStopped();
    for (let i = 0; i < 2000 && closed === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual([accepted, closed], [1, 1]);
    assert.deepEqual(ch.events, [], "nothing was confirmed");
  } finally {
    await dest.stopListening();
  }
});
