/** Internal: `SSHAgentClient`, re-exported by `ssh/agent.ts`. */
import { Deferred, fail } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { Protocol } from "@twisted-ts/internet/protocol";
import { SSHReader, SSHWriter, toBytes } from "../common.js";
import { Key } from "../keys.js";
import {
  AGENTC_ADD_IDENTITY,
  AGENTC_ADD_ID_CONSTRAINED,
  AGENTC_LOCK,
  AGENTC_REMOVE_ALL_IDENTITIES,
  AGENTC_REMOVE_IDENTITY,
  AGENTC_REQUEST_IDENTITIES,
  AGENTC_SIGN_REQUEST,
  AGENTC_UNLOCK,
  AGENT_EXTENSION_FAILURE,
  AGENT_FAILURE,
  AGENT_IDENTITIES_ANSWER,
  AGENT_SIGN_RESPONSE,
  AGENT_SUCCESS,
  AgentConnectionLostError,
  AgentFailureError,
  AgentFrameParser,
  AgentProtocolError,
  MAX_AGENT_MESSAGE,
  SSH_AGENT_CONSTRAIN_CONFIRM,
  SSH_AGENT_CONSTRAIN_LIFETIME,
  frameMessage,
} from "./common.js";

const log = new Logger("twisted-ts.conch.ssh.agent");
const EMPTY = new Uint8Array(0);

/** One identity the agent holds: its public key (or certificate) blob and its comment. */
export type AgentIdentity = [blob: Uint8Array, comment: string];

/** Constraints on a key added to an agent (ADD_ID_CONSTRAINED, draft-miller-ssh-agent §4.2.6). */
export interface AgentConstraints {
  /** Seconds after which the agent forgets the key. */
  lifetime?: number;
  /** Every use of the key must be confirmed by the agent's user. */
  confirm?: boolean;
}

/** Writes the constraints of ADD_ID_CONSTRAINED; empty when there are none. */
export function packConstraints(constraints: AgentConstraints): Uint8Array {
  const w = new SSHWriter(16);
  if (constraints.lifetime !== undefined) {
    if (!Number.isInteger(constraints.lifetime) || constraints.lifetime < 1 || constraints.lifetime > 0xffffffff) {
      throw new RangeError(`an agent key lifetime must be a whole number of seconds from 1 to 2^32-1, not ${constraints.lifetime}`);
    }
    w.byte(SSH_AGENT_CONSTRAIN_LIFETIME).uint32(constraints.lifetime);
  }
  if (constraints.confirm === true) w.byte(SSH_AGENT_CONSTRAIN_CONFIRM);
  return w.finish().slice();
}

/**
 * Twisted's `SSHAgentClient`: the client side of the agent protocol (what `ssh-add` speaks), over
 * any transport — a UNIX socket to `ssh-agent` or to an {@link SSHAgentServer}, or an SSH channel.
 * Requests go out at once and replies are matched to them in order. SSH_AGENT_FAILURE fails the
 * request's Deferred with {@link AgentFailureError}; a reply too long for `maxMessageLength`, or
 * one nobody asked for, ends the connection; losing the connection fails every pending request
 * with {@link AgentConnectionLostError}.
 */
export class SSHAgentClient extends Protocol<ITransport> {
  /** The longest reply accepted (OpenSSH's 256 KiB). */
  maxMessageLength = MAX_AGENT_MESSAGE;
  /** Requests waiting for their reply, oldest first, each with its request number. */
  readonly deferreds: Array<{ readonly requestType: number; readonly d: Deferred<Uint8Array> }> = [];
  private parser: AgentFrameParser | undefined = undefined;
  private lostReason: Error | undefined = undefined;

  override connectionMade(): void {
    this.parser = new AgentFrameParser(this.maxMessageLength);
  }

  override dataReceived(data: Uint8Array): void {
    if (this.lostReason !== undefined) return;
    this.parser ??= new AgentFrameParser(this.maxMessageLength);
    let replies: Uint8Array[];
    try {
      replies = this.parser.feed(data);
    } catch (e) {
      this.abort(e instanceof Error ? e : new AgentProtocolError(String(e)));
      return;
    }
    for (const packet of replies) {
      const pending = this.deferreds.shift();
      if (pending === undefined) {
        this.abort(new AgentProtocolError(`the agent sent a reply (type ${packet[0]!}) to no request`));
        return;
      }
      const type = packet[0]!;
      if (type === AGENT_FAILURE || type === AGENT_EXTENSION_FAILURE) pending.d.errback(new AgentFailureError(pending.requestType));
      else if (type === AGENT_SUCCESS) pending.d.callback(EMPTY);
      else pending.d.callback(packet);
      if (this.lostReason !== undefined) return;
    }
  }

  /** Fails everything pending with `error` and closes the connection. */
  private abort(error: Error): void {
    log.warn("closing the agent connection: {error}", { error: error.message });
    this.failPending(error);
    this.transport.loseConnection();
  }

  private failPending(error: Error): void {
    if (this.lostReason === undefined) this.lostReason = error;
    for (const { d } of this.deferreds.splice(0)) d.errback(error);
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.failPending(new AgentConnectionLostError());
  }

