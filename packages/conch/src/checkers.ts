/**
 * `twisted.conch.checkers`: cred checkers for SSH servers. {@link SSHPublicKeyChecker} checks
 * publickey credentials against an authorized keys database: {@link InMemorySSHKeyDB} or
 * {@link UNIXAuthorizedKeysFiles} (`~/.ssh/authorized_keys` with OpenSSH's options parsed).
 *
 * A key accepted from an authorized_keys line carries the line's options on: the checker sets
 * `credentials.keyOptions` to an {@link AuthorizedKeyOptions}; the userauth server passes it to
 * the realm in its mind (`mind.keyOptions`) and, at USERAUTH_SUCCESS, turns it into the
 * transport's `authOptions` (`ssh/authopt`), which the session and connection layers enforce.
 */
import { readFileSync } from "node:fs";
import { BlockList, isIP } from "node:net";
import { join } from "node:path";
import { type Deferred, fail, maybeDeferred } from "@twisted-ts/internet/defer";
import type { Awaitable } from "@twisted-ts/internet/defer";
import { Logger } from "@twisted-ts/internet/log";
import type { AvatarId, ICredentialsChecker } from "@twisted-ts/cred/checkers";
import { ISSHPrivateKey, type ISSHPrivateKeyShape } from "@twisted-ts/cred/credentials";
import { UnauthorizedLogin, UnhandledCredentials } from "@twisted-ts/cred/error";
import { type InterfaceToken, providedBy } from "@twisted-ts/cred/interfaces";
import { NotEnoughAuthentication, ValidPublicKey } from "./error.js";
import { parseEnvironment, parseHostPort } from "./ssh/authopt.js";
import { bytesEqual } from "./ssh/common.js";
import { Certificate, CertificateError, Key } from "./ssh/keys.js";
import { checkUserCertificate, mergeCertificateOptions, signedBy, type UserCertificatePolicy } from "./_certcheck.js";

const log = new Logger("twisted-ts.conch.checkers");

/**
 * The options of an authorized_keys line (sshd(8) "AUTHORIZED_KEYS FILE FORMAT"), applied left
 * to right as sshd does: `restrict` turns every permission off, `pty`, `port-forwarding`, … turn
 * one back on, `no-pty`, … turn one off.
 */
export interface AuthorizedKeyOptions {
  /** `restrict` was given. */
  restrict: boolean;
  /** Allocating a pseudo-terminal is allowed (off with `no-pty` or `restrict`). */
  pty: boolean;
  /** TCP forwarding is allowed (`no-port-forwarding`, `restrict`, `port-forwarding`). */
  portForwarding: boolean;
  /** Agent forwarding is allowed. */
  agentForwarding: boolean;
  /** X11 forwarding is allowed. */
  x11Forwarding: boolean;
  /** ~/.ssh/rc may run. */
  userRc: boolean;
  /** `command="…"`: the only command the key may run. */
  command: string | undefined;
  /** `environment="NAME=value"` entries, in order. */
  environment: string[];
  /** `from="pattern-list"`: client addresses the key may log in from. */
  from: string[] | undefined;
  /** `permitopen="host:port"` destinations for local forwarding; empty means any. */
  permitOpen: string[];
  /** `permitlisten="[host:]port"` for remote forwarding; empty means any. */
  permitListen: string[];
  /** `expiry-time="YYYYMMDD[HHMM[SS]]"`, local time, as sshd reads it. */
  expiryTime: Date | undefined;
  /** `principals="…"` (certificates only; kept for completeness). */
  principals: string[] | undefined;
  /** `tunnel="n"`. */
  tunnel: string | undefined;
  /** `cert-authority`: the key signs certificates; never accepted as a user key here. */
  certAuthority: boolean;
  /** `no-touch-required` / `verify-required` (FIDO keys). */
  noTouchRequired: boolean;
  verifyRequired: boolean;
  /** Every option as written, `[name, value]` (name lower-cased, value unquoted). */
  raw: Array<[name: string, value: string | undefined]>;
}

/** The options of a line that has none: everything allowed. */
export function defaultAuthorizedKeyOptions(): AuthorizedKeyOptions {
  return {
    restrict: false,
    pty: true,
    portForwarding: true,
    agentForwarding: true,
    x11Forwarding: true,
    userRc: true,
    command: undefined,
    environment: [],
    from: undefined,
    permitOpen: [],
    permitListen: [],
    expiryTime: undefined,
    principals: undefined,
    tunnel: undefined,
    certAuthority: false,
    noTouchRequired: false,
    verifyRequired: false,
    raw: [],
  };
}

