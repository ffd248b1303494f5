import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Deferred, succeed } from "@twisted-ts/internet/defer";
import { portal, checkers, credentials, error, interfaces } from "@twisted-ts/cred";
import { Portal, type IRealm, type LoginResult } from "@twisted-ts/cred/portal";
import { InterfaceToken, implementer, directlyProvides, providedBy } from "@twisted-ts/cred/interfaces";

interface Account {
  readonly id: checkers.AvatarId;
  loggedOut: boolean;
}
const IAccount = new InterfaceToken<Account>("IAccount");
const IOther = new InterfaceToken<{ other: true }>("IOther");

class TestRealm implements IRealm {
  readonly requests: Array<{ avatarId: checkers.AvatarId; mind: unknown; interfaces: InterfaceToken<unknown>[] }> = [];
  requestAvatar(avatarId: checkers.AvatarId, mind: unknown, ...ifaces: InterfaceToken<unknown>[]): LoginResult<unknown> {
    this.requests.push({ avatarId, mind, interfaces: ifaces });
    if (!ifaces.includes(IAccount)) throw new Error("no interface I can provide");
    const avatar: Account = { id: avatarId, loggedOut: false };
    return [IAccount, avatar, () => (avatar.loggedOut = true)];
  }
}

async function failureOf(d: PromiseLike<unknown>): Promise<unknown> {
  try {
    await d;
  } catch (e) {
    return e;
  }
  assert.fail("expected the Deferred to fail");
}

test("the barrel exposes portal, checkers, credentials, error and interfaces", () => {
  assert.equal(portal.Portal, Portal);
  assert.equal(typeof checkers.FilePasswordDB, "function");
  assert.equal(typeof credentials.UsernamePassword, "function");
  assert.equal(typeof error.UnauthorizedLogin, "function");
  assert.equal(interfaces.InterfaceToken, InterfaceToken);
});

test("InterfaceToken: providedBy follows implementer, inheritance of classes and of interfaces", () => {
  const up = new credentials.UsernamePassword("alice", "pw");
  assert.ok(credentials.IUsernamePassword.providedBy(up));
  assert.ok(credentials.ICredentials.providedBy(up), "IUsernamePassword extends ICredentials");
  assert.ok(!credentials.ISSHPrivateKey.providedBy(up));
  assert.ok(!credentials.ICredentials.providedBy({}));
  assert.ok(!credentials.ICredentials.providedBy(null));
  assert.ok(!credentials.ICredentials.providedBy("alice"));

  const IExtra = new InterfaceToken("IExtra");
  @implementer(IExtra)
  class Sub extends credentials.UsernamePassword {}
  const s = new Sub("bob", "x");
  assert.ok(IExtra.providedBy(s));
  assert.ok(credentials.IUsernamePassword.providedBy(s), "inherited from the superclass");
  assert.deepEqual(providedBy(s), [IExtra, credentials.IUsernamePassword]);
  assert.ok(!IExtra.providedBy(up), "the superclass is not changed");

  const plain = directlyProvides({ username: "carol" }, credentials.IAnonymous);
  assert.ok(credentials.IAnonymous.providedBy(plain));
  assert.equal(String(credentials.IAnonymous), "IAnonymous");
});

test("Portal.login finds the checker for the credentials, then asks the realm with mind and interfaces", async () => {
  const realm = new TestRealm();
  const db = new checkers.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" });
  const p = new Portal(realm, [db]);
  assert.deepEqual(p.listCredentialsInterfaces(), [credentials.IUsernamePassword, credentials.IUsernameHashedPassword]);
  const mind = { mind: true };
  const [iface, avatar, logout] = await p.login(new credentials.UsernamePassword("alice", "sesame"), mind, IOther, IAccount);
  assert.equal(iface, IAccount);
  assert.equal((avatar as Account).id, "alice");
  assert.deepEqual(realm.requests, [{ avatarId: "alice", mind, interfaces: [IOther, IAccount] }]);
  logout();
  assert.equal((avatar as Account).loggedOut, true);
});

