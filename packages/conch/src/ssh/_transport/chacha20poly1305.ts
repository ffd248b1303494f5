/**
 * OpenSSH's chacha20-poly1305@openssh.com (PROTOCOL.chacha20poly1305): not the IETF AEAD.
 *
 * The 64-byte key is two ChaCha20 keys: K_2 (bytes 0–31, "main") encrypts the payload and makes the
 * Poly1305 key; K_1 (bytes 32–63, "header") encrypts only the 4-byte packet length. The nonce is
 * the packet sequence number as a 64-bit big-endian value. Poly1305's one-time key is the first
 * 32 bytes of the K_2 keystream at block counter 0; the payload is encrypted from block counter 1;
 * the tag covers the encrypted length and the encrypted payload, with no padding or length block.
 *
 * OpenSSL's raw `chacha20` takes a 16-byte IV that is the last four state words: a 32-bit
 * little-endian block counter followed by a 96-bit nonce. The original ChaCha20 that OpenSSH uses
 * has a 64-bit little-endian counter (words 12–13) and a 64-bit nonce (words 14–15); the state
 * words are the same, so the IV is `counter as 8 bytes LE || seq as 8 bytes BE`.
 */
import { createCipheriv, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";
import { poly1305Into, poly1305PartsInto, poly1305Ready } from "./poly1305.js";

const ZERO64 = Buffer.alloc(64);

function bswap32(x: number): number {
  return ((x >>> 24) | ((x >>> 8) & 0xff00) | ((x & 0xff00) << 8) | (x << 24)) >>> 0;
}

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/**
 * Word 0 of ChaCha20 block 0 (counter 0) for key words `k` and 64-bit nonce words (0, n15): the
 * first four keystream bytes. Used for the 4-byte length, where a native cipher object per packet
 * would cost more than the 20 rounds.
 */
function chachaWord0(k: Uint32Array, n15: number): number {
  let x0 = 0x61707865, x1 = 0x3320646e, x2 = 0x79622d32, x3 = 0x6b206574;
  let x4 = k[0]!, x5 = k[1]!, x6 = k[2]!, x7 = k[3]!, x8 = k[4]!, x9 = k[5]!, x10 = k[6]!, x11 = k[7]!;
  let x12 = 0, x13 = 0, x14 = 0, x15 = n15 | 0;
  for (let i = 0; i < 10; i++) {
    x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 16); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 12);
    x0 = (x0 + x4) | 0; x12 = rotl(x12 ^ x0, 8); x8 = (x8 + x12) | 0; x4 = rotl(x4 ^ x8, 7);
    x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 16); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 12);
    x1 = (x1 + x5) | 0; x13 = rotl(x13 ^ x1, 8); x9 = (x9 + x13) | 0; x5 = rotl(x5 ^ x9, 7);
    x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 16); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 12);
    x2 = (x2 + x6) | 0; x14 = rotl(x14 ^ x2, 8); x10 = (x10 + x14) | 0; x6 = rotl(x6 ^ x10, 7);
    x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 16); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 12);
    x3 = (x3 + x7) | 0; x15 = rotl(x15 ^ x3, 8); x11 = (x11 + x15) | 0; x7 = rotl(x7 ^ x11, 7);
    x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 16); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 12);
    x0 = (x0 + x5) | 0; x15 = rotl(x15 ^ x0, 8); x10 = (x10 + x15) | 0; x5 = rotl(x5 ^ x10, 7);
    x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 16); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 12);
    x1 = (x1 + x6) | 0; x12 = rotl(x12 ^ x1, 8); x11 = (x11 + x12) | 0; x6 = rotl(x6 ^ x11, 7);
    x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 16); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 12);
    x2 = (x2 + x7) | 0; x13 = rotl(x13 ^ x2, 8); x8 = (x8 + x13) | 0; x7 = rotl(x7 ^ x8, 7);
    x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 16); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 12);
    x3 = (x3 + x4) | 0; x14 = rotl(x14 ^ x3, 8); x9 = (x9 + x14) | 0; x4 = rotl(x4 ^ x9, 7);
  }
  return (x0 + 0x61707865) >>> 0;
}

/** The ChaCha20 state of one direction: both keys, and an IV scratch buffer. */
export class OpenSSHChaChaPoly {
  private readonly mainKey: KeyObject;
  /** K_1 as eight little-endian words: only 4 keystream bytes per packet, computed here. */
  private readonly headerWords: Uint32Array;
  private readonly iv = Buffer.alloc(16);

  constructor(key: Uint8Array) {
    if (key.length < 64) throw new Error(`chacha20-poly1305@openssh.com needs a 64-byte key, got ${key.length}`);
    poly1305Ready();
    this.mainKey = createSecretKey(key.subarray(0, 32));
    this.headerWords = new Uint32Array(8);
    for (let i = 0; i < 8; i++) {
      const o = 32 + 4 * i;
      this.headerWords[i] = (key[o]! | (key[o + 1]! << 8) | (key[o + 2]! << 16) | (key[o + 3]! << 24)) >>> 0;
    }
  }

