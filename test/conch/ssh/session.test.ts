import { test } from "node:test";
import assert from "node:assert/strict";
import { ProcessDone, ProcessTerminated } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import type { IAddress, IProcessTransport, IProducer, IPushProducer, ITransport } from "@twisted-ts/internet/interfaces";
import { Protocol } from "@twisted-ts/internet/protocol";
import { addObserver, formatEvent, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { common, connection, session } from "@twisted-ts/conch/ssh";
import { avatar } from "@twisted-ts/conch";
import { attach, cat, hex, Pump, text, u32, type FakeTransport } from "./_connection_fakes.js";

const { NS } = common;

test("packRequest_pty_req: geometry is (rows, cols, xpixel, ypixel) but the wire carries cols first", () => {
  const packed = session.packRequest_pty_req("xterm", [24, 80, 640, 480], cat("\x01\x00\x00\x00\x03\x00"));
  assert.equal(hex(packed), hex(cat(NS("xterm"), u32(80, 24, 640, 480), NS(cat("\x01\x00\x00\x00\x03\x00")))));
  const [term, size, modes] = session.parseRequest_pty_req(packed);
  assert.equal(term, "xterm");
  assert.deepEqual(size, [24, 80, 640, 480]);
  assert.deepEqual(modes, [[1, 3]]);
});

test("packRequest_pty_req: opcode/value pairs are encoded and ended with TTY_OP_END", () => {
  const packed = session.packRequest_pty_req("vt100", [1, 2, 3, 4], [[53, 1]]);
  assert.equal(hex(packed), hex(cat(NS("vt100"), u32(2, 1, 3, 4), NS(cat("\x35", u32(1), "\x00")))));
});

test("window-change: packed cols first, parsed back to (rows, cols, xpixel, ypixel)", () => {
  const packed = session.packRequest_window_change([24, 80, 0, 0]);
  assert.equal(hex(packed), hex(u32(80, 24, 0, 0)));
  assert.deepEqual(session.parseRequest_window_change(packed), [24, 80, 0, 0]);
});

test("exit-status and exit-signal payloads", () => {
  assert.equal(session.parseRequest_exit_status(u32(127)), 127);
  const sig = session.packRequest_exit_signal("TERM", true, "killed", "en");
  assert.equal(hex(sig), hex(cat(NS("TERM"), "\x01", NS("killed"), NS("en"))));
  assert.deepEqual(session.parseRequest_exit_signal(sig), { signal: "TERM", coreDumped: true, errorMessage: "killed", languageTag: "en" });
});

/** A process transport that records what the session does to the "process". */
class FakeProcess implements IProcessTransport {
  readonly pid = 4242;
  written: string[] = [];
  stdinClosed = false;
  signals: Array<string | number> = [];
  lost = false;
  write(data: Uint8Array | string): void {
    this.written.push(typeof data === "string" ? data : text(data));
  }
  writeSequence(seq: Iterable<Uint8Array | string>): void {
    for (const d of seq) this.write(d);
  }
  writeToChild(_fd: number, data: Uint8Array | string): void {
    this.write(data);
  }
  closeStdin(): void {
    this.stdinClosed = true;
  }
  closeStdout(): void {}
  closeStderr(): void {}
  closeChildFD(): void {}
  signalProcess(signal: string | number): void {
    this.signals.push(signal);
  }
  loseConnection(): void {
    this.lost = true;
  }
  registerProducer(_p: IProducer, _s: boolean): void {}
  unregisterProducer(): void {}
  getPeer(): IAddress {
    return { type: "UNIX", family: "UNIX", name: null, host: "", port: 0 };
  }
  getHost(): IAddress {
    return this.getPeer();
  }
}

class FakeSession implements avatar.ISession {
  events: string[] = [];
  proc = new FakeProcess();
  pp: session.SSHSessionProcessProtocol | undefined;
  env: Record<string, string> = {};
  refusePty = false;
  getPty(term: string, size: avatar.WindowSize): void {
    if (this.refusePty) throw new Error("no pty here");
    this.events.push(`pty ${term} ${size.join(",")}`);
  }
  openShell(pp: session.SSHSessionProcessProtocol): void {
    this.events.push("shell");
    this.pp = pp;
    pp.makeConnection(this.proc);
  }
  execCommand(pp: session.SSHSessionProcessProtocol, command: string): void {
    if (command === "fail") throw new Error("cannot run");
    this.events.push(`exec ${command}`);
    this.pp = pp;
    pp.makeConnection(this.proc);
  }
  /** Runs "proc" as a process, as sshd's `Subsystem` does; "echo" is the avatar's, "broken" throws. */
  execSubsystem(pp: session.SSHSessionProcessProtocol, subsystem: string): boolean {
    if (subsystem === "broken") throw new Error("cannot start");
    if (subsystem !== "proc") return false;
    this.events.push(`subsystem ${subsystem}`);
    this.pp = pp;
    pp.makeConnection(this.proc);
    return true;
  }
  windowChanged(size: avatar.WindowSize): void {
    this.events.push(`window ${size.join(",")}`);
  }
  eofReceived(): void {
    this.events.push("eof");
    this.proc.closeStdin();
  }
  closed(): void {
    this.events.push("closed");
  }
  setEnv(name: string, value: string): void {
    if (name === "LD_PRELOAD") throw new avatar.EnvironmentVariableNotPermitted();
    this.env[name] = value;
  }
  signal(name: string): void {
    this.proc.signalProcess(name);
  }
}

class EchoSubsystem extends Protocol<ITransport> {
  override dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
}

class SessionUser extends avatar.ConchUser implements avatar.ISessionProvider {
  sessions: FakeSession[] = [];
  constructor() {
    super();
    this.channelLookup["session"] = session.SSHSession;
    this.subsystemLookup["echo"] = () => new EchoSubsystem();
  }
  sessionFor(): avatar.ISession {
    const s = new FakeSession();
    this.sessions.push(s);
    return s;
  }
}

/** A server connection with one session channel opened by "the client" (peer channel 7). */
function serverSession(): { conn: connection.SSHConnection; t: FakeTransport; user: SessionUser; ch: session.SSHSession } {
  const user = new SessionUser();
  const conn = new connection.SSHConnection();
  const t = attach(conn, false, user);
  conn.ssh_CHANNEL_OPEN(cat(NS("session"), u32(7, 0x200000, 0x8000)));
  t.take();
  return { conn, t, user, ch: conn.channels.get(0) as session.SSHSession };
}

const request = (conn: connection.SSHConnection, name: string, data: Uint8Array | string = new Uint8Array()): void =>
  conn.ssh_CHANNEL_REQUEST(cat(u32(0), NS(name), "\x01", data));

const replies = (t: FakeTransport): number[] => t.take().map(([n]) => n);

test("exec: the avatar's session runs the command; SUCCESS goes back", () => {
  const { conn, t, user } = serverSession();
  request(conn, "exec", NS("ls -l"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS]);
  assert.deepEqual(user.sessions[0]!.events, ["exec ls -l"]);
});

test("exec: a long command line is logged cut at info (with its length) and whole only at debug", () => {
  const events: LogEvent[] = [];
  const obs = (e: LogEvent): void => void events.push(e);
  addObserver(obs);
  try {
    const { conn, t } = serverSession();
    const command = `echo ${"x".repeat(200_000)} SECRET-TAIL`;
    request(conn, "exec", NS(command));
    assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS]);
  } finally {
    removeObserver(obs);
  }
  const mine = events.filter((e) => e.log_namespace === "twisted-ts.conch.ssh.session");
  const info = mine.filter((e) => e.log_level !== "debug").map(formatEvent);
  assert.ok(info.some((l) => l.includes("(200017 characters)")), info.join("\n"));
  for (const l of info) {
    assert.ok(l.length < session.MAX_LOGGED_COMMAND + 200, `info line of ${l.length} characters`);
    assert.ok(!l.includes("SECRET-TAIL"));
  }
  assert.ok(mine.some((e) => e.log_level === "debug" && formatEvent(e).includes("SECRET-TAIL")));
});

