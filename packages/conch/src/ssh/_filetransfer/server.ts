/**
 * Twisted's `FileTransferServer`: the server end of SFTP v3 over an {@link ISFTPServer}.
 *
 * Memory stays bounded whatever the client pipelines: requests are answered in order, one at a
 * time except for runs of read-only ones (up to `maxConcurrentReads` overlap; they cannot change
 * what each other sees), and replies always go out in request order; at
 * `maxOutstandingRequests` queued requests the transport is paused (a session channel then gives
 * the client no more window), and a transport that cannot pause gets FX_FAILURE for the excess.
 * While the transport's peer is not reading (the channel's window is shut) no request is taken
 * from the queue, so replies do not pile up either.
 */
import type { Failure } from "@twisted-ts/internet/failure";
import type { IPushProducer } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { SSHReader, type SSHWriter } from "../common.js";
import { FileTransferBase } from "./base.js";
import {
  FXP_ATTRS,
  FXP_FSTAT,
  FXP_LSTAT,
  FXP_READ,
  FXP_READLINK,
  FXP_REALPATH,
  FXP_STAT,
  FXP_DATA,
  FXP_EXTENDED_REPLY,
  FXP_HANDLE,
  FXP_INIT,
  FXP_NAME,
  FXP_STATUS,
  FXP_VERSION,
  FX_BAD_MESSAGE,
  FX_EOF,
  FX_FAILURE,
  FX_OK,
  FX_OP_UNSUPPORTED,
  MAX_CONCURRENT_READS,
  MAX_OPEN_HANDLES,
  MAX_OUTSTANDING_REQUESTS,
  MAX_PACKET_LENGTH,
  MAX_READ_LENGTH,
  READDIR_BATCH,
  SFTP_VERSION,
  packetTypes,
} from "./constants.js";
import type { DirectoryEntry, ISFTPDirectory, ISFTPFile, ISFTPServer, StatVFS } from "./interfaces.js";
import { SpareBuffers, writeReleasing } from "./replies.js";
import { EXTENDED_HANDLERS } from "./extensions.js";
import { STATUS_MESSAGES, statusForError } from "./status.js";
import {
  SFTPError,
  TARGET_FIRST_CLIENTS,
  buildPacket,
  copyBytes,
  peerSSHVersion,
  readAttrs,
  readPath,
  readSafeUint64,
  readVersion,
  writeAttrs,
  type FileAttributes,
  type SFTPFramingError,
} from "./wire.js";

const log = new Logger("twisted-ts.conch.ssh.filetransfer");

/** Settings of a {@link FileTransferServer}; each defaults to the constant of the same name. */
export interface FileTransferServerOptions {
  /** Largest incoming packet ({@link MAX_PACKET_LENGTH}). */
  maxPacketLength?: number;
  /** Requests queued before the transport is paused ({@link MAX_OUTSTANDING_REQUESTS}). */
  maxOutstandingRequests?: number;
  /** Open file and directory handles per session ({@link MAX_OPEN_HANDLES}). */
  maxOpenHandles?: number;
  /** Most bytes one READ answers ({@link MAX_READ_LENGTH}); longer READs get a short read. */
  maxReadLength?: number;
  /** Read-only requests answered at once ({@link MAX_CONCURRENT_READS}); 1 answers everything one by one. */
  maxConcurrentReads?: number;
  /** SYMLINK's argument order; default: from the client's SSH version (see `TARGET_FIRST_CLIENTS`). */
  symlinkTargetFirst?: boolean;
}

/** What a transport may offer for pausing our input (a TCP transport, a session channel's protocol). */
interface Pausable {
  pauseProducing?: () => void;
  resumeProducing?: () => void;
  registerProducer?: (p: IPushProducer, streaming: boolean) => void;
  unregisterProducer?: () => void;
}

type Handler = (r: SSHReader, id: number) => Promise<void>;

