/**
 * Client-side listeners of TCP forwarding: local (`ssh -L`) and dynamic (`ssh -D`, SOCKS).
 *
 * Each accepted connection is an {@link SSHLocalForwardingProtocol}: it opens a `direct-tcpip`
 * channel (RFC 4254 §7.2) and joins the socket to it through the {@link SSHForwardingClient} of
 * `ssh/forwarding`, which carries flow control and half-close both ways. Nothing of the socket is
 * read until the channel is open; if the open fails the socket is closed at once (after a SOCKS
 * failure reply). A listener takes at most {@link MAX_FORWARDED_CONNECTIONS} connections at once;
 * past that, new ones are closed as they come, and the session is not touched.
 *
 * The listeners of a connection stop when its service stops (the SSH connection is gone), as
 * Twisted's `conch` script does in its `serviceStopped`.
 */
import { Deferred } from "@twisted-ts/internet/defer";
import { TCP4ServerEndpoint } from "@twisted-ts/internet/endpoints";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IAddress, IHalfCloseableProtocol, IListeningPort, IProtocolFactory, IReactorTCP, ITCPTransport } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { Protocol } from "@twisted-ts/internet/protocol";
import { ChannelOpenError, ConnectionStoppedError } from "../../error.js";
import { SSHChannel, type SSHChannelOptions } from "../channel.js";
import type { SSHConnection } from "../connection.js";
import { type HostPort, SSHForwardingClient, forwardingReactor, packOpen_direct_tcpip } from "../forwarding.js";
import { SOCKSServerParser } from "./socks.js";

const log = new Logger("twisted-ts.conch.ssh.forwarding");

/**
 * Connections one local or dynamic forwarding listener carries at once (its `maxConnections`).
 * 256 is a quarter of the channels a connection may have open ({@link MAX_OPEN_CHANNELS}, 1024),
 * so one flooded listener leaves room for the session and other forwards; it is far above what a
 * browser opens through one SOCKS proxy (Chrome: 32). It also bounds memory: each connection may
 * hold up to one channel window (2 MiB) of data its socket has not taken yet.
 */
export const MAX_FORWARDED_CONNECTIONS = 256;

/** The listen backlog of forwarding listeners (OpenSSH's `SSH_LISTEN_BACKLOG`). */
export const LISTEN_BACKLOG = 128;

/** Where a forwarding listens: `[bind:]port` of `ssh -L`, `-R` and `-D`. */
export interface ForwardListen {
  /** Address to bind; for local and dynamic forwarding the default is 127.0.0.1. */
  host?: string;
  /** Port; 0 picks a free one (see the listening port's `getHost()`, or the bound port of {@link remoteForward}). */
  port: number;
  /** Connections carried at once (local and dynamic forwarding); default {@link MAX_FORWARDED_CONNECTIONS}. */
  maxConnections?: number;
}

/** The `direct-tcpip` channel of one accepted connection; its hooks go to the socket's protocol. */
export class SSHLocalForwardingChannel extends SSHChannel {
  override name = "direct-tcpip";

  constructor(
    readonly owner: SSHLocalForwardingProtocol,
    options: SSHChannelOptions = {},
  ) {
    super(options);
  }

  override channelOpen(_specificData: Uint8Array): void {
    this.owner.channelOpened();
  }

  override openFailed(reason: Error): void {
    this.owner.channelOpenFailed(reason);
  }

  override dataReceived(data: Uint8Array): void {
    this.owner.transport.write(data);
  }

  override eofReceived(): void {
    this.owner.pipe?.channelEOFReceived();
  }

  override closed(): void {
    this.owner.channelClosed();
  }
}

/**
 * One accepted connection of a local forwarding listener: opens a `direct-tcpip` channel to the
 * listener's destination and runs an {@link SSHForwardingClient} (the pipe) between the socket and
 * the channel. Override {@link channelOpened} / {@link channelOpenFailed} to act on the open.
 */
export class SSHLocalForwardingProtocol extends Protocol<ITCPTransport> implements IHalfCloseableProtocol {
  /** The socket side of the forwarded connection, once a channel is being opened. */
  pipe: SSHForwardingClient | undefined = undefined;
  channel: SSHLocalForwardingChannel | undefined = undefined;

  constructor(
    readonly forwarding: SSHLocalForwardingFactory,
    /** The accepted socket's peer, sent as the originator of the channel. */
    readonly origin: HostPort,
  ) {
    super();
  }

