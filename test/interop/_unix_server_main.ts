/**
 * Our server with the default Unix realm (/etc/passwd, no mapping), as a program of its own, so a
 * test can run it as a user who is not root: `node _unix_server_main.js '{"keys":{"name":"ssh-ed25519 …"}}'`.
 * It prints `{"port":N}` on its first line, then its log, and serves until it is killed.
 */
import { Portal } from "@twisted-ts/cred/portal";
import { startLogging } from "@twisted-ts/internet/log";
import { reactor } from "@twisted-ts/internet/reactor";
import { checkers, unix } from "@twisted-ts/conch";
import { factory, keys } from "@twisted-ts/conch/ssh";

const spec = JSON.parse(process.argv[2] ?? "{}") as { keys?: Record<string, string> };
const db: Record<string, keys.Key[]> = {};
for (const [name, pub] of Object.entries(spec.keys ?? {})) db[name] = [keys.Key.fromString(pub)];

const hostKey = keys.Key.generate("ed25519");
const f = new factory.SSHFactory();
f.moduliPath = undefined;
f.privateKeys = { [hostKey.sshType()]: hostKey };
f.portal = new Portal(new unix.UnixSSHRealm({ env: { SHLVL: "1" } }), [new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB(db))]);
const port = reactor.listenTCP(0, f, 50, "127.0.0.1");
await port.whenListening();
process.stdout.write(`${JSON.stringify({ port: port.getHost().port })}\n`);
startLogging(process.stdout);
await reactor.run();
