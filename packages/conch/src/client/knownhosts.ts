/**
 * OpenSSH `known_hosts` files, as `twisted.conch.client.knownhosts`: read plain and hashed
 * (`|1|salt|hash`) entries, host patterns (`*`, `?`, `!`, `[host]:port`, comma lists), the
 * `@revoked` and `@cert-authority` markers and comments; check a host's key; add entries (hashed by
 * default) and save them by appending. Plus {@link verifyHostKey}, the check clients run on the
 * server's key with OpenSSH's policies: `strict`, `accept-new` and `ask`, and which accepts a host
 * certificate signed by a CA that an `@cert-authority` line names for the host.
 *
 * A line that cannot be parsed is kept as it is (and written back unchanged) with a warning in
 * the log; it never makes the file unreadable.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { Deferred, fail, maybeDeferred, succeed } from "@twisted-ts/internet/defer";
import { Logger } from "@twisted-ts/internet/log";
import { HostKeyChanged, HostKeyNotVerifiableError, HostKeyRevoked, InvalidEntry, UserRejectedKey } from "../error.js";
import { CERT_SIGNATURE_ALGORITHMS, Certificate, CertificateError, Key } from "../ssh/keys.js";

export { HostKeyChanged, HostKeyNotVerifiableError, HostKeyRevoked, InvalidEntry, UserRejectedKey };

const logger = new Logger("twisted-ts.conch.knownhosts");

/** The prefix of a hashed host field (OpenSSH's HASH_MAGIC). */
export const HASH_MAGIC = "|1|";

/** Markers a line may start with. */
export type Marker = "@revoked" | "@cert-authority";

/** What every entry of a known_hosts file offers (Twisted's `IKnownHostEntry`). */
export interface KnownHostEntry {
  /** `@revoked`, `@cert-authority`, or undefined for an ordinary entry. */
  readonly marker: Marker | undefined;
  /** The key type named on the line (`ssh-ed25519`, …); undefined for an unparsed line. */
  readonly keyType: string | undefined;
  readonly publicKey: Key | undefined;
  readonly comment: string | undefined;
  /** 1-based line in the file it was read from; undefined for an entry added and not yet saved. */
  lineno: number | undefined;
  matchesHost(hostname: string): boolean;
  matchesKey(key: Key): boolean;
  toString(): string;
}

/** The name OpenSSH looks a host up by: `host`, or `[host]:port` off port 22. */
export function hostKeyName(host: string, port?: number): string {
  return port === undefined || port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "i");
}

/**
 * OpenSSH's `match_hostname`: true when some pattern of the comma list matches and no negated
 * (`!pattern`) one does.
 */
