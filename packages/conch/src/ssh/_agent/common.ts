/**
 * Internal: the agent protocol's message numbers, flags, limits, errors and framing
 * (draft-miller-ssh-agent; OpenSSH's PROTOCOL.agent), shared by the client and the server.
 * Re-exported by `ssh/agent.ts`.
 */
import { ConchError } from "../../error.js";

// ---- message numbers (draft-miller-ssh-agent §5.1), with Twisted's names ----------------------

/** SSH1 identities request (obsolete; Twisted answers it with an empty list). */
export const AGENTC_REQUEST_RSA_IDENTITIES = 1;
export const AGENT_RSA_IDENTITIES_ANSWER = 2;
export const AGENT_FAILURE = 5;
export const AGENT_SUCCESS = 6;
export const AGENTC_REMOVE_RSA_IDENTITY = 8;
export const AGENTC_REMOVE_ALL_RSA_IDENTITIES = 9;
export const AGENTC_REQUEST_IDENTITIES = 11;
export const AGENT_IDENTITIES_ANSWER = 12;
export const AGENTC_SIGN_REQUEST = 13;
export const AGENT_SIGN_RESPONSE = 14;
export const AGENTC_ADD_IDENTITY = 17;
export const AGENTC_REMOVE_IDENTITY = 18;
export const AGENTC_REMOVE_ALL_IDENTITIES = 19;
export const AGENTC_ADD_SMARTCARD_KEY = 20;
export const AGENTC_REMOVE_SMARTCARD_KEY = 21;
export const AGENTC_LOCK = 22;
export const AGENTC_UNLOCK = 23;
export const AGENTC_ADD_ID_CONSTRAINED = 25;
export const AGENTC_ADD_SMARTCARD_KEY_CONSTRAINED = 26;
export const AGENTC_EXTENSION = 27;
export const AGENT_EXTENSION_FAILURE = 28;

/** Request number → name, for `agentc_<NAME>` dispatch (Twisted's `messages`). */
export const messages: Readonly<Record<number, AgentRequestName>> = Object.freeze({
  [AGENTC_REQUEST_RSA_IDENTITIES]: "REQUEST_RSA_IDENTITIES",
  [AGENTC_REMOVE_RSA_IDENTITY]: "REMOVE_RSA_IDENTITY",
  [AGENTC_REMOVE_ALL_RSA_IDENTITIES]: "REMOVE_ALL_RSA_IDENTITIES",
  [AGENTC_REQUEST_IDENTITIES]: "REQUEST_IDENTITIES",
  [AGENTC_SIGN_REQUEST]: "SIGN_REQUEST",
  [AGENTC_ADD_IDENTITY]: "ADD_IDENTITY",
  [AGENTC_REMOVE_IDENTITY]: "REMOVE_IDENTITY",
  [AGENTC_REMOVE_ALL_IDENTITIES]: "REMOVE_ALL_IDENTITIES",
  [AGENTC_LOCK]: "LOCK",
  [AGENTC_UNLOCK]: "UNLOCK",
  [AGENTC_ADD_ID_CONSTRAINED]: "ADD_ID_CONSTRAINED",
} as const);

/** The requests `SSHAgentServer` handles, as `agentc_<name>` methods. */
export type AgentRequestName =
  | "REQUEST_RSA_IDENTITIES"
  | "REMOVE_RSA_IDENTITY"
  | "REMOVE_ALL_RSA_IDENTITIES"
  | "REQUEST_IDENTITIES"
  | "SIGN_REQUEST"
  | "ADD_IDENTITY"
  | "REMOVE_IDENTITY"
  | "REMOVE_ALL_IDENTITIES"
  | "LOCK"
  | "UNLOCK"
  | "ADD_ID_CONSTRAINED";

// ---- flags and constraints (§5.3, §5.4) -------------------------------------------------------

/** SIGN_REQUEST flag: an RSA key signs with rsa-sha2-256 (RFC 8332). */
export const SSH_AGENT_RSA_SHA2_256 = 0x02;
/** SIGN_REQUEST flag: an RSA key signs with rsa-sha2-512 (RFC 8332). */
export const SSH_AGENT_RSA_SHA2_512 = 0x04;
/** ADD_ID_CONSTRAINED: `uint32 seconds` after which the agent forgets the key. */
export const SSH_AGENT_CONSTRAIN_LIFETIME = 1;
/** ADD_ID_CONSTRAINED: every use of the key must be confirmed by the user. */
export const SSH_AGENT_CONSTRAIN_CONFIRM = 2;
/** ADD_ID_CONSTRAINED: `string name, ...` an extension constraint. */
export const SSH_AGENT_CONSTRAIN_EXTENSION = 255;

/** The largest message either side accepts (OpenSSH's AGENT_MAX_LEN, 256 KiB). */
export const MAX_AGENT_MESSAGE = 256 * 1024;

