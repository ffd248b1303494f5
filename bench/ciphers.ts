/**
 * SSH packet protection throughput: seal + open of 32 KiB payloads per cipher (and per MAC for
 * CTR), ours beside the `ssh2` package's implementation (its native addon when it is built, and
 * its pure-JS path), in the same run, plus the OpenSSL ceiling for a fresh AEAD per packet; then
 * the send path alone: our `seal()` (one wire buffer) and `sealPieces()` (what the transport
 * writes: the body's ciphertext as a piece of its own) beside ssh2's encrypt.
 *
 * Each figure is the best of three interleaved runs (the machine is shared).
 *
 *   node bench/dist/ciphers.js            (about 25 s)
 *   node bench/dist/ciphers.js --quick    (about 4 s)
 */
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { createRequire } from "node:module";

type Crypto = typeof import("../packages/conch/dist/ssh/_transport/index.js");
const root = import.meta.resolve("@twisted-ts/conch/package.json");
const T = (await import(new URL("dist/ssh/_transport/index.js", root).href)) as Crypto;

const QUICK = process.argv.includes("--quick");
const SECONDS = QUICK ? 0.1 : 0.25;
const ROUNDS = QUICK ? 1 : 3;
const PAYLOAD = 32 * 1024;
const payload = randomBytes(PAYLOAD);

/**
 * Runs `fn` (one packet per call) for about SECONDS of wall time after a warm-up; returns MB of
 * payload per second of this process's CPU time (user + system), which other work on the shared
 * machine disturbs far less than wall time.
 */
function measure(fn: () => void): number {
  for (let i = 0; i < 50; i++) fn();
  let n = 0;
  const cpu0 = process.cpuUsage();
  const start = process.hrtime.bigint();
  const limit = BigInt(Math.round(SECONDS * 1e9));
  while (process.hrtime.bigint() - start < limit) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
  }
  const cpu = process.cpuUsage(cpu0);
  return (n * PAYLOAD) / ((cpu.user + cpu.system) / 1e6) / 1e6;
}

function ours(cipher: string, mac: string): () => void {
  const c = T.CIPHERS[cipher]!;
  const m = T.MACS[mac]!;
  const keys = { key: randomBytes(c.keyLength), iv: randomBytes(c.ivLength), macKey: randomBytes(m.keyLength) };
  const sealer = T.createSealer(cipher, mac, keys);
  const opener = T.createOpener(cipher, mac, keys);
  let seq = 0;
  return () => {
    const wire = sealer.seal(seq, payload);
    opener.decryptLength(seq, wire.subarray(0, opener.headerLength));
    const out = opener.open(seq, wire);
    if (out.length !== PAYLOAD) throw new Error("bad round trip");
    seq = (seq + 1) >>> 0;
  };
}

// ---- ssh2 ----

interface Ssh2Crypto {
  bindingAvailable: boolean;
  init: Promise<void>;
  CIPHER_INFO: Record<string, { keyLen: number; ivLen: number }>;
  MAC_INFO: Record<string, { len: number }>;
  createCipher(config: unknown): { allocPacket(n: number): Buffer; encrypt(p: Buffer): void };
  createDecipher(config: unknown): { decrypt(data: Buffer, p: number, len: number): void };
}

let ssh2: Ssh2Crypto | undefined;
let ssh2Version = "?";
try {
  const require = createRequire(import.meta.url);
  ssh2 = require("ssh2/lib/protocol/crypto.js") as Ssh2Crypto;
  ssh2Version = (require("ssh2/package.json") as { version: string }).version;
  await ssh2.init;
} catch (e) {
  console.error("ssh2 crypto not loadable:", (e as Error).message);
}

