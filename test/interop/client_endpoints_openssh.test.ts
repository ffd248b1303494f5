/**
 * Client endpoints against OpenSSH's sshd on 127.0.0.1: SSHCommandClientEndpoint running a
 * LineReceiver over `cat`, exit statuses reaching connectionLost, jump hosts (through one sshd to
 * a second one, and through our own in-process server to sshd) by composing
 * SSHDirectTCPIPClientEndpoint, the client keepalive dropping an sshd whose processes were
 * stopped (SIGSTOP), and our server's keepalive dropping a stopped OpenSSH client.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Deferred } from "@twisted-ts/internet/defer";
import { LineReceiver } from "@twisted-ts/internet/basic";
import { ConnectionDone, ProcessTerminated } from "@twisted-ts/internet/error";
import type { Failure } from "@twisted-ts/internet/failure";
import { Factory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { TCP4ClientEndpoint, UNIXClientEndpoint } from "@twisted-ts/internet/endpoints";
import { error } from "@twisted-ts/conch";
import { direct } from "@twisted-ts/conch/client";
import { SSHCommandClientEndpoint, SSHDirectTCPIPClientEndpoint, type NewConnectionOptions } from "@twisted-ts/conch/client/endpoints";
import type { connection } from "@twisted-ts/conch/ssh";
import { startSshd, type Sshd } from "../_support/sshd.js";
import { requirePeer, runCommand, spawnPeer, tempDir } from "../_support/peers.js";
import { makeUserKey, within, type UserKey } from "./_client_support.js";
import { clientEnv, sshClientArgs, startOurServer } from "./_server_support.js";

const LONG = 60_000;

/** Lines received, and how the connection ended. */
class Lines extends LineReceiver {
  override delimiter = Buffer.from("\n");
  readonly lines: string[] = [];
  /** Fires with the reason wrapped: a Failure given to callback() would switch to the errback path. */
  readonly lost = new Deferred<{ reason: Failure }>();
  override lineReceived(line: Uint8Array): void {
    this.lines.push(Buffer.from(line).toString("utf8"));
  }
  override connectionLost(reason: Failure): void {
    this.lost.callback({ reason });
  }
}

function knownHostsFor(t: TestContext, ...servers: Array<{ port: number; hostKey: string }>): string {
  const path = join(tempDir(t, "twisted-ts-kh-"), "known_hosts");
  writeFileSync(path, servers.map((s) => `[127.0.0.1]:${s.port} ${s.hostKey}\n`).join(""));
  return path;
}

async function sshdWithKey(t: TestContext, key: UserKey, config: string[] = []): Promise<Sshd | undefined> {
  return startSshd(t, { authorizedKeys: [key.publicLine], hostKeyTypes: ["ed25519"], config });
}

/** A user key, an sshd that takes it, and a known_hosts naming the sshd; undefined without sshd. */
async function setUp(t: TestContext): Promise<{ key: UserKey; sshd: Sshd; knownHosts: string; opts: NewConnectionOptions } | undefined> {
  const key = await makeUserKey(t);
  const sshd = await sshdWithKey(t, key);
  if (sshd === undefined) return undefined;
  const knownHosts = knownHostsFor(t, { port: sshd.port, hostKey: sshd.hostKeys.ed25519! });
  return { key, sshd, knownHosts, opts: { port: sshd.port, identities: [key.privatePath], knownHosts, policy: "strict" } };
}

/** A connection of our own to the sshd of `s`, through client/direct. */
function connectDirect(s: { key: UserKey; sshd: Sshd; knownHosts: string }, extra: Partial<direct.ConnectOptions> = {}): Promise<connection.SSHConnection> {
  const { sshd } = s;
  const options = { user: sshd.user, hostname: "127.0.0.1", port: sshd.port, knownHosts: s.knownHosts, policy: "strict" as const, identities: [s.key.privatePath], ...extra };
  return within(direct.connect(new TCP4ClientEndpoint(reactor, "127.0.0.1", sshd.port), options), LONG, "connect");
}

