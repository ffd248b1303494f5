/**
 * Regression (issue 11, found while fault-testing stalled rekeys): messages held back during a
 * key exchange (RFC 4253 §7.1) were queued without bound. Before any login, a client could finish
 * the first exchange, start a rekey, never finish it, and send USERAUTH_REQUEST "none" for ever:
 * every USERAUTH_FAILURE waited in memory (200,000 requests, 170 MiB). Past
 * `maxKexQueueBytes` (MAX_KEX_QUEUE_BYTES, 32 MiB; each message counts its payload plus
 * KEX_QUEUE_MESSAGE_OVERHEAD) the peer is now cut off with PROTOCOL_ERROR.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { common, transport } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import { FUZZ_USER, handshakenPair, type FuzzPair } from "../../_support/fuzz_ssh_pair.js";

const { SSHWriter } = common;

/** A pair whose client asked for ssh-userauth, then started a rekey that it never carries on. */
function stalledRekey(configure: (p: FuzzPair) => void = () => undefined): FuzzPair {
  const p = handshakenPair("aes128-ctr", "hmac-sha2-256");
  configure(p);
  p.client.sendPacket(transport.MSG_SERVICE_REQUEST, new SSHWriter().string("ssh-userauth").finish());
  p.pump.flush();
  (p.client as unknown as { startKeyExchange(): void }).startKeyExchange = () => undefined;
  p.client.sendKexInit();
  p.pump.flush();
  assert.ok(p.server.keyExchangeInProgress);
  return p;
}

/** Sends past the client's own key-exchange queue, as a hostile client does. */
function sendNow(p: FuzzPair, num: number, payload: Uint8Array): void {
  (p.client as unknown as { writePacket(n: number, b: Uint8Array): void }).writePacket(num, payload);
}

test("MAX_KEX_QUEUE_BYTES: the default is 32 MiB, with 256 bytes counted per message", () => {
  assert.equal(transport.MAX_KEX_QUEUE_BYTES, 32 * 1024 * 1024);
  assert.equal(transport.KEX_QUEUE_MESSAGE_OVERHEAD, 256);
  assert.equal(stalledRekey().server.maxKexQueueBytes, transport.MAX_KEX_QUEUE_BYTES);
});

test("maxKexQueueBytes: USERAUTH_REQUEST \"none\" sent for ever during a stalled rekey gets the client cut off, before any login", () => {
  const p = stalledRekey((q) => (q.server.maxKexQueueBytes = 64 * 1024));
  const none = new SSHWriter().string(FUZZ_USER).string("ssh-connection").string("none").finish();
  let sent = 0;
  while (!p.serverTransport.disconnecting && sent < 10_000) {
    sendNow(p, 50, none);
    p.pump.pump();
    sent++;
  }
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_PROTOCOL_ERROR);
  assert.match(p.server.disconnectReason?.description ?? "", /more than 65536 bytes of messages waiting for the key exchange/);
  // Each refusal counts about 256 + 40 bytes: the cut comes after roughly 220 of them.
  assert.ok(sent > 150 && sent < 300, `cut off after ${sent} requests`);
});

test("maxKexQueueBytes: the default limit is hit by the 32nd 1 MiB message queued during a stalled rekey, not the 31st", () => {
  const p = stalledRekey();
  const mib = new Uint8Array(1024 * 1024);
  const reason = (): number | undefined => p.server.disconnectReason?.reasonCode;
  for (let i = 1; i <= 31; i++) p.server.sendPacket(94, mib);
  assert.equal(reason(), undefined);
  p.server.sendPacket(94, mib);
  assert.equal(reason(), error.DISCONNECT_PROTOCOL_ERROR);
});

test("maxKexQueueBytes: exactly the limit may wait; at NEWKEYS it goes out and the count starts again", () => {
  const p = handshakenPair("chacha20-poly1305@openssh.com", "hmac-sha2-256");
  // Three 95-byte payloads fill the limit exactly, in each of two rekeys.
  p.server.maxKexQueueBytes = 3 * (95 + transport.KEX_QUEUE_MESSAGE_OVERHEAD);
  for (let round = 0; round < 2; round++) {
    p.client.sendKexInit();
    p.pump.pump();
    assert.ok(p.server.keyExchangeInProgress);
    for (let i = 0; i < 3; i++) p.server.sendPacket(94, new Uint8Array(95).fill(i));
    p.pump.flush();
    assert.equal(p.server.keyExchangeInProgress, false);
  }
  assert.equal(p.server.disconnectReason, undefined);
});
