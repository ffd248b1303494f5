/**
 * `twisted.conch.avatar` and the avatar interfaces of `twisted.conch.interfaces`: what a logged-in
 * SSH user can do.
 *
 * A realm returns an avatar (a {@link ConchUser}) for each login. The connection service asks the
 * avatar for every channel the client opens (`lookupChannel`, through the `channelLookup` table)
 * and every global request (`global_<name>` methods). Session channels ask the avatar for an
 * {@link ISession} (`sessionFor`, or the avatar itself when it has `openShell`/`execCommand`),
 * which runs the shell, commands and pty of that channel.
 */
import type { IProtocol } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { ConchError, OPEN_UNKNOWN_CHANNEL_TYPE } from "./error.js";
import { SSHChannel, type SSHChannelOptions } from "./ssh/channel.js";
import type { GlobalRequestResult, SSHConnection } from "./ssh/connection.js";
import type { SSHSessionProcessProtocol } from "./ssh/session.js";
import { IConchUserToken } from "./ssh/userauth.js";
import { forwardingPolicy, type ForwardingPolicy } from "./ssh/_forwarding/policy.js";

/**
 * The cred interface token the SSH server asks realms for; a realm answers
 * `[avatar.IConchUser, user, logout]` (the same token as `userauth.IConchUserToken`).
 */
export const IConchUser = IConchUserToken;

/** A channel class (constructed with Twisted's keyword arguments as options) or a factory function. */
export type ChannelFactory =
  | (new (options: SSHChannelOptions) => SSHChannel)
  | ((options: Required<Pick<SSHChannelOptions, "remoteWindow" | "remoteMaxPacket" | "data" | "avatar">>) => SSHChannel | undefined);

/**
 * A subsystem (`sftp`, …): a protocol class built with the request data and the avatar, run over
 * the session channel.
 */
export type SubsystemFactory = (data: Uint8Array, avatar: IConchUser) => IProtocol;

/** `IConchUser`: what the connection service asks of the logged-in user. */
export interface IConchUser {
  /** The connection this avatar is logged in on (set by the connection service when it starts). */
  conn?: SSHConnection | undefined;
  /** A channel for an incoming CHANNEL_OPEN, or undefined to refuse it as an unknown type. */
  lookupChannel(channelType: string, windowSize: number, maxPacket: number, data: Uint8Array): SSHChannel | undefined | null;
  /** The protocol serving subsystem `subsystem`, or undefined/false to refuse it. */
  lookupSubsystem(subsystem: string, data: Uint8Array): IProtocol | undefined | null | false;
  /** A global request from the client; see {@link GlobalRequestResult}. */
  gotGlobalRequest(requestType: string, data: Uint8Array): GlobalRequestResult;
  /** What this login may forward; without it, the factory's `forwardingPolicy` applies. */
  getForwardingPolicy?(): ForwardingPolicy;
}

/** Terminal geometry as Twisted orders it: rows, columns, pixel width, pixel height. */
export type WindowSize = readonly [rows: number, cols: number, xpixel: number, ypixel: number];

/** Encoded terminal modes of a pty-req (RFC 4254 §8): opcode and value pairs. */
export type TerminalModes = ReadonlyArray<readonly [opcode: number, value: number]>;

/**
 * `ISession`: the shell, commands and pty of one session channel. Throwing (or, where allowed,
 * returning false) refuses the request.
 */
export interface ISession {
  /** A pty-req: remember the terminal for the shell or command that follows. */
  getPty(term: string, windowSize: WindowSize, modes: TerminalModes): void;
  /**
   * Start a shell connected to `proto`: a ProcessProtocol for a real process
   * (`reactor.spawnProcess(proto, …)`), or the ITransport of an in-process protocol
   * (`p.makeConnection(proto); proto.makeConnection(session.wrapProtocol(p))`).
   */
  openShell(proto: SSHSessionProcessProtocol): void;
  /** Run `command` connected to `proto` (as for `openShell`). */
  execCommand(proto: SSHSessionProcessProtocol, command: string): void;
  /** The client's terminal changed size. */
  windowChanged(newWindowSize: WindowSize): void;
  /** The client sent EOF: no more input. */
  eofReceived(): void;
  /** The channel closed. */
  closed(): void;
  /** `ISessionSetEnv`: set an environment variable; throw {@link EnvironmentVariableNotPermitted} to refuse. */
  setEnv?(name: string, value: string): void;
  /**
   * Set a variable the server decided on — `SSH_ORIGINAL_COMMAND` under a forced command,
   * authorized_keys `environment=` under PermitUserEnvironment — which no client-side filter may
   * refuse. Without it those variables are not set (and a warning is logged).
   */
  setServerEnv?(name: string, value: string): void;
  /** RFC 4254 §6.9: deliver signal `name` ("INT", "TERM", … without "SIG"). */
  signal?(name: string): void;
  /** RFC 4335: a break of `lengthMs` milliseconds; return false to refuse. */
  break?(lengthMs: number): boolean | void;
  /**
   * RFC 4254 §6.5 `subsystem`, run by the session itself as a process connected to `proto` (sshd's
   * `Subsystem` directive). Return false when this session has no subsystem of that name: the
   * avatar's in-process `lookupSubsystem` is asked next. Throwing refuses the request.
   */
  execSubsystem?(proto: SSHSessionProcessProtocol, subsystem: string): boolean;
}

