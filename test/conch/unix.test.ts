/**
 * The Unix realm's sessions run real commands (through reactor.spawnProcess); the in-process
 * realm serves protocols. Client and server connections are joined in memory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { userInfo } from "node:os";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { Protocol } from "@twisted-ts/internet/protocol";
import { InterfaceToken } from "@twisted-ts/cred/interfaces";
import { common, connection, session } from "@twisted-ts/conch/ssh";
import { unix } from "@twisted-ts/conch";
import { Pump, text } from "./ssh/_connection_fakes.js";

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
