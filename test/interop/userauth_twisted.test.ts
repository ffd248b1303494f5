/**
 * Our SSHUserAuthClient against Twisted Conch's own SSHUserAuthServer (Debian's python3-twisted,
 * the implementation this port follows), started by the test on loopback with an in-memory
 * portal: password (after a wrong one) and publickey (ed25519, RSA).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Deferred, succeed } from "@twisted-ts/internet/defer";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import type { Failure } from "@twisted-ts/internet/failure";
import { connection, keys, transport, userauth } from "@twisted-ts/conch/ssh";
import { SYSTEM_PYTHON, freePort, requirePythonModule, spawnPeer, tempDir } from "../_support/peers.js";

const SERVER = String.raw`
import sys
from zope.interface import implementer
from twisted.conch import avatar
from twisted.conch.checkers import InMemorySSHKeyDB, SSHPublicKeyChecker
from twisted.conch.ssh import factory, keys, userauth, connection
from twisted.cred import portal, checkers
from twisted.internet import reactor
from cryptography.hazmat.primitives.asymmetric import ed25519

port = int(sys.argv[1])
authorized = [keys.Key.fromString(l) for l in open(sys.argv[2], "rb").read().splitlines() if l.strip()]

@implementer(portal.IRealm)
class Realm:
    def requestAvatar(self, avatarId, mind, *interfaces):
        print("LOGIN", avatarId.decode(), flush=True)
        return interfaces[0], avatar.ConchUser(), lambda: None

class Passwords(checkers.InMemoryUsernamePasswordDatabaseDontUse):
    def requestAvatarId(self, c):
        print("PASSWORD", c.username.decode(), c.password.decode(), flush=True)
        return super().requestAvatarId(c)

key = keys.Key(ed25519.Ed25519PrivateKey.generate())
f = factory.SSHFactory()
f.publicKeys = {b"ssh-ed25519": key.public()}
f.privateKeys = {b"ssh-ed25519": key}
f.services = {b"ssh-userauth": userauth.SSHUserAuthServer, b"ssh-connection": connection.SSHConnection}
f.portal = portal.Portal(Realm(), [Passwords(alice=b"sesame"), SSHPublicKeyChecker(InMemorySSHKeyDB({b"alice": authorized}))])
reactor.listenTCP(port, f, interface="127.0.0.1")
print("LISTENING", flush=True)
reactor.run()
`;

async function startTwisted(t: TestContext, authorized: keys.Key[]): Promise<{ port: number; output: () => string } | undefined> {
  if (!requirePythonModule(t, "twisted.conch.ssh.userauth", "python3-twisted")) return undefined;
  const dir = tempDir(t, "twisted-ts-conch-");
  writeFileSync(join(dir, "server.py"), SERVER);
  writeFileSync(join(dir, "authorized_keys"), authorized.map((k) => k.public().toString("openssh")).join("\n") + "\n");
  const port = await freePort();
  const child = spawnPeer(t, SYSTEM_PYTHON, ["-W", "ignore", join(dir, "server.py"), String(port), join(dir, "authorized_keys")]);
  const deadline = Date.now() + 15_000;
  while (!child.output().includes("LISTENING")) {
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`Twisted server did not start:\n${child.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, output: child.output };
}

class Client extends userauth.SSHUserAuthClient {
  passwords: string[] = [];
  keys: keys.Key[] = [];
  override getPassword() {
    const p = this.passwords.shift();
    return p === undefined ? undefined : succeed(p);
  }
  override getPublicKey() {
    return this.keys[0]?.public();
  }
  override getPrivateKey() {
    const k = this.keys.shift();
    return k === undefined ? undefined : succeed(k);
  }
}

function login(port: number, setup: (c: Client) => void): Deferred<Client> {
  const result = new Deferred<Client>();
  let auth: Client | undefined;
  class Conn extends connection.SSHConnection {
    override serviceStarted(): void {
      super.serviceStarted();
      result.callback(auth!);
      this.transport?.loseConnection();
    }
  }
  class Transport extends transport.SSHClientTransport {
    override verifyHostKey() {
      return succeed(true);
    }
    override connectionSecure(): void {
      auth = new Client("alice", new Conn());
      setup(auth);
      auth.whenDone().addErrback((f: Failure) => {
        if (!result.called) result.errback(f);
      });
      this.requestService(auth);
    }
  }
  const f = new ClientFactory();
  f.protocol = Transport;
  reactor.connectTCP("127.0.0.1", port, f);
  return result;
}

async function settle<T>(d: Deferred<T>, output: () => string, re: RegExp): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    const v = await Promise.race([
      d.asPromise(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no login in 20 s\n${output()}`)), 20_000);
      }),
    ]);
    for (let i = 0; i < 500 && !re.test(output()); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(output(), re);
    return v;
  } finally {
    clearTimeout(timer);
  }
}

test("password: logs in to Twisted Conch's server after a wrong first password", async (t) => {
  const server = await startTwisted(t, []);
  if (server === undefined) return;
  await settle(
    login(server.port, (c) => {
      c.passwords = ["wrong", "sesame"];
    }),
    server.output,
    /LOGIN alice/,
  );
  assert.match(server.output(), /PASSWORD alice wrong\nPASSWORD alice sesame/);
});

for (const kind of ["ed25519", "rsa"] as const) {
  test(`publickey: an ${kind} key logs in to Twisted Conch's server`, async (t) => {
    const key = keys.Key.generate(kind, kind === "rsa" ? { bits: 2048 } : {});
    const server = await startTwisted(t, [key]);
    if (server === undefined) return;
    const c = await settle(
      login(server.port, (c) => {
        c.keys = [key];
      }),
      server.output,
      /LOGIN alice/,
    );
    assert.doesNotMatch(server.output(), /PASSWORD/);
    // Twisted 22.4 fills server-sig-algs from its host key types (ssh-ed25519 only here), so the
    // client falls back to ssh-rsa, which Twisted accepts.
    if (kind === "rsa") assert.equal(c.lastSignatureAlgorithm, "ssh-rsa");
  });
}
