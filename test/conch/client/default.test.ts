import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SSHUserAuthClient, defaultIdentities, hostKeyChangedWarning, verifyHostKey } from "@twisted-ts/conch/client/default";
import { HostKeyChanged, HostKeyNotVerifiableError } from "@twisted-ts/conch/error";
import { connection, keys } from "@twisted-ts/conch/ssh";
import { ScriptedUI } from "./_scripted_ui.js";
import { tempDir } from "../../_support/peers.js";

const { Key } = keys;


function auth(options: ConstructorParameters<typeof SSHUserAuthClient>[1]): SSHUserAuthClient {
  return new SSHUserAuthClient("alice", { hostname: "example.org", ...options }, new connection.SSHConnection());
}

function writeKey(t: TestContext, name: string, passphrase?: string): { path: string; key: keys.Key } {
  const dir = tempDir(t);
  const key = Key.generate("ed25519");
  const path = join(dir, name);
  writeFileSync(path, key.toString("openssh", passphrase !== undefined ? { passphrase } : {}), { mode: 0o600 });
  writeFileSync(`${path}.pub`, key.public().toString("openssh") + "\n");
  return { path, key };
}

test("without a terminal only publickey is offered", () => {
  assert.deepEqual(auth({}).preferredOrder, ["publickey"]);
});

test("with a password given and no terminal, publickey then password are offered", () => {
  assert.deepEqual(auth({ password: "pw" }).preferredOrder, ["publickey", "password"]);
});

test("with a terminal, publickey, password and keyboard-interactive are offered in Twisted's order", () => {
  assert.deepEqual(auth({ ui: new ScriptedUI() }).preferredOrder, ["publickey", "password", "keyboard-interactive"]);
});

test("getPassword: without a terminal there is none; a given password is sent once", async () => {
  assert.equal(auth({}).getPassword(), undefined);
  const a = auth({ password: "secret" });
  assert.equal(await a.getPassword(), "secret");
  assert.equal(a.getPassword(), undefined);
});

test("getPassword asks user@host's password without echo, at most three times", async () => {
  const ui = new ScriptedUI(["a", "b", "c", "d"]);
  const a = auth({ ui });
  for (const expected of ["a", "b", "c"]) assert.equal(await a.getPassword(), expected);
  assert.equal(a.getPassword(), undefined);
  assert.deepEqual(ui.asked[0], ["alice@example.org's password: ", false]);
});

test("getGenericAnswers shows the name and instruction and asks each prompt with the server's echo flag", async () => {
  const ui = new ScriptedUI(["123456", "yes"]);
  const answers = await auth({ ui }).getGenericAnswers("OTP\x1b[31m", "Enter the code", [
    ["Code: ", false],
    ["Remember? ", true],
  ]);
  assert.deepEqual(answers, ["123456", "yes"]);
  assert.deepEqual(ui.asked, [
    ["Code: ", false],
    ["Remember? ", true],
  ]);
  assert.deepEqual(ui.warnings, ["OTP[31m", "Enter the code"]);
});

test("getGenericAnswers without a terminal fails", async () => {
  await assert.rejects(Promise.resolve(auth({}).getGenericAnswers("", "", [["Code: ", false]])));
});

test("getPublicKey offers each identity file then undefined; a missing file is skipped", async (t) => {
  const one = writeKey(t, "id_ed25519");
  const two = writeKey(t, "id_other");
  const a = auth({ identities: [one.path, "/nonexistent/id_rsa", two.path] });
  const first = a.getPublicKey();
  assert.ok(first instanceof Key && first.equals(one.key.public()));
  assert.ok((await a.getPrivateKey()!).equals(one.key));
  const second = a.getPublicKey();
  assert.ok(second instanceof Key && second.equals(two.key.public()));
  assert.equal(a.getPublicKey(), undefined);
  assert.deepEqual(a.usedFiles, [one.path, two.path]);
});

