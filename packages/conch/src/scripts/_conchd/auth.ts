/**
 * conchd's checkers: authorized_keys files named by AuthorizedKeysFile, passwords through PAM by
 * Debian's `pamtester` (no native addon), and PermitRootLogin around them all.
 */
import { spawn } from "node:child_process";
import { accessSync, constants, readFileSync, statSync } from "node:fs";
import { delimiter, dirname, isAbsolute, join } from "node:path";
import { Deferred, DeferredSemaphore, fail, maybeDeferred } from "@twisted-ts/internet/defer";
import { Logger } from "@twisted-ts/internet/log";
import type { AvatarId, ICredentialsChecker } from "@twisted-ts/cred/checkers";
import { IUsernamePassword, type IUsernamePasswordShape, ISSHPrivateKey } from "@twisted-ts/cred/credentials";
import { UnauthorizedLogin } from "@twisted-ts/cred/error";
import type { InterfaceToken } from "@twisted-ts/cred/interfaces";
import { type AuthorizedKey, type IAuthorizedKeysDB, readAuthorizedKeyFile } from "../../checkers.js";
import { getpwnam } from "../../_unix/users.js";
import { expandTokens } from "./keywords.js";
import type { PermitRootLogin } from "./config.js";

const log = new Logger("twisted-ts.conchd.auth");

/**
 * sshd's AuthorizedKeysFile: each pattern expanded for the user (`%h`, `%u`, `%U`, `%%`), a
 * relative path taken under the home directory. The files are read on every attempt, so a key
 * added or removed counts from the next login on. Missing files are skipped, unreadable ones
 * logged, and (with {@link strictModes}) ones others could have written refused with a log line.
 */
export class AuthorizedKeysFiles implements IAuthorizedKeysDB {
  /** sshd's StrictModes: skip a file that someone other than the user or root could have written. */
  strictModes = true;

  constructor(
    readonly patterns: readonly string[],
    readonly lookupUser: (name: string) => { home: string; uid: number } | undefined = (n) => getpwnam(n),
  ) {}

  /** The files for `username`, expanded; none for an unknown user. */
  filesFor(username: string): string[] {
    const pw = this.lookupUser(username);
    if (pw === undefined) return [];
    return this.patterns.map((p) => {
      const path = expandTokens(p, { name: username, home: pw.home, uid: pw.uid });
      return isAbsolute(path) ? path : join(pw.home, path);
    });
  }

  getAuthorizedKeys(username: string): AuthorizedKey[] {
    const out: AuthorizedKey[] = [];
    const pw = this.lookupUser(username);
    for (const path of this.filesFor(username)) {
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") log.error("cannot read {path}: {error}", { path, error: (e as Error).message });
        continue;
      }
      const unsafe = this.strictModes && pw !== undefined ? unsafePath(path, pw.uid, pw.home) : undefined;
      if (unsafe !== undefined) {
        log.warn("Authentication refused for {user}: {reason}", { user: username, reason: unsafe });
        continue;
      }
      out.push(...readAuthorizedKeyFile(text));
    }
    return out;
  }
}

/**
 * Why `path` is not safe to take keys from, as sshd's `safe_path` (StrictModes): the file and
 * every folder above it, up to the home folder or `/`, must be owned by root or `uid` and not
 * writable by group or others. Undefined when it is safe.
 */
export function unsafePath(path: string, uid: number, home: string): string | undefined {
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    return `cannot stat ${path}: ${(e as Error).message}`;
  }
  if (!st.isFile()) return `${path} is not a regular file`;
  for (let p = path; ; p = dirname(p)) {
    const s = p === path ? st : statSync(p);
    if ((s.uid !== 0 && s.uid !== uid) || (s.mode & 0o022) !== 0) return `bad ownership or modes for ${p === path ? "file" : "directory"} ${p}`;
    if (p === home || p === "/" || dirname(p) === p) return undefined;
  }
}

