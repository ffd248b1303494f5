/**
 * Twisted's `FileTransferClient`, `ClientFile` and `ClientDirectory`: the client end of SFTP v3.
 * Every call sends one request and returns a Deferred (awaitable) for its reply; any number may
 * be in flight, and replies are matched to requests by id.
 */
import { ConnectionLost } from "@twisted-ts/internet/error";
import { Deferred, fail } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { Logger } from "@twisted-ts/internet/log";
import { SSHReader, SSHWriter, toBytes } from "../common.js";
import { FileTransferBase } from "./base.js";
import {
  FXP_ATTRS,
  FXP_CLOSE,
  FXP_DATA,
  FXP_EXTENDED,
  FXP_EXTENDED_REPLY,
  FXP_FSETSTAT,
  FXP_FSTAT,
  FXP_HANDLE,
  FXP_INIT,
  FXP_LSTAT,
  FXP_MKDIR,
  FXP_NAME,
  FXP_OPEN,
  FXP_OPENDIR,
  FXP_READ,
  FXP_READDIR,
  FXP_READLINK,
  FXP_REALPATH,
  FXP_REMOVE,
  FXP_RENAME,
  FXP_RMDIR,
  FXP_SETSTAT,
  FXP_STAT,
  FXP_STATUS,
  FXP_SYMLINK,
  FXP_VERSION,
  FXP_WRITE,
  FX_BAD_MESSAGE,
  FX_EOF,
  FX_OK,
  MAX_PACKET_LENGTH,
  SFTP_VERSION,
  packetTypes,
} from "./constants.js";
import type { DirectoryEntry } from "./interfaces.js";
import { TRANSFER_CHUNK_SIZE, TRANSFER_MAX_CHUNK_SIZE, TRANSFER_WINDOW, getFile, getTree, putFile, putTree, type TransferOptions, type TreeResult } from "./transfer.js";
import { createReadStream, createWriteStream, type RemoteReadStreamOptions, type RemoteWriteStreamOptions } from "./streams.js";
import type { Readable, Writable } from "node:stream";
import {
  SFTPError,
  copyBytes,
  TARGET_FIRST_SERVERS,
  peerSSHVersion,
  readAttrs,
  readPath,
  readVersion,
  writeAttrs,
  type FileAttributes,
  type SFTPFramingError,
} from "./wire.js";

const log = new Logger("twisted-ts.conch.ssh.filetransfer");

/** A path as the API takes it: a string (sent as UTF-8) or bytes. */
export type PathLike = string | Uint8Array;

/**
 * Memory of the replies that span channel messages (the DATA of a transfer's READ), lent out and
 * given back by downloads once the chunk is on disk (`_recycle`): a fresh buffer per chunk was
 * external memory that set off most of a download's mark-compacts (measured with bench/sftp).
 * Replies shorter than this get a buffer of their own (a caller may keep them: no 32 KiB for a STATUS).
 */
const REPLY_BUFFER_MIN = TRANSFER_CHUNK_SIZE / 2;
/** Reply buffers come in sizes of whole steps, so that the replies of one transfer share them. */
const REPLY_BUFFER_STEP = 4096;
/** Most bytes of buffers kept for reuse (a download's replies in flight, twice). */
const REPLY_BUFFERS_KEPT_BYTES = 2 * TRANSFER_WINDOW;
/**
 * What `transferChunkSizes` leaves for a packet's own fields under a stated packet limit (as
 * OpenSSH's sftp): a WRITE's are 25 bytes and its handle, at most 256.
 */
const PACKET_OVERHEAD = 1024;

/** A reply: its type and a reader over its body after the request id. */
interface Reply {
  type: number;
  r: SSHReader;
}

/** The status text of an FX_OK reply, as Twisted's `(msg, lang)`. */
export type StatusReply = [message: string, lang: string];

/**
 * Twisted's `FileTransferClient`. Connect it to a channel on which the `sftp` subsystem runs (its
 * `connectionMade` sends INIT); {@link whenReady} fires once the server's VERSION came.
 */
