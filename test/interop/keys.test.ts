/**
 * Keys against OpenSSH's ssh-keygen, both ways: keys it makes (every type; plain, encrypted, -m PEM,
 * -m PKCS8, -e RFC 4716) load here with its fingerprints; keys, signatures and files made here are
 * accepted by ssh-keygen -y / -l / -i / -Y verify.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { keys } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand, tempDir } from "../_support/peers.js";

const { Key } = keys;
// ssh-keygen refuses passphrases under 5 characters for PEM files; -a 2 keeps bcrypt_pbkdf fast.
const PASS = "secret-pass";
const ROUNDS = "2";

const TYPES: [string, string[]][] = [
  ["ed25519", ["-t", "ed25519"]],
  ["ecdsa256", ["-t", "ecdsa", "-b", "256"]],
  ["ecdsa384", ["-t", "ecdsa", "-b", "384"]],
  ["ecdsa521", ["-t", "ecdsa", "-b", "521"]],
  ["rsa", ["-t", "rsa", "-b", "1024"]],
  ["dsa", ["-t", "dsa"]],
];

async function keygen(args: string[], input?: string): Promise<string> {
  const r = await runCommand("ssh-keygen", args, input !== undefined ? { input } : {});
  if (r.code !== 0) throw new Error(`ssh-keygen ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout.toString();
}

/** `ssh-keygen -l -E hash -f file` → the fingerprint field. */
async function fingerprint(path: string, hash: "md5" | "sha256"): Promise<string> {
  const out = await keygen(["-l", "-E", hash, "-f", path]);
  const fp = out.split(" ")[1]!;
  return hash === "md5" ? fp.replace(/^MD5:/, "") : fp;
}

function setup(t: TestContext): string | undefined {
  if (requirePeer(t, "ssh-keygen", "openssh-client") === undefined) return undefined;
  return tempDir(t, "twisted-ts-keys-");
}

for (const [name, typeArgs] of TYPES) {
  test(`ssh-keygen ${name} keys load in every form it writes, with its MD5 and SHA256 fingerprints`, async (t) => {
    const dir = setup(t);
    if (dir === undefined) return;
    const base = join(dir, name);
    await keygen(["-q", ...typeArgs, "-N", "", "-C", `${name} comment`, "-f", base]);
    const md5 = await fingerprint(base + ".pub", "md5");
    const sha256 = await fingerprint(base + ".pub", "sha256");
    const check = (k: keys.Key, what: string, isPublic: boolean): void => {
      assert.equal(k.fingerprint(), md5, `${what} md5`);
      assert.equal(k.fingerprint("sha256"), sha256, `${what} sha256`);
      assert.equal(k.isPublic(), isPublic, what);
    };
    const priv = Key.fromFile(base);
    check(priv, "openssh-key-v1", false);
    assert.equal(priv.comment, `${name} comment`);
    check(Key.fromFile(base + ".pub"), ".pub", true);
    assert.equal(Key.fromFile(base + ".pub").comment, `${name} comment`);

    // Encrypted openssh-key-v1 (bcrypt_pbkdf + aes256-ctr), then re-encrypted with aes256-gcm.
    const enc = join(dir, `${name}_enc`);
    writeFileSync(enc, readFileSync(base), { mode: 0o600 });
    await keygen(["-q", "-p", "-P", "", "-N", PASS, "-a", ROUNDS, "-f", enc]);
    assert.throws(() => Key.fromFile(enc), keys.EncryptedKeyError);
    assert.throws(() => Key.fromFile(enc, undefined, "wrong-pass"), keys.BadPassphraseError);
    check(Key.fromFile(enc, undefined, PASS), "encrypted openssh-key-v1", false);
    await keygen(["-q", "-p", "-P", PASS, "-N", PASS, "-a", ROUNDS, "-Z", "aes256-gcm@openssh.com", "-f", enc]);
    check(Key.fromFile(enc, undefined, PASS), "aes256-gcm openssh-key-v1", false);
    await keygen(["-q", "-p", "-P", PASS, "-N", PASS, "-a", ROUNDS, "-Z", "chacha20-poly1305@openssh.com", "-f", enc]);
    check(Key.fromFile(enc, undefined, PASS), "chacha20-poly1305 openssh-key-v1", false);

    // -m PEM and -m PKCS8, plain and encrypted (OpenSSH writes Ed25519 in its own format for these).
    for (const m of ["PEM", "PKCS8"]) {
      for (const pass of ["", PASS]) {
        const p = join(dir, `${name}_${m}_${pass === "" ? "plain" : "enc"}`);
        writeFileSync(p, readFileSync(base), { mode: 0o600 });
        await keygen(["-q", "-p", "-P", "", "-N", pass, "-m", m, "-f", p]);
        if (name !== "ed25519") assert.match(readFileSync(p, "utf8"), m === "PEM" ? /-----BEGIN (RSA|EC|DSA) PRIVATE KEY-----/ : /-----BEGIN (ENCRYPTED )?PRIVATE KEY-----/);
        check(Key.fromFile(p, undefined, pass === "" ? undefined : pass), `-m ${m} ${pass === "" ? "plain" : "encrypted"}`, false);
      }
    }

    // -e: RFC 4716 (every type), PKCS8 and PEM public keys (not for Ed25519).
    const rfc = join(dir, `${name}.rfc`);
    writeFileSync(rfc, await keygen(["-e", "-f", base + ".pub"]));
    check(Key.fromFile(rfc), "RFC 4716", true);
    if (name !== "ed25519") {
      for (const m of ["PKCS8", "PEM"]) {
        if (m === "PEM" && name.startsWith("ecdsa")) continue;
        check(Key.fromString(await keygen(["-e", "-m", m, "-f", base + ".pub"])), `-e -m ${m}`, true);
      }
    }
  });
}