/** A request being answered and the replies it has made before its turn to send them. */
interface ReplySlot {
  replies: Array<[Uint8Array, (() => void) | undefined]>;
  done: boolean;
  /** The reused memory the request came in, if any. */
  memory: Buffer | undefined;
  /** True once the handler lent the request's bytes only for a call that has to settle first (see `writeChunkFrom`). */
  recycle: boolean;
}

/** A request waiting its turn; `memory` is reused memory holding it (for WRITEs). */
interface QueuedRequest {
  type: number;
  body: Uint8Array;
  memory: Buffer | undefined;
}

/**
 * The uint32 at `offset` of `bytes`: a request's id (offset 0 of its body) or a reply's (offset 5
 * of the packet), which is how a reply finds the request it answers. (An AsyncLocalStorage
 * following each handler would do it too, but its promise hooks slow every `await` in the
 * process.)
 */
function uint32At(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset]! << 24) | (bytes[offset + 1]! << 16) | (bytes[offset + 2]! << 8) | bytes[offset + 3]!) >>> 0;
}

/** Requests that change nothing: any number may be answered at once. */
const READ_ONLY: ReadonlySet<number> = new Set([FXP_READ, FXP_STAT, FXP_LSTAT, FXP_FSTAT, FXP_REALPATH, FXP_READLINK]);

/** Extensions served by the protocol itself, whatever the ISFTPServer. */
const BUILTIN_EXTENSIONS = ["limits@openssh.com", "copy-data"] as const;

/** Bytes before the data of a DATA packet: length, type, request id, data length. */
const DATA_HEADER = 13;

/**
 * Requests at least this long (WRITEs with their data) are kept in reused memory while queued;
 * shorter ones are copied into buffers of their own.
 */
const REUSED_REQUEST_LENGTH = 4096;

/**
 * Spare request buffers kept: 4 MiB of the 255 KiB WRITEs OpenSSH's sftp sends to a server with
 * `limits@openssh.com` (WRITEs are answered one at a time, so few are spare at once).
 */
const SPARE_REQUEST_BUFFERS = 16;

export class FileTransferServer extends FileTransferBase implements IPushProducer {
  /** The filesystem served (Twisted's `client`, the ISFTPServer adapted from the avatar). */
  readonly client: ISFTPServer;
  /** Open files by handle. */
  readonly openFiles = new Map<string, ISFTPFile>();
  /** Open directories by handle. */
  readonly openDirs = new Map<string, ISFTPDirectory>();
  maxOutstandingRequests: number;
  maxOpenHandles: number;
  maxReadLength: number;
  maxConcurrentReads: number;
  /** True when SYMLINK carries the target first (OpenSSH's order); set from the client's SSH version when not given. */
  symlinkTargetFirst: boolean | undefined;
  /** Extensions sent in VERSION (name → data), set when INIT arrives. */
  extensions: Record<string, string> = {};

  private readonly queue: QueuedRequest[] = [];
  private busy = false;
  private outputPaused = false;
  private inputPaused = false;
  private nextHandle = 0;
  private registered = false;
  private inputEnded = false;
  private finished = false;
  /** Requests being answered, in the order received, with the replies held back for order. */
  private readonly order: ReplySlot[] = [];
  /** The same, while their handlers run, by request id (no two share one: see {@link pump}). */
  private readonly answering = new Map<number, ReplySlot>();
  private inflightCount = 0;
  private inflightReadOnly = false;
  private readonly replyBuffers = new SpareBuffers();
  private readonly requestBuffers = new SpareBuffers(SPARE_REQUEST_BUFFERS);
  /** The reused buffer the framer is filling with a long request. */
  private assembling: Buffer | undefined = undefined;

