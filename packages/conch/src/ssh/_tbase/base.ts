/**
 * The machinery under `SSHTransportBase`: version exchange, binary packet framing (RFC 4253 §6),
 * message gating by phase, key-exchange bookkeeping (KEXINIT, NEWKEYS, strict kex, rekeying,
 * queueing), services and disconnects. The client and server key-exchange steps live in
 * `transport.ts`, which is the public module.
 */
import { randomBytes } from "node:crypto";
import { Protocol } from "@twisted-ts/internet/protocol";
import type { Failure } from "@twisted-ts/internet/failure";
import { Logger } from "@twisted-ts/internet/log";
import type { IAddress, IProtocolFactory, ITCPTransport, ITransport } from "@twisted-ts/internet/interfaces";
import { reactor as globalReactor } from "@twisted-ts/internet/reactor";
import { SSHReader, SSHWriter, decodeUtf8 } from "../common.js";
import {
  DISCONNECT_CONNECTION_LOST,
  DISCONNECT_KEY_EXCHANGE_FAILED,
  DISCONNECT_PROTOCOL_ERROR,
  DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED,
  DISCONNECT_REASON_NAMES,
  SSHDisconnectError,
} from "../../error.js";
import type { SSHService, SSHServiceFactory, SSHServiceTransport, ServiceClock } from "../service.js";
import { CIPHERS, MACS, KEX_ALGORITHMS, createOpener, createSealer, deriveKey } from "../_transport/index.js";
import type { KexSpec, PacketOpener, PacketSealer } from "../_transport/index.js";
import { Compressor, Decompressor } from "./compression.js";
import { decodeKexInit, encodeKexInit, negotiate } from "./kexinit.js";
import type { KexInitLists, NegotiatedAlgorithms } from "./kexinit.js";
import {
  MSG_DISCONNECT,
  MSG_EXT_INFO,
  MSG_IGNORE,
  MSG_KEXINIT,
  MSG_NEWKEYS,
  MSG_SERVICE_ACCEPT,
  MSG_SERVICE_REQUEST,
  MSG_UNIMPLEMENTED,
  MSG_DEBUG,
  TRANSPORT_MESSAGES,
  allowedDuringKeyExchange,
  kexMessageName,
} from "./messages.js";

/** Largest `packet_length` accepted (RFC 4253 §6.1 asks for at least 35000; OpenSSH takes 256 KiB). */
export const MAX_PACKET_LENGTH = 256 * 1024;
/** Bytes the peer may send before its version line is complete (as Twisted). */
export const MAX_VERSION_BUFFER = 4096;
/** Rekey after this many bytes either way (RFC 4253 §9 recommends 1 GiB). */
export const DEFAULT_REKEY_BYTES = 1024 * 1024 * 1024;
/** Rekey after this many seconds (RFC 4253 §9 recommends one hour). */
export const DEFAULT_REKEY_INTERVAL = 3600;

const EXT_INFO_C = "ext-info-c";
const EXT_INFO_S = "ext-info-s";
const STRICT_C = "kex-strict-c-v00@openssh.com";
const STRICT_S = "kex-strict-s-v00@openssh.com";

/** Packets at least this long that arrive in pieces are gathered in a buffer of their own. */
const ASSEMBLE_AT = 4096;

const NO_KEYS = { key: new Uint8Array(0), iv: new Uint8Array(0), macKey: new Uint8Array(0) };
const EMPTY = new Uint8Array(0);

type KexState = "none" | "requested" | "progressing";

/** The keys and contexts one key exchange produced, waiting for NEWKEYS in each direction. */
interface PendingKeys {
  sealer: PacketSealer;
  opener: PacketOpener;
  outCipher: string;
  inCipher: string;
  outMac: string;
  inMac: string;
  outCompression: string;
  inCompression: string;
}

/** The shape of an error that knows its disconnect reason. */
interface HasReason {
  reasonCode?: unknown;
}

export abstract class TransportMachinery extends Protocol<ITransport> implements SSHServiceTransport {
  /** Sent as our identification line (RFC 4253 §4.2), without CR LF. */
  ourVersionString = "SSH-2.0-TwistedTS_0.1.0";
  /** The peer's identification line, CR LF removed. */
  otherVersionString = "";
  /** Protocol versions we speak. */
  supportedVersions: readonly string[] = ["2.0", "1.99"];
  abstract supportedKeyExchanges: string[];
  abstract supportedPublicKeys: string[];
  abstract supportedCiphers: string[];
  abstract supportedMACs: string[];
  abstract supportedCompressions: string[];
  supportedLanguages: string[] = [];

