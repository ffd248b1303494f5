/**
 * PuTTY's `plink` and `pscp` against OUR server: publickey (the ed25519 key converted to .ppk with
 * `puttygen`) and password (`-pw`) logins in `-batch` mode with the host key pinned by `-hostkey`,
 * exec with stdin/stdout/stderr and exit codes, a missing command (127), a shell without a pty, a
 * pty shell (in-process realm), and `pscp -scp` both ways (the scp protocol through exec).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requirePeer, runCommand } from "../_support/peers.js";
import { TERMINAL_SHELL, clientEnv, startOurServer, type OurServer, type ServerOptions } from "./_server_support.js";

interface Putty {
  server: OurServer;
  plink: string;
  ppk: string;
  /** -hostkey pin and the port, common to plink and pscp. */
  common: string[];
}

async function setUp(t: TestContext, opts: ServerOptions = {}): Promise<Putty | undefined> {
  const plink = requirePeer(t, "plink", "putty-tools");
  const puttygen = requirePeer(t, "puttygen", "putty-tools");
  if (plink === undefined || puttygen === undefined) return undefined;
  const server = await startOurServer(t, opts);
  const ppk = join(server.dir, "id.ppk");
  const c = await runCommand(puttygen, [server.keyPath, "-O", "private", "-o", ppk], { env: clientEnv(server) });
  assert.equal(c.code, 0, c.stderr);
  const fp = Object.values(server.hostKeys)[0]!.fingerprint("sha256");
  return { server, plink, ppk, common: ["-batch", "-P", String(server.port), "-hostkey", fp] };
}

async function plink(p: Putty, args: string[], opts: { input?: Uint8Array | string } = {}) {
  const r = await runCommand(p.plink, [...p.common, "-l", p.server.user, ...args], {
    env: clientEnv(p.server),
    timeoutMs: 30_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { ...r, out: r.stdout.toString() };
}

test("plink exec by publickey: stdin, stdout, stderr and the exit code; 127; password with -pw", async (t) => {
  const p = await setUp(t);
  if (p === undefined) return;
  const r = await plink(p, ["-i", p.ppk, "127.0.0.1", 'read line; echo "got $line"; echo oops >&2; exit 3'], { input: "hello\n" });
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.out, "got hello\n");
  assert.match(r.stderr, /^oops$/m);
  const missing = await plink(p, ["-i", p.ppk, "127.0.0.1", "no-such-command-plink"]);
  assert.equal(missing.code, 127, missing.stderr);
  assert.match(missing.stderr, /no-such-command-plink: .*not found/);
  const pw = await plink(p, ["-pw", p.server.password, "127.0.0.1", "echo by-password"]);
  assert.equal(pw.code, 0, pw.stderr);
  assert.equal(pw.out, "by-password\n");
  // plink answers keyboard-interactive's password prompt with -pw before trying "password".
  assert.deepEqual(p.server.loginMethods(), ["publickey", "publickey", "keyboard-interactive"]);
  assert.deepEqual(p.server.criticals(), []);
});

test("plink: a wrong pinned host key is refused before logging in", async (t) => {
  const p = await setUp(t);
  if (p === undefined) return;
  const wrong = p.common.map((a) => (a.startsWith("SHA256:") ? "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" : a));
  const r = await runCommand(p.plink, [...wrong, "-l", p.server.user, "-i", p.ppk, "127.0.0.1", "true"], { env: clientEnv(p.server), timeoutMs: 30_000 });
  assert.notEqual(r.code, 0);
  assert.equal(p.server.logins(), 0);
});

test("plink -T shell without a pty, and -t pty shell on the in-process realm", async (t) => {
  const p = await setUp(t);
  if (p === undefined) return;
  const shell = await plink(p, ["-T", "-i", p.ppk, "127.0.0.1"], { input: "echo from-shell\nexit 6\n" });
  assert.equal(shell.code, 6, shell.stderr);
  assert.equal(shell.out, "from-shell\n");
  const q = await setUp(t, TERMINAL_SHELL);
  if (q === undefined) return;
  const pty = await plink(q, ["-t", "-i", q.ppk, "127.0.0.1"], { input: "hello pty\rexit\r" });
  assert.equal(pty.code, 5, pty.stderr);
  assert.match(pty.out, /term=xterm size=\d+x\d+/);
  assert.match(pty.out, /echo: hello pty/);
});

test("pscp -scp copies a file up and back down through exec, bytes intact", async (t) => {
  const p = await setUp(t);
  const pscp = requirePeer(t, "pscp", "putty-tools");
  if (p === undefined || pscp === undefined) return;
  const data = randomBytes(1024 * 1024 + 3);
  const local = join(p.server.dir, "local.bin");
  writeFileSync(local, data);
  const args = [...p.common, "-scp", "-q", "-i", p.ppk, "-l", p.server.user];
  const up = await runCommand(pscp, [...args, local, "127.0.0.1:up.bin"], { env: clientEnv(p.server), timeoutMs: 60_000 });
  assert.equal(up.code, 0, up.stderr);
  const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
  assert.equal(sha(readFileSync(join(p.server.home, "up.bin"))), sha(data));
  const back = join(p.server.dir, "back.bin");
  const down = await runCommand(pscp, [...args, "127.0.0.1:up.bin", back], { env: clientEnv(p.server), timeoutMs: 60_000 });
  assert.equal(down.code, 0, down.stderr);
  assert.equal(sha(readFileSync(back)), sha(data));
});

test("plink negotiates sntrup761x25519-sha512@openssh.com with our default server (issue 16), a second sntrup761 peer", async (t) => {
  // PuTTY 0.78 puts its NTRU Prime / Curve25519 hybrid first; our server has the @openssh.com name.
  const p = await setUp(t);
  if (p === undefined) return;
  const r = await plink(p, ["-v", "-i", p.ppk, "127.0.0.1", "echo pq-ok"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.out, "pq-ok\n");
  assert.match(r.stderr, /NTRU Prime/, r.stderr);
  assert.match(p.server.logText(), /kex alg=sntrup761x25519-sha512@openssh\.com /);
  assert.deepEqual(p.server.criticals(), []);
});
