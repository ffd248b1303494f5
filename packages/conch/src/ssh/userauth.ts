/**
 * `twisted.conch.ssh.userauth`: the `ssh-userauth` service (RFC 4252), client and server, with
 * the publickey (RFC 4252 §7, RFC 8332 SHA-2 RSA signatures), password (§8) and
 * keyboard-interactive (RFC 4256) methods.
 *
 * The server checks credentials through a cred `Portal` (the factory's `portal`): the methods it
 * offers follow the credentials interfaces the portal has checkers for.
 */
import { Deferred, fail, maybeDeferred, succeed } from "@twisted-ts/internet/defer";
import type { Awaitable } from "@twisted-ts/internet/defer";
import { Failure } from "@twisted-ts/internet/failure";
import { Logger } from "@twisted-ts/internet/log";
import {
  IPluggableAuthenticationModules,
  ISSHPrivateKey,
  IUsernamePassword,
  PAM_PROMPT_ECHO_ON,
  PluggableAuthenticationModules,
  SSHPrivateKey,
  UsernamePassword,
  type PAMMessage,
  type PAMResponse,
} from "@twisted-ts/cred/credentials";
import { UnauthorizedLogin, isUnauthorized } from "@twisted-ts/cred/error";
import { InterfaceToken } from "@twisted-ts/cred/interfaces";
import type { LoginResult, Portal } from "@twisted-ts/cred/portal";
import { NS, SSHReader, SSHWriter, bytesEqual, concatBytes, decodeUtf8 } from "./common.js";
import {
  ConchError,
  DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
  DISCONNECT_PROTOCOL_ERROR,
  IgnoreAuthentication,
  MalformedFieldError,
  NoMoreAuthMethodsError,
  NotEnoughAuthentication,
  ShortReadError,
  ValidPublicKey,
} from "../error.js";
import { Key, keyTypeForSignatureAlgorithm } from "./keys.js";
import { type MessageTable, SSHService, type ServiceClock } from "./service.js";

const fallbackLog = new Logger("twisted-ts.conch.userauth");

export const MSG_USERAUTH_REQUEST = 50;
export const MSG_USERAUTH_FAILURE = 51;
export const MSG_USERAUTH_SUCCESS = 52;
export const MSG_USERAUTH_BANNER = 53;
/** 60 while publickey is in progress (RFC 4252 §7). */
export const MSG_USERAUTH_PK_OK = 60;
/** 60 while password is in progress (RFC 4252 §8). */
export const MSG_USERAUTH_PASSWD_CHANGEREQ = 60;
/** 60 while keyboard-interactive is in progress (RFC 4256 §3.2). */
export const MSG_USERAUTH_INFO_REQUEST = 60;
/** 61 while keyboard-interactive is in progress (RFC 4256 §3.4). */
export const MSG_USERAUTH_INFO_RESPONSE = 61;

/** The messages whose meaning does not depend on the method in progress. */
export const messages: MessageTable = {
  [MSG_USERAUTH_REQUEST]: "MSG_USERAUTH_REQUEST",
  [MSG_USERAUTH_FAILURE]: "MSG_USERAUTH_FAILURE",
  [MSG_USERAUTH_SUCCESS]: "MSG_USERAUTH_SUCCESS",
  [MSG_USERAUTH_BANNER]: "MSG_USERAUTH_BANNER",
};

/**
 * Numbers 60–79 belong to the method in progress (RFC 4252 §6): this table is the one place they
 * are resolved. The client reads it with the method of its last request, the server with the
 * method whose exchange is pending.
 */
export const METHOD_MESSAGES: Readonly<Record<string, MessageTable>> = {
  publickey: { [MSG_USERAUTH_PK_OK]: "MSG_USERAUTH_PK_OK" },
  password: { [MSG_USERAUTH_PASSWD_CHANGEREQ]: "MSG_USERAUTH_PASSWD_CHANGEREQ" },
  "keyboard-interactive": {
    [MSG_USERAUTH_INFO_REQUEST]: "MSG_USERAUTH_INFO_REQUEST",
    [MSG_USERAUTH_INFO_RESPONSE]: "MSG_USERAUTH_INFO_RESPONSE",
  },
};

/** The name of message `num` (60–79) while `method` is in progress, or undefined. */
export function methodMessageName(method: string | undefined, num: number): string | undefined {
  if (method === undefined || !Object.hasOwn(METHOD_MESSAGES, method)) return undefined;
  return METHOD_MESSAGES[method]?.[num];
}

/** The longest username the server looks up; longer ones fail without reaching the portal. */
export const MAX_USERNAME_LENGTH = 1024;
/** Requests a client may send ahead while one is being checked; more ends the connection. */
export const MAX_QUEUED_REQUESTS = 8;
/** Prompts a keyboard-interactive INFO_REQUEST may carry (client and server side). */
export const MAX_INFO_PROMPTS = 64;

/**
 * The token the server asks the realm for. Conch's `avatar.ts` re-exports it as `IConchUser`;
 * a realm answers with `[IConchUserToken, avatar, logout]`.
 */
export const IConchUserToken = new InterfaceToken<unknown>("IConchUser");

