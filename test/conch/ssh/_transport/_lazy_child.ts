/**
 * Runs in a fresh process for `lazy_load.test.ts` (module loading is per process): one SSH
 * exchange, then one JSON line saying what happened and which modules the process loaded.
 *
 *     node _lazy_child.js pair CLIENT_KEX SERVER_KEX [CIPHER]   our client and server over loopbackAsync
 *     node _lazy_child.js server HEX                            a server fed HEX (the client's side) in one write
 *     node _lazy_child.js defaults                              the default algorithm lists
 */
import { IPv4Address } from "@twisted-ts/internet/address";
import { succeed } from "@twisted-ts/internet/defer";
import { StringTransport, loopbackAsync } from "@twisted-ts/internet/testing";
import { factory, keys, service, transport } from "@twisted-ts/conch/ssh";

const conchRoot = import.meta.resolve("@twisted-ts/conch/package.json");
const M = (await import(new URL("dist/ssh/_transport/mlkem.js", conchRoot).href)) as { mlKemLoaded(): boolean };

const unhandled: string[] = [];
process.on("unhandledRejection", (e) => unhandled.push(String(e)));

/** What the process has loaded besides the exchange itself. */
function loaded(): { mlkem: boolean; workerThreads: boolean; unhandled: string[] } {
  return { mlkem: M.mlKemLoaded(), workerThreads: (process as unknown as { moduleLoadList: string[] }).moduleLoadList.includes("NativeModule worker_threads"), unhandled };
}

function serverFactory(): factory.SSHFactory {
  const f = new factory.SSHFactory();
  f.moduliPath = undefined;
  f.privateKeys = { "ssh-ed25519": keys.Key.generate("ed25519") };
  f.services = { "ssh-userauth": service.SSHService };
  f.perSourcePenaltyExemptList = ["127.0.0.0/8"];
  return f;
}

class Client extends transport.SSHClientTransport {
  secure = false;
  override verifyHostKey(): unknown {
    return succeed(true);
  }
  override connectionSecure(): void {
    this.secure = true;
    this.loseConnection();
  }
}

async function pair(clientKex: string, serverKex: string, cipher: string | undefined): Promise<void> {
  const f = serverFactory();
  const server = f.buildProtocol(new IPv4Address("TCP", "127.0.0.1", 22))!;
  server.supportedKeyExchanges = serverKex.split(",");
  const client = new Client();
  client.supportedKeyExchanges = clientKex.split(",");
  if (cipher !== undefined) client.supportedCiphers = [cipher];
  await loopbackAsync(server, client);
  const reason = client.disconnectReason;
  console.log(JSON.stringify({ kex: client.kexAlg ?? null, cipher: client.secure ? client.algorithms?.cipherCS : null, secure: client.secure, clientReason: reason?.reasonCode ?? null, serverReason: server.disconnectReason?.reasonCode ?? null, ...loaded() }));
}

/** The message numbers of the unencrypted packets in `wire`. */
function messageTypes(wire: Uint8Array): number[] {
  const b = Buffer.from(wire);
  const types: number[] = [];
  for (let i = 0; i + 5 < b.length; i += 4 + b.readUInt32BE(i)) types.push(b[i + 5]!);
  return types;
}

async function fedServer(hex: string): Promise<void> {
  const server = serverFactory().buildProtocol(new IPv4Address("TCP", "127.0.0.1", 22))!;
  const t = new StringTransport();
  server.makeConnection(t);
  const version = t.value().indexOf(0x0a) + 1;
  server.dataReceived(Buffer.from(hex, "hex"));
  const whileLoading = { types: messageTypes(t.value().subarray(version)), mlkem: M.mlKemLoaded() };
  await transport.loadKeyExchange("mlkem768x25519-sha256");
  await new Promise((resolve) => setImmediate(resolve));
  const types = messageTypes(t.value().subarray(version));
  console.log(JSON.stringify({ whileLoading, types, inEncrypted: server.isEncrypted("in"), reason: server.disconnectReason?.message ?? null, ...loaded() }));
}

const [mode, a, b, c] = process.argv.slice(2);
if (mode === "pair") await pair(a!, b!, c);
else if (mode === "server") await fedServer(a!);
else if (mode === "defaults") console.log(JSON.stringify({ kex: transport.DEFAULT_KEY_EXCHANGES, ciphers: transport.DEFAULT_CIPHERS, ...loaded() }));
else throw new Error(`unknown mode ${mode}`);
process.exit(0);
