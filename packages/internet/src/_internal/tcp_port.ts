/**
 * Listening ports and outgoing connectors for stream sockets (TCP, UNIX, TLS): Twisted's
 * `tcp.Port` and `tcp.Connector` over `net.Server` / `net.connect` / `tls.connect`.
 *
 * Node binds a socket with an explicit interface asynchronously, so a port's `getHost()` knows
 * an ephemeral port number only once `whenListening()` has fired (binding to all interfaces is
 * immediate). A bind error is reported through `whenListening()` as `CannotListenError`, and
 * logged.
 */
import { createServer as createNetServer, connect as netConnect } from "node:net";
import type { Server, Socket } from "node:net";
import { connect as tlsConnect, createServer as createTLSServer } from "node:tls";
import type { ConnectionOptions, TlsOptions } from "node:tls";
import { fromNode, IPv4Address, IPv6Address, isIPv6, UNIXAddress } from "../address.js";
import { Deferred } from "../defer.js";
import {
  CannotListenError,
  ConnectionLost,
  NotConnectingError,
  SSLError,
  TimeoutError,
  UserError,
  connectErrorFromNode,
} from "../error.js";
import { Failure } from "../failure.js";
import type {
  IAddress,
  IClientFactory,
  IConnector,
  IContextFactory,
  IListeningPort,
  IProtocolFactory,
} from "../interfaces.js";
import type { Logger } from "../log.js";
import type { IDelayedCall } from "../task.js";
import { borrowsReceivedData } from "../interfaces.js";
import { Connection, ReusedReadBuffer, moveToReusedReadBuffer, socketAddresses, type StreamKind } from "./tcp_connection.js";

/** What ports and connectors need from their reactor. */
export interface StreamReactor {
  readonly log: Logger;
  callLater(delay: number, fn: () => void): IDelayedCall;
  readonly ports: Set<{ stopListening(): Deferred<void> }>;
  readonly connections: Set<Connection>;
  readonly connectors: Set<StreamConnector>;
}

/** Where a port listens: a TCP port and interface, or a UNIX path. */
export type ListenTarget =
  | { kind: "TCP"; port: number; iface: string; backlog: number; tls?: IContextFactory }
  | { kind: "UNIX"; path: string; backlog: number };

export class StreamPort implements IListeningPort {
  server: Server | null = null;
  listening = false;
  readonly connections = new Set<Connection>();
  private bound: IAddress | null = null;
  private failure: Failure | null = null;
  private waiters: Array<Deferred<StreamPort>> = [];
  private stopping: Deferred<void> | null = null;

  constructor(
    private readonly reactor: StreamReactor,
    readonly target: ListenTarget,
    readonly factory: IProtocolFactory,
  ) {}

  private get kind(): StreamKind {
    return this.target.kind;
  }

  startListening(): void {
    const t = this.target;
    const server =
      t.kind === "TCP" && t.tls !== undefined
        ? createTLSServer({ ...(t.tls.getContext() as TlsOptions), allowHalfOpen: true })
        : createNetServer({ allowHalfOpen: true });
    this.server = server;
    if (t.kind === "TCP" && t.tls !== undefined) {
      server.on("secureConnection", (s: Socket) => this.accept(s));
      server.on("tlsClientError", (err: Error) => {
        this.reactor.log.debug("TLS handshake failed: {error}", { error: err.message });
      });
    } else {
      server.on("connection", (s: Socket) => this.accept(s));
    }
    server.on("error", (err: Error) => this.bindFailed(err));
    server.on("listening", () => this.bound_());
    this.factory.doStart();
    this.reactor.ports.add(this);
    if (t.kind === "UNIX") server.listen({ path: t.path, backlog: t.backlog });
    else if (t.iface === "") server.listen({ port: t.port, backlog: t.backlog });
    else server.listen({ port: t.port, host: t.iface, backlog: t.backlog, ipv6Only: false });
    if (server.listening) this.bound_();
  }

  private bound_(): void {
    if (this.listening || this.server === null) return;
    this.listening = true;
    const t = this.target;
    if (t.kind === "UNIX") this.bound = new UNIXAddress(t.path);
    else {
      const a = this.server.address();
      if (a !== null && typeof a === "object") this.bound = fromNode("TCP", a.address, a.port, a.family);
    }
    for (const d of this.waiters.splice(0)) d.callback(this);
  }

  private bindFailed(err: Error): void {
    const t = this.target;
    const e =
      t.kind === "UNIX" ? new CannotListenError("", t.path, err) : new CannotListenError(t.iface, t.port, err);
    if (this.listening) {
      this.reactor.log.failure("Error on listening port", new Failure(err), "error");
      return;
    }
    this.failure = new Failure(e);
    this.reactor.log.failure("Cannot listen", this.failure, "error");
    this.reactor.ports.delete(this);
    this.factory.doStop();
    for (const d of this.waiters.splice(0)) d.errback(this.failure);
  }

