import { test } from "node:test";
import assert from "node:assert/strict";
import { Deferred } from "@twisted-ts/internet/defer";
import { ConnectionLost } from "@twisted-ts/internet/error";
import { channel, common, connection } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import { attach, cat, hex, RecordingChannel, text, u32, type FakeTransport, type Packet } from "./_connection_fakes.js";

const { NS } = common;

class TestChannel extends RecordingChannel {
  override name = "TestChannel";
}

class TestAvatar {
  conn: connection.SSHConnection | undefined;
  argsErrorCode = 123;
  lookupChannel(channelType: string, windowSize: number, maxPacket: number, data: Uint8Array): channel.SSHChannel | undefined {
    if (channelType === "TestChannel" || channelType === "session") {
      return new TestChannel({ remoteWindow: windowSize, remoteMaxPacket: maxPacket, data, avatar: this });
    }
    if (channelType === "conch-error-args") throw new error.ConchError(this.argsErrorCode, "error args in wrong order");
    return undefined;
  }
  lookupSubsystem(): false {
    return false;
  }
  gotGlobalRequest(requestType: string, data: Uint8Array): connection.GlobalRequestResult {
    if (requestType === "TestGlobal") return true;
    if (requestType === "TestData") return [true, data];
    return false;
  }
}

class TestConnection extends connection.SSHConnection {
  channel: TestChannel | undefined;
  global_TestGlobal(): boolean {
    return true;
  }
  global_Test_Data(data: Uint8Array): connection.GlobalRequestResult {
    return [true, data];
  }
  channel_TestChannel(windowSize: number, maxPacket: number, data: Uint8Array): channel.SSHChannel {
    this.channel = new TestChannel({ remoteWindow: windowSize, remoteMaxPacket: maxPacket, data });
    return this.channel;
  }
  channel_ErrorChannel(): channel.SSHChannel {
    throw new Error("no such thing");
  }
}

function setUp(withAvatar = true): { conn: TestConnection; t: FakeTransport; avatar: TestAvatar } {
  const conn = new TestConnection();
  const avatar = new TestAvatar();
  const t = attach(conn, false, withAvatar ? avatar : undefined);
  return { conn, t, avatar };
}

/** Opens `ch` and confirms it: peer channel 255, window 0x20000, max packet 0x8000. */
function openChannel(conn: connection.SSHConnection, t: FakeTransport, ch: channel.SSHChannel): void {
  conn.openChannel(ch);
  conn.ssh_CHANNEL_OPEN_CONFIRMATION(cat(u32(ch.id!, 255), u32(0x20000, 0x8000)));
  t.take();
}

const packets = (t: FakeTransport): Array<[number, string]> => t.take().map(([n, p]: Packet) => [n, hex(p)]);
const P = (n: number, ...parts: Array<Uint8Array | string>): [number, string] => [n, hex(cat(...parts))];

test("serviceStarted links the avatar to the connection", () => {
  const { conn, avatar } = setUp();
  assert.equal(avatar.conn, conn);
});

test("serviceStopped closes open channels and fails channels still opening with ConnectionLost", () => {
  const { conn } = setUp();
  const c1 = new TestChannel();
  const c2 = new TestChannel();
  conn.openChannel(c1);
  conn.openChannel(c2);
  conn.ssh_CHANNEL_OPEN_CONFIRMATION(u32(0, 0, 0, 0));
  assert.deepEqual(c1.events, ["open"]);
  assert.deepEqual(c2.events, []);
  conn.serviceStopped();
  assert.deepEqual(c1.events, ["open", "closed"]);
  assert.deepEqual(c2.events, ["openFailed"]);
  assert.ok(c2.failure instanceof ConnectionLost);
});

