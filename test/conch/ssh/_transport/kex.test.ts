import { test } from "node:test";
import assert from "node:assert/strict";
import { createECDH, createHash, createPrivateKey, createPublicKey, diffieHellman, getDiffieHellman } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { error } from "@twisted-ts/conch";
import { SSHReader, SSHWriter } from "@twisted-ts/conch/ssh/common";
import { missing, runCommand, requirePythonModule, SYSTEM_PYTHON } from "../../../_support/peers.js";
import { T } from "./_load.js";

const { KEX_ALGORITHMS, DEFAULT_KEX_ORDER, createKexClient, kexServerRespond, kexHash, deriveKey, parseModuli, chooseGexGroup, fixedGroupFor, GROUP1, GROUP14, GROUP16, GROUP18 } = T;

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const isKexError = (e: unknown) =>
  e instanceof error.KeyExchangeError && e.code === "ERR_SSH_KEY_EXCHANGE" && e.reasonCode === error.DISCONNECT_KEY_EXCHANGE_FAILED;

/** A 2048-bit group as a group exchange would send it. */
const GEX_GROUP = { p: GROUP14.p, g: 2n };

function groupArg(name: string) {
  return KEX_ALGORITHMS[name]!.family === "gex" ? GEX_GROUP : undefined;
}

test("the key exchange table and default order follow the issue, strongest first", () => {
  assert.deepEqual(DEFAULT_KEX_ORDER, [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "ecdh-sha2-nistp256",
    "ecdh-sha2-nistp384",
    "ecdh-sha2-nistp521",
    "diffie-hellman-group-exchange-sha256",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
    "diffie-hellman-group14-sha256",
  ]);
  for (const off of ["diffie-hellman-group14-sha1", "diffie-hellman-group1-sha1", "diffie-hellman-group-exchange-sha1", "mlkem768nistp256-sha256"]) {
    assert.equal(KEX_ALGORITHMS[off]!.enabledByDefault, false, off);
  }
  assert.equal(KEX_ALGORITHMS["ecdh-sha2-nistp384"]!.hash, "sha384");
  assert.equal(KEX_ALGORITHMS["diffie-hellman-group18-sha512"]!.hash, "sha512");
  assert.equal(KEX_ALGORITHMS["mlkem768x25519-sha256"]!.family, "kem");
  assert.equal(KEX_ALGORITHMS["sntrup761x25519-sha512"]!.family, "kem");
  assert.equal(KEX_ALGORITHMS["sntrup761x25519-sha512@openssh.com"]!.hash, "sha512");
  assert.equal(KEX_ALGORITHMS["diffie-hellman-group-exchange-sha1"]!.family, "gex");
});

for (const name of Object.keys(KEX_ALGORITHMS)) {
  test(`${name}: the client and the server agree on K`, () => {
    const client = createKexClient(name, groupArg(name));
    const { serverPublic, secret } = kexServerRespond(name, client.clientPublic, groupArg(name));
    const K = client.computeSecret(serverPublic);
    assert.equal(hex(K), hex(secret));
    const r = new SSHReader(K);
    if (name.startsWith("mlkem")) {
      assert.equal(r.string().length, 32, "K is a string holding a SHA-256 digest");
    } else if (name.startsWith("sntrup")) {
      assert.equal(r.string().length, 64, "K is a string holding a SHA-512 digest");
    } else {
      const k = r.mpint();
      assert.ok(k > 0n, "K is a positive mpint");
    }
    r.end("K");
    // Fresh keys every time.
    assert.notEqual(hex(createKexClient(name, groupArg(name)).clientPublic), hex(client.clientPublic));
  });
}

