import { test } from "node:test";
import assert from "node:assert/strict";
import { inspect } from "node:util";
import { common, keys } from "@twisted-ts/conch/ssh";
import { HOWTO_MD5, HOWTO_SHA256_TWISTED, HOWTO_SIG_HELLO, hex, howtoPrivateKey, howtoPublicKey, unhex } from "./keys_fixtures.js";

const { Key } = keys;

// One key of each type, generated once (RSA at 1024 bits: size does not matter here, speed does).
const generated = {
  ed25519: Key.generate("ed25519"),
  p256: Key.generate("ecdsa", { bits: 256 }),
  p384: Key.generate("ecdsa", { bits: 384 }),
  p521: Key.generate("ecdsa", { bits: 521 }),
  rsa: Key.generate("rsa", { bits: 1024 }),
};

test("the Conch client howto's RSA pair loads through getPublicKeyString and getPrivateKeyObject", () => {
  const blob = keys.getPublicKeyString({ data: howtoPublicKey });
  const priv = keys.getPrivateKeyObject({ data: howtoPrivateKey });
  assert.equal(priv.isPublic(), false);
  assert.equal(priv.type(), "RSA");
  assert.deepEqual(priv.public().blob(), blob);
  assert.equal(Buffer.from(blob.subarray(4, 11)).toString(), "ssh-rsa");
});

test("the Conch client howto's RSA pair loads through Key.fromString", () => {
  const pub = Key.fromString(howtoPublicKey);
  const priv = Key.fromString(howtoPrivateKey);
  assert.equal(pub.isPublic(), true);
  assert.equal(pub.sshType(), "ssh-rsa");
  assert.equal(pub.size(), 768);
  assert.ok(priv.public().equals(pub));
  assert.ok(!priv.equals(pub), "a private key is not equal to its public half, as in Twisted");
});

test("fingerprint: MD5 colon hex by default and Twisted's SHA256 base64, equal to Twisted's", () => {
  const pub = Key.fromString(howtoPublicKey);
  assert.equal(pub.fingerprint(), HOWTO_MD5);
  assert.equal(pub.fingerprint("md5-hex"), HOWTO_MD5);
  assert.equal(pub.fingerprint("sha256-base64"), HOWTO_SHA256_TWISTED);
  assert.equal(pub.fingerprint("sha256"), "SHA256:" + HOWTO_SHA256_TWISTED.replace(/=+$/, ""));
  assert.throws(() => pub.fingerprint("sha1" as "md5"), keys.BadFingerPrintFormat);
});

test("ssh-rsa: signing is byte-exact with Twisted's Key.sign", () => {
  const priv = Key.fromString(howtoPrivateKey);
  assert.equal(hex(priv.sign(new TextEncoder().encode("hello"))), HOWTO_SIG_HELLO);
  assert.equal(Key.fromString(howtoPublicKey).verify(unhex(HOWTO_SIG_HELLO), "hello"), true);
});

test("Key.fromString reads an SSH wire public-key blob, as the transport does with K_S", () => {
  for (const k of Object.values(generated)) {
    const fromBlob = Key.fromString(k.blob());
    assert.equal(fromBlob.isPublic(), true);
    assert.ok(fromBlob.equals(k.public()), k.sshType());
    assert.equal(fromBlob.sshType(), k.sshType());
  }
});

test("sshType, type and size name each key type as Twisted does", () => {
  assert.deepEqual(
    Object.values(generated).map((k) => [k.sshType(), k.type(), k.size()]),
    [
      ["ssh-ed25519", "Ed25519", 256],
      ["ecdsa-sha2-nistp256", "EC", 256],
      ["ecdsa-sha2-nistp384", "EC", 384],
      ["ecdsa-sha2-nistp521", "EC", 521],
      ["ssh-rsa", "RSA", 1024],
    ],
  );
});

test("each key type signs and verifies with every signature algorithm it supports", () => {
  const data = new TextEncoder().encode("session id and userauth request");
  for (const k of Object.values(generated)) {
    for (const alg of k.supportedSignatureAlgorithms()) {
      const sig = k.sign(data, alg);
      const [name] = common.getNS(sig);
      assert.equal(Buffer.from(name!).toString(), alg);
      assert.equal(k.public().verify(sig, data), true, `${k.sshType()} ${alg}`);
      assert.equal(k.verify(sig, data), true, "a private key verifies too");
      assert.equal(k.public().verify(sig, new TextEncoder().encode("other data")), false);
    }
  }
});