export class FileTransferClient extends FileTransferBase {
  /** Extensions sent in INIT (name → data). */
  readonly extData: Record<string, Uint8Array | string>;
  /** Next request id. */
  counter = 0;
  /** Requests awaiting a reply, by id. */
  readonly openRequests = new Map<number, Deferred<Reply>>();
  /** The server's extensions from VERSION (name → data). */
  serverExtensions: Record<string, Uint8Array> = {};
  /** Fires with the server's version once VERSION arrives. */
  readonly whenReady = new Deferred<number>();
  /**
   * True to send SYMLINK with the target first (OpenSSH's order). Left undefined, it is set when
   * the client connects, from the server's SSH version (see `TARGET_FIRST_SERVERS`).
   */
  symlinkTargetFirst: boolean | undefined = undefined;

  constructor(extData: Record<string, Uint8Array | string> = {}, maxPacketLength: number = MAX_PACKET_LENGTH) {
    super(maxPacketLength);
    this.extData = extData;
    // Nobody may be listening; a lost connection before VERSION must not count as unhandled.
    void this.whenReady.addErrback(() => undefined);
    this.framer.allocate = (length) => this.allocateReply(length);
  }

  /** Reusable reply buffers by size (`_recycle`), their total, and those lent out whose chunks may come back. */
  private readonly spareReplyBuffers = new Map<number, ArrayBuffer[]>();
  private spareReplyBytes = 0;
  private readonly lentReplyBuffers = new WeakSet<ArrayBuffer>();

  private allocateReply(length: number): Uint8Array {
    if (length < REPLY_BUFFER_MIN) return Buffer.allocUnsafeSlow(length);
    const size = Math.ceil(length / REPLY_BUFFER_STEP) * REPLY_BUFFER_STEP;
    let ab = this.spareReplyBuffers.get(size)?.pop();
    if (ab === undefined) ab = new ArrayBuffer(size);
    else this.spareReplyBytes -= size;
    this.lentReplyBuffers.add(ab);
    return Buffer.from(ab, 0, length);
  }

  /**
   * @internal `chunk` (from `readChunk`) is no longer used by anyone, nor is any other view of its
   * memory: a later reply may be read into it. Whatever else is ignored.
   */
  _recycle(chunk: Uint8Array): void {
    const ab = chunk.buffer;
    if (!(ab instanceof ArrayBuffer) || !this.lentReplyBuffers.delete(ab)) return;
    if (this.spareReplyBytes + ab.byteLength > REPLY_BUFFERS_KEPT_BYTES) return;
    let list = this.spareReplyBuffers.get(ab.byteLength);
    if (list === undefined) this.spareReplyBuffers.set(ab.byteLength, (list = []));
    list.push(ab);
    this.spareReplyBytes += ab.byteLength;
  }

  private chunkSizes: Promise<{ read: number; write: number }> | undefined = undefined;

  /**
   * The READ and WRITE sizes `get` and `put` use unless told: what the server's
   * `limits@openssh.com` allow (its read and write lengths, its packet length less 1 KiB, our own
   * packet limit less 1 KiB for DATA replies), at most {@link TRANSFER_MAX_CHUNK_SIZE}; without
   * the extension, or when the server refuses it, {@link TRANSFER_CHUNK_SIZE}. Asked once per
   * session (OpenSSH's sftp does the same at its start); a limit of 0 states none.
   */
  transferChunkSizes(): Promise<{ read: number; write: number }> {
    this.chunkSizes ??= this.askChunkSizes();
    return this.chunkSizes;
  }

  private async askChunkSizes(): Promise<{ read: number; write: number }> {
    const fallback = { read: TRANSFER_CHUNK_SIZE, write: TRANSFER_CHUNK_SIZE };
    if (!this.hasExtension("limits@openssh.com")) return fallback;
    let lim: Awaited<ReturnType<FileTransferClient["limits"]>>;
    try {
      lim = await this.limits();
    } catch (e) {
      log.info("no transfer sizes from limits@openssh.com: {message}", { message: e instanceof Error ? e.message : String(e) });
      return fallback;
    }
    const stated = (n: number): number => (n > 0 ? n : Number.POSITIVE_INFINITY);
    const packet = stated(lim.maxPacketLength) - PACKET_OVERHEAD;
    const size = (n: number): number => Math.max(1, Math.min(stated(n), packet, TRANSFER_MAX_CHUNK_SIZE));
    return { read: Math.max(1, Math.min(size(lim.maxReadLength), this.maxPacketLength - PACKET_OVERHEAD)), write: size(lim.maxWriteLength) };
  }

  /** The server's protocol version (Twisted's `version`), once known. */
  get version(): number | undefined {
    return this.otherVersion;
  }

