/**
 * The machinery under `SSHTransportBase`: version exchange, binary packet framing (RFC 4253 §6),
 * message gating by phase, queueing during key exchange, services and disconnects. The
 * key-exchange bookkeeping (KEXINIT, NEWKEYS, strict kex, rekeying) is the layer above, in
 * `exchange.ts`; the client and server exchange steps are in `transport.ts`, the public module.
 */
import { Protocol } from "@twisted-ts/internet/protocol";
import type { Failure } from "@twisted-ts/internet/failure";
import { Logger } from "@twisted-ts/internet/log";
import type { IAddress, IProtocolFactory, ITCPTransport, ITransport } from "@twisted-ts/internet/interfaces";
import { reactor as globalReactor } from "@twisted-ts/internet/reactor";
import { SSHReader, SSHWriter, decodeUtf8 } from "../common.js";
import {
  DISCONNECT_CONNECTION_LOST,
  DISCONNECT_PROTOCOL_ERROR,
  DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED,
  DISCONNECT_REASON_NAMES,
  SSHDisconnectError,
} from "../../error.js";
import type { SSHService, SSHServiceFactory, SSHServiceTransport, ServiceClock } from "../service.js";
import type { AuthOptions } from "../authopt.js";
import { CIPHERS, createOpener, createSealer } from "../_transport/index.js";
import type { KexSpec, PacketOpener, PacketSealer } from "../_transport/index.js";
import { Compressor, Decompressor } from "./compression.js";
import { noteBytes } from "./heapreserve.js";
import type { NegotiatedAlgorithms } from "./kexinit.js";
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


