/** Internal: what both sides of `ssh-userauth` share (message numbers, the 60–79 table, limits). */
import { InterfaceToken } from "@twisted-ts/cred/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { type MessageTable, SSHService } from "../service.js";

export const fallbackLog = new Logger("twisted-ts.conch.userauth");

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
/** OpenSSH's `MaxAuthTries` default: the sixth failed attempt ends the connection. */
export const DEFAULT_MAX_AUTH_TRIES = 6;
/** Prompts a keyboard-interactive INFO_REQUEST may carry (client and server side). */
export const MAX_INFO_PROMPTS = 64;

/**
 * The token the server asks the realm for. Conch's `avatar.ts` re-exports it as `IConchUser`;
 * a realm answers with `[IConchUserToken, avatar, logout]`.
 */
export const IConchUserToken = new InterfaceToken<unknown>("IConchUser");

export function dispatchMethodMessage(service: SSHService, method: string | undefined, num: number, packet: Uint8Array): boolean {
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
   * parsed authorized_keys options (`checkers.AuthorizedKeyOptions`) here. The server also turns
   * them into `transport.authOptions` at success, which the session and connection layers enforce.
   */
  readonly keyOptions: unknown;
  /** The client's host address. */
  readonly peerHost: string | undefined;
}

