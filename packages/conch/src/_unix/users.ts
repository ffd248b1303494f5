/**
 * Which Unix account a login becomes. The Unix realm never guesses: a login name maps to a passwd
 * entry (by default through /etc/passwd) or the login is refused, and a server that is not root
 * serves only the account it runs as.
 */
import { readFileSync } from "node:fs";
import { UnauthorizedLogin } from "@twisted-ts/cred/error";
import { Logger } from "@twisted-ts/internet/log";
import { isExecutable } from "./runas.js";

const log = new Logger("twisted-ts.conch.unix");

/** One /etc/passwd entry: the account a session runs as. */
export interface PasswdEntry {
  /** The account's name: `USER`, `LOGNAME` and the mail spool of its sessions. */
  name: string;
  uid: number;
  /** The primary group; the supplementary groups come from the group database (initgroups(3)). */
  gid: number;
  /** The home directory: `HOME` and the working directory of every process. */
  home: string;
  /** The login shell: it runs every command (`shell -c command`) and interactive session. */
  shell: string;
}

/** Maps a login name to the account it runs as, or undefined to refuse the login. */
export type UserLookup = (name: string) => PasswdEntry | undefined;

/** The passwd entry of `username`, from /etc/passwd, or undefined. */
export function getpwnam(username: string, passwdPath = "/etc/passwd"): PasswdEntry | undefined {
  let text: string;
  try {
    text = readFileSync(passwdPath, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 7 || f[0] !== username) continue;
    const uid = Number(f[2]);
    const gid = Number(f[3]);
    // A damaged line must not become uid 0 (Number("") is 0) or NaN.
    if (!/^\d+$/.test(f[2] ?? "") || !/^\d+$/.test(f[3] ?? "")) return undefined;
    return { name: username, uid, gid, home: f[5] || "/", shell: f[6] || "/bin/sh" };
  }
  return undefined;
}

/** Why the Unix realm refused a login. */
export type UnixUserRefusal = "unknown-user" | "not-root" | "bad-shell";

/**
 * The Unix realm refused a login although the credentials were good: the name is not an account
 * here, or the server is not root and the account is not its own. A cred `UnauthorizedLogin`, so
 * userauth answers FAILURE and counts the attempt.
 */
export class UnixUserRefused extends UnauthorizedLogin {
  override readonly code: string = "ERR_CONCH_UNIX_USER_REFUSED";
  constructor(
    readonly reason: UnixUserRefusal,
    readonly username: string,
    message: string,
  ) {
    super(message);
    this.name = "UnixUserRefused";
  }
}

function refuse(reason: UnixUserRefusal, username: string, message: string): never {
  log.warn("login refused: {message}", { message });
  throw new UnixUserRefused(reason, username, message);
}

/**
 * The account `username` logs in as, through `lookup`. Refuses (logging why, at warn) a name
 * `lookup` does not know; when `serverUid` is not 0, any account but the server's own (without
 * root the server cannot change uid, and running one user's session as another is worse than
 * refusing it); and, as sshd's `allowed_user`, an account whose shell does not exist or is not
 * executable (a common way to lock an account; it never falls back to /bin/sh).
 */
export function resolveUnixUser(
  username: string,
  lookup: UserLookup,
  serverUid: number | undefined,
  shellRuns: (path: string) => boolean = isExecutable,
): PasswdEntry {
  const entry = lookup(username);
  if (entry === undefined) {
    return refuse("unknown-user", username, `no such user ${JSON.stringify(username)}: the Unix realm only serves accounts its lookupUser knows`);
  }
  if (serverUid !== undefined && serverUid !== 0 && entry.uid !== serverUid) {
    return refuse(
      "not-root",
      username,
      `the server is not running as root (uid ${serverUid}) and can only serve its own user; refusing ${JSON.stringify(username)} (uid ${entry.uid})`,
    );
  }
  if (!entry.shell.startsWith("/") || !shellRuns(entry.shell)) {
    return refuse("bad-shell", username, `user ${JSON.stringify(username)} not allowed because shell ${entry.shell} does not exist or is not executable`);
  }
  return entry;
}
