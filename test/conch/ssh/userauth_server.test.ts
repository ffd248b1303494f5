import { test } from "node:test";
import assert from "node:assert/strict";
import { Clock } from "@twisted-ts/internet/task";
import { Deferred } from "@twisted-ts/internet/defer";
import { portal as cportal, checkers as cchecks, credentials } from "@twisted-ts/cred";
import { userauth, common, keys } from "@twisted-ts/conch/ssh";
import { checkers, error } from "@twisted-ts/conch";
import { FakeTransport, NextService, TestRealm, hex, logLines, userKey, type TestAvatar } from "./_userauth_fakes.js";

const { NS, concatBytes } = common;
const enc = (s: string) => new TextEncoder().encode(s);

function makePortal(opts: { password?: boolean; keys?: boolean; kbd?: boolean } = {}) {
  const realm = new TestRealm();
  const p = new cportal.Portal(realm);
  const pw = new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame", "bøb": "hunter2" });
  if (opts.keys !== false) {
    p.registerChecker(new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [userKey("ed25519"), userKey("ecdsa"), userKey("rsa")] })));
  }
  if (opts.password !== false) p.registerChecker(pw);
  if (opts.kbd !== false) p.registerChecker(new cchecks.PAMPasswordChecker(pw));
  return { realm, portal: p };
}

function startServer(opts: { encrypted?: boolean; password?: boolean; keys?: boolean; kbd?: boolean; banner?: string } = {}) {
  const { realm, portal } = makePortal(opts);
  const clock = new Clock();
  const t = new FakeTransport({ isClient: false, portal, clock });
  t.encrypted = opts.encrypted ?? true;
  const s = new userauth.SSHUserAuthServer();
  if (opts.banner !== undefined) s.banner = opts.banner;
  s.transport = t;
  s.serviceStarted();
  return { s, t, clock, realm, portal };
}

function request(user: string | Uint8Array, method: string, extra: Uint8Array = new Uint8Array(0), service = "ssh-connection"): Uint8Array {
  return concatBytes(NS(user), NS(service), NS(method), extra);
}

function failure(methods: string, partial = false): [number, string] {
  return [userauth.MSG_USERAUTH_FAILURE, hex(concatBytes(NS(methods), Uint8Array.of(partial ? 1 : 0)))];
}

const pkts = (t: FakeTransport) => t.packets.map(([n, p]) => [n, hex(p)] as [number, string]);
const ALL = "publickey,password,keyboard-interactive";

function pkRequest(key: keys.Key, alg: string, sessionID: Uint8Array | undefined, user = "alice", sigKey = key): Uint8Array {
  if (sessionID === undefined) return request(user, "publickey", concatBytes(Uint8Array.of(0), NS(alg), NS(key.blob())));
  const sigData = concatBytes(
    NS(sessionID),
    Uint8Array.of(userauth.MSG_USERAUTH_REQUEST),
    NS(user),
    NS("ssh-connection"),
    NS("publickey"),
    Uint8Array.of(1),
    NS(alg),
    NS(key.blob()),
  );
  return request(user, "publickey", concatBytes(Uint8Array.of(1), NS(alg), NS(key.blob()), NS(sigKey.sign(sigData, alg))));
}

test("USERAUTH_REQUEST none: answered with the methods the portal's checkers allow, not counted", () => {
  const { s, t } = startServer();
  for (let i = 0; i < 30; i++) s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "none"));
  assert.equal(t.packets.length, 30);
  assert.deepEqual(pkts(t)[0], failure(ALL));
  assert.equal(s.loginAttempts, 0);
  assert.equal(t.disconnects.length, 0);
});

test("methods offered follow the registered credentials interfaces", () => {
  const { s } = startServer({ password: false, kbd: false });
  assert.deepEqual(s.supportedAuthentications, ["publickey"]);
  const { s: s2 } = startServer({ keys: false });
  assert.deepEqual(s2.supportedAuthentications, ["password", "keyboard-interactive"]);
});

test("password and keyboard-interactive are not offered until the inbound direction is encrypted", () => {
  const { s, t } = startServer({ encrypted: false });
  assert.deepEqual(s.supportedAuthentications, ["publickey"]);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  assert.equal(t.services.length, 0, "a password over a clear link is refused");
});

