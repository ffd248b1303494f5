/**
 * ML-KEM-768, the post-quantum half of mlkem768x25519-sha256, against published known answers.
 *
 * C2SP's CCTV (https://c2sp.org/CCTV/ML-KEM) publishes "accumulated" vectors for final FIPS 203:
 * 10,000 key generations, encapsulations and decapsulations (of the real ciphertext and of a random
 * one, which exercises implicit rejection) driven by one SHAKE-128 stream, with every output
 * absorbed into a second SHAKE-128 whose first 32 bytes are the published hash. The hybrid's
 * combiner and wire format are checked in kex.test.ts; this file checks the KEM it is built on.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { T } from "./_load.js";

/** CCTV's hash for 10,000 consecutive ML-KEM-768 tests (FIPS 203 final). */
const CCTV_ML_KEM_768_10K = "f959d18d3d1180121433bf0e05f11e7908cf9d03edc150b2b07cb90bef5bc1c1";

const EK = 1184;
const CT = 1088;

test("ML-KEM-768 matches C2SP CCTV's accumulated vectors (10,000 tests, FIPS 203 final)", () => {
  // The hybrid key exchange really runs this ML-KEM: a client public value is an ML-KEM-768
  // encapsulation key followed by an X25519 key.
  assert.equal(T.createKexClient("mlkem768x25519-sha256").clientPublic.length, EK + 32);

  const tests = 10_000;
  const drawn = 32 + 32 + 32 + CT; // d, z, m, and a random ciphertext for each test
  // The RNG is SHAKE-128 of the empty string, read as one stream: squeezing it all at once gives
  // the same bytes as squeezing it piece by piece.
  const rng = createHash("shake128", { outputLength: tests * drawn }).digest();
  assert.equal(rng.subarray(0, 16).toString("hex"), "7f9c2ba4e88f827d616045507605853e");
  const acc = createHash("shake128", { outputLength: 32 });
  for (let i = 0, at = 0; i < tests; i++, at += drawn) {
    const dz = rng.subarray(at, at + 64);
    const m = rng.subarray(at + 64, at + 96);
    const randomCt = rng.subarray(at + 96, at + drawn);
    const { publicKey, secretKey } = ml_kem768.keygen(dz);
    const { cipherText, sharedSecret } = ml_kem768.encapsulate(publicKey, m);
    const decapsulated = ml_kem768.decapsulate(cipherText, secretKey);
    if (!Buffer.from(decapsulated).equals(sharedSecret)) {
      assert.fail(`test ${i}: decapsulation gave a different shared secret`);
    }
    acc.update(publicKey).update(secretKey).update(cipherText).update(sharedSecret);
    acc.update(ml_kem768.decapsulate(randomCt, secretKey));
  }
  assert.equal(acc.digest("hex"), CCTV_ML_KEM_768_10K);
});
