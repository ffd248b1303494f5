/**
 * Fuzz targets for the SSH transport (RFC 4253): the version exchange on both sides, the
 * plaintext key exchange as a server hears it (OpenSSH's recorded KEXINIT, KEX_ECDH_INIT,
 * NEWKEYS) and as a client hears it (our server's KEXINIT, reply, NEWKEYS), encrypted packets of
 * every cipher family with their bytes damaged, a whole client conversation (login, session,
 * every request, sometimes across a rekey) damaged message by message and sealed properly, so the
 * damage reaches every layer's decoders through the real transport, the same for what a server
 * says to our client, and zlib decompression of what a peer sends.
 */
import fc from "fast-check";
import { connection, factory, transport } from "@twisted-ts/conch/ssh";
import { OPENSSH_CLIENT_TO_NEWKEYS } from "./fuzz_corpus.js";
import { applyMutation, bounded, chunking, chunksOf, conversation, mutant, mutation, requireTyped, target, type FuzzTarget } from "./fuzz.js";
import { clientConversation, connectionReplies, signedPublicKeyRequest, userauthReplies, userauthRequests } from "./fuzz_messages.js";
import { ClientChannel, FuzzAuthClient } from "./fuzz_services.js";
import { FUZZ_USER, SinkService, checkTransport, fuzzFactory, handshakenPair, standaloneClient, standaloneServer, type FuzzPair } from "./fuzz_ssh_pair.js";

const latin1 = (s: string): Uint8Array => Buffer.from(s, "latin1");

/** One unencrypted binary packet (RFC 4253 §6) around `payload`, padded to 8 bytes. */
export function plainPacket(payload: Uint8Array): Uint8Array {
  let pad = 8 - ((5 + payload.length) % 8);
  if (pad < 4) pad += 8;
  const out = Buffer.alloc(5 + payload.length + pad);
  out.writeUInt32BE(1 + payload.length + pad);
  out[4] = pad;
  out.set(payload, 5);
  return out;
}

/** A recorded plaintext stream taken apart: the version line (with CR LF) and each payload. */
export function splitPlain(stream: Uint8Array): { version: Uint8Array; payloads: Uint8Array[] } {
  const b = Buffer.from(stream.buffer, stream.byteOffset, stream.byteLength);
  let i = b.indexOf(0x0a) + 1;
  const version = b.subarray(0, i);
  const payloads: Uint8Array[] = [];
  while (i + 5 <= b.length) {
    const len = b.readUInt32BE(i);
    const pad = b[i + 4]!;
    payloads.push(b.subarray(i + 5, i + 4 + len - pad));
    i += 4 + len;
  }
  return { version, payloads };
}

const frame = (version: Uint8Array, payloads: readonly Uint8Array[]): Uint8Array => Buffer.concat([version, ...payloads.map(plainPacket)]);

/** Feeds `reads` to a transport, checking after each, until it disconnects. */
function feed(t: transport.SSHTransportBase, reads: readonly Uint8Array[], where: string): void {
  for (const r of reads) {
    if ((t as unknown as { disconnected: boolean }).disconnected) break;
    t.dataReceived(r);
    checkTransport(t, where);
  }
}

// ---------------------------------------------------------------- version exchange

const VERSION_CORPUS = [
  latin1("SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u10\r\n"),
  latin1("SSH-1.99-Twisted\n"),
  latin1("SSH-2.0-x\r\n\x00\x00\x00\x0c\x0a\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"),
  latin1(`banner line\r\n${"x".repeat(300)}\r\nSSH-2.0-late\r\n`),
  latin1(`SSH-2.0-${"y".repeat(transport.MAX_VERSION_BUFFER - 10)}\r\n`),
  latin1("SSH-1.5-old\r\n"),
];

const versionServer = target("ssh/version exchange (server)", 300, fc.tuple(mutant(VERSION_CORPUS), chunking), ([data, how]) => {
  const { t } = standaloneServer();
  feed(t, chunksOf(data, how), "server version");
});

const versionClient = target("ssh/version exchange (client)", 300, fc.tuple(mutant(VERSION_CORPUS), chunking), ([data, how]) => {
  const { t } = standaloneClient();
  feed(t, chunksOf(data, how), "client version");
});

// ---------------------------------------------------------------- plaintext key exchange

const OPENSSH = splitPlain(OPENSSH_CLIENT_TO_NEWKEYS);