/** An authorized key and the options of its line. */
export interface AuthorizedKey {
  readonly key: Key;
  readonly options: AuthorizedKeyOptions;
}

/** An authorized_keys line that cannot be used. */
export class AuthorizedKeysParseError extends Error {
  readonly code = "ERR_CONCH_AUTHORIZED_KEYS";
  constructor(message: string) {
    super(message);
    this.name = "AuthorizedKeysParseError";
  }
}

const FLAGS: Readonly<Record<string, (o: AuthorizedKeyOptions) => void>> = {
  restrict: (o) => {
    o.restrict = true;
    o.pty = o.portForwarding = o.agentForwarding = o.x11Forwarding = o.userRc = false;
  },
  "no-pty": (o) => void (o.pty = false),
  pty: (o) => void (o.pty = true),
  "no-port-forwarding": (o) => void (o.portForwarding = false),
  "port-forwarding": (o) => void (o.portForwarding = true),
  "no-agent-forwarding": (o) => void (o.agentForwarding = false),
  "agent-forwarding": (o) => void (o.agentForwarding = true),
  "no-x11-forwarding": (o) => void (o.x11Forwarding = false),
  "x11-forwarding": (o) => void (o.x11Forwarding = true),
  "no-user-rc": (o) => void (o.userRc = false),
  "user-rc": (o) => void (o.userRc = true),
  "cert-authority": (o) => void (o.certAuthority = true),
  "no-touch-required": (o) => void (o.noTouchRequired = true),
  "verify-required": (o) => void (o.verifyRequired = true),
};

/** `value`, once `parse` accepts it: a line sshd would refuse is refused here too. */
function checked(value: string, parse: (v: string) => unknown): string {
  try {
    parse(value);
  } catch (e) {
    throw new AuthorizedKeysParseError(e instanceof Error ? e.message : String(e));
  }
  return value;
}

const VALUED: Readonly<Record<string, (o: AuthorizedKeyOptions, v: string) => void>> = {
  command: (o, v) => void (o.command = v),
  environment: (o, v) => void o.environment.push(checked(v, parseEnvironment)),
  from: (o, v) => void (o.from = v.split(",").filter((p) => p !== "")),
  permitopen: (o, v) => void o.permitOpen.push(checked(v, (x) => parseHostPort(x))),
  permitlisten: (o, v) => void o.permitListen.push(checked(v, (x) => parseHostPort(x, true))),
  principals: (o, v) => void (o.principals = v.split(",")),
  tunnel: (o, v) => {
    if (!/^\d+$/.test(v)) throw new AuthorizedKeysParseError(`bad tunnel ${JSON.stringify(v)}`);
    o.tunnel = v;
  },
  "expiry-time": (o, v) => {
    const m = /^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?$/.exec(v);
    if (m === null) throw new AuthorizedKeysParseError(`bad expiry-time ${JSON.stringify(v)}`);
    const [, y, mo, d, h, mi, s] = m;
    o.expiryTime = new Date(Number(y), Number(mo) - 1, Number(d), Number(h ?? 0), Number(mi ?? 0), Number(s ?? 0));
  },
};

/**
 * Splits an authorized_keys line into its options text (possibly empty) and the key part
 * (`keytype base64 [comment]`). The options end at the first whitespace outside double quotes.
 */
function splitOptions(line: string): [options: string, key: string] {
  if (/^(ssh-|ecdsa-|sk-)/.test(line)) return ["", line];
  let inQuote = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (ch === "\\" && inQuote && line[i + 1] === '"') {
      i++;
      continue;
    }
    if (ch === '"') inQuote = !inQuote;
    else if (!inQuote && (ch === " " || ch === "\t")) return [line.slice(0, i), line.slice(i).trimStart()];
  }
  throw new AuthorizedKeysParseError(inQuote ? "unterminated quote in options" : "no key after the options");
}

