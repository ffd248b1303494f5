/**
 * authorized_keys options enforced by the layers that act, over the whole stack pumped in memory:
 * our client and server transports, userauth with SSHPublicKeyChecker reading real authorized_keys
 * lines, and the connection service. The realms are InProcessRealm and a realm of our own whose
 * avatar knows nothing of options, to show that every realm gets them for free.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { succeed } from "@twisted-ts/internet/defer";
import type { IProtocol, ITransport } from "@twisted-ts/internet/interfaces";
import { addObserver, formatEvent, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { Protocol } from "@twisted-ts/internet/protocol";
import { checkers as cchecks, portal as cportal } from "@twisted-ts/cred";
import type { AvatarId } from "@twisted-ts/cred/checkers";
import type { InterfaceToken } from "@twisted-ts/cred/interfaces";
import { avatar, checkers, error, unix } from "@twisted-ts/conch";
import { authopt, channel, common, connection, forwarding, keys, session, userauth } from "@twisted-ts/conch/ssh";
import { sshPair, type Pair } from "./_sshpair.js";

const userKey = keys.Key.generate("ed25519");
const text = (b: Uint8Array): string => Buffer.from(b).toString("utf8");

/** Writes a line and exits 0; `forced` reports SSH_ORIGINAL_COMMAND, `env` the whole environment. */
class Reply extends Protocol<ITransport> {
  constructor(private readonly line: string) {
    super();
  }
  override connectionMade(): void {
    const t = this.transport as session.SSHSessionProcessProtocol;
    t.write(`${this.line}\n`);
    t.exit(0);
  }
}

const IN_PROCESS: unix.InProcessOptions = {
  shell: () => new Reply("shell"),
  commands: {
    forced: (_argv, s) => new Reply(`forced ${s.env["SSH_ORIGINAL_COMMAND"] ?? "(unset)"}`),
    echo: (argv) => new Reply(argv.slice(1).join(" ")),
    env: (_argv, s) => new Reply(JSON.stringify(s.env)),
  },
};

/** An ISession of its own: records what it was asked; knows nothing of options. */
class RecordingSession implements avatar.ISession {
  constructor(private readonly user: RecordingUser) {}
  getPty(term: string): void {
    this.user.events.push(`pty ${term}`);
  }
  openShell(proto: session.SSHSessionProcessProtocol): void {
    this.user.events.push("shell");
    this.run(proto, "shell");
  }
  execCommand(proto: session.SSHSessionProcessProtocol, command: string): void {
    this.user.events.push(`exec ${command}`);
    this.run(proto, command);
  }
  setServerEnv(name: string, value: string): void {
    this.user.events.push(`serverenv ${name}=${value}`);
  }
  windowChanged(): void {}
  eofReceived(): void {}
  closed(): void {}
  private run(proto: session.SSHSessionProcessProtocol, line: string): void {
    const p: IProtocol = new Reply(line);
    p.makeConnection(proto);
    proto.makeConnection(session.wrapProtocol(p));
  }
}

/** A realm's avatar written without a thought for options: forwarding it says yes to everything. */
class RecordingUser extends avatar.ConchUser implements avatar.ISessionProvider {
  readonly events: string[] = [];
  constructor() {
    super();
    this.channelLookup["session"] = session.SSHSession;
    this.channelLookup["direct-tcpip"] = (o) => {
      const [[host, port]] = forwarding.unpackOpen_direct_tcpip(o.data);
      this.events.push(`direct-tcpip ${host}:${port}`);
      return new channel.SSHChannel(o);
    };
    this.channelLookup["direct-streamlocal@openssh.com"] = (o) => {
      this.events.push("direct-streamlocal");
      return new channel.SSHChannel(o);
    };
  }
  sessionFor(): avatar.ISession {
    return new RecordingSession(this);
  }
  global_tcpip_forward(data: Uint8Array): boolean {
    const [host, port] = forwarding.unpackGlobal_tcpip_forward(data);
    this.events.push(`tcpip-forward ${host}:${port}`);
    return true;
  }
  override gotGlobalRequest(requestType: string, data: Uint8Array): connection.GlobalRequestResult {
    if (requestType === "streamlocal-forward@openssh.com") {
      this.events.push("streamlocal-forward");
      return true;
    }
    return super.gotGlobalRequest(requestType, data);
  }
}

