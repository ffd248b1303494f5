/**
 * The interfaces of `twisted.internet.interfaces` that other modules and packages share, as
 * TypeScript types. Runtime checks are structural; these exist for the compiler.
 */
import type { Deferred } from "./defer.js";
import type { Failure } from "./failure.js";
import type { IDelayedCall, IReactorTime } from "./_internal/task_time.js";

export type { IDelayedCall, IReactorTime };

/** An endpoint address: `IPv4Address` / `IPv6Address` (`host`, `port`) or `UNIXAddress` (`name`). */
export type IAddress = IPv4Address | IPv6Address | UNIXAddress;

export interface IPv4Address {
  readonly type: "TCP" | "UDP";
  readonly family: "IPv4";
  readonly host: string;
  readonly port: number;
}

export interface IPv6Address {
  readonly type: "TCP" | "UDP";
  readonly family: "IPv6";
  readonly host: string;
  readonly port: number;
}

export interface UNIXAddress {
  readonly type: "UNIX";
  readonly family: "UNIX";
  readonly name: string | null;
  /** Always "" for UNIX addresses; present so `addr.host` reads on every address. */
  readonly host: string;
  readonly port: number;
}

// ---------------------------------------------------------------------------------------------
// Producers and consumers (`twisted.internet.interfaces.IProducer` and friends)

/** Something that produces data for a consumer. */
export interface IProducer {
  /** Stop producing for good; the consumer is going away. */
  stopProducing(): void;
}

/** A producer that writes on its own until paused (a "streaming" producer). */
export interface IPushProducer extends IProducer {
  pauseProducing(): void;
  resumeProducing(): void;
}

/** A producer that writes one chunk each time `resumeProducing` is called. */
export interface IPullProducer extends IProducer {
  resumeProducing(): void;
}

/** Something that takes writes and lets a producer be throttled by it. */
export interface IConsumer {
  /**
   * Registers a producer. `streaming` true: an IPushProducer, paused when the consumer's buffer
   * is full and resumed when it drains. False: an IPullProducer, asked for data whenever the
   * buffer is empty.
   */
  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void;
  unregisterProducer(): void;
  write(data: Uint8Array | string): void;
}

// ---------------------------------------------------------------------------------------------
// Transports

/**
 * The transport a protocol writes to (`ITransport`, plus the consumer and abort methods every
 * transport here has). Strings are written as UTF-8. A written Uint8Array may be held by
 * reference until the kernel takes it: do not modify it after `write`.
 */
export interface ITransport extends IConsumer {
  write(data: Uint8Array | string): void;
  writeSequence(data: Iterable<Uint8Array | string>): void;
  /** Closes the connection after everything written so far has been sent. */
  loseConnection(): void;
  /** Closes the connection at once, discarding buffered output (`ConnectionAborted`). */
  abortConnection(): void;
  getPeer(): IAddress;
  getHost(): IAddress;
  /** True once `loseConnection` (or `abortConnection`) has been called. */
  readonly disconnecting: boolean;
}

/** A stream socket transport (`ITCPTransport`): half-close, socket options, and reading control. */
export interface ITCPTransport extends ITransport, IPushProducer {
  /** Half-close: sends EOF after buffered data; reading continues. */
  loseWriteConnection(): void;
  getTcpNoDelay(): boolean;
  setTcpNoDelay(enabled: boolean): void;
  getTcpKeepAlive(): boolean;
  setTcpKeepAlive(enabled: boolean): void;
  /** Optional: send the writes of the current event-loop turn together when it ends (one writev). */
  coalesceWrites?(): void;
}

/** A TCP transport that can be upgraded to TLS in place. */
export interface ITLSTransport extends ITCPTransport {
  startTLS(contextFactory: IContextFactory): void;
}

/**
 * TLS settings: Twisted's context factory, holding Node's TLS options (`key`, `cert`, `ca`,
 * `rejectUnauthorized`, `servername`, …).
 */
export interface IContextFactory {
  getContext(): TLSOptions;
}