  /** Fires with this port once it is bound, or fails with CannotListenError. */
  whenListening(): Deferred<StreamPort> {
    if (this.listening) {
      const d = new Deferred<StreamPort>();
      d.callback(this);
      return d;
    }
    const d = new Deferred<StreamPort>();
    if (this.failure !== null) d.errback(this.failure);
    else this.waiters.push(d);
    return d;
  }

  private accept(socket: Socket): void {
    if (this.stopping !== null) {
      socket.destroy();
      return;
    }
    const t = this.target;
    const addrs = socketAddresses(socket, t.kind, t.kind === "UNIX" ? t.path : undefined);
    let protocol;
    try {
      protocol = this.factory.buildProtocol(addrs.peer);
    } catch (e) {
      this.reactor.log.failure("buildProtocol failed", new Failure(e), "error");
      socket.destroy();
      return;
    }
    if (protocol === null) {
      socket.destroy();
      return;
    }
    // A protocol that borrows its input gets reads into one reused buffer, as on connections we
    // open (plain TCP and UNIX; TLS sockets are read as streams).
    let reads: ReusedReadBuffer | null = null;
    if (!(t.kind === "TCP" && t.tls !== undefined) && borrowsReceivedData(protocol)) {
      reads = new ReusedReadBuffer();
      socket = moveToReusedReadBuffer(socket, reads.onread, { writable: true, allowHalfOpen: true }) ?? socket;
    }
    const conn = new Connection(socket, t.kind, true, this.reactor.log, addrs);
    if (reads !== null) reads.connection = conn;
    this.connections.add(conn);
    this.reactor.connections.add(conn);
    conn.onLost = () => {
      this.connections.delete(conn);
      this.reactor.connections.delete(conn);
    };
    conn.attach(protocol);
  }

  /** Stops accepting; established connections stay open. Fires once the socket is closed. */
  stopListening(): Deferred<void> {
    if (this.stopping !== null) {
      const d = new Deferred<void>();
      this.stopping.addBoth(() => d.callback(undefined));
      return d;
    }
    const d = new Deferred<void>();
    this.stopping = d;
    const server = this.server;
    this.reactor.ports.delete(this);
    if (server === null || this.failure !== null) {
      d.callback(undefined);
      return d;
    }
    const wasListening = this.listening;
    this.listening = false;
    // server.close() stops accepting at once but calls back only after every connection has
    // ended; Twisted's stopListening does not wait for connections, so fire on the next turn.
    server.close();
    setImmediate(() => {
      if (wasListening || this.bound !== null) this.factory.doStop();
      d.callback(undefined);
    });
    return d;
  }

  getHost(): IAddress {
    if (this.bound !== null) return this.bound;
    const t = this.target;
    if (t.kind === "UNIX") return new UNIXAddress(t.path);
    return isIPv6(t.iface) ? new IPv6Address("TCP", t.iface, t.port) : new IPv4Address("TCP", t.iface || "0.0.0.0", t.port);
  }

  toString(): string {
    const h = this.getHost();
    return h.family === "UNIX" ? `<Port on ${h.name ?? ""}>` : `<Port on ${h.host}:${h.port}>`;
  }
}

/** Where a connector connects. */
export type ConnectTarget =
  | { kind: "TCP"; host: string; port: number; bindAddress: { host: string; port: number } | null; tls?: IContextFactory }
  | { kind: "UNIX"; path: string };

export class StreamConnector implements IConnector {
  state: "disconnected" | "connecting" | "connected" = "disconnected";
  transport: Connection | null = null;
  private socket: Socket | null = null;
  /** The reused read buffer of the socket being opened (plain TCP and UNIX, not TLS). */
  private reads: ReusedReadBuffer | null = null;
  private factoryStarted = false;
  private timeoutCall: IDelayedCall | null = null;

  constructor(
    private readonly reactor: StreamReactor,
    readonly target: ConnectTarget,
    readonly factory: IClientFactory,
    readonly timeout: number,
  ) {}

  connect(): void {
    if (this.state !== "disconnected") throw new Error(`can't connect in this state: ${this.state}`);
    this.state = "connecting";
    if (!this.factoryStarted) {
      this.factory.doStart();
      this.factoryStarted = true;
    }
    this.reactor.connectors.add(this);
    this.open();
    if (this.timeout > 0) {
      this.timeoutCall = this.reactor.callLater(this.timeout, () => {
        this.timeoutCall = null;
        this.failIfNotConnected(new TimeoutError(undefined, `after ${this.timeout} seconds`));
      });
    }
    this.factory.startedConnecting(this);
  }

