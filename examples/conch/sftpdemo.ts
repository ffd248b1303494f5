/**
 * SFTP both ways, in one process on one reactor: our SSH server on loopback with the Unix realm,
 * whose `sftp` subsystem runs our `sftp-server` bin as the logged-in user (as sshd runs
 * OpenSSH's), and our client, which uploads a file, lists the folder, downloads the file again and
 * checks it byte for byte. Keys are generated for this run; the files live in a temp folder.
 *
 *     npm run build && node examples/dist/conch/sftpdemo.js
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { fail, succeed, type Deferred } from "@twisted-ts/internet/defer";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { Portal } from "@twisted-ts/cred/portal";
import { checkers, error, unix } from "@twisted-ts/conch";
import { connection, factory, filetransfer, keys, transport, userauth } from "@twisted-ts/conch/ssh";

const sha256 = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex").slice(0, 16);

async function transfer(conn: connection.SSHConnection, dir: string): Promise<boolean> {
  const sftp = await filetransfer.openSFTPChannel(conn);
  const data = randomBytes(3 * 1024 * 1024 + 11);
  writeFileSync(join(dir, "local.bin"), data);
  await sftp.put(join(dir, "local.bin"), join(dir, "uploaded.bin"));
  console.log(`put ${data.length} bytes (sha256 ${sha256(data)}…)`);
  for await (const [, longname] of await sftp.openDirectory(dir)) console.log(`  ${longname}`);
  await sftp.get(join(dir, "uploaded.bin"), join(dir, "downloaded.bin"));
  const back = readFileSync(join(dir, "downloaded.bin"));
  console.log(`got ${back.length} bytes (sha256 ${sha256(back)}…)`);
  return back.equals(data);
}

async function main(): Promise<void> {
  const user = userInfo().username;
  const dir = mkdtempSync(join(tmpdir(), "twisted-ts-sftpdemo-"));
  const hostKey = keys.Key.generate("ed25519");
  const userKey = keys.Key.generate("ed25519");

  // The server: the Unix realm serves `sftp` by default (unix.DEFAULT_SUBSYSTEMS).
  const server = new factory.SSHFactory();
  server.privateKeys = { [hostKey.sshType()]: hostKey };
  const db = new checkers.InMemorySSHKeyDB({ [user]: [userKey.public()] });
  server.portal = new Portal(new unix.UnixSSHRealm(), [new checkers.SSHPublicKeyChecker(db)]);
  const port = reactor.listenTCP(0, server, 50, "127.0.0.1");
  await port.whenListening();
  console.log(`SSH server on 127.0.0.1:${port.getHost().port}`);

  let ok = false;
  const finish = (e?: unknown): void => {
    if (e !== undefined) console.error("failed:", e instanceof Error ? e.message : String(e));
    if (reactor.running) reactor.stop();
  };
  class ClientConnection extends connection.SSHConnection {
    override serviceStarted(): void {
      transfer(this, dir).then((same) => {
        ok = same;
        console.log(same ? "the file came back byte for byte" : "the file came back different");
        this.transport?.loseConnection();
        finish();
      }, finish);
    }
  }
  class ClientAuth extends userauth.SSHUserAuthClient {
    override getPublicKey(): Uint8Array {
      return userKey.public().blob();
    }
    override getPrivateKey(): Deferred<keys.Key> {
      return succeed(userKey);
    }
  }
  class ClientTransport extends transport.SSHClientTransport {
    override verifyHostKey(_k: Uint8Array, fingerprint: string): Deferred<number> {
      return fingerprint === hostKey.fingerprint() ? succeed(1) : fail(new error.ConchError("bad host key"));
    }
    override connectionSecure(): void {
      const auth = new ClientAuth(user, new ClientConnection());
      auth.whenDone().addErrback((f) => finish(f.value));
      this.requestService(auth);
    }
  }
  const client = new ClientFactory();
  client.protocol = ClientTransport;
  client.clientConnectionFailed = (_c, reason) => finish(reason.value);
  reactor.connectTCP("127.0.0.1", port.getHost().port, client);
  const timeout = reactor.callLater(60, () => finish(new Error("timed out")));
  await reactor.run();
  if (timeout.active()) timeout.cancel();
  rmSync(dir, { recursive: true, force: true });
  process.exitCode = ok ? 0 : 1;
}

await main();
