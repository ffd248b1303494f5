/**
 * SSH binary packet protection (RFC 4253 §6): the packet ciphers, combined with the MACs of
 * macs.ts, as sans-IO sealers (payload → wire bytes) and openers (wire bytes → payload).
 *
 * - chacha20-poly1305@openssh.com: see chacha20poly1305.ts.
 * - aes{128,256}-gcm@openssh.com (RFC 5647 as OpenSSH does it): the packet length is sent in the
 *   clear as additional authenticated data; the 12-byte IV is a 4-byte fixed field and a 64-bit
 *   big-endian invocation counter incremented after every packet; a 16-byte tag; the MAC
 *   negotiation result is ignored.
 * - aes*-ctr (RFC 4344), aes*-cbc and 3des-cbc (RFC 4253): one streaming cipher per direction for
 *   the life of the keys, with a MAC (classic or encrypt-then-MAC).
 * - none: the cleartext packets before the first NEWKEYS (block size 8).
 *
 * Padding is at least 4 random bytes, so that the padded part is a multiple of the block size
 * (at least 8); like OpenSSH, the length field is left out of that sum when it is sent
 * unencrypted (ETM MACs) or encrypted separately (AEAD modes).
 */
import { createCipheriv, createDecipheriv, randomFillSync, type Cipher, type CipherGCM, type Decipher, type KeyObject, createSecretKey } from "node:crypto";
import { MACError, PacketFormatError } from "../../error.js";
import { OpenSSHChaChaPoly } from "./chacha20poly1305.js";
import { macSpec, PacketMac } from "./macs.js";
import { webAssembly } from "./wasm.js";

export { MACS, type MacSpec } from "./macs.js";

export interface CipherSpec {
  readonly name: string;
  readonly keyLength: number;
  readonly ivLength: number;
  readonly blockSize: number;
  /** Authenticated encryption: the negotiated MAC is not used. */
  readonly aead: boolean;
}

type Mode = "chacha" | "gcm" | "stream" | "none";

interface CipherDef extends CipherSpec {
  readonly mode: Mode;
  /** node:crypto cipher name. */
  readonly openssl: string;
}

function def(name: string, mode: Mode, openssl: string, keyLength: number, ivLength: number, blockSize: number): CipherDef {
  return Object.freeze({ name, mode, openssl, keyLength, ivLength, blockSize, aead: mode === "chacha" || mode === "gcm" });
}

const DEFS: Record<string, CipherDef> = {
  "chacha20-poly1305@openssh.com": def("chacha20-poly1305@openssh.com", "chacha", "chacha20", 64, 0, 8),
  "aes128-gcm@openssh.com": def("aes128-gcm@openssh.com", "gcm", "aes-128-gcm", 16, 12, 16),
  "aes256-gcm@openssh.com": def("aes256-gcm@openssh.com", "gcm", "aes-256-gcm", 32, 12, 16),
  "aes128-ctr": def("aes128-ctr", "stream", "aes-128-ctr", 16, 16, 16),
  "aes192-ctr": def("aes192-ctr", "stream", "aes-192-ctr", 24, 16, 16),
  "aes256-ctr": def("aes256-ctr", "stream", "aes-256-ctr", 32, 16, 16),
  "aes128-cbc": def("aes128-cbc", "stream", "aes-128-cbc", 16, 16, 16),
  "aes192-cbc": def("aes192-cbc", "stream", "aes-192-cbc", 24, 16, 16),
  "aes256-cbc": def("aes256-cbc", "stream", "aes-256-cbc", 32, 16, 16),
  "3des-cbc": def("3des-cbc", "stream", "des-ede3-cbc", 24, 8, 8),
  none: def("none", "none", "", 0, 0, 8),
};

// 3des-cbc only where this OpenSSL still has it.
try {
  createCipheriv("des-ede3-cbc", Buffer.alloc(24, 1), Buffer.alloc(8)).update(Buffer.alloc(8));
} catch {
  delete DEFS["3des-cbc"];
}
Object.freeze(DEFS);

/** Every packet cipher this module implements, by wire name. */
export const CIPHERS: Readonly<Record<string, CipherSpec>> = DEFS;

