/**
 * `twisted.conch.ssh.transport`: the SSH transport layer (RFC 4253) as Protocols.
 *
 * A `ClientFactory` whose `protocol` is a subclass of {@link SSHClientTransport}, handed to
 * `reactor.connectTCP`, is an SSH client; {@link SSHServerTransport} is built by
 * `factory.SSHFactory`. Both run over any transport: TCP, a UNIX socket, a process's stdio or an
 * SSH channel.
 */
import { fail, maybeDeferred } from "@twisted-ts/internet/defer";
import type { Deferred } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { SSHReader, SSHWriter, bytesEqual } from "./common.js";
import {
  DISCONNECT_BY_APPLICATION,
  DISCONNECT_HOST_KEY_NOT_VERIFIABLE,
  DISCONNECT_KEY_EXCHANGE_FAILED,
  DISCONNECT_PROTOCOL_ERROR,
  DISCONNECT_SERVICE_NOT_AVAILABLE,
  HostKeyNotVerifiableError,
  SSHDisconnectError,
} from "../error.js";
import { CERT_SIGNATURE_ALGORITHMS, Certificate, DEFAULT_SIGNATURE_ALGORITHMS, Key, REQUIRED_RSA_SIZE, keyTypeForSignatureAlgorithm } from "./keys.js";
import type { SSHService } from "./service.js";
import type { SSHFactory } from "./factory.js";
import type { PenaltyType, Startup } from "./_factory/srclimit.js";
import {
  CIPHERS,
  cipherRunsHere,
  DEFAULT_KEX_ORDER,
  KEX_ALGORITHMS,
  MACS,
  chooseGexGroup,
  createKexClient,
  kexDhGroup,
  kexHash,
  kexReady,
  kexRunsHere,
  kexServerRespond,
  kexServerRespondOffThread,
  fixedGroupFor,
  bitLength,
} from "./_transport/index.js";
import type { DHGroup, KexClient } from "./_transport/index.js";
import { KeyExchangeMachinery } from "./_tbase/exchange.js";
import {
  MSG_KEXDH_INIT,
  MSG_KEXDH_REPLY,
  MSG_KEX_DH_GEX_GROUP,
  MSG_KEX_DH_GEX_INIT,
  MSG_KEX_DH_GEX_REPLY,
  MSG_KEX_DH_GEX_REQUEST,
  MSG_SERVICE_ACCEPT,
  MSG_SERVICE_REQUEST,
} from "./_tbase/messages.js";

export * from "./_tbase/messages.js";
export { MAX_DECOMPRESSED_PAYLOAD } from "./_tbase/compression.js";
export { MAX_PACKET_LENGTH, MAX_VERSION_BUFFER, DEFAULT_REKEY_BYTES, DEFAULT_REKEY_INTERVAL } from "./_tbase/base.js";
export { MAX_KEX_QUEUE_BYTES, KEX_QUEUE_MESSAGE_OVERHEAD } from "./_tbase/exchange.js";
export { DEFAULT_HEAP_RESERVE, setHeapReserve, heapReserveHeld } from "./_tbase/heapreserve.js";
export { ffs, negotiate, MAX_NAME_LIST_BYTES, MAX_NAME_LIST_NAMES } from "./_tbase/kexinit.js";
/**
 * `dhPoolIdle()` resolves once no Diffie-Hellman computation is pending on the worker thread
 * (see `SSHServerTransport.dhInlineMaxBits`); `dhPoolPending()` counts them. For tests that pump
 * transports in memory.
 */
export { dhPoolIdle, dhPoolPending } from "./_transport/index.js";
export type { KexInitLists, NegotiatedAlgorithms } from "./_tbase/kexinit.js";

/**
 * Loads what key exchange method `name` needs ahead of its first exchange (ML-KEM's code, which a
 * process otherwise loads when it first negotiates an mlkem768* method, holding that connection's
 * input meanwhile); resolves at once for the others. Rejects with a `KeyExchangeError` when it
 * cannot be loaded, or when this runtime cannot run `name`.
 */
export async function loadKeyExchange(name: string): Promise<void> {
  await kexReady(name);
}

/**
 * Key exchanges offered by default, strongest first. Without WebAssembly (`node --jitless`)
 * sntrup761x25519-sha512 is left out, as chacha20-poly1305@openssh.com is from the ciphers.
 */
