import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { credentials, error as cerror } from "@twisted-ts/cred";
import { checkers, error } from "@twisted-ts/conch";
import { keys, common } from "@twisted-ts/conch/ssh";

const ed = keys.Key.generate("ed25519");
const ec = keys.Key.generate("ecdsa");
const line = (k: keys.Key) => k.public().toString("openssh");

async function failureOf(d: PromiseLike<unknown>): Promise<unknown> {
  try {
    await d;
  } catch (e) {
    return e;
  }
  assert.fail("expected a failure");
}

function signed(key: keys.Key, user = "alice", peerHost: string | undefined = "127.0.0.1") {
  const sigData = common.concatBytes(common.NS("session"), Uint8Array.of(50), common.NS(user));
  const c = new credentials.SSHPrivateKey(user, key.sshType(), key.blob(), sigData, key.sign(sigData));
  c.peerHost = peerHost;
  return c;
}

test("parseAuthorizedKeyOptions: flags, quoted values with escaped quotes, restrict then re-enable", () => {
  const o = checkers.parseAuthorizedKeyOptions('restrict,pty,command="echo \\"hi\\", there",environment="A=b c",permitopen="host:22",permitopen="*:80",permitlisten="8080",from="10.0.0.0/8,!10.1.2.3"');
  assert.equal(o.restrict, true);
  assert.equal(o.pty, true);
  assert.equal(o.portForwarding, false);
  assert.equal(o.agentForwarding, false);
  assert.equal(o.x11Forwarding, false);
  assert.equal(o.userRc, false);
  assert.equal(o.command, 'echo "hi", there');
  assert.deepEqual(o.environment, ["A=b c"]);
  assert.deepEqual(o.permitOpen, ["host:22", "*:80"]);
  assert.deepEqual(o.permitListen, ["8080"]);
  assert.deepEqual(o.from, ["10.0.0.0/8", "!10.1.2.3"]);
  assert.deepEqual(o.raw[0], ["restrict", undefined]);
  const order = checkers.parseAuthorizedKeyOptions("pty,restrict");
  assert.equal(order.pty, false, "options apply left to right");
  const caseless = checkers.parseAuthorizedKeyOptions("No-Pty,NO-X11-FORWARDING");
  assert.equal(caseless.pty, false);
  assert.equal(caseless.x11Forwarding, false);
  assert.equal(caseless.portForwarding, true);
});

test("parseAuthorizedKeyOptions: unknown options, missing quotes and bad values are errors", () => {
  for (const bad of ["frobnicate", 'command=ls', 'command="ls', "no-pty,,", 'environment="1X=y"', 'tunnel="abc"', 'expiry-time="2020"', 'no-pty="x"', "restrict junk"]) {
    assert.throws(() => checkers.parseAuthorizedKeyOptions(bad), checkers.AuthorizedKeysParseError, bad);
  }
});

test("readAuthorizedKeyFile: comments, blank lines, options before the key, bad lines skipped", () => {
  const text = [
    "# a comment",
    "",
    line(ed) + " alice@laptop",
    `no-pty,command="uptime" ${line(ec)}`,
    "garbage line here",
    `unknown-option ${line(ed)}`,
    `from="192.168.*" ${line(ed)}\r`,
  ].join("\n");
  const got = checkers.readAuthorizedKeyFile(text);
  assert.equal(got.length, 3);
  assert.ok(got[0]!.key.public().equals(ed.public()));
  assert.equal(got[0]!.options.pty, true);
  assert.equal(got[1]!.options.command, "uptime");
  assert.equal(got[1]!.options.pty, false);
  assert.deepEqual(got[2]!.options.from, ["192.168.*"]);
});

test("matchFromPatterns: wildcards, CIDR, negation, IPv4-mapped IPv6", () => {
  assert.ok(checkers.matchFromPatterns("127.0.0.1", ["127.0.0.*"]));
  assert.ok(checkers.matchFromPatterns("::ffff:127.0.0.1", ["127.0.0.0/8"]));
  assert.ok(checkers.matchFromPatterns("10.2.3.4", ["10.0.0.0/8", "!10.1.2.3"]));
  assert.ok(!checkers.matchFromPatterns("10.1.2.3", ["10.0.0.0/8", "!10.1.2.3"]));
  assert.ok(!checkers.matchFromPatterns("192.168.1.1", ["10.*"]));
  assert.ok(checkers.matchFromPatterns("::1", ["::1"]));
  assert.ok(checkers.matchFromPatterns("2001:db8::5", ["2001:db8::/32"]));
  assert.ok(!checkers.matchFromPatterns(undefined, ["*"]));
  assert.ok(!checkers.matchFromPatterns("127.0.0.1", ["127.0.0.1/99"]));
  assert.ok(checkers.matchFromPatterns("127.0.0.1", ["127.0.0.?"]));
});

test("SSHPublicKeyChecker: an authorized key with a good signature gives the username and its options", async () => {
  const c = new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [ed.public()] }));
  const cred = signed(ed);
  assert.equal(await c.requestAvatarId(cred), "alice");
  assert.equal((cred.keyOptions as checkers.AuthorizedKeyOptions).pty, true);
});

test("SSHPublicKeyChecker: no signature → ValidPublicKey only for an authorized key", async () => {
  const c = new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [ed.public()] }));
  const q = (k: keys.Key, u = "alice") => new credentials.SSHPrivateKey(u, k.sshType(), k.blob(), undefined, undefined);
  assert.ok((await failureOf(c.requestAvatarId(q(ed)))) instanceof error.ValidPublicKey);
  assert.ok((await failureOf(c.requestAvatarId(q(ec)))) instanceof cerror.UnauthorizedLogin);
  assert.ok((await failureOf(c.requestAvatarId(q(ed, "bob")))) instanceof cerror.UnauthorizedLogin);
  assert.ok((await failureOf(c.requestAvatarId(q(ed, "__proto__")))) instanceof cerror.UnauthorizedLogin);
});