  override connectionMade(): void {
    if (this.symlinkTargetFirst === undefined) {
      const v = peerSSHVersion(this.transport);
      this.symlinkTargetFirst = v === undefined || TARGET_FIRST_SERVERS.test(v);
    }
    this.send(FXP_INIT, (w) => {
      w.uint32(SFTP_VERSION);
      for (const [k, v] of Object.entries(this.extData)) w.string(k).string(v);
    });
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    const pending = [...this.openRequests.values()];
    this.openRequests.clear();
    for (const d of pending) d.errback(new ConnectionLost(`the SFTP session ended: ${reason.getErrorMessage()}`));
    if (!this.whenReady.called) this.whenReady.errback(new ConnectionLost("the SFTP session ended before VERSION"));
  }

  /** Called with the server's version and extensions (override point, as in Twisted). */
  gotServerVersion(_serverVersion: number, _extData: Record<string, Uint8Array>): void {}

  /** True when the server advertised extension `name` in VERSION. */
  hasExtension(name: string): boolean {
    return Object.hasOwn(this.serverExtensions, name);
  }

  protected override framingError(e: SFTPFramingError): void {
    log.warn("ending the SFTP session: the server sent {message}", { message: e.message });
    this.transport.loseConnection();
  }

  protected override packetReceived(type: number, body: Uint8Array, owned = false): void {
    if (type === FXP_VERSION) {
      this.packet_VERSION(new SSHReader(body));
      return;
    }
    // A DATA reply of a full chunk spans channel messages, so the framer's own buffer holds it: kept as
    // is. Anything else is a view of the channel's data, which its sender may reuse: copied.
    const r = new SSHReader(owned ? body : copyBytes(body));
    let id: number;
    try {
      id = r.uint32();
    } catch {
      log.warn("reply of type {type} without a request id", { type });
      return;
    }
    const d = this.openRequests.get(id);
    if (d === undefined) {
      log.warn("reply {name} for request {id}, which is not outstanding", { name: packetTypes[type] ?? type, id });
      return;
    }
    this.openRequests.delete(id);
    d.callback({ type, r });
  }

  /** VERSION: `uint32 version`, then extension pairs. */
  private packet_VERSION(r: SSHReader): void {
    const { version, extensions: ext } = readVersion(r, (e) => log.warn("bad VERSION: {message}", { message: e.message }));
    this.otherVersion = version;
    this.serverExtensions = ext;
    this.gotServerVersion(this.otherVersion ?? 0, ext);
    if (!this.whenReady.called) this.whenReady.callback(this.otherVersion ?? 0);
  }

  /**
   * Sends request `type` (the id is added) and returns the reply. A STATUS other than FX_OK
   * errbacks with {@link SFTPError}; a reply of a type not in `expect` errbacks too.
   */
  protected request(type: number, fill: (w: SSHWriter) => void, expect: number, sizeHint?: number, tail?: Uint8Array): Deferred<SSHReader> {
    if (!this.connected) return fail(new ConnectionLost("the SFTP session is not connected"));
    const id = this.counter;
    this.counter = (this.counter + 1) >>> 0;
    const d = new Deferred<Reply>();
    this.openRequests.set(id, d);
    if (tail === undefined) this.send(type, (w) => fill(w.uint32(id)), sizeHint);
    else this.sendWithTail(type, (w) => fill(w.uint32(id)), tail);
    return d.addCallback((reply: Reply): SSHReader => {
      if (reply.type === expect && expect !== FXP_STATUS) return reply.r;
      if (reply.type === FXP_STATUS) {
        const code = reply.r.uint32();
        // Some old servers send STATUS without message and language.
        const message = reply.r.remaining >= 4 ? reply.r.utf8("status message") : "";
        const lang = reply.r.remaining >= 4 ? reply.r.utf8("language tag") : "";
        if (code === FX_OK && expect === FXP_STATUS) return new SSHReader(new SSHWriter().string(message).string(lang).finish());
        throw new SFTPError(code, message, lang);
      }
      throw new SFTPError(FX_BAD_MESSAGE, `expected ${packetTypes[expect]} in reply to ${packetTypes[type]}, got ${packetTypes[reply.type] ?? reply.type}`);
    });
  }