test("exec: a session that throws refuses with FAILURE", () => {
  const { conn, t } = serverSession();
  request(conn, "exec", NS("fail"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_FAILURE]);
});

test("exec: a second shell or exec on one channel is refused", () => {
  const { conn, t } = serverSession();
  request(conn, "exec", NS("a"));
  request(conn, "shell");
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS, connection.MSG_CHANNEL_FAILURE]);
});

test("data that arrives before exec is buffered and replayed to the process", () => {
  const { conn, user } = serverSession();
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("early ")));
  request(conn, "exec", NS("cat"));
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("late")));
  assert.deepEqual(user.sessions[0]!.proc.written, ["early ", "late"]);
});

test("pty-req and window-change reach the session in (rows, cols, …) order; a refused pty is FAILURE", () => {
  const { conn, t, user } = serverSession();
  request(conn, "pty-req", session.packRequest_pty_req("xterm", [24, 80, 0, 0]));
  request(conn, "window-change", session.packRequest_window_change([30, 100, 0, 0]));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS, connection.MSG_CHANNEL_SUCCESS]);
  assert.deepEqual(user.sessions[0]!.events, ["pty xterm 24,80,0,0", "window 30,100,0,0"]);
  user.sessions[0]!.refusePty = true;
  request(conn, "pty-req", session.packRequest_pty_req("xterm", [24, 80, 0, 0]));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_FAILURE]);
});

