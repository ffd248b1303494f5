/**
 * Issue 11 item 3: the public keys a peer sends (host keys, userauth keys, authorized_keys lines)
 * stay within what a verify may cost: RSA moduli up to 16384 bits, RSA public exponents of at
 * most 32 bits, DSA primes up to 3072 bits, and RSA keys of at least RequiredRSASize bits where
 * they authenticate someone.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { Clock } from "@twisted-ts/internet/task";
import { portal as cportal } from "@twisted-ts/cred";
import { common, keys, userauth } from "@twisted-ts/conch/ssh";
import { checkers, error } from "@twisted-ts/conch";
import { FakeTransport, TestRealm } from "./_userauth_fakes.js";
import { sshPair } from "./_sshpair.js";

const { SSHWriter, NS, concatBytes } = common;

/** A random odd number of exactly `bits` bits. */
function oddOfBits(bits: number): bigint {
  let n = BigInt("0x" + randomBytes(Math.ceil(bits / 8)).toString("hex"));
  n &= (1n << BigInt(bits)) - 1n;
  return n | (1n << BigInt(bits - 1)) | 1n;
}

const rsaBlob = (e: bigint, n: bigint) => new SSHWriter().string("ssh-rsa").mpint(e).mpint(n).finish();
const isBadKey = (e: unknown) => e instanceof keys.BadKeyError;

test("ssh-rsa blob: a modulus of RSA_MAX_MODULUS_BITS is read, one bit more is refused", () => {
  assert.equal(keys.RSA_MAX_MODULUS_BITS, 16384);
  assert.equal(keys.Key.fromString(rsaBlob(65537n, oddOfBits(16384)), "blob").size(), 16384);
  assert.throws(() => keys.Key.fromString(rsaBlob(65537n, oddOfBits(16385)), "blob"), isBadKey);
});

test("ssh-rsa blob: a 256 KiB modulus is refused by its length, before it is converted", () => {
  const blob = new SSHWriter().string("ssh-rsa").mpint(65537n).string(new Uint8Array(256 * 1024).fill(0x7f)).finish();
  assert.throws(() => keys.Key.fromString(blob, "blob"), /longer than 16384 bits/);
});

test("ssh-rsa blob: the public exponent is odd, at least 3 and at most RSA_MAX_PUBLIC_EXPONENT_BITS bits", () => {
  assert.equal(keys.RSA_MAX_PUBLIC_EXPONENT_BITS, 32);
  const n = oddOfBits(2048);
  for (const e of [3n, 35n, 65537n, (1n << 32n) - 1n]) assert.doesNotThrow(() => keys.Key.fromString(rsaBlob(e, n), "blob"), String(e));
  // A 3072-bit e makes each verify with a 3072-bit key cost 16 ms.
  for (const e of [1n, 65536n, 1n << 32n, oddOfBits(33), oddOfBits(3072)]) {
    assert.throws(() => keys.Key.fromString(rsaBlob(e, n), "blob"), isBadKey, `e of ${e.toString(2).length} bits`);
  }
});

test("ssh-dss blob: a prime of DSA_MAX_PRIME_BITS is read, a longer one is refused", () => {
  assert.equal(keys.DSA_MAX_PRIME_BITS, 3072);
  const dss = (p: bigint) => new SSHWriter().string("ssh-dss").mpint(p).mpint(oddOfBits(256)).mpint(2n).mpint(oddOfBits(1000)).finish();
  assert.equal(keys.Key.fromString(dss(oddOfBits(3072)), "blob").size(), 3072);
  assert.throws(() => keys.Key.fromString(dss(oddOfBits(3073)), "blob"), isBadKey);
  assert.throws(() => keys.Key.fromString(dss(oddOfBits(8192)), "blob"), isBadKey);
});

const smallRsa = keys.Key.fromString(
  generateKeyPairSync("rsa", { modulusLength: 768 }).privateKey.export({ format: "pem", type: "pkcs1" }).toString(),
);

test("USERAUTH_REQUEST publickey: an RSA key below requiredRSASize (RequiredRSASize, 1024) is refused even when authorized", () => {
  assert.equal(keys.REQUIRED_RSA_SIZE, 1024);
  for (const required of [keys.REQUIRED_RSA_SIZE, 512]) {
    const p = new cportal.Portal(new TestRealm());
    p.registerChecker(new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [smallRsa.public()] })));
    const t = new FakeTransport({ isClient: false, portal: p, clock: new Clock() });
    const s = new userauth.SSHUserAuthServer();
    s.requiredRSASize = required;
    s.transport = t;
    s.serviceStarted();
    const query = concatBytes(NS("alice"), NS("ssh-connection"), NS("publickey"), Uint8Array.of(0), NS("rsa-sha2-256"), NS(smallRsa.public().blob()));
    s.packetReceived(userauth.MSG_USERAUTH_REQUEST, query);
    const answer = t.packets.at(-1)?.[0];
    assert.equal(answer, required === 512 ? userauth.MSG_USERAUTH_PK_OK : userauth.MSG_USERAUTH_FAILURE, `requiredRSASize ${required}`);
  }
});

test("KEXDH_REPLY: a server's RSA host key below the client's requiredRSASize ends the exchange", () => {
  const refused = sshPair({ hostKeys: [smallRsa], configure: (c) => (c.supportedPublicKeys = ["rsa-sha2-256"]) });
  assert.equal(refused.client.disconnectReason?.reasonCode, error.DISCONNECT_KEY_EXCHANGE_FAILED);
  assert.match(refused.client.disconnectReason?.message ?? "", /768-bit RSA key is below RequiredRSASize 1024/);
  const allowed = sshPair({
    hostKeys: [smallRsa],
    configure: (c) => {
      c.supportedPublicKeys = ["rsa-sha2-256"];
      c.requiredRSASize = 512;
    },
  });
  assert.equal(allowed.client.secureCount, 1, allowed.client.disconnectReason?.message);
});
