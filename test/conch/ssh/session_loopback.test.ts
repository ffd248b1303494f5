/**
 * The whole stack over real loopback TCP: our server (SSHFactory, userauth, the Unix realm) and
 * the Conch howto's client classes, ported as written.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { userInfo } from "node:os";
import { Deferred, fail, succeed } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { Portal, type IRealm } from "@twisted-ts/cred/portal";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { Protocol } from "@twisted-ts/internet/protocol";
import { checkers, error, unix } from "@twisted-ts/conch";
import { channel, common, connection, factory, keys, session, transport, userauth } from "@twisted-ts/conch/ssh";

const me = userInfo().username;
const hostKey = keys.Key.generate("ed25519");
const userKey = keys.Key.generate("ed25519");

/** A command served in process: writes argv[1] to stdout and argv[2] to stderr, exits argv[3]. */
class Say extends Protocol<ITransport> {
  constructor(readonly argv: string[]) {
    super();
  }
  override connectionMade(): void {
    const t = this.transport as session.SSHSessionProcessProtocol;
    t.write(`${this.argv[1]}\n`);
    t.writeErr(`${this.argv[2]}\n`);
    t.exit(Number(this.argv[3]));
  }
}

async function startServer(t: TestContext, realm: IRealm = new unix.UnixSSHRealm(), maxSessions?: number): Promise<number> {
  const f = new factory.SSHFactory();
  if (maxSessions !== undefined) {
    const limit = maxSessions;
    f.services = {
      ...f.services,
      "ssh-connection": class extends connection.SSHConnection {
        override maxSessions = limit;
      },
    };
  }
  f.privateKeys = { [hostKey.sshType()]: hostKey };
  f.portal = new Portal(realm, [
    new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ [me]: [userKey.public()] })),
  ]);
  const port = reactor.listenTCP(0, f, 50, "127.0.0.1") as ReturnType<typeof reactor.listenTCP> & { whenListening(): PromiseLike<unknown> };
  await port.whenListening();
  t.after(() => port.stopListening());
  return port.getHost().port;
}

/** The howto's classes; `makeChannels` replaces its single CatChannel when given. */
function howto(result: Deferred<string>, makeChannels?: (conn: connection.SSHConnection) => void): ClientFactory {
  const publicKey = userKey.public().toString("openssh");
  class ClientTransport extends transport.SSHClientTransport {
    override verifyHostKey(_pubKey: Uint8Array, fingerprint: string): Deferred<number> {
      if (fingerprint !== hostKey.fingerprint()) return fail(new error.ConchError("bad key"));
      return succeed(1);
    }
    override connectionSecure(): void {
      const auth = new ClientUserAuth(me, new ClientConnection());
      auth.whenDone().addErrback((f: Failure) => {
        if (!result.called) result.errback(f);
      });
      this.requestService(auth);
    }
  }
  class ClientUserAuth extends userauth.SSHUserAuthClient {
    override getPassword(): undefined {
      return undefined;
    }
    override getPublicKey(): Uint8Array {
      return keys.getPublicKeyString({ data: publicKey });
    }
    override getPrivateKey(): Deferred<keys.Key> {
      return succeed(userKey);
    }
  }
  class ClientConnection extends connection.SSHConnection {
    override serviceStarted(): void {
      if (makeChannels !== undefined) makeChannels(this);
      else this.openChannel(new CatChannel({ conn: this }));
    }
  }
  class CatChannel extends channel.SSHChannel {
    override name = "session";
    catData = "";
    override channelOpen(_data: Uint8Array): void {
      const d = this.conn.sendRequest(this, "exec", common.NS("cat"), true);
      d.addCallback(() => this._cbSendRequest());
      this.catData = "";
    }
    _cbSendRequest(): void {
      this.write('This data will be echoed back to us by "cat."\r\n');
      this.conn.sendEOF(this);
      this.loseConnection();
    }
    override dataReceived(data: Uint8Array): void {
      this.catData += new TextDecoder().decode(data);
    }
    override closed(): void {
      result.callback(`We got this from "cat": ${this.catData}`);
      this.conn.transport?.loseConnection();
    }
  }
  const f = new ClientFactory();
  f.protocol = ClientTransport;
  return f;
}

async function within<T>(d: Deferred<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      d.asPromise(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no result within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

test("the howto end to end over TCP: our client, our server, the Unix realm's cat", async (t) => {
  const port = await startServer(t);
  const result = new Deferred<string>();
  reactor.connectTCP("127.0.0.1", port, howto(result));
  assert.equal(await within(result, 20_000), 'We got this from "cat": This data will be echoed back to us by "cat."\r\n');
});

test("50 session channels at once on one real connection, with stdout, stderr and exit codes", async (t) => {
  // Past OpenSSH's MaxSessions default of 10, as a multiplexing client may need.
  const port = await startServer(t, new unix.InProcessRealm({ commands: { say: (argv) => new Say(argv) } }), 50);
  const result = new Deferred<string>();
  const chans: session.SSHSessionClientChannel[] = [];
  reactor.connectTCP(
    "127.0.0.1",
    port,
    howto(result, (conn) => {
      for (let i = 0; i < 50; i++) {
        const ch = new (class extends session.SSHSessionClientChannel {
          override channelOpen(): void {
            void this.conn.sendRequest(this, "exec", common.NS(`say out${i} err${i} ${i}`), true);
          }
          override closed(): void {
            super.closed();
            if (chans.every((c) => c.isClosed)) {
              result.callback("done");
              conn.transport?.loseConnection();
            }
          }
        })({ conn });
        chans.push(ch);
        conn.openChannel(ch);
      }
    }),
  );
  assert.equal(await within(result, 60_000), "done");
  chans.forEach((ch, i) => {
    assert.equal(new TextDecoder().decode(ch.stdout), `out${i}\n`);
    assert.equal(new TextDecoder().decode(ch.stderr), `err${i}\n`);
    assert.equal(ch.exitStatus, i);
  });
});

test("1 MiB each way through a real cat over one channel, bytes checked", async (t) => {
  const port = await startServer(t);
  const result = new Deferred<string>();
  const size = 1024 * 1024;
  const payload = new Uint8Array(size).map((_, i) => (i * 7 + (i >> 13)) & 0xff);
  let ch: session.SSHSessionClientChannel | undefined;
  reactor.connectTCP(
    "127.0.0.1",
    port,
    howto(result, (conn) => {
      ch = new (class extends session.SSHSessionClientChannel {
        override channelOpen(): void {
          this.conn.sendRequest(this, "exec", common.NS("cat"), true).addCallback(() => {
            this.write(payload);
            this.conn.sendEOF(this);
          });
        }
        override closed(): void {
          super.closed();
          result.callback("done");
          conn.transport?.loseConnection();
        }
      })({ conn });
      conn.openChannel(ch);
    }),
  );
  assert.equal(await within(result, 120_000), "done");
  const got = ch!.stdout;
  assert.equal(got.length, size);
  assert.ok(Buffer.from(got).equals(Buffer.from(payload)), "the bytes came back unchanged");
  assert.equal(ch!.exitStatus, 0);
});
