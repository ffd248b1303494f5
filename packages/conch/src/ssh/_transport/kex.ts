/**
 * SSH key exchange primitives, sans-IO: the one-round exchanges (fixed-group Diffie-Hellman,
 * group exchange once the group is known, ECDH on the NIST curves, X25519, the ML-KEM-768 + X25519
 * hybrid), the exchange hash and RFC 4253 §7.2 key derivation.
 *
 * Encodings:
 * - DH (RFC 4253 §8, RFC 4419, RFC 8268): e and f are mpints; K = mpint(g^xy mod p).
 * - ECDH (RFC 5656 §4): Q_C and Q_S are strings holding uncompressed points; K = mpint(x of the
 *   shared point).
 * - curve25519-sha256 (RFC 8731): Q_C and Q_S are 32-byte strings; K = mpint of the X25519 output
 *   read as an unsigned big-endian number; an all-zero output is refused.
 * - mlkem768x25519-sha256 (draft-ietf-sshm-mlkem-hybrid-kex, OpenSSH 9.9): C_INIT = ML-KEM-768
 *   encapsulation key (1184 bytes) || X25519 public (32); S_REPLY = ML-KEM ciphertext (1088) ||
 *   X25519 public (32); K = string(SHA-256(ML-KEM shared secret || X25519 shared secret)).
 * - sntrup761x25519-sha512 and its @openssh.com alias (OpenSSH PROTOCOL, draft-josefsson-ntruprime-ssh):
 *   C_INIT = sntrup761 public key (1158) || X25519 public (32); S_REPLY = sntrup761 ciphertext
 *   (1039) || X25519 public (32); K = string(SHA-512(sntrup761 shared secret || X25519 shared
 *   secret)), the same combiner as the ML-KEM hybrid with SHA-512.
 * - mlkem768nistp256-sha256 (draft-ietf-sshm-mlkem-hybrid-kex): as mlkem768x25519-sha256 with ECDH
 *   on P-256 for X25519: uncompressed 65-byte points, the 32-byte x coordinate as its secret.
 */
import {
  createECDH,
  createHash,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
} from "node:crypto";
import { loadMlKem, mlKem768, mlKemLoaded } from "./mlkem.js";
import { sntrup761Decapsulate, sntrup761Encapsulate, sntrup761KeyPair } from "./sntrup761.js";
import { webAssembly } from "./wasm.js";
import { KeyExchangeError } from "../../error.js";
import { bigintToBytes, bytesToBigint } from "../common.js";
import { GROUP1, GROUP14, GROUP15, GROUP16, GROUP17, GROUP18, type DHGroup } from "./dh_groups.js";
import { bitLength, checkDhPublic, checkGroup, dhKeyPair, dhRespond, dhShared, type DHKeyPair } from "./dh.js";
import { chooseGexGroup } from "./moduli.js";
import { sharedDhPool } from "./dh_pool.js";

export { parseModuli, chooseGexGroup } from "./moduli.js";
export { GROUP1, GROUP14, GROUP16, GROUP18 } from "./dh_groups.js";
export type { DHGroup } from "./dh_groups.js";
export { bitLength, checkDhPublic, checkGroup, dhKeyPair, dhRespond, dhShared } from "./dh.js";
export type { DHKeyPair } from "./dh.js";
export { dhPoolIdle, dhPoolPending } from "./dh_pool.js";
export { mlKemLoaded } from "./mlkem.js";

export type KexHashName = "sha1" | "sha256" | "sha384" | "sha512";

export interface KexSpec {
  readonly name: string;
  readonly hash: KexHashName;
  readonly family: "dh" | "ecdh" | "kem" | "gex";
  readonly enabledByDefault: boolean;
}

function spec(name: string, hash: KexHashName, family: KexSpec["family"], enabledByDefault: boolean): KexSpec {
  return Object.freeze({ name, hash, family, enabledByDefault });
}

