/**
 * The Unix realm's sessions run real commands (through reactor.spawnProcess); the in-process
 * realm serves protocols. Client and server connections are joined in memory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { basename, join } from "node:path";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { addObserver, formatEvent, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { Protocol } from "@twisted-ts/internet/protocol";
import { NodeReactor } from "@twisted-ts/internet/reactor";
import { UnauthorizedLogin } from "@twisted-ts/cred/error";
import { InterfaceToken } from "@twisted-ts/cred/interfaces";
import { common, connection, session, type channel } from "@twisted-ts/conch/ssh";
import { avatar, unix } from "@twisted-ts/conch";
import { missing, tempDir } from "../_support/peers.js";
import { Pump, text } from "./ssh/_connection_fakes.js";

type SSHChannel = channel.SSHChannel;

const { NS } = common;
const me = userInfo().username;

/** A client session channel that runs `command` with `input`, then EOF and close, as the howto does. */
class Exec extends session.SSHSessionClientChannel {
  requests: Array<[string, Uint8Array]> = [];
  replies: Array<string> = [];
  constructor(
    options: ConstructorParameters<typeof session.SSHSessionClientChannel>[0],
    readonly command: string,
    readonly input = "",
  ) {
    super(options);
  }
  override channelOpen(): void {
    for (const [name, data] of this.requests) {
      this.conn.sendRequest(this, name, data, true).addCallbacks(
        () => this.replies.push(`${name} ok`),
        () => this.replies.push(`${name} refused`),
      );
    }
    this.conn.sendRequest(this, "exec", NS(this.command), true).addCallback(() => {
      if (this.input) this.write(this.input);
      this.conn.sendEOF(this);
    });
  }
}

async function run(command: string, input = "", requests: Array<[string, Uint8Array]> = [], options: unix.UnixRealmOptions = {}): Promise<Exec> {
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(me, options));
  const ch = new Exec({ conn: client }, command, input);
  ch.requests = requests;
  client.openChannel(ch);
  await pump.until(() => ch.isClosed);
  return ch;
}

test("exec: stdout as data, stderr as extended data, the real exit status", async () => {
  const ch = await run("echo hello; echo oops >&2; exit 3");
  assert.equal(text(ch.stdout), "hello\n");
  assert.equal(text(ch.stderr), "oops\n");
  assert.equal(ch.exitStatus, 3);
});

test("exec: input reaches the command and EOF ends it (cat)", async () => {
  const ch = await run("cat", "This data will be echoed back to us by \"cat.\"\r\n");
  assert.equal(text(ch.stdout), 'This data will be echoed back to us by "cat."\r\n');
  assert.equal(ch.exitStatus, 0);
});

test("exec: a command that does not exist exits 127, and the server carries on", async () => {
  const ch = await run("no-such-command-twisted-ts");
  assert.equal(ch.exitStatus, 127);
  assert.match(text(ch.stderr), /not found/);
  const again = await run("echo still here");
  assert.equal(text(again.stdout), "still here\n");
});

test("exec: a command killed by a signal gives exit-signal", async () => {
  const ch = await run("kill -TERM $$");
  assert.equal(ch.exitStatus, undefined);
  assert.equal(ch.exitSignal?.signal, "TERM");
});

test("issue 14: a session's command is started by the reactor's process launcher, not the server's process; processLauncher: false starts it here", async () => {
  const reactor = new NodeReactor();
  const ch = await run("echo $PPID; cat; exit 4", "to stdin", [], { reactor });
  assert.equal(text(ch.stdout), `${reactor.processLauncher.launcherPid}\nto stdin`);
  assert.equal(ch.exitStatus, 4);
  const direct = await run("echo $PPID", "", [], { reactor, processLauncher: false });
  assert.equal(text(direct.stdout), `${process.pid}\n`);
  reactor.processLauncher.close();
});