function dispatchMethodMessage(service: SSHService, method: string | undefined, num: number, packet: Uint8Array): boolean {
  const name = methodMessageName(method, num);
  if (name === undefined) return false;
  const fn = (service as unknown as Record<string, unknown>)[`ssh_${name.slice(4)}`];
  if (typeof fn !== "function") return false;
  (fn as (p: Uint8Array) => void).call(service, packet);
  return true;
}

/** What the server passes as the `mind` of `portal.login`, so a realm can see how the user got in. */
export interface UserAuthMind {
  /** The username as sent (UTF-8 decoded). */
  readonly username: string;
  /** The method that completed the login. */
  readonly method: string;
  /** The credentials that were checked. */
  readonly credentials: object;
  /**
   * What the accepting checker attached to publickey credentials: Conch's checkers put the
   * parsed authorized_keys options (`checkers.AuthorizedKeyOptions`) here.
   */
  readonly keyOptions: unknown;
  /** The client's host address. */
  readonly peerHost: string | undefined;
}

/**
 * Twisted's `SSHUserAuthServer`. Started by the transport for an `ssh-userauth` service request;
 * authenticates through `transport.factory.portal`, then starts the requested service.
 */
export class SSHUserAuthServer extends SSHService {
  override name = "ssh-userauth";
  override protocolMessages: MessageTable = messages;
  /** Seconds the client has to log in (Twisted wrote `10 * 60 * 60`, meaning ten minutes). */
  loginTimeout = 10 * 60;
  /** Failed attempts allowed; the next one ends the connection. "none" does not count. */
  attemptsBeforeDisconnect = 20;
  /**
   * Seconds before a failed password, keyboard-interactive or signed publickey attempt is
   * answered, counted from when it arrived (the publickey query without signature is not delayed).
   */
  passwordDelay = 1;
  /** The timer source; the transport's clock when unset. */
  clock: ServiceClock | undefined = undefined;
  /** Text sent as SSH_MSG_USERAUTH_BANNER before the first answer; undefined for none. */
  banner: string | undefined = undefined;
  /** Signature algorithms accepted for publickey (SHA-1 `ssh-rsa` and DSA are left out). */
  publicKeyAlgorithms: readonly string[] = [
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "rsa-sha2-512",
    "rsa-sha2-256",
  ];
  /** The interfaces asked of the realm. */
  avatarInterfaces: InterfaceToken<unknown>[] = [IConchUserToken];
  /** Credentials interface → SSH method name. Methods are offered in this order. */
  interfaceToMethod: Map<InterfaceToken<unknown>, string> = new Map<InterfaceToken<unknown>, string>([
    [ISSHPrivateKey, "publickey"],
    [IUsernamePassword, "password"],
    [IPluggableAuthenticationModules, "keyboard-interactive"],
  ]);

  /** Methods offered to the client. */
  supportedAuthentications: string[] = [];
  /** Methods that gave partial success for the current user and service. */
  authenticatedWith: string[] = [];
  loginAttempts = 0;
  /** The raw username of the last request. */
  user: Uint8Array | undefined = undefined;
  nextService: string | undefined = undefined;
  /** The method of the request being handled. */
  method: string | undefined = undefined;
  portal: Portal | undefined = undefined;
  /** The transport's logger once attached (log lines follow the connection), ours before. */
  protected get log(): Logger {
    return this.transport?.logger ?? fallbackLog;
  }
  private loginTimer: { cancel(): void; active(): boolean } | undefined = undefined;
  private busy = false;
  private queued: Uint8Array[] = [];
  private bannerSent = false;
  private stopped = false;
  private succeeded = false;
  private pamPending: { d: Deferred<PAMResponse[]>; prompts: number } | undefined = undefined;

  private getClock(): ServiceClock {
    return this.clock ?? this.requireTransport().clock;
  }

  override serviceStarted(): void {
    const t = this.requireTransport();
    const portal = t.factory?.portal;
    if (portal === undefined || portal === null) throw new ConchError("SSHUserAuthServer: the factory has no portal");
    this.portal = portal;
    const ifaces = portal.listCredentialsInterfaces();
    this.supportedAuthentications = [];
    for (const [iface, method] of this.interfaceToMethod) {
      if (ifaces.some((i) => i.isOrExtends(iface)) && !this.supportedAuthentications.includes(method)) {
        this.supportedAuthentications.push(method);
      }
    }
    // RFC 4252 §8: never take a password over an unencrypted link.
    if (!t.isEncrypted("in")) {
      this.supportedAuthentications = this.supportedAuthentications.filter((m) => m !== "password" && m !== "keyboard-interactive");
    }
    this.loginTimer = this.getClock().callLater(this.loginTimeout, () => this.timeoutAuthentication());
  }

  override serviceStopped(): void {
    this.stopped = true;
    if (this.loginTimer?.active()) this.loginTimer.cancel();
    this.loginTimer = undefined;
    const pam = this.pamPending;
    this.pamPending = undefined;
    if (pam !== undefined) pam.d.errback(new ConchError("connection lost during keyboard-interactive"));
  }

  /** The client took longer than `loginTimeout`: disconnect. */
  timeoutAuthentication(): void {
    this.loginTimer = undefined;
    this.log.info("authentication timed out for {peer}", { peer: this.peerHost() ?? "?" });
    this.requireTransport().sendDisconnect(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "you took too long");
  }

  private peerHost(): string | undefined {
    try {
      const p = this.transport?.getPeer();
      return p !== undefined && "host" in p ? p.host : undefined;
    } catch {
      return undefined;
    }
  }

