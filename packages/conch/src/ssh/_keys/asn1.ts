/**
 * The few DER structures node:crypto cannot build from a JWK: DSA keys (SubjectPublicKeyInfo,
 * PKCS#8, and OpenSSL's traditional `DSA PRIVATE KEY`). Minimal: integers, sequences, OIDs, bit
 * and octet strings.
 */
import { BadKeyError } from "../../error.js";
import { bigintToBytes, bytesToBigint, concatBytes } from "../common.js";

export const OID_DSA = "1.2.840.10040.4.1";

function derLength(n: number): Uint8Array {
  if (n < 0x80) return Uint8Array.of(n);
  const b = bigintToBytes(BigInt(n));
  return Uint8Array.of(0x80 | b.length, ...b);
}

export function tlv(tag: number, body: Uint8Array): Uint8Array {
  return concatBytes(Uint8Array.of(tag), derLength(body.length), body);
}

export const seq = (...items: Uint8Array[]): Uint8Array => tlv(0x30, concatBytes(...items));

export function int(n: bigint): Uint8Array {
  let b = bigintToBytes(n);
  if (b.length === 0) b = Uint8Array.of(0);
  if ((b[0]! & 0x80) !== 0) b = concatBytes(Uint8Array.of(0), b);
  return tlv(0x02, b);
}

export const octets = (b: Uint8Array): Uint8Array => tlv(0x04, b);
export const bits = (b: Uint8Array): Uint8Array => tlv(0x03, concatBytes(Uint8Array.of(0), b));

export function oid(text: string): Uint8Array {
  const parts = text.split(".").map(Number);
  const out: number[] = [40 * parts[0]! + parts[1]!];
  for (const p of parts.slice(2)) {
    const tmp: number[] = [];
    let v = p;
    do {
      tmp.unshift(v & 0x7f);
      v = Math.floor(v / 128);
    } while (v > 0);
    for (let i = 0; i < tmp.length - 1; i++) tmp[i]! |= 0x80;
    out.push(...tmp);
  }
  return tlv(0x06, Uint8Array.from(out));
}

/** One DER element: its tag and body. */
export interface Element {
  tag: number;
  body: Uint8Array;
}

/** Reads the elements of a DER body in order. */
export class DerReader {
  private pos = 0;
  constructor(private readonly data: Uint8Array) {}

  get done(): boolean {
    return this.pos >= this.data.length;
  }

  next(expectTag?: number): Element {
    const d = this.data;
    if (this.pos + 2 > d.length) throw new BadKeyError("DER data is truncated");
    const tag = d[this.pos++]!;
    let len = d[this.pos++]!;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0 || n > 4 || this.pos + n > d.length) throw new BadKeyError("DER length is invalid");
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + d[this.pos++]!;
    }
    if (this.pos + len > d.length) throw new BadKeyError("DER data is truncated");
    const body = d.subarray(this.pos, this.pos + len);
    this.pos += len;
    if (expectTag !== undefined && tag !== expectTag) {
      throw new BadKeyError(`DER: expected tag 0x${expectTag.toString(16)}, found 0x${tag.toString(16)}`);
    }
    return { tag, body };
  }

  seq(): DerReader {
    return new DerReader(this.next(0x30).body);
  }

  int(): bigint {
    return bytesToBigint(this.next(0x02).body);
  }
}

/** DSA parameters and keys as node:crypto imports them. */
export function dsaSpki(p: bigint, q: bigint, g: bigint, y: bigint): Uint8Array {
  return seq(seq(oid(OID_DSA), seq(int(p), int(q), int(g))), bits(int(y)));
}

export function dsaPkcs8(p: bigint, q: bigint, g: bigint, x: bigint): Uint8Array {
  return seq(int(0n), seq(oid(OID_DSA), seq(int(p), int(q), int(g))), octets(int(x)));
}

/** OpenSSL's traditional `DSA PRIVATE KEY` body: SEQUENCE { 0, p, q, g, y, x }. */
export function dsaTraditional(p: bigint, q: bigint, g: bigint, y: bigint, x: bigint): Uint8Array {
  return seq(int(0n), int(p), int(q), int(g), int(y), int(x));
}

/** p, q, g and y (public) or x (private) from a DSA SubjectPublicKeyInfo or PKCS#8 DER. */
export function parseDsaDer(der: Uint8Array, kind: "spki" | "pkcs8"): { p: bigint; q: bigint; g: bigint; v: bigint } {
  const top = new DerReader(der).seq();
  if (kind === "pkcs8") top.int();
  const alg = top.seq();
  alg.next(0x06);
  const params = alg.seq();
  const p = params.int();
  const q = params.int();
  const g = params.int();
  const inner = top.next(kind === "spki" ? 0x03 : 0x04).body;
  const v = new DerReader(kind === "spki" ? inner.subarray(1) : inner).int();
  return { p, q, g, v };
}
