/**
 * Issue 13: our client's forwarding through OpenSSH's sshd (started on 127.0.0.1 by the test):
 * local (`-L`), remote (`-R`, port 0) and dynamic (`-D`: SOCKS5 and SOCKS4a, by a small SOCKS
 * client here) forwarding, each carrying 64 MiB to a destination that reads to EOF and answers
 * with the SHA-256; 20 connections at once; a destination that shuts its write side first and
 * still receives; and a refused destination port, which closes the local socket (with a SOCKS
 * failure reply for SOCKS).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { connect as netConnect, createServer, type Server, type Socket } from "node:net";
import type { IListeningPort } from "@twisted-ts/internet/interfaces";
import { forwarding } from "@twisted-ts/conch/ssh";
import { startSshd } from "../_support/sshd.js";
import { connectClient, makeUserKey, within } from "./_client_support.js";

const MiB = 1024 * 1024;
const BULK = 64 * MiB;
const BLOCK = randomBytes(MiB);

/** SHA-256 of `n` bytes of the pattern (BLOCK repeated). */
function patternSha256(n: number): string {
  const h = createHash("sha256");
  for (let left = n; left > 0; left -= MiB) h.update(left >= MiB ? BLOCK : BLOCK.subarray(0, left));
  return h.digest("hex");
}

/** A loopback server (node:net) whose sockets are destroyed when the test ends. */
async function serve(t: TestContext, onSocket: (s: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = createServer({ allowHalfOpen: true }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onSocket(s);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return (server.address() as { port: number }).port;
}

/** Reads to EOF, then answers with the SHA-256 of what it read. */
const digestService = (s: Socket): void => {
  const h = createHash("sha256");
  s.on("data", (d: Buffer) => h.update(d));
  s.on("end", () => s.end(h.digest("hex") + "\n"));
};

/** A connected socket with everything it receives, and a promise of its close. */
interface Conn {
  socket: Socket;
  received: () => Buffer;
  closed: Promise<void>;
  /** Resolves at the peer's EOF (or close). */
  ended: Promise<void>;
  /** Resolves once `n` bytes have arrived (or the socket closed). */
  atLeast: (n: number) => Promise<Buffer>;
}

function open(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ port, host: "127.0.0.1", allowHalfOpen: true });
    const chunks: Buffer[] = [];
    let got = 0;
    const waiters: Array<() => void> = [];
    const received = (): Buffer => Buffer.concat(chunks);
    let closedFlag = false;
    const closed = new Promise<void>((r) => socket.on("close", () => ((closedFlag = true), r(), waiters.splice(0).forEach((w) => w()))));
    socket.on("data", (d: Buffer) => {
      chunks.push(d);
      got += d.length;
      waiters.splice(0).forEach((w) => w());
    });
    const ended = new Promise<void>((r) => {
      socket.on("end", () => r());
      socket.on("close", () => r());
    });
    const atLeast = (n: number): Promise<Buffer> =>
      new Promise((r) => {
        const check = (): void => (got >= n || closedFlag ? r(received()) : void waiters.push(check));
        check();
      });
    socket.once("error", reject);
    socket.once("connect", () => resolve({ socket, received, closed, ended, atLeast }));
  });
}

/** Resolves once `cond()` holds (polled; callers bound it with `within`). */
async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

/** Writes `n` bytes of the pattern with backpressure, then half-closes. */
async function sendPattern(socket: Socket, n: number): Promise<void> {
  for (let left = n; left > 0; left -= MiB) {
    const ok = socket.write(left >= MiB ? BLOCK : BLOCK.subarray(0, left));
    if (!ok) await new Promise((r) => socket.once("drain", r));
  }
  socket.end();
}

/** Sends `n` bytes through `c`, half-closes, and checks the SHA-256 answer. */
async function checkDigest(c: Conn, n: number, what: string, offset = 0): Promise<void> {
  await sendPattern(c.socket, n);
  await within(c.closed, 300_000, what);
  assert.equal(c.received().subarray(offset).toString(), patternSha256(n) + "\n", what);
}

/** A SOCKS5 CONNECT to `host:port` by domain name; resolves with the reply code. */
async function socks5(c: Conn, host: string, port: number): Promise<number> {
  c.socket.write(Uint8Array.of(5, 1, 0));
  assert.deepEqual([...(await c.atLeast(2)).subarray(0, 2)], [5, 0]);
  c.socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), Buffer.from(host), Buffer.from([port >> 8, port & 255])]));
  const reply = await within(c.atLeast(12), 60_000, "SOCKS5 reply");
  return reply[3]!;
}

/** A SOCKS4a CONNECT to `host:port`; resolves with the reply code (90 granted). */
async function socks4a(c: Conn, host: string, port: number): Promise<number> {
  c.socket.write(Buffer.concat([Buffer.from([4, 1, port >> 8, port & 255, 0, 0, 0, 1]), Buffer.from(`me\0${host}\0`)]));
  const reply = await within(c.atLeast(8), 60_000, "SOCKS4a reply");
  return reply[1]!;
}

