/**
 * `twisted.conch.client.endpoints`: stream client endpoints over SSH.
 *
 * {@link SSHCommandClientEndpoint} runs a command on a server and connects a protocol to its
 * standard input and output: the session channel is the protocol's transport. Closing that
 * transport closes the channel (and the connection when the endpoint made it); a non-zero exit
 * status or a signal reaches `connectionLost` as ProcessTerminated, a clean exit as
 * ConnectionDone.
 *
 * {@link SSHDirectTCPIPClientEndpoint} connects a protocol to `host:port` as seen from an SSH
 * server, through a `direct-tcpip` channel. Running an SSH client over it is a jump host
 * (OpenSSH's ProxyJump); give it as the `endpoint` of another connection to chain jumps to any
 * depth:
 *
 *     const jump = SSHDirectTCPIPClientEndpoint.newConnection(reactor, "me", "bastion", "inner", 22);
 *     const ep = SSHCommandClientEndpoint.newConnection(reactor, "uptime", "me", "inner", { endpoint: jump });
 */
import { homedir } from "node:os";
import { join } from "node:path";
import { CancelledError, Deferred, succeed } from "@twisted-ts/internet/defer";
import { TCP4ClientEndpoint } from "@twisted-ts/internet/endpoints";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IProtocol, IProtocolFactory, IReactorTCP, IStreamClientEndpoint } from "@twisted-ts/internet/interfaces";
import type { SSHConnection } from "../ssh/connection.js";
import type { Key } from "../ssh/keys.js";
import { CommandChannel, DirectTCPIPChannel, directTCPIPOpenData, type ProtocolChannel, type SSHConnectionCreator } from "./_channels.js";
import { type ClientUI, terminalUI } from "./default.js";
import { AuthenticationFailed, connect, type ConnectOptions } from "./direct.js";
import type { HostKeyPolicy, KnownHostsFile } from "./knownhosts.js";

export { AuthenticationFailed };

/** How {@link SSHCommandClientEndpoint.newConnection} and its direct-tcpip sibling reach and log in to the server. */
export interface NewConnectionOptions {
  /** The server's port (22). */
  port?: number;
  /** Private keys to offer. */
  keys?: readonly Key[];
  /** Private key files to offer after `keys`. */
  identities?: readonly string[];
  /** A password to try once. */
  password?: string;
  /** An endpoint to an SSH agent (Twisted's `agentEndpoint`): its keys are offered first. */
  agentEndpoint?: IStreamClientEndpoint;
  /** The known_hosts file, `~/.ssh/known_hosts` by default. */
  knownHosts?: KnownHostsFile | string;
  /** StrictHostKeyChecking: `ask` (the default; refuses unknown keys without a terminal), `accept-new`, `strict`. */
  policy?: HostKeyPolicy;
  /** Asks the user (host keys, passphrases, passwords); the terminal when standard input is one. */
  ui?: ClientUI;
  /** ServerAliveInterval in seconds (off by default). */
  keepaliveInterval?: number;
  /** ServerAliveCountMax (3). */
  keepaliveCountMax?: number;
  /**
   * How to reach the server: TCP to `hostname:port` by default; an
   * {@link SSHDirectTCPIPClientEndpoint} to go through a jump host.
   */
  endpoint?: IStreamClientEndpoint;
}

/** Twisted's `_NewConnectionHelper`: makes a connection per `connect` and closes it after. */
class NewConnectionHelper implements SSHConnectionCreator {
  constructor(
    private readonly endpoint: IStreamClientEndpoint,
    private readonly options: ConnectOptions,
  ) {}

  secureConnection(): Deferred<SSHConnection> {
    return connect(this.endpoint, this.options);
  }

  cleanupConnection(connection: SSHConnection, immediate: boolean): void {
    const t = connection.transport as (SSHConnection["transport"] & { transport?: { abortConnection?: () => void } }) | undefined;
    if (immediate && t?.transport?.abortConnection !== undefined) t.transport.abortConnection();
    else t?.loseConnection();
  }
}

/** Twisted's `_ExistingConnectionHelper`: hands out a connection and leaves it open. */
class ExistingConnectionHelper implements SSHConnectionCreator {
  constructor(readonly connection: SSHConnection) {}
  secureConnection(): Deferred<SSHConnection> {
    return succeed(this.connection);
  }
  cleanupConnection(): void {}
}

