/** Internal: `SSHAgentServer` and its factory, re-exported by `ssh/agent.ts`. */
import { type Awaitable, Deferred, maybeDeferred } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IReactorTime, ITransport } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { reactor as globalReactor } from "@twisted-ts/internet/reactor";
import { SSHReader, SSHWriter } from "../common.js";
import { Key } from "../keys.js";
import { readPrivateFields } from "../_keys/components.js";
import type { AgentConstraints } from "./client.js";
import {
  AGENTC_REQUEST_IDENTITIES,
  AGENTC_UNLOCK,
  AGENT_FAILURE,
  AGENT_IDENTITIES_ANSWER,
  AGENT_RSA_IDENTITIES_ANSWER,
  AGENT_SIGN_RESPONSE,
  AGENT_SUCCESS,
  AgentFrameParser,
  type AgentRequestName,
  MAX_AGENT_MESSAGE,
  SSH_AGENT_CONSTRAIN_CONFIRM,
  SSH_AGENT_CONSTRAIN_LIFETIME,
  SSH_AGENT_RSA_SHA2_256,
  SSH_AGENT_RSA_SHA2_512,
  frameMessage,
  messages,
} from "./common.js";
import { AgentKeyring, type AgentKeyEntry } from "./keyring.js";

const log = new Logger("twisted-ts.conch.ssh.agent");

/** Requests read but not yet answered (one waits for a confirmation) past which the connection is closed. */
export const MAX_AGENT_QUEUED_REQUESTS = 64;
/** Seconds added to the wait after each wrong unlock passphrase (ssh-agent's 0.1 s steps). */
export const UNLOCK_FAILURE_DELAY = 0.1;
/** The longest wait after a wrong unlock passphrase, in seconds (ssh-agent's 10 s). */
export const MAX_UNLOCK_FAILURE_DELAY = 10;

/** A reply: its message number and payload. */
export type AgentReply = readonly [type: number, payload: Uint8Array];

/**
 * Asked before a key added with the confirm constraint is used; true allows the use. There is
 * no askpass here, so without one every such use is refused.
 */
export type AgentConfirm = (entry: AgentKeyEntry) => Awaitable<boolean>;

type Handler = (data: Uint8Array) => Awaitable<AgentReply>;

const EMPTY = new Uint8Array(0);
const FAILURE: AgentReply = [AGENT_FAILURE, EMPTY];
const SUCCESS: AgentReply = [AGENT_SUCCESS, EMPTY];
const status = (ok: boolean): AgentReply => (ok ? SUCCESS : FAILURE);

/**
 * Twisted's `SSHAgentServer`: the agent side of the protocol (what `ssh-agent` does), backed by
 * an {@link AgentKeyring}: its own `keyring`, else its factory's. Requests are handled in order,
 * one at a time, so replies go out in request order even while a confirmation is awaited.
 * `agentc_<NAME>` methods handle each request and return the reply; unknown requests, malformed
 * ones and refusals get SSH_AGENT_FAILURE. While the keyring is locked every request but UNLOCK
 * fails, and REQUEST_IDENTITIES lists nothing.
 */
export class SSHAgentServer extends Protocol<ITransport> {
  /** The keys served; when unset, the factory's `keyring`. */
  keyring: AgentKeyring | undefined = undefined;
  /** The longest request accepted (OpenSSH's 256 KiB); a longer one closes the connection. */
  maxMessageLength = MAX_AGENT_MESSAGE;
  private parser: AgentFrameParser | undefined = undefined;
  private readonly queue: Uint8Array[] = [];
  private busy = false;

  constructor(keyring?: AgentKeyring) {
    super();
    if (keyring !== undefined) this.keyring = keyring;
  }

  /** The keyring in use, or undefined when neither this protocol nor its factory has one. */
  getKeyring(): AgentKeyring | undefined {
    return this.keyring ?? (this.factory as Partial<SSHAgentFactory> | null)?.keyring;
  }

  override dataReceived(data: Uint8Array): void {
    if (!this.connected) return;
    this.parser ??= new AgentFrameParser(this.maxMessageLength);
    let requests: Uint8Array[];
    try {
      requests = this.parser.feed(data);
    } catch (e) {
      log.warn("closing an agent connection: {error}", { error: e instanceof Error ? e.message : String(e) });
      this.transport.loseConnection();
      return;
    }
    this.queue.push(...requests);
    if (this.queue.length > MAX_AGENT_QUEUED_REQUESTS) {
      log.warn("closing an agent connection: more than {max} requests wait for an answer", { max: MAX_AGENT_QUEUED_REQUESTS });
      this.queue.length = 0;
      this.transport.loseConnection();
      return;
    }
    this.processQueue();
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.queue.length = 0;
  }

