/**
 * SSH keys, as `twisted.conch.ssh.keys`: one {@link Key} class that reads every key format users
 * have on disk, writes them back, signs, verifies and fingerprints. Crypto is node:crypto
 * (OpenSSL); the file formats live in `_keys/`.
 *
 * ```ts
 * const key = Key.fromFile("/home/me/.ssh/id_ed25519");
 * const sig = key.sign(data);                 // SSH signature blob
 * key.public().verify(sig, data);             // true
 * key.fingerprint("sha256");                  // "SHA256:…", as ssh-keygen -l prints
 * ```
 */
import { createHash, generateKeyPairSync, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  BadFingerPrintFormat,
  BadKeyError,
  BadPassphraseError,
  BadSignatureAlgorithmError,
  EncryptedKeyError,
} from "../error.js";
import { SSHReader, SSHWriter, bigintToBytes, bytesEqual, bytesToBigint, concatBytes, decodeUtf8, toBytes } from "./common.js";
import {
  CURVES,
  encodeBlob,
  fromKeyObject,
  isPrivate,
  parseBlob,
  parseWire,
  publicOf,
  readPrivateFields,
  sshTypeOf,
  toKeyObject,
  writePrivateFields,
  type Components,
  type CurveName,
} from "./_keys/components.js";
import { parsePrivateLsh, parsePublicLsh, toLsh } from "./_keys/lsh.js";
import { isOpenSSHv1, parsePrivateV1, parsePublicLine, toPrivateV1, toPublicLine, type ParsedKey } from "./_keys/openssh.js";
import { isPemLabel, parsePem, toPem } from "./_keys/pem.js";
import { parsePutty, toPutty } from "./_keys/putty.js";
import { parseRfc4716, toRfc4716 } from "./_keys/rfc4716.js";
import { latin1, modInverse, parseArmour, passphraseBytes, startsWithAscii } from "./_keys/util.js";
import { signCertificate, type Certificate, type CertificateTerms } from "./_keys/certificate.js";

export { BadKeyError, EncryptedKeyError, BadPassphraseError, BadSignatureAlgorithmError, BadFingerPrintFormat };
export { RSA_MAX_MODULUS_BITS, RSA_MAX_PUBLIC_EXPONENT_BITS, DSA_MAX_PRIME_BITS } from "./_keys/components.js";

/**
 * Smallest RSA key accepted from a peer, in bits: a server's host key, a user's key in publickey
 * authentication (OpenSSH's `RequiredRSASize`, 1024 by default since 9.1).
 */
export const REQUIRED_RSA_SIZE = 1024;

/** What `type()` returns, as Twisted. */
export type KeyType = "RSA" | "DSA" | "EC" | "Ed25519";

/** A passphrase: a string is NFKC-normalised and UTF-8 encoded (as Twisted does). */
export type Passphrase = Uint8Array | string;

/**
 * Format names for {@link Key.fromString}'s `type` (Twisted's `_fromString_*` names, plus the
 * formats Twisted lacks). Omit it to detect the format.
 */
export type KeyStringType =
  | "blob"
  | "public_blob"
  | "private_blob"
  | "public_openssh"
  | "private_openssh"
  | "public_lsh"
  | "private_lsh"
  | "agentv3"
  | "public_rfc4716"
  | "public_pem"
  | "private_pem"
  | "putty";

/** Formats for {@link Key.toString}. */
export type KeyFormat = "openssh" | "pem" | "pkcs8" | "lsh" | "agentv3" | "putty" | "rfc4716" | "blob";

export interface ToStringOptions {
  comment?: string | undefined;
  passphrase?: Passphrase | undefined;
  /**
   * `openssh` private keys: `"v1"` (openssh-key-v1, the default) or `"PEM"` (as Twisted's
   * subtype). `pem` private keys: `"traditional"` (default) or `"pkcs8"`. `putty`: `"v3"`
   * (default) or `"v2"`.
   */
  subtype?: string | undefined;
  /** bcrypt_pbkdf rounds for an encrypted openssh-key-v1 key (default 16, as ssh-keygen). */
  rounds?: number | undefined;
  /** Cipher for an encrypted openssh-key-v1 key (default aes256-ctr). */
  cipher?: string | undefined;
  /** Argon2id cost of an encrypted PuTTY v3 key (memory in KiB; default 8192 KiB, 8 passes, 1 lane). */
  argon2?: { memory: number; passes: number; parallelism: number } | undefined;
}