  private statusRequest(type: number, fill: (w: SSHWriter) => void, sizeHint?: number, tail?: Uint8Array): Deferred<StatusReply> {
    return this.request(type, fill, FXP_STATUS, sizeHint, tail).addCallback((r: SSHReader): StatusReply => [r.utf8(), r.utf8()]);
  }

  private nameRequest(type: number, fill: (w: SSHWriter) => void): Deferred<DirectoryEntry[]> {
    return this.request(type, fill, FXP_NAME).addCallback(readNames);
  }

  private singleName(type: number, path: PathLike): Deferred<string> {
    return this.nameRequest(type, (w) => w.string(path)).addCallback((names: DirectoryEntry[]) => {
      if (names.length !== 1) throw new SFTPError(FX_BAD_MESSAGE, `expected one name, got ${names.length}`);
      return names[0]![0];
    });
  }

  /** OPEN: fires with a {@link ClientFile}. `flags` are `FXF_*`. */
  openFile(filename: PathLike, flags: number, attrs: FileAttributes = {}): Deferred<ClientFile> {
    return this.request(FXP_OPEN, (w) => writeAttrs(w.string(filename).uint32(flags), attrs), FXP_HANDLE).addCallback(
      (r: SSHReader) => new ClientFile(this, copyBytes(r.string())),
    );
  }

  removeFile(filename: PathLike): Deferred<StatusReply> {
    return this.statusRequest(FXP_REMOVE, (w) => w.string(filename));
  }

  /** SFTP v3 rename: fails if `newpath` exists (see {@link posixRename}). */
  renameFile(oldpath: PathLike, newpath: PathLike): Deferred<StatusReply> {
    return this.statusRequest(FXP_RENAME, (w) => w.string(oldpath).string(newpath));
  }

  makeDirectory(path: PathLike, attrs: FileAttributes = {}): Deferred<StatusReply> {
    return this.statusRequest(FXP_MKDIR, (w) => writeAttrs(w.string(path), attrs));
  }

  removeDirectory(path: PathLike): Deferred<StatusReply> {
    return this.statusRequest(FXP_RMDIR, (w) => w.string(path));
  }

  /** OPENDIR: fires with a {@link ClientDirectory} (iterate it with `for await`). */
  openDirectory(path: PathLike): Deferred<ClientDirectory> {
    return this.request(FXP_OPENDIR, (w) => w.string(path), FXP_HANDLE).addCallback((r: SSHReader) => new ClientDirectory(this, copyBytes(r.string())));
  }

  /** STAT (`followLinks`) or LSTAT. Twisted's default is not to follow. */
  getAttrs(path: PathLike, followLinks = false): Deferred<FileAttributes> {
    return this.request(followLinks ? FXP_STAT : FXP_LSTAT, (w) => w.string(path), FXP_ATTRS).addCallback(readAttrs);
  }

  setAttrs(path: PathLike, attrs: FileAttributes): Deferred<StatusReply> {
    return this.statusRequest(FXP_SETSTAT, (w) => writeAttrs(w.string(path), attrs));
  }

  readLink(path: PathLike): Deferred<string> {
    return this.singleName(FXP_READLINK, path);
  }

  /**
   * Makes a symbolic link at `linkPath` pointing to `targetPath`, the arguments in the order the
   * server expects (see {@link symlinkTargetFirst}).
   */
  makeLink(linkPath: PathLike, targetPath: PathLike): Deferred<StatusReply> {
    const [a, b] = this.symlinkTargetFirst === false ? [linkPath, targetPath] : [targetPath, linkPath];
    return this.statusRequest(FXP_SYMLINK, (w) => w.string(a).string(b));
  }

  realPath(path: PathLike): Deferred<string> {
    return this.singleName(FXP_REALPATH, path);
  }

  /** EXTENDED: fires with the EXTENDED_REPLY data (the body after the request id). */
  extendedRequest(request: string, data: Uint8Array = new Uint8Array(0)): Deferred<Uint8Array> {
    return this.request(FXP_EXTENDED, (w) => w.string(request).raw(data), FXP_EXTENDED_REPLY, data.length).addCallback((r: SSHReader) => r.rest());
  }

  /** An extension answered with STATUS (`posix-rename@openssh.com`, …). */
  extendedStatusRequest(request: string, fill: (w: SSHWriter) => void): Deferred<StatusReply> {
    return this.statusRequest(FXP_EXTENDED, (w) => fill(w.string(request)));
  }

