/**
 * Streamlined NTRU Prime 761, the post-quantum half of sntrup761x25519-sha512, against the NTRU
 * Prime submission's known answers.
 *
 * The submission's KAT (the NIST PQCgenKAT_kem procedure) seeds an AES-256 CTR_DRBG with the bytes
 * 0..47, draws a 48-byte seed per test, reseeds the DRBG with it and runs key generation,
 * encapsulation and decapsulation on its output. liboqs publishes SHA-256 digests of that output
 * (tests/KATs/kem/kats.json, "sntrup761"): "single" over test 0 alone, "all" over the 100 tests
 * joined by blank lines, each test as `count/seed/pk/sk/ct/ss` lines in upper-case hex.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createCipheriv, createHash } from "node:crypto";
import { T } from "./_load.js";

const KAT_SINGLE = "afc42c3a5b10f4ef69654250097ebda9b9564570f4086744b24a6daf2bd1f89a";
const KAT_ALL = "36e1e53d4e6e295e8fb804449958ad9a3719aa350e91933c65791b9117382d57";

/** NIST's AES-256 CTR_DRBG without a derivation function, as the KAT generator uses it. */
class NistDrbg {
  private key = new Uint8Array(32);
  private v = new Uint8Array(16);
  constructor(entropy: Uint8Array) {
    this.update(entropy);
  }
  private block(): Uint8Array {
    for (let i = 15; i >= 0; i--) {
      this.v[i] = (this.v[i]! + 1) & 0xff;
      if (this.v[i] !== 0) break;
    }
    const aes = createCipheriv("aes-256-ecb", this.key, null).setAutoPadding(false);
    return aes.update(this.v);
  }
  private update(data: Uint8Array | null): void {
    const t = new Uint8Array(48);
    for (let i = 0; i < 3; i++) t.set(this.block(), 16 * i);
    if (data !== null) for (let i = 0; i < 48; i++) t[i] = t[i]! ^ data[i]!;
    this.key = t.slice(0, 32);
    this.v = t.slice(32, 48);
  }
  /** randombytes(): each call squeezes whole blocks, then updates the state. */
  bytes = (n: number): Uint8Array => {
    const out = new Uint8Array(n);
    for (let at = 0; at < n; at += 16) out.set(this.block().subarray(0, Math.min(16, n - at)), at);
    this.update(null);
    return out;
  };
}

const H = (b: Uint8Array) => Buffer.from(b).toString("hex").toUpperCase();

function katEntries(count: number): string[] {
  const entropy = Uint8Array.from({ length: 48 }, (_, i) => i);
  const outer = new NistDrbg(entropy);
  const entries: string[] = [];
  for (let c = 0; c < count; c++) {
    const seed = outer.bytes(48);
    const drbg = new NistDrbg(seed);
    const { publicKey, secretKey } = T.sntrup761KeyPair(drbg.bytes);
    const { cipherText, sharedSecret } = T.sntrup761Encapsulate(publicKey, drbg.bytes);
    assert.equal(H(T.sntrup761Decapsulate(cipherText, secretKey)), H(sharedSecret), `test ${c}: decapsulation agrees`);
    entries.push(`count = ${c}\nseed = ${H(seed)}\npk = ${H(publicKey)}\nsk = ${H(secretKey)}\nct = ${H(cipherText)}\nss = ${H(sharedSecret)}\n`);
  }
  return entries;
}

const sha256 = (s: string) => createHash("sha256").update(s).digest("hex");

test("sntrup761 reproduces the submission's first known answer (liboqs 'single' digest)", () => {
  const [first] = katEntries(1);
  assert.ok(first!.startsWith("count = 0\nseed = 061550234D158C5EC95595FE04EF7A25767F2E24CC2BC479D09D86DC9ABCFDE7056A8C266F9EF97ED08541DBD2E1FFA1\n"));
  assert.equal(sha256(first!), KAT_SINGLE);
});

test("sntrup761 reproduces all 100 of the submission's known answers (liboqs 'all' digest)", () => {
  assert.equal(sha256(katEntries(100).join("\n")), KAT_ALL);
});

