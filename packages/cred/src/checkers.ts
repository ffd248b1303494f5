/**
 * `twisted.cred.checkers`: objects that check credentials and name the avatar they belong to.
 */
import { readFileSync, statSync } from "node:fs";
import { type Deferred, fail, maybeDeferred, succeed } from "@twisted-ts/internet/defer";
import { Logger } from "@twisted-ts/internet/log";
import {
  IAnonymous,
  IPluggableAuthenticationModules,
  type IPluggableAuthenticationModulesShape,
  IUsernameHashedPassword,
  type IUsernameHashedPasswordShape,
  IUsernamePassword,
  type IUsernamePasswordShape,
  PAM_PROMPT_ECHO_OFF,
  UsernamePassword,
  secretsEqual,
} from "./credentials.js";
import { UnauthorizedLogin } from "./error.js";
import type { InterfaceToken } from "./interfaces.js";

const log = new Logger("twisted-ts.cred.checkers");

/** The avatar id of an authenticated anonymous user (Twisted's empty tuple). */
export const ANONYMOUS: unique symbol = Symbol.for("twisted-ts.cred.ANONYMOUS");

/** What a checker names a user by: usually the username, or {@link ANONYMOUS}. */
export type AvatarId = string | Uint8Array | typeof ANONYMOUS;

/**
 * Twisted's `ICredentialsChecker`: checks credentials providing one of `credentialInterfaces`
 * and returns (or fires a Deferred with) the avatar id, or fails with `UnauthorizedLogin`.
 */
export interface ICredentialsChecker {
  readonly credentialInterfaces: readonly InterfaceToken<unknown>[];
  requestAvatarId(credentials: object): AvatarId | Deferred<AvatarId>;
}

/** Grants anonymous access to anyone presenting `credentials.Anonymous`. */
export class AllowAnonymousAccess implements ICredentialsChecker {
  readonly credentialInterfaces: readonly InterfaceToken<unknown>[] = [IAnonymous];

  requestAvatarId(_credentials: object): Deferred<AvatarId> {
    return succeed<AvatarId>(ANONYMOUS);
  }
}

type PasswordCredentials = IUsernamePasswordShape | IUsernameHashedPasswordShape;

function checkAgainst(credentials: PasswordCredentials, stored: string, avatarId: string): Deferred<AvatarId> {
  return maybeDeferred(() => credentials.checkPassword(stored)).addCallback((matched: boolean): AvatarId => {
    if (!matched) throw new UnauthorizedLogin();
    return avatarId;
  });
}

/**
 * A toy checker with the users in memory, for tests and examples. `new
 * InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" })`.
 */
export class InMemoryUsernamePasswordDatabaseDontUse implements ICredentialsChecker {
  readonly credentialInterfaces: readonly InterfaceToken<unknown>[] = [IUsernamePassword, IUsernameHashedPassword];
  /** Username → password. A Map, so a username like `__proto__` is only ever a username. */
  readonly users: Map<string, string> = new Map();

  constructor(users: Readonly<Record<string, string>> = {}) {
    for (const [u, p] of Object.entries(users)) this.users.set(u, p);
  }

  /** Sets a user's password. */
  addUser(username: string, password: string): void {
    this.users.set(username, password);
  }

  requestAvatarId(credentials: object): Deferred<AvatarId> {
    const c = credentials as PasswordCredentials;
    const stored = this.users.get(c.username);
    if (stored === undefined) return fail(new UnauthorizedLogin());
    return checkAgainst(c, stored, c.username);
  }
}

/** Options of {@link FilePasswordDB}, as Twisted's keyword arguments. */
export interface FilePasswordDBOptions {
  /** Field delimiter (default `:`). */
  delim?: string;
  /** Index of the username field (default 0). */
  usernameField?: number;
  /** Index of the password field (default 1). */
  passwordField?: number;
  /** Compare usernames case-sensitively (default true). */
  caseSensitive?: boolean;
  /**
   * Turns the password from the network into the stored form: `hash(username, password,
   * storedPassword)` must equal the stored password. Without it passwords are stored in clear.
   */
  hash?: (username: string, password: string, stored: string) => string;
  /** Keep the parsed file in memory, reread when its mtime changes (default false). */
  cache?: boolean;
}

/**
 * Twisted's `FilePasswordDB`: a text file of delimited records holding a username and a password
 * (or a hash of it, with `hash`). A file that cannot be read fails every login (and is logged).
 */