/** Every key exchange method implemented, by wire name. */
export const KEX_ALGORITHMS: Readonly<Record<string, KexSpec>> = Object.freeze({
  "mlkem768x25519-sha256": spec("mlkem768x25519-sha256", "sha256", "kem", true),
  "sntrup761x25519-sha512": spec("sntrup761x25519-sha512", "sha512", "kem", true),
  "sntrup761x25519-sha512@openssh.com": spec("sntrup761x25519-sha512@openssh.com", "sha512", "kem", true),
  "curve25519-sha256": spec("curve25519-sha256", "sha256", "ecdh", true),
  "curve25519-sha256@libssh.org": spec("curve25519-sha256@libssh.org", "sha256", "ecdh", true),
  "ecdh-sha2-nistp256": spec("ecdh-sha2-nistp256", "sha256", "ecdh", true),
  "ecdh-sha2-nistp384": spec("ecdh-sha2-nistp384", "sha384", "ecdh", true),
  "ecdh-sha2-nistp521": spec("ecdh-sha2-nistp521", "sha512", "ecdh", true),
  "diffie-hellman-group-exchange-sha256": spec("diffie-hellman-group-exchange-sha256", "sha256", "gex", true),
  "diffie-hellman-group16-sha512": spec("diffie-hellman-group16-sha512", "sha512", "dh", true),
  "diffie-hellman-group18-sha512": spec("diffie-hellman-group18-sha512", "sha512", "dh", true),
  "diffie-hellman-group14-sha256": spec("diffie-hellman-group14-sha256", "sha256", "dh", true),
  "diffie-hellman-group14-sha1": spec("diffie-hellman-group14-sha1", "sha1", "dh", false),
  "diffie-hellman-group1-sha1": spec("diffie-hellman-group1-sha1", "sha1", "dh", false),
  "diffie-hellman-group-exchange-sha1": spec("diffie-hellman-group-exchange-sha1", "sha1", "gex", false),
  // Off by default until it has completed an exchange with another implementation.
  "mlkem768nistp256-sha256": spec("mlkem768nistp256-sha256", "sha256", "kem", false),
});

/** The default preference, strongest first (only the methods enabled by default). */
export const DEFAULT_KEX_ORDER: readonly string[] = Object.freeze(
  Object.values(KEX_ALGORITHMS)
    .filter((s) => s.enabledByDefault)
    .map((s) => s.name),
);

/** The client side of a one-round exchange. */
export interface KexClient {
  /** Body of the client's public field: mpint body of e, or string body of Q_C / C_INIT. */
  readonly clientPublic: Uint8Array;
  /** Validates the server's public field body and returns K encoded for the hash and KDF. */
  computeSecret(serverPublic: Uint8Array): Uint8Array;
}

function kexSpec(name: string): KexSpec {
  const s = KEX_ALGORITHMS[name];
  if (s === undefined) throw new Error(`unknown key exchange method ${JSON.stringify(name)}`);
  return s;
}

// ---- encodings ----

/** The mpint body (no length) of an unsigned big-endian magnitude. */
function mpintBodyOf(magnitude: Uint8Array): Uint8Array {
  let i = 0;
  while (i < magnitude.length && magnitude[i] === 0) i++;
  const body = magnitude.subarray(i);
  if (body.length > 0 && (body[0]! & 0x80) !== 0) {
    const out = new Uint8Array(body.length + 1);
    out.set(body, 1);
    return out;
  }
  return Uint8Array.from(body);
}

/** A full mpint (uint32 length + body) of an unsigned big-endian magnitude. */
function mpintOf(magnitude: Uint8Array): Uint8Array {
  const body = mpintBodyOf(magnitude);
  const out = new Uint8Array(4 + body.length);
  new DataView(out.buffer).setUint32(0, body.length);
  out.set(body, 4);
  return out;
}

/** A full SSH string of `data`. */
function stringOf(data: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + data.length);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set(data, 4);
  return out;
}

/**
 * Reads a DH public value (an mpint body) of `group`, refusing a negative one and, before it is
 * converted, one longer than p (a 256 KiB value would cost 10 ms to convert alone).
 */
function readDhPublic(body: Uint8Array, group: DHGroup, what: string): bigint {
  if (body.length > 0 && (body[0]! & 0x80) !== 0) throw new KeyExchangeError(`${what} is negative`);
  if (body.length > Math.ceil(bitLength(group.p) / 8) + 1) throw new KeyExchangeError(`${what} is longer than the group's prime`);
  const value = bytesToBigint(body);
  checkDhPublic(value, group.p, what);
  return value;
}

// ---- finite-field Diffie-Hellman ----

const FIXED_GROUPS: Readonly<Record<string, DHGroup>> = {
  "diffie-hellman-group1-sha1": GROUP1,
  "diffie-hellman-group14-sha1": GROUP14,
  "diffie-hellman-group14-sha256": GROUP14,
  "diffie-hellman-group16-sha512": GROUP16,
  "diffie-hellman-group18-sha512": GROUP18,
};

