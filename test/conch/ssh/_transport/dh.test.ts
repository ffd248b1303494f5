import { test } from "node:test";
import assert from "node:assert/strict";
import { createDiffieHellman } from "node:crypto";
import { error } from "@twisted-ts/conch";
import { T } from "./_load.js";

const { GROUP14, GROUP16, dhKeyPair, dhShared, dhRespond, checkGroup, checkDhPublic, bitLength } = T;

const toBuf = (n: bigint): Buffer => Buffer.from(n.toString(16).padStart(Math.ceil(n.toString(16).length / 2) * 2, "0"), "hex");
const isKexError = (e: unknown) => e instanceof error.KeyExchangeError && e.reasonCode === error.DISCONNECT_KEY_EXCHANGE_FAILED;

test("dhKeyPair and dhShared agree with node:crypto's DiffieHellman for the same private exponent", () => {
  const ours = dhKeyPair(GROUP14);
  const theirs = createDiffieHellman(toBuf(GROUP14.p), toBuf(GROUP14.g));
  theirs.setPrivateKey(toBuf(ours.x));
  assert.equal(BigInt("0x" + theirs.generateKeys("hex")), ours.publicValue);
  const peer = dhKeyPair(GROUP14);
  assert.equal(BigInt("0x" + theirs.computeSecret(toBuf(peer.publicValue)).toString("hex")), dhShared(ours, GROUP14, peer.publicValue));
});

test("both sides of an exchange get the same secret, in every group size", () => {
  for (const group of [GROUP14, GROUP16]) {
    const a = dhKeyPair(group);
    const b = dhKeyPair(group);
    assert.equal(dhShared(a, group, b.publicValue), dhShared(b, group, a.publicValue));
    const { f, shared } = dhRespond(group, a.publicValue);
    assert.equal(dhShared(a, group, f), shared);
  }
});

test("private exponents have 512 bits: the cost depends on the group, not on the peer", () => {
  for (let i = 0; i < 8; i++) assert.equal(bitLength(dhKeyPair(GROUP16).x), 512);
});

test("the group is taken as given: no primality test runs (that test cost 30 s for an 8191-bit prime)", () => {
  // An odd composite modulus: createDiffieHellman would run OpenSSL's DH_check on it.
  const group = { p: GROUP14.p * 3n, g: 2n };
  const a = dhKeyPair(group);
  const b = dhKeyPair(group);
  assert.equal(dhShared(a, group, b.publicValue), dhShared(b, group, a.publicValue));
});

test("checkGroup refuses an even or tiny modulus and a generator outside 1 < g < p-1", () => {
  assert.doesNotThrow(() => checkGroup(GROUP14, "test"));
  for (const group of [
    { p: GROUP14.p + 1n, g: 2n },
    { p: 5n, g: 2n },
    { p: GROUP14.p, g: 1n },
    { p: GROUP14.p, g: GROUP14.p - 1n },
    { p: GROUP14.p, g: GROUP14.p + 2n },
  ]) {
    assert.throws(() => checkGroup(group, "test"), isKexError, `${group.p % 100n} ${group.g % 100n}`);
  }
});

test("checkDhPublic and dhRespond refuse e <= 1 and e >= p-1 (RFC 4253 §8)", () => {
  for (const e of [0n, 1n, GROUP14.p - 1n, GROUP14.p, GROUP14.p * 2n]) {
    assert.throws(() => checkDhPublic(e, GROUP14.p, "e"), isKexError);
    assert.throws(() => dhRespond(GROUP14, e), isKexError);
  }
  assert.doesNotThrow(() => checkDhPublic(2n, GROUP14.p, "e"));
  assert.doesNotThrow(() => checkDhPublic(GROUP14.p - 2n, GROUP14.p, "e"));
});

test("KEXDH_INIT e: a value longer than p is refused by its length, one of p's length is read", () => {
  const body = (n: bigint) => {
    const hex = n.toString(16).padStart(Math.ceil(n.toString(16).length / 2) * 2, "0");
    const b = Buffer.from(hex, "hex");
    return (b[0]! & 0x80) !== 0 ? Uint8Array.from([0, ...b]) : Uint8Array.from(b);
  };
  const ok = T.kexServerRespond("diffie-hellman-group14-sha256", body(GROUP14.p - 2n));
  assert.ok(ok.secret.length > 200);
  const long = new Uint8Array(258).fill(0x7f);
  assert.throws(() => T.kexServerRespond("diffie-hellman-group14-sha256", long), (e) => isKexError(e) && /longer than the group's prime/.test(String(e)));
  assert.throws(() => T.kexServerRespond("diffie-hellman-group14-sha256", new Uint8Array(256 * 1024).fill(0x7f)), isKexError);
});
