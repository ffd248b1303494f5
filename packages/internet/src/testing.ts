/**
 * Test helpers, as `twisted.internet.testing` (formerly `proto_helpers`) and `twisted.test.iosim`:
 *
 * - `StringTransport`: a transport that records what is written (`value()`, `clear()`), with the
 *   `disconnecting` flag, producer registration and socket options of a real one.
 * - `StringTransportWithDisconnection`: `loseConnection()` delivers `connectionLost` at once.
 * - `MemoryReactor` / `MemoryReactorClock`: a reactor that records `listenTCP` / `connectTCP`
 *   calls instead of opening sockets (the latter with `task.Clock` time).
 * - `connectedServerAndClient(server, client, { clock })` → `{ server, client, pump }`: two
 *   protocols joined in memory; `pump.pump()` moves bytes one step both ways, `pump.flush()`
 *   until nothing moves. `loopbackAsync(server, client)` does the same on the event loop.
 */
import { IPv4Address, UNIXAddress } from "./address.js";
import { type Deferred, succeed } from "./defer.js";
import { ConnectionDone } from "./error.js";
import { Failure } from "./failure.js";
import type {
  IAddress,
  IClientFactory,
  IConnector,
  IContextFactory,
  IDatagramProtocol,
  IDelayedCall,
  IListeningPort,
  IPullProducer,
  IPushProducer,
  IProtocol,
  IProtocolFactory,
  IReactorCore,
  IReactorSSL,
  IReactorTCP,
  IReactorTime,
  IReactorUDP,
  IReactorUNIX,
  ITCPTransport,
  SystemEvent,
  SystemEventPhase,
} from "./interfaces.js";
import { Clock } from "./task.js";

export {
  FakeTransport,
  IOPump,
  connectedServerAndClient,
  loopbackAsync,
  type AdvanceableClock,
  type Loopback,
  type LoopbackOptions,
} from "./_internal/testing_iosim.js";

function toBuffer(data: Uint8Array | string): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

/** The state of a transport seen as a producer. */
export type ProducerState = "producing" | "paused" | "stopped";

/**
 * A transport that keeps everything written to it. `loseConnection` only sets `disconnecting`
 * (nothing is delivered to the protocol); use `StringTransportWithDisconnection` for that.
 */
export class StringTransport implements ITCPTransport {
  disconnecting = false;
  /** Set by `abortConnection`. */
  aborted = false;
  /** Set by `loseWriteConnection`. */
  writeDisconnected = false;
  producer: IPushProducer | IPullProducer | null = null;
  streaming: boolean | null = null;
  /** This transport as a producer: `pauseProducing` / `resumeProducing` / `stopProducing`. */
  producerState: ProducerState = "producing";
  hostAddr: IAddress;
  peerAddr: IAddress;
  tcpNoDelay = false;
  tcpKeepAlive = false;
  private io: Buffer[] = [];
  private ioBytes = 0;

  constructor(hostAddress?: IAddress, peerAddress?: IAddress) {
    this.hostAddr = hostAddress ?? new IPv4Address("TCP", "10.0.0.1", 12345);
    this.peerAddr = peerAddress ?? new IPv4Address("TCP", "192.168.1.1", 54321);
  }

  /** Everything written since the last `clear()`. */
  value(): Buffer {
    if (this.io.length !== 1) {
      const all = Buffer.concat(this.io, this.ioBytes);
      this.io = all.length > 0 ? [all] : [];
      return all;
    }
    return this.io[0]!;
  }

  /** Forgets what was written. */
  clear(): void {
    this.io = [];
    this.ioBytes = 0;
  }

  write(data: Uint8Array | string): void {
    const b = Buffer.from(toBuffer(data)); // copy: the caller may reuse its buffer
    this.io.push(b);
    this.ioBytes += b.length;
  }

  writeSequence(data: Iterable<Uint8Array | string>): void {
    for (const d of data) this.write(d);
  }

  loseConnection(): void {
    this.disconnecting = true;
  }

  abortConnection(): void {
    this.aborted = true;
    this.loseConnection();
  }

  loseWriteConnection(): void {
    this.writeDisconnected = true;
  }

