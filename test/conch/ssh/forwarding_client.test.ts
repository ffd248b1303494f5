/**
 * Client-side forwarding (issue 13): localForward, remoteForward / cancelRemoteForward and
 * dynamicForward (SOCKS) between two in-memory connections (the server is the Unix realm's
 * avatar), with real loopback sockets at the ends.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";
import { userInfo } from "node:os";
import { unix, error } from "@twisted-ts/conch";
import { connection, forwarding } from "@twisted-ts/conch/ssh";
import { Pump, RecordingChannel } from "./_connection_fakes.js";

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

interface Setup {
  client: connection.SSHConnection;
  server: connection.SSHConnection;
  pump: Pump;
  user: unix.UnixConchUser;
}

function setup(options: unix.UnixRealmOptions = {}): Setup {
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const user = new unix.UnixConchUser(userInfo().username, options);
  const pump = new Pump(client, server, user);
  return { client, server, pump, user };
}

/** Pumps until `done()`; fails naming `what` and its state when it is not reached. */
async function waitFor(pump: Pump, what: string, done: () => boolean, state: () => unknown = () => ""): Promise<void> {
  try {
    await pump.until(done);
  } catch {
    throw new Error(`not reached: ${what} ${JSON.stringify(state())}`);
  }
}

/** Waits for `p` while pumping the in-memory connections. */
async function settle<T>(pump: Pump, p: PromiseLike<T>): Promise<T> {
  let done = false;
  let value: T | undefined;
  let failure: unknown;
  Promise.resolve(p).then(
    (v) => ((done = true), (value = v)),
    (e: unknown) => ((done = true), (failure = e)),
  );
  await pump.until(() => done);
  if (failure !== undefined) throw failure;
  return value as T;
}

/** A loopback TCP server run with node:net, closed by `stop`. */
async function serve(onSocket: (s: Socket) => void): Promise<{ port: number; server: Server; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as { port: number }).port;
  // close() waits for every connection: the ones still open are ended here, not by a pump.
  const stop = (): Promise<void> =>
    new Promise((r) => {
      server.close(() => r());
      for (const s of sockets) s.destroy();
    });
  return { port, server, stop };
}

/** Reads to EOF, then answers with the SHA-256 of what it read (as `sha256sum` behind `nc -N`). */
const digestService = (s: Socket): void => {
  const h = createHash("sha256");
  s.on("data", (d: Buffer) => h.update(d));
  s.on("end", () => s.end(h.digest("hex") + "\n"));
  s.on("error", () => {});
};

const echoService = (s: Socket): void => {
  s.on("error", () => {});
  s.pipe(s);
};

/** A socket to 127.0.0.1:port with what it received, whether it got EOF, and whether it closed. */
class Peer {
  readonly socket: Socket;
  received: Buffer = Buffer.alloc(0);
  gotEOF = false;
  closed = false;
  connected = false;

  constructor(port: number) {
    this.socket = netConnect({ port, host: "127.0.0.1", allowHalfOpen: true });
    this.socket.on("connect", () => (this.connected = true));
    this.socket.on("data", (d: Buffer) => (this.received = Buffer.concat([this.received, d])));
    this.socket.on("end", () => (this.gotEOF = true));
    this.socket.on("close", () => (this.closed = true));
    this.socket.on("error", () => {});
  }

  /** The far end closed (EOF, or the socket is gone). */
  get done(): boolean {
    return this.gotEOF || this.closed;
  }

  get text(): string {
    return this.received.toString("latin1");
  }
}

/** The port a forward listens on. */
const portOf = (p: { getHost(): { port: number } }): number => p.getHost().port;

test("localForward: a client that half-closes after 3 MiB gets the destination's answer; port 0 is reported by getHost()", async () => {
  const dest = await serve(digestService);
  const { client, pump } = setup();
  const listening = await settle(pump, forwarding.localForward(client, { port: 0 }, ["127.0.0.1", dest.port]));
  try {
    assert.ok(portOf(listening) > 0);
    assert.equal(listening.getHost().host, "127.0.0.1", "binds loopback by default");
    const data = randomBytes(3 * 1024 * 1024);
    const peer = new Peer(portOf(listening));
    peer.socket.end(data);
    await pump.until(() => peer.done);
    assert.equal(peer.text, sha256(data) + "\n");
    await pump.until(() => client.channels.size === 0);
  } finally {
    await listening.stopListening();
    await dest.stop();
  }
});

