import { test } from "node:test";
import assert from "node:assert/strict";
import type { IPushProducer, IPullProducer, ITransport } from "@twisted-ts/internet/interfaces";
import { Protocol } from "@twisted-ts/internet/protocol";
import { channel, connection, transport } from "@twisted-ts/conch/ssh";
import { attach, text, type FakeTransport } from "./_connection_fakes.js";

/** Records what the channel hands to its connection, as Twisted's MockConnection does. */
class MockConnection extends connection.SSHConnection {
  data: string[] = [];
  extData: Array<[number, string]> = [];
  closes = 0;
  override sendData(_ch: channel.SSHChannel, data: Uint8Array, prefix: Uint8Array = new Uint8Array(0)): void {
    this.data.push(text(prefix) + text(data));
  }
  override sendExtendedData(_ch: channel.SSHChannel, dataType: number, data: Uint8Array): void {
    this.extData.push([dataType, text(data)]);
  }
  override sendClose(ch: channel.SSHChannel): void {
    this.closes++;
    ch.localClosed = true;
  }
}

class HookChannel extends channel.SSHChannel {
  override name = "channel";
  starts = 0;
  stops = 0;
  override startWriting(): void {
    this.starts++;
  }
  override stopWriting(): void {
    this.stops++;
  }
  request_test_method(data: Uint8Array): boolean {
    return data.length === 0;
  }
}

function setUp(): { conn: MockConnection; ch: HookChannel; t: FakeTransport } {
  const conn = new MockConnection();
  const t = attach(conn);
  const ch = new HookChannel({ conn, remoteMaxPacket: 10 });
  return { conn, ch, t };
}

test("the defaults: 2 MiB local window, 32 KiB max packet, exported as constants", () => {
  assert.equal(channel.DEFAULT_LOCAL_WINDOW, 2 * 1024 * 1024);
  assert.equal(channel.DEFAULT_LOCAL_MAX_PACKET, 32 * 1024);
  const ch = new channel.SSHChannel();
  assert.equal(ch.localWindowSize, channel.DEFAULT_LOCAL_WINDOW);
  assert.equal(ch.localWindowLeft, channel.DEFAULT_LOCAL_WINDOW);
  assert.equal(ch.localMaxPacket, channel.DEFAULT_LOCAL_MAX_PACKET);
  assert.equal(ch.remoteWindowLeft, 0);
  assert.equal(ch.remoteMaxPacket, 0);
  assert.equal(ch.id, undefined);
  assert.equal(ch.localClosed, false);
  assert.equal(ch.remoteClosed, false);
  const ch2 = new channel.SSHChannel({ localWindow: 1, localMaxPacket: 2, remoteWindow: 3, remoteMaxPacket: 4, data: new Uint8Array([5]) });
  assert.deepEqual(
    [ch2.localWindowSize, ch2.localWindowLeft, ch2.localMaxPacket, ch2.remoteWindowLeft, ch2.remoteMaxPacket, ch2.data?.[0]],
    [1, 1, 2, 3, 4, 5],
  );
});

test("a localMaxPacket past what one transport packet holds is lowered to MAX_LOCAL_MAX_PACKET", () => {
  // CHANNEL_DATA: byte 94, uint32 recipient, string data; then the padding-length byte and at most
  // 255 bytes of padding, all inside the transport's MAX_PACKET_LENGTH.
  assert.ok(1 + 4 + 4 + channel.MAX_LOCAL_MAX_PACKET + 1 + 255 <= transport.MAX_PACKET_LENGTH);
  assert.equal(new channel.SSHChannel({ localMaxPacket: 1024 * 1024 }).localMaxPacket, channel.MAX_LOCAL_MAX_PACKET);
  assert.equal(new channel.SSHChannel({ localMaxPacket: channel.MAX_LOCAL_MAX_PACKET }).localMaxPacket, channel.MAX_LOCAL_MAX_PACKET);
  assert.equal(new channel.SSHChannel({ localMaxPacket: 128 * 1024 }).localMaxPacket, 128 * 1024);
});

test("a channel without a connection says so when conn is used", () => {
  const ch = new channel.SSHChannel();
  assert.equal(ch.hasConnection, false);
  assert.throws(() => ch.conn, /no connection/);
});

test("toString and logPrefix name the channel", () => {
  const { ch } = setUp();
  assert.equal(String(ch), "<SSHChannel channel (lw 2097152 rw 0)>");
  assert.match(ch.logPrefix(), /^SSHChannel channel \(unknown\) on SSHConnection/);
});

test("addWindowBytes sends what was held back and calls startWriting", () => {
  const { conn, ch } = setUp();
  ch.write("test");
  ch.writeExtended(1, "test");
  assert.equal(ch.areWriting, false);
  ch.addWindowBytes(50);
  assert.equal(ch.remoteWindowLeft, 50 - 4 - 4);
  assert.equal(ch.areWriting, true);
  assert.equal(ch.starts, 1);
  assert.equal(ch.bufferedAmount, 0);
  assert.deepEqual(conn.data, ["test"]);
  assert.deepEqual(conn.extData, [[1, "test"]]);
  ch.addWindowBytes(20);
  assert.equal(ch.starts, 1);
  ch.write("a".repeat(80));
  ch.loseConnection();
  ch.addWindowBytes(20);
  assert.equal(ch.starts, 1);
});

test("requestReceived dispatches to request_<name> with - as _", () => {
  const { ch } = setUp();
  assert.equal(ch.requestReceived("test-method", new Uint8Array()), true);
  assert.equal(ch.requestReceived("test-method", new Uint8Array([1])), false);
  assert.equal(ch.requestReceived("bad-method", new Uint8Array()), false);
});

