/**
 * The SSH endpoints the transport fuzzers feed: a server built by SSHFactory (ed25519 host key,
 * password and public-key login for alice, the in-process realm) and a client that accepts any
 * host key, each on a task.Clock with a quiet logger, plus the checks every transport input ends
 * with (a typed cause if it disconnected, input buffers under their limits).
 */
import { IPv4Address } from "@twisted-ts/internet/address";
import { succeed } from "@twisted-ts/internet/defer";
import type { IProtocol, ITransport } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { Protocol } from "@twisted-ts/internet/protocol";
import { Clock } from "@twisted-ts/internet/task";
import { StringTransport, connectedServerAndClient, type Loopback } from "@twisted-ts/internet/testing";
import { Portal } from "@twisted-ts/cred/portal";
import { InMemoryUsernamePasswordDatabaseDontUse, PAMPasswordChecker } from "@twisted-ts/cred/checkers";
import { checkers, unix } from "@twisted-ts/conch";
import { factory, keys, service, transport, userauth } from "@twisted-ts/conch/ssh";
import { bounded, requireTyped } from "./fuzz.js";

export const FUZZ_USER = "alice";
export const FUZZ_PASSWORD = "sesame";

let hostKeyMemo: keys.Key | undefined;
let userKeyMemo: keys.Key | undefined;

/** The server's host key (one per process: generating keys is not what is measured). */
export function fuzzHostKey(): keys.Key {
  hostKeyMemo ??= keys.Key.generate("ed25519");
  return hostKeyMemo;
}

/** alice's key, accepted by the server's public-key checker. */
export function fuzzUserKey(): keys.Key {
  userKeyMemo ??= keys.Key.generate("ed25519");
  return userKeyMemo;
}

/** A command of the in-process realm: prints its arguments `count` times, then exits 0. */
function repeatCommand(argv: string[]): IProtocol {
  const count = Math.min(1000, Number(argv[1]) || 1);
  return new (class extends Protocol<ITransport> {
    override connectionMade(): void {
      this.transport.write(`${argv.slice(2).join(" ")}\n`.repeat(count));
      (this.transport as unknown as { exit(status: number): void }).exit(0);
    }
  })();
}

const quiet = (): void => undefined;

/** Failed passwords are answered at once: the clock is advanced by hand anyway. */
class FastUserAuthServer extends userauth.SSHUserAuthServer {
  override passwordDelay = 0;
}

/** An SSHFactory with the fuzz host key, alice's password and key, and the in-process realm. */
export function fuzzFactory(): factory.SSHFactory {
  const f = new factory.SSHFactory();
  f.moduliPath = undefined;
  f.privateKeys = { [fuzzHostKey().sshType()]: fuzzHostKey() };
  const passwords = new InMemoryUsernamePasswordDatabaseDontUse({ [FUZZ_USER]: FUZZ_PASSWORD });
  f.portal = new Portal(new unix.InProcessRealm({ commands: { repeat: repeatCommand }, shell: () => new Protocol() }), [
    passwords,
    new PAMPasswordChecker(passwords),
    new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ [FUZZ_USER]: [fuzzUserKey().public()] })),
  ]);
  f.services = { ...f.services, "ssh-userauth": FastUserAuthServer };
  return f;
}

/** Takes whatever the server sends a client after SERVICE_ACCEPT; keeps only the message numbers. */
export class SinkService extends service.SSHService {
  override name = "ssh-userauth";
  readonly received: number[] = [];
  override packetReceived(num: number): void {
    this.received.push(num);
  }
}

/**
 * A client transport that accepts any host key. Where the fuzzers send its messages by hand (no
 * service requested), a SERVICE_ACCEPT starts a service that ignores what follows.
 */
export class FuzzClientTransport extends transport.SSHClientTransport {
  secure = false;
  override ssh_SERVICE_ACCEPT(packet: Uint8Array): void {
    if (this.instance !== undefined) super.ssh_SERVICE_ACCEPT(packet);
    else this.setService(new SinkService());
  }
  override verifyHostKey(): unknown {
    return succeed(true);
  }
  override connectionSecure(): void {
    this.secure = true;
  }
}