  /**
   * Sends request `reqType` with payload `data`. The Deferred fires with the reply message (type
   * byte first), with an empty array for SSH_AGENT_SUCCESS, or fails with
   * {@link AgentFailureError} for SSH_AGENT_FAILURE.
   */
  sendRequest(reqType: number, data: Uint8Array): Deferred<Uint8Array> {
    if (this.lostReason !== undefined || !this.connected) return fail(this.lostReason ?? new AgentConnectionLostError("not connected to an agent"));
    const d = new Deferred<Uint8Array>();
    this.deferreds.push({ requestType: reqType, d });
    this.transport.write(frameMessage(reqType, data));
    return d;
  }

  /** The keys the agent holds, as `[blob, comment]` pairs (comments decoded as UTF-8). */
  requestIdentities(): Deferred<AgentIdentity[]> {
    return this.sendRequest(AGENTC_REQUEST_IDENTITIES, EMPTY).addCallback((packet: Uint8Array) => {
      expectType(packet, AGENT_IDENTITIES_ANSWER, "REQUEST_IDENTITIES");
      return readReply("IDENTITIES_ANSWER", packet, (r) => {
        const n = r.uint32();
        // Each identity takes at least 8 bytes: a count past that is a lie.
        if (n > r.remaining / 8) throw new AgentProtocolError(`the agent claims ${n} identities in ${r.remaining} bytes`);
        const out: AgentIdentity[] = [];
        for (let i = 0; i < n; i++) {
          const blob = r.string().slice();
          out.push([blob, Buffer.from(r.string()).toString("utf8")]);
        }
        return out;
      });
    });
  }

  /**
   * Asks the agent to sign `data` with the key of public key (or certificate) blob `blob`; fires
   * with the SSH signature blob. `flags` picks the RSA hash: {@link SSH_AGENT_RSA_SHA2_256} or
   * {@link SSH_AGENT_RSA_SHA2_512} (0 means ssh-rsa, SHA-1); other key types ignore it.
   */
  signData(blob: Uint8Array, data: Uint8Array | string, flags = 0): Deferred<Uint8Array> {
    const req = new SSHWriter().string(blob).string(toBytes(data)).uint32(flags).finish();
    return this.sendRequest(AGENTC_SIGN_REQUEST, req).addCallback((packet: Uint8Array) => {
      expectType(packet, AGENT_SIGN_RESPONSE, "SIGN_REQUEST");
      return readReply("SIGN_RESPONSE", packet, (r) => r.string().slice());
    });
  }

  /**
   * Adds a private key: a {@link Key} or OpenSSH's private key blob (Twisted's argument), with
   * `comment` and optional constraints (ADD_ID_CONSTRAINED when there are any).
   */
  addIdentity(key: Key | Uint8Array, comment: string | Uint8Array = "", constraints: AgentConstraints = {}): Deferred<void> {
    let packed: Uint8Array;
    let blob: Uint8Array;
    try {
      packed = packConstraints(constraints);
      blob = key instanceof Key ? key.privateBlob() : key;
    } catch (e) {
      return fail(e);
    }
    const req = new SSHWriter(blob.length + 64).raw(blob).string(comment).raw(packed).finish();
    return this.sendRequest(packed.length > 0 ? AGENTC_ADD_ID_CONSTRAINED : AGENTC_ADD_IDENTITY, req).addCallback(toVoid);
  }

  /** Removes the key of public key blob (or Key) `blob` from the agent. */
  removeIdentity(blob: Uint8Array | Key): Deferred<void> {
    const b = blob instanceof Key ? blob.blob() : blob;
    return this.sendRequest(AGENTC_REMOVE_IDENTITY, new SSHWriter().string(b).finish()).addCallback(toVoid);
  }

  /** Removes every key from the agent. */
  removeAllIdentities(): Deferred<void> {
    return this.sendRequest(AGENTC_REMOVE_ALL_IDENTITIES, EMPTY).addCallback(toVoid);
  }

  /** Locks the agent with `passphrase`: it lists no keys and signs nothing until unlocked. */
  lock(passphrase: string | Uint8Array): Deferred<void> {
    return this.sendRequest(AGENTC_LOCK, new SSHWriter().string(passphrase).finish()).addCallback(toVoid);
  }

  /** Unlocks the agent; fails with {@link AgentFailureError} for a wrong passphrase. */
  unlock(passphrase: string | Uint8Array): Deferred<void> {
    return this.sendRequest(AGENTC_UNLOCK, new SSHWriter().string(passphrase).finish()).addCallback(toVoid);
  }
}

function toVoid(): void {}

function expectType(packet: Uint8Array, type: number, request: string): void {
  if (packet.length === 0 || packet[0] !== type) {
    throw new AgentProtocolError(`unexpected response to ${request}: ${packet.length === 0 ? "SUCCESS" : `type ${packet[0]!}`}`);
  }
}

function readReply<T>(what: string, packet: Uint8Array, read: (r: SSHReader) => T): T {
  const r = new SSHReader(packet, 1);
  try {
    return read(r);
  } catch (e) {
    if (e instanceof AgentProtocolError) throw e;
    throw new AgentProtocolError(`malformed ${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