function theirs(cipher: string, mac: string, forceNative: boolean): (() => void) | undefined {
  if (ssh2 === undefined) return undefined;
  const ci = ssh2.CIPHER_INFO[cipher];
  if (ci === undefined) return undefined;
  const aead = cipher.includes("gcm") || cipher.startsWith("chacha");
  const mi = aead ? undefined : ssh2.MAC_INFO[mac];
  const key = randomBytes(ci.keyLen);
  const iv = ci.ivLen ? randomBytes(ci.ivLen) : undefined;
  const macKey = mi ? randomBytes(mi.len) : undefined;
  const chunks: Buffer[] = [];
  let got = 0;
  // ssh2 advances GCM IVs in place: each side gets its own copies.
  const copy = (b: Buffer | undefined) => (b === undefined ? undefined : Buffer.from(b));
  const enc = ssh2.createCipher({
    outbound: { onWrite: (b: Buffer) => chunks.push(Buffer.from(b)), cipherInfo: ci, cipherKey: copy(key), cipherIV: copy(iv), seqno: 0, macInfo: mi, macKey: copy(macKey), forceNative },
  });
  const dec = ssh2.createDecipher({
    inbound: { onPayload: (p: Buffer) => { got = p.length; }, decipherInfo: ci, decipherKey: copy(key), decipherIV: copy(iv), seqno: 0, macInfo: mi, macKey: copy(macKey), forceNative },
  });
  return () => {
    const pkt = enc.allocPacket(PAYLOAD);
    payload.copy(pkt, 5);
    chunks.length = 0;
    enc.encrypt(pkt);
    for (const c of chunks) dec.decrypt(c, 0, c.length);
    if (got !== PAYLOAD) throw new Error(`ssh2 round trip gave ${got}`);
    got = 0;
  };
}

// ---- seal only (the send path) ----

/** Our sealer alone: `seal()` of the whole payload, or `sealPieces()` of a channel data message. */
function oursSeal(cipher: string, mac: string, pieces: boolean): () => void {
  const c = T.CIPHERS[cipher]!;
  const m = T.MACS[mac]!;
  const sealer = T.createSealer(cipher, mac, { key: randomBytes(c.keyLength), iv: randomBytes(c.ivLength), macKey: randomBytes(m.keyLength) });
  // The same PAYLOAD bytes as one message: type, an 8-byte channel header, the data.
  const head = payload.subarray(1, 9);
  const body = payload.subarray(9);
  let seq = 0;
  return () => {
    const n = pieces ? sealer.sealPieces(seq, 94, head, body).length : sealer.seal(seq, payload).length;
    if (n === 0) throw new Error("nothing sealed");
    seq = (seq + 1) >>> 0;
  };
}

/** ssh2's encrypt alone: allocPacket, the payload copied in, encrypted in place. */
function theirsSeal(cipher: string, mac: string, forceNative: boolean): (() => void) | undefined {
  if (ssh2 === undefined) return undefined;
  const ci = ssh2.CIPHER_INFO[cipher];
  if (ci === undefined) return undefined;
  const aead = cipher.includes("gcm") || cipher.startsWith("chacha");
  const mi = aead ? undefined : ssh2.MAC_INFO[mac];
  const enc = ssh2.createCipher({
    outbound: { onWrite: () => {}, cipherInfo: ci, cipherKey: randomBytes(ci.keyLen), cipherIV: ci.ivLen ? randomBytes(ci.ivLen) : undefined, seqno: 0, macInfo: mi, macKey: mi ? randomBytes(mi.len) : undefined, forceNative },
  });
  return () => {
    const pkt = enc.allocPacket(PAYLOAD);
    payload.copy(pkt, 5);
    enc.encrypt(pkt);
  };
}

// ---- OpenSSL ceiling: a fresh IETF AEAD per packet, seal + open ----

function ceiling(algo: "aes-128-gcm" | "chacha20-poly1305"): () => void {
  const key = randomBytes(32).subarray(0, algo === "aes-128-gcm" ? 16 : 32);
  const iv = randomBytes(12);
  const aad = randomBytes(4);
  return () => {
    const c = createCipheriv(algo as "aes-128-gcm", key, iv, { authTagLength: 16 });
    c.setAAD(aad);
    const ct = c.update(payload);
    c.final();
    const tag = c.getAuthTag();
    const d = createDecipheriv(algo as "aes-128-gcm", key, iv, { authTagLength: 16 });
    d.setAAD(aad);
    d.setAuthTag(tag);
    d.update(ct);
    d.final();
  };
}