test("public value encodings: mpint bodies for DH, raw points and keys for the rest", () => {
  const dh = createKexClient("diffie-hellman-group14-sha256");
  const e = dh.clientPublic;
  assert.ok((e[0]! & 0x80) === 0, "e is a positive mpint body");
  assert.ok(e[0] !== 0 || (e[1]! & 0x80) !== 0, "no needless leading zero");
  assert.equal(createKexClient("ecdh-sha2-nistp256").clientPublic.length, 65);
  assert.equal(createKexClient("ecdh-sha2-nistp384").clientPublic.length, 97);
  assert.equal(createKexClient("ecdh-sha2-nistp521").clientPublic.length, 133);
  assert.equal(createKexClient("ecdh-sha2-nistp256").clientPublic[0], 4);
  assert.equal(createKexClient("curve25519-sha256").clientPublic.length, 32);
  assert.equal(createKexClient("mlkem768x25519-sha256").clientPublic.length, 1184 + 32);
  const { serverPublic } = kexServerRespond("mlkem768x25519-sha256", createKexClient("mlkem768x25519-sha256").clientPublic);
  assert.equal(serverPublic.length, 1088 + 32);
});

test("the fixed groups are the RFC 2409 / RFC 3526 primes with generator 2", () => {
  assert.equal(GROUP1.p.toString(16), getDiffieHellman("modp2").getPrime("hex").replace(/^0+/, ""));
  assert.equal(GROUP14.p.toString(16), getDiffieHellman("modp14").getPrime("hex").replace(/^0+/, ""));
  assert.equal(GROUP16.p.toString(16), getDiffieHellman("modp16").getPrime("hex").replace(/^0+/, ""));
  assert.equal(GROUP18.p.toString(16), getDiffieHellman("modp18").getPrime("hex").replace(/^0+/, ""));
  assert.deepEqual([GROUP1, GROUP14, GROUP16, GROUP18].map((g) => g.p.toString(2).length), [1024, 2048, 4096, 8192]);
  assert.ok([GROUP1, GROUP14, GROUP16, GROUP18].every((g) => g.g === 2n));
});

test("diffie-hellman-group14-sha256: K is g^(xy) mod p as an mpint", () => {
  // Play the server by hand with a known exponent.
  const client = createKexClient("diffie-hellman-group14-sha256");
  const p = GROUP14.p;
  const y = 0x1234567890abcdefn;
  const modPow = (b: bigint, e: bigint) => {
    let r = 1n;
    b %= p;
    while (e > 0n) {
      if (e & 1n) r = (r * b) % p;
      b = (b * b) % p;
      e >>= 1n;
    }
    return r;
  };
  const e = BigInt("0x" + hex(client.clientPublic));
  const f = modPow(2n, y);
  const fBody = new SSHWriter().mpint(f).finish().subarray(4);
  const K = client.computeSecret(fBody);
  assert.equal(hex(K), hex(new SSHWriter().mpint(modPow(e, y)).finish()));
});

test("DH: f and e outside 1 < v < p-1, or negative, are refused with KEY_EXCHANGE_FAILED", () => {
  for (const name of ["diffie-hellman-group14-sha256", "diffie-hellman-group1-sha1", "diffie-hellman-group-exchange-sha256"]) {
    const p = name.includes("group1-") ? GROUP1.p : GROUP14.p;
    const bad = [0n, 1n, p - 1n, p, p + 5n];
    for (const v of bad) {
      const body = new SSHWriter().mpint(v).finish().subarray(4);
      const client = createKexClient(name, groupArg(name));
      assert.throws(() => client.computeSecret(body), isKexError, `${name} f=${v}`);
      assert.throws(() => kexServerRespond(name, body, groupArg(name)), isKexError, `${name} e=${v}`);
    }
    const negative = new SSHWriter().mpint(-5n).finish().subarray(4);
    assert.throws(() => createKexClient(name, groupArg(name)).computeSecret(negative), isKexError);
  }
});

test("group exchange needs the group, and refuses an unusable one", () => {
  assert.throws(() => createKexClient("diffie-hellman-group-exchange-sha256"));
  assert.throws(() => createKexClient("diffie-hellman-group-exchange-sha256", { p: GROUP14.p, g: GROUP14.p - 1n }), isKexError);
  assert.throws(() => createKexClient("diffie-hellman-group-exchange-sha256", { p: GROUP14.p, g: 1n }), isKexError);
});

