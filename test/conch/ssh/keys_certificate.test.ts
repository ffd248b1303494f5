import { test } from "node:test";
import assert from "node:assert/strict";
import { common, keys } from "@twisted-ts/conch/ssh";

const { Key, Certificate, CertificateError, BadKeyError } = keys;

const ca = Key.generate("ed25519");
const NOW = 1_700_000_000;
const NONCE = new Uint8Array(32).fill(7);

function userCert(terms: Partial<keys.CertificateTerms> = {}, subject = Key.generate("ed25519")): keys.Certificate {
  return ca.signCertificate(subject.public(), { type: "user", keyId: "alice@example", principals: ["alice"], nonce: NONCE, ...terms });
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof CertificateError, `expected a CertificateError, got ${String(e)}`);
    assert.equal(e.code, "ERR_SSH_CERTIFICATE");
    return e.reason;
  }
  assert.fail("the certificate was accepted");
}

test("signCertificate: every key type is certified, and the line reads back with the same fields", () => {
  const subjects = [Key.generate("ed25519"), Key.generate("ecdsa", { bits: 256 }), Key.generate("ecdsa", { bits: 384 }), Key.generate("ecdsa", { bits: 521 }), Key.generate("rsa", { bits: 1024 })];
  const cas = [Key.generate("ed25519"), Key.generate("ecdsa", { bits: 384 }), Key.generate("rsa", { bits: 1024 })];
  for (const caKey of cas) {
    for (const subject of subjects) {
      const cert = caKey.signCertificate(subject.public(), {
        type: "user",
        keyId: "id-1",
        principals: ["alice", "bob"],
        serial: 42n,
        validAfter: 100n,
        validBefore: 200n,
        criticalOptions: { "force-command": "/bin/true", "source-address": "127.0.0.1/32" },
        comment: "a comment",
      });
      const back = Certificate.fromString(cert.toString());
      assert.equal(back.certType, `${subject.sshType()}-cert-v01@openssh.com`);
      assert.ok(back.key.equals(subject.public()));
      assert.ok(back.signatureKey.equals(caKey.public()));
      assert.equal(back.signatureAlgorithm, caKey.type() === "RSA" ? "rsa-sha2-512" : caKey.sshType());
      assert.equal(back.serial, 42n);
      assert.equal(back.type, "user");
      assert.equal(back.keyId, "id-1");
      assert.deepEqual(back.principals, ["alice", "bob"]);
      assert.equal(back.validAfter, 100n);
      assert.equal(back.validBefore, 200n);
      assert.deepEqual([...back.criticalOptions], [["force-command", "/bin/true"], ["source-address", "127.0.0.1/32"]]);
      assert.deepEqual([...back.extensions.keys()], [...keys.DEFAULT_USER_EXTENSIONS].sort());
      assert.equal(back.comment, "a comment");
      assert.deepEqual(back.blob(), cert.blob());
    }
  }
});

test("signCertificate: an RSA CA signs with rsa-sha2-256 when asked, never ssh-rsa by default", () => {
  const rsaCa = Key.generate("rsa", { bits: 1024 });
  const cert = rsaCa.signCertificate(Key.generate("ed25519").public(), { type: "host", keyId: "h", principals: ["h"], signatureAlgorithm: "rsa-sha2-256" });
  assert.equal(cert.signatureAlgorithm, "rsa-sha2-256");
  assert.deepEqual([...cert.extensions], []);
  cert.check({ type: "host", principal: "h", now: NOW });
  const sha1 = rsaCa.signCertificate(Key.generate("ed25519").public(), { type: "host", keyId: "h", principals: ["h"], signatureAlgorithm: "ssh-rsa" });
  assert.equal(refusal(() => sha1.check({ type: "host", principal: "h", now: NOW })), "ca-signature-algorithm");
  sha1.check({ type: "host", principal: "h", now: NOW, caSignatureAlgorithms: ["ssh-rsa"] });
});

test("check: a good certificate passes for its type, principal, window and CA", () => {
  const cert = userCert({ validAfter: BigInt(NOW - 10), validBefore: BigInt(NOW + 10) });
  cert.check({ type: "user", principal: "alice", trustedCAs: [ca.public()], now: NOW });
});

test("check: the validity window is [valid after, valid before), by the injected clock", () => {
  const cert = userCert({ validAfter: BigInt(NOW), validBefore: BigInt(NOW + 60) });
  assert.equal(refusal(() => cert.check({ type: "user", principal: "alice", now: NOW - 1 })), "not-yet-valid");
  cert.check({ type: "user", principal: "alice", now: NOW });
  cert.check({ type: "user", principal: "alice", now: NOW + 59 });
  assert.equal(refusal(() => cert.check({ type: "user", principal: "alice", now: NOW + 60 })), "expired");
});

