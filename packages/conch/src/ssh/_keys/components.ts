/**
 * The numbers of a key, independent of any file format, and the conversions every format shares:
 * the SSH wire public blob, OpenSSH's private blob, and node:crypto KeyObjects (through JWK, or
 * DER for DSA).
 */
import { createPrivateKey, createPublicKey, type KeyObject, type JsonWebKey } from "node:crypto";
import { BadKeyError } from "../../error.js";
import { SSHReader, SSHWriter, bigintToBytes, bytesEqual, bytesToBigint, decodeUtf8 } from "../common.js";
import { dsaPkcs8, dsaSpki, parseDsaDer } from "./asn1.js";
import { bigFromB64url, bigToB64url, b64url, fromB64url, mod, modInverse } from "./util.js";

export type CurveName = "nistp256" | "nistp384" | "nistp521";

export interface RSAComponents {
  kind: "RSA";
  n: bigint;
  e: bigint;
  /** Private exponent and primes; `iqmp` is q⁻¹ mod p (OpenSSH's and PKCS#1's coefficient). */
  d?: bigint;
  p?: bigint;
  q?: bigint;
  iqmp?: bigint;
}
export interface DSAComponents {
  kind: "DSA";
  p: bigint;
  q: bigint;
  g: bigint;
  y: bigint;
  x?: bigint;
}
export interface ECComponents {
  kind: "EC";
  curve: CurveName;
  /** The uncompressed point 0x04 ‖ X ‖ Y. */
  point: Uint8Array;
  d?: bigint;
}
export interface Ed25519Components {
  kind: "Ed25519";
  /** The 32-byte public key. */
  a: Uint8Array;
  /** The 32-byte private seed. */
  k?: Uint8Array;
}
export type Components = RSAComponents | DSAComponents | ECComponents | Ed25519Components;

export interface CurveInfo {
  name: CurveName;
  sshType: string;
  jwk: "P-256" | "P-384" | "P-521";
  nodeName: string;
  size: number;
  bits: number;
  hash: "sha256" | "sha384" | "sha512";
}

export const CURVES: Readonly<Record<CurveName, CurveInfo>> = {
  nistp256: { name: "nistp256", sshType: "ecdsa-sha2-nistp256", jwk: "P-256", nodeName: "prime256v1", size: 32, bits: 256, hash: "sha256" },
  nistp384: { name: "nistp384", sshType: "ecdsa-sha2-nistp384", jwk: "P-384", nodeName: "secp384r1", size: 48, bits: 384, hash: "sha384" },
  nistp521: { name: "nistp521", sshType: "ecdsa-sha2-nistp521", jwk: "P-521", nodeName: "secp521r1", size: 66, bits: 521, hash: "sha512" },
};

export function curveBySshType(t: string): CurveInfo | undefined {
  for (const c of Object.values(CURVES)) if (c.sshType === t) return c;
  return undefined;
}

export function curveByJwk(crv: string | undefined): CurveInfo {
  for (const c of Object.values(CURVES)) if (c.jwk === crv) return c;
  throw new BadKeyError(`unsupported elliptic curve ${String(crv)}: only NIST P-256, P-384 and P-521 are used by SSH`);
}

export function sshTypeOf(c: Components): string {
  switch (c.kind) {
    case "RSA":
      return "ssh-rsa";
    case "DSA":
      return "ssh-dss";
    case "EC":
      return CURVES[c.curve].sshType;
    case "Ed25519":
      return "ssh-ed25519";
  }
}

export function isPrivate(c: Components): boolean {
  switch (c.kind) {
    case "RSA":
      return c.d !== undefined;
    case "DSA":
      return c.x !== undefined;
    case "EC":
      return c.d !== undefined;
    case "Ed25519":
      return c.k !== undefined;
  }
}

