/**
 * The server's login grace time (OpenSSH's LoginGraceTime, `DEFAULT_LOGIN_GRACE_TIME` = 120 s)
 * runs from the connection's start through every phase until authentication, whatever the client
 * does meanwhile: silence, a version line one byte a second, a key exchange left half done, failed
 * logins, a rekey. At exactly the grace time the server disconnects; after a login it never does.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Clock } from "@twisted-ts/internet/task";
import { common, transport } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import { FUZZ_PASSWORD, FUZZ_USER, handshakenPair, standaloneServer } from "../../_support/fuzz_ssh_pair.js";
import { OPENSSH_CLIENT_BOUNDARIES, OPENSSH_CLIENT_TO_NEWKEYS } from "../../_support/fuzz_corpus.js";

const GRACE = transport.DEFAULT_LOGIN_GRACE_TIME;
const { SSHWriter } = common;

/** Advances to just before the grace time, checks the connection is up, then to it. */
function expectCutAtGrace(clock: Clock, elapsed: number, isDown: () => boolean, grace = GRACE): void {
  clock.advance(grace - elapsed - 0.001);
  assert.equal(isDown(), false, "disconnected before the grace time");
  clock.advance(0.001);
  assert.equal(isDown(), true, "still connected at the grace time");
}

test("login grace: a client that sends nothing at all is disconnected at DEFAULT_LOGIN_GRACE_TIME (120 s)", () => {
  assert.equal(GRACE, 120);
  const { t, io, clock } = standaloneServer();
  expectCutAtGrace(clock, 0, () => io.disconnecting);
  assert.equal(t.disconnectReason?.reasonCode, error.DISCONNECT_BY_APPLICATION);
});

test("login grace: a version line trickled one byte a second does not restart the clock", () => {
  const { t, io, clock } = standaloneServer();
  const version = OPENSSH_CLIENT_TO_NEWKEYS.subarray(0, OPENSSH_CLIENT_BOUNDARIES.version - 2);
  let elapsed = 0;
  for (const byte of version) {
    t.dataReceived(Uint8Array.of(byte));
    clock.advance(1);
    elapsed += 1;
  }
  assert.equal(io.disconnecting, false);
  expectCutAtGrace(clock, elapsed, () => io.disconnecting);
});

test("login grace: a key exchange left after KEXINIT is cut at the grace time", () => {
  const { t, io, clock } = standaloneServer();
  clock.advance(10);
  t.dataReceived(OPENSSH_CLIENT_TO_NEWKEYS.subarray(0, OPENSSH_CLIENT_BOUNDARIES.kexinit));
  assert.equal(io.disconnecting, false);
  expectCutAtGrace(clock, 10, () => io.disconnecting);
});

test("login grace: a client that finished the key exchange but never logs in is cut at the grace time", () => {
  const { t, io, clock } = standaloneServer();
  t.dataReceived(OPENSSH_CLIENT_TO_NEWKEYS);
  assert.ok(t.isEncrypted("in"), "OpenSSH's recorded key exchange completed");
  expectCutAtGrace(clock, 0, () => io.disconnecting);
});

test("login grace: failed logins and a rekey before authentication do not extend it", () => {
  const p = handshakenPair("aes128-ctr", "hmac-sha2-256");
  const down = (): boolean => p.serverTransport.disconnecting || p.serverTransport.disconnected;
  p.client.sendPacket(transport.MSG_SERVICE_REQUEST, new SSHWriter().string("ssh-userauth").finish());
  p.pump.flush();
  let elapsed = 0;
  for (let i = 0; i < 3; i++) {
    p.clock.advance(20);
    elapsed += 20;
    p.client.sendPacket(50, new SSHWriter().string(FUZZ_USER).string("ssh-connection").string("password").boolean(false).string("wrong").finish());
    p.pump.flush();
  }
  p.client.sendKexInit();
  p.pump.flush();
  assert.equal(down(), false);
  assert.equal(p.server.avatar, undefined);
  p.clock.advance(GRACE - elapsed - 0.001);
  p.pump.flush();
  assert.equal(down(), false, "disconnected before the grace time");
  p.clock.advance(0.001);
  p.pump.flush();
  assert.ok(down(), "still connected at the grace time");
  assert.equal(p.server.disconnectReason?.reasonCode, error.DISCONNECT_BY_APPLICATION);
});

test("login grace: once the user is authenticated the grace timer is gone", () => {
  const p = handshakenPair("chacha20-poly1305@openssh.com", "hmac-sha2-256");
  p.clock.advance(GRACE - 1);
  p.client.sendPacket(transport.MSG_SERVICE_REQUEST, new SSHWriter().string("ssh-userauth").finish());
  p.client.sendPacket(50, new SSHWriter().string(FUZZ_USER).string("ssh-connection").string("password").boolean(false).string(FUZZ_PASSWORD).finish());
  p.pump.flush();
  assert.notEqual(p.server.avatar, undefined, "logged in");
  p.clock.advance(10 * GRACE);
  p.pump.flush();
  assert.equal(p.serverTransport.disconnecting, false);
  assert.equal(p.server.disconnectReason, undefined);
});

test("login grace: the setting is honoured (loginGraceTime = 5) and 0 turns it off", () => {
  const clock = new Clock();
  const short = standaloneServer(clock, (t) => (t.loginGraceTime = 5));
  const off = standaloneServer(clock, (t) => (t.loginGraceTime = 0));
  expectCutAtGrace(clock, 0, () => short.io.disconnecting, 5);
  clock.advance(100 * GRACE);
  assert.equal(off.io.disconnecting, false);
});