class Realm implements cportal.IRealm {
  readonly avatars: unknown[] = [];
  loggedOut = 0;
  constructor(private readonly make: () => unknown) {}
  requestAvatar(_id: AvatarId, _mind: unknown, ...ifaces: InterfaceToken<unknown>[]): cportal.LoginResult<unknown> {
    const a = this.make();
    this.avatars.push(a);
    return [ifaces[0]!, a, () => void this.loggedOut++];
  }
}

interface LoginOptions {
  /** The options part of alice's authorized_keys line ("" for none). */
  keyOptions?: string;
  make?: () => unknown;
  settings?: Partial<authopt.ServerAuthSettings>;
  /** Log in by password instead of by key. */
  password?: boolean;
  /** publickey then password both required (SSHProtocolChecker). */
  both?: boolean;
  /** Sets `credentials.keyOptions` to this after the key checker accepted (a checker of one's own). */
  customKeyOptions?: unknown;
  /** The login is expected to fail. */
  refused?: boolean;
}

interface Login {
  pair: Pair;
  conn: connection.SSHConnection;
  realm: Realm;
  logs: LogEvent[];
  settle(): void;
  logText(): string;
}

function login(t: { after(fn: () => void): void }, opts: LoginOptions = {}): Login {
  const line = `${opts.keyOptions ?? ""} ${userKey.public().toString("openssh")}`.trim();
  const lines = checkers.readAuthorizedKeyFile(`# alice\n${line}\n`);
  assert.equal(lines.length, 1, `the authorized_keys line parses: ${line}`);
  const pk = new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: lines }));
  const pw = new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" });
  let checkerList: cchecks.ICredentialsChecker[] = [pk, pw];
  if (opts.customKeyOptions !== undefined) {
    const custom = opts.customKeyOptions;
    checkerList = [
      {
        credentialInterfaces: pk.credentialInterfaces,
        requestAvatarId: (c: object) =>
          pk.requestAvatarId(c).addCallback((id: AvatarId) => {
            (c as { keyOptions?: unknown }).keyOptions = custom;
            return id;
          }),
      },
    ];
  }
  if (opts.both === true) {
    const both = new (class extends checkers.SSHProtocolChecker {
      override areDone(id: AvatarId): boolean {
        return (this.successfulCredentials.get(id)?.length ?? 0) >= 2;
      }
    })();
    both.registerChecker(pk);
    both.registerChecker(pw);
    checkerList = [both];
  }
  const realm = new Realm(opts.make ?? (() => new unix.InProcessConchUser("alice", IN_PROCESS)));
  const conn = new connection.SSHConnection();
  class Client extends userauth.SSHUserAuthClient {
    override preferredOrder = opts.password === true ? ["password"] : ["publickey", "password"];
    override getPublicKey() {
      return opts.password === true ? undefined : userKey.public();
    }
    override getPrivateKey() {
      return succeed(userKey);
    }
    override getPassword() {
      return succeed("sesame");
    }
  }
  const auth = new Client("alice", conn);
  const pair = sshPair({ configure: (client) => (client.connectionSecure = () => client.requestService(auth)), greet: false });
  pair.serverFactory.services = { "ssh-userauth": userauth.SSHUserAuthServer, "ssh-connection": connection.SSHConnection };
  pair.serverFactory.portal = new cportal.Portal(realm, checkerList);
  if (opts.settings !== undefined) pair.serverFactory.authSettings = opts.settings;
  const logs: LogEvent[] = [];
  const observer = (e: LogEvent): void => void logs.push(e);
  addObserver(observer);
  t.after(() => removeObserver(observer));
  const settle = (): void => {
    pair.pump.flush();
    for (let i = 0; i < 5; i++) {
      pair.clock.advance(1);
      pair.pump.flush();
    }
  };
  settle();
  if (opts.refused !== true) assert.equal(realm.avatars.length, 1, "logged in");
  return { pair, conn, realm, logs, settle, logText: () => logs.map((e) => formatEvent(e)).join("\n") };
}

/** A client channel of any type that records how its open went. */
class Opened extends channel.SSHChannel {
  state: "opening" | "open" | Error = "opening";
  constructor(type: string, conn: connection.SSHConnection) {
    super({ conn });
    this.name = type;
  }
  override channelOpen(): void {
    this.state = "open";
  }
  override openFailed(reason: Error): void {
    this.state = reason;
  }
}