  override packetReceived(messageNum: number, packet: Uint8Array): void {
    if (messageNum >= 60 && messageNum <= 79) {
      const inProgress = this.pamPending !== undefined ? "keyboard-interactive" : undefined;
      if (dispatchMethodMessage(this, inProgress, messageNum, packet)) return;
    }
    super.packetReceived(messageNum, packet);
  }

  /**
   * `string user, string service, string method, method-specific fields` (RFC 4252 §5).
   * Requests are handled one at a time; one sent ahead waits for the answer to the previous.
   */
  ssh_USERAUTH_REQUEST(packet: Uint8Array): void {
    if (this.succeeded) return;
    if (this.pamPending !== undefined) {
      // RFC 4256 §3.4: a new request abandons a keyboard-interactive exchange.
      const pam = this.pamPending;
      this.pamPending = undefined;
      pam.d.errback(new AbandonedAttempt());
    }
    if (this.busy) {
      if (this.queued.length >= MAX_QUEUED_REQUESTS) {
        this.log.warn("too many authentication requests queued from {peer}", { peer: this.peerHost() ?? "?" });
        this.requireTransport().sendDisconnect(DISCONNECT_PROTOCOL_ERROR, "too many queued authentication requests");
        return;
      }
      this.queued.push(packet);
      return;
    }
    this.handleRequest(packet);
  }

  private handleRequest(packet: Uint8Array): void {
    const t = this.requireTransport();
    let user: Uint8Array;
    let nextService: string;
    let method: string;
    let rest: Uint8Array;
    try {
      const r = new SSHReader(packet);
      user = r.string();
      nextService = decodeUtf8(r.string(), "service name");
      method = decodeUtf8(r.string(), "method name");
      rest = r.rest();
    } catch (e) {
      this.log.warn("malformed USERAUTH_REQUEST from {peer}: {error}", { peer: this.peerHost() ?? "?", error: String(e) });
      t.sendDisconnect(DISCONNECT_PROTOCOL_ERROR, "malformed USERAUTH_REQUEST");
      return;
    }
    if (this.user === undefined || !bytesEqual(user, this.user) || nextService !== this.nextService) {
      this.authenticatedWith = []; // RFC 4252 §5: a change of user or service resets the state.
    }
    this.user = user;
    this.nextService = nextService;
    this.method = method;
    if (!this.bannerSent) {
      this.bannerSent = true;
      const banner = this.getBanner();
      if (banner !== undefined) t.sendPacket(MSG_USERAUTH_BANNER, concatBytes(NS(banner), NS("")));
    }
    // Secrets and signatures are answered no sooner than passwordDelay after they arrived.
    const delayUntil =
      method === "password" || method === "keyboard-interactive" || (method === "publickey" && rest[0] === 1)
        ? this.getClock().seconds() + this.passwordDelay
        : undefined;
    this.busy = true;
    const d = this.tryAuth(method, user, rest);
    d.addCallback((result: LoginResult<unknown>) => this.cbFinishedAuth(result, method))
      .addErrback((f: Failure) => this.ebMaybeBadAuth(f, method))
      .addErrback((f: Failure) => this.ebBadAuth(f, method, delayUntil))
      .addBoth(() => {
        this.busy = false;
        const next = this.queued.shift();
        if (next !== undefined && !this.stopped && !this.succeeded) this.handleRequest(next);
      });
  }

  /** The banner to send; `banner` by default. */
  getBanner(): string | undefined {
    return this.banner;
  }

  /**
   * Checks one request: `auth_<method>` for an offered method, a failure otherwise. Fires with
   * the login result, or fails (UnauthorizedLogin, NotEnoughAuthentication, IgnoreAuthentication).
   */
  tryAuth(kind: string, user: Uint8Array, data: Uint8Array): Deferred<LoginResult<unknown>> {
    this.log.debug("{user} trying auth {kind}", { user: JSON.stringify(Buffer.from(user).toString("latin1")), kind });
    if (!this.supportedAuthentications.includes(kind)) {
      return fail(kind === "none" ? new IgnoreNone() : new ConchError(`unsupported authentication method ${JSON.stringify(kind)}`));
    }
    if (user.length > MAX_USERNAME_LENGTH) return fail(new UnauthorizedLogin("username too long"));
    let username: string;
    try {
      username = decodeUtf8(user, "username");
    } catch {
      return fail(new UnauthorizedLogin("username is not valid UTF-8"));
    }
    try {
      switch (kind) {
        case "publickey":
          return this.auth_publickey(username, data);
        case "password":
          return this.auth_password(username, data);
        case "keyboard-interactive":
          return this.auth_keyboard_interactive(username, data);
        default:
          return fail(new ConchError(`bad auth type: ${kind}`));
      }
    } catch (e) {
      if (e instanceof ShortReadError || e instanceof MalformedFieldError) return fail(new UnauthorizedLogin(`malformed ${kind} request: ${e.message}`));
      return fail(e);
    }
  }

  private mind(username: string, method: string, credentials: object): UserAuthMind {
    const peerHost = this.peerHost();
    return {
      username,
      method,
      credentials,
      peerHost,
      get keyOptions(): unknown {
        return (credentials as { keyOptions?: unknown }).keyOptions;
      },
    };
  }

