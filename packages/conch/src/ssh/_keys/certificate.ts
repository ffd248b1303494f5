/**
 * OpenSSH certificates (PROTOCOL.certkeys): a public key, a CA's signature over it and the terms
 * the CA granted (user or host, principals, validity window, critical options, extensions).
 *
 *     string    "<type>-cert-v01@openssh.com"
 *     string    nonce
 *     ...       the key's public fields (RSA e n; ECDSA curve Q; Ed25519 A; DSA p q g y)
 *     uint64    serial
 *     uint32    type (1 user, 2 host)
 *     string    key id
 *     string    valid principals (a sequence of strings)
 *     uint64    valid after
 *     uint64    valid before
 *     string    critical options (name, data pairs)
 *     string    extensions (name, data pairs)
 *     string    reserved
 *     string    signature key
 *     string    signature (over everything before it)
 */
import { randomBytes } from "node:crypto";
import { BadKeyError, CertificateError } from "../../error.js";
import { SSHReader, SSHWriter, bytesEqual, decodeUtf8 } from "../common.js";
import { Key } from "../keys.js";
import { encodeBlob, parseWire, readPublicFields, type Components } from "./components.js";
import { CERT_SIGNATURE_ALGORITHMS, DEFAULT_SIGNATURE_ALGORITHMS } from "./algorithms.js";
import { decodeBase64, encodeBase64 } from "./util.js";

/** A certificate's type field: 1 for user, 2 for host (PROTOCOL.certkeys). */
export type CertificateType = "user" | "host";
export const SSH2_CERT_TYPE_USER = 1;
export const SSH2_CERT_TYPE_HOST = 2;

/** `valid before` of a certificate that never expires (ssh-keygen's `forever`). */
export const CERT_VALID_FOREVER = 0xffff_ffff_ffff_ffffn;

/** The critical options this implementation understands; any other one refuses the certificate. */
export const KNOWN_CRITICAL_OPTIONS: readonly string[] = ["force-command", "source-address", "verify-required"];

/** The extensions ssh-keygen grants a user certificate unless told otherwise. */
export const DEFAULT_USER_EXTENSIONS: readonly string[] = [
  "permit-X11-forwarding",
  "permit-agent-forwarding",
  "permit-port-forwarding",
  "permit-pty",
  "permit-user-rc",
];

/**
 * CA signature algorithms accepted by default: OpenSSH 8.2+'s `CASignatureAlgorithms`, which
 * leaves out `ssh-rsa` (SHA-1).
 */
export const DEFAULT_CA_SIGNATURE_ALGORITHMS: readonly string[] = DEFAULT_SIGNATURE_ALGORITHMS;

const CERT_SUFFIX = "-cert-v01@openssh.com";

/** The certificate key type for a plain key type: `ssh-ed25519` → `ssh-ed25519-cert-v01@openssh.com`. */
export function certTypeFor(plainType: string): string {
  return plainType + CERT_SUFFIX;
}

/** The plain key type of a certificate type, or undefined when `type` is not a certificate type. */
export function plainTypeOf(certType: string): string | undefined {
  return certType.endsWith(CERT_SUFFIX) ? certType.slice(0, -CERT_SUFFIX.length) : undefined;
}

export { CERT_SIGNATURE_ALGORITHMS };

/** What {@link Certificate.check} is asked to accept. */
export interface CertificateCheck {
  /** The use: a user certificate for user authentication, a host certificate for a server. */
  type: CertificateType;
  /** The name the certificate must list: the user (after principal mapping) or the host name. */
  principal?: string;
  /** The trusted CA keys; the certificate's signature key must be one of them. Omit to skip. */
  trustedCAs?: readonly Key[];
  /** Now, in Unix seconds; defaults to the wall clock. Tests inject it. */
  now?: number;
  /** CA signature algorithms allowed; default {@link DEFAULT_CA_SIGNATURE_ALGORITHMS}. */
  caSignatureAlgorithms?: readonly string[];
}

