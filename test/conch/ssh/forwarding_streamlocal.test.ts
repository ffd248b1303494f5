/**
 * issue 13: UNIX-socket forwarding (OpenSSH PROTOCOL §2.4) between our client functions and the
 * Unix realm's server, over two in-memory connections with real sockets at the ends: data, half-close
 * both ways, the socket file's mode and removal, and, with the server as root, sockets opened as the
 * logged-in user (twts-alice) through the relay.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Server } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { addObserver, formatEvent, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { error, unix } from "@twisted-ts/conch";
import { common, connection, forwarding } from "@twisted-ts/conch/ssh";
import { cat, Pump, RecordingChannel, u32 } from "./_connection_fakes.js";
import { ensureTestUser } from "../../_support/users.js";

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
const PAYLOAD = randomBytes(4 * 1024 * 1024 + 17);

function tempDir(t: TestContext, mode = 0o755): string {
  const dir = mkdtempSync(join(tmpdir(), "twts-sl-test-"));
  chmodSync(dir, mode);
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A server (UNIX path or TCP port 0 on 127.0.0.1) that reads to EOF and answers with the SHA-256 of what it read. */
async function digestServer(t: TestContext, path?: string): Promise<{ server: Server; port: number }> {
  const server = createServer({ allowHalfOpen: true }, (c) => {
    const hash = createHash("sha256");
    c.on("data", (d: Buffer) => hash.update(d));
    c.on("end", () => c.end(hash.digest("hex")));
    c.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => (path === undefined ? server.listen(0, "127.0.0.1", resolve) : server.listen(path, resolve)));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { server, port: path === undefined ? (server.address() as AddressInfo).port : 0 };
}

/** As `nc -N -U`: sends `data`, half-closes, reads the answer to EOF. */
function ask(path: string, data: Uint8Array): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path, allowHalfOpen: true });
    const got: Buffer[] = [];
    s.on("data", (d: Buffer) => got.push(d));
    s.on("end", () => {
      s.end();
      resolve(Buffer.concat(got).toString());
    });
    s.on("error", reject);
    s.on("connect", () => s.end(data));
  });
}

/** Keeps the log lines of the test. */
function logLines(t: TestContext): string[] {
  const lines: string[] = [];
  const obs = (e: LogEvent): void => void lines.push(formatEvent(e) ?? "");
  addObserver(obs);
  t.after(() => removeObserver(obs));
  return lines;
}

/** Our client and the Unix realm's server for `user`, joined in memory and pumped on the event loop until the test ends. */
function session(t: TestContext, user: unix.UnixConchUser): { client: connection.SSHConnection; pump: Pump } {
  const client = new connection.SSHConnection();
  const pump = new Pump(client, new connection.SSHConnection(), user);
  const timer = setInterval(() => pump.flush(), 1);
  t.after(() => {
    clearInterval(timer);
    user.logout();
  });
  return { client, pump };
}

function rootUser(home: string): unix.UnixConchUser {
  const me = userInfo();
  return new unix.UnixConchUser(me.username, { lookupUser: () => ({ name: me.username, uid: me.uid, gid: me.gid, home, shell: "/bin/sh" }) });
}

test("direct-streamlocal: localStreamForward carries data to a socket on the server, and the answer after our EOF comes back", async (t) => {
  const dir = tempDir(t);
  await digestServer(t, join(dir, "remote.sock"));
  const { client } = session(t, rootUser(dir));
  const port = await forwarding.localStreamForward(client, join(dir, "local.sock"), { path: join(dir, "remote.sock") });
  t.after(() => port.stopListening());
  const answers = await Promise.all([ask(join(dir, "local.sock"), PAYLOAD), ask(join(dir, "local.sock"), PAYLOAD.subarray(0, 1000))]);
  assert.deepEqual(answers, [sha256(PAYLOAD), sha256(PAYLOAD.subarray(0, 1000))]);
  await port.stopListening();
  assert.equal(existsSync(join(dir, "local.sock")), false, "the listening socket file is removed");
});