test("ECDH: points of the wrong length, compressed, or not on the curve are refused", () => {
  for (const [name, curve] of [["ecdh-sha2-nistp256", "prime256v1"], ["ecdh-sha2-nistp384", "secp384r1"], ["ecdh-sha2-nistp521", "secp521r1"]] as const) {
    const good = createECDH(curve);
    const pub = good.generateKeys();
    const compressed = createECDH(curve);
    compressed.generateKeys();
    const offCurve = Buffer.from(pub);
    offCurve[offCurve.length - 1]! ^= 1;
    for (const bad of [pub.subarray(0, pub.length - 1), compressed.getPublicKey(undefined, "compressed"), offCurve, Buffer.alloc(pub.length), Buffer.alloc(0)]) {
      assert.throws(() => createKexClient(name).computeSecret(bad), isKexError, name);
      assert.throws(() => kexServerRespond(name, bad), isKexError, name);
    }
    // The shared x coordinate as an mpint.
    const client = createKexClient(name);
    const K = client.computeSecret(pub);
    assert.equal(hex(K), hex(new SSHWriter().mpintFromBytes(good.computeSecret(client.clientPublic)).finish()));
  }
});

const X25519_PKCS8 = Buffer.from("302e020100300506032b656e04220420", "hex");
const X25519_SPKI = Buffer.from("302a300506032b656e032100", "hex");
function x25519(priv: Uint8Array, pub: Uint8Array): Buffer {
  return diffieHellman({
    privateKey: createPrivateKey({ key: Buffer.concat([X25519_PKCS8, priv]), format: "der", type: "pkcs8" }),
    publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI, pub]), format: "der", type: "spki" }),
  });
}
function x25519Public(priv: Uint8Array): Buffer {
  const der = createPublicKey(createPrivateKey({ key: Buffer.concat([X25519_PKCS8, priv]), format: "der", type: "pkcs8" })).export({ format: "der", type: "spki" });
  return der.subarray(der.length - 32);
}

