/**
 * The SFTP wire: {@link SFTPError}, file attributes (draft-02 §5), and the byte-fed packet
 * framer both ends use (`uint32 length`, `byte type`, then the body).
 */
import { SSHReader, SSHWriter, decodeUtf8 } from "../common.js";
import { MalformedFieldError } from "../../error.js";
import {
  FILEXFER_ATTR_ACMODTIME,
  FILEXFER_ATTR_EXTENDED,
  FILEXFER_ATTR_PERMISSIONS,
  FILEXFER_ATTR_SIZE,
  FILEXFER_ATTR_UIDGID,
  FX_BAD_MESSAGE,
  FX_CONNECTION_LOST,
  FX_EOF,
  FX_FAILURE,
  FX_FILE_ALREADY_EXISTS,
  FX_NO_CONNECTION,
  FX_NO_SUCH_FILE,
  FX_OK,
  FX_OP_UNSUPPORTED,
  FX_PERMISSION_DENIED,
  MAX_PACKET_LENGTH,
} from "./constants.js";

const STATUS_NAMES: Readonly<Record<number, string>> = {
  [FX_OK]: "FX_OK",
  [FX_EOF]: "FX_EOF",
  [FX_NO_SUCH_FILE]: "FX_NO_SUCH_FILE",
  [FX_PERMISSION_DENIED]: "FX_PERMISSION_DENIED",
  [FX_FAILURE]: "FX_FAILURE",
  [FX_BAD_MESSAGE]: "FX_BAD_MESSAGE",
  [FX_NO_CONNECTION]: "FX_NO_CONNECTION",
  [FX_CONNECTION_LOST]: "FX_CONNECTION_LOST",
  [FX_OP_UNSUPPORTED]: "FX_OP_UNSUPPORTED",
  [FX_FILE_ALREADY_EXISTS]: "FX_FILE_ALREADY_EXISTS",
};

/**
 * Twisted's `SFTPError`: a request failed with SFTP status `code` (`FX_*`) and the message the
 * server sent. Where Twisted raises `EOFError` (FX_EOF) or `NotImplementedError`
 * (FX_OP_UNSUPPORTED), this port raises SFTPError with that code, so one `catch` sees them all.
 * A server-side ISFTPServer throws it to answer with a chosen status.
 */
export class SFTPError extends Error {
  /** The SFTP status code, an `FX_*` constant (Twisted's `code`). */
  readonly code: number;
  /** The language tag the server sent with the message. */
  readonly lang: string;

  constructor(code: number, message: string, lang = "") {
    super(message);
    this.name = "SFTPError";
    this.code = code;
    this.lang = lang;
  }

  /** The status constant's name ("FX_NO_SUCH_FILE"), or "FX_<code>" for one this port does not name. */
  get statusName(): string {
    return STATUS_NAMES[this.code] ?? `FX_${this.code}`;
  }

  override toString(): string {
    return `SFTPError ${this.code}: ${this.message}`;
  }
}

/** The status name of `code` ("FX_NO_SUCH_FILE"). */
export function statusName(code: number): string {
  return STATUS_NAMES[code] ?? `FX_${code}`;
}

/**
 * File attributes (draft-02 §5): what is present is what the flags said. Twisted keeps them in a
 * dict with the same keys; its `ext_<name>` keys are the `extended` record here.
 */
export interface FileAttributes {
  size?: number;
  uid?: number;
  gid?: number;
  /** Mode bits, file type included (S_IFREG | 0644, …) as stat(2) gives them. */
  permissions?: number;
  /** Seconds since the epoch. */
  atime?: number;
  mtime?: number;
  extended?: Record<string, Uint8Array>;
}

/**
 * A copy of `bytes` that owns its memory. `.slice()` will not do: on a Buffer (what the sftp-server
 * bin's input and an SSH channel's data are) it is a view, like `subarray`, of memory that the
 * next read overwrites.
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  return Uint8Array.prototype.slice.call(bytes);
}

/** A uint64 as a JS number; larger than 2^53 − 1 is a malformed field, never silently rounded. */
export function readSafeUint64(r: SSHReader, what: string): number {
  const v = r.uint64();
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new MalformedFieldError(`${what} ${v} is larger than this implementation handles`);
  return Number(v);
}

