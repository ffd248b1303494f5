import { test } from "node:test";
import assert from "node:assert/strict";
import { common, keys } from "@twisted-ts/conch/ssh";

const { Key, BadKeyError, EncryptedKeyError, BadPassphraseError } = keys;
const ed = Key.generate("ed25519");
const p256 = Key.generate("ecdsa", { bits: 256 });
const rsa = Key.generate("rsa", { bits: 1024 });

/** Asserts that `fn` throws BadKeyError (the class itself, or a subclass) with a message matching `re`. */
function bad(fn: () => unknown, re: RegExp, cls: new (...a: never[]) => Error = BadKeyError): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    assert.match((e as Error).message, re);
    return true;
  });
}

test("a truncated wire blob is a BadKeyError saying it is truncated, at every cut", () => {
  for (const k of [ed, p256, rsa]) {
    const blob = k.blob();
    for (let n = 1; n < blob.length; n++) bad(() => Key.fromString(blob.subarray(0, n), "blob"), /truncated/);
  }
});

test("a blob with bytes after the key says so", () => {
  bad(() => Key.fromString(common.concatBytes(ed.blob(), Uint8Array.of(1, 2, 3)), "blob"), /3 unexpected bytes after the ssh-ed25519 key/);
});

test("ssh-ed25519: a public key of the wrong length names both lengths", () => {
  const blob = common.concatBytes(common.NS("ssh-ed25519"), common.NS(new Uint8Array(31)));
  bad(() => Key.fromString(blob), /Ed25519 public key is 32 bytes, this one is 31/);
});

test("ecdsa: a curve name that does not match the key type is refused", () => {
  const r = new common.SSHReader(p256.blob());
  r.string();
  r.string();
  const point = r.string();
  const blob = common.concatBytes(common.NS("ecdsa-sha2-nistp256"), common.NS("nistp384"), common.NS(point));
  bad(() => Key.fromString(blob), /curve name "nistp384" does not match the key type ecdsa-sha2-nistp256/);
});

test("ecdsa: a point of another curve's size is refused as not matching the name", () => {
  const r = new common.SSHReader(Key.generate("ecdsa", { bits: 384 }).blob());
  r.string();
  r.string();
  const point384 = r.string();
  const blob = common.concatBytes(common.NS("ecdsa-sha2-nistp256"), common.NS("nistp256"), common.NS(point384));
  bad(() => Key.fromString(blob), /97 bytes, but a nistp256 point is 65: the curve does not match/);
});

test("ecdsa: a point that is not on the curve is refused", () => {
  const r = new common.SSHReader(p256.blob());
  r.string();
  r.string();
  const point = r.string().slice();
  point[64] = point[64]! ^ 1;
  const blob = common.concatBytes(common.NS("ecdsa-sha2-nistp256"), common.NS("nistp256"), common.NS(point));
  bad(() => Key.fromString(blob), /invalid ecdsa-sha2-nistp256 key/);
});

test("ecdsa: a compressed point is refused with the reason", () => {
  const point = new Uint8Array(33);
  point[0] = 2;
  const blob = common.concatBytes(common.NS("ecdsa-sha2-nistp256"), common.NS("nistp256"), common.NS(point));
  bad(() => Key.fromString(blob), /not in uncompressed form/);
});

