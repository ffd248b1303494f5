/**
 * A stream connection (TCP, UNIX or TLS) over a Node socket: Twisted's `tcp.Connection`. Bytes
 * from the socket go straight to `protocol.dataReceived`; each `write` goes straight to
 * `socket.write` (no copy, no coalescing: the kernel and Nagle/`setTcpNoDelay` decide packets).
 *
 * Flow control is Twisted's: a streaming producer is paused when `socket.write` reports the
 * high-water mark passed and resumed on `drain`; a pull producer is asked for more on `drain`.
 * The transport is itself a push producer: `pauseProducing` stops reading from the socket.
 *
 * Sockets we open (`connectTCP`, `connectUNIX`), and accepted ones whose protocol borrows, read
 * into one reused buffer (Node's `onread`) instead of a new buffer per read: a protocol that
 * declares `borrowsReceivedData` gets views of it, any other protocol a copy of each read.
 */
import { Socket } from "node:net";
import { TLSSocket, connect as tlsConnect, createSecureContext } from "node:tls";
import type { ConnectionOptions, SecureContextOptions } from "node:tls";
import { fromNode, UNIXAddress } from "../address.js";
import { ConnectionAborted, ConnectionDone, ConnectionLost } from "../error.js";
import { Failure } from "../failure.js";
import type {
  IAddress,
  IContextFactory,
  IProtocol,
  IPullProducer,
  IPushProducer,
  ITLSTransport,
} from "../interfaces.js";
import { borrowsReceivedData, isHalfCloseable } from "../interfaces.js";
import type { Logger } from "../log.js";

export type StreamKind = "TCP" | "UNIX";

/**
 * While a turn's writes are held (`coalesceWrites`), what they may add up to before a streaming
 * producer is paused for them as for any write past the high-water mark.
 */
const COALESCE_LIMIT = 1024 * 1024;

function asBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === "string" ? Buffer.from(data, "utf8") : data;
}

/** The address pair of a connected socket, read once (Node forgets them after close). */
export function socketAddresses(socket: Socket, kind: StreamKind, unixPath?: string): { host: IAddress; peer: IAddress } {
  if (kind === "UNIX") {
    return { host: new UNIXAddress(unixPath ?? null), peer: new UNIXAddress(unixPath ?? null) };
  }
  return {
    host: fromNode("TCP", socket.localAddress, socket.localPort, socket.localFamily),
    peer: fromNode("TCP", socket.remoteAddress, socket.remotePort, socket.remoteFamily),
  };
}

/** The size of the buffer a socket with a ReusedReadBuffer reads into. */
export const READ_BUFFER_SIZE = 64 * 1024;

/**
 * The `onread` option of a socket: Node reads into one buffer of READ_BUFFER_SIZE bytes and
 * calls back with each read, which goes to the connection once `connection` is set (reads before
 * that, which a connected socket does not make, are kept as copies).
 */
export class ReusedReadBuffer {
  private conn: Connection | null = null;
  private early: Buffer[] = [];
  readonly onread = {
    // One buffer, not a function: Node would call a function for a fresh buffer after every read.
    buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
    // Returning false would stop reading; pausing goes through socket.pause() as usual.
    callback: (nread: number, buf: Uint8Array): boolean => {
      if (this.conn !== null) this.conn.bufferRead(nread, buf);
      else this.early.push(Buffer.from(buf.subarray(0, nread)));
      return true;
    },
  };

  set connection(conn: Connection) {
    this.conn = conn;
    for (const b of this.early.splice(0)) conn.bufferRead(b.length, b);
  }
}

/**
 * Moves an open socket's handle to a new socket made with `onread` (reads into one reused buffer,
 * handed to `onread.callback`), for the sockets that Node creates itself: connections a server
 * accepts and the pipes of a child process. Node offers `onread` only to sockets it is asked to
 * create; the socket constructor's `handle` option, which Node itself uses to wrap accepted
 * connections and child pipes, is how the handle moves, though Node does not document it. The old
 * socket is left without a handle, and is destroyed when the new one closes, so that Node's
 * bookkeeping (a server's connection count, a child's 'close') still comes out right. Returns
 * null, and the socket is read as a stream, where that is not possible.
 */
