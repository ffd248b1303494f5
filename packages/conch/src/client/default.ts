/**
 * `twisted.conch.client.default`: the client side a user expects from `ssh`. An
 * {@link SSHUserAuthClient} that offers the user's keys (`-i` files or `~/.ssh/id_*`, asking for
 * the passphrase of an encrypted one on the terminal), asks for passwords and
 * keyboard-interactive answers on the terminal, and {@link verifyHostKey}, the known_hosts check
 * with OpenSSH's prompts and warnings.
 *
 * Without a terminal ({@link ClientOptions.ui} undefined) nothing is asked: password and
 * keyboard-interactive are not offered (unless a password was given), encrypted keys without a
 * passphrase are skipped, and an unknown host key is refused.
 *
 * The SSH agent (OpenSSH's `SSH_AUTH_SOCK`, Twisted's `keyAgent`) plugs in through
 * {@link ClientOptions.agentEndpoint}: client/direct connects to it and sets the base class's
 * `keyAgent`, whose keys are offered first.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Deferred, fail, succeed } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IStreamClientEndpoint } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { ConchError, EncryptedKeyError, HostKeyChanged, HostKeyNotVerifiableError } from "../error.js";
import { Certificate, Key } from "../ssh/keys.js";
import type { SSHService } from "../ssh/service.js";
import { SSHUserAuthClient as BaseUserAuthClient } from "../ssh/userauth.js";
import { ConsoleUI, hostKeyName, type HostKeyPolicy, KnownHostsFile, type UI, verifyHostKey as checkKnownHosts } from "./knownhosts.js";
import { readTerminalLine } from "./_terminal.js";

const logger = new Logger("twisted-ts.conch.client.default");

/** The key files ssh tries when no `-i` is given, in its order. */
export const DEFAULT_IDENTITY_NAMES: readonly string[] = ["id_rsa", "id_ecdsa", "id_ecdsa_sk", "id_ed25519", "id_ed25519_sk"];

/** OpenSSH's `NumberOfPasswordPrompts` default. */
export const DEFAULT_PASSWORD_PROMPTS = 3;

/** The identity files in `~/.ssh` that exist, as ssh picks them when no `-i` is given. */
export function defaultIdentities(home: string): string[] {
  return DEFAULT_IDENTITY_NAMES.map((n) => join(home, ".ssh", n)).filter((p) => existsSync(p));
}

/**
 * How the default client talks to the user: the known_hosts yes/no question and warnings, and
 * {@link ClientUI.ask} for passwords, passphrases and keyboard-interactive answers.
 */
export interface ClientUI extends UI {
  /** Asks for one line; `echo` false hides what is typed. Fails when the user gives up (^C, end of input). */
  ask(prompt: string, echo: boolean): Deferred<string>;
}

/** A {@link ClientUI} on the process's terminal: reads standard input, writes standard error. */
export class TerminalUI extends ConsoleUI implements ClientUI {
  ask(prompt: string, echo: boolean): Deferred<string> {
    return Deferred.fromPromise(readTerminalLine(prompt, !echo, undefined, true));
  }
}

/** A {@link TerminalUI} when standard input is a terminal, else undefined (nothing can be asked). */
export function terminalUI(): ClientUI | undefined {
  return process.stdin.isTTY === true ? new TerminalUI() : undefined;
}

/** What the default client authenticates with. */
export interface ClientOptions {
  /** Private key files to offer, in order (ssh's `-i`; {@link defaultIdentities} when none). */
  identities?: readonly string[];
  /** Keys already in memory, offered before the files (SSHCommandClientEndpoint's `keys`). */
  keys?: readonly Key[];
  /** A password to send once instead of asking. */
  password?: string;
  /** Asks the user; undefined when there is no terminal. */
  ui?: ClientUI | undefined;
  /** The host name for prompts (`user@host's password:`); the peer address when unset. */
  hostname?: string;
  /** Password prompts before password authentication is given up (3, as ssh). */
  passwordPrompts?: number;
  /**
   * An endpoint to an SSH agent (Twisted's `agentEndpoint`, OpenSSH's `SSH_AUTH_SOCK`): client/direct
   * connects to it before authenticating and the agent's keys are offered first (`keyAgent`).
   */
  agentEndpoint?: IStreamClientEndpoint | undefined;
}

/** One public key or certificate to offer and where its private key comes from. */
interface Offer {
  offer: Key | Certificate;
  key?: Key;
  file?: string;
}

/**
 * Twisted's `default.SSHUserAuthClient`: publickey with the configured keys, then password and
 * keyboard-interactive on the terminal. Without a terminal only publickey (and password when one
 * was given) is offered.
 */