test("env: a variable set by the client is in the command's environment; LD_PRELOAD is refused", async () => {
  const ch = await run("echo $TWISTED_TS_GREETING", "", [
    ["env", session.packRequest_env("TWISTED_TS_GREETING", "hi")],
    ["env", session.packRequest_env("LD_PRELOAD", "/nonexistent.so")],
  ]);
  assert.equal(text(ch.stdout), "hi\n");
  assert.deepEqual(ch.replies, ["env ok", "env refused"]);
});

test("UnixSSHRealm({ env }) starts every session with those variables", async () => {
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(me, { env: { TWISTED_TS_SETENV: "from-server" } }));
  const ch = new Exec({ conn: client }, "echo $TWISTED_TS_SETENV");
  client.openChannel(ch);
  await pump.until(() => ch.isClosed);
  assert.equal(text(ch.stdout), "from-server\n");
});

test("pty-req: refused with a clear reason when terminals are unavailable; exec still runs", async () => {
  // Without node-pty the refusal is the same; `pty: false` makes it so whatever is installed.
  const ch = await run("echo no tty", "", [["pty-req", session.packRequest_pty_req("xterm", [24, 80, 0, 0])]], { pty: false });
  assert.deepEqual(ch.replies, ["pty-req refused"]);
  assert.equal(text(ch.stdout), "no tty\n");
});

test("the howto's client closes right after EOF: cat's output still arrives", async () => {
  class CatChannel extends session.SSHSessionClientChannel {
    override channelOpen(): void {
      this.conn.sendRequest(this, "exec", NS("cat"), true).addCallback(() => {
        this.write('This data will be echoed back to us by "cat."\r\n');
        this.conn.sendEOF(this);
        this.loseConnection();
      });
    }
  }
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(me));
  const ch = new CatChannel({ conn: client });
  client.openChannel(ch);
  await pump.until(() => ch.isClosed);
  assert.equal(`We got this from "cat": ${text(ch.stdout)}`, 'We got this from "cat": This data will be echoed back to us by "cat."\r\n');
});

test("UnixSSHRealm.requestAvatar gives a UnixConchUser for the interface asked for, with a logout", () => {
  const token = new InterfaceToken<unknown>("IConchUser");
  const [iface, avatar, logout] = new unix.UnixSSHRealm().requestAvatar(me, null, token);
  assert.equal(iface, token);
  assert.ok(avatar instanceof unix.UnixConchUser);
  assert.equal(avatar.username, me);
  logout();
});

class Upper extends Protocol<ITransport> {
  override dataReceived(data: Uint8Array): void {
    const s = text(data);
    this.transport.write(s.toUpperCase());
    if (s.includes("\x04")) (this.transport as session.SSHSessionProcessProtocol).exit(0);
  }
}

test("in-process: commands are protocols; an unknown command exits 127 with a message", async () => {
  const user = new unix.InProcessConchUser("alice", {
    commands: {
      upper: () => new Upper(),
      greet: (argv) =>
        new (class extends Protocol<ITransport> {
          override connectionMade(): void {
            const t = this.transport as session.SSHSessionProcessProtocol;
            t.write(`hello ${argv.slice(1).join(" ")}\n`);
            t.exit(0);
          }
        })(),
    },
  });
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, user);
  const a = new Exec({ conn: client }, "greet big world");
  const b = new Exec({ conn: client }, "upper", "abc\x04");
  const c = new Exec({ conn: client }, "rm -rf /");
  for (const ch of [a, b, c]) client.openChannel(ch);
  pump.flush();
  assert.equal(text(a.stdout), "hello big world\n");
  assert.equal(a.exitStatus, 0);
  assert.equal(text(b.stdout), "ABC\x04");
  assert.equal(b.exitStatus, 0);
  assert.equal(c.exitStatus, 127);
  assert.equal(text(c.stderr), "rm: command not found\n");
  assert.ok([a, b, c].every((ch) => ch.isClosed));
});

