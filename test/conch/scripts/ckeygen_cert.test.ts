import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { applyCertOptions, main, parseValidity, type IO } from "@twisted-ts/conch/scripts/ckeygen";
import { keys } from "@twisted-ts/conch/ssh";
import { tempDir } from "../../_support/peers.js";

const { Key, Certificate } = keys;
const NOW = 1_700_000_000;

class FakeIO implements IO {
  out = "";
  err = "";
  stdout(t: string): void {
    this.out += t;
  }
  stderr(t: string): void {
    this.err += t;
  }
  prompt(q: string): Promise<string> {
    throw new Error(`unexpected prompt ${q}`);
  }
  now(): number {
    return NOW;
  }
}

function keyFiles(dir: string): { ca: string; pub: string; key: keys.Key } {
  const ca = Key.generate("ed25519");
  const key = Key.generate("ecdsa", { bits: 256 });
  writeFileSync(join(dir, "ca"), ca.toString("openssh"));
  writeFileSync(join(dir, "id.pub"), key.public().toString("openssh", { comment: "me@example" }) + "\n");
  return { ca: join(dir, "ca"), pub: join(dir, "id.pub"), key };
}

test("parseValidity: ssh-keygen's spellings, relative to the injected clock", () => {
  assert.deepEqual(parseValidity("always:forever", NOW), { validAfter: 0n, validBefore: keys.CERT_VALID_FOREVER });
  assert.deepEqual(parseValidity("+1w", NOW), { validAfter: BigInt(NOW), validBefore: BigInt(NOW + 604800) });
  assert.deepEqual(parseValidity("-1d:+2h30m", NOW), { validAfter: BigInt(NOW - 86400), validBefore: BigInt(NOW + 2 * 3600 + 1800) });
  assert.deepEqual(parseValidity("20200101Z:202001020304Z", NOW), {
    validAfter: BigInt(Date.UTC(2020, 0, 1) / 1000),
    validBefore: BigInt(Date.UTC(2020, 0, 2, 3, 4) / 1000),
  });
  assert.deepEqual(parseValidity("0x10:0x20", NOW), { validAfter: 16n, validBefore: 32n });
  assert.throws(() => parseValidity("+1y", NOW), /invalid interval/);
  assert.throws(() => parseValidity("2020:forever", NOW), /invalid time/);
  assert.throws(() => parseValidity("+1d:-1d", NOW), /empty certificate validity interval/);
});

test("applyCertOptions: -O options in order, from ssh-keygen's default extensions", () => {
  const r = applyCertOptions(["no-pty", "force-command=/bin/date", "source-address=10.0.0.0/8", "critical:x@example.com=v", "extension:y@example.com"]);
  assert.deepEqual(r.criticalOptions, { "force-command": "/bin/date", "source-address": "10.0.0.0/8", "x@example.com": "v" });
  assert.deepEqual(Object.keys(r.extensions).sort(), ["permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-user-rc", "y@example.com"]);
  assert.deepEqual(applyCertOptions(["clear", "permit-pty", "verify-required"]), { criticalOptions: { "verify-required": "" }, extensions: { "permit-pty": "" } });
  assert.throws(() => applyCertOptions(["no-such-thing"]), /unsupported certificate option/);
  assert.throws(() => applyCertOptions(["force-command"]), /unsupported certificate option/);
});

test("ckeygen -s writes key-cert.pub with the key id, principals, serial, validity and options", async (t) => {
  const dir = tempDir(t);
  const f = keyFiles(dir);
  const io = new FakeIO();
  const code = await main(["-s", f.ca, "-I", "me", "-n", "alice,bob", "-z", "9", "-V", "-5m:+1h", "-O", "no-pty", "-O", "force-command=uptime", f.pub], io);
  assert.equal(code, 0, io.err);
  assert.equal(io.err, `Signed user key ${join(dir, "id-cert.pub")}: id "me" serial 9 for alice,bob valid from 2023-11-14T22:08:20 to 2023-11-14T23:13:20\n`);
  const cert = Certificate.fromString(readFileSync(join(dir, "id-cert.pub"), "utf8"));
  assert.ok(cert.key.equals(f.key.public()));
  assert.equal(cert.comment, "me@example");
  assert.equal(cert.type, "user");
  assert.deepEqual(cert.principals, ["alice", "bob"]);
  assert.equal(cert.serial, 9n);
  assert.equal(cert.validAfter, BigInt(NOW - 300));
  assert.equal(cert.validBefore, BigInt(NOW + 3600));
  assert.equal(cert.criticalOptions.get("force-command"), "uptime");
  assert.equal(cert.extensions.has("permit-pty"), false);
  cert.check({ type: "user", principal: "bob", trustedCAs: [Key.fromFile(f.ca).public()], now: NOW });
});

test("ckeygen -s -h signs a host certificate; -h without -s is still help", async (t) => {
  const dir = tempDir(t);
  const f = keyFiles(dir);
  const io = new FakeIO();
  assert.equal(await main(["-q", "-s", f.ca, "-I", "host", "-h", "-n", "example.com", f.pub], io), 0, io.err);
  const cert = Certificate.fromString(readFileSync(join(dir, "id-cert.pub"), "utf8"));
  assert.equal(cert.type, "host");
  assert.deepEqual([...cert.extensions], []);
  assert.equal(io.err, "");
  const help = new FakeIO();
  assert.equal(await main(["-h"], help), 0);
  assert.match(help.out, /^Usage: ckeygen/);
});

test("ckeygen -s refuses a missing key id, a bad -V, and -O on a host certificate, with a message", async (t) => {
  const dir = tempDir(t);
  const f = keyFiles(dir);
  for (const [args, message] of [
    [["-s", f.ca, f.pub], /-s needs a key id/],
    [["-s", f.ca, "-I", "x", "-V", "tomorrow", f.pub], /invalid time "tomorrow"/],
    [["-s", f.ca, "-I", "x", "-h", "-O", "no-pty", f.pub], /apply to user certificates only/],
    [["-s", f.ca, "-I", "x"], /needs the public key files/],
  ] as const) {
    const io = new FakeIO();
    assert.equal(await main([...args], io), 1);
    assert.match(io.err, message);
  }
});

test("ckeygen -L lists a certificate as ssh-keygen -L does", async (t) => {
  const dir = tempDir(t);
  const f = keyFiles(dir);
  const io = new FakeIO();
  assert.equal(await main(["-q", "-s", f.ca, "-I", "list me", "-n", "alice", "-z", "3", "-O", "clear", "-O", "permit-pty", "-O", "extension:x@example.com", f.pub], io), 0, io.err);
  const path = join(dir, "id-cert.pub");
  const list = new FakeIO();
  assert.equal(await main(["-L", "-f", path], list), 0, list.err);
  const cert = Certificate.fromString(readFileSync(path, "utf8"));
  assert.equal(
    list.out,
    [
      `${path}:`,
      "        Type: ecdsa-sha2-nistp256-cert-v01@openssh.com user certificate",
      `        Public key: ECDSA-CERT ${f.key.fingerprint("sha256")}`,
      `        Signing CA: ED25519 ${cert.signatureKey.fingerprint("sha256")} (using ssh-ed25519)`,
      '        Key ID: "list me"',
      "        Serial: 3",
      "        Valid: forever",
      "        Principals: ",
      "                alice",
      "        Critical Options: (none)",
      "        Extensions: ",
      "                permit-pty",
      "                x@example.com UNKNOWN FLAG OPTION",
      "",
    ].join("\n"),
  );
});
