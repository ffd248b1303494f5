/**
 * An in-memory connection between two protocols, pumped by hand (Twisted's
 * `twisted.test.iosim`). Each side gets a `FakeTransport`; writes are queued; `IOPump.pump()`
 * moves the queued bytes once in each direction and `flush()` repeats until nothing moves. It
 * is synchronous and deterministic, so a client and server (an SSH transport pair, say) can be
 * stepped and their bytes asserted.
 */
import { IPv4Address } from "../address.js";
import { ConnectionAborted, ConnectionDone, ConnectionLost } from "../error.js";
import { Failure } from "../failure.js";
import type { IAddress, IPullProducer, IPushProducer, IProtocol, ITCPTransport } from "../interfaces.js";
import { borrowsReceivedData, isHalfCloseable } from "../interfaces.js";


function toBuffer(data: Uint8Array | string): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

let serial = 0;

/** Anything with Twisted's `Clock.advance`. */
export interface AdvanceableClock {
  advance(amount: number): void;
}

/**
 * One side of an in-memory connection. Writes are queued until the pump moves them. A
 * streaming producer is paused when more than `bufferSize` bytes are queued and resumed when
 * the pump has taken them; a pull producer is asked for more each time the queue empties.
 * `pauseProducing()` stops delivery *to* this side (the pump holds the bytes).
 */
export class FakeTransport implements ITCPTransport {
  readonly protocol: IProtocol;
  readonly isServer: boolean;
  hostAddress: IAddress;
  peerAddress: IAddress;
  /** Queued outgoing bytes. */
  stream: Buffer[] = [];
  streamBytes = 0;
  /** Bytes that reached this side while it was paused. */
  incoming: Buffer[] = [];
  disconnecting = false;
  /** connectionLost has been delivered to this side. */
  disconnected = false;
  /** `loseWriteConnection()` was called; EOF is delivered once the queue drains. */
  writeDisconnecting = false;
  writeDisconnected = false;
  /** The peer half-closed towards us. */
  readDisconnected = false;
  aborted = false;
  /** Reading is paused (this transport's `pauseProducing`). */
  paused = false;
  producer: IPushProducer | IPullProducer | null = null;
  streamingProducer = false;
  producerPaused = false;
  /**
   * The largest read handed at once to a protocol that borrows its data (`IBorrowingProtocol`),
   * 64 KiB as from a socket; set it smaller to have packets arrive in pieces.
   */
  readSize = 64 * 1024;
  /** High-water mark for a streaming producer. */
  bufferSize = 65536;
  tcpNoDelay = false;
  tcpKeepAlive = false;
  /** Called when the side has something to send (used by the async loopback). */
  onWrite: (() => void) | null = null;

  constructor(protocol: IProtocol, isServer: boolean, hostAddress?: IAddress, peerAddress?: IAddress) {
    this.protocol = protocol;
    this.isServer = isServer;
    serial += 1;
    this.hostAddress = hostAddress ?? new IPv4Address("TCP", "127.0.0.1", isServer ? 22 : 40000 + (serial % 20000));
    this.peerAddress = peerAddress ?? new IPv4Address("TCP", "127.0.0.1", isServer ? 40000 + (serial % 20000) : 22);
  }

  write(data: Uint8Array | string): void {
    if (this.disconnected || this.writeDisconnecting || this.aborted) return;
    const b = toBuffer(data);
    if (b.length === 0) return;
    this.stream.push(b);
    this.streamBytes += b.length;
    if (this.producer !== null && this.streamingProducer && !this.producerPaused && this.streamBytes > this.bufferSize) {
      this.producerPaused = true;
      (this.producer as IPushProducer).pauseProducing();
    }
    this.onWrite?.();
  }

  writeSequence(data: Iterable<Uint8Array | string>): void {
    for (const d of data) this.write(d);
  }

  loseConnection(): void {
    if (this.disconnecting) return;
    this.disconnecting = true;
    this.onWrite?.();
  }

  abortConnection(): void {
    if (this.disconnected) return;
    this.disconnecting = true;
    this.aborted = true;
    this.onWrite?.();
  }

  loseWriteConnection(): void {
    this.writeDisconnecting = true;
    this.onWrite?.();
  }

  getPeer(): IAddress {
    return this.peerAddress;
  }
  getHost(): IAddress {
    return this.hostAddress;
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
    if (this.producer !== null) throw new Error("Cannot register producer: another producer is registered");
    this.producer = producer;
    this.streamingProducer = streaming;
    this.producerPaused = false;
    if (!streaming) this.onWrite?.();
  }