test("in-process: a shell without a shell factory is refused", () => {
  class Shell extends session.SSHSessionClientChannel {
    refused = false;
    override channelOpen(): void {
      this.conn.sendRequest(this, "shell", new Uint8Array(), true).addErrback(() => {
        this.refused = true;
        this.loseConnection();
      });
    }
  }
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.InProcessConchUser("bob"));
  const ch = new Shell({ conn: client });
  client.openChannel(ch);
  pump.flush();
  assert.equal(ch.refused, true);
  assert.equal(ch.isClosed, true);
});

test("a client that stops reading bounds the server's memory: the command's output is paused, then resumes", async () => {
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(me));
  const size = 8 * 1024 * 1024;
  const ch = new Exec({ conn: client }, `head -c ${size} /dev/zero`);
  ch.pauseProducing();
  client.openChannel(ch);
  await pump.until(() => ch.stdout.length >= ch.localWindowSize);
  let turns = 0;
  await pump.until(() => ++turns > 200);
  const serverChannel = server.channels.get(0)!;
  // One window reached the client; the server holds at most about a pipe's worth more.
  assert.ok(ch.stdout.length <= ch.localWindowSize, `client got ${ch.stdout.length}`);
  assert.ok(serverChannel.bufferedAmount < 1024 * 1024, `server buffered ${serverChannel.bufferedAmount}`);
  ch.resumeProducing();
  await pump.until(() => ch.isClosed);
  assert.equal(ch.stdout.length, size);
  assert.equal(ch.exitStatus, 0);
});

test("signal: the client's signal request reaches the running command", async () => {
  class Interrupt extends session.SSHSessionClientChannel {
    override channelOpen(): void {
      this.conn.sendRequest(this, "exec", NS("exec sleep 30"), true).addCallback(() => {
        this.conn.sendRequest(this, "signal", NS("KILL"), true).addErrback(() => undefined);
      });
    }
  }
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(me));
  const ch = new Interrupt({ conn: client });
  client.openChannel(ch);
  // The signal can only be delivered once the (lazily spawned) process exists: retry until it is.
  await pump.until(() => ch.isClosed || (server.channels.get(0) as session.SSHSession | undefined)?.client?.transport?.pid !== undefined);
  if (!ch.isClosed) client.sendRequest(ch, "signal", NS("KILL"), true).addErrback(() => undefined);
  await pump.until(() => ch.isClosed);
  assert.equal(ch.exitSignal?.signal, "KILL");
});

test("exec: a large output in small writes arrives whole and in order, before the exit status", async () => {
  const ch = await run("seq -f '%015.0f' 0 99999; echo done >&2; exit 4");
  const lines = text(ch.stdout).split("\n");
  assert.equal(lines.length, 100_001);
  for (let i = 0; i < 100_000; i++) if (lines[i] !== String(i).padStart(15, "0")) assert.fail(`line ${i}: ${lines[i]}`);
  assert.equal(text(ch.stderr), "done\n");
  assert.equal(ch.exitStatus, 4);
});

/** The parts of a session SSHSessionProcessProtocol sends through, recording what it is given. */
function fakeSession(maxPacket: number) {
  const sent: string[] = [];
  const fake = {
    remoteMaxPacket: maxPacket,
    bufferedAmount: 0,
    write: (d: Uint8Array) => sent.push(`data ${Buffer.from(d).toString()}`),
    writeExtended: (_t: number, d: Uint8Array) => sent.push(`err ${Buffer.from(d).toString()}`),
    conn: { sendEOF: () => sent.push("eof") },
  };
  return { sent, pp: new session.SSHSessionProcessProtocol(fake as unknown as session.SSHSession) };
}