export function moveToReusedReadBuffer(
  socket: Socket,
  onread: { buffer: Uint8Array; callback: (nread: number, buf: Uint8Array) => boolean },
  options: { writable: boolean; allowHalfOpen: boolean },
): Socket | null {
  const internal = socket as unknown as { _handle?: { useUserBuffer?: unknown } | null };
  const handle = internal._handle;
  if (handle === null || handle === undefined || typeof handle.useUserBuffer !== "function" || socket.destroyed) {
    return null;
  }
  internal._handle = null;
  // Otherwise Node may resume the old stream (a child's, when it exits) and start a second read.
  socket.readable = false;
  const moved = new Socket({ handle, readable: true, ...options, onread } as ConstructorParameters<typeof Socket>[0]);
  moved.once("close", () => socket.destroy());
  return moved;
}

export class Connection implements ITLSTransport {
  socket: Socket;
  protocol: IProtocol | null = null;
  connected = true;
  disconnecting = false;
  disconnected = false;
  /** Bytes handed to the socket that it has not written yet. */
  get bufferedBytes(): number {
    return this.socket.writableLength;
  }
  producer: IPushProducer | IPullProducer | null = null;
  streamingProducer = false;
  producerPaused = false;
  /** Called once after `connectionLost` was delivered. */
  onLost: ((reason: Failure) => void) | null = null;
  private writeDisconnected = false;
  private readPaused = false;
  private reason: Error | null = null;
  private socketError: Error | null = null;
  private noDelay = false;
  private keepAlive = false;
  private readonly host: IAddress;
  private readonly peer: IAddress;

  constructor(
    socket: Socket,
    readonly kind: StreamKind,
    readonly isServer: boolean,
    private readonly log: Logger,
    addresses: { host: IAddress; peer: IAddress },
  ) {
    this.socket = socket;
    this.host = addresses.host;
    this.peer = addresses.peer;
    this.bind(socket);
  }

  private readonly onData = (chunk: Buffer): void => {
    if (this.disconnected || this.protocol === null) return;
    try {
      this.protocol.dataReceived(chunk);
    } catch (e) {
      this.protocolFailed(e, "dataReceived");
    }
  };

  /** The protocol takes views of a reused read buffer (`IBorrowingProtocol`). */
  private borrowing = false;

  /**
   * One read of `nread` bytes into the start of `buf`, a buffer the socket reuses for its next
   * read: a borrowing protocol gets a view of it, any other protocol a copy.
   */
  bufferRead(nread: number, buf: Uint8Array): void {
    if (this.disconnected || this.protocol === null) return;
    const view = buf.subarray(0, nread);
    try {
      this.protocol.dataReceived(this.borrowing ? view : Buffer.from(view));
    } catch (e) {
      this.protocolFailed(e, "dataReceived");
    }
  }

  private readonly onEnd = (): void => {
    if (this.disconnected) return;
    const p = this.protocol;
    if (p !== null && isHalfCloseable(p) && !this.disconnecting) {
      try {
        p.readConnectionLost();
      } catch (e) {
        this.protocolFailed(e, "readConnectionLost");
      }
      return;
    }
    this.closeGracefully();
  };

  private readonly onError = (err: Error): void => {
    this.socketError ??= err;
  };

  private readonly onClose = (): void => {
    this.connectionLost();
  };

  private readonly onDrain = (): void => {
    const p = this.producer;
    if (p === null) return;
    if (this.streamingProducer) {
      if (this.producerPaused) {
        this.producerPaused = false;
        (p as IPushProducer).resumeProducing();
      }
    } else {
      p.resumeProducing();
    }
  };

  private bind(s: Socket): void {
    s.on("data", this.onData);
    s.on("end", this.onEnd);
    s.on("error", this.onError);
    s.on("close", this.onClose);
    s.on("drain", this.onDrain);
  }

  private unbind(s: Socket): void {
    s.off("data", this.onData);
    s.off("end", this.onEnd);
    s.off("error", this.onError);
    s.off("close", this.onClose);
    s.off("drain", this.onDrain);
  }