test("env: accepted through setEnv; EnvironmentVariableNotPermitted refuses", () => {
  const { conn, t, user } = serverSession();
  request(conn, "env", session.packRequest_env("LANG", "C.UTF-8"));
  request(conn, "env", session.packRequest_env("LD_PRELOAD", "/evil.so"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS, connection.MSG_CHANNEL_FAILURE]);
  assert.deepEqual(user.sessions[0]!.env, { LANG: "C.UTF-8" });
});

test("signal: delivered to the session once it runs", () => {
  const { conn, t, user } = serverSession();
  request(conn, "exec", NS("sleep 100"));
  request(conn, "signal", NS("INT"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS, connection.MSG_CHANNEL_SUCCESS]);
  assert.deepEqual(user.sessions[0]!.proc.signals, ["INT"]);
});

test("stdout is data, stderr is extended data 1; EOF only after both are closed; exit-status before CLOSE", () => {
  const { conn, t, user } = serverSession();
  request(conn, "exec", NS("cmd"));
  t.take();
  const pp = user.sessions[0]!.pp!;
  pp.childDataReceived(1, cat("out"));
  pp.childDataReceived(2, cat("err"));
  pp.childConnectionLost(1);
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_DATA, connection.MSG_CHANNEL_EXTENDED_DATA]);
  pp.childConnectionLost(2);
  pp.processEnded(new Failure(new ProcessTerminated(3)));
  const out = t.take();
  assert.deepEqual(out.map(([n]) => n), [connection.MSG_CHANNEL_EOF, connection.MSG_CHANNEL_REQUEST, connection.MSG_CHANNEL_CLOSE]);
  assert.equal(hex(out[1]![1]), hex(cat(u32(7), NS("exit-status"), "\x00", u32(3))));
});

test("a clean exit sends exit-status 0", () => {
  const { conn, t, user } = serverSession();
  request(conn, "exec", NS("true"));
  t.take();
  user.sessions[0]!.pp!.processEnded(new Failure(new ProcessDone()));
  const out = t.take();
  assert.equal(hex(out[0]![1]), hex(cat(u32(7), NS("exit-status"), "\x00", u32(0))));
});

