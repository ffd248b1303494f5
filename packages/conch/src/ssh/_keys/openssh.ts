/**
 * OpenSSH's own formats: the one-line public key (`ssh-ed25519 AAAA… comment`) and the
 * `openssh-key-v1` private key (PROTOCOL.key), plain or encrypted with bcrypt_pbkdf and AES.
 */
import { createCipheriv, createDecipheriv, randomBytes, timingSafeEqual } from "node:crypto";
import { createRequire } from "node:module";
import type * as Chacha from "@noble/ciphers/chacha.js";
import type * as Poly1305 from "@noble/ciphers/_poly1305.js";
import { BadKeyError, BadPassphraseError, EncryptedKeyError } from "../../error.js";
import { SSHReader, SSHWriter, bytesEqual, concatBytes, decodeUtf8 } from "../common.js";
import { bcryptPbkdf } from "./bcrypt_pbkdf.js";
import { encodeBlob, parseBlob, parseWire, publicOf, readPrivateFields, sshTypeOf, writePrivateFields, type Components } from "./components.js";
import { armour, decodeBase64, encodeBase64, startsWithAscii } from "./util.js";

/** A parsed key and the comment stored with it, if any. */
export interface ParsedKey {
  components: Components;
  comment?: string;
}

const KEY_TYPE_RE = /^(ssh-(rsa|dss|ed25519)|ecdsa-sha2-nistp(256|384|521)|[a-z0-9-]+-cert-v01@openssh\.com|sk-[a-z0-9-@.]+)$/;

/** Parses `type base64 [comment]` (RFC 4253 §6.6 blob in base64, as in authorized_keys and *.pub). */
export function parsePublicLine(text: string): ParsedKey {
  const line = text.trim().split(/\r?\n/)[0] ?? "";
  const fields = line.split(/[ \t]+/);
  const type = fields[0] ?? "";
  if (type === "") throw new BadKeyError("the public key line is empty");
  if (!KEY_TYPE_RE.test(type)) throw new BadKeyError(`the public key line does not start with a key type: found ${JSON.stringify(type.slice(0, 40))}`);
  if (fields.length < 2 || fields[1] === "") {
    throw new BadKeyError(`the public key line has nothing after the key type ${JSON.stringify(type)}: expected the base64 key data (is the line cut short?)`);
  }
  const blob = decodeBase64(fields[1]!, `the base64 data of the ${type} key`);
  const components = parseBlob(blob, `the ${type} key data`);
  if (sshTypeOf(components) !== type) {
    throw new BadKeyError(`the public key line says ${type} but its data is a ${sshTypeOf(components)} key: the line was edited or mixed up`);
  }
  const comment = fields.slice(2).join(" ");
  return comment === "" ? { components } : { components, comment };
}

export function toPublicLine(c: Components, comment?: string): string {
  const line = `${sshTypeOf(c)} ${encodeBase64(encodeBlob(publicOf(c)))}`;
  return comment !== undefined && comment !== "" ? `${line} ${comment}` : line;
}

const MAGIC = new TextEncoder().encode("openssh-key-v1\0");

interface CipherSpec {
  node: string;
  keyLen: number;
  ivLen: number;
  blockSize: number;
  tagLen: number;
}

const CIPHERS: Readonly<Record<string, CipherSpec>> = {
  none: { node: "", keyLen: 0, ivLen: 0, blockSize: 8, tagLen: 0 },
  "aes128-ctr": { node: "aes-128-ctr", keyLen: 16, ivLen: 16, blockSize: 16, tagLen: 0 },
  "aes192-ctr": { node: "aes-192-ctr", keyLen: 24, ivLen: 16, blockSize: 16, tagLen: 0 },
  "aes256-ctr": { node: "aes-256-ctr", keyLen: 32, ivLen: 16, blockSize: 16, tagLen: 0 },
  "aes128-cbc": { node: "aes-128-cbc", keyLen: 16, ivLen: 16, blockSize: 16, tagLen: 0 },
  "aes192-cbc": { node: "aes-192-cbc", keyLen: 24, ivLen: 16, blockSize: 16, tagLen: 0 },
  "aes256-cbc": { node: "aes-256-cbc", keyLen: 32, ivLen: 16, blockSize: 16, tagLen: 0 },
  "aes128-gcm@openssh.com": { node: "aes-128-gcm", keyLen: 16, ivLen: 12, blockSize: 16, tagLen: 16 },
  "aes256-gcm@openssh.com": { node: "aes-256-gcm", keyLen: 32, ivLen: 12, blockSize: 16, tagLen: 16 },
  "chacha20-poly1305@openssh.com": { node: "chachapoly", keyLen: 64, ivLen: 0, blockSize: 8, tagLen: 16 },
};