  abstract readonly isClient: boolean;
  sessionID: Uint8Array = EMPTY;
  service: SSHService | undefined = undefined;
  /** The algorithms of the last completed (or current) negotiation. */
  algorithms: NegotiatedAlgorithms | undefined = undefined;
  /** The negotiated key exchange algorithm and host key algorithm (Twisted's names). */
  kexAlg: string | undefined = undefined;
  keyAlg: string | undefined = undefined;
  logger: Logger = new Logger("twisted-ts.conch.transport", this);
  clock: ServiceClock = globalReactor;
  rekeyBytes = DEFAULT_REKEY_BYTES;
  rekeyInterval = DEFAULT_REKEY_INTERVAL;
  serverSigAlgs: readonly string[] | undefined = undefined;
  /**
   * The factory that built this transport. On a server it is an `SSHFactory` (services, portal,
   * host keys); a client's factory is whatever ClientFactory connected it.
   */
  override factory: (IProtocolFactory & SSHServiceFactory) | null = null;
  avatar: unknown = undefined;
  logoutFunction: (() => void) | undefined = undefined;
  /** Why the connection ended, when it ended with an SSH disconnect (ours or the peer's). */
  disconnectReason: SSHDisconnectError | undefined = undefined;

  /** Our KEXINIT payload and the peer's, message number included (inputs to the exchange hash). */
  ourKexInitPayload: Uint8Array = EMPTY;
  otherKexInitPayload: Uint8Array = EMPTY;
  /** The spec of the negotiated key exchange, during and after one. */
  protected kexSpec: KexSpec | undefined = undefined;
  /** True when the current key exchange is the first of the connection. */
  protected firstKex = true;
  /** Strict key exchange (OpenSSH's Terrapin countermeasure) is in force. */
  protected strictKex = false;
  /** The peer sent the RFC 8308 indicator. */
  protected peerSupportsExtInfo = false;
  /** Set while we wait for something (the host key check) before reading more packets. */
  protected inboundBlocked = false;
  protected pendingKeys: PendingKeys | undefined = undefined;
  protected disconnected = false;

  private gotVersion = false;
  private inbuf: Uint8Array = EMPTY;
  private inOff = 0;
  private pendingLength = -1;
  /** A packet of `pendingLength` split across reads, gathered here until it is whole. */
  private assembly: Buffer | undefined = undefined;
  private assemblyFill = 0;
  private opener: PacketOpener = createOpener("none", "none", NO_KEYS);
  private sealer: PacketSealer = createSealer("none", "none", NO_KEYS);
  private inCipher = "none";
  private outCipher = "none";
  private inMac = "none";
  private outMac = "none";
  private seqIn = 0;
  private seqOut = 0;
  private compressIn: Decompressor | undefined = undefined;
  private compressOut: Compressor | undefined = undefined;
  /** `zlib@openssh.com` waits for authentication; these hold it until then. */
  private delayedCompression: { in: boolean; out: boolean } = { in: false, out: false };
  private authenticated = false;
  private kexState: KexState = "none";
  private blocked: Array<[number, Uint8Array]> = [];
  private sentNewKeys = false;
  private gotNewKeys = false;
  private receivedAnyPacket = false;
  private ignoreNextKexPacket = false;
  private bytesSinceKex = 0;
  private rekeyTimer: { cancel(): void; active(): boolean } | undefined = undefined;
  private closingCleanly = false;

  // ---------------------------------------------------------------- connection

  override connectionMade(): void {
    const t = this.transport as { setTcpNoDelay?: (on: boolean) => void };
    // Every packet goes out in one write; Nagle would only add latency (PERF-NOTES).
    if (typeof t.setTcpNoDelay === "function") {
      try {
        t.setTcpNoDelay(true);
      } catch {
        /* not a TCP transport */
      }
    }
    this.transport.write(new TextEncoder().encode(this.ourVersionString + "\r\n"));
    this.sendKexInit();
  }

  override dataReceived(data: Uint8Array): void {
    if (this.disconnected) return;
    const a = this.assembly;
    if (a !== undefined) {
      // A big packet is being gathered: copy just its bytes, then go on with the rest of `data`.
      const k = Math.min(a.length - this.assemblyFill, data.length);
      a.set(k === data.length ? data : data.subarray(0, k), this.assemblyFill);
      this.assemblyFill += k;
      if (this.assemblyFill < a.length) return;
      this.assembly = undefined;
      this.inbuf = a;
      this.inOff = 0;
      if (k === data.length) {
        this.processInput();
        return;
      }
      this.processInput();
      if (this.disconnected) return;
      data = data.subarray(k);
    }
    this.appendInput(data);
    this.processInput();
  }

  /** Adds `data` after the unread input (no copy when nothing is left over). */
  private appendInput(data: Uint8Array): void {
    if (this.inOff >= this.inbuf.length) {
      this.inbuf = data;
      this.inOff = 0;
    } else {
      const rest = this.inbuf.length - this.inOff;
      const next = Buffer.allocUnsafe(rest + data.length);
      next.set(this.inbuf.subarray(this.inOff));
      next.set(data, rest);
      this.inbuf = next;
      this.inOff = 0;
    }
  }

