import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { poly1305 as noblePoly1305 } from "@noble/ciphers/_poly1305.js";
import { T } from "./_load.js";

const { poly1305 } = T;
const h = (s: string) => Buffer.from(s.replace(/\s/g, ""), "hex");
const z = (n: number) => "00".repeat(n);
const tag = (r: string, s: string, m: string) => Buffer.from(poly1305(Buffer.concat([h(r), h(s)]), h(m))).toString("hex");

test("Poly1305 matches RFC 8439 §2.5.2", () => {
  const key = h("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
  const msg = new TextEncoder().encode("Cryptographic Forum Research Group");
  assert.equal(Buffer.from(poly1305(key, msg)).toString("hex"), "a8061dc1305136c6c22b8baf0c0127a9");
});

test("Poly1305 matches the RFC 8439 A.3 edge-case vectors (carries, h >= p, s overflow)", () => {
  assert.equal(tag(z(32), "", z(64)), z(16));
  assert.equal(tag("02" + z(15), z(16), "ff".repeat(16)), "03" + z(15));
  assert.equal(tag("02" + z(15), "ff".repeat(16), "02" + z(15)), "03" + z(15));
  assert.equal(tag("01" + z(15), z(16), "ff".repeat(16) + "f0" + "ff".repeat(15) + "11" + z(15)), "05" + z(15));
  assert.equal(tag("01" + z(15), z(16), "ff".repeat(16) + "fb" + "fe".repeat(15) + "01".repeat(16)), z(16));
  assert.equal(tag("02" + z(15), z(16), "fd" + "ff".repeat(15)), "fa" + "ff".repeat(15));
  const r10 = "01000000000000000400000000000000";
  const m10 = "e33594d7505e43b90000000000000000 3394d7505e4379cd0100000000000000 00000000000000000000000000000000 01000000000000000000000000000000";
  assert.equal(tag(r10, z(16), m10), "14000000000000005500000000000000");
  assert.equal(tag(r10, z(16), m10.replace(/\s/g, "").slice(0, 96)), "13" + z(15));
});

test("Poly1305 agrees with @noble/ciphers for every length up to 300 bytes and large messages", () => {
  for (let n = 0; n <= 300; n++) {
    const key = randomBytes(32);
    if (n % 17 === 0) key.fill(0xff);
    const msg = randomBytes(n);
    if (n % 5 === 0) msg.fill(0xff);
    assert.deepEqual(Buffer.from(poly1305(key, msg)), Buffer.from(noblePoly1305(msg, key)), `length ${n}`);
  }
  for (const n of [32768, 32768 + 13, 262144 + 7, 1 << 20]) {
    const key = randomBytes(32);
    const msg = randomBytes(n);
    assert.deepEqual(Buffer.from(poly1305(key, msg)), Buffer.from(noblePoly1305(msg, key)), `length ${n}`);
  }
  // A short message after a long one: no state leaks between calls.
  const key = randomBytes(32);
  assert.deepEqual(Buffer.from(poly1305(key, Uint8Array.of(1, 2, 3))), Buffer.from(noblePoly1305(Uint8Array.of(1, 2, 3), key)));
});
