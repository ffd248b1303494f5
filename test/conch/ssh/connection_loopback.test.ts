/**
 * Two SSHConnections, client and server, joined through fake transports: the Conch client howto
 * flow, flow control and many channels at once, without any sockets.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { channel, common, connection } from "@twisted-ts/conch/ssh";
import { avatar } from "@twisted-ts/conch";
import { Pump, text, u32 } from "./_connection_fakes.js";

/** A server-side session that behaves like `exec cat`: echoes, then exit-status 0, EOF, CLOSE. */
class CatServerChannel extends channel.SSHChannel {
  override name = "session";
  static events: string[] = [];
  command = "";
  request_exec(data: Uint8Array): boolean {
    this.command = text(common.getNS(data)[0]!);
    return this.command === "cat";
  }
  override dataReceived(data: Uint8Array): void {
    this.write(data);
  }
  override eofReceived(): void {
    CatServerChannel.events.push("S eof");
    this.conn.sendRequest(this, "exit-status", u32(0));
    this.conn.sendEOF(this);
    this.loseConnection();
  }
  override closeReceived(): void {
    CatServerChannel.events.push("S closeReceived");
    super.closeReceived();
  }
  override closed(): void {
    CatServerChannel.events.push("S closed");
  }
}

class CatUser extends avatar.ConchUser {
  constructor() {
    super();
    this.channelLookup["session"] = CatServerChannel;
  }
}

/** The howto's CatChannel, as a user would port it. */
class CatChannel extends channel.SSHChannel {
  override name = "session";
  catData = "";
  result: string | undefined;
  exitStatus: number | undefined;

  override channelOpen(_data: Uint8Array): void {
    const d = this.conn.sendRequest(this, "exec", common.NS("cat"), true);
    d.addCallback(() => this._cbSendRequest());
    this.catData = "";
  }
  _cbSendRequest(): void {
    this.write('This data will be echoed back to us by "cat."\r\n');
    this.conn.sendEOF(this);
    this.loseConnection();
  }
  override dataReceived(data: Uint8Array): void {
    this.catData += text(data);
  }
  request_exit_status(data: Uint8Array): boolean {
    this.exitStatus = new DataView(data.buffer, data.byteOffset).getUint32(0);
    return true;
  }
  override closeReceived(): void {
    CatServerChannel.events.push("C closeReceived");
    super.closeReceived();
  }
  override closed(): void {
    CatServerChannel.events.push("C closed");
    this.result = `We got this from "cat": ${this.catData}`;
  }
}

class ClientConnection extends connection.SSHConnection {
  channel: CatChannel | undefined;
  override serviceStarted(): void {
    this.channel = new CatChannel({ conn: this });
    this.openChannel(this.channel);
  }
}

test("the howto flow: exec cat, write, EOF, close → 'We got this from \"cat\": …' in close order", () => {
  CatServerChannel.events = [];
  const server = new connection.SSHConnection();
  const client = new ClientConnection();
  const pump = new Pump(client, server, new CatUser());
  pump.flush();
  const ch = client.channel!;
  assert.equal(ch.result, 'We got this from "cat": This data will be echoed back to us by "cat."\r\n');
  assert.equal(ch.exitStatus, 0);
  assert.deepEqual(CatServerChannel.events, ["S eof", "S closeReceived", "S closed", "C closeReceived", "C closed"]);
  assert.equal(client.channels.size, 0);
  assert.equal(server.channels.size, 0);
});

test("CHANNEL_REQUEST: a refused exec fails the client's Deferred with 'channel request failed'", async () => {
  class BadExec extends CatChannel {
    failure: unknown;
    override channelOpen(): void {
      this.conn.sendRequest(this, "exec", common.NS("no-such-thing"), true).addErrback((f) => {
        this.failure = f.value;
        this.loseConnection();
      });
    }
  }
  const server = new connection.SSHConnection();
  const client = new connection.SSHConnection();
  const pump = new Pump(client, server, new CatUser());
  const ch = new BadExec({ conn: client });
  client.openChannel(ch);
  pump.flush();
  assert.match(String((ch.failure as Error).message), /channel request failed/);
});