/**
 * False for a cipher this runtime cannot run: chacha20-poly1305@openssh.com without WebAssembly
 * (its Poly1305 is a WebAssembly kernel), which is then not offered by default.
 */
export function cipherRunsHere(name: string): boolean {
  return DEFS[name]?.mode !== "chacha" || webAssembly() !== undefined;
}

export interface PacketKeys {
  readonly key: Uint8Array;
  readonly iv: Uint8Array;
  readonly macKey: Uint8Array;
}

export interface PacketSealer {
  readonly blockSize: number;
  readonly macLength: number;
  /**
   * The whole wire packet for one payload (message number + body): length, padding length,
   * payload, random padding, encrypted, then the MAC or tag, in one buffer.
   */
  seal(seq: number, payload: Uint8Array): Uint8Array;
  /**
   * The same wire packet as `seal(seq, [messageType, ...head, ...body])`, with the message number,
   * `head` and `body` written straight into the wire buffer instead of being joined first (a
   * channel data message: a small header and the caller's data).
   */
  sealParts(seq: number, messageType: number, head: Uint8Array, body: Uint8Array): Uint8Array;
  /**
   * The same wire bytes as `sealParts`, as a short list of pieces to be written in order
   * (usually three: the length and what the cipher returned around the body, then the MAC or
   * tag), so that no wire buffer is allocated and copied into; a small packet comes back whole,
   * as one piece. No piece shares memory with `head` or `body`, so the caller may reuse them at
   * once.
   */
  sealPieces(seq: number, messageType: number, head: Uint8Array, body: Uint8Array): Uint8Array[];
}

/**
 * Writes `n` random padding bytes into `out` at `offset`. The default draws from a pool filled by
 * the CSPRNG; tests pass a deterministic one to compare packets byte for byte.
 */
export type PaddingSource = (out: Uint8Array, offset: number, n: number) => void;

export interface PacketOpener {
  readonly macLength: number;
  /** Wire bytes needed before the packet length is known. */
  readonly headerLength: number;
  /**
   * The packet_length from the first `headerLength` wire bytes (unauthenticated). Calling it
   * again for the same packet (same `seq`, before `open`) gives the same answer without
   * advancing a stream cipher.
   */
  decryptLength(seq: number, header: Uint8Array): number;
  /**
   * Authenticates and decrypts one whole wire packet (`4 + packet_length + macLength` bytes;
   * extra bytes after it are ignored); returns the payload without padding, in memory of its own
   * (never a view of `wire`). Throws MACError or PacketFormatError.
   */
  open(seq: number, wire: Uint8Array): Uint8Array;
}

function cipherDef(name: string): CipherDef {
  const d = DEFS[name];
  if (d === undefined) throw new Error(`unknown cipher ${JSON.stringify(name)}`);
  return d;
}

function checkKeys(d: CipherDef, keys: PacketKeys): void {
  if (keys.key.length < d.keyLength) throw new Error(`${d.name} needs a ${d.keyLength}-byte key, got ${keys.key.length}`);
  if (keys.iv.length < d.ivLength) throw new Error(`${d.name} needs a ${d.ivLength}-byte IV, got ${keys.iv.length}`);
}

// ---- random padding from a pool (one RAND_bytes call per 8 KiB of padding) ----

const EMPTY = new Uint8Array(0);
const POOL_SIZE = 8192;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolPos = POOL_SIZE;

const fillPadding: PaddingSource = (out, offset, n) => {
  if (poolPos + n > POOL_SIZE) {
    randomFillSync(pool);
    poolPos = 0;
  }
  out.set(pool.subarray(poolPos, poolPos + n), offset);
  poolPos += n;
};

/** Padding length for `covered` bytes (those counted in the block multiple) plus the payload. */
function paddingFor(covered: number, blockSize: number): number {
  let pad = blockSize - (covered % blockSize);
  if (pad < 4) pad += blockSize;
  return pad;
}

/**
 * A new buffer for an `n`-byte payload, with `extra` bytes of room after the packet: writes
 * `uint32 packet_length || byte padding_length` and the random padding, and leaves the payload
 * (`buf[5, 5 + n)`) to the caller. `buf.length - extra` is the packet end (4 + packet_length).
 */