async function runLines(ep: SSHCommandClientEndpoint, send: string[] = []): Promise<Lines> {
  const p = (await within(ep.connect(Factory.forProtocol(Lines)), LONG, "connect")) as Lines;
  for (const line of send) p.sendLine(Buffer.from(line));
  return p;
}

test("SSHCommandClientEndpoint runs a LineReceiver over cat on sshd; closing the transport closes the channel and the connection", async (t) => {
  const s = await setUp(t);
  if (s === undefined) return;
  const { sshd, opts } = s;
  const ep = SSHCommandClientEndpoint.newConnection(reactor, "cat", sshd.user, "127.0.0.1", opts);
  const p = await runLines(ep, ["hello", "world"]);
  while (p.lines.length < 2) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(p.lines, ["hello", "world"]);
  p.transport!.loseConnection();
  const { reason } = await within(p.lost, LONG, "connectionLost", sshd.output);
  assert.ok(reason.value instanceof ConnectionDone, String(reason.value));
});

test("SSHCommandClientEndpoint: the command's exit status reaches connectionLost as ProcessTerminated, 0 as ConnectionDone", async (t) => {
  const s = await setUp(t);
  if (s === undefined) return;
  const { sshd, opts } = s;
  const three = await runLines(SSHCommandClientEndpoint.newConnection(reactor, "echo out; exit 3", sshd.user, "127.0.0.1", opts));
  const { reason: r3 } = await within(three.lost, LONG, "exit 3");
  assert.deepEqual(three.lines, ["out"]);
  assert.ok(r3.value instanceof ProcessTerminated);
  assert.equal(r3.value.exitCode, 3);
  const zero = await runLines(SSHCommandClientEndpoint.newConnection(reactor, "true", sshd.user, "127.0.0.1", opts));
  const { reason: r0 } = await within(zero.lost, LONG, "exit 0");
  assert.ok(r0.value instanceof ConnectionDone && !(r0.value instanceof ProcessTerminated));
});

test("SSHCommandClientEndpoint.existingConnection runs commands on an open connection and leaves it open", async (t) => {
  const s = await setUp(t);
  if (s === undefined) return;
  const conn = await connectDirect(s);
  t.after(() => conn.transport?.loseConnection());
  for (const word of ["one", "two"]) {
    const p = await runLines(SSHCommandClientEndpoint.existingConnection(conn, `echo ${word}`));
    await within(p.lost, LONG, word);
    assert.deepEqual(p.lines, [word]);
  }
  assert.ok(conn.transport !== undefined);
});

test("a refused host key fails connect with HostKeyNotVerifiableError, a failed login with AuthenticationFailed", async (t) => {
  const key = await makeUserKey(t);
  const other = await makeUserKey(t);
  const sshd = await sshdWithKey(t, key);
  if (sshd === undefined) return;
  const empty = knownHostsFor(t);
  const ep1 = SSHCommandClientEndpoint.newConnection(reactor, "true", sshd.user, "127.0.0.1", { port: sshd.port, identities: [key.privatePath], knownHosts: empty, policy: "strict" });
  await assert.rejects(within(ep1.connect(Factory.forProtocol(Lines)), LONG, "host key"), error.HostKeyNotVerifiableError);
  const knownHosts = knownHostsFor(t, { port: sshd.port, hostKey: sshd.hostKeys.ed25519! });
  const ep2 = SSHCommandClientEndpoint.newConnection(reactor, "true", sshd.user, "127.0.0.1", { port: sshd.port, identities: [other.privatePath], knownHosts, policy: "strict" });
  await assert.rejects(within(ep2.connect(Factory.forProtocol(Lines)), LONG, "auth"), direct.AuthenticationFailed);
});