function open(l: Login, type: string, extra: Uint8Array = new Uint8Array(0)): Opened {
  const ch = new Opened(type, l.conn);
  l.conn.openChannel(ch, extra);
  l.settle();
  return ch;
}

function openSession(l: Login): session.SSHSessionClientChannel {
  const ch = new session.SSHSessionClientChannel({ conn: l.conn });
  l.conn.openChannel(ch);
  l.settle();
  return ch;
}

function request(l: Login, ch: channel.SSHChannel, type: string, data: Uint8Array = new Uint8Array(0)): "ok" | "failed" {
  let outcome: "ok" | "failed" | undefined;
  l.conn.sendRequest(ch, type, data, true).addCallbacks(
    () => void (outcome = "ok"),
    () => void (outcome = "failed"),
  );
  l.settle();
  assert.notEqual(outcome, undefined, `${type} was answered`);
  return outcome!;
}

function globalRequest(l: Login, type: string, data: Uint8Array): "ok" | "failed" {
  let outcome: "ok" | "failed" | undefined;
  l.conn.sendGlobalRequest(type, data, true).addCallbacks(
    () => void (outcome = "ok"),
    () => void (outcome = "failed"),
  );
  l.settle();
  assert.notEqual(outcome, undefined, `${type} was answered`);
  return outcome!;
}

function prohibited(ch: Opened): void {
  assert.ok(ch.state instanceof error.ChannelOpenError, `refused, got ${String(ch.state)}`);
  assert.equal(ch.state.data, connection.OPEN_ADMINISTRATIVELY_PROHIBITED);
}

const PTY = session.packRequest_pty_req("xterm", [24, 80, 0, 0], []);

function peerOf(l: Login): string {
  return authopt.describePeer(() => l.pair.server.getPeer());
}

// ---- the record on the transport ---------------------------------------------------------------

test("USERAUTH_SUCCESS: the key's options, narrowed by the factory's authSettings, are on the transport", (t) => {
  const l = login(t, { keyOptions: 'no-pty,command="forced",permitopen="db:5432"', settings: { allowAgentForwarding: false } });
  const o = l.pair.server.authOptions!;
  assert.equal(o.permitPty, false);
  assert.equal(o.forceCommand, "forced");
  assert.deepEqual(o.permitOpen, [{ host: "db", port: 5432 }]);
  assert.equal(o.permitAgentForwarding, false, "AllowAgentForwarding no");
  assert.equal(o.permitPortForwarding, true);
});

test("USERAUTH_SUCCESS: a password login gets the server's settings alone", (t) => {
  const l = login(t, { keyOptions: "no-pty", password: true, settings: { permitTTY: false } });
  const o = l.pair.server.authOptions!;
  assert.equal(o.forceCommand, undefined);
  assert.equal(o.permitPty, false, "PermitTTY no");
  assert.equal(o.permitPortForwarding, true);
});

test("USERAUTH_SUCCESS: publickey then password (SSHProtocolChecker) keeps the key's options", (t) => {
  const l = login(t, { keyOptions: 'no-pty,command="forced"', both: true });
  assert.equal(l.pair.server.authOptions?.permitPty, false);
  assert.equal(l.pair.server.authOptions?.forceCommand, "forced");
  const ch = openSession(l);
  assert.equal(request(l, ch, "pty-req", PTY), "failed");
});

test("USERAUTH: options from a checker of one's own in the authorized_keys shape are enforced too", (t) => {
  const custom = { ...checkers.defaultAuthorizedKeyOptions(), pty: false };
  const l = login(t, { customKeyOptions: custom });
  assert.equal(l.pair.server.authOptions?.permitPty, false);
});

test("USERAUTH: a checker's keyOptions that cannot be read, or hold a bad value, fail the login (never unrestricted)", (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ noPty: true }, /failed publickey: the checker's keyOptions are not authorized_keys options/],
    [{ ...checkers.defaultAuthorizedKeyOptions(), permitOpen: ["no port"] }, /error checking publickey/],
  ];
  for (const [custom, logged] of cases) {
    const l = login(t, { customKeyOptions: custom, refused: true });
    assert.equal(l.pair.server.avatar, undefined);
    assert.equal(l.pair.server.authOptions, undefined);
    assert.ok(l.realm.avatars.length > 0);
    assert.equal(l.realm.loggedOut, l.realm.avatars.length, "the avatar the realm made was logged out");
    assert.match(l.logText(), logged);
  }
});