test("X25519 with raw keys matches RFC 7748 §6.1", () => {
  const alice = Buffer.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "hex");
  const bob = Buffer.from("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "hex");
  assert.equal(hex(x25519Public(alice)), "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  assert.equal(hex(x25519Public(bob)), "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  assert.equal(hex(x25519(alice, x25519Public(bob))), "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742");
});

test("curve25519-sha256: K is the X25519 output as a big-endian mpint (RFC 8731)", () => {
  const bob = Buffer.from("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "hex");
  for (let i = 0; i < 20; i++) {
    const client = createKexClient("curve25519-sha256");
    const K = client.computeSecret(x25519Public(bob));
    const shared = x25519(bob, client.clientPublic);
    assert.equal(hex(K), hex(new SSHWriter().mpint(BigInt("0x" + hex(shared))).finish()));
  }
});

test("curve25519: wrong lengths and low-order points (all-zero shared secret) are refused", () => {
  const lowOrder = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
  ];
  for (const name of ["curve25519-sha256", "curve25519-sha256@libssh.org"]) {
    for (const h of lowOrder) {
      const pub = Buffer.from(h, "hex");
      assert.throws(() => createKexClient(name).computeSecret(pub), isKexError, `${name} ${h}`);
      assert.throws(() => kexServerRespond(name, pub), isKexError, `${name} ${h}`);
    }
    for (const n of [0, 31, 33, 65]) {
      assert.throws(() => createKexClient(name).computeSecret(new Uint8Array(n).fill(9)), isKexError);
      assert.throws(() => kexServerRespond(name, new Uint8Array(n).fill(9)), isKexError);
    }
  }
});

test("mlkem768x25519-sha256: K = string(SHA-256(ML-KEM shared secret || X25519 shared secret))", () => {
  // The server, by hand: ML-KEM-768 encapsulation with fixed randomness, X25519 with RFC 7748's Bob.
  const bob = Buffer.from("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "hex");
  const client = createKexClient("mlkem768x25519-sha256");
  const ek = client.clientPublic.subarray(0, 1184);
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(ek, new Uint8Array(32).fill(7));
  const reply = Buffer.concat([cipherText, x25519Public(bob)]);
  const K = client.computeSecret(reply);
  const expected = createHash("sha256").update(sharedSecret).update(x25519(bob, client.clientPublic.subarray(1184))).digest();
  assert.equal(hex(K), hex(new SSHWriter().string(expected).finish()));
});

test("mlkem768x25519-sha256: a known answer from fixed seeds", () => {
  // The client by hand from a fixed ML-KEM seed and RFC 7748's Alice; the server is ours.
  const seed = Uint8Array.from({ length: 64 }, (_, i) => i);
  const kem = ml_kem768.keygen(seed);
  const alice = Buffer.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "hex");
  const init = Buffer.concat([kem.publicKey, x25519Public(alice)]);
  assert.equal(createHash("sha256").update(init).digest("hex").length, 64);
  const { serverPublic, secret } = kexServerRespond("mlkem768x25519-sha256", init);
  const pq = ml_kem768.decapsulate(serverPublic.subarray(0, 1088), kem.secretKey);
  const cl = x25519(alice, serverPublic.subarray(1088));
  const expected = createHash("sha256").update(pq).update(cl).digest();
  assert.equal(hex(secret), "00000020" + hex(expected));
  // And with everything fixed, the combiner gives a fixed value (ML-KEM-768 with seed 00..3f and
  // message 07*32, X25519 Alice/Bob from RFC 7748).
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(kem.publicKey, new Uint8Array(32).fill(7));
  assert.equal(cipherText.length, 1088);
  const shared = x25519(alice, x25519Public(Buffer.from("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "hex")));
  const fixedK = createHash("sha256").update(sharedSecret).update(shared).digest("hex");
  assert.equal(fixedK, KNOWN_HYBRID_K);
});

/** SHA-256(ML-KEM-768 secret (seed 00..3f, msg 07*32) || RFC 7748 shared secret). */
const KNOWN_HYBRID_K = "26e7b5d75ff32e66de4db1e9ac25d6d31106c5f42d08df66030b7fe2fbe4e8c3";

/**
 * A hybrid method refuses a reply and a client init of the wrong length: empty, only the classical
 * key, only the post-quantum part, and one byte short or over.
 */
function assertHybridLengthsRefused(name: string, pqInit: number, pqReply: number, classical: number): void {
  for (const n of [0, classical, pqReply, pqReply + classical - 1, pqReply + classical + 1]) {
    assert.throws(() => createKexClient(name).computeSecret(new Uint8Array(n)), isKexError, `reply of ${n}`);
  }
  for (const n of [0, classical, pqInit, pqInit + classical - 1, pqInit + classical + 1]) {
    assert.throws(() => kexServerRespond(name, new Uint8Array(n)), isKexError, `init of ${n}`);
  }
}

test("mlkem768x25519-sha256: bad lengths, a bad X25519 key and a bad ML-KEM key are refused", () => {
  const client = createKexClient("mlkem768x25519-sha256");
  const { serverPublic } = kexServerRespond("mlkem768x25519-sha256", client.clientPublic);
  assertHybridLengthsRefused("mlkem768x25519-sha256", 1184, 1088, 32);
  const zeroX = Buffer.from(serverPublic);
  zeroX.fill(0, 1088);
  assert.throws(() => client.computeSecret(zeroX), isKexError);
  const badInit = Buffer.from(client.clientPublic);
  badInit.fill(0, 1184);
  assert.throws(() => kexServerRespond("mlkem768x25519-sha256", badInit), isKexError);
  // An encapsulation key whose coefficients are not reduced mod q fails FIPS 203's check.
  const unreduced = Buffer.from(client.clientPublic);
  unreduced.fill(0xff, 0, 384);
  assert.throws(() => kexServerRespond("mlkem768x25519-sha256", unreduced), isKexError);
});

for (const name of ["sntrup761x25519-sha512", "sntrup761x25519-sha512@openssh.com"]) {
  test(`${name}: K = string(SHA-512(sntrup761 shared secret || X25519 shared secret))`, () => {
    // The server by hand: sntrup761 encapsulation to our client's key, X25519 with RFC 7748's Bob.
    const bob = Buffer.from("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", "hex");
    const client = createKexClient(name);
    assert.equal(client.clientPublic.length, 1158 + 32);
    const { cipherText, sharedSecret } = T.sntrup761Encapsulate(client.clientPublic.subarray(0, 1158));
    const K = client.computeSecret(Buffer.concat([cipherText, x25519Public(bob)]));
    const expected = createHash("sha512").update(sharedSecret).update(x25519(bob, client.clientPublic.subarray(1158))).digest();
    assert.equal(hex(K), hex(new SSHWriter().string(expected).finish()));
  });

  test(`${name}: the server's reply is ct || X25519 key, and K follows from the client's secrets`, () => {
    const kem = T.sntrup761KeyPair();
    const alice = Buffer.from("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", "hex");
    const { serverPublic, secret } = kexServerRespond(name, Buffer.concat([kem.publicKey, x25519Public(alice)]));
    assert.equal(serverPublic.length, 1039 + 32);
    const pq = T.sntrup761Decapsulate(serverPublic.subarray(0, 1039), kem.secretKey);
    const cl = x25519(alice, serverPublic.subarray(1039));
    assert.equal(hex(secret), "00000040" + createHash("sha512").update(pq).update(cl).digest("hex"));
  });

  test(`${name}: bad lengths and an all-zero X25519 result are refused`, () => {
    const client = createKexClient(name);
    const { serverPublic } = kexServerRespond(name, client.clientPublic);
    assertHybridLengthsRefused(name, 1158, 1039, 32);
    const zeroX = Buffer.from(serverPublic);
    zeroX.fill(0, 1039);
    assert.throws(() => client.computeSecret(zeroX), isKexError);
    const badInit = Buffer.from(client.clientPublic);
    badInit.fill(0, 1158);
    assert.throws(() => kexServerRespond(name, badInit), isKexError);
  });
}

test("mlkem768nistp256-sha256: K = string(SHA-256(ML-KEM shared secret || P-256 x coordinate)), both sides", () => {
  const name = "mlkem768nistp256-sha256";
  // The server by hand: ML-KEM-768 with fixed randomness and a fresh P-256 key from OpenSSL.
  const client = createKexClient(name);
  assert.equal(client.clientPublic.length, 1184 + 65);
  assert.equal(client.clientPublic[1184], 4, "the P-256 key is an uncompressed point");
  const { cipherText, sharedSecret } = ml_kem768.encapsulate(client.clientPublic.subarray(0, 1184), new Uint8Array(32).fill(7));
  const server = createECDH("prime256v1");
  const serverPoint = server.generateKeys();
  const x = server.computeSecret(client.clientPublic.subarray(1184));
  assert.equal(x.length, 32);
  const K = client.computeSecret(Buffer.concat([cipherText, serverPoint]));
  assert.equal(hex(K), hex(new SSHWriter().string(createHash("sha256").update(sharedSecret).update(x).digest()).finish()));

  // Our server against a client by hand: fixed ML-KEM seed, fresh P-256 key.
  const kem = ml_kem768.keygen(Uint8Array.from({ length: 64 }, (_, i) => i));
  const ecdh = createECDH("prime256v1");
  const { serverPublic, secret } = kexServerRespond(name, Buffer.concat([kem.publicKey, ecdh.generateKeys()]));
  assert.equal(serverPublic.length, 1088 + 65);
  const pq = ml_kem768.decapsulate(serverPublic.subarray(0, 1088), kem.secretKey);
  const cl = ecdh.computeSecret(serverPublic.subarray(1088));
  assert.equal(hex(secret), "00000020" + createHash("sha256").update(pq).update(cl).digest("hex"));
});

test("mlkem768nistp256-sha256: bad lengths, a compressed point and a point off the curve are refused", () => {
  const name = "mlkem768nistp256-sha256";
  const client = createKexClient(name);
  const { serverPublic } = kexServerRespond(name, client.clientPublic);
  assertHybridLengthsRefused(name, 1184, 1088, 65);
  const compressed = Buffer.from(serverPublic);
  compressed[1088] = 2;
  assert.throws(() => client.computeSecret(compressed), isKexError);
  const offCurve = Buffer.from(client.clientPublic);
  offCurve[1184 + 64] = offCurve[1184 + 64]! ^ 1;
  assert.throws(() => kexServerRespond(name, offCurve), isKexError);
});

test("kexHash uses the method's hash", () => {
  const data = new TextEncoder().encode("abc");
  assert.equal(hex(kexHash("curve25519-sha256", data)), createHash("sha256").update(data).digest("hex"));
  assert.equal(hex(kexHash("ecdh-sha2-nistp384", data)), createHash("sha384").update(data).digest("hex"));
  assert.equal(hex(kexHash("diffie-hellman-group16-sha512", data)), createHash("sha512").update(data).digest("hex"));
  assert.equal(hex(kexHash("diffie-hellman-group1-sha1", data)), createHash("sha1").update(data).digest("hex"));
  assert.equal(hex(kexHash("sha256", data)), createHash("sha256").update(data).digest("hex"));
});

test("deriveKey follows RFC 4253 §7.2, extending past one digest", () => {
  const K = new SSHWriter().mpint(0x123456789n).finish();
  const H = createHash("sha256").update("H").digest();
  const sid = createHash("sha256").update("session").digest();
  const k1 = createHash("sha256").update(K).update(H).update("C").update(sid).digest();
  const k2 = createHash("sha256").update(K).update(H).update(k1).digest();
  const k3 = createHash("sha256").update(K).update(H).update(k1).update(k2).digest();
  assert.equal(hex(deriveKey("sha256", K, H, "C", sid, 16)), hex(k1.subarray(0, 16)));
  assert.equal(hex(deriveKey("sha256", K, H, "C", sid, 32)), hex(k1));
  assert.equal(hex(deriveKey("sha256", K, H, "C", sid, 64)), hex(Buffer.concat([k1, k2])));
  assert.equal(hex(deriveKey("curve25519-sha256", K, H, "C", sid, 80)), hex(Buffer.concat([k1, k2, k3]).subarray(0, 80)));
  assert.equal(deriveKey("sha1", K, H, "A", sid, 0).length, 0);
});

test("deriveKey matches Twisted's SSHTransportBase._getKey", async (t) => {
  if (!requirePythonModule(t, "twisted.conch.ssh.transport", "python3-twisted")) return;
  const K = new SSHWriter().mpint(0xfedcba9876543210fedcba98n).finish();
  const H = createHash("sha512").update("exchange").digest();
  const sid = createHash("sha512").update("sid").digest();
  const py = `
import sys, warnings
warnings.simplefilter("ignore")
from twisted.conch.ssh import transport
t = transport.SSHTransportBase()
t.kexAlg = b"ecdh-sha2-nistp521"
t.sessionID = bytes.fromhex("${hex(sid)}")
print(t._getKey(b"E", bytes.fromhex("${hex(K)}"), bytes.fromhex("${hex(H)}")).hex())
`;
  const r = await runCommand(SYSTEM_PYTHON, ["-c", py]);
  assert.equal(r.code, 0, r.stderr);
  const theirs = r.stdout.toString().trim();
  assert.ok(theirs.length >= 256);
  assert.equal(hex(deriveKey("ecdh-sha2-nistp521", K, H, "E", sid, theirs.length / 2)), theirs);
});

const MODULI_SAMPLE = `#    $OpenBSD: moduli,v 1.33 2022/09/01 $
# Time Type Tests Tries Size Generator Modulus
20220714110357 2 6 100 2047 2 ${GROUP14.p.toString(16).toUpperCase()}
20220714110358 2 6 100 2047 5 ${GROUP14.p.toString(16).toUpperCase()}
20220714110359 2 6 100 4095 2 ${GROUP16.p.toString(16).toUpperCase()}
20220714110400 2 6 100 8191 2 ${GROUP18.p.toString(16).toUpperCase()}
20220714110401 1 6 100 2047 2 ${GROUP14.p.toString(16).toUpperCase()}
20220714110402 2 1 100 2047 2 ${GROUP14.p.toString(16).toUpperCase()}
20220714110403 2 0 100 2047 2 ${GROUP14.p.toString(16).toUpperCase()}
20220714110404 2 6 0 2047 2 ${GROUP14.p.toString(16).toUpperCase()}
20220714110405 2 6 100 3071 2 ${GROUP14.p.toString(16).toUpperCase()}
20220714110406 2 6 100 1023 2
garbage line
20220714110407 2 6 100 1023 2 XYZ
`;

test("parseModuli keeps tested safe primes keyed by bit size and skips everything else", () => {
  const m = parseModuli(MODULI_SAMPLE);
  assert.deepEqual([...m.keys()].sort((a, b) => a - b), [2048, 4096, 8192]);
  assert.deepEqual(m.get(2048)!.map((g) => g.g), [2n, 5n]);
  assert.equal(m.get(2048)![0]!.p, GROUP14.p);
  assert.equal(m.get(8192)![0]!.p, GROUP18.p);
  assert.equal(parseModuli("").size, 0);
});

test("parseModuli reads the system's /etc/ssh/moduli", (t) => {
  if (!existsSync("/etc/ssh/moduli")) {
    missing(t, "no /etc/ssh/moduli (apt-get install openssh-server)");
    return;
  }
  const m = parseModuli(readFileSync("/etc/ssh/moduli", "utf8"));
  assert.ok(m.size > 0);
  for (const [bits, groups] of m) {
    for (const { p, g } of groups) {
      assert.equal(p.toString(2).length, bits);
      assert.ok(g >= 2n);
    }
  }
  const group = chooseGexGroup(m, 2048, 3072, 8192)!;
  assert.ok(group.p.toString(2).length >= 3072);
  // Whatever the file holds, a group from it works in an exchange.
  const client = createKexClient("diffie-hellman-group-exchange-sha256", group);
  const { serverPublic, secret } = kexServerRespond("diffie-hellman-group-exchange-sha256", client.clientPublic, group);
  assert.equal(hex(client.computeSecret(serverPublic)), hex(secret));
});

test("chooseGexGroup picks the smallest size at least the preferred one, else the largest in range", () => {
  const m = parseModuli(MODULI_SAMPLE);
  const bits = (g: { p: bigint } | undefined) => g?.p.toString(2).length;
  assert.equal(bits(chooseGexGroup(m, 2048, 2048, 8192)), 2048);
  assert.equal(bits(chooseGexGroup(m, 2048, 3072, 8192)), 4096);
  assert.equal(bits(chooseGexGroup(m, 2048, 8192, 8192)), 8192);
  assert.equal(bits(chooseGexGroup(m, 1024, 7000, 4096)), 4096);
  assert.equal(bits(chooseGexGroup(m, 1024, 1024, 2048)), 2048);
  assert.equal(chooseGexGroup(m, 1024, 1024, 1536), undefined);
  assert.equal(chooseGexGroup(m, 8193, 9000, 16384), undefined);
  assert.equal(chooseGexGroup(new Map(), 1024, 2048, 8192), undefined);
});

test("fixedGroupFor falls back to the RFC 3526 groups", () => {
  const bits = (g: { p: bigint } | undefined) => g?.p.toString(2).length;
  assert.equal(bits(fixedGroupFor(2048, 2048, 8192)), 2048);
  assert.equal(bits(fixedGroupFor(2048, 3072, 8192)), 3072);
  assert.equal(bits(fixedGroupFor(2048, 7680, 8192)), 8192);
  assert.equal(bits(fixedGroupFor(1024, 2048, 4096)), 2048);
  assert.equal(fixedGroupFor(1024, 1024, 1536), undefined);
  assert.equal(fixedGroupFor(2048, 3072, 8192)!.g, 2n);
});