  private login(credentials: object, username: string, method: string): Deferred<LoginResult<unknown>> {
    const portal = this.portal;
    if (portal === undefined) return fail(new ConchError("no portal"));
    return portal.login(credentials, this.mind(username, method, credentials), ...this.avatarInterfaces) as Deferred<LoginResult<unknown>>;
  }

  /**
   * `boolean has-signature, string algorithm, string key blob [, string signature]`
   * (RFC 4252 §7). Without a signature a key the checker accepts gets PK_OK; with one the
   * signature must cover `session id, MSG_USERAUTH_REQUEST, user, service, "publickey", TRUE,
   * algorithm, blob`.
   */
  auth_publickey(username: string, packet: Uint8Array): Deferred<LoginResult<unknown>> {
    const r = new SSHReader(packet);
    const hasSig = r.boolean();
    const algName = decodeUtf8(r.string(), "algorithm name");
    const blob = r.string();
    const signature = hasSig ? r.string() : undefined;
    let key: Key;
    try {
      key = Key.fromString(blob);
    } catch (e) {
      this.log.info("unsupported key type {alg} or bad key: {error}", { alg: algName, error: String(e) });
      return fail(new UnauthorizedLogin(`Unsupported key type ${algName} or bad key`));
    }
    if (!this.publicKeyAlgorithms.includes(algName) || keyTypeForSignatureAlgorithm(algName) !== key.sshType()) {
      return fail(new UnauthorizedLogin(`signature algorithm ${algName} not accepted for a ${key.sshType()} key`));
    }
    const credentials = (sigData: Uint8Array | undefined, sig: Uint8Array | undefined) => {
      const c = new SSHPrivateKey(username, algName, blob, sigData, sig);
      c.peerHost = this.peerHost();
      return c;
    };
    if (signature !== undefined) {
      // The signature blob names its algorithm; it must be the one requested (RFC 8332 §3.2).
      const sigAlg = decodeUtf8(new SSHReader(signature).string(), "signature algorithm");
      if (sigAlg !== algName) return fail(new UnauthorizedLogin(`signature algorithm ${sigAlg} does not match ${algName}`));
      const sigData = concatBytes(
        NS(this.requireTransport().sessionID),
        Uint8Array.of(MSG_USERAUTH_REQUEST),
        NS(this.user ?? new Uint8Array(0)),
        NS(this.nextService ?? ""),
        NS("publickey"),
        Uint8Array.of(1),
        NS(algName),
        NS(blob),
      );
      return this.login(credentials(sigData, signature), username, "publickey");
    }
    return this.login(credentials(undefined, undefined), username, "publickey").addErrback<never>((f: Failure) => {
      f.trap(ValidPublicKey);
      this.sendPacket(MSG_USERAUTH_PK_OK, concatBytes(NS(algName), NS(blob)));
      return new Failure(new IgnoreAuthentication("sent PK_OK"));
    });
  }

  /** `boolean FALSE, string password` (RFC 4252 §8); a password change (TRUE) is refused. */
  auth_password(username: string, packet: Uint8Array): Deferred<LoginResult<unknown>> {
    const r = new SSHReader(packet);
    const change = r.boolean();
    const password = decodeUtf8(r.string(), "password");
    if (change) return fail(new UnauthorizedLogin("password change is not supported"));
    return this.login(new UsernamePassword(username, password), username, "password");
  }

  /**
   * `string language tag, string submethods` (RFC 4256 §3.1): the checker converses with the
   * client through INFO_REQUEST / INFO_RESPONSE.
   */
  auth_keyboard_interactive(username: string, packet: Uint8Array): Deferred<LoginResult<unknown>> {
    const r = new SSHReader(packet);
    r.string(); // language tag (deprecated)
    r.string(); // submethods: a hint we do not use
    const c = new PluggableAuthenticationModules(username, (msgs) => this.pamConversation(msgs));
    return this.login(c, username, "keyboard-interactive");
  }

  /**
   * Sends the conversation's prompts as one INFO_REQUEST: `string name, string instruction,
   * string language, int num-prompts, (string prompt, boolean echo)*` (RFC 4256 §3.2). Info and
   * error messages become the instruction.
   */
  private pamConversation(items: readonly PAMMessage[]): Deferred<PAMResponse[]> {
    if (this.pamPending !== undefined) return fail(new ConchError("only one keyboard-interactive question at a time"));
    if (this.stopped) return fail(new ConchError("connection lost"));
    const prompts = items.filter(([, kind]) => kind === 1 || kind === 2);
    const notes = items.filter(([, kind]) => kind === 3 || kind === 4).map(([m]) => m);
    if (items.some(([, kind]) => kind < 1 || kind > 4)) return fail(new ConchError("bad PAM message kind"));
    if (prompts.length > MAX_INFO_PROMPTS) return fail(new ConchError("too many prompts"));
    const w = new SSHWriter().string("").string(notes.join("\n")).string("").uint32(prompts.length);
    for (const [prompt, kind] of prompts) w.string(prompt).boolean(kind === PAM_PROMPT_ECHO_ON);
    const d = new Deferred<PAMResponse[]>();
    this.pamPending = { d, prompts: prompts.length };
    this.sendPacket(MSG_USERAUTH_INFO_REQUEST, w.finish());
    return d;
  }

