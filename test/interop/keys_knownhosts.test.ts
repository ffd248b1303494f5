/**
 * known_hosts against OpenSSH: files from `ssh-keyscan -H` (against a real sshd) and
 * `ssh-keygen -H` read here; files written here are searched by `ssh-keygen -F`.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { knownhosts } from "@twisted-ts/conch/client";
import { keys } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand, tempDir } from "../_support/peers.js";
import { startSshd } from "../_support/sshd.js";

const { KnownHostsFile } = knownhosts;
const { Key } = keys;

function setup(t: TestContext): string | undefined {
  if (requirePeer(t, "ssh-keygen", "openssh-client") === undefined) return undefined;
  return tempDir(t, "twisted-ts-kh-");
}

test("known_hosts hashed by ssh-keygen -H is read, and every host matches its key", async (t) => {
  const dir = setup(t);
  if (dir === undefined) return;
  const path = join(dir, "known_hosts");
  const a = Key.generate("ed25519").public();
  const b = Key.generate("ecdsa").public();
  writeFileSync(path, `alpha.example,192.0.2.1 ${a.toString("openssh")}\n[beta.example]:2222 ${b.toString("openssh")}\n`);
  const r = await runCommand("ssh-keygen", ["-H", "-f", path]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(readFileSync(path, "utf8"), /^\|1\|/);
  const f = KnownHostsFile.fromPath(path);
  assert.equal([...f].filter((e) => e instanceof knownhosts.HashedEntry).length, 3, "ssh-keygen -H writes one hashed line per name");
  assert.equal(f.hasHostKey("alpha.example", a), true);
  assert.equal(f.hasHostKey("192.0.2.1", a), true);
  assert.equal(f.hasHostKey(knownhosts.hostKeyName("beta.example", 2222), b), true);
  assert.equal(f.hasHostKey("beta.example", b), false);
  assert.throws(() => f.hasHostKey("alpha.example", Key.generate("ed25519")), knownhosts.HostKeyChanged);
});

test("ssh-keygen -F finds the hashed and plain entries we write", async (t) => {
  const dir = setup(t);
  if (dir === undefined) return;
  const path = join(dir, "known_hosts");
  const f = KnownHostsFile.fromPath(path);
  const a = Key.generate("ed25519");
  const b = Key.generate("rsa", { bits: 1024 });
  f.addHostKey("hashed.example", a);
  f.addHostKey(knownhosts.hostKeyName("ported.example", 2022), b);
  f.addHostKey("plain.example", b, { hashed: false });
  f.save();
  for (const [host, key] of [["hashed.example", a], ["[ported.example]:2022", b], ["plain.example", b]] as const) {
    const r = await runCommand("ssh-keygen", ["-F", host, "-f", path]);
    assert.equal(r.code, 0, `${host}: ${r.stderr}`);
    const found = r.stdout.toString().split("\n").find((l) => l !== "" && !l.startsWith("#"));
    assert.ok(found !== undefined, host);
    assert.ok(Key.fromString(found.split(" ").slice(1).join(" ")).equals(key.public()), host);
  }
  const missing = await runCommand("ssh-keygen", ["-F", "nowhere.example", "-f", path]);
  assert.notEqual(missing.code, 0);
});

test("ssh-keyscan -H output from a real sshd is read and names its host keys", async (t) => {
  const dir = setup(t);
  if (dir === undefined) return;
  if (requirePeer(t, "ssh-keyscan", "openssh-client") === undefined) return;
  const sshd = await startSshd(t, { hostKeyTypes: ["ed25519", "ecdsa", "rsa"] });
  if (sshd === undefined) return;
  const r = await runCommand("ssh-keyscan", ["-H", "-p", String(sshd.port), "-t", "ed25519,ecdsa,rsa", "127.0.0.1"], { timeoutMs: 20_000 });
  assert.equal(r.code, 0, r.stderr);
  const path = join(dir, "known_hosts");
  writeFileSync(path, r.stdout);
  const f = KnownHostsFile.fromPath(path);
  const name = knownhosts.hostKeyName("127.0.0.1", sshd.port);
  for (const line of Object.values(sshd.hostKeys)) {
    const hostKey = Key.fromString(line);
    assert.equal(f.hasHostKey(name, hostKey), true, hostKey.sshType());
  }
  assert.equal(await knownhosts.verifyHostKey(Key.fromString(sshd.hostKeys["ed25519"]!), { knownHosts: f, hostname: "127.0.0.1", port: sshd.port, policy: "strict" }), true);
});