/** The terms of a certificate to sign; see {@link Key.signCertificate}. */
export interface CertificateTerms {
  type: CertificateType;
  /** The key id, logged by servers (ssh-keygen `-I`). */
  keyId: string;
  /** Users or host names (ssh-keygen `-n`); an empty list matches nothing. */
  principals?: readonly string[];
  serial?: bigint;
  /** Unix seconds; default 0 (always). */
  validAfter?: bigint;
  /** Unix seconds; default {@link CERT_VALID_FOREVER}. */
  validBefore?: bigint;
  /** Name to value (`""` for flags such as `verify-required`). */
  criticalOptions?: Readonly<Record<string, string>>;
  /** Name to value (`""` for the `permit-*` flags); default {@link DEFAULT_USER_EXTENSIONS} for user certificates, none for host. */
  extensions?: Readonly<Record<string, string>>;
  /** The CA's signature algorithm; RSA CAs default to `rsa-sha2-512`, as ssh-keygen. */
  signatureAlgorithm?: string;
  /** 32 random bytes unless given (tests pass a fixed nonce). */
  nonce?: Uint8Array;
  comment?: string;
}

/** An OpenSSH certificate, parsed and with its CA signature verified. */
export class Certificate {
  /** `ssh-ed25519-cert-v01@openssh.com`, …. */
  readonly certType: string;
  readonly nonce: Uint8Array;
  /** The certified public key. */
  readonly key: Key;
  readonly serial: bigint;
  readonly type: CertificateType;
  readonly keyId: string;
  readonly principals: readonly string[];
  readonly validAfter: bigint;
  readonly validBefore: bigint;
  /** Name to value (the inner string; `""` for flag options, and for data that is not one string). */
  readonly criticalOptions: ReadonlyMap<string, string>;
  readonly extensions: ReadonlyMap<string, string>;
  /** Name to the data exactly as carried (for options this library does not know). */
  readonly criticalOptionData: ReadonlyMap<string, Uint8Array>;
  readonly extensionData: ReadonlyMap<string, Uint8Array>;
  /** The CA's public key. */
  readonly signatureKey: Key;
  /** The algorithm the CA signed with (`rsa-sha2-512`, `ssh-ed25519`, …). */
  readonly signatureAlgorithm: string;
  comment: string | undefined;
  private readonly raw: Uint8Array;

  private constructor(raw: Uint8Array, f: Omit<Certificate, "blob" | "toString" | "check" | "fingerprint" | "raw">) {
    this.raw = raw;
    this.certType = f.certType;
    this.nonce = f.nonce;
    this.key = f.key;
    this.serial = f.serial;
    this.type = f.type;
    this.keyId = f.keyId;
    this.principals = f.principals;
    this.validAfter = f.validAfter;
    this.validBefore = f.validBefore;
    this.criticalOptions = f.criticalOptions;
    this.extensions = f.extensions;
    this.criticalOptionData = f.criticalOptionData;
    this.extensionData = f.extensionData;
    this.signatureKey = f.signatureKey;
    this.signatureAlgorithm = f.signatureAlgorithm;
    this.comment = f.comment;
  }

  /**
   * Parses a certificate blob and verifies the CA's signature over it, as OpenSSH does on reading.
   * Throws {@link BadKeyError} for malformed or truncated data and {@link CertificateError} for a
   * signature that does not verify or a CA key that is itself a certificate.
   */
  static fromBlob(blob: Uint8Array, comment?: string): Certificate {
    const what = "certificate";
    return parseWire(what, () => {
      const r = new SSHReader(blob);
      const certType = r.utf8("certificate type");
      const plain = plainTypeOf(certType);
      if (plain === undefined) throw new BadKeyError(`${what}: ${JSON.stringify(certType)} is not a certificate type`);
      const nonce = r.string().slice();
      const components: Components = readPublicFields(r, plain, what);
      const serial = r.uint64();
      const typeNum = r.uint32();
      if (typeNum !== SSH2_CERT_TYPE_USER && typeNum !== SSH2_CERT_TYPE_HOST) {
        throw new BadKeyError(`${what}: unknown certificate type ${typeNum} (1 is user, 2 is host)`);
      }
      const keyId = decodeUtf8(r.string(), "key id");
      const principals = readStrings(r.string(), "principals");
      const validAfter = r.uint64();
      const validBefore = r.uint64();
      const critical = readOptions(r.string(), "critical options");
      const ext = readOptions(r.string(), "extensions");
      r.string(); // reserved: ignored, as the spec says
      const caBlob = r.string();
      const signedLength = blob.length - r.remaining;
      const signature = r.string();
      if (r.remaining !== 0) throw new BadKeyError(`${what} has ${r.remaining} unexpected bytes after the signature`);
      const caType = new SSHReader(caBlob).utf8("CA key type");
      if (plainTypeOf(caType) !== undefined) {
        throw new CertificateError("ca-is-certificate", `${what} "${keyId}": its signing key is itself a certificate (${caType}), which OpenSSH forbids`);
      }
      const signatureKey = Key.fromString(caBlob, "blob");
      const signatureAlgorithm = new SSHReader(signature).utf8("signature algorithm");
      if (!signatureKey.verify(signature, blob.subarray(0, signedLength))) {
        throw new CertificateError("signature", `${what} "${keyId}": the CA signature (${signatureAlgorithm}) does not verify`);
      }
      return new Certificate(blob.slice(), {
        certType,
        nonce,
        key: Key.fromString(encodeBlob(components), "blob"),
        serial,
        type: typeNum === SSH2_CERT_TYPE_USER ? "user" : "host",
        keyId,
        principals,
        validAfter,
        validBefore,
        criticalOptions: critical.values,
        extensions: ext.values,
        criticalOptionData: critical.raw,
        extensionData: ext.raw,
        signatureKey,
        signatureAlgorithm,
        comment,
      });
    });
  }