test("GLOBAL_REQUEST: dispatched to the avatar; replies SUCCESS (with data), FAILURE, or nothing without want-reply", () => {
  const { conn, t } = setUp();
  conn.ssh_GLOBAL_REQUEST(cat(NS("TestGlobal"), "\xff"));
  assert.deepEqual(packets(t), [P(connection.MSG_REQUEST_SUCCESS)]);
  conn.ssh_GLOBAL_REQUEST(cat(NS("TestData"), "\xff", "test data"));
  assert.deepEqual(packets(t), [P(connection.MSG_REQUEST_SUCCESS, "test data")]);
  conn.ssh_GLOBAL_REQUEST(cat(NS("TestBad"), "\xff"));
  assert.deepEqual(packets(t), [P(connection.MSG_REQUEST_FAILURE)]);
  conn.ssh_GLOBAL_REQUEST(cat(NS("TestGlobal"), "\x00"));
  assert.deepEqual(packets(t), []);
});

test("GLOBAL_REQUEST: without an avatar, global_<name> methods answer (- becomes _), unknown ones are refused", () => {
  const { conn } = setUp(false);
  assert.equal(conn.gotGlobalRequest("TestGlobal", new Uint8Array()), true);
  assert.deepEqual(conn.gotGlobalRequest("Test-Data", cat("data")), [true, cat("data")]);
  assert.equal(conn.gotGlobalRequest("BadGlobal", new Uint8Array()), false);
});

test("GLOBAL_REQUEST: keepalive@openssh.com with want-reply is refused, as OpenSSH expects", () => {
  const { conn, t } = setUp(false);
  conn.packetReceived(connection.MSG_GLOBAL_REQUEST, cat(NS("keepalive@openssh.com"), "\x01"));
  assert.deepEqual(packets(t), [P(connection.MSG_REQUEST_FAILURE)]);
});

test("GLOBAL_REQUEST: a deferred answer keeps replies in request order", () => {
  const { conn, t } = setUp(false);
  const d = new Deferred<boolean>();
  (conn as unknown as Record<string, unknown>)["global_slow"] = () => d;
  conn.ssh_GLOBAL_REQUEST(cat(NS("slow"), "\x01"));
  conn.ssh_GLOBAL_REQUEST(cat(NS("TestGlobal"), "\x01"));
  assert.deepEqual(packets(t), []);
  d.callback(false);
  assert.deepEqual(packets(t), [P(connection.MSG_REQUEST_FAILURE), P(connection.MSG_REQUEST_SUCCESS)]);
});

test("REQUEST_SUCCESS fires the pending global request with the reply payload", async () => {
  const { conn } = setUp();
  const d = conn.sendGlobalRequest("request", cat("data"), true);
  conn.ssh_REQUEST_SUCCESS(cat("data"));
  assert.equal(text(await d), "data");
});

test("REQUEST_FAILURE errbacks the pending global request with the payload as ConchError.data", async () => {
  const { conn } = setUp();
  const d = conn.sendGlobalRequest("request", cat("data"), true);
  conn.ssh_REQUEST_FAILURE(cat("data"));
  await assert.rejects(d.asPromise(), (e: unknown) => e instanceof error.ConchError && text(e.data as Uint8Array) === "data");
});

test("REQUEST_SUCCESS with no request pending is ignored", () => {
  const { conn, t } = setUp();
  conn.packetReceived(connection.MSG_REQUEST_SUCCESS, new Uint8Array());
  assert.deepEqual(t.disconnects, []);
});

test("CHANNEL_OPEN: a client-side channel_<type> method makes the channel; it is confirmed with our window and packet size", () => {
  const { conn, t } = setUp(false);
  conn.ssh_CHANNEL_OPEN(cat(NS("TestChannel"), u32(1, 1, 1, 1)));
  const ch = conn.channel!;
  assert.deepEqual(ch.events, ["open"]);
  assert.equal(ch.conn, conn);
  assert.equal(hex(ch.data!), "00000001");
  assert.equal(hex(ch.openData!), "00000001");
  assert.equal(ch.remoteWindowLeft, 1);
  assert.equal(ch.remoteMaxPacket, 1);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_OPEN_CONFIRMATION, u32(1, 0, 0x200000, 0x8000))]);
});