export function publicOf(c: Components): Components {
  switch (c.kind) {
    case "RSA":
      return { kind: "RSA", n: c.n, e: c.e };
    case "DSA":
      return { kind: "DSA", p: c.p, q: c.q, g: c.g, y: c.y };
    case "EC":
      return { kind: "EC", curve: c.curve, point: c.point };
    case "Ed25519":
      return { kind: "Ed25519", a: c.a };
  }
}

/** Checks an EC point's encoding against its curve (the on-curve check is node's, at import). */
export function checkPoint(curve: CurveInfo, point: Uint8Array): void {
  if (point.length === 0) throw new BadKeyError(`${curve.sshType} key has an empty public point`);
  if (point[0] !== 4) {
    throw new BadKeyError(`${curve.sshType} public point is not in uncompressed form (first byte 0x${point[0]!.toString(16)}, expected 0x04)`);
  }
  if (point.length !== 1 + 2 * curve.size) {
    throw new BadKeyError(
      `${curve.sshType} public point is ${point.length} bytes, but a ${curve.name} point is ${1 + 2 * curve.size}: the curve does not match the key's name`,
    );
  }
}

function bitLength(n: bigint): number {
  return n <= 0n ? 0 : n.toString(2).length;
}

/** RSA public numbers within what any peer may make us compute with. */
export function checkRsaPublic(n: bigint, e: bigint, what: string): void {
  if (bitLength(n) > RSA_MAX_MODULUS_BITS) throw new BadKeyError(`${what}: an RSA modulus of more than ${RSA_MAX_MODULUS_BITS} bits`);
  if (bitLength(e) > RSA_MAX_PUBLIC_EXPONENT_BITS || e < 3n || (e & 1n) === 0n) {
    throw new BadKeyError(`${what}: the RSA public exponent must be odd, at least 3 and at most ${RSA_MAX_PUBLIC_EXPONENT_BITS} bits`);
  }
}

function wireReader(data: Uint8Array): SSHReader {
  return new SSHReader(data);
}

/** Runs a wire-format parse, turning short reads and malformed fields into BadKeyError. */
export function parseWire<T>(what: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof BadKeyError) throw e;
    const err = e as { code?: string; message?: string };
    if (err.code === "ERR_SSH_SHORT_READ") throw new BadKeyError(`${what} is truncated: ${err.message ?? ""}`);
    if (err.code === "ERR_SSH_MALFORMED_FIELD") throw new BadKeyError(`${what} is malformed: ${err.message ?? ""}`);
    throw e;
  }
}

function readType(r: SSHReader, what: string): string {
  const raw = r.string();
  try {
    return decodeUtf8(raw);
  } catch {
    throw new BadKeyError(`${what} does not start with a key type name`);
  }
}

/** Largest RSA modulus accepted, in bits (OpenSSH's `SSH_RSA_MAXIMUM_MODULUS_SIZE`, OpenSSL's limit). */
export const RSA_MAX_MODULUS_BITS = 16384;
/**
 * Largest RSA public exponent accepted, in bits. Verifying costs an exponentiation by e: with a
 * 3072-bit e a 3072-bit key takes 16 ms (OpenSSL refuses e over 64 bits only above 3072-bit
 * moduli). Keys in use have e = 65537; a few old ones 3, 35 or 37.
 */
export const RSA_MAX_PUBLIC_EXPONENT_BITS = 32;
/**
 * Largest DSA prime accepted, in bits: FIPS 186-4's largest (SSH's `ssh-dss` itself is 1024 bits;
 * a verify with an 8192-bit p costs 8 ms).
 */
export const DSA_MAX_PRIME_BITS = 3072;