export const DEFAULT_KEY_EXCHANGES: readonly string[] = DEFAULT_KEX_ORDER.filter((k) => KEX_ALGORITHMS[k]?.enabledByDefault && kexRunsHere(k));
/** Every key exchange we implement, including the ones off by default (SHA-1 based). */
export const ALL_KEY_EXCHANGES: readonly string[] = Object.keys(KEX_ALGORITHMS);
/** Host key algorithms offered by default; `ssh-rsa` (SHA-1) and `ssh-dss` are off. */
export const DEFAULT_PUBLIC_KEYS: readonly string[] = [...DEFAULT_SIGNATURE_ALGORITHMS];
export const ALL_PUBLIC_KEYS: readonly string[] = [...DEFAULT_PUBLIC_KEYS, "ssh-rsa", "ssh-dss"];
/** Ciphers offered by default; CBC modes are available but off. */
export const DEFAULT_CIPHERS: readonly string[] = [
  "chacha20-poly1305@openssh.com",
  "aes128-gcm@openssh.com",
  "aes256-gcm@openssh.com",
  "aes128-ctr",
  "aes192-ctr",
  "aes256-ctr",
].filter(cipherRunsHere);
export const ALL_CIPHERS: readonly string[] = Object.keys(CIPHERS).filter((c) => c !== "none");
export const DEFAULT_MACS: readonly string[] = [
  "hmac-sha2-256-etm@openssh.com",
  "hmac-sha2-512-etm@openssh.com",
  "hmac-sha2-256",
  "hmac-sha2-512",
  "hmac-sha1-etm@openssh.com",
  "hmac-sha1",
];
export const ALL_MACS: readonly string[] = Object.keys(MACS).filter((m) => m !== "none");
/**
 * Compression offered by default: `zlib@openssh.com` only starts after authentication. Plain
 * `zlib` would run the decompressor on what an unauthenticated peer sends, so it is left out, as
 * OpenSSH has done since 7.4; it is in {@link ALL_COMPRESSIONS} for a peer that needs it.
 */
export const DEFAULT_COMPRESSIONS: readonly string[] = ["none", "zlib@openssh.com"];
/** Every compression this transport implements. */
export const ALL_COMPRESSIONS: readonly string[] = ["none", "zlib@openssh.com", "zlib"];

/**
 * Group sizes of diffie-hellman-group-exchange: what a client asks for, and the range a server
 * serves (OpenSSH's `DH_GRP_MIN` and `DH_GRP_MAX`; RFC 8270 raised the minimum to 2048).
 */
export const GEX_MIN_BITS = 2048;
export const GEX_PREFERRED_BITS = 3072;
export const GEX_MAX_BITS = 8192;

/**
 * The largest finite-field group a server computes in on the event loop. A 4096-bit exchange costs
 * about 5 ms here, within the per-step budget; bigger groups (group exchange up to 8192 bits,
 * diffie-hellman-group18-sha512) take up to 25 ms, and run on a worker thread.
 */
export const DH_INLINE_MAX_BITS = 4096;

/** Seconds a server waits for a client to authenticate (OpenSSH's LoginGraceTime). */
export const DEFAULT_LOGIN_GRACE_TIME = 120;

/**
 * Twisted's `SSHTransportBase`: version exchange, packets, key exchange, services. The algorithm
 * lists are ordered preferences a subclass or an instance may override.
 */
export abstract class SSHTransportBase extends KeyExchangeMachinery {
  supportedKeyExchanges: string[] = [...DEFAULT_KEY_EXCHANGES];
  supportedPublicKeys: string[] = [...DEFAULT_PUBLIC_KEYS];
  supportedCiphers: string[] = [...DEFAULT_CIPHERS];
  supportedMACs: string[] = [...DEFAULT_MACS];
  supportedCompressions: string[] = [...DEFAULT_COMPRESSIONS];

  /** The current exchange's e, f and, for group exchange, the group and the sizes asked for. */
  protected gex: { min: number; n: number; max: number; old: boolean; p: bigint; g: bigint } | undefined = undefined;

