/**
 * OpenSSH's `ssh` logging in to our server (SSHFactory + SSHUserAuthServer + a cred portal) on
 * loopback: publickey with each key type (RSA with both SHA-2 signatures), password through
 * SSH_ASKPASS (SSH_ASKPASS_REQUIRE=force) and keyboard-interactive; authorized_keys options reach
 * the realm; wrong credentials are refused.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { portal as cportal, checkers as cchecks, interfaces as cifaces } from "@twisted-ts/cred";
import { Protocol } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { checkers, unix } from "@twisted-ts/conch";
import { connection, factory, keys, userauth } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand, tempDir } from "../_support/peers.js";
import { sshKeygen } from "../_support/sshd.js";

/** `whoami`: writes the avatar's name and exits 0. */
class WhoAmI extends Protocol<never> {
  constructor(private readonly name: string) {
    super();
  }
  override connectionMade(): void {
    const t = this.transport as unknown as { write(d: string): void; exit(s: number): void };
    t.write(`${this.name}\n`);
    t.exit(0);
  }
}

interface Login {
  method: string;
  algName: string | undefined;
  keyOptions: checkers.AuthorizedKeyOptions | undefined;
}

class RecordingRealm implements cportal.IRealm {
  readonly logins: Login[] = [];
  private readonly inner = new unix.InProcessRealm({ commands: { whoami: (_argv, s) => new WhoAmI(s.avatar.username) } });
  requestAvatar(avatarId: cchecks.AvatarId, mind: unknown, ...ifaces: cifaces.InterfaceToken<unknown>[]) {
    const m = mind as userauth.UserAuthMind;
    this.logins.push({
      method: m.method,
      algName: (m.credentials as { algName?: string }).algName,
      keyOptions: m.keyOptions as checkers.AuthorizedKeyOptions | undefined,
    });
    return this.inner.requestAvatar(avatarId, mind, ...ifaces);
  }
}

interface Server {
  port: number;
  realm: RecordingRealm;
  dir: string;
}

async function startServer(t: TestContext, authorizedKeys: string[], twoFactors = false): Promise<Server> {
  const dir = tempDir(t, "twisted-ts-ourserver-");
  const home = join(dir, "home");
  mkdirSync(join(home, ".ssh"), { recursive: true });
  writeFileSync(join(home, ".ssh", "authorized_keys"), authorizedKeys.join("\n") + "\n");
  writeFileSync(join(dir, "passwd"), `alice:x:1000:1000:Alice:${home}:/bin/sh\n`);
  const realm = new RecordingRealm();
  const pw = new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "correct horse" });
  const keyChecker = new checkers.SSHPublicKeyChecker(new checkers.UNIXAuthorizedKeysFiles(new checkers.PasswdFile(join(dir, "passwd"))));
  let portal: cportal.Portal;
  if (twoFactors) {
    // A key and then a password, as sshd's "AuthenticationMethods publickey,password".
    const both = new (class extends checkers.SSHProtocolChecker {
      override areDone(id: cchecks.AvatarId): boolean {
        return (this.successfulCredentials.get(id)?.length ?? 0) >= 2;
      }
    })();
    both.registerChecker(keyChecker);
    both.registerChecker(pw);
    portal = new cportal.Portal(realm, [both]);
  } else {
    portal = new cportal.Portal(realm, [keyChecker, pw, new cchecks.PAMPasswordChecker(pw)]);
  }
  const f = new factory.SSHFactory();
  f.moduliPath = undefined;
  f.privateKeys = { "ssh-ed25519": keys.Key.generate("ed25519") };
  f.portal = portal;
  f.services = { "ssh-userauth": userauth.SSHUserAuthServer, "ssh-connection": connection.SSHConnection };
  const port = reactor.listenTCP(0, f, 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());
  const host = port.getHost();
  return { port: "port" in host ? host.port : 0, realm, dir };
}

function askpass(dir: string, answer: string): string {
  const path = join(dir, "askpass.sh");
  writeFileSync(path, `#!/bin/sh\necho "$1" >> ${join(dir, "prompts.txt")}\nprintf '%s\\n' '${answer}'\n`);
  chmodSync(path, 0o755);
  return path;
}

async function ssh(t: TestContext, server: Server, opts: string[], env: NodeJS.ProcessEnv = {}) {
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return undefined;
  const args = [
    "-F", "/dev/null",
    "-p", String(server.port),
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=VERBOSE",
    "-o", "ConnectTimeout=10",
    ...opts,
    "alice@127.0.0.1",
    "whoami",
  ];
  const r = await runCommand(bin, args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: server.dir, ...env }, timeoutMs: 30_000 });
  return { ...r, out: r.stdout.toString() };
}

const keyCases: Array<[string, "ed25519" | "ecdsa" | "rsa", string]> = [
  ["ssh-ed25519", "ed25519", "ssh-ed25519"],
  ["ecdsa-sha2-nistp256", "ecdsa", "ecdsa-sha2-nistp256"],
  ["rsa-sha2-512", "rsa", "rsa-sha2-512"],
  ["rsa-sha2-256", "rsa", "rsa-sha2-256"],
];

