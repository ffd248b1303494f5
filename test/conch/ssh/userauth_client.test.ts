import { test } from "node:test";
import assert from "node:assert/strict";
import { Deferred, succeed, fail } from "@twisted-ts/internet/defer";
import { userauth, common, keys, service } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import { FakeTransport, NextService, hex, userKey } from "./_userauth_fakes.js";

const { NS, concatBytes, SSHReader } = common;
const NONE = (user = "foo", svc = "ssh-connection") => hex(concatBytes(NS(user), NS(svc), NS("none")));

function failurePacket(methods: string, partial = false): Uint8Array {
  return concatBytes(NS(methods), Uint8Array.of(partial ? 1 : 0));
}

class Client extends userauth.SSHUserAuthClient {
  keys: Array<keys.Key | Uint8Array | string | undefined> = [];
  privateKeys = new Map<string, keys.Key>();
  passwords: Array<string | undefined> = [];
  answers: string[][] = [];
  asked: Array<[string, string, ReadonlyArray<readonly [string, boolean]>]> = [];
  banners: Array<[string, string]> = [];
  failedWith: error.NoMoreAuthMethodsError | undefined;
  getPublicKeyCalls = 0;
  override getPublicKey() {
    this.getPublicKeyCalls++;
    return this.keys.shift();
  }
  override getPrivateKey() {
    const k = this.privateKeys.get(hex(this.lastPublicKey!.blob()));
    return k === undefined ? fail<keys.Key>(new Error("no private key")) : succeed(k);
  }
  override getPassword(_prompt?: string) {
    if (this.passwords.length === 0) return undefined;
    const p = this.passwords.shift();
    return p === undefined ? undefined : succeed(p);
  }
  override getGenericAnswers(name: string, instruction: string, prompts: ReadonlyArray<readonly [string, boolean]>) {
    this.asked.push([name, instruction, prompts]);
    return succeed(this.answers.shift() ?? []);
  }
  override displayBanner(message: string, language: string): void {
    this.banners.push([message, language]);
  }
  override authenticationFailed(e: error.NoMoreAuthMethodsError): void {
    this.failedWith = e;
  }
}

function start(setup?: (c: Client) => void) {
  const next = new NextService();
  const c = new Client("foo", next);
  setup?.(c);
  const t = new FakeTransport({ isClient: true });
  c.transport = t;
  c.serviceStarted();
  return { c, t, next };
}

const pkts = (t: FakeTransport) => t.packets.map(([n, p]) => [n, hex(p)] as [number, string]);

test("serviceStarted asks with the none method", () => {
  const { t } = start();
  assert.deepEqual(pkts(t), [[userauth.MSG_USERAUTH_REQUEST, NONE()]]);
});

test("USERAUTH_SUCCESS starts the instance and fires whenDone", async () => {
  const { c, t, next } = start();
  const done = c.whenDone();
  c.packetReceived(userauth.MSG_USERAUTH_SUCCESS, new Uint8Array(0));
  assert.deepEqual(t.services, [next]);
  assert.ok(next.started);
  await done;
});

test("publickey: offers the key without a signature, signs after PK_OK over the session id", () => {
  const key = userKey("ed25519");
  const { c, t } = start((c) => {
    c.keys = [key.public()];
    c.privateKeys.set(hex(key.blob()), key);
  });
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password"));
  const query = concatBytes(NS("foo"), NS("ssh-connection"), NS("publickey"), Uint8Array.of(0), NS("ssh-ed25519"), NS(key.blob()));
  assert.deepEqual(pkts(t)[1], [userauth.MSG_USERAUTH_REQUEST, hex(query)]);
  c.packetReceived(userauth.MSG_USERAUTH_PK_OK, concatBytes(NS("ssh-ed25519"), NS(key.blob())));
  const [num, signed] = t.packets[2]!;
  assert.equal(num, userauth.MSG_USERAUTH_REQUEST);
  const r = new SSHReader(signed);
  assert.equal(new TextDecoder().decode(r.string()), "foo");
  r.string();
  r.string();
  assert.equal(r.boolean(), true);
  assert.equal(new TextDecoder().decode(r.string()), "ssh-ed25519");
  assert.deepEqual(r.string(), key.blob());
  const sig = r.string();
  const data = concatBytes(NS(t.sessionID), Uint8Array.of(50), NS("foo"), NS("ssh-connection"), NS("publickey"), Uint8Array.of(1), NS("ssh-ed25519"), NS(key.blob()));
  assert.ok(key.public().verify(sig, data));
});

