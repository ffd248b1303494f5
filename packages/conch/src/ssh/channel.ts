/**
 * `twisted.conch.ssh.channel`: one multiplexed channel of an SSH connection (RFC 4254 §5).
 *
 * A channel is an ITransport: any Protocol can run over it (`write`, `writeSequence`,
 * `loseConnection`, `getPeer`, `getHost`, producer/consumer). Subclasses override the hooks
 * (`channelOpen`, `dataReceived`, `extReceived`, `eofReceived`, `closeReceived`, `closed`,
 * `request_<name>`) exactly as in Twisted.
 *
 * Flow control: writes never exceed the peer's window or maximum packet; what does not fit is
 * queued and sent as SSH_MSG_CHANNEL_WINDOW_ADJUST messages arrive. On the receiving side the
 * connection gives window back once less than half of it is left — unless the channel has been
 * paused (`pauseProducing`), so a slow consumer bounds memory to one window.
 */
import type { IAddress, IProducer, IPullProducer, IPushProducer, ITransport } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import type { IConchUser } from "../avatar.js";
import { toBytes } from "./common.js";
import type { SSHConnection } from "./connection.js";
import type { SSHServiceTransport } from "./service.js";
import { ByteQueue } from "./_connection/bytequeue.js";
import { MAX_PACKET_LENGTH } from "./_tbase/base.js";

/** Default local window: how much the peer may send before we give window back (OpenSSH's 2 MiB). */
export const DEFAULT_LOCAL_WINDOW = 2 * 1024 * 1024;
/** Default largest data packet we accept (RFC 4253 §6.1 guarantees 32768 bytes of payload). */
export const DEFAULT_LOCAL_MAX_PACKET = 32 * 1024;
/**
 * The largest data packet a channel asks for: what fits, with the CHANNEL_DATA header, padding and
 * MAC, in a transport packet of `MAX_PACKET_LENGTH` (256 KiB), the most our transport accepts. A
 * larger `localMaxPacket` would invite packets the transport must refuse, so it is lowered to this.
 */
export const MAX_LOCAL_MAX_PACKET = MAX_PACKET_LENGTH - 1024;
/** The largest window RFC 4254 §5.2 allows (2^32 - 1). */
export const MAX_WINDOW = 0xffffffff;
/**
 * The longest first chunk `writeSequence` carries in a CHANNEL_DATA's head (with the 8 bytes of
 * channel number and length it stays under what the ciphers seal as a separate piece).
 */
const SEQUENCE_HEAD_MAX = 56;

/** The options Twisted's `SSHChannel.__init__` takes as keyword arguments. */
export interface SSHChannelOptions {
  /** Our window size; 0 or absent → {@link DEFAULT_LOCAL_WINDOW}. */
  localWindow?: number;
  /**
   * Largest data packet we accept; 0 or absent → {@link DEFAULT_LOCAL_MAX_PACKET}; at most
   * {@link MAX_LOCAL_MAX_PACKET}.
   */
  localMaxPacket?: number;
  /** The peer's window (set by the connection when it opens a channel the peer asked for). */
  remoteWindow?: number;
  /** The peer's largest packet. */
  remoteMaxPacket?: number;
  /** The connection this channel belongs to (the connection also sets it when opening). */
  conn?: SSHConnection;
  /** The channel-specific data the peer sent with its CHANNEL_OPEN. */
  data?: Uint8Array;
  /** Server side: the logged-in user's avatar. */
  avatar?: IConchUser;
}

/** What a request handler may return: true/false, or a Deferred/Promise of one. */
export type RequestResult = boolean | number | PromiseLike<unknown>;

/** A `request_<name>` handler. */
export type RequestHandler = (data: Uint8Array) => RequestResult;

/**
 * Twisted's `SSHChannel`. Subclass it, set `name` (the channel type, e.g. "session") and override
 * the hooks. `new CatChannel({ conn: this })` from a connection, then `conn.openChannel(channel)`.
 */
