/**
 * PuTTY's private key files (`.ppk`, PuTTY's `sshpubk.c`): version 3 (HMAC-SHA-256, Argon2 key
 * derivation for encrypted keys) and version 2 (HMAC-SHA-1, SHA-1 key derivation), plain or
 * encrypted with AES-256-CBC.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { createRequire } from "node:module";
import type * as Argon2 from "@noble/hashes/argon2.js";
import { BadKeyError, BadPassphraseError, EncryptedKeyError } from "../../error.js";
import { SSHReader, SSHWriter, concatBytes } from "../common.js";
import { encodeBlob, parseBlob, parseWire, publicOf, rsaPrivate, sshTypeOf, type Components } from "./components.js";
import { decodeBase64, encodeBase64 } from "./util.js";
import type { ParsedKey } from "./openssh.js";

export function isPutty(text: string): boolean {
  return text.trimStart().startsWith("PuTTY-User-Key-File-");
}

interface PpkFile {
  version: number;
  algorithm: string;
  fields: Map<string, string>;
  publicBlob: Uint8Array;
  privateData: Uint8Array;
  mac: string;
}

function readPpk(text: string): PpkFile {
  const lines = text.split(/\r?\n/);
  const fields = new Map<string, string>();
  let publicBlob: Uint8Array | undefined;
  let privateData: Uint8Array | undefined;
  let version = 0;
  let algorithm = "";
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === "") continue;
    const m = /^([A-Za-z0-9-]+): ?(.*)$/.exec(line);
    if (m === null) throw new BadKeyError(`PuTTY key file: line ${i + 1} is not a 'Name: value' header`);
    const [, name, value] = m as unknown as [string, string, string];
    const head = /^PuTTY-User-Key-File-(\d+)$/.exec(name);
    if (head !== null) {
      version = Number(head[1]);
      algorithm = value.trim();
      continue;
    }
    if (name === "Public-Lines" || name === "Private-Lines") {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0 || i + n >= lines.length + 1) throw new BadKeyError(`PuTTY key file: ${name} ${value} is not a line count the file has (truncated?)`);
      const b64 = lines.slice(i + 1, i + 1 + n).join("");
      if (lines.slice(i + 1, i + 1 + n).length < n) throw new BadKeyError(`PuTTY key file is truncated inside its ${name === "Public-Lines" ? "public" : "private"} key`);
      const data = decodeBase64(b64, `the PuTTY ${name === "Public-Lines" ? "public" : "private"} key`);
      if (name === "Public-Lines") publicBlob = data;
      else privateData = data;
      i += n;
      continue;
    }
    fields.set(name, value.trim());
  }
  if (version !== 2 && version !== 3) throw new BadKeyError(`PuTTY key file version ${version} is not supported (versions 2 and 3 are; convert with 'puttygen key.ppk -o new.ppk')`);
  const mac = fields.get("Private-MAC");
  if (publicBlob === undefined || privateData === undefined || mac === undefined) {
    throw new BadKeyError("PuTTY key file is incomplete: it needs Public-Lines, Private-Lines and Private-MAC (truncated?)");
  }
  return { version, algorithm, fields, publicBlob, privateData, mac };
}

interface Secrets {
  cipherKey: Uint8Array;
  iv: Uint8Array;
  macKey: Uint8Array;
}

function sha1(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha1");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

const MAC_KEY_V2 = new TextEncoder().encode("putty-private-key-file-mac-key");

function v2Secrets(pass: Uint8Array): Secrets {
  const cipherKey = concatBytes(sha1(Uint8Array.of(0, 0, 0, 0), pass), sha1(Uint8Array.of(0, 0, 0, 1), pass)).slice(0, 32);
  return { cipherKey, iv: new Uint8Array(16), macKey: sha1(MAC_KEY_V2, pass) };
}

interface ArgonParams {
  flavour: string;
  memory: number;
  passes: number;
  parallelism: number;
  salt: Uint8Array;
}

/**
 * `@noble/hashes`' Argon2, loaded (synchronously: `require()` of an ES module, Node 20.19+) by the
 * first encrypted version 3 key: importing it costs a fresh process about 12 ms of CPU, which
 * every CLI run paid at import (issue 16).
 */
function argon2(): typeof Argon2 {
  return createRequire(import.meta.url)("@noble/hashes/argon2.js") as typeof Argon2;
}