test("the default closeReceived closes our side", () => {
  const { ch } = setUp();
  assert.equal(ch.closing, false);
  ch.closeReceived();
  assert.equal(ch.closing, true);
});

test("write keeps to the window and splits at the peer's max packet", () => {
  const { conn, ch } = setUp();
  ch.write("d");
  ch.write("a");
  assert.equal(ch.areWriting, false);
  assert.equal(ch.stops, 1);
  ch.addWindowBytes(20);
  ch.write("ta");
  assert.deepEqual(conn.data, ["da", "ta"]);
  assert.equal(ch.remoteWindowLeft, 16);
  ch.write("12345678901");
  assert.deepEqual(conn.data, ["da", "ta", "1234567890", "1"]);
  assert.equal(ch.remoteWindowLeft, 5);
  ch.write("123456");
  assert.equal(ch.areWriting, false);
  assert.equal(ch.stops, 2);
  assert.deepEqual(conn.data, ["da", "ta", "1234567890", "1", "12345"]);
  assert.equal(ch.bufferedAmount, 1);
  assert.equal(ch.remoteWindowLeft, 0);
});

test("writeExtended keeps to the window, merges runs of one type and splits at max packet", () => {
  const { conn, ch } = setUp();
  ch.writeExtended(1, "d");
  ch.writeExtended(1, "a");
  ch.writeExtended(2, "t");
  assert.equal(ch.areWriting, false);
  assert.equal(ch.stops, 1);
  ch.addWindowBytes(20);
  ch.writeExtended(2, "a");
  assert.deepEqual(conn.extData, [[1, "da"], [2, "t"], [2, "a"]]);
  assert.equal(ch.remoteWindowLeft, 16);
  ch.writeExtended(3, "12345678901");
  assert.deepEqual(conn.extData.slice(3), [[3, "1234567890"], [3, "1"]]);
  assert.equal(ch.remoteWindowLeft, 5);
  ch.writeExtended(4, "123456");
  assert.equal(ch.areWriting, false);
  assert.deepEqual(conn.extData.slice(5), [[4, "12345"]]);
  assert.equal(ch.bufferedAmount, 1);
  assert.equal(ch.remoteWindowLeft, 0);
});

test("writeSequence writes the pieces in order", () => {
  const { conn, ch } = setUp();
  ch.addWindowBytes(20);
  ch.writeSequence(Array.from({ length: 10 }, (_, i) => String(i)));
  assert.equal(conn.data.join(""), "0123456789");
});

test("writeSequence of a short head and a body sends the head in the body's first packet", () => {
  const { conn, ch } = setUp();
  ch.addWindowBytes(20);
  const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);
  ch.writeSequence([bytes("h"), bytes("123456789012")]);
  assert.deepEqual(conn.data, ["h123456789", "012"]);
  assert.equal(ch.remoteWindowLeft, 7);
  // Beyond the window the pieces are written one by one and the rest waits.
  ch.writeSequence([bytes("H"), bytes("abcdefgh")]);
  assert.deepEqual(conn.data, ["h123456789", "012", "H", "abcdef"]);
  assert.equal(ch.bufferedAmount, 2);
});

test("loseConnection waits until data and extended data are sent", () => {
  const { conn, ch } = setUp();
  ch.write("data");
  ch.writeExtended(1, "datadata");
  ch.loseConnection();
  assert.equal(conn.closes, 0);
  assert.equal(ch.disconnecting, true);
  ch.addWindowBytes(4);
  assert.equal(conn.closes, 0);
  ch.addWindowBytes(8);
  assert.equal(conn.closes, 1);
});

test("getPeer and getHost come from the SSH transport", () => {
  const { ch, t } = setUp();
  assert.deepEqual(ch.getPeer(), t.getPeer());
  assert.deepEqual(ch.getHost(), t.getHost());
});

test("a streaming producer is paused while the window is full and resumed when it opens", () => {
  const { ch } = setUp();
  const calls: string[] = [];
  const producer: IPushProducer = {
    pauseProducing: () => calls.push("pause"),
    resumeProducing: () => calls.push("resume"),
    stopProducing: () => calls.push("stop"),
  };
  ch.addWindowBytes(5);
  ch.registerProducer(producer, true);
  ch.write("123456");
  assert.deepEqual(calls, ["pause"]);
  ch.addWindowBytes(100);
  assert.deepEqual(calls, ["pause", "resume"]);
  assert.throws(() => ch.registerProducer(producer, true), /already registered/);
  ch.unregisterProducer();
});

test("a pull producer is asked for data while the window is open", () => {
  const { conn, ch } = setUp();
  let n = 0;
  const producer: IPullProducer = {
    resumeProducing: () => {
      if (n < 3) ch.write(`chunk${n++}`);
    },
    stopProducing: () => undefined,
  };
  ch.addWindowBytes(100);
  ch.registerProducer(producer, false);
  assert.deepEqual(conn.data, ["chunk0", "chunk1", "chunk2"]);
});

test("a channel is an ITransport: a Protocol runs over it", () => {
  const { conn, ch } = setUp();
  ch.addWindowBytes(100);
  class Echo extends Protocol<ITransport> {
    override dataReceived(data: Uint8Array): void {
      this.transport.write(data);
    }
  }
  const p = new Echo();
  const transport: ITransport = ch;
  p.makeConnection(transport);
  p.dataReceived(new TextEncoder().encode("hello"));
  assert.deepEqual(conn.data, ["hello"]);
});