/** ATTRS: `uint32 flags`, then the fields the flags name, in order. */
export function readAttrs(r: SSHReader): FileAttributes {
  const flags = r.uint32();
  const attrs: FileAttributes = {};
  if (flags & FILEXFER_ATTR_SIZE) attrs.size = readSafeUint64(r, "size");
  if (flags & FILEXFER_ATTR_UIDGID) {
    attrs.uid = r.uint32();
    attrs.gid = r.uint32();
  }
  if (flags & FILEXFER_ATTR_PERMISSIONS) attrs.permissions = r.uint32();
  if (flags & FILEXFER_ATTR_ACMODTIME) {
    attrs.atime = r.uint32();
    attrs.mtime = r.uint32();
  }
  if (flags & FILEXFER_ATTR_EXTENDED) {
    const count = r.uint32();
    const extended: Record<string, Uint8Array> = Object.create(null) as Record<string, Uint8Array>;
    for (let i = 0; i < count; i++) {
      const type = r.utf8("extended attribute name");
      extended[type] = copyBytes(r.string());
    }
    attrs.extended = extended;
  }
  return attrs;
}

/** Writes ATTRS; uid and gid go only as a pair, atime and mtime too (draft-02 §5). */
export function writeAttrs(w: SSHWriter, attrs: FileAttributes): SSHWriter {
  let flags = 0;
  if (attrs.size !== undefined) flags |= FILEXFER_ATTR_SIZE;
  if (attrs.uid !== undefined && attrs.gid !== undefined) flags |= FILEXFER_ATTR_UIDGID;
  if (attrs.permissions !== undefined) flags |= FILEXFER_ATTR_PERMISSIONS;
  if (attrs.atime !== undefined && attrs.mtime !== undefined) flags |= FILEXFER_ATTR_ACMODTIME;
  const ext = attrs.extended === undefined ? [] : Object.entries(attrs.extended);
  if (ext.length > 0) flags |= FILEXFER_ATTR_EXTENDED;
  w.uint32(flags);
  if (flags & FILEXFER_ATTR_SIZE) w.uint64(attrs.size!);
  if (flags & FILEXFER_ATTR_UIDGID) w.uint32(attrs.uid!).uint32(attrs.gid!);
  if (flags & FILEXFER_ATTR_PERMISSIONS) w.uint32(attrs.permissions!);
  if (flags & FILEXFER_ATTR_ACMODTIME) w.uint32(Math.floor(attrs.atime!)).uint32(Math.floor(attrs.mtime!));
  if (ext.length > 0) {
    w.uint32(ext.length);
    for (const [k, v] of ext) w.string(k).string(v);
  }
  return w;
}

/** A path or name field: UTF-8 (SFTP v3 leaves the encoding open; every current peer uses UTF-8). */
export function readPath(r: SSHReader, what = "path"): string {
  return decodeUtf8(r.string(), what);
}

/** Why the framer stopped: the length field says something no packet can be. */
export class SFTPFramingError extends Error {
  readonly code = "ERR_SFTP_FRAMING";
  /** The request id, when the header got that far (to answer it with FX_BAD_MESSAGE). */
  readonly requestId: number | undefined;
  constructor(message: string, requestId?: number) {
    super(message);
    this.name = "SFTPFramingError";
    this.requestId = requestId;
  }
}

/**
 * Byte-fed SFTP packet framer: give it bytes in any pieces; it calls `onPacket(type, body)` once
 * per whole packet (`body` is the packet after the type byte, valid only during the call unless
 * `owned`: then it is a buffer of the framer's own that it never touches again, so the receiver
 * may keep it without a copy). A
 * length over `maxPacketLength` or under one byte is reported to `onError` before any of the body
 * is buffered, and the framer stops.
 */
export class PacketFramer {
  private readonly header = new Uint8Array(4);
  private headerFill = 0;
  private body: Uint8Array | undefined = undefined;
  private bodyFill = 0;
  private failed = false;
  /** Bytes of a too-long packet's start, kept to read its request id for the error reply. */
  private tooLong: { length: number; head: Uint8Array; fill: number } | undefined = undefined;

  /**
   * Memory for a packet that spans several `feed`s (its whole length): by default a buffer of its
   * own; a receiver may hand out recycled memory instead (FileTransferClient's download buffers).
   */
  allocate: (length: number) => Uint8Array = (length) => Buffer.allocUnsafeSlow(length);

  constructor(
    private readonly onPacket: (type: number, body: Uint8Array, owned: boolean) => void,
    private readonly onError: (e: SFTPFramingError) => void,
    /** The largest length field accepted. */
    public maxPacketLength: number = MAX_PACKET_LENGTH,
  ) {}

  /** True once a framing error stopped it. */
  get stopped(): boolean {
    return this.failed;
  }