test("Portal.login: a wrong password or an unknown user fails with UnauthorizedLogin and never reaches the realm", async () => {
  const realm = new TestRealm();
  const p = new Portal(realm, [new checkers.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" })]);
  const e1 = await failureOf(p.login(new credentials.UsernamePassword("alice", "wrong"), undefined, IAccount));
  assert.ok(e1 instanceof error.UnauthorizedLogin);
  assert.ok(e1 instanceof error.LoginFailed);
  assert.ok(e1 instanceof error.Unauthorized, "UnauthorizedLogin is also an Unauthorized");
  assert.ok(error.isUnauthorized(e1));
  const e2 = await failureOf(p.login(new credentials.UsernamePassword("__proto__", ""), undefined, IAccount));
  assert.ok(e2 instanceof error.UnauthorizedLogin, "a username that names an Object property is just unknown");
  assert.equal(realm.requests.length, 0);
});

test("Portal.login: credentials no checker handles fail with UnhandledCredentials naming their interfaces", async () => {
  const p = new Portal(new TestRealm());
  p.registerChecker(new checkers.AllowAnonymousAccess());
  const e = await failureOf(p.login(new credentials.UsernamePassword("a", "b"), undefined, IAccount));
  assert.ok(e instanceof error.UnhandledCredentials);
  assert.match((e as Error).message, /No checker for IUsernamePassword/);
  assert.equal((e as error.UnhandledCredentials).code, "ERR_CRED_UNHANDLED_CREDENTIALS");
});

test("Portal.login: the realm's failure reaches the caller", async () => {
  const p = new Portal(new TestRealm(), [new checkers.AllowAnonymousAccess()]);
  const e = await failureOf(p.login(new credentials.Anonymous(), undefined, IOther));
  assert.match(String(e), /no interface I can provide/);
});

test("AllowAnonymousAccess gives the ANONYMOUS avatar id", async () => {
  const realm = new TestRealm();
  const p = new Portal(realm, [new checkers.AllowAnonymousAccess()]);
  const [, avatar] = await p.login(new credentials.Anonymous(), undefined, IAccount);
  assert.equal((avatar as Account).id, checkers.ANONYMOUS);
});

test("registerChecker with explicit interfaces overrides the checker's own list; later registrations replace", async () => {
  const p = new Portal(new TestRealm());
  const a = new checkers.InMemoryUsernamePasswordDatabaseDontUse({ u: "a" });
  const b = new checkers.InMemoryUsernamePasswordDatabaseDontUse({ u: "b" });
  p.registerChecker(a, credentials.IUsernamePassword);
  assert.deepEqual(p.listCredentialsInterfaces(), [credentials.IUsernamePassword]);
  p.registerChecker(b, credentials.IUsernamePassword);
  await p.login(new credentials.UsernamePassword("u", "b"), undefined, IAccount);
});

test("a realm may answer with a Deferred, and a checker with a plain value", async () => {
  const realm: IRealm = {
    requestAvatar: (id) => {
      const d = new Deferred<LoginResult<unknown>>();
      queueMicrotask(() => d.callback([IAccount, { id, loggedOut: false }, () => {}]));
      return d;
    },
  };
  const checker: checkers.ICredentialsChecker = {
    credentialInterfaces: [credentials.IAnonymous],
    requestAvatarId: () => "plain",
  };
  const [, avatar] = await new Portal(realm, [checker]).login(new credentials.Anonymous(), undefined, IAccount);
  assert.equal((avatar as Account).id, "plain");
});

test("checkPassword may return a Deferred", async () => {
  @implementer(credentials.IUsernameHashedPassword)
  class Later {
    readonly username = "alice";
    checkPassword(pw: string | Uint8Array) {
      return succeed(pw === "sesame");
    }
  }
  const db = new checkers.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" });
  assert.equal(await db.requestAvatarId(new Later()), "alice");
});

test("UsernamePassword.checkPassword compares strings and bytes", () => {
  const up = new credentials.UsernamePassword("a", "pässword");
  assert.ok(up.checkPassword("pässword"));
  assert.ok(up.checkPassword(new TextEncoder().encode("pässword")));
  assert.ok(!up.checkPassword("pässwor"));
  assert.ok(!up.checkPassword(""));
});

function tmpFile(content: string): { path: string; done: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "cred-"));
  const path = join(dir, "passwd");
  writeFileSync(path, content);
  return { path, done: () => rmSync(dir, { recursive: true, force: true }) };
}

test("FilePasswordDB reads delimited records, skips short lines, honours field positions", async () => {
  const f = tmpFile("alice:sesame\nshort\nbob:hunter2:extra\n\n");
  try {
    const db = new checkers.FilePasswordDB(f.path);
    assert.equal(await db.requestAvatarId(new credentials.UsernamePassword("alice", "sesame")), "alice");
    assert.equal(await db.requestAvatarId(new credentials.UsernamePassword("bob", "hunter2")), "bob");
    assert.ok((await failureOf(db.requestAvatarId(new credentials.UsernamePassword("bob", "x")))) instanceof error.UnauthorizedLogin);
    assert.ok((await failureOf(db.requestAvatarId(new credentials.UsernamePassword("short", "")))) instanceof error.UnauthorizedLogin);
    const swapped = new checkers.FilePasswordDB(f.path, { usernameField: 1, passwordField: 0 });
    assert.equal(await swapped.requestAvatarId(new credentials.UsernamePassword("sesame", "alice")), "sesame");
  } finally {
    f.done();
  }
});