function frame(fill: PaddingSource, n: number, blockSize: number, lengthCovered: boolean, extra: number): Buffer {
  const pad = paddingFor((lengthCovered ? 5 : 1) + n, blockSize);
  const plen = 1 + n + pad;
  const buf = Buffer.allocUnsafe(4 + plen + extra);
  buf.writeUInt32BE(plen, 0);
  buf[4] = pad;
  fill(buf, 5 + n, pad);
  return buf;
}

/** `frame` with `payload` written in. */
function framePayload(fill: PaddingSource, payload: Uint8Array, blockSize: number, lengthCovered: boolean, extra: number): Buffer {
  const buf = frame(fill, payload.length, blockSize, lengthCovered, extra);
  buf.set(payload, 5);
  return buf;
}

/** `frame` with the payload `messageType || head || body` written in. */
function frameParts(fill: PaddingSource, messageType: number, head: Uint8Array, body: Uint8Array, blockSize: number, lengthCovered: boolean, extra: number): Buffer {
  const h = head.length;
  const buf = frame(fill, 1 + h + body.length, blockSize, lengthCovered, extra);
  buf[5] = messageType;
  if (h !== 0) buf.set(head, 6);
  buf.set(body, 6 + h);
  return buf;
}

// ---- packets as pieces ----

/**
 * Below this body size `sealPieces` seals into one buffer: copying a few KiB of cache-hot bytes
 * costs less than the extra cipher calls of separate pieces (about 1 µs; the two cost the same
 * near 4 KiB here, and pieces win from there: 16 KiB and up by a quarter or more).
 */
const PIECES_MIN_BODY = 4096;
/** The longest `head` sealed as pieces (channel headers are 8 or 12 bytes). */
const PIECES_MAX_HEAD = 64;

/**
 * The small plaintext on either side of a packet's body, in scratch space a sealer reuses: the
 * ciphers return their output in fresh memory and nothing keeps these bytes after the call.
 */
class Surround {
  private readonly beforeBuf = Buffer.allocUnsafe(4 + 2 + PIECES_MAX_HEAD);
  /** Padding is at most blockSize + 3 (19) bytes. */
  private readonly afterBuf = Buffer.allocUnsafe(32);
  /** Padding length for a payload `messageType || head || body`. */
  pad = 0;
  /** packet_length. */
  plen = 0;

  constructor(private readonly fill: PaddingSource, private readonly blockSize: number, private readonly lengthCovered: boolean) {}

  /** Whether a message is worth sealing as pieces. */
  static fits(head: Uint8Array, body: Uint8Array): boolean {
    return body.length >= PIECES_MIN_BODY && head.length <= PIECES_MAX_HEAD;
  }

  /** Sets `pad` and `plen`, then returns `[uint32 packet_length] || byte padding_length || byte messageType || head`. */
  before(withLength: boolean, messageType: number, head: Uint8Array, bodyLength: number): Uint8Array {
    const n = 1 + head.length + bodyLength;
    this.pad = paddingFor((this.lengthCovered ? 5 : 1) + n, this.blockSize);
    this.plen = 1 + n + this.pad;
    const b = this.beforeBuf;
    let at = 0;
    if (withLength) at = b.writeUInt32BE(this.plen, 0);
    b[at++] = this.pad;
    b[at++] = messageType;
    b.set(head, at);
    return b.subarray(0, at + head.length);
  }

  /** The random padding for the packet `before` was last called for. */
  after(): Uint8Array {
    this.fill(this.afterBuf, 0, this.pad);
    return this.afterBuf.subarray(0, this.pad);
  }
}