/** Public key fields after the type name (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4). */
export function readPublicFields(r: SSHReader, type: string, what: string): Components {
  if (type === "ssh-rsa") {
    const e = r.mpint(RSA_MAX_PUBLIC_EXPONENT_BITS);
    const n = r.mpint(RSA_MAX_MODULUS_BITS);
    if (n <= 0n || e <= 0n) throw new BadKeyError(`${what}: RSA modulus and exponent must be positive`);
    checkRsaPublic(n, e, what);
    return { kind: "RSA", n, e };
  }
  if (type === "ssh-dss") {
    const p = r.mpint(DSA_MAX_PRIME_BITS);
    const q = r.mpint(DSA_MAX_PRIME_BITS);
    const g = r.mpint(DSA_MAX_PRIME_BITS);
    const y = r.mpint(DSA_MAX_PRIME_BITS);
    if (bitLength(p) > DSA_MAX_PRIME_BITS) throw new BadKeyError(`${what}: a DSA prime of more than ${DSA_MAX_PRIME_BITS} bits`);
    return { kind: "DSA", p, q, g, y };
  }
  if (type === "ssh-ed25519") {
    const a = r.string();
    if (a.length !== 32) throw new BadKeyError(`${what}: an Ed25519 public key is 32 bytes, this one is ${a.length}`);
    return { kind: "Ed25519", a: a.slice() };
  }
  const curve = curveBySshType(type);
  if (curve !== undefined) {
    const name = decodeUtf8(r.string(), "curve name");
    if (name !== curve.name) throw new BadKeyError(`${what}: curve name ${JSON.stringify(name)} does not match the key type ${type}`);
    const point = r.string();
    checkPoint(curve, point);
    return { kind: "EC", curve: curve.name, point: point.slice() };
  }
  if (type.includes("-cert-")) throw new BadKeyError(`${what}: ${type} is a certificate: read it with Certificate.fromBlob or Certificate.fromString`);
  throw new BadKeyError(`${what}: unknown key type ${JSON.stringify(type)} (supported: ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa, ssh-dss)`);
}

/** Parses an SSH wire public-key blob (the K_S of key exchange, the key of an authorized_keys line). */
export function parseBlob(blob: Uint8Array, what = "public key blob"): Components {
  return parseWire(what, () => {
    const r = wireReader(blob);
    const type = readType(r, what);
    const c = readPublicFields(r, type, what);
    if (r.remaining !== 0) throw new BadKeyError(`${what} has ${r.remaining} unexpected bytes after the ${type} key`);
    return c;
  });
}

export function encodeBlob(c: Components): Uint8Array {
  const w = new SSHWriter(512).string(sshTypeOf(c));
  switch (c.kind) {
    case "RSA":
      w.mpint(c.e).mpint(c.n);
      break;
    case "DSA":
      w.mpint(c.p).mpint(c.q).mpint(c.g).mpint(c.y);
      break;
    case "EC":
      w.string(c.curve).string(c.point);
      break;
    case "Ed25519":
      w.string(c.a);
      break;
  }
  return w.finish().slice();
}

/**
 * Reads OpenSSH's private key fields (PROTOCOL.key; Twisted's private blob) from `r`:
 * RSA n e d iqmp p q; DSA p q g y x; ECDSA curve Q d; Ed25519 A (k‖A).
 */
export function readPrivateFields(r: SSHReader, what: string): Components {
  const type = readType(r, what);
  if (type === "ssh-rsa") {
    const n = r.mpint();
    const e = r.mpint();
    const d = r.mpint();
    const iqmp = r.mpint();
    const p = r.mpint();
    const q = r.mpint();
    return { kind: "RSA", n, e, d, iqmp, p, q };
  }
  if (type === "ssh-dss") {
    const p = r.mpint();
    const q = r.mpint();
    const g = r.mpint();
    const y = r.mpint();
    const x = r.mpint();
    return { kind: "DSA", p, q, g, y, x };
  }
  if (type === "ssh-ed25519") {
    const a = r.string();
    const ka = r.string();
    if (a.length !== 32 || ka.length !== 64) throw new BadKeyError(`${what}: Ed25519 private key fields have the wrong lengths (${a.length}, ${ka.length}; expected 32, 64)`);
    if (!bytesEqual(ka.subarray(32), a)) throw new BadKeyError(`${what}: the Ed25519 private key's copy of the public key differs from the public key`);
    return { kind: "Ed25519", a: a.slice(), k: ka.slice(0, 32) };
  }
  const curve = curveBySshType(type);
  if (curve !== undefined) {
    const name = decodeUtf8(r.string(), "curve name");
    if (name !== curve.name) throw new BadKeyError(`${what}: curve name ${JSON.stringify(name)} does not match the key type ${type}`);
    const point = r.string();
    checkPoint(curve, point);
    const d = r.mpint();
    return { kind: "EC", curve: curve.name, point: point.slice(), d };
  }
  throw new BadKeyError(`${what}: unknown key type ${JSON.stringify(type)}`);
}

