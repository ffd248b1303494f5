/**
 * Builds an SSH client transport and server transport connected in memory (the iosim pump),
 * with generated host keys and a task.Clock, for transport, userauth and connection tests.
 */
import { connectedServerAndClient, type Loopback } from "@twisted-ts/internet/testing";
import { Clock } from "@twisted-ts/internet/task";
import { fail, succeed } from "@twisted-ts/internet/defer";
import { IPv4Address } from "@twisted-ts/internet/address";
import { keys, transport, factory, service } from "@twisted-ts/conch/ssh";

// A process loads ML-KEM on its first ML-KEM exchange, which waits for it; these pairs are pumped
// synchronously, so it is loaded up front (_transport/lazy_load.test.ts covers the wait).
await transport.loadKeyExchange("mlkem768x25519-sha256");

const hostKeyCache = new Map<string, keys.Key>();

/** A host key of `kind`, generated once per test process. */
export function hostKey(kind: "ed25519" | "ecdsa" | "rsa" | "ecdsa384" | "ecdsa521"): keys.Key {
  let k = hostKeyCache.get(kind);
  if (k === undefined) {
    k =
      kind === "ecdsa384"
        ? keys.Key.generate("ecdsa", { bits: 384 })
        : kind === "ecdsa521"
          ? keys.Key.generate("ecdsa", { bits: 521 })
          : keys.Key.generate(kind, kind === "rsa" ? { bits: 2048 } : {});
    hostKeyCache.set(kind, k);
  }
  return k;
}

/** A client transport that accepts any host key and records what happened. */
export class TestClientTransport extends transport.SSHClientTransport {
  secureCount = 0;
  fingerprints: string[] = [];
  /** How verifyHostKey refuses: not at all, with a failed Deferred, or with a rejected Promise. */
  rejectWith: "no" | "deferred" | "promise" = "no";
  errors: Array<[number, string]> = [];
  override verifyHostKey(_pubKey: Uint8Array, fingerprint: string): unknown {
    this.fingerprints.push(fingerprint);
    if (this.rejectWith === "deferred") return fail(new Error("not this key"));
    if (this.rejectWith === "promise") return Promise.reject(new Error("not this key"));
    return succeed(1);
  }
  override connectionSecure(): void {
    this.secureCount++;
  }
  override receiveError(reasonCode: number, description: string): void {
    this.errors.push([reasonCode, description]);
  }
}

/** Echoes every service message (50 and up) back with the same number; records what arrived. */
export class EchoService extends service.SSHService {
  override name = "ssh-userauth";
  received: Array<[number, Uint8Array]> = [];
  override packetReceived(messageNum: number, packet: Uint8Array): void {
    this.received.push([messageNum, packet.slice()]);
    if (!this.requireTransport().isClient) this.sendPacket(messageNum, packet.slice());
  }
}

export interface PairOptions {
  hostKeys?: keys.Key[];
  configure?: (client: TestClientTransport, server: transport.SSHServerTransport) => void;
  greet?: boolean;
}

export interface Pair extends Loopback<transport.SSHServerTransport, TestClientTransport> {
  clock: Clock;
  serverFactory: factory.SSHFactory;
}

/** A connected client/server pair; the handshake has run when `greet` is not false. */
export function sshPair(options: PairOptions = {}): Pair {
  const clock = new Clock();
  const f = new factory.SSHFactory();
  f.moduliPath = undefined;
  const priv: Record<string, keys.Key> = {};
  for (const k of options.hostKeys ?? [hostKey("ed25519")]) priv[k.sshType()] = k;
  f.privateKeys = priv;
  f.services = { "ssh-userauth": EchoService };
  const server = f.buildProtocol(new IPv4Address("TCP", "127.0.0.1", 40022))!;
  const client = new TestClientTransport();
  server.clock = clock;
  client.clock = clock;
  options.configure?.(client, server);
  const lb = connectedServerAndClient(server, client, { clock, greet: options.greet ?? true });
  return Object.assign(lb, { clock, serverFactory: f });
}
