import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { main, type IO } from "@twisted-ts/conch/scripts/ckeygen";
import { keys } from "@twisted-ts/conch/ssh";
import { tempDir } from "../../_support/peers.js";

const { Key } = keys;

/** An IO that records output and answers prompts from a list. */
class FakeIO implements IO {
  out = "";
  err = "";
  prompts: [string, boolean][] = [];
  constructor(private readonly answers: string[] = []) {}
  stdout(t: string): void {
    this.out += t;
  }
  stderr(t: string): void {
    this.err += t;
  }
  prompt(q: string, hidden: boolean): Promise<string> {
    this.prompts.push([q, hidden]);
    const a = this.answers.shift();
    if (a === undefined) throw new Error(`unexpected prompt ${q}`);
    return Promise.resolve(a);
  }
}

async function ckeygen(args: string[], answers: string[] = []): Promise<{ code: number; io: FakeIO }> {
  const io = new FakeIO(answers);
  const code = await main(args, io);
  return { code, io };
}

test("ckeygen -t ed25519 writes the private key (mode 600) and the .pub with the comment", async (t) => {
  const path = join(tempDir(t), "id_ed25519");
  const { code, io } = await ckeygen(["-t", "ed25519", "-f", path, "-N", "", "-C", "me@example"]);
  assert.equal(code, 0, io.err);
  assert.match(io.out, /^Generating public\/private ed25519 key pair\.\nYour identification has been saved in .*\nThe key fingerprint is:\nSHA256:\S+ me@example \(ED25519\)\n$/s);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const priv = Key.fromFile(path);
  const pub = Key.fromFile(path + ".pub");
  assert.ok(priv.public().equals(pub));
  assert.equal(pub.comment, "me@example");
  assert.match(readFileSync(path, "utf8"), /^-----BEGIN OPENSSH PRIVATE KEY-----/);
});

test("ckeygen -t ecdsa -b 384 and -t rsa -b 1024 make keys of those sizes", async (t) => {
  const dir = tempDir(t);
  assert.equal((await ckeygen(["-q", "-t", "ecdsa", "-b", "384", "-f", join(dir, "ec"), "--no-passphrase"])).code, 0);
  assert.equal(Key.fromFile(join(dir, "ec")).sshType(), "ecdsa-sha2-nistp384");
  assert.equal((await ckeygen(["-q", "-t", "rsa", "-b", "1024", "-f", join(dir, "rsa"), "-N", ""])).code, 0);
  assert.equal(Key.fromFile(join(dir, "rsa")).size(), 1024);
});

test("ckeygen -t with -N encrypts the key; the passphrase is asked (hidden) twice when -N is absent", async (t) => {
  const dir = tempDir(t);
  assert.equal((await ckeygen(["-q", "-t", "ed25519", "-f", join(dir, "a"), "-N", "pw", "-a", "1"])).code, 0);
  assert.throws(() => Key.fromFile(join(dir, "a")), keys.EncryptedKeyError);
  assert.ok(Key.fromFile(join(dir, "a"), undefined, "pw"));
  const { code, io } = await ckeygen(["-q", "-t", "ed25519", "-f", join(dir, "b"), "-a", "1"], ["one", "two", "pw2", "pw2"]);
  assert.equal(code, 0);
  assert.deepEqual(io.prompts.map(([, hidden]) => hidden), [true, true, true, true]);
  assert.match(io.out, /Passphrases do not match\.  Try again\./);
  assert.ok(Key.fromFile(join(dir, "b"), undefined, "pw2"));
});

test("ckeygen -t asks before overwriting an existing file, and stops on no", async (t) => {
  const path = join(tempDir(t), "id");
  writeFileSync(path, "keep me");
  const { code, io } = await ckeygen(["-q", "-t", "ed25519", "-f", path, "-N", ""], ["n"]);
  assert.equal(code, 1);
  assert.match(io.prompts[0]![0], /already exists\.\nOverwrite \(y\/n\)\? $/);
  assert.equal(readFileSync(path, "utf8"), "keep me");
});

test("ckeygen -t with an unknown type names the supported ones", async () => {
  const { code, io } = await ckeygen(["-t", "rsa1"]);
  assert.equal(code, 1);
  assert.match(io.err, /Key type was rsa1, must be one of ed25519, ecdsa, rsa/);
});

