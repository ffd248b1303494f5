/**
 * PuTTY keys against puttygen (putty-tools): .ppk v3 and v2, plain and encrypted, read both ways.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { keys } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand, tempDir } from "../_support/peers.js";

const { Key } = keys;
const PASS = "putty-pass";

async function puttygen(args: string[]): Promise<string> {
  const r = await runCommand("puttygen", args);
  if (r.code !== 0) throw new Error(`puttygen ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
  return r.stdout.toString();
}

function setup(t: TestContext): string | undefined {
  if (requirePeer(t, "puttygen", "putty-tools") === undefined) return undefined;
  const dir = tempDir(t, "twisted-ts-putty-");
  writeFileSync(join(dir, "pass"), PASS);
  return dir;
}

const TYPES: [string, string[]][] = [
  ["ed25519", ["-t", "ed25519"]],
  ["ecdsa256", ["-t", "ecdsa", "-b", "256"]],
  ["ecdsa521", ["-t", "ecdsa", "-b", "521"]],
  ["rsa", ["-t", "rsa", "-b", "1024"]],
  ["dsa", ["-t", "dsa", "-b", "1024"]],
];

for (const [name, typeArgs] of TYPES) {
  test(`puttygen ${name} keys load from .ppk v3 and v2, plain and encrypted, with puttygen's fingerprints`, async (t) => {
    const dir = setup(t);
    if (dir === undefined) return;
    const pass = join(dir, "pass");
    const v3 = join(dir, `${name}.ppk`);
    await puttygen(["-q", ...typeArgs, "-C", `${name} putty`, "-o", v3, "--new-passphrase", "/dev/null"]);
    const pub = Key.fromString(await puttygen([v3, "-O", "public-openssh"]));
    const sha256 = (await puttygen([v3, "-l", "-E", "sha256"])).trim().split(" ")[2];
    const files: [string, string, string | undefined][] = [["v3 plain", v3, undefined]];
    const v3enc = join(dir, `${name}_enc3.ppk`);
    // puttygen refuses a conversion that changes nothing it counts, so the comment is set again.
    // Small Argon2 parameters keep the test fast (PuTTY's defaults take a second in JavaScript);
    // argon2i checks the other Argon2 flavours are read too.
    await puttygen([v3, "-O", "private", "-o", v3enc, "--new-passphrase", pass, "-C", `${name} putty`, "--ppk-param", `memory=256,passes=2,kdf=${name === "rsa" ? "argon2i" : "argon2id"}`]);
    files.push(["v3 encrypted", v3enc, PASS]);
    const v2 = join(dir, `${name}_v2.ppk`);
    await puttygen([v3, "-O", "private", "-o", v2, "--ppk-param", "version=2", "-C", `${name} putty`]);
    files.push(["v2 plain", v2, undefined]);
    const v2enc = join(dir, `${name}_enc2.ppk`);
    await puttygen([v3, "-O", "private", "-o", v2enc, "--ppk-param", "version=2", "--new-passphrase", pass, "-C", `${name} putty`]);
    files.push(["v2 encrypted", v2enc, PASS]);
    assert.match(readFileSync(v2enc, "utf8"), /^PuTTY-User-Key-File-2: .*\nEncryption: aes256-cbc\n/);
    for (const [what, path, pp] of files) {
      if (pp !== undefined) assert.throws(() => Key.fromFile(path), keys.EncryptedKeyError, what);
      const k = Key.fromFile(path, undefined, pp);
      assert.ok(k.public().equals(pub), `${name} ${what}`);
      assert.equal(k.isPublic(), false);
      assert.equal(k.comment, `${name} putty`);
      assert.equal(k.fingerprint("sha256"), sha256, what);
      // The key signs, and its public half (from puttygen) verifies.
      assert.ok(pub.verify(k.sign("data"), "data"), what);
    }
    // puttygen's OpenSSH exports load too.
    const exported = join(dir, `${name}_openssh`);
    await puttygen([v3, "-O", "private-openssh-new", "-o", exported]);
    assert.ok(Key.fromFile(exported).public().equals(pub));
  });
}

test("puttygen reads the .ppk files we write (v3 and v2, plain and encrypted)", async (t) => {
  const dir = setup(t);
  if (dir === undefined) return;
  const pass = join(dir, "pass");
  for (const key of [Key.generate("ed25519"), Key.generate("ecdsa", { bits: 384 }), Key.generate("rsa", { bits: 1024 })]) {
    const want = key.public().toString("openssh", { comment: "ours" });
    for (const subtype of ["v3", "v2"]) {
      for (const pp of [undefined, PASS]) {
        const path = join(dir, `ours_${subtype}_${pp === undefined ? "plain" : "enc"}.ppk`);
        writeFileSync(path, key.toString("putty", { comment: "ours", subtype, passphrase: pp, argon2: { memory: 256, passes: 2, parallelism: 1 } }));
        const out = await puttygen([path, ...(pp !== undefined ? ["--old-passphrase", pass] : []), "-O", "public-openssh"]);
        assert.equal(out.trim(), want, `${key.sshType()} ${subtype} ${pp ?? "plain"}`);
      }
    }
  }
});