test("direct-tcpip from a local UNIX socket: localStreamForward to a host and port", async (t) => {
  const dir = tempDir(t);
  const { port: tcpPort } = await digestServer(t);
  const { client } = session(t, rootUser(dir));
  const port = await forwarding.localStreamForward(client, join(dir, "local.sock"), ["127.0.0.1", tcpPort]);
  t.after(() => port.stopListening());
  assert.equal(await ask(join(dir, "local.sock"), PAYLOAD), sha256(PAYLOAD));
});

test("streamlocal-forward: the server listens on the path (mode 0600), forwards each connection back, and removes the file on cancel", async (t) => {
  const dir = tempDir(t);
  const { port: tcpPort } = await digestServer(t);
  const { client } = session(t, rootUser(dir));
  const remote = join(dir, "r.sock");
  await forwarding.remoteStreamForward(client, remote, ["127.0.0.1", tcpPort]);
  assert.equal(statSync(remote).mode & 0o777, 0o600, "StreamLocalBindMask 0177");
  const answers = await Promise.all(Array.from({ length: 5 }, (_, i) => ask(remote, PAYLOAD.subarray(i * 1000))));
  assert.deepEqual(answers, Array.from({ length: 5 }, (_, i) => sha256(PAYLOAD.subarray(i * 1000))));
  await assert.rejects(forwarding.remoteStreamForward(client, remote, ["127.0.0.1", tcpPort]), /request failed|GlobalRequestFailed/i, "the same path twice is refused");
  await forwarding.cancelRemoteStreamForward(client, remote);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(existsSync(remote), false);
});

test("streamlocal-forward: a file already at the path is refused unless StreamLocalBindUnlink, and a socket path forwards to a socket path", async (t) => {
  const dir = tempDir(t);
  const remote = join(dir, "taken.sock");
  writeFileSync(remote, "");
  const lines = logLines(t);
  const user = rootUser(dir);
  const { client } = session(t, user);
  await assert.rejects(forwarding.remoteStreamForward(client, remote, { path: join(dir, "dest.sock") }));
  assert.ok(lines.some((l) => l.includes("streamlocal-forward") && l.includes("EADDRINUSE")), lines.join("\n"));
  rmSync(remote);
  // A stale socket file (its listener gone without removing it), which StreamLocalBindUnlink is for.
  execFileSync("python3", ["-c", "import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])", remote]);
  await assert.rejects(forwarding.remoteStreamForward(client, remote, { path: join(dir, "dest.sock") }), "a stale socket is refused too");
  const unlinking = new (class extends unix.UnixConchUser {
    override getForwardingPolicy(): forwarding.ForwardingPolicy {
      return forwarding.forwardingPolicy({ streamLocalBindUnlink: true });
    }
  })(user.username, user.options);
  const other = session(t, unlinking);
  await digestServer(t, join(dir, "dest.sock"));
  await forwarding.remoteStreamForward(other.client, remote, { path: join(dir, "dest.sock") });
  assert.equal(await ask(remote, PAYLOAD), sha256(PAYLOAD));
  unlinking.logout();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(existsSync(remote), false, "the socket file goes at logout");
});

