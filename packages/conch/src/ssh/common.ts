/**
 * SSH wire encoding (RFC 4251 §5): the one reader and writer every layer uses, and Twisted's
 * `common.NS` / `getNS` / `MP` / `getMP` helpers for code ported from Python.
 *
 * Every read past the end of the data throws {@link ShortReadError}; nothing returns garbage.
 */
import { MalformedFieldError, ShortReadError } from "../error.js";

const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder("utf-8", { fatal: true });

/** Bytes from a string (UTF-8) or bytes as they are. */
export function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? utf8.encode(data) : data;
}

/** Concatenates byte arrays into one new Uint8Array. */
export function concatBytes(...parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Byte-wise equality. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Decodes UTF-8, throwing MalformedFieldError on invalid sequences. */
export function decodeUtf8(data: Uint8Array, what = "string"): string {
  try {
    return utf8Strict.decode(data);
  } catch {
    throw new MalformedFieldError(`${what} is not valid UTF-8`);
  }
}

/** Encodes a non-negative or negative bigint as the two's-complement magnitude bytes of an mpint. */
function mpintBody(n: bigint): Uint8Array {
  if (n === 0n) return new Uint8Array(0);
  if (n > 0n) {
    let hex = n.toString(16);
    if (hex.length % 2) hex = "0" + hex;
    // A set high bit would read as negative: prefix a zero byte (RFC 4251 §5).
    if (parseInt(hex.slice(0, 2), 16) & 0x80) hex = "00" + hex;
    return Uint8Array.from(Buffer.from(hex, "hex"));
  }
  // Negative: smallest two's-complement form.
  let bytes = 1;
  while (-(1n << BigInt(8 * bytes - 1)) > n) bytes++;
  const v = (1n << BigInt(8 * bytes)) + n;
  let hex = v.toString(16).padStart(bytes * 2, "0");
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

/**
 * Builds an SSH message or field sequence. Grows its buffer as needed; `finish()` returns the
 * bytes written so far (a view, not a copy).
 */
export class SSHWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  /** Number of bytes written. */
  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  byte(v: number): this {
    this.ensure(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  boolean(v: boolean): this {
    return this.byte(v ? 1 : 0);
  }

  uint32(v: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, v >>> 0);
    this.pos += 4;
    return this;
  }

  uint64(v: bigint | number): this {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt(v));
    this.pos += 8;
    return this;
  }

  /** Raw bytes, no length prefix. */
  raw(data: Uint8Array | string): this {
    const b = toBytes(data);
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** An SSH `string`: uint32 length then the bytes (UTF-8 for a JS string). */
  string(data: Uint8Array | string): this {
    const b = toBytes(data);
    this.uint32(b.length);
    return this.raw(b);
  }

  mpint(n: bigint): this {
    return this.string(mpintBody(n));
  }

  /** An mpint from unsigned big-endian magnitude bytes (leading zeros stripped, sign byte added). */
  mpintFromBytes(magnitude: Uint8Array): this {
    let i = 0;
    while (i < magnitude.length && magnitude[i] === 0) i++;
    const body = magnitude.subarray(i);
    if (body.length > 0 && (body[0]! & 0x80) !== 0) {
      this.uint32(body.length + 1);
      this.byte(0);
      return this.raw(body);
    }
    return this.string(body);
  }

  /** A name-list: comma-separated names as one string. */
  nameList(names: readonly string[]): this {
    return this.string(names.join(","));
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/**
 * Reads SSH wire fields from a byte array. Every method throws {@link ShortReadError} when the data
 * ends before the field does.
 */
export class SSHReader {
  readonly data: Uint8Array;
  private view: DataView;
  /** Offset of the next unread byte. */
  offset: number;

  constructor(data: Uint8Array, offset = 0) {
    this.data = data;
    this.view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    this.offset = offset;
  }

  /** Bytes left to read. */
  get remaining(): number {
    return this.data.length - this.offset;
  }

  private need(n: number, what: string): void {
    if (this.offset + n > this.data.length) {
      throw new ShortReadError(`packet ends inside ${what}: need ${n} bytes at offset ${this.offset}, have ${this.remaining}`);
    }
  }

  byte(): number {
    this.need(1, "a byte");
    return this.data[this.offset++]!;
  }

  boolean(): boolean {
    // RFC 4251 §5: any non-zero value is TRUE.
    return this.byte() !== 0;
  }

  uint32(): number {
    this.need(4, "a uint32");
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }

  uint64(): bigint {
    this.need(8, "a uint64");
    const v = this.view.getBigUint64(this.offset);
    this.offset += 8;
    return v;
  }

  /** `n` raw bytes (a view into the packet). */
  raw(n: number): Uint8Array {
    this.need(n, `${n} raw bytes`);
    const out = this.data.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** The rest of the data. */
  rest(): Uint8Array {
    const out = this.data.subarray(this.offset);
    this.offset = this.data.length;
    return out;
  }

  /** An SSH `string` as bytes (a view into the packet). */
  string(): Uint8Array {
    const n = this.uint32();
    this.need(n, `a string of ${n} bytes`);
    const out = this.data.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  /** An SSH `string` decoded as UTF-8 (throws MalformedFieldError when not valid UTF-8). */
  utf8(what = "string"): string {
    return decodeUtf8(this.string(), what);
  }

  /**
   * An SSH `mpint` as a bigint. With `maxBits`, a value longer than that many bits (sign byte
   * aside) is refused before it is converted: turning 256 KiB into a bigint costs 10 ms.
   */
  mpint(maxBits?: number): bigint {
    const b = this.string();
    if (b.length === 0) return 0n;
    if (maxBits !== undefined && b.length > Math.ceil(maxBits / 8) + 1) {
      throw new MalformedFieldError(`an mpint of ${b.length} bytes is longer than ${maxBits} bits`);
    }
    const v = BigInt("0x" + Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex"));
    return (b[0]! & 0x80) !== 0 ? v - (1n << BigInt(8 * b.length)) : v;
  }

  /** A name-list as its names (an empty string gives an empty list). */
  nameList(): string[] {
    const s = this.utf8("name-list");
    return s.length === 0 ? [] : s.split(",");
  }

  /** Throws MalformedFieldError unless every byte was read. */
  end(what = "packet"): void {
    if (this.offset !== this.data.length) {
      throw new MalformedFieldError(`${this.remaining} unexpected bytes at the end of the ${what}`);
    }
  }
}

/** Twisted's `NS`: an SSH string (uint32 length prefix). Accepts a string, encoded as UTF-8. */
export function NS(data: Uint8Array | string): Uint8Array {
  const b = toBytes(data);
  const out = new Uint8Array(4 + b.length);
  new DataView(out.buffer).setUint32(0, b.length);
  out.set(b, 4);
  return out;
}

/**
 * Twisted's `getNS`: reads `count` SSH strings from `data` starting at `offset`; returns them
 * followed by the rest of the data.
 */
export function getNS(data: Uint8Array, count = 1, offset = 0): Uint8Array[] {
  const r = new SSHReader(data, offset);
  const out: Uint8Array[] = [];
  for (let i = 0; i < count; i++) out.push(r.string());
  out.push(r.rest());
  return out;
}

/** Twisted's `MP`: an SSH mpint. */
export function MP(n: bigint): Uint8Array {
  return new SSHWriter(16).mpint(n).finish().slice();
}

/** Twisted's `getMP`: reads `count` mpints; returns them followed by the rest of the data. */
export function getMP(data: Uint8Array, count = 1): [...bigint[], Uint8Array] {
  const r = new SSHReader(data);
  const out: bigint[] = [];
  for (let i = 0; i < count; i++) out.push(r.mpint());
  return [...out, r.rest()];
}

/** Unsigned big-endian bytes of a non-negative bigint, left-padded to `length` when given. */
export function bigintToBytes(n: bigint, length?: number): Uint8Array {
  let hex = n.toString(16);
  if (hex.length % 2) hex = "0" + hex;
  if (length !== undefined) hex = hex.padStart(length * 2, "0");
  return Uint8Array.from(Buffer.from(hex, "hex"));
}

/** The non-negative bigint of unsigned big-endian bytes. */
export function bytesToBigint(b: Uint8Array): bigint {
  if (b.length === 0) return 0n;
  return BigInt("0x" + Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex"));
}