test("CHANNEL_OPEN: getChannel raises the typed NotPermittedError (OPEN_ADMINISTRATIVELY_PROHIBITED)", (t) => {
  const l = login(t, { keyOptions: "no-port-forwarding", make: () => new RecordingUser() });
  const server = l.pair.server.service as connection.SSHConnection;
  assert.throws(
    () => server.getChannel("direct-tcpip", 1024, 1024, directTcpip("db", 1)),
    (e: unknown) => e instanceof error.NotPermittedError && e.code === "ERR_SSH_NOT_PERMITTED" && e.data === connection.OPEN_ADMINISTRATIVELY_PROHIBITED,
  );
});

// ---- session ------------------------------------------------------------------------------------

test("exec under command=: the forced command runs, the client's command is SSH_ORIGINAL_COMMAND", (t) => {
  const l = login(t, { keyOptions: 'command="forced"' });
  const ch = openSession(l);
  assert.equal(request(l, ch, "exec", common.NS("echo hi")), "ok");
  assert.equal(text(ch.stdout), "forced echo hi\n");
  assert.equal(ch.exitStatus, 0);
  assert.match(l.logText(), /running the login's forced command instead of the exec requested by/);
});

test("shell under command=: the forced command runs, without SSH_ORIGINAL_COMMAND", (t) => {
  const l = login(t, { keyOptions: 'command="forced"' });
  const ch = openSession(l);
  assert.equal(request(l, ch, "shell"), "ok");
  assert.equal(text(ch.stdout), "forced (unset)\n");
});

test("subsystem under command=: the forced command runs with the subsystem name as SSH_ORIGINAL_COMMAND", (t) => {
  const l = login(t, { keyOptions: 'command="forced"' });
  const ch = openSession(l);
  assert.equal(request(l, ch, "subsystem", common.NS("sftp")), "ok");
  assert.equal(text(ch.stdout), "forced sftp\n");
});

test("command=: a client's own SSH_ORIGINAL_COMMAND is refused and the server's reaches the command", (t) => {
  const l = login(t, { keyOptions: 'command="env"' });
  const ch = openSession(l);
  assert.equal(request(l, ch, "env", session.packRequest_env("SSH_ORIGINAL_COMMAND", "forged")), "failed");
  assert.equal(request(l, ch, "exec", common.NS("ls -l")), "ok");
  assert.deepEqual(JSON.parse(text(ch.stdout)), { SSH_ORIGINAL_COMMAND: "ls -l" });
});

test("pty-req under no-pty: refused and logged at info with the peer; exec still runs", (t) => {
  const l = login(t, { keyOptions: "no-pty" });
  const ch = openSession(l);
  assert.equal(request(l, ch, "pty-req", PTY), "failed");
  const refusal = l.logs.find((e) => formatEvent(e).startsWith("refused pty-req"));
  assert.ok(refusal, l.logText());
  assert.equal(refusal.log_level, "info");
  assert.equal(formatEvent(refusal), `refused pty-req from ${peerOf(l)}: a pty is not permitted for this login`);
  assert.equal(request(l, ch, "exec", common.NS("echo still here")), "ok");
  assert.equal(text(ch.stdout), "still here\n");
});

test("pty-req without options is granted; PermitTTY no refuses it for every login", (t) => {
  const l = login(t);
  assert.equal(request(l, openSession(l), "pty-req", PTY), "ok");
  const off = login(t, { settings: { permitTTY: false } });
  assert.equal(request(off, openSession(off), "pty-req", PTY), "failed");
});

test("environment=: set only when PermitUserEnvironment is on, after the client's own", (t) => {
  const opts = 'environment="FOO=from key",environment="LANG=C"';
  const off = login(t, { keyOptions: opts });
  const a = openSession(off);
  assert.equal(request(off, a, "exec", common.NS("env")), "ok");
  assert.deepEqual(JSON.parse(text(a.stdout)), {}, "PermitUserEnvironment defaults to off");
  assert.deepEqual(off.pair.server.authOptions?.environment, []);

  const on = login(t, { keyOptions: opts, settings: { permitUserEnvironment: true } });
  const b = openSession(on);
  assert.equal(request(on, b, "env", session.packRequest_env("FOO", "from client")), "ok");
  assert.equal(request(on, b, "exec", common.NS("env")), "ok");
  assert.deepEqual(JSON.parse(text(b.stdout)), { FOO: "from key", LANG: "C" });
});

test("auth-agent-req@openssh.com under no-agent-forwarding: refused by the restriction, before any handler", (t) => {
  const l = login(t, { keyOptions: "no-agent-forwarding" });
  assert.equal(request(l, openSession(l), "auth-agent-req@openssh.com"), "failed");
  assert.match(l.logText(), /refused auth-agent-req@openssh\.com from .*: agent forwarding is not permitted for this login/);
  const free = login(t);
  assert.equal(request(free, openSession(free), "auth-agent-req@openssh.com"), "failed", "this avatar does not forward agents");
  assert.doesNotMatch(free.logText(), /refused auth-agent-req/);
  assert.match(free.logText(), /refusing agent forwarding: the avatar has no agentForwardingSocket/);
});

test("x11-req under no-X11-forwarding: refused by the restriction even where X11Forwarding is on", (t) => {
  const l = login(t, { keyOptions: "no-X11-forwarding", settings: { x11Forwarding: true } });
  assert.equal(request(l, openSession(l), "x11-req", new Uint8Array(9)), "failed");
  assert.match(l.logText(), /refused x11-req from .*: X11 forwarding is not permitted for this login/);
  const free = login(t, { settings: { x11Forwarding: true } });
  assert.equal(request(free, openSession(free), "x11-req", new Uint8Array(9)), "failed", "not implemented");
  assert.doesNotMatch(free.logText(), /refused x11-req/);
  const off = login(t);
  assert.equal(request(off, openSession(off), "x11-req", new Uint8Array(9)), "failed");
  assert.match(off.logText(), /refused x11-req/, "X11Forwarding defaults to no");
});

test("a realm of one's own gets command= and no-pty for free: its ISession sees only the forced command", (t) => {
  const l = login(t, { keyOptions: 'command="backup --daily",no-pty', make: () => new RecordingUser() });
  const user = l.realm.avatars[0] as RecordingUser;
  const ch = openSession(l);
  assert.equal(request(l, ch, "pty-req", PTY), "failed");
  assert.equal(request(l, ch, "exec", common.NS("rm -rf /")), "ok");
  assert.deepEqual(user.events, ["serverenv SSH_ORIGINAL_COMMAND=rm -rf /", "exec backup --daily"]);
  assert.equal(text(ch.stdout), "backup --daily\n");
});

// ---- forwarding ---------------------------------------------------------------------------------

const directTcpip = (host: string, port: number): Uint8Array => forwarding.packOpen_direct_tcpip([host, port], ["127.0.0.1", 40000]);
const tcpipForward = (host: string, port: number): Uint8Array => forwarding.packGlobal_tcpip_forward([host, port]);

test("direct-tcpip under no-port-forwarding: OPEN_ADMINISTRATIVELY_PROHIBITED, the avatar never asked", (t) => {
  const l = login(t, { keyOptions: "no-port-forwarding", make: () => new RecordingUser() });
  const ch = open(l, "direct-tcpip", directTcpip("127.0.0.1", 22));
  prohibited(ch);
  assert.deepEqual((l.realm.avatars[0] as RecordingUser).events, []);
  const refusal = l.logs.find((e) => formatEvent(e).startsWith("refused direct-tcpip channel"));
  assert.equal(refusal?.log_level, "info");
  assert.equal(formatEvent(refusal!), `refused direct-tcpip channel from ${peerOf(l)}: port forwarding is not permitted for this login`);
  assert.doesNotMatch(l.logText(), /channel open failed/, "a refusal is not an error");
});

test("tcpip-forward under no-port-forwarding: REQUEST_FAILURE, the avatar never asked", (t) => {
  const l = login(t, { keyOptions: "no-port-forwarding", make: () => new RecordingUser() });
  assert.equal(globalRequest(l, "tcpip-forward", tcpipForward("localhost", 8080)), "failed");
  assert.equal(globalRequest(l, "cancel-tcpip-forward", tcpipForward("localhost", 8080)), "failed", "the avatar's answer: nothing to cancel");
  assert.deepEqual((l.realm.avatars[0] as RecordingUser).events, []);
  assert.match(l.logText(), /refused tcpip-forward request from .*: port forwarding is not permitted/);
});

test("streamlocal forwarding under no-port-forwarding: both directions refused", (t) => {
  const l = login(t, { keyOptions: "no-port-forwarding", make: () => new RecordingUser() });
  prohibited(open(l, "direct-streamlocal@openssh.com", new common.SSHWriter().string("/tmp/s").string("").uint32(0).finish()));
  assert.equal(globalRequest(l, "streamlocal-forward@openssh.com", common.NS("/tmp/s")), "failed");
  assert.deepEqual((l.realm.avatars[0] as RecordingUser).events, []);
});

test("forwarding without options reaches the avatar; AllowTcpForwarding no refuses it for every login", (t) => {
  const l = login(t, { make: () => new RecordingUser() });
  assert.equal(open(l, "direct-tcpip", directTcpip("db", 5432)).state, "open");
  assert.equal(globalRequest(l, "tcpip-forward", tcpipForward("localhost", 8080)), "ok");
  assert.equal(open(l, "direct-streamlocal@openssh.com", new common.SSHWriter().string("/tmp/s").string("").uint32(0).finish()).state, "open");
  assert.deepEqual((l.realm.avatars[0] as RecordingUser).events, ["direct-tcpip db:5432", "tcpip-forward localhost:8080", "direct-streamlocal"]);

  const off = login(t, { make: () => new RecordingUser(), settings: { allowTcpForwarding: false } });
  prohibited(open(off, "direct-tcpip", directTcpip("db", 5432)));
  assert.equal(globalRequest(off, "tcpip-forward", tcpipForward("localhost", 8080)), "failed");
  assert.equal(open(off, "direct-streamlocal@openssh.com", new common.SSHWriter().string("/tmp/s").string("").uint32(0).finish()).state, "open", "AllowStreamLocalForwarding is apart");
});

test("permitopen: direct-tcpip only to the listed destinations ([v6], port *)", (t) => {
  const l = login(t, { keyOptions: 'permitopen="127.0.0.1:2222",permitopen="[::1]:*"', make: () => new RecordingUser() });
  assert.equal(open(l, "direct-tcpip", directTcpip("127.0.0.1", 2222)).state, "open");
  assert.equal(open(l, "direct-tcpip", directTcpip("::1", 80)).state, "open");
  prohibited(open(l, "direct-tcpip", directTcpip("127.0.0.1", 2223)));
  prohibited(open(l, "direct-tcpip", directTcpip("localhost", 2222)));
  assert.deepEqual((l.realm.avatars[0] as RecordingUser).events, ["direct-tcpip 127.0.0.1:2222", "direct-tcpip ::1:80"]);
  assert.match(l.logText(), /refused direct-tcpip channel from .*: 127\.0\.0\.1:2223 is not a permitopen destination/);
});

test("permitlisten: tcpip-forward only on the listed addresses; port 0 only under port *", (t) => {
  const l = login(t, { keyOptions: 'permitlisten="localhost:8080",permitlisten="9090"', make: () => new RecordingUser() });
  assert.equal(globalRequest(l, "tcpip-forward", tcpipForward("localhost", 8080)), "ok");
  assert.equal(globalRequest(l, "tcpip-forward", tcpipForward("", 9090)), "ok", "a bare port allows any address");
  assert.equal(globalRequest(l, "tcpip-forward", tcpipForward("localhost", 8081)), "failed");
  assert.equal(globalRequest(l, "tcpip-forward", tcpipForward("0.0.0.0", 8080)), "failed");
  assert.equal(globalRequest(l, "tcpip-forward", tcpipForward("localhost", 0)), "failed");
  assert.deepEqual((l.realm.avatars[0] as RecordingUser).events, ["tcpip-forward localhost:8080", "tcpip-forward :9090"]);
  assert.match(l.logText(), /refused tcpip-forward request from .*: localhost:8081 is not a permitlisten address/);
});

test("tun@openssh.com: refused under PermitTunnel no; with it, tunnel= limits the device", (t) => {
  const tun = (unit: number): Uint8Array => new common.SSHWriter().uint32(1).uint32(unit).finish();
  const l = login(t, { keyOptions: 'tunnel="3"', make: () => new RecordingUser() });
  prohibited(open(l, "tun@openssh.com", tun(3)));
  assert.match(l.logText(), /refused tun@openssh\.com channel from .*: tunnels are not permitted \(PermitTunnel\)/);

  const on = login(t, { keyOptions: 'tunnel="3"', make: () => new RecordingUser(), settings: { permitTunnel: true } });
  prohibited(open(on, "tun@openssh.com", tun(4)));
  assert.match(on.logText(), /tunnel device 4 is not the one permitted \(3\)/);
  const any = open(on, "tun@openssh.com", tun(authopt.SSH_TUNID_ANY));
  assert.ok(any.state instanceof error.ChannelOpenError);
  assert.equal(any.state.data, connection.OPEN_UNKNOWN_CHANNEL_TYPE, "permitted, then the avatar has no tunnels");
});

// ---- restrict and its re-enables -----------------------------------------------------------------

test("restrict: no pty, no forwarding, no agent; restrict,pty gets a pty and still no forwarding", (t) => {
  const r = login(t, { keyOptions: "restrict", make: () => new RecordingUser() });
  assert.equal(request(r, openSession(r), "pty-req", PTY), "failed");
  prohibited(open(r, "direct-tcpip", directTcpip("db", 5432)));
  assert.equal(request(r, openSession(r), "auth-agent-req@openssh.com"), "failed");
  assert.match(r.logText(), /refused auth-agent-req@openssh\.com/);

  const p = login(t, { keyOptions: "restrict,pty", make: () => new RecordingUser() });
  assert.equal(request(p, openSession(p), "pty-req", PTY), "ok");
  prohibited(open(p, "direct-tcpip", directTcpip("db", 5432)));
  assert.equal(globalRequest(p, "tcpip-forward", tcpipForward("localhost", 8080)), "failed");
});

test("restrict,port-forwarding,permitopen: forwarding back on, to the permitted destination only; no pty", (t) => {
  const l = login(t, { keyOptions: 'restrict,port-forwarding,permitopen="db:5432"', make: () => new RecordingUser() });
  assert.equal(open(l, "direct-tcpip", directTcpip("db", 5432)).state, "open");
  prohibited(open(l, "direct-tcpip", directTcpip("db", 5433)));
  assert.equal(request(l, openSession(l), "pty-req", PTY), "failed");
});

test("restrict,agent-forwarding,x11-forwarding: those requests pass the restriction (then find no handler)", (t) => {
  const l = login(t, { keyOptions: "restrict,agent-forwarding,x11-forwarding", settings: { x11Forwarding: true } });
  assert.equal(request(l, openSession(l), "auth-agent-req@openssh.com"), "failed");
  assert.equal(request(l, openSession(l), "x11-req", new Uint8Array(9)), "failed");
  assert.doesNotMatch(l.logText(), /refused (auth-agent|x11)/);
  assert.equal(l.pair.server.authOptions?.permitUserRc, false, "user-rc stays off");
  assert.equal(l.pair.server.authOptions?.restricted, true);
});

/** A realm's avatar that forwards agents (IAgentForwardingAvatar) to a path of its own choosing. */
class AgentForwardingUser extends RecordingUser {
  asked = 0;
  agentForwardingSocket(): string {
    this.asked++;
    return "/tmp/ssh-test/agent.1";
  }
}

test("auth-agent-req@openssh.com: an avatar with agentForwardingSocket gives the session SSH_AUTH_SOCK; restrict refuses it before the avatar is asked", (t) => {
  const l = login(t, { make: () => new AgentForwardingUser() });
  const user = l.realm.avatars[0] as AgentForwardingUser;
  const ch = openSession(l);
  assert.equal(request(l, ch, "auth-agent-req@openssh.com"), "ok");
  assert.equal(request(l, ch, "exec", common.NS("true")), "ok");
  assert.deepEqual(user.events, ["serverenv SSH_AUTH_SOCK=/tmp/ssh-test/agent.1", "exec true"]);
  const r = login(t, { keyOptions: "restrict", make: () => new AgentForwardingUser() });
  assert.equal(request(r, openSession(r), "auth-agent-req@openssh.com"), "failed");
  assert.equal((r.realm.avatars[0] as AgentForwardingUser).asked, 0);
  const off = login(t, { settings: { allowAgentForwarding: false }, make: () => new AgentForwardingUser() });
  assert.equal(request(off, openSession(off), "auth-agent-req@openssh.com"), "failed");
  assert.equal((off.realm.avatars[0] as AgentForwardingUser).asked, 0);
});