  unregisterProducer(): void {
    this.producer = null;
    this.producerPaused = false;
  }

  pauseProducing(): void {
    this.paused = true;
  }
  resumeProducing(): void {
    this.paused = false;
    this.onWrite?.();
  }
  stopProducing(): void {
    this.loseConnection();
  }

  /** Takes the queued outgoing bytes (and lets a paused or pull producer produce more). */
  takeOutgoing(): Buffer | null {
    if (this.aborted) {
      this.stream = [];
      this.streamBytes = 0;
      return null;
    }
    let out: Buffer | null = null;
    if (this.stream.length > 0) {
      out = this.stream.length === 1 ? this.stream[0]! : Buffer.concat(this.stream, this.streamBytes);
      this.stream = [];
      this.streamBytes = 0;
    }
    if (this.producer !== null && !this.disconnected) {
      if (this.streamingProducer && this.producerPaused) {
        this.producerPaused = false;
        (this.producer as IPushProducer).resumeProducing();
      } else if (!this.streamingProducer && out === null) {
        (this.producer as IPushProducer).resumeProducing();
      }
    }
    return out;
  }

  /** Bytes from the peer: delivered now, or held while paused. Returns true if delivered. */
  deliver(data: Buffer | null): boolean {
    if (data !== null) this.incoming.push(data);
    if (this.paused || this.disconnected || this.incoming.length === 0) return false;
    const chunks = this.incoming;
    this.incoming = [];
    if (borrowsReceivedData(this.protocol)) {
      this.deliverBorrowed(chunks);
      return true;
    }
    for (const c of chunks) {
      if (this.disconnected) break;
      this.protocol.dataReceived(c);
    }
    return true;
  }

  private scratch: Buffer | null = null;

  /**
   * Delivers to a protocol that borrows its data as a TCP connection of the reactor does: in reads
   * of at most `readSize` bytes through one reused buffer, which is scribbled over after every read, so a
   * protocol that keeps a view of what it was given sees garbage (and its tests fail).
   */
  private deliverBorrowed(chunks: Buffer[]): void {
    const size = Math.max(1, this.readSize);
    if (this.scratch === null || this.scratch.length < size) this.scratch = Buffer.allocUnsafe(size);
    const scratch = this.scratch;
    for (let i = 0; i < chunks.length; i++) {
      const c = chunks[i]!;
      for (let off = 0; off < c.length; off += size) {
        if (this.disconnected) return;
        if (this.paused) {
          // Paused by the protocol in the middle: the rest waits for resumeProducing.
          this.incoming.unshift(c.subarray(off), ...chunks.slice(i + 1));
          return;
        }
        const n = Math.min(size, c.length - off);
        c.copy(scratch, 0, off, off + n);
        this.protocol.dataReceived(scratch.subarray(0, n));
        scratch.fill(0xa5, 0, n);
      }
    }
  }

  /** Delivers connectionLost once. */
  reportDisconnect(reason: Error): void {
    if (this.disconnected) return;
    this.disconnected = true;
    this.disconnecting = true;
    const p = this.producer;
    if (p !== null) {
      this.producer = null;
      p.stopProducing();
    }
    this.protocol.connectionLost(new Failure(reason));
  }
}

/** Moves bytes between two FakeTransports. */
export class IOPump {
  constructor(
    readonly client: IProtocol,
    readonly server: IProtocol,
    readonly clientIO: FakeTransport,
    readonly serverIO: FakeTransport,
    readonly clock: AdvanceableClock | null = null,
  ) {}

  /**
   * One step: the queued bytes move once in each direction, disconnections whose queues have
   * drained are delivered, and the clock (if any) advances by 0. True if anything happened.
   */
  pump(): boolean {
    const c = this.clientIO;
    const s = this.serverIO;
    const cData = c.takeOutgoing();
    const sData = s.takeOutgoing();
    let moved = false;
    if (s.deliver(cData)) moved = true;
    if (c.deliver(sData)) moved = true;
    if (cData !== null || sData !== null) moved = true;
    this.clock?.advance(0);
    if (moved) return true;
    return this.handleClose(c, s) || this.handleClose(s, c);
  }