  /**
   * H = HASH(V_C || V_S || I_C || I_S || K_S || [GEX: min || n || max || p || g] || e/Q_C || f/Q_S || K)
   * (RFC 4253 §8, RFC 4419 §3, RFC 5656 §4).
   */
  protected computeExchangeHash(K_S: Uint8Array, clientPublic: Uint8Array, serverPublic: Uint8Array, K: Uint8Array): Uint8Array {
    const [vC, vS, iC, iS] = this.isClient
      ? [this.ourVersionString, this.otherVersionString, this.ourKexInitPayload, this.otherKexInitPayload]
      : [this.otherVersionString, this.ourVersionString, this.otherKexInitPayload, this.ourKexInitPayload];
    const w = new SSHWriter(4096).string(vC).string(vS).string(iC).string(iS).string(K_S);
    const gex = this.gex;
    if (this.kexSpec?.family === "gex" && gex !== undefined) {
      if (gex.old) w.uint32(gex.n);
      else w.uint32(gex.min).uint32(gex.n).uint32(gex.max);
      w.mpint(gex.p).mpint(gex.g);
    }
    w.string(clientPublic).string(serverPublic).raw(K);
    return kexHash(this.kexSpec!.name, w.finish());
  }

  /**
   * A key exchange step that waits (ML-KEM being loaded, Diffie-Hellman on the worker thread):
   * reading stops (and the socket is paused) until `pending` settles, so what the peer sends
   * meanwhile waits, in order; then `step` runs with its value. A rejection ends the connection as
   * a throw from a handler does (a `KeyExchangeError` with DISCONNECT_KEY_EXCHANGE_FAILED).
   */
  protected afterPending<T>(pending: Promise<T>, step: (value: T) => void): void {
    this.inboundBlocked = true;
    const t = this.transport as { pauseProducing?: () => void; resumeProducing?: () => void };
    t.pauseProducing?.();
    const resume = (run: () => void): void => {
      if (this.disconnected) return;
      t.resumeProducing?.();
      this.resumeInput(run);
    };
    pending.then(
      (value) => resume(() => step(value)),
      (e: unknown) =>
        resume(() => {
          throw e;
        }),
    );
  }

  /** Runs `step` now when method `name` can run at once, else once what it needs is loaded. */
  protected whenKexReady(name: string, step: () => void): void {
    const ready = kexReady(name);
    if (ready === undefined) step();
    else this.afterPending(ready, step);
  }
}

/**
 * Twisted's `SSHClientTransport`. Override {@link verifyHostKey} and {@link connectionSecure}
 * (where the howto calls `requestService(new ClientUserAuth(user, new ClientConnection()))`).
 */
export class SSHClientTransport extends SSHTransportBase {
  readonly isClient = true;
  /** The service asked for with `requestService`, started on SERVICE_ACCEPT. */
  instance: SSHService | undefined = undefined;
  /**
   * The group sizes asked for in group exchange (RFC 4419 §3 min / n / max). A group outside
   * `[gexMinBits, gexMaxBits]` ends the exchange: a hostile server cannot make us compute in an
   * arbitrarily large one.
   */
  gexMinBits = GEX_MIN_BITS;
  gexPreferredBits = GEX_PREFERRED_BITS;
  gexMaxBits = GEX_MAX_BITS;
  /** Smallest RSA host key accepted, in bits (OpenSSH's `RequiredRSASize`). */
  requiredRSASize = REQUIRED_RSA_SIZE;
  private kexClient: KexClient | undefined = undefined;

  /**
   * Decides whether the server's host key is acceptable: `pubKey` is the key blob, `fingerprint`
   * its MD5 colon-hex fingerprint (`Key.fingerprint()`). Return a Deferred (or a Promise, or a
   * value); success accepts, a failure disconnects with HOST_KEY_NOT_VERIFIABLE. The default
   * refuses every key: a client must decide.
   */
  verifyHostKey(pubKey: Uint8Array, fingerprint: string): Deferred<unknown> | PromiseLike<unknown> | unknown {
    void pubKey;
    return fail(new HostKeyNotVerifiableError(`no host key policy: override verifyHostKey to accept ${fingerprint}`));
  }

  /** Asks the server to start `service` (RFC 4253 §10); it runs when the server accepts. */
  requestService(service: SSHService): void {
    this.instance = service;
    this.sendPacket(MSG_SERVICE_REQUEST, new SSHWriter().string(service.name).finish());
  }