const FALLBACK_GEX_GROUPS = new Map<number, Array<DHGroup>>([
  [2048, [GROUP14]],
  [3072, [GROUP15]],
  [4096, [GROUP16]],
  [6144, [GROUP17]],
  [8192, [GROUP18]],
]);

/**
 * A group for a group exchange request when no moduli file is available: the RFC 3526 group
 * (2048 to 8192 bits) that `chooseGexGroup` would pick, or undefined when none is within range.
 */
export function fixedGroupFor(min: number, preferred: number, max: number): DHGroup | undefined {
  return chooseGexGroup(FALLBACK_GEX_GROUPS, min, preferred, max);
}

function groupFor(s: KexSpec, group: DHGroup | undefined): DHGroup {
  if (s.family === "gex") {
    if (group === undefined) throw new Error(`${s.name} needs the group from KEX_DH_GEX_GROUP`);
    checkGroup(group, s.name);
    return group;
  }
  return FIXED_GROUPS[s.name]!;
}

/** The server's reply field (mpint body of f) and K (mpint), from its half of a DH exchange. */
function dhReply({ f, shared }: { f: bigint; shared: bigint }): { serverPublic: Uint8Array; secret: Uint8Array } {
  return { serverPublic: mpintBodyOf(bigintToBytes(f)), secret: mpintOf(bigintToBytes(shared)) };
}

class DhClient implements KexClient {
  readonly clientPublic: Uint8Array;
  private readonly keyPair: DHKeyPair;
  constructor(private readonly group: DHGroup) {
    this.keyPair = dhKeyPair(group);
    this.clientPublic = mpintBodyOf(bigintToBytes(this.keyPair.publicValue));
  }
  computeSecret(serverPublic: Uint8Array): Uint8Array {
    const f = readDhPublic(serverPublic, this.group, "f");
    return mpintOf(bigintToBytes(dhShared(this.keyPair, this.group, f)));
  }
}

// ---- ECDH on the NIST curves ----

const NIST_CURVES: Readonly<Record<string, { curve: string; pointLength: number }>> = {
  "ecdh-sha2-nistp256": { curve: "prime256v1", pointLength: 65 },
  "ecdh-sha2-nistp384": { curve: "secp384r1", pointLength: 97 },
  "ecdh-sha2-nistp521": { curve: "secp521r1", pointLength: 133 },
};

/** The raw ECDH shared secret: the x coordinate, fixed length (OpenSSL's output). */
function ecdhShared(ecdh: ReturnType<typeof createECDH>, peer: Uint8Array, pointLength: number, what: string): Uint8Array {
  if (peer.length !== pointLength || peer[0] !== 0x04) {
    throw new KeyExchangeError(`${what} is not an uncompressed ${pointLength}-byte point`);
  }
  try {
    return ecdh.computeSecret(peer);
  } catch {
    throw new KeyExchangeError(`${what} is not a point on the curve`);
  }
}

function ecdhSecret(ecdh: ReturnType<typeof createECDH>, peer: Uint8Array, pointLength: number, what: string): Uint8Array {
  return mpintOf(ecdhShared(ecdh, peer, pointLength, what));
}

class EcdhClient implements KexClient {
  readonly clientPublic: Uint8Array;
  private readonly ecdh: ReturnType<typeof createECDH>;
  constructor(private readonly params: { curve: string; pointLength: number }) {
    this.ecdh = createECDH(params.curve);
    this.clientPublic = Uint8Array.from(this.ecdh.generateKeys());
  }
  computeSecret(serverPublic: Uint8Array): Uint8Array {
    return ecdhSecret(this.ecdh, serverPublic, this.params.pointLength, "Q_S");
  }
}

// ---- X25519 (RFC 7748, RFC 8731) ----

// Keys go in and out as JWK: OpenSSL's DER encoders and decoders cost several times the X25519
// arithmetic itself (about 150 us against 40 us here).
function x25519KeyPair(): { privateKey: KeyObject; publicRaw: Uint8Array } {
  const { privateKey, publicKey } = generateKeyPairSync("x25519");
  const x = publicKey.export({ format: "jwk" }).x;
  return { privateKey, publicRaw: Uint8Array.from(Buffer.from(x ?? "", "base64url")) };
}