export class SSHUserAuthClient extends BaseUserAuthClient {
  /** The files whose keys were offered so far (Twisted's `usedFiles`). */
  readonly usedFiles: string[] = [];
  private offers: Offer[] | undefined = undefined;
  private current: Offer | undefined = undefined;
  private passwordsAsked = 0;
  private givenPassword: string | undefined;

  constructor(
    user: string,
    readonly options: ClientOptions,
    instance: SSHService,
  ) {
    super(user, instance);
    this.givenPassword = options.password;
    const interactive = options.ui !== undefined;
    this.preferredOrder = ["publickey", ...(interactive || options.password !== undefined ? ["password"] : []), ...(interactive ? ["keyboard-interactive"] : [])];
  }

  /** The keys and files to offer, built on first use: a certificate beside a key first, as ssh. */
  private buildOffers(): Offer[] {
    const offers: Offer[] = (this.options.keys ?? []).map((key) => ({ offer: key.public(), key }));
    for (const file of this.options.identities ?? []) {
      if (!existsSync(file)) {
        logger.warn("Warning: Identity file {file} not accessible: No such file or directory.", { file });
        continue;
      }
      let pub: Key | undefined;
      let key: Key | undefined;
      try {
        key = Key.fromFile(file);
        pub = key.public();
      } catch (e) {
        if (!(e instanceof EncryptedKeyError)) {
          logger.warn("skipping identity {file}: {error}", { file, error: e instanceof Error ? e.message : String(e) });
          continue;
        }
        // Encrypted: offer the public half from the .pub file; the passphrase is asked only if the server accepts it.
        try {
          pub = Key.fromFile(`${file}.pub`);
        } catch {
          logger.info("skipping encrypted identity {file}: its public key ({file}.pub) cannot be read", { file });
          continue;
        }
      }
      if (existsSync(`${file}-cert.pub`)) {
        try {
          offers.push({ offer: Certificate.fromString(readFileSync(`${file}-cert.pub`, "utf8")), file, ...(key ? { key } : {}) });
        } catch (e) {
          logger.info("ignoring certificate {file}-cert.pub: {error}", { file, error: e instanceof Error ? e.message : String(e) });
        }
      }
      offers.push({ offer: pub, file, ...(key ? { key } : {}) });
    }
    return offers;
  }

  /** The next key or certificate to offer; undefined when every one was offered. */
  override getPublicKey(): Key | Certificate | undefined {
    this.offers ??= this.buildOffers();
    this.current = this.offers.shift();
    if (this.current?.file !== undefined && !this.usedFiles.includes(this.current.file)) this.usedFiles.push(this.current.file);
    return this.current?.offer;
  }

  /** The private key of the last offer: read from its file, asking for the passphrase (three tries) when it is encrypted. */
  override getPrivateKey(): Deferred<Key> | undefined {
    const offer = this.current;
    if (offer === undefined) return undefined;
    if (offer.key !== undefined) return succeed(offer.key);
    const file = offer.file!;
    const ui = this.options.ui;
    if (ui === undefined) return fail(new EncryptedKeyError(`${file} is encrypted and there is no terminal to ask its passphrase`));
    const attempt = (left: number): Deferred<Key> =>
      ui.ask(`Enter passphrase for key '${file}': `, false).addCallback((passphrase: string) => {
        try {
          const key = Key.fromFile(file, undefined, passphrase);
          offer.key = key;
          return key;
        } catch (e) {
          if (left <= 1) throw new ConchError(`bad passphrase for ${file}`);
          return attempt(left - 1);
        }
      });
    return attempt(3);
  }

  /**
   * A password: the one given, else asked on the terminal (`user@host's password: `) up to
   * {@link ClientOptions.passwordPrompts} times; undefined when there is none to give.
   */
  override getPassword(prompt?: string): Deferred<string> | undefined {
    if (this.givenPassword !== undefined) {
      const p = this.givenPassword;
      this.givenPassword = undefined;
      return succeed(p);
    }
    const ui = this.options.ui;
    if (ui === undefined) return undefined;
    if (prompt === undefined) {
      if (this.passwordsAsked >= (this.options.passwordPrompts ?? DEFAULT_PASSWORD_PROMPTS)) return undefined;
      this.passwordsAsked++;
    }
    return ui.ask(prompt ?? `${String(this.user)}@${this.hostForPrompt()}'s password: `, false);
  }