  /** `int num-responses, string response*` (RFC 4256 §3.4): one answer per prompt asked. */
  ssh_USERAUTH_INFO_RESPONSE(packet: Uint8Array): void {
    const pending = this.pamPending;
    if (pending === undefined) return;
    this.pamPending = undefined;
    try {
      const r = new SSHReader(packet);
      const n = r.uint32();
      if (n !== pending.prompts) throw new UnauthorizedLogin(`${n} responses to ${pending.prompts} prompts`);
      const responses: PAMResponse[] = [];
      for (let i = 0; i < n; i++) responses.push([decodeUtf8(r.string(), "response"), 0]);
      r.end("INFO_RESPONSE");
      pending.d.callback(responses);
    } catch (e) {
      pending.d.errback(isUnauthorized(e) ? e : new UnauthorizedLogin(`bad INFO_RESPONSE: ${String(e)}`));
    }
  }

  private cbFinishedAuth(result: LoginResult<unknown>, method: string): void {
    const [, avatar, logout] = result;
    const t = this.requireTransport();
    if (this.stopped) {
      logout();
      return;
    }
    t.avatar = avatar;
    t.logoutFunction = logout;
    const service = t.factory?.getService(t, this.nextService ?? "");
    if (service === undefined) {
      t.avatar = undefined;
      t.logoutFunction = undefined;
      logout();
      throw new ConchError(`could not get next service: ${this.nextService ?? ""}`);
    }
    this.succeeded = true;
    this.queued = [];
    if (this.loginTimer?.active()) this.loginTimer.cancel();
    this.loginTimer = undefined;
    this.log.info("{user} authenticated with {method}", { user: this.userForLog(), method });
    t.sendPacket(MSG_USERAUTH_SUCCESS, new Uint8Array(0));
    t.setService(new service());
  }

  private userForLog(): string {
    return JSON.stringify(this.user === undefined ? "" : Buffer.from(this.user).toString("latin1"));
  }

  private failurePacket(partial: boolean): Uint8Array {
    const methods = this.supportedAuthentications.filter((m) => !this.authenticatedWith.includes(m));
    return new SSHWriter().nameList(methods).boolean(partial).finish();
  }

  private ebMaybeBadAuth(reason: Failure, method: string): void {
    reason.trap(NotEnoughAuthentication);
    if (!this.authenticatedWith.includes(method)) this.authenticatedWith.push(method);
    if (!this.stopped) this.sendPacket(MSG_USERAUTH_FAILURE, this.failurePacket(true));
  }

  private ebBadAuth(reason: Failure, method: string, delayUntil: number | undefined): Deferred<void> | void {
    if (this.stopped) return;
    if (reason.check(IgnoreNone) !== null) {
      this.sendPacket(MSG_USERAUTH_FAILURE, this.failurePacket(false));
      return;
    }
    if (reason.check(IgnoreAuthentication) !== null) return;
    const abandoned = reason.check(AbandonedAttempt) !== null;
    const peer = this.peerHost() ?? "?";
    if (isUnauthorized(reason.value) || reason.check(ConchError) !== null || abandoned) {
      this.log.info("{user} from {peer} failed {method}: {reason}", {
        user: this.userForLog(),
        peer,
        method,
        reason: reason.getErrorMessage(),
      });
    } else {
      this.log.failure("error checking {method} for {user}", reason, "error", { method, user: this.userForLog() });
    }
    this.loginAttempts += 1;
    if (this.loginAttempts > this.attemptsBeforeDisconnect) {
      this.log.warn("too many failed authentications from {peer}", { peer });
      this.requireTransport().sendDisconnect(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "too many bad auths");
      return;
    }
    if (abandoned) return;
    const wait = delayUntil === undefined ? 0 : delayUntil - this.getClock().seconds();
    if (wait <= 0) {
      this.sendPacket(MSG_USERAUTH_FAILURE, this.failurePacket(false));
      return;
    }
    const d = new Deferred<void>();
    this.getClock().callLater(wait, () => {
      if (!this.stopped) this.sendPacket(MSG_USERAUTH_FAILURE, this.failurePacket(false));
      d.callback(undefined);
    });
    return d;
  }
}

/** Internal: the "none" method, answered with the list of methods and never counted. */
class IgnoreNone extends Error {}

/** Internal: a keyboard-interactive exchange dropped by a new request; counted, not answered. */
class AbandonedAttempt extends Error {
  constructor() {
    super("keyboard-interactive abandoned by a new request");
  }
}

/** What `getPublicKey` may give: a Key, a public key blob or OpenSSH line, or undefined for "no more". */
export type PublicKeyLike = Key | Uint8Array | string | undefined;

/**
 * Twisted's `SSHUserAuthClient(user, instance)`: tries the methods the server offers, in
 * `preferredOrder`, asking the overridable `get*` methods for keys, passwords and answers; on
 * success starts `instance` (the connection service). Subclass it as the Conch client howto does.
 */