/** `a || b` in one small buffer (from Buffer's shared pool: a few dozen bytes). */
function join2(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** The payload of a decrypted `byte padding_length || payload || padding` of `plen` bytes. */
function unpad(body: Uint8Array, plen: number): Uint8Array {
  const pad = body[0]!;
  if (pad < 4) throw new PacketFormatError(`padding of ${pad} bytes: at least 4 are required`);
  if (pad > plen - 1) throw new PacketFormatError(`padding of ${pad} bytes is longer than the ${plen}-byte packet`);
  return body.subarray(1, plen - pad);
}

function checkMultiple(n: number, blockSize: number, what: string): void {
  if (n % blockSize !== 0) throw new PacketFormatError(`${what} of ${n} bytes is not a multiple of the ${blockSize}-byte cipher block`);
}

function checkWire(wire: Uint8Array, needed: number): void {
  if (wire.length < needed) throw new PacketFormatError(`packet needs ${needed} bytes, got ${wire.length}`);
}

// ---- chacha20-poly1305@openssh.com ----

class ChaChaSealer implements PacketSealer {
  readonly blockSize = 8;
  readonly macLength = 16;
  private readonly cc: OpenSSHChaChaPoly;
  private readonly around: Surround;
  constructor(key: Uint8Array, private readonly fill: PaddingSource) {
    this.cc = new OpenSSHChaChaPoly(key);
    this.around = new Surround(fill, 8, false);
  }
  seal(seq: number, payload: Uint8Array): Uint8Array {
    return this.protect(seq, framePayload(this.fill, payload, 8, false, 16));
  }
  sealParts(seq: number, messageType: number, head: Uint8Array, body: Uint8Array): Uint8Array {
    return this.protect(seq, frameParts(this.fill, messageType, head, body, 8, false, 16));
  }
  sealPieces(seq: number, messageType: number, head: Uint8Array, body: Uint8Array): Uint8Array[] {
    if (!Surround.fits(head, body)) return [this.sealParts(seq, messageType, head, body)];
    const a = this.around;
    const before = a.before(false, messageType, head, body.length);
    return this.cc.sealPieces(seq, a.plen, before, body, a.after());
  }
  private protect(seq: number, buf: Buffer): Buffer {
    this.cc.sealInPlace(seq, buf, buf.length - 16);
    return buf;
  }
}

class ChaChaOpener implements PacketOpener {
  readonly macLength = 16;
  readonly headerLength = 4;
  private readonly cc: OpenSSHChaChaPoly;
  constructor(key: Uint8Array) {
    this.cc = new OpenSSHChaChaPoly(key);
  }
  /** The length decrypted by decryptLength, for open() of the same packet. */
  private lastSeq = -1;
  private lastLength = 0;
  decryptLength(seq: number, header: Uint8Array): number {
    this.lastSeq = seq;
    return (this.lastLength = this.cc.decryptLength(seq, header));
  }
  open(seq: number, wire: Uint8Array): Uint8Array {
    // The tag covers the encrypted length, so a length remembered from decryptLength is safe.
    const plen = this.lastSeq === seq ? this.lastLength : this.cc.decryptLength(seq, wire);
    this.lastSeq = -1;
    checkMultiple(plen, 8, "packet length");
    const end = 4 + plen;
    checkWire(wire, end + 16);
    const body = this.cc.open(seq, wire, end);
    if (body === null) throw new MACError("chacha20-poly1305@openssh.com: bad Poly1305 tag");
    return unpad(body, plen);
  }
}

// ---- AES-GCM (RFC 5647 / OpenSSH) ----

/** The 12-byte GCM nonce: 4 fixed bytes and a 64-bit invocation counter, bumped per packet. */
function bumpCounter(iv: Buffer): void {
  for (let i = 11; i >= 4; i--) {
    iv[i] = (iv[i]! + 1) & 0xff;
    if (iv[i] !== 0) return;
  }
}

class GcmSealer implements PacketSealer {
  readonly blockSize = 16;
  readonly macLength = 16;
  private readonly key: KeyObject;
  private readonly iv: Buffer;
  private readonly algo: string;
  private readonly around: Surround;
  private scratch = Buffer.allocUnsafeSlow(0);
  constructor(d: CipherDef, keys: PacketKeys, private readonly fill: PaddingSource) {
    this.algo = d.openssl;
    this.key = createSecretKey(keys.key.subarray(0, d.keyLength));
    this.iv = Buffer.from(keys.iv.subarray(0, 12));
    this.around = new Surround(fill, 16, false);
  }
  seal(_seq: number, payload: Uint8Array): Uint8Array {
    return this.protect(framePayload(this.fill, payload, 16, false, 16));
  }
  sealParts(_seq: number, messageType: number, head: Uint8Array, body: Uint8Array): Uint8Array {
    return this.protect(frameParts(this.fill, messageType, head, body, 16, false, 16));
  }
  /**
   * `length`, then the header, body and padding encrypted in one `update` over a reused scratch
   * buffer (node:crypto's per-call cost is most of a 32 KiB packet's: one call, not three, took
   * the sealer from 0.79 to 0.63-0.69 CPU s/GiB), then the tag.
   */
  sealPieces(seq: number, messageType: number, head: Uint8Array, body: Uint8Array): Uint8Array[] {
    if (!Surround.fits(head, body)) return [this.sealParts(seq, messageType, head, body)];
    const a = this.around;
    const before = a.before(false, messageType, head, body.length);
    const after = a.after();
    const n = before.length + body.length + after.length;
    let scratch = this.scratch;
    if (scratch.length < n) scratch = this.scratch = Buffer.allocUnsafeSlow(Math.max(n, 2 * scratch.length));
    scratch.set(before, 0);
    scratch.set(body, before.length);
    scratch.set(after, before.length + body.length);
    const c = createCipheriv(this.algo, this.key, this.iv) as CipherGCM;
    bumpCounter(this.iv);
    // The length from the shared pool: it is also the AAD.
    const length = Buffer.allocUnsafe(4);
    length.writeUInt32BE(a.plen, 0);
    c.setAAD(length);
    const encrypted = c.update(scratch.subarray(0, n));
    c.final();
    return [length, encrypted, c.getAuthTag()];
  }
  private protect(buf: Buffer): Buffer {
    const end = buf.length - 16;
    const c = createCipheriv(this.algo, this.key, this.iv) as CipherGCM;
    bumpCounter(this.iv);
    c.setAAD(buf.subarray(0, 4));
    const ct = c.update(buf.subarray(4, end));
    buf.set(ct, 4);
    c.final();
    buf.set(c.getAuthTag(), end);
    return buf;
  }
}

class GcmOpener implements PacketOpener {
  readonly macLength = 16;
  readonly headerLength = 4;
  private readonly key: KeyObject;
  private readonly iv: Buffer;
  private readonly algo: string;
  constructor(d: CipherDef, keys: PacketKeys) {
    this.algo = d.openssl;
    this.key = createSecretKey(keys.key.subarray(0, d.keyLength));
    this.iv = Buffer.from(keys.iv.subarray(0, 12));
  }
  decryptLength(_seq: number, header: Uint8Array): number {
    return readUint32(header, 0);
  }
  open(_seq: number, wire: Uint8Array): Uint8Array {
    const plen = readUint32(wire, 0);
    checkMultiple(plen, 16, "packet length");
    const end = 4 + plen;
    checkWire(wire, end + 16);
    const d = createDecipheriv(this.algo, this.key, this.iv) as import("node:crypto").DecipherGCM;
    bumpCounter(this.iv);
    d.setAAD(wire.subarray(0, 4));
    d.setAuthTag(wire.subarray(end, end + 16));
    const body = d.update(wire.subarray(4, end));
    try {
      d.final();
    } catch {
      throw new MACError(`${this.algo}: bad GCM tag`);
    }
    return unpad(body, plen);
  }
}

// ---- CTR / CBC / none with a MAC ----

function readUint32(b: Uint8Array, off: number): number {
  if (b.length < off + 4) throw new PacketFormatError(`need 4 bytes for the packet length, got ${b.length - off}`);
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

function makeStream(d: CipherDef, keys: PacketKeys, encrypt: boolean): Cipher | Decipher | null {
  if (d.mode === "none") return null;
  const key = keys.key.subarray(0, d.keyLength);
  const iv = keys.iv.subarray(0, d.ivLength);
  const c = encrypt ? createCipheriv(d.openssl, key, iv) : createDecipheriv(d.openssl, key, iv);
  c.setAutoPadding(false);
  return c;
}

function makeMac(name: string, keys: PacketKeys): PacketMac | null {
  const spec = macSpec(name);
  return spec.name === "none" ? null : new PacketMac(name, keys.macKey);
}

class StreamSealer implements PacketSealer {
  readonly blockSize: number;
  readonly macLength: number;
  private readonly etm: boolean;
  private readonly around: Surround;
  constructor(d: CipherDef, private readonly cipher: Cipher | null, private readonly mac: PacketMac | null, private readonly fill: PaddingSource) {
    this.blockSize = Math.max(8, d.blockSize);
    this.macLength = mac?.macLength ?? 0;
    this.etm = mac?.etm ?? false;
    this.around = new Surround(fill, this.blockSize, !this.etm);
  }
  seal(seq: number, payload: Uint8Array): Uint8Array {
    return this.protect(seq, framePayload(this.fill, payload, this.blockSize, !this.etm, this.macLength));
  }
  sealParts(seq: number, messageType: number, head: Uint8Array, body: Uint8Array): Uint8Array {
    return this.protect(seq, frameParts(this.fill, messageType, head, body, this.blockSize, !this.etm, this.macLength));
  }
  /**
   * A streaming cipher keeps its state across `update` calls (CBC holds back a partial block and
   * returns it with the next call), so the header, body and padding encrypted in turn make the
   * same ciphertext as the whole packet at once; the HMAC takes the same pieces with several
   * `update`s. Without a cipher (`none`) the pieces would be the caller's own bytes: one buffer then.
   */
  sealPieces(seq: number, messageType: number, head: Uint8Array, body: Uint8Array): Uint8Array[] {
    const cipher = this.cipher;
    if (cipher === null || !Surround.fits(head, body)) return [this.sealParts(seq, messageType, head, body)];
    const a = this.around;
    const mac = this.mac;
    if (this.etm) {
      // Encrypt-then-MAC: the length in the clear, the MAC over it and the ciphertext.
      const encBefore = cipher.update(a.before(false, messageType, head, body.length));
      const first = Buffer.allocUnsafe(4 + encBefore.length);
      first.writeUInt32BE(a.plen, 0);
      first.set(encBefore, 4);
      const encBody = cipher.update(body);
      const encAfter = cipher.update(a.after());
      return [first, encBody, join2(encAfter, mac!.compute3(seq, first, encBody, encAfter))];
    }
    // Classic MAC (or none): over the plaintext, length included; the cipher encrypts the length too.
    const before = a.before(true, messageType, head, body.length);
    const after = a.after();
    const tag = mac === null ? EMPTY : mac.compute3(seq, before, body, after);
    const encBefore = cipher.update(before);
    const encBody = cipher.update(body);
    const encAfter = cipher.update(after);
    const pieces: Uint8Array[] = [];
    // CBC returns only whole blocks: the header alone may come back empty.
    if (encBefore.length > 0) pieces.push(encBefore);
    pieces.push(encBody, tag.length === 0 ? encAfter : join2(encAfter, tag));
    return pieces;
  }
  private protect(seq: number, buf: Buffer): Buffer {
    const end = buf.length - this.macLength;
    const cipher = this.cipher;
    const mac = this.mac;
    if (this.etm) {
      if (cipher !== null) buf.set(cipher.update(buf.subarray(4, end)), 4);
      buf.set(mac!.compute(seq, buf.subarray(0, end)), end);
    } else {
      if (mac !== null) buf.set(mac.compute(seq, buf.subarray(0, end)), end);
      if (cipher !== null) buf.set(cipher.update(buf.subarray(0, end)), 0);
    }
    return buf;
  }
}

class StreamOpener implements PacketOpener {
  readonly macLength: number;
  readonly headerLength: number;
  private readonly blockSize: number;
  private readonly etm: boolean;
  private readonly name: string;
  /** The decrypted first block (classic MACs), between decryptLength and open. */
  private first: Uint8Array | null = null;
  private firstSeq = -1;

  constructor(d: CipherDef, private readonly cipher: Decipher | null, private readonly mac: PacketMac | null) {
    this.name = d.name;
    this.blockSize = Math.max(8, d.blockSize);
    this.macLength = mac?.macLength ?? 0;
    this.etm = mac?.etm ?? false;
    this.headerLength = this.etm ? 4 : this.blockSize;
  }

  decryptLength(seq: number, header: Uint8Array): number {
    if (this.etm) return readUint32(header, 0);
    // Asked again for the same packet (the transport waiting for more bytes): the stream has
    // already moved past this block, so answer from the block decrypted the first time.
    if (this.first !== null && this.firstSeq === seq) return readUint32(this.first, 0);
    if (header.length < this.blockSize) throw new PacketFormatError(`need ${this.blockSize} bytes for the first block, got ${header.length}`);
    const block = header.subarray(0, this.blockSize);
    this.first = this.cipher === null ? Uint8Array.from(block) : this.cipher.update(block);
    this.firstSeq = seq;
    return readUint32(this.first, 0);
  }

  open(seq: number, wire: Uint8Array): Uint8Array {
    return this.etm ? this.openEtm(seq, wire) : this.openClassic(seq, wire);
  }

  private openEtm(seq: number, wire: Uint8Array): Uint8Array {
    const plen = readUint32(wire, 0);
    checkMultiple(plen, this.blockSize, "packet length");
    const end = 4 + plen;
    const mac = this.mac!;
    checkWire(wire, end + mac.macLength);
    if (!mac.verify(seq, wire.subarray(end, end + mac.macLength), wire.subarray(0, end))) {
      throw new MACError(`${this.name}: bad MAC`);
    }
    const enc = wire.subarray(4, end);
    // The payload never shares memory with `wire` (the caller may reuse its buffer).
    const body = this.cipher === null ? Uint8Array.from(enc) : this.cipher.update(enc);
    return unpad(body, plen);
  }

  private openClassic(seq: number, wire: Uint8Array): Uint8Array {
    const bs = this.blockSize;
    if (this.first === null || this.firstSeq !== seq) this.decryptLength(seq, wire);
    const first = this.first!;
    this.first = null;
    const plen = readUint32(first, 0);
    const end = 4 + plen;
    checkMultiple(end, bs, "packet");
    checkWire(wire, end + this.macLength);
    const encRest = wire.subarray(bs, end);
    const rest = this.cipher === null ? encRest : this.cipher.update(encRest);
    const mac = this.mac;
    if (mac !== null && !mac.verify(seq, wire.subarray(end, end + mac.macLength), first, rest)) {
      throw new MACError(`${this.name}: bad MAC`);
    }
    const pad = first[4]!;
    if (pad < 4) throw new PacketFormatError(`padding of ${pad} bytes: at least 4 are required`);
    if (pad > plen - 1) throw new PacketFormatError(`padding of ${pad} bytes is longer than the ${plen}-byte packet`);
    const payloadLength = plen - 1 - pad;
    // The payload starts inside the first block: join it with the rest in one buffer.
    const out = new Uint8Array(payloadLength);
    const fromFirst = Math.min(bs - 5, payloadLength);
    out.set(first.subarray(5, 5 + fromFirst), 0);
    if (payloadLength > fromFirst) out.set(rest.subarray(0, payloadLength - fromFirst), fromFirst);
    return out;
  }
}

/** A sealer for one direction. `mac` is ignored for AEAD ciphers. */
export function createSealer(cipher: string, mac: string, keys: PacketKeys, padding: PaddingSource = fillPadding): PacketSealer {
  const d = cipherDef(cipher);
  checkKeys(d, keys);
  switch (d.mode) {
    case "chacha":
      return new ChaChaSealer(keys.key, padding);
    case "gcm":
      return new GcmSealer(d, keys, padding);
    default:
      return new StreamSealer(d, makeStream(d, keys, true) as Cipher | null, makeMac(mac, keys), padding);
  }
}

/** An opener for one direction. `mac` is ignored for AEAD ciphers. */
export function createOpener(cipher: string, mac: string, keys: PacketKeys): PacketOpener {
  const d = cipherDef(cipher);
  checkKeys(d, keys);
  switch (d.mode) {
    case "chacha":
      return new ChaChaOpener(keys.key);
    case "gcm":
      return new GcmOpener(d, keys);
    default:
      return new StreamOpener(d, makeStream(d, keys, false) as Decipher | null, makeMac(mac, keys));
  }
}