  /* string service name (RFC 4253 §10) */
  ssh_SERVICE_ACCEPT(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const name = r.remaining > 0 ? r.utf8("service name") : "";
    const instance = this.instance;
    if (instance === undefined || (name !== "" && name !== instance.name)) {
      throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, `accepted a service we did not ask for: ${name}`, false);
    }
    this.instance = undefined;
    this.setService(instance);
  }

  protected startKeyExchange(): void {
    const spec = this.kexSpec!;
    this.kexClient = undefined;
    if (spec.family === "gex") {
      const [min, n, max] = [this.gexMinBits, this.gexPreferredBits, this.gexMaxBits];
      this.gex = { min, n, max, old: false, p: 0n, g: 0n };
      this.sendPacket(MSG_KEX_DH_GEX_REQUEST, new SSHWriter(12).uint32(min).uint32(n).uint32(max).finish());
      return;
    }
    this.gex = undefined;
    this.whenKexReady(spec.name, () => {
      this.kexClient = createKexClient(spec.name);
      this.sendPacket(MSG_KEXDH_INIT, new SSHWriter().string(this.kexClient.clientPublic).finish());
    });
  }

  /* mpint p, mpint g (RFC 4419 §3) */
  ssh_KEX_DH_GEX_GROUP(packet: Uint8Array): void {
    const gex = this.gex;
    if (gex === undefined || this.kexClient !== undefined) throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "unexpected KEX_DH_GEX_GROUP", false);
    const r = new SSHReader(packet);
    // The length first: converting a 256 KiB mpint alone costs 10 ms.
    const pLength = new SSHReader(packet).uint32();
    if (pLength > Math.ceil(gex.max / 8) + 1) {
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `server sent a group of ${pLength} bytes, more than ${gex.max} bits`, false);
    }
    const p = r.mpint();
    const g = r.mpint(gex.max);
    const bits = p <= 0n ? 0 : bitLength(p);
    if (bits < gex.min || bits > gex.max) {
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `server sent a ${bits}-bit group, outside ${gex.min}..${gex.max}`, false);
    }
    gex.p = p;
    gex.g = g;
    this.kexClient = createKexClient(this.kexSpec!.name, { p, g });
    this.sendPacket(MSG_KEX_DH_GEX_INIT, new SSHWriter().string(this.kexClient.clientPublic).finish());
  }

  /* string K_S, mpint f, string signature of H (RFC 4253 §8) */
  ssh_KEXDH_REPLY(packet: Uint8Array): void {
    this.handleReply(packet);
  }

  /* string K_S, string Q_S, string signature of H (RFC 5656 §4; also the hybrid KEM reply) */
  ssh_KEX_ECDH_REPLY(packet: Uint8Array): void {
    this.handleReply(packet);
  }

  /* string K_S, mpint f, string signature of H (RFC 4419 §3) */
  ssh_KEX_DH_GEX_REPLY(packet: Uint8Array): void {
    this.handleReply(packet);
  }

  /** Checks the server's reply, then asks `verifyHostKey`; reading stops until it answers. */
  private handleReply(packet: Uint8Array): void {
    const kex = this.kexClient;
    if (kex === undefined) throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "key exchange reply before our init", false);
    this.kexClient = undefined;
    const r = new SSHReader(packet);
    const K_S = r.string();
    const serverPublic = r.string();
    const signature = r.string();
    const keyAlg = this.keyAlg!;
    // A certificate algorithm sends the certificate as K_S and signs as its plain algorithm.
    const certSigAlg = CERT_SIGNATURE_ALGORITHMS[keyAlg];
    const sigAlgWanted = certSigAlg ?? keyAlg;
    let hostKey: Key;
    try {
      hostKey = certSigAlg !== undefined ? Certificate.fromBlob(K_S).key : Key.fromString(K_S, "blob");
    } catch (e) {
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `bad host key: ${e instanceof Error ? e.message : String(e)}`, false);
    }
    if (keyTypeForSignatureAlgorithm(sigAlgWanted) !== hostKey.sshType()) {
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `host key is ${hostKey.sshType()}, negotiated ${keyAlg}`, false);
    }
    if (hostKey.type() === "RSA" && hostKey.size() < this.requiredRSASize) {
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `the server's ${hostKey.size()}-bit RSA key is below RequiredRSASize ${this.requiredRSASize}`, false);
    }
    const K = kex.computeSecret(serverPublic);
    const H = this.computeExchangeHash(K_S, kex.clientPublic, serverPublic, K);
    let sigAlg = "";
    try {
      sigAlg = new SSHReader(signature).utf8("signature algorithm");
    } catch {
      /* reported below as a bad signature */
    }
    if (sigAlg !== sigAlgWanted || !hostKey.verify(signature, H)) {
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, "bad signature", false);
    }
    this.keySetup(K, H);
    this.inboundBlocked = true;
    const d = maybeDeferred(() => this.verifyHostKey(K_S, hostKey.fingerprint()));
    d.addCallbacks(
      () => {
        if (this.disconnected) return;
        this.sendNewKeys();
        this.inboundBlocked = false;
        this.processInput();
      },
      (f: Failure) => {
        this.logger.warn("host key {fingerprint} not accepted: {why}", { fingerprint: hostKey.fingerprint(), why: f.getErrorMessage() });
        this.disconnectWith(DISCONNECT_HOST_KEY_NOT_VERIFIABLE, "bad host key", f.value);
      },
    );
  }
}