  /** An extension answered with NAME (`expand-path@openssh.com`, `home-directory`). */
  extendedNameRequest(request: string, arg: PathLike): Deferred<string> {
    return this.nameRequest(FXP_EXTENDED, (w) => w.string(request).string(arg)).addCallback((names: DirectoryEntry[]) => {
      if (names.length !== 1) throw new SFTPError(FX_BAD_MESSAGE, `expected one name, got ${names.length}`);
      return names[0]![0];
    });
  }

  /** `posix-rename@openssh.com`: rename replacing `newpath`. */
  posixRename(oldpath: PathLike, newpath: PathLike): Deferred<StatusReply> {
    return this.extendedStatusRequest("posix-rename@openssh.com", (w) => w.string(oldpath).string(newpath));
  }

  /** `hardlink@openssh.com`: a hard link `newpath` to `oldpath`. */
  hardLink(oldpath: PathLike, newpath: PathLike): Deferred<StatusReply> {
    return this.extendedStatusRequest("hardlink@openssh.com", (w) => w.string(oldpath).string(newpath));
  }

  /** `limits@openssh.com`: the server's packet, read, write and open-handle limits (0: none said). */
  limits(): Deferred<{ maxPacketLength: number; maxReadLength: number; maxWriteLength: number; maxOpenHandles: number }> {
    return this.extendedRequest("limits@openssh.com").addCallback((data: Uint8Array) => {
      const r = new SSHReader(data);
      const n = (): number => Number(r.uint64());
      return { maxPacketLength: n(), maxReadLength: n(), maxWriteLength: n(), maxOpenHandles: n() };
    });
  }

  /**
   * Downloads `remote` to the local file `local` with `requests` READs of `chunkSize` in flight
   * (by default as OpenSSH's sftp picks them: the server's limits, see {@link transferChunkSizes});
   * fires with the file's size. `resume` is `reget`.
   */
  get(remote: PathLike, local: string, options: TransferOptions = {}): Deferred<number> {
    return Deferred.fromPromise(getFile(this, remote, local, options));
  }

  /** `get -R`: the remote directory `remote` into the local directory `local`, file by file. */
  getRecursive(remote: string, local: string, options: TransferOptions = {}): Deferred<TreeResult> {
    return Deferred.fromPromise(getTree(this, remote, local, options));
  }

  /** `put -R`: the local directory `local` into the remote directory `remote`, file by file. */
  putRecursive(local: string, remote: string, options: TransferOptions = {}): Deferred<TreeResult> {
    return Deferred.fromPromise(putTree(this, local, remote, options));
  }

  /** Uploads the local file `local` to `remote`, pipelined as {@link get}; `resume` is `reput`. */
  put(local: string, remote: PathLike, options: TransferOptions = {}): Deferred<number> {
    return Deferred.fromPromise(putFile(this, local, remote, options));
  }

  /**
   * A Node Readable of the remote file (or an open ClientFile): READs of `chunkSize` with up to
   * `requests` in flight while the consumer keeps up; none while it is paused.
   */
  createReadStream(path: PathLike | ClientFile, options: RemoteReadStreamOptions = {}): Readable {
    return createReadStream(this, path, options);
  }

  /** A Node Writable onto the remote file: up to `requests` WRITEs in flight, then writes wait. */
  createWriteStream(path: PathLike | ClientFile, options: RemoteWriteStreamOptions = {}): Writable {
    return createWriteStream(this, path, options);
  }

  /** @internal READ for a ClientFile. */
  _read(handle: Uint8Array, offset: number, length: number): Deferred<Uint8Array> {
    return this.request(FXP_READ, (w) => w.string(handle).uint64(offset).uint32(length), FXP_DATA).addCallback((r: SSHReader) => r.string());
  }

  /** @internal WRITE for a ClientFile. */
  _write(handle: Uint8Array, offset: number, data: Uint8Array): Deferred<StatusReply> {
    // The data follows its header as a piece of its own: no copy into the packet (on a session
    // channel the header rides in the first CHANNEL_DATA's head; see SSHChannel.writeSequence).
    return this.statusRequest(FXP_WRITE, (w) => w.string(handle).uint64(offset).uint32(data.length), 4 + 4 + handle.length + 8 + 4, data);
  }

