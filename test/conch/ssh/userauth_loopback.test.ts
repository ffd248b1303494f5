/**
 * Userauth over real transports pumped in memory: client and server SSH transports, a
 * task.Clock, our SSHUserAuthClient against our SSHUserAuthServer and a cred portal.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { succeed } from "@twisted-ts/internet/defer";
import { portal as cportal, checkers as cchecks } from "@twisted-ts/cred";
import { userauth, keys, service } from "@twisted-ts/conch/ssh";
import { checkers, error } from "@twisted-ts/conch";
import { sshPair, type Pair } from "./_sshpair.js";
import { TestRealm, userKey, type TestAvatar } from "./_userauth_fakes.js";
import { resultOf, wiredAgent } from "./_agent_fakes.js";

class Connection extends service.SSHService {
  override name = "ssh-connection";
  started = 0;
  override serviceStarted(): void {
    this.started++;
  }
}

class Client extends userauth.SSHUserAuthClient {
  keys: Array<keys.Key | undefined> = [];
  privates: keys.Key[] = [];
  passwords: string[] = [];
  answers: string[][] = [];
  banners: string[] = [];
  offered: string[] = [];
  override getPublicKey() {
    const k = this.keys.shift();
    if (k !== undefined) this.offered.push(k.sshType());
    return k;
  }
  override getPrivateKey() {
    const blob = Buffer.from(this.lastPublicKey!.blob()).toString("hex");
    const k = this.privates.find((p) => Buffer.from(p.blob()).toString("hex") === blob);
    return k === undefined ? undefined : succeed(k);
  }
  override getPassword() {
    const p = this.passwords.shift();
    return p === undefined ? undefined : succeed(p);
  }
  override getGenericAnswers() {
    return succeed(this.answers.shift() ?? []);
  }
  override displayBanner(message: string): void {
    this.banners.push(message);
  }
}

function makePortal(multi = false) {
  const realm = new TestRealm();
  const pw = new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" });
  const pk = new checkers.SSHPublicKeyChecker(
    new checkers.InMemorySSHKeyDB({ alice: [userKey("ed25519").public(), userKey("ecdsa").public(), userKey("rsa").public()] }),
  );
  if (multi) {
    const c = new (class extends checkers.SSHProtocolChecker {
      override areDone(id: cchecks.AvatarId): boolean {
        return (this.successfulCredentials.get(id)?.length ?? 0) >= 2;
      }
    })();
    c.registerChecker(pk);
    c.registerChecker(pw);
    return { realm, portal: new cportal.Portal(realm, [c]) };
  }
  return { realm, portal: new cportal.Portal(realm, [pk, pw, new cchecks.PAMPasswordChecker(pw)]) };
}

function login(
  setup: (c: Client) => void,
  opts: { multi?: boolean; banner?: string; portal?: cportal.Portal; realm?: TestRealm; maxAuthTries?: number } = {},
) {
  const made = opts.portal !== undefined ? { portal: opts.portal, realm: opts.realm ?? new TestRealm() } : makePortal(opts.multi);
  const conn = new Connection();
  const auth = new Client("alice", conn);
  setup(auth);
  const banner = opts.banner;
  class Server extends userauth.SSHUserAuthServer {
    constructor() {
      super();
      if (banner !== undefined) this.banner = banner;
      if (opts.maxAuthTries !== undefined) this.maxAuthTries = opts.maxAuthTries;
    }
  }
  const pair: Pair = sshPair({
    configure: (client) => {
      client.connectionSecure = () => client.requestService(auth);
    },
    greet: false,
  });
  pair.serverFactory.services = { "ssh-userauth": Server, "ssh-connection": Connection };
  pair.serverFactory.portal = made.portal;
  const done = auth.whenDone();
  let outcome: "ok" | Error | undefined;
  done.addCallbacks(
    () => void (outcome = "ok"),
    (f) => void (outcome = f.value as Error),
  );
  pair.pump.flush();
  for (let i = 0; i < 10; i++) {
    pair.clock.advance(1);
    pair.pump.flush();
  }
  return { pair, auth, conn, realm: made.realm, outcome: () => outcome };
}

test("loopback: password login starts ssh-connection on both sides", () => {
  const { pair, conn, realm, outcome } = login((c) => (c.passwords = ["sesame"]));
  assert.equal(outcome(), "ok");
  assert.equal(conn.started, 1);
  const avatar = pair.server.avatar as TestAvatar;
  assert.equal(avatar, realm.avatars[0]);
  assert.equal(avatar.mind.method, "password");
  assert.equal(pair.server.service?.name, "ssh-connection");
});

for (const kind of ["ed25519", "ecdsa", "rsa"] as const) {
  test(`loopback: publickey login with an ${kind} key (query, PK_OK, signature)`, () => {
    const key = userKey(kind);
    const { outcome, pair, auth } = login((c) => {
      c.keys = [key.public()];
      c.privates = [key];
    });
    assert.equal(outcome(), "ok");
    assert.equal((pair.server.avatar as TestAvatar).mind.method, "publickey");
    if (kind === "rsa") assert.equal(auth.lastSignatureAlgorithm, "rsa-sha2-512", "server-sig-algs allows SHA-2");
  });
}

test("loopback: keys are tried in order until one is accepted", () => {
  const { outcome, auth } = login((c) => {
    c.keys = [userKey("ed25519-b").public(), userKey("rsa-b").public(), userKey("ecdsa").public()];
    c.privates = [userKey("ecdsa")];
  });
  assert.equal(outcome(), "ok");
  assert.deepEqual(auth.offered, ["ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256"]);
});

test("loopback: keyboard-interactive login", () => {
  const { outcome, pair } = login((c) => {
    c.preferredOrder = ["keyboard-interactive"];
    c.answers = [["sesame"]];
  });
  assert.equal(outcome(), "ok");
  assert.equal((pair.server.avatar as TestAvatar).mind.method, "keyboard-interactive");
});

test("loopback: partial success, publickey then password", () => {
  const key = userKey("ed25519");
  const { outcome, auth } = login(
    (c) => {
      c.keys = [key.public()];
      c.privates = [key];
      c.passwords = ["sesame"];
    },
    { multi: true },
  );
  assert.equal(outcome(), "ok");
  assert.deepEqual(auth.authenticatedWith, ["publickey"]);
});

test("loopback: refusal of every method disconnects with NO_MORE_AUTH_METHODS_AVAILABLE", () => {
  const { outcome, pair, conn } = login(
    (c) => {
      c.keys = [userKey("ed25519-b").public()];
      c.passwords = ["wrong", "also wrong"];
      c.answers = [["nope"]];
    },
    // More attempts than MaxAuthTries allows: this is about the client running out of methods.
    { maxAuthTries: 20 },
  );
  const o = outcome();
  assert.ok(o instanceof error.NoMoreAuthMethodsError, String(o));
  assert.equal(conn.started, 0);
  assert.equal(pair.server.avatar, undefined);
  assert.ok(pair.clientTransport.disconnecting || pair.serverTransport.disconnecting);
});

test("loopback: the banner reaches displayBanner before login", () => {
  const { outcome, auth } = login((c) => (c.passwords = ["sesame"]), { banner: "Hello from twisted-ts\n" });
  assert.equal(outcome(), "ok");
  assert.deepEqual(auth.banners, ["Hello from twisted-ts\n"]);
});

test("loopback: a client flooding bad passwords is cut off while another client on the same portal logs in", () => {
  const shared = makePortal();
  const guesses = Array.from({ length: 40 }, (_, i) => `guess${i}`);
  const bad = login(
    (c) => {
      c.preferredOrder = ["password"];
      c.passwords = guesses;
    },
    { portal: shared.portal, realm: shared.realm },
  );
  for (let i = 0; i < 30; i++) {
    bad.pair.clock.advance(1);
    bad.pair.pump.flush();
  }
  assert.ok(bad.outcome() instanceof Error);
  assert.equal(bad.pair.server.avatar, undefined);
  const good = login((c) => (c.passwords = ["sesame"]), { portal: shared.portal, realm: shared.realm });
  assert.equal(good.outcome(), "ok");
});

test("loopback: with a keyAgent and no keys of its own, the client logs in with the agent's key, signed by the agent", () => {
  const wired = wiredAgent();
  resultOf(wired.client.addIdentity(userKey("ed25519-b"), "not accepted"));
  resultOf(wired.client.addIdentity(userKey("rsa"), "accepted"));
  const { outcome, pair, auth } = login((c) => (c.keyAgent = wired.client));
  assert.equal(outcome(), "ok");
  assert.equal((pair.server.avatar as TestAvatar).mind.method, "publickey");
  assert.equal(auth.lastKeyFromAgent, true);
  assert.equal(auth.lastSignatureAlgorithm, "rsa-sha2-512", "the agent was asked for SHA-512 as server-sig-algs allows");
  assert.deepEqual(auth.offered, [], "getPublicKey was not needed");
});

test("loopback: when the server refuses every agent key the client goes on with its own keys", () => {
  const wired = wiredAgent();
  resultOf(wired.client.addIdentity(userKey("ed25519-b")));
  const { outcome, auth } = login((c) => {
    c.keyAgent = wired.client;
    c.keys = [userKey("ecdsa").public()];
    c.privates = [userKey("ecdsa")];
  });
  assert.equal(outcome(), "ok");
  assert.equal(auth.lastKeyFromAgent, false);
  assert.deepEqual(auth.offered, ["ecdsa-sha2-nistp256"]);
});

test("loopback: an agent whose connection is gone is skipped and password authentication follows", () => {
  const wired = wiredAgent();
  wired.clientTransport.loseConnection();
  const { outcome, pair } = login((c) => {
    c.keyAgent = wired.client;
    c.passwords = ["sesame"];
  });
  assert.equal(outcome(), "ok");
  assert.equal((pair.server.avatar as TestAvatar).mind.method, "password");
});