test("our client's local, remote and dynamic forwarding through OpenSSH's sshd", async (t: TestContext) => {
  const key = await makeUserKey(t);
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], config: ["AllowTcpForwarding yes", "MaxSessions 64"], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const client = await connectClient({ port: sshd.port, user: sshd.user, key, hostKey: sshd.hostKeys.ed25519!, peerLog: sshd.output });
  t.after(() => client.close());
  const conn = client.conn;
  const digest = await serve(t, digestService);
  let halfCloserGot = "";
  const halfCloser = await serve(t, (s) => {
    s.end("hello\n");
    s.on("data", (d: Buffer) => (halfCloserGot += d.toString()));
    s.on("end", () => (halfCloserGot += "<EOF>"));
  });
  const listeners: IListeningPort[] = [];
  t.after(() => listeners.forEach((l) => void l.stopListening()));

  const local = await within(forwarding.localForward(conn, { port: 0 }, ["127.0.0.1", digest]).asPromise(), 30_000, "localForward");
  listeners.push(local);
  const localPort = local.getHost().port;

  await t.test("local forwarding carries 64 MiB to a destination that answers at EOF", async () => {
    await checkDigest(await open(localPort), BULK, "local 64 MiB");
  });

  await t.test("local forwarding carries 20 connections at once", async () => {
    const conns = await Promise.all(Array.from({ length: 20 }, () => open(localPort)));
    await Promise.all(conns.map((c, i) => checkDigest(c, MiB + i * 4099, `local connection ${i}`)));
  });

  await t.test("a destination that shuts its write side first still receives what comes after", async () => {
    const halfLocal = await forwarding.localForward(conn, { port: 0 }, ["127.0.0.1", halfCloser]).asPromise();
    listeners.push(halfLocal);
    const c = await open(halfLocal.getHost().port);
    assert.equal((await within(c.atLeast(6), 30_000, "greeting")).toString(), "hello\n");
    c.socket.end("after the destination's EOF");
    await within(c.closed, 30_000, "close after both EOFs");
    // The local socket closes once both EOFs are through; the destination gets its data soon after.
    await within(until(() => halfCloserGot.endsWith("<EOF>")), 30_000, "the destination's EOF");
    assert.equal(halfCloserGot, "after the destination's EOF<EOF>");
  });

  await t.test("a refused destination port (CHANNEL_OPEN_FAILURE from sshd) closes the local socket", async () => {
    const refusedLocal = await forwarding.localForward(conn, { port: 0 }, ["127.0.0.1", 1]).asPromise();
    listeners.push(refusedLocal);
    const c = await open(refusedLocal.getHost().port);
    await within(c.ended, 30_000, "local socket closed");
    assert.equal(c.received().length, 0);
  });

  await t.test("remote forwarding to port 0 carries 64 MiB; cancel-tcpip-forward stops it", async () => {
    const bound = await within(forwarding.remoteForward(conn, { port: 0 }, ["127.0.0.1", digest]).asPromise(), 30_000, "remoteForward");
    assert.ok(bound > 0);
    await checkDigest(await open(bound), BULK, "remote 64 MiB");
    await forwarding.cancelRemoteForward(conn, { port: bound }).asPromise();
    await assert.rejects(open(bound), /ECONNREFUSED/);
  });

  const socks = await forwarding.dynamicForward(conn, { port: 0 }).asPromise();
  listeners.push(socks);
  const socksPort = socks.getHost().port;

  await t.test("dynamic forwarding: SOCKS5 by host name carries 64 MiB", async () => {
    const c = await open(socksPort);
    assert.equal(await socks5(c, "localhost", digest), 0);
    await checkDigest(c, BULK, "SOCKS5 64 MiB", 12);
  });

  await t.test("dynamic forwarding: SOCKS4a carries 64 MiB", async () => {
    const c = await open(socksPort);
    assert.equal(await socks4a(c, "127.0.0.1", digest), 90);
    await checkDigest(c, BULK, "SOCKS4a 64 MiB", 8);
  });

  await t.test("dynamic forwarding: 20 SOCKS5 connections at once", async () => {
    const conns = await Promise.all(Array.from({ length: 20 }, () => open(socksPort)));
    await Promise.all(conns.map(async (c) => assert.equal(await socks5(c, "127.0.0.1", digest), 0)));
    await Promise.all(conns.map((c, i) => checkDigest(c, MiB + i * 4099, `SOCKS5 connection ${i}`, 12)));
  });

  await t.test("dynamic forwarding: a refused port gets 'connection refused' (SOCKS5) and 91 (SOCKS4a), then the socket closes", async () => {
    const c5 = await open(socksPort);
    assert.equal(await socks5(c5, "127.0.0.1", 1), forwarding.SOCKS5_CONNECTION_REFUSED);
    await within(c5.ended, 30_000, "SOCKS5 socket closed");
    const c4 = await open(socksPort);
    assert.equal(await socks4a(c4, "127.0.0.1", 1), forwarding.SOCKS4_REJECTED);
    await within(c4.ended, 30_000, "SOCKS4a socket closed");
  });

  await t.test("the session still works after all of it", async () => {
    const r = await client.exec("echo still here");
    assert.equal(r.stdout, "still here\n");
  });
});