function v3Secrets(pass: Uint8Array, a: ArgonParams): Secrets {
  const { argon2d, argon2i, argon2id } = argon2();
  const fn = a.flavour === "Argon2id" ? argon2id : a.flavour === "Argon2i" ? argon2i : a.flavour === "Argon2d" ? argon2d : undefined;
  if (fn === undefined) throw new BadKeyError(`PuTTY key file: unknown key derivation ${JSON.stringify(a.flavour)} (Argon2id, Argon2i or Argon2d)`);
  const out = fn(pass, a.salt, { t: a.passes, m: a.memory, p: a.parallelism, dkLen: 80 });
  return { cipherKey: out.slice(0, 32), iv: out.slice(32, 48), macKey: out.slice(48, 80) };
}

function macOf(version: number, macKey: Uint8Array, alg: string, enc: string, comment: string, pub: Uint8Array, priv: Uint8Array): Uint8Array {
  const data = new SSHWriter(priv.length + pub.length + 128).string(alg).string(enc).string(comment).string(pub).string(priv).finish();
  return new Uint8Array(createHmac(version === 3 ? "sha256" : "sha1", macKey).update(data).digest());
}

function argonParams(f: Map<string, string>): ArgonParams {
  const num = (name: string): number => {
    const v = Number(f.get(name));
    if (!Number.isInteger(v) || v <= 0) throw new BadKeyError(`PuTTY key file: ${name} is missing or not a positive number`);
    return v;
  };
  const salt = f.get("Argon2-Salt");
  if (salt === undefined || !/^([0-9a-fA-F]{2})+$/.test(salt)) throw new BadKeyError("PuTTY key file: Argon2-Salt is missing or not hex");
  return { flavour: f.get("Key-Derivation") ?? "", memory: num("Argon2-Memory"), passes: num("Argon2-Passes"), parallelism: num("Argon2-Parallelism"), salt: new Uint8Array(Buffer.from(salt, "hex")) };
}

/** Parses a `.ppk` file; `passphrase` is needed when its `Encryption` is not `none`. */
export function parsePutty(text: string, passphrase: Uint8Array | undefined): ParsedKey {
  const f = readPpk(text);
  const enc = f.fields.get("Encryption") ?? "none";
  const comment = f.fields.get("Comment") ?? "";
  if (enc !== "none" && enc !== "aes256-cbc") throw new BadKeyError(`PuTTY key file: unknown encryption ${JSON.stringify(enc)} (none or aes256-cbc)`);
  const encrypted = enc !== "none";
  if (encrypted && (passphrase === undefined || passphrase.length === 0)) throw new EncryptedKeyError("the PuTTY key is encrypted (aes256-cbc): a passphrase is needed to read it");
  const pass = encrypted ? passphrase! : new Uint8Array(0);
  const secrets = f.version === 3 ? (encrypted ? v3Secrets(pass, argonParams(f.fields)) : { cipherKey: new Uint8Array(0), iv: new Uint8Array(0), macKey: new Uint8Array(0) }) : v2Secrets(pass);
  let priv = f.privateData;
  if (encrypted) {
    if (priv.length % 16 !== 0) throw new BadKeyError("PuTTY key file: the encrypted private key is not a whole number of AES blocks (damaged?)");
    const d = createDecipheriv("aes-256-cbc", secrets.cipherKey, secrets.iv);
    d.setAutoPadding(false);
    priv = concatBytes(d.update(priv), d.final());
  }
  const want = macOf(f.version, secrets.macKey, f.algorithm, enc, comment, f.publicBlob, priv);
  const got = /^[0-9a-fA-F]+$/.test(f.mac) ? new Uint8Array(Buffer.from(f.mac, "hex")) : new Uint8Array(0);
  if (got.length !== want.length || !timingSafeEqual(got, want)) {
    if (encrypted) throw new BadPassphraseError();
    throw new BadKeyError("PuTTY key file: the Private-MAC does not match (the file was edited or damaged)");
  }
  const pub = parseBlob(f.publicBlob, "the PuTTY public key");
  if (sshTypeOf(pub) !== f.algorithm) throw new BadKeyError(`PuTTY key file says ${f.algorithm} but holds a ${sshTypeOf(pub)} key`);
  const components = parseWire("the PuTTY private key", () => readPrivate(pub, new SSHReader(priv)));
  return comment === "" ? { components } : { components, comment };
}

