/** Internal: `SSHUserAuthServer`, re-exported by `ssh/userauth.ts`. */
import { Deferred, fail } from "@twisted-ts/internet/defer";
import { Failure } from "@twisted-ts/internet/failure";
import type { Logger } from "@twisted-ts/internet/log";
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
import type { InterfaceToken } from "@twisted-ts/cred/interfaces";
import type { LoginResult, Portal } from "@twisted-ts/cred/portal";
import { NS, SSHReader, SSHWriter, bytesEqual, concatBytes, decodeUtf8 } from "../common.js";
import {
  ConchError,
  DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE,
  DISCONNECT_PROTOCOL_ERROR,
  IgnoreAuthentication,
  MalformedFieldError,
  NotEnoughAuthentication,
  ShortReadError,
  ValidPublicKey,
} from "../../error.js";
import { type AuthOptions, authOptionsFor, isKeyOptions, mergeAuthOptions } from "../authopt.js";
import { CERT_SIGNATURE_ALGORITHMS, Certificate, DEFAULT_SIGNATURE_ALGORITHMS, Key, REQUIRED_RSA_SIZE, keyTypeForSignatureAlgorithm } from "../keys.js";
import { type MessageTable, SSHService, type ServiceClock } from "../service.js";
import {
  DEFAULT_MAX_AUTH_TRIES,
  IConchUserToken,
  MAX_INFO_PROMPTS,
  MAX_QUEUED_REQUESTS,
  MAX_USERNAME_LENGTH,
  MSG_USERAUTH_BANNER,
  MSG_USERAUTH_FAILURE,
  MSG_USERAUTH_INFO_REQUEST,
  MSG_USERAUTH_PK_OK,
  MSG_USERAUTH_REQUEST,
  MSG_USERAUTH_SUCCESS,
  type UserAuthMind,
  dispatchMethodMessage,
  fallbackLog,
  messages,
} from "./common.js";

/**
 * Twisted's `SSHUserAuthServer`. Started by the transport for an `ssh-userauth` service request;
 * authenticates through `transport.factory.portal`, then starts the requested service.
 */
