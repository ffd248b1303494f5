/**
 * issue 13: forwarding through OUR server with OpenSSH's `ssh`: `-L`, `-R` and `-D` (driven by a
 * small SOCKS5 client here), and UNIX-socket forwarding both ways (`-L /local.sock:/remote.sock`,
 * `-R /r.sock:127.0.0.1:PORT`). Each carries 64 MiB with its SHA-256 checked, 20 connections at
 * once, and a half-close each way. The forwarding policy refuses what it forbids (ssh says so), a
 * refused destination closes the local socket, and a user who is not root cannot reach a socket
 * only root can. Last, our client's UNIX-socket forwarding through the real sshd.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { join } from "node:path";
import { unix } from "@twisted-ts/conch";
import { forwarding } from "@twisted-ts/conch/ssh";
import { freePort, requirePeer, tempDir } from "../_support/peers.js";
import { startSshd } from "../_support/sshd.js";
import { ensureTestUser } from "../_support/users.js";
import { connectClient, makeUserKey } from "./_client_support.js";
import { clientEnv, sshClientArgs, startOurServer, type OurServer, type ServerOptions } from "./_server_support.js";

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
const BIG = randomBytes(64 * 1024 * 1024);
const BIG_DIGEST = sha256(BIG);
const TIMEOUT = { timeout: 600_000 };

/** Where a service listens or a client connects: a TCP port on 127.0.0.1 or a UNIX socket path. */
type Where = number | string;
const dial = (w: Where): Socket => (typeof w === "number" ? connect({ port: w, host: "127.0.0.1", allowHalfOpen: true }) : connect({ path: w, allowHalfOpen: true }));

/**
 * A service that reads to EOF and answers with the hex SHA-256 of what it read; with `greetFirst`
 * it greets and shuts its write side at once, then reads to EOF. `seen()` lists the digests of
 * what finished connections read.
 */
async function service(t: TestContext, greetFirst = false, path?: string): Promise<{ where: Where; seen: string[] }> {
  const seen: string[] = [];
  const server = createServer({ allowHalfOpen: true }, (c) => {
    const hash = createHash("sha256");
    c.on("data", (d: Buffer) => hash.update(d));
    c.on("end", () => {
      const digest = hash.digest("hex");
      seen.push(digest);
      if (greetFirst) c.destroySoon();
      else c.end(digest);
    });
    c.on("error", () => undefined);
    if (greetFirst) c.end("hello\n");
  });
  await new Promise<void>((resolve) => (path === undefined ? server.listen(0, "127.0.0.1", resolve) : server.listen(path, resolve)));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { where: path ?? (server.address() as AddressInfo).port, seen };
}

/** Resolves with everything `s` sends until EOF (or a reset: "" so far). */
function readAll(s: Socket): Promise<string> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    s.on("data", (d: Buffer) => got.push(d));
    s.on("end", () => resolve(Buffer.concat(got).toString()));
    s.on("error", () => resolve(Buffer.concat(got).toString()));
    s.on("close", () => resolve(Buffer.concat(got).toString()));
  });
}

/** As `nc -N`: sends `data`, half-closes, reads the answer to EOF. */
async function ask(s: Socket, data: Uint8Array): Promise<string> {
  const answer = readAll(s);
  s.end(data);
  return answer;
}

/** Reads the greeting to EOF, then sends `data` and half-closes. */
async function readThenSend(s: Socket, data: Uint8Array): Promise<string> {
  const greeting = await readAll(s);
  s.end(data);
  await new Promise<void>((resolve) => s.once("close", () => resolve()));
  return greeting;
}

/** A SOCKS5 CONNECT to 127.0.0.1:port through the proxy at `proxy` (ssh -D), by domain name as curl's --socks5-hostname. */
async function socks5(proxy: number, port: number): Promise<Socket> {
  const s = dial(proxy);
  const read = (n: number): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const tryRead = (): void => {
        const b = s.read(n) as Buffer | null;
        if (b !== null) resolve(b);
        else s.once("readable", tryRead);
      };
      s.once("error", reject);
      tryRead();
    });
  await new Promise<void>((resolve, reject) => {
    s.once("connect", resolve);
    s.once("error", reject);
  });
  s.write(Buffer.from([5, 1, 0]));
  assert.deepEqual([...(await read(2))], [5, 0]);
  const host = Buffer.from("127.0.0.1");
  s.write(Buffer.concat([Buffer.from([5, 1, 0, 3, host.length]), host, Buffer.from([port >> 8, port & 0xff])]));
  const reply = await read(10);
  assert.equal(reply[1], 0, "SOCKS5 CONNECT succeeded");
  return s;
}