test("FilePasswordDB: case-insensitive usernames are lowered, a hash function replaces clear text", async () => {
  const f = tmpFile("Alice|SESAME\n");
  try {
    const ci = new checkers.FilePasswordDB(f.path, { delim: "|", caseSensitive: false, hash: (_u, p) => p.toUpperCase() });
    assert.deepEqual(ci.credentialInterfaces, [credentials.IUsernamePassword]);
    assert.equal(await ci.requestAvatarId(new credentials.UsernamePassword("ALICE", "sesame")), "alice");
    assert.ok((await failureOf(ci.requestAvatarId(new credentials.UsernamePassword("alice", "other")))) instanceof error.UnauthorizedLogin);
    const cs = new checkers.FilePasswordDB(f.path, { delim: "|" });
    assert.ok((await failureOf(cs.requestAvatarId(new credentials.UsernamePassword("alice", "SESAME")))) instanceof error.UnauthorizedLogin);
  } finally {
    f.done();
  }
});

test("FilePasswordDB with cache rereads the file only when it changes", async () => {
  const f = tmpFile("alice:one\n");
  try {
    const db = new checkers.FilePasswordDB(f.path, { cache: true });
    assert.equal(await db.requestAvatarId(new credentials.UsernamePassword("alice", "one")), "alice");
    writeFileSync(f.path, "alice:two\n");
    const { utimesSync } = await import("node:fs");
    const later = new Date(Date.now() + 10_000);
    utimesSync(f.path, later, later);
    assert.equal(await db.requestAvatarId(new credentials.UsernamePassword("alice", "two")), "alice");
  } finally {
    f.done();
  }
});

test("FilePasswordDB: a missing file fails the login with UnauthorizedLogin", async () => {
  const db = new checkers.FilePasswordDB("/nonexistent/twisted-ts/passwd");
  assert.ok((await failureOf(db.requestAvatarId(new credentials.UsernamePassword("a", "b")))) instanceof error.UnauthorizedLogin);
});

test("PAMPasswordChecker asks for a password through the conversation and checks it", async () => {
  const asked: credentials.PAMMessage[][] = [];
  const conv = (answer: string) => (msgs: readonly credentials.PAMMessage[]) => {
    asked.push([...msgs]);
    return succeed<credentials.PAMResponse[]>(msgs.map(() => [answer, 0] as const));
  };
  const checker = new checkers.PAMPasswordChecker(new checkers.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" }));
  const p = new Portal(new TestRealm(), [checker]);
  assert.deepEqual(p.listCredentialsInterfaces(), [credentials.IPluggableAuthenticationModules]);
  const [, avatar] = await p.login(new credentials.PluggableAuthenticationModules("alice", conv("sesame")), undefined, IAccount);
  assert.equal((avatar as Account).id, "alice");
  assert.deepEqual(asked[0], [["Password: ", credentials.PAM_PROMPT_ECHO_OFF]]);
  const e = await failureOf(p.login(new credentials.PluggableAuthenticationModules("alice", conv("nope")), undefined, IAccount));
  assert.ok(e instanceof error.UnauthorizedLogin);
});

test("error classes carry stable codes", () => {
  assert.equal(new error.UnauthorizedLogin().code, "ERR_CRED_UNAUTHORIZED_LOGIN");
  assert.equal(new error.LoginDenied().code, "ERR_CRED_LOGIN_DENIED");
  assert.equal(new error.LoginFailed().code, "ERR_CRED_LOGIN_FAILED");
  assert.equal(new error.Unauthorized().code, "ERR_CRED_UNAUTHORIZED");
  assert.ok(!(new error.LoginDenied() instanceof error.Unauthorized));
});

test("Portal.login: credentials providing an interface derived from a registered one use its checker", async () => {
  const IDerived = new InterfaceToken<credentials.IUsernamePasswordShape>("IDerivedCredentials", [credentials.IUsernamePassword]);
  @implementer(IDerived)
  class DerivedCredentials {
    constructor(
      readonly username: string,
      readonly password: string,
    ) {}
    checkPassword(pw: string | Uint8Array) {
      return credentials.secretsEqual(this.password, pw);
    }
  }
  const realm = new TestRealm();
  const p = new Portal(realm, [new checkers.InMemoryUsernamePasswordDatabaseDontUse({ bob: "hello" })]);
  const [iface, avatar] = await p.login(new DerivedCredentials("bob", "hello"), undefined, IAccount);
  assert.equal(iface, IAccount);
  assert.equal((avatar as Account).id, "bob");
  assert.ok(IAccount.providedBy(avatar) === false, "the avatar is a plain object here");
});

test("FilePasswordDB.getUser on a missing file throws UnauthorizedLogin", () => {
  const db = new checkers.FilePasswordDB("test_thisbetternoteverexist.db");
  assert.throws(() => db.getUser("user"), error.UnauthorizedLogin);
});
