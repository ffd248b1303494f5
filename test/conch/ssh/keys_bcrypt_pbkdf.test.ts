import { test } from "node:test";
import assert from "node:assert/strict";
import { keys } from "@twisted-ts/conch/ssh";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

// OpenBSD's regress vectors for bcrypt_pbkdf (as also used by RustCrypto's bcrypt-pbkdf), plus
// key lengths OpenSSH asks for (48 = aes256-ctr key + IV, 44 = aes256-gcm), checked with pyca bcrypt.kdf.
const VECTORS: [Uint8Array, Uint8Array, number, string][] = [
  [enc("password"), enc("salt"), 4, "5bbf0cc293587f1c3635555c27796598d47e579071bf427e9d8fbe842aba34d9"],
  [enc("password"), Uint8Array.of(0), 4, "c12b566235eee04c212598970a579a67"],
  [Uint8Array.of(0), enc("salt"), 4, "6051be18c2f4f82cbf0efee5471b4bb9"],
  [enc("password\0"), enc("salt\0"), 4, "7410e44cf4fa07bfaac8a928b1727fac001375e7bf7384370f48efd121743050"],
  [enc("password"), enc("salt"), 1, "7aecf4a3148069a4e52b28a060c4da05492ede72bf0caa4f6a2a4e5f1252a24ccb8a85077baa90b67b3a2bd1b2bb0d1c"],
  [enc("correct horse"), Uint8Array.from({ length: 16 }, (_, i) => i), 16, "6bd628cd9202c5d0cb3e47dc1332be0162d3d4262dac8dac9f00998434479f36930c217fd05e33a7e77e207f"],
  [enc("x"), enc("y"), 2, "0fc379fe3c0b202a61b085393de56af56160c931722aba3da81b41782403b8d10cad7b667c198ac219a9b721b4f4b47a767126f73351849b1c3c79032711fef2"],
  [enc("pw"), new Uint8Array(16), 3, "7fd8388c544a31"],
];

test("bcrypt_pbkdf matches the published and known-answer vectors", () => {
  for (const [pass, salt, rounds, want] of VECTORS) {
    assert.equal(hex(keys.bcryptPbkdf(pass, salt, want.length / 2, rounds)), want, `${hex(pass)} ${hex(salt)} ${rounds}`);
  }
});

test("bcrypt_pbkdf rejects zero rounds and impossible lengths", () => {
  assert.throws(() => keys.bcryptPbkdf(enc("a"), enc("b"), 32, 0), RangeError);
  assert.throws(() => keys.bcryptPbkdf(enc("a"), enc("b"), 0, 1), RangeError);
  assert.throws(() => keys.bcryptPbkdf(enc("a"), enc("b"), 2048, 1), RangeError);
});