  constructor(client: ISFTPServer, options: FileTransferServerOptions = {}) {
    super(options.maxPacketLength ?? MAX_PACKET_LENGTH);
    this.client = client;
    this.maxOutstandingRequests = options.maxOutstandingRequests ?? MAX_OUTSTANDING_REQUESTS;
    this.maxOpenHandles = options.maxOpenHandles ?? MAX_OPEN_HANDLES;
    this.maxReadLength = options.maxReadLength ?? MAX_READ_LENGTH;
    this.maxConcurrentReads = Math.max(1, options.maxConcurrentReads ?? MAX_CONCURRENT_READS);
    this.symlinkTargetFirst = options.symlinkTargetFirst;
    this.framer.allocate = (length) => {
      if (length < REUSED_REQUEST_LENGTH) return Buffer.allocUnsafeSlow(length);
      this.assembling = this.requestBuffers.take(length);
      return this.assembling;
    };
  }

  /** Requests received and not answered yet. */
  get outstanding(): number {
    return this.queue.length + (this.busy ? Math.max(1, this.inflightCount) : 0);
  }

  override connectionMade(): void {
    if (this.symlinkTargetFirst === undefined) {
      const v = peerSSHVersion(this.transport);
      this.symlinkTargetFirst = v === undefined || TARGET_FIRST_CLIENTS.test(v);
    }
    const t = this.transport as unknown as Pausable;
    if (typeof t.registerProducer === "function") {
      t.registerProducer(this, true);
      this.registered = true;
    }
  }

  // ---- IPushProducer: the transport tells us when its peer stops reading ----------------------

  pauseProducing(): void {
    this.outputPaused = true;
  }

  resumeProducing(): void {
    this.outputPaused = false;
    void this.pump();
  }

  stopProducing(): void {
    this.outputPaused = true;
  }

  // ---- input ----------------------------------------------------------------------------------

  protected override packetReceived(type: number, body: Uint8Array, owned = false): void {
    if (type === FXP_INIT) {
      this.packet_INIT(new SSHReader(body));
      return;
    }
    const t = this.transport as unknown as Pausable;
    const canPause = typeof t.pauseProducing === "function";
    if (this.outstanding >= this.maxOutstandingRequests && !canPause) {
      const id = body.length >= 4 ? uint32At(body, 0) : 0;
      log.warn("refusing request {id}: {count} requests outstanding (limit {limit})", { id, count: this.outstanding, limit: this.maxOutstandingRequests });
      this.sendStatus(id, FX_FAILURE, "Too many outstanding requests");
      return;
    }
    // A WRITE's 32 KiB often spans two reads, so the framer's buffer (reused memory) holds it:
    // kept as is. Others are views of the input, copied to be kept.
    let memory: Buffer | undefined;
    if (body.length + 1 < REUSED_REQUEST_LENGTH) body = owned ? body : copyBytes(body);
    else if (owned) memory = this.assembling;
    else {
      memory = this.requestBuffers.take(body.length + 1);
      memory[0] = type;
      memory.set(body, 1);
      body = memory.subarray(1);
    }
    this.assembling = undefined;
    this.queue.push({ type, body, memory });
    if (canPause && !this.inputPaused && this.outstanding >= this.maxOutstandingRequests) {
      this.inputPaused = true;
      t.pauseProducing!();
    }
    void this.pump();
  }