export class SSHUserAuthServer extends SSHService {
  override name = "ssh-userauth";
  override protocolMessages: MessageTable = messages;
  /** Seconds the client has to log in (Twisted wrote `10 * 60 * 60`, meaning ten minutes). */
  loginTimeout = 10 * 60;
  /**
   * OpenSSH's `MaxAuthTries`: the failed attempt that reaches this count ends the connection
   * ("none" and a publickey query that gets PK_OK do not count), as sshd does.
   */
  maxAuthTries = DEFAULT_MAX_AUTH_TRIES;
  /** Requests a client may send ahead while one is being checked; one more ends the connection. */
  maxQueuedRequests = MAX_QUEUED_REQUESTS;
  /** The longest username looked up; a longer one is a failed attempt that never reaches the portal. */
  maxUsernameLength = MAX_USERNAME_LENGTH;
  /** Prompts one keyboard-interactive INFO_REQUEST may carry; a checker asking more fails. */
  maxInfoPrompts = MAX_INFO_PROMPTS;
  /**
   * Twisted's name for the same limit: failed attempts that are answered; the next one ends the
   * connection. Always `maxAuthTries - 1`.
   */
  get attemptsBeforeDisconnect(): number {
    return this.maxAuthTries - 1;
  }
  set attemptsBeforeDisconnect(n: number) {
    this.maxAuthTries = n + 1;
  }
  /**
   * Seconds before a failed password, keyboard-interactive or signed publickey attempt is
   * answered, counted from when it is taken up (the publickey query without signature is not
   * delayed).
   */
  passwordDelay = 1;
  /** The timer source; the transport's clock when unset. */
  clock: ServiceClock | undefined = undefined;
  /** Text sent as SSH_MSG_USERAUTH_BANNER before the first answer; undefined for none. */
  banner: string | undefined = undefined;
  /** Signature algorithms accepted for publickey: certificates, then plain keys (SHA-1 `ssh-rsa` and DSA are left out). */
  publicKeyAlgorithms: readonly string[] = [...Object.keys(CERT_SIGNATURE_ALGORITHMS), ...DEFAULT_SIGNATURE_ALGORITHMS];
  /** Smallest RSA key accepted, in bits (OpenSSH's `RequiredRSASize`). */
  requiredRSASize = REQUIRED_RSA_SIZE;
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
  /** The username of the request being checked, decoded (UTF-8). */
  username: string | undefined = undefined;
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
  /**
   * The authorized_keys options of the keys accepted so far for this user and service, merged
   * (a login may need several methods); handed to the transport as `authOptions` on success.
   */
  private keyAuthOptions: AuthOptions | undefined = undefined;

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
    this.disconnect(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "you took too long");
  }

  /** Ends the connection; nothing more is sent or taken up from this client. */
  private disconnect(reason: number, description: string): void {
    this.stopped = true;
    this.queued = [];
    this.requireTransport().sendDisconnect(reason, description);
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
    if (this.succeeded || this.stopped) return;
    if (this.pamPending !== undefined) {
      // RFC 4256 §3.4: a new request abandons a keyboard-interactive exchange.
      const pam = this.pamPending;
      this.pamPending = undefined;
      pam.d.errback(new AbandonedAttempt());
    }
    if (this.busy) {
      if (this.queued.length >= this.maxQueuedRequests) {
        this.log.warn("too many authentication requests queued from {peer}", { peer: this.peerHost() ?? "?" });
        this.disconnect(DISCONNECT_PROTOCOL_ERROR, "too many queued authentication requests");
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
      this.disconnect(DISCONNECT_PROTOCOL_ERROR, "malformed USERAUTH_REQUEST");
      return;
    }
    if (this.user === undefined || !bytesEqual(user, this.user) || nextService !== this.nextService) {
      this.authenticatedWith = []; // RFC 4252 §5: a change of user or service resets the state.
      this.keyAuthOptions = undefined;
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
   * Checks one request: `auth_<method>(data)` (dashes become underscores) for an offered method,
   * a failure otherwise. Fires with the login result, or fails (UnauthorizedLogin,
   * NotEnoughAuthentication, IgnoreAuthentication). A subclass adds a method by defining
   * `auth_<name>` and mapping a credentials interface to it in `interfaceToMethod`.
   */
  tryAuth(kind: string, user: Uint8Array, data: Uint8Array): Deferred<LoginResult<unknown>> {
    this.log.debug("{user} trying auth {kind}", { user: JSON.stringify(Buffer.from(user).toString("latin1")), kind });
    if (!this.supportedAuthentications.includes(kind)) {
      return fail(kind === "none" ? new IgnoreNone() : new ConchError(`unsupported authentication method ${JSON.stringify(kind)}`));
    }
    if (user.length > this.maxUsernameLength) return fail(new UnauthorizedLogin("username too long"));
    try {
      this.username = decodeUtf8(user, "username");
    } catch {
      return fail(new UnauthorizedLogin("username is not valid UTF-8"));
    }
    const fn = (this as unknown as Record<string, unknown>)[`auth_${kind.replace(/-/g, "_")}`];
    if (typeof fn !== "function") return fail(new ConchError(`bad auth type: ${kind}`));
    try {
      const ret = (fn as (packet: Uint8Array) => Deferred<LoginResult<unknown>> | undefined).call(this, data);
      return ret ?? fail(new ConchError(`auth_${kind} returned nothing instead of a Deferred`));
    } catch (e) {
      if (e instanceof ShortReadError || e instanceof MalformedFieldError) return fail(new UnauthorizedLogin(`malformed ${kind} request: ${e.message}`));
      return fail(e);
    }
  }

  private mind(credentials: object): UserAuthMind {
    return {
      username: this.username ?? "",
      method: this.method ?? "",
      credentials,
      peerHost: this.peerHost(),
      get keyOptions(): unknown {
        return (credentials as { keyOptions?: unknown }).keyOptions;
      },
    };
  }

  /**
   * Logs `credentials` in through the portal, asking for `avatarInterfaces`, with a
   * {@link UserAuthMind} for the realm (Twisted's `self.portal.login(c, None, IConchUser)`).
   */
  protected login(credentials: object): Deferred<LoginResult<unknown>> {
    const portal = this.portal;
    if (portal === undefined) return fail(new ConchError("no portal"));
    const d = portal.login(credentials, this.mind(credentials), ...this.avatarInterfaces) as Deferred<LoginResult<unknown>>;
    const collect = (): void => this.collectKeyOptions(credentials);
    // A bad option value from a checker of one's own fails the login: never run unrestricted.
    return d
      .addCallback((result: LoginResult<unknown>) => {
        try {
          collect();
        } catch (e) {
          result[2]();
          throw e;
        }
        return result;
      })
      .addErrback<never>((f: Failure) => {
        if (f.check(NotEnoughAuthentication) !== null) collect();
        return f;
      });
  }

  /**
   * Keeps the options a checker attached to credentials that passed (fully or partly). Options in
   * a shape we cannot read fail the login: they may restrict something we would not enforce.
   */
  private collectKeyOptions(credentials: object): void {
    const keyOptions = (credentials as { keyOptions?: unknown }).keyOptions;
    if (keyOptions === undefined) return;
    if (!isKeyOptions(keyOptions)) throw new ConchError("the checker's keyOptions are not authorized_keys options (authopt.KeyOptionsInput)");
    const options = authOptionsFor(keyOptions, this.transport?.factory?.authSettings);
    this.keyAuthOptions = this.keyAuthOptions === undefined ? options : mergeAuthOptions(this.keyAuthOptions, options);
  }

  /**
   * `boolean has-signature, string algorithm, string key blob [, string signature]`
   * (RFC 4252 §7). Without a signature a key the checker accepts gets PK_OK; with one the
   * signature must cover `session id, MSG_USERAUTH_REQUEST, user, service, "publickey", TRUE,
   * algorithm, blob`.
   */
  auth_publickey(packet: Uint8Array): Deferred<LoginResult<unknown>> {
    const username = this.username ?? "";
    const r = new SSHReader(packet);
    const hasSig = r.boolean();
    const algName = decodeUtf8(r.string(), "algorithm name");
    const blob = r.string();
    const signature = hasSig ? r.string() : undefined;
    let key: Key;
    let cert: Certificate | undefined;
    try {
      // Only wire blobs: never parse other formats from the network. A certificate's CA signature
      // is checked here; whether its CA is trusted is the checker's business.
      if (Certificate.isCertificateBlob(blob)) key = (cert = Certificate.fromBlob(blob)).key;
      else key = Key.fromString(blob, "public_blob");
    } catch (e) {
      this.log.info("unsupported key type {alg} or bad key: {error}", { alg: algName, error: String(e) });
      return fail(new UnauthorizedLogin(`Unsupported key type ${algName} or bad key`));
    }
    if (key.type() === "RSA" && key.size() < this.requiredRSASize) {
      this.log.info("refusing a {bits}-bit RSA key: RequiredRSASize is {required}", { bits: key.size(), required: this.requiredRSASize });
      return fail(new UnauthorizedLogin(`RSA keys must have at least ${this.requiredRSASize} bits`));
    }
    // A certificate algorithm (rsa-sha2-512-cert-v01@openssh.com) signs as its plain one (rsa-sha2-512).
    const sigAlgName = cert !== undefined ? CERT_SIGNATURE_ALGORITHMS[algName] : algName;
    if (!this.publicKeyAlgorithms.includes(algName) || sigAlgName === undefined || keyTypeForSignatureAlgorithm(sigAlgName) !== key.sshType()) {
      return fail(new UnauthorizedLogin(`signature algorithm ${algName} not accepted for a ${cert?.certType ?? key.sshType()} key`));
    }
    const credentials = (sigData: Uint8Array | undefined, sig: Uint8Array | undefined) => {
      const c = new SSHPrivateKey(username, algName, blob, sigData, sig);
      c.peerHost = this.peerHost();
      return c;
    };
    if (signature !== undefined) {
      // The signature blob names its algorithm; it must be the one requested (RFC 8332 §3.2).
      const sigAlg = decodeUtf8(new SSHReader(signature).string(), "signature algorithm");
      if (sigAlg !== sigAlgName) return fail(new UnauthorizedLogin(`signature algorithm ${sigAlg} does not match ${algName}`));
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
      return this.login(credentials(sigData, signature));
    }
    return this.login(credentials(undefined, undefined)).addErrback<never>((f: Failure) => {
      f.trap(ValidPublicKey);
      this.sendPacket(MSG_USERAUTH_PK_OK, concatBytes(NS(algName), NS(blob)));
      return new Failure(new IgnoreAuthentication("sent PK_OK"));
    });
  }

  /** `boolean FALSE, string password` (RFC 4252 §8); a password change (TRUE) is refused. */
  auth_password(packet: Uint8Array): Deferred<LoginResult<unknown>> {
    const r = new SSHReader(packet);
    const change = r.boolean();
    const password = decodeUtf8(r.string(), "password");
    if (change) return fail(new UnauthorizedLogin("password change is not supported"));
    return this.login(new UsernamePassword(this.username ?? "", password));
  }

  /**
   * `string language tag, string submethods` (RFC 4256 §3.1): the checker converses with the
   * client through INFO_REQUEST / INFO_RESPONSE.
   */
  auth_keyboard_interactive(packet: Uint8Array): Deferred<LoginResult<unknown>> {
    const r = new SSHReader(packet);
    r.string(); // language tag (deprecated)
    r.string(); // submethods: a hint we do not use
    const c = new PluggableAuthenticationModules(this.username ?? "", (msgs) => this.pamConversation(msgs));
    return this.login(c);
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
    if (prompts.length > this.maxInfoPrompts) return fail(new ConchError("too many prompts"));
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
    t.authOptions = this.keyAuthOptions ?? authOptionsFor(undefined, t.factory?.authSettings);
    const service = t.factory?.getService(t, this.nextService ?? "");
    if (service === undefined) {
      t.avatar = undefined;
      t.logoutFunction = undefined;
      t.authOptions = undefined;
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
    if (this.loginAttempts >= this.maxAuthTries) {
      this.log.warn("too many failed authentications from {peer}", { peer });
      this.disconnect(DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, "Too many authentication failures");
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