export class SSHChannel implements ITransport, IPushProducer {
  /** The channel type sent in CHANNEL_OPEN ("session", "direct-tcpip", …). */
  name = "";
  /** Our channel number, set by the connection. */
  id: number | undefined = undefined;
  /** Our window size: what we give back to after the peer used it. */
  localWindowSize: number;
  /** Bytes the peer may still send before we adjust the window. */
  localWindowLeft: number;
  /** The largest data packet we accept. */
  localMaxPacket: number;
  /** Bytes we may still send before the peer adjusts its window. */
  remoteWindowLeft: number;
  /** The largest data packet the peer accepts. */
  remoteMaxPacket: number;
  /** False while our sends are held back by the peer's window. */
  areWriting = true;
  /** True while the SSH transport holds output back (`SSHService.outputHeld`). */
  private transportHeld = false;
  /** Data from the peer's CHANNEL_OPEN (server side). */
  data: Uint8Array | undefined;
  /** The avatar of the logged-in user (server side). */
  avatar: IConchUser | undefined;
  /** Extra bytes sent after our CHANNEL_OPEN_CONFIRMATION fields. */
  specificData: Uint8Array = new Uint8Array(0);
  /** True once `loseConnection` was called: CLOSE goes out when the buffers are empty. */
  closing = false;
  /** True once we sent CHANNEL_CLOSE. */
  localClosed = false;
  /** True once the peer sent CHANNEL_CLOSE. */
  remoteClosed = false;
  /** True while the consumer of our incoming data paused us: no window is given back. */
  paused = false;
  /** True when EOF was asked for while data was still queued: it goes out once the queue drains. */
  eofPending = false;

  /** Data held back by the peer's window. */
  protected readonly buf = new ByteQueue();
  /** Extended data held back by the peer's window, as (type, data) runs. */
  protected readonly extBuf: Array<[number, ByteQueue]> = [];
  /** Logger for this channel's events. */
  protected readonly log = new Logger("twisted-ts.conch.ssh.channel", this);

  private _conn: SSHConnection | undefined;
  private producer: IProducer | undefined = undefined;
  private streamingProducer = true;

  constructor(options: SSHChannelOptions = {}) {
    this.localWindowSize = options.localWindow || DEFAULT_LOCAL_WINDOW;
    this.localWindowLeft = this.localWindowSize;
    this.localMaxPacket = Math.min(options.localMaxPacket || DEFAULT_LOCAL_MAX_PACKET, MAX_LOCAL_MAX_PACKET);
    this.remoteWindowLeft = options.remoteWindow ?? 0;
    this.remoteMaxPacket = options.remoteMaxPacket ?? 0;
    this._conn = options.conn;
    this.data = options.data;
    this.avatar = options.avatar;
  }

  /** The connection this channel runs on; throws when the channel has not been given one yet. */
  get conn(): SSHConnection {
    if (this._conn === undefined) throw new Error(`${this.logPrefix()}: channel has no connection yet`);
    return this._conn;
  }

  set conn(conn: SSHConnection) {
    this._conn = conn;
  }

  /** True when the channel has a connection (`conn` would not throw). */
  get hasConnection(): boolean {
    return this._conn !== undefined;
  }

  toString(): string {
    return `<SSHChannel ${this.name || "None"} (lw ${this.localWindowLeft} rw ${this.remoteWindowLeft})>`;
  }

  logPrefix(): string {
    const conn = this._conn === undefined ? "no connection" : this._conn.logPrefix();
    return `SSHChannel ${this.name || "None"} (${this.id ?? "unknown"}) on ${conn}`;
  }

  // ---- hooks ----------------------------------------------------------------------------------

  /** The channel is open; `specificData` is what the peer sent with its confirmation or open. */
  channelOpen(specificData: Uint8Array): void {
    void specificData;
    this.log.info("channel open");
  }

  /** The peer refused the open: `reason.value` is the description, `reason.data` the code. */
  openFailed(reason: Error): void {
    this.log.error("other side refused open\nreason: {reason}", { reason });
  }