const cases: Array<[string, string]> = [
  ["chacha20-poly1305@openssh.com", "none"],
  ["aes128-gcm@openssh.com", "none"],
  ["aes256-gcm@openssh.com", "none"],
  ["aes128-ctr", "hmac-sha2-256-etm@openssh.com"],
  ["aes128-ctr", "hmac-sha2-256"],
  ["aes128-ctr", "hmac-sha2-512-etm@openssh.com"],
  ["aes128-ctr", "hmac-sha1-etm@openssh.com"],
  ["aes256-ctr", "hmac-sha2-256-etm@openssh.com"],
  ["aes128-cbc", "hmac-sha2-256-etm@openssh.com"],
];

const fmt = (x: number | undefined) => (x === undefined ? "—" : x.toFixed(0));
const ratio = (a: number, b: number | undefined) => (b === undefined ? "—" : (a / b).toFixed(2) + "×");

const addon = ssh2?.bindingAvailable ? "ssh2 addon" : "ssh2 addon (not built)";
console.log(`# seal + open, ${PAYLOAD}-byte payloads, MB of payload per CPU second, best of ${ROUNDS} (node ${process.version}, ssh2 ${ssh2Version}, native addon ${ssh2?.bindingAvailable ? "loaded" : "absent"})\n`);
console.log(`| cipher | MAC | twisted-ts | ${addon} | ssh2 pure JS | vs addon | vs pure JS |`);
console.log("|---|---|---|---|---|---|---|");
/** The best of ROUNDS interleaved runs of each implementation (the machine is shared). */
function best(fns: Array<(() => void) | undefined>): Array<number | undefined> {
  const out: Array<number | undefined> = fns.map(() => undefined);
  for (let r = 0; r < ROUNDS; r++) {
    fns.forEach((fn, i) => {
      if (fn === undefined) return;
      const v = measure(fn);
      out[i] = Math.max(out[i] ?? 0, v);
    });
  }
  return out;
}

// A fresh process runs its first ~1,000 packets several times slower (the allocator's heap
// growing to its working set): warm it up before the first row, not during it.
{
  const warm = ours(...cases[0]!);
  const t0 = process.hrtime.bigint();
  while (process.hrtime.bigint() - t0 < 300_000_000n) warm();
}
for (const [cipher, mac] of cases) {
  const fAddon = ssh2?.bindingAvailable ? theirs(cipher, mac, false) : undefined;
  const [a, b, c] = best([ours(cipher, mac), fAddon, theirs(cipher, mac, true)]) as [number, number | undefined, number | undefined];
  const macCol = T.CIPHERS[cipher]!.aead ? "(AEAD)" : mac;
  console.log(`| ${cipher} | ${macCol} | ${fmt(a)} | ${fmt(b)} | ${fmt(c)} | ${ratio(a, b)} | ${ratio(a, c)} |`);
}
console.log(`\n# seal only (the send path), same payloads, MB of payload per CPU second, best of ${ROUNDS}\n`);
console.log(`| cipher | MAC | seal() | sealPieces() | ${addon} | sealPieces vs addon |`);
console.log("|---|---|---|---|---|---|");
for (const [cipher, mac] of cases) {
  const fAddon = ssh2?.bindingAvailable ? theirsSeal(cipher, mac, false) : undefined;
  const [a, b, c] = best([oursSeal(cipher, mac, false), oursSeal(cipher, mac, true), fAddon]) as [number, number, number | undefined];
  const macCol = T.CIPHERS[cipher]!.aead ? "(AEAD)" : mac;
  console.log(`| ${cipher} | ${macCol} | ${fmt(a)} | ${fmt(b)} | ${fmt(c)} | ${ratio(b, c)} |`);
}
console.log("");
const [gcm, chacha] = best([ceiling("aes-128-gcm"), ceiling("chacha20-poly1305")]);
console.log(`OpenSSL ceiling (a fresh IETF AEAD per packet, seal + open, same run): aes-128-gcm ${fmt(gcm)} MB/s, chacha20-poly1305 ${fmt(chacha)} MB/s`);