test("CHANNEL_OPEN: an unknown channel type is refused with OPEN_UNKNOWN_CHANNEL_TYPE", () => {
  const { conn, t } = setUp(false);
  conn.ssh_CHANNEL_OPEN(cat(NS("BadChannel"), u32(2, 2, 2, 2)));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_OPEN_FAILURE, u32(2, 3), NS("unknown channel"), NS(""))]);
});

test("CHANNEL_OPEN: a factory that throws gives OPEN_CONNECT_FAILED 'unknown failure'", () => {
  const { conn, t } = setUp(false);
  conn.ssh_CHANNEL_OPEN(cat(NS("ErrorChannel"), u32(2, 2, 2, 2)));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_OPEN_FAILURE, u32(2, 2), NS("unknown failure"), NS(""))]);
});

test("CHANNEL_OPEN: ConchError(code, text) from lookupChannel has its arguments swapped back", () => {
  const { conn, t } = setUp();
  conn.ssh_CHANNEL_OPEN(cat(NS("conch-error-args"), u32(1, 1, 1, 1)));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_OPEN_FAILURE, u32(1, 0x7b), NS("error args in wrong order"), NS(""))]);
});

test("CHANNEL_OPEN: the avatar's lookupChannel decides on a server; unknown types raise ConchError", () => {
  const { conn } = setUp();
  const ch = conn.getChannel("TestChannel", 50, 30, cat("data"));
  assert.equal(text(ch.data!), "data");
  assert.equal(ch.remoteWindowLeft, 50);
  assert.equal(ch.remoteMaxPacket, 30);
  assert.throws(() => conn.getChannel("BadChannel", 50, 30, cat("data")), error.ConchError);
});

test("CHANNEL_OPEN: past MAX_OPEN_CHANNELS opens are refused with OPEN_RESOURCE_SHORTAGE and the connection keeps serving", () => {
  const { conn, t } = setUp();
  for (let i = 0; i < connection.MAX_OPEN_CHANNELS; i++) conn.ssh_CHANNEL_OPEN(cat(NS("TestChannel"), u32(i, 100, 100)));
  const confirmations = t.take().filter(([n]) => n === connection.MSG_CHANNEL_OPEN_CONFIRMATION);
  assert.equal(confirmations.length, connection.MAX_OPEN_CHANNELS);
  conn.ssh_CHANNEL_OPEN(cat(NS("TestChannel"), u32(5000, 100, 100)));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_OPEN_FAILURE, u32(5000, error.OPEN_RESOURCE_SHORTAGE), NS("too many channels open"), NS(""))]);
  // Closing one makes room again.
  conn.ssh_CHANNEL_CLOSE(u32(0));
  t.take();
  conn.ssh_CHANNEL_OPEN(cat(NS("TestChannel"), u32(5001, 100, 100)));
  assert.equal(t.take()[0]![0], connection.MSG_CHANNEL_OPEN_CONFIRMATION);
  assert.deepEqual(t.disconnects, []);
});

test("CHANNEL_OPEN: maxSessions counts only session channels, refuses past it with ADMINISTRATIVELY_PROHIBITED, and a close makes room", () => {
  const { conn, t } = setUp();
  conn.maxSessions = 2;
  for (let i = 0; i < 3; i++) conn.ssh_CHANNEL_OPEN(cat(NS("session"), u32(i, 100, 100)));
  conn.ssh_CHANNEL_OPEN(cat(NS("TestChannel"), u32(3, 100, 100)));
  assert.deepEqual(
    t.take().map(([n]) => n),
    [connection.MSG_CHANNEL_OPEN_CONFIRMATION, connection.MSG_CHANNEL_OPEN_CONFIRMATION, connection.MSG_CHANNEL_OPEN_FAILURE, connection.MSG_CHANNEL_OPEN_CONFIRMATION],
  );
  conn.ssh_CHANNEL_CLOSE(u32(0));
  t.take();
  conn.ssh_CHANNEL_OPEN(cat(NS("session"), u32(4, 100, 100)));
  assert.equal(t.take()[0]![0], connection.MSG_CHANNEL_OPEN_CONFIRMATION);
  assert.equal(connection.DEFAULT_MAX_SESSIONS, 10);
});