for (const [serverAlgs, expected] of [
  [undefined, "ssh-rsa"],
  [["rsa-sha2-256", "ssh-ed25519"], "rsa-sha2-256"],
  [["ssh-rsa", "rsa-sha2-256", "rsa-sha2-512"], "rsa-sha2-512"],
  [["ssh-ed25519"], "ssh-rsa"],
] as const) {
  test(`publickey: an RSA key is offered as ${expected} when server-sig-algs is ${JSON.stringify(serverAlgs)}`, () => {
    const key = userKey("rsa");
    const { c, t } = start((c) => {
      c.keys = [key.public()];
      c.privateKeys.set(hex(key.blob()), key);
    });
    t.serverSigAlgs = serverAlgs;
    c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey"));
    const r = new SSHReader(t.packets[1]![1]);
    r.string();
    r.string();
    r.string();
    r.boolean();
    assert.equal(new TextDecoder().decode(r.string()), expected);
    c.packetReceived(userauth.MSG_USERAUTH_PK_OK, new Uint8Array(0));
    const s = new SSHReader(t.packets[2]![1]);
    for (let i = 0; i < 3; i++) s.string();
    s.boolean();
    s.string();
    s.string();
    const sig = new SSHReader(s.string());
    assert.equal(new TextDecoder().decode(sig.string()), expected, "the signature is made with the same algorithm");
  });
}

test("publickey: keys are tried in order, getPublicKey is asked again after a refusal, then password", () => {
  const k1 = userKey("ed25519");
  const k2 = userKey("ecdsa");
  const { c, t } = start((c) => {
    c.keys = [k1.public(), k2.blob(), undefined];
    c.passwords = ["pw"];
  });
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password"));
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password"));
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password"));
  const methods = t.packets.slice(1).map(([, p]) => {
    const r = new SSHReader(p);
    r.string();
    r.string();
    const m = new TextDecoder().decode(r.string());
    if (m !== "publickey") return m;
    r.boolean();
    r.string();
    return hex(r.string());
  });
  assert.deepEqual(methods, [hex(k1.blob()), hex(k2.blob()), "password"]);
  assert.equal(c.getPublicKeyCalls, 3);
  assert.deepEqual(c.triedPublicKeys.map((k) => hex(k.blob())), [hex(k1.blob()), hex(k2.blob())]);
  assert.equal(hex(t.packets[3]![1]), hex(concatBytes(NS("foo"), NS("ssh-connection"), NS("password"), Uint8Array.of(0), NS("pw"))));
});

test("publickey: a key already refused is not offered again (the howto's getPublicKey returns the same blob each time)", () => {
  const k = userKey("ed25519");
  const { c, t } = start((c) => {
    c.keys = [k.blob(), k.blob(), k.blob()];
  });
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey"));
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey"));
  assert.equal(t.packets.length, 2);
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "no more authentication methods available"]]);
});

test("publickey: getPublicKey may return an OpenSSH public key line or a Deferred", () => {
  const k = userKey("ecdsa");
  const { c, t } = start((c) => {
    const d = new Deferred<userauth.PublicKeyLike>();
    (c as userauth.SSHUserAuthClient).getPublicKey = () => d;
    queueMicrotask(() => undefined);
    d.callback(k.public().toString("openssh"));
  });
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey"));
  assert.equal(t.packets.length, 2);
});