test("USERAUTH_REQUEST password: the right password logs in, sets avatar and logout, starts the next service", () => {
  const { s, t, realm } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  assert.deepEqual(pkts(t), [[userauth.MSG_USERAUTH_SUCCESS, ""]]);
  const avatar = t.avatar as TestAvatar;
  assert.equal(avatar, realm.avatars[0]);
  assert.equal(avatar.avatarId, "alice");
  assert.equal(avatar.mind.method, "password");
  assert.equal(avatar.mind.peerHost, "127.0.0.1");
  assert.ok(t.services[0] instanceof NextService && t.services[0].started);
  t.logoutFunction?.();
  assert.equal(avatar.loggedOut, true);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  assert.equal(t.packets.length, 1, "requests after success are ignored");
});

test("USERAUTH_REQUEST password: a wrong one is answered only after passwordDelay, with a log line", () => {
  const { s, t, clock } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("wrong"))));
  assert.equal(t.packets.length, 0);
  clock.advance(0.999);
  assert.equal(t.packets.length, 0);
  clock.advance(0.001);
  assert.deepEqual(pkts(t), [failure(ALL)]);
  assert.equal(s.loginAttempts, 1);
  assert.ok(logLines(t.events).some((l) => /"alice" from 127\.0\.0\.1 failed password/.test(l)), logLines(t.events).join("\n"));
});

test("USERAUTH_REQUEST password: UTF-8 usernames and a password change request", () => {
  const { s, t, clock } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("bøb", "password", concatBytes(Uint8Array.of(1), NS("hunter2"), NS("new"))));
  clock.advance(1);
  assert.deepEqual(pkts(t), [failure(ALL)], "changing the password is not supported");
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("bøb", "password", concatBytes(Uint8Array.of(0), NS("hunter2"))));
  assert.equal(t.packets.at(-1)?.[0], userauth.MSG_USERAUTH_SUCCESS);
});

for (const [kind, alg] of [
  ["ed25519", "ssh-ed25519"],
  ["ecdsa", "ecdsa-sha2-nistp256"],
  ["rsa", "rsa-sha2-512"],
  ["rsa", "rsa-sha2-256"],
] as const) {
  test(`USERAUTH_REQUEST publickey ${alg}: query gets PK_OK, then the signed request logs in`, () => {
    const { s, t } = startServer();
    const key = userKey(kind);
    s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(key.public(), alg, undefined));
    assert.deepEqual(pkts(t), [[userauth.MSG_USERAUTH_PK_OK, hex(concatBytes(NS(alg), NS(key.blob())))]]);
    s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(key, alg, t.sessionID));
    assert.equal(t.packets.at(-1)?.[0], userauth.MSG_USERAUTH_SUCCESS);
    const avatar = t.avatar as TestAvatar;
    assert.equal(avatar.mind.method, "publickey");
    const opts = avatar.mind.keyOptions as checkers.AuthorizedKeyOptions;
    assert.equal(opts.pty, true);
  });
}

test("USERAUTH_REQUEST publickey: SHA-1 ssh-rsa is refused by default, and an algorithm must match the key", () => {
  const { s, t } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(userKey("rsa"), "ssh-rsa", t.sessionID));
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(userKey("ed25519"), "rsa-sha2-256", undefined));
  t.clock.advance(1);
  assert.deepEqual(pkts(t), [failure(ALL), failure(ALL)]);
});

test("USERAUTH_REQUEST publickey: a key not authorized gets FAILURE at once, never PK_OK", () => {
  const { s, t } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(userKey("ed25519-b"), "ssh-ed25519", undefined));
  assert.deepEqual(pkts(t), [failure(ALL)]);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(userKey("ed25519"), "ssh-ed25519", undefined, "mallory"));
  assert.deepEqual(pkts(t), [failure(ALL), failure(ALL)]);
});

test("USERAUTH_REQUEST publickey: a bad signature is refused (after the delay) and logged", () => {
  const { s, t, clock } = startServer();
  const key = userKey("ed25519");
  const good = pkRequest(key, "ssh-ed25519", t.sessionID);
  const bad = good.slice();
  bad[bad.length - 1] = (bad[bad.length - 1] ?? 0) ^ 1;
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, bad);
  assert.equal(t.packets.length, 0);
  clock.advance(1);
  assert.deepEqual(pkts(t), [failure(ALL)]);
  assert.ok(logLines(t.events).some((l) => /failed publickey: Key signature invalid/.test(l)));
  // A signature by another key over the right data fails too.
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(key, "ssh-ed25519", t.sessionID, "alice", userKey("ed25519-b")));
  clock.advance(1);
  assert.deepEqual(pkts(t), [failure(ALL), failure(ALL)]);
  assert.equal(t.avatar, undefined);
});

