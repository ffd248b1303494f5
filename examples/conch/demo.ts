/**
 * The main job (`npm start`): our SSH server on loopback with the Unix realm, and the Conch
 * client howto (examples/conch/sshclient.ts) run against it, in one process on one reactor.
 *
 * Host and user keys are generated for this run only; the server listens on 127.0.0.1 on a free
 * port; the howto client checks the host key's MD5 fingerprint, logs in with the user key, runs
 * `cat`, sends a line, prints what came back, and everything stops.
 *
 *     npm start
 *     node examples/dist/conch/demo.js [--verbose]
 */
import { userInfo } from "node:os";
import { reactor } from "@twisted-ts/internet/reactor";
import { startLogging } from "@twisted-ts/internet/log";
import { Portal } from "@twisted-ts/cred/portal";
import { checkers, unix } from "@twisted-ts/conch";
import { factory, keys } from "@twisted-ts/conch/ssh";
import { howtoFactory } from "./sshclient.js";

async function main(): Promise<void> {
  if (process.argv.includes("--verbose")) startLogging(process.stdout);
  const user = userInfo().username;
  const hostKey = keys.Key.generate("ed25519");
  const userKey = keys.Key.generate("ed25519");

  // The server: host key, a portal whose only checker takes the user's public key, the Unix realm.
  const server = new factory.SSHFactory();
  server.privateKeys = { [hostKey.sshType()]: hostKey };
  const db = new checkers.InMemorySSHKeyDB({ [user]: [userKey.public()] });
  // SHLVL=1, as OpenSSH's `SetEnv`, keeps the user's ~/.bashrc out of `bash -c cat`.
  server.portal = new Portal(new unix.UnixSSHRealm({ env: { SHLVL: "1" } }), [new checkers.SSHPublicKeyChecker(db)]);
  const port = reactor.listenTCP(0, server, 50, "127.0.0.1");
  await port.whenListening();
  const address = port.getHost();
  console.log(`SSH server on 127.0.0.1:${address.port}, host key ${hostKey.fingerprint("sha256")}`);

  // The howto's client, pinned to this server's host key.
  let exitCode = 1;
  const client = howtoFactory({
    user,
    privateKey: userKey.toString("openssh"),
    fingerprint: hostKey.fingerprint(),
    onResult: (catData) => {
      console.log('We got this from "cat":', catData);
      exitCode = catData === 'This data will be echoed back to us by "cat."\r\n' ? 0 : 1;
      reactor.stop();
    },
  });
  client.clientConnectionFailed = (_connector, reason) => {
    console.error("connection failed:", reason.getErrorMessage());
    reactor.stop();
  };
  reactor.connectTCP("127.0.0.1", address.port, client);
  // Never hang: give up after 30 seconds.
  const timeout = reactor.callLater(30, () => {
    console.error("timed out");
    reactor.stop();
  });
  await reactor.run();
  if (timeout.active()) timeout.cancel();
  process.exitCode = exitCode;
}

await main();