test("a process killed by a signal sends exit-signal with the name without SIG", () => {
  const { conn, t, user } = serverSession();
  request(conn, "exec", NS("sleep 100"));
  t.take();
  user.sessions[0]!.pp!.processEnded(new Failure(new ProcessTerminated(null, "SIGTERM")));
  const out = t.take();
  assert.deepEqual(out.map(([n]) => n), [connection.MSG_CHANNEL_REQUEST, connection.MSG_CHANNEL_CLOSE]);
  assert.equal(hex(out[0]![1]), hex(cat(u32(7), NS("exit-signal"), "\x00", NS("TERM"), "\x00", NS(""), NS(""))));
});

test("EOF from the client reaches the session (the process's stdin closes); closing reaches session.closed", () => {
  const { conn, t, user } = serverSession();
  request(conn, "exec", NS("cat"));
  conn.ssh_CHANNEL_EOF(u32(0));
  assert.equal(user.sessions[0]!.proc.stdinClosed, true);
  conn.ssh_CHANNEL_CLOSE(u32(0));
  t.clock.advance(session.SESSION_CLOSE_GRACE);
  assert.deepEqual(user.sessions[0]!.events, ["exec cat", "eof", "closed"]);
  assert.equal(user.sessions[0]!.proc.lost, true);
  assert.ok(replies(t).includes(connection.MSG_CHANNEL_CLOSE));
});

/** A session channel whose client gives a window of `window` bytes and 32 KiB packets, running "cmd". */
function execWithWindow(window: number): { conn: connection.SSHConnection; t: FakeTransport; pp: session.SSHSessionProcessProtocol } {
  const user = new SessionUser();
  const conn = new connection.SSHConnection();
  const t = attach(conn, false, user);
  conn.ssh_CHANNEL_OPEN(cat(NS("session"), u32(7, window, 0x8000)));
  request(conn, "exec", NS("cmd"));
  t.take();
  return { conn, t, pp: user.sessions[0]!.pp! };
}

test("EOF waits behind output still queued for the client's window", () => {
  const { conn, t, pp } = execWithWindow(4);
  pp.childDataReceived(1, cat("abcdefgh"));
  pp.childConnectionLost(1);
  pp.childConnectionLost(2);
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_DATA]);
  conn.ssh_CHANNEL_WINDOW_ADJUST(u32(0, 100));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_DATA, connection.MSG_CHANNEL_EOF]);
});

test("subsystem: the avatar's protocol runs over the channel", () => {
  const { conn, t } = serverSession();
  request(conn, "subsystem", NS("echo"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS]);
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("ping")));
  const out = t.take();
  assert.equal(hex(out[0]![1]), hex(cat(u32(7), NS("ping"))));
  request(conn, "subsystem", NS("nope"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_FAILURE]);
});

test("subsystem: the session's own subsystem process (execSubsystem) runs first and hears EOF; a throwing one is refused", () => {
  const { conn, t, user } = serverSession();
  request(conn, "subsystem", NS("proc"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS]);
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("input")));
  conn.ssh_CHANNEL_EOF(u32(0));
  const s = user.sessions[0]!;
  assert.deepEqual(s.events, ["subsystem proc", "eof"]);
  assert.deepEqual(s.proc.written, ["input"]);
  // The process ends the channel when it exits, not the EOF.
  assert.deepEqual(replies(t), []);
  const other = serverSession();
  request(other.conn, "subsystem", NS("broken"));
  assert.deepEqual(replies(other.t), [connection.MSG_CHANNEL_FAILURE]);
});

test("subsystem: an in-process subsystem ends on EOF (EOF, exit-status 0, CLOSE) even when an env request made the session first", () => {
  const { conn, t } = serverSession();
  request(conn, "env", session.packRequest_env("LANG", "C.UTF-8"));
  request(conn, "subsystem", NS("echo"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS, connection.MSG_CHANNEL_SUCCESS]);
  conn.ssh_CHANNEL_EOF(u32(0));
  // As sshd ends internal-sftp: scp (SFTP mode) checks the exit status.
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_EOF, connection.MSG_CHANNEL_REQUEST, connection.MSG_CHANNEL_CLOSE]);
});