test("ckeygen -l prints the fingerprint as ssh-keygen -l does, in SHA256 or MD5", async (t) => {
  const path = join(tempDir(t), "k");
  const key = Key.generate("ecdsa");
  writeFileSync(path, key.toString("openssh", { comment: "c1" }));
  writeFileSync(path + ".pub", key.public().toString("openssh", { comment: "c1" }));
  let r = await ckeygen(["-l", "-f", path]);
  assert.equal(r.io.out, `256 ${key.fingerprint("sha256")} c1 (ECDSA)\n`);
  r = await ckeygen(["-lE", "md5", "-f", path]);
  assert.equal(r.io.out, `256 MD5:${key.fingerprint("md5")} c1 (ECDSA)\n`);
  r = await ckeygen(["-l", "-o", "md5-hex", "-f", path]);
  assert.equal(r.io.out, `256 ${key.fingerprint("md5")} c1 (ECDSA)\n`);
  r = await ckeygen(["-l", "-E", "sha1", "-f", path]);
  assert.equal(r.code, 1);
  assert.match(r.io.err, /unsupported fingerprint hash "sha1"/);
});

test("ckeygen -y prints the public key of a private key, asking for its passphrase", async (t) => {
  const path = join(tempDir(t), "k");
  const key = Key.generate("ed25519");
  writeFileSync(path, key.toString("openssh", { comment: "c2", passphrase: "pw", rounds: 1 }));
  let r = await ckeygen(["-y", "-f", path], ["pw"]);
  assert.equal(r.code, 0);
  assert.deepEqual(r.io.prompts, [["Enter passphrase: ", true]]);
  assert.equal(r.io.out, key.public().toString("openssh", { comment: "c2" }) + "\n");
  r = await ckeygen(["-y", "-f", path, "-P", "bad"]);
  assert.equal(r.code, 1);
  assert.match(r.io.err, /wrong passphrase/);
});

test("ckeygen -p changes the passphrase and keeps the comment", async (t) => {
  const path = join(tempDir(t), "k");
  const key = Key.generate("ed25519");
  writeFileSync(path, key.toString("openssh", { comment: "keep", passphrase: "old", rounds: 1 }));
  const r = await ckeygen(["-p", "-f", path, "-P", "old", "-N", "new", "-a", "1"]);
  assert.equal(r.code, 0, r.io.err);
  assert.equal(r.io.out, "Your identification has been saved with the new passphrase.\n");
  const back = Key.fromFile(path, undefined, "new");
  assert.ok(back.equals(key));
  assert.equal(back.comment, "keep");
  const wrong = await ckeygen(["-p", "-f", path, "-P", "old", "-N", "x"]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.io.err, /^Could not change passphrase: wrong passphrase/);
  const clear = await ckeygen(["-p", "-f", path, "-P", "new", "-N", ""]);
  assert.equal(clear.code, 0);
  assert.ok(Key.fromFile(path).equals(key), "an empty new passphrase removes the encryption");
});

test("ckeygen -e exports RFC 4716 (and PKCS8, PEM); -i imports it back", async (t) => {
  const dir = tempDir(t);
  const key = Key.generate("rsa", { bits: 1024 });
  writeFileSync(join(dir, "k.pub"), key.public().toString("openssh", { comment: "c" }));
  const e = await ckeygen(["-e", "-f", join(dir, "k.pub")]);
  assert.match(e.io.out, /^---- BEGIN SSH2 PUBLIC KEY ----\nComment: "1024-bit RSA, converted by .* from OpenSSH"\n/);
  writeFileSync(join(dir, "k.rfc"), e.io.out);
  const i = await ckeygen(["-i", "-f", join(dir, "k.rfc")]);
  assert.equal(i.io.out, key.public().toString("openssh", { comment: "" }) + "\n");
  const p8 = await ckeygen(["-e", "-m", "PKCS8", "-f", join(dir, "k.pub")]);
  assert.match(p8.io.out, /^-----BEGIN PUBLIC KEY-----/);
  const pem = await ckeygen(["-e", "-m", "pem", "-f", join(dir, "k.pub")]);
  assert.match(pem.io.out, /^-----BEGIN RSA PUBLIC KEY-----/);
  writeFileSync(join(dir, "k.p8"), p8.io.out);
  assert.equal((await ckeygen(["-i", "-m", "PKCS8", "-f", join(dir, "k.p8")])).io.out, i.io.out);
});

test("ckeygen reports a bad key file in words and exits 1", async (t) => {
  const path = join(tempDir(t), "bad");
  writeFileSync(path, "ssh-ed25519\n");
  const r = await ckeygen(["-l", "-f", path]);
  assert.equal(r.code, 1);
  assert.match(r.io.err, /nothing after the key type "ssh-ed25519"/);
  assert.equal(existsSync(path + ".pub"), false);
});

test("ckeygen rejects unknown options and prints usage without an action", async () => {
  let r = await ckeygen(["-Z"]);
  assert.equal(r.code, 1);
  assert.match(r.io.err, /unknown option -Z/);
  r = await ckeygen([]);
  assert.equal(r.code, 1);
  assert.match(r.io.out, /^Usage: ckeygen/);
  r = await ckeygen(["--help"]);
  assert.equal(r.code, 0);
});