test("publickey: no private key means the next method", () => {
  const k = userKey("ed25519");
  const { c, t } = start((c) => {
    c.keys = [k.public()];
    c.passwords = ["pw"];
  });
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password"));
  c.packetReceived(userauth.MSG_USERAUTH_PK_OK, new Uint8Array(0));
  assert.deepEqual(pkts(t)[2], [userauth.MSG_USERAUTH_REQUEST, NONE()], "asks again with none");
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password"));
  assert.match(hex(t.packets[3]![1]), new RegExp(hex(NS("password"))));
});

test("password: getPassword returning undefined skips the method", () => {
  const { c, t } = start();
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("password"));
  assert.equal(t.packets.length, 1);
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "no more authentication methods available"]]);
});

test("every method failed: NO_MORE_AUTH_METHODS_AVAILABLE disconnect, whenDone fails, the hook runs", async () => {
  const { c, t } = start((c) => {
    c.passwords = ["a"];
  });
  const done = c.whenDone();
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("password,hostbased"));
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("password,hostbased"));
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "no more authentication methods available"]]);
  assert.ok(c.failedWith instanceof error.NoMoreAuthMethodsError);
  await assert.rejects(done.asPromise(), error.NoMoreAuthMethodsError);
});

test("methods are tried in preferredOrder; unknown ones come last; partial success skips the method that passed", () => {
  const { c, t } = start((c) => {
    c.passwords = ["pw"];
    c.answers = [["x"]];
  });
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("foo,keyboard-interactive,password"));
  assert.match(hex(t.packets[1]![1]), new RegExp(`${hex(NS("password"))}00`));
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("keyboard-interactive,password", true));
  assert.deepEqual(c.authenticatedWith, ["password"]);
  assert.deepEqual(pkts(t)[2], [
    userauth.MSG_USERAUTH_REQUEST,
    hex(concatBytes(NS("foo"), NS("ssh-connection"), NS("keyboard-interactive"), NS(""), NS(""))),
  ]);
});

test("keyboard-interactive: INFO_REQUEST prompts go to getGenericAnswers, answers go back as INFO_RESPONSE", () => {
  const { c, t } = start((c) => {
    c.answers = [["secret", "blue"]];
  });
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("keyboard-interactive"));
  const req = concatBytes(NS("Login"), NS("Answer these"), NS(""), Uint8Array.of(0, 0, 0, 2), NS("Password: "), Uint8Array.of(0), NS("Colour? "), Uint8Array.of(1));
  c.packetReceived(userauth.MSG_USERAUTH_INFO_REQUEST, req);
  assert.deepEqual(c.asked, [["Login", "Answer these", [["Password: ", false], ["Colour? ", true]]]]);
  assert.deepEqual(pkts(t)[2], [userauth.MSG_USERAUTH_INFO_RESPONSE, hex(concatBytes(Uint8Array.of(0, 0, 0, 2), NS("secret"), NS("blue")))]);
  c.packetReceived(userauth.MSG_USERAUTH_INFO_REQUEST, concatBytes(NS(""), NS(""), NS(""), Uint8Array.of(0, 0, 0, 0)));
  assert.deepEqual(pkts(t)[3], [userauth.MSG_USERAUTH_INFO_RESPONSE, "00000000"], "no prompts: answered at once");
  assert.equal(c.asked.length, 1);
});

test("keyboard-interactive: an INFO_REQUEST with more than maxInfoPrompts prompts ends the connection", () => {
  const { c, t } = start((c) => {
    c.answers = [["a"]];
  });
  assert.equal(c.maxInfoPrompts, userauth.MAX_INFO_PROMPTS);
  c.maxInfoPrompts = 1;
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("keyboard-interactive"));
  c.packetReceived(userauth.MSG_USERAUTH_INFO_REQUEST, concatBytes(NS(""), NS(""), NS(""), Uint8Array.of(0, 0, 0, 2), NS("a"), Uint8Array.of(0), NS("b"), Uint8Array.of(0)));
  assert.equal(t.disconnects.length, 1);
  assert.deepEqual(c.asked, []);
});