export class SSHUserAuthClient extends SSHService {
  override name = "ssh-userauth";
  override protocolMessages: MessageTable = messages;
  /** Methods to try first, in order; others the server offers come after. */
  preferredOrder: string[] = ["publickey", "password", "keyboard-interactive"];
  /** The user to log in as. */
  readonly user: string | Uint8Array;
  /** The service to start once authenticated (usually an `SSHConnection`). */
  readonly instance: SSHService;
  /** Methods that gave partial success. */
  authenticatedWith: string[] = [];
  /** Keys offered so far, in order. */
  triedPublicKeys: Key[] = [];
  lastPublicKey: Key | undefined = undefined;
  /** The signature algorithm used with `lastPublicKey`. */
  lastSignatureAlgorithm: string | undefined = undefined;
  /** The method of the last request sent: it decides what messages 60–79 mean. */
  lastAuth: string | undefined = undefined;
  /** Methods given up on because our side could not go on (a prompt was cancelled). */
  skippedMethods: string[] = [];
  /**
   * keyboard-interactive rounds to try before moving on (OpenSSH's NumberOfPasswordPrompts);
   * password tries end when `getPassword` gives undefined.
   */
  maxKeyboardInteractiveAttempts = 3;
  private keyboardInteractiveAttempts = 0;
  /** The transport's logger once attached (log lines follow the connection), ours before. */
  protected get log(): Logger {
    return this.transport?.logger ?? fallbackLog;
  }
  private finished = false;
  private waiters: Deferred<void>[] = [];
  private oldPassword: string | undefined = undefined;

  constructor(user: string | Uint8Array, instance: SSHService) {
    super();
    this.user = user;
    this.instance = instance;
  }

  override serviceStarted(): void {
    this.authenticatedWith = [];
    this.triedPublicKeys = [];
    this.lastPublicKey = undefined;
    this.askForAuth("none", new Uint8Array(0));
  }

  override serviceStopped(): void {
    if (!this.finished) this.finish(new ConchError("the connection ended before authentication finished"));
  }

  /**
   * A Deferred that fires when authentication succeeds, or fails with `NoMoreAuthMethodsError`
   * when every method failed (or the error that ended the connection first).
   */
  whenDone(): Deferred<void> {
    const d = new Deferred<void>();
    if (this.finished) d.errback(new ConchError("authentication already finished"));
    else this.waiters.push(d);
    return d;
  }

  private finish(error: Error | undefined): void {
    this.finished = true;
    const waiters = this.waiters;
    this.waiters = [];
    for (const d of waiters) {
      if (error === undefined) d.callback(undefined);
      else d.errback(error);
    }
  }

  /** Sends `string user, string service, string kind, extraData` (RFC 4252 §5). */
  askForAuth(kind: string, extraData: Uint8Array): void {
    this.lastAuth = kind;
    this.sendPacket(MSG_USERAUTH_REQUEST, concatBytes(NS(this.user), NS(this.instance.name), NS(kind), extraData));
  }

  override packetReceived(messageNum: number, packet: Uint8Array): void {
    if (messageNum >= 60 && messageNum <= 79) {
      if (!dispatchMethodMessage(this, this.lastAuth, messageNum, packet)) {
        // Twisted: a method message we cannot place restarts with "none".
        this.log.info("message {num} makes no sense during {method}", { num: messageNum, method: this.lastAuth ?? "none" });
        this.askForAuth("none", new Uint8Array(0));
      }
      return;
    }
    super.packetReceived(messageNum, packet);
  }

  /** No payload (RFC 4252 §5.1): start the next service. */
  ssh_USERAUTH_SUCCESS(_packet: Uint8Array): void {
    if (this.finished) return;
    this.finish(undefined);
    this.requireTransport().setService(this.instance);
  }

  /**
   * `name-list methods, boolean partial success` (RFC 4252 §5.1). Tries the offered methods in
   * `preferredOrder`, leaving out those that gave partial success; when none is left, disconnects
   * with NO_MORE_AUTH_METHODS_AVAILABLE.
   */
  ssh_USERAUTH_FAILURE(packet: Uint8Array): Deferred<void> | undefined {
    let methods: string[];
    let partial: boolean;
    try {
      const r = new SSHReader(packet);
      methods = r.nameList();
      partial = r.boolean();
    } catch (e) {
      this.requireTransport().sendDisconnect(DISCONNECT_PROTOCOL_ERROR, "malformed USERAUTH_FAILURE");
      this.finish(e instanceof Error ? e : new ConchError(String(e)));
      return undefined;
    }
    if (partial && this.lastAuth !== undefined && !this.authenticatedWith.includes(this.lastAuth)) {
      this.authenticatedWith.push(this.lastAuth);
    }
    const rank = (m: string) => {
      const i = this.preferredOrder.indexOf(m);
      return i < 0 ? this.preferredOrder.length : i;
    };
    const canContinue = methods
      .filter((m) => m !== "none" && !this.authenticatedWith.includes(m) && !this.skippedMethods.includes(m))
      .map((m, i) => ({ m, i }))
      .sort((a, b) => rank(a.m) - rank(b.m) || a.i - b.i)
      .map(({ m }) => m);
    this.log.debug("can continue with: {methods}", { methods: canContinue.join(",") });
    return this.cbUserauthFailure(false, canContinue[Symbol.iterator]());
  }

  private cbUserauthFailure(tried: boolean, iterator: Iterator<string>): Deferred<void> | undefined {
    if (tried) return undefined;
    const next = iterator.next();
    if (next.done === true) {
      this.requireTransport().sendDisconnect(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "no more authentication methods available");
      const error = new NoMoreAuthMethodsError();
      this.finish(error);
      this.authenticationFailed(error);
      return undefined;
    }
    return maybeDeferred(() => this.tryAuth(next.value)).addCallback((ok) => this.cbUserauthFailure(ok, iterator));
  }