/** The raw 32-byte X25519 shared secret; refuses a bad length and an all-zero result. */
function x25519Shared(privateKey: KeyObject, peer: Uint8Array, what: string): Uint8Array {
  if (peer.length !== 32) throw new KeyExchangeError(`${what} must be 32 bytes, got ${peer.length}`);
  let shared: Buffer;
  try {
    const x = Buffer.from(peer.buffer, peer.byteOffset, peer.length).toString("base64url");
    const publicKey = createPublicKey({ key: { kty: "OKP", crv: "X25519", x }, format: "jwk" });
    shared = diffieHellman({ privateKey, publicKey });
  } catch {
    throw new KeyExchangeError(`${what} gives no usable X25519 shared secret`);
  }
  let acc = 0;
  for (const b of shared) acc |= b;
  if (acc === 0) throw new KeyExchangeError(`${what} gives an all-zero X25519 shared secret`);
  return shared;
}

class X25519Client implements KexClient {
  readonly clientPublic: Uint8Array;
  private readonly privateKey: KeyObject;
  constructor() {
    const kp = x25519KeyPair();
    this.privateKey = kp.privateKey;
    this.clientPublic = kp.publicRaw;
  }
  computeSecret(serverPublic: Uint8Array): Uint8Array {
    return mpintOf(x25519Shared(this.privateKey, serverPublic, "Q_S"));
  }
}

// ---- post-quantum hybrids: a KEM beside X25519 or ECDH on P-256 ----