test("USERAUTH_REQUEST publickey: a signature made for another session id is refused", () => {
  const { s, t, clock } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(userKey("ecdsa"), "ecdsa-sha2-nistp256", enc("another session")));
  clock.advance(1);
  assert.deepEqual(pkts(t), [failure(ALL)]);
  assert.equal(t.services.length, 0);
});

test("USERAUTH_REQUEST publickey: a signature blob naming another algorithm is refused", () => {
  const { s, t, clock } = startServer();
  const key = userKey("rsa");
  const sigData = concatBytes(NS(t.sessionID), Uint8Array.of(50), NS("alice"), NS("ssh-connection"), NS("publickey"), Uint8Array.of(1), NS("rsa-sha2-512"), NS(key.blob()));
  const sig = key.sign(sigData, "rsa-sha2-256");
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "publickey", concatBytes(Uint8Array.of(1), NS("rsa-sha2-512"), NS(key.blob()), NS(sig))));
  clock.advance(1);
  assert.deepEqual(pkts(t), [failure(ALL)]);
});

test("USERAUTH_REQUEST publickey: garbage in place of a key blob is refused", () => {
  const { s, t } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "publickey", concatBytes(Uint8Array.of(0), NS("ssh-ed25519"), NS("not a key"))));
  assert.deepEqual(pkts(t), [failure(ALL)]);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "publickey", Uint8Array.of(0, 0, 0)));
  assert.deepEqual(pkts(t), [failure(ALL), failure(ALL)], "a truncated request is a failed attempt");
  assert.equal(s.loginAttempts, 2);
});

test("USERAUTH_REQUEST with an unknown method fails and counts", () => {
  const { s, t } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "hostbased", enc("whatever")));
  assert.deepEqual(pkts(t), [failure(ALL)]);
  assert.equal(s.loginAttempts, 1);
  assert.ok(logLines(t.events).some((l) => /unsupported authentication method "hostbased"/.test(l)));
});

test("USERAUTH_REQUEST for a service that does not exist fails", () => {
  const { s, t, clock } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame")), "ssh-nothing"));
  clock.advance(1);
  assert.deepEqual(pkts(t), [failure(ALL)]);
  assert.equal(t.avatar, undefined);
  assert.equal(t.logoutFunction, undefined);
});

test("usernames with odd bytes are refused cleanly and the server goes on serving", () => {
  const { s, t, clock } = startServer();
  s.maxAuthTries = 10;
  const odd: Array<string | Uint8Array> = [
    Uint8Array.of(0xff, 0xfe, 0x80),
    "al\u0000ice",
    "__proto__",
    "constructor",
    "../../etc/passwd",
    "x".repeat(userauth.MAX_USERNAME_LENGTH + 1),
    "",
  ];
  for (const u of odd) s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request(u, "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  for (const _ of odd) clock.advance(1);
  assert.deepEqual(pkts(t), odd.map(() => failure(ALL)));
  assert.equal(t.disconnects.length, 0);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  assert.equal(t.packets.at(-1)?.[0], userauth.MSG_USERAUTH_SUCCESS);
});

test("a malformed USERAUTH_REQUEST ends the connection with PROTOCOL_ERROR", () => {
  const { s, t } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, Uint8Array.of(0, 0, 0, 9, 1));
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_PROTOCOL_ERROR, "malformed USERAUTH_REQUEST"]]);
});

test("a flood of failed attempts: the one that reaches maxAuthTries disconnects with NO_MORE_AUTH_METHODS_AVAILABLE", () => {
  const { s, t, clock } = startServer();
  s.maxAuthTries = 21;
  for (let i = 0; i < 20; i++) {
    s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS(`guess${i}`))));
    clock.advance(1);
  }
  assert.equal(t.packets.length, 20);
  assert.equal(t.disconnects.length, 0);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("guess20"))));
  clock.advance(1);
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "Too many authentication failures"]]);
  assert.ok(logLines(t.events).some((l) => /too many failed authentications from 127\.0\.0\.1/.test(l)));
});

