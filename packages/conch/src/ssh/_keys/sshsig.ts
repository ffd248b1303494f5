/**
 * OpenSSH's SSHSIG signatures (PROTOCOL.sshsig), what `ssh-keygen -Y sign` writes and
 * `ssh-keygen -Y verify` checks: a key's signature over a namespace and a hash of the message,
 * armoured as `-----BEGIN SSH SIGNATURE-----`.
 */
import { createHash } from "node:crypto";
import { BadKeyError } from "../../error.js";
import { SSHReader, SSHWriter, bytesEqual, decodeUtf8 } from "../common.js";
import { parseWire } from "./components.js";
import { armour, parseArmour } from "./util.js";

const MAGIC = new TextEncoder().encode("SSHSIG");

/** The minimal key surface SSHSIG needs (keys.Key has it). */
export interface SigningKey {
  blob(): Uint8Array;
  sshType(): string;
  sign(data: Uint8Array, signatureType?: string): Uint8Array;
  verify(signature: Uint8Array, data: Uint8Array): boolean;
}

/** The bytes that are actually signed: MAGIC, namespace, reserved, hash algorithm, H(message). */
function signedData(namespace: string, hash: "sha256" | "sha512", message: Uint8Array): Uint8Array {
  const digest = new Uint8Array(createHash(hash).update(message).digest());
  return new SSHWriter(128).raw(MAGIC).string(namespace).string("").string(hash).string(digest).finish();
}

/** Signs `message` for `namespace`; returns the armoured SSH SIGNATURE (RSA signs with rsa-sha2-512). */
export function sign(key: SigningKey, message: Uint8Array, namespace: string, hash: "sha256" | "sha512" = "sha512"): string {
  if (namespace === "") throw new BadKeyError("an SSHSIG signature needs a namespace (such as 'file' or 'git')");
  const sig = key.sign(signedData(namespace, hash, message), key.sshType() === "ssh-rsa" ? "rsa-sha2-512" : undefined);
  const blob = new SSHWriter(512).raw(MAGIC).uint32(1).string(key.blob()).string(namespace).string("").string(hash).string(sig).finish();
  return armour("SSH SIGNATURE", blob, 76);
}

/** A parsed SSHSIG: who signed (the public key blob), for which namespace, with which hash. */
export interface ParsedSignature {
  publicKey: Uint8Array;
  namespace: string;
  hash: string;
  signature: Uint8Array;
}

export function parse(armoured: string): ParsedSignature {
  const a = parseArmour(armoured);
  if (a.label !== "SSH SIGNATURE") throw new BadKeyError(`expected an SSH SIGNATURE block, found ${a.label}`);
  return parseWire("the SSH signature", () => {
    const r = new SSHReader(a.body);
    if (!bytesEqual(r.raw(6), MAGIC)) throw new BadKeyError("the SSH signature does not start with SSHSIG");
    const version = r.uint32();
    if (version !== 1) throw new BadKeyError(`SSH signature version ${version} is not supported (only 1)`);
    const publicKey = r.string().slice();
    const namespace = decodeUtf8(r.string(), "namespace");
    r.string();
    const hash = decodeUtf8(r.string(), "hash algorithm");
    const signature = r.string().slice();
    return { publicKey, namespace, hash, signature };
  });
}

/**
 * Checks an armoured SSHSIG over `message` for `namespace` made by `key`. False for another key, another
 * namespace, an unknown hash, or a bad signature.
 */
export function verify(key: SigningKey, armoured: string, message: Uint8Array, namespace: string): boolean {
  let p: ParsedSignature;
  try {
    p = parse(armoured);
  } catch {
    return false;
  }
  if (p.namespace !== namespace || !bytesEqual(p.publicKey, key.blob())) return false;
  if (p.hash !== "sha256" && p.hash !== "sha512") return false;
  return key.verify(p.signature, signedData(namespace, p.hash, message));
}
