import { test } from "node:test";
import assert from "node:assert/strict";
import { keys } from "@twisted-ts/conch/ssh";

const { Key, sshsig } = keys;
const message = new TextEncoder().encode("release-1.0.tar.gz contents");

test("SSHSIG: a signature verifies for its key, message and namespace only", () => {
  for (const key of [Key.generate("ed25519"), Key.generate("ecdsa", { bits: 521 }), Key.generate("rsa", { bits: 1024 })]) {
    const armoured = sshsig.sign(key, message, "file");
    assert.match(armoured, /^-----BEGIN SSH SIGNATURE-----\n(?:[A-Za-z0-9+/=]{1,76}\n)+-----END SSH SIGNATURE-----\n$/);
    assert.equal(sshsig.verify(key.public(), armoured, message, "file"), true, key.sshType());
    assert.equal(sshsig.verify(key.public(), armoured, message, "git"), false);
    assert.equal(sshsig.verify(key.public(), armoured, new TextEncoder().encode("other"), "file"), false);
    assert.equal(sshsig.verify(Key.generate("ed25519").public(), armoured, message, "file"), false);
    const parsed = sshsig.parse(armoured);
    assert.equal(parsed.namespace, "file");
    assert.equal(parsed.hash, "sha512");
    assert.deepEqual(parsed.publicKey, key.blob());
  }
});

test("SSHSIG: RSA keys sign with rsa-sha2-512, as ssh-keygen -Y sign requires", () => {
  const key = Key.generate("rsa", { bits: 1024 });
  const sig = sshsig.parse(sshsig.sign(key, message, "file")).signature;
  assert.equal(Buffer.from(sig.subarray(4, 4 + 12)).toString(), "rsa-sha2-512");
});

test("SSHSIG: sha256 signatures verify; an empty namespace is refused; damaged text is false", () => {
  const key = Key.generate("ed25519");
  assert.equal(sshsig.verify(key.public(), sshsig.sign(key, message, "file", "sha256"), message, "file"), true);
  assert.throws(() => sshsig.sign(key, message, ""), keys.BadKeyError);
  assert.equal(sshsig.verify(key.public(), "-----BEGIN SSH SIGNATURE-----\nAAAA\n-----END SSH SIGNATURE-----\n", message, "file"), false);
  assert.equal(sshsig.verify(key.public(), "not a signature", message, "file"), false);
});