/** A server channel that records the size of every data packet and echoes nothing. */
class SinkChannel extends channel.SSHChannel {
  override name = "sink";
  static last: SinkChannel | undefined;
  sizes: number[] = [];
  total = 0;
  constructor(options: channel.SSHChannelOptions) {
    super(options);
    SinkChannel.last = this;
  }
  override dataReceived(data: Uint8Array): void {
    this.sizes.push(data.length);
    this.total += data.length;
  }
}

class SmallWindowSink extends SinkChannel {
  constructor(options: channel.SSHChannelOptions) {
    super({ ...options, localWindow: 65536 });
  }
}

class SinkUser extends avatar.ConchUser {
  constructor() {
    super();
    this.channelLookup["sink"] = SinkChannel;
    this.channelLookup["small"] = SmallWindowSink;
  }
}

class Source extends channel.SSHChannel {
  opened = false;
  override channelOpen(): void {
    this.opened = true;
  }
}

function sinkPair(): { client: connection.SSHConnection; pump: Pump } {
  const server = new connection.SSHConnection();
  const client = new connection.SSHConnection();
  const pump = new Pump(client, server, new SinkUser());
  return { client, pump };
}

test("CHANNEL_DATA: 70000 bytes go out as 32768 + 32768 + 4464 packets", () => {
  const { client, pump } = sinkPair();
  const src = new Source({ conn: client });
  src.name = "sink";
  client.openChannel(src);
  pump.flush();
  src.write(new Uint8Array(70000).fill(0x61));
  pump.flush();
  assert.deepEqual(SinkChannel.last!.sizes, [32768, 32768, 4464]);
});

test("CHANNEL_WINDOW_ADJUST: with a 64 KiB window the sender stops at the window and resumes on adjust", () => {
  const { client, pump } = sinkPair();
  const src = new Source({ conn: client });
  src.name = "small";
  client.openChannel(src);
  pump.flush();
  assert.equal(src.remoteWindowLeft, 65536);
  const data = new Uint8Array(200000).map((_, i) => i & 0xff);
  src.write(data);
  // Nothing beyond the window left before the peer adjusted it.
  assert.equal(src.remoteWindowLeft, 0);
  assert.equal(src.bufferedAmount, 200000 - 65536);
  pump.flush();
  const sink = SinkChannel.last!;
  assert.equal(sink.total, 200000);
  assert.ok(sink.sizes.every((n) => n <= 32768));
  const adjusts = pump.trace.filter(([dir, n]) => dir === "s>c" && n === connection.MSG_CHANNEL_WINDOW_ADJUST).length;
  assert.ok(adjusts >= 3, `expected window adjusts, saw ${adjusts}`);
});

test("CHANNEL_DATA: a paused consumer stops window adjusts, so the sender holds the rest", () => {
  const { client, pump } = sinkPair();
  const src = new Source({ conn: client });
  src.name = "small";
  client.openChannel(src);
  pump.flush();
  const sink = SinkChannel.last!;
  sink.pauseProducing();
  src.write(new Uint8Array(1_000_000));
  pump.flush();
  // At most one window reached the paused side; the rest waits in the sender.
  assert.equal(sink.total, 65536);
  assert.equal(src.bufferedAmount, 1_000_000 - 65536);
  sink.resumeProducing();
  pump.flush();
  assert.equal(sink.total, 1_000_000);
  assert.equal(src.bufferedAmount, 0);
});

test("50 channels at once on one connection each get their own data back", () => {
  CatServerChannel.events = [];
  const server = new connection.SSHConnection();
  server.maxSessions = 50; // past OpenSSH's MaxSessions default of 10
  const client = new connection.SSHConnection();
  const pump = new Pump(client, server, new CatUser());
  const chans: CatChannel[] = [];
  for (let i = 0; i < 50; i++) {
    const ch = new (class extends CatChannel {
      override _cbSendRequest(): void {
        this.write(`channel ${i} `.repeat(1000 + i));
        this.conn.sendEOF(this);
        this.loseConnection();
      }
    })({ conn: client });
    chans.push(ch);
    client.openChannel(ch);
  }
  pump.flush();
  chans.forEach((ch, i) => {
    assert.equal(ch.catData, `channel ${i} `.repeat(1000 + i));
    assert.equal(ch.exitStatus, 0);
  });
  assert.equal(client.channels.size, 0);
  assert.equal(server.channels.size, 0);
});
