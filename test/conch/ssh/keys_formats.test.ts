import { test } from "node:test";
import assert from "node:assert/strict";
import { keys } from "@twisted-ts/conch/ssh";
import { TWISTED } from "./keys_twisted_data.js";

const { Key } = keys;
const unhex = (s: string | undefined): Uint8Array => new Uint8Array(Buffer.from(s ?? "", "hex"));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const T = (name: string): string => {
  const v = TWISTED[name];
  assert.ok(v !== undefined, name);
  return v;
};

const rsa = Key.fromString(T("privateRSA_openssh"));
const dsa = Key.fromString(T("privateDSA_openssh"));

test("Twisted's test keys load in every format it ships them in", () => {
  const expect: [string, string, boolean][] = [
    ["privateRSA_openssh", "ssh-rsa", false],
    ["privateRSA_openssh_new", "ssh-rsa", false],
    ["publicRSA_openssh", "ssh-rsa", true],
    ["publicRSA_lsh", "ssh-rsa", true],
    ["privateDSA_openssh", "ssh-dss", false],
    ["privateDSA_openssh_new", "ssh-dss", false],
    ["publicDSA_openssh", "ssh-dss", true],
    ["publicDSA_lsh", "ssh-dss", true],
    ["privateECDSA_openssh", "ecdsa-sha2-nistp256", false],
    ["privateECDSA_openssh_new", "ecdsa-sha2-nistp256", false],
    ["privateECDSA_openssh384", "ecdsa-sha2-nistp384", false],
    ["privateECDSA_openssh521_new", "ecdsa-sha2-nistp521", false],
    ["publicECDSA_openssh521", "ecdsa-sha2-nistp521", true],
    ["privateEd25519_openssh_new", "ssh-ed25519", false],
    ["publicEd25519_openssh", "ssh-ed25519", true],
  ];
  for (const [name, type, pub] of expect) {
    const k = Key.fromString(T(name));
    assert.equal(k.sshType(), type, name);
    assert.equal(k.isPublic(), pub, name);
  }
  assert.ok(Key.fromString(T("privateRSA_openssh_new")).equals(rsa));
  assert.ok(Key.fromString(T("publicRSA_lsh")).equals(rsa.public()));
  assert.ok(Key.fromString(T("publicDSA_lsh")).equals(dsa.public()));
  assert.equal(rsa.fingerprint(), T("rsa_md5"));
  assert.equal(dsa.fingerprint(), T("dsa_md5"));
});

test("Twisted's encrypted test keys open with their passphrases (3DES PEM, AES PEM, openssh-key-v1)", () => {
  assert.ok(Key.fromString(T("privateRSA_openssh_encrypted"), undefined, "encrypted").equals(rsa));
  const aes = Key.fromString(T("privateRSA_openssh_encrypted_aes"), undefined, "testxp");
  assert.equal(aes.sshType(), "ssh-rsa");
  assert.equal(aes.isPublic(), false);
  assert.ok(Key.fromString(T("privateRSA_openssh_encrypted_new"), undefined, "encrypted").equals(rsa));
  assert.throws(() => Key.fromString(T("privateRSA_openssh_encrypted_new")), keys.EncryptedKeyError);
});

test("LSH: private keys read from Twisted's data and write byte-exact as Twisted", () => {
  assert.ok(Key.fromString(unhex(TWISTED["privateRSA_lsh_hex"])).equals(rsa));
  assert.ok(Key.fromString(unhex(TWISTED["privateDSA_lsh_hex"])).equals(dsa));
  assert.equal(hex(rsa.toBytes("lsh")), T("twisted_rsa_lsh_hex"));
  assert.equal(hex(dsa.toBytes("lsh")), T("twisted_dsa_lsh_hex"));
  assert.equal(rsa.public().toString("lsh"), T("twisted_rsa_public_lsh"));
  assert.equal(dsa.public().toString("lsh"), T("twisted_dsa_public_lsh"));
  // A binary string (one character per byte) reads back as the same bytes.
  assert.ok(Key.fromString(rsa.toString("lsh")).equals(rsa));
  assert.throws(() => Key.generate("ed25519").toString("lsh"), /LSH has no format for Ed25519/);
});

test("agentv3: reads Twisted's data and writes byte-exact as Twisted", () => {
  assert.ok(Key.fromString(unhex(TWISTED["privateRSA_agentv3_hex"])).equals(rsa));
  assert.ok(Key.fromString(unhex(TWISTED["privateDSA_agentv3_hex"]), "agentv3").equals(dsa));
  assert.equal(hex(rsa.toBytes("agentv3")), T("twisted_rsa_agentv3_hex"));
});

test("privateBlob is byte-exact with Twisted's", () => {
  assert.equal(hex(rsa.privateBlob()), T("twisted_rsa_privateblob_hex"));
});

test("ssh-dss: Twisted's DSA signature verifies and ours verifies (old keys keep working)", () => {
  assert.equal(dsa.public().verify(unhex(TWISTED["twisted_dsa_sig_hex"]), "hello"), true);
  assert.equal(dsa.public().verify(dsa.sign("hello"), "hello"), true);
  assert.equal(dsa.public().verify(dsa.sign("hello"), "hellO"), false);
});