test("an avatar without sessions refuses shell", () => {
  class Bare extends avatar.ConchUser {
    constructor() {
      super();
      this.channelLookup["session"] = session.SSHSession;
    }
  }
  const conn = new connection.SSHConnection();
  const t = attach(conn, false, new Bare());
  conn.ssh_CHANNEL_OPEN(cat(NS("session"), u32(7, 0x200000, 0x8000)));
  t.take();
  request(conn, "shell");
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_FAILURE]);
});

test("loopback: an in-process echo shell through SSHSession and a client channel", () => {
  class EchoShell extends Protocol<ITransport> {
    override dataReceived(data: Uint8Array): void {
      this.transport.write(data);
      if (text(data).includes("bye")) (this.transport as session.SSHSessionProcessProtocol).exit(0);
    }
  }
  class ShellUser extends avatar.ConchUser implements avatar.ISession {
    constructor() {
      super();
      this.channelLookup["session"] = session.SSHSession;
    }
    getPty(): void {}
    openShell(pp: session.SSHSessionProcessProtocol): void {
      const shell = new EchoShell();
      shell.makeConnection(pp);
      pp.makeConnection(session.wrapProtocol(shell));
    }
    execCommand(): void {
      throw new Error("no commands");
    }
    windowChanged(): void {}
    eofReceived(): void {}
    closed(): void {}
  }
  class Client extends session.SSHSessionClientChannel {
    override channelOpen(): void {
      this.conn.sendRequest(this, "pty-req", session.packRequest_pty_req("xterm", [24, 80, 0, 0]), true);
      this.conn.sendRequest(this, "shell", new Uint8Array(), true).addCallback(() => this.write("hello bye"));
    }
  }
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new ShellUser());
  const ch = new Client({ conn: client });
  client.openChannel(ch);
  pump.flush();
  assert.equal(text(ch.stdout), "hello bye");
  assert.equal(ch.exitStatus, 0);
  assert.equal(ch.isClosed, true);
});

test("CHANNEL_CLOSE while a command runs: its input closes, its output still goes out, then CLOSE", () => {
  const { conn, t, user } = serverSession();
  request(conn, "exec", NS("cat"));
  t.take();
  conn.ssh_CHANNEL_DATA(cat(u32(0), NS("ping")));
  conn.ssh_CHANNEL_EOF(u32(0));
  conn.ssh_CHANNEL_CLOSE(u32(0));
  assert.deepEqual(replies(t), []);
  const s = user.sessions[0]!;
  assert.equal(s.proc.stdinClosed, true);
  s.pp!.childDataReceived(1, cat("ping"));
  s.pp!.childConnectionLost(1);
  s.pp!.childConnectionLost(2);
  s.pp!.processEnded(new Failure(new ProcessDone()));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_DATA, connection.MSG_CHANNEL_EOF, connection.MSG_CHANNEL_REQUEST, connection.MSG_CHANNEL_CLOSE]);
  assert.deepEqual(s.events, ["exec cat", "eof", "closed"]);
});

test("CHANNEL_CLOSE while a command ignores its input: hung up after SESSION_CLOSE_GRACE seconds", () => {
  const { conn, t, user } = serverSession();
  request(conn, "exec", NS("sleep 100"));
  t.take();
  conn.ssh_CHANNEL_CLOSE(u32(0));
  assert.deepEqual(replies(t), []);
  t.clock.advance(session.SESSION_CLOSE_GRACE);
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_CLOSE]);
  assert.equal(user.sessions[0]!.proc.lost, true);
  assert.deepEqual(user.sessions[0]!.events.at(-1), "closed");
});