  override connectionMade(): void {
    const destination = this.forwarding.destination;
    if (destination !== undefined) this.openChannel(destination, new Uint8Array(0));
  }

  /** Opens the channel to `destination`; `early` (bytes that came first) goes out once it is open. */
  openChannel(destination: HostPort, early: Uint8Array): void {
    const conn = this.forwarding.conn;
    const channel = new SSHLocalForwardingChannel(this, { conn });
    const pipe = new SSHForwardingClient(channel);
    this.channel = channel;
    this.pipe = pipe;
    // The pipe stops reading the socket until the channel is open.
    pipe.makeConnection(this.transport);
    if (early.length > 0) pipe.dataReceived(early);
    try {
      conn.openChannel(channel, packOpen_direct_tcpip(destination, this.origin));
    } catch (e) {
      log.failure("cannot open a direct-tcpip channel", e, "warn");
      this.transport.loseConnection();
    }
  }

  /** The channel is open: what was held goes out, and the flows are joined. */
  channelOpened(): void {
    this.pipe?.channelReady();
  }

  /** The server refused the channel (`reason` is a ChannelOpenError): the socket is closed at once. */
  channelOpenFailed(reason: Error): void {
    log.info("direct-tcpip open refused: {reason}", { reason: reason.message });
    this.transport.loseConnection();
  }

  /** The channel is closed both ways: so is the socket. */
  channelClosed(): void {
    const pipe = this.pipe;
    if (pipe !== undefined) pipe.channel = undefined;
    this.transport.loseConnection();
  }

  override dataReceived(data: Uint8Array): void {
    this.pipe?.dataReceived(data);
  }

  readConnectionLost(): void {
    if (this.pipe === undefined) this.transport.loseConnection();
    else this.pipe.readConnectionLost();
  }

  writeConnectionLost(): void {
    this.pipe?.writeConnectionLost();
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.forwarding.active.delete(this);
    this.pipe?.connectionLost(reason);
  }
}

/**
 * One accepted connection of a dynamic forwarding listener: a SOCKS4, SOCKS4a or SOCKS5
 * handshake ({@link SOCKSServerParser}) names the destination, which is sent unresolved in the
 * `direct-tcpip` open so the server resolves it. The success reply goes out once the channel is
 * open, a failure reply if it is refused; a bad request is answered (where SOCKS has a reply for
 * it) and the socket closed.
 */
export class SSHDynamicForwardingProtocol extends SSHLocalForwardingProtocol {
  readonly parser = new SOCKSServerParser();

  override dataReceived(data: Uint8Array): void {
    if (this.pipe !== undefined) {
      super.dataReceived(data);
      return;
    }
    for (const step of this.parser.feed(data)) {
      if (step.kind === "send") this.transport.write(step.data);
      else if (step.kind === "connect") this.openChannel([step.request.host, step.request.port], step.rest);
      else {
        log.info("dropped a SOCKS client from {host}: {reason}", { host: this.origin[0], reason: step.error.message });
        if (step.reply !== undefined) this.transport.write(step.reply);
        this.transport.loseConnection();
      }
    }
  }

  override channelOpened(): void {
    this.transport.write(this.parser.successReply());
    super.channelOpened();
  }

  override channelOpenFailed(reason: Error): void {
    const code = reason instanceof ChannelOpenError ? reason.reasonCode : undefined;
    this.transport.write(this.parser.failureReply(code, reason.message));
    super.channelOpenFailed(reason);
  }
}

/**
 * The factory of a local forwarding listener: each connection it accepts is forwarded to
 * `destination` through `conn` ({@link SSHLocalForwardingProtocol}), at most `maxConnections` at once.
 */
export class SSHLocalForwardingFactory implements IProtocolFactory {
  /** Connections carried at once; past it, new connections are closed. */
  maxConnections = MAX_FORWARDED_CONNECTIONS;
  /** The connections being forwarded now. */
  readonly active = new Set<SSHLocalForwardingProtocol>();
  /** Set once the SSH connection has gone: nothing more is accepted. */
  stopped = false;

  constructor(
    readonly conn: SSHConnection,
    /** Where each connection goes (undefined: the protocol finds out, as SOCKS does). */
    readonly destination: HostPort | undefined,
  ) {}

  buildProtocol(addr: IAddress): SSHLocalForwardingProtocol | null {
    if (this.stopped) return null;
    if (this.active.size >= this.maxConnections) {
      log.warn("forwarding listener refused a connection from {host}: {count} connections already forwarded", { host: addr.host, count: this.active.size });
      return null;
    }
    const p = this.makeProtocol([addr.host, addr.port]);
    this.active.add(p);
    return p;
  }

