/**
 * conchd's host keys: read from HostKey files, or from a folder where the missing ones are made on
 * first start, as `ssh-keygen -A` does (ed25519, ECDSA P-256, RSA 3072; private files mode 0600).
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { Certificate } from "../../ssh/_keys/certificate.js";
import { Key } from "../../ssh/keys.js";

/** The key files `ssh-keygen -A` makes, in the order they are offered. */
export const HOST_KEY_FILES: ReadonlyArray<{ file: string; make: () => Key }> = [
  { file: "ssh_host_ed25519_key", make: () => Key.generate("ed25519") },
  { file: "ssh_host_ecdsa_key", make: () => Key.generate("ecdsa", { bits: 256 }) },
  { file: "ssh_host_rsa_key", make: () => Key.generate("rsa", { bits: 3072 }) },
];

/**
 * The host key folder when none is given: /etc/ssh for root (where sshd keeps its keys), else
 * `$XDG_STATE_HOME/twisted-ts/conchd` (default `~/.local/state/twisted-ts/conchd`).
 */
export function defaultHostKeyDirectory(uid: number | undefined = process.getuid?.(), env: NodeJS.ProcessEnv = process.env): string {
  if (uid === 0) return "/etc/ssh";
  const state = env["XDG_STATE_HOME"] !== undefined && env["XDG_STATE_HOME"] !== "" ? env["XDG_STATE_HOME"] : join(env["HOME"] ?? homedir(), ".local", "state");
  return join(state, "twisted-ts", "conchd");
}

/** Host keys and certificates, loaded. */
export interface HostKeys {
  readonly privateKeys: Record<string, Key>;
  readonly certificates: Certificate[];
  /** The files the keys came from, for the log. */
  readonly files: string[];
}

/**
 * Makes the missing keys of {@link HOST_KEY_FILES} in `dir` (the folder mode 0700 if made), each
 * with its `.pub`; returns the files it wrote.
 */
export function generateMissingHostKeys(dir: string): string[] {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const made: string[] = [];
  for (const { file, make } of HOST_KEY_FILES) {
    const path = join(dir, file);
    if (existsSync(path)) continue;
    const key = make();
    writeFileSync(path, key.toString("openssh"), { mode: 0o600, flag: "wx" });
    chmodSync(path, 0o600);
    writeFileSync(`${path}.pub`, `${key.public().toString("openssh")} conchd\n`, { mode: 0o644 });
    made.push(path);
  }
  return made;
}

/**
 * Reads the host keys: the `hostKey` files if any are given (each must load, and be readable by
 * its owner only, as sshd wants), else the files of {@link HOST_KEY_FILES} in `dir`; then the certificates, each of which must certify one of them.
 * Throws an Error naming the file on any problem.
 */
export function loadHostKeys(hostKey: readonly string[], dir: string, certificates: readonly string[]): HostKeys {
  const files = hostKey.length > 0 ? [...hostKey] : HOST_KEY_FILES.map((f) => join(dir, f.file)).filter((p) => existsSync(p));
  const privateKeys: Record<string, Key> = {};
  for (const path of files) {
    let key: Key;
    try {
      // As sshd: a private host key others can read is refused, not used.
      const mode = statSync(path).mode & 0o777;
      if ((mode & 0o077) !== 0) throw new Error(`its mode ${mode.toString(8).padStart(4, "0")} lets others read it; chmod 600 it`);
      key = Key.fromString(readFileSync(path));
    } catch (e) {
      throw new Error(`host key ${path}: ${(e as Error).message}`);
    }
    if (key.isPublic()) throw new Error(`host key ${path} is a public key; HostKey names the private key file`);
    privateKeys[key.sshType()] ??= key;
  }
  if (Object.keys(privateKeys).length === 0) throw new Error(`no host keys in ${dir} (run conchd once with write access there to generate them, or set HostKey)`);
  const certs: Certificate[] = [];
  for (const path of certificates) {
    let cert: Certificate;
    try {
      cert = Certificate.fromString(readFileSync(path, "utf8"));
    } catch (e) {
      throw new Error(`host certificate ${path}: ${(e as Error).message}`);
    }
    if (!Object.values(privateKeys).some((k) => k.public().equals(cert.key))) throw new Error(`host certificate ${path} certifies none of the host keys`);
    certs.push(cert);
  }
  return { privateKeys, certificates: certs, files };
}