test("keyboard-interactive: a malformed INFO_REQUEST ends the connection", () => {
  const { c, t } = start();
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("keyboard-interactive"));
  c.packetReceived(userauth.MSG_USERAUTH_INFO_REQUEST, concatBytes(NS(""), NS(""), NS(""), Uint8Array.of(0, 0, 0, 5)));
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_PROTOCOL_ERROR, "malformed USERAUTH_INFO_REQUEST"]]);
});

test("password: PASSWD_CHANGEREQ asks for the old and the new password and sends both", () => {
  const { c, t } = start((c) => {
    c.passwords = ["old", "old", "new"];
  });
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("password"));
  c.packetReceived(userauth.MSG_USERAUTH_PASSWD_CHANGEREQ, concatBytes(NS("Change it: "), NS("")));
  assert.deepEqual(pkts(t)[2], [
    userauth.MSG_USERAUTH_REQUEST,
    hex(concatBytes(NS("foo"), NS("ssh-connection"), NS("password"), Uint8Array.of(1), NS("old"), NS("new"))),
  ]);
});

test("USERAUTH_BANNER goes to displayBanner; a malformed one is ignored", () => {
  const { c, t } = start();
  c.packetReceived(userauth.MSG_USERAUTH_BANNER, concatBytes(NS("Welcome\n"), NS("en")));
  c.packetReceived(userauth.MSG_USERAUTH_BANNER, Uint8Array.of(0, 0, 0, 9));
  assert.deepEqual(c.banners, [["Welcome\n", "en"]]);
  assert.equal(t.disconnects.length, 0);
});

test("message 60 outside a method that uses it restarts with none", () => {
  const { c, t } = start();
  c.packetReceived(60, new Uint8Array(0));
  assert.deepEqual(pkts(t), [
    [userauth.MSG_USERAUTH_REQUEST, NONE()],
    [userauth.MSG_USERAUTH_REQUEST, NONE()],
  ]);
});

test("the default get* methods decline: an unconfigured client ends with NoMoreAuthMethodsError", async () => {
  const c = new userauth.SSHUserAuthClient(new Uint8Array([0x66, 0x6f, 0x6f]), new service.SSHService());
  const t = new FakeTransport({ isClient: true });
  c.transport = t;
  c.serviceStarted();
  const done = c.whenDone();
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password,keyboard-interactive"));
  // password: getPassword fails → none again; keyboard-interactive goes out.
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password,keyboard-interactive"));
  c.packetReceived(userauth.MSG_USERAUTH_INFO_REQUEST, concatBytes(NS(""), NS(""), NS(""), Uint8Array.of(0, 0, 0, 1), NS("p"), Uint8Array.of(0)));
  c.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("publickey,password,keyboard-interactive"));
  assert.deepEqual(t.disconnects, [[error.DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "no more authentication methods available"]]);
  await assert.rejects(done.asPromise(), error.NoMoreAuthMethodsError);
});

test("the connection ending first fails whenDone", async () => {
  const { c } = start();
  const done = c.whenDone();
  c.serviceStopped();
  await assert.rejects(done.asPromise(), /ended before authentication finished/);
});

test("whenDone after the end gives the same outcome", async () => {
  const { c } = start();
  c.packetReceived(userauth.MSG_USERAUTH_SUCCESS, new Uint8Array(0));
  await c.whenDone();
  const { c: c2 } = start();
  c2.packetReceived(userauth.MSG_USERAUTH_FAILURE, failurePacket("hostbased"));
  await assert.rejects(c2.whenDone().asPromise(), error.NoMoreAuthMethodsError);
});