  /**
   * Answers queued requests while the peer reads our replies: one at a time, except that a run of
   * read-only requests (READ, STAT, …) overlaps up to `maxConcurrentReads` of them, which cannot
   * change what any of them sees. Replies still go out in request order (see {@link send}). A
   * request whose id is that of one being answered waits for it, so that each reply finds its
   * request by id.
   */
  private async pump(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    const inflight = new Set<Promise<void>>();
    try {
      while (this.queue.length > 0 && !this.outputPaused && this.connected) {
        const next = this.queue[0]!;
        const id = next.body.length >= 4 ? uint32At(next.body, 0) : undefined;
        const overlap = READ_ONLY.has(next.type) && inflight.size < this.maxConcurrentReads && (id === undefined || !this.answering.has(id));
        if (inflight.size > 0 && !(overlap && this.inflightReadOnly)) {
          await Promise.race(inflight);
          continue;
        }
        this.queue.shift();
        this.inflightReadOnly = READ_ONLY.has(next.type) && (inflight.size === 0 || this.inflightReadOnly);
        const slot: ReplySlot = { replies: [], done: false, memory: next.memory, recycle: false };
        this.order.push(slot);
        if (id !== undefined) this.answering.set(id, slot);
        const p: Promise<void> = this.dispatch(next.type, next.body).finally(() => {
          if (id !== undefined) this.answering.delete(id);
          inflight.delete(p);
          this.inflightCount = inflight.size;
          slot.done = true;
          if (slot.memory !== undefined && slot.recycle) this.requestBuffers.give(slot.memory);
          this.flushReplies();
          this.resumeInputIfDrained();
        });
        inflight.add(p);
        this.inflightCount = inflight.size;
      }
      await Promise.all(inflight);
    } finally {
      this.inflightCount = 0;
      this.busy = false;
    }
    if (this.queue.length > 0 && !this.outputPaused && this.connected) return this.pump();
    if (this.inputEnded && this.queue.length === 0 && this.connected) this.finish();
  }

  /**
   * Replies go out in request order: a reply to a request behind one still being answered waits
   * in its slot until those before it are out.
   */
  protected override send(kind: number, fill: (w: SSHWriter) => void, sizeHint?: number): void {
    if (!this.connected) return;
    this.sendBytes(buildPacket(kind, fill, sizeHint));
  }

  /**
   * Sends one whole packet (length field included) in request order, as {@link send}; `release`
   * is called once the transport no longer holds it (where the transport can say so).
   */
  private sendBytes(pkt: Uint8Array, release?: () => void): void {
    if (!this.connected) return;
    // VERSION answers INIT, which is answered at once; bytes 5-8 of every other reply are its request's id.
    const slot = pkt[4] === FXP_VERSION || pkt.length < 9 ? undefined : this.answering.get(uint32At(pkt, 5));
    if (slot !== undefined && slot !== this.order[0]) slot.replies.push([pkt, release]);
    else if (release === undefined) this.transport.write(pkt);
    else writeReleasing(this.transport, pkt, release);
  }

  /** Reading resumes once half the outstanding limit has been answered. */
  private resumeInputIfDrained(): void {
    if (this.inputPaused && this.outstanding <= this.maxOutstandingRequests >> 1) {
      this.inputPaused = false;
      (this.transport as unknown as Pausable).resumeProducing?.();
    }
  }

  private flushReplies(): void {
    while (this.order.length > 0 && this.order[0]!.done) {
      this.order.shift();
      const head = this.order[0];
      if (head === undefined) break;
      for (const [pkt, release] of head.replies.splice(0)) {
        if (!this.connected) break;
        if (release === undefined) this.transport.write(pkt);
        else writeReleasing(this.transport, pkt, release);
      }
    }
  }

  /**
   * Twisted's `IHalfCloseableProtocol.readConnectionLost`: the client sent EOF. Requests already
   * received are answered, then the session ends as OpenSSH's sftp-server exits: with status 0
   * where the transport carries one (a session channel), else by closing.
   */
  readConnectionLost(): void {
    this.inputEnded = true;
    if (!this.busy) void this.pump();
  }

  private finish(): void {
    if (this.finished) return;
    this.finished = true;
    const t = this.transport as unknown as { exit?: (status: number) => void };
    if (typeof t.exit === "function") t.exit(0);
    else this.transport.loseConnection();
  }

  private async dispatch(type: number, body: Uint8Array): Promise<void> {
    const r = new SSHReader(body);
    if (body.length < 4) {
      log.warn("packet type {type} of {length} bytes has no request id", { type, length: body.length });
      this.transport.loseConnection();
      return;
    }
    const id = r.uint32();
    const name = packetTypes[type];
    const handler = name === undefined ? undefined : ((this as unknown as Record<string, unknown>)[`packet_${name}`] as Handler | undefined);
    if (typeof handler !== "function") {
      log.warn("request {id}: unknown or unsupported packet type {type}", { id, type });
      this.sendStatus(id, FX_OP_UNSUPPORTED, `Unsupported request type ${type}`);
      return;
    }
    try {
      await handler.call(this, r, id);
    } catch (e) {
      this.sendError(id, e, name!);
    }
  }

