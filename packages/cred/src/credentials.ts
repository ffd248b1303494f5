/**
 * `twisted.cred.credentials`: what a user presents to log in, and the interface tokens checkers
 * list in `credentialInterfaces`.
 *
 * Usernames and passwords are strings here (SSH carries them as UTF-8, RFC 4252 §5 and §8);
 * Twisted used bytes.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Deferred } from "@twisted-ts/internet/defer";
import { InterfaceToken, implementer } from "./interfaces.js";

/** Any credentials. Checkers name a sub-interface of this one. */
export interface ICredentialsShape {}
export const ICredentials = new InterfaceToken<ICredentialsShape>("ICredentials");

/** A username and the plaintext password the user typed. */
export interface IUsernamePasswordShape extends ICredentialsShape {
  readonly username: string;
  readonly password: string;
  /** True when `password` (the stored one) matches; may be a Deferred. */
  checkPassword(password: string | Uint8Array): boolean | Deferred<boolean>;
}
export const IUsernamePassword = new InterfaceToken<IUsernamePasswordShape>("IUsernamePassword", [ICredentials]);

/**
 * A username and a password in some hashed form that only the credentials know how to check
 * against the plaintext (CRAM-MD5, digest, …).
 */
export interface IUsernameHashedPasswordShape extends ICredentialsShape {
  readonly username: string;
  checkPassword(password: string | Uint8Array): boolean | Deferred<boolean>;
}
export const IUsernameHashedPassword = new InterfaceToken<IUsernameHashedPasswordShape>("IUsernameHashedPassword", [
  ICredentials,
]);

/** No credentials at all: an anonymous login. */
export interface IAnonymousShape extends ICredentialsShape {}
export const IAnonymous = new InterfaceToken<IAnonymousShape>("IAnonymous", [ICredentials]);

/**
 * An SSH public key offered by a client (RFC 4252 §7). Without a signature it only asks whether
 * the key would be accepted; with one, `signature` must verify over `sigData` with the key in
 * `blob`.
 */
export interface ISSHPrivateKeyShape extends ICredentialsShape {
  readonly username: string;
  /** The public key algorithm named in the request (`ssh-ed25519`, `rsa-sha2-512`, …). */
  readonly algName: string;
  /** The public key blob as sent by the client. */
  readonly blob: Uint8Array;
  /** The bytes the signature covers; undefined for the no-signature query. */
  readonly sigData: Uint8Array | undefined;
  /** The signature blob; undefined for the no-signature query. */
  readonly signature: Uint8Array | undefined;
  /** The client's host address, when the protocol knows it (for authorized_keys `from=`). */
  peerHost: string | undefined;
  /**
   * Set by the checker that accepted the key: the restrictions that come with it (Conch's
   * checkers put the parsed authorized_keys options here, `checkers.AuthorizedKeyOptions`).
   */
  keyOptions: unknown;
}
export const ISSHPrivateKey = new InterfaceToken<ISSHPrivateKeyShape>("ISSHPrivateKey", [ICredentials]);

/** What a PAM conversation asks: a message and its kind (PAM_PROMPT_ECHO_OFF, …). */
export type PAMMessage = readonly [message: string, kind: number];
/** One answer of a PAM conversation: the response and a return code (0). */
export type PAMResponse = readonly [response: string, retcode: number];

/** A prompt whose answer is not echoed (a password). */
export const PAM_PROMPT_ECHO_OFF = 1;
/** A prompt whose answer is echoed. */
export const PAM_PROMPT_ECHO_ON = 2;
/** An error message to show, no answer. */
export const PAM_ERROR_MSG = 3;
/** Information to show, no answer. */
export const PAM_TEXT_INFO = 4;

/**
 * A username and a conversation function that asks the user questions, as Twisted's (since
 * removed) PAM credentials: SSH's keyboard-interactive method (RFC 4256) provides one. The
 * conversation fires with one response per prompt, in order.
 */
export interface IPluggableAuthenticationModulesShape extends ICredentialsShape {
  readonly username: string;
  pamConversation(messages: readonly PAMMessage[]): Deferred<PAMResponse[]>;
}
export const IPluggableAuthenticationModules = new InterfaceToken<IPluggableAuthenticationModulesShape>(
  "IPluggableAuthenticationModules",
  [ICredentials],
);

const utf8 = new TextEncoder();

/** Compares two secrets in time that depends on neither their contents nor their lengths. */
export function secretsEqual(a: string | Uint8Array, b: string | Uint8Array): boolean {
  const da = createHash("sha256").update(typeof a === "string" ? utf8.encode(a) : a).digest();
  const db = createHash("sha256").update(typeof b === "string" ? utf8.encode(b) : b).digest();
  return timingSafeEqual(da, db);
}

/** Twisted's `UsernamePassword`. */
@implementer(IUsernamePassword)
export class UsernamePassword implements IUsernamePasswordShape {
  readonly username: string;
  readonly password: string;

  constructor(username: string, password: string) {
    this.username = username;
    this.password = password;
  }

  /** Constant-time comparison with the stored password. */
  checkPassword(password: string | Uint8Array): boolean {
    return secretsEqual(this.password, password);
  }
}

/** Twisted's `Anonymous`. */
@implementer(IAnonymous)
export class Anonymous implements IAnonymousShape {}

/** Twisted's `SSHPrivateKey(username, algName, blob, sigData, signature)`. */
@implementer(ISSHPrivateKey)
export class SSHPrivateKey implements ISSHPrivateKeyShape {
  readonly username: string;
  readonly algName: string;
  readonly blob: Uint8Array;
  readonly sigData: Uint8Array | undefined;
  readonly signature: Uint8Array | undefined;
  peerHost: string | undefined = undefined;
  keyOptions: unknown = undefined;

  constructor(
    username: string,
    algName: string,
    blob: Uint8Array,
    sigData: Uint8Array | undefined,
    signature: Uint8Array | undefined,
  ) {
    this.username = username;
    this.algName = algName;
    this.blob = blob;
    this.sigData = sigData;
    this.signature = signature;
  }
}

/** `PluggableAuthenticationModules(username, pamConversation)`. */
@implementer(IPluggableAuthenticationModules)
export class PluggableAuthenticationModules implements IPluggableAuthenticationModulesShape {
  readonly username: string;
  readonly pamConversation: (messages: readonly PAMMessage[]) => Deferred<PAMResponse[]>;

  constructor(username: string, pamConversation: (messages: readonly PAMMessage[]) => Deferred<PAMResponse[]>) {
    this.username = username;
    this.pamConversation = pamConversation;
  }
}