/** PuTTY's private fields: RSA d p q iqmp; DSA x; ECDSA d; Ed25519 the 32-byte private key. */
function readPrivate(pub: Components, r: SSHReader): Components {
  switch (pub.kind) {
    case "RSA": {
      const d = r.mpint();
      const p = r.mpint();
      const q = r.mpint();
      const iqmp = r.mpint();
      return { ...pub, d, p, q, iqmp };
    }
    case "DSA":
      return { ...pub, x: r.mpint() };
    case "EC":
      return { ...pub, d: r.mpint() };
    case "Ed25519": {
      const k = r.string();
      if (k.length > 32) throw new BadKeyError(`the PuTTY Ed25519 private key is ${k.length} bytes; it should be 32`);
      const seed = new Uint8Array(32);
      seed.set(k);
      return { ...pub, k: seed };
    }
  }
}

function writePrivate(c: Components): Uint8Array {
  const w = new SSHWriter(1024);
  switch (c.kind) {
    case "RSA": {
      const f = rsaPrivate(c);
      w.mpint(f.d).mpint(f.p).mpint(f.q).mpint(f.iqmp);
      break;
    }
    case "DSA":
      w.mpint(c.x!);
      break;
    case "EC":
      w.mpint(c.d!);
      break;
    case "Ed25519":
      w.string(c.k!);
      break;
  }
  return w.finish().slice();
}

export interface PuttyOptions {
  comment?: string | undefined;
  passphrase?: Uint8Array | undefined;
  version?: 2 | 3;
  /** Argon2id parameters for an encrypted v3 file: memory in KiB (default 8192, as PuTTY), passes (default 8), parallelism (1). */
  argon2?: { memory: number; passes: number; parallelism: number } | undefined;
}

function lines64(data: Uint8Array): string[] {
  const b64 = encodeBase64(data);
  const out: string[] = [];
  for (let i = 0; i < b64.length; i += 64) out.push(b64.slice(i, i + 64));
  return out;
}

/** Writes a `.ppk` file (version 3 by default). */
export function toPutty(c: Components, opts: PuttyOptions = {}): string {
  const version = opts.version ?? 3;
  const encrypted = opts.passphrase !== undefined && opts.passphrase.length > 0;
  const enc = encrypted ? "aes256-cbc" : "none";
  const comment = opts.comment ?? "";
  const alg = sshTypeOf(c);
  const pub = encodeBlob(publicOf(c));
  let priv = writePrivate(c);
  if (encrypted && priv.length % 16 !== 0) {
    // PuTTY pads with bytes of a SHA-1 of the data; any bytes will do, the MAC covers them.
    priv = concatBytes(priv, sha1(priv).slice(0, 16 - (priv.length % 16)));
  }
  const head = [`PuTTY-User-Key-File-${version}: ${alg}`, `Encryption: ${enc}`, `Comment: ${comment}`];
  const pubLines = lines64(pub);
  const out = [...head, `Public-Lines: ${pubLines.length}`, ...pubLines];
  let secrets: Secrets = { cipherKey: new Uint8Array(0), iv: new Uint8Array(0), macKey: new Uint8Array(0) };
  if (version === 2) secrets = v2Secrets(encrypted ? opts.passphrase! : new Uint8Array(0));
  else if (encrypted) {
    const a = opts.argon2 ?? { memory: 8192, passes: 8, parallelism: 1 };
    const salt = new Uint8Array(randomBytes(16));
    secrets = v3Secrets(opts.passphrase!, { flavour: "Argon2id", memory: a.memory, passes: a.passes, parallelism: a.parallelism, salt });
    out.push("Key-Derivation: Argon2id", `Argon2-Memory: ${a.memory}`, `Argon2-Passes: ${a.passes}`, `Argon2-Parallelism: ${a.parallelism}`, `Argon2-Salt: ${Buffer.from(salt).toString("hex")}`);
  }
  const mac = macOf(version, secrets.macKey, alg, enc, comment, pub, priv);
  let stored = priv;
  if (encrypted) {
    const ci = createCipheriv("aes-256-cbc", secrets.cipherKey, secrets.iv);
    ci.setAutoPadding(false);
    stored = concatBytes(ci.update(priv), ci.final());
  }
  const privLines = lines64(stored);
  out.push(`Private-Lines: ${privLines.length}`, ...privLines, `Private-MAC: ${Buffer.from(mac).toString("hex")}`, "");
  return out.join("\n");
}