test("CHANNEL_OPEN_CONFIRMATION: records the peer's number, window and packet size and calls channelOpen", () => {
  const { conn } = setUp();
  const ch = new TestChannel();
  conn.openChannel(ch);
  conn.ssh_CHANNEL_OPEN_CONFIRMATION(u32(0, 0, 0, 0, 0));
  assert.equal(ch.remoteWindowLeft, 0);
  assert.equal(ch.remoteMaxPacket, 0);
  assert.equal(hex(ch.openData!), "00000000");
  assert.equal(conn.channelsToRemoteChannel.get(ch), 0);
  assert.equal(conn.localToRemoteChannel.get(0), 0);
});

test("CHANNEL_OPEN_FAILURE: openFailed gets a ConchError with value = description and data = code", () => {
  const { conn } = setUp();
  const ch = new TestChannel();
  conn.openChannel(ch);
  conn.ssh_CHANNEL_OPEN_FAILURE(cat(u32(0, 1), NS("failure!")));
  assert.ok(ch.failure instanceof error.ConchError);
  assert.equal(ch.failure.value, "failure!");
  assert.equal(ch.failure.data, 1);
  assert.equal(conn.channels.get(0), undefined);
});

test("CHANNEL_WINDOW_ADJUST adds to the remote window", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  const old = ch.remoteWindowLeft;
  conn.ssh_CHANNEL_WINDOW_ADJUST(u32(0, 1));
  assert.equal(ch.remoteWindowLeft, old + 1);
});

test("CHANNEL_DATA: delivered after a WINDOW_ADJUST once less than half the window is left; too much data closes the channel", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel({ localWindow: 6, localMaxPacket: 5 });
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("data")));
  assert.deepEqual(ch.received.map(text), ["data"]);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_WINDOW_ADJUST, u32(255, 4))]);
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("a".repeat(ch.localWindowLeft + 1))));
  assert.deepEqual(ch.received.map(text), ["data"]);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_CLOSE, u32(255))]);

  const ch2 = new TestChannel();
  openChannel(conn, t, ch2);
  conn.ssh_CHANNEL_DATA(cat(u32(1), NS("a".repeat(ch2.localMaxPacket + 1))));
  assert.deepEqual(ch2.received, []);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_CLOSE, u32(255))]);
});

test("CHANNEL_DATA: the window adjust goes out before dataReceived runs", () => {
  const { conn, t } = setUp();
  const seen: number[] = [];
  const ch = new (class extends TestChannel {
    override dataReceived(): void {
      seen.push(t.packets.length);
    }
  })({ localWindow: 6, localMaxPacket: 5 });
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("data")));
  assert.deepEqual(seen, [1]);
});

test("CHANNEL_DATA: a paused channel gives no window back until resumeProducing", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel({ localWindow: 8, localMaxPacket: 8 });
  openChannel(conn, t, ch);
  ch.pauseProducing();
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("abcde")));
  assert.deepEqual(packets(t), []);
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("fgh")));
  assert.equal(ch.localWindowLeft, 0);
  // The peer is now out of window: anything more is a violation and closes the channel.
  ch.resumeProducing();
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_WINDOW_ADJUST, u32(255, 8))]);
  assert.equal(ch.localWindowLeft, 8);
  assert.deepEqual(ch.received.map(text), ["abcde", "fgh"]);
});

test("CHANNEL_EXTENDED_DATA: delivered with its type; too much closes the channel", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel({ localWindow: 6, localMaxPacket: 5 });
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_EXTENDED_DATA(cat(u32(0, 0), NS("data")));
  assert.deepEqual(ch.ext.map(([n, d]) => [n, text(d)]), [[0, "data"]]);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_WINDOW_ADJUST, u32(255, 4))]);
  conn.ssh_CHANNEL_EXTENDED_DATA(cat(u32(0, 0), NS("a".repeat(ch.localWindowLeft + 1))));
  assert.equal(ch.ext.length, 1);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_CLOSE, u32(255))]);
});