  /** Reads and dispatches what the buffer holds; protocol faults end the connection. */
  protected processInput(): void {
    // What the messages read here make us send goes out in one write at the end.
    const outer = this.outBatch === undefined;
    if (outer) this.outBatch = [];
    try {
      if (!this.gotVersion && !this.readVersion()) return;
      while (!this.inboundBlocked && !this.disconnected) {
        const payload = this.readPacket();
        if (payload === undefined) break;
        this.dispatchMessage(payload);
      }
    } catch (e) {
      this.protocolFault(e);
    } finally {
      if (outer) this.endBatch();
    }
  }

  override connectionLost(reason: Failure): void {
    this.disconnected = true;
    this.rekeyTimer?.cancel();
    this.rekeyTimer = undefined;
    this.onConnectionLost();
    const service = this.service;
    this.service = undefined;
    if (service !== undefined) service.serviceStopped();
    const logout = this.logoutFunction;
    this.logoutFunction = undefined;
    logout?.();
    this.logger.debug("connection lost: {why}", { why: this.disconnectReason?.message ?? reason.getErrorMessage() });
  }

  /** Subclass hook: cancel timers, fail pending work. */
  protected onConnectionLost(): void {}

  getPeer(): IAddress {
    return this.transport.getPeer();
  }

  getHost(): IAddress {
    return this.transport.getHost();
  }

  /** Closes the connection, telling the peer (Twisted sends DISCONNECT_CONNECTION_LOST). */
  loseConnection(): void {
    if (this.disconnected) return;
    this.closingCleanly = true;
    this.sendDisconnect(DISCONNECT_CONNECTION_LOST, "user closed connection");
  }

  // ---------------------------------------------------------------- version

  /** Parses the peer's identification line; false while it is incomplete. */
  private readVersion(): boolean {
    for (;;) {
      const nl = this.inbuf.indexOf(0x0a, this.inOff);
      if (nl < 0) {
        if (this.inbuf.length - this.inOff > MAX_VERSION_BUFFER) {
          this.disconnectWith(DISCONNECT_PROTOCOL_ERROR, "Peer version string longer than 4KB. Preventing a denial of service attack.");
        }
        return false;
      }
      const line = Buffer.from(this.inbuf.subarray(this.inOff, nl)).toString("latin1").replace(/\r$/, "");
      this.inOff = nl + 1;
      if (!line.startsWith("SSH-")) {
        // RFC 4253 §4.2: a server may send other lines first; a client may not.
        if (!this.isClient) {
          this.disconnectWith(DISCONNECT_PROTOCOL_ERROR, "bad identification line");
          return false;
        }
        if (this.inOff > MAX_VERSION_BUFFER) {
          this.disconnectWith(DISCONNECT_PROTOCOL_ERROR, "Peer version string longer than 4KB. Preventing a denial of service attack.");
          return false;
        }
        continue;
      }
      this.otherVersionString = line;
      const version = line.split("-")[1] ?? "";
      if (!this.supportedVersions.includes(version)) {
        this.disconnectWith(DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED, `bad version ${version}`);
        return false;
      }
      this.gotVersion = true;
      return true;
    }
  }

  // ---------------------------------------------------------------- packets in