  /** @internal */
  _handleRequest(type: number, handle: Uint8Array, attrs?: FileAttributes): Deferred<StatusReply> {
    return this.statusRequest(type, (w) => {
      w.string(handle);
      if (attrs !== undefined) writeAttrs(w, attrs);
    });
  }

  /** @internal */
  _fstat(handle: Uint8Array): Deferred<FileAttributes> {
    return this.request(FXP_FSTAT, (w) => w.string(handle), FXP_ATTRS).addCallback(readAttrs);
  }

  /** @internal */
  _readdir(handle: Uint8Array): Deferred<DirectoryEntry[]> {
    return this.nameRequest(FXP_READDIR, (w) => w.string(handle));
  }
}

/** NAME: `uint32 count`, then count × (filename, longname, ATTRS). */
function readNames(r: SSHReader): DirectoryEntry[] {
  const count = r.uint32();
  const out: DirectoryEntry[] = [];
  for (let i = 0; i < count; i++) {
    const filename = readPath(r, "filename");
    const longname = readPath(r, "longname");
    out.push([filename, longname, readAttrs(r)]);
  }
  return out;
}

/** Twisted's `ClientFile`: an open remote file. */
export class ClientFile {
  constructor(
    readonly parent: FileTransferClient,
    /** The server's handle. */
    readonly handle: Uint8Array,
  ) {}

  close(): Deferred<StatusReply> {
    return this.parent._handleRequest(FXP_CLOSE, this.handle);
  }

  /**
   * Up to `length` bytes at `offset` (fewer near the end, or when the server caps reads). At the
   * end of the file it errbacks with SFTPError(FX_EOF), as Twisted's EOFError.
   */
  readChunk(offset: number, length: number): Deferred<Uint8Array> {
    return this.parent._read(this.handle, offset, length);
  }

  writeChunk(offset: number, chunk: Uint8Array | string): Deferred<StatusReply> {
    return this.parent._write(this.handle, offset, toBytes(chunk));
  }

  getAttrs(): Deferred<FileAttributes> {
    return this.parent._fstat(this.handle);
  }

  /** FSETSTAT (Twisted's ClientFile sends FSTAT here, a known bug not kept). */
  setAttrs(attrs: FileAttributes): Deferred<StatusReply> {
    return this.parent._handleRequest(FXP_FSETSTAT, this.handle, attrs);
  }

  /** `fsync@openssh.com`. */
  sync(): Deferred<StatusReply> {
    return this.parent.extendedStatusRequest("fsync@openssh.com", (w) => w.string(this.handle));
  }
}

/**
 * Twisted's `ClientDirectory`: `read()` gives the next batch of entries (SFTPError FX_EOF at the
 * end); `for await (const [name, longname, attrs] of dir)` gives them one by one and closes the
 * directory at the end.
 */
export class ClientDirectory implements AsyncIterable<DirectoryEntry> {
  private handleOrNull: Uint8Array | null;

  constructor(
    readonly parent: FileTransferClient,
    handle: Uint8Array,
  ) {
    this.handleOrNull = handle;
  }

  /** The server's handle, or null once closed. */
  get handle(): Uint8Array | null {
    return this.handleOrNull;
  }

  /** READDIR: the next batch. */
  read(): Deferred<DirectoryEntry[]> {
    if (this.handleOrNull === null) return fail(new SFTPError(FX_EOF, "the directory is closed"));
    return this.parent._readdir(this.handleOrNull);
  }

  /** CLOSE (once; later calls succeed at once). */
  close(): Deferred<StatusReply | undefined> {
    const h = this.handleOrNull;
    if (h === null) {
      const d = new Deferred<StatusReply | undefined>();
      d.callback(undefined);
      return d;
    }
    this.handleOrNull = null;
    return this.parent._handleRequest(FXP_CLOSE, h);
  }

  async *[Symbol.asyncIterator](): AsyncIterator<DirectoryEntry> {
    try {
      for (;;) {
        let batch: DirectoryEntry[];
        try {
          batch = await this.read();
        } catch (e) {
          if (e instanceof SFTPError && e.code === FX_EOF) return;
          throw e;
        }
        yield* batch;
      }
    } finally {
      await this.close();
    }
  }

  /** Every entry (reads to the end, then closes). */
  async readAll(): Promise<DirectoryEntry[]> {
    const out: DirectoryEntry[] = [];
    for await (const e of this) out.push(e);
    return out;
  }
}