test("SSHSessionProcessProtocol gathers a turn's small reads into packets; stderr and EOF go out after what came before", async () => {
  const { sent, pp } = fakeSession(8);
  const scratch = Buffer.alloc(5);
  for (const piece of ["abc", "defgh", "ij"]) {
    // The process transport lends its read buffer: reuse it, as it does.
    scratch.write(piece.padEnd(5, "#"));
    pp.outReceived(scratch.subarray(0, piece.length));
    scratch.fill(0x2e);
  }
  // A full packet's worth went at once; the rest waits for the end of the turn...
  assert.deepEqual(sent, ["data abcdefgh"]);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(sent, ["data abcdefgh", "data ij"]);
  // ...or for stderr or EOF, which never overtake stdout.
  pp.outReceived(Buffer.from("kl"));
  pp.errReceived(Buffer.from("oops"));
  pp.outReceived(Buffer.from("mn"));
  pp.outConnectionLost();
  pp.errConnectionLost();
  assert.deepEqual(sent.slice(2), ["data kl", "err oops", "data mn", "eof"]);
});

// ---- issue 11: sessions run exactly as the user, as under sshd ----------------------------------

const myUid = process.getuid?.() ?? 0;
const ROOT = myUid === 0;
/** The account the tests run as, with a made-up home and shell: an explicit mapping, as a realm wants. */
const mine = (over: Partial<unix.PasswdEntry> = {}): unix.PasswdEntry => ({
  name: me,
  uid: myUid,
  gid: process.getgid?.() ?? 0,
  home: "/nonexistent/twts-home",
  shell: "/bin/sh",
  ...over,
});
const fakeChannel = {
  getPeer: () => ({ type: "TCP", family: "IPv4", host: "192.0.2.1", port: 2222 }),
  getHost: () => ({ type: "TCP", family: "IPv4", host: "127.0.0.1", port: 22 }),
} as unknown as SSHChannel;

function sessionOf(options: unix.UnixRealmOptions = {}, entry = mine()): unix.UnixSession {
  return new unix.UnixSession(new unix.UnixConchUser("login-name", { lookupUser: () => entry, ...options }), fakeChannel);
}

/** Every log event emitted while `fn` runs, as text. */
function logsOf(fn: () => void): string {
  const seen: string[] = [];
  const observer = (e: LogEvent): void => void seen.push(formatEvent(e));
  addObserver(observer);
  try {
    fn();
  } finally {
    removeObserver(observer);
  }
  return seen.join("\n");
}

test("environment(): sshd's variables over the client's, the realm's env over those, SSH_CLIENT/SSH_CONNECTION; nothing of the server's", () => {
  process.env["TWTS_SERVER_ONLY"] = "leak";
  try {
    const s = sessionOf({ env: { SHLVL: "1", FROM_REALM: "realm", CLIENT_AND_REALM: "realm wins" }, acceptEnv: () => true });
    s.setEnv("LANG", "C.UTF-8");
    s.setEnv("CLIENT_AND_REALM", "client");
    // With every name accepted, the client still cannot replace what sshd sets.
    s.setEnv("USER", "root");
    s.setEnv("PATH", "/tmp/evil");
    const path = ROOT ? unix.SUPERUSER_PATH : unix.DEFAULT_USER_PATH;
    assert.deepEqual({ ...s.environment() }, {
      LANG: "C.UTF-8",
      CLIENT_AND_REALM: "realm wins",
      USER: me,
      PATH: path,
      LOGNAME: me,
      HOME: "/nonexistent/twts-home",
      MAIL: `/var/mail/${me}`,
      SHELL: "/bin/sh",
      SHLVL: "1",
      FROM_REALM: "realm",
      SSH_CLIENT: "192.0.2.1 2222 22",
      SSH_CONNECTION: "192.0.2.1 2222 127.0.0.1 22",
    });
    s.term = "vt100";
    assert.equal(s.environment()["TERM"], "vt100");
  } finally {
    delete process.env["TWTS_SERVER_ONLY"];
  }
});

