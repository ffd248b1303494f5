#!/usr/bin/env node
/**
 * `ckeygen`, Twisted Conch's key tool, with the ssh-keygen options people know: generate (`-t`,
 * `-b`, `-f`, `-N`, `-C`), fingerprint (`-l`, `-E md5|sha256`), public key from private (`-y`),
 * change passphrase (`-p`, `-P`, `-N`), convert to (`-e`) and from (`-i`) RFC 4716 / PKCS#8 / PEM,
 * and sign OpenSSH certificates (`-s ca_key -I key_id [-n principals] [-V validity] [-h] [-z serial]
 * [-O option] key.pub`, writing `key-cert.pub`) and list them (`-L -f key-cert.pub`).
 *
 * {@link main} takes its arguments and an {@link IO} and returns the exit status, so tests run it
 * in process; the bin at the bottom wires it to the console.
 */
import { existsSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { hostname, homedir, userInfo } from "node:os";
import { join } from "node:path";
import { isMainModule } from "./_bin.js";
import { readTerminalLine } from "../client/_terminal.js";
import { BadKeyError, Certificate, EncryptedKeyError, Key } from "../ssh/keys.js";
import { CertArgumentError, listCertificate, signKeyFile, signedLine } from "./_ckeygen_cert.js";

export { applyCertOptions, parseValidity } from "./_ckeygen_cert.js";

/** Where ckeygen writes and how it asks (a passphrase is asked with `hidden`). */
export interface IO {
  stdout(text: string): void;
  stderr(text: string): void;
  prompt(question: string, hidden: boolean): Promise<string>;
  /** Now in Unix seconds, for `-V` relative times; the wall clock when absent (tests inject it). */
  now?(): number;
}

interface Options {
  type?: string;
  bits?: number;
  filename?: string;
  newpass?: string;
  pass?: string;
  comment?: string;
  format: string;
  keyFormat?: string;
  subtype?: string;
  rounds?: number;
  fingerprint: boolean;
  changepass: boolean;
  showpub: boolean;
  exportKey: boolean;
  importKey: boolean;
  quiet: boolean;
  noPassphrase: boolean;
  help: boolean;
  caKey?: string;
  keyId?: string;
  principals?: string;
  validity?: string;
  serial?: bigint;
  certOptions: string[];
  files: string[];
  listCert: boolean;
}

export const USAGE = `Usage: ckeygen [options]
  -t type      generate a key: ed25519, ecdsa, rsa
  -b bits      key size (ecdsa: 256, 384, 521; rsa: default 3072)
  -f file      key file
  -C comment   comment for a new key
  -N pass      new passphrase ('' for none)
  -P pass      old passphrase
  -a rounds    bcrypt_pbkdf rounds for an encrypted key (default 16)
  -l           show the fingerprint of the key file
  -E hash      fingerprint hash: sha256 (default) or md5
  -o format    Twisted's fingerprint format: sha256-base64 or md5-hex
  -y           print the public key of a private key file
  -p           change the passphrase of a private key file
  -e           export the key: -m RFC4716 (default), PKCS8 or PEM
  -i           import a key written by -e and print it as an OpenSSH public key
  -m format    key format for -e / -i, or PEM / v1 for the private key written by -t / -p
  -q           quiet
  -s ca_key    sign the public keys named after the options as certificates, written as key-cert.pub
  -I key_id    certificate key id (with -s)
  -n names     certificate principals, comma-separated (with -s)
  -V interval  validity: start:end (always, forever, -1d, +52w, YYYYMMDD[HHMM[SS]][Z], 0x…)
  -h           with -s: a host certificate (otherwise -h is help)
  -z serial    certificate serial number
  -O option    certificate option: clear, no-pty, permit-pty, force-command=cmd, source-address=list,
               verify-required, critical:name[=value], extension:name[=value], … (repeatable)
  -t alg       with -s and an RSA CA: rsa-sha2-512 (default) or rsa-sha2-256
  -L           print the certificate in -f file as ssh-keygen -L does
  --no-passphrase              create the key with no passphrase
  --private-key-subtype PEM|v1 private key format (default v1)
`;

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Options {
  const o: Options = { format: "sha256", fingerprint: false, changepass: false, showpub: false, exportKey: false, importKey: false, quiet: false, noPassphrase: false, help: false, certOptions: [], files: [], listCert: false };
  const valued: Record<string, (v: string) => void> = {
    t: (v) => (o.type = v),
    b: (v) => (o.bits = intArg(v, "-b")),
    f: (v) => (o.filename = v),
    N: (v) => (o.newpass = v),
    P: (v) => (o.pass = v),
    C: (v) => (o.comment = v),
    E: (v) => (o.format = v),
    o: (v) => (o.format = v),
    m: (v) => (o.keyFormat = v),
    a: (v) => (o.rounds = intArg(v, "-a")),
    "private-key-subtype": (v) => (o.subtype = v),
    s: (v) => (o.caKey = v),
    I: (v) => (o.keyId = v),
    n: (v) => (o.principals = v),
    V: (v) => (o.validity = v),
    O: (v) => o.certOptions.push(v),
    z: (v) => (o.serial = serialArg(v)),
    bits: (v) => (o.bits = intArg(v, "--bits")),
    filename: (v) => (o.filename = v),
    type: (v) => (o.type = v),
    comment: (v) => (o.comment = v),
    newpass: (v) => (o.newpass = v),
    pass: (v) => (o.pass = v),
    format: (v) => (o.format = v),
  };
  const flags: Record<string, () => void> = {
    l: () => (o.fingerprint = true),
    L: () => (o.listCert = true),
    p: () => (o.changepass = true),
    y: () => (o.showpub = true),
    e: () => (o.exportKey = true),
    i: () => (o.importKey = true),
    q: () => (o.quiet = true),
    h: () => (o.help = true),
    fingerprint: () => (o.fingerprint = true),
    changepass: () => (o.changepass = true),
    showpub: () => (o.showpub = true),
    quiet: () => (o.quiet = true),
    "no-passphrase": () => (o.noPassphrase = true),
    help: () => (o.help = true),
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg.startsWith("--")) {
      const [name, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
      if (flags[name] !== undefined) flags[name]!();
      else if (valued[name] !== undefined) {
        const v = inline ?? argv[++i];
        if (v === undefined) throw new UsageError(`option --${name} needs a value`);
        valued[name]!(v);
      } else throw new UsageError(`unknown option --${name}`);
      continue;
    }
    if (!arg.startsWith("-") || arg === "-") {
      o.files.push(arg);
      continue;
    }
    // Bundled short options: -lf file, -yf file, -qN ''.
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j]!;
      if (flags[c] !== undefined) flags[c]!();
      else if (valued[c] !== undefined) {
        const rest = arg.slice(j + 1);
        const v = rest !== "" ? rest : argv[++i];
        if (v === undefined) throw new UsageError(`option -${c} needs a value`);
        valued[c]!(v);
        break;
      } else throw new UsageError(`unknown option -${c}`);
    }
  }
  return o;
}