  getPeer(): IAddress {
    return this.peerAddr;
  }
  getHost(): IAddress {
    return this.hostAddr;
  }
  getTcpNoDelay(): boolean {
    return this.tcpNoDelay;
  }
  setTcpNoDelay(enabled: boolean): void {
    this.tcpNoDelay = enabled;
  }
  getTcpKeepAlive(): boolean {
    return this.tcpKeepAlive;
  }
  setTcpKeepAlive(enabled: boolean): void {
    this.tcpKeepAlive = enabled;
  }

  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void {
    if (this.producer !== null) throw new Error("Cannot register two producers");
    this.producer = producer;
    this.streaming = streaming;
  }

  unregisterProducer(): void {
    if (this.producer === null) throw new Error("Cannot unregister a producer unless one is registered");
    this.producer = null;
    this.streaming = null;
  }

  private checkState(): void {
    if (this.producerState === "stopped") throw new Error("Cannot resume or pause a stopped producer");
  }
  pauseProducing(): void {
    this.checkState();
    this.producerState = "paused";
  }
  resumeProducing(): void {
    this.checkState();
    this.producerState = "producing";
  }
  stopProducing(): void {
    this.producerState = "stopped";
  }
}

/** A StringTransport whose `loseConnection` delivers `connectionLost(ConnectionDone)` to `protocol`. */
export class StringTransportWithDisconnection extends StringTransport {
  /** The protocol to notify; set it after `makeConnection`. */
  protocol: IProtocol | null = null;
  connected = true;