test("environment(): server-set variables go where sshd puts them: environment= under the realm's env, SSH_ORIGINAL_COMMAND last", () => {
  const s = sessionOf({ env: { BOTH: "realm", SSH_ORIGINAL_COMMAND: "from SetEnv" } });
  s.setServerEnv("BOTH", "key option");
  s.setServerEnv("FROM_KEY", "key option");
  s.setServerEnv("HOME", "/elsewhere");
  s.setServerEnv("SSH_ORIGINAL_COMMAND", "ls -l");
  const env = s.environment();
  assert.equal(env["BOTH"], "realm");
  assert.equal(env["FROM_KEY"], "key option");
  // As sshd: authorized_keys environment= (under PermitUserEnvironment) may replace HOME.
  assert.equal(env["HOME"], "/elsewhere");
  assert.equal(env["SSH_ORIGINAL_COMMAND"], "ls -l");
});

test("environment(): PATH is sshd's default user PATH, or the realm's userPath/superuserPath", () => {
  assert.equal(unix.DEFAULT_USER_PATH, "/usr/local/bin:/usr/bin:/bin:/usr/games");
  const s = sessionOf({ userPath: "/usr/bin:/bin", superuserPath: "/usr/sbin:/usr/bin" });
  assert.equal(s.environment()["PATH"], ROOT ? "/usr/sbin:/usr/bin" : "/usr/bin:/bin");
});

test("env: a client may set at most MAX_SESSION_ENV (128) variables, as sshd; maxEnv changes it; replacing one still works", () => {
  assert.equal(unix.MAX_SESSION_ENV, 128);
  const s = sessionOf();
  for (let i = 0; i < unix.MAX_SESSION_ENV; i++) s.setEnv(`V${i}`, "x");
  const log = logsOf(() => assert.throws(() => s.setEnv("ONE_MORE", "x"), avatar.EnvironmentVariableNotPermitted));
  assert.match(log, /env request refused: the client set 128 variables already/);
  s.setEnv("V0", "replaced");
  assert.equal(s.environment()["V0"], "replaced");
  const small = sessionOf({ maxEnv: 2 });
  small.setEnv("A", "1");
  small.setEnv("B", "2");
  assert.throws(() => small.setEnv("C", "3"), avatar.EnvironmentVariableNotPermitted);
  assert.equal(small.environment()["C"], undefined);
});

const alice: unix.PasswdEntry = { name: "twts-alice", uid: 1001, gid: 1002, home: "/home/twts-alice", shell: "/bin/bash" };
const tools = { setpriv: "/usr/bin/setpriv", perl: "/usr/bin/perl", isExecutable: () => true };

const HOME = { tty: false, home: "/home/twts-alice" };
const TTY = { tty: true, home: "/home/twts-alice" };

test("commandAsUser: as root, setpriv sets uid, gid and initgroups, then the exec helper enters the home and gives argv[0] as sshd does", () => {
  const exec = unix.commandAsUser(alice, "/bin/bash", unix.execArgv("/bin/bash", "id -G"), HOME, { serverUid: 0, ...tools });
  assert.deepEqual(exec, {
    file: "/usr/bin/setpriv",
    argv: [
      "/usr/bin/setpriv", "--reuid=1001", "--regid=1002", "--init-groups", "--",
      "/usr/bin/perl", "-e", unix.EXEC_HELPER, "--", "0", "/home/twts-alice", "/bin/bash", "bash", "-c", "id -G",
    ],
    // Spawned (as root) in "/"; the helper enters the home directory as the user.
    cwd: "/",
  });
  const shell = unix.commandAsUser(alice, "/bin/bash", unix.loginShellArgv("/bin/bash"), TTY, { serverUid: 0, ...tools });
  assert.deepEqual(shell.argv.slice(5), ["/usr/bin/perl", "-e", unix.EXEC_HELPER, "--", "1", "/home/twts-alice", "/bin/bash", "-bash"]);
});