/** Parses the options part of an authorized_keys line (`no-pty,command="ls -l",from="10.*"`). */
export function parseAuthorizedKeyOptions(text: string): AuthorizedKeyOptions {
  const o = defaultAuthorizedKeyOptions();
  let i = 0;
  while (i < text.length) {
    const m = /^[A-Za-z0-9-]+/.exec(text.slice(i));
    if (m === null) throw new AuthorizedKeysParseError(`bad option at ${JSON.stringify(text.slice(i))}`);
    const name = m[0].toLowerCase();
    i += m[0].length;
    let value: string | undefined;
    if (text[i] === "=") {
      if (text[i + 1] !== '"') throw new AuthorizedKeysParseError(`option ${name} needs a quoted value`);
      i += 2;
      let v = "";
      for (;;) {
        if (i >= text.length) throw new AuthorizedKeysParseError(`unterminated value for ${name}`);
        const ch = text[i]!;
        if (ch === "\\" && text[i + 1] === '"') {
          v += '"';
          i += 2;
        } else if (ch === '"') {
          i++;
          break;
        } else {
          v += ch;
          i++;
        }
      }
      value = v;
    }
    const flag = FLAGS[name];
    const valued = VALUED[name];
    if (value === undefined && flag !== undefined && Object.hasOwn(FLAGS, name)) flag(o);
    else if (value !== undefined && valued !== undefined && Object.hasOwn(VALUED, name)) valued(o, value);
    else throw new AuthorizedKeysParseError(`unknown option ${JSON.stringify(name)}${value === undefined ? "" : " with a value"}`);
    o.raw.push([name, value]);
    if (i < text.length) {
      if (text[i] !== ",") throw new AuthorizedKeysParseError(`expected "," after ${name}`);
      i++;
    }
  }
  return o;
}

/** Parses one authorized_keys line: options and key. Throws for a line that cannot be used. */
export function parseAuthorizedKeyLine(line: string, parseKey: (data: string) => Key = (d) => Key.fromString(d, "public_openssh")): AuthorizedKey {
  const [opts, rest] = splitOptions(line.trim());
  const options = opts === "" ? defaultAuthorizedKeyOptions() : parseAuthorizedKeyOptions(opts);
  const key = parseKey(rest);
  if (!key.isPublic()) throw new AuthorizedKeysParseError("a private key in authorized_keys");
  return { key, options };
}

/**
 * Twisted's `readAuthorizedKeyFile`: the usable lines of an authorized_keys text. Comments and
 * blank lines are skipped; a line that cannot be parsed is logged and skipped.
 */
export function readAuthorizedKeyFile(text: string, parseKey?: (data: string) => Key): AuthorizedKey[] {
  const out: AuthorizedKey[] = [];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    try {
      out.push(parseAuthorizedKeyLine(line, parseKey));
    } catch (e) {
      log.error("Unable to parse line {line} as a key: {error}", { line: JSON.stringify(line), error: String(e) });
    }
  }
  return out;
}

/** Twisted's `IAuthorizedKeysDB`: the keys (with or without options) a user may log in with. */
export interface IAuthorizedKeysDB {
  getAuthorizedKeys(username: string): Awaitable<Iterable<Key | AuthorizedKey>>;
}

/** Keys in memory: `new InMemorySSHKeyDB({ alice: [key1, key2] })`. No options. */
export class InMemorySSHKeyDB implements IAuthorizedKeysDB {
  private readonly mapping: Map<string, ReadonlyArray<Key | AuthorizedKey>>;

  constructor(mapping: Readonly<Record<string, ReadonlyArray<Key | AuthorizedKey>>> | Map<string, ReadonlyArray<Key | AuthorizedKey>>) {
    this.mapping = mapping instanceof Map ? new Map(mapping) : new Map(Object.entries(mapping));
  }

  getAuthorizedKeys(username: string): ReadonlyArray<Key | AuthorizedKey> {
    return this.mapping.get(username) ?? [];
  }
}

/** One /etc/passwd entry, as much as Conch needs (Python's `pwd.struct_passwd`). */
export interface PasswdEntry {
  readonly pw_name: string;
  readonly pw_uid: number;
  readonly pw_gid: number;
  readonly pw_dir: string;
  readonly pw_shell: string;
}

/** Python's `pwd` module, as far as `getpwnam` goes; throws for an unknown user. */
export interface UserDatabase {
  getpwnam(username: string): PasswdEntry;
}

/** Looks users up in a passwd-format file (`/etc/passwd` by default). */
export class PasswdFile implements UserDatabase {
  constructor(readonly path = "/etc/passwd") {}