test("supportedSignatureAlgorithms lists the RSA SHA-2 algorithms first", () => {
  assert.deepEqual(generated.rsa.supportedSignatureAlgorithms(), ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"]);
  assert.deepEqual(generated.ed25519.supportedSignatureAlgorithms(), ["ssh-ed25519"]);
  assert.deepEqual(generated.p384.supportedSignatureAlgorithms(), ["ecdsa-sha2-nistp384"]);
});

test("keyTypeForSignatureAlgorithm maps signature algorithms to key types", () => {
  assert.equal(keys.keyTypeForSignatureAlgorithm("rsa-sha2-256"), "ssh-rsa");
  assert.equal(keys.keyTypeForSignatureAlgorithm("rsa-sha2-512"), "ssh-rsa");
  assert.equal(keys.keyTypeForSignatureAlgorithm("ssh-rsa"), "ssh-rsa");
  assert.equal(keys.keyTypeForSignatureAlgorithm("ssh-ed25519"), "ssh-ed25519");
  assert.equal(keys.keyTypeForSignatureAlgorithm("ecdsa-sha2-nistp521"), "ecdsa-sha2-nistp521");
  assert.equal(keys.keyTypeForSignatureAlgorithm("ssh-dss"), "ssh-dss");
  assert.equal(keys.keyTypeForSignatureAlgorithm("nope"), undefined);
});

test("ssh-rsa: the default signature algorithm is ssh-rsa, as Twisted", () => {
  const [name] = common.getNS(generated.rsa.sign("x"));
  assert.equal(Buffer.from(name!).toString(), "ssh-rsa");
});

test("sign refuses an algorithm the key cannot make, and a public key", () => {
  assert.throws(() => generated.ed25519.sign("x", "rsa-sha2-256"), keys.BadSignatureAlgorithmError);
  assert.throws(() => generated.rsa.sign("x", "ssh-ed25519"), keys.BadSignatureAlgorithmError);
  assert.throws(() => generated.rsa.public().sign("x"), keys.BadKeyError);
});

test("ecdsa-sha2-nistp256: the signature is mpint r, mpint s inside the string (RFC 5656 §3.1.2)", () => {
  const sig = generated.p256.sign("data");
  const r = new common.SSHReader(sig);
  assert.equal(r.utf8(), "ecdsa-sha2-nistp256");
  const inner = new common.SSHReader(r.string());
  const rr = inner.mpint();
  const ss = inner.mpint();
  inner.end();
  r.end();
  assert.ok(rr > 0n && ss > 0n);
});

test("verify returns false, never throws, for malformed signatures", () => {
  const data = new TextEncoder().encode("data");
  for (const k of Object.values(generated)) {
    const good = k.sign(data);
    const pub = k.public();
    const bad = [
      new Uint8Array(0),
      good.subarray(0, 3),
      good.subarray(0, good.length - 1),
      new Uint8Array([...good, 0]),
      common.concatBytes(common.NS(k.sshType()), common.NS(new Uint8Array(3))),
      common.NS("ssh-rsa"),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2]),
    ];
    for (const b of bad) assert.equal(pub.verify(b, data), false, `${k.sshType()} ${hex(b).slice(0, 40)}`);
  }
});

test("verify returns false for a signature whose algorithm is not allowed for the key type", () => {
  const data = new TextEncoder().encode("data");
  const edSig = generated.ed25519.sign(data);
  const [, inner] = common.getNS(edSig);
  // The Ed25519 signature bytes relabelled: an RSA key must not accept an ssh-ed25519 name, nor P-256 a P-384 one.
  assert.equal(generated.rsa.public().verify(edSig, data), false);
  const relabelled = common.concatBytes(common.NS("ecdsa-sha2-nistp384"), common.getNS(generated.p256.sign(data))[1]!.subarray(0));
  assert.equal(generated.p256.public().verify(relabelled, data), false);
  assert.ok(inner !== undefined);
  const rsaSig = generated.rsa.sign(data, "rsa-sha2-256");
  const asSha512 = common.concatBytes(common.NS("rsa-sha2-512"), common.getNS(rsaSig)[1]!);
  assert.equal(generated.rsa.verify(asSha512, data), false, "an rsa-sha2-256 signature relabelled rsa-sha2-512 fails");
});