  private processQueue(): void {
    while (!this.busy && this.connected && this.queue.length > 0) {
      const packet = this.queue.shift()!;
      const reply = maybeDeferred(() => this.handle(packet));
      if (reply.called && !reply.paused) {
        reply.addBoth((r: AgentReply | Failure) => this.sendReply(r));
        continue;
      }
      this.busy = true;
      reply.addBoth((r: AgentReply | Failure) => {
        this.busy = false;
        this.sendReply(r);
        this.processQueue();
      });
    }
  }

  private sendReply(reply: AgentReply | Failure): void {
    if (!Array.isArray(reply)) {
      log.info("agent request failed: {error}", { error: (reply as Failure).getErrorMessage() });
      reply = FAILURE;
    }
    if (this.connected) this.sendResponse(reply[0], reply[1]);
  }

  /** Frames and writes one reply (Twisted's `sendResponse`). */
  sendResponse(reqType: number, data: Uint8Array): void {
    this.transport.write(frameMessage(reqType, data));
  }

  private handle(packet: Uint8Array): Awaitable<AgentReply> {
    const type = packet[0]!;
    const name = Object.hasOwn(messages, type) ? messages[type] : undefined;
    if (name === undefined) {
      log.debug("unknown agent request {type}", { type });
      return FAILURE;
    }
    const keyring = this.getKeyring();
    if (keyring === undefined) {
      log.error("SSHAgentServer has no keyring (set .keyring or the factory's keyring)");
      return FAILURE;
    }
    if (keyring.locked && type !== AGENTC_UNLOCK) {
      return type === AGENTC_REQUEST_IDENTITIES ? [AGENT_IDENTITIES_ANSWER, new Uint8Array(4)] : FAILURE;
    }
    const handler = (this as unknown as Record<`agentc_${AgentRequestName}`, Handler>)[`agentc_${name}`];
    return handler.call(this, packet.subarray(1));
  }

  private requireKeyring(): AgentKeyring {
    const k = this.getKeyring();
    if (k === undefined) throw new Error("no keyring");
    return k;
  }

  /** Empty payload. Answers `uint32 nkeys, (string key blob, string comment)*`. */
  agentc_REQUEST_IDENTITIES(_data: Uint8Array): AgentReply {
    const entries = this.requireKeyring().list();
    const w = new SSHWriter().uint32(entries.length);
    for (const e of entries) w.string(e.blob).string(e.comment);
    return [AGENT_IDENTITIES_ANSWER, w.finish().slice()];
  }

  /**
   * `string key blob, string data, uint32 flags`. Signs with the held key, RSA with the hash the
   * flags ask for (SHA-256 before SHA-512, as ssh-agent; neither means ssh-rsa), once a
   * confirm-constrained key's use is confirmed. Answers `string signature`.
   */
  agentc_SIGN_REQUEST(data: Uint8Array): Awaitable<AgentReply> {
    const r = new SSHReader(data);
    const blob = r.string();
    const toSign = r.string().slice();
    const flags = r.remaining >= 4 ? r.uint32() : 0;
    const entry = this.requireKeyring().get(blob);
    if (entry === undefined) return FAILURE;
    const sign = (): AgentReply => {
      const key = entry.key;
      let alg = key.sshType();
      if (key.type() === "RSA") {
        if ((flags & SSH_AGENT_RSA_SHA2_256) !== 0) alg = "rsa-sha2-256";
        else if ((flags & SSH_AGENT_RSA_SHA2_512) !== 0) alg = "rsa-sha2-512";
      }
      return [AGENT_SIGN_RESPONSE, new SSHWriter().string(key.sign(toSign, alg)).finish().slice()];
    };
    if (!entry.confirm) return sign();
    return maybeDeferred(() => this.confirmKey(entry)).addCallback((ok: boolean) => {
      if (ok !== true) {
        log.info("use of agent key {comment} not confirmed", { comment: entry.comment });
        return FAILURE;
      }
      // The key may have expired or been removed while the user was asked.
      return this.requireKeyring().get(blob) === entry ? sign() : FAILURE;
    });
  }

  /**
   * Asks whether `entry`, added with the confirm constraint, may be used now. The default asks
   * the factory's `confirm`, and refuses when there is none.
   */
  confirmKey(entry: AgentKeyEntry): Awaitable<boolean> {
    const confirm = (this.factory as Partial<SSHAgentFactory> | null)?.confirm;
    return confirm === undefined ? false : confirm(entry);
  }