  /** The framer found a length no packet has: answer the request it named, then end the session (as OpenSSH does). */
  protected override framingError(e: SFTPFramingError): void {
    log.warn("ending the SFTP session: {message}", { message: e.message });
    if (e.requestId !== undefined) this.sendStatus(e.requestId, FX_BAD_MESSAGE, `Bad message: ${e.message}`);
    this.transport.loseConnection();
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.queue.length = 0;
    for (const f of this.openFiles.values()) void Promise.resolve().then(() => f.close()).catch((e: unknown) => log.failure("closing a file at the end of the session failed", e, "warn"));
    for (const d of this.openDirs.values()) void Promise.resolve().then(() => d.close()).catch((e: unknown) => log.failure("closing a directory at the end of the session failed", e, "warn"));
    this.openFiles.clear();
    this.openDirs.clear();
    if (this.registered) {
      this.registered = false;
      (this.transport as unknown as Pausable).unregisterProducer?.();
    }
  }

  // ---- replies --------------------------------------------------------------------------------

  /** STATUS: `uint32 id, uint32 code, string message, string language`. */
  sendStatus(id: number, code: number, message: string = STATUS_MESSAGES[code] ?? "Failure"): void {
    this.send(FXP_STATUS, (w) => w.uint32(id).uint32(code).string(message).string(""));
  }

  private sendError(id: number, e: unknown, what: string): void {
    const s = statusForError(e);
    if (!s.expected) log.failure("request {id} ({what}) failed", e, "error", { id, what });
    else if (s.code === FX_BAD_MESSAGE) log.warn("request {id} ({what}): {message}", { id, what, message: s.message });
    else log.debug("request {id} ({what}): {message}", { id, what, message: s.message });
    this.sendStatus(id, s.code, s.message);
  }

  private sendHandle(id: number, handle: string): void {
    this.send(FXP_HANDLE, (w) => w.uint32(id).string(handle));
  }

  private sendNames(id: number, names: readonly DirectoryEntry[]): void {
    this.send(FXP_NAME, (w) => {
      w.uint32(id).uint32(names.length);
      for (const [filename, longname, attrs] of names) writeAttrs(w.string(filename).string(longname), attrs);
    }, 64 * names.length);
  }

  private sendAttrs(id: number, attrs: FileAttributes): void {
    this.send(FXP_ATTRS, (w) => writeAttrs(w.uint32(id), attrs));
  }

  private newHandle(): string {
    if (this.openFiles.size + this.openDirs.size >= this.maxOpenHandles) {
      log.warn("refusing to open a handle: {count} open (limit {limit})", { count: this.openFiles.size + this.openDirs.size, limit: this.maxOpenHandles });
      throw new SFTPError(FX_FAILURE, "Too many open handles");
    }
    return String(this.nextHandle++);
  }

  private fileFor(r: SSHReader): [string, ISFTPFile] {
    const handle = Buffer.from(r.string()).toString("latin1");
    const f = this.openFiles.get(handle);
    if (f === undefined) {
      log.warn("no open file for handle {handle}", { handle: JSON.stringify(handle) });
      throw new SFTPError(FX_FAILURE, "Invalid handle");
    }
    return [handle, f];
  }

  // ---- requests (draft-02 §6; OpenSSH PROTOCOL §4 for the extensions) --------------------------

