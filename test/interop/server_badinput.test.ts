/**
 * Bad input to OUR server over real loopback TCP, from a client we drive by hand (our transport
 * and password login, then connection-layer messages built byte by byte): data past the window and
 * past the maximum packet, an unknown channel number, requests on a closed channel, an unknown
 * channel type, a truncated message, a channel-open flood past the per-connection limit, and
 * commands that do not exist (Unix and in-process realms). Each is answered as RFC 4254 says (or,
 * where the RFC leaves it open, as documented in connection.ts), logged, and never crashes the
 * server: a bystander connection opened before the bad input still runs commands afterwards, and
 * nothing is logged at level critical.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { common, connection } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import { connectRaw, startOurServer, type OurServer, type RawConnection } from "./_server_support.js";

const {
  MSG_CHANNEL_CLOSE,
  MSG_CHANNEL_DATA,
  MSG_CHANNEL_EOF,
  MSG_CHANNEL_FAILURE,
  MSG_CHANNEL_REQUEST,
  MSG_CHANNEL_SUCCESS,
  MSG_CHANNEL_WINDOW_ADJUST,
  OPEN_ADMINISTRATIVELY_PROHIBITED,
  OPEN_RESOURCE_SHORTAGE,
  OPEN_UNKNOWN_CHANNEL_TYPE,
} = connection;

const DISCONNECT_PROTOCOL_ERROR = 2;

/** The bystander runs a command on a fresh channel: the server still serves it. */
async function stillServes(bystander: RawConnection, local: number): Promise<void> {
  const r = await bystander.exec(local, `echo alive-${local}`);
  assert.equal(r.stdout, `alive-${local}\n`);
  assert.equal(r.status, 0);
}

function logged(server: OurServer, pattern: RegExp): boolean {
  return server.logText().split("\n").some((l) => pattern.test(l));
}

/** A raw connection to `server`, closed when the test ends. */
async function rawFor(t: TestContext, server: OurServer): Promise<RawConnection> {
  const raw = await connectRaw(server);
  t.after(() => raw.close());
  return raw;
}

/** Opens session channel 0 on `raw` and waits until the server has confirmed it. */
async function openSession0(raw: RawConnection): Promise<Extract<Awaited<ReturnType<RawConnection["opened"]>>, { ok: true }>> {
  raw.openSession(0);
  const o = await raw.opened(0);
  assert.ok(o.ok);
  return o;
}

function data(remote: number, bytes: Uint8Array): common.SSHWriter {
  return new common.SSHWriter().uint32(remote).string(bytes);
}

test("CHANNEL_DATA past the window closes that channel (logged); the connection and others go on", async (t) => {
  const server = await startOurServer(t);
  const bystander = await rawFor(t, server);
  const raw = await rawFor(t, server);

  const o = await openSession0(raw);
  // No command yet: the session holds the data and gives no window back, so the window is real.
  let left = o.window;
  while (left > 0) {
    const n = Math.min(o.maxPacket, left);
    raw.send(MSG_CHANNEL_DATA, data(o.remote, new Uint8Array(n)));
    left -= n;
  }
  raw.send(MSG_CHANNEL_DATA, data(o.remote, new Uint8Array(1)));
  const close = await raw.forChannel(0, [MSG_CHANNEL_CLOSE, MSG_CHANNEL_WINDOW_ADJUST]);
  assert.equal(close.num, MSG_CHANNEL_CLOSE, "the server closes the channel and gave no window back before");
  raw.send(MSG_CHANNEL_CLOSE, new common.SSHWriter().uint32(o.remote));
  assert.ok(logged(server, /too much data on channel 0: 1 bytes, window 0/), server.logText());

  // Same connection, new channel: fine.
  const r = await raw.exec(1, "echo same-connection");
  assert.equal(r.stdout, "same-connection\n");
  await stillServes(bystander, 0);
  assert.equal(raw.endedWith, undefined);
  assert.deepEqual(server.criticals(), []);
});

test("CHANNEL_DATA larger than the maximum packet closes that channel (logged)", async (t) => {
  const server = await startOurServer(t);
  const raw = await rawFor(t, server);
  const o = await openSession0(raw);
  raw.send(MSG_CHANNEL_DATA, data(o.remote, new Uint8Array(o.maxPacket + 1)));
  const close = await raw.forChannel(0, [MSG_CHANNEL_CLOSE]);
  assert.equal(close.num, MSG_CHANNEL_CLOSE);
  raw.send(MSG_CHANNEL_CLOSE, new common.SSHWriter().uint32(o.remote));
  assert.ok(logged(server, new RegExp(`too much data on channel 0: ${o.maxPacket + 1} bytes`)), server.logText());
  const r = await raw.exec(1, "echo ok");
  assert.equal(r.stdout, "ok\n");
  assert.deepEqual(server.criticals(), []);
});