  /** Hands the connection to `protocol` (calls `makeConnection`). */
  attach(protocol: IProtocol): void {
    this.protocol = protocol;
    this.borrowing = borrowsReceivedData(protocol);
    try {
      protocol.makeConnection(this);
    } catch (e) {
      this.protocolFailed(e, "connectionMade");
    }
  }

  /** A protocol callback threw: log it and drop this connection only. */
  private protocolFailed(e: unknown, where: string): void {
    const f = new Failure(e);
    this.log.failure("Unhandled error in {where} of {protocol}", f, "error", {
      where,
      protocol: this.protocol?.constructor.name ?? "protocol",
    });
    if (this.disconnected) return;
    this.reason ??= f.value;
    this.disconnecting = true;
    this.socket.destroy();
  }

  private closeGracefully(): void {
    if (this.socket.destroyed) return;
    this.socket.end();
    if (this.socket.writableFinished) this.socket.destroy();
    else this.socket.once("finish", () => this.socket.destroy());
  }

  private connectionLost(): void {
    if (this.disconnected) return;
    this.disconnected = true;
    this.connected = false;
    this.disconnecting = true;
    const why =
      this.reason ??
      (this.socketError !== null ? new ConnectionLost(`Connection lost: ${this.socketError.message}`) : new ConnectionDone());
    const reason = new Failure(why);
    const producer = this.producer;
    this.producer = null;
    if (producer !== null) {
      try {
        producer.stopProducing();
      } catch (e) {
        this.log.failure("Error stopping producer", new Failure(e), "error");
      }
    }
    if (this.protocol !== null) {
      try {
        this.protocol.connectionLost(reason);
      } catch (e) {
        this.log.failure("Unhandled error in connectionLost of {protocol}", new Failure(e), "error", {
          protocol: this.protocol.constructor.name,
        });
      }
    }
    this.onLost?.(reason);
  }

  // --- ITransport ---------------------------------------------------------------------------

  write(data: Uint8Array | string): void {
    // Once the socket has been ended (a turn after loseConnection) later writes are dropped.
    if (this.disconnected || this.writeDisconnected || this.socket.writableEnded) return;
    const b = asBytes(data);
    if (b.length === 0) return;
    let ok = this.socket.write(b);
    if (this.coalescing) {
      // Held only because this turn's writes wait for its end: they leave then, so the producer
      // need not stop for them (it would give one read's worth per turn); past COALESCE_LIMIT it does.
      this.coalesced += b.length;
      if (!ok && this.coalesced < COALESCE_LIMIT) ok = this.socket.writableLength - this.coalesced < this.socket.writableHighWaterMark;
    }
    if (this.producer === null) return;
    if (!this.streamingProducer) {
      // 'drain' only follows a write that returned false; otherwise ask again on the next turn.
      if (ok) this.schedulePull();
    } else if (!ok && !this.producerPaused) {
      this.producerPaused = true;
      (this.producer as IPushProducer).pauseProducing();
    }
  }

  private pullScheduled = false;

  private schedulePull(): void {
    if (this.pullScheduled) return;
    this.pullScheduled = true;
    setImmediate(() => {
      this.pullScheduled = false;
      const p = this.producer;
      if (p !== null && !this.streamingProducer && !this.disconnected && !this.socket.writableNeedDrain) p.resumeProducing();
    });
  }

  private coalescing = false;
  /** Bytes written this turn while coalescing. */
  private coalesced = 0;

  /**
   * Holds the writes of the current turn of the event loop and sends them together when it ends
   * (one writev instead of a system call per write). The bytes are buffered at once as before;
   * only the system call moves. Protocols that write many small pieces per turn (SSH packets)
   * call it before writing.
   */
  coalesceWrites(): void {
    if (this.coalescing || this.disconnected || this.socket.destroyed) return;
    this.coalescing = true;
    this.socket.cork();
    setImmediate(() => {
      this.coalescing = false;
      this.coalesced = 0;
      this.socket.uncork();
    });
  }

  writeSequence(data: Iterable<Uint8Array | string>): void {
    if (this.disconnected || this.writeDisconnected) return;
    this.socket.cork();
    try {
      for (const d of data) this.write(d);
    } finally {
      this.socket.uncork();
    }
  }