test("ssh-keygen -y, -l and -i accept the keys and files we write, plain and encrypted", async (t) => {
  const dir = setup(t);
  if (dir === undefined) return;
  const made = [Key.generate("ed25519"), Key.generate("ecdsa", { bits: 256 }), Key.generate("ecdsa", { bits: 384 }), Key.generate("ecdsa", { bits: 521 }), Key.generate("rsa", { bits: 2048 })];
  for (const key of made) {
    const base = join(dir, key.sshType());
    const pubLine = key.public().toString("openssh", { comment: "ours" });
    writeFileSync(base + ".pub", pubLine + "\n");
    assert.equal(await fingerprint(base + ".pub", "sha256"), key.fingerprint("sha256"), `${key.sshType()} -l`);
    assert.equal(await fingerprint(base + ".pub", "md5"), key.fingerprint("md5"));
    const forms: [string, string, string][] = [
      ["v1", key.toString("openssh", { comment: "ours" }), ""],
      ["v1 encrypted", key.toString("openssh", { comment: "ours", passphrase: PASS, rounds: 2 }), PASS],
      ["v1 aes256-gcm", key.toString("openssh", { comment: "ours", passphrase: PASS, rounds: 2, cipher: "aes256-gcm@openssh.com" }), PASS],
      ["v1 chacha20-poly1305", key.toString("openssh", { comment: "ours", passphrase: PASS, rounds: 2, cipher: "chacha20-poly1305@openssh.com" }), PASS],
    ];
    if (key.type() !== "Ed25519") {
      forms.push(["PEM", key.toString("pem"), ""], ["PEM encrypted", key.toString("pem", { passphrase: PASS }), PASS], ["PKCS8 encrypted", key.toString("pkcs8", { passphrase: PASS }), PASS]);
    }
    for (const [what, text, pass] of forms) {
      const p = `${base}_${what.replace(/ /g, "_")}`;
      writeFileSync(p, text, { mode: 0o600 });
      const out = await keygen(["-y", "-P", pass, "-f", p]);
      assert.equal(out.trim().split(" ").slice(0, 2).join(" "), pubLine.split(" ").slice(0, 2).join(" "), `${key.sshType()} ${what}`);
    }
    writeFileSync(base + ".rfc", key.public().toString("rfc4716", { comment: "ours" }));
    assert.equal((await keygen(["-i", "-f", base + ".rfc"])).trim(), key.public().toString("openssh", { comment: "" }));
  }
});