function serialArg(v: string): bigint {
  if (!/^\d+$/.test(v) || BigInt(v) > 0xffff_ffff_ffff_ffffn) throw new UsageError(`-z needs a serial number from 0 to 2^64-1, not ${JSON.stringify(v)}`);
  return BigInt(v);
}

function intArg(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`${name} needs a positive number, not ${JSON.stringify(v)}`);
  return n;
}

const TYPE_LABEL: Record<string, string> = { RSA: "RSA", DSA: "DSA", EC: "ECDSA", Ed25519: "ED25519" };

/** The fingerprint line `ssh-keygen -l` prints: `256 SHA256:… comment (ED25519)`. */
export function fingerprintLine(key: Key, hash: string, comment?: string): string {
  let fp: string;
  if (hash === "md5") fp = "MD5:" + key.fingerprint("md5");
  else if (hash === "sha256") fp = key.fingerprint("sha256");
  else if (hash === "md5-hex" || hash === "sha256-base64") fp = key.fingerprint(hash);
  else throw new UsageError(`unsupported fingerprint hash ${JSON.stringify(hash)}: use sha256 or md5`);
  return `${key.size()} ${fp} ${comment !== undefined && comment !== "" ? comment : "no comment"} (${TYPE_LABEL[key.type()]})`;
}

async function askFile(o: Options, io: IO, question: string, fallback: string): Promise<string> {
  if (o.filename !== undefined) return o.filename;
  const answer = (await io.prompt(`${question} (${fallback}): `, false)).trim();
  return (o.filename = answer === "" ? fallback : answer);
}