/** Twisted's `Key.data()` values. */
export type KeyData = Record<string, bigint | Uint8Array | string>;

/** Signature algorithms each key type can make, best first. */
const SIGNATURE_ALGORITHMS: Readonly<Record<string, readonly string[]>> = {
  "ssh-rsa": ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"],
  "ssh-dss": ["ssh-dss"],
  "ssh-ed25519": ["ssh-ed25519"],
  "ecdsa-sha2-nistp256": ["ecdsa-sha2-nistp256"],
  "ecdsa-sha2-nistp384": ["ecdsa-sha2-nistp384"],
  "ecdsa-sha2-nistp521": ["ecdsa-sha2-nistp521"],
};

const RSA_HASHES: Readonly<Record<string, string>> = { "ssh-rsa": "sha1", "rsa-sha2-256": "sha256", "rsa-sha2-512": "sha512" };

/**
 * The key type (`sshType()`) that makes signatures of algorithm `alg`: `"rsa-sha2-256"` →
 * `"ssh-rsa"`. Undefined for an unknown algorithm.
 */
export function keyTypeForSignatureAlgorithm(alg: string): string | undefined {
  for (const [type, algs] of Object.entries(SIGNATURE_ALGORITHMS)) if (algs.includes(alg)) return type;
  return undefined;
}

/** An SSH key: public, or private (which can also do everything a public key does). */
export class Key {
  private readonly c: Components;
  private keyObj: KeyObject | undefined;
  /** The comment stored with the key in its file, when the format has one. */
  comment: string | undefined;

  /** Wraps a node:crypto KeyObject (RSA, DSA, ECDSA on P-256/384/521, Ed25519), as Twisted wraps a cryptography key. */
  constructor(keyObject: KeyObject) {
    this.c = fromKeyObject(keyObject);
    this.keyObj = keyObject;
    this.comment = undefined;
  }

  /** A key from its components; validates them (a point on the curve, p × q = n, …). */
  private static make(c: Components, comment?: string): Key {
    const k = Object.create(Key.prototype) as Key;
    const kk = k as unknown as { c: Components; keyObj: KeyObject; comment: string | undefined };
    kk.c = c;
    kk.keyObj = toKeyObject(c);
    kk.comment = comment;
    return k;
  }

  private static fromParsed(p: ParsedKey): Key {
    return Key.make(p.components, p.comment);
  }