  private handleClose(a: FakeTransport, b: FakeTransport): boolean {
    if (a.disconnected) {
      if (!b.disconnected) {
        b.reportDisconnect(a.aborted ? new ConnectionLost() : new ConnectionDone());
        return true;
      }
      return false;
    }
    if (a.aborted) {
      a.reportDisconnect(new ConnectionAborted());
      b.reportDisconnect(new ConnectionLost());
      return true;
    }
    if (a.stream.length > 0) return false;
    if (a.disconnecting) {
      a.reportDisconnect(new ConnectionDone());
      b.reportDisconnect(new ConnectionDone());
      return true;
    }
    if (a.writeDisconnecting && !a.writeDisconnected) {
      a.writeDisconnected = true;
      if (isHalfCloseable(a.protocol)) a.protocol.writeConnectionLost();
      b.readDisconnected = true;
      if (isHalfCloseable(b.protocol)) {
        b.protocol.readConnectionLost();
      } else {
        b.reportDisconnect(new ConnectionDone());
        a.reportDisconnect(new ConnectionDone());
      }
      return true;
    }
    return false;
  }

  /** Pumps until nothing moves; throws if it has not settled after `maxTurns` steps. */
  flush(maxTurns = 1_000_000): boolean {
    let any = false;
    for (let i = 0; i < maxTurns; i++) {
      if (!this.pump()) return any;
      any = true;
    }
    throw new Error(`IOPump.flush: still moving after ${maxTurns} turns`);
  }
}

/** Options for `connect` / `connectedServerAndClient`. */
export interface LoopbackOptions {
  /** Advanced by 0 on every pump step, so `callLater(0, …)` work runs. */
  clock?: AdvanceableClock;
  /** Flush once after connecting (default true), as Twisted's `greet`. */
  greet?: boolean;
  serverAddress?: IAddress;
  clientAddress?: IAddress;
}

/** The two protocols, their transports, and the pump. */
export interface Loopback<S extends IProtocol, C extends IProtocol> {
  server: S;
  client: C;
  serverTransport: FakeTransport;
  clientTransport: FakeTransport;
  pump: IOPump;
}

/**
 * Connects `server` and `client` through FakeTransports (server first, as a listening socket
 * accepts before the client hears of it) and returns them with a pump; by default flushes once.
 */
export function connectedServerAndClient<S extends IProtocol, C extends IProtocol>(
  server: S,
  client: C,
  options: LoopbackOptions = {},
): Loopback<S, C> {
  const serverAddress = options.serverAddress ?? new IPv4Address("TCP", "127.0.0.1", 22);
  serial += 1;
  const clientAddress = options.clientAddress ?? new IPv4Address("TCP", "127.0.0.1", 40000 + (serial % 20000));
  const serverTransport = new FakeTransport(server, true, serverAddress, clientAddress);
  const clientTransport = new FakeTransport(client, false, clientAddress, serverAddress);
  server.makeConnection(serverTransport);
  client.makeConnection(clientTransport);
  const pump = new IOPump(client, server, clientTransport, serverTransport, options.clock ?? null);
  if (options.greet !== false) pump.flush();
  return { server, client, serverTransport, clientTransport, pump };
}

/**
 * Connects two protocols in memory and moves bytes on the event loop (`setImmediate`) instead
 * of by hand (Twisted's `loopback.loopbackAsync`). Resolves when both sides have seen
 * connectionLost.
 */
export function loopbackAsync(server: IProtocol, client: IProtocol, options: Omit<LoopbackOptions, "greet"> = {}): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let scheduled = false;
    let lb: Loopback<IProtocol, IProtocol> | null = null;
    const run = (): void => {
      scheduled = false;
      if (lb === null) return;
      try {
        lb.pump.flush();
      } catch (e) {
        reject(e);
        return;
      }
      if (lb.serverTransport.disconnected && lb.clientTransport.disconnected) resolve();
    };
    const schedule = (): void => {
      if (scheduled) return;
      scheduled = true;
      setImmediate(run);
    };
    const serverAddress = options.serverAddress ?? new IPv4Address("TCP", "127.0.0.1", 22);
    const clientAddress = options.clientAddress ?? new IPv4Address("TCP", "127.0.0.1", 40001);
    const serverTransport = new FakeTransport(server, true, serverAddress, clientAddress);
    const clientTransport = new FakeTransport(client, false, clientAddress, serverAddress);
    serverTransport.onWrite = schedule;
    clientTransport.onWrite = schedule;
    server.makeConnection(serverTransport);
    client.makeConnection(clientTransport);
    const pump = new IOPump(client, server, clientTransport, serverTransport, options.clock ?? null);
    lb = { server, client, serverTransport, clientTransport, pump };
    schedule();
  });
}