/** Packets at least this long that arrive in pieces are gathered in a buffer of their own. */
const ASSEMBLE_AT = 4096;
/** Bytes a gathering buffer is made longer than its packet, so that the next packets fit it. */
const ASSEMBLY_SLACK = 256;

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
  /** Largest `packet_length` taken from the peer; a longer one ends the connection. */
  maxPacketLength = MAX_PACKET_LENGTH;
  /** Bytes the peer may send before its version line (and, to a client, the lines before it). */
  maxVersionLength = MAX_VERSION_BUFFER;
  serverSigAlgs: readonly string[] | undefined = undefined;
  /**
   * The factory that built this transport. On a server it is an `SSHFactory` (services, portal,
   * host keys); a client's factory is whatever ClientFactory connected it.
   */
  override factory: (IProtocolFactory & SSHServiceFactory) | null = null;
  avatar: unknown = undefined;
  logoutFunction: (() => void) | undefined = undefined;
  authOptions: AuthOptions | undefined = undefined;
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

  protected gotVersion = false;
  protected inbuf: Uint8Array = EMPTY;
  protected inOff = 0;
  protected pendingLength = -1;
  /** A packet of `pendingLength` split across reads, gathered here until it is whole. */
  protected assembly: Buffer | undefined = undefined;
  protected assemblyFill = 0;
  /**
   * The memory of the last packet gathered, once read: the next one is gathered in it (a fresh
   * 32 KiB per packet was external memory that set off V8's mark-compacts in a download).
   */
  private spareAssembly: Buffer | undefined = undefined;
  protected opener: PacketOpener = createOpener("none", "none", NO_KEYS);
  protected sealer: PacketSealer = createSealer("none", "none", NO_KEYS);
  protected inCipher = "none";
  protected outCipher = "none";
  protected inMac = "none";
  protected outMac = "none";
  protected seqIn = 0;
  protected seqOut = 0;
  protected compressIn: Decompressor | undefined = undefined;
  protected compressOut: Compressor | undefined = undefined;
  /** `zlib@openssh.com` waits for authentication; these hold it until then. */
  protected delayedCompression: { in: boolean; out: boolean } = { in: false, out: false };
  protected authenticated = false;
  protected kexState: KexState = "none";
  protected blocked: Array<[number, Uint8Array]> = [];
  /** What `blocked` holds, counted as `MAX_KEX_QUEUE_BYTES` says (exchange.ts). */
  protected blockedBytes = 0;
  protected sentNewKeys = false;
  protected gotNewKeys = false;
  protected receivedAnyPacket = false;
  protected ignoreNextKexPacket = false;
  protected bytesSinceKex = 0;
  protected rekeyTimer: { cancel(): void; active(): boolean } | undefined = undefined;
  protected closingCleanly = false;

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
    this.registerAsProducer();
    this.transport.write(new TextEncoder().encode(this.ourVersionString + "\r\n"));
    this.sendKexInit();
  }

  /** True while what the service sends would wait (`KeyExchangeMachinery.updateOutputHeld`). */
  protected outputIsHeld = false;

  /** Registers with the transport under us as the producer of what we send (exchange.ts). */
  protected abstract registerAsProducer(): void;

  /**
   * `dataReceived` keeps no view of what it is given (a packet's payload is decrypted into memory
   * of its own; an unread remainder is copied before it returns), so a TCP connection may hand it
   * views of a read buffer it reuses (`IBorrowingProtocol`).
   */
  readonly borrowsReceivedData = true as const;

  override dataReceived(data: Uint8Array): void {
    this.receiveData(data);
    if (this.inbufBorrowed) {
      // What is left unread (part of a packet, or input held while inbound is blocked) must
      // outlive the caller's buffer.
      this.inbufBorrowed = false;
      if (this.inOff < this.inbuf.length) this.inbuf = Buffer.from(this.inbuf.subarray(this.inOff));
      else this.inbuf = EMPTY;
      this.inOff = 0;
    }
  }

  /** `inbuf` is (a view of) the argument of the current `dataReceived`. */
  private inbufBorrowed = false;

  private receiveData(data: Uint8Array): void {
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
      this.inbufBorrowed = false;
      this.inOff = 0;
      this.processInput();
      // Read whole (payloads never share memory with the wire): reuse it.
      if (this.inbuf === a && this.inOff >= a.length) {
        this.spareAssembly = Buffer.from(a.buffer, a.byteOffset, a.buffer.byteLength - a.byteOffset);
        this.inbuf = EMPTY;
        this.inOff = 0;
      }
      if (k === data.length || this.disconnected) return;
      data = data.subarray(k);
    }
    this.appendInput(data);
    this.processInput();
  }

  /** Adds `data` after the unread input (no copy when nothing is left over). */
  protected appendInput(data: Uint8Array): void {
    if (this.inOff >= this.inbuf.length) {
      this.inbuf = data;
      this.inOff = 0;
      this.inbufBorrowed = true;
    } else {
      const rest = this.inbuf.length - this.inOff;
      const next = Buffer.allocUnsafe(rest + data.length);
      next.set(this.inbuf.subarray(this.inOff));
      next.set(data, rest);
      this.inbuf = next;
      this.inbufBorrowed = false;
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

  /**
   * Ends an asynchronous step that blocked input (`inboundBlocked`): runs `step` as input
   * processing would (its packets batched, a throw ending the connection), then reads on.
   */
  protected resumeInput(step: () => void): void {
    if (this.disconnected) return;
    this.batchWrites(() => {
      try {
        step();
      } catch (e) {
        this.protocolFault(e);
        return;
      }
      this.inboundBlocked = false;
      this.processInput();
    });
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
  protected readVersion(): boolean {
    for (;;) {
      const nl = this.inbuf.indexOf(0x0a, this.inOff);
      if (nl < 0) {
        if (this.inbuf.length - this.inOff > this.maxVersionLength) {
          this.disconnectWith(DISCONNECT_PROTOCOL_ERROR, `Peer version string longer than ${this.maxVersionLength} bytes. Preventing a denial of service attack.`);
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
        if (this.inOff > this.maxVersionLength) {
          this.disconnectWith(DISCONNECT_PROTOCOL_ERROR, `Peer version string longer than ${this.maxVersionLength} bytes. Preventing a denial of service attack.`);
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
  protected readPacket(): Uint8Array | undefined {
    if (this.assembly !== undefined) return undefined;
    const avail = this.inbuf.length - this.inOff;
    if (this.pendingLength < 0) {
      const headerLength = this.opener.headerLength;
      if (avail < headerLength) return undefined;
      const length = this.opener.decryptLength(this.seqIn, this.inbuf.subarray(this.inOff, this.inOff + headerLength));
      if (length > this.maxPacketLength || length < 5) {
        throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, `bad packet length ${length}`, false);
      }
      this.pendingLength = length;
    }
    const total = 4 + this.pendingLength + this.opener.macLength;
    if (avail < total) {
      if (total >= ASSEMBLE_AT) {
        // Gather the rest of this packet into a buffer of its own as it arrives, rather than
        // joining every later read to what is left over (one copy of the packet, no more).
        const spare = this.spareAssembly;
        this.spareAssembly = undefined;
        // Room for the peer's next packets too, which differ by their padding.
        const a = (spare !== undefined && spare.length >= total ? spare : Buffer.allocUnsafe(total + ASSEMBLY_SLACK)).subarray(0, total);
        a.set(this.inbuf.subarray(this.inOff));
        this.assembly = a;
        this.assemblyFill = avail;
        this.inbuf = EMPTY;
        this.inbufBorrowed = false;
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
  protected receivedNonKexFirst = false;

  protected hasHandler(name: string): boolean {
    return typeof (this as unknown as Record<string, unknown>)[`ssh_${name.slice(4)}`] === "function";
  }

  protected callHandler(name: string, body: Uint8Array): void {
    const method = (this as unknown as Record<string, unknown>)[`ssh_${name.slice(4)}`];
    if (typeof method !== "function") {
      this.logger.debug("couldn't handle {name}", { name });
      this.sendUnimplemented();
      return;
    }
    (method as (this: this, p: Uint8Array) => void).call(this, body);
  }

  protected unexpected(num: number): SSHDisconnectError {
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
      this.queueUntilNewKeys(messageType, payload);
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
      this.queueUntilNewKeys(messageType, payload);
      return;
    }
    this.writePacketParts(messageType, head, body);
  }

  /** Holds a message back until the key exchange ends (exchange.ts bounds the queue). */
  protected abstract queueUntilNewKeys(messageType: number, payload: Uint8Array): void;

  /** Seals and writes one message now, past the key-exchange queue. */
  protected writePacket(messageType: number, payload: Uint8Array): void {
    this.writePacketParts(messageType, EMPTY, payload);
  }

  /** Seals and writes the message `messageType || head || body` now. */
  protected writePacketParts(messageType: number, head: Uint8Array, body: Uint8Array): void {
    let pieces: Uint8Array[];
    if (this.compressOut !== undefined) {
      // Not zero-filled: every byte is written just below.
      const message = Buffer.allocUnsafe(1 + head.length + body.length);
      message[0] = messageType;
      message.set(head, 1);
      message.set(body, 1 + head.length);
      pieces = [this.sealer.seal(this.seqOut, this.compressOut.compress(message))];
    } else {
      // A large packet comes back as pieces (header, the body's ciphertext as the cipher returned
      // it, padding and MAC), so that nothing copies the body into a wire buffer.
      pieces = this.sealer.sealPieces(this.seqOut, messageType, head, body);
    }
    this.seqOut = (this.seqOut + 1) >>> 0;
    let sent = 0;
    for (let i = 0; i < pieces.length; i++) sent += pieces[i]!.length;
    if (this.outBatch !== undefined) {
      for (let i = 0; i < pieces.length; i++) this.outBatch.push(pieces[i]!);
    } else {
      this.corkSocket();
      // The pieces as one sequence: on TCP they leave in one writev either way (measured: no
      // dearer than one joined buffer); elsewhere the transport may gather them.
      if (pieces.length === 1) this.transport.write(pieces[0]!);
      else this.transport.writeSequence(pieces);
    }
    // Once the whole packet is out: a rekey started here sends KEXINIT after it, not inside it.
    this.countBytes(sent);
  }

  /**
   * On a TCP (or TLS) connection, holds the writes until the current turn of the event loop is
   * over (`coalesceWrites`), so that the packets sent meanwhile (a channel writing a 64 KiB read of
   * a process's output is two packets) leave in one writev.
   */
  protected corkSocket(): void {
    (this.transport as Partial<ITCPTransport>).coalesceWrites?.();
  }

  /** Packets sealed during a batch, in order, not written yet. */
  protected outBatch: Uint8Array[] | undefined = undefined;

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

  protected endBatch(): void {
    this.flushWrites();
    this.outBatch = undefined;
  }

  /** Writes what the current batch holds (before closing the transport, and at its end). */
  protected flushWrites(): void {
    const batch = this.outBatch;
    if (batch === undefined || batch.length === 0) return;
    this.outBatch = [];
    if (batch.length === 1) this.transport.write(batch[0]!);
    else this.transport.writeSequence(batch);
  }

  protected countBytes(n: number): void {
    this.bytesSinceKex += n;
    noteBytes(n);
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
    if (this.outputIsHeld) service.outputHeld(true);
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

  // ---------------------------------------------------------------- key exchange (exchange.ts)

  /** Sends KEXINIT, starting a key exchange (or answering the peer's); see `KeyExchangeMachinery`. */
  abstract sendKexInit(): void;
}