  /**
   * A request arrived for this channel: dispatched to `request_<type>` (with `-` as `_`). A true
   * result (or a Deferred/Promise of one) is success; no handler means failure.
   */
  requestReceived(requestType: string, data: Uint8Array): RequestResult {
    const handler = (this as unknown as Record<string, unknown>)[`request_${requestType.replaceAll("-", "_")}`];
    if (typeof handler === "function") return (handler as RequestHandler).call(this, data);
    this.log.info("unhandled request for {requestType}", { requestType });
    return false;
  }

  /**
   * Called after a request from the peer has been handled and its reply (if one was wanted) sent.
   * SSHSession uses it so that a command that ends at once closes the channel only after the
   * client has its SUCCESS.
   */
  requestDone(_requestType: string): void {}

  /** Data arrived from the peer. */
  dataReceived(data: Uint8Array): void {
    this.log.debug("got data {length} bytes", { length: data.length });
  }

  /** Extended data arrived (type 1 is stderr). */
  extReceived(dataType: number, data: Uint8Array): void {
    this.log.debug("got extended data {dataType} {length} bytes", { dataType, length: data.length });
  }

  /** The peer will send no more data. */
  eofReceived(): void {
    this.log.info("remote eof");
  }

  /** The peer closed the channel; by default we close our side too. */
  closeReceived(): void {
    this.log.info("remote close");
    this.loseConnection();
  }

  /** Both sides have closed the channel. */
  closed(): void {
    this.log.info("closed");
  }

  /** Hint: the peer's window is full. Override to stop writing; registered producers are paused. */
  stopWriting(): void {}

  /** Hint: the peer's window has room again. Registered producers are resumed. */
  startWriting(): void {}

  // ---- flow control ---------------------------------------------------------------------------

  /** The peer added `bytes` to its window (CHANNEL_WINDOW_ADJUST): send what was held back. */
  addWindowBytes(bytes: number): void {
    this.remoteWindowLeft = Math.min(MAX_WINDOW, this.remoteWindowLeft + bytes);
    if (this.buf.length > 0) this.sendQueued();
    while (this.extBuf.length > 0 && this.remoteWindowLeft > 0) {
      const run = this.extBuf[0]!;
      this.sendExtendedQueued(run[0], run[1]);
      if (run[1].length > 0) break;
      this.extBuf.shift();
    }
    if (this.buf.length === 0 && this.extBuf.length === 0) {
      if (this.eofPending) {
        this.eofPending = false;
        this.conn.sendEOF(this);
      }
      if (!this.areWriting && !this.closing) {
        this.areWriting = true;
        this.startWriting();
        if (!this.transportHeld) this.resumeRegisteredProducer();
      }
      if (this.closing) this.loseConnection();
    }
  }

  /** Bytes written but not yet sent because of the peer's window. */
  get bufferedAmount(): number {
    let n = this.buf.length;
    for (const [, q] of this.extBuf) n += q.length;
    return n;
  }

  // ---- ITransport -----------------------------------------------------------------------------

  /**
   * Writes data to the peer: sent at once up to the peer's window in packets of at most its
   * maximum packet size, the rest held until the window grows. The bytes are not copied: do not
   * change them after writing. A string is sent as UTF-8.
   */
  write(data: Uint8Array | string): void {
    const bytes = toBytes(data);
    if (bytes.length === 0 || this.localClosed) return;
    if (this.buf.length > 0) {
      this.buf.push(bytes);
      return;
    }
    let now = bytes;
    if (bytes.length > this.remoteWindowLeft) {
      now = bytes.subarray(0, this.remoteWindowLeft);
      this.buf.push(bytes.subarray(this.remoteWindowLeft));
      this.blocked();
    }
    const step = Math.max(1, this.remoteMaxPacket);
    for (let off = 0; off < now.length; off += step) {
      this.conn.sendData(this, now.length <= step ? now : now.subarray(off, off + step));
    }
    this.remoteWindowLeft -= now.length;
    if (this.closing && this.buf.length === 0 && this.extBuf.length === 0) this.loseConnection();
  }