const kexServer = target(
  "ssh/key exchange (server hears OpenSSH)",
  150,
  fc.tuple(
    fc.oneof(
      { weight: 3, arbitrary: conversation(OPENSSH.payloads).map((ps) => frame(OPENSSH.version, ps)) },
      { weight: 1, arbitrary: mutant([OPENSSH_CLIENT_TO_NEWKEYS]) },
    ),
    chunking,
  ),
  ([data, how]) => {
    const { t } = standaloneServer();
    feed(t, chunksOf(data, how), "server kex");
  },
);

let serverRecording: { version: Uint8Array; payloads: Uint8Array[] } | undefined;

/** Our server's side of a real handshake with our client: version, KEXINIT, reply, NEWKEYS. */
function recordServer(): { version: Uint8Array; payloads: Uint8Array[] } {
  if (serverRecording !== undefined) return serverRecording;
  const s = standaloneServer();
  const c = standaloneClient(s.clock);
  c.t.supportedKeyExchanges = ["curve25519-sha256"];
  const first = s.io.value();
  s.t.dataReceived(c.io.value());
  serverRecording = splitPlain(Buffer.concat([first, s.io.value()]));
  return serverRecording;
}

const kexClient = target(
  "ssh/key exchange (client hears our server)",
  150,
  () => {
    const rec = recordServer();
    const stream = fc.oneof(
      { weight: 3, arbitrary: conversation(rec.payloads).map((ps) => frame(rec.version, ps)) },
      { weight: 1, arbitrary: mutant([frame(rec.version, rec.payloads)]) },
    );
    return fc.tuple(stream, chunking);
  },
  ([data, how]) => {
    const { t } = standaloneClient();
    t.supportedKeyExchanges = ["curve25519-sha256"];
    feed(t, chunksOf(data, how), "client kex");
  },
);

// ---------------------------------------------------------------- encrypted packets

/** One of each cipher family: CTR with an HMAC, CTR with an encrypt-then-MAC HMAC, GCM, ChaCha20-Poly1305. */
export const CIPHER_FAMILIES: ReadonlyArray<readonly [string, string]> = [
  ["aes128-ctr", "hmac-sha2-256"],
  ["aes256-ctr", "hmac-sha2-512-etm@openssh.com"],
  ["aes256-gcm@openssh.com", "hmac-sha2-256"],
  ["chacha20-poly1305@openssh.com", "hmac-sha2-256"],
];

/** Messages (IGNORE, DEBUG, a service request) of sizes around the cipher block and the gather threshold. */
const WIRE_MESSAGES: ReadonlyArray<readonly [number, Uint8Array]> = [
  [2, Buffer.concat([Buffer.from([0, 0, 0, 3]), latin1("abc")])],
  [4, Buffer.concat([Buffer.from([1, 0, 0, 0, 5]), latin1("hello"), Buffer.from([0, 0, 0, 0])])],
  [2, Buffer.concat([Buffer.from([0, 0, 0x13, 0x88]), Buffer.alloc(5000, 0x41)])],
  [5, Buffer.concat([Buffer.from([0, 0, 0, 12]), latin1("ssh-userauth")])],
];

function encryptedTarget(cipher: string, mac: string): FuzzTarget {
  return target(`ssh/encrypted packets (${cipher}, ${mac})`, 60, fc.tuple(fc.array(mutation, { minLength: 1, maxLength: 3 }), chunking), ([ms, how]) => {
    const p = handshakenPair(cipher, mac);
    for (const [num, payload] of WIRE_MESSAGES) p.client.sendPacket(num, payload);
    const wire = p.clientTransport.takeOutgoing() ?? new Uint8Array(0);
    const damaged = ms.reduce(applyMutation, wire);
    feed(p.server, chunksOf(damaged, how), `encrypted ${cipher}`);
  });
}

// ---------------------------------------------------------------- a whole conversation

/**
 * Sends `msgs` (message number first) from one side of `p`, one at a time (`rewrite` may replace
 * each), pumping and checking the other side after each until it hangs up; then lets the clock
 * run (delayed failures, timers) and checks once more.
 */