test("a command that ends inside its exec request closes only after the SUCCESS reply", () => {
  class Quick implements avatar.ISession {
    getPty(): void {}
    openShell(): void {}
    execCommand(pp: session.SSHSessionProcessProtocol): void {
      pp.makeConnection(session.wrapProtocol(new Protocol()));
      pp.write("done\n");
      pp.exit(0);
    }
    windowChanged(): void {}
    eofReceived(): void {}
    closed(): void {}
  }
  class U extends avatar.ConchUser {
    constructor() {
      super();
      this.channelLookup["session"] = session.SSHSession;
    }
    sessionFor(): avatar.ISession {
      return new Quick();
    }
  }
  const conn = new connection.SSHConnection();
  const t = attach(conn, false, new U());
  conn.ssh_CHANNEL_OPEN(cat(NS("session"), u32(7, 0x200000, 0x8000)));
  t.take();
  request(conn, "exec", NS("quick"));
  assert.deepEqual(replies(t), [
    connection.MSG_CHANNEL_SUCCESS,
    connection.MSG_CHANNEL_DATA,
    connection.MSG_CHANNEL_EOF,
    connection.MSG_CHANNEL_REQUEST,
    connection.MSG_CHANNEL_CLOSE,
  ]);
});

test("an in-process command may register its own producer on the session transport", () => {
  class Streamer extends Protocol<ITransport> {
    override connectionMade(): void {
      this.transport.registerProducer({ pauseProducing() {}, resumeProducing() {}, stopProducing() {} } as IPushProducer, true);
      this.transport.write("streaming");
    }
  }
  class S implements avatar.ISession {
    getPty(): void {}
    openShell(): void {}
    execCommand(pp: session.SSHSessionProcessProtocol): void {
      const p = new Streamer();
      p.makeConnection(pp);
      pp.makeConnection(session.wrapProtocol(p));
    }
    windowChanged(): void {}
    eofReceived(): void {}
    closed(): void {}
  }
  class U extends avatar.ConchUser {
    constructor() {
      super();
      this.channelLookup["session"] = session.SSHSession;
    }
    sessionFor(): avatar.ISession {
      return new S();
    }
  }
  const conn = new connection.SSHConnection();
  const t = attach(conn, false, new U());
  conn.ssh_CHANNEL_OPEN(cat(NS("session"), u32(7, 0x200000, 0x8000)));
  t.take();
  request(conn, "exec", NS("stream"));
  assert.deepEqual(replies(t), [connection.MSG_CHANNEL_SUCCESS, connection.MSG_CHANNEL_DATA]);
});

test("stdout read into a reused buffer: whole packets go out without a copy while the window takes them, the rest is copied, so rewriting the buffer afterwards changes nothing the client gets", () => {
  const { conn, t, pp } = execWithWindow(100_000);
  const expected: number[] = [];
  const reused = Buffer.alloc(96 * 1024);
  for (const [fill, n] of [[1, 96 * 1024], [2, 64 * 1024], [3, 5000]] as const) {
    reused.fill(fill, 0, n);
    pp.childDataReceived(1, reused.subarray(0, n));
    for (let i = 0; i < n; i++) expected.push(fill);
    // The process transport reads the next chunk into the same memory.
    reused.fill(0xee);
  }
  conn.ssh_CHANNEL_WINDOW_ADJUST(u32(0, 1 << 20));
  pp.childConnectionLost(1);
  const got: number[] = [];
  const sizes: number[] = [];
  for (const [n, payload] of t.take()) {
    if (n !== connection.MSG_CHANNEL_DATA) continue;
    const data = payload.subarray(8);
    sizes.push(data.length);
    got.push(...data);
  }
  assert.equal(got.length, expected.length);
  assert.ok(got.every((b, i) => b === expected[i]), "the client got the bytes as they were written");
  assert.deepEqual(sizes.slice(0, 3), [0x8000, 0x8000, 0x8000], "the first 96 KiB as three whole packets");
});