  /** The protocol of one accepted connection; override to use a subclass. */
  protected makeProtocol(origin: HostPort): SSHLocalForwardingProtocol {
    return new SSHLocalForwardingProtocol(this, origin);
  }

  doStart(): void {}
  doStop(): void {}
}

/** The factory of a dynamic (SOCKS) forwarding listener. */
export class SSHDynamicForwardingFactory extends SSHLocalForwardingFactory {
  constructor(conn: SSHConnection) {
    super(conn, undefined);
  }

  protected override makeProtocol(origin: HostPort): SSHLocalForwardingProtocol {
    return new SSHDynamicForwardingProtocol(this, origin);
  }
}

/** The listening port of a local or dynamic forward (what {@link localForward} fires with). */
export class SSHForwardingPort implements IListeningPort {
  constructor(
    readonly port: IListeningPort,
    readonly factory: SSHLocalForwardingFactory,
  ) {}

  startListening(): void {
    this.port.startListening();
  }

  /** Stops accepting connections; those already forwarded go on. */
  stopListening(): Deferred<void> {
    this.factory.stopped = true;
    listeners.get(this.factory.conn)?.delete(this);
    return this.port.stopListening();
  }

  getHost(): IAddress {
    return this.port.getHost();
  }
}

/** The listeners of each connection, stopped with it. */
const listeners = new WeakMap<SSHConnection, Set<SSHForwardingPort>>();
/** Connections whose service has stopped: a listener that comes up later is stopped at once. */
const stoppedConnections = new WeakSet<SSHConnection>();

/**
 * @internal Called by `SSHConnection.serviceStopped`: the connection's local and dynamic
 * listeners stop, and take no more connections.
 */
export function stopLocalForwards(conn: SSHConnection): void {
  stoppedConnections.add(conn);
  const ports = listeners.get(conn);
  if (ports === undefined) return;
  listeners.delete(conn);
  for (const port of ports) void port.stopListening();
}

function listenForwarding(factory: SSHLocalForwardingFactory, listen: ForwardListen, reactor: IReactorTCP | undefined): Deferred<IListeningPort> {
  if (listen.maxConnections !== undefined) factory.maxConnections = listen.maxConnections;
  const conn = factory.conn;
  return Deferred.fromPromise(forwardingReactor(reactor)).addCallback((r: IReactorTCP) =>
    new TCP4ServerEndpoint(r, listen.port, LISTEN_BACKLOG, listen.host ?? "127.0.0.1").listen(factory).addCallback((listening: IListeningPort) => {
      const port = new SSHForwardingPort(listening, factory);
      if (stoppedConnections.has(conn)) {
        // The SSH connection ended while the port was being bound.
        return port.stopListening().addCallback(() => {
          throw new ConnectionStoppedError("the SSH connection ended before the forward was listening");
        });
      }
      let ports = listeners.get(conn);
      if (ports === undefined) listeners.set(conn, (ports = new Set()));
      ports.add(port);
      const host = port.getHost();
      log.info("forwarding {host}:{port} through the SSH connection", { host: host.host, port: host.port });
      return port;
    }),
  );
}

/**
 * Local forwarding, as `ssh -L [bind:]port:host:hostport`: listens on `listen` (default address
 * 127.0.0.1; port 0 picks a free port, see the result's `getHost()`) and forwards each connection
 * to `destination` (resolved and connected to by the server) over a `direct-tcpip` channel.
 * Fires with the listening port (`stopListening()` ends the forward; connections already
 * forwarded go on), or fails with `CannotListenError` (or `ConnectionStoppedError` when the SSH
 * connection ends first).
 */
export function localForward(connection: SSHConnection, listen: ForwardListen, destination: HostPort, reactor?: IReactorTCP): Deferred<IListeningPort> {
  return listenForwarding(new SSHLocalForwardingFactory(connection, destination), listen, reactor);
}

/**
 * Dynamic forwarding, as `ssh -D [bind:]port`: a SOCKS4/4a/5 proxy on `listen` (default address
 * 127.0.0.1) whose CONNECT requests become `direct-tcpip` channels; host names go to the server
 * unresolved. Fires with the listening port, or fails with `CannotListenError`.
 */
export function dynamicForward(connection: SSHConnection, listen: ForwardListen, reactor?: IReactorTCP): Deferred<IListeningPort> {
  return listenForwarding(new SSHDynamicForwardingFactory(connection), listen, reactor);
}