test("a message for a channel number never opened is a protocol error: DISCONNECT, logged; others unaffected", async (t) => {
  const server = await startOurServer(t);
  const bystander = await rawFor(t, server);
  for (const [i, [num, payload]] of (
    [
      [MSG_CHANNEL_DATA, data(4242, new Uint8Array([1, 2, 3]))],
      [MSG_CHANNEL_REQUEST, new common.SSHWriter().uint32(77).string("exec").boolean(true).string("true")],
      [MSG_CHANNEL_WINDOW_ADJUST, new common.SSHWriter().uint32(0xffffffff).uint32(1000)],
      [MSG_CHANNEL_EOF, new common.SSHWriter().uint32(5)],
      [MSG_CHANNEL_CLOSE, new common.SSHWriter().uint32(9)],
    ] as const
  ).entries()) {
    const raw = await connectRaw(server);
    raw.send(num, payload);
    const why = await raw.ended;
    assert.ok(why instanceof error.SSHDisconnectError, String(why));
    assert.equal(why.reasonCode, DISCONNECT_PROTOCOL_ERROR);
    assert.equal(why.byPeer, true);
    assert.match(why.description, /channel/i);
    await stillServes(bystander, i);
  }
  assert.ok(logged(server, /^error .*protocol error: MSG_CHANNEL_DATA/), server.logText());
  assert.deepEqual(server.criticals(), []);
});

test("requests, data and EOF on a channel that has closed are ignored (logged), with no reply and no disconnect", async (t) => {
  const server = await startOurServer(t);
  const raw = await rawFor(t, server);
  const first = await raw.exec(0, "true");
  assert.equal(first.status, 0);
  // exec() answered the server's CLOSE with ours: server channel 0 is gone. Now talk to it anyway.
  raw.request(0, "exec", true, common.NS("echo should-not-run"));
  raw.request(0, "env", false, new common.SSHWriter().string("A").string("b").finish());
  raw.send(MSG_CHANNEL_DATA, data(0, new Uint8Array([65])));
  raw.send(MSG_CHANNEL_EOF, new common.SSHWriter().uint32(0));
  raw.send(MSG_CHANNEL_WINDOW_ADJUST, new common.SSHWriter().uint32(0).uint32(100));
  // The server is still there and the next channel works; nothing came back for channel 0.
  const r = await raw.exec(1, "echo next");
  assert.equal(r.stdout, "next\n");
  assert.equal(raw.endedWith, undefined);
  assert.deepEqual(
    raw.pending().filter((m) => m.num === MSG_CHANNEL_SUCCESS || m.num === MSG_CHANNEL_FAILURE || m.num === MSG_CHANNEL_DATA),
    [],
  );
  assert.ok(logged(server, /CHANNEL_REQUEST for closed channel 0: ignored/), server.logText());
  assert.ok(logged(server, /CHANNEL_DATA for closed channel 0: ignored/), server.logText());
  assert.deepEqual(server.criticals(), []);
});

test("a request on a channel the server already closed (before our CLOSE) gets no reply", async (t) => {
  const server = await startOurServer(t);
  const raw = await rawFor(t, server);
  const o = await openSession0(raw);
  raw.request(o.remote, "exec", true, common.NS("true"));
  await raw.forChannel(0, [MSG_CHANNEL_CLOSE]);
  // The server sent CLOSE; RFC 4254 §5.3 says it sends nothing more on the channel.
  raw.request(o.remote, "exec", true, common.NS("echo again"));
  raw.send(MSG_CHANNEL_CLOSE, new common.SSHWriter().uint32(o.remote));
  const r = await raw.exec(1, "echo next");
  assert.equal(r.stdout, "next\n");
  // Exactly one reply on channel 0: the first exec's; the request after the server's CLOSE got none.
  const replies = raw.pending().filter((m) => (m.num === MSG_CHANNEL_SUCCESS || m.num === MSG_CHANNEL_FAILURE) && m.reader().uint32() === 0);
  assert.deepEqual(replies.map((m) => m.num), [MSG_CHANNEL_SUCCESS]);
  assert.deepEqual(server.criticals(), []);
});