  feed(data: Uint8Array): void {
    let off = 0;
    while (off < data.length && !this.failed) {
      if (this.tooLong !== undefined) {
        const t = this.tooLong;
        const n = Math.min(data.length - off, 5 - t.fill);
        t.head.set(data.subarray(off, off + n), t.fill);
        t.fill += n;
        off += n;
        if (t.fill === 5) this.fail(`packet of ${t.length} bytes is over the limit of ${this.maxPacketLength}`, new DataView(t.head.buffer).getUint32(1));
        continue;
      }
      if (this.body === undefined) {
        const n = Math.min(data.length - off, 4 - this.headerFill);
        this.header.set(data.subarray(off, off + n), this.headerFill);
        this.headerFill += n;
        off += n;
        if (this.headerFill < 4) return;
        this.headerFill = 0;
        const length = new DataView(this.header.buffer).getUint32(0);
        if (length < 1) {
          this.fail("packet of length 0 has no type");
          return;
        }
        if (length > this.maxPacketLength) {
          // The type byte and request id come next; wait for them so the reply names the request.
          this.tooLong = { length, head: new Uint8Array(5), fill: 0 };
          continue;
        }
        // A whole packet inside this chunk is handed out as a view, no copy.
        if (data.length - off >= length) {
          const pkt = data.subarray(off, off + length);
          off += length;
          this.onPacket(pkt[0]!, pkt.subarray(1), false);
          continue;
        }
        // Every byte is written before the packet is handed out, so no zero-filling; not from
        // the shared pool either, since a receiver may keep the packet (`owned`).
        this.body = this.allocate(length);
        this.bodyFill = 0;
      }
      const body = this.body;
      const n = Math.min(data.length - off, body.length - this.bodyFill);
      body.set(data.subarray(off, off + n), this.bodyFill);
      this.bodyFill += n;
      off += n;
      if (this.bodyFill === body.length) {
        this.body = undefined;
        this.onPacket(body[0]!, body.subarray(1), true);
      }
    }
  }

  private fail(message: string, requestId?: number): void {
    this.failed = true;
    this.tooLong = undefined;
    this.body = undefined;
    this.onError(new SFTPFramingError(message, requestId));
  }
}


/**
 * Builds one SFTP packet in place: `fill` writes the body after the type byte; the length field
 * is set at the end, so the body is never copied. With `tailLength`, the packet's last
 * `tailLength` bytes are not written here: the caller sends them right after what this returns.
 */
export function buildPacket(type: number, fill: (w: SSHWriter) => void, sizeHint = 64, tailLength = 0): Uint8Array {
  const w = new SSHWriter(sizeHint + 5);
  w.uint32(0).byte(type);
  fill(w);
  const out = w.finish();
  new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(0, out.length - 4 + tailLength);
  return out;
}

/**
 * SYMLINK's argument order. The draft puts the link path first; OpenSSH swapped them long ago
 * and OpenSSH, Paramiko and libssh2 send the target first whatever the peer. Others (AsyncSSH,
 * ssh2, WinSCP) send OpenSSH's order only to an OpenSSH server. So a server takes the target
 * first from peers whose SSH version names one of {@link TARGET_FIRST_CLIENTS}, and a client
 * sends it first to servers named in {@link TARGET_FIRST_SERVERS} (AsyncSSH decides the same
 * way). With no SSH version to go by (the sftp-server bin on a pipe), OpenSSH's order.
 */
export const TARGET_FIRST_CLIENTS = /OpenSSH|paramiko|libssh2/;
/** See {@link TARGET_FIRST_CLIENTS}. */
export const TARGET_FIRST_SERVERS = /OpenSSH|paramiko/;

/**
 * The peer's SSH version line when `transport` is a session channel (or a session's process
 * protocol) of our SSH stack, else undefined.
 */
export function peerSSHVersion(transport: unknown): string | undefined {
  type Chain = { session?: Chain; conn?: Chain; transport?: Chain; otherVersionString?: unknown };
  const t = transport as Chain | undefined;
  const channel: Chain | undefined = t?.session ?? t;
  let v: unknown;
  try {
    v = channel?.conn?.transport?.otherVersionString;
  } catch {
    // A channel without a connection yet (its `conn` throws): nothing to go by.
  }
  return typeof v === "string" && v !== "" ? v : undefined;
}

/**
 * INIT and VERSION: `uint32 version`, then (name, data) extension pairs. A malformed tail keeps
 * the version and the pairs read before it; `onError` hears why.
 */
export function readVersion(r: SSHReader, onError: (e: Error) => void): { version: number | undefined; extensions: Record<string, Uint8Array> } {
  const extensions: Record<string, Uint8Array> = Object.create(null) as Record<string, Uint8Array>;
  let version: number | undefined;
  try {
    version = r.uint32();
    while (r.remaining > 0) extensions[readPath(r, "extension name")] = copyBytes(r.string());
  } catch (e) {
    onError(e as Error);
  }
  return { version, extensions };
}
