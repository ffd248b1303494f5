/**
 * The channels behind the client endpoints (internal): a channel that is the transport of a
 * protocol built from a factory (Twisted's `endpoints._CommandChannel`, generalised), with its
 * two kinds: a session running a command and a `direct-tcpip` channel to a host and port.
 */
import { Deferred } from "@twisted-ts/internet/defer";
import { ConnectionDone, NoProtocol, ProcessTerminated } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import type { IHalfCloseableProtocol, IProtocol, IProtocolFactory } from "@twisted-ts/internet/interfaces";
import { SSHChannel } from "../ssh/channel.js";
import { NS } from "../ssh/common.js";
import type { SSHConnection } from "../ssh/connection.js";
import { packOpen_direct_tcpip } from "../ssh/forwarding.js";
import { parseRequest_exit_signal, parseRequest_exit_status } from "../ssh/_session/requests.js";

/** Hands out a connection and cleans up after a channel on it (Twisted's `_ISSHConnectionCreator`). */
export interface SSHConnectionCreator {
  /** Fires with an authenticated connection. */
  secureConnection(): Deferred<SSHConnection>;
  /** The channel is done: close the connection if this creator made it (`immediate`: abort). */
  cleanupConnection(connection: SSHConnection, immediate: boolean): void;
}

function isHalfCloseable(p: IProtocol): p is IProtocol & IHalfCloseableProtocol {
  return typeof (p as Partial<IHalfCloseableProtocol>).readConnectionLost === "function";
}

/**
 * A channel that runs a protocol from `factory` once it is ready: the channel is the protocol's
 * transport. `connected` fires with the protocol after its `makeConnection`, or fails when the
 * channel cannot be opened or started.
 */
export class ProtocolChannel extends SSHChannel {
  /** The protocol running over this channel, once it is ready. */
  protocol: IProtocol | undefined = undefined;
  /** Why the protocol's connection was lost (ConnectionDone unless set). */
  protected reason: Error | undefined = undefined;
  private early: Uint8Array[] = [];

  constructor(
    protected readonly creator: SSHConnectionCreator,
    protected readonly factory: IProtocolFactory,
    readonly connected: Deferred<IProtocol>,
  ) {
    super();
  }

  override openFailed(reason: Error): void {
    this.connected.errback(reason);
  }

  /** The channel is usable: build the protocol and connect it to this channel. */
  protected ready(): void {
    const protocol = this.factory.buildProtocol(this.getPeer());
    if (protocol === null) {
      this.loseConnection();
      this.connected.errback(new NoProtocol());
      return;
    }
    this.protocol = protocol;
    protocol.makeConnection(this);
    for (const data of this.early.splice(0)) protocol.dataReceived(data);
    this.connected.callback(protocol);
  }

  /** Could not start: close the channel and fail `connected`. */
  protected notReady(reason: Failure | Error): void {
    this.loseConnection();
    if (!this.connected.called) this.connected.errback(reason);
  }

  override dataReceived(data: Uint8Array): void {
    if (this.protocol === undefined) this.early.push(data.slice());
    else this.protocol.dataReceived(data);
  }

  override eofReceived(): void {
    const p = this.protocol;
    if (p !== undefined && isHalfCloseable(p)) p.readConnectionLost();
  }

  override closed(): void {
    this.creator.cleanupConnection(this.conn, false);
    if (this.protocol === undefined) {
      if (!this.connected.called) this.connected.errback(this.reason ?? new ConnectionDone("ssh channel closed"));
      return;
    }
    this.protocol.connectionLost(new Failure(this.reason ?? new ConnectionDone("ssh channel closed")));
  }
}

/**
 * Twisted's `_CommandChannel`: a session channel that runs `command` with `exec`; the protocol is
 * connected once the server accepted it. A non-zero exit status or a signal reaches the
 * protocol's `connectionLost` as ProcessTerminated; stderr is logged.
 */
export class CommandChannel extends ProtocolChannel {
  override name = "session";
  /** The exit status from the server's exit-status request, if one came. */
  exitStatus: number | undefined = undefined;

  constructor(
    creator: SSHConnectionCreator,
    readonly command: string | Uint8Array,
    factory: IProtocolFactory,
    connected: Deferred<IProtocol>,
  ) {
    super(creator, factory, connected);
  }

  override channelOpen(_specificData: Uint8Array): void {
    this.conn
      .sendRequest(this, "exec", NS(this.command), true)
      .addCallback(() => this.ready())
      .addErrback((f: Failure) => this.notReady(f));
  }

  override extReceived(dataType: number, data: Uint8Array): void {
    this.log.debug("stderr of the command ({dataType}): {length} bytes", { dataType, length: data.length });
  }

  /** RFC 4254 §6.10 `uint32 exit_status`: non-zero becomes ProcessTerminated. */
  request_exit_status(data: Uint8Array): boolean {
    const status = parseRequest_exit_status(data);
    this.exitStatus = status;
    if (status !== 0) this.reason = new ProcessTerminated(status, null, null);
    return true;
  }

  /** RFC 4254 §6.10: the command was killed by a signal. */
  request_exit_signal(data: Uint8Array): boolean {
    const s = parseRequest_exit_signal(data);
    this.log.info("Process exited with signal {signal}; core dumped: {coreDumped}; error message: {errorMessage}", { ...s });
    this.reason = new ProcessTerminated(null, `SIG${s.signal}`, null);
    return true;
  }
}

/**
 * A `direct-tcpip` channel (RFC 4254 §7.2) to `host:port` as seen from the server: the protocol
 * is connected when the server confirms the open.
 */
export class DirectTCPIPChannel extends ProtocolChannel {
  override name = "direct-tcpip";

  override channelOpen(_specificData: Uint8Array): void {
    this.ready();
  }
}

/** The CHANNEL_OPEN data of a direct-tcpip channel to `host:port` from an unnamed local end. */
export function directTCPIPOpenData(host: string, port: number): Uint8Array {
  return packOpen_direct_tcpip([host, port], ["127.0.0.1", 0]);
}