export class FilePasswordDB implements ICredentialsChecker {
  readonly filename: string;
  readonly delim: string;
  readonly ufield: number;
  readonly pfield: number;
  readonly caseSensitive: boolean;
  readonly hash: FilePasswordDBOptions["hash"];
  readonly cache: boolean;
  readonly credentialInterfaces: readonly InterfaceToken<unknown>[];
  private credCache: Map<string, string> | undefined = undefined;
  private cacheTimestamp = 0;

  constructor(filename: string, options: FilePasswordDBOptions = {}) {
    this.filename = filename;
    this.delim = options.delim ?? ":";
    this.ufield = options.usernameField ?? 0;
    this.pfield = options.passwordField ?? 1;
    this.caseSensitive = options.caseSensitive ?? true;
    this.hash = options.hash;
    this.cache = options.cache ?? false;
    this.credentialInterfaces =
      this.hash === undefined ? [IUsernamePassword, IUsernameHashedPassword] : [IUsernamePassword];
  }

  /** The `[username, password]` records of the file; throws UnauthorizedLogin when it cannot be read. */
  private loadCredentials(): Array<[string, string]> {
    let text: string;
    try {
      text = readFileSync(this.filename, "utf8");
    } catch (e) {
      log.error("Unable to load credentials db: {e}", { e: String(e) });
      throw new UnauthorizedLogin();
    }
    const out: Array<[string, string]> = [];
    for (const raw of text.split("\n")) {
      const parts = raw.trimEnd().split(this.delim);
      const u = parts[this.ufield];
      const p = parts[this.pfield];
      if (u === undefined || p === undefined) continue;
      out.push([this.caseSensitive ? u : u.toLowerCase(), p]);
    }
    return out;
  }

  /**
   * `[canonical username, stored password]` for `username`; throws a `KeyError`-like
   * UnauthorizedLogin when there is no such user.
   */
  getUser(username: string): [string, string] {
    const u = this.caseSensitive ? username : username.toLowerCase();
    if (this.cache) {
      let mtime = 0;
      try {
        mtime = statSync(this.filename).mtimeMs;
      } catch {
        // loadCredentials logs the failure.
      }
      if (this.credCache === undefined || mtime > this.cacheTimestamp) {
        this.cacheTimestamp = mtime;
        this.credCache = new Map(this.loadCredentials());
      }
      const p = this.credCache.get(u);
      if (p === undefined) throw new UnauthorizedLogin(`no such user`);
      return [u, p];
    }
    for (const [fu, fp] of this.loadCredentials()) if (fu === u) return [fu, fp];
    throw new UnauthorizedLogin(`no such user`);
  }

  requestAvatarId(credentials: object): Deferred<AvatarId> {
    const c = credentials as PasswordCredentials;
    let user: [string, string];
    try {
      user = this.getUser(c.username);
    } catch (e) {
      return fail(e);
    }
    const [u, p] = user;
    if (this.hash !== undefined) {
      if (IUsernamePassword.providedBy(c) && secretsEqual(this.hash(c.username, c.password, p), p)) return succeed<AvatarId>(u);
      return fail(new UnauthorizedLogin());
    }
    return checkAgainst(c, p, u);
  }
}

/** Twisted's other name for {@link FilePasswordDB}. */
export const OnDiskUsernamePasswordDatabase = FilePasswordDB;

/**
 * Checks {@link IPluggableAuthenticationModules} credentials (SSH keyboard-interactive) with a
 * password checker: asks one question, `prompt` with echo off, and checks the answer as a
 * password. `new PAMPasswordChecker(new InMemoryUsernamePasswordDatabaseDontUse({ alice: "x" }))`.
 */
export class PAMPasswordChecker implements ICredentialsChecker {
  readonly credentialInterfaces: readonly InterfaceToken<unknown>[] = [IPluggableAuthenticationModules];
  readonly passwordChecker: ICredentialsChecker;
  readonly prompt: string;

  constructor(passwordChecker: ICredentialsChecker, prompt = "Password: ") {
    this.passwordChecker = passwordChecker;
    this.prompt = prompt;
  }

  requestAvatarId(credentials: object): Deferred<AvatarId> {
    const c = credentials as IPluggableAuthenticationModulesShape;
    return c.pamConversation([[this.prompt, PAM_PROMPT_ECHO_OFF]]).addCallback((responses) => {
      const first = responses[0];
      if (responses.length !== 1 || first === undefined) throw new UnauthorizedLogin("expected one answer");
      return this.passwordChecker.requestAvatarId(new UsernamePassword(c.username, first[0]));
    });
  }
}