test("ssh-rsa: a signature missing its leading zero bytes still verifies, as OpenSSH accepts", () => {
  const data = new TextEncoder().encode("x");
  for (let i = 0; i < 300; i++) {
    const msg = new TextEncoder().encode(`message ${i}`);
    const sig = generated.rsa.sign(msg, "rsa-sha2-256");
    const [, body] = common.getNS(sig);
    const [raw] = common.getNS(body!);
    if (raw![0] !== 0) continue;
    const short = common.concatBytes(common.NS("rsa-sha2-256"), common.NS(raw!.subarray(1)));
    assert.equal(generated.rsa.public().verify(short, msg), true);
    return;
  }
  assert.ok(data.length > 0, "no signature with a leading zero in 300 tries (probability ~ 2^-4)");
});

test("public() of a private key gives the public half; of a public key, itself", () => {
  const pub = generated.ed25519.public();
  assert.equal(pub.isPublic(), true);
  assert.equal(pub.public(), pub);
  assert.deepEqual(pub.blob(), generated.ed25519.blob());
});

test("Key.generate rejects unknown kinds and bad sizes with a message", () => {
  assert.throws(() => Key.generate("ecdsa", { bits: 255 }), /256, 384 or 521/);
  assert.throws(() => Key.generate("rsa", { bits: 512 }), /1024 to 16384/);
  assert.throws(() => Key.generate("dsa" as "rsa"), /ed25519, ecdsa or rsa/);
});

test("data() names the numbers as Twisted does", () => {
  const rsa = Key.fromString(howtoPrivateKey).data();
  assert.deepEqual(Object.keys(rsa).sort(), ["d", "e", "n", "p", "q", "u"]);
  assert.equal(rsa["e"], 35n);
  const ed = generated.ed25519.data();
  assert.deepEqual(Object.keys(ed).sort(), ["a", "k"]);
  const ec = generated.p256.public().data();
  assert.deepEqual(Object.keys(ec).sort(), ["curve", "x", "y"]);
  assert.equal(ec["curve"], "ecdsa-sha2-nistp256");
});

test("a private key round-trips through the openssh-key-v1 format with its comment", () => {
  for (const k of Object.values(generated)) {
    const text = k.toString("openssh", { comment: "me@host" });
    assert.match(text, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    const back = Key.fromString(text);
    assert.ok(back.equals(k), k.sshType());
    assert.equal(back.comment, "me@host");
  }
});

test("a public key round-trips through the OpenSSH one-line format with its comment", () => {
  const line = generated.p521.public().toString("openssh", { comment: "a comment with spaces" });
  assert.match(line, /^ecdsa-sha2-nistp521 AAAA[A-Za-z0-9+/=]+ a comment with spaces$/);
  const back = Key.fromString(line);
  assert.ok(back.equals(generated.p521.public()));
  assert.equal(back.comment, "a comment with spaces");
});

test("PEM private keys round-trip (PKCS#1, SEC1, PKCS#8)", () => {
  assert.match(generated.rsa.toString("pem"), /BEGIN RSA PRIVATE KEY/);
  assert.match(generated.p384.toString("pem"), /BEGIN EC PRIVATE KEY/);
  assert.match(generated.ed25519.toString("pem"), /BEGIN PRIVATE KEY/);
  for (const k of Object.values(generated)) {
    assert.ok(Key.fromString(k.toString("pem")).equals(k));
    assert.ok(Key.fromString(k.toString("pkcs8")).equals(k));
    assert.ok(Key.fromString(k.public().toString("pem")).equals(k.public()));
  }
});

test("the private blob round-trips (OpenSSH's private key fields)", () => {
  for (const k of Object.values(generated)) assert.ok(Key.fromString(k.privateBlob(), "private_blob").equals(k));
  assert.throws(() => generated.rsa.public().privateBlob(), keys.BadKeyError);
});

test("a key in a template string or console.log shows a summary, never the private key", () => {
  const k = generated.rsa;
  assert.match(`${k}`, /^<Private Key \(RSA 1024 bits\) SHA256:\S+>$/);
  assert.equal(inspect(k), `${k}`);
  assert.doesNotMatch(inspect({ wrapped: k }), /PRIVATE|\d{30}/);
  assert.match(String(k.public()), /^<Public Key \(RSA 1024 bits\)/);
});