test("requests sent ahead wait their turn, each failure keeps its delay; too many queued disconnects", () => {
  const { s, t, clock } = startServer();
  for (let i = 0; i < 3; i++) s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("bad"))));
  assert.equal(t.packets.length, 0);
  clock.advance(1);
  assert.equal(t.packets.length, 1);
  clock.advance(1);
  assert.equal(t.packets.length, 2);
  clock.advance(1);
  assert.equal(t.packets.length, 3);
  for (let i = 0; i < userauth.MAX_QUEUED_REQUESTS + 2; i++) {
    s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("bad"))));
  }
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_PROTOCOL_ERROR, "too many queued authentication requests"]]);
});

test("login timeout: a client that never finishes is disconnected; stopping the service cancels it", () => {
  const { s, t, clock } = startServer();
  clock.advance(s.loginTimeout - 1);
  assert.equal(t.disconnects.length, 0);
  clock.advance(1);
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "you took too long"]]);
  const { s: s2, t: t2, clock: c2 } = startServer();
  s2.serviceStopped();
  c2.advance(s2.loginTimeout * 2);
  assert.equal(t2.disconnects.length, 0);
  assert.equal(c2.getDelayedCalls().length, 0);
});

test("a successful login cancels the timeout", () => {
  const { s, t, clock } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  clock.advance(s.loginTimeout * 2);
  assert.equal(t.disconnects.length, 0);
});

test("USERAUTH_BANNER is sent once, before the answer to the first request", () => {
  const { s, t } = startServer({ banner: "Authorized users only\r\n" });
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "none"));
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "none"));
  assert.deepEqual(pkts(t), [
    [userauth.MSG_USERAUTH_BANNER, hex(concatBytes(NS("Authorized users only\r\n"), NS("")))],
    failure(ALL),
    failure(ALL),
  ]);
});

test("keyboard-interactive: INFO_REQUEST with the checker's prompt, INFO_RESPONSE logs in", () => {
  const { s, t } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "keyboard-interactive", concatBytes(NS(""), NS(""))));
  const infoRequest = concatBytes(NS(""), NS(""), NS(""), Uint8Array.of(0, 0, 0, 1), NS("Password: "), Uint8Array.of(0));
  assert.deepEqual(pkts(t), [[userauth.MSG_USERAUTH_INFO_REQUEST, hex(infoRequest)]]);
  s.packetReceived(userauth.MSG_USERAUTH_INFO_RESPONSE, concatBytes(Uint8Array.of(0, 0, 0, 1), NS("sesame")));
  assert.equal(t.packets.at(-1)?.[0], userauth.MSG_USERAUTH_SUCCESS);
  assert.equal((t.avatar as TestAvatar).mind.method, "keyboard-interactive");
});

test("keyboard-interactive: a wrong answer, a wrong number of answers, trailing bytes all fail after the delay", () => {
  const { s, t, clock } = startServer();
  const start = () => s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "keyboard-interactive", concatBytes(NS(""), NS(""))));
  for (const resp of [
    concatBytes(Uint8Array.of(0, 0, 0, 1), NS("nope")),
    concatBytes(Uint8Array.of(0, 0, 0, 2), NS("sesame"), NS("sesame")),
    concatBytes(Uint8Array.of(0, 0, 0, 1), NS("sesame"), Uint8Array.of(7)),
    Uint8Array.of(0, 0),
  ]) {
    start();
    assert.equal(t.packets.at(-1)?.[0], userauth.MSG_USERAUTH_INFO_REQUEST);
    s.packetReceived(userauth.MSG_USERAUTH_INFO_RESPONSE, resp);
    assert.equal(t.packets.at(-1)?.[0], userauth.MSG_USERAUTH_INFO_REQUEST, "not answered before the delay");
    clock.advance(1);
    assert.deepEqual(pkts(t).at(-1), failure(ALL));
  }
  assert.equal(s.loginAttempts, 4);
});

test("keyboard-interactive: INFO_RESPONSE with nothing pending is unimplemented; a new request abandons the exchange", () => {
  const { s, t, clock } = startServer();
  s.packetReceived(userauth.MSG_USERAUTH_INFO_RESPONSE, Uint8Array.of(0, 0, 0, 0));
  assert.equal(t.unimplemented, 1);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "keyboard-interactive", concatBytes(NS(""), NS(""))));
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  clock.advance(1);
  assert.deepEqual(
    t.packets.map(([n]) => n),
    [userauth.MSG_USERAUTH_INFO_REQUEST, userauth.MSG_USERAUTH_SUCCESS],
  );
  assert.equal(s.loginAttempts, 1, "the abandoned exchange counts");
});