test("localForward: a destination that shuts its write side first still receives what the client sends after", async () => {
  let destGot = "";
  let destEOF = false;
  const dest = await serve((s) => {
    s.end("hello\n");
    s.on("data", (d: Buffer) => (destGot += d.toString()));
    s.on("end", () => (destEOF = true));
  });
  const { client, pump } = setup();
  const listening = await settle(pump, forwarding.localForward(client, { host: "127.0.0.1", port: 0 }, ["127.0.0.1", dest.port]));
  try {
    const peer = new Peer(portOf(listening));
    await pump.until(() => peer.gotEOF);
    assert.equal(peer.text, "hello\n");
    assert.equal(peer.closed, false, "the client's write side is still open");
    peer.socket.end("sent after the destination's EOF");
    await pump.until(() => destEOF && peer.closed);
    assert.equal(destGot, "sent after the destination's EOF");
  } finally {
    await listening.stopListening();
    await dest.stop();
  }
});

test("localForward: the local socket is not read while the channel's window is used up, and is read again as the destination drains", async () => {
  // More than the kernel's loopback buffers and the server's window take, so the window does run out.
  const data = randomBytes(24 * 1024 * 1024);
  let destSocket: Socket | undefined;
  const dest = await serve((s) => {
    destSocket = s;
    s.pause();
    digestService(s);
  });
  const { pump } = setup();
  const listening = (await settle(pump, forwarding.localForward(pump.client, { port: 0 }, ["127.0.0.1", dest.port]))) as forwarding.SSHForwardingPort;
  try {
    const peer = new Peer(portOf(listening));
    peer.socket.end(data);
    const local = (): forwarding.SSHLocalForwardingProtocol | undefined => [...listening.factory.active][0];
    await waitFor(pump, "the window used up and the socket paused", () => {
      const p = local();
      return p?.channel !== undefined && destSocket !== undefined && p.channel.remoteWindowLeft === 0 && (p.transport as unknown as { readingPaused: boolean }).readingPaused;
    });
    assert.ok(local()!.channel!.bufferedAmount <= 64 * 1024, `at most one read is held (${local()!.channel!.bufferedAmount} bytes)`);
    destSocket!.resume();
    await pump.until(() => peer.done);
    assert.equal(peer.text, sha256(data) + "\n");
  } finally {
    await listening.stopListening();
    await dest.stop();
  }
});

test("localForward: a channel open the server refuses closes the local socket at once", async () => {
  const { client, pump } = setup({ allowForwarding: false });
  const listening = await settle(pump, forwarding.localForward(client, { port: 0 }, ["127.0.0.1", 9]));
  try {
    const peer = new Peer(portOf(listening));
    peer.socket.write("nobody will read this");
    await pump.until(() => peer.done);
    assert.equal(peer.text, "");
    assert.equal(client.channels.size, 0);
  } finally {
    await listening.stopListening();
  }
});

test("localForward: a refused destination port closes the local socket", async () => {
  const probe = await serve(() => {});
  const deadPort = probe.port;
  await probe.stop();
  const { client, pump } = setup();
  const listening = await settle(pump, forwarding.localForward(client, { port: 0 }, ["127.0.0.1", deadPort]));
  try {
    const peer = new Peer(portOf(listening));
    await pump.until(() => peer.done);
    assert.equal(peer.text, "");
    await pump.until(() => client.channels.size === 0);
  } finally {
    await listening.stopListening();
  }
});