  /** Writes extended data (`EXTENDED_DATA_STDERR` for stderr), with the same flow control. */
  writeExtended(dataType: number, data: Uint8Array | string): void {
    const bytes = toBytes(data);
    if (bytes.length === 0 || this.localClosed) return;
    if (this.extBuf.length > 0) {
      const last = this.extBuf[this.extBuf.length - 1]!;
      if (last[0] === dataType) last[1].push(bytes);
      else {
        const q = new ByteQueue();
        q.push(bytes);
        this.extBuf.push([dataType, q]);
      }
      return;
    }
    let now = bytes;
    if (bytes.length > this.remoteWindowLeft) {
      now = bytes.subarray(0, this.remoteWindowLeft);
      const q = new ByteQueue();
      q.push(bytes.subarray(this.remoteWindowLeft));
      this.extBuf.push([dataType, q]);
      this.blocked();
    }
    const step = Math.max(1, this.remoteMaxPacket);
    for (let off = 0; off < now.length; off += step) {
      this.conn.sendExtendedData(this, dataType, now.length <= step ? now : now.subarray(off, off + step));
    }
    this.remoteWindowLeft -= now.length;
    if (this.closing && this.buf.length === 0 && this.extBuf.length === 0) this.loseConnection();
  }

  /**
   * Writes several chunks as one. A short chunk followed by a long one (an SFTP WRITE: its header,
   * then the data) rides in the head of the long one's first CHANNEL_DATA when the window allows,
   * so the data is neither copied nor sent in a packet of its own after a tiny one.
   */
  writeSequence(data: Iterable<Uint8Array | string>): void {
    const parts = Array.isArray(data) ? (data as Array<Uint8Array | string>) : [...data];
    if (parts.length === 2 && typeof parts[0] !== "string" && typeof parts[1] !== "string") {
      const [head, body] = parts as [Uint8Array, Uint8Array];
      const step = this.remoteMaxPacket;
      if (this.buf.length === 0 && !this.localClosed && head.length <= SEQUENCE_HEAD_MAX && head.length < step && head.length + body.length <= this.remoteWindowLeft) {
        const first = Math.min(body.length, step - head.length);
        this.conn.sendData(this, body.subarray(0, first), head);
        this.remoteWindowLeft -= head.length + first;
        if (first < body.length) this.write(body.subarray(first));
        else if (this.closing && this.extBuf.length === 0) this.loseConnection();
        return;
      }
    }
    for (const d of parts) this.write(d);
  }

  /**
   * Closes our side: CHANNEL_CLOSE goes out once everything written has been sent. Data from the
   * peer still arrives until it closes too. When the peer has already closed, what is still
   * queued can never be sent and is dropped.
   */
  loseConnection(): void {
    this.closing = true;
    if (this.remoteClosed && (this.buf.length > 0 || this.extBuf.length > 0)) {
      this.log.info("dropping {bytes} unsent bytes: the peer closed the channel", { bytes: this.bufferedAmount });
      this.buf.clear();
      this.extBuf.length = 0;
      this.eofPending = false;
    }
    if (this.buf.length === 0 && this.extBuf.length === 0 && this._conn !== undefined) this._conn.sendClose(this);
  }

  /**
   * Half-close: sends CHANNEL_EOF once everything written so far has gone out (the peer then
   * knows no more data follows; it can still send to us).
   */
  loseWriteConnection(): void {
    this.conn.sendEOF(this);
  }

  /** True once `loseConnection` (or `abortConnection`) was called. */
  get disconnecting(): boolean {
    return this.closing;
  }

  /** Drops queued data and sends CHANNEL_CLOSE now. */
  abortConnection(): void {
    this.buf.clear();
    this.extBuf.length = 0;
    this.eofPending = false;
    this.loseConnection();
  }

  /** The SSH connection's peer address. */
  getPeer(): IAddress {
    return this.connTransport().getPeer();
  }

  /** The SSH connection's local address. */
  getHost(): IAddress {
    return this.connTransport().getHost();
  }