/** The first executable `name` on PATH (or in /usr/sbin, /usr/bin), or undefined. */
export function findExecutable(name: string, path: string = process.env["PATH"] ?? ""): string | undefined {
  for (const dir of [...path.split(delimiter), "/usr/sbin", "/usr/bin"]) {
    if (dir === "") continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Seconds a pamtester run may take before it is killed and the attempt fails. */
export const PAMTESTER_TIMEOUT = 30;

/**
 * Checks `IUsernamePassword` credentials against PAM by running
 * `pamtester SERVICE USER authenticate acct_mgmt` (as sshd, the account check too: expired or
 * locked accounts fail). The password goes to pamtester's standard input, never on its command
 * line or in a log; at most `maxConcurrent` run at once and the rest wait their turn. PAM's own
 * delay (pam_unix: 2 s) applies on top of the userauth server's AuthFailureDelay.
 */
export class PamtesterChecker implements ICredentialsChecker {
  readonly credentialInterfaces: readonly InterfaceToken<unknown>[] = [IUsernamePassword];
  private readonly semaphore: DeferredSemaphore;

  constructor(
    readonly pamtester: string,
    readonly service: string,
    maxConcurrent: number,
  ) {
    this.semaphore = new DeferredSemaphore(maxConcurrent);
  }

  requestAvatarId(credentials: object): Deferred<AvatarId> {
    const c = credentials as IUsernamePasswordShape;
    // A name pamtester would read as an option, or one no account has, never reaches PAM.
    if (c.username.startsWith("-") || /[\0\n]/.test(c.username) || getpwnam(c.username) === undefined) {
      return fail(new UnauthorizedLogin("no such user"));
    }
    if (/[\0\n]/.test(c.password)) return fail(new UnauthorizedLogin("password with a line break"));
    return this.semaphore.run(() => this.runPamtester(c.username, c.password)).addCallback((ok: boolean): AvatarId => {
      if (!ok) throw new UnauthorizedLogin("PAM refused the password");
      return c.username;
    });
  }

  private runPamtester(username: string, password: string): Deferred<boolean> {
    const d = new Deferred<boolean>();
    const child = spawn(this.pamtester, [this.service, username, "authenticate", "acct_mgmt"], {
      stdio: ["pipe", "ignore", "pipe"],
      env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" },
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (s: string) => {
      if (stderr.length < 4096) stderr += s;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), PAMTESTER_TIMEOUT * 1000);
    child.on("error", (e) => {
      clearTimeout(timer);
      log.error("cannot run {pamtester}: {error}", { pamtester: this.pamtester, error: e.message });
      if (!d.called) d.callback(false);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      // pamtester prints the prompt and PAM's reason on stderr; the reason is worth a debug line.
      const reason = stderr.replace(/^Password:\s*/, "").trim();
      if (code !== 0) log.debug("pamtester refused {user}: {reason}", { user: username, reason });
      if (!d.called) d.callback(code === 0);
    });
    child.stdin.on("error", () => undefined);
    child.stdin.end(`${password}\n`);
    return d;
  }
}

/** The method a credentials object stands for, as PermitRootLogin sees it. */
function isPublicKey(credentials: object): boolean {
  return ISSHPrivateKey.providedBy(credentials);
}

/**
 * sshd's PermitRootLogin around another checker: for an account with uid 0, `no` refuses
 * everything, `prohibit-password` everything but public keys, `forced-commands-only` everything
 * but public keys whose authorized_keys line has `command=`. Passwords for root are refused before
 * they reach PAM.
 */
export class RootLoginChecker implements ICredentialsChecker {
  constructor(
    readonly inner: ICredentialsChecker,
    readonly permitRootLogin: PermitRootLogin,
    readonly uidOf: (name: string) => number | undefined = (n) => getpwnam(n)?.uid,
  ) {}

  get credentialInterfaces(): readonly InterfaceToken<unknown>[] {
    return this.inner.credentialInterfaces;
  }

  requestAvatarId(credentials: object): AvatarId | Deferred<AvatarId> {
    const username = (credentials as { username?: unknown }).username;
    const root = typeof username === "string" && this.uidOf(username) === 0;
    if (!root || this.permitRootLogin === "yes") return this.inner.requestAvatarId(credentials);
    if (this.permitRootLogin === "no" || !isPublicKey(credentials)) {
      log.info("refused root login for {user}: PermitRootLogin {policy}", { user: username, policy: this.permitRootLogin });
      return fail(new UnauthorizedLogin(`PermitRootLogin ${this.permitRootLogin}`));
    }
    return maybeDeferred(() => this.inner.requestAvatarId(credentials)).addCallback((id: AvatarId) => {
      const command = ((credentials as { keyOptions?: { command?: unknown } }).keyOptions ?? {}).command;
      if (this.permitRootLogin === "forced-commands-only" && typeof command !== "string") {
        log.info("refused root login for {user}: PermitRootLogin forced-commands-only and the key has no command=", { user: username });
        throw new UnauthorizedLogin("PermitRootLogin forced-commands-only");
      }
      return id;
    });
  }
}