  private open(): void {
    const t = this.target;
    let socket: Socket;
    let readyEvent: "connect" | "secureConnect" = "connect";
    const reads = new ReusedReadBuffer();
    this.reads = reads;
    if (t.kind === "UNIX") {
      socket = netConnect({ path: t.path, allowHalfOpen: true, onread: reads.onread });
    } else if (t.tls !== undefined) {
      const opts: ConnectionOptions & { localAddress?: string; localPort?: number } = {
        ...(t.tls.getContext() as ConnectionOptions),
        host: t.host,
        port: t.port,
      };
      if (opts.servername === undefined && !/^[\d.:]+$/.test(t.host)) opts.servername = t.host;
      if (t.bindAddress !== null) {
        opts.localAddress = t.bindAddress.host;
        opts.localPort = t.bindAddress.port;
      }
      socket = tlsConnect(opts);
      readyEvent = "secureConnect";
    } else {
      socket = netConnect({
        host: t.host,
        port: t.port,
        allowHalfOpen: true,
        onread: reads.onread,
        ...(t.bindAddress !== null ? { localAddress: t.bindAddress.host, localPort: t.bindAddress.port } : {}),
      });
    }
    this.socket = socket;
    let tcpUp = false;
    socket.once("connect", () => {
      tcpUp = true;
    });
    const onError = (err: Error): void => {
      socket.off(readyEvent, onReady);
      if (this.socket !== socket) return;
      const isTLS = readyEvent === "secureConnect" && tcpUp;
      this.failIfNotConnected(isTLS ? new SSLError(undefined, err.message) : connectErrorFromNode(err));
    };
    const onReady = (): void => {
      socket.off("error", onError);
      if (this.socket !== socket) return;
      this.connected(socket);
    };
    socket.once("error", onError);
    socket.once(readyEvent, onReady);
  }

  private connected(socket: Socket): void {
    const t = this.target;
    this.cancelTimeout();
    this.socket = null;
    this.reactor.connectors.delete(this);
    this.state = "connected";
    const addrs = socketAddresses(socket, t.kind, t.kind === "UNIX" ? t.path : undefined);
    if (t.kind === "UNIX") {
      (addrs as { host: IAddress }).host = new UNIXAddress(null);
    }
    let protocol;
    try {
      protocol = this.factory.buildProtocol(addrs.peer);
    } catch (e) {
      this.reactor.log.failure("buildProtocol failed", new Failure(e), "error");
      protocol = null;
    }
    const conn = new Connection(socket, t.kind, false, this.reactor.log, addrs);
    if (this.reads !== null) this.reads.connection = conn;
    this.reads = null;
    this.transport = conn;
    this.reactor.connections.add(conn);
    conn.onLost = (reason) => {
      this.reactor.connections.delete(conn);
      this.connectionLost(reason);
    };
    if (protocol === null) {
      conn.loseConnection();
      return;
    }
    conn.attach(protocol);
  }

  private cancelTimeout(): void {
    if (this.timeoutCall !== null) {
      this.timeoutCall.cancel();
      this.timeoutCall = null;
    }
  }

  /** Ends a connection attempt in progress with `err`. */
  failIfNotConnected(err: Error): void {
    if (this.state !== "connecting") return;
    const s = this.socket;
    this.socket = null;
    s?.destroy();
    this.connectionFailed(new Failure(err));
  }

  private connectionFailed(reason: Failure): void {
    this.cancelTimeout();
    this.reactor.connectors.delete(this);
    this.transport = null;
    this.state = "disconnected";
    this.factory.clientConnectionFailed(this, reason);
    if (this.state === "disconnected") {
      this.factory.doStop();
      this.factoryStarted = false;
    }
  }

  private connectionLost(reason: Failure): void {
    this.state = "disconnected";
    this.transport = null;
    this.factory.clientConnectionLost(this, reason);
    if (this.state === "disconnected") {
      this.factory.doStop();
      this.factoryStarted = false;
    }
  }

  stopConnecting(): void {
    if (this.state !== "connecting") throw new NotConnectingError();
    this.failIfNotConnected(new UserError(undefined, "connection was cancelled"));
  }

  disconnect(): void {
    if (this.state === "connecting") this.stopConnecting();
    else if (this.state === "connected" && this.transport !== null) this.transport.loseConnection();
  }

  getDestination(): IAddress {
    const t = this.target;
    if (t.kind === "UNIX") return new UNIXAddress(t.path);
    return isIPv6(t.host) ? new IPv6Address("TCP", t.host, t.port) : new IPv4Address("TCP", t.host, t.port);
  }

  /** Ends the attempt or connection for reactor shutdown. */
  shutdown(): void {
    if (this.state === "connecting") this.failIfNotConnected(new ConnectionLost("Reactor shut down while connecting"));
  }

  toString(): string {
    const d = this.getDestination();
    return d.family === "UNIX" ? `<Connector to ${d.name ?? ""}>` : `<Connector to ${d.host}:${d.port}>`;
  }
}