test("localForward: past MAX_FORWARDED_CONNECTIONS a flood is refused (sockets closed) and the forward goes on", async () => {
  const dest = await serve(echoService);
  const { client, pump } = setup();
  const listening = (await settle(pump, forwarding.localForward(client, { port: 0 }, ["127.0.0.1", dest.port]))) as forwarding.SSHForwardingPort;
  const limit = forwarding.MAX_FORWARDED_CONNECTIONS;
  assert.equal(listening.factory.maxConnections, limit);
  const extra = 12;
  const peers: Peer[] = [];
  try {
    // In batches below the listen backlog, so no connection waits on a SYN retry.
    while (peers.length < limit + extra) {
      const batch = Math.min(32, limit + extra - peers.length);
      for (let i = 0; i < batch; i++) peers.push(new Peer(portOf(listening)));
      const refused = (): number => peers.filter((p) => p.done).length;
      await waitFor(pump, "each connection accepted or refused", () => refused() + listening.factory.active.size === peers.length, () => [refused(), listening.factory.active.size, peers.length]);
    }
    assert.equal(peers.filter((p) => p.done).length, extra);
    assert.equal(listening.factory.active.size, limit);
    const open = peers.filter((p) => !p.done);
    assert.ok(open.every((p) => p.text === ""), "refused sockets get nothing");
    // An accepted connection still works; once one ends, a new one is taken.
    open[0]!.socket.write("still here");
    await waitFor(pump, "echo", () => open[0]!.text === "still here");
    open[1]!.socket.end();
    await waitFor(pump, "one ends", () => open[1]!.done && listening.factory.active.size === limit - 1, () => [open[1]!.done, listening.factory.active.size]);
    const late = new Peer(portOf(listening));
    peers.push(late);
    late.socket.write("late");
    await waitFor(pump, "a late one is taken", () => late.text === "late", () => [late.text, late.done, listening.factory.active.size]);
  } finally {
    for (const p of peers) p.socket.destroy();
    await listening.stopListening();
    await dest.stop();
  }
  await pump.until(() => client.channels.size === 0);
});

test("localForward: maxConnections sets a listener's own limit", async () => {
  const dest = await serve(echoService);
  const { client, pump } = setup();
  const listening = (await settle(pump, forwarding.localForward(client, { port: 0, maxConnections: 2 }, ["127.0.0.1", dest.port]))) as forwarding.SSHForwardingPort;
  const peers = [0, 1, 2, 3].map(() => new Peer(portOf(listening)));
  try {
    await pump.until(() => peers.filter((p) => p.done).length === 2 && listening.factory.active.size === 2);
  } finally {
    for (const p of peers) p.socket.destroy();
    await listening.stopListening();
    await dest.stop();
  }
});

test("the listeners stop when the SSH connection's service stops, and their connections close", async () => {
  const dest = await serve(echoService);
  const { client, pump } = setup();
  const local = await settle(pump, forwarding.localForward(client, { port: 0 }, ["127.0.0.1", dest.port]));
  const socks = await settle(pump, forwarding.dynamicForward(client, { port: 0 }));
  try {
    const peer = new Peer(portOf(local));
    peer.socket.write("x");
    await pump.until(() => peer.text === "x");
    client.serviceStopped();
    await pump.until(() => peer.done);
    await assert.rejects(settle(pump, forwarding.localForward(client, { port: 0 }, ["127.0.0.1", dest.port])), (e: Error) => e instanceof error.ConnectionStoppedError);
    for (const port of [portOf(local), portOf(socks)]) {
      const late = new Peer(port);
      let refused = false;
      late.socket.on("error", () => (refused = true));
      await pump.until(() => late.done);
      assert.ok(refused || late.text === "", "nothing is forwarded any more");
    }
  } finally {
    await dest.stop();
  }
});

// ---- dynamic forwarding (SOCKS) ------------------------------------------------------------------

/** Sends `greeting`, waits for `replyLength` bytes, and so on: a tiny SOCKS client. */
async function socksHandshake(pump: Pump, peer: Peer, exchanges: Array<[Uint8Array, number]>): Promise<Buffer[]> {
  const replies: Buffer[] = [];
  let at = 0;
  for (const [out, replyLength] of exchanges) {
    peer.socket.write(out);
    await pump.until(() => peer.received.length >= at + replyLength || peer.done);
    replies.push(peer.received.subarray(at, at + replyLength));
    at += replyLength;
  }
  peer.received = peer.received.subarray(at);
  return replies;
}

const socks5Connect = (atyp: number, addr: Uint8Array, port: number): Uint8Array => Buffer.concat([Buffer.from([5, 1, 0, atyp]), addr, Buffer.from([port >> 8, port & 255])]);