  /**
   * Called once when every method failed, after the disconnect. The default logs it; `whenDone()`
   * also fails with the same error.
   */
  authenticationFailed(error: NoMoreAuthMethodsError): void {
    this.log.warn("authentication failed: {error}", { error: error.message });
  }

  /** Starts method `kind`: `auth_<kind>`; true when a request went out, false to try the next. */
  tryAuth(kind: string): Awaitable<boolean> {
    this.log.debug("trying to auth with {kind}", { kind });
    switch (kind) {
      case "publickey":
        return this.auth_publickey();
      case "password":
        return this.auth_password();
      case "keyboard-interactive":
        return this.auth_keyboard_interactive();
      default:
        return false;
    }
  }

  /** A callback or prompt failed: ask again with "none" to get the list of methods. */
  protected ebAuth(reason: unknown, skip?: string): void {
    if (this.finished) return;
    this.log.info("authentication step failed: {reason}", { reason: reason instanceof Failure ? reason.getErrorMessage() : String(reason) });
    if (skip !== undefined && !this.skippedMethods.includes(skip)) this.skippedMethods.push(skip);
    this.askForAuth("none", new Uint8Array(0));
  }

  /** Offers the next key from `getPublicKey()` without a signature; false when there is none. */
  auth_publickey(): Deferred<boolean> {
    return maybeDeferred<PublicKeyLike, []>(() => this.getPublicKey()).addBoth((result: PublicKeyLike | Failure) => {
      if (result instanceof Failure) {
        this.log.info("getPublicKey failed: {error}", { error: result.getErrorMessage() });
        return false;
      }
      const key = this.toKey(result);
      if (key === undefined) return false;
      const blob = key.blob();
      // A key refused once is not offered again (the howto's getPublicKey always returns one).
      if (this.triedPublicKeys.some((k) => bytesEqual(k.blob(), blob))) return false;
      const alg = this.signatureAlgorithmFor(key);
      this.lastPublicKey = key;
      this.lastSignatureAlgorithm = alg;
      this.triedPublicKeys.push(key);
      this.log.debug("using key of type {keyType} with {alg}", { keyType: key.sshType(), alg });
      this.askForAuth("publickey", concatBytes(Uint8Array.of(0), NS(alg), NS(blob)));
      return true;
    });
  }

  private toKey(value: PublicKeyLike): Key | undefined {
    if (value === undefined || value === null) return undefined;
    if (value instanceof Key) return value;
    try {
      return Key.fromString(value);
    } catch (e) {
      this.log.info("getPublicKey gave something that is not a key: {error}", { error: String(e) });
      return undefined;
    }
  }

  /**
   * The signature algorithm for `key`: for RSA the best of rsa-sha2-512, rsa-sha2-256 the server
   * lists in `server-sig-algs` (RFC 8332 §3.3), `ssh-rsa` when it sent no list.
   */
  signatureAlgorithmFor(key: Key): string {
    const serverAlgs = this.requireTransport().serverSigAlgs;
    const ours = key.supportedSignatureAlgorithms();
    if (serverAlgs === undefined) return key.sshType();
    return ours.find((a) => serverAlgs.includes(a)) ?? key.sshType();
  }

  /** PK_OK: `string algorithm, string blob` (RFC 4252 §7). Signs and sends the real request. */
  ssh_USERAUTH_PK_OK(_packet: Uint8Array): void {
    const publicKey = this.lastPublicKey;
    const alg = this.lastSignatureAlgorithm;
    if (publicKey === undefined || alg === undefined) {
      this.askForAuth("none", new Uint8Array(0));
      return;
    }
    const blob = publicKey.blob();
    const data = concatBytes(
      NS(this.requireTransport().sessionID),
      Uint8Array.of(MSG_USERAUTH_REQUEST),
      NS(this.user),
      NS(this.instance.name),
      NS("publickey"),
      Uint8Array.of(1),
      NS(alg),
      NS(blob),
    );
    const d = this.signData(publicKey, data);
    if (d === undefined) {
      this.askForAuth("none", new Uint8Array(0));
      return;
    }
    maybeDeferred(() => d).addCallbacks(
      (signature: Uint8Array) => this.askForAuth("publickey", concatBytes(Uint8Array.of(1), NS(alg), NS(blob), NS(signature))),
      (f: Failure) => this.ebAuth(f),
    );
  }

  /**
   * Signs `signData` for `publicKey`: by default with `getPrivateKey()` and the algorithm chosen
   * for the key. Override to sign elsewhere (an agent). Undefined means "cannot sign".
   */
  signData(publicKey: Key, signData: Uint8Array): PromiseLike<Uint8Array> | undefined {
    const alg = this.lastSignatureAlgorithm ?? publicKey.sshType();
    const key = this.getPrivateKey();
    if (key === undefined) return undefined;
    return maybeDeferred(() => key).addCallback((privateKey: Key) => privateKey.sign(signData, alg));
  }