test("SSHPublicKeyChecker: a bad blob, a bad signature, a signature by another key are UnauthorizedLogin", async () => {
  const c = new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [ed.public()] }));
  const junk = new credentials.SSHPrivateKey("alice", "ssh-ed25519", Uint8Array.of(1, 2, 3), Uint8Array.of(1), Uint8Array.of(2));
  assert.ok((await failureOf(c.requestAvatarId(junk))) instanceof cerror.UnauthorizedLogin);
  const good = signed(ed);
  const badSig = new credentials.SSHPrivateKey("alice", "ssh-ed25519", ed.blob(), good.sigData, good.signature!.map((b, i) => (i === good.signature!.length - 1 ? b ^ 1 : b)));
  assert.match(String(await failureOf(c.requestAvatarId(badSig))), /signature invalid/);
  const other = keys.Key.generate("ed25519");
  const wrong = new credentials.SSHPrivateKey("alice", "ssh-ed25519", ed.blob(), good.sigData, other.sign(good.sigData!));
  assert.ok((await failureOf(c.requestAvatarId(wrong))) instanceof cerror.UnauthorizedLogin);
});

test("SSHPublicKeyChecker: from= refuses other addresses; expiry-time and cert-authority lines are not usable", async () => {
  const entries = checkers.readAuthorizedKeyFile(
    [`from="10.0.0.0/8" ${line(ed)}`, `expiry-time="20000101" ${line(ec)}`, `cert-authority ${line(ec)}`].join("\n"),
  );
  const c = new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: entries }));
  assert.ok((await failureOf(c.requestAvatarId(signed(ed, "alice", "127.0.0.1")))) instanceof cerror.UnauthorizedLogin);
  assert.ok((await failureOf(c.requestAvatarId(signed(ed, "alice", undefined)))) instanceof cerror.UnauthorizedLogin);
  assert.equal(await c.requestAvatarId(signed(ed, "alice", "10.9.8.7")), "alice");
  assert.ok((await failureOf(c.requestAvatarId(signed(ec)))) instanceof cerror.UnauthorizedLogin);
  const future = checkers.readAuthorizedKeyFile(`expiry-time="29991231" ${line(ec)}`);
  const c2 = new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: future }));
  assert.equal(await c2.requestAvatarId(signed(ec)), "alice");
});

test("SSHPublicKeyChecker: an error in the key database becomes UnauthorizedLogin", async () => {
  const c = new checkers.SSHPublicKeyChecker({
    getAuthorizedKeys: () => {
      throw new Error("database down");
    },
  });
  assert.match(String(await failureOf(c.requestAvatarId(signed(ed)))), /unable to get avatar id/);
});

test("UNIXAuthorizedKeysFiles reads authorized_keys and authorized_keys2 from the user's home; unknown users have none", () => {
  const home = mkdtempSync(join(tmpdir(), "conch-home-"));
  try {
    mkdirSync(join(home, ".ssh"));
    writeFileSync(join(home, ".ssh", "authorized_keys"), `no-pty ${line(ed)}\n`);
    writeFileSync(join(home, ".ssh", "authorized_keys2"), `${line(ec)}\nnot a key\n`);
    const passwd = join(home, "passwd");
    writeFileSync(passwd, `alice:x:1000:1000:Alice:${home}:/bin/sh\nbob:x:1001:1001::/nonexistent:/bin/sh\n`);
    const db = new checkers.UNIXAuthorizedKeysFiles(new checkers.PasswdFile(passwd));
    const got = db.getAuthorizedKeys("alice");
    assert.equal(got.length, 2);
    assert.equal(got[0]!.options.pty, false);
    assert.equal(db.getAuthorizedKeys("bob").length, 0);
    assert.equal(db.getAuthorizedKeys("carol").length, 0);
    assert.equal(db.getAuthorizedKeys("alice:x").length, 0);
    assert.equal(db.getAuthorizedKeys("").length, 0);
    if (process.getuid?.() !== 0) {
      chmodSync(join(home, ".ssh", "authorized_keys"), 0);
      assert.equal(db.getAuthorizedKeys("alice").length, 1, "an unreadable file is skipped");
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test("SSHProtocolChecker: partial success until areDone, then the avatar id", async () => {
  const multi = new (class extends checkers.SSHProtocolChecker {
    override areDone(id: unknown): boolean {
      return (this.successfulCredentials.get(id as string)?.length ?? 0) >= 2;
    }
  })();
  multi.registerChecker(new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [ed] })));
  multi.registerChecker(new (await import("@twisted-ts/cred/checkers")).InMemoryUsernamePasswordDatabaseDontUse({ alice: "pw" }));
  assert.deepEqual(multi.credentialInterfaces, [credentials.ISSHPrivateKey, credentials.IUsernamePassword, credentials.IUsernameHashedPassword]);
  assert.ok((await failureOf(multi.requestAvatarId(signed(ed)))) instanceof error.NotEnoughAuthentication);
  assert.equal(await multi.requestAvatarId(new credentials.UsernamePassword("alice", "pw")), "alice");
  assert.ok((await failureOf(multi.requestAvatarId(new credentials.Anonymous()))) instanceof cerror.UnhandledCredentials);
});