/** The SIGN_REQUEST flags that ask for signature algorithm `alg` (0 for every other algorithm). */
export function signFlagsFor(alg: string): number {
  if (alg === "rsa-sha2-256" || alg === "rsa-sha2-256-cert-v01@openssh.com") return SSH_AGENT_RSA_SHA2_256;
  if (alg === "rsa-sha2-512" || alg === "rsa-sha2-512-cert-v01@openssh.com") return SSH_AGENT_RSA_SHA2_512;
  return 0;
}

// ---- errors -----------------------------------------------------------------------------------

/** Something went wrong talking to an agent. */
export class AgentError extends ConchError {
  override readonly code: string = "ERR_SSH_AGENT";
  constructor(message: string) {
    super(message);
    this.name = "AgentError";
  }
}

/** The agent answered SSH_AGENT_FAILURE (Twisted's `ConchError("agent failure")`). */
export class AgentFailureError extends AgentError {
  override readonly code: string = "ERR_SSH_AGENT_FAILURE";
  /** The request that failed. */
  readonly requestType: number;
  constructor(requestType: number, message = "agent failure") {
    super(message);
    this.name = "AgentFailureError";
    this.requestType = requestType;
  }
}

/** A message's length prefix is over {@link MAX_AGENT_MESSAGE} (or zero): the connection is closed. */
export class AgentMessageTooLongError extends AgentError {
  override readonly code: string = "ERR_SSH_AGENT_MESSAGE_TOO_LONG";
  readonly length: number;
  constructor(length: number, max: number) {
    super(length === 0 ? "an agent message of length 0 has no type" : `an agent message of ${length} bytes is over the ${max}-byte limit`);
    this.name = "AgentMessageTooLongError";
    this.length = length;
  }
}

/** The agent sent a reply we cannot read, or one of the wrong type. */
export class AgentProtocolError extends AgentError {
  override readonly code: string = "ERR_SSH_AGENT_PROTOCOL";
  constructor(message: string) {
    super(message);
    this.name = "AgentProtocolError";
  }
}

/** The connection to the agent ended with the request unanswered. */
export class AgentConnectionLostError extends AgentError {
  override readonly code: string = "ERR_SSH_AGENT_CONNECTION_LOST";
  constructor(message = "the connection to the agent was lost before it answered") {
    super(message);
    this.name = "AgentConnectionLostError";
  }
}

// ---- framing ----------------------------------------------------------------------------------

/**
 * A byte-fed parser of `uint32 length, byte[length] message` frames. Input may be split
 * anywhere; the body is copied once into a buffer of its announced size, so feeding a byte at a
 * time costs no more than feeding it whole. A length over `maxLength` (or zero) throws
 * {@link AgentMessageTooLongError} before any of the body is buffered; the parser is then
 * unusable.
 */
export class AgentFrameParser {
  private readonly header = new Uint8Array(4);
  private headerFilled = 0;
  private body: Uint8Array | undefined = undefined;
  private bodyFilled = 0;
  private broken: AgentMessageTooLongError | undefined = undefined;

  constructor(readonly maxLength: number = MAX_AGENT_MESSAGE) {}

  /** Feeds `data`; returns the messages it completed (each starts with its type byte). */
  feed(data: Uint8Array): Uint8Array[] {
    if (this.broken !== undefined) throw this.broken;
    const out: Uint8Array[] = [];
    let i = 0;
    while (i < data.length) {
      if (this.body === undefined) {
        const n = Math.min(4 - this.headerFilled, data.length - i);
        this.header.set(data.subarray(i, i + n), this.headerFilled);
        this.headerFilled += n;
        i += n;
        if (this.headerFilled < 4) break;
        const length = new DataView(this.header.buffer).getUint32(0);
        if (length === 0 || length > this.maxLength) throw (this.broken = new AgentMessageTooLongError(length, this.maxLength));
        this.body = new Uint8Array(length);
        this.bodyFilled = 0;
      }
      const n = Math.min(this.body.length - this.bodyFilled, data.length - i);
      this.body.set(data.subarray(i, i + n), this.bodyFilled);
      this.bodyFilled += n;
      i += n;
      if (this.bodyFilled === this.body.length) {
        out.push(this.body);
        this.body = undefined;
        this.headerFilled = 0;
        this.bodyFilled = 0;
      }
    }
    return out;
  }

  /** Bytes of an unfinished message held. */
  get buffered(): number {
    return this.headerFilled + this.bodyFilled;
  }
}

/** Frames a message: `uint32 length, byte type, payload`. */
export function frameMessage(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(5 + payload.length);
  new DataView(out.buffer).setUint32(0, payload.length + 1);
  out[4] = type;
  out.set(payload, 5);
  return out;
}