  /** INIT: `uint32 version`, then extension pairs. Answered with VERSION 3 and our extensions. */
  packet_INIT(r: SSHReader): void {
    const { version, extensions: extData } = readVersion(r, (e) => log.warn("bad INIT: {message}", { message: e.message }));
    this.otherVersion = version;
    log.info("SFTP client version {version}", { version: this.otherVersion ?? "?" });
    const ext: Record<string, string | Uint8Array> = {};
    const c = this.client;
    if (c.posixRename) ext["posix-rename@openssh.com"] = "1";
    if (c.statVFS) ext["statvfs@openssh.com"] = "2";
    if (c.statVFS && c.filesSupport?.statVFS) ext["fstatvfs@openssh.com"] = "2";
    if (c.hardLink) ext["hardlink@openssh.com"] = "1";
    if (c.filesSupport?.sync) ext["fsync@openssh.com"] = "1";
    if (c.lsetAttrs) ext["lsetstat@openssh.com"] = "1";
    for (const name of BUILTIN_EXTENSIONS) ext[name] = "1";
    if (c.expandPath) ext["expand-path@openssh.com"] = "1";
    if (c.homeDirectory) ext["home-directory"] = "1";
    Object.assign(ext, c.gotVersion(this.otherVersion ?? SFTP_VERSION, extData));
    this.extensions = Object.fromEntries(Object.entries(ext).map(([k, v]) => [k, typeof v === "string" ? v : Buffer.from(v).toString("latin1")]));
    this.send(FXP_VERSION, (w) => {
      w.uint32(SFTP_VERSION);
      for (const [k, v] of Object.entries(ext)) w.string(k).string(v);
    });
  }

  /** OPEN: `string filename, uint32 pflags, ATTRS attrs` → HANDLE. */
  async packet_OPEN(r: SSHReader, id: number): Promise<void> {
    const filename = readPath(r);
    const flags = r.uint32();
    const attrs = readAttrs(r);
    r.end();
    const handle = this.newHandle();
    const file = await this.client.openFile(filename, flags, attrs);
    // The limit may have been reached while the open was under way.
    if (this.openFiles.size + this.openDirs.size >= this.maxOpenHandles || !this.connected) {
      await file.close();
      throw new SFTPError(FX_FAILURE, "Too many open handles");
    }
    this.openFiles.set(handle, file);
    this.sendHandle(id, handle);
  }

  /** CLOSE: `string handle` → STATUS. */
  async packet_CLOSE(r: SSHReader, id: number): Promise<void> {
    const handle = Buffer.from(r.string()).toString("latin1");
    r.end();
    const file = this.openFiles.get(handle);
    const dir = this.openDirs.get(handle);
    if (file === undefined && dir === undefined) {
      log.warn("CLOSE of handle {handle}, which is not open", { handle: JSON.stringify(handle) });
      throw new SFTPError(FX_FAILURE, "Invalid handle");
    }
    this.openFiles.delete(handle);
    this.openDirs.delete(handle);
    await (file ?? dir)!.close();
    this.sendStatus(id, FX_OK);
  }

  /** READ: `string handle, uint64 offset, uint32 len` → DATA, or STATUS FX_EOF. */
  async packet_READ(r: SSHReader, id: number): Promise<void> {
    const [, file] = this.fileFor(r);
    const offset = readSafeUint64(r, "offset");
    const length = Math.min(r.uint32(), this.maxReadLength);
    r.end();
    if (file.readChunkInto !== undefined) {
      // The file reads straight into the reply behind its header: no buffer and no copy of its own.
      const pkt = this.replyBuffers.take(DATA_HEADER + length);
      const n = await file.readChunkInto(offset, pkt.subarray(DATA_HEADER));
      if (n === 0) {
        this.replyBuffers.give(pkt);
        this.sendStatus(id, FX_EOF);
        return;
      }
      // uint32 length, byte FXP_DATA, uint32 id, uint32 data length (the DATA header).
      pkt.writeUInt32BE(DATA_HEADER - 4 + n, 0);
      pkt[4] = FXP_DATA;
      pkt.writeUInt32BE(id, 5);
      pkt.writeUInt32BE(n, 9);
      this.sendBytes(pkt.subarray(0, DATA_HEADER + n), () => this.replyBuffers.give(pkt));
      return;
    }
    const data = await file.readChunk(offset, length);
    if (data.length === 0) {
      this.sendStatus(id, FX_EOF);
      return;
    }
    this.send(FXP_DATA, (w) => w.uint32(id).string(data), data.length + 8);
  }