test("an encrypted key is offered from its .pub and its passphrase asked only for signing", async (t) => {
  const { path, key } = writeKey(t, "id_ed25519", "open sesame");
  const ui = new ScriptedUI(["wrong", "open sesame"]);
  const a = auth({ identities: [path], ui });
  const offered = a.getPublicKey();
  assert.ok(offered instanceof Key && offered.equals(key.public()));
  assert.equal(ui.asked.length, 0);
  const priv = await a.getPrivateKey()!;
  assert.ok(priv.equals(key));
  assert.deepEqual(
    ui.asked.map(([p]) => p),
    [`Enter passphrase for key '${path}': `, `Enter passphrase for key '${path}': `],
  );
});

test("an encrypted key without a terminal is offered but cannot sign: getPrivateKey fails", async (t) => {
  const { path } = writeKey(t, "id_ed25519", "open sesame");
  const a = auth({ identities: [path] });
  assert.ok(a.getPublicKey() instanceof Key);
  await assert.rejects(Promise.resolve(a.getPrivateKey()!), /no terminal/);
});

test("keys given in memory are offered before the files", async (t) => {
  const file = writeKey(t, "id_ed25519");
  const mem = Key.generate("ed25519");
  const a = auth({ keys: [mem], identities: [file.path] });
  assert.ok((a.getPublicKey() as keys.Key).equals(mem.public()));
  assert.ok((await a.getPrivateKey()!).equals(mem));
});

test("defaultIdentities lists the ~/.ssh/id_* files that exist, in ssh's order", (t) => {
  const home = tempDir(t);
  const ssh = join(home, ".ssh");
  assert.deepEqual(defaultIdentities(home), []);
  mkdirSync(ssh);
  writeFileSync(join(ssh, "id_ed25519"), "x");
  writeFileSync(join(ssh, "id_rsa"), "x");
  assert.deepEqual(defaultIdentities(home), [join(ssh, "id_rsa"), join(ssh, "id_ed25519")]);
});

const hostKey = Key.generate("ed25519").public();
const otherKey = Key.generate("ed25519").public();

test("verifyHostKey: a changed key is refused with OpenSSH's REMOTE HOST IDENTIFICATION HAS CHANGED warning", async (t) => {
  const kh = join(tempDir(t), "known_hosts");
  writeFileSync(kh, `[127.0.0.1]:2222 ${otherKey.toString("openssh")}\n`);
  const ui = new ScriptedUI([], true);
  const e = await verifyHostKey(hostKey.blob(), { knownHosts: kh, hostname: "127.0.0.1", port: 2222, policy: "ask", ui }).then(
    () => assert.fail("accepted"),
    (err: unknown) => err,
  );
  assert.ok(e instanceof HostKeyChanged);
  assert.match(e.message, /^@{59}\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@{59}\n/);
  assert.match(e.message, new RegExp(`Offending ED25519 key in ${kh}:1`));
  assert.match(e.message, /Host key verification failed\.$/);
  assert.ok(e.message.includes(hostKey.fingerprint("sha256")));
  assert.deepEqual(ui.asked, [], "a changed key is never asked about");
});

test("verifyHostKey: an unknown key without a terminal is refused under ask", async (t) => {
  const kh = join(tempDir(t), "known_hosts");
  await assert.rejects(Promise.resolve(verifyHostKey(hostKey.blob(), { knownHosts: kh, hostname: "h", policy: "ask" })), HostKeyNotVerifiableError);
});

test("verifyHostKey: an unknown key is asked about on the terminal and recorded on yes", async (t) => {
  const kh = join(tempDir(t), "known_hosts");
  const ui = new ScriptedUI([], true);
  assert.equal(await verifyHostKey(hostKey.blob(), { knownHosts: kh, hostname: "h", policy: "ask", ui }), true);
  assert.match(ui.asked[0]![0], /Are you sure you want to continue connecting \(yes\/no\)\? $/);
  assert.match(readFileSync(kh, "utf8"), / ssh-ed25519 /);
});

test("hostKeyChangedWarning names the ssh-keygen -R command for the entry", () => {
  const text = hostKeyChangedWarning(hostKey, "[h]:2200", "/k/known_hosts", 7);
  assert.match(text, /ssh-keygen -f "\/k\/known_hosts" -R "\[h\]:2200"/);
  assert.match(text, /Offending ED25519 key in \/k\/known_hosts:7/);
});