test("partial success: SSHProtocolChecker needing two methods answers FAILURE with partial success set", () => {
  const realm = new TestRealm();
  const multi = new (class extends checkers.SSHProtocolChecker {
    override areDone(id: cchecks.AvatarId): boolean {
      return (this.successfulCredentials.get(id)?.length ?? 0) >= 2;
    }
  })();
  multi.registerChecker(new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [userKey("ed25519")] })));
  multi.registerChecker(new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" }));
  const p = new cportal.Portal(realm, [multi]);
  const t = new FakeTransport({ isClient: false, portal: p });
  const s = new userauth.SSHUserAuthServer();
  s.transport = t;
  s.serviceStarted();
  assert.deepEqual(s.supportedAuthentications, ["publickey", "password"]);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, pkRequest(userKey("ed25519"), "ssh-ed25519", t.sessionID));
  assert.deepEqual(pkts(t), [failure("password", true)]);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  assert.equal(t.packets.at(-1)?.[0], userauth.MSG_USERAUTH_SUCCESS);
  assert.equal(s.loginAttempts, 0);
});

test("a realm that answers later: the answer still starts the service; after the connection is gone it logs out", () => {
  const later: Array<Deferred<cportal.LoginResult<unknown>>> = [];
  let loggedOut = 0;
  const realm: cportal.IRealm = {
    requestAvatar: () => {
      const d = new Deferred<cportal.LoginResult<unknown>>();
      later.push(d);
      return d;
    },
  };
  const p = new cportal.Portal(realm, [new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" })]);
  const t = new FakeTransport({ isClient: false, portal: p });
  const s = new userauth.SSHUserAuthServer();
  s.transport = t;
  s.serviceStarted();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  assert.equal(t.packets.length, 0);
  s.serviceStopped();
  later[0]?.callback([userauth.IConchUserToken, {}, () => loggedOut++]);
  assert.equal(loggedOut, 1);
  assert.equal(t.packets.length, 0);
});

test("method messages 60-79 resolve through one table by the method in progress", () => {
  assert.equal(userauth.methodMessageName("publickey", 60), "MSG_USERAUTH_PK_OK");
  assert.equal(userauth.methodMessageName("password", 60), "MSG_USERAUTH_PASSWD_CHANGEREQ");
  assert.equal(userauth.methodMessageName("keyboard-interactive", 60), "MSG_USERAUTH_INFO_REQUEST");
  assert.equal(userauth.methodMessageName("keyboard-interactive", 61), "MSG_USERAUTH_INFO_RESPONSE");
  assert.equal(userauth.methodMessageName("none", 60), undefined);
  assert.equal(userauth.methodMessageName("constructor", 60), undefined);
  assert.equal(userauth.methodMessageName(undefined, 60), undefined);
});

test("the server needs a portal", () => {
  const t = new FakeTransport({ isClient: false });
  const s = new userauth.SSHUserAuthServer();
  s.transport = t;
  assert.throws(() => s.serviceStarted(), /no portal/);
  void credentials;
});

test("a realm that throws: the attempt fails, counts, and the error is logged with its failure", () => {
  const realm: cportal.IRealm = {
    requestAvatar: () => {
      throw new TypeError("realm exploded");
    },
  };
  const p = new cportal.Portal(realm, [new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" })]);
  const t = new FakeTransport({ isClient: false, portal: p });
  const s = new userauth.SSHUserAuthServer();
  s.transport = t;
  s.serviceStarted();
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  t.clock.advance(1);
  assert.deepEqual(pkts(t), [failure("password")]);
  assert.equal(s.loginAttempts, 1);
  const ev = t.events.find((e) => e.log_failure !== undefined);
  assert.ok(ev !== undefined && ev.log_level === "error");
  assert.equal(t.avatar, undefined);
});

test("credentials interfaces with no SSH method are not offered; none then lists nothing", () => {
  const p = new cportal.Portal(new TestRealm(), [new cchecks.AllowAnonymousAccess()]);
  const t = new FakeTransport({ isClient: false, portal: p });
  const s = new userauth.SSHUserAuthServer();
  s.transport = t;
  s.serviceStarted();
  assert.deepEqual(s.supportedAuthentications, []);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "none"));
  assert.deepEqual(pkts(t), [failure("")]);
});

test("a subclass adds a method: auth_<name> plus an interfaceToMethod entry (Twisted's extension point)", async () => {
  const { InterfaceToken, implementer } = await import("@twisted-ts/cred/interfaces");
  interface Token {
    readonly username: string;
    readonly token: string;
  }
  const IToken = new InterfaceToken<Token>("IToken", [credentials.ICredentials]);
  @implementer(IToken)
  class TokenCredentials implements Token {
    constructor(
      readonly username: string,
      readonly token: string,
    ) {}
  }
  const checker: cchecks.ICredentialsChecker = {
    credentialInterfaces: [IToken],
    requestAvatarId: (c) => {
      const t = c as Token;
      if (t.token !== "let-me-in") throw new Error("bad token");
      return t.username;
    },
  };
  class TokenServer extends userauth.SSHUserAuthServer {
    constructor() {
      super();
      this.interfaceToMethod.set(IToken, "x-token");
    }
    /** `string token` */
    auth_x_token(packet: Uint8Array) {
      const token = new TextDecoder().decode(new common.SSHReader(packet).string());
      return this.login(new TokenCredentials(this.username ?? "", token));
    }
  }
  const realm = new TestRealm();
  const t = new FakeTransport({ isClient: false, portal: new cportal.Portal(realm, [checker]) });
  const s = new TokenServer();
  s.transport = t;
  s.serviceStarted();
  assert.deepEqual(s.supportedAuthentications, ["x-token"]);
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "x-token", NS("wrong")));
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "x-token", NS("let-me-in")));
  assert.deepEqual(pkts(t), [failure("x-token"), [userauth.MSG_USERAUTH_SUCCESS, ""]]);
  assert.equal(s.loginAttempts, 1);
  assert.equal((t.avatar as TestAvatar).mind.method, "x-token");
});