test("CHANNEL_EOF calls eofReceived", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_EOF(u32(0));
  assert.deepEqual(ch.events, ["open", "eof"]);
});

test("CHANNEL_CLOSE: closeReceived, then closed once both sides have closed", () => {
  const { conn, t } = setUp();
  const ch = new (class extends TestChannel {
    override closeReceived(): void {
      this.events.push("closeReceived");
    }
  })();
  openChannel(conn, t, ch);
  conn.sendClose(ch);
  conn.ssh_CHANNEL_CLOSE(u32(0));
  assert.deepEqual(ch.events, ["open", "closeReceived", "closed"]);
});

test("CHANNEL_CLOSE: the default closeReceived answers with our CLOSE, then the channel is closed", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_CLOSE(u32(0));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_CLOSE, u32(255))]);
  assert.deepEqual(ch.events, ["open", "closeReceived", "closed"]);
  assert.equal(conn.channels.size, 0);
});

test("CHANNEL_CLOSE: data still queued for the peer's window is dropped and our CLOSE goes out", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  conn.openChannel(ch);
  conn.ssh_CHANNEL_OPEN_CONFIRMATION(cat(u32(0, 255), u32(3, 0x8000)));
  t.take();
  ch.write("abcdef");
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_DATA, u32(255), NS("abc"))]);
  conn.ssh_CHANNEL_CLOSE(u32(0));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_CLOSE, u32(255))]);
  assert.deepEqual(ch.events, ["open", "closeReceived", "closed"]);
});

test("CHANNEL_REQUEST: a true result replies CHANNEL_SUCCESS; without want-reply nothing is sent", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_REQUEST(cat(u32(0), NS("test"), "\x00"));
  assert.deepEqual(ch.events, ["open", "request_test"]);
  assert.deepEqual(packets(t), []);
  conn.ssh_CHANNEL_REQUEST(cat(u32(0), NS("test"), "\xff", "data"));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_SUCCESS, u32(255))]);
});

test("CHANNEL_REQUEST: a false result or an unknown request replies CHANNEL_FAILURE", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_REQUEST(cat(u32(0), NS("test"), "\xff"));
  conn.ssh_CHANNEL_REQUEST(cat(u32(0), NS("no-such-request"), "\x01"));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_FAILURE, u32(255)), P(connection.MSG_CHANNEL_FAILURE, u32(255))]);
});

test("CHANNEL_REQUEST: a Deferred result replies when it fires, keeping request order", () => {
  const { conn, t } = setUp();
  const d = new Deferred<boolean>();
  const ch = new (class extends TestChannel {
    request_slow(): Deferred<boolean> {
      return d;
    }
  })();
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_REQUEST(cat(u32(0), NS("slow"), "\x01"));
  conn.ssh_CHANNEL_REQUEST(cat(u32(0), NS("test"), "\x01", "data"));
  assert.deepEqual(packets(t), []);
  d.callback(true);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_SUCCESS, u32(255)), P(connection.MSG_CHANNEL_SUCCESS, u32(255))]);
});

test("CHANNEL_REQUEST: a handler that throws replies CHANNEL_FAILURE and the channel stays open", () => {
  const { conn, t } = setUp();
  const ch = new (class extends TestChannel {
    request_boom(): boolean {
      throw new Error("boom");
    }
  })();
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_REQUEST(cat(u32(0), NS("boom"), "\x01"));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_FAILURE, u32(255))]);
  assert.equal(ch.localClosed, false);
});

test("CHANNEL_SUCCESS fires the pending request with '' and CHANNEL_FAILURE errbacks 'channel request failed'", async () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  const d1 = conn.sendRequest(ch, "test", cat("data"), true);
  const d2 = conn.sendRequest(ch, "test", new Uint8Array(), true);
  conn.ssh_CHANNEL_SUCCESS(u32(0));
  conn.ssh_CHANNEL_FAILURE(u32(0));
  assert.equal(await d1, "");
  await assert.rejects(d2.asPromise(), (e: unknown) => e instanceof error.ConchError && e.value === "channel request failed");
});