/** Resolves once ssh's stderr matches `pattern`; rejects if ssh exits first. */
function stderrMatches(child: ChildProcess, pattern: RegExp, text: { value: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = (): void => {
      if (pattern.test(text.value)) {
        child.stderr?.off("data", check);
        resolve();
      }
    };
    child.stderr?.on("data", check);
    child.once("exit", (code) => reject(new Error(`ssh exited (${code}) before ${pattern}:\n${text.value}`)));
    check();
  });
}

/** `ssh -v -N` with the forwarding `args`, resolved once ssh says it is in place; `stderr()` is what ssh said so far. */
async function sshForward(t: TestContext, server: OurServer, args: string[], exitOnFailure = true): Promise<{ child: ChildProcess; stderr: () => string }> {
  const bin = requirePeer(t, "ssh", "openssh-client")!;
  const opts = ["-v", "-N", "-o", `ExitOnForwardFailure=${exitOnFailure ? "yes" : "no"}`, ...args];
  const child = spawn(bin, [...sshClientArgs(server, opts), `${server.user}@127.0.0.1`], { env: clientEnv(server), stdio: ["ignore", "ignore", "pipe"] });
  t.after(() => void (child.exitCode === null && child.kill("SIGKILL")));
  const text = { value: "" };
  child.stderr!.on("data", (d: Buffer) => (text.value += d.toString()));
  const remote = args.includes("-R");
  await stderrMatches(child, remote ? /remote forward (success|failure)/ : /Entering interactive session/, text);
  return { child, stderr: () => text.value };
}

/**
 * The checks every forwarding passes, given how to open a forwarded stream to a service (`Where`):
 * 64 MiB with its SHA-256, 20 connections at once, and a half-close each way.
 */
async function checkForwarding(t: TestContext, open: (to: Where) => Promise<Socket>, unixPaths?: string): Promise<void> {
  const digest = await service(t, false, unixPaths === undefined ? undefined : join(unixPaths, "digest.sock"));
  assert.equal(await ask(await open(digest.where), BIG), BIG_DIGEST, "64 MiB arrive intact, and the answer after our EOF comes back");
  const slices = Array.from({ length: 20 }, (_, i) => BIG.subarray(i * 1024 * 1024, i * 1024 * 1024 + 256 * 1024 + i));
  const answers = await Promise.all(slices.map(async (slice) => ask(await open(digest.where), slice)));
  assert.deepEqual(answers, slices.map(sha256), "20 connections at once");
  const greeter = await service(t, true, unixPaths === undefined ? undefined : join(unixPaths, "greeter.sock"));
  const slice = BIG.subarray(0, 4 * 1024 * 1024);
  assert.equal(await readThenSend(await open(greeter.where), slice), "hello\n", "the destination's EOF arrives as EOF");
  for (let i = 0; i < 400 && greeter.seen.length === 0; i++) await new Promise((r) => setTimeout(r, 25));
  assert.deepEqual(greeter.seen, [sha256(slice)], "what is sent after the destination's EOF reaches it");
}

async function opened(s: Socket): Promise<Socket> {
  await new Promise<void>((resolve, reject) => {
    s.once("connect", resolve);
    s.once("error", reject);
  });
  return s;
}

/** Our server for one test, or undefined when OpenSSH's ssh is missing (skipped; failed under CI). */
async function ourServer(t: TestContext, opts: ServerOptions = {}): Promise<OurServer | undefined> {
  if (requirePeer(t, "ssh", "openssh-client") === undefined) return undefined;
  const server = await startOurServer(t, opts);
  t.after(() => assert.deepEqual(server.criticals(), [], "our server logged no unhandled error"));
  return server;
}

/**
 * Opens forwarded streams through ssh, one ssh per service: `forward(to, n)` gives the ssh
 * arguments for the n-th service and where the forward listens.
 */