/**
 * Twisted's `SSHServerTransport`: host keys, moduli and services come from its `factory`
 * (`factory.SSHFactory`).
 */
export class SSHServerTransport extends SSHTransportBase {
  readonly isClient = false;
  /** Seconds to wait for authentication before disconnecting; 0 turns the limit off. */
  loginGraceTime = DEFAULT_LOGIN_GRACE_TIME;
  /**
   * The smallest and largest group-exchange group served (OpenSSH's `DH_GRP_MIN`/`DH_GRP_MAX`);
   * a client's request is clamped to them, and the moduli file's larger primes are never used.
   */
  gexMinBits = GEX_MIN_BITS;
  gexMaxBits = GEX_MAX_BITS;
  /** Finite-field groups larger than this are computed on a worker thread, off the event loop. */
  dhInlineMaxBits = DH_INLINE_MAX_BITS;
  private graceTimer: { cancel(): void; active(): boolean } | undefined = undefined;
  /** Our place among the factory's unauthenticated connections (`factory.sourceLimits`). */
  private startup: Startup | undefined = undefined;
  /** How this connection went wrong before authenticating, for `PerSourcePenalties`. */
  private penaltyType: PenaltyType | undefined = undefined;

  private get sshFactory(): SSHFactory {
    const f = this.factory as SSHFactory | null;
    if (f === null) throw new Error("SSHServerTransport needs a factory (factory.SSHFactory)");
    return f;
  }