/** Loads a private or public key file, asking for the passphrase when it is encrypted and -P was not given. */
async function loadKey(path: string, o: Options, io: IO): Promise<Key> {
  try {
    return Key.fromFile(path, undefined, o.pass);
  } catch (e) {
    if (!(e instanceof EncryptedKeyError) || o.pass !== undefined) throw e;
  }
  o.pass = await io.prompt("Enter passphrase: ", true);
  return Key.fromFile(path, undefined, o.pass);
}

async function newPassphrase(o: Options, io: IO, first: string): Promise<string> {
  if (o.noPassphrase) return "";
  if (o.newpass !== undefined) return o.newpass;
  for (;;) {
    const p1 = await io.prompt(first, true);
    const p2 = await io.prompt("Enter same passphrase again: ", true);
    if (p1 === p2) return p1;
    io.stdout("Passphrases do not match.  Try again.\n");
  }
}

function privateText(key: Key, o: Options, passphrase: string, comment: string | undefined): string {
  const subtype = o.subtype ?? (o.keyFormat?.toUpperCase() === "PEM" ? "PEM" : "v1");
  return key.toString("openssh", { subtype, passphrase: passphrase === "" ? undefined : passphrase, comment, rounds: o.rounds });
}

async function generate(o: Options, io: IO): Promise<number> {
  const type = o.type!.toLowerCase();
  if (type !== "ed25519" && type !== "ecdsa" && type !== "rsa") {
    io.stderr(`Key type was ${o.type}, must be one of ed25519, ecdsa, rsa\n`);
    return 1;
  }
  if (!o.quiet) io.stdout(`Generating public/private ${type} key pair.\n`);
  const key = Key.generate(type, o.bits !== undefined ? { bits: o.bits } : {});
  const path = await askFile(o, io, "Enter file in which to save the key", join(homedir(), ".ssh", `id_${type}`));
  if (existsSync(path)) {
    const yn = await io.prompt(`${path} already exists.\nOverwrite (y/n)? `, false);
    if (!yn.trim().toLowerCase().startsWith("y")) return 1;
  }
  const passphrase = await newPassphrase(o, io, "Enter passphrase (empty for no passphrase): ");
  const comment = o.comment ?? `${userInfo().username}@${hostname()}`;
  writeFileSync(path, privateText(key, o, passphrase, comment), { mode: 0o600 });
  chmodSync(path, 0o600);
  writeFileSync(path + ".pub", key.public().toString("openssh", { comment }) + "\n", { mode: 0o644 });
  if (!o.quiet) {
    io.stdout(`Your identification has been saved in ${path}\nYour public key has been saved in ${path}.pub\nThe key fingerprint is:\n`);
    io.stdout(`${fingerprintLine(key, o.format, comment).replace(/^\d+ /, "")}\n`);
  }
  return 0;
}

/** `-s ca_key -I key_id … key.pub…`: signs each public key file as ssh-keygen does. */
async function signCertificates(o: Options, io: IO): Promise<number> {
  if (o.keyId === undefined) throw new UsageError("-s needs a key id: -I key_id");
  if (o.files.length === 0) throw new UsageError("-s needs the public key files to sign");
  const ca = await loadKey(o.caKey!, o, io);
  if (ca.isPublic()) throw new UsageError(`${o.caKey}: the CA key must be a private key`);
  const principals = o.principals === undefined ? [] : o.principals.split(",").map((p) => p.trim()).filter((p) => p !== "");
  for (const file of o.files) {
    const { path, cert } = signKeyFile(file, {
      ca,
      keyId: o.keyId,
      principals,
      host: o.help,
      serial: o.serial ?? 0n,
      options: o.certOptions,
      now: io.now?.() ?? Date.now() / 1000,
      ...(o.validity !== undefined ? { validity: o.validity } : {}),
      ...(o.type !== undefined ? { signatureAlgorithm: o.type } : {}),
    });
    if (!o.quiet) io.stderr(signedLine(path, cert) + "\n");
  }
  return 0;
}