  getpwnam(username: string): PasswdEntry {
    for (const line of readFileSync(this.path, "utf8").split("\n")) {
      const f = line.split(":");
      if (f.length >= 7 && f[0] === username) {
        return { pw_name: f[0], pw_uid: Number(f[2]), pw_gid: Number(f[3]), pw_dir: f[5] ?? "", pw_shell: f[6] ?? "" };
      }
    }
    throw new Error(`getpwnam(): name not found: ${JSON.stringify(username)}`);
  }
}

/**
 * Twisted's `UNIXAuthorizedKeysFiles`: the keys in `~/.ssh/authorized_keys` and
 * `~/.ssh/authorized_keys2` of a user from the user database. Unreadable files are logged and
 * skipped; an unknown user has no keys.
 */
export class UNIXAuthorizedKeysFiles implements IAuthorizedKeysDB {
  readonly userdb: UserDatabase;
  readonly parseKey: ((data: string) => Key) | undefined;
  /** Files under the home directory, as sshd's AuthorizedKeysFile. */
  authorizedKeysFiles: string[] = [".ssh/authorized_keys", ".ssh/authorized_keys2"];

  constructor(userdb?: UserDatabase, parseKey?: (data: string) => Key) {
    this.userdb = userdb ?? new PasswdFile();
    this.parseKey = parseKey;
  }

  getAuthorizedKeys(username: string): AuthorizedKey[] {
    let entry: PasswdEntry;
    try {
      entry = this.userdb.getpwnam(username);
    } catch {
      return [];
    }
    const out: AuthorizedKey[] = [];
    for (const rel of this.authorizedKeysFiles) {
      const path = join(entry.pw_dir, rel);
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") log.error("Unable to read {path}: {error}", { path, error: String(e) });
        continue;
      }
      out.push(...readAuthorizedKeyFile(text, this.parseKey));
    }
    return out;
  }
}

/**
 * True when `host` (an IP address) matches the `from=` pattern list: `*` and `?` wildcards,
 * CIDR blocks, `!` negations (a negated match refuses outright), as sshd's `match_host_and_ip`.
 * Host names are not resolved: name patterns only match addresses they spell literally.
 */
