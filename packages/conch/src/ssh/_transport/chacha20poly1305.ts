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
import { poly1305Into } from "./poly1305.js";

const ZERO64 = Buffer.alloc(64);

/** The ChaCha20 state of one direction: both keys, and an IV scratch buffer. */
export class OpenSSHChaChaPoly {
  private readonly mainKey: KeyObject;
  private readonly headerKey: KeyObject;
  private readonly iv = Buffer.alloc(16);

  constructor(key: Uint8Array) {
    if (key.length < 64) throw new Error(`chacha20-poly1305@openssh.com needs a 64-byte key, got ${key.length}`);
    this.mainKey = createSecretKey(key.subarray(0, 32));
    this.headerKey = createSecretKey(key.subarray(32, 64));
  }

  private setIv(seq: number, counter: number): Buffer {
    const iv = this.iv;
    iv.writeUInt32LE(counter, 0);
    iv.writeUInt32LE(0, 4);
    iv.writeUInt32BE(0, 8);
    iv.writeUInt32BE(seq >>> 0, 12);
    return iv;
  }

  /** Encrypts or decrypts (XOR) the 4 bytes of `src` at `srcOff` with K_1, into `dst` at `dstOff`. */
  cryptLength(seq: number, src: Uint8Array, srcOff: number, dst: Uint8Array, dstOff: number): void {
    const c = createCipheriv("chacha20", this.headerKey, this.setIv(seq, 0));
    const r = c.update(src.subarray(srcOff, srcOff + 4));
    dst.set(r, dstOff);
  }

  /** The packet length from 4 encrypted header bytes. */
  decryptLength(seq: number, header: Uint8Array): number {
    const c = createCipheriv("chacha20", this.headerKey, this.setIv(seq, 0));
    const r = c.update(header.subarray(0, 4));
    return r.readUInt32BE(0);
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