/** The post-quantum KEM of a hybrid method, with its byte sizes. */
interface PqKem {
  readonly label: string;
  readonly publicKeyBytes: number;
  readonly cipherTextBytes: number;
  keyPair(): { publicKey: Uint8Array; secretKey: Uint8Array };
  /** Throws when the public key is unusable (ML-KEM's modulus check). */
  encapsulate(publicKey: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
  /** For a KEM loaded on demand: undefined once loaded, else the promise of its loading. */
  ready?(): Promise<unknown> | undefined;
  /** Runs only where WebAssembly does. */
  readonly needsWebAssembly?: boolean;
}

/** The classical half: one fresh key pair per exchange, its public value and the raw shared secret. */
interface ClassicalHalf {
  readonly publicBytes: number;
  generate(): { publicRaw: Uint8Array; shared(peer: Uint8Array, what: string): Uint8Array };
}

/** A hybrid method: K = string(hash(PQ shared secret || classical shared secret)). */
interface Hybrid {
  readonly kem: PqKem;
  readonly classical: ClassicalHalf;
  readonly hash: "sha256" | "sha512";
}

const MLKEM768: PqKem = {
  label: "ML-KEM-768",
  publicKeyBytes: 1184,
  cipherTextBytes: 1088,
  keyPair: () => mlKem768().keygen(),
  encapsulate: (pk) => mlKem768().encapsulate(pk),
  decapsulate: (ct, sk) => mlKem768().decapsulate(ct, sk),
  ready: () => (mlKemLoaded() ? undefined : loadMlKem()),
};

const SNTRUP761: PqKem = {
  label: "sntrup761",
  publicKeyBytes: 1158,
  cipherTextBytes: 1039,
  keyPair: () => sntrup761KeyPair(),
  encapsulate: (pk) => sntrup761Encapsulate(pk),
  decapsulate: (ct, sk) => sntrup761Decapsulate(ct, sk),
  // Its kernels are WebAssembly: without it (node --jitless) the method is not offered by default,
  // and fails the exchange when it is negotiated anyway (kexReady).
  needsWebAssembly: true,
};

const X25519_HALF: ClassicalHalf = {
  publicBytes: 32,
  generate() {
    const kp = x25519KeyPair();
    return { publicRaw: kp.publicRaw, shared: (peer, what) => x25519Shared(kp.privateKey, peer, what) };
  },
};

/** ECDH on P-256 (draft-ietf-sshm-mlkem-hybrid-kex): uncompressed points, the 32-byte x as secret. */
const P256_HALF: ClassicalHalf = {
  publicBytes: 65,
  generate() {
    const ecdh = createECDH("prime256v1");
    return { publicRaw: Uint8Array.from(ecdh.generateKeys()), shared: (peer, what) => ecdhShared(ecdh, peer, 65, what) };
  },
};

const HYBRIDS: Readonly<Record<string, Hybrid>> = {
  "mlkem768x25519-sha256": { kem: MLKEM768, classical: X25519_HALF, hash: "sha256" },
  "mlkem768nistp256-sha256": { kem: MLKEM768, classical: P256_HALF, hash: "sha256" },
  "sntrup761x25519-sha512": { kem: SNTRUP761, classical: X25519_HALF, hash: "sha512" },
  "sntrup761x25519-sha512@openssh.com": { kem: SNTRUP761, classical: X25519_HALF, hash: "sha512" },
};

function hybridSecret(hybrid: Hybrid, pq: Uint8Array, cl: Uint8Array): Uint8Array {
  return stringOf(createHash(hybrid.hash).update(pq).update(cl).digest());
}

class HybridClient implements KexClient {
  readonly clientPublic: Uint8Array;
  private readonly kemSecret: Uint8Array;
  private readonly classicalShared: (peer: Uint8Array, what: string) => Uint8Array;
  constructor(private readonly hybrid: Hybrid) {
    const { kem, classical } = hybrid;
    const pair = kem.keyPair();
    const cl = classical.generate();
    this.kemSecret = pair.secretKey;
    this.classicalShared = cl.shared;
    const pub = new Uint8Array(kem.publicKeyBytes + classical.publicBytes);
    pub.set(pair.publicKey, 0);
    pub.set(cl.publicRaw, kem.publicKeyBytes);
    this.clientPublic = pub;
  }
  computeSecret(serverPublic: Uint8Array): Uint8Array {
    const { kem, classical } = this.hybrid;
    const length = kem.cipherTextBytes + classical.publicBytes;
    if (serverPublic.length !== length) {
      throw new KeyExchangeError(`the ${kem.label} hybrid reply must be ${length} bytes, got ${serverPublic.length}`);
    }
    const cl = this.classicalShared(serverPublic.subarray(kem.cipherTextBytes), "the server's classical key");
    let pq: Uint8Array;
    try {
      pq = kem.decapsulate(serverPublic.subarray(0, kem.cipherTextBytes), this.kemSecret);
    } catch {
      throw new KeyExchangeError(`the ${kem.label} ciphertext cannot be decapsulated`);
    }
    return hybridSecret(this.hybrid, pq, cl);
  }
}

/** The server side of a hybrid: encapsulate to the client's KEM key, answer its classical key. */
function hybridRespond(hybrid: Hybrid, clientPublic: Uint8Array): { serverPublic: Uint8Array; secret: Uint8Array } {
  const { kem, classical } = hybrid;
  if (clientPublic.length !== kem.publicKeyBytes + classical.publicBytes) {
    throw new KeyExchangeError(
      `the ${kem.label} hybrid client init must be ${kem.publicKeyBytes + classical.publicBytes} bytes, got ${clientPublic.length}`,
    );
  }
  const ours = classical.generate();
  const cl = ours.shared(clientPublic.subarray(kem.publicKeyBytes), "the client's classical key");
  let enc: { cipherText: Uint8Array; sharedSecret: Uint8Array };
  try {
    enc = kem.encapsulate(clientPublic.subarray(0, kem.publicKeyBytes));
  } catch {
    throw new KeyExchangeError(`the client's ${kem.label} encapsulation key is invalid`);
  }
  const serverPublic = new Uint8Array(kem.cipherTextBytes + classical.publicBytes);
  serverPublic.set(enc.cipherText, 0);
  serverPublic.set(ours.publicRaw, kem.cipherTextBytes);
  return { serverPublic, secret: hybridSecret(hybrid, enc.sharedSecret, cl) };
}

// ---- entry points ----

/**
 * Undefined when method `name` can run at once; otherwise starts loading what it needs (ML-KEM)
 * and returns a promise that settles when it is loaded, rejecting with a `KeyExchangeError` when
 * it cannot be. Throws a `KeyExchangeError` for a method this runtime cannot run. The transport waits on it, input held in order, before the step that needs it.
 */
export function kexReady(name: string): Promise<unknown> | undefined {
  const kem = HYBRIDS[name]?.kem;
  if (kem === undefined) return undefined;
  if (!kexRunsHere(name)) throw new KeyExchangeError(`${kem.label} needs WebAssembly, which this runtime lacks (node --jitless?)`);
  return kem.ready?.();
}

/** False for a method this runtime cannot run (sntrup761 without WebAssembly). */
export function kexRunsHere(name: string): boolean {
  return HYBRIDS[name]?.kem.needsWebAssembly !== true || webAssembly() !== undefined;
}

/**
 * The client side of method `name`. Group exchange methods need the group from
 * KEX_DH_GEX_GROUP; the fixed-group methods ignore `group`.
 */
export function createKexClient(name: string, group?: DHGroup): KexClient {
  const s = kexSpec(name);
  switch (s.family) {
    case "dh":
    case "gex":
      return new DhClient(groupFor(s, group));
    case "ecdh": {
      const nist = NIST_CURVES[name];
      return nist !== undefined ? new EcdhClient(nist) : new X25519Client();
    }
    case "kem":
      return new HybridClient(HYBRIDS[name]!);
  }
}

/** The server side: from the client's public field body, our reply body and the encoded K. */
export function kexServerRespond(
  name: string,
  clientPublic: Uint8Array,
  group?: DHGroup,
): { serverPublic: Uint8Array; secret: Uint8Array } {
  const s = kexSpec(name);
  switch (s.family) {
    case "dh":
    case "gex": {
      const grp = groupFor(s, group);
      return dhReply(dhRespond(grp, readDhPublic(clientPublic, grp, "e")));
    }
    case "ecdh": {
      const nist = NIST_CURVES[name];
      if (nist !== undefined) {
        const ecdh = createECDH(nist.curve);
        const serverPublic = Uint8Array.from(ecdh.generateKeys());
        return { serverPublic, secret: ecdhSecret(ecdh, clientPublic, nist.pointLength, "Q_C") };
      }
      const kp = x25519KeyPair();
      return { serverPublic: kp.publicRaw, secret: mpintOf(x25519Shared(kp.privateKey, clientPublic, "Q_C")) };
    }
    case "kem":
      return hybridRespond(HYBRIDS[name]!, clientPublic);
  }
}

/**
 * The finite-field group the server side of `name` computes in, undefined for the elliptic-curve
 * and KEM methods (whose cost does not depend on the peer).
 */
export function kexDhGroup(name: string, group?: DHGroup): DHGroup | undefined {
  const s = kexSpec(name);
  return s.family === "dh" || s.family === "gex" ? groupFor(s, group) : undefined;
}

/** `kexServerRespond` for a finite-field method, with the arithmetic on the worker thread. */
export async function kexServerRespondOffThread(
  name: string,
  clientPublic: Uint8Array,
  group?: DHGroup,
): Promise<{ serverPublic: Uint8Array; secret: Uint8Array }> {
  const grp = kexDhGroup(name, group);
  if (grp === undefined) throw new Error(`${name} is not a Diffie-Hellman method`);
  const e = readDhPublic(clientPublic, grp, "e");
  return dhReply(await sharedDhPool.respond(grp, e));
}

function hashNameOf(name: string): KexHashName {
  if (name === "sha1" || name === "sha256" || name === "sha384" || name === "sha512") return name;
  return kexSpec(name).hash;
}

/** The exchange hash of method `name` (or a hash name) over `data`. */
export function kexHash(name: string, data: Uint8Array): Uint8Array {
  return createHash(hashNameOf(name)).update(data).digest();
}

/**
 * RFC 4253 §7.2: `HASH(K || H || letter || session_id)`, extended with `HASH(K || H || K1 || …)`
 * until `length` bytes. `K_encoded` is K as it goes into the hash (mpint or string, with its
 * length prefix). `hashName` is a hash name or a key exchange method name.
 */
export function deriveKey(
  hashName: string,
  K_encoded: Uint8Array,
  H: Uint8Array,
  letter: string,
  sessionId: Uint8Array,
  length: number,
): Uint8Array {
  const hash = hashNameOf(hashName);
  if (letter.length !== 1) throw new Error(`key derivation letter must be one character, got ${JSON.stringify(letter)}`);
  const out = new Uint8Array(length);
  const first = createHash(hash).update(K_encoded).update(H).update(letter, "latin1").update(sessionId).digest();
  out.set(first.subarray(0, Math.min(length, first.length)));
  let have = first.length;
  while (have < length) {
    const next = createHash(hash).update(K_encoded).update(H).update(out.subarray(0, have)).digest();
    out.set(next.subarray(0, Math.min(length - have, next.length)), have);
    have += next.length;
  }
  return out;
}