/**
 * OpenSSH's chacha20-poly1305 (PROTOCOL.chacha20poly1305) as a key file uses it: sequence number 0,
 * no length header; the Poly1305 key is the first ChaCha20 block, the data starts at block 1.
 */
function chachaPoly(decrypt: boolean, key: Uint8Array, data: Uint8Array, tag?: Uint8Array): Uint8Array {
  // Loaded by the first such key (`require()` of ES modules, Node 20.19+): importing them costs a
  // fresh process about 10 ms of CPU, which every CLI run paid at import (issue 16).
  const require = createRequire(import.meta.url);
  const { chacha20orig } = require("@noble/ciphers/chacha.js") as typeof Chacha;
  const { poly1305 } = require("@noble/ciphers/_poly1305.js") as typeof Poly1305;
  const mainKey = key.subarray(0, 32);
  const nonce = new Uint8Array(8);
  const polyKey = chacha20orig(mainKey, nonce, new Uint8Array(32), undefined, 0);
  if (decrypt) {
    const want = poly1305(data, polyKey);
    if (tag === undefined || tag.length !== 16 || !timingSafeEqual(want, tag)) throw new Error("chacha20-poly1305 tag mismatch");
    return chacha20orig(mainKey, nonce, data, undefined, 1);
  }
  const out = chacha20orig(mainKey, nonce, data, undefined, 1);
  return concatBytes(out, poly1305(out, polyKey));
}

/** Ciphers this module can write an encrypted openssh-key-v1 with. */
export const OPENSSH_CIPHERS = Object.keys(CIPHERS).filter((c) => c !== "none");

export function isOpenSSHv1(body: Uint8Array): boolean {
  return startsWithAscii(body, "openssh-key-v1\0");
}

function crypt(spec: CipherSpec, decrypt: boolean, key: Uint8Array, iv: Uint8Array, data: Uint8Array, tag?: Uint8Array): Uint8Array {
  if (spec.node === "chachapoly") return chachaPoly(decrypt, key, data, tag);
  if (spec.tagLen > 0) {
    if (decrypt) {
      const d = createDecipheriv(spec.node as "aes-256-gcm", key, iv);
      d.setAuthTag(tag!);
      return concatBytes(d.update(data), d.final());
    }
    const c = createCipheriv(spec.node as "aes-256-gcm", key, iv);
    const out = concatBytes(c.update(data), c.final(), c.getAuthTag());
    return out;
  }
  const c = decrypt ? createDecipheriv(spec.node, key, iv) : createCipheriv(spec.node, key, iv);
  c.setAutoPadding(false);
  return concatBytes(c.update(data), c.final());
}