export function matchHostPatterns(hostname: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const raw of patterns) {
    const negated = raw.startsWith("!");
    const pattern = negated ? raw.slice(1) : raw;
    if (pattern === "") continue;
    if (globToRegExp(pattern).test(hostname)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** HMAC-SHA1 of the host name keyed with the salt: the hash of a hashed entry. */
export function hashHostname(salt: Uint8Array, hostname: string): Uint8Array {
  return new Uint8Array(createHmac("sha1", salt).update(hostname).digest());
}

abstract class BaseEntry implements KnownHostEntry {
  lineno: number | undefined = undefined;
  constructor(
    readonly marker: Marker | undefined,
    readonly keyType: string,
    readonly publicKey: Key,
    readonly comment: string | undefined,
  ) {}

  matchesKey(key: Key): boolean {
    const a = this.publicKey.blob();
    const b = key.public().blob();
    return a.length === b.length && timingSafeEqual(a, b);
  }

  abstract matchesHost(hostname: string): boolean;
  protected abstract hostField(): string;

  toString(): string {
    const parts = [this.hostField(), this.keyType, Buffer.from(this.publicKey.blob()).toString("base64")];
    if (this.marker !== undefined) parts.unshift(this.marker);
    if (this.comment !== undefined && this.comment !== "") parts.push(this.comment);
    return parts.join(" ");
  }
}

/** An entry naming its hosts in clear: `host1,host2,*.example.com ssh-ed25519 AAAA… comment`. */
export class PlainEntry extends BaseEntry {
  readonly hostnames: readonly string[];
  constructor(hostnames: readonly string[], keyType: string, publicKey: Key, comment?: string, marker?: Marker) {
    super(marker, keyType, publicKey, comment);
    this.hostnames = hostnames;
  }

  /** Parses a plain line; throws {@link InvalidEntry} (or BadKeyError) when it is not one. */
  static fromString(line: string): PlainEntry {
    const f = splitLine(line);
    return new PlainEntry(f.hostField.split(","), f.keyType, f.key, f.comment, f.marker);
  }

  matchesHost(hostname: string): boolean {
    return matchHostPatterns(hostname, this.hostnames);
  }

  protected hostField(): string {
    return this.hostnames.join(",");
  }
}

/** An entry whose host is hidden as `|1|base64(salt)|base64(HMAC-SHA1(salt, host))` (`ssh-keygen -H`). */
export class HashedEntry extends BaseEntry {
  readonly salt: Uint8Array;
  readonly hostHash: Uint8Array;
  constructor(salt: Uint8Array, hostHash: Uint8Array, keyType: string, publicKey: Key, comment?: string, marker?: Marker) {
    super(marker, keyType, publicKey, comment);
    this.salt = salt;
    this.hostHash = hostHash;
  }

  static fromString(line: string): HashedEntry {
    const f = splitLine(line);
    const parts = f.hostField.split("|");
    if (parts.length !== 4 || parts[0] !== "" || parts[1] !== "1") throw new InvalidEntry(`a hashed host must look like |1|salt|hash, found ${JSON.stringify(f.hostField)}`);
    const salt = strictBase64(parts[2]!, "salt");
    const hash = strictBase64(parts[3]!, "hash");
    if (salt.length !== 20 || hash.length !== 20) throw new InvalidEntry(`a hashed host's salt and hash are 20 bytes each (found ${salt.length} and ${hash.length})`);
    return new HashedEntry(salt, hash, f.keyType, f.key, f.comment, f.marker);
  }

  matchesHost(hostname: string): boolean {
    return timingSafeEqual(hashHostname(this.salt, hostname), this.hostHash);
  }

  protected hostField(): string {
    return `${HASH_MAGIC}${Buffer.from(this.salt).toString("base64")}|${Buffer.from(this.hostHash).toString("base64")}`;
  }
}

/** A comment, blank line, or a line that could not be parsed: kept verbatim, matches nothing. */
export class UnparsedEntry implements KnownHostEntry {
  readonly marker = undefined;
  readonly keyType = undefined;
  readonly publicKey = undefined;
  readonly comment = undefined;
  lineno: number | undefined = undefined;
  constructor(readonly line: string) {}
  matchesHost(): boolean {
    return false;
  }
  matchesKey(): boolean {
    return false;
  }
  toString(): string {
    return this.line;
  }
}

function strictBase64(s: string, what: string): Uint8Array {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0) throw new InvalidEntry(`the ${what} is not valid base64`);
  return new Uint8Array(Buffer.from(s, "base64"));
}

function splitLine(line: string): { marker: Marker | undefined; hostField: string; keyType: string; key: Key; comment: string | undefined } {
  const fields = line.trim().split(/[ \t]+/);
  let marker: Marker | undefined;
  if (fields[0]?.startsWith("@")) {
    const m = fields.shift()!;
    if (m !== "@revoked" && m !== "@cert-authority") throw new InvalidEntry(`unknown marker ${JSON.stringify(m)} (@revoked or @cert-authority)`);
    marker = m;
  }
  if (fields.length < 3) throw new InvalidEntry("a known_hosts line needs a host, a key type and base64 key data");
  const [hostField, keyType, b64] = fields as [string, string, string];
  const key = Key.fromString(strictBase64(b64, "key data"), "blob");
  if (key.sshType() !== keyType) throw new InvalidEntry(`the line says ${keyType} but its key is ${key.sshType()}`);
  const comment = fields.slice(3).join(" ");
  return { marker, hostField, keyType, key, comment: comment === "" ? undefined : comment };
}

/** Parses one known_hosts line: a HashedEntry, a PlainEntry, or (comments, blanks, damage) an UnparsedEntry. */
export function parseEntry(line: string): KnownHostEntry {
  const t = line.trim();
  if (t === "" || t.startsWith("#")) return new UnparsedEntry(line);
  const hostField = t.startsWith("@") ? (t.split(/[ \t]+/)[1] ?? "") : (t.split(/[ \t]+/)[0] ?? "");
  return hostField.startsWith(HASH_MAGIC) ? HashedEntry.fromString(line) : PlainEntry.fromString(line);
}

/** How a {@link KnownHostsFile} asks the user and tells them things (Twisted's ConsoleUI interface). */
export interface UI {
  /** Asks a yes/no question; fires with the answer. */
  prompt(text: string): Deferred<boolean>;
  warn(text: string): void;
}

/** A structured `~/.ssh/known_hosts` (Twisted's `KnownHostsFile`). */
export class KnownHostsFile {
  /** Entries added and not yet saved. */
  private added: KnownHostEntry[] = [];
  private fileEntries: KnownHostEntry[] = [];
  /** When true, `save()` overwrites the file instead of appending. */
  private clobber = true;

  /** An empty file that `save()` will overwrite; use {@link fromPath} to read an existing one. */
  constructor(readonly savePath: string) {}

  /** Reads `path` (a missing file is an empty one); new entries are appended to it by `save()`. */
  static fromPath(path: string): KnownHostsFile {
    const f = new KnownHostsFile(path);
    f.clobber = false;
    if (existsSync(path)) f.load(readFileSync(path, "utf8"));
    return f;
  }

  private load(text: string): void {
    const lines = text.split(/\r?\n/);
    if (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    lines.forEach((line, i) => {
      let entry: KnownHostEntry;
      try {
        entry = parseEntry(line);
      } catch (e) {
        logger.warn("{path}:{lineno}: skipping a known_hosts line that cannot be read: {reason}", { path: this.savePath, lineno: i + 1, reason: (e as Error).message });
        entry = new UnparsedEntry(line);
      }
      entry.lineno = i + 1;
      this.fileEntries.push(entry);
    });
  }

  /** Every entry: the ones added (not yet saved) first, then the file's, as Twisted's `iterentries`. */
  *iterEntries(): IterableIterator<KnownHostEntry> {
    yield* this.added;
    yield* this.fileEntries;
  }

  [Symbol.iterator](): IterableIterator<KnownHostEntry> {
    return this.iterEntries();
  }

  /**
   * True when an entry for `hostname` (`host` or `[host]:port`) has `key`; false when no entry of
   * this key type names the host. Throws {@link HostKeyChanged} (with the line number) when one
   * names a different key, and {@link HostKeyRevoked} when the key is marked `@revoked`.
   */
  hasHostKey(hostname: string, key: Key): boolean {
    const name = hostname.toLowerCase();
    for (const e of this.iterEntries()) {
      if (e.marker === "@revoked" && e.matchesKey(key)) {
        throw new HostKeyRevoked(`the ${key.sshType()} host key ${key.fingerprint("sha256")} is marked @revoked on line ${e.lineno ?? 0} of ${this.savePath}: do not connect`, e.lineno ?? 0, this.savePath);
      }
    }
    for (const e of this.iterEntries()) {
      if (e.marker !== undefined || e.keyType !== key.sshType() || !e.matchesHost(name)) continue;
      if (e.matchesKey(key)) return true;
      const where = e.lineno === undefined ? "an entry added in this session" : `line ${e.lineno} of ${this.savePath}`;
      throw new HostKeyChanged(
        `the ${key.sshType()} host key of ${hostname} has changed (${where} has a different key; the server sent ${key.fingerprint("sha256")}). ` +
          "Someone could be eavesdropping (a man-in-the-middle attack), or the host key was replaced. " +
          `If the change is expected, remove the old entry (ssh-keygen -R ${JSON.stringify(hostname)} -f ${this.savePath}).`,
        e.lineno ?? 0,
        this.savePath,
      );
    }
    return false;
  }

  /** The CA keys `@cert-authority` lines name for `hostname` (`host` or `[host]:port`). */
  certAuthoritiesFor(hostname: string): Key[] {
    const name = hostname.toLowerCase();
    const out: Key[] = [];
    for (const e of this.iterEntries()) if (e.marker === "@cert-authority" && e.publicKey !== undefined && e.matchesHost(name)) out.push(e.publicKey);
    return out;
  }

  /**
   * Checks a host certificate as OpenSSH's `check_host_cert`: false when no `@cert-authority` line
   * names its CA for `hostname` (the caller falls back to the plain key); true when it is valid for
   * `principal` (the host name as the user typed it) at `now` (Unix seconds). Throws
   * {@link HostKeyRevoked} when the key or the CA is `@revoked`, and `CertificateError` with the
   * reason when the CA is trusted but the certificate is not valid.
   */
  checkHostCertificate(hostname: string, cert: Certificate, principal: string, now?: number): boolean {
    for (const e of this.iterEntries()) {
      if (e.marker !== "@revoked") continue;
      const which = e.matchesKey(cert.key) ? "host key" : e.matchesKey(cert.signatureKey) ? "certificate authority" : undefined;
      if (which === undefined) continue;
      throw new HostKeyRevoked(
        `the ${which} ${(which === "host key" ? cert.key : cert.signatureKey).fingerprint("sha256")} of the host certificate "${cert.keyId}" is marked @revoked on line ${e.lineno ?? 0} of ${this.savePath}: do not connect`,
        e.lineno ?? 0,
        this.savePath,
      );
    }
    const cas = this.certAuthoritiesFor(hostname);
    if (!cas.some((ca) => ca.equals(cert.signatureKey))) return false;
    cert.check({ type: "host", principal: principal.toLowerCase(), trustedCAs: cas, ...(now !== undefined ? { now } : {}) });
    logger.info("accepted host certificate {id} (serial {serial}) for {host}, signed by CA {ca}", {
      id: cert.keyId,
      serial: String(cert.serial),
      host: hostname,
      ca: cert.signatureKey.fingerprint("sha256"),
    });
    return true;
  }

  /** Adds an entry for `hostname` (hashed unless `hashed: false`); `save()` writes it. */
  addHostKey(hostname: string, key: Key, options: { hashed?: boolean; comment?: string; marker?: Marker } = {}): KnownHostEntry {
    const pub = key.public();
    let entry: KnownHostEntry;
    if (options.hashed === false) {
      entry = new PlainEntry([hostname], pub.sshType(), pub, options.comment, options.marker);
    } else {
      const salt = new Uint8Array(randomBytes(20));
      entry = new HashedEntry(salt, hashHostname(salt, hostname.toLowerCase()), pub.sshType(), pub, options.comment, options.marker);
    }
    this.added.push(entry);
    return entry;
  }

  /** Writes the added entries: appended to the file read by fromPath, or as a new file. */
  save(): void {
    mkdirSync(dirname(this.savePath), { recursive: true });
    const text = this.added.map((e) => e.toString() + "\n").join("");
    if (this.clobber) {
      writeFileSync(this.savePath, text, { mode: 0o644 });
    } else {
      let prefix = "";
      if (existsSync(this.savePath)) {
        const old = readFileSync(this.savePath);
        if (old.length > 0 && old[old.length - 1] !== 0x0a) prefix = "\n";
      }
      appendFileSync(this.savePath, prefix + text, { mode: 0o644 });
    }
    const base = this.fileEntries.length;
    this.added.forEach((e, i) => (e.lineno = base + i + 1));
    this.fileEntries.push(...this.added);
    this.added = [];
    this.clobber = false;
  }

  /**
   * Twisted's `KnownHostsFile.verifyHostKey(ui, hostname, ip, key)`: fires true when the key is
   * known (adding the IP address when only the name was); asks `ui` about an unknown key, saving it
   * on yes and failing with {@link UserRejectedKey} on no; fails with {@link HostKeyChanged} when
   * the key differs.
   */
  verifyHostKey(ui: UI, hostname: string, ip: string, key: Key): Deferred<boolean> {
    return maybeDeferred(() => this.hasHostKey(hostname, key)).addCallback((known: boolean) => {
      if (known) {
        if (ip !== "" && ip !== hostname && !this.hasHostKey(ip, key)) {
          ui.warn(`Warning: Permanently added the ${key.type()} host key for IP address '${ip}' to the list of known hosts.`);
          this.addHostKey(ip, key);
          this.save();
        }
        return succeed(true);
      }
      return ui.prompt(unknownHostPrompt(hostname, ip, key)).addCallback((yes: boolean) => {
        if (!yes) throw new UserRejectedKey();
        this.addHostKey(hostname, key);
        if (ip !== "" && ip !== hostname) this.addHostKey(ip, key);
        this.save();
        return true;
      });
    });
  }
}

function unknownHostPrompt(hostname: string, ip: string, key: Key): string {
  const type = key.type() === "EC" ? "ECDSA" : key.type();
  return (
    `The authenticity of host '${hostname} (${ip})' can't be established.\n` +
    `${type} key fingerprint is ${key.fingerprint("sha256")}.\n` +
    "Are you sure you want to continue connecting (yes/no)? "
  );
}

/** The streams a {@link ConsoleUI} talks through. */
export interface Console {
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
}

/**
 * Twisted's `ConsoleUI`: asks yes/no questions on a console. `opener` gives the streams (standard
 * input and standard error by default); an answer other than yes or no asks again, and the end of
 * the input answers no.
 */
export class ConsoleUI implements UI {
  constructor(private readonly opener: () => Console = () => ({ input: process.stdin, output: process.stderr })) {}

  prompt(text: string): Deferred<boolean> {
    const d = new Deferred<boolean>();
    const { input, output } = this.opener();
    output.write(text);
    let buf = "";
    const done = (answer: boolean): void => {
      input.removeListener("data", onData);
      input.removeListener("end", onEnd);
      input.pause?.();
      d.callback(answer);
    };
    const onData = (chunk: Buffer | string): void => {
      buf += chunk.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const answer = buf.slice(0, nl).trim().toLowerCase();
        buf = buf.slice(nl + 1);
        if (answer === "yes") return done(true);
        if (answer === "no") return done(false);
        output.write("Please type 'yes' or 'no': ");
      }
    };
    const onEnd = (): void => done(false);
    input.on("data", onData);
    input.on("end", onEnd);
    input.resume?.();
    return d;
  }

  warn(text: string): void {
    this.opener().output.write(text + "\n");
  }
}

/** OpenSSH's StrictHostKeyChecking choices: `strict` (yes), `accept-new`, and `ask`. */
export type HostKeyPolicy = "strict" | "accept-new" | "ask";

export interface VerifyHostKeyOptions {
  /** The known_hosts file (a path is read with {@link KnownHostsFile.fromPath}). */
  knownHosts: KnownHostsFile | string;
  /** The host name the user asked for. */
  hostname: string;
  /** The port, when not 22 (entries are then `[host]:port`). */
  port?: number;
  /** The address actually connected to, recorded alongside the name (as OpenSSH's CheckHostIP). */
  ip?: string;
  /** `ask` by default, as OpenSSH. */
  policy?: HostKeyPolicy;
  /** Asks and warns for `ask` (a {@link ConsoleUI} by default) and warns for `accept-new`. */
  ui?: UI;
  /** Now in Unix seconds, for host certificates' validity; the wall clock when absent. */
  now?: () => number;
}

/**
 * The host key algorithms to offer `hostname`: with an `@cert-authority` line for it, the
 * certificate algorithms first (as OpenSSH does), then `algorithms`; otherwise `algorithms` alone.
 */
export function hostKeyAlgorithmsFor(knownHosts: KnownHostsFile, hostname: string, port: number | undefined, algorithms: readonly string[]): string[] {
  if (knownHosts.certAuthoritiesFor(hostKeyName(hostname, port)).length === 0) return [...algorithms];
  const certs = Object.keys(CERT_SIGNATURE_ALGORITHMS).filter((a) => algorithms.includes(CERT_SIGNATURE_ALGORITHMS[a]!));
  return [...certs, ...algorithms.filter((a) => !certs.includes(a))];
}

/**
 * The host key check a client runs on the server's key (the transport's `verifyHostKey`): fires
 * true when the key may be used; fails with {@link HostKeyChanged} when known_hosts has another key
 * for the host (under every policy), with {@link HostKeyRevoked} for a revoked key, and for an
 * unknown key: `strict` fails with HostKeyNotVerifiableError; `accept-new` records the key and
 * accepts it; `ask` asks the UI and records it on yes (UserRejectedKey on no).
 */
export function verifyHostKey(key: Key | Certificate | Uint8Array, options: VerifyHostKeyOptions): Deferred<boolean> {
  let k: Key;
  let file: KnownHostsFile;
  const name = hostKeyName(options.hostname, options.port);
  try {
    const cert = key instanceof Certificate ? key : key instanceof Uint8Array && Certificate.isCertificateBlob(key) ? Certificate.fromBlob(key) : undefined;
    file = typeof options.knownHosts === "string" ? KnownHostsFile.fromPath(options.knownHosts) : options.knownHosts;
    if (cert !== undefined && file.checkHostCertificate(name, cert, options.hostname, options.now?.())) return succeed(true);
    // A certificate whose CA is not named for the host is checked as its plain key, as OpenSSH does.
    k = cert !== undefined ? cert.key : key instanceof Uint8Array ? Key.fromString(key, "blob") : (key as Key).public();
  } catch (e) {
    if (e instanceof CertificateError) {
      logger.info("host certificate for {host} refused: {error}", { host: name, error: e.message });
    }
    return fail(e);
  }
  const ip = options.ip !== undefined ? hostKeyName(options.ip, options.port) : "";
  const policy = options.policy ?? "ask";
  const ui = options.ui ?? (policy === "ask" ? new ConsoleUI() : undefined);
  if (policy === "ask") return file.verifyHostKey(ui!, name, ip === "" ? name : ip, k);
  return maybeDeferred(() => {
    if (file.hasHostKey(name, k)) return true;
    if (policy === "strict") {
      throw new HostKeyNotVerifiableError(
        `no ${k.sshType()} host key is known for ${name} and strict host key checking is on (server key ${k.fingerprint("sha256")}); add it to ${file.savePath} to connect`,
      );
    }
    file.addHostKey(name, k);
    if (ip !== "" && ip !== name && !file.hasHostKey(ip, k)) file.addHostKey(ip, k);
    file.save();
    ui?.warn(`Warning: Permanently added '${name}' (${k.sshType()}) to the list of known hosts.`);
    return true;
  });
}