for (const [label, type, alg] of keyCases) {
  test(`OpenSSH's ssh logs in to our server by publickey with ${label}`, async (t) => {
    const keyDir = tempDir(t, "twisted-ts-sshkeys-");
    const [priv, pub] = await sshKeygen(keyDir, `id_${type}`, type);
    const server = await startServer(t, [pub]);
    const r = await ssh(t, server, [
      "-o", "BatchMode=yes",
      "-o", "PreferredAuthentications=publickey",
      "-o", "IdentitiesOnly=yes",
      "-o", `PubkeyAcceptedAlgorithms=${alg}`,
      "-i", priv,
    ]);
    if (r === undefined) return;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "alice\n");
    assert.match(r.stderr, /Authenticated to 127\.0\.0\.1 .* using "publickey"/);
    assert.deepEqual(server.realm.logins.map((l) => [l.method, l.algName]), [["publickey", alg]]);
  });
}

test("OpenSSH's ssh: authorized_keys options reach the realm; a key with a from= for another network is refused", async (t) => {
  const keyDir = tempDir(t, "twisted-ts-sshkeys-");
  const [priv, pub] = await sshKeygen(keyDir, "id_ed25519", "ed25519");
  const [priv2, pub2] = await sshKeygen(keyDir, "id_other", "ed25519");
  const server = await startServer(t, [`no-pty,environment="A=1",from="127.0.0.0/8" ${pub}`, `from="10.0.0.0/8" ${pub2}`]);
  const ok = await ssh(t, server, ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", "-o", "IdentitiesOnly=yes", "-i", priv]);
  if (ok === undefined) return;
  assert.equal(ok.code, 0, ok.stderr);
  const opts = server.realm.logins[0]?.keyOptions;
  assert.equal(opts?.pty, false);
  assert.deepEqual(opts?.environment, ["A=1"]);
  const refused = await ssh(t, server, ["-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey", "-o", "IdentitiesOnly=yes", "-i", priv2]);
  assert.notEqual(refused?.code, 0);
  assert.match(refused?.stderr ?? "", /Permission denied \(publickey,password,keyboard-interactive\)/);
  assert.equal(server.realm.logins.length, 1);
});

test("OpenSSH's ssh logs in to our server by password through SSH_ASKPASS", async (t) => {
  const server = await startServer(t, []);
  const pass = askpass(server.dir, "correct horse");
  const r = await ssh(t, server, ["-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1"], {
    SSH_ASKPASS: pass,
    SSH_ASKPASS_REQUIRE: "force",
    DISPLAY: ":0",
  });
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.out, "alice\n");
  assert.match(r.stderr, /Authenticated to 127\.0\.0\.1 .* using "password"/);
  assert.deepEqual(server.realm.logins.map((l) => l.method), ["password"]);
});

test("OpenSSH's ssh logs in to our server by keyboard-interactive through SSH_ASKPASS", async (t) => {
  const server = await startServer(t, []);
  const pass = askpass(server.dir, "correct horse");
  const r = await ssh(t, server, ["-o", "PreferredAuthentications=keyboard-interactive", "-o", "NumberOfPasswordPrompts=1"], {
    SSH_ASKPASS: pass,
    SSH_ASKPASS_REQUIRE: "force",
    DISPLAY: ":0",
  });
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.out, "alice\n");
  assert.match(r.stderr, /Authenticated to 127\.0\.0\.1 .* using "keyboard-interactive"/);
  assert.deepEqual(server.realm.logins.map((l) => l.method), ["keyboard-interactive"]);
});

test("OpenSSH's ssh with a wrong password is refused, and the server goes on serving", async (t) => {
  const server = await startServer(t, []);
  const wrong = askpass(server.dir, "wrong");
  const r = await ssh(t, server, ["-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=2"], {
    SSH_ASKPASS: wrong,
    SSH_ASKPASS_REQUIRE: "force",
    DISPLAY: ":0",
  });
  if (r === undefined) return;
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /Permission denied/);
  assert.equal(server.realm.logins.length, 0);
  const right = askpass(server.dir, "correct horse");
  const ok = await ssh(t, server, ["-o", "PreferredAuthentications=password", "-o", "NumberOfPasswordPrompts=1"], {
    SSH_ASKPASS: right,
    SSH_ASKPASS_REQUIRE: "force",
    DISPLAY: ":0",
  });
  assert.equal(ok?.code, 0, ok?.stderr);
});

test("OpenSSH's ssh completes a two-step login (publickey, then password after partial success)", async (t) => {
  const keyDir = tempDir(t, "twisted-ts-sshkeys-");
  const [priv, pub] = await sshKeygen(keyDir, "id_ed25519", "ed25519");
  const server = await startServer(t, [pub], true);
  const pass = askpass(server.dir, "correct horse");
  const r = await ssh(t, server, ["-o", "PreferredAuthentications=publickey,password", "-o", "IdentitiesOnly=yes", "-i", priv, "-o", "NumberOfPasswordPrompts=1"], {
    SSH_ASKPASS: pass,
    SSH_ASKPASS_REQUIRE: "force",
    DISPLAY: ":0",
  });
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.out, "alice\n");
  assert.match(r.stderr, /Authenticated using "publickey" with partial success/);
  assert.match(r.stderr, /Authenticated to 127\.0\.0\.1 .* using "password"/);
  assert.deepEqual(server.realm.logins.map((l) => l.method), ["password"]);
});