test("commandAsUser: a server that is not root spawns its own user's command directly, and uses the helper only for a terminal", () => {
  assert.deepEqual(unix.commandAsUser(alice, "/bin/bash", ["bash", "-c", "id"], HOME, { serverUid: 1001, ...tools }), {
    file: "/bin/bash",
    argv: ["bash", "-c", "id"],
    cwd: "/home/twts-alice",
  });
  assert.deepEqual(unix.commandAsUser(alice, "/bin/bash", ["-bash"], TTY, { serverUid: 1001, ...tools }), {
    file: "/usr/bin/perl",
    argv: ["/usr/bin/perl", "-e", unix.EXEC_HELPER, "--", "1", "/home/twts-alice", "/bin/bash", "-bash"],
    cwd: "/home/twts-alice",
  });
  // A home that cannot be entered: "/", as sshd.
  const noHome = unix.commandAsUser(alice, "/bin/bash", ["bash"], HOME, { serverUid: 1001, ...tools, isExecutable: (p) => p !== "/home/twts-alice" });
  assert.equal(noHome.cwd, "/");
  assert.throws(
    () => unix.commandAsUser({ ...alice, uid: 1002 }, "/bin/bash", ["bash"], HOME, { serverUid: 1001, ...tools }),
    (e: unknown) => e instanceof unix.RunAsUnavailable && e.code === "ERR_CONCH_RUN_AS_UNAVAILABLE" && /not root/.test(e.message),
  );
});

test("commandAsUser fails closed: a missing setpriv or perl, or a relative path, refuses instead of running as root", () => {
  const missingTool = (p: string): boolean => p !== "/usr/bin/setpriv";
  assert.throws(
    () => unix.commandAsUser(alice, "/bin/bash", ["bash"], HOME, { serverUid: 0, ...tools, isExecutable: missingTool }),
    (e: unknown) => e instanceof unix.RunAsUnavailable && /\/usr\/bin\/setpriv is missing/.test(e.message),
  );
  assert.throws(
    () => unix.commandAsUser(alice, "/bin/bash", ["-bash"], TTY, { serverUid: 1001, ...tools, perl: "/nonexistent/perl", isExecutable: (p) => p.startsWith("/usr") }),
    (e: unknown) => e instanceof unix.RunAsUnavailable && /\/nonexistent\/perl is missing/.test(e.message),
  );
  assert.throws(
    () => unix.commandAsUser(alice, "/bin/bash", ["bash"], HOME, { serverUid: 0, ...tools, setpriv: "setpriv" }),
    (e: unknown) => e instanceof unix.RunAsUnavailable && /absolute path/.test(e.message),
  );
});