test("sendGlobalRequest: wire format with and without want-reply", () => {
  const { conn, t } = setUp();
  const d = conn.sendGlobalRequest("wantReply", cat("data"), true);
  d.addErrback(() => undefined);
  conn.sendGlobalRequest("noReply", new Uint8Array(), false);
  assert.deepEqual(packets(t), [
    P(connection.MSG_GLOBAL_REQUEST, NS("wantReply"), "\x01data"),
    P(connection.MSG_GLOBAL_REQUEST, NS("noReply"), "\x00"),
  ]);
  assert.deepEqual(conn.globalDeferreds, [d]);
});

test("openChannel: CHANNEL_OPEN wire format with the type-specific data", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  conn.openChannel(ch, cat("aaaa"));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_OPEN, NS("TestChannel"), u32(0, 0x200000, 0x8000), "aaaa")]);
  assert.equal(ch.id, 0);
  assert.equal(conn.localChannelID, 1);
});

test("sendRequest: wire format; after we closed the channel it returns a failed Deferred and sends nothing", async () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  const d = conn.sendRequest(ch, "test", cat("test"), true);
  d.addErrback(() => undefined);
  const d2 = conn.sendRequest(ch, "test2", new Uint8Array(), false);
  ch.localClosed = true;
  const d3 = conn.sendRequest(ch, "test3", new Uint8Array(), true);
  assert.deepEqual(packets(t), [
    P(connection.MSG_CHANNEL_REQUEST, u32(255), NS("test"), "\x01test"),
    P(connection.MSG_CHANNEL_REQUEST, u32(255), NS("test2"), "\x00"),
  ]);
  assert.deepEqual(conn.deferreds.get(0), [d]);
  assert.equal(await d2, "");
  assert.ok(d3 instanceof Deferred);
  await assert.rejects(d3.asPromise(), error.ChannelClosedError);
});

test("sendRequest: pending requests errback ConchError('Channel closed.') when the channel closes", async () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  const d = conn.sendRequest(ch, "dummyrequest", cat("dummydata"), true);
  conn.channelClosed(ch);
  await assert.rejects(d.asPromise(), (e: unknown) => e instanceof error.ConchError && e.value === "Channel closed.");
});

test("adjustWindow: sends WINDOW_ADJUST and grows the local window; a no-op once closed", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel({ localWindow: 5 });
  openChannel(conn, t, ch);
  ch.localWindowLeft = 0;
  conn.adjustWindow(ch, 1);
  assert.equal(ch.localWindowLeft, 1);
  ch.localClosed = true;
  conn.adjustWindow(ch, 2);
  assert.equal(ch.localWindowLeft, 1);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_WINDOW_ADJUST, u32(255, 1))]);
});

test("sendData / sendExtendedData / sendEOF: wire format; no-ops once closed", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  conn.sendData(ch, cat("a"));
  conn.sendExtendedData(ch, 1, cat("test"));
  conn.sendEOF(ch);
  ch.localClosed = true;
  conn.sendData(ch, cat("b"));
  conn.sendExtendedData(ch, 2, cat("test2"));
  conn.sendEOF(ch);
  assert.deepEqual(packets(t), [
    P(connection.MSG_CHANNEL_DATA, u32(255), NS("a")),
    P(connection.MSG_CHANNEL_EXTENDED_DATA, u32(255, 1), NS("test")),
    P(connection.MSG_CHANNEL_EOF, u32(255)),
  ]);
});

test("sendClose: sends CLOSE once; closed() when the peer had already closed", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  conn.sendClose(ch);
  assert.equal(ch.localClosed, true);
  conn.sendClose(ch);
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_CLOSE, u32(255))]);
  const ch2 = new TestChannel();
  openChannel(conn, t, ch2);
  ch2.remoteClosed = true;
  conn.sendClose(ch2);
  assert.deepEqual(ch2.events, ["open", "closed"]);
});