/** The TLS options a context factory carries (Node's secure-context and connection options). */
export interface TLSOptions {
  key?: string | Uint8Array | Array<string | Uint8Array>;
  cert?: string | Uint8Array | Array<string | Uint8Array>;
  ca?: string | Uint8Array | Array<string | Uint8Array>;
  passphrase?: string;
  rejectUnauthorized?: boolean;
  requestCert?: boolean;
  servername?: string;
  minVersion?: "TLSv1.2" | "TLSv1.3";
  maxVersion?: "TLSv1.2" | "TLSv1.3";
  ALPNProtocols?: string[];
  ciphers?: string;
  checkServerIdentity?: (hostname: string, cert: unknown) => Error | undefined;
}

// ---------------------------------------------------------------------------------------------
// Protocols and factories

/** A stream protocol, as the reactor drives it. */
export interface IProtocol {
  makeConnection(transport: ITransport): void;
  connectionMade(): void;
  dataReceived(data: Uint8Array): void;
  connectionLost(reason: Failure): void;
}

/**
 * A protocol whose `dataReceived` (or, for a process protocol, `childDataReceived`) is done with
 * the bytes it is given when it returns: whatever it keeps, it copies. A transport may then hand
 * it views of one read buffer that it reuses for the next read, instead of a new buffer per read.
 * That saves an allocation per read and the garbage behind it, which is most of the cost of
 * receiving bulk data in Node. Twisted has no such notion (Python's bytes are immutable); a
 * protocol that does not declare it gets bytes of its own, as always.
 */
export interface IBorrowingProtocol {
  readonly borrowsReceivedData: true;
}

/** True when `p` declares IBorrowingProtocol. */
export function borrowsReceivedData(p: unknown): boolean {
  return typeof p === "object" && p !== null && (p as Partial<IBorrowingProtocol>).borrowsReceivedData === true;
}

/** A protocol that wants the halves of a half-closed connection reported separately. */
export interface IHalfCloseableProtocol {
  /** The peer sent EOF; writing is still possible. */
  readConnectionLost(): void;
  /** Our `loseWriteConnection()` completed. */
  writeConnectionLost(): void;
}

/** True when `p` implements IHalfCloseableProtocol. */
export function isHalfCloseable(p: unknown): p is IHalfCloseableProtocol {
  return (
    typeof p === "object" &&
    p !== null &&
    typeof (p as Partial<IHalfCloseableProtocol>).readConnectionLost === "function" &&
    typeof (p as Partial<IHalfCloseableProtocol>).writeConnectionLost === "function"
  );
}

/** Makes protocols for connections (`IProtocolFactory`). */
export interface IProtocolFactory {
  /** A protocol for a connection from/to `addr`, or null to refuse it. */
  buildProtocol(addr: IAddress): IProtocol | null;
  doStart(): void;
  doStop(): void;
}

/** A client factory, told about the fate of connection attempts. */
export interface IClientFactory extends IProtocolFactory {
  startedConnecting(connector: IConnector): void;
  clientConnectionFailed(connector: IConnector, reason: Failure): void;
  clientConnectionLost(connector: IConnector, reason: Failure): void;
}

/** A listening socket. */
export interface IListeningPort {
  startListening(): void;
  /** Stops accepting connections; fires when the socket is closed. */
  stopListening(): Deferred<void>;
  getHost(): IAddress;
}

/** An outgoing connection attempt, re-usable for reconnects. */
export interface IConnector {
  stopConnecting(): void;
  disconnect(): void;
  connect(): void;
  getDestination(): IAddress;
}

// ---------------------------------------------------------------------------------------------
// Datagrams

