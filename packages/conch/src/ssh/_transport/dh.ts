/**
 * Finite-field Diffie-Hellman for SSH (RFC 4253 §8, RFC 4419), without OpenSSL's parameter check.
 *
 * `createDiffieHellman(p, g)` runs `DH_check`, which tests p and (p-1)/2 for primality: 0.25 s
 * for a 2048-bit prime and about 30 s for an 8192-bit one, on the event loop, and a client can ask
 * for a fresh prime of the moduli file every connection. Our groups come from a trusted moduli file
 * or RFC 3526, and a client must trust the server's group anyway (RFC 4419 §6: OpenSSH's client
 * does not test it either), so the test buys nothing. A DH key imported from PKCS#8 is not
 * checked, so the two exponentiations (512-bit exponents) are all that is left: about 2 ms for
 * 2048 bits and 20 ms for 8192 bits here.
 */
import { createPrivateKey, createPublicKey, randomBytes } from "node:crypto";
import { KeyExchangeError } from "../../error.js";
import { bytesToBigint } from "../common.js";
import { DerReader, int, octets, oid, seq } from "../_keys/asn1.js";
import type { DHGroup } from "./dh_groups.js";

/** PKCS#3 dhKeyAgreement, the OID OpenSSL uses for DH keys without q. */
const OID_DH_KEY_AGREEMENT = "1.2.840.113549.1.3.1";

/** Private exponents have twice the bits of the strongest SSH cipher's security (256). */
const DH_PRIVATE_BITS = 512;

/** The bit length of a positive bigint. */
export function bitLength(n: bigint): number {
  return n.toString(2).length;
}

/** A private exponent of `DH_PRIVATE_BITS` bits (fewer for a tiny group), so 1 < x < p-1. */
function privateExponent(group: DHGroup): bigint {
  const xBits = Math.min(DH_PRIVATE_BITS, bitLength(group.p) - 2);
  const x = randomBytes(Math.ceil(xBits / 8));
  const extra = x.length * 8 - xBits;
  x[0] = (x[0]! & (0xff >> extra)) | (0x80 >> extra);
  return bytesToBigint(x);
}

/**
 * Checks that `group` can be used at all: an odd p of at least 3 bits, 1 < g < p-1. (Not that p
 * is prime: see the module comment.)
 */
export function checkGroup(group: DHGroup, what: string): void {
  if (group.p < 7n || (group.p & 1n) === 0n || group.g < 2n || group.g >= group.p - 1n) {
    throw new KeyExchangeError(`${what}: unusable group`);
  }
}

/** RFC 4253 §8: a public value outside 1 < v < p-1 gives a trivial or no secret. */
export function checkDhPublic(value: bigint, p: bigint, what: string): void {
  if (value <= 1n || value >= p - 1n) throw new KeyExchangeError(`${what} is out of range (must be 1 < ${what} < p-1)`);
}

/**
 * `base^x mod p`, computed by OpenSSL: a DH private key (p, base, x) imported from PKCS#8 has
 * base^x mod p as its public key. Not through `diffieHellman()`: it validates the peer's value,
 * and for the RFC 3526 groups, whose q OpenSSL knows, that is a full-size exponentiation
 * (y^q mod p: 150 ms at 8192 bits) which proves nothing our range check has not (in a safe-prime
 * group only 1 and p-1 have order below q).
 */
function modPow(p: bigint, base: bigint, x: bigint): bigint {
  const der = seq(int(0n), seq(oid(OID_DH_KEY_AGREEMENT), seq(int(p), int(base))), octets(int(x)));
  const privateKey = createPrivateKey({ key: Buffer.from(der), format: "der", type: "pkcs8" });
  const spki = createPublicKey(privateKey).export({ format: "der", type: "spki" });
  // SubjectPublicKeyInfo: SEQUENCE { AlgorithmIdentifier, BIT STRING { INTEGER y } }.
  const outer = new DerReader(new DerReader(spki).next(0x30).body);
  outer.next(0x30);
  const bitString = outer.next(0x03).body;
  return bytesToBigint(new DerReader(bitString.subarray(1)).next(0x02).body);
}

/** One side's key pair in a group: the private exponent and the public value g^x mod p. */
export interface DHKeyPair {
  readonly x: bigint;
  readonly publicValue: bigint;
}

/** A fresh key pair in `group` (the group is taken as given: see the module comment). */
export function dhKeyPair(group: DHGroup): DHKeyPair {
  const x = privateExponent(group);
  return { x, publicValue: modPow(group.p, group.g, x) };
}

/** The shared secret `peer^x mod p`, for a peer value already range-checked. */
export function dhShared(keyPair: DHKeyPair, group: DHGroup, peer: bigint): bigint {
  return modPow(group.p, peer, keyPair.x);
}

/** The server's half of a DH exchange: our public value f and the shared secret, for e. */
export function dhRespond(group: DHGroup, e: bigint): { f: bigint; shared: bigint } {
  checkDhPublic(e, group.p, "e");
  const kp = dhKeyPair(group);
  return { f: kp.publicValue, shared: dhShared(kp, group, e) };
}