export function matchFromPatterns(host: string | undefined, patterns: readonly string[]): boolean {
  if (host === undefined) return false;
  const addr = host.startsWith("::ffff:") && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
  let matched = false;
  for (const raw of patterns) {
    const negated = raw.startsWith("!");
    const pattern = negated ? raw.slice(1) : raw;
    if (matchOne(addr, pattern)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

function matchOne(addr: string, pattern: string): boolean {
  const slash = pattern.indexOf("/");
  if (slash >= 0) {
    const net = pattern.slice(0, slash);
    const bits = Number(pattern.slice(slash + 1));
    const family = isIP(net);
    if (family === 0 || isIP(addr) !== family || !Number.isInteger(bits)) return false;
    const bl = new BlockList();
    try {
      bl.addSubnet(net, bits, family === 4 ? "ipv4" : "ipv6");
    } catch {
      return false;
    }
    return bl.check(addr, family === 4 ? "ipv4" : "ipv6");
  }
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`, "i");
  return re.test(addr);
}

/** A user's authorized keys, and the principal names a certificate may log in with. */
type Entries = [Iterable<Key | AuthorizedKey>, readonly string[]];

/**
 * Twisted's `SSHPublicKeyChecker(keydb)`: publickey credentials whose key the database lists for
 * the user. Unlike Twisted, the key is looked up before a query without signature is answered
 * (only authorized keys get PK_OK). The options of the matching line are enforced where they
 * concern login (`from=`, `expiry-time=`, `cert-authority`) and handed on in
 * `credentials.keyOptions`. User certificates are accepted from {@link trustedUserCAKeys} or
 * `cert-authority` lines, their terms folded into those options (docs/certificates.md).
 */
export class SSHPublicKeyChecker implements ICredentialsChecker {
  readonly credentialInterfaces: readonly InterfaceToken<unknown>[] = [ISSHPrivateKey];
  readonly keydb: IAuthorizedKeysDB;
  /** The time `expiry-time=` and certificate validity windows are compared with. */
  now: () => Date = () => new Date();
  /** CA keys whose user certificates are accepted for every user (sshd's `TrustedUserCAKeys`). */
  trustedUserCAKeys: Key[] = [];
  /**
   * The principal names a user certificate must list one of to log in as `username` (sshd's
   * `AuthorizedPrincipalsFile` / `AuthorizedPrincipalsCommand`); by default the user's own name.
   * Used for {@link trustedUserCAKeys}; a `cert-authority` line's `principals=` overrides it.
   */
  principalsFor: (username: string) => Awaitable<readonly string[]> = (username) => [username];
  /**
   * Keys refused outright (sshd's `RevokedKeys`, as a plain key list): a revoked key, a certificate
   * of a revoked key, and every certificate a revoked CA signed.
   */
  revokedKeys: Key[] = [];
  /** CA signature algorithms accepted (sshd's `CASignatureAlgorithms`); undefined for the default, without `ssh-rsa`. */
  caSignatureAlgorithms: readonly string[] | undefined = undefined;

  constructor(keydb: IAuthorizedKeysDB) {
    this.keydb = keydb;
  }

  requestAvatarId(credentials: object): Deferred<AvatarId> {
    const c = credentials as ISSHPrivateKeyShape;
    let pubKey: Key;
    let cert: Certificate | undefined;
    try {
      if (Certificate.isCertificateBlob(c.blob)) pubKey = (cert = Certificate.fromBlob(c.blob)).key;
      else pubKey = Key.fromString(c.blob, "public_blob");
    } catch (e) {
      log.info("refusing a key from {user}: {error}", { user: c.username, error: (e as Error).message });
      return fail(new UnauthorizedLogin(`bad key: ${String(e)}`));
    }
    const revoked = this.revokedKeys.find((k) => k.equals(pubKey) || (cert !== undefined && k.equals(cert.signatureKey)));
    if (revoked !== undefined) {
      const what = revoked.equals(pubKey) ? "key" : "certificate authority";
      log.info("refusing a {keyType} key from {user}: its {what} {fp} is revoked", { keyType: cert?.certType ?? pubKey.sshType(), user: c.username, what, fp: revoked.fingerprint("sha256") });
      return fail(new UnauthorizedLogin(`the ${what} ${revoked.fingerprint("sha256")} is revoked`));
    }
    return maybeDeferred(() => this.keydb.getAuthorizedKeys(c.username))
      .addCallback((entries: Iterable<Key | AuthorizedKey>): Entries | Deferred<Entries> =>
        cert === undefined ? [entries, []] : maybeDeferred(() => this.principalsFor(c.username)).addCallback((p: readonly string[]): Entries => [entries, p]),
      )
      .addCallback(([entries, principals]: Entries) => {
        const options = cert !== undefined ? this.findCertificateAuthority(cert, entries, principals, c) : this.findKey(pubKey, entries, c);
        if (options === undefined) throw new UnauthorizedLogin(cert !== undefined ? "Certificate not accepted" : "Key not authorized");
        if (c.signature === undefined || c.sigData === undefined) throw new ValidPublicKey();
        if (!pubKey.verify(c.signature, c.sigData)) throw new UnauthorizedLogin("Key signature invalid.");
        c.keyOptions = options;
        return c.username;
      })
      .addErrback<never>((f) => {
        if (f.check(UnauthorizedLogin) !== null || f.check(ValidPublicKey) !== null) return f;
        log.error("Unauthorized login due to internal error: {error}", { error: f.getErrorMessage() });
        throw new UnauthorizedLogin("unable to get avatar id");
      });
  }

  /**
   * The options a user certificate logs in with: signed by a trusted CA key (with
   * {@link principalsFor}), or by the key of a `cert-authority` line in the user's authorized keys
   * (with its `principals=`, else the user's name), narrowed by the certificate's own terms.
   * Every refusal is logged with its reason; none accepting it fails with UnauthorizedLogin saying why.
   */
  private findCertificateAuthority(
    cert: Certificate,
    entries: Iterable<Key | AuthorizedKey>,
    principals: readonly string[],
    c: ISSHPrivateKeyShape,
  ): AuthorizedKeyOptions {
    const policy: UserCertificatePolicy = {
      caSignatureAlgorithms: this.caSignatureAlgorithms,
      now: () => this.now().getTime() / 1000,
    };
    const candidates: Array<[Key, readonly string[], AuthorizedKeyOptions]> = [];
    for (const ca of this.trustedUserCAKeys) if (signedBy(cert, ca)) candidates.push([ca, principals, defaultAuthorizedKeyOptions()]);
    for (const entry of entries) {
      if (entry instanceof Key || !entry.options.certAuthority || !signedBy(cert, entry.key)) continue;
      if (this.lineRefuses(entry.options, c)) continue;
      candidates.push([entry.key, entry.options.principals ?? [c.username], entry.options]);
    }
    const who = { user: c.username, id: cert.keyId, serial: String(cert.serial), ca: cert.signatureKey.fingerprint("sha256") };
    if (candidates.length === 0) {
      log.info("certificate {id} (serial {serial}) for {user} refused: CA {ca} is not trusted", who);
      throw new UnauthorizedLogin(`certificate "${cert.keyId}" refused (untrusted-ca): CA ${who.ca} is not trusted`);
    }
    let refusal: CertificateError | undefined;
    for (const [ca, names, base] of candidates) {
      try {
        checkUserCertificate(cert, ca, names, policy);
        const options = mergeCertificateOptions(base, cert, c.peerHost, matchFromPatterns);
        log.info("accepted certificate {id} (serial {serial}) for {user}, signed by CA {ca}", who);
        return options;
      } catch (e) {
        if (!(e instanceof CertificateError)) throw e;
        log.info("certificate {id} (serial {serial}) for {user} refused ({reason}): {error}", { ...who, reason: e.reason, error: e.message });
        refusal = e;
      }
    }
    // The failure names the reason too, for a checker's caller and the realm's log.
    throw new UnauthorizedLogin(`certificate refused (${refusal?.reason ?? "untrusted-ca"}): ${refusal?.message ?? "no trusted CA"}`);
  }

  /** The login conditions of an authorized_keys line (`expiry-time=`, `from=`) that refuse this attempt, logged. */
  private lineRefuses(options: AuthorizedKeyOptions, c: ISSHPrivateKeyShape): boolean {
    if (options.expiryTime !== undefined && options.expiryTime.getTime() <= this.now().getTime()) {
      log.info("key for {user} expired at {when}", { user: c.username, when: options.expiryTime.toISOString() });
      return true;
    }
    if (options.from !== undefined && !matchFromPatterns(c.peerHost, options.from)) {
      log.info("key for {user} not allowed from {host}", { user: c.username, host: c.peerHost ?? "an unknown address" });
      return true;
    }
    return false;
  }

  private findKey(pubKey: Key, entries: Iterable<Key | AuthorizedKey>, c: ISSHPrivateKeyShape): AuthorizedKeyOptions | undefined {
    for (const entry of entries) {
      const { key, options } = entry instanceof Key ? { key: entry, options: defaultAuthorizedKeyOptions() } : entry;
      if (!bytesEqual(key.blob(), pubKey.blob())) continue;
      if (options.certAuthority || this.lineRefuses(options, c)) continue;
      return options;
    }
    return undefined;
  }
}

/**
 * Twisted's `SSHProtocolChecker`: several checkers, and `areDone(avatarId)` deciding when enough
 * of them succeeded; until then a success fails with `NotEnoughAuthentication`, which the server
 * reports as partial success.
 */
export class SSHProtocolChecker implements ICredentialsChecker {
  readonly checkers: Map<InterfaceToken<unknown>, ICredentialsChecker> = new Map();
  /** Avatar id → the credentials that succeeded for it so far. */
  readonly successfulCredentials: Map<AvatarId, object[]> = new Map();

  get credentialInterfaces(): readonly InterfaceToken<unknown>[] {
    return [...this.checkers.keys()];
  }

  registerChecker(checker: ICredentialsChecker, ...credentialInterfaces: InterfaceToken<unknown>[]): void {
    const ifaces = credentialInterfaces.length > 0 ? credentialInterfaces : checker.credentialInterfaces;
    for (const i of ifaces) this.checkers.set(i, checker);
  }

  requestAvatarId(credentials: object): Deferred<AvatarId> {
    for (const [iface, checker] of this.checkers) {
      if (iface.providedBy(credentials)) {
        return maybeDeferred(() => checker.requestAvatarId(credentials)).addCallback((avatarId: AvatarId) => {
          const done = this.successfulCredentials.get(avatarId) ?? [];
          done.push(credentials);
          this.successfulCredentials.set(avatarId, done);
          if (this.areDone(avatarId)) {
            this.successfulCredentials.delete(avatarId);
            return avatarId;
          }
          throw new NotEnoughAuthentication();
        });
      }
    }
    const names = providedBy(credentials).map((i) => i.name);
    return fail(new UnhandledCredentials(`No checker for ${names.join(", ")}`));
  }

  /** Override: true when the credentials in `successfulCredentials.get(avatarId)` are enough. */
  areDone(_avatarId: AvatarId): boolean {
    return true;
  }
}
