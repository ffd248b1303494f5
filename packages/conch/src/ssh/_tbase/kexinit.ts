/**
 * SSH_MSG_KEXINIT (RFC 4253 §7.1): encoding, decoding and algorithm negotiation.
 */
import { SSHReader, SSHWriter, decodeUtf8 } from "../common.js";
import { MSG_KEXINIT } from "./messages.js";
import { DISCONNECT_PROTOCOL_ERROR, SSHDisconnectError } from "../../error.js";

/** The name-lists of one side's KEXINIT, in wire order. */
export interface KexInitLists {
  readonly kex: readonly string[];
  readonly hostKey: readonly string[];
  readonly cipherCS: readonly string[];
  readonly cipherSC: readonly string[];
  readonly macCS: readonly string[];
  readonly macSC: readonly string[];
  readonly compCS: readonly string[];
  readonly compSC: readonly string[];
  readonly langCS: readonly string[];
  readonly langSC: readonly string[];
  readonly firstKexPacketFollows: boolean;
}

/** The algorithms both sides agreed on. */
export interface NegotiatedAlgorithms {
  readonly kex: string;
  readonly hostKey: string;
  readonly cipherCS: string;
  readonly cipherSC: string;
  readonly macCS: string;
  readonly macSC: string;
  readonly compCS: string;
  readonly compSC: string;
}

/** The whole KEXINIT payload, message number included (as it goes into the exchange hash). */
export function encodeKexInit(cookie: Uint8Array, l: KexInitLists): Uint8Array {
  const w = new SSHWriter(1024).byte(MSG_KEXINIT).raw(cookie);
  for (const list of [l.kex, l.hostKey, l.cipherCS, l.cipherSC, l.macCS, l.macSC, l.compCS, l.compSC, l.langCS, l.langSC]) {
    w.nameList(list);
  }
  return w.boolean(l.firstKexPacketFollows).uint32(0).finish().slice();
}

/*
 * byte[16]    cookie
 * name-list   kex_algorithms, server_host_key_algorithms,
 *             encryption_algorithms_client_to_server, encryption_algorithms_server_to_client,
 *             mac_algorithms_client_to_server, mac_algorithms_server_to_client,
 *             compression_algorithms_client_to_server, compression_algorithms_server_to_client,
 *             languages_client_to_server, languages_server_to_client
 * boolean     first_kex_packet_follows
 * uint32      0 (reserved)
 */
/**
 * Most bytes in one KEXINIT name-list. OpenSSH's whole KEXINIT is about 1.5 KiB; without a bound,
 * ten lists of 13,000 one-letter names (a 256 KiB packet) take 14 ms to split and match.
 */
export const MAX_NAME_LIST_BYTES = 16 * 1024;
/** Most names in one KEXINIT name-list. */
export const MAX_NAME_LIST_NAMES = 256;

function boundedNameList(r: SSHReader, index: number): string[] {
  const raw = r.string();
  if (raw.length > MAX_NAME_LIST_BYTES) {
    throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, `KEXINIT name-list ${index} is ${raw.length} bytes, more than ${MAX_NAME_LIST_BYTES}`, false);
  }
  const text = decodeUtf8(raw, "name-list");
  const names = text.length === 0 ? [] : text.split(",");
  if (names.length > MAX_NAME_LIST_NAMES) {
    throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, `KEXINIT name-list ${index} has ${names.length} names, more than ${MAX_NAME_LIST_NAMES}`, false);
  }
  return names;
}

/** Decodes a KEXINIT payload (after the message number). Throws on a short or malformed packet. */
export function decodeKexInit(body: Uint8Array): KexInitLists {
  const r = new SSHReader(body);
  r.raw(16);
  const lists: string[][] = [];
  for (let i = 0; i < 10; i++) lists.push(boundedNameList(r, i));
  const firstKexPacketFollows = r.boolean();
  r.uint32();
  const [kex, hostKey, cipherCS, cipherSC, macCS, macSC, compCS, compSC, langCS, langSC] = lists as [
    string[], string[], string[], string[], string[], string[], string[], string[], string[], string[],
  ];
  return { kex, hostKey, cipherCS, cipherSC, macCS, macSC, compCS, compSC, langCS, langSC, firstKexPacketFollows };
}

/** The first of the client's names the server also has: the client's preference wins (RFC 4253 §7.1). */
export function ffs(client: readonly string[], server: readonly string[]): string | undefined {
  for (const name of client) if (server.includes(name)) return name;
  return undefined;
}

/** Names in kex lists that are signals, never algorithms (RFC 8308 §2.1, OpenSSH strict kex). */
export const KEX_PSEUDO_ALGORITHMS: ReadonlySet<string> = new Set([
  "ext-info-c",
  "ext-info-s",
  "kex-strict-c-v00@openssh.com",
  "kex-strict-s-v00@openssh.com",
]);

/**
 * Agrees on every algorithm, or returns the name of the part with nothing in common. A MAC is
 * not needed where the cipher is an AEAD (`isAead`), as OpenSSH does.
 */
export function negotiate(
  client: KexInitLists,
  server: KexInitLists,
  isAead: (cipher: string) => boolean,
): NegotiatedAlgorithms | { failed: string } {
  const kex = ffs(client.kex.filter((k) => !KEX_PSEUDO_ALGORITHMS.has(k)), server.kex);
  if (kex === undefined) return { failed: "key exchange" };
  const hostKey = ffs(client.hostKey, server.hostKey);
  if (hostKey === undefined) return { failed: "host key" };
  const cipherCS = ffs(client.cipherCS, server.cipherCS);
  const cipherSC = ffs(client.cipherSC, server.cipherSC);
  if (cipherCS === undefined || cipherSC === undefined) return { failed: "cipher" };
  const macCS = isAead(cipherCS) ? "" : ffs(client.macCS, server.macCS);
  const macSC = isAead(cipherSC) ? "" : ffs(client.macSC, server.macSC);
  if (macCS === undefined || macSC === undefined) return { failed: "MAC" };
  const compCS = ffs(client.compCS, server.compCS);
  const compSC = ffs(client.compSC, server.compSC);
  if (compCS === undefined || compSC === undefined) return { failed: "compression" };
  return { kex, hostKey, cipherCS, cipherSC, macCS, macSC, compCS, compSC };
}
