/** Internal: `SSHUserAuthClient`, re-exported by `ssh/userauth.ts`. */
import { Deferred, fail, maybeDeferred, succeed } from "@twisted-ts/internet/defer";
import type { Awaitable } from "@twisted-ts/internet/defer";
import { Failure } from "@twisted-ts/internet/failure";
import type { Logger } from "@twisted-ts/internet/log";
import { NS, SSHReader, SSHWriter, bytesEqual, concatBytes, decodeUtf8 } from "../common.js";
import { ConchError, DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE, DISCONNECT_PROTOCOL_ERROR, NoMoreAuthMethodsError } from "../../error.js";
import { Certificate, Key, certTypeFor } from "../keys.js";
import { type MessageTable, SSHService } from "../service.js";
import type { SSHAgentClient } from "../_agent/client.js";
import { signFlagsFor } from "../_agent/common.js";
import {
  MAX_INFO_PROMPTS,
  MSG_USERAUTH_INFO_RESPONSE,
  MSG_USERAUTH_REQUEST,
  dispatchMethodMessage,
  fallbackLog,
  messages,
} from "./common.js";

/**
 * What `getPublicKey` may give: a Key, a {@link Certificate} (its private key signs), a public key
 * or certificate blob or OpenSSH line, or undefined for "no more".
 */