test("serviceStopped errbacks pending global requests with ConchError('Connection stopped.')", async () => {
  const { conn } = setUp();
  const d = conn.sendGlobalRequest("dummyrequest", cat("dummydata"), true);
  conn.serviceStopped();
  await assert.rejects(d.asPromise(), (e: unknown) => e instanceof error.ConchError && e.value === "Connection stopped.");
});

test("CHANNEL_DATA: an unknown channel number is a protocol error: DISCONNECT, no exception", () => {
  const { conn, t } = setUp();
  conn.packetReceived(connection.MSG_CHANNEL_DATA, cat(u32(7), NS("x")));
  assert.deepEqual(t.disconnects.map(([r]) => r), [error.DISCONNECT_PROTOCOL_ERROR]);
  assert.match(t.disconnects[0]![1], /unknown channel 7/);
});

test("CHANNEL_DATA: a message for a channel that was opening (not confirmed) is a protocol error", () => {
  const { conn, t } = setUp();
  conn.openChannel(new TestChannel());
  conn.packetReceived(connection.MSG_CHANNEL_DATA, cat(u32(0), NS("x")));
  assert.deepEqual(t.disconnects.map(([r]) => r), [error.DISCONNECT_PROTOCOL_ERROR]);
});

test("CHANNEL_DATA / CHANNEL_REQUEST: messages for a channel that has closed are ignored", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  openChannel(conn, t, ch);
  conn.ssh_CHANNEL_CLOSE(u32(0));
  t.take();
  conn.packetReceived(connection.MSG_CHANNEL_DATA, cat(u32(0), NS("late")));
  conn.packetReceived(connection.MSG_CHANNEL_REQUEST, cat(u32(0), NS("test"), "\x01", "data"));
  assert.deepEqual(packets(t), []);
  assert.deepEqual(t.disconnects, []);
  assert.deepEqual(ch.received, []);
});

test("CHANNEL_OPEN: a truncated message is a protocol error, not a crash", () => {
  const { conn, t } = setUp();
  conn.packetReceived(connection.MSG_CHANNEL_OPEN, cat(NS("session"), u32(1)));
  assert.deepEqual(t.disconnects.map(([r]) => r), [error.DISCONNECT_PROTOCOL_ERROR]);
});

test("a channel hook that throws closes that channel only", () => {
  const { conn, t } = setUp();
  const bad = new (class extends TestChannel {
    override dataReceived(): void {
      throw new Error("application bug");
    }
  })();
  const good = new TestChannel();
  openChannel(conn, t, bad);
  openChannel(conn, t, good);
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("x")));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_CLOSE, u32(255))]);
  conn.ssh_CHANNEL_DATA(cat(u32(1), NS("y")));
  assert.deepEqual(good.received.map(text), ["y"]);
  assert.deepEqual(t.disconnects, []);
});

test("an unknown message number is answered with UNIMPLEMENTED", () => {
  const { conn, t } = setUp();
  conn.packetReceived(101, new Uint8Array());
  assert.equal(t.unimplemented, 1);
});


test("CHANNEL_OPEN_CONFIRMATION: data written while the channel was opening goes out at once", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  conn.openChannel(ch);
  t.take();
  ch.write("early");
  assert.deepEqual(packets(t), []);
  conn.ssh_CHANNEL_OPEN_CONFIRMATION(cat(u32(0, 255), u32(0x20000, 0x8000)));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_DATA, u32(255), NS("early"))]);
  assert.deepEqual(ch.events, ["open"]);
});

test("CHANNEL_OPEN_CONFIRMATION: a channel closed while opening sends CLOSE as soon as it is confirmed", () => {
  const { conn, t } = setUp();
  const ch = new TestChannel();
  conn.openChannel(ch);
  t.take();
  ch.loseConnection();
  assert.deepEqual(packets(t), []);
  conn.ssh_CHANNEL_OPEN_CONFIRMATION(cat(u32(0, 255), u32(0x20000, 0x8000)));
  assert.deepEqual(packets(t), [P(connection.MSG_CHANNEL_CLOSE, u32(255))]);
  conn.ssh_CHANNEL_CLOSE(u32(0));
  assert.deepEqual(ch.events, ["closeReceived", "closed"]);
});
