import { test } from "node:test";
import assert from "node:assert/strict";
import { connection, factory } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import { cat, FakeTransport, hex, Pump, type Packet } from "./_connection_fakes.js";

const { MSG_GLOBAL_REQUEST, MSG_REQUEST_FAILURE, MSG_REQUEST_SUCCESS } = connection;
const KEEPALIVE = hex(cat(new Uint8Array([0, 0, 0, 21]), "keepalive@openssh.com", new Uint8Array([1])));

function clientWithKeepalive(interval: number, countMax: number): { conn: connection.SSHConnection; t: FakeTransport } {
  const conn = new connection.SSHConnection();
  conn.keepaliveInterval = interval;
  conn.keepaliveCountMax = countMax;
  const t = new FakeTransport(true);
  conn.transport = t;
  conn.serviceStarted();
  return { conn, t };
}

const keepalives = (ps: Packet[]): number => ps.filter(([n, p]) => n === MSG_GLOBAL_REQUEST && hex(p) === KEEPALIVE).length;

test("keepalive: nothing is sent while the interval has not passed in silence", () => {
  const { t } = clientWithKeepalive(15, 3);
  t.clock.advance(14);
  assert.deepEqual(t.take(), []);
});

test("keepalive: a keepalive@openssh.com request with want-reply goes out after each interval of silence", () => {
  const { t } = clientWithKeepalive(15, 3);
  t.clock.advance(15);
  const first = t.take();
  assert.equal(first.length, 1);
  assert.equal(first[0]![0], MSG_GLOBAL_REQUEST);
  assert.equal(hex(first[0]![1]), KEEPALIVE);
  t.clock.advance(15);
  assert.equal(keepalives(t.take()), 1);
});

test("keepalive: the connection is dropped with a DISCONNECT after countMax unanswered keepalives", () => {
  const { conn, t } = clientWithKeepalive(1, 2);
  t.clock.advance(1);
  t.clock.advance(1);
  assert.equal(keepalives(t.take()), 2);
  assert.deepEqual(t.disconnects, []);
  assert.equal(conn.keepalive?.unanswered, 2);
  t.clock.advance(1);
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_CONNECTION_LOST, "Timeout, server not responding"]]);
  assert.equal(t.clock.getDelayedCalls().length, 0);
});

test("keepalive: a REQUEST_FAILURE answer resets the count, so the connection stays", () => {
  const { conn, t } = clientWithKeepalive(1, 2);
  for (let i = 0; i < 10; i++) {
    t.clock.advance(1);
    t.take();
    conn.packetReceived(MSG_REQUEST_FAILURE, new Uint8Array(0));
    assert.equal(conn.keepalive?.unanswered, 0);
  }
  assert.deepEqual(t.disconnects, []);
});

test("keepalive: a REQUEST_SUCCESS answer counts as an answer too", () => {
  const { conn, t } = clientWithKeepalive(1, 1);
  t.clock.advance(1);
  assert.equal(conn.keepalive?.unanswered, 1);
  conn.packetReceived(MSG_REQUEST_SUCCESS, new Uint8Array(0));
  assert.equal(conn.keepalive?.unanswered, 0);
  t.clock.advance(1);
  assert.deepEqual(t.disconnects, []);
});

test("keepalive: any packet from the peer restarts the silence", () => {
  const { conn, t } = clientWithKeepalive(10, 3);
  t.clock.advance(9);
  conn.packetReceived(MSG_REQUEST_FAILURE, new Uint8Array(0));
  t.clock.advance(9);
  assert.deepEqual(t.take(), []);
  t.clock.advance(1);
  assert.equal(keepalives(t.take()), 1);
});

test("keepalive: the timer stops with the service", () => {
  const { conn, t } = clientWithKeepalive(1, 3);
  conn.serviceStopped();
  assert.equal(t.clock.getDelayedCalls().length, 0);
  t.clock.advance(10);
  assert.deepEqual(t.take(), []);
});

test("keepalive: off by default on a client", () => {
  const conn = new connection.SSHConnection();
  const t = new FakeTransport(true);
  conn.transport = t;
  conn.serviceStarted();
  assert.equal(conn.keepalive, undefined);
  assert.equal(t.clock.getDelayedCalls().length, 0);
});

test("keepalive: a server takes ClientAliveInterval and ClientAliveCountMax from its factory", () => {
  const f = new factory.SSHFactory();
  assert.equal(f.clientAliveInterval, 0);
  f.clientAliveInterval = 5;
  f.clientAliveCountMax = 1;
  const conn = new connection.SSHConnection();
  const t = new FakeTransport(false);
  Object.defineProperty(t, "factory", { value: f });
  conn.transport = t;
  conn.serviceStarted();
  t.clock.advance(5);
  assert.equal(keepalives(t.take()), 1);
  t.clock.advance(5);
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_CONNECTION_LOST, "Timeout, client not responding"]]);
});

test("GLOBAL_REQUEST keepalive@openssh.com: both sides answer REQUEST_FAILURE, and the keepalive counts it as an answer", () => {
  const client = new connection.SSHConnection();
  client.keepaliveInterval = 1;
  client.keepaliveCountMax = 1;
  const server = new connection.SSHConnection();
  server.keepaliveInterval = 1;
  server.keepaliveCountMax = 1;
  const avatar = { conn: undefined, lookupChannel: () => undefined, lookupSubsystem: () => false, gotGlobalRequest: () => false };
  const pump = new Pump(client, server, avatar);
  for (let i = 0; i < 5; i++) {
    pump.clientTransport.clock.advance(1);
    pump.serverTransport.clock.advance(1);
    pump.flush();
  }
  assert.deepEqual(pump.clientTransport.disconnects, []);
  assert.deepEqual(pump.serverTransport.disconnects, []);
  const replies = pump.trace.filter(([, n]) => n === MSG_REQUEST_FAILURE).map(([dir]) => dir);
  assert.ok(replies.includes("c>s") && replies.includes("s>c"), JSON.stringify(pump.trace));
  assert.ok(!pump.trace.some(([, n]) => n === MSG_REQUEST_SUCCESS));
});