test("check: principals must list the name, and an empty list matches nothing (OpenSSH 10.3)", () => {
  assert.equal(refusal(() => userCert().check({ type: "user", principal: "mallory", now: NOW })), "principal");
  assert.equal(refusal(() => userCert({ principals: [] }).check({ type: "user", principal: "alice", now: NOW })), "no-principals");
});

test("check: a host certificate is refused for user authentication, and the other way round", () => {
  assert.equal(refusal(() => userCert({ type: "host" }).check({ type: "user", principal: "alice", now: NOW })), "type");
  assert.equal(refusal(() => userCert().check({ type: "host", principal: "alice", now: NOW })), "type");
});

test("check: a CA that is not trusted is refused", () => {
  assert.equal(refusal(() => userCert().check({ type: "user", principal: "alice", trustedCAs: [Key.generate("ed25519").public()], now: NOW })), "untrusted-ca");
});

test("check: unknown critical options refuse the certificate; unknown extensions are ignored", () => {
  const odd = userCert({ criticalOptions: { "no-such-option@example.com": "x" } });
  assert.equal(refusal(() => odd.check({ type: "user", principal: "alice", now: NOW })), "critical-option");
  const ext = userCert({ extensions: { "no-such-extension@example.com": "", "permit-pty": "" } });
  ext.check({ type: "user", principal: "alice", now: NOW });
  assert.equal(ext.extensions.has("no-such-extension@example.com"), true);
  userCert({ criticalOptions: { "verify-required": "" } }).check({ type: "user", principal: "alice", now: NOW });
});

test("fromBlob: a certificate whose signature does not verify is refused", () => {
  const blob = userCert().blob();
  // Flip a byte of the key id region (inside the signed part), then of the signature itself.
  const tampered = blob.slice();
  const at = Buffer.from(tampered).indexOf("alice@example");
  tampered[at] = tampered[at]! ^ 1;
  assert.equal(refusal(() => Certificate.fromBlob(tampered)), "signature");
  const badSig = blob.slice();
  badSig[badSig.length - 5] = badSig[badSig.length - 5]! ^ 1;
  assert.equal(refusal(() => Certificate.fromBlob(badSig)), "signature");
});

test("fromBlob: a truncated certificate is a BadKeyError at every length", () => {
  const blob = userCert().blob();
  for (let n = 0; n < blob.length; n++) {
    assert.throws(() => Certificate.fromBlob(blob.subarray(0, n)), (e: unknown) => e instanceof BadKeyError, `length ${n}`);
  }
  assert.throws(() => Certificate.fromBlob(Uint8Array.from([...blob, 0])), /unexpected bytes/);
});

/** A user certificate body for alice written field by field, for inputs signCertificate would not make. */
function handMadeBody(keyId: string, extensions: Uint8Array, signatureKey: Uint8Array): Uint8Array {
  const pub = new common.SSHReader(Key.generate("ed25519").public().blob());
  pub.string();
  return new common.SSHWriter()
    .string("ssh-ed25519-cert-v01@openssh.com")
    .string(NONCE)
    .raw(pub.rest())
    .uint64(1n)
    .uint32(1)
    .string(keyId)
    .string(new common.SSHWriter().string("alice").finish())
    .uint64(0n)
    .uint64(keys.CERT_VALID_FOREVER)
    .string(new Uint8Array(0))
    .string(extensions)
    .string(new Uint8Array(0))
    .string(signatureKey)
    .finish()
    .slice();
}

const signedBlob = (body: Uint8Array): Uint8Array => new common.SSHWriter().raw(body).string(ca.sign(body)).finish().slice();

test("fromBlob: a certificate signed by a certificate is refused", () => {
  const body = handMadeBody("signed-by-a-cert", new Uint8Array(0), userCert().blob());
  assert.equal(refusal(() => Certificate.fromBlob(signedBlob(body))), "ca-is-certificate");
});

test("Key.fromString on a certificate line points at Certificate", () => {
  assert.throws(() => Key.fromString(userCert().toString()), /is a certificate: read it with Certificate/);
});

test("fromBlob: an unknown extension whose data is not one string is kept raw and ignored", () => {
  const odd = Uint8Array.of(1, 2, 3);
  const extensions = new common.SSHWriter().string("odd@example.com").string(odd).string("permit-pty").string(new Uint8Array(0)).finish();
  const cert = Certificate.fromBlob(signedBlob(handMadeBody("odd-extension", extensions, ca.public().blob())));
  assert.equal(cert.extensions.get("odd@example.com"), "");
  assert.deepEqual(cert.extensionData.get("odd@example.com"), odd);
  cert.check({ type: "user", principal: "alice", now: NOW });
});