test("dynamicForward: SOCKS5 CONNECT by IPv4 address, domain name and IPv6 address reaches the destination", async () => {
  const dest = await serve(digestService);
  const dest6 = createServer({ allowHalfOpen: true }, digestService);
  const has6 = await new Promise<boolean>((r) => dest6.once("error", () => r(false)).listen(dest.port, "::1", () => r(true)));
  const { client, pump } = setup();
  const socks = await settle(pump, forwarding.dynamicForward(client, { port: 0 }));
  try {
    const targets: Array<[number, Uint8Array]> = [
      [1, Uint8Array.of(127, 0, 0, 1)],
      [3, Buffer.concat([Buffer.from([9]), Buffer.from("127.0.0.1")])],
    ];
    if (has6) targets.push([4, Uint8Array.from([...new Uint8Array(15), 1])]);
    for (const [atyp, addr] of targets) {
      const peer = new Peer(portOf(socks));
      const [method, reply] = await socksHandshake(pump, peer, [
        [Uint8Array.of(5, 1, 0), 2],
        [socks5Connect(atyp, addr, dest.port), 10],
      ]);
      assert.deepEqual([...method!], [5, 0]);
      assert.deepEqual([...reply!], [5, 0, 0, 1, 0, 0, 0, 0, 0, 0], `success reply (address type ${atyp})`);
      peer.socket.end("through socks5");
      await pump.until(() => peer.done);
      assert.equal(peer.text, sha256(Buffer.from("through socks5")) + "\n");
    }
  } finally {
    await socks.stopListening();
    await dest.stop();
    if (has6) await new Promise((r) => dest6.close(r));
  }
});

test("dynamicForward: SOCKS4 and SOCKS4a (host name sent unresolved), with data pipelined after the request", async () => {
  const dest = await serve(digestService);
  const { client, server, pump } = setup();
  const opened: string[] = [];
  const getChannel = server.getChannel.bind(server);
  server.getChannel = (type, w, m, data) => {
    opened.push(forwarding.unpackOpen_direct_tcpip(data)[0][0]);
    return getChannel(type, w, m, data);
  };
  const socks = await settle(pump, forwarding.dynamicForward(client, { port: 0 }));
  try {
    const p = dest.port;
    const requests = [
      Buffer.concat([Buffer.from([4, 1, p >> 8, p & 255, 127, 0, 0, 1]), Buffer.from("user\0")]),
      Buffer.concat([Buffer.from([4, 1, p >> 8, p & 255, 0, 0, 0, 1]), Buffer.from("\0localhost\0")]),
    ];
    for (const request of requests) {
      const peer = new Peer(portOf(socks));
      peer.socket.end(Buffer.concat([request, Buffer.from("pipelined")]));
      await pump.until(() => peer.done);
      assert.equal(peer.received.subarray(0, 8).toString("hex"), "005a000000000000");
      assert.equal(peer.received.subarray(8).toString(), sha256(Buffer.from("pipelined")) + "\n");
    }
    assert.deepEqual(opened, ["127.0.0.1", "localhost"]);
  } finally {
    await socks.stopListening();
    await dest.stop();
  }
});