test("an unknown key type in a blob lists the supported ones", () => {
  bad(() => Key.fromString(common.concatBytes(common.NS("ssh-foo"), common.NS("x")), "blob"), /unknown key type "ssh-foo" \(supported: /);
});

test("a key line with nothing after the type asks for the base64 data", () => {
  bad(() => Key.fromString("ssh-ed25519"), /nothing after the key type "ssh-ed25519": expected the base64 key data/);
  bad(() => Key.fromString("ssh-rsa   \n"), /nothing after the key type "ssh-rsa"/);
});

test("garbage base64 on a key line names the bad character", () => {
  bad(() => Key.fromString("ssh-ed25519 AAAA$$$$ comment"), /not valid base64: unexpected character "\$" at offset 4/);
  bad(() => Key.fromString("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI"), /not valid base64|truncated/);
});

test("a key line whose type differs from its data's type says the line was mixed up", () => {
  const line = ed.public().toString("openssh").replace("ssh-ed25519", "ssh-rsa");
  bad(() => Key.fromString(line), /says ssh-rsa but its data is a ssh-ed25519 key/);
});

test("a truncated key line reports the truncation", () => {
  const line = rsa.public().toString("openssh");
  bad(() => Key.fromString(line.slice(0, 60)), /truncated|not valid base64/);
});

test("data in no known format says which formats are expected", () => {
  bad(() => Key.fromString("hello world"), /cannot tell the key format .*expected an OpenSSH public key line/);
  bad(() => Key.fromString(""), /empty/);
});

test("a PEM block cut short says the END line is missing", () => {
  const pem = rsa.toString("pem");
  bad(() => Key.fromString(pem.slice(0, pem.length - 40)), /no '-----END RSA PRIVATE KEY-----' line: the file is truncated/);
});

test("a damaged PEM body is a BadKeyError, not an OpenSSL crash", () => {
  const pem = rsa.toString("pem").replace(/\n[A-Za-z0-9+/]{10}/, "\nAAAAAAAAAA");
  bad(() => Key.fromString(pem), /could not be read|invalid/);
});

test("a truncated openssh-key-v1 body says it is truncated", () => {
  const body = ed.toString("openssh").split("\n").slice(1, -2).join("");
  const raw = Buffer.from(body, "base64");
  const cut = `-----BEGIN OPENSSH PRIVATE KEY-----\n${raw.subarray(0, raw.length - 30).toString("base64")}\n-----END OPENSSH PRIVATE KEY-----\n`;
  bad(() => Key.fromString(cut), /truncated/);
});

test("an encrypted key without a passphrase is an EncryptedKeyError; a wrong one says so", () => {
  const v1 = ed.toString("openssh", { passphrase: "right", rounds: 1 });
  bad(() => Key.fromString(v1), /encrypted \(aes256-ctr\): a passphrase is needed/, EncryptedKeyError);
  bad(() => Key.fromString(v1, undefined, "wrong"), /wrong passphrase/, BadPassphraseError);
  const pem = rsa.toString("pem", { passphrase: "right" });
  bad(() => Key.fromString(pem), /passphrase is needed/, EncryptedKeyError);
  bad(() => Key.fromString(pem, undefined, "wrong"), /wrong passphrase/, BadPassphraseError);
  const ppk = p256.toString("putty", { passphrase: "right", subtype: "v2" });
  bad(() => Key.fromString(ppk), /passphrase is needed/, EncryptedKeyError);
  bad(() => Key.fromString(ppk, undefined, "wrong"), /wrong passphrase/, BadPassphraseError);
});

test("a PuTTY key edited by hand fails its MAC check", () => {
  const ppk = ed.toString("putty", { comment: "original" }).replace("Comment: original", "Comment: edited");
  bad(() => Key.fromString(ppk), /Private-MAC does not match/);
});

test("an RSA private key whose primes do not give its modulus is refused", () => {
  const blob = rsa.privateBlob();
  const r = new common.SSHReader(blob);
  r.string();
  const [n, e, d, iqmp, p, q] = [r.mpint(), r.mpint(), r.mpint(), r.mpint(), r.mpint(), r.mpint()];
  const w = new common.SSHWriter().string("ssh-rsa").mpint(n + 2n).mpint(e).mpint(d).mpint(iqmp).mpint(p).mpint(q);
  bad(() => Key.fromString(w.finish(), "private_blob"), /p × q is not the modulus/);
});

test("an Ed25519 private key whose seed does not give its public key is refused", () => {
  const w = new common.SSHWriter().string("ssh-ed25519").string(ed.blob().subarray(19)).string(common.concatBytes(new Uint8Array(32), ed.blob().subarray(19)));
  bad(() => Key.fromString(w.finish(), "private_blob"), /seed does not give the public key/);
});

test("an unknown format name for fromString or toString is a BadKeyError", () => {
  bad(() => Key.fromString(ed.blob(), "nonsense"), /unknown key format "nonsense"/);
  bad(() => ed.toString("nonsense"), /unknown key format "nonsense"/);
});