test("sntrup761 sizes are the specification's: pk 1158, sk 1763, ct 1039, ss 32", () => {
  const { publicKey, secretKey } = T.sntrup761KeyPair();
  const { cipherText, sharedSecret } = T.sntrup761Encapsulate(publicKey);
  assert.deepEqual(
    [publicKey.length, secretKey.length, cipherText.length, sharedSecret.length],
    [T.SNTRUP761_PUBLIC_KEY_BYTES, T.SNTRUP761_SECRET_KEY_BYTES, T.SNTRUP761_CIPHERTEXT_BYTES, T.SNTRUP761_SHARED_SECRET_BYTES],
  );
  assert.deepEqual([publicKey.length, secretKey.length, cipherText.length, sharedSecret.length], [1158, 1763, 1039, 32]);
  assert.throws(() => T.sntrup761Encapsulate(publicKey.subarray(1)), RangeError);
  assert.throws(() => T.sntrup761Decapsulate(cipherText.subarray(1), secretKey), RangeError);
  assert.throws(() => T.sntrup761Decapsulate(cipherText, secretKey.subarray(1)), RangeError);
});

test("sntrup761 decapsulates a tampered ciphertext to the implicit-rejection secret, not an error", () => {
  const drbg = new NistDrbg(new Uint8Array(48).fill(7));
  const { publicKey, secretKey } = T.sntrup761KeyPair(drbg.bytes);
  const { cipherText, sharedSecret } = T.sntrup761Encapsulate(publicKey, drbg.bytes);
  // rho sits after f, 1/g (191 bytes each) and the public key in the secret key.
  const rho = secretKey.subarray(2 * 191 + 1158, 3 * 191 + 1158);
  const hash = (b: number, ...parts: Uint8Array[]) => {
    const h = createHash("sha512").update(Uint8Array.of(b));
    for (const part of parts) h.update(part);
    return h.digest().subarray(0, 32);
  };
  // One flipped bit in the rounded polynomial, and one in the confirmation hash.
  for (const at of [0, 500, 1006, 1007, 1038]) {
    const tampered = Uint8Array.from(cipherText);
    tampered[at] = tampered[at]! ^ 1;
    const k = T.sntrup761Decapsulate(tampered, secretKey);
    assert.notEqual(H(k), H(sharedSecret), `byte ${at}`);
    // HashSession(0, rho, c) = Hash_0(Hash_3(rho) || c)
    assert.equal(H(k), H(hash(0, hash(3, rho), tampered)), `byte ${at}`);
  }
  // The genuine ciphertext still gives HashSession(1, r, c), the encapsulated secret.
  assert.equal(H(T.sntrup761Decapsulate(cipherText, secretKey)), H(sharedSecret));
});

test("sntrup761 round trips: fresh key pairs and encapsulations from the system's randomness agree", () => {
  for (let i = 0; i < 8; i++) {
    const { publicKey, secretKey } = T.sntrup761KeyPair();
    const { cipherText, sharedSecret } = T.sntrup761Encapsulate(publicKey);
    assert.equal(H(T.sntrup761Decapsulate(cipherText, secretKey)), H(sharedSecret), `round ${i}`);
    // The same ciphertext under another key pair's secret key gives that key's rejection secret.
    const other = T.sntrup761KeyPair();
    const rho = other.secretKey.subarray(2 * 191 + 1158, 3 * 191 + 1158);
    const hash = (b: number, ...parts: Uint8Array[]) => {
      const h = createHash("sha512").update(Uint8Array.of(b));
      for (const part of parts) h.update(part);
      return h.digest().subarray(0, 32);
    };
    assert.equal(H(T.sntrup761Decapsulate(cipherText, other.secretKey)), H(hash(0, hash(3, rho), cipherText)), `round ${i}`);
  }
});

test("sntrup761 key generation discards a g with no inverse mod 3 and draws again", () => {
  // 4p bytes of 0x20000000 words draw g = 0 (each word is in the middle third), never invertible.
  const zeroG = new Uint8Array(4 * 761);
  new DataView(zeroG.buffer).setUint32(0, 0x20000000, true);
  for (let i = 4; i < zeroG.length; i += 4) zeroG.set(zeroG.subarray(0, 4), i);
  const seed = new Uint8Array(48).fill(9);
  const plain = new NistDrbg(seed);
  const prefixed = new NistDrbg(seed);
  let first = true;
  const withZeroG = (n: number): Uint8Array => {
    if (!first) return prefixed.bytes(n);
    first = false;
    assert.equal(n, zeroG.length);
    return zeroG;
  };
  const expected = T.sntrup761KeyPair(plain.bytes);
  const got = T.sntrup761KeyPair(withZeroG);
  assert.equal(first, false);
  assert.equal(H(got.publicKey), H(expected.publicKey));
  assert.equal(H(got.secretKey), H(expected.secretKey));
});
