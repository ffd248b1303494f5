/**
 * `twisted.protocols.basic`: framing protocols. `LineReceiver` (lines, with a raw mode),
 * `LineOnlyReceiver`, the length-prefixed `Int32StringReceiver` / `Int16StringReceiver` /
 * `Int8StringReceiver`, and `NetstringReceiver`. Each is a byte-fed state machine: any split of
 * the input gives the same calls as the whole.
 */
import type { IProducer, ITCPTransport } from "./interfaces.js";
import { Protocol } from "./protocol.js";

const EMPTY = Buffer.alloc(0);

function toBuffer(data: Uint8Array | string): Buffer {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

function concat(a: Buffer, b: Uint8Array): Buffer {
  if (a.length === 0) return toBuffer(b);
  if (b.length === 0) return a;
  return Buffer.concat([a, b]);
}

/** `sendString` was given more than the length prefix can express. */
export class StringTooLongError extends Error {
  readonly code = "ERR_STRING_TOO_LONG";
  constructor(message: string) {
    super(message);
    this.name = "StringTooLongError";
  }
}

/**
 * A protocol that is also a push producer over its transport (Twisted's `_PauseableMixin`):
 * pausing stops both the transport's reading and the parsing of what is already buffered.
 */
abstract class PauseableProtocol extends Protocol implements IProducer {
  /** True while paused: buffered input is not parsed. */
  paused = false;

  pauseProducing(): void {
    this.paused = true;
    this.transport.pauseProducing();
  }

  resumeProducing(): void {
    this.paused = false;
    this.transport.resumeProducing();
    this.dataReceived(EMPTY);
  }

  stopProducing(): void {
    this.paused = true;
    this.transport.stopProducing();
  }
}

/**
 * Lines or raw data, by mode (Twisted's `LineReceiver`). In line mode each `delimiter`-ended
 * line goes to `lineReceived`; after `setRawMode()` every chunk (including the rest of the chunk
 * that held the switching line) goes to `rawDataReceived`. A line longer than `MAX_LENGTH` calls
 * `lineLengthExceeded` (default: drop the connection). A truthy return from `lineReceived`, or
 * the transport disconnecting, stops processing of the current input.
 */
export class LineReceiver extends PauseableProtocol {
  /** The line terminator. */
  delimiter: Uint8Array = Buffer.from("\r\n");
  /** The longest line accepted, without its delimiter. */
  MAX_LENGTH = 16384;
  /** True in line mode, false in raw mode. */
  line_mode = true;
  private _buffer: Buffer = EMPTY;
  private _busyReceiving = false;

  /** Drops the buffered, unparsed input and returns it. */
  clearLineBuffer(): Uint8Array {
    const b = this._buffer;
    this._buffer = EMPTY;
    return b;
  }

  override dataReceived(data: Uint8Array): unknown {
    if (this._busyReceiving) {
      // Re-entrant call (from lineReceived or setLineMode): only buffer; the outer loop parses it.
      this._buffer = concat(this._buffer, data);
      return undefined;
    }
    this._busyReceiving = true;
    try {
      this._buffer = concat(this._buffer, data);
      while (this._buffer.length > 0 && !this.paused) {
        if (this.line_mode) {
          const delim = this.delimiter;
          const i = this._buffer.indexOf(delim);
          if (i < 0) {
            if (this._buffer.length >= this.MAX_LENGTH + delim.length) {
              const line = this._buffer;
              this._buffer = EMPTY;
              return this.lineLengthExceeded(line);
            }
            return undefined;
          }
          const line = this._buffer.subarray(0, i);
          const rest = this._buffer.subarray(i + delim.length);
          if (line.length > this.MAX_LENGTH) {
            const exceeded = Buffer.concat([line, delim, rest]);
            this._buffer = EMPTY;
            return this.lineLengthExceeded(exceeded);
          }
          this._buffer = rest;
          const why = this.lineReceived(line);
          if (why || (this.transport && this.transport.disconnecting)) return why;
        } else {
          const chunk = this._buffer;
          this._buffer = EMPTY;
          const why = this.rawDataReceived(chunk);
          if (why) return why;
        }
      }
      return undefined;
    } finally {
      this._busyReceiving = false;
    }
  }

  /** Back to line mode; `extra` (unparsed data from raw mode) is parsed for lines. */
  setLineMode(extra: Uint8Array = EMPTY): unknown {
    this.line_mode = true;
    if (extra.length > 0) return this.dataReceived(extra);
    return undefined;
  }

  /** Raw mode: further data (and the rest of the current chunk) goes to `rawDataReceived`. */
  setRawMode(): void {
    this.line_mode = false;
  }

  /** Override: raw data in raw mode. */
  rawDataReceived(_data: Uint8Array): unknown {
    throw new Error(`${this.constructor.name}.rawDataReceived is not implemented`);
  }

  /** Override: one line, without its delimiter. Return truthy to stop processing this input. */
  lineReceived(_line: Uint8Array): unknown {
    throw new Error(`${this.constructor.name}.lineReceived is not implemented`);
  }

  /** Writes `line` and the delimiter in one write. */
  sendLine(line: Uint8Array | string): void {
    this.transport.write(Buffer.concat([toBuffer(line), this.delimiter]));
  }

  /**
   * A line was too long. `line` holds the rest of the buffer, starting with (part of) the long
   * line. The default drops the connection.
   */
  lineLengthExceeded(_line: Uint8Array): unknown {
    this.transport.loseConnection();
    return undefined;
  }
}

/** Lines only, a faster `LineReceiver` without raw mode (Twisted's `LineOnlyReceiver`). */
export class LineOnlyReceiver extends Protocol<ITCPTransport> {
  delimiter: Uint8Array = Buffer.from("\r\n");
  MAX_LENGTH = 16384;
  private _buffer: Buffer = EMPTY;

  override dataReceived(data: Uint8Array): unknown {
    const buf = concat(this._buffer, data);
    const delim = this.delimiter;
    let start = 0;
    for (;;) {
      const i = buf.indexOf(delim, start);
      if (i < 0) break;
      if (this.transport.disconnecting) {
        this._buffer = EMPTY;
        return undefined;
      }
      const line = buf.subarray(start, i);
      start = i + delim.length;
      if (line.length > this.MAX_LENGTH) {
        this._buffer = buf.subarray(start);
        return this.lineLengthExceeded(line);
      }
      this.lineReceived(line);
    }
    this._buffer = start === 0 ? buf : buf.subarray(start);
    if (this._buffer.length > this.MAX_LENGTH) return this.lineLengthExceeded(this._buffer);
    return undefined;
  }

  lineReceived(_line: Uint8Array): void {
    throw new Error(`${this.constructor.name}.lineReceived is not implemented`);
  }

  /** Writes `line` then the delimiter (as one `writeSequence`). */
  sendLine(line: Uint8Array | string): void {
    this.transport.writeSequence([toBuffer(line), this.delimiter]);
  }

  lineLengthExceeded(_line: Uint8Array): unknown {
    this.transport.loseConnection();
    return undefined;
  }
}

/**
 * Strings with a big-endian length prefix of `prefixLength` bytes (Twisted's
 * `IntNStringReceiver`). A prefix over `MAX_LENGTH` calls `lengthLimitExceeded` before any of
 * the body is buffered (default: drop the connection).
 */
export abstract class IntNStringReceiver extends PauseableProtocol {
  /** The largest string accepted. */
  MAX_LENGTH = 99999;
  /** Bytes in the length prefix. */
  abstract readonly prefixLength: 1 | 2 | 4;
  private _unprocessed: Buffer = EMPTY;

  /** Override: one complete string, without its prefix. */
  stringReceived(_string: Uint8Array): void {
    throw new Error(`${this.constructor.name}.stringReceived is not implemented`);
  }

  /** A peer announced `length` > MAX_LENGTH; the default drops the connection. */
  lengthLimitExceeded(_length: number): void {
    this.transport.loseConnection();
  }

  override dataReceived(data: Uint8Array): void {
    const all = concat(this._unprocessed, data);
    const n = this.prefixLength;
    let offset = 0;
    this._unprocessed = all;
    while (all.length >= offset + n && !this.paused) {
      const length = n === 4 ? all.readUInt32BE(offset) : n === 2 ? all.readUInt16BE(offset) : all.readUInt8(offset);
      if (length > this.MAX_LENGTH) {
        this._unprocessed = all.subarray(offset);
        this.lengthLimitExceeded(length);
        return;
      }
      const start = offset + n;
      const end = start + length;
      if (all.length < end) break;
      offset = end;
      this._unprocessed = all.subarray(offset);
      this.stringReceived(all.subarray(start, end));
    }
    this._unprocessed = all.subarray(offset);
  }

  /** Writes `string` with its length prefix; throws StringTooLongError if the prefix cannot hold it. */
  sendString(string: Uint8Array | string): void {
    const s = toBuffer(string);
    const n = this.prefixLength;
    if (s.length >= 2 ** (8 * n)) {
      throw new StringTooLongError(`Try to send ${s.length} bytes whereas maximum is ${2 ** (8 * n)}`);
    }
    const prefix = Buffer.allocUnsafe(n);
    prefix.writeUIntBE(s.length, 0, n);
    this.transport.write(Buffer.concat([prefix, s]));
  }
}

/** 4-byte network-order length prefix. */
export class Int32StringReceiver extends IntNStringReceiver {
  readonly prefixLength = 4 as const;
}
/** 2-byte network-order length prefix. */
export class Int16StringReceiver extends IntNStringReceiver {
  readonly prefixLength = 2 as const;
}
/** 1-byte length prefix. */
export class Int8StringReceiver extends IntNStringReceiver {
  readonly prefixLength = 1 as const;
}

/** A netstring could not be parsed. */
export class NetstringParseError extends Error {
  readonly code = "ERR_NETSTRING_PARSE";
  constructor(message: string) {
    super(message);
    this.name = "NetstringParseError";
  }
}

const enum NetstringState {
  Length,
  Payload,
}

/**
 * Netstrings, `<decimal length>:<data>,` (Twisted's `NetstringReceiver`). A malformed length,
 * a length over `MAX_LENGTH` or a missing comma drops the connection and sets `brokenPeer`.
 */
export class NetstringReceiver extends Protocol<ITCPTransport> {
  MAX_LENGTH = 99999;
  /** Set to 1 when the peer sent something that is not a netstring. */
  brokenPeer = 0;
  private _remaining: Buffer = EMPTY;
  private _state = NetstringState.Length;
  private _expected = 0;
  private _payload: Buffer[] = [];
  private _payloadSize = 0;

  stringReceived(_string: Uint8Array): void {
    throw new Error(`${this.constructor.name}.stringReceived is not implemented`);
  }

  sendString(string: Uint8Array | string): void {
    const s = toBuffer(string);
    this.transport.write(Buffer.concat([Buffer.from(`${s.length}:`, "latin1"), s, Buffer.from(",")]));
  }

  override dataReceived(data: Uint8Array): void {
    this._remaining = concat(this._remaining, data);
    while (this._remaining.length > 0) {
      try {
        if (!this.consume()) break;
      } catch (e) {
        if (!(e instanceof NetstringParseError)) throw e;
        this.transport.loseConnection();
        this.brokenPeer = 1;
        break;
      }
    }
  }

  private maxLengthSize(): number {
    return Math.ceil(Math.log10(this.MAX_LENGTH)) + 1;
  }

  private checkLength(digits: string): number {
    if (digits.length > this.maxLengthSize()) {
      throw new NetstringParseError(`The received netstring is longer than the maximum ${this.MAX_LENGTH}`);
    }
    const n = Number(digits);
    if (n > this.MAX_LENGTH) {
      throw new NetstringParseError(`The received netstring is longer than the maximum ${this.MAX_LENGTH}`);
    }
    return n;
  }

  /** Parses what it can; false when more input is needed. */
  private consume(): boolean {
    if (this._state === NetstringState.Length) {
      const buf = this._remaining;
      let i = 0;
      while (i < buf.length && buf[i]! >= 0x30 && buf[i]! <= 0x39) i++;
      const digits = buf.toString("latin1", 0, i);
      if (i === 0 || (digits.length > 1 && digits.startsWith("0"))) {
        throw new NetstringParseError("The received netstring does not start with a length specification.");
      }
      this.checkLength(digits);
      if (i === buf.length) return false;
      if (buf[i] !== 0x3a) {
        throw new NetstringParseError("The received netstring does not start with a length specification.");
      }
      this._expected = Number(digits) + 1;
      this._remaining = buf.subarray(i + 1);
      this._state = NetstringState.Payload;
      this._payload = [];
      this._payloadSize = 0;
    }
    const need = this._expected - this._payloadSize;
    if (this._remaining.length < need) {
      this._payload.push(this._remaining);
      this._payloadSize += this._remaining.length;
      this._remaining = EMPTY;
      return false;
    }
    this._payload.push(this._remaining.subarray(0, need));
    this._remaining = this._remaining.subarray(need);
    const payload = Buffer.concat(this._payload);
    this._payload = [];
    this._payloadSize = 0;
    this._state = NetstringState.Length;
    if (payload[payload.length - 1] !== 0x2c) {
      throw new NetstringParseError("The received netstring is not terminated by a comma.");
    }
    this.stringReceived(payload.subarray(0, payload.length - 1));
    return true;
  }
}