  /** OpenSSH's private key fields (`string type, ...`), then `string comment`. */
  agentc_ADD_IDENTITY(data: Uint8Array): AgentReply {
    return this.addIdentity(data, false);
  }

  /** As ADD_IDENTITY, then constraints: `byte LIFETIME, uint32 seconds` and/or `byte CONFIRM`. */
  agentc_ADD_ID_CONSTRAINED(data: Uint8Array): AgentReply {
    return this.addIdentity(data, true);
  }

  private addIdentity(data: Uint8Array, constrained: boolean): AgentReply {
    const r = new SSHReader(data);
    readPrivateFields(r, "agent key");
    const key = Key.fromString(data.subarray(0, r.offset), "private_blob");
    const comment = Buffer.from(r.string()).toString("utf8");
    const constraints: AgentConstraints = {};
    while (constrained && r.remaining > 0) {
      const c = r.byte();
      if (c === SSH_AGENT_CONSTRAIN_LIFETIME) constraints.lifetime = r.uint32();
      else if (c === SSH_AGENT_CONSTRAIN_CONFIRM) constraints.confirm = true;
      else {
        log.info("refusing a key with unknown constraint {c}", { c });
        return FAILURE;
      }
    }
    r.end("add identity request");
    // A key whose fields do not belong together must not be kept: prove it signs.
    const probe = Uint8Array.of(0x74, 0x77, 0x74, 0x73);
    if (!key.verify(key.sign(probe), probe)) return FAILURE;
    this.requireKeyring().add(key, comment, constraints);
    return SUCCESS;
  }

  /** `string key blob`. */
  agentc_REMOVE_IDENTITY(data: Uint8Array): AgentReply {
    const r = new SSHReader(data);
    const blob = r.string();
    return status(this.requireKeyring().remove(blob));
  }

  /** Empty payload. */
  agentc_REMOVE_ALL_IDENTITIES(_data: Uint8Array): AgentReply {
    this.requireKeyring().removeAll();
    return SUCCESS;
  }

  /** `string passphrase`. Fails when already locked. */
  agentc_LOCK(data: Uint8Array): AgentReply {
    return status(this.requireKeyring().lock(new SSHReader(data).string()));
  }

  /**
   * `string passphrase`. A wrong passphrase fails after a delay that grows with each failure on
   * the keyring's clock, as ssh-agent's, to slow guessing.
   */
  agentc_UNLOCK(data: Uint8Array): Awaitable<AgentReply> {
    const keyring = this.requireKeyring();
    if (!keyring.locked) return FAILURE;
    if (keyring.unlock(new SSHReader(data).string())) return SUCCESS;
    const d = new Deferred<AgentReply>();
    keyring.clock.callLater(Math.min(UNLOCK_FAILURE_DELAY * keyring.failedUnlocks, MAX_UNLOCK_FAILURE_DELAY), () => d.callback(FAILURE));
    return d;
  }

  /** SSH1 (Twisted answers it): an empty list. */
  agentc_REQUEST_RSA_IDENTITIES(_data: Uint8Array): AgentReply {
    return [AGENT_RSA_IDENTITIES_ANSWER, new Uint8Array(4)];
  }

  /** SSH1 (Twisted answers it): nothing to remove. */
  agentc_REMOVE_RSA_IDENTITY(_data: Uint8Array): AgentReply {
    return SUCCESS;
  }

  /** SSH1 (Twisted answers it): nothing to remove. */
  agentc_REMOVE_ALL_RSA_IDENTITIES(_data: Uint8Array): AgentReply {
    return SUCCESS;
  }
}

/** Options of an {@link SSHAgentFactory}. */
export interface SSHAgentFactoryOptions {
  /** The clock for key lifetimes and unlock delays (default: the global reactor). */
  clock?: IReactorTime;
  /** Confirms the use of confirm-constrained keys (default: none, so every such use is refused). */
  confirm?: AgentConfirm;
}

/**
 * Makes an {@link SSHAgentServer} per connection, all serving one {@link AgentKeyring}. Listen
 * with it on a private UNIX socket ({@link listenAgentSocket}) to run an agent.
 */
export class SSHAgentFactory extends Factory<SSHAgentServer> {
  override protocol: (new () => SSHAgentServer) | null = SSHAgentServer;
  readonly keyring: AgentKeyring;
  confirm: AgentConfirm | undefined;

  constructor(options: SSHAgentFactoryOptions = {}) {
    super();
    this.keyring = new AgentKeyring(options.clock ?? globalReactor);
    this.confirm = options.confirm;
  }

  /** The agent stops: forget every key (and cancel their lifetime timers). */
  override stopFactory(): void {
    this.keyring.stop();
  }
}