  // ---- IConsumer: a producer writing into this channel ----------------------------------------

  /** Registers a producer that is paused while the peer's window is full and resumed after. */
  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void {
    if (this.producer !== undefined) throw new Error("a producer is already registered on this channel");
    this.producer = producer;
    this.streamingProducer = streaming;
    this.transportHeld = this._conn?.outputIsHeld ?? false;
    if ((!this.areWriting || this.transportHeld) && streaming) (producer as IPushProducer).pauseProducing();
    else if (!streaming) this.resumeRegisteredProducer();
  }

  /** @internal The transport holds output back, or sends again: the producer follows. */
  _outputHeld(held: boolean): void {
    if (this.transportHeld === held) return;
    this.transportHeld = held;
    const p = this.producer;
    // While the peer's window is full the producer is paused already, and addWindowBytes resumes it.
    if (p === undefined || !this.areWriting) return;
    if (!held) this.resumeRegisteredProducer();
    else if (this.streamingProducer) (p as IPushProducer).pauseProducing();
  }

  unregisterProducer(): void {
    this.producer = undefined;
  }

  // ---- IPushProducer: the consumer of our incoming data ---------------------------------------

  /** Stops giving window back to the peer, so it stops sending after at most one window. */
  pauseProducing(): void {
    this.paused = true;
  }

  /** Gives back the window used while paused. */
  resumeProducing(): void {
    if (!this.paused) return;
    this.paused = false;
    if (this._conn !== undefined && !this.localClosed && this.localWindowLeft < Math.floor(this.localWindowSize / 2)) {
      this._conn.adjustWindow(this, this.localWindowSize - this.localWindowLeft);
    }
  }

  /** Closes the channel. */
  stopProducing(): void {
    this.loseConnection();
  }

  // ---- internals ------------------------------------------------------------------------------

  private connTransport(): SSHServiceTransport {
    const t = this.conn.transport;
    if (t === undefined) throw new Error(`${this.logPrefix()}: the connection has no transport`);
    return t;
  }

  /** @internal The connection tells the channel it is gone for good: the producer is released. */
  _connectionDone(): void {
    const p = this.producer;
    this.producer = undefined;
    if (p !== undefined) {
      try {
        p.stopProducing();
      } catch (e) {
        this.log.failure("producer failed to stop", e, "error");
      }
    }
  }

  private blocked(): void {
    if (!this.areWriting) return;
    this.areWriting = false;
    this.stopWriting();
    if (this.producer !== undefined && this.streamingProducer) (this.producer as IPushProducer).pauseProducing();
  }

  private resumeRegisteredProducer(): void {
    const p = this.producer;
    if (p === undefined) return;
    if (this.streamingProducer) {
      (p as IPushProducer).resumeProducing();
      return;
    }
    // A pull producer writes one chunk per resumeProducing: keep asking while the window is open.
    for (let i = 0; i < 1024 && this.producer === p && this.areWriting && !this.transportHeld && !this.closing; i++) {
      const before = this.remoteWindowLeft + this.bufferedAmount;
      (p as IPullProducer).resumeProducing();
      if (this.remoteWindowLeft + this.bufferedAmount === before) break;
    }
  }

  private sendQueued(): void {
    const conn = this.conn;
    const step = Math.max(1, this.remoteMaxPacket);
    while (this.buf.length > 0 && this.remoteWindowLeft > 0) {
      const chunk = this.buf.take(Math.min(step, this.remoteWindowLeft));
      this.remoteWindowLeft -= chunk.length;
      conn.sendData(this, chunk);
    }
  }

  private sendExtendedQueued(dataType: number, q: ByteQueue): void {
    const conn = this.conn;
    const step = Math.max(1, this.remoteMaxPacket);
    while (q.length > 0 && this.remoteWindowLeft > 0) {
      const chunk = q.take(Math.min(step, this.remoteWindowLeft));
      this.remoteWindowLeft -= chunk.length;
      conn.sendExtendedData(this, dataType, chunk);
    }
  }
}