  /** Shows the name and instruction, then asks each prompt (echoed or not, as the server says). */
  override getGenericAnswers(name: string, instruction: string, prompts: ReadonlyArray<readonly [string, boolean]>): Deferred<string[]> {
    const ui = this.options.ui;
    if (ui === undefined) return fail(new ConchError("keyboard-interactive needs a terminal"));
    if (name !== "") ui.warn(stripControl(name));
    if (instruction !== "") ui.warn(stripControl(instruction));
    const answers: string[] = [];
    let d: Deferred<unknown> = succeed(undefined);
    for (const [prompt, echo] of prompts) {
      d = d.addCallback(() => ui.ask(stripControl(prompt), echo).addCallback((a: string) => void answers.push(a)));
    }
    return d.addCallback(() => answers);
  }

  /** Prints the server's banner on the terminal (control characters removed), or logs it. */
  override displayBanner(message: string, language: string): void {
    if (this.options.ui !== undefined) this.options.ui.warn(stripControl(message).replace(/\n$/, ""));
    else super.displayBanner(message, language);
  }

  private hostForPrompt(): string {
    if (this.options.hostname !== undefined) return this.options.hostname;
    try {
      const peer = this.transport?.getPeer();
      return peer !== undefined && "host" in peer ? String(peer.host) : "host";
    } catch {
      return "host";
    }
  }
}

/** Text from the server shown on a terminal: no escape sequences (OpenSSH's stravis). */
function stripControl(text: string): string {
  return text.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, "");
}

/** What {@link verifyHostKey} checks the server's key against. */
export interface HostKeyCheckOptions {
  /** The known_hosts file (OpenSSH's `UserKnownHostsFile`). */
  knownHosts: KnownHostsFile | string;
  /** The host name the user asked for. */
  hostname: string;
  /** The port, when not 22. */
  port?: number | undefined;
  /** OpenSSH's StrictHostKeyChecking: `strict` (yes), `accept-new`, `ask` (the default). */
  policy?: HostKeyPolicy;
  /** Asks about an unknown key under `ask`; without one an unknown key is refused. */
  ui?: UI | undefined;
}

/**
 * Twisted's `default.verifyHostKey`: the known_hosts check with OpenSSH's behaviour. A known key
 * passes; an unknown one is asked about on the terminal (`ask`), recorded (`accept-new`) or
 * refused (`strict`, or `ask` without a terminal) with HostKeyNotVerifiableError; a changed one
 * is refused under every policy with {@link HostKeyChanged} whose message is OpenSSH's
 * "REMOTE HOST IDENTIFICATION HAS CHANGED" warning.
 */
export function verifyHostKey(pubKey: Uint8Array | Key | Certificate, options: HostKeyCheckOptions): Deferred<boolean> {
  const policy = options.policy ?? "ask";
  const name = hostKeyName(options.hostname, options.port);
  const check = checkKnownHosts(pubKey, {
    knownHosts: options.knownHosts,
    hostname: options.hostname,
    ...(options.port !== undefined && options.port !== 22 ? { port: options.port } : {}),
    policy: policy === "ask" && options.ui === undefined ? "strict" : policy,
    ...(options.ui !== undefined ? { ui: options.ui } : {}),
  });
  return check.addErrback((f: Failure): boolean => {
    const e = f.value;
    if (e instanceof HostKeyChanged) {
      const path = e.path ?? (typeof options.knownHosts === "string" ? options.knownHosts : options.knownHosts.savePath);
      throw new HostKeyChanged(hostKeyChangedWarning(pubKey, name, path, e.lineno), e.lineno, path);
    }
    if (e instanceof HostKeyNotVerifiableError) throw new HostKeyNotVerifiableError(`${e.message}\nHost key verification failed.`);
    throw e;
  });
}

/** OpenSSH's warning for a host key that differs from the known_hosts entry (sshconnect.c). */
export function hostKeyChangedWarning(pubKey: Uint8Array | Key | Certificate, name: string, path: string, lineno: number): string {
  let type = "host";
  let fingerprint = "(unreadable key)";
  try {
    const key = pubKey instanceof Certificate ? pubKey.key : pubKey instanceof Uint8Array ? Key.fromString(pubKey, "blob") : pubKey;
    type = key.type() === "EC" ? "ECDSA" : key.type().toUpperCase();
    fingerprint = key.fingerprint("sha256");
  } catch {
    /* the message is still worth showing */
  }
  const at = "@".repeat(59);
  return [
    at,
    "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
    at,
    "IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!",
    "Someone could be eavesdropping on you right now (man-in-the-middle attack)!",
    "It is also possible that a host key has just been changed.",
    `The fingerprint for the ${type} key sent by the remote host is`,
    `${fingerprint}.`,
    "Please contact your system administrator.",
    `Add correct host key in ${path} to get rid of this message.`,
    `Offending ${type} key in ${path}:${lineno}`,
    "  remove with:",
    `  ssh-keygen -f "${path}" -R "${name}"`,
    `Host key for ${name} has changed and you have requested strict checking.`,
    "Host key verification failed.",
  ].join("\n");
}