function newHelper(reactor: IReactorTCP, username: string, hostname: string, o: NewConnectionOptions): NewConnectionHelper {
  const port = o.port ?? 22;
  const ui = o.ui ?? terminalUI();
  const options: ConnectOptions = {
    user: username,
    hostname,
    port,
    knownHosts: o.knownHosts ?? join(process.env["HOME"] ?? homedir(), ".ssh", "known_hosts"),
    ...(o.policy !== undefined ? { policy: o.policy } : {}),
    ...(ui !== undefined ? { ui } : {}),
    ...(o.keys !== undefined ? { keys: o.keys } : {}),
    ...(o.identities !== undefined ? { identities: o.identities } : {}),
    ...(o.password !== undefined ? { password: o.password } : {}),
    ...(o.agentEndpoint !== undefined ? { agentEndpoint: o.agentEndpoint } : {}),
    ...(o.keepaliveInterval !== undefined ? { keepaliveInterval: o.keepaliveInterval } : {}),
    ...(o.keepaliveCountMax !== undefined ? { keepaliveCountMax: o.keepaliveCountMax } : {}),
  };
  return new NewConnectionHelper(o.endpoint ?? new TCP4ClientEndpoint(reactor, hostname, port), options);
}

/** Opens `channel` on a connection from `creator`; fires with the channel's protocol. */
function runOnChannel(creator: SSHConnectionCreator, make: (connected: Deferred<IProtocol>) => ProtocolChannel, extra?: Uint8Array): Deferred<IProtocol> {
  return creator.secureConnection().addCallback((connection: SSHConnection) => {
    const connected = new Deferred<IProtocol>();
    // Cancelling means the caller wants it gone now (a timeout): abort rather than close.
    connected.addErrback((f: Failure) => {
      creator.cleanupConnection(connection, f.check(CancelledError) !== null);
      return f;
    });
    connection.openChannel(make(connected), extra);
    return connected;
  });
}

/**
 * Twisted's `SSHCommandClientEndpoint`: an IStreamClientEndpoint whose `connect(factory)` runs
 * `command` on the server and fires with the factory's protocol connected to the command's
 * standard input and output.
 */
export class SSHCommandClientEndpoint implements IStreamClientEndpoint {
  private constructor(
    private readonly creator: SSHConnectionCreator,
    /** The command to run. */
    readonly command: string | Uint8Array,
  ) {}

  /**
   * An endpoint that makes a new connection to `hostname` for every `connect`, logs in as
   * `username` (keys, password, terminal prompts) and closes the connection when the command's
   * channel closes.
   */
  static newConnection(
    reactor: IReactorTCP,
    command: string | Uint8Array,
    username: string,
    hostname: string,
    options: NewConnectionOptions = {},
  ): SSHCommandClientEndpoint {
    return new SSHCommandClientEndpoint(newHelper(reactor, username, hostname, options), command);
  }

  /** An endpoint that runs `command` on a channel of an open, authenticated connection, left open after. */
  static existingConnection(connection: SSHConnection, command: string | Uint8Array): SSHCommandClientEndpoint {
    return new SSHCommandClientEndpoint(new ExistingConnectionHelper(connection), command);
  }

  /**
   * Connects (or takes the existing connection), runs the command and fires with the factory's
   * protocol once the server accepted `exec`; fails with the connection, host key, login, channel
   * or exec error.
   */
  connect(factory: IProtocolFactory): Deferred<IProtocol> {
    return runOnChannel(this.creator, (connected) => new CommandChannel(this.creator, this.command, factory, connected));
  }
}

/**
 * A stream client endpoint to `host:port` through an SSH server's `direct-tcpip` channel (what
 * `ssh -W` and ProxyJump use). The channel is the protocol's transport, so an SSH client runs
 * over it like over TCP: pass this endpoint as {@link NewConnectionOptions.endpoint} to jump.
 */
export class SSHDirectTCPIPClientEndpoint implements IStreamClientEndpoint {
  private constructor(
    private readonly creator: SSHConnectionCreator,
    /** The host to reach, as the server resolves it. */
    readonly host: string,
    /** The port to reach. */
    readonly port: number,
  ) {}

  /**
   * An endpoint through a new connection to the SSH server `hostname` (made for every `connect`
   * and closed when the channel closes) to `host:port`.
   */
  static newConnection(
    reactor: IReactorTCP,
    username: string,
    hostname: string,
    host: string,
    port: number,
    options: NewConnectionOptions = {},
  ): SSHDirectTCPIPClientEndpoint {
    return new SSHDirectTCPIPClientEndpoint(newHelper(reactor, username, hostname, options), host, port);
  }

  /** An endpoint through an open, authenticated connection (left open after) to `host:port`. */
  static existingConnection(connection: SSHConnection, host: string, port: number): SSHDirectTCPIPClientEndpoint {
    return new SSHDirectTCPIPClientEndpoint(new ExistingConnectionHelper(connection), host, port);
  }

  /**
   * Connects (or takes the existing connection), opens the `direct-tcpip` channel and fires with
   * the factory's protocol once the server confirmed it; fails when it refused.
   */
  connect(factory: IProtocolFactory): Deferred<IProtocol> {
    return runOnChannel(this.creator, (connected) => new DirectTCPIPChannel(this.creator, factory, connected), directTCPIPOpenData(this.host, this.port));
  }
}