function converse(p: FuzzPair, from: "client" | "server", msgs: readonly Uint8Array[], where: string, rewrite: (i: number, m: Uint8Array) => Uint8Array = (_i, m) => m): void {
  const [sender, receiver, receiverIO] = from === "client" ? [p.client, p.server, p.serverTransport] : [p.server, p.client, p.clientTransport];
  for (const [i, m] of msgs.entries()) {
    const payload = rewrite(i, m);
    if (payload.length === 0) continue;
    sender.sendPacket(payload[0]!, payload.subarray(1));
    p.pump.pump();
    checkTransport(receiver, where);
    if (receiverIO.disconnecting) break;
  }
  p.clock.advance(5);
  p.pump.flush(10_000);
  checkTransport(receiver, where);
}

/** The seeds sign for this session ID; the one unmutated signed request is signed again per connection. */
const PLACEHOLDER_ID = new Uint8Array(20);

const conversationTarget = target(
  "ssh/client conversation over an encrypted transport",
  100,
  () => fc.tuple(fc.nat(CIPHER_FAMILIES.length - 1), conversation([...clientConversation(), ...userauthRequests(PLACEHOLDER_ID)]), fc.option(fc.nat(30))),
  ([family, msgs, rekeyAt]) => {
    const [cipher, mac] = CIPHER_FAMILIES[family]!;
    const p = handshakenPair(cipher, mac);
    const placeholder = signedPublicKeyRequest(PLACEHOLDER_ID);
    converse(p, "client", msgs, "conversation", (i, m) => {
      // Sometimes the client starts a rekey part-way: messages queue on both sides meanwhile.
      if (i === rekeyAt) p.client.sendKexInit();
      return Buffer.from(m).equals(placeholder) ? signedPublicKeyRequest(p.client.sessionID) : m;
    });
  },
);

/** A server whose services answer nothing: the fuzzer speaks for it. */
function silentServerFactory(): factory.SSHFactory {
  const f = fuzzFactory();
  f.services = { "ssh-userauth": SinkService };
  return f;
}

/** The client's connection service: opens its channel 0 as soon as it starts. */
class OpeningConnection extends connection.SSHConnection {
  override serviceStarted(): void {
    super.serviceStarted();
    this.openChannel(new ClientChannel());
  }
}

const serverConversationTarget = target(
  "ssh/server conversation to our client over an encrypted transport",
  100,
  () => fc.tuple(fc.nat(CIPHER_FAMILIES.length - 1), conversation([...userauthReplies(), ...connectionReplies()])),
  ([family, msgs]) => {
    const [cipher, mac] = CIPHER_FAMILIES[family]!;
    const p = handshakenPair(cipher, mac, "none", silentServerFactory());
    const auth = new FuzzAuthClient(FUZZ_USER, new OpeningConnection());
    auth.whenDone().addErrback(() => undefined);
    p.client.requestService(auth);
    p.pump.flush(10_000);
    converse(p, "server", msgs, "server conversation");
  },
);

// ---------------------------------------------------------------- compression

/** The internal compression module (not in the package's exports map), typed as its declarations. */
type Compression = typeof import("../../packages/conch/dist/ssh/_tbase/compression.js");
const Z = (await import(new URL("dist/ssh/_tbase/compression.js", import.meta.resolve("@twisted-ts/conch/package.json")).href)) as Compression;

/** Compressed packets as a peer's context makes them: text, binary, and a bomb (4 MiB of zeros). */
function compressedPackets(): Uint8Array[] {
  const c = new Z.Compressor();
  return [
    c.compress(latin1("SSH_MSG_CHANNEL_DATA payload ".repeat(40))),
    c.compress(Uint8Array.from({ length: 3000 }, (_, i) => (i * 7919) & 0xff)),
    c.compress(new Uint8Array(4 * 1024 * 1024)),
    c.compress(latin1("z")),
  ];
}

const decompressor = target("ssh/zlib decompression of peer packets", 200, () => conversation(compressedPackets()), (packets) => {
  const d = new Z.Decompressor();
  for (const p of packets) {
    let out: Uint8Array | undefined;
    try {
      out = d.decompress(p);
    } catch (e) {
      requireTyped(e, "Decompressor.decompress");
      return;
    }
    bounded("decompressed packet", out.length, Z.MAX_DECOMPRESSED_PAYLOAD);
  }
});

export const TRANSPORT_TARGETS: readonly FuzzTarget[] = [
  versionServer,
  versionClient,
  kexServer,
  kexClient,
  ...CIPHER_FAMILIES.map(([c, m]) => encryptedTarget(c, m)),
  conversationTarget,
  serverConversationTarget,
  decompressor,
];