export type PublicKeyLike = Key | Certificate | Uint8Array | string | undefined;

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
  /** Prompts an INFO_REQUEST may carry; one with more ends the connection. */
  maxInfoPrompts = MAX_INFO_PROMPTS;
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
  /** The certificate offered for `lastPublicKey`, when it was one. */
  lastCertificate: Certificate | undefined = undefined;
  /** Blobs (keys and certificates) offered so far: a certificate and its plain key are tried apart. */
  private triedBlobs: Uint8Array[] = [];
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
  private outcome: Error | undefined = undefined;
  private waiters: Deferred<void>[] = [];
  private oldPassword: string | undefined = undefined;
  /**
   * An agent whose keys are offered first, each signed by the agent (Twisted's `keyAgent`, set by
   * `client/default`); then `getPublicKey()`'s. Its connection stays the caller's to close.
   */
  keyAgent: SSHAgentClient | undefined = undefined;
  /** The last key offered came from `keyAgent`: the agent signs for it. */
  lastKeyFromAgent = false;
  /** Blobs listed by the agent and not offered yet; undefined until listed. */
  private agentBlobs: Uint8Array[] | undefined = undefined;

  constructor(user: string | Uint8Array, instance: SSHService, options: { keyAgent?: SSHAgentClient } = {}) {
    super();
    this.user = user;
    this.instance = instance;
    if (options.keyAgent !== undefined) this.keyAgent = options.keyAgent;
  }

  override serviceStarted(): void {
    this.authenticatedWith = [];
    this.triedPublicKeys = [];
    this.triedBlobs = [];
    this.lastPublicKey = undefined;
    this.lastCertificate = undefined;
    this.lastKeyFromAgent = false;
    this.agentBlobs = undefined;
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
    if (!this.finished) this.waiters.push(d);
    else if (this.outcome === undefined) d.callback(undefined);
    else d.errback(this.outcome);
    return d;
  }

  private finish(error: Error | undefined): void {
    this.finished = true;
    this.outcome = error;
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

  /**
   * Starts method `kind` with `auth_<kind>()` (dashes become underscores): true when a request
   * went out, false to try the next method. A subclass adds a method by defining `auth_<name>`.
   */
  tryAuth(kind: string): Awaitable<boolean> {
    this.log.debug("trying to auth with {kind}", { kind });
    const fn = (this as unknown as Record<string, unknown>)[`auth_${kind.replace(/-/g, "_")}`];
    if (typeof fn !== "function") return false;
    return (fn as () => Awaitable<boolean>).call(this);
  }

  /** A callback or prompt failed: ask again with "none" to get the list of methods. */
  protected ebAuth(reason: unknown, skip?: string): void {
    if (this.finished) return;
    this.log.info("authentication step failed: {reason}", { reason: reason instanceof Failure ? reason.getErrorMessage() : String(reason) });
    if (skip !== undefined && !this.skippedMethods.includes(skip)) this.skippedMethods.push(skip);
    this.askForAuth("none", new Uint8Array(0));
  }

  /**
   * Offers the next key without a signature: the agent's keys first (listed on first use), then
   * `getPublicKey()`'s; false when there is none left.
   */
  auth_publickey(): Deferred<boolean> {
    return this.offerAgentKey().addCallback((offered: boolean) => {
      if (offered) return true;
      return maybeDeferred<PublicKeyLike, []>(() => this.getPublicKey()).addBoth((result: PublicKeyLike | Failure) => {
        if (result instanceof Failure) {
          this.log.info("getPublicKey failed: {error}", { error: result.getErrorMessage() });
          return false;
        }
        return this.offerPublicKey(result, false);
      });
    });
  }

  /** Offers the agent's next key we can use; false when there is none (or no agent). */
  private offerAgentKey(): Deferred<boolean> {
    const agent = this.keyAgent;
    if (agent === undefined) return succeed(false);
    const listed =
      this.agentBlobs !== undefined
        ? succeed(undefined)
        : agent.requestIdentities().addCallbacks(
            (identities) => {
              this.log.debug("the agent offers {num} keys", { num: identities.length });
              this.agentBlobs = identities.map(([blob]) => blob);
            },
            (f: Failure) => {
              this.log.info("could not list the agent's keys: {error}", { error: f.getErrorMessage() });
              this.agentBlobs = [];
            },
          );
    return listed.addCallback(() => {
      const blobs = this.agentBlobs ?? [];
      while (blobs.length > 0) {
        if (this.offerPublicKey(blobs.shift(), true)) return true;
      }
      return false;
    });
  }

  /** Sends the publickey query for `value`; false when it is no key or was offered already. */
  private offerPublicKey(value: PublicKeyLike, fromAgent: boolean): boolean {
    const offer = this.toKey(value);
    if (offer === undefined) return false;
    const cert = offer instanceof Certificate ? offer : undefined;
    const key = cert?.key ?? (offer as Key);
    const blob = cert?.blob() ?? key.blob();
    // A key refused once is not offered again (the howto's getPublicKey always returns one).
    if (this.triedBlobs.some((b) => bytesEqual(b, blob))) return false;
    const alg = this.signatureAlgorithmFor(key);
    this.lastPublicKey = key;
    this.lastCertificate = cert;
    this.lastSignatureAlgorithm = alg;
    this.lastKeyFromAgent = fromAgent;
    this.triedPublicKeys.push(key);
    this.triedBlobs.push(blob);
    this.log.debug("using key of type {keyType} with {alg}{from}", { keyType: cert?.certType ?? key.sshType(), alg, from: fromAgent ? " from the agent" : "" });
    this.askForAuth("publickey", concatBytes(Uint8Array.of(0), NS(this.publicKeyAlgorithm()), NS(blob)));
    return true;
  }

  /** The publickey algorithm name of the last offer: a certificate's names its signature hash (rsa-sha2-512-cert-v01@openssh.com). */
  private publicKeyAlgorithm(): string {
    const alg = this.lastSignatureAlgorithm ?? "";
    return this.lastCertificate !== undefined ? certTypeFor(alg) : alg;
  }

  private toKey(value: PublicKeyLike): Key | Certificate | undefined {
    if (value === undefined || value === null) return undefined;
    if (value instanceof Key || value instanceof Certificate) return value;
    try {
      if (typeof value === "string" && /^\S+-cert-v01@openssh\.com\s/.test(value.trimStart())) return Certificate.fromString(value);
      if (value instanceof Uint8Array && Certificate.isCertificateBlob(value)) return Certificate.fromBlob(value);
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
    if (publicKey === undefined || this.lastSignatureAlgorithm === undefined) {
      this.askForAuth("none", new Uint8Array(0));
      return;
    }
    const alg = this.publicKeyAlgorithm();
    const blob = this.lastCertificate?.blob() ?? publicKey.blob();
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
   * Signs `signData` for `publicKey` with the algorithm chosen for the key: through `keyAgent`
   * when the key came from it (with the rsa-sha2 flag for that algorithm), else with
   * `getPrivateKey()`. Override to sign elsewhere. Undefined means "cannot sign".
   */
  signData(publicKey: Key, signData: Uint8Array): PromiseLike<Uint8Array> | undefined {
    if (this.lastKeyFromAgent && this.keyAgent !== undefined) {
      const blob = this.lastCertificate?.blob() ?? publicKey.blob();
      return this.keyAgent.signData(blob, signData, signFlagsFor(this.lastSignatureAlgorithm ?? ""));
    }
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
      if (n > this.maxInfoPrompts) throw new ConchError(`${n} prompts is too many`);
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