/** A server transport from {@link fuzzFactory} on `clock`, logging nowhere. */
export function fuzzServer(clock: Clock, f: factory.SSHFactory = fuzzFactory()): transport.SSHServerTransport {
  const t = f.buildProtocol(new IPv4Address("TCP", "127.0.0.1", 40022))!;
  t.clock = clock;
  t.logger = new Logger("fuzz.server", t, quiet);
  // The recorded OpenSSH 9.2 handshake (fuzz_corpus) negotiated curve25519 with a server that had
  // no sntrup761; offering it, the server would pick sntrup761 (OpenSSH's first choice) and the
  // recorded KEX_ECDH_INIT would not fit, so replays would stop at the key exchange.
  t.supportedKeyExchanges = t.supportedKeyExchanges.filter((k) => !k.startsWith("sntrup761"));
  return t;
}

/** A client transport on `clock`, logging nowhere. */
export function fuzzClient(clock: Clock): FuzzClientTransport {
  const c = new FuzzClientTransport();
  c.clock = clock;
  c.logger = new Logger("fuzz.client", c, quiet);
  return c;
}

/** A server transport connected to a StringTransport (its output is `io.value()`), `configure`d before it starts. */
export function standaloneServer(
  clock = new Clock(),
  configure: (t: transport.SSHServerTransport) => void = () => undefined,
): { t: transport.SSHServerTransport; io: StringTransport; clock: Clock } {
  const t = fuzzServer(clock);
  configure(t);
  const io = new StringTransport();
  t.makeConnection(io);
  return { t, io, clock };
}

/** A client transport connected to a StringTransport. */
export function standaloneClient(clock = new Clock()): { t: FuzzClientTransport; io: StringTransport; clock: Clock } {
  const t = fuzzClient(clock);
  const io = new StringTransport();
  t.makeConnection(io);
  return { t, io, clock };
}

export interface FuzzPair extends Loopback<transport.SSHServerTransport, FuzzClientTransport> {
  clock: Clock;
}

/**
 * Client and server joined in memory, with the client's cipher, MAC (and compression) set,
 * handshake done. The server is `fuzzFactory()`'s unless `f` is given.
 */
export function handshakenPair(cipher: string, mac: string, compression = "none", f: factory.SSHFactory = fuzzFactory()): FuzzPair {
  const clock = new Clock();
  const server = fuzzServer(clock, f);
  const client = fuzzClient(clock);
  client.supportedCiphers = [cipher];
  client.supportedMACs = [mac];
  client.supportedKeyExchanges = ["curve25519-sha256"];
  client.supportedCompressions = [compression];
  server.supportedCompressions = ["none", "zlib@openssh.com", "zlib"];
  server.supportedCiphers = [...transport.ALL_CIPHERS];
  server.supportedMACs = [...transport.ALL_MACS];
  const lb = connectedServerAndClient(server, client, { clock });
  if (!client.secure) throw new Error(`handshake with ${cipher}/${mac} did not complete`);
  return Object.assign(lb, { clock });
}

/** The transport's protected input state, read for the buffer checks. */
interface InputState {
  gotVersion: boolean;
  inbuf: Uint8Array;
  inOff: number;
  assembly: Uint8Array | undefined;
  disconnected: boolean;
  inboundBlocked: boolean;
}

/**
 * What must hold after every read: a disconnect carries a typed cause (or none: a plain
 * protocol decision), and a live transport holds less than one version buffer before the version
 * line and less than one largest packet after it.
 */
export function checkTransport(t: transport.SSHTransportBase, where: string): void {
  const cause = (t.disconnectReason as { cause?: unknown } | undefined)?.cause;
  if (cause !== undefined) requireTyped(cause, where);
  const s = t as unknown as InputState;
  if (s.disconnected || s.inboundBlocked) return;
  const held = s.inbuf.length - s.inOff;
  if (!s.gotVersion) {
    bounded(`${where}: version buffer`, held, transport.MAX_VERSION_BUFFER);
    return;
  }
  // One packet at most: length field, the largest packet_length, the longest MAC (64 bytes).
  bounded(`${where}: packet buffer`, Math.max(held, s.assembly?.length ?? 0), 4 + transport.MAX_PACKET_LENGTH + 64 - 1);
}