export function writePrivateFields(w: SSHWriter, c: Components): SSHWriter {
  w.string(sshTypeOf(c));
  switch (c.kind) {
    case "RSA": {
      const f = rsaPrivate(c);
      return w.mpint(c.n).mpint(c.e).mpint(f.d).mpint(f.iqmp).mpint(f.p).mpint(f.q);
    }
    case "DSA":
      return w.mpint(c.p).mpint(c.q).mpint(c.g).mpint(c.y).mpint(need(c.x));
    case "EC":
      return w.string(c.curve).string(c.point).mpint(need(c.d));
    case "Ed25519": {
      const ka = new Uint8Array(64);
      ka.set(need(c.k));
      ka.set(c.a, 32);
      return w.string(c.a).string(ka);
    }
  }
}

function need<T>(v: T | undefined): T {
  if (v === undefined) throw new BadKeyError("this operation needs a private key, and this key is public");
  return v;
}

/** The RSA private numbers, with iqmp = q⁻¹ mod p. */
export function rsaPrivate(c: RSAComponents): { d: bigint; p: bigint; q: bigint; iqmp: bigint } {
  const d = need(c.d);
  if (c.p === undefined || c.q === undefined) throw new BadKeyError("RSA private key lacks its primes p and q");
  // iqmp is always recomputed: some writers (older Twisted among them) stored p⁻¹ mod q instead.
  return { d, p: c.p, q: c.q, iqmp: modInverse(c.q, c.p) };
}

/** A node:crypto KeyObject for the key (private when the components are). Validates the numbers. */
export function toKeyObject(c: Components): KeyObject {
  try {
    return buildKeyObject(c);
  } catch (e) {
    if (e instanceof BadKeyError) throw e;
    throw new BadKeyError(`invalid ${sshTypeOf(c)} key: ${(e as Error).message}`);
  }
}

function buildKeyObject(c: Components): KeyObject {
  switch (c.kind) {
    case "RSA": {
      const jwk: JsonWebKey = { kty: "RSA", n: bigToB64url(c.n), e: bigToB64url(c.e) };
      if (c.d === undefined) return createPublicKey({ key: jwk, format: "jwk" });
      const f = rsaPrivate(c);
      if (f.p * f.q !== c.n) throw new BadKeyError("invalid ssh-rsa key: p × q is not the modulus n");
      Object.assign(jwk, {
        d: bigToB64url(f.d),
        p: bigToB64url(f.p),
        q: bigToB64url(f.q),
        dp: bigToB64url(mod(f.d, f.p - 1n)),
        dq: bigToB64url(mod(f.d, f.q - 1n)),
        qi: bigToB64url(modInverse(f.q, f.p)),
      });
      return createPrivateKey({ key: jwk, format: "jwk" });
    }
    case "DSA": {
      if (c.x === undefined) return createPublicKey({ key: Buffer.from(dsaSpki(c.p, c.q, c.g, c.y)), format: "der", type: "spki" });
      const k = createPrivateKey({ key: Buffer.from(dsaPkcs8(c.p, c.q, c.g, c.x)), format: "der", type: "pkcs8" });
      const y = parseDsaDer(new Uint8Array(createPublicKey(k).export({ format: "der", type: "spki" })), "spki").v;
      if (y !== c.y) throw new BadKeyError("invalid ssh-dss key: the private value x does not give the public value y");
      return k;
    }
    case "EC": {
      const curve = CURVES[c.curve];
      checkPoint(curve, c.point);
      const jwk: JsonWebKey = {
        kty: "EC",
        crv: curve.jwk,
        x: b64url(c.point.subarray(1, 1 + curve.size)),
        y: b64url(c.point.subarray(1 + curve.size)),
      };
      if (c.d === undefined) return createPublicKey({ key: jwk, format: "jwk" });
      const k = createPrivateKey({ key: { ...jwk, d: bigToB64url(c.d, curve.size) }, format: "jwk" });
      const derived = createPublicKey(k).export({ format: "jwk" });
      if (derived.x !== jwk.x || derived.y !== jwk.y) throw new BadKeyError(`invalid ${curve.sshType} key: the private value does not give the public point`);
      return k;
    }
    case "Ed25519": {
      const jwk: JsonWebKey = { kty: "OKP", crv: "Ed25519", x: b64url(c.a) };
      if (c.k === undefined) return createPublicKey({ key: jwk, format: "jwk" });
      const k = createPrivateKey({ key: { ...jwk, d: b64url(c.k) }, format: "jwk" });
      if (createPublicKey(k).export({ format: "jwk" }).x !== jwk.x) throw new BadKeyError("invalid ssh-ed25519 key: the private seed does not give the public key");
      return k;
    }
  }
}