  /** WRITE: `string handle, uint64 offset, string data` → STATUS. */
  async packet_WRITE(r: SSHReader, id: number): Promise<void> {
    const [, file] = this.fileFor(r);
    const offset = readSafeUint64(r, "offset");
    const data = r.string();
    r.end();
    if (file.writeChunkFrom !== undefined) {
      // The file keeps none of `data` once the call settles: the request's memory is reused.
      const slot = this.answering.get(id);
      if (slot !== undefined) slot.recycle = true;
      const written = file.writeChunkFrom(offset, data);
      if (written !== undefined) await written;
    } else await file.writeChunk(offset, data);
    this.sendStatus(id, FX_OK);
  }

  /** STAT: `string path` → ATTRS, following a final symlink. */
  async packet_STAT(r: SSHReader, id: number, followLinks = true): Promise<void> {
    const path = readPath(r);
    // OpenSSH's client appends `uint32 flags` to (L)STAT when it speaks v4+; v3 has none, but tolerate it.
    if (r.remaining === 4) r.uint32();
    r.end();
    this.sendAttrs(id, await this.client.getAttrs(path, followLinks));
  }

  /** LSTAT: `string path` → ATTRS of a symlink itself. */
  packet_LSTAT(r: SSHReader, id: number): Promise<void> {
    return this.packet_STAT(r, id, false);
  }

  /** FSTAT: `string handle` → ATTRS. */
  async packet_FSTAT(r: SSHReader, id: number): Promise<void> {
    const [, file] = this.fileFor(r);
    if (r.remaining === 4) r.uint32();
    r.end();
    this.sendAttrs(id, await file.getAttrs());
  }

  /** SETSTAT: `string path, ATTRS attrs` → STATUS. */
  async packet_SETSTAT(r: SSHReader, id: number): Promise<void> {
    const path = readPath(r);
    const attrs = readAttrs(r);
    r.end();
    await this.client.setAttrs(path, attrs);
    this.sendStatus(id, FX_OK);
  }

  /** FSETSTAT: `string handle, ATTRS attrs` → STATUS. */
  async packet_FSETSTAT(r: SSHReader, id: number): Promise<void> {
    const [, file] = this.fileFor(r);
    const attrs = readAttrs(r);
    r.end();
    await file.setAttrs(attrs);
    this.sendStatus(id, FX_OK);
  }

  /** OPENDIR: `string path` → HANDLE. */
  async packet_OPENDIR(r: SSHReader, id: number): Promise<void> {
    const path = readPath(r);
    r.end();
    const handle = this.newHandle();
    const dir = await this.client.openDirectory(path);
    if (this.openFiles.size + this.openDirs.size >= this.maxOpenHandles || !this.connected) {
      await dir.close();
      throw new SFTPError(FX_FAILURE, "Too many open handles");
    }
    this.openDirs.set(handle, dir);
    this.sendHandle(id, handle);
  }

  /** READDIR: `string handle` → NAME with up to READDIR_BATCH entries, or STATUS FX_EOF. */
  async packet_READDIR(r: SSHReader, id: number): Promise<void> {
    const handle = Buffer.from(r.string()).toString("latin1");
    r.end();
    const dir = this.openDirs.get(handle);
    if (dir === undefined) {
      log.warn("READDIR of handle {handle}, which is not an open directory", { handle: JSON.stringify(handle) });
      throw new SFTPError(FX_FAILURE, "Invalid handle");
    }
    let names: DirectoryEntry[];
    if (dir.readBatch) names = await dir.readBatch(READDIR_BATCH);
    else {
      names = [];
      while (names.length < READDIR_BATCH) {
        const n = await dir.next();
        if (n.done === true) break;
        names.push(n.value);
      }
    }
    if (names.length === 0) this.sendStatus(id, FX_EOF);
    else this.sendNames(id, names);
  }