  /** The address per-source limits act on: `getPeer()`'s host (behind HAProxy, the real client's). */
  private peerHost(): string | undefined {
    try {
      const p = this.getPeer();
      return "host" in p ? p.host : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * As sshd's listener: a penalised source, or one past `MaxStartups` / `PerSourceMaxStartups`
   * (the factory's settings), is told "Not allowed at this time" and closed before any SSH.
   */
  override connectionMade(): void {
    const factory = this.factory as SSHFactory | null;
    if (factory?.sourceLimits !== undefined) {
      const host = this.peerHost();
      const verdict = factory.sourceLimits.admit(host, this.clock.seconds());
      if ("reason" in verdict) {
        const level = verdict.reason.startsWith("past ") ? "debug" : "info";
        this.logger[level]("drop connection from {host}: {reason}", { host: host ?? "?", reason: verdict.reason });
        this.disconnected = true;
        this.transport.write(new TextEncoder().encode("Not allowed at this time\r\n"));
        this.transport.loseConnection();
        return;
      }
      this.startup = verdict;
    }
    if (this.loginGraceTime > 0) {
      this.graceTimer = this.clock.callLater(this.loginGraceTime, () => {
        this.graceTimer = undefined;
        this.penaltyType = "grace-exceeded";
        this.logger.warn("login grace time of {seconds}s exceeded; disconnecting", { seconds: this.loginGraceTime });
        this.disconnectWith(DISCONNECT_BY_APPLICATION, "login grace time exceeded");
      });
    }
    super.connectionMade();
  }

  protected override onAuthenticated(): void {
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    this.startup?.release();
    this.startup = undefined;
    super.onAuthenticated();
  }

  /** A protocol fault before authentication earns sshd's `crash` penalty. */
  protected override protocolFault(e: unknown): void {
    if (!this.authenticated) this.penaltyType ??= "crash";
    super.protocolFault(e);
  }

  /**
   * Ending unauthenticated penalises the source as sshd does: `grace-exceeded`, `crash`,
   * `authfail` after failed attempts (the userauth service's `loginAttempts`), else `noauth`.
   */
  protected override onConnectionLost(): void {
    this.graceTimer?.cancel();
    this.graceTimer = undefined;
    const startup = this.startup;
    this.startup = undefined;
    if (startup === undefined) return;
    startup.release();
    const attempts = (this.service as { loginAttempts?: unknown } | undefined)?.loginAttempts;
    const type = this.penaltyType ?? (typeof attempts === "number" && attempts > 0 ? "authfail" : "noauth");
    this.sshFactory.sourceLimits.penalise(this.peerHost(), type, this.clock.seconds());
  }

  /**
   * Only the algorithms we hold a host key for; certificate algorithms first (as sshd) for each
   * host certificate whose key we hold.
   */
  protected override hostKeyAlgorithms(): string[] {
    const have = this.sshFactory.getPrivateKeys();
    const plain = this.supportedPublicKeys.filter((alg) => have[keyTypeForSignatureAlgorithm(alg) ?? ""] !== undefined);
    const certs = Object.keys(CERT_SIGNATURE_ALGORITHMS).filter((alg) => this.hostCertificateFor(alg) !== undefined && plain.includes(CERT_SIGNATURE_ALGORITHMS[alg]!));
    return [...certs, ...plain];
  }

  /** The factory's host certificate for certificate algorithm `alg` whose key we hold, if any. */
  private hostCertificateFor(alg: string): Certificate | undefined {
    const sigAlg = CERT_SIGNATURE_ALGORITHMS[alg];
    if (sigAlg === undefined) return undefined;
    const keyType = keyTypeForSignatureAlgorithm(sigAlg);
    const privateKey = keyType === undefined ? undefined : this.sshFactory.getPrivateKeys()[keyType];
    return this.sshFactory.hostCertificates.find((c) => privateKey !== undefined && c.key.sshType() === keyType && bytesEqual(c.key.blob(), privateKey.public().blob()));
  }

  protected startKeyExchange(): void {
    this.gex = undefined;
    // An ML-KEM method starts loading now, while the client computes and sends its init.
    void kexReady(this.kexSpec!.name);
  }

  /* string service name (RFC 4253 §10) */
  ssh_SERVICE_REQUEST(packet: Uint8Array): void {
    const name = new SSHReader(packet).utf8("service name");
    const service = this.sshFactory.getService(this, name);
    if (service === undefined) {
      this.disconnectWith(DISCONNECT_SERVICE_NOT_AVAILABLE, `don't have service ${name}`);
      return;
    }
    this.sendPacket(MSG_SERVICE_ACCEPT, new SSHWriter().string(name).finish());
    this.setService(new service());
  }

  /* mpint e / string Q_C / string C_INIT (RFC 4253 §8, RFC 5656 §4) */
  ssh_KEXDH_INIT(packet: Uint8Array): void {
    this.replyToInit(new SSHReader(packet).string());
  }

  ssh_KEX_ECDH_INIT(packet: Uint8Array): void {
    this.replyToInit(new SSHReader(packet).string());
  }

  /* uint32 min, uint32 n, uint32 max (RFC 4419 §3) */
  ssh_KEX_DH_GEX_REQUEST(packet: Uint8Array): void {
    const r = new SSHReader(packet);
    const min = r.uint32();
    const n = r.uint32();
    const max = r.uint32();
    this.sendGroup(min, n, max, false);
  }

  /* uint32 n (RFC 4419 §5, the old request) */
  ssh_KEX_DH_GEX_REQUEST_OLD(packet: Uint8Array): void {
    const n = new SSHReader(packet).uint32();
    this.sendGroup(Math.min(n, 1024), n, Math.max(n, 8192), true);
  }

  private sendGroup(min: number, n: number, max: number, old: boolean): void {
    if (this.gex !== undefined) throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "second group exchange request", false);
    // As OpenSSH's kexgex_server: clamp to what we serve, then insist min <= n <= max.
    const lo = Math.max(min, this.gexMinBits);
    const hi = Math.min(max, this.gexMaxBits);
    const pref = Math.min(Math.max(n, this.gexMinBits), this.gexMaxBits);
    if (!(min <= n && n <= max) || hi < lo || pref < lo || pref > hi) {
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `bad group size request ${min}/${n}/${max}`, false);
    }
    const primes = this.sshFactory.getPrimes();
    const group = (primes !== undefined ? chooseGexGroup(primes, lo, pref, hi) : undefined) ?? fixedGroupFor(lo, pref, hi);
    if (group === undefined) throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `no group of ${lo}..${hi} bits`, false);
    this.gex = { min, n, max, old, p: group.p, g: group.g };
    this.sendPacket(MSG_KEX_DH_GEX_GROUP, new SSHWriter().mpint(group.p).mpint(group.g).finish());
  }