  override loseConnection(): void {
    if (this.connected) {
      this.connected = false;
      this.disconnecting = true;
      this.protocol?.connectionLost(new Failure(new ConnectionDone()));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// MemoryReactor

/** A port returned by MemoryReactor's listen methods. */
export class FakePort implements IListeningPort {
  listening = true;
  constructor(readonly address: IAddress) {}
  startListening(): void {
    this.listening = true;
  }
  stopListening(): Deferred<void> {
    this.listening = false;
    return succeed<void>(undefined);
  }
  getHost(): IAddress {
    return this.address;
  }
}

/** A connector returned by MemoryReactor's connect methods; it records what was asked of it. */
export class FakeConnector implements IConnector {
  connectCalled = false;
  stoppedConnecting = false;
  disconnected = false;
  state: "disconnected" | "connecting" | "connected" = "connecting";
  constructor(readonly address: IAddress) {}
  stopConnecting(): void {
    this.stoppedConnecting = true;
    this.state = "disconnected";
  }
  disconnect(): void {
    this.disconnected = true;
  }
  connect(): void {
    this.connectCalled = true;
    this.state = "connecting";
  }
  getDestination(): IAddress {
    return this.address;
  }
}

export interface TCPServerRecord {
  port: number;
  factory: IProtocolFactory;
  backlog: number;
  interface: string;
}
export interface TCPClientRecord {
  host: string;
  port: number;
  factory: IClientFactory;
  timeout: number;
  bindAddress: { host: string; port: number } | null;
}
export interface SSLServerRecord extends TCPServerRecord {
  contextFactory: IContextFactory;
}
export interface SSLClientRecord extends TCPClientRecord {
  contextFactory: IContextFactory;
}
export interface UNIXServerRecord {
  path: string;
  factory: IProtocolFactory;
  backlog: number;
}
export interface UNIXClientRecord {
  path: string;
  factory: IClientFactory;
  timeout: number;
}
export interface UDPRecord {
  port: number;
  protocol: IDatagramProtocol;
  interface: string;
  maxPacketSize: number;
}

interface Trigger {
  id: number;
  phase: SystemEventPhase;
  event: SystemEvent;
  fn: (...args: never[]) => unknown;
  args: unknown[];
}

/**
 * A reactor that opens nothing: listen and connect calls are recorded (`tcpServers`,
 * `tcpClients`, …) so a test can take the factory and connect it to a StringTransport. `run`
 * runs startup triggers and `stop` shutdown triggers, synchronously.
 */
export class MemoryReactor implements IReactorCore, IReactorTCP, IReactorSSL, IReactorUNIX, IReactorUDP {
  running = false;
  hasRun = false;
  hasStopped = false;
  tcpServers: TCPServerRecord[] = [];
  tcpClients: TCPClientRecord[] = [];
  sslServers: SSLServerRecord[] = [];
  sslClients: SSLClientRecord[] = [];
  unixServers: UNIXServerRecord[] = [];
  unixClients: UNIXClientRecord[] = [];
  udpPorts: UDPRecord[] = [];
  connectors: FakeConnector[] = [];
  whenRunning: Array<{ fn: (...args: never[]) => unknown; args: unknown[] }> = [];
  triggers: Trigger[] = [];
  private nextTrigger = 1;

  run(): Promise<void> {
    this.running = true;
    this.hasRun = true;
    this.fire("startup");
    for (const w of this.whenRunning.splice(0)) (w.fn as (...a: unknown[]) => unknown)(...w.args);
    return Promise.resolve();
  }

  stop(): void {
    this.running = false;
    this.hasStopped = true;
    this.fire("shutdown");
  }

  private fire(event: SystemEvent): void {
    for (const phase of ["before", "during", "after"] as const) {
      for (const t of this.triggers.filter((x) => x.event === event && x.phase === phase)) {
        (t.fn as (...a: unknown[]) => unknown)(...t.args);
      }
    }
  }

  callWhenRunning(fn: (...args: never[]) => unknown, ...args: unknown[]): void {
    if (this.running) (fn as (...a: unknown[]) => unknown)(...args);
    else this.whenRunning.push({ fn, args });
  }

  addSystemEventTrigger(phase: SystemEventPhase, event: SystemEvent, fn: (...args: never[]) => unknown, ...args: unknown[]): number {
    const id = this.nextTrigger++;
    this.triggers.push({ id, phase, event, fn, args });
    return id;
  }

  removeSystemEventTrigger(triggerID: unknown): void {
    this.triggers = this.triggers.filter((t) => t.id !== triggerID);
  }

  listenTCP(port: number, factory: IProtocolFactory, backlog = 50, iface = ""): FakePort {
    this.tcpServers.push({ port, factory, backlog, interface: iface });
    return new FakePort(new IPv4Address("TCP", iface || "0.0.0.0", port));
  }

  connectTCP(
    host: string,
    port: number,
    factory: IClientFactory,
    timeout = 30,
    bindAddress: { host: string; port: number } | null = null,
  ): FakeConnector {
    this.tcpClients.push({ host, port, factory, timeout, bindAddress });
    return this.newConnector(new IPv4Address("TCP", host, port), factory);
  }

  listenSSL(port: number, factory: IProtocolFactory, contextFactory: IContextFactory, backlog = 50, iface = ""): FakePort {
    this.sslServers.push({ port, factory, contextFactory, backlog, interface: iface });
    return new FakePort(new IPv4Address("TCP", iface || "0.0.0.0", port));
  }

  connectSSL(
    host: string,
    port: number,
    factory: IClientFactory,
    contextFactory: IContextFactory,
    timeout = 30,
    bindAddress: { host: string; port: number } | null = null,
  ): FakeConnector {
    this.sslClients.push({ host, port, factory, contextFactory, timeout, bindAddress });
    return this.newConnector(new IPv4Address("TCP", host, port), factory);
  }

  listenUNIX(path: string, factory: IProtocolFactory, backlog = 50): FakePort {
    this.unixServers.push({ path, factory, backlog });
    return new FakePort(new UNIXAddress(path));
  }

  connectUNIX(path: string, factory: IClientFactory, timeout = 30): FakeConnector {
    this.unixClients.push({ path, factory, timeout });
    return this.newConnector(new UNIXAddress(path), factory);
  }

  listenUDP(port: number, protocol: IDatagramProtocol, iface = "", maxPacketSize = 8192): FakePort {
    this.udpPorts.push({ port, protocol, interface: iface, maxPacketSize });
    return new FakePort(new IPv4Address("UDP", iface || "0.0.0.0", port));
  }

  private newConnector(addr: IAddress, factory: IClientFactory): FakeConnector {
    const c = new FakeConnector(addr);
    factory.startedConnecting(c);
    this.connectors.push(c);
    return c;
  }
}

/** A MemoryReactor with `task.Clock` time: `callLater` runs only when the test calls `advance`. */
export class MemoryReactorClock extends MemoryReactor implements IReactorTime {
  readonly clock = new Clock();

  get rightNow(): number {
    return this.clock.rightNow;
  }
  seconds(): number {
    return this.clock.seconds();
  }
  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => unknown, ...args: A): IDelayedCall {
    return this.clock.callLater(delay, fn, ...args);
  }
  getDelayedCalls(): IDelayedCall[] {
    return this.clock.getDelayedCalls();
  }
  advance(amount: number): void {
    this.clock.advance(amount);
  }
  pump(timings: Iterable<number>): void {
    this.clock.pump(timings);
  }
}