/** The components of a node:crypto KeyObject (RSA, DSA, EC on a NIST curve, Ed25519). */
export function fromKeyObject(k: KeyObject): Components {
  const priv = k.type === "private";
  switch (k.asymmetricKeyType) {
    case "rsa": {
      const j = k.export({ format: "jwk" });
      const n = bigFromB64url(j.n, "RSA modulus");
      const e = bigFromB64url(j.e, "RSA exponent");
      if (!priv) return { kind: "RSA", n, e };
      return { kind: "RSA", n, e, d: bigFromB64url(j.d, "RSA d"), p: bigFromB64url(j.p, "RSA p"), q: bigFromB64url(j.q, "RSA q"), iqmp: bigFromB64url(j.qi, "RSA qi") };
    }
    case "ec": {
      const j = k.export({ format: "jwk" });
      const curve = curveByJwk(j.crv);
      const x = fromB64url(j.x, "EC x");
      const y = fromB64url(j.y, "EC y");
      const point = new Uint8Array(1 + 2 * curve.size);
      point[0] = 4;
      point.set(x, 1 + curve.size - x.length);
      point.set(y, 1 + 2 * curve.size - y.length);
      if (!priv) return { kind: "EC", curve: curve.name, point };
      return { kind: "EC", curve: curve.name, point, d: bigFromB64url(j.d, "EC d") };
    }
    case "ed25519": {
      const j = k.export({ format: "jwk" });
      const a = fromB64url(j.x, "Ed25519 public key");
      if (!priv) return { kind: "Ed25519", a };
      return { kind: "Ed25519", a, k: fromB64url(j.d, "Ed25519 seed") };
    }
    case "dsa": {
      if (!priv) {
        const s = parseDsaDer(new Uint8Array(k.export({ format: "der", type: "spki" })), "spki");
        return { kind: "DSA", p: s.p, q: s.q, g: s.g, y: s.v };
      }
      const pk = parseDsaDer(new Uint8Array(k.export({ format: "der", type: "pkcs8" })), "pkcs8");
      const pub = parseDsaDer(new Uint8Array(createPublicKey(k).export({ format: "der", type: "spki" })), "spki");
      return { kind: "DSA", p: pk.p, q: pk.q, g: pk.g, y: pub.v, x: pk.v };
    }
    default:
      throw new BadKeyError(`unsupported key algorithm ${String(k.asymmetricKeyType)}: SSH keys are Ed25519, ECDSA (NIST P-256/384/521), RSA or DSA`);
  }
}

export { bigintToBytes, bytesToBigint };
