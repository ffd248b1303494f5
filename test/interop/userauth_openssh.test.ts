/**
 * The Conch client howto's ClientUserAuth (publickey only, getPassword returning nothing),
 * ported as written (the CatChannel waits for cat's echo before closing), logging in to OpenSSH's sshd with ed25519, ECDSA and RSA keys, then running
 * the howto's CatChannel over the connection it starts.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { Deferred, fail, succeed } from "@twisted-ts/internet/defer";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import type { Failure } from "@twisted-ts/internet/failure";
import { error } from "@twisted-ts/conch";
import { channel, common, connection, keys, transport, userauth } from "@twisted-ts/conch/ssh";
import { startSshd, sshKeygen } from "../_support/sshd.js";
import { tempDir } from "../_support/peers.js";

interface Run {
  catData: string;
  signatureAlgorithm: string | undefined;
  banner: string[];
}

/** The howto's four classes, parameterised by the key, the host key fingerprint and the result. */
function howto(publicKey: string, privateKey: string, hostFingerprint: string, user: string, result: Deferred<Run>) {
  const banner: string[] = [];
  let auth: ClientUserAuth | undefined;

  class ClientTransport extends transport.SSHClientTransport {
    override verifyHostKey(_pubKey: Uint8Array, fingerprint: string) {
      if (fingerprint !== hostFingerprint) return fail(new error.ConchError("bad key"));
      return succeed(1);
    }
    override connectionSecure(): void {
      auth = new ClientUserAuth(user, new ClientConnection());
      auth.whenDone().addErrback((f: Failure) => {
        if (!result.called) result.errback(f);
      });
      this.requestService(auth);
    }
  }

  class ClientUserAuth extends userauth.SSHUserAuthClient {
    override getPassword(_prompt?: string) {
      return undefined; // this says we won't do password authentication
    }
    override getPublicKey() {
      return keys.getPublicKeyString({ data: publicKey });
    }
    override getPrivateKey() {
      return succeed(keys.getPrivateKeyObject({ data: privateKey }));
    }
    override displayBanner(message: string): void {
      banner.push(message);
    }
  }

  class ClientConnection extends connection.SSHConnection {
    override serviceStarted(): void {
      super.serviceStarted();
      this.openChannel(new CatChannel({ conn: this }));
    }
  }

  class CatChannel extends channel.SSHChannel {
    override name = "session";
    catData = "";
    override channelOpen(_data: Uint8Array): void {
      const d = this.conn!.sendRequest(this, "exec", common.NS("cat"), true);
      d.addCallback(() => this.cbSendRequest());
    }
    cbSendRequest(): void {
      this.write('This data will be echoed back to us by "cat."\r\n');
      this.conn!.sendEOF(this);
      // The howto also calls loseConnection() here; sshd then closes the channel before cat's
      // echo is read, so this test waits for sshd to close it when cat exits.
    }
    override dataReceived(data: Uint8Array): void {
      this.catData += new TextDecoder().decode(data);
    }
    override closed(): void {
      if (!result.called) result.callback({ catData: this.catData, signatureAlgorithm: auth?.lastSignatureAlgorithm, banner });
      this.conn!.transport?.loseConnection();
    }
  }

  const factory = new ClientFactory();
  factory.protocol = ClientTransport;
  return factory;
}

async function withTimeout<T>(d: Deferred<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([d.asPromise(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

for (const type of ["ed25519", "ecdsa", "rsa"] as const) {
  test(`the howto's ClientUserAuth logs in to OpenSSH's sshd with an ${type} key and runs cat`, async (t: TestContext) => {
    const keyDir = tempDir(t, "twisted-ts-userkeys-");
    const [privPath, pubLine] = await sshKeygen(keyDir, `id_${type}`, type);
    const sshd = await startSshd(t, { authorizedKeys: [pubLine], config: ["Banner none"] });
    if (sshd === undefined) return;
    const hostKey = keys.Key.fromString(sshd.hostKeys.ed25519!);
    const result = new Deferred<Run>();
    const factory = howto(pubLine, readFileSync(privPath, "utf8"), hostKey.fingerprint(), sshd.user, result);
    reactor.connectTCP("127.0.0.1", sshd.port, factory);
    const run = await withTimeout(result, 20_000, "login").catch((e: unknown) => {
      throw new Error(`${String(e)}\n--- sshd ---\n${sshd.output()}`);
    });
    assert.equal(run.catData, 'This data will be echoed back to us by "cat."\r\n');
    if (type === "rsa") assert.equal(run.signatureAlgorithm, "rsa-sha2-512", "OpenSSH's server-sig-algs allows SHA-2");
    const accepted = new RegExp(`Accepted publickey for ${sshd.user} from 127\\.0\\.0\\.1`);
    for (let i = 0; i < 500 && !accepted.test(sshd.output()); i++) await new Promise((r) => setTimeout(r, 20));
    assert.match(sshd.output(), accepted);
  });
}

test("the howto's ClientUserAuth with a key sshd does not know: NO_MORE_AUTH_METHODS_AVAILABLE, visible to the application", async (t: TestContext) => {
  const keyDir = tempDir(t, "twisted-ts-userkeys-");
  const [, known] = await sshKeygen(keyDir, "id_known", "ed25519");
  const [otherPriv, otherPub] = await sshKeygen(keyDir, "id_other", "ed25519");
  const sshd = await startSshd(t, { authorizedKeys: [known] });
  if (sshd === undefined) return;
  const hostKey = keys.Key.fromString(sshd.hostKeys.ed25519!);
  const result = new Deferred<Run>();
  reactor.connectTCP("127.0.0.1", sshd.port, howto(otherPub, readFileSync(otherPriv, "utf8"), hostKey.fingerprint(), sshd.user, result));
  await assert.rejects(withTimeout(result, 20_000, "refusal"), error.NoMoreAuthMethodsError);
});