  /** Parses a `*-cert.pub` line: `ssh-ed25519-cert-v01@openssh.com AAAA… comment`. */
  static fromString(text: string): Certificate {
    const line = text.trim().split(/\r?\n/)[0] ?? "";
    const [type = "", b64 = "", ...rest] = line.split(/[ \t]+/);
    if (plainTypeOf(type) === undefined) throw new BadKeyError(`not a certificate line: it starts with ${JSON.stringify(type.slice(0, 40))}`);
    if (b64 === "") throw new BadKeyError(`the certificate line has nothing after ${type}: expected base64 data`);
    const cert = Certificate.fromBlob(decodeBase64(b64, `the base64 data of the ${type} certificate`), rest.length > 0 ? rest.join(" ") : undefined);
    if (cert.certType !== type) throw new BadKeyError(`the certificate line says ${type} but its data is a ${cert.certType}`);
    return cert;
  }

  /** True when `blob` (a public key blob) starts with a certificate type name. */
  static isCertificateBlob(blob: Uint8Array): boolean {
    try {
      return plainTypeOf(new SSHReader(blob).utf8()) !== undefined;
    } catch {
      return false;
    }
  }

  /** The certificate blob, as sent on the wire and stored base64 in `-cert.pub`. */
  blob(): Uint8Array {
    return this.raw.slice();
  }

  /** The `-cert.pub` line. */
  toString(): string {
    const line = `${this.certType} ${encodeBase64(this.raw)}`;
    return this.comment !== undefined && this.comment !== "" ? `${line} ${this.comment}` : line;
  }

  /** The certified key's fingerprint (what ssh-keygen -L prints as "Public key"). */
  fingerprint(): string {
    return this.key.fingerprint("sha256");
  }

  /**
   * Checks that this certificate is good for `use`, in OpenSSH's order: a trusted CA and an allowed
   * CA signature algorithm, the type, the validity window, the principal, the critical options.
   * Throws {@link CertificateError} with the reason; returns nothing when it is.
   */
  check(use: CertificateCheck): void {
    const id = `certificate "${this.keyId}" (serial ${this.serial}, CA ${this.signatureKey.fingerprint("sha256")})`;
    if (use.trustedCAs !== undefined && !use.trustedCAs.some((ca) => bytesEqual(ca.blob(), this.signatureKey.blob()))) {
      throw new CertificateError("untrusted-ca", `${id}: signed by a CA that is not trusted`);
    }
    const algs = use.caSignatureAlgorithms ?? DEFAULT_CA_SIGNATURE_ALGORITHMS;
    if (!algs.includes(this.signatureAlgorithm)) {
      throw new CertificateError("ca-signature-algorithm", `${id}: CA signature algorithm ${this.signatureAlgorithm} is not allowed (${algs.join(",")})`);
    }
    if (this.type !== use.type) throw new CertificateError("type", `${id}: a ${this.type} certificate, but a ${use.type} certificate is needed`);
    const now = BigInt(Math.floor(use.now ?? Date.now() / 1000));
    if (now < this.validAfter) throw new CertificateError("not-yet-valid", `${id}: not yet valid (valid from ${formatTime(this.validAfter)})`);
    if (now >= this.validBefore) throw new CertificateError("expired", `${id}: expired (valid until ${formatTime(this.validBefore)})`);
    if (use.principal !== undefined) {
      // OpenSSH 10.3: an empty principals list matches nothing (it used to match everything).
      if (this.principals.length === 0) throw new CertificateError("no-principals", `${id}: lists no principals, so it matches no name`);
      if (!this.principals.includes(use.principal)) {
        throw new CertificateError("principal", `${id}: ${JSON.stringify(use.principal)} is not a listed principal (${this.principals.join(",")})`);
      }
    }
    for (const name of this.criticalOptions.keys()) {
      if (!KNOWN_CRITICAL_OPTIONS.includes(name)) throw new CertificateError("critical-option", `${id}: unknown critical option ${JSON.stringify(name)}`);
    }
  }
}