test("USERAUTH_REQUEST publickey: only a wire blob is parsed, never a key file sent in its place", () => {
  const { s, t } = startServer();
  const key = userKey("ed25519");
  for (const text of [key.toString("openssh"), key.public().toString("openssh")]) {
    s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "publickey", concatBytes(Uint8Array.of(0), NS("ssh-ed25519"), NS(text))));
  }
  assert.deepEqual(pkts(t), [failure(ALL), failure(ALL)]);
});

test("MaxAuthTries: by default, as sshd, five failures are answered and the sixth disconnects", () => {
  const { s, t, clock } = startServer();
  assert.equal(s.maxAuthTries, userauth.DEFAULT_MAX_AUTH_TRIES);
  assert.equal(userauth.DEFAULT_MAX_AUTH_TRIES, 6);
  for (let i = 0; i < 7; i++) s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS(`g${i}`))));
  for (let i = 0; i < 10; i++) clock.advance(1);
  assert.equal(t.packets.length, 5, "five FAILUREs");
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "Too many authentication failures"]]);
  assert.equal(s.loginAttempts, 6);
});

test("MaxAuthTries: a publickey query answered with PK_OK and the none method do not count", () => {
  const { s, t } = startServer();
  s.maxAuthTries = 1;
  const key = userKey("ed25519");
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "none", new Uint8Array(0)));
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "publickey", concatBytes(Uint8Array.of(0), NS("ssh-ed25519"), NS(key.public().blob()))));
  assert.equal(s.loginAttempts, 0);
  assert.deepEqual(t.disconnects, []);
});

test("maxUsernameLength and maxQueuedRequests are settings", () => {
  const { s, t, clock } = startServer();
  s.maxUsernameLength = 4;
  s.maxQueuedRequests = 1;
  s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS("sesame"))));
  clock.advance(1);
  assert.deepEqual(pkts(t), [failure(ALL)], "alice is one byte too long");
  assert.equal(s.loginAttempts, 1);
  for (let i = 0; i < 3; i++) s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("bob", "password", concatBytes(Uint8Array.of(0), NS("x"))));
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_PROTOCOL_ERROR, "too many queued authentication requests"]]);
});

test("after disconnecting for too many failures, requests still queued are dropped", () => {
  const { s, t, clock } = startServer();
  s.attemptsBeforeDisconnect = 2;
  for (let i = 0; i < 6; i++) s.packetReceived(userauth.MSG_USERAUTH_REQUEST, request("alice", "password", concatBytes(Uint8Array.of(0), NS(`g${i}`))));
  for (let i = 0; i < 10; i++) clock.advance(1);
  assert.equal(t.packets.length, 2);
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "Too many authentication failures"]]);
  assert.equal(s.loginAttempts, 3);
});
