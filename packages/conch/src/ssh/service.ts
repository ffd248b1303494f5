/**
 * `twisted.conch.ssh.service`: the base of every SSH service (`ssh-userauth`, `ssh-connection`).
 *
 * A service is started by the transport (`setService`), receives the packets whose numbers belong
 * to it through `packetReceived`, and sends through `transport.sendPacket`. Incoming messages are
 * dispatched by name to `ssh_<MESSAGE>` methods; a number with no handler is answered with
 * SSH_MSG_UNIMPLEMENTED.
 */
import type { IAddress } from "@twisted-ts/internet/interfaces";
import type { Logger } from "@twisted-ts/internet/log";
import type { Portal } from "@twisted-ts/cred/portal";
import type { AuthOptions, ServerAuthSettings } from "./authopt.js";
import type { ForwardingPolicy } from "./_forwarding/policy.js";

/** What a service may use of the SSH transport it runs on. `SSHTransportBase` implements it. */
export interface SSHServiceTransport {
  /** Sends one SSH message; queued while a key exchange is under way. */
  sendPacket(messageType: number, payload: Uint8Array): void;
  /** Sends SSH_MSG_DISCONNECT and closes the connection. */
  sendDisconnect(reason: number, description: string): void;
  /** Answers a message number we do not implement (SSH_MSG_UNIMPLEMENTED). */
  sendUnimplemented(): void;
  /** Replaces the running service (userauth hands over to the connection service this way). */
  setService(service: SSHService): void;
  /** Closes the connection. */
  loseConnection(): void;
  /** True when packets in that direction are encrypted ("in", "out" or "both"). */
  isEncrypted(direction?: "in" | "out" | "both"): boolean;
  /** True when packets in that direction are integrity-protected. */
  isVerified(direction?: "in" | "out" | "both"): boolean;
  /** The exchange hash of the first key exchange (RFC 4253 §7.2); empty before it. */
  readonly sessionID: Uint8Array;
  /** The peer's address. */
  getPeer(): IAddress;
  /** Our address. */
  getHost(): IAddress;
  /** The transport's logger; services log under it. */
  readonly logger: Logger;
  /** True on the client side of the connection. */
  readonly isClient: boolean;
  /** The clock timers run on (the reactor, or a `task.Clock` in tests). */
  readonly clock: ServiceClock;
  /**
   * Client side: the signature algorithms the server accepts for publickey authentication, from
   * its EXT_INFO `server-sig-algs` (RFC 8308 §3.1); undefined when it sent none.
   */
  readonly serverSigAlgs: readonly string[] | undefined;
  /** Server side: the factory that made this transport (portal, services); not used on a client. */
  readonly factory: SSHServiceFactory | null | undefined;
  /** Server side: the authenticated avatar, set by the userauth service on success. */
  avatar: unknown;
  /** Server side: called once when the connection ends after a successful login. */
  logoutFunction: (() => void) | undefined;
  /**
   * Server side: what the login may do, set by the userauth service on success; the session and
   * connection layers enforce it. Undefined (no login, or the client side): nothing restricted.
   */
  authOptions?: AuthOptions | undefined;
}

/** The timer methods services use (an IReactorTime). */
export interface ServiceClock {
  seconds(): number;
  callLater(delay: number, fn: () => void): { cancel(): void; active(): boolean };
}

/** What a server transport's factory offers its services (`factory.SSHFactory` implements it). */
export interface SSHServiceFactory {
  /** The service class registered under `name` (`ssh-userauth`, `ssh-connection`), if any. */
  getService(transport: SSHServiceTransport, name: string): (new () => SSHService) | undefined;
  /** The cred portal users log in through (`ssh-userauth` takes its methods from its checkers). */
  portal: Portal | null | undefined;
  /** Server-wide settings every login's {@link AuthOptions} are narrowed by (sshd's defaults for what is unset). */
  readonly authSettings?: Partial<ServerAuthSettings> | undefined;
  /** sshd's `ClientAliveInterval`: seconds of silence before a keepalive to the client; 0 or unset is off. */
  readonly clientAliveInterval?: number | undefined;
  /** sshd's `ClientAliveCountMax`: unanswered keepalives before the client is dropped (default 3). */
  readonly clientAliveCountMax?: number | undefined;
  /** Server-wide forwarding policy (sshd's defaults for what is unset); an avatar's `getForwardingPolicy()` overrides it. */
  readonly forwardingPolicy?: Partial<ForwardingPolicy> | undefined;
}

/** A table from message number to Twisted's message name (`MSG_USERAUTH_REQUEST`, …). */
export type MessageTable = Readonly<Record<number, string>>;

/**
 * Twisted's `SSHService`. Subclasses set `name` and `protocolMessages` and define
 * `ssh_<NAME>(packet)` methods for the messages they handle.
 */
export class SSHService {
  /** The service name requested on the wire (`ssh-userauth`, `ssh-connection`). */
  name = "";
  /** Message numbers this service handles, to their `MSG_*` names. */
  protocolMessages: MessageTable = {};
  /** Set by the transport before `serviceStarted`. */
  transport: SSHServiceTransport | undefined = undefined;

  /** Called when the service becomes the transport's active service. */
  serviceStarted(): void {}

  /** Called when the service is replaced or the connection closes. */
  serviceStopped(): void {}

  /**
   * The transport holds what we send back (`held`: the peer is not reading, or a key exchange is
   * under way) or sends it again. The connection service pauses its channels' producers meanwhile.
   */
  outputHeld(_held: boolean): void {}

  /** Warns of an incoming message we cannot act on and, through the transport, tells the peer. */
  logPrefix(): string {
    return `SSHService ${JSON.stringify(this.name)} on ${this.transport?.constructor.name ?? "no transport"}`;
  }

  /** The transport, or an error when the service has not been started on one. */
  protected requireTransport(): SSHServiceTransport {
    if (this.transport === undefined) throw new Error(`${this.name || "SSHService"}: not attached to a transport`);
    return this.transport;
  }

  /**
   * Dispatches `packet` (the payload after the message number) to `ssh_<NAME>`, where NAME is the
   * message name without its `MSG_` prefix. Unknown numbers get SSH_MSG_UNIMPLEMENTED.
   */
  packetReceived(messageNum: number, packet: Uint8Array): void {
    const name = this.protocolMessages[messageNum];
    if (name !== undefined) {
      const method = (this as unknown as Record<string, unknown>)[`ssh_${name.slice(4)}`];
      if (typeof method === "function") {
        (method as (this: SSHService, p: Uint8Array) => void).call(this, packet);
        return;
      }
    }
    this.transport?.logger.info("couldn't handle {messageNum} in service {service}", {
      messageNum,
      service: this.name,
    });
    this.transport?.sendUnimplemented();
  }

  /** Sends one message through the transport. */
  sendPacket(messageType: number, payload: Uint8Array): void {
    this.requireTransport().sendPacket(messageType, payload);
  }
}