test("CHANNEL_OPEN of an unknown type is refused with OPEN_UNKNOWN_CHANNEL_TYPE; a truncated open disconnects", async (t) => {
  const server = await startOurServer(t);
  const raw = await connectRaw(server);
  raw.openSession(0, 1 << 20, 32768, "x-no-such-channel@example.com");
  const o = await raw.opened(0);
  assert.equal(o.ok, false);
  if (!o.ok) assert.equal(o.reason, OPEN_UNKNOWN_CHANNEL_TYPE);
  const r = await raw.exec(1, "echo after-unknown-type");
  assert.equal(r.stdout, "after-unknown-type\n");
  // A CHANNEL_OPEN cut short after the type: a protocol error.
  raw.send(connection.MSG_CHANNEL_OPEN, new common.SSHWriter().string("session").raw(new Uint8Array([0, 0])));
  const why = await raw.ended;
  assert.ok(why instanceof error.SSHDisconnectError, String(why));
  assert.equal(why.reasonCode, DISCONNECT_PROTOCOL_ERROR);
  const again = await rawFor(t, server);
  await stillServes(again, 0);
  assert.deepEqual(server.criticals(), []);
});

test("a channel-open flood past the per-connection limit: the excess is refused with OPEN_RESOURCE_SHORTAGE", async (t) => {
  const LIMIT = 16;
  class LimitedConnection extends connection.SSHConnection {
    override maxOpenChannels = LIMIT;
    override maxSessions = Infinity;
  }
  const server = await startOurServer(t, { connectionClass: LimitedConnection });
  const bystander = await rawFor(t, server);
  const raw = await rawFor(t, server);
  const FLOOD = 60;
  for (let i = 0; i < FLOOD; i++) raw.openSession(i);
  const answers = await Promise.all(Array.from({ length: FLOOD }, (_, i) => raw.opened(i)));
  const confirmed = answers.flatMap((a, i) => (a.ok ? [[i, a.remote] as const] : []));
  const refused = answers.filter((a) => !a.ok);
  assert.equal(confirmed.length, LIMIT);
  assert.equal(refused.length, FLOOD - LIMIT);
  for (const a of refused) if (!a.ok) assert.equal(a.reason, OPEN_RESOURCE_SHORTAGE);
  assert.ok(logged(server, /refusing session channel: 16 channels already open/), server.logText());
  // The bystander has its own budget.
  await stillServes(bystander, 0);
  // At the limit, another open is refused; after closing one, one more is accepted.
  const [firstLocal, firstRemote] = confirmed[0]!;
  raw.send(MSG_CHANNEL_CLOSE, new common.SSHWriter().uint32(firstRemote));
  await raw.forChannel(firstLocal, [MSG_CHANNEL_CLOSE]);
  const r = await raw.exec(FLOOD, "echo one-more");
  assert.equal(r.stdout, "one-more\n");
  assert.equal(raw.endedWith, undefined);
  assert.deepEqual(server.criticals(), []);
});

test("the default per-connection limit (MAX_OPEN_CHANNELS) holds against a flood of opens", async (t) => {
  // Sessions are the only channel type here, so MaxSessions is lifted to reach the channel limit.
  class ManySessions extends connection.SSHConnection {
    override maxSessions = Infinity;
  }
  const server = await startOurServer(t, { realm: "inprocess", connectionClass: ManySessions });
  const raw = await rawFor(t, server);
  const limit = connection.MAX_OPEN_CHANNELS;
  const FLOOD = limit + 40;
  for (let i = 0; i < FLOOD; i++) raw.openSession(i, 1 << 16, 16384);
  const answers = await Promise.all(Array.from({ length: FLOOD }, (_, i) => raw.opened(i)));
  assert.equal(answers.filter((a) => a.ok).length, limit);
  assert.ok(answers.slice(limit).every((a) => !a.ok && a.reason === OPEN_RESOURCE_SHORTAGE));
  assert.equal(raw.endedWith, undefined);
  assert.deepEqual(server.criticals(), []);
});

test("MaxSessions: past DEFAULT_MAX_SESSIONS session opens are refused as administratively prohibited; closing one makes room", async (t) => {
  const server = await startOurServer(t);
  const raw = await rawFor(t, server);
  const limit = connection.DEFAULT_MAX_SESSIONS;
  for (let i = 0; i < limit + 3; i++) raw.openSession(i);
  const answers = await Promise.all(Array.from({ length: limit + 3 }, (_, i) => raw.opened(i)));
  assert.equal(answers.filter((a) => a.ok).length, limit);
  assert.ok(answers.slice(limit).every((a) => !a.ok && a.reason === OPEN_ADMINISTRATIVELY_PROHIBITED));
  assert.ok(logged(server, /10 sessions already open \(maxSessions\)/), server.logText());
  const first = answers[0]!;
  assert.ok(first.ok);
  raw.send(MSG_CHANNEL_CLOSE, new common.SSHWriter().uint32(first.remote));
  await raw.forChannel(0, [MSG_CHANNEL_CLOSE]);
  const r = await raw.exec(100, "echo again");
  assert.equal(r.stdout, "again\n");
  assert.equal(raw.endedWith, undefined);
});