/** Parses the decoded body of an `OPENSSH PRIVATE KEY` block. */
export function parsePrivateV1(body: Uint8Array, passphrase: Uint8Array | undefined): ParsedKey {
  const what = "the openssh-key-v1 private key";
  return parseWire(what, () => {
    if (!isOpenSSHv1(body)) throw new BadKeyError(`${what} does not start with the 'openssh-key-v1' magic`);
    const r = new SSHReader(body, MAGIC.length);
    const cipherName = decodeUtf8(r.string(), "cipher name");
    const kdfName = decodeUtf8(r.string(), "kdf name");
    const kdfOptions = r.string();
    const nkeys = r.uint32();
    if (nkeys !== 1) throw new BadKeyError(`${what} holds ${nkeys} keys; only files with exactly one key are supported`);
    const publicBlob = r.string();
    const publicKey = parseBlob(publicBlob, `${what}'s public key`);
    let section = r.string();
    const spec = CIPHERS[cipherName];
    if (spec === undefined) {
      throw new BadKeyError(`${what} is encrypted with ${JSON.stringify(cipherName)}, which is not supported (supported: ${OPENSSH_CIPHERS.join(", ")}); re-encrypt it with 'ssh-keygen -p -Z aes256-ctr'`);
    }
    if (cipherName !== "none") {
      if (kdfName !== "bcrypt") throw new BadKeyError(`${what} uses the key derivation ${JSON.stringify(kdfName)}; only bcrypt is supported`);
      if (passphrase === undefined || passphrase.length === 0) throw new EncryptedKeyError(`the private key is encrypted (${cipherName}): a passphrase is needed to read it`);
      const kr = new SSHReader(kdfOptions);
      const salt = kr.string();
      const rounds = kr.uint32();
      const tag = r.raw(spec.tagLen);
      if (section.length % spec.blockSize !== 0) throw new BadKeyError(`${what}'s encrypted section is not a whole number of cipher blocks: the file is damaged`);
      const kiv = bcryptPbkdf(passphrase, salt, spec.keyLen + spec.ivLen, rounds);
      try {
        section = crypt(spec, true, kiv.subarray(0, spec.keyLen), kiv.subarray(spec.keyLen), section, tag);
      } catch {
        throw new BadPassphraseError();
      }
    } else if (kdfName !== "none") {
      throw new BadKeyError(`${what} names the key derivation ${JSON.stringify(kdfName)} but no cipher`);
    }
    const s = new SSHReader(section);
    const check1 = s.uint32();
    const check2 = s.uint32();
    if (check1 !== check2) {
      if (cipherName !== "none") throw new BadPassphraseError();
      throw new BadKeyError(`${what} is damaged: its check numbers differ`);
    }
    const components = readPrivateFields(s, what);
    const comment = decodeUtf8(s.string(), "comment");
    const pad = s.rest();
    for (let i = 0; i < pad.length; i++) if (pad[i] !== i + 1) throw new BadKeyError(`${what} has bad padding after the key: the file is damaged`);
    if (!bytesEqual(encodeBlob(publicOf(components)), encodeBlob(publicKey))) {
      throw new BadKeyError(`${what}'s private part does not belong to its public key`);
    }
    return comment === "" ? { components } : { components, comment };
  });
}

export interface OpenSSHv1Options {
  comment?: string | undefined;
  passphrase?: Uint8Array | undefined;
  /** bcrypt_pbkdf rounds (ssh-keygen's default is 16). */
  rounds?: number | undefined;
  /** Cipher for an encrypted key (default aes256-ctr, as ssh-keygen). */
  cipher?: string | undefined;
  /** The check number (random by default; fixed in tests for byte-exact output). */
  checkInt?: number | undefined;
  salt?: Uint8Array | undefined;
}

/** Writes the openssh-key-v1 private key, armoured as `OPENSSH PRIVATE KEY`. */
export function toPrivateV1(c: Components, opts: OpenSSHv1Options = {}): string {
  const encrypted = opts.passphrase !== undefined && opts.passphrase.length > 0;
  const cipherName = encrypted ? (opts.cipher ?? "aes256-ctr") : "none";
  const spec = CIPHERS[cipherName];
  if (spec === undefined) throw new BadKeyError(`unsupported cipher ${JSON.stringify(cipherName)} (supported: ${OPENSSH_CIPHERS.join(", ")})`);
  const check = opts.checkInt ?? randomBytes(4).readUInt32BE(0);
  const s = new SSHWriter(1024).uint32(check).uint32(check);
  writePrivateFields(s, c);
  s.string(opts.comment ?? "");
  for (let i = 1; s.length % spec.blockSize !== 0; i++) s.byte(i);
  let section = s.finish();
  const w = new SSHWriter(2048).raw(MAGIC).string(cipherName);
  if (encrypted) {
    const rounds = opts.rounds ?? 16;
    const salt = opts.salt ?? new Uint8Array(randomBytes(16));
    const kiv = bcryptPbkdf(opts.passphrase!, salt, spec.keyLen + spec.ivLen, rounds);
    section = crypt(spec, false, kiv.subarray(0, spec.keyLen), kiv.subarray(spec.keyLen), section);
    w.string("bcrypt").string(new SSHWriter(32).string(salt).uint32(rounds).finish());
  } else {
    w.string("none").string(new Uint8Array(0));
  }
  w.uint32(1).string(encodeBlob(publicOf(c)));
  // For AEAD ciphers the tag follows the section's string, outside its length (PROTOCOL.key).
  w.string(section.subarray(0, section.length - spec.tagLen)).raw(section.subarray(section.length - spec.tagLen));
  return armour("OPENSSH PRIVATE KEY", w.finish(), 70);
}