/**
 * Signs `subject`'s public key with `ca` under `terms`; the body of {@link Key.signCertificate}.
 */
export function signCertificate(ca: Key, subject: Key, terms: CertificateTerms): Certificate {
  if (ca.isPublic()) throw new BadKeyError("signing a certificate needs the CA's private key");
  const plain = subject.sshType();
  const principals = terms.principals ?? [];
  const extensions = terms.extensions ?? (terms.type === "user" ? Object.fromEntries(DEFAULT_USER_EXTENSIONS.map((e) => [e, ""])) : {});
  const alg = terms.signatureAlgorithm ?? (ca.type() === "RSA" ? "rsa-sha2-512" : ca.sshType());
  const subjectFields = parseWire("subject key", () => {
    const r = new SSHReader(subject.public().blob());
    r.string();
    return r.rest();
  });
  const w = new SSHWriter(1024)
    .string(certTypeFor(plain))
    .string(terms.nonce ?? randomBytes(32))
    .raw(subjectFields)
    .uint64(terms.serial ?? 0n)
    .uint32(terms.type === "user" ? SSH2_CERT_TYPE_USER : SSH2_CERT_TYPE_HOST)
    .string(terms.keyId)
    .string(writeStrings(principals))
    .uint64(terms.validAfter ?? 0n)
    .uint64(terms.validBefore ?? CERT_VALID_FOREVER)
    .string(writeOptions(terms.criticalOptions ?? {}))
    .string(writeOptions(extensions))
    .string(new Uint8Array(0))
    .string(ca.public().blob());
  const body = w.finish().slice();
  const signature = ca.sign(body, alg);
  const blob = new SSHWriter(body.length + signature.length + 4).raw(body).string(signature).finish().slice();
  return Certificate.fromBlob(blob, terms.comment);
}

function readStrings(data: Uint8Array, what: string): string[] {
  const r = new SSHReader(data);
  const out: string[] = [];
  while (r.remaining > 0) out.push(decodeUtf8(r.string(), what));
  return out;
}

function writeStrings(items: readonly string[]): Uint8Array {
  const w = new SSHWriter(64);
  for (const s of items) w.string(s);
  return w.finish().slice();
}

/**
 * Name/data pairs; the data of a known option is a string inside the string, or empty for a flag.
 * An unknown option's data may be anything (it is kept raw, and its value is then `""`).
 */
function readOptions(data: Uint8Array, what: string): { values: Map<string, string>; raw: Map<string, Uint8Array> } {
  const r = new SSHReader(data);
  const values = new Map<string, string>();
  const raw = new Map<string, Uint8Array>();
  while (r.remaining > 0) {
    const name = decodeUtf8(r.string(), `${what} name`);
    const value = r.string().slice();
    if (values.has(name)) throw new BadKeyError(`certificate ${what}: ${JSON.stringify(name)} appears twice`);
    const inner = innerString(value);
    if (inner === undefined && (name === "force-command" || name === "source-address")) {
      throw new BadKeyError(`certificate ${what}: the value of ${name} is not one string`);
    }
    values.set(name, inner ?? "");
    raw.set(name, value);
  }
  return { values, raw };
}

function innerString(value: Uint8Array): string | undefined {
  if (value.length === 0) return "";
  try {
    const r = new SSHReader(value);
    const s = decodeUtf8(r.string());
    return r.remaining === 0 ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Sorted by name, as PROTOCOL.certkeys requires and ssh-keygen writes them. */
function writeOptions(options: Readonly<Record<string, string>>): Uint8Array {
  const w = new SSHWriter(128);
  for (const name of Object.keys(options).sort()) {
    const value = options[name]!;
    w.string(name).string(value === "" ? new Uint8Array(0) : new SSHWriter(value.length + 4).string(value).finish());
  }
  return w.finish().slice();
}

function formatTime(t: bigint): string {
  if (t === CERT_VALID_FOREVER) return "forever";
  const ms = Number(t) * 1000;
  return Number.isFinite(ms) && ms <= 8.64e15 ? new Date(ms).toISOString().replace(/\.000Z$/, "Z") : `${t}`;
}