test("exec of a command that does not exist: exit-status 127 after the reply, stderr, EOF, CLOSE (Unix realm)", async (t) => {
  const server = await startOurServer(t);
  const raw = await rawFor(t, server);
  const r = await raw.exec(0, "/no/such/program --flag");
  assert.equal(r.status, 127);
  assert.match(r.stderr, /\/no\/such\/program: .*not found/);
  assert.deepEqual(r.order.filter((x) => x !== "data" && x !== "stderr"), ["success", "eof", "exit-status", "close"]);
  const again = await raw.exec(1, "echo fine");
  assert.equal(again.stdout, "fine\n");
  assert.deepEqual(server.criticals(), []);
});

test("exec of a command that does not exist: exit-status 127 with the in-process realm too", async (t) => {
  const server = await startOurServer(t, { realm: "inprocess", inProcess: { commands: {} } });
  const raw = await rawFor(t, server);
  const r = await raw.exec(0, "frobnicate now");
  assert.equal(r.status, 127);
  assert.match(r.stderr, /frobnicate: command not found/);
  assert.deepEqual(r.order.filter((x) => x !== "stderr"), ["success", "eof", "exit-status", "close"]);
  const again = await raw.exec(1, "");
  assert.equal(again.status, 127);
  assert.equal(raw.endedWith, undefined);
  assert.deepEqual(server.criticals(), []);
});

test(
  "in-process realm: the \"command not found\" message follows the exec request's CHANNEL_SUCCESS",
  async (t) => {
    const server = await startOurServer(t, { realm: "inprocess", inProcess: { commands: {} } });
    const raw = await rawFor(t, server);
    const r = await raw.exec(0, "frobnicate now");
    assert.deepEqual(r.order, ["success", "stderr", "eof", "exit-status", "close"]);
  },
);

test(
  "a client that never gives window back: the command's output is held back (the process blocks), not buffered without bound",
  async (t) => {
    const server = await startOurServer(t);
    const raw = await rawFor(t, server);
    raw.openSession(0, 32768, 32768);
    const o = await raw.opened(0);
    assert.ok(o.ok);
    // 32 MiB of output against a 32 KiB window that is never adjusted: with flow control the pipe
    // fills and `head` blocks, so `finished` is never made.
    raw.request(o.remote, "exec", true, common.NS("head -c 33554432 /dev/zero; touch finished"));
    const done = join(server.home, "finished");
    for (let i = 0; i < 30 && !existsSync(done); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(existsSync(done), false, "the whole output was read into the server's memory");
  },
);

test(
  "a command that does not read its stdin: the server stops giving window back instead of buffering without bound",
  async (t) => {
    const server = await startOurServer(t);
    const raw = await rawFor(t, server);
    const o = await openSession0(raw);
    raw.request(o.remote, "exec", true, common.NS("sleep 5"));
    await raw.forChannel(0, [MSG_CHANNEL_SUCCESS]);
    // Send as fast as the server's window allows, for a while; count what it let in.
    let window = o.window;
    let sent = 0;
    const LIMIT = 48 * 1024 * 1024;
    const chunk = new Uint8Array(o.maxPacket);
    while (sent < LIMIT) {
      while (window > 0 && sent < LIMIT) {
        const n = Math.min(o.maxPacket, window);
        raw.send(MSG_CHANNEL_DATA, data(o.remote, chunk.subarray(0, n)));
        window -= n;
        sent += n;
      }
      const adjust = await raw.forChannel(0, [MSG_CHANNEL_WINDOW_ADJUST], 1500).catch(() => undefined);
      if (adjust === undefined) break;
      const r = adjust.reader();
      r.uint32();
      window += r.uint32();
    }
    t.diagnostic(`accepted ${sent} bytes`);
    // One window, a pipe and a little buffering at most: not everything we offered.
    assert.ok(sent < 8 * 1024 * 1024, `the server accepted ${sent} bytes for a command that reads none`);
  },
);
