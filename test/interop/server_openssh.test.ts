/**
 * OpenSSH's `ssh` and `scp` against OUR server (SSHFactory, userauth, the Unix realm running real
 * commands through reactor.spawnProcess, and the in-process realm), over loopback TCP: exec with
 * stdin/stdout/stderr and exit codes, a command that does not exist (127), exit signals, env
 * (SetEnv/SendEnv), `-tt` shells (refused pty → plain shell in the Unix realm without node-pty; a
 * granted pty in the in-process realm), `scp -O` both ways through exec, and bulk data through
 * `cat` with the bytes checked. The host key is pinned in a known_hosts file (no accept-new).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { missing, requirePeer, runCommand, spawnPeer } from "../_support/peers.js";
import { connection } from "@twisted-ts/conch/ssh";
import { unix } from "@twisted-ts/conch";
import { TERMINAL_SHELL, clientEnv, sshClientArgs, startOurServer, type OurServer } from "./_server_support.js";

const sshArgs = sshClientArgs;

async function ssh(t: TestContext, server: OurServer, extra: string[], command: string[], opts: { input?: Uint8Array | string; env?: NodeJS.ProcessEnv } = {}) {
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return undefined;
  const r = await runCommand(bin, [...sshArgs(server, extra), `${server.user}@127.0.0.1`, ...command], {
    env: clientEnv(server, opts.env),
    timeoutMs: 30_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
  return { ...r, out: r.stdout.toString() };
}

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");

test("ssh exec: stdin reaches the command, stdout and stderr come back apart, the exit code is kept", async (t) => {
  const server = await startOurServer(t);
  const r = await ssh(t, server, [], ["read line; echo \"got $line\"; echo oops >&2; exit 3"], { input: "hello\n" });
  if (r === undefined) return;
  assert.equal(r.code, 3, r.stderr);
  assert.equal(r.out, "got hello\n");
  assert.match(r.stderr, /^oops$/m);
  const ok = await ssh(t, server, [], ["true"]);
  assert.equal(ok?.code, 0, ok?.stderr);
  assert.equal(server.logins(), 2);
  assert.deepEqual(server.criticals(), []);
});

test("ssh exec: a command that does not exist exits 127 and the server goes on serving", async (t) => {
  const server = await startOurServer(t);
  const r = await ssh(t, server, [], ["no-such-command-twisted-ts"]);
  if (r === undefined) return;
  assert.equal(r.code, 127, r.stderr);
  assert.match(r.stderr, /no-such-command-twisted-ts: .*not found/);
  const again = await ssh(t, server, [], ["echo still here"]);
  assert.equal(again?.code, 0, again?.stderr);
  assert.equal(again?.out, "still here\n");
  assert.deepEqual(server.criticals(), []);
});

test("ssh exec: a command killed by a signal is reported with exit-signal (ssh exits 255)", async (t) => {
  const server = await startOurServer(t);
  const r = await ssh(t, server, ["-o", "LogLevel=DEBUG1"], ["kill -TERM $$"]);
  if (r === undefined) return;
  assert.equal(r.code, 255);
  assert.match(r.stderr, /rtype exit-signal/);
  assert.doesNotMatch(r.stderr, /rtype exit-status/);
});

test("ssh env: SetEnv and SendEnv reach the command; forbidden names are refused without failing the session", async (t) => {
  const server = await startOurServer(t);
  const r = await ssh(
    t,
    server,
    // One SetEnv with both: ssh keeps only the first SetEnv option given.
    ["-o", "SetEnv=GREETING=hi-there LD_PRELOAD=/nonexistent.so", "-o", "SendEnv=TT_FROM_CLIENT", "-o", "LogLevel=DEBUG1"],
    ['echo "$GREETING/$TT_FROM_CLIENT/${LD_PRELOAD:-unset}"'],
    { env: { TT_FROM_CLIENT: "sent by ssh" } },
  );
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.out, "hi-there/sent by ssh/unset\n");
  assert.match(r.stderr, /setting env LD_PRELOAD = "\/nonexistent.so"/);
});

test("ssh -T shell (Unix realm): the user's shell reads commands from stdin and its exit code comes back", async (t) => {
  const server = await startOurServer(t);
  const r = await ssh(t, server, ["-T"], [], { input: "echo from-the-shell\nexit 7\n" });
  if (r === undefined) return;
  assert.equal(r.code, 7, r.stderr);
  assert.equal(r.out, "from-the-shell\n");
});

test("ssh -tt (Unix realm): node-pty gives the shell a real terminal; it runs and its exit status comes back", async (t) => {
  if ((await unix.loadNodePty()) === undefined) {
    // node-pty is an optional dependency; without it the Unix realm refuses pty-req (test/conch/unix).
    missing(t, "node-pty is not installed (npm install node-pty)");
    return;
  }
  const server = await startOurServer(t);
  const r = await ssh(t, server, ["-tt"], [], { input: "tty\nexit 7\n", env: { TERM: "xterm" } });
  if (r === undefined) return;
  assert.equal(r.code, 7, r.stderr + r.out);
  assert.match(r.out, /\/dev\/pts\/\d+/);
});

test("ssh -tt shell (in-process realm): pty-req with the client's TERM is granted, the shell echoes, exit status 5", async (t) => {
  const server = await startOurServer(t, TERMINAL_SHELL);
  const r = await ssh(t, server, ["-tt", "-o", "SetEnv=TT_VAR=yes"], [], { input: "hello pty\nexit\n", env: { TERM: "xterm-256color" } });
  if (r === undefined) return;
  assert.equal(r.code, 5, r.stderr);
  // ssh sends a 0x0 size when its stdin is not a terminal.
  assert.match(r.out, /term=xterm-256color size=0x0 TT=yes/);
  assert.match(r.out, /echo: hello pty/);
  assert.doesNotMatch(r.stderr, /PTY allocation request failed/);
});

test("scp -O (the scp protocol through exec) copies a file up and back down, bytes intact", async (t) => {
  const server = await startOurServer(t);
  const scp = requirePeer(t, "scp", "openssh-client");
  if (scp === undefined) return;
  const data = randomBytes(3 * 1024 * 1024 + 17);
  const local = join(server.dir, "local.bin");
  writeFileSync(local, data);
  const base = sshArgs(server).map((a) => (a === "-p" ? "-P" : a)); // scp spells the port -P
  const up = await runCommand(scp, ["-O", "-q", ...base, local, `${server.user}@127.0.0.1:uploaded.bin`], { env: clientEnv(server), timeoutMs: 60_000 });
  assert.equal(up.code, 0, up.stderr);
  assert.equal(sha256(readFileSync(join(server.home, "uploaded.bin"))), sha256(data));
  const back = join(server.dir, "back.bin");
  const down = await runCommand(scp, ["-O", "-q", ...base, `${server.user}@127.0.0.1:uploaded.bin`, back], { env: clientEnv(server), timeoutMs: 60_000 });
  assert.equal(down.code, 0, down.stderr);
  assert.equal(sha256(readFileSync(back)), sha256(data));
  const missing = await runCommand(scp, ["-O", "-q", ...base, `${server.user}@127.0.0.1:not-there.bin`, back], { env: clientEnv(server), timeoutMs: 60_000 });
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /not-there\.bin: No such file or directory/);
});

test("ssh exec: 4 MiB each way through cat, checked by SHA-256", async (t) => {
  const server = await startOurServer(t);
  const data = randomBytes(4 * 1024 * 1024);
  const r = await ssh(t, server, [], ["cat"], { input: data });
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.length, data.length);
  assert.equal(sha256(r.stdout), sha256(data));
  const down = await ssh(t, server, [], ["head -c 4194304 /dev/zero"]);
  assert.equal(down?.code, 0, down?.stderr);
  assert.equal(down?.stdout.length, 4 * 1024 * 1024);
  assert.ok(down?.stdout.every((b) => b === 0));
});

test("ssh -o RekeyLimit=1M: 4 MiB through cat while keys are renewed several times mid-stream", async (t) => {
  const server = await startOurServer(t);
  const data = randomBytes(4 * 1024 * 1024);
  const r = await ssh(t, server, ["-o", "RekeyLimit=1M", "-o", "LogLevel=DEBUG1"], ["cat"], { input: data });
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(sha256(r.stdout), sha256(data));
  const rekeys = r.stderr.match(/SSH2_MSG_NEWKEYS received/g)?.length ?? 0;
  assert.ok(rekeys >= 3, `expected several key exchanges, saw ${rekeys}`);
});

/** Starts `ssh -M -N` as a ControlMaster (owned by the test); resolves with its socket path. */
async function startMaster(t: TestContext, server: OurServer): Promise<string | undefined> {
  const sock = join(server.dir, "cm.sock");
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return undefined;
  // The master stays in the foreground (-N, no -f) so that the test owns and ends it.
  const master = spawnPeer(t, bin, [...sshArgs(server, ["-M", "-S", sock, "-N"]), `${server.user}@127.0.0.1`], clientEnv(server));
  for (let i = 0; i < 300 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(existsSync(sock), master.output());
  return sock;
}

test("ssh ControlMaster: many sessions, some at once, over one connection (ssh reuses its channel numbers)", async (t) => {
  const server = await startOurServer(t);
  const sock = await startMaster(t, server);
  if (sock === undefined) return;
  const one = (i: number) => ssh(t, server, ["-S", sock], [`echo session-${i}`]);
  const first = await Promise.all([0, 1, 2, 3, 4, 5].map(one));
  const second = await Promise.all([6, 7, 8, 9, 10, 11].map(one));
  assert.deepEqual(
    [...first, ...second].map((r) => [r?.code, r?.out]),
    Array.from({ length: 12 }, (_, i) => [0, `session-${i}\n`]),
  );
  assert.equal(server.logins(), 1, "every session went over the master's one connection");
  const exit = await ssh(t, server, ["-S", sock, "-O", "exit"], []);
  assert.equal(exit?.code, 0, exit?.stderr);
});

test("ssh -s: a subsystem the avatar does not have is refused; the connection ends cleanly", async (t) => {
  const server = await startOurServer(t);
  const r = await ssh(t, server, ["-s"], ["no-such-subsystem"]);
  if (r === undefined) return;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /subsystem request failed on channel 0/);
  assert.deepEqual(server.criticals(), []);
});