  /** REMOVE: `string filename` → STATUS. */
  async packet_REMOVE(r: SSHReader, id: number): Promise<void> {
    const path = readPath(r);
    r.end();
    await this.client.removeFile(path);
    this.sendStatus(id, FX_OK);
  }

  /** MKDIR: `string path, ATTRS attrs` → STATUS. */
  async packet_MKDIR(r: SSHReader, id: number): Promise<void> {
    const path = readPath(r);
    const attrs = readAttrs(r);
    r.end();
    await this.client.makeDirectory(path, attrs);
    this.sendStatus(id, FX_OK);
  }

  /** RMDIR: `string path` → STATUS. */
  async packet_RMDIR(r: SSHReader, id: number): Promise<void> {
    const path = readPath(r);
    r.end();
    await this.client.removeDirectory(path);
    this.sendStatus(id, FX_OK);
  }

  /** REALPATH: `string path` → NAME with one entry (the path, as OpenSSH sends it, with empty attributes). */
  async packet_REALPATH(r: SSHReader, id: number): Promise<void> {
    const path = readPath(r);
    r.end();
    const real = await this.client.realPath(path);
    this.sendNames(id, [[real, real, {}]]);
  }

  /** RENAME: `string oldpath, string newpath` → STATUS. */
  async packet_RENAME(r: SSHReader, id: number): Promise<void> {
    const oldpath = readPath(r);
    const newpath = readPath(r);
    r.end();
    await this.client.renameFile(oldpath, newpath);
    this.sendStatus(id, FX_OK);
  }

  /** READLINK: `string path` → NAME with the link's target. */
  async packet_READLINK(r: SSHReader, id: number): Promise<void> {
    const path = readPath(r);
    r.end();
    const target = await this.client.readLink(path);
    this.sendNames(id, [[target, target, {}]]);
  }

  /**
   * SYMLINK: `string linkpath, string targetpath` (draft-02 §6.10) → STATUS, or the target first
   * from clients that use OpenSSH's order (see {@link symlinkTargetFirst}).
   */
  async packet_SYMLINK(r: SSHReader, id: number): Promise<void> {
    const first = readPath(r);
    const second = readPath(r);
    const [linkPath, targetPath] = this.symlinkTargetFirst === false ? [first, second] : [second, first];
    r.end();
    await this.client.makeLink(linkPath, targetPath);
    this.sendStatus(id, FX_OK);
  }

  /** EXTENDED: `string extended-request`, then its own fields. */
  async packet_EXTENDED(r: SSHReader, id: number): Promise<void> {
    const name = readPath(r, "extension name");
    const ext = EXTENDED_HANDLERS[name];
    if (ext !== undefined && Object.hasOwn(this.extensions, name)) {
      await ext.call(this, r, id);
      return;
    }
    const reply = await this.client.extendedRequest(name, r.rest());
    this.send(FXP_EXTENDED_REPLY, (w) => w.uint32(id).raw(reply));
  }

  /** @internal */
  _sendStatVFS(id: number, s: StatVFS): void {
    this.send(FXP_EXTENDED_REPLY, (w) => {
      w.uint32(id);
      for (const v of [s.bsize, s.frsize, s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.favail, s.fsid, s.flag, s.namemax]) w.uint64(v);
    });
  }

  /** @internal */
  _fileFor(r: SSHReader): ISFTPFile {
    return this.fileFor(r)[1];
  }

  /** @internal */
  _sendNames(id: number, names: readonly DirectoryEntry[]): void {
    this.sendNames(id, names);
  }

  /** @internal */
  _sendPacket(kind: number, fill: (w: SSHWriter) => void): void {
    this.send(kind, fill);
  }
}