  /** The next whole packet's payload (message number first), or undefined until it has arrived. */
  private readPacket(): Uint8Array | undefined {
    if (this.assembly !== undefined) return undefined;
    const avail = this.inbuf.length - this.inOff;
    if (this.pendingLength < 0) {
      const headerLength = this.opener.headerLength;
      if (avail < headerLength) return undefined;
      const length = this.opener.decryptLength(this.seqIn, this.inbuf.subarray(this.inOff, this.inOff + headerLength));
      if (length > MAX_PACKET_LENGTH || length < 5) {
        throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, `bad packet length ${length}`, false);
      }
      this.pendingLength = length;
    }
    const total = 4 + this.pendingLength + this.opener.macLength;
    if (avail < total) {
      if (total >= ASSEMBLE_AT) {
        // Gather the rest of this packet into a buffer of its own as it arrives, rather than
        // joining every later read to what is left over (one copy of the packet, no more).
        const a = Buffer.allocUnsafe(total);
        a.set(this.inbuf.subarray(this.inOff));
        this.assembly = a;
        this.assemblyFill = avail;
        this.inbuf = EMPTY;
        this.inOff = 0;
      }
      return undefined;
    }
    const wire = this.inbuf.subarray(this.inOff, this.inOff + total);
    this.inOff += total;
    this.pendingLength = -1;
    let payload = this.opener.open(this.seqIn, wire);
    this.seqIn = (this.seqIn + 1) >>> 0;
    if (this.seqIn === 0 && this.strictKex && this.firstKex) {
      throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "sequence number wrapped during initial key exchange", false);
    }
    if (this.compressIn !== undefined) payload = this.compressIn.decompress(payload);
    if (payload.length === 0) throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "empty packet", false);
    this.countBytes(total);
    return payload;
  }

  /**
   * Routes one message: transport messages (1–49) to `ssh_<NAME>` here, the rest to the service.
   * Messages are gated by phase: strict kex allows only key-exchange messages until the first
   * NEWKEYS; nothing but key exchange once the peer's KEXINIT arrived; nothing of a service before
   * the first key exchange ends.
   */
  protected dispatchMessage(payload: Uint8Array): void {
    const num = payload[0]!;
    const body = payload.subarray(1);
    const first = !this.receivedAnyPacket;
    this.receivedAnyPacket = true;
    const kexMessage = num >= 30 && num <= 49;
    const inKex = this.kexState === "progressing";

    if (this.strictKex && this.firstKex && !(num === MSG_KEXINIT || num === MSG_NEWKEYS || kexMessage || num === MSG_DISCONNECT)) {
      throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, `strict KEX violation: unexpected message ${num} during initial key exchange`, false);
    }
    if (first && num !== MSG_KEXINIT) this.receivedNonKexFirst = true;
    if (num >= 30 && num <= 49) {
      if (this.ignoreNextKexPacket) {
        // RFC 4253 §7: the peer's guessed first kex packet was for the wrong algorithm.
        this.ignoreNextKexPacket = false;
        return;
      }
      const name = inKex ? kexMessageName(this.kexSpec?.family, num) : undefined;
      if (name === undefined || !this.hasHandler(name)) throw this.unexpected(num);
      this.callHandler(name, body);
      return;
    }
    if (num < 30) {
      const name = TRANSPORT_MESSAGES[num];
      if (name === undefined) {
        this.logger.debug("couldn't handle transport message {num}", { num });
        this.sendUnimplemented();
        return;
      }
      const needsKeys = num === MSG_SERVICE_REQUEST || num === MSG_SERVICE_ACCEPT || num === MSG_EXT_INFO;
      if (needsKeys && (this.sessionID.length === 0 || this.inCipher === "none")) throw this.unexpected(num);
      if (inKex && num !== MSG_KEXINIT && num !== MSG_NEWKEYS && num > MSG_DEBUG) throw this.unexpected(num);
      this.callHandler(name, body);
      return;
    }
    // 50 and up belong to the service. RFC 4253 §7.1 says a peer stops sending them once it has
    // sent KEXINIT; some (AsyncSSH) keep sending during a rekey, and OpenSSH and Twisted accept
    // them, so only the first key exchange is strict about it.
    if (this.service === undefined || (inKex && this.sessionID.length === 0)) {
      if (inKex || this.sessionID.length === 0) throw this.unexpected(num);
      this.logger.debug("couldn't handle {num}: no service", { num });
      this.sendUnimplemented();
      return;
    }
    if (num <= 79 && this.authenticated && !this.isClient) {
      // RFC 4252 §5.1: authentication requests after USERAUTH_SUCCESS are ignored.
      this.logger.debug("ignoring authentication message {num} after success", { num });
      return;
    }
    this.service.packetReceived(num, body);
  }

  /** Set when the first packet was not KEXINIT (fatal under strict kex). */
  private receivedNonKexFirst = false;

  private hasHandler(name: string): boolean {
    return typeof (this as unknown as Record<string, unknown>)[`ssh_${name.slice(4)}`] === "function";
  }

  private callHandler(name: string, body: Uint8Array): void {
    const method = (this as unknown as Record<string, unknown>)[`ssh_${name.slice(4)}`];
    if (typeof method !== "function") {
      this.logger.debug("couldn't handle {name}", { name });
      this.sendUnimplemented();
      return;
    }
    (method as (this: this, p: Uint8Array) => void).call(this, body);
  }

  private unexpected(num: number): SSHDisconnectError {
    return new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, `unexpected message ${num} (${TRANSPORT_MESSAGES[num] ?? kexMessageName(this.kexSpec?.family, num) ?? "service message"}) at this stage`, false);
  }

  // ---------------------------------------------------------------- packets out

  /**
   * Sends one SSH message. While a key exchange is under way, messages that may not be sent then
   * (RFC 4253 §7.1) wait in order and go out after NEWKEYS.
   */
  sendPacket(messageType: number, payload: Uint8Array): void {
    if (this.disconnected) return;
    if (this.kexState !== "none" && !allowedDuringKeyExchange(messageType)) {
      this.blocked.push([messageType, payload]);
      return;
    }
    this.writePacketParts(messageType, EMPTY, payload);
  }

  /**
   * Sends one SSH message whose payload is `head` followed by `body` (a channel data message: the
   * channel number and length, then the data), sealed without joining the two first. Queued
   * during a key exchange like `sendPacket` (as one copied payload). Neither array is kept once
   * this returns, so the caller may reuse them.
   */
  sendPacketParts(messageType: number, head: Uint8Array, body: Uint8Array): void {
    if (this.disconnected) return;
    if (this.kexState !== "none" && !allowedDuringKeyExchange(messageType)) {
      const payload = Buffer.allocUnsafe(head.length + body.length);
      payload.set(head, 0);
      payload.set(body, head.length);
      this.blocked.push([messageType, payload]);
      return;
    }
    this.writePacketParts(messageType, head, body);
  }

  /** Seals and writes one message now, past the key-exchange queue. */
  private writePacket(messageType: number, payload: Uint8Array): void {
    this.writePacketParts(messageType, EMPTY, payload);
  }

  /** Seals and writes the message `messageType || head || body` now. */
  private writePacketParts(messageType: number, head: Uint8Array, body: Uint8Array): void {
    let wire: Uint8Array;
    if (this.compressOut !== undefined) {
      // Not zero-filled: every byte is written just below.
      const message = Buffer.allocUnsafe(1 + head.length + body.length);
      message[0] = messageType;
      message.set(head, 1);
      message.set(body, 1 + head.length);
      wire = this.sealer.seal(this.seqOut, this.compressOut.compress(message));
    } else {
      // The message number, head and body go straight into the wire buffer.
      wire = this.sealer.sealParts(this.seqOut, messageType, head, body);
    }
    this.seqOut = (this.seqOut + 1) >>> 0;
    if (this.outBatch !== undefined) this.outBatch.push(wire);
    else {
      this.corkSocket();
      this.transport.write(wire);
    }
    this.countBytes(wire.length);
  }

  /**
   * On a TCP (or TLS) connection, holds the writes until the current turn of the event loop is
   * over (`coalesceWrites`), so that the packets sent meanwhile (a channel writing a 64 KiB read of
   * a process's output is two packets) leave in one writev.
   */
  private corkSocket(): void {
    (this.transport as Partial<ITCPTransport>).coalesceWrites?.();
  }

  /** Packets sealed during a batch, in order, not written yet. */
  private outBatch: Uint8Array[] | undefined = undefined;

  /**
   * Runs `fn` with the packets it sends gathered, then writes them to the transport at once
   * (`writeSequence`: one system call for many packets on TCP). Nested batches join the outer
   * one. Input processing runs in a batch; code that sends many packets from elsewhere (a channel
   * emptying its buffer) may use this too.
   */
  batchWrites<T>(fn: () => T): T {
    if (this.outBatch !== undefined) return fn();
    this.outBatch = [];
    try {
      return fn();
    } finally {
      this.endBatch();
    }
  }

  private endBatch(): void {
    this.flushWrites();
    this.outBatch = undefined;
  }

  /** Writes what the current batch holds (before closing the transport, and at its end). */
  private flushWrites(): void {
    const batch = this.outBatch;
    if (batch === undefined || batch.length === 0) return;
    this.outBatch = [];
    if (batch.length === 1) this.transport.write(batch[0]!);
    else this.transport.writeSequence(batch);
  }

  private countBytes(n: number): void {
    this.bytesSinceKex += n;
    if (this.bytesSinceKex > this.rekeyBytes && this.kexState === "none" && !this.firstKex && !this.disconnected) {
      this.logger.info("rekeying after {bytes} bytes", { bytes: this.bytesSinceKex });
      this.sendKexInit();
    }
  }

  /** SSH_MSG_UNIMPLEMENTED for the last packet received (RFC 4253 §11.4). */
  sendUnimplemented(): void {
    this.sendPacket(MSG_UNIMPLEMENTED, new SSHWriter(4).uint32((this.seqIn - 1) >>> 0).finish());
  }

  /** SSH_MSG_IGNORE with the given data (RFC 4253 §11.2). */
  sendIgnore(data: Uint8Array | string = EMPTY): void {
    this.sendPacket(MSG_IGNORE, new SSHWriter().string(data).finish());
  }

  /** SSH_MSG_DEBUG (RFC 4253 §11.3). */
  sendDebug(message: string, alwaysDisplay = false, language = ""): void {
    this.sendPacket(MSG_DEBUG, new SSHWriter().boolean(alwaysDisplay).string(message).string(language).finish());
  }

  /** Sends SSH_MSG_DISCONNECT and closes the connection (RFC 4253 §11.1). */
  sendDisconnect(reason: number, description: string): void {
    if (this.disconnected) return;
    const payload = new SSHWriter().uint32(reason).string(description).string("").finish();
    // Sent past any queue: the connection ends here.
    try {
      this.writePacket(MSG_DISCONNECT, payload);
    } catch {
      /* the transport may already be gone */
    }
    this.disconnected = true;
    if (!this.closingCleanly) this.disconnectReason ??= new SSHDisconnectError(reason, description, false);
    this.logger.info("Disconnecting with error, code {code} ({name}): {description}", {
      code: reason,
      name: DISCONNECT_REASON_NAMES[reason] ?? "unknown",
      description,
    });
    this.flushWrites();
    this.transport.loseConnection();
  }

  /** Ends the connection on a fault of ours to report, keeping the error as the reason. */
  protected disconnectWith(reason: number, description: string, cause?: unknown): void {
    if (this.disconnected) return;
    const error = new SSHDisconnectError(reason, description, false);
    if (cause !== undefined) (error as { cause?: unknown }).cause = cause;
    this.disconnectReason ??= error;
    this.sendDisconnect(reason, description);
  }

  /** A protocol fault while handling input: log it, tell the peer, close. Never throws. */
  protected protocolFault(e: unknown): void {
    const code = (e as HasReason).reasonCode;
    const reason = typeof code === "number" ? code : DISCONNECT_PROTOCOL_ERROR;
    const description = e instanceof SSHDisconnectError ? e.description : e instanceof Error ? e.message : String(e);
    let peer = "unknown peer";
    try {
      const p = this.getPeer();
      peer = p.type === "UNIX" ? "unix socket" : `${p.host}:${p.port}`;
    } catch {
      /* no transport address */
    }
    this.logger.warn("protocol error from {peer}: {description}", { peer, description, log_failure: e });
    this.disconnectWith(reason, description, e);
  }

  // ---------------------------------------------------------------- transport messages

  /* uint32 reason code, string description (UTF-8), string language tag (RFC 4253 §11.1) */
  ssh_DISCONNECT(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const code = r.uint32();
    const description = decodeUtf8(r.string(), "disconnect description");
    this.disconnectReason = new SSHDisconnectError(code, description, true);
    this.disconnected = true;
    this.receiveError(code, description);
    this.flushWrites();
    this.transport.loseConnection();
  }

  /** Called when the peer disconnects with a reason (Twisted's hook); logs by default. */
  receiveError(reasonCode: number, description: string): void {
    this.logger.info("Got remote error, code {code} ({name}): {description}", {
      code: reasonCode,
      name: DISCONNECT_REASON_NAMES[reasonCode] ?? "unknown",
      description,
    });
  }

  /* string data (RFC 4253 §11.2) */
  ssh_IGNORE(_packet: Uint8Array): void {}

  /* uint32 packet sequence number of rejected message (RFC 4253 §11.4) */
  ssh_UNIMPLEMENTED(packet: Uint8Array): void {
    const seq = new SSHReader(packet).uint32();
    this.receiveUnimplemented(seq);
  }

  /** Called when the peer did not implement one of our messages. */
  receiveUnimplemented(seqnum: number): void {
    this.logger.debug("peer did not implement packet {seqnum}", { seqnum });
  }

  /* boolean always_display, string message, string language tag (RFC 4253 §11.3) */
  ssh_DEBUG(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const alwaysDisplay = r.boolean();
    const message = decodeUtf8(r.string(), "debug message");
    this.receiveDebug(alwaysDisplay, message);
  }

  /** Called with the peer's debug messages. */
  receiveDebug(alwaysDisplay: boolean, message: string): void {
    this.logger.debug("remote debug message ({alwaysDisplay}): {message}", { alwaysDisplay, message });
  }

  /* uint32 nr-extensions, then (string extension-name, string extension-value) pairs (RFC 8308 §2.3) */
  ssh_EXT_INFO(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const n = r.uint32();
    const extensions = new Map<string, Uint8Array>();
    for (let i = 0; i < n; i++) extensions.set(decodeUtf8(r.string(), "extension name"), r.string());
    const sigAlgs = extensions.get("server-sig-algs");
    if (this.isClient && sigAlgs !== undefined) {
      const text = decodeUtf8(sigAlgs, "server-sig-algs");
      this.serverSigAlgs = text.length === 0 ? [] : text.split(",");
    }
  }

  // ---------------------------------------------------------------- services

  /** Makes `service` the running service, stopping the previous one. */
  setService(service: SSHService): void {
    this.logger.debug("starting service {name}", { name: service.name });
    if (this.service !== undefined) this.service.serviceStopped();
    this.service = service;
    service.transport = this;
    if (service.name !== "ssh-userauth" && !this.authenticated) {
      this.authenticated = true;
      this.onAuthenticated();
    }
    service.serviceStarted();
  }

  /** Turns on `zlib@openssh.com` once the user is authenticated. */
  protected onAuthenticated(): void {
    if (this.delayedCompression.out) this.compressOut = new Compressor();
    if (this.delayedCompression.in) this.compressIn = new Decompressor();
    this.delayedCompression = { in: false, out: false };
  }

  // ---------------------------------------------------------------- state queries

  isEncrypted(direction: "in" | "out" | "both" = "out"): boolean {
    if (direction === "both") return this.inCipher !== "none" && this.outCipher !== "none";
    return (direction === "in" ? this.inCipher : this.outCipher) !== "none";
  }

  isVerified(direction: "in" | "out" | "both" = "out"): boolean {
    const v = (cipher: string, mac: string): boolean => mac !== "none" || (CIPHERS[cipher]?.aead ?? false);
    if (direction === "both") return v(this.inCipher, this.inMac) && v(this.outCipher, this.outMac);
    return direction === "in" ? v(this.inCipher, this.inMac) : v(this.outCipher, this.outMac);
  }

  /** True while a key exchange is under way. */
  get keyExchangeInProgress(): boolean {
    return this.kexState !== "none";
  }

  // ---------------------------------------------------------------- key exchange

  /** The name-lists of our KEXINIT. */
  protected kexInitLists(): KexInitLists {
    const kex = [...this.supportedKeyExchanges];
    if (this.firstKex) {
      // RFC 8308 §2.1 and OpenSSH's PROTOCOL: both signals go in the first KEXINIT only.
      kex.push(this.isClient ? EXT_INFO_C : EXT_INFO_S, this.isClient ? STRICT_C : STRICT_S);
    }
    return {
      kex,
      hostKey: this.hostKeyAlgorithms(),
      cipherCS: this.supportedCiphers,
      cipherSC: this.supportedCiphers,
      macCS: this.supportedMACs,
      macSC: this.supportedMACs,
      compCS: this.supportedCompressions,
      compSC: this.supportedCompressions,
      langCS: this.supportedLanguages,
      langSC: this.supportedLanguages,
      firstKexPacketFollows: false,
    };
  }

  /** Host key algorithms we offer (the server narrows this to the keys it has). */
  protected hostKeyAlgorithms(): string[] {
    return this.supportedPublicKeys;
  }

  /**
   * Sends KEXINIT, starting a key exchange (or answering the peer's). Throws when one is already
   * under way. Use `rekey()` to start one from application code.
   */
  sendKexInit(): void {
    if (this.kexState !== "none") throw new Error(`Cannot send KEXINIT while key exchange state is ${this.kexState}`);
    this.ourKexInitPayload = encodeKexInit(randomBytes(16), this.kexInitLists());
    this.kexState = "requested";
    this.sentNewKeys = false;
    this.gotNewKeys = false;
    this.pendingKeys = undefined;
    this.writePacket(MSG_KEXINIT, this.ourKexInitPayload.subarray(1));
  }

  /** Starts a key exchange now, unless one is already under way. */
  rekey(): void {
    if (this.kexState === "none" && !this.disconnected && !this.firstKex) this.sendKexInit();
  }

  /* byte[16] cookie, 10 name-lists, boolean first_kex_packet_follows, uint32 0 (RFC 4253 §7.1) */
  ssh_KEXINIT(packet: Uint8Array): void {
    if (this.kexState === "progressing") {
      throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "KEXINIT during key exchange", false);
    }
    const theirs = decodeKexInit(packet);
    const copy = new Uint8Array(packet.length + 1);
    copy[0] = MSG_KEXINIT;
    copy.set(packet, 1);
    this.otherKexInitPayload = copy;
    if (this.kexState === "none") this.sendKexInit();
    this.kexState = "progressing";
    const ours = this.kexInitLists();
    const [client, server] = this.isClient ? [ours, theirs] : [theirs, ours];
    const result = negotiate(client, server, (c) => CIPHERS[c]?.aead ?? false);
    if ("failed" in result) {
      this.logger.warn("no {part} algorithm in common with the peer", { part: result.failed });
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, "couldn't match all kex parts", false);
    }
    if (this.firstKex) {
      this.strictKex = ours.kex.includes(this.isClient ? STRICT_C : STRICT_S) && theirs.kex.includes(this.isClient ? STRICT_S : STRICT_C);
      if (this.strictKex && this.receivedNonKexFirst) {
        throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "strict KEX violation: KEXINIT was not the first packet", false);
      }
      this.peerSupportsExtInfo = theirs.kex.includes(this.isClient ? EXT_INFO_S : EXT_INFO_C);
    }
    // RFC 4253 §7.1 (and OpenSSH's proposals_match): the guess is right only when both sides put
    // the same kex and host key algorithms first.
    if (theirs.firstKexPacketFollows && (theirs.kex[0] !== ours.kex[0] || theirs.hostKey[0] !== ours.hostKey[0])) {
      this.ignoreNextKexPacket = true;
    }
    const spec = KEX_ALGORITHMS[result.kex];
    if (spec === undefined) throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `unsupported kex ${result.kex}`, false);
    this.algorithms = result;
    this.kexAlg = result.kex;
    this.keyAlg = result.hostKey;
    this.kexSpec = spec;
    this.logger.debug("kex alg={kex} key alg={hostKey}", { kex: result.kex, hostKey: result.hostKey });
    this.startKeyExchange();
  }

  /** Subclass step after negotiation: the client sends its first kex message, the server waits. */
  protected abstract startKeyExchange(): void;

  /**
   * Derives the next keys from the shared secret `K` (already encoded) and exchange hash `H`
   * (RFC 4253 §7.2). The first exchange hash becomes the session id.
   */
  protected keySetup(K: Uint8Array, H: Uint8Array): void {
    if (this.sessionID.length === 0) this.sessionID = H;
    const alg = this.algorithms!;
    const hash = this.kexSpec!.hash;
    const derive = (letter: string, length: number): Uint8Array =>
      length === 0 ? EMPTY : deriveKey(hash, K, H, letter, this.sessionID, length);
    const cs = { cipher: alg.cipherCS, mac: alg.macCS || "none" };
    const sc = { cipher: alg.cipherSC, mac: alg.macSC || "none" };
    const keysFor = (dir: { cipher: string; mac: string }, ivL: string, keyL: string, macL: string) => {
      const c = CIPHERS[dir.cipher]!;
      const m = c.aead ? undefined : MACS[dir.mac];
      return {
        key: derive(keyL, c.keyLength),
        iv: derive(ivL, c.ivLength),
        macKey: m === undefined ? EMPTY : derive(macL, m.keyLength),
      };
    };
    const csKeys = keysFor(cs, "A", "C", "E");
    const scKeys = keysFor(sc, "B", "D", "F");
    const [out, inn, outKeys, inKeys] = this.isClient ? [cs, sc, csKeys, scKeys] : [sc, cs, scKeys, csKeys];
    this.pendingKeys = {
      sealer: createSealer(out.cipher, out.mac, outKeys),
      opener: createOpener(inn.cipher, inn.mac, inKeys),
      outCipher: out.cipher,
      inCipher: inn.cipher,
      outMac: out.mac,
      inMac: inn.mac,
      outCompression: this.isClient ? alg.compCS : alg.compSC,
      inCompression: this.isClient ? alg.compSC : alg.compCS,
    };
  }

  /** Sends NEWKEYS and switches our outgoing keys (RFC 4253 §7.3). */
  protected sendNewKeys(): void {
    const keys = this.pendingKeys;
    if (keys === undefined) throw new Error("sendNewKeys before keySetup");
    this.writePacket(MSG_NEWKEYS, EMPTY);
    this.sealer = keys.sealer;
    this.outCipher = keys.outCipher;
    this.outMac = keys.outMac;
    if (this.strictKex) this.seqOut = 0;
    this.setCompression("out", keys.outCompression);
    this.sentNewKeys = true;
    if (this.firstKex && !this.isClient && this.peerSupportsExtInfo) this.sendExtInfo();
    if (this.gotNewKeys) this.finishKeyExchange();
  }

  /* (no payload) RFC 4253 §7.3 */
  ssh_NEWKEYS(packet: Uint8Array): void {
    if (packet.length !== 0) throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "NEWKEYS takes no data", false);
    const keys = this.pendingKeys;
    if (keys === undefined || this.gotNewKeys) throw this.unexpected(MSG_NEWKEYS);
    this.opener = keys.opener;
    this.inCipher = keys.inCipher;
    this.inMac = keys.inMac;
    if (this.strictKex) this.seqIn = 0;
    this.setCompression("in", keys.inCompression);
    this.gotNewKeys = true;
    if (this.sentNewKeys) this.finishKeyExchange();
  }

  private setCompression(direction: "in" | "out", name: string): void {
    const delayed = name === "zlib@openssh.com" && !this.authenticated;
    const on = name === "zlib" || (name === "zlib@openssh.com" && this.authenticated);
    if (direction === "in") {
      this.compressIn = on ? new Decompressor() : undefined;
      this.delayedCompression.in = delayed;
    } else {
      this.compressOut = on ? new Compressor() : undefined;
      this.delayedCompression.out = delayed;
    }
  }

  /** Both NEWKEYS are through: flush what waited, tell the application on the first exchange. */
  private finishKeyExchange(): void {
    const wasFirst = this.firstKex;
    this.kexState = "none";
    this.firstKex = false;
    this.pendingKeys = undefined;
    this.bytesSinceKex = 0;
    const alg = this.algorithms!;
    this.logger.info(
      "keys in use: kex {kex}, host key {hostKey}, cipher {cipherCS}/{cipherSC}, MAC {macCS}/{macSC}, compression {compCS}/{compSC}{strict}",
      {
        ...alg,
        macCS: alg.macCS || "(aead)",
        macSC: alg.macSC || "(aead)",
        strict: this.strictKex ? ", strict kex" : "",
      },
    );
    this.rekeyTimer?.cancel();
    if (this.rekeyInterval > 0 && Number.isFinite(this.rekeyInterval)) {
      this.rekeyTimer = this.clock.callLater(this.rekeyInterval, () => {
        this.rekeyTimer = undefined;
        this.rekey();
      });
    }
    const queued = this.blocked;
    this.blocked = [];
    for (const [type, payload] of queued) this.sendPacket(type, payload);
    if (wasFirst) this.connectionSecure();
  }

  /** RFC 8308 §3.1: tell the client which signature algorithms userauth accepts. */
  private sendExtInfo(): void {
    const algs = this.serverSigAlgsToAdvertise();
    this.writePacket(MSG_EXT_INFO, new SSHWriter().uint32(1).string("server-sig-algs").string(algs.join(",")).finish());
  }

  /** The public key signature algorithms the server accepts in userauth. */
  protected serverSigAlgsToAdvertise(): string[] {
    // ssh-rsa (SHA-1) is left out: SSHUserAuthServer refuses it unless configured otherwise.
    return ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521", "rsa-sha2-512", "rsa-sha2-256"];
  }

  /**
   * Called once the first key exchange is complete and the connection is encrypted (the client
   * requests its service here). Unlike Twisted, which calls it again after every rekey, it runs
   * once: a howto-style `connectionSecure` that requests a service must not run twice.
   */
  connectionSecure(): void {}
}