  /**
   * Closes after everything written has been sent. With a pull producer registered, the close
   * waits until it unregisters (it may still have data to give), as in Twisted.
   */
  loseConnection(): void {
    if (this.disconnected || this.disconnecting) return;
    this.disconnecting = true;
    this.socket.pause();
    if (this.producer !== null && !this.streamingProducer) {
      this.closeAfterProducer = true;
      return;
    }
    // End on the next turn: writes made in the same turn (after loseConnection, as Twisted
    // allows while disconnecting) still go out before the FIN.
    setImmediate(() => this.closeGracefully());
  }

  private closeAfterProducer = false;

  abortConnection(): void {
    if (this.disconnected) return;
    this.reason ??= new ConnectionAborted();
    this.disconnecting = true;
    this.socket.destroy();
  }

  /** Ends the connection from the reactor's side (shutdown): `ConnectionLost`. */
  dropConnection(reason: Error): void {
    if (this.disconnected) return;
    this.reason ??= reason;
    this.disconnecting = true;
    this.socket.destroy();
  }

  loseWriteConnection(): void {
    if (this.disconnected || this.writeDisconnected) return;
    this.writeDisconnected = true;
    this.socket.end(() => {
      const p = this.protocol;
      if (this.disconnected || p === null || !isHalfCloseable(p)) return;
      try {
        p.writeConnectionLost();
      } catch (e) {
        this.protocolFailed(e, "writeConnectionLost");
      }
    });
  }

  getPeer(): IAddress {
    return this.peer;
  }
  getHost(): IAddress {
    return this.host;
  }

  getTcpNoDelay(): boolean {
    return this.noDelay;
  }
  setTcpNoDelay(enabled: boolean): void {
    this.noDelay = enabled;
    if (this.kind === "TCP") this.socket.setNoDelay(enabled);
  }
  getTcpKeepAlive(): boolean {
    return this.keepAlive;
  }
  setTcpKeepAlive(enabled: boolean): void {
    this.keepAlive = enabled;
    if (this.kind === "TCP") this.socket.setKeepAlive(enabled);
  }

  // --- IConsumer ----------------------------------------------------------------------------

  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void {
    if (this.producer !== null) {
      throw new Error(`Cannot register producer ${String(producer)}, because producer ${String(this.producer)} was never unregistered.`);
    }
    if (this.disconnected) {
      producer.stopProducing();
      return;
    }
    this.producer = producer;
    this.streamingProducer = streaming;
    this.producerPaused = false;
    if (streaming) {
      if (this.socket.writableNeedDrain) {
        this.producerPaused = true;
        (producer as IPushProducer).pauseProducing();
      }
    } else if (!this.socket.writableNeedDrain) {
      this.schedulePull();
    }
  }

  unregisterProducer(): void {
    this.producer = null;
    this.producerPaused = false;
    if (this.closeAfterProducer && !this.disconnected) {
      this.closeAfterProducer = false;
      this.closeGracefully();
    }
  }

  // --- IPushProducer (the transport as a producer of received data) --------------------------

  pauseProducing(): void {
    this.readPaused = true;
    this.socket.pause();
  }

  resumeProducing(): void {
    this.readPaused = false;
    if (!this.disconnecting) this.socket.resume();
  }

  stopProducing(): void {
    this.loseConnection();
  }

  /** True while reading is paused. */
  get readingPaused(): boolean {
    return this.readPaused;
  }

  // --- TLS ----------------------------------------------------------------------------------

  /** Starts TLS on this connection; later writes are encrypted (`ITLSTransport.startTLS`). */
  startTLS(contextFactory: IContextFactory): void {
    const raw = this.socket;
    this.unbind(raw);
    const opts = contextFactory.getContext();
    const tlsSocket = this.isServer
      ? new TLSSocket(raw, {
          isServer: true,
          secureContext: createSecureContext(opts as SecureContextOptions),
          requestCert: opts.requestCert ?? false,
          rejectUnauthorized: opts.rejectUnauthorized ?? false,
          ...(opts.ALPNProtocols !== undefined ? { ALPNProtocols: opts.ALPNProtocols } : {}),
        })
      : tlsConnect({ ...(opts as ConnectionOptions), socket: raw });
    this.socket = tlsSocket;
    this.bind(tlsSocket);
    if (this.readPaused) tlsSocket.pause();
  }
}