  private setIv(seq: number, counter: number): Buffer {
    const iv = this.iv;
    iv.writeUInt32LE(counter, 0);
    iv.writeUInt32LE(0, 4);
    iv.writeUInt32BE(0, 8);
    iv.writeUInt32BE(seq >>> 0, 12);
    return iv;
  }

  /** The first 4 bytes of the K_1 keystream for `seq`, as a big-endian uint32 to XOR with. */
  private lengthMask(seq: number): number {
    // bytes 0..3 of keystream block 0 = word 0, little-endian; as a big-endian uint32, byte-swapped.
    const w = chachaWord0(this.headerWords, bswap32(seq >>> 0));
    return bswap32(w);
  }

  /** Encrypts or decrypts (XOR) the 4 bytes of `src` at `srcOff` with K_1, into `dst` at `dstOff`. */
  cryptLength(seq: number, src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    const v = (((src[srcOff]! << 24) | (src[srcOff + 1]! << 16) | (src[srcOff + 2]! << 8) | src[srcOff + 3]!) ^ this.lengthMask(seq)) >>> 0;
    dst[dstOff] = v >>> 24;
    dst[dstOff + 1] = (v >>> 16) & 0xff;
    dst[dstOff + 2] = (v >>> 8) & 0xff;
    dst[dstOff + 3] = v & 0xff;
  }

  /** The packet length from 4 encrypted header bytes. */
  decryptLength(seq: number, header: Uint8Array): number {
    if (header.length < 4) throw new RangeError("need 4 header bytes");
    const v = (header[0]! << 24) | (header[1]! << 16) | (header[2]! << 8) | header[3]!;
    return (v ^ this.lengthMask(seq)) >>> 0;
  }

  /**
   * Encrypts `buf[4, end)` in place with K_2 from counter 1, encrypts the length `buf[0, 4)` with
   * K_1, and writes the tag over `buf[0, end)` at `buf[end, end + 16)`.
   */
  sealInPlace(seq: number, buf: Uint8Array, end: number): void {
    this.cryptLength(seq, buf, 0, buf, 0);
    const c = createCipheriv("chacha20", this.mainKey, this.setIv(seq, 0));
    const polyKey = c.update(ZERO64).subarray(0, 32);
    buf.set(c.update(buf.subarray(4, end)), 4);
    poly1305Into(polyKey, buf.subarray(0, end), buf, end);
  }

  /**
   * The packet whose plaintext after the length is `before || body || after`, as three pieces:
   * `encrypted length || encrypted before`, `encrypted body`, `encrypted after || tag`. ChaCha20
   * is a stream cipher, so encrypting the three in turn gives the ciphertext of their
   * concatenation; the body's ciphertext is the cipher's own output buffer, kept as a piece (no
   * wire buffer to copy it into), and Poly1305 reads the pieces where they are.
   */
  sealPieces(seq: number, plen: number, before: Uint8Array, body: Uint8Array, after: Uint8Array): Uint8Array[] {
    const c = createCipheriv("chacha20", this.mainKey, this.setIv(seq, 0));
    const polyKey = c.update(ZERO64).subarray(0, 32);
    const encBefore = c.update(before);
    const encBody = c.update(body);
    const encAfter = c.update(after);
    // Small pieces come from Buffer's shared pool; copying a few bytes costs less than an extra write.
    const first = Buffer.allocUnsafe(4 + encBefore.length);
    first.writeUInt32BE(plen, 0);
    this.cryptLength(seq, first, 0, first, 0);
    first.set(encBefore, 4);
    const last = Buffer.allocUnsafe(encAfter.length + 16);
    last.set(encAfter, 0);
    poly1305PartsInto(polyKey, [first, encBody, encAfter], last, encAfter.length);
    return [first, encBody, last];
  }

  /**
   * Checks the tag at `wire[end, end + 16)` over `wire[0, end)`; on success returns the decrypted
   * `wire[4, end)` (a new buffer), otherwise null.
   */
  open(seq: number, wire: Uint8Array, end: number): Buffer | null {
    const c = createCipheriv("chacha20", this.mainKey, this.setIv(seq, 0));
    const polyKey = c.update(ZERO64).subarray(0, 32);
    const tag = Buffer.allocUnsafe(16);
    poly1305Into(polyKey, wire.subarray(0, end), tag, 0);
    const got = wire.subarray(end, end + 16);
    if (got.length !== 16 || !timingSafeEqual(tag, got)) return null;
    return c.update(wire.subarray(4, end));
  }
}