test("ssh ControlMaster past a per-connection channel limit: the extra session is refused, ssh falls back to a new connection, the others carry on", async (t) => {
  class TwoChannels extends connection.SSHConnection {
    override maxOpenChannels = 2;
  }
  const server = await startOurServer(t, { connectionClass: TwoChannels });
  const sock = await startMaster(t, server);
  if (sock === undefined) return;
  // Two sessions that wait for their stdin to close hold both channels...
  const bin = requirePeer(t, "ssh", "openssh-client")!;
  const holders = [0, 1].map((i) => {
    const child = spawn(bin, [...sshArgs(server, ["-S", sock]), `${server.user}@127.0.0.1`, `echo holding-${i}; cat >/dev/null`], {
      stdio: ["pipe", "pipe", "pipe"],
      env: clientEnv(server),
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    const done = new Promise((r) => child.once("close", r));
    t.after(() => child.kill("SIGKILL"));
    return { child, out: () => out, done };
  });
  for (let i = 0; i < 300 && !holders.every((h) => h.out().includes("holding-")); i++) await new Promise((r) => setTimeout(r, 50));
  assert.ok(holders.every((h) => h.out().includes("holding-")), holders.map((h) => h.out()).join("|"));
  // ...so the server refuses a third on that connection; ssh reports it and falls back to a
  // connection of its own, which the server serves.
  const third = await ssh(t, server, ["-S", sock], ["echo third"]);
  assert.match(third?.stderr ?? "", /session request failed: Session open refused by peer/);
  assert.equal(third?.out, "third\n", third?.stderr);
  assert.equal(server.logins(), 2);
  assert.ok(server.logs.some((e) => /refusing \{channelType\} channel/.test(String(e.log_format))), server.logText());
  // The holders end (EOF on their stdin); then there is room again.
  for (const h of holders) h.child.stdin.end();
  await Promise.all(holders.map((h) => h.done));
  const after = await ssh(t, server, ["-S", sock], ["echo after"]);
  assert.equal(after?.out, "after\n", after?.stderr);
  await ssh(t, server, ["-S", sock, "-O", "exit"], []);
});