function sshForwards(t: TestContext, server: OurServer, forward: (to: Where, n: number) => Promise<[args: string[], at: Where]>): (to: Where) => Promise<Socket> {
  const forwards = new Map<Where, Where>();
  return async (to) => {
    let at = forwards.get(to);
    if (at === undefined) {
      const [args, where] = await forward(to, forwards.size);
      await sshForward(t, server, args);
      forwards.set(to, (at = where));
    }
    return opened(dial(at));
  };
}

for (const flag of ["-L", "-R"] as const) {
  test(`issue 13: ssh ${flag} through our server: 64 MiB, 20 connections at once, half-close each way`, TIMEOUT, async (t) => {
    const server = await ourServer(t);
    if (server === undefined) return;
    await checkForwarding(t, sshForwards(t, server, async (to) => {
      const port = await freePort();
      return [[flag, `127.0.0.1:${port}:127.0.0.1:${String(to)}`], port];
    }));
  });
}

test("issue 13: ssh -D through our server, driven by a SOCKS5 client: 64 MiB, 20 connections at once, half-close each way", TIMEOUT, async (t) => {
  const server = await ourServer(t);
  if (server === undefined) return;
  const proxy = await freePort();
  await sshForward(t, server, ["-D", `127.0.0.1:${proxy}`]);
  await checkForwarding(t, async (to) => socks5(proxy, to as number));
});

test("issue 13: ssh -L /local.sock:/remote.sock through our server: 64 MiB, 20 connections at once, half-close each way", TIMEOUT, async (t) => {
  const server = await ourServer(t);
  if (server === undefined) return;
  const dir = tempDir(t, "twts-fwd-");
  const forward = sshForwards(t, server, async (to, n) => [["-L", `${join(dir, `local${n}.sock`)}:${String(to)}`], join(dir, `local${n}.sock`)]);
  await checkForwarding(t, forward, dir);
});

test("issue 13: ssh -R /r.sock:127.0.0.1:PORT through our server: 64 MiB, 20 connections at once, half-close each way", TIMEOUT, async (t) => {
  const server = await ourServer(t);
  if (server === undefined) return;
  const dir = tempDir(t, "twts-fwd-");
  const forward = sshForwards(t, server, async (to, n) => [["-R", `${join(dir, `r${n}.sock`)}:127.0.0.1:${String(to)}`], join(dir, `r${n}.sock`)]);
  await checkForwarding(t, forward);
});

test("issue 13: what the policy forbids is refused and ssh says so (AllowTcpForwarding, PermitOpen, AllowStreamLocalForwarding)", TIMEOUT, async (t) => {
  const digest = await service(t);
  const allowed = await service(t);
  const server = await ourServer(t, { forwardingPolicy: { allowTcpForwarding: "local", permitOpen: [`127.0.0.1:${String(allowed.where)}`], allowStreamLocalForwarding: "no" } });
  if (server === undefined) return;
  const listen = await freePort();
  const other = await freePort();
  const l = await sshForward(t, server, ["-L", `127.0.0.1:${listen}:127.0.0.1:${String(digest.where)}`, "-L", `127.0.0.1:${other}:127.0.0.1:${String(allowed.where)}`]);
  assert.equal(await ask(await opened(dial(listen)), Buffer.from("x")), "", "the local socket is closed without an answer");
  for (let i = 0; i < 400 && !/administratively prohibited/.test(l.stderr()); i++) await new Promise((r) => setTimeout(r, 25));
  assert.match(l.stderr(), /open failed: administratively prohibited: 127\.0\.0\.1:\d+ is not a PermitOpen destination/);
  assert.equal(await ask(await opened(dial(other)), Buffer.from("x")), sha256(Buffer.from("x")), "a PermitOpen destination is reached");
  const r = await sshForward(t, server, ["-R", `127.0.0.1:${await freePort()}:127.0.0.1:${String(digest.where)}`], false);
  assert.match(r.stderr(), /remote forward failure/);
  const dir = tempDir(t, "twts-fwd-");
  const s = await sshForward(t, server, ["-R", `${join(dir, "r.sock")}:127.0.0.1:${String(digest.where)}`], false);
  assert.match(s.stderr(), /remote forward failure/);
  assert.match(server.logText(), /refused streamlocal-forward@openssh\.com request .* by the forwarding policy: remote stream-local forwarding is not permitted/);
});

