/**
 * Regression (issue 11, found by test/interop/server_faults.test.ts): output a peer does not take
 * was buffered without bound. A client that stopped reading its socket while advertising a 4 GiB
 * window grew the server by 160 MB/s (`cat /dev/zero`), and one that started a rekey and never
 * finished it had every channel's output queued until NEWKEYS (430 MB in 3 s). The transport now
 * registers as the push producer of the socket under it and tells its service when output is
 * held (send buffer full, or a key exchange under way); the connection pauses its channels'
 * producers meanwhile, as the peer's window does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import type { IPushProducer } from "@twisted-ts/internet/interfaces";
import { channel, connection } from "@twisted-ts/conch/ssh";
import { attach } from "./_connection_fakes.js";
import { handshakenPair, standaloneServer } from "../../_support/fuzz_ssh_pair.js";

/** A push producer that records whether it is paused. */
function producer(): IPushProducer & { paused: boolean; pauses: number } {
  const p = {
    paused: false,
    pauses: 0,
    pauseProducing(): void {
      p.paused = true;
      p.pauses++;
    },
    resumeProducing(): void {
      p.paused = false;
    },
    stopProducing(): void {},
  };
  return p;
}

function openChannel(conn: connection.SSHConnection, remoteWindow = 1 << 20): channel.SSHChannel {
  const ch = new channel.SSHChannel({ conn, remoteWindow, remoteMaxPacket: 32768 });
  conn.channels.set(0, ch);
  return ch;
}

test("outputHeld: a channel's producer is paused while the transport holds output, and resumed after", () => {
  const conn = new connection.SSHConnection();
  attach(conn);
  const ch = openChannel(conn);
  const p = producer();
  ch.registerProducer(p, true);
  assert.equal(p.paused, false);
  conn.outputHeld(true);
  assert.equal(p.paused, true);
  conn.outputHeld(false);
  assert.equal(p.paused, false);
});

test("outputHeld: a producer registered while output is held starts paused", () => {
  const conn = new connection.SSHConnection();
  attach(conn);
  conn.outputHeld(true);
  const ch = openChannel(conn);
  const p = producer();
  ch.registerProducer(p, true);
  assert.equal(p.paused, true);
  conn.outputHeld(false);
  assert.equal(p.paused, false);
});

test("outputHeld: the peer's window and the transport both hold a producer; it resumes only when neither does", () => {
  const conn = new connection.SSHConnection();
  attach(conn);
  const ch = openChannel(conn, 4);
  const p = producer();
  ch.registerProducer(p, true);
  ch.write(new Uint8Array(10));
  assert.equal(p.paused, true, "the window is used up");
  conn.outputHeld(true);
  conn.outputHeld(false);
  assert.equal(p.paused, true, "the window is still full");
  conn.outputHeld(true);
  ch.addWindowBytes(100);
  assert.equal(p.paused, true, "the transport still holds output");
  conn.outputHeld(false);
  assert.equal(p.paused, false);
});

test("a server transport registers as its socket's push producer; pausing it holds the service's output", () => {
  const { t, io } = standaloneServer();
  assert.ok(io.producer !== null && io.streaming, "registered as a streaming producer");
  const held: boolean[] = [];
  t.setService(new (class extends connection.SSHConnection {
    override outputHeld(h: boolean): void {
      held.push(h);
      super.outputHeld(h);
    }
  })());
  // The first key exchange is still under way here: output is held from the start.
  assert.deepEqual(held, [true]);
});

test("a rekey holds the channels' producers until NEWKEYS, and a full send buffer holds them until it drains", () => {
  const p = handshakenPair("aes128-ctr", "hmac-sha2-256");
  const conn = new connection.SSHConnection();
  p.server.setService(conn);
  const ch = openChannel(conn);
  const prod = producer();
  ch.registerProducer(prod, true);
  p.client.sendKexInit();
  p.pump.pump();
  assert.equal(prod.paused, true, "paused while the key exchange runs");
  p.pump.flush();
  assert.equal(prod.paused, false, "resumed after NEWKEYS");
  const socket = p.serverTransport.producer as IPushProducer;
  socket.pauseProducing();
  assert.equal(prod.paused, true, "paused while the socket's buffer is full");
  socket.resumeProducing();
  assert.equal(prod.paused, false);
});