/** Raised by `ISession.setEnv` to refuse a variable (Twisted's `EnvironmentVariableNotPermitted`). */
export class EnvironmentVariableNotPermitted extends Error {
  readonly code = "ERR_SSH_ENV_NOT_PERMITTED";
  constructor(message = "setting this environment variable is not permitted") {
    super(message);
    this.name = "EnvironmentVariableNotPermitted";
  }
}

/** An avatar that makes one ISession per session channel. */
export interface ISessionProvider {
  sessionFor(channel: SSHChannel): ISession;
}

/**
 * Twisted's `ConchUser`: fill `channelLookup` (channel type → channel class or factory) and
 * `subsystemLookup`; define `global_<name>(data)` methods for global requests.
 */
export class ConchUser implements IConchUser {
  /** Channel type → channel class or factory (Twisted's dict, keyed by type name). */
  channelLookup: Record<string, ChannelFactory> = Object.create(null) as Record<string, ChannelFactory>;
  /** Subsystem name → protocol factory. */
  subsystemLookup: Record<string, SubsystemFactory> = Object.create(null) as Record<string, SubsystemFactory>;
  /** The connection this avatar is logged in on. */
  conn: SSHConnection | undefined = undefined;

  protected readonly log = new Logger("twisted-ts.conch.avatar", this);

  /**
   * A channel of `channelType` built with `{ remoteWindow, remoteMaxPacket, data, avatar }`;
   * unknown types raise `ConchError(OPEN_UNKNOWN_CHANNEL_TYPE, "unknown channel")` (Twisted's
   * argument order, which the connection swaps back).
   */
  lookupChannel(channelType: string, windowSize: number, maxPacket: number, data: Uint8Array): SSHChannel | undefined {
    const klass = Object.hasOwn(this.channelLookup, channelType) ? this.channelLookup[channelType] : undefined;
    if (klass === undefined) throw new ConchError(OPEN_UNKNOWN_CHANNEL_TYPE, "unknown channel");
    const options = { remoteWindow: windowSize, remoteMaxPacket: maxPacket, data, avatar: this as IConchUser };
    if (klass.prototype instanceof SSHChannel || klass === SSHChannel) {
      return new (klass as new (options: SSHChannelOptions) => SSHChannel)(options);
    }
    return (klass as (o: typeof options) => SSHChannel | undefined)(options);
  }

  /** The protocol for `subsystem`, or false when there is none. */
  lookupSubsystem(subsystem: string, data: Uint8Array): IProtocol | false {
    this.log.debug("subsystem lookup: {subsystem}", { subsystem });
    const factory = Object.hasOwn(this.subsystemLookup, subsystem) ? this.subsystemLookup[subsystem] : undefined;
    if (factory === undefined) return false;
    return factory(data, this);
  }

  /**
   * What this login may forward (sshd_config's AllowTcpForwarding, PermitOpen, PermitListen,
   * GatewayPorts, …): the factory's `forwardingPolicy` over OpenSSH's defaults. Override to decide
   * per user; the connection checks it before `lookupChannel` and `gotGlobalRequest` see a
   * forwarding request.
   */
  getForwardingPolicy(): ForwardingPolicy {
    return forwardingPolicy(this.conn?.transport?.factory?.forwardingPolicy);
  }

  /** Dispatches to `global_<requestType>` (`-` as `_`); unknown requests are refused. */
  gotGlobalRequest(requestType: string, data: Uint8Array): GlobalRequestResult {
    const f = (this as unknown as Record<string, unknown>)[`global_${requestType.replaceAll("-", "_")}`];
    if (typeof f !== "function") return false;
    return (f as (data: Uint8Array) => GlobalRequestResult).call(this, data);
  }
}