  /**
   * Reads a key from `data`. With `type` omitted the format is detected: OpenSSH public lines and
   * `openssh-key-v1` private keys, SSH wire blobs, PEM (PKCS#1, SEC1, PKCS#8, SubjectPublicKeyInfo),
   * RFC 4716, PuTTY `.ppk`, LSH, agent v3. Throws {@link BadKeyError} saying what is wrong,
   * {@link EncryptedKeyError} when a passphrase is needed, {@link BadPassphraseError} when it is wrong.
   */
  static fromString(data: Uint8Array | string, type?: KeyStringType | string, passphrase?: Passphrase): Key {
    // Binary formats (blobs, LSH private keys) may arrive as a binary string; keep their bytes.
    const bytes = typeof data === "string" ? (/^[\0(]/.test(data) ? Uint8Array.from(data, (ch) => ch.charCodeAt(0) & 0xff) : toBytes(data)) : data;
    const pass = passphraseBytes(passphrase);
    const t = (type ?? guessStringType(bytes)).toLowerCase();
    const text = (): string => decodeUtf8Lenient(bytes);
    switch (t) {
      case "blob":
      case "public_blob":
        return Key.make(parseBlob(bytes));
      case "private_blob":
        return Key.make(parseWire("private key blob", () => readPrivateFields(new SSHReader(bytes), "private key blob")));
      case "agentv3":
        return Key.make(parseAgentV3(bytes));
      case "public_openssh":
        return Key.fromParsed(parsePublicLine(text()));
      case "private_openssh":
      case "private_pem":
      case "public_pem": {
        const armoured = parseArmour(text());
        if (armoured.label === "OPENSSH PRIVATE KEY") {
          if (!isOpenSSHv1(armoured.body)) throw new BadKeyError("the OPENSSH PRIVATE KEY block does not hold an openssh-key-v1 key");
          return Key.fromParsed(parsePrivateV1(armoured.body, pass));
        }
        if (!isPemLabel(armoured.label)) throw new BadKeyError(`a PEM block labelled ${JSON.stringify(armoured.label)} is not a key this library reads`);
        return Key.make(parsePem(text(), pass));
      }
      case "public_rfc4716":
      case "public_sshcom":
        return Key.fromParsed(parseRfc4716(text()));
      case "putty":
      case "private_putty":
        return Key.fromParsed(parsePutty(text(), pass));
      case "public_lsh":
        return Key.make(parsePublicLsh(bytes));
      case "private_lsh":
        return Key.make(parsePrivateLsh(bytes));
      default:
        throw new BadKeyError(`unknown key format ${JSON.stringify(type)}`);
    }
  }

  /** Reads a key file; see {@link Key.fromString}. */
  static fromFile(path: string, type?: KeyStringType | string, passphrase?: Passphrase): Key {
    let data: Uint8Array;
    try {
      data = new Uint8Array(readFileSync(path));
    } catch (e) {
      throw new BadKeyError(`cannot read the key file ${path}: ${(e as Error).message}`);
    }
    return Key.fromString(data, type, passphrase);
  }

  /**
   * A new private key: `ed25519`, `ecdsa` (bits 256, 384 or 521; default 256) or `rsa` (bits ≥
   * 1024, default 3072, as ssh-keygen).
   */
  static generate(kind: "ed25519" | "ecdsa" | "rsa", options: { bits?: number } = {}): Key {
    switch (kind) {
      case "ed25519":
        return Key.make(fromKeyObject(generateKeyPairSync("ed25519").privateKey));
      case "ecdsa": {
        const bits = options.bits ?? 256;
        const curve = Object.values(CURVES).find((c) => c.bits === bits);
        if (curve === undefined) throw new BadKeyError(`ECDSA keys are 256, 384 or 521 bits, not ${bits}`);
        return Key.make(fromKeyObject(generateKeyPairSync("ec", { namedCurve: curve.nodeName }).privateKey));
      }
      case "rsa": {
        const bits = options.bits ?? 3072;
        if (bits < 1024 || bits > 16384) throw new BadKeyError(`RSA keys are 1024 to 16384 bits, not ${bits}`);
        return Key.make(fromKeyObject(generateKeyPairSync("rsa", { modulusLength: bits, publicExponent: 65537 }).privateKey));
      }
      default:
        throw new BadKeyError(`cannot generate ${JSON.stringify(kind)} keys: choose ed25519, ecdsa or rsa`);
    }
  }

  /** `"RSA"`, `"DSA"`, `"EC"` or `"Ed25519"`. */
  type(): KeyType {
    return this.c.kind;
  }

  /** The SSH key type name: `ssh-rsa`, `ssh-dss`, `ssh-ed25519`, `ecdsa-sha2-nistp256`, …. */
  sshType(): string {
    return sshTypeOf(this.c);
  }

  /** The key size in bits (the modulus for RSA, p for DSA, the curve for ECDSA, 256 for Ed25519). */
  size(): number {
    switch (this.c.kind) {
      case "RSA":
        return this.c.n.toString(2).length;
      case "DSA":
        return this.c.p.toString(2).length;
      case "EC":
        return CURVES[this.c.curve].bits;
      case "Ed25519":
        return 256;
    }
  }

  /** The curve of an ECDSA key, or undefined. */
  curve(): CurveName | undefined {
    return this.c.kind === "EC" ? this.c.curve : undefined;
  }

  isPublic(): boolean {
    return !isPrivate(this.c);
  }

  /** The public half (itself when already public). */
  public(): Key {
    if (this.isPublic()) return this;
    return Key.make(publicOf(this.c), this.comment);
  }

  /** The SSH wire public-key blob (RFC 4253 §6.6). */
  blob(): Uint8Array {
    return encodeBlob(this.c);
  }

  /** OpenSSH's private key blob (the fields of an openssh-key-v1 private section). */
  privateBlob(): Uint8Array {
    if (this.isPublic()) throw new BadKeyError("privateBlob() needs a private key, and this key is public");
    return writePrivateFields(new SSHWriter(1024), this.c).finish().slice();
  }

  /** The key's numbers under Twisted's names (RSA n e d p q u; DSA p q g y x; EC x y privateValue curve; Ed25519 a k). */
  data(): KeyData {
    const c = this.c;
    switch (c.kind) {
      case "RSA":
        if (c.d === undefined || c.p === undefined || c.q === undefined) return { n: c.n, e: c.e };
        return { n: c.n, e: c.e, d: c.d, p: c.p, q: c.q, u: modInverse(c.p, c.q) };
      case "DSA":
        return c.x === undefined ? { y: c.y, g: c.g, p: c.p, q: c.q } : { x: c.x, y: c.y, g: c.g, p: c.p, q: c.q };
      case "EC": {
        const size = CURVES[c.curve].size;
        const xy = { x: bytesToBigint(c.point.subarray(1, 1 + size)), y: bytesToBigint(c.point.subarray(1 + size)), curve: this.sshType() };
        return c.d === undefined ? xy : { ...xy, privateValue: c.d };
      }
      case "Ed25519":
        return c.k === undefined ? { a: c.a } : { a: c.a, k: c.k };
    }
  }

  /** Twisted's `__eq__`: same type, same numbers (a private key never equals its public half). */
  equals(other: Key): boolean {
    if (this.type() !== other.type() || this.isPublic() !== other.isPublic()) return false;
    return this.isPublic() ? bytesEqual(this.blob(), other.blob()) : bytesEqual(this.privateBlob(), other.privateBlob());
  }

  /** The node:crypto KeyObject behind this key. */
  keyObject(): KeyObject {
    return (this.keyObj ??= toKeyObject(this.c));
  }

  /**
   * The fingerprint of the public blob: `"md5"` (the default; colon hex, `b1:94:6a:…`, as the
   * Conch client howto compares), `"sha256"` (`SHA256:base64`, as `ssh-keygen -l` prints), or
   * Twisted's `"md5-hex"` / `"sha256-base64"` (padded base64, no prefix).
   */
  fingerprint(format: "md5" | "sha256" | "md5-hex" | "sha256-base64" = "md5"): string {
    switch (format) {
      case "md5":
      case "md5-hex":
        return (createHash("md5").update(this.blob()).digest("hex").match(/../g) ?? []).join(":");
      case "sha256":
        return "SHA256:" + createHash("sha256").update(this.blob()).digest("base64").replace(/=+$/, "");
      case "sha256-base64":
        return createHash("sha256").update(this.blob()).digest("base64");
      default:
        throw new BadFingerPrintFormat(`unsupported fingerprint format ${JSON.stringify(format)} (md5, sha256, md5-hex or sha256-base64)`);
    }
  }

  /** Signature algorithms this key can make or check, best first (RSA: rsa-sha2-512, rsa-sha2-256, ssh-rsa). */
  supportedSignatureAlgorithms(): string[] {
    return [...(SIGNATURE_ALGORITHMS[this.sshType()] ?? [])];
  }

  /**
   * Signs `data`; returns the SSH signature blob (string algorithm, string signature; RFC 4253
   * §6.6, RFC 8332, RFC 5656 §3.1.2, RFC 8709 §6). `signatureType` defaults to the key type
   * (`ssh-rsa`, SHA-1, for RSA, as Twisted); pass the negotiated algorithm.
   */
  sign(data: Uint8Array | string, signatureType?: string): Uint8Array {
    if (this.isPublic()) throw new BadKeyError("cannot sign with a public key: load the private key");
    const alg = signatureType ?? this.sshType();
    if (!this.supportedSignatureAlgorithms().includes(alg)) {
      throw new BadSignatureAlgorithmError(`a ${this.sshType()} key cannot make ${JSON.stringify(alg)} signatures (it makes ${this.supportedSignatureAlgorithms().join(", ")})`);
    }
    const msg = toBytes(data);
    const key = this.keyObject();
    let sig: Uint8Array;
    const c = this.c;
    switch (c.kind) {
      case "RSA":
        sig = cryptoSign(RSA_HASHES[alg]!, msg, key);
        break;
      case "DSA":
        sig = cryptoSign("sha1", msg, { key, dsaEncoding: "ieee-p1363" });
        break;
      case "EC": {
        const curve = CURVES[c.curve];
        const rs = cryptoSign(curve.hash, msg, { key, dsaEncoding: "ieee-p1363" });
        sig = new SSHWriter(160)
          .mpint(bytesToBigint(rs.subarray(0, curve.size)))
          .mpint(bytesToBigint(rs.subarray(curve.size)))
          .finish();
        break;
      }
      case "Ed25519":
        sig = cryptoSign(null, msg, key);
        break;
    }
    return new SSHWriter(sig.length + 40).string(alg).string(sig).finish().slice();
  }

  /**
   * Checks an SSH signature blob over `data`. False (never an exception) for a bad or malformed
   * signature, or one whose algorithm this key type does not make.
   */
  verify(signature: Uint8Array, data: Uint8Array | string): boolean {
    try {
      return this.verifyOrThrow(signature, toBytes(data));
    } catch {
      return false;
    }
  }

  private verifyOrThrow(signature: Uint8Array, msg: Uint8Array): boolean {
    const r = new SSHReader(signature);
    const alg = decodeUtf8(r.string());
    const sig = r.string();
    if (r.remaining !== 0 || !this.supportedSignatureAlgorithms().includes(alg)) return false;
    const key = this.keyObject().type === "private" ? this.public().keyObject() : this.keyObject();
    const c = this.c;
    switch (c.kind) {
      case "RSA": {
        const k = Math.ceil(c.n.toString(2).length / 8);
        if (sig.length > k) return false;
        // OpenSSH accepts signatures that lost their leading zero bytes; pad back to the modulus size.
        const padded = sig.length < k ? concatBytes(new Uint8Array(k - sig.length), sig) : sig;
        return cryptoVerify(RSA_HASHES[alg]!, msg, key, padded);
      }
      case "DSA":
        return sig.length === 40 && cryptoVerify("sha1", msg, { key, dsaEncoding: "ieee-p1363" }, sig);
      case "EC": {
        const curve = CURVES[c.curve];
        const sr = new SSHReader(sig);
        const rr = sr.mpint();
        const ss = sr.mpint();
        if (sr.remaining !== 0 || rr <= 0n || ss <= 0n) return false;
        const limit = 1n << BigInt(8 * curve.size);
        if (rr >= limit || ss >= limit) return false;
        const rs = concatBytes(bigintToBytes(rr, curve.size), bigintToBytes(ss, curve.size));
        return cryptoVerify(curve.hash, msg, { key, dsaEncoding: "ieee-p1363" }, rs);
      }
      case "Ed25519":
        return sig.length === 64 && cryptoVerify(null, msg, key, sig);
    }
  }

  /**
   * The key in `format`: `openssh` (a public line, or an openssh-key-v1 private key, encrypted with
   * `passphrase`), `pem`, `pkcs8`, `rfc4716` (public), `putty` (`.ppk`), `lsh`, `agentv3`
   * (private), `blob`. Binary formats (`agentv3`, private `lsh`, `blob`) come back as a binary
   * string, one character per byte; {@link toBytes} gives their bytes. With no format (as in
   * `${key}`) it returns {@link inspect}'s summary.
   */
  toString(format?: KeyFormat | string, options: ToStringOptions = {}): string {
    // Without a format (String(key), `${key}`) a summary, never private key material.
    if (format === undefined) return this.inspect();
    const b = this.toBytes(format, options);
    return format === "agentv3" || format === "blob" || (format === "lsh" && !this.isPublic()) ? latin1(b) : new TextDecoder().decode(b);
  }

  /** As {@link toString}, as bytes. */
  toBytes(format: KeyFormat | string = "openssh", options: ToStringOptions = {}): Uint8Array {
    const comment = options.comment ?? this.comment;
    const pass = passphraseBytes(options.passphrase);
    const text = (s: string): Uint8Array => toBytes(s);
    switch (format.toLowerCase()) {
      case "openssh":
        if (this.isPublic()) return text(toPublicLine(this.c, comment));
        if (options.subtype?.toLowerCase() === "pem") return text(toPem(this.c, { passphrase: pass }));
        return text(toPrivateV1(this.c, { comment, passphrase: pass, rounds: options.rounds, cipher: options.cipher }));
      case "pem":
        return text(toPem(this.c, { passphrase: pass, subtype: options.subtype === "pkcs8" ? "pkcs8" : "traditional" }));
      case "pkcs8":
        return text(toPem(this.c, { passphrase: pass, subtype: "pkcs8" }));
      case "rfc4716":
      case "sshcom":
        return text(toRfc4716(this.c, comment));
      case "putty":
        if (this.isPublic()) throw new BadKeyError("PuTTY .ppk files hold private keys; use toString('rfc4716') for a public key PuTTY reads");
        return text(toPutty(this.c, { comment, passphrase: pass, version: options.subtype === "v2" ? 2 : 3, argon2: options.argon2 }));
      case "lsh":
        return toLsh(this.c, !this.isPublic());
      case "agentv3":
        return toAgentV3(this.c);
      case "blob":
        return this.blob();
      default:
        throw new BadKeyError(`unknown key format ${JSON.stringify(format)} (openssh, pem, pkcs8, rfc4716, putty, lsh, agentv3, blob)`);
    }
  }

  /**
   * Signs `subject`'s public key as an OpenSSH certificate with this key as the CA (what
   * `ssh-keygen -s` does). RSA CAs sign with `rsa-sha2-512` unless `terms.signatureAlgorithm`
   * says `rsa-sha2-256`.
   */
  signCertificate(subject: Key, terms: CertificateTerms): Certificate {
    return signCertificate(this, subject, terms);
  }

  /** Twisted's repr: the type, and whether public or private, with the fingerprint. */
  inspect(): string {
    return `<${this.isPublic() ? "Public" : "Private"} Key (${this.type()} ${this.size()} bits) ${this.fingerprint("sha256")}>`;
  }

  /** console.log and util.inspect show the summary, not the private numbers. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.inspect();
  }
}

function decodeUtf8Lenient(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Guesses the format name of key data (Twisted's `_guessStringType`, extended). */
export function guessStringType(data: Uint8Array): KeyStringType {
  let i = 0;
  while (i < data.length && (data[i] === 0x20 || data[i] === 0x09 || data[i] === 0x0a || data[i] === 0x0d)) i++;
  const s = data.subarray(i);
  if (data.length >= 4 && data[0] === 0 && data[1] === 0) return guessBinary(data);
  if (/^(ssh-|ecdsa-sha2-|sk-)/.test(latin1(s.subarray(0, 12)))) return "public_openssh";
  if (startsWithAscii(s, "-----BEGIN")) return "private_openssh";
  if (startsWithAscii(s, "---- BEGIN SSH2 PUBLIC KEY")) return "public_rfc4716";
  if (startsWithAscii(s, "PuTTY-User-Key-File-")) return "putty";
  if (startsWithAscii(s, "{")) return "public_lsh";
  if (startsWithAscii(s, "(")) return "private_lsh";
  if (s.length === 0) throw new BadKeyError("the key data is empty");
  const head = latin1(s.subarray(0, 24)).replace(/[^\x20-\x7e]/g, "?");
  throw new BadKeyError(
    `cannot tell the key format of data starting ${JSON.stringify(head)}: expected an OpenSSH public key line ('ssh-ed25519 AAAA…'), ` +
      "a '-----BEGIN … KEY-----' block, an RFC 4716 '---- BEGIN SSH2 PUBLIC KEY ----' block, a PuTTY .ppk file, an LSH key, or an SSH wire blob",
  );
}

function guessBinary(data: Uint8Array): KeyStringType {
  return parseWire("key blob", () => {
    const r = new SSHReader(data);
    const type = latin1(r.string());
    if (type === "ssh-rsa" || type === "ssh-dss") {
      let count = 0;
      while (r.remaining > 0) {
        r.mpint();
        count++;
      }
      return count > 4 ? "agentv3" : "blob";
    }
    try {
      parseBlob(data);
      return "blob";
    } catch (e) {
      if (e instanceof BadKeyError && /unexpected bytes after/.test(e.message)) return "private_blob";
      return "blob";
    }
  });
}

/** Agent protocol v3 private key: RSA e d n u p q (u = p⁻¹ mod q in Twisted); DSA p q g y x. */
function parseAgentV3(data: Uint8Array): Components {
  return parseWire("agent v3 key", () => {
    const r = new SSHReader(data);
    const type = latin1(r.string());
    if (type === "ssh-dss") {
      const [p, q, g, y, x] = [r.mpint(), r.mpint(), r.mpint(), r.mpint(), r.mpint()];
      return { kind: "DSA", p, q, g, y, x };
    }
    if (type === "ssh-rsa") {
      const [e, d, n] = [r.mpint(), r.mpint(), r.mpint()];
      r.mpint();
      const [p, q] = [r.mpint(), r.mpint()];
      return { kind: "RSA", n, e, d, p, q };
    }
    throw new BadKeyError(`agent v3 key: unknown key type ${JSON.stringify(type)} (ssh-rsa or ssh-dss)`);
  });
}

function toAgentV3(c: Components): Uint8Array {
  if (!isPrivate(c)) throw new BadKeyError("the agent v3 format holds private keys; this key is public");
  const w = new SSHWriter(1024).string(sshTypeOf(c));
  if (c.kind === "RSA") return w.mpint(c.e).mpint(c.d!).mpint(c.n).mpint(modInverse(c.p!, c.q!)).mpint(c.p!).mpint(c.q!).finish().slice();
  if (c.kind === "DSA") return w.mpint(c.p).mpint(c.q).mpint(c.g).mpint(c.y).mpint(c.x!).finish().slice();
  throw new BadKeyError(`the agent v3 format has no ${c.kind} keys (only RSA and DSA)`);
}

/** Where the howto's old functions read a key from. */
export type KeySource = { data: Uint8Array | string } | { filename: string };

function sourceKey(src: KeySource, passphrase?: Passphrase): Key {
  return "filename" in src ? Key.fromFile(src.filename, undefined, passphrase) : Key.fromString(src.data, undefined, passphrase);
}

/** The Conch client howto's `keys.getPublicKeyString(data=…)`: the public key blob of a key. */
export function getPublicKeyString(src: KeySource): Uint8Array {
  return sourceKey(src).blob();
}

/** The Conch client howto's `keys.getPrivateKeyObject(data=…)`: a private {@link Key}. */
export function getPrivateKeyObject(src: KeySource, passphrase?: Passphrase): Key {
  const key = sourceKey(src, passphrase);
  if (key.isPublic()) throw new BadKeyError("getPrivateKeyObject was given a public key");
  return key;
}


/** bcrypt_pbkdf (OpenBSD), the key derivation of encrypted openssh-key-v1 keys; exported for tests and tools. */
export { bcryptPbkdf } from "./_keys/bcrypt_pbkdf.js";

/**
 * SSHSIG signatures (`ssh-keygen -Y sign` / `-Y verify`, PROTOCOL.sshsig): `sshsig.sign(key,
 * message, namespace)` → armoured text; `sshsig.verify(publicKey, armoured, message, namespace)`.
 */
export * as sshsig from "./_keys/sshsig.js";
export {
  Certificate,
  CERT_SIGNATURE_ALGORITHMS,
  CERT_VALID_FOREVER,
  DEFAULT_CA_SIGNATURE_ALGORITHMS,
  DEFAULT_USER_EXTENSIONS,
  KNOWN_CRITICAL_OPTIONS,
  certTypeFor,
  plainTypeOf,
  type CertificateCheck,
  type CertificateTerms,
  type CertificateType,
} from "./_keys/certificate.js";
export { CertificateError, type CertificateRefusal } from "../error.js";
export { DEFAULT_SIGNATURE_ALGORITHMS } from "./_keys/algorithms.js";