/** A UDP port as its protocol sees it. */
export interface IUDPTransport {
  /** Sends a datagram to `addr` (or the connected peer when omitted). */
  write(data: Uint8Array | string, addr?: { host: string; port: number }): void;
  connect(host: string, port: number): void;
  getHost(): IAddress;
  stopListening(): Deferred<void>;
  loseConnection(): void;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A child process as its ProcessProtocol sees it. */
export interface IProcessTransport {
  readonly pid: number | undefined;
  write(data: Uint8Array | string): void;
  writeSequence(data: Iterable<Uint8Array | string>): void;
  writeToChild(childFD: number, data: Uint8Array | string): void;
  closeStdin(): void;
  closeStdout(): void;
  closeStderr(): void;
  closeChildFD(childFD: number): void;
  /** Sends a signal ("TERM", "KILL", "INT", … or with the SIG prefix, or a number). */
  signalProcess(signal: string | number): void;
  /** Closes stdin, stdout and stderr. */
  loseConnection(): void;
  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void;
  unregisterProducer(): void;
  getPeer(): IAddress;
  getHost(): IAddress;
}

/** What a process transport calls on its protocol. */
export interface IProcessProtocol {
  makeConnection(process: IProcessTransport): void;
  childDataReceived(childFD: number, data: Uint8Array): void;
  childConnectionLost(childFD: number): void;
  processExited(reason: Failure): void;
  processEnded(reason: Failure): void;
}

/** Options for `spawnProcess` (Twisted's keyword arguments). */
export interface SpawnProcessOptions {
  /** The environment; defaults to an empty one, as in Twisted (pass `process.env` to inherit). */
  env?: Record<string, string | undefined>;
  /** The working directory. */
  path?: string;
  uid?: number;
  gid?: number;
  /**
   * The child's file descriptors: `"w"` (we write to it), `"r"` (we read from it), or a number
   * (our descriptor, inherited). Default `{0: "w", 1: "r", 2: "r"}`.
   */
  childFDs?: Record<number, "r" | "w" | number>;
  /**
   * Spawn through the reactor's process launcher (`NodeReactor.processLauncher`): a small helper
   * process forks the child, so this process's event loop does not stop while it does (spawning
   * from a large process takes milliseconds). The child's pipes are then sockets. Ignored where
   * `childFDs` passes one of our descriptors, and by reactors without a launcher. Not in Twisted.
   */
  launcher?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The reactor

export type SystemEventPhase = "before" | "during" | "after";
export type SystemEvent = "startup" | "shutdown";

/** `IReactorCore`: running, stopping, and system event triggers. */
export interface IReactorCore {
  readonly running: boolean;
  run(): Promise<void>;
  stop(): void;
  callWhenRunning(fn: (...args: never[]) => unknown, ...args: unknown[]): unknown;
  addSystemEventTrigger(
    phase: SystemEventPhase,
    event: SystemEvent,
    fn: (...args: never[]) => unknown,
    ...args: unknown[]
  ): unknown;
  removeSystemEventTrigger(triggerID: unknown): void;
}

export interface IReactorTCP {
  listenTCP(port: number, factory: IProtocolFactory, backlog?: number, iface?: string): IListeningPort;
  connectTCP(
    host: string,
    port: number,
    factory: IClientFactory,
    timeout?: number,
    bindAddress?: { host: string; port: number } | null,
  ): IConnector;
}

export interface IReactorUNIX {
  listenUNIX(path: string, factory: IProtocolFactory, backlog?: number): IListeningPort;
  connectUNIX(path: string, factory: IClientFactory, timeout?: number): IConnector;
}

export interface IReactorSSL {
  listenSSL(
    port: number,
    factory: IProtocolFactory,
    contextFactory: IContextFactory,
    backlog?: number,
    iface?: string,
  ): IListeningPort;
  connectSSL(
    host: string,
    port: number,
    factory: IClientFactory,
    contextFactory: IContextFactory,
    timeout?: number,
    bindAddress?: { host: string; port: number } | null,
  ): IConnector;
}

/** A datagram protocol as `listenUDP` drives it. */
export interface IDatagramProtocol {
  makeConnection(transport: IUDPTransport): void;
  datagramReceived(data: Uint8Array, addr: IPv4Address | IPv6Address): void;
  doStop(): void;
}

export interface IReactorUDP {
  listenUDP(port: number, protocol: IDatagramProtocol, iface?: string, maxPacketSize?: number): IListeningPort;
}

export interface IReactorProcess {
  spawnProcess(
    processProtocol: IProcessProtocol,
    executable: string,
    args?: readonly string[],
    options?: SpawnProcessOptions,
  ): IProcessTransport;
}

/** Every reactor interface together: what `reactor` provides. */
export interface IReactor
  extends IReactorCore,
    IReactorTime,
    IReactorTCP,
    IReactorUNIX,
    IReactorSSL,
    IReactorUDP,
    IReactorProcess {}

// ---------------------------------------------------------------------------------------------
// Endpoints

export interface IStreamServerEndpoint {
  listen(factory: IProtocolFactory): Deferred<IListeningPort>;
}

export interface IStreamClientEndpoint {
  connect(factory: IProtocolFactory): Deferred<IProtocol>;
}