test("issue 13: ssh -L to a port nothing listens on: channel-open failure (connect failed), and the local socket is closed", TIMEOUT, async (t) => {
  const server = await ourServer(t);
  if (server === undefined) return;
  const listen = await freePort();
  const closed = await freePort();
  const l = await sshForward(t, server, ["-L", `127.0.0.1:${listen}:127.0.0.1:${closed}`]);
  assert.equal(await ask(await opened(dial(listen)), Buffer.from("x")), "");
  for (let i = 0; i < 400 && !/open failed/.test(l.stderr()); i++) await new Promise((r) => setTimeout(r, 25));
  assert.match(l.stderr(), new RegExp(`open failed: connect failed: connect to 127\\.0\\.0\\.1:${closed} failed`));
  assert.match(server.logText(), /failed to connect to 127\.0\.0\.1:\d+/);
});

test("issue 13: direct-streamlocal as twts-alice (our server as root) to a socket only root can reach is refused; to hers 64 MiB go through", TIMEOUT, async (t) => {
  const account = ensureTestUser(t);
  if (account === undefined) return;
  const dir = tempDir(t, "twts-fwd-");
  chmodSync(dir, 0o755);
  const rootOnly = join(dir, "root");
  mkdirSync(rootOnly, { mode: 0o700 });
  const secret = await service(t, false, join(rootOnly, "secret.sock"));
  const open = await service(t, false, join(dir, "open.sock"));
  chmodSync(open.where as string, 0o666);
  const server = await ourServer(t, { user: account.name, unixOptions: { lookupUser: unix.getpwnam } });
  if (server === undefined) return;
  const local = join(tempDir(t, "twts-fwd-"), "l.sock");
  const local2 = `${local}2`;
  const l = await sshForward(t, server, ["-L", `${local}:${String(secret.where)}`, "-L", `${local2}:${String(open.where)}`]);
  assert.equal(await ask(await opened(dial(local)), Buffer.from("x")), "", "refused: closed without an answer");
  for (let i = 0; i < 400 && !/open failed/.test(l.stderr()); i++) await new Promise((r) => setTimeout(r, 25));
  assert.match(l.stderr(), /open failed: connect failed: connect to \S+secret\.sock failed: .*EACCES/);
  assert.deepEqual(secret.seen, [], "nothing reached root's socket");
  assert.match(server.logText(), /EACCES/);
  assert.equal(await ask(await opened(dial(local2)), BIG), BIG_DIGEST, "64 MiB through alice's relay");
});

test("issue 13: our client's UNIX-socket forwarding through OpenSSH's sshd both ways: 64 MiB and half-close", TIMEOUT, async (t) => {
  const key = await makeUserKey(t);
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const client = await connectClient({ port: sshd.port, user: sshd.user, key, hostKey: sshd.hostKeys["ed25519"], peerLog: sshd.output });
  t.after(() => client.close());
  const dir = tempDir(t, "twts-fwd-");
  // -L: our listener, sshd connects to the socket path.
  const digest = await service(t, false, join(dir, "digest.sock"));
  const local = await forwarding.localStreamForward(client.conn, join(dir, "local.sock"), { path: digest.where as string });
  t.after(() => local.stopListening());
  assert.equal(await ask(await opened(dial(join(dir, "local.sock"))), BIG), BIG_DIGEST);
  const greeter = await service(t, true, join(dir, "greeter.sock"));
  const toGreeter = await forwarding.localStreamForward(client.conn, join(dir, "local2.sock"), { path: greeter.where as string });
  t.after(() => toGreeter.stopListening());
  assert.equal(await readThenSend(await opened(dial(join(dir, "local2.sock"))), BIG.subarray(0, 1 << 20)), "hello\n");
  // -R: sshd listens on the path, we connect to a TCP service.
  const tcp = await service(t);
  const remote = join(dir, "remote.sock");
  await forwarding.remoteStreamForward(client.conn, remote, ["127.0.0.1", tcp.where as number]);
  assert.equal(await ask(await opened(dial(remote)), BIG), BIG_DIGEST);
  await forwarding.cancelRemoteStreamForward(client.conn, remote);
  writeFileSync(join(dir, "done"), "");
});