async function run(o: Options, io: IO): Promise<number> {
  const defaultKey = join(homedir(), ".ssh", "id_rsa");
  if (o.caKey !== undefined) return signCertificates(o, io);
  if (o.listCert) {
    const path = await askFile(o, io, "Enter file in which the key is", defaultKey);
    io.stdout(listCertificate(path, Certificate.fromString(readFileSync(path, "utf8"))));
    return 0;
  }
  if (o.files.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(o.files[0])}`);
  if (o.type !== undefined) return generate(o, io);
  if (o.fingerprint) {
    let path = await askFile(o, io, "Enter file in which the key is", defaultKey);
    if (existsSync(path + ".pub")) path += ".pub";
    let key: Key;
    try {
      key = Key.fromFile(path);
    } catch (e) {
      // A private key without its .pub file: its public half has the same fingerprint.
      if (!(e instanceof EncryptedKeyError)) throw e;
      key = await loadKey(path, o, io);
    }
    io.stdout(fingerprintLine(key, o.format, key.comment) + "\n");
    return 0;
  }
  if (o.changepass) {
    const path = await askFile(o, io, "Enter file in which the key is", defaultKey);
    let key: Key;
    try {
      key = await loadKey(path, o, io);
    } catch (e) {
      io.stderr(`Could not change passphrase: ${(e as Error).message}\n`);
      return 1;
    }
    if (key.isPublic()) {
      io.stderr(`Could not change passphrase: ${path} holds a public key\n`);
      return 1;
    }
    const passphrase = await newPassphrase(o, io, "Enter new passphrase (empty for no passphrase): ");
    const text = privateText(key, o, passphrase, key.comment);
    Key.fromString(text, undefined, passphrase === "" ? undefined : passphrase);
    writeFileSync(path, text, { mode: 0o600 });
    io.stdout("Your identification has been saved with the new passphrase.\n");
    return 0;
  }
  if (o.showpub) {
    const key = await loadKey(await askFile(o, io, "Enter file in which the key is", defaultKey), o, io);
    io.stdout(key.public().toString("openssh", { comment: key.comment }) + "\n");
    return 0;
  }
  if (o.exportKey) {
    const key = (await loadKey(await askFile(o, io, "Enter file in which the key is", defaultKey), o, io)).public();
    const fmt = (o.keyFormat ?? "RFC4716").toUpperCase();
    if (fmt === "RFC4716") {
      const comment = `${key.size()}-bit ${TYPE_LABEL[key.type()]}, converted by ${userInfo().username}@${hostname()} from OpenSSH`;
      io.stdout(key.toString("rfc4716", { comment }));
    } else if (fmt === "PKCS8") io.stdout(key.toString("pem"));
    else if (fmt === "PEM") {
      if (key.type() !== "RSA") throw new BadKeyError(`-m PEM exports RSA public keys only; use -m PKCS8 for ${key.sshType()}`);
      io.stdout(key.keyObject().export({ type: "pkcs1", format: "pem" }).toString());
    } else throw new UsageError(`unsupported export format ${JSON.stringify(o.keyFormat)}: RFC4716, PKCS8 or PEM`);
    return 0;
  }
  if (o.importKey) {
    const path = await askFile(o, io, "Enter file in which the key is", defaultKey);
    const key = await loadKey(path, o, io);
    io.stdout((key.isPublic() ? key.toString("openssh", { comment: "" }) : key.toString("openssh", { subtype: o.subtype ?? "v1", comment: key.comment })).trimEnd() + "\n");
    return 0;
  }
  io.stdout(USAGE);
  return 1;
}

/** Runs ckeygen with `argv` (without the program name); resolves with the exit status. */
export async function main(argv: readonly string[], io: IO): Promise<number> {
  let o: Options;
  try {
    o = parseArgs(argv);
  } catch (e) {
    io.stderr(`ERROR: ${(e as Error).message}\n${USAGE}`);
    return 1;
  }
  // ssh-keygen's -h means a host certificate when signing; elsewhere it is help.
  if (o.help && o.caKey === undefined) {
    io.stdout(USAGE);
    return 0;
  }
  try {
    return await run(o, io);
  } catch (e) {
    if (e instanceof UsageError || e instanceof CertArgumentError) {
      io.stderr(`ERROR: ${e.message}\n`);
      return 1;
    }
    if (e instanceof BadKeyError) {
      io.stderr(`ckeygen: ${o.filename ?? "key"}: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
}

const consoleIO: IO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
  // ^C at a passphrase prompt ends the program as it would have without raw mode.
  prompt: (question, hidden) => readTerminalLine(question, hidden).catch(() => process.exit(130)),
};

if (isMainModule(import.meta.url)) {
  main(process.argv.slice(2), consoleIO).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`ckeygen: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 2;
    },
  );
}
