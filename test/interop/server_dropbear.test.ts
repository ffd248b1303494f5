/**
 * Dropbear's client `dbclient` against OUR server: publickey (the ed25519 key converted with
 * `dropbearconvert`) and password (DROPBEAR_PASSWORD) logins with the host key pinned in
 * ~/.ssh/known_hosts, exec with stdin/stdout/stderr and exit codes, a missing command (127), a
 * shell without a pty, a pty shell (in-process realm), and 2 MiB through `cat`.
 *
 * dbclient sends its first key exchange packet with its KEXINIT (first_kex_packet_follows). Our
 * default KEXINIT starts with mlkem768x25519-sha256, which dbclient 2022.83 lacks, so by RFC 4253
 * §7 its guess is wrong and the server must ignore that packet (the last test). The other tests
 * offer curve25519-sha256 first, where the guess is right.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { transport } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand } from "../_support/peers.js";
import { TERMINAL_SHELL, clientEnv, startOurServer, type OurServer, type ServerOptions } from "./_server_support.js";

/** Our default key exchanges with curve25519-sha256 (dbclient's first choice) moved first. */
const CURVE_FIRST = ["curve25519-sha256", ...transport.DEFAULT_KEY_EXCHANGES.filter((k) => k !== "curve25519-sha256")];

interface Dropbear {
  server: OurServer;
  bin: string;
  key: string;
}

async function setUp(t: TestContext, opts: ServerOptions = {}): Promise<Dropbear | undefined> {
  const bin = requirePeer(t, "dbclient", "dropbear-bin");
  const convert = requirePeer(t, "dropbearconvert", "dropbear-bin");
  if (bin === undefined || convert === undefined) return undefined;
  const server = await startOurServer(t, { keyExchanges: CURVE_FIRST, ...opts });
  // dbclient's known_hosts names the host without the port.
  mkdirSync(join(server.dir, ".ssh"), { recursive: true });
  writeFileSync(join(server.dir, ".ssh", "known_hosts"), Object.values(server.hostKeys).map((k) => `127.0.0.1 ${k.public().toString("openssh")}\n`).join(""));
  const key = join(server.dir, "id_dropbear");
  const c = await runCommand(convert, ["openssh", "dropbear", server.keyPath, key]);
  assert.equal(c.code, 0, c.stderr);
  return { server, bin, key };
}

async function dbclient(d: Dropbear, args: string[], opts: { input?: Uint8Array | string; env?: NodeJS.ProcessEnv } = {}) {
  const r = await runCommand(d.bin, ["-p", String(d.server.port), ...args], {
    env: clientEnv(d.server, opts.env),
    timeoutMs: 30_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { ...r, out: r.stdout.toString() };
}

test("dbclient exec by publickey: stdin, stdout, stderr and the exit code; a missing command exits 127", async (t) => {
  const d = await setUp(t);
  if (d === undefined) return;
  const r = await dbclient(d, ["-i", d.key, `${d.server.user}@127.0.0.1`, 'read line; echo "got $line"; echo oops >&2; exit 3'], { input: "hello\n" });
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.out, "got hello\n");
  assert.match(r.stderr, /^oops$/m);
  const missing = await dbclient(d, ["-i", d.key, `${d.server.user}@127.0.0.1`, "no-such-command-dropbear"]);
  assert.equal(missing.code, 127, missing.stderr);
  assert.match(missing.stderr, /no-such-command-dropbear: .*not found/);
  assert.deepEqual(d.server.loginMethods(), ["publickey", "publickey"]);
  assert.deepEqual(d.server.criticals(), []);
});

test("dbclient by password (DROPBEAR_PASSWORD), a shell without a pty, and 2 MiB through cat", async (t) => {
  const d = await setUp(t);
  if (d === undefined) return;
  const pw = await dbclient(d, [`${d.server.user}@127.0.0.1`, "echo by-password"], { env: { DROPBEAR_PASSWORD: d.server.password } });
  assert.equal(pw.code, 0, pw.stderr);
  assert.equal(pw.out, "by-password\n");
  const shell = await dbclient(d, ["-T", "-i", d.key, `${d.server.user}@127.0.0.1`], { input: "echo from-shell\nexit 6\n" });
  assert.equal(shell.code, 6, shell.stderr);
  assert.equal(shell.out, "from-shell\n");
  const blob = randomBytes(2 * 1024 * 1024);
  const bulk = await dbclient(d, ["-i", d.key, `${d.server.user}@127.0.0.1`, "cat"], { input: blob });
  assert.equal(bulk.code, 0, bulk.stderr);
  assert.equal(createHash("sha256").update(bulk.stdout).digest("hex"), createHash("sha256").update(blob).digest("hex"));
  // With a password and no key, dbclient tries keyboard-interactive before password.
  assert.deepEqual(d.server.loginMethods(), ["keyboard-interactive", "publickey", "publickey"]);
});

test("dbclient -t (under script(1), which gives it a terminal): a pty shell on the in-process realm", async (t) => {
  const d = await setUp(t, TERMINAL_SHELL);
  const script = requirePeer(t, "script", "bsdutils");
  if (d === undefined || script === undefined) return;
  const cmd = [d.bin, "-t", "-p", String(d.server.port), "-i", d.key, `${d.server.user}@127.0.0.1`].join(" ");
  const r = await runCommand(script, ["-qec", cmd, "/dev/null"], {
    input: "hello pty\rexit\r",
    env: clientEnv(d.server, { TERM: "vt100" }),
    timeoutMs: 30_000,
  });
  const out = r.stdout.toString();
  assert.equal(r.code, 5, r.stderr + out);
  assert.match(out, /term=vt100 size=\d+x\d+/);
  assert.match(out, /echo: hello pty/);
});

test(
  "dbclient against our default key exchange list: its wrongly guessed first kex packet is ignored (RFC 4253 §7)",
  async (t) => {
    const d = await setUp(t, { keyExchanges: [...transport.DEFAULT_KEY_EXCHANGES] });
    if (d === undefined) return;
    const r = await dbclient(d, ["-i", d.key, `${d.server.user}@127.0.0.1`, "echo ok"]);
    assert.equal(r.code, 0, `${r.stderr}\n${d.server.logText()}`);
    assert.equal(r.out, "ok\n");
  },
);