  /* mpint e (RFC 4419 §3) */
  ssh_KEX_DH_GEX_INIT(packet: Uint8Array): void {
    const gex = this.gex;
    if (gex === undefined) throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "KEX_DH_GEX_INIT before a group", false);
    this.replyToInit(new SSHReader(packet).string(), { p: gex.p, g: gex.g });
  }

  /**
   * Computes K from the client's public value, then replies. A finite-field group larger than
   * `dhInlineMaxBits` is computed on a worker thread: reading stops (and the socket is paused)
   * until it is done, so what the client sends meanwhile waits, in order; an ML-KEM method waits
   * so for ML-KEM to be loaded, the first time.
   */
  private replyToInit(clientPublic: Uint8Array, group?: DHGroup): void {
    if (this.pendingKeys !== undefined || this.inboundBlocked) {
      throw new SSHDisconnectError(DISCONNECT_PROTOCOL_ERROR, "second key exchange init", false);
    }
    this.hostKeyPair();
    const name = this.kexSpec!.name;
    const dhGroup = kexDhGroup(name, group);
    if (dhGroup === undefined || bitLength(dhGroup.p) <= this.dhInlineMaxBits) {
      this.whenKexReady(name, () => this.sendReply(clientPublic, kexServerRespond(name, clientPublic, group)));
      return;
    }
    this.afterPending(kexServerRespondOffThread(name, clientPublic, group), (result) => this.sendReply(clientPublic, result));
  }

  /**
   * Our host key for the negotiated host key algorithm: the private key, K_S (the public key blob
   * or, for a certificate algorithm, the certificate blob) and the signature algorithm.
   */
  private hostKeyPair(): { privateKey: Key; K_S: Uint8Array; sigAlg: string } {
    const keyAlg = this.keyAlg!;
    const cert = this.hostCertificateFor(keyAlg);
    const sigAlg = cert !== undefined ? CERT_SIGNATURE_ALGORITHMS[keyAlg]! : keyAlg;
    const keyType = keyTypeForSignatureAlgorithm(sigAlg) ?? "";
    const privateKey = this.sshFactory.getPrivateKeys()[keyType];
    const publicKey = this.sshFactory.getPublicKeys()[keyType] ?? privateKey?.public();
    if (privateKey === undefined || publicKey === undefined || (sigAlg !== keyAlg && cert === undefined)) {
      throw new SSHDisconnectError(DISCONNECT_KEY_EXCHANGE_FAILED, `no host key for ${keyAlg}`, false);
    }
    return { privateKey, K_S: cert?.blob() ?? publicKey.blob(), sigAlg };
  }

  /* string K_S, mpint f / string Q_S, string signature of H (RFC 4253 §8, RFC 4419 §3, RFC 5656 §4) */
  private sendReply(clientPublic: Uint8Array, { serverPublic, secret }: { serverPublic: Uint8Array; secret: Uint8Array }): void {
    const keyAlg = this.keyAlg!;
    const { privateKey, K_S, sigAlg } = this.hostKeyPair();
    const H = this.computeExchangeHash(K_S, clientPublic, serverPublic, secret);
    const signature = privateKey.sign(H, sigAlg);
    const reply = new SSHWriter(K_S.length + serverPublic.length + signature.length + 16)
      .string(K_S)
      .string(serverPublic)
      .string(signature)
      .finish();
    this.sendPacket(this.kexSpec!.family === "gex" ? MSG_KEX_DH_GEX_REPLY : MSG_KEXDH_REPLY, reply);
    this.keySetup(secret, H);
    this.sendNewKeys();
  }
}