test("ssh-keygen -Y verify accepts our SSHSIG signatures; we verify ssh-keygen -Y sign's", async (t) => {
  const dir = setup(t);
  if (dir === undefined) return;
  const message = new TextEncoder().encode("a message to sign\n");
  const msgPath = join(dir, "message");
  writeFileSync(msgPath, message);
  for (const key of [Key.generate("ed25519"), Key.generate("ecdsa", { bits: 384 }), Key.generate("rsa", { bits: 2048 })]) {
    const signers = join(dir, "allowed_signers");
    writeFileSync(signers, `me@example ${key.public().toString("openssh")}\n`);
    // Ours → ssh-keygen.
    const sigPath = join(dir, "ours.sig");
    writeFileSync(sigPath, keys.sshsig.sign(key, message, "file"));
    const r = await runCommand("ssh-keygen", ["-Y", "verify", "-f", signers, "-I", "me@example", "-n", "file", "-s", sigPath], { input: message });
    assert.equal(r.code, 0, `${key.sshType()}: ${r.stderr}`);
    const wrongNs = await runCommand("ssh-keygen", ["-Y", "verify", "-f", signers, "-I", "me@example", "-n", "git", "-s", sigPath], { input: message });
    assert.notEqual(wrongNs.code, 0, "another namespace must fail");
    // ssh-keygen → ours.
    const keyPath = join(dir, `signer_${key.type()}`);
    writeFileSync(keyPath, key.toString("openssh"), { mode: 0o600 });
    const signedPath = join(dir, `message_${key.type()}`);
    writeFileSync(signedPath, message);
    await keygen(["-Y", "sign", "-f", keyPath, "-n", "file", signedPath]);
    const theirs = readFileSync(signedPath + ".sig", "utf8");
    assert.equal(keys.sshsig.verify(key.public(), theirs, message, "file"), true, key.sshType());
    assert.equal(keys.sshsig.verify(key.public(), theirs, message, "git"), false);
    assert.equal(keys.sshsig.verify(key.public(), theirs, new TextEncoder().encode("other"), "file"), false);
  }
});

test("the ckeygen bin makes keys ssh-keygen reads, and prints ssh-keygen's -l line", async (t) => {
  const dir = setup(t);
  if (dir === undefined) return;
  const bin = new URL("../../../packages/conch/dist/scripts/ckeygen.js", import.meta.url).pathname;
  const path = join(dir, "id_ecdsa");
  const gen = await runCommand(process.execPath, [bin, "-q", "-t", "ecdsa", "-b", "384", "-f", path, "-N", PASS, "-a", ROUNDS, "-C", "ckeygen@test"]);
  assert.equal(gen.code, 0, gen.stderr);
  const y = await keygen(["-y", "-P", PASS, "-f", path]);
  assert.equal(y.trim(), readFileSync(path + ".pub", "utf8").trim());
  for (const hash of ["sha256", "md5"]) {
    const ours = await runCommand(process.execPath, [bin, "-l", "-E", hash, "-f", path]);
    assert.equal(ours.stdout.toString(), await keygen(["-l", "-E", hash, "-f", path + ".pub"]));
  }
  const e = await runCommand(process.execPath, [bin, "-e", "-f", path + ".pub"]);
  writeFileSync(join(dir, "e.rfc"), e.stdout);
  assert.equal((await keygen(["-i", "-f", join(dir, "e.rfc")])).trim().split(" ")[1], readFileSync(path + ".pub", "utf8").split(" ")[1]);
});
