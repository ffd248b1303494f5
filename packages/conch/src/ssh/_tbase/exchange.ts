/**
 * The key-exchange half of the transport machinery (RFC 4253 §7–9): our KEXINIT, negotiation,
 * strict kex and ext-info signals, key derivation, NEWKEYS in each direction, rekeying, and the
 * hand-over to `connectionSecure`. The client and server exchange steps (30–34) live in
 * `transport.ts`.
 */
import { randomBytes } from "node:crypto";
import { SSHWriter } from "../common.js";
import { CERT_SIGNATURE_ALGORITHMS, DEFAULT_SIGNATURE_ALGORITHMS } from "../_keys/algorithms.js";
import { DISCONNECT_KEY_EXCHANGE_FAILED, DISCONNECT_PROTOCOL_ERROR, SSHDisconnectError } from "../../error.js";
import { CIPHERS, MACS, KEX_ALGORITHMS, createOpener, createSealer, deriveKey } from "../_transport/index.js";
import { Compressor, Decompressor } from "./compression.js";
import { decodeKexInit, encodeKexInit, negotiate } from "./kexinit.js";
import type { KexInitLists } from "./kexinit.js";
import { MSG_EXT_INFO, MSG_KEXINIT, MSG_NEWKEYS } from "./messages.js";
import type { IConsumer } from "@twisted-ts/internet/interfaces";
import { TransportMachinery } from "./base.js";

const EXT_INFO_C = "ext-info-c";
const EXT_INFO_S = "ext-info-s";
const STRICT_C = "kex-strict-c-v00@openssh.com";
const STRICT_S = "kex-strict-s-v00@openssh.com";
const EMPTY = new Uint8Array(0);

/**
 * Most that may wait for the end of a key exchange (RFC 4253 §7.1 holds back everything but
 * its own messages) before the peer is cut off: a peer that starts a rekey, never finishes it and
 * keeps sending requests would otherwise have every reply queued without bound. Each message
 * counts its payload plus {@link KEX_QUEUE_MESSAGE_OVERHEAD}.
 */
export const MAX_KEX_QUEUE_BYTES = 32 * 1024 * 1024;
/** Roughly what one queued message costs besides its payload (the queue entry, the buffer it is a view of). */
export const KEX_QUEUE_MESSAGE_OVERHEAD = 256;

export abstract class KeyExchangeMachinery extends TransportMachinery {
  /** The most messages waiting for the end of a key exchange may take up (`MAX_KEX_QUEUE_BYTES`). */
  maxKexQueueBytes = MAX_KEX_QUEUE_BYTES;

  /** Holds a message back until the key exchange ends; past `maxKexQueueBytes` the peer is cut off. */
  protected queueUntilNewKeys(messageType: number, payload: Uint8Array): void {
    this.blocked.push([messageType, payload]);
    this.blockedBytes += payload.length + KEX_QUEUE_MESSAGE_OVERHEAD;
    if (this.blockedBytes > this.maxKexQueueBytes) {
      this.blocked = [];
      this.blockedBytes = 0;
      this.disconnectWith(DISCONNECT_PROTOCOL_ERROR, `more than ${this.maxKexQueueBytes} bytes of messages waiting for the key exchange to end`);
    }
  }

  /** Set while the transport under us has paused us: its send buffer is full, the peer is not reading. */
  private sendBufferFull = false;

  /**
   * Registers with the transport under us as the push producer of what we send, so that a peer
   * that stops reading pauses the channels' producers instead of filling the send buffer without
   * bound (OpenSSH stops reading channels while its output buffer is large).
   */
  protected registerAsProducer(): void {
    const t = this.transport as Partial<IConsumer>;
    if (typeof t.registerProducer !== "function") return;
    const set = (full: boolean): void => {
      this.sendBufferFull = full;
      this.updateOutputHeld();
    };
    try {
      t.registerProducer({ pauseProducing: () => set(true), resumeProducing: () => set(false), stopProducing: () => undefined }, true);
    } catch {
      /* the transport has a producer of its own already */
    }
  }

  /**
   * Tells the service whether what it sends would wait: the peer is not reading, or a key exchange
   * queues everything but its own messages (RFC 4253 §7.1) until NEWKEYS.
   */
  protected updateOutputHeld(): void {
    const held = this.sendBufferFull || this.kexState !== "none";
    if (held === this.outputIsHeld) return;
    this.outputIsHeld = held;
    this.service?.outputHeld(held);
  }

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
    this.updateOutputHeld();
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
   * (RFC 4253 §7.2). The first exchange hash becomes the session id. `K` and the derived keys
   * are zeroed once the next sealer and opener are built: after a rekey nothing of the previous
   * keys is left but the old cipher objects, dropped at NEWKEYS.
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
    // The sealer and opener hold their own copies (KeyObjects, cipher contexts), so the shared
    // secret and the derived bytes are wiped here rather than left for the garbage collector.
    for (const k of [csKeys, scKeys]) {
      k.key.fill(0);
      k.iv.fill(0);
      k.macKey.fill(0);
    }
    K.fill(0);
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
    this.blockedBytes = 0;
    for (const [type, payload] of queued) this.sendPacket(type, payload);
    this.updateOutputHeld();
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
    // Certificates too (PROTOCOL.certkeys); the RSA ones name their signature hash.
    return [...DEFAULT_SIGNATURE_ALGORITHMS, ...Object.keys(CERT_SIGNATURE_ALGORITHMS)];
  }

  /**
   * Called once the first key exchange is complete and the connection is encrypted (the client
   * requests its service here). Unlike Twisted, which calls it again after every rekey, it runs
   * once: a howto-style `connectionSecure` that requests a service must not run twice.
   */
  connectionSecure(): void {}
}