test("direct-streamlocal as twts-alice under a root server: a socket only root can reach is refused, one alice can reach works", async (t) => {
  const account = ensureTestUser(t);
  if (account === undefined) return;
  const lines = logLines(t);
  const rootOnly = tempDir(t, 0o700);
  await digestServer(t, join(rootOnly, "secret.sock"));
  const shared = tempDir(t, 0o755);
  await digestServer(t, join(shared, "open.sock"));
  chmodSync(join(shared, "open.sock"), 0o666);
  const alice = new unix.UnixConchUser(account.name, { lookupUser: unix.getpwnam });
  const { client } = session(t, alice);
  const listenDir = tempDir(t);
  const toSecret = await forwarding.localStreamForward(client, join(listenDir, "a.sock"), { path: join(rootOnly, "secret.sock") });
  t.after(() => toSecret.stopListening());
  assert.equal(await ask(join(listenDir, "a.sock"), PAYLOAD.subarray(0, 100)), "", "closed without an answer");
  assert.ok(lines.some((l) => /EACCES/.test(l)), lines.join("\n"));
  const toOpen = await forwarding.localStreamForward(client, join(listenDir, "b.sock"), { path: join(shared, "open.sock") });
  t.after(() => toOpen.stopListening());
  assert.equal(await ask(join(listenDir, "b.sock"), PAYLOAD), sha256(PAYLOAD));
  const slices = Array.from({ length: 10 }, (_, i) => PAYLOAD.subarray(i * 100_000, i * 100_000 + 50_000 + i));
  assert.deepEqual(await Promise.all(slices.map((b) => ask(join(listenDir, "b.sock"), b))), slices.map(sha256), "10 at once through the relay");
  assert.equal(lines.filter((l) => l.includes("UNIX-socket relay started")).length, 1, "one relay for the login");
});

test("streamlocal-forward as twts-alice under a root server: the socket is alice's, a directory she cannot write is refused, logout removes it", async (t) => {
  const account = ensureTestUser(t);
  if (account === undefined) return;
  const { port: tcpPort } = await digestServer(t);
  const rootOnly = tempDir(t, 0o755);
  const hers = tempDir(t, 0o755);
  chmodSync(hers, 0o777);
  const alice = new unix.UnixConchUser(account.name, { lookupUser: unix.getpwnam });
  const { client } = session(t, alice);
  await assert.rejects(forwarding.remoteStreamForward(client, join(rootOnly, "r.sock"), ["127.0.0.1", tcpPort]));
  assert.equal(existsSync(join(rootOnly, "r.sock")), false);
  const remote = join(hers, "r.sock");
  await forwarding.remoteStreamForward(client, remote, ["127.0.0.1", tcpPort]);
  const st = statSync(remote);
  assert.equal(st.uid, account.uid, "owned by alice");
  assert.equal(st.mode & 0o777, 0o600);
  assert.equal(await ask(remote, PAYLOAD), sha256(PAYLOAD));
  const second = join(hers, "r2.sock");
  await forwarding.remoteStreamForward(client, second, ["127.0.0.1", tcpPort]);
  await forwarding.cancelRemoteStreamForward(client, second);
  for (let i = 0; i < 400 && existsSync(second); i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(existsSync(second), false, "removed (by alice's relay) on cancel");
  alice.logout();
  for (let i = 0; i < 400 && existsSync(remote); i++) await new Promise((r) => setTimeout(r, 25));
  assert.equal(existsSync(remote), false, "removed (by alice's relay) at logout");
});

test("direct-streamlocal and streamlocal-forward: a bad or short path is refused and the session carries on", async (t) => {
  const dir = tempDir(t);
  const { client, pump } = session(t, rootUser(dir));
  const opens = [common.NS(""), cat(common.NS("/tmp/a\0b"), common.NS(""), u32(0)), common.NS("/tmp/x").subarray(0, 5)];
  const channels = opens.map((data) => {
    const ch = new RecordingChannel({ conn: client });
    ch.name = "direct-streamlocal@openssh.com";
    client.openChannel(ch, data);
    return ch;
  });
  await pump.until(() => channels.every((c) => c.events.includes("openFailed")));
  assert.match(String((channels[1]!.failure as error.ConchError).value), /bad socket path/);
  const refused = client.sendGlobalRequest("streamlocal-forward@openssh.com", common.NS("/tmp/" + "y".repeat(200)), true);
  await assert.rejects(Promise.resolve(refused), error.GlobalRequestFailedError);
  await forwarding.remoteStreamForward(client, join(dir, "still.sock"), ["127.0.0.1", 9]);
  assert.equal(pump.serverTransport.disconnects.length, 0);
});