test("dynamicForward: a refused channel open gets a SOCKS failure reply, then the socket closes", async () => {
  const { client, pump } = setup({ allowForwarding: false });
  const socks = await settle(pump, forwarding.dynamicForward(client, { port: 0 }));
  try {
    const peer5 = new Peer(portOf(socks));
    const [, reply] = await socksHandshake(pump, peer5, [
      [Uint8Array.of(5, 1, 0), 2],
      [socks5Connect(1, Uint8Array.of(127, 0, 0, 1), 80), 10],
    ]);
    // The server refuses by policy (administratively prohibited): "not allowed by ruleset".
    assert.equal(reply![1], forwarding.SOCKS5_NOT_ALLOWED);
    await pump.until(() => peer5.done);
    const peer4 = new Peer(portOf(socks));
    peer4.socket.write(Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
    await pump.until(() => peer4.done);
    assert.equal(peer4.received.toString("hex"), "005b000000000000");
    assert.equal(client.channels.size, 0);
  } finally {
    await socks.stopListening();
  }
});

test("dynamicForward: bad SOCKS input is dropped (a reply where SOCKS has one) and no channel is opened", async () => {
  const { client, pump } = setup();
  const socks = await settle(pump, forwarding.dynamicForward(client, { port: 0 }));
  try {
    const cases: Array<[Uint8Array, string]> = [
      [Buffer.from("GET / HTTP/1.1\r\n\r\n"), ""],
      [Buffer.concat([Buffer.from([4, 1, 0, 80, 1, 2, 3, 4]), Buffer.alloc(forwarding.SOCKS_MAX_USERID + 1, 0x41)]), "005b000000000000"],
      [Buffer.from([4, 2, 0, 80, 1, 2, 3, 4, 0]), "005b000000000000"],
      [Buffer.from([5, 1, 2]), "05ff"],
      [Buffer.concat([Buffer.from([5, 1, 0]), Buffer.from([5, 3, 0, 1, 1, 2, 3, 4, 0, 80])]), "0500" + "05070001000000000000"],
    ];
    for (const [input, expected] of cases) {
      const peer = new Peer(portOf(socks));
      peer.socket.write(input);
      await pump.until(() => peer.done);
      assert.equal(peer.received.toString("hex"), expected);
    }
    assert.equal(client.channels.size, 0);
    assert.equal(client.localChannelID, 0, "no channel was ever opened");
  } finally {
    await socks.stopListening();
  }
});

// ---- remote forwarding ---------------------------------------------------------------------------

test("remoteForward to port 0: the allocated port is returned, and connections to it reach the destination", async () => {
  const dest = await serve(digestService);
  const { client, pump, user } = setup();
  try {
    const bound = await settle(pump, forwarding.remoteForward(client, { port: 0 }, ["127.0.0.1", dest.port]));
    assert.ok(bound > 0 && bound < 65536);
    const data = randomBytes(1024 * 1024);
    const peer = new Peer(bound);
    peer.socket.end(data);
    await pump.until(() => peer.done);
    assert.equal(peer.text, sha256(data) + "\n");
    await settle(pump, forwarding.cancelRemoteForward(client, { port: bound }));
    const late = new Peer(bound);
    await pump.until(() => late.done);
    assert.equal(late.connected, false, "the server no longer listens");
  } finally {
    user.logout();
    await dest.stop();
  }
});

test("remoteForward: a refused tcpip-forward fails the Deferred; cancelling a forward the server does not know fails too", async () => {
  const { client, pump } = setup({ allowForwarding: false });
  await assert.rejects(settle(pump, forwarding.remoteForward(client, { port: 0 }, ["127.0.0.1", 9])), (e: Error) => e instanceof error.GlobalRequestFailedError);
  await assert.rejects(settle(pump, forwarding.cancelRemoteForward(client, { port: 1234 })), (e: Error) => e instanceof error.GlobalRequestFailedError);
});

/** Opens a forwarded-tcpip channel from the server naming `bound` as the connected address. */
function openForwarded(s: Setup, bound: [string, number]): RecordingChannel {
  const ch = new RecordingChannel({ conn: s.server });
  ch.name = "forwarded-tcpip";
  s.server.openChannel(ch, forwarding.packOpen_forwarded_tcpip(bound, ["127.0.0.1", 40000]));
  s.pump.flush();
  return ch;
}

test("forwarded-tcpip: an open is matched by bound address and port; one that matches nothing is refused with OPEN_ADMINISTRATIVELY_PROHIBITED", async () => {
  const dest = await serve(echoService);
  const s = setup();
  try {
    const bound = await settle(s.pump, forwarding.remoteForward(s.client, { host: "127.0.0.1", port: 0 }, ["127.0.0.1", dest.port]));
    const unknown = openForwarded(s, ["127.0.0.1", bound + 1 === 65536 ? 1 : bound + 1]);
    assert.ok(unknown.failure instanceof error.ChannelOpenError);
    assert.equal(unknown.failure.reasonCode, error.OPEN_ADMINISTRATIVELY_PROHIBITED);
    // Another address, but the only forward on that port: matched (servers that name the address bound).
    const ch = openForwarded(s, ["localhost", bound]);
    // Confirmed once the destination is connected (readyToConfirm), as OpenSSH does.
    await s.pump.until(() => ch.events.length > 0);
    assert.deepEqual(ch.events, ["open"]);
    ch.write("echo me");
    await s.pump.until(() => ch.receivedText === "echo me");
    ch.loseConnection();
    await s.pump.until(() => ch.events.includes("closed"));
    await settle(s.pump, forwarding.cancelRemoteForward(s.client, { host: "127.0.0.1", port: bound }));
    const after = openForwarded(s, ["127.0.0.1", bound]);
    assert.equal((after.failure as error.ChannelOpenError).reasonCode, error.OPEN_ADMINISTRATIVELY_PROHIBITED, "refused once cancelled");
  } finally {
    s.user.logout();
    await dest.stop();
  }
});

test("forwarded-tcpip: a malformed open is refused, and the connection goes on", () => {
  const s = setup();
  const ch = new RecordingChannel({ conn: s.server });
  ch.name = "forwarded-tcpip";
  s.server.openChannel(ch, Uint8Array.of(0, 0, 0, 9, 1));
  s.pump.flush();
  assert.equal((ch.failure as error.ChannelOpenError).reasonCode, error.OPEN_CONNECT_FAILED);
  assert.deepEqual(s.pump.clientTransport.disconnects, []);
});
