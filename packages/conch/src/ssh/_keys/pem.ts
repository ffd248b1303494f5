/**
 * PEM keys through OpenSSL (node:crypto): private PKCS#1 (`RSA PRIVATE KEY`), SEC1
 * (`EC PRIVATE KEY`), OpenSSL's `DSA PRIVATE KEY`, PKCS#8 (`PRIVATE KEY`, `ENCRYPTED PRIVATE KEY`),
 * legacy `Proc-Type: 4,ENCRYPTED` encryption; public SubjectPublicKeyInfo (`PUBLIC KEY`) and
 * PKCS#1 (`RSA PUBLIC KEY`).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { BadKeyError, BadPassphraseError, EncryptedKeyError } from "../../error.js";
import { dsaTraditional } from "./asn1.js";
import { fromKeyObject, isPrivate, toKeyObject, type Components } from "./components.js";
import { armour, parseArmour } from "./util.js";

const PRIVATE_LABELS = new Set(["RSA PRIVATE KEY", "EC PRIVATE KEY", "DSA PRIVATE KEY", "PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]);
const PUBLIC_LABELS = new Set(["PUBLIC KEY", "RSA PUBLIC KEY"]);

export function isPemLabel(label: string): boolean {
  return PRIVATE_LABELS.has(label) || PUBLIC_LABELS.has(label);
}

/** Parses a PEM key (private or public); `text` holds the armoured block. */
export function parsePem(text: string, passphrase: Uint8Array | undefined): Components {
  const a = parseArmour(text);
  const block = text.slice(text.indexOf(`-----BEGIN ${a.label}-----`));
  if (PUBLIC_LABELS.has(a.label)) {
    let k: KeyObject;
    try {
      k = createPublicKey({ key: block, format: "pem" });
    } catch (e) {
      throw new BadKeyError(`the ${a.label} block could not be read: ${(e as Error).message}`);
    }
    return fromKeyObject(k);
  }
  if (!PRIVATE_LABELS.has(a.label)) throw new BadKeyError(`a PEM block labelled ${JSON.stringify(a.label)} is not a key this library reads`);
  const encrypted = a.label === "ENCRYPTED PRIVATE KEY" || (a.headers.get("Proc-Type") ?? "").includes("ENCRYPTED");
  if (encrypted && (passphrase === undefined || passphrase.length === 0)) {
    throw new EncryptedKeyError(`the private key is encrypted (${a.label}${a.headers.has("DEK-Info") ? `, ${a.headers.get("DEK-Info")!.split(",")[0]}` : ""}): a passphrase is needed to read it`);
  }
  let k: KeyObject;
  try {
    k = createPrivateKey(encrypted ? { key: block, format: "pem", passphrase: Buffer.from(passphrase!) } : { key: block, format: "pem" });
  } catch (e) {
    const err = e as { code?: string; message: string };
    if (encrypted) throw new BadPassphraseError();
    if (err.code === "ERR_MISSING_PASSPHRASE") throw new EncryptedKeyError();
    throw new BadKeyError(`the ${a.label} block could not be read (damaged or truncated?): ${err.message}`);
  }
  return fromKeyObject(k);
}

export interface PemOptions {
  passphrase?: Uint8Array | undefined;
  /** `traditional` (PKCS#1 / SEC1 / DSA, OpenSSH's `-m PEM`; the default) or `pkcs8`. */
  subtype?: "traditional" | "pkcs8" | undefined;
}

/**
 * Writes the key as PEM: a private key as PKCS#1 / SEC1 / `DSA PRIVATE KEY` (Ed25519, which has no
 * traditional form, as PKCS#8), or PKCS#8; a public key as SubjectPublicKeyInfo.
 */
export function toPem(c: Components, opts: PemOptions = {}): string {
  const k = toKeyObject(c);
  if (!isPrivate(c)) return k.export({ format: "pem", type: "spki" }).toString();
  const pass = opts.passphrase !== undefined && opts.passphrase.length > 0 ? Buffer.from(opts.passphrase) : undefined;
  const enc = pass !== undefined ? { cipher: "aes-256-cbc", passphrase: pass } : {};
  const pkcs8 = opts.subtype === "pkcs8" || c.kind === "Ed25519";
  if (pkcs8) return k.export({ format: "pem", type: "pkcs8", ...enc }).toString();
  if (c.kind === "RSA") return k.export({ format: "pem", type: "pkcs1", ...enc }).toString();
  if (c.kind === "EC") return k.export({ format: "pem", type: "sec1", ...enc }).toString();
  // DSA: node exports only PKCS#8, so the traditional body is built here; encrypt by re-import.
  const plain = armour("DSA PRIVATE KEY", dsaTraditional(c.p, c.q, c.g, c.y, c.x!));
  if (pass === undefined) return plain;
  return k.export({ format: "pem", type: "pkcs8", ...enc }).toString();
}