test("RFC 4716: round trip with a quoted comment, and long headers continued with a backslash", () => {
  const k = Key.generate("ecdsa", { bits: 384 }).public();
  const text = k.toString("rfc4716", { comment: "x".repeat(100) });
  assert.match(text, /^---- BEGIN SSH2 PUBLIC KEY ----\nComment: "x+\\\nx+"\n/);
  for (const line of text.split("\n")) assert.ok(line.length <= 72, line);
  const back = Key.fromString(text);
  assert.ok(back.equals(k));
  assert.equal(back.comment, "x".repeat(100));
  const other = "---- BEGIN SSH2 PUBLIC KEY ----\nSubject: me\nx-Private: a \\\n b\n" + text.split("\n").slice(3).join("\n");
  assert.ok(Key.fromString(other).equals(k));
});

test("PuTTY: v3 and v2 files round trip, plain and encrypted, with their comments", () => {
  for (const k of [Key.generate("ed25519"), Key.generate("ecdsa", { bits: 521 }), rsa, dsa]) {
    for (const subtype of ["v3", "v2"]) {
      const plain = k.toString("putty", { comment: "my key", subtype });
      assert.match(plain, new RegExp(`^PuTTY-User-Key-File-${subtype.slice(1)}: ${k.sshType()}\nEncryption: none\nComment: my key\n`));
      const back = Key.fromString(plain);
      assert.ok(back.equals(k), `${k.sshType()} ${subtype}`);
      assert.equal(back.comment, "my key");
    }
    const v2 = k.toString("putty", { passphrase: "pw", subtype: "v2" });
    assert.ok(Key.fromString(v2, undefined, "pw").equals(k));
  }
});

test("PuTTY: an encrypted v3 file (Argon2id) round trips", () => {
  const k = Key.generate("ed25519");
  const ppk = k.toString("putty", { passphrase: "pw", argon2: { memory: 64, passes: 1, parallelism: 1 } });
  assert.match(ppk, /Key-Derivation: Argon2id\nArgon2-Memory: \d+\nArgon2-Passes: \d+\nArgon2-Parallelism: 1\nArgon2-Salt: [0-9a-f]{32}\n/);
  assert.ok(Key.fromString(ppk, undefined, "pw").equals(k));
  assert.throws(() => Key.fromString(ppk, undefined, "nope"), keys.BadPassphraseError);
});

test("openssh-key-v1: encrypted keys round trip with each supported cipher", () => {
  const k = Key.generate("ed25519");
  for (const cipher of ["aes256-ctr", "aes128-ctr", "aes256-cbc", "aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com"]) {
    const text = k.toString("openssh", { passphrase: "pw", rounds: 1, cipher, comment: cipher });
    const back = Key.fromString(text, undefined, "pw");
    assert.ok(back.equals(k), cipher);
    assert.equal(back.comment, cipher);
    assert.throws(() => Key.fromString(text, undefined, "wrong"), keys.BadPassphraseError, cipher);
  }
});

test("openssh subtype PEM writes the old PEM form, as Twisted's toString('openssh', subtype='PEM')", () => {
  assert.match(rsa.toString("openssh", { subtype: "PEM" }), /^-----BEGIN RSA PRIVATE KEY-----/);
  assert.match(dsa.toString("openssh", { subtype: "PEM" }), /^-----BEGIN DSA PRIVATE KEY-----/);
  assert.ok(Key.fromString(dsa.toString("pem")).equals(dsa));
  assert.ok(Key.fromString(dsa.toString("pem", { passphrase: "pw" }), undefined, "pw").equals(dsa));
});

test("PEM public keys: SubjectPublicKeyInfo and PKCS#1 RSA PUBLIC KEY", () => {
  const spki = rsa.public().toString("pem");
  assert.match(spki, /^-----BEGIN PUBLIC KEY-----/);
  assert.ok(Key.fromString(spki).equals(rsa.public()));
  const pkcs1 = rsa.public().keyObject().export({ type: "pkcs1", format: "pem" }).toString();
  assert.match(pkcs1, /^-----BEGIN RSA PUBLIC KEY-----/);
  assert.ok(Key.fromString(pkcs1).equals(rsa.public()));
});

test("the format is detected after leading whitespace, and a passphrase may be bytes", () => {
  const k = Key.generate("ed25519");
  assert.ok(Key.fromString("\n\n  " + k.public().toString("openssh")).equals(k.public()));
  const enc = k.toString("openssh", { passphrase: new Uint8Array([1, 2, 3]), rounds: 1 });
  assert.ok(Key.fromString(enc, undefined, new Uint8Array([1, 2, 3])).equals(k));
});

test("string passphrases are NFKC-normalised, as Twisted does", () => {
  const k = Key.generate("ed25519");
  const enc = k.toString("openssh", { passphrase: "\u2167", rounds: 1 }); // ROMAN NUMERAL EIGHT → "VIII"
  assert.ok(Key.fromString(enc, undefined, "VIII").equals(k));
});