  /** PASSWD_CHANGEREQ: `string prompt, string language` (RFC 4252 §8). Asks old and new password. */
  ssh_USERAUTH_PASSWD_CHANGEREQ(packet: Uint8Array): void {
    let prompt: string;
    try {
      prompt = decodeUtf8(new SSHReader(packet).string(), "prompt");
    } catch {
      prompt = "New Password: ";
    }
    const old = this.getPassword("Old Password: ");
    if (old === undefined) {
      this.ebAuth(new ConchError("no password to change"), "password");
      return;
    }
    maybeDeferred<string, []>(() => old)
      .addCallback((op: string) => {
        this.oldPassword = op;
        const np = this.getPassword(prompt);
        if (np === undefined) throw new ConchError("no new password");
        return np;
      })
      .addCallbacks(
        (np: string) => {
          const op = this.oldPassword ?? "";
          this.oldPassword = undefined;
          this.askForAuth("password", concatBytes(Uint8Array.of(1), NS(op), NS(np)));
        },
        (f: Failure) => this.ebAuth(f, "password"),
      );
  }

  /** Asks `getPassword()`; false when it gives undefined (no password authentication). */
  auth_password(): boolean {
    const d = this.getPassword();
    if (d === undefined) return false;
    maybeDeferred<string | undefined, []>(() => d).addCallbacks(
      (password: string | undefined) => {
        if (password === undefined) this.ebAuth(new ConchError("no password"), "password");
        else this.askForAuth("password", concatBytes(Uint8Array.of(0), NS(password)));
      },
      (f: Failure) => this.ebAuth(f, "password"),
    );
    return true;
  }

  /** Sends `string language, string submethods`, both empty (RFC 4256 §3.1). */
  auth_keyboard_interactive(): boolean {
    if (this.keyboardInteractiveAttempts >= this.maxKeyboardInteractiveAttempts) return false;
    this.keyboardInteractiveAttempts++;
    this.log.debug("authing with keyboard-interactive");
    this.askForAuth("keyboard-interactive", concatBytes(NS(""), NS("")));
    return true;
  }

  /**
   * INFO_REQUEST: `string name, string instruction, string language, int num-prompts,
   * (string prompt, boolean echo)*` (RFC 4256 §3.2). Asks `getGenericAnswers` and sends an
   * INFO_RESPONSE; a request without prompts is answered at once.
   */
  ssh_USERAUTH_INFO_REQUEST(packet: Uint8Array): void {
    let name: string;
    let instruction: string;
    const prompts: Array<[string, boolean]> = [];
    try {
      const r = new SSHReader(packet);
      name = decodeUtf8(r.string(), "name");
      instruction = decodeUtf8(r.string(), "instruction");
      r.string();
      const n = r.uint32();
      if (n > MAX_INFO_PROMPTS) throw new ConchError(`${n} prompts is too many`);
      for (let i = 0; i < n; i++) prompts.push([decodeUtf8(r.string(), "prompt"), r.boolean()]);
    } catch (e) {
      this.requireTransport().sendDisconnect(DISCONNECT_PROTOCOL_ERROR, "malformed USERAUTH_INFO_REQUEST");
      this.finish(e instanceof Error ? e : new ConchError(String(e)));
      return;
    }
    const answers = prompts.length === 0 ? succeed<string[]>([]) : maybeDeferred<string[], []>(() => this.getGenericAnswers(name, instruction, prompts));
    answers.addCallbacks(
      (responses: string[]) => {
        const w = new SSHWriter().uint32(responses.length);
        for (const resp of responses) w.string(resp);
        this.sendPacket(MSG_USERAUTH_INFO_RESPONSE, w.finish());
      },
      (f: Failure) => this.ebAuth(f, "keyboard-interactive"),
    );
  }

  /**
   * SSH_MSG_USERAUTH_BANNER: `string message, string language` (RFC 4252 §5.4). Hands the text
   * to {@link displayBanner}.
   */
  ssh_USERAUTH_BANNER(packet: Uint8Array): void {
    try {
      const r = new SSHReader(packet);
      const message = decodeUtf8(r.string(), "banner");
      const language = decodeUtf8(r.string(), "language tag");
      this.displayBanner(message, language);
    } catch (e) {
      this.log.info("ignoring a malformed banner: {error}", { error: String(e) });
    }
  }

  /**
   * Shows the server's banner. The default logs it at info level under
   * `twisted-ts.conch.userauth`; override to print it (strip terminal control characters first:
   * it is text from the server).
   */
  displayBanner(message: string, language: string): void {
    this.log.info("banner: {message}", { message, language });
  }

  /**
   * The next public key to offer: a Key, a public key blob, an OpenSSH public key line, or a
   * Deferred/Promise of one. Called again after a key is refused, until it gives undefined.
   */
  getPublicKey(): Awaitable<PublicKeyLike> {
    return undefined;
  }

  /** The private key for the last public key, as a Deferred (or Promise) of a Key. */
  getPrivateKey(): PromiseLike<Key> | undefined {
    return fail(new ConchError("getPrivateKey is not implemented"));
  }

  /**
   * A password (Deferred, Promise or plain string), or undefined for "no password
   * authentication". `prompt` is given for a password change.
   */
  getPassword(_prompt?: string): Awaitable<string> | undefined {
    return fail(new ConchError("getPassword is not implemented"));
  }

  /**
   * Answers to keyboard-interactive prompts, one per `[prompt, echo]` pair, in order.
   */
  getGenericAnswers(_name: string, _instruction: string, _prompts: ReadonlyArray<readonly [string, boolean]>): Awaitable<string[]> {
    return fail(new ConchError("getGenericAnswers is not implemented"));
  }
}


