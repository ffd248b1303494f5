/**
 * SSH MAC algorithms (RFC 4253 §6.4, RFC 6668, OpenSSH's `-etm@openssh.com` variants from its
 * PROTOCOL file): HMACs from node:crypto.
 *
 * Classic MACs cover `uint32 seq || unencrypted packet`; encrypt-then-MAC (ETM) MACs cover
 * `uint32 seq || uint32 packet_length || ciphertext`, the length field being sent in the clear.
 */
import { createHmac, createSecretKey, timingSafeEqual, type KeyObject } from "node:crypto";

export interface MacSpec {
  readonly name: string;
  readonly keyLength: number;
  readonly macLength: number;
  /** Encrypt-then-MAC: the length travels in the clear and the MAC covers the ciphertext. */
  readonly etm: boolean;
}

interface MacDef extends MacSpec {
  /** node:crypto digest name. */
  readonly digest: string;
}

function def(name: string, digest: string, keyLength: number, etm: boolean): MacDef {
  return Object.freeze({ name, digest, keyLength, macLength: keyLength, etm });
}

const DEFS: Readonly<Record<string, MacDef>> = Object.freeze({
  "hmac-sha2-256-etm@openssh.com": def("hmac-sha2-256-etm@openssh.com", "sha256", 32, true),
  "hmac-sha2-512-etm@openssh.com": def("hmac-sha2-512-etm@openssh.com", "sha512", 64, true),
  "hmac-sha1-etm@openssh.com": def("hmac-sha1-etm@openssh.com", "sha1", 20, true),
  "hmac-sha2-256": def("hmac-sha2-256", "sha256", 32, false),
  "hmac-sha2-512": def("hmac-sha2-512", "sha512", 64, false),
  "hmac-sha1": def("hmac-sha1", "sha1", 20, false),
  "hmac-md5-etm@openssh.com": def("hmac-md5-etm@openssh.com", "md5", 16, true),
  "hmac-md5": def("hmac-md5", "md5", 16, false),
  none: Object.freeze({ name: "none", digest: "", keyLength: 0, macLength: 0, etm: false }),
});

/** Every MAC this module implements, by wire name. */
export const MACS: Readonly<Record<string, MacSpec>> = DEFS;

/** A keyed HMAC for one direction: computes and checks `HMAC(key, uint32 seq || data…)`. */
export class PacketMac {
  readonly macLength: number;
  readonly etm: boolean;
  private readonly digest: string;
  private readonly key: KeyObject;
  private readonly seqBuf = Buffer.alloc(4);

  constructor(name: string, key: Uint8Array) {
    const d = DEFS[name];
    if (d === undefined || d.name === "none") throw new Error(`unknown MAC algorithm ${JSON.stringify(name)}`);
    if (key.length < d.keyLength) throw new Error(`${name} needs a ${d.keyLength}-byte key, got ${key.length}`);
    this.digest = d.digest;
    this.macLength = d.macLength;
    this.etm = d.etm;
    this.key = createSecretKey(key.subarray(0, d.keyLength));
  }

  /** The MAC of `seq || a || b` (b optional), as a fresh Buffer. */
  compute(seq: number, a: Uint8Array, b?: Uint8Array): Buffer {
    this.seqBuf.writeUInt32BE(seq >>> 0, 0);
    const h = createHmac(this.digest, this.key);
    h.update(this.seqBuf);
    h.update(a);
    if (b !== undefined && b.length > 0) h.update(b);
    return h.digest();
  }

  /** The MAC of `seq || a || b || c`, fed to the HMAC piece by piece (nothing joined). */
  compute3(seq: number, a: Uint8Array, b: Uint8Array, c: Uint8Array): Buffer {
    this.seqBuf.writeUInt32BE(seq >>> 0, 0);
    const h = createHmac(this.digest, this.key);
    h.update(this.seqBuf);
    if (a.length > 0) h.update(a);
    if (b.length > 0) h.update(b);
    if (c.length > 0) h.update(c);
    return h.digest();
  }

  /** Constant-time check of `mac` against the MAC of `seq || a || b`. */
  verify(seq: number, mac: Uint8Array, a: Uint8Array, b?: Uint8Array): boolean {
    const expected = this.compute(seq, a, b);
    return mac.length === expected.length && timingSafeEqual(expected, mac);
  }
}

/** Looks up a MAC spec, throwing on an unknown name. */
export function macSpec(name: string): MacSpec {
  const d = DEFS[name];
  if (d === undefined) throw new Error(`unknown MAC algorithm ${JSON.stringify(name)}`);
  return d;
}