test("jump host: through one sshd to a second sshd with SSHDirectTCPIPClientEndpoint as the endpoint", async (t) => {
  const key = await makeUserKey(t);
  const jump = await sshdWithKey(t, key);
  const target = await sshdWithKey(t, key);
  if (jump === undefined || target === undefined) return;
  const knownHosts = knownHostsFor(t, { port: jump.port, hostKey: jump.hostKeys.ed25519! }, { port: target.port, hostKey: target.hostKeys.ed25519! });
  const common = { identities: [key.privatePath], knownHosts, policy: "strict" as const };
  const hop = SSHDirectTCPIPClientEndpoint.newConnection(reactor, jump.user, "127.0.0.1", "127.0.0.1", target.port, { ...common, port: jump.port });
  const ep = SSHCommandClientEndpoint.newConnection(reactor, "echo $SSH_CONNECTION", target.user, "127.0.0.1", { ...common, port: target.port, endpoint: hop });
  const p = await runLines(ep);
  await within(p.lost, LONG, "jumped command", target.output);
  // The target sees the connection come from the jump host's sshd (127.0.0.1), to its own port.
  assert.match(p.lines[0] ?? "", new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${target.port}$`));
  assert.match(jump.output(), /direct-tcpip|Accepted publickey/);
});

test("jump host: through our own in-process server to sshd, two hops deep with the same endpoint twice", async (t) => {
  const key = await makeUserKey(t);
  const ours = await startOurServer(t);
  const target = await startSshd(t, { authorizedKeys: [key.publicLine, readFileSync(ours.keyPath + ".pub", "utf8").trim()], hostKeyTypes: ["ed25519"] });
  if (target === undefined) return;
  const knownHosts = join(tempDir(t, "twisted-ts-kh-"), "known_hosts");
  writeFileSync(knownHosts, readFileSync(ours.knownHosts, "utf8") + `[127.0.0.1]:${target.port} ${target.hostKeys.ed25519!}\n`);
  const toOurs = { identities: [ours.keyPath], knownHosts, policy: "strict" as const, port: ours.port };
  // ours → (direct-tcpip) ours again → (direct-tcpip) sshd: any depth is composition.
  const hop1 = SSHDirectTCPIPClientEndpoint.newConnection(reactor, ours.user, "127.0.0.1", "127.0.0.1", ours.port, toOurs);
  const hop2 = SSHDirectTCPIPClientEndpoint.newConnection(reactor, ours.user, "127.0.0.1", "127.0.0.1", target.port, { ...toOurs, endpoint: hop1 });
  const ep = SSHCommandClientEndpoint.newConnection(reactor, "echo jumped", target.user, "127.0.0.1", {
    identities: [key.privatePath],
    knownHosts,
    policy: "strict",
    port: target.port,
    endpoint: hop2,
  });
  const p = await runLines(ep);
  await within(p.lost, LONG, "jumped command", target.output);
  assert.deepEqual(p.lines, ["jumped"]);
  assert.equal(ours.logins(), 2);
  assert.deepEqual(ours.criticals(), []);
});

/** The pids of `pid`'s descendants. */
async function descendants(pid: number): Promise<number[]> {
  const r = await runCommand("ps", ["-e", "-o", "pid=,ppid="]);
  const kids = new Map<number, number[]>();
  for (const line of r.stdout.toString("utf8").trim().split("\n")) {
    const [c, p] = line.trim().split(/\s+/).map(Number) as [number, number];
    kids.set(p, [...(kids.get(p) ?? []), c]);
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of kids.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

test("keepalive: our client drops an sshd whose processes stopped answering after interval × count (1 s × 2)", async (t) => {
  const s = await setUp(t);
  if (s === undefined) return;
  const { sshd } = s;
  const conn = await connectDirect(s, { keepaliveInterval: 1, keepaliveCountMax: 2 });
  const lost = new Deferred<void>();
  const transport = conn.transport as unknown as { connectionLost(r: Failure): void; disconnectReason: error.SSHDisconnectError | undefined };
  const original = transport.connectionLost.bind(transport);
  transport.connectionLost = (r: Failure) => {
    original(r);
    lost.callback(undefined);
  };
  // The answers keep the connection up while sshd runs.
  await new Promise((r) => setTimeout(r, 3_000));
  assert.equal(lost.called, false);
  const master = Number(readFileSync(join(sshd.dir, "sshd.pid"), "utf8").trim());
  const stopped = await descendants(master);
  assert.ok(stopped.length > 0, "sshd has a process for the connection");
  for (const pid of stopped) process.kill(pid, "SIGSTOP");
  t.after(() => {
    for (const pid of stopped) {
      try {
        process.kill(pid, "SIGCONT");
        process.kill(pid, "SIGKILL");
      } catch {
        /* gone already */
      }
    }
  });
  const started = Date.now();
  await within(lost, LONG, "keepalive drop");
  const elapsed = (Date.now() - started) / 1000;
  assert.ok(elapsed >= 1.5, `dropped after ${elapsed} s`);
  assert.equal(transport.disconnectReason?.reasonCode, error.DISCONNECT_CONNECTION_LOST);
  assert.match(transport.disconnectReason?.description ?? "", /Timeout, server not responding/);
});

test("keepalive: our server (ClientAliveInterval 1, ClientAliveCountMax 2) drops a stopped OpenSSH client and keeps a running one", async (t) => {
  const ssh = requirePeer(t, "ssh", "openssh-client");
  if (ssh === undefined) return;
  const ours = await startOurServer(t, { clientAlive: { interval: 1, countMax: 2 } });
  const spawnClient = () => spawnPeer(t, ssh, [...sshClientArgs(ours, ["-o", "ServerAliveInterval=0"]), `${ours.user}@127.0.0.1`, "sleep 60"], clientEnv(ours));
  const waitFor = async (what: string, done: () => boolean): Promise<void> => {
    const until = Date.now() + LONG;
    while (!done()) {
      if (Date.now() > until) throw new Error(`${what}: not within ${LONG} ms\n${ours.logText().slice(-4000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const running = spawnClient();
  await waitFor("first login", () => ours.logins() === 1 && ours.liveConnections() === 1);
  // A client that answers stays connected across several intervals.
  await new Promise((r) => setTimeout(r, 3_500));
  assert.equal(ours.liveConnections(), 1, ours.logText());
  running.kill("SIGKILL");
  await waitFor("first connection gone", () => ours.liveConnections() === 0);

  const stopped = spawnClient();
  await waitFor("second login", () => ours.logins() === 2 && ours.liveConnections() === 1);
  stopped.kill("SIGSTOP");
  t.after(() => {
    stopped.kill("SIGCONT");
    stopped.kill("SIGKILL");
  });
  const started = Date.now();
  await waitFor("stopped client dropped", () => ours.liveConnections() === 0);
  assert.ok((Date.now() - started) / 1000 >= 1.5);
  assert.match(ours.logText(), /Timeout, client not responding/);
  assert.deepEqual(ours.criticals(), []);
});

test("agentEndpoint: keys come from a real ssh-agent; an agent that cannot be reached is done without", async (t) => {
  const s = await setUp(t);
  if (s === undefined) return;
  const agentBin = requirePeer(t, "ssh-agent", "openssh-client");
  const addBin = requirePeer(t, "ssh-add", "openssh-client");
  if (agentBin === undefined || addBin === undefined) return;
  const dir = tempDir(t, "twisted-ts-agent-");
  const sock = join(dir, "agent.sock");
  spawnPeer(t, agentBin, ["-D", "-a", sock], { PATH: "/usr/bin:/bin" });
  for (let i = 0; i < 400 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  const added = await runCommand(addBin, [s.key.privatePath], { env: { PATH: "/usr/bin:/bin", SSH_AUTH_SOCK: sock } });
  assert.equal(added.code, 0, added.stderr);
  const { sshd, knownHosts } = s;
  const viaAgent = SSHCommandClientEndpoint.newConnection(reactor, "echo via-agent", sshd.user, "127.0.0.1", {
    port: sshd.port,
    knownHosts,
    policy: "strict",
    agentEndpoint: new UNIXClientEndpoint(reactor, sock),
  });
  const p = await runLines(viaAgent);
  await within(p.lost, LONG, "agent login", sshd.output);
  assert.deepEqual(p.lines, ["via-agent"]);
  const noAgent = SSHCommandClientEndpoint.newConnection(reactor, "echo no-agent", sshd.user, "127.0.0.1", {
    ...s.opts,
    agentEndpoint: new UNIXClientEndpoint(reactor, join(dir, "nonexistent.sock")),
  });
  const q = await runLines(noAgent);
  await within(q.lost, LONG, "login without the agent", sshd.output);
  assert.deepEqual(q.lines, ["no-agent"]);
});
