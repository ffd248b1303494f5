/**
 * OpenSSH's `ssh` against OUR server (the Unix realm) with real authorized_keys lines, read from a
 * file with `readAuthorizedKeyFile`: forced commands and SSH_ORIGINAL_COMMAND, no-pty (from a
 * terminal, where ssh carries on, and with -tt, where OpenSSH 9 gives up), `-W`, `-L`
 * and `-R` under no-port-forwarding / permitopen / permitlisten, environment= with and without
 * PermitUserEnvironment, restrict,pty. The forced-command and no-pty cases are also run against
 * the real sshd with the same line, and the outputs compared.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { createServer, connect, type AddressInfo, type Server } from "node:net";
import { join } from "node:path";
import { unix } from "@twisted-ts/conch";
import { freePort, missing, requirePeer, runCommand, spawnPeer, tempDir, waitForPort } from "../_support/peers.js";
import { sshKeygen, startSshd } from "../_support/sshd.js";
import { clientEnv, sshClientArgs, startOurServer, type OurServer, type ServerOptions, type SshTarget } from "./_server_support.js";

const FORCED = 'command="echo forced; echo \\"orig=$SSH_ORIGINAL_COMMAND\\""';

interface Target extends SshTarget {
  user: string;
  env: NodeJS.ProcessEnv;
}

function ours(server: OurServer): Target {
  return { port: server.port, user: server.user, keyPath: server.keyPath, knownHosts: server.knownHosts, env: clientEnv(server) };
}

function sshArgs(target: Target, extra: string[]): string[] {
  return [...sshClientArgs(target, extra), `${target.user}@127.0.0.1`];
}

async function ssh(t: TestContext, target: Target, extra: string[], command: string[], input?: string) {
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return undefined;
  const r = await runCommand(bin, [...sshArgs(target, extra), ...command], {
    env: target.env,
    timeoutMs: 30_000,
    ...(input !== undefined ? { input } : {}),
  });
  return { ...r, out: r.stdout.toString() };
}

async function server(t: TestContext, keyOptions: string, opts: ServerOptions = {}): Promise<OurServer> {
  return startOurServer(t, { ...opts, authorizedKeys: (pub) => `# alice's keys\n${keyOptions} ${pub}\n` });
}

/** The real sshd with the same authorized_keys line for its user, and a Target to reach it. */
async function realSshd(t: TestContext, keyOptions: string): Promise<Target | undefined> {
  const dir = tempDir(t, "twisted-ts-keyopts-");
  const [keyPath, pub] = await sshKeygen(dir, "id_ed25519", "ed25519");
  const sshd = await startSshd(t, { authorizedKeys: [`${keyOptions} ${pub}`], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return undefined;
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys["ed25519"]}\n`);
  return { port: sshd.port, user: sshd.user, keyPath, knownHosts, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir, LANG: "C.UTF-8" } };
}

/** A TCP echo server on 127.0.0.1; closed when the test ends. */
async function echoServer(t: TestContext): Promise<number> {
  const s: Server = createServer((c) => c.pipe(c));
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  t.after(() => new Promise<void>((resolve) => s.close(() => resolve())));
  return (s.address() as AddressInfo).port;
}

/**
 * Connects to 127.0.0.1:port, sends `data` and closes once as much came back; resolves with what
 * came back before the connection closed (nothing when the forwarding was refused).
 */
function roundTrip(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const c = connect(port, "127.0.0.1");
    let got = "";
    c.on("data", (d: Buffer) => {
      got += d.toString();
      if (got.length >= data.length) c.end();
    });
    // A refused forwarding may end in a reset rather than a close.
    c.on("error", () => undefined);
    c.on("close", () => resolve(got));
    c.on("connect", () => c.write(data));
  });
}

test("command=: ssh's command is replaced by the forced one and arrives as SSH_ORIGINAL_COMMAND, as under sshd", async (t) => {
  const s = await server(t, FORCED);
  const r = await ssh(t, ours(s), [], ["echo hi"]);
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.out, "forced\norig=echo hi\n");
  const shell = await ssh(t, ours(s), ["-T"], [], "echo typed\n");
  assert.equal(shell?.out, "forced\norig=\n", "a shell request runs the forced command too, without SSH_ORIGINAL_COMMAND");

  const real = await realSshd(t, FORCED);
  if (real === undefined) return;
  const rr = await ssh(t, real, [], ["echo hi"]);
  assert.equal(rr?.out, r.out, rr?.stderr);
  assert.equal((await ssh(t, real, ["-T"], [], "echo typed\n"))?.out, shell?.out);
});

/**
 * Runs ssh with no command inside a terminal (node-pty), as a user at a prompt does: RequestTTY
 * auto asks for a pty. `input` is typed once ssh says the pty was refused.
 */
async function sshInTerminal(t: TestContext, target: Target, input: string): Promise<{ out: string; code: number } | undefined> {
  const pty = await unix.loadNodePty();
  if (pty === undefined) {
    missing(t, "node-pty is not installed (npm install node-pty)");
    return undefined;
  }
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return undefined;
  const env = { ...target.env, TERM: "xterm" } as Record<string, string>;
  return new Promise((resolve) => {
    const p = pty.spawn(bin, sshArgs(target, []), { name: "xterm", cols: 80, rows: 24, cwd: "/", env, encoding: null });
    let out = "";
    let typed = false;
    // A guard, not a timing: a server that never answers fails the test instead of hanging it.
    const guard = setTimeout(() => p.kill("SIGKILL"), 30_000);
    p.onData((d) => {
      out += typeof d === "string" ? d : Buffer.from(d).toString("utf8");
      if (!typed && /PTY allocation request failed/.test(out)) {
        typed = true;
        p.write(input);
      }
    });
    p.onExit(({ exitCode }) => {
      clearTimeout(guard);
      resolve({ out, code: exitCode });
    });
  });
}

test("no-pty: a terminal's ssh prints 'PTY allocation request failed' and carries on without one, as under sshd", async (t) => {
  const s = await server(t, "no-pty");
  const typed = 'echo "r""an"; tty; exit 3\n';
  const r = await sshInTerminal(t, ours(s), typed);
  if (r === undefined) return;
  assert.match(r.out, /PTY allocation request failed on channel 0/);
  assert.match(r.out, /^ran\r?$/m);
  assert.match(r.out, /^not a tty\r?$/m);
  assert.equal(r.code, 3, r.out);
  assert.match(s.logText(), /info .*refused pty-req from 127\.0\.0\.1:\d+: a pty is not permitted for this login/);

  const real = await realSshd(t, "no-pty");
  if (real === undefined) return;
  const rr = await sshInTerminal(t, real, typed);
  assert.match(rr?.out ?? "", /PTY allocation request failed on channel 0/);
  assert.match(rr?.out ?? "", /^ran\r?$/m);
  assert.match(rr?.out ?? "", /^not a tty\r?$/m);
  assert.equal(rr?.code, r.code);
});

test("no-pty: ssh -tt, which insists on a terminal, gives up after 'PTY allocation request failed', as under sshd", async (t) => {
  const s = await server(t, "no-pty");
  const r = await ssh(t, ours(s), ["-tt"], ["echo ran"]);
  if (r === undefined) return;
  assert.match(r.stderr, /PTY allocation request failed on channel 0/);
  assert.equal(r.code, 255);
  const real = await realSshd(t, "no-pty");
  if (real === undefined) return;
  const rr = await ssh(t, real, ["-tt"], ["echo ran"]);
  assert.match(rr?.stderr ?? "", /PTY allocation request failed on channel 0/);
  assert.equal(rr?.code, r.code);
  assert.equal(rr?.out, r.out);
});

test("no-port-forwarding: ssh -W is refused (administratively prohibited); without it, -W reaches the echo server", async (t) => {
  const echo = await echoServer(t);
  const s = await server(t, "no-port-forwarding");
  const r = await ssh(t, ours(s), ["-W", `127.0.0.1:${echo}`], [], "ping\n");
  if (r === undefined) return;
  assert.equal(r.code, 255);
  assert.match(r.stderr, /open failed: administratively prohibited: port forwarding is not permitted for this login/);
  assert.match(s.logText(), /info .*refused direct-tcpip channel from 127\.0\.0\.1:\d+: port forwarding is not permitted/);

  const free = await server(t, "");
  const ok = await ssh(t, ours(free), ["-W", `127.0.0.1:${echo}`], [], "ping\n");
  assert.equal(ok?.code, 0, ok?.stderr);
  assert.equal(ok?.out, "ping\n");
});

test("permitopen: ssh -W reaches the permitted destination only", async (t) => {
  const echo = await echoServer(t);
  const other = await echoServer(t);
  const s = await server(t, `permitopen="127.0.0.1:${echo}"`);
  const ok = await ssh(t, ours(s), ["-W", `127.0.0.1:${echo}`], [], "ping\n");
  if (ok === undefined) return;
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(ok.out, "ping\n");
  const no = await ssh(t, ours(s), ["-W", `127.0.0.1:${other}`], [], "ping\n");
  assert.equal(no?.code, 255);
  assert.match(no?.stderr ?? "", new RegExp(`administratively prohibited: 127\\.0\\.0\\.1:${other} is not a permitopen destination`));
});

test("ssh -L: refused under no-port-forwarding; under permitopen, only to the permitted destination", async (t) => {
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return;
  const echo = await echoServer(t);
  const other = await echoServer(t);
  const forward = async (s: OurServer, dest: number): Promise<string> => {
    const local = await freePort();
    const child = spawnPeer(t, bin, [...sshArgs(ours(s), ["-N", "-L", `127.0.0.1:${local}:127.0.0.1:${dest}`])], ours(s).env);
    await waitForPort(local);
    try {
      return await roundTrip(local, "through -L\n");
    } finally {
      child.kill("SIGTERM");
    }
  };
  const refused = await server(t, "no-port-forwarding");
  assert.equal(await forward(refused, echo), "", "the forwarded connection is closed with nothing");
  assert.match(refused.logText(), /refused direct-tcpip channel/);
  const limited = await server(t, `permitopen="127.0.0.1:${echo}"`);
  assert.equal(await forward(limited, echo), "through -L\n");
  assert.equal(await forward(limited, other), "");
  assert.match(limited.logText(), new RegExp(`127\\.0\\.0\\.1:${other} is not a permitopen destination`));
});

test("ssh -R: allowed only on a permitlisten port; refused under no-port-forwarding", async (t) => {
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return;
  const echo = await echoServer(t);
  const allowedPort = await freePort();
  const s = await server(t, `permitlisten="${allowedPort}"`);
  const otherPort = await freePort();
  const no = await ssh(t, ours(s), ["-N", "-o", "ExitOnForwardFailure=yes", "-R", `${otherPort}:127.0.0.1:${echo}`], []);
  assert.equal(no?.code, 255);
  assert.match(no?.stderr ?? "", new RegExp(`remote port forwarding failed for listen port ${otherPort}`));
  assert.match(s.logText(), new RegExp(`refused tcpip-forward request from .*: localhost:${otherPort} is not a permitlisten address`));

  const child = spawnPeer(t, bin, [...sshArgs(ours(s), ["-N", "-o", "ExitOnForwardFailure=yes", "-R", `${allowedPort}:127.0.0.1:${echo}`])], ours(s).env);
  await waitForPort(allowedPort);
  assert.equal(await roundTrip(allowedPort, "through -R\n"), "through -R\n");
  child.kill("SIGTERM");

  const nf = await server(t, "no-port-forwarding");
  const r = await ssh(t, ours(nf), ["-N", "-o", "ExitOnForwardFailure=yes", "-R", `${await freePort()}:127.0.0.1:${echo}`], []);
  assert.equal(r?.code, 255);
  assert.match(nf.logText(), /refused tcpip-forward request from .*: port forwarding is not permitted/);
});

test("environment=: set only when the server's PermitUserEnvironment is on", async (t) => {
  const line = 'environment="KEYOPT_VAR=from the key"';
  const off = await server(t, line);
  const r = await ssh(t, ours(off), [], ['echo "[$KEYOPT_VAR]"']);
  if (r === undefined) return;
  assert.equal(r.out, "[]\n", r.stderr);
  const on = await server(t, line, { authSettings: { permitUserEnvironment: true } });
  const r2 = await ssh(t, ours(on), [], ['echo "[$KEYOPT_VAR]"']);
  assert.equal(r2?.out, "[from the key]\n", r2?.stderr);
});

test("restrict,pty: ssh -tt gets a terminal, ssh -W is refused", async (t) => {
  if ((await unix.loadNodePty()) === undefined) {
    missing(t, "node-pty is not installed (npm install node-pty)");
    return;
  }
  const echo = await echoServer(t);
  const s = await server(t, "restrict,pty");
  const r = await ssh(t, ours(s), ["-tt"], ["tty"], "");
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr + r.out);
  assert.match(r.out, /\/dev\/pts\/\d+/);
  assert.doesNotMatch(r.stderr, /PTY allocation request failed/);
  const w = await ssh(t, ours(s), ["-W", `127.0.0.1:${echo}`], [], "ping\n");
  assert.equal(w?.code, 255);
  assert.match(w?.stderr ?? "", /administratively prohibited/);
  const plain = await server(t, "restrict");
  const r2 = await ssh(t, ours(plain), ["-tt"], ["tty"], "");
  assert.match(r2?.stderr ?? "", /PTY allocation request failed/);
  assert.equal(r2?.code, 255);
});