test("EXEC_HELPER execs the program with the argv[0] it is given and adds nothing to the environment", (t) => {
  if (!existsSync(unix.PERL_PATH)) {
    missing(t, `${unix.PERL_PATH} is missing (apt-get install perl-base)`);
    return;
  }
  const helper = (...args: string[]) => spawnSync(unix.PERL_PATH, ["-e", unix.EXEC_HELPER, "--", ...args], { env: { ONLY: "this" }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const dir = tempDir(t);
  assert.equal(helper("0", dir, "/usr/bin/env", "env").stdout, "ONLY=this\n");
  assert.equal(helper("0", dir, "/bin/sh", "-zz", "-c", 'echo "$0"; pwd').stdout, `-zz\n${dir}\n`);
  // Asked for SSH_TTY with no terminal on stdin, it sets none.
  assert.equal(helper("1", dir, "/usr/bin/env", "env").stdout, "ONLY=this\n");
  // A home it cannot enter: sshd's message, and the program still runs where it was started.
  const away = helper("0", join(dir, "gone"), "/bin/pwd", "pwd");
  assert.equal(away.stderr, `Could not chdir to home directory ${join(dir, "gone")}: No such file or directory\n`);
  assert.equal(away.stdout, `${process.cwd()}\n`);
  const failed = helper("0", dir, "/nonexistent/program", "program");
  assert.equal(failed.status, 127);
  assert.match(failed.stderr, /^\/nonexistent\/program: No such file or directory/);
});

test("getpwnam reads a passwd file; a damaged uid or gid is no account (never uid 0), an empty shell is /bin/sh", (t) => {
  const dir = tempDir(t);
  const path = join(dir, "passwd");
  writeFileSync(path, ["good:x:1001:1002:Good:/home/good:/bin/bash", "noshell:x:1003:1003::/home/noshell:", "broken:x::1002::/home/b:/bin/sh", "nan:x:1x:1::/:/bin/sh", ""].join("\n"));
  assert.deepEqual(unix.getpwnam("good", path), { name: "good", uid: 1001, gid: 1002, home: "/home/good", shell: "/bin/bash" });
  assert.equal(unix.getpwnam("noshell", path)?.shell, "/bin/sh");
  assert.equal(unix.getpwnam("broken", path), undefined);
  assert.equal(unix.getpwnam("nan", path), undefined);
  assert.equal(unix.getpwnam("absent", path), undefined);
  assert.equal(unix.getpwnam("good", join(dir, "no-such-file")), undefined);
});

/** What `fn` throws, and what was logged meanwhile. */
function refusal(fn: () => unknown): { err: unknown; log: string } {
  let err: unknown;
  const log = logsOf(() => {
    try {
      fn();
    } catch (e) {
      err = e;
    }
  });
  return { err, log };
}

test("resolveUnixUser: a name lookupUser does not know is refused, never the server's own user", () => {
  const { err, log } = refusal(() => unix.resolveUnixUser("nobody-here", () => undefined, 0));
  assert.ok(err instanceof unix.UnixUserRefused);
  assert.ok(err instanceof UnauthorizedLogin, "userauth counts it as a failed login");
  assert.equal(err.reason, "unknown-user");
  assert.equal(err.code, "ERR_CONCH_UNIX_USER_REFUSED");
  assert.match(log, /login refused: no such user "nobody-here"/);
});

test("resolveUnixUser: a server that is not root serves only its own user and says so", () => {
  const other = { ...alice, uid: 1002 };
  const { err, log } = refusal(() => unix.resolveUnixUser("twts-bob", () => other, 1001));
  assert.ok(err instanceof unix.UnixUserRefused);
  assert.equal(err.reason, "not-root");
  assert.match(log, /the server is not running as root \(uid 1001\) and can only serve its own user; refusing "twts-bob" \(uid 1002\)/);
  assert.deepEqual(unix.resolveUnixUser("twts-alice", () => alice, 1001), alice);
  assert.deepEqual(unix.resolveUnixUser("twts-bob", () => other, 0), other);
});

test("resolveUnixUser: an account whose shell does not exist or cannot run is refused, as sshd's allowed_user, never given /bin/sh", () => {
  for (const shell of ["/nonexistent/shell", "bin/bash"]) {
    const { err, log } = refusal(() => unix.resolveUnixUser("twts-alice", () => ({ ...alice, shell }), 0));
    assert.ok(err instanceof unix.UnixUserRefused);
    assert.equal(err.reason, "bad-shell");
    assert.match(log, new RegExp(`user "twts-alice" not allowed because shell ${shell} does not exist or is not executable`));
  }
  const notExecutable = refusal(() => unix.resolveUnixUser("twts-alice", () => alice, 0, () => false));
  assert.equal((notExecutable.err as unix.UnixUserRefused).reason, "bad-shell");
});

test("UnixSSHRealm: a login name that is not in /etc/passwd is refused (no fallback to the server's user)", () => {
  const token = new InterfaceToken<unknown>("IConchUser");
  assert.throws(() => new unix.UnixSSHRealm().requestAvatar("twts-no-such-user", null, token), unix.UnixUserRefused);
  // An explicit mapping is the way to serve such a name.
  const [, avatar] = new unix.UnixSSHRealm({ lookupUser: (n) => (n === "twts-no-such-user" ? mine() : undefined) }).requestAvatar("twts-no-such-user", null, token);
  assert.equal((avatar as unix.UnixConchUser).pwd.name, me);
});

test("exec: the command's environment holds what environment() gives and what the shell adds, nothing of the server's", async () => {
  process.env["TWTS_SERVER_ONLY"] = "leak";
  try {
    // SHLVL=1 keeps bash from reading the account's ~/.bashrc, whose additions are not ours.
    const ch = await run("env", "", [["env", session.packRequest_env("TWTS_CLIENT", "c")]], { env: { SHLVL: "1" } });
    const names = text(ch.stdout).trim().split("\n").map((l) => l.slice(0, l.indexOf("=")));
    const expected = ["HOME", "LOGNAME", "MAIL", "PATH", "SHELL", "USER", "TWTS_CLIENT", "SHLVL", "SSH_CLIENT", "SSH_CONNECTION"];
    for (const n of expected) assert.ok(names.includes(n), `${n} missing from ${names.join(" ")}`);
    // Whatever else there is, the user's shell put it there.
    for (const n of names) assert.ok(expected.includes(n) || ["PWD", "SHLVL", "_", "OLDPWD"].includes(n), `unexpected ${n}`);
  } finally {
    delete process.env["TWTS_SERVER_ONLY"];
  }
});

test("exec runs as the user's ids with the groups initgroups gives, in the home directory", async () => {
  const ch = await run('id -u; id -g; id -G; pwd; echo "$0"');
  const [uid, gid, groups, pwd, argv0] = text(ch.stdout).trim().split("\n");
  const entry = unix.getpwnam(me)!;
  assert.equal(Number(uid), entry.uid);
  assert.equal(Number(gid), entry.gid);
  assert.ok(groups!.split(" ").includes(String(entry.gid)));
  assert.equal(pwd, existsSync(entry.home) ? entry.home : "/");
  assert.equal(argv0, basename(entry.shell));
});

/** A client channel that asks for `subsystem` and sends EOF once it runs. */
class Subsystem extends session.SSHSessionClientChannel {
  refused = false;
  constructor(
    options: ConstructorParameters<typeof session.SSHSessionClientChannel>[0],
    readonly subsystem: string,
  ) {
    super(options);
  }
  override channelOpen(): void {
    this.conn.sendRequest(this, "subsystem", NS(this.subsystem), true).addCallbacks(
      () => this.conn.sendEOF(this),
      () => {
        this.refused = true;
        this.loseConnection();
      },
    );
  }
}

test("subsystems: the realm's command line runs as the user like exec (sshd's Subsystem); other names are refused", async () => {
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const user = new unix.UnixConchUser(me, { subsystems: { greet: 'echo "subsystem $0 as $(id -un)"; cat; exit 6' } });
  const pump = new Pump(client, server, user);
  const ok = new Subsystem({ conn: client }, "greet");
  const nope = new Subsystem({ conn: client }, "sftp");
  client.openChannel(ok);
  client.openChannel(nope);
  await pump.until(() => ok.isClosed && nope.isClosed);
  assert.equal(text(ok.stdout), `subsystem ${basename(user.getShell())} as ${me}\n`);
  assert.equal(ok.exitStatus, 6);
  assert.equal(nope.refused, true);
});

test("fail closed: as root, a missing setpriv refuses the session with a clear log line instead of running it as root", async (t) => {
  if (!ROOT) {
    missing(t, "only a server running as root needs setpriv (CI runs as root)");
    return;
  }
  const seen: string[] = [];
  const observer = (e: LogEvent): void => void seen.push(formatEvent(e));
  addObserver(observer);
  t.after(() => removeObserver(observer));
  class Refused extends session.SSHSessionClientChannel {
    reply = "";
    override channelOpen(): void {
      this.conn.sendRequest(this, "exec", NS("id -u"), true).addCallbacks(
        () => void (this.reply = "exec ok"),
        () => {
          this.reply = "exec refused";
          this.loseConnection();
        },
      );
    }
  }
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(me, { setpriv: "/nonexistent/setpriv" }));
  const ch = new Refused({ conn: client });
  client.openChannel(ch);
  await pump.until(() => ch.isClosed);
  assert.equal(ch.reply, "exec refused");
  assert.equal(text(ch.stdout), "");
  assert.match(seen.join("\n"), /session refused: cannot run a session for root: \/nonexistent\/setpriv is missing/);
});
