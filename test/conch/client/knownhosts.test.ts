import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { knownhosts } from "@twisted-ts/conch/client";
import { keys } from "@twisted-ts/conch/ssh";
import { HostKeyChanged, HostKeyNotVerifiableError, HostKeyRevoked, UserRejectedKey } from "@twisted-ts/conch/error";
import { Deferred, succeed } from "@twisted-ts/internet/defer";
import { addObserver, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { tempDir } from "../../_support/peers.js";

const { KnownHostsFile } = knownhosts;
const { Key } = keys;

// Twisted's test_knownhosts sample: an RSA key and a hashed line for www.twistedmatrix.com.
const SAMPLE_B64 =
  "AAAAB3NzaC1yc2EAAAABIwAAAQEAsV0VMRbGmzhqxxayLRHmvnFvtyNqgbNKV46dU1bVFB+3ytNvue4Riqv/SVkPRNwMb7eWH29SviXaBxUhYyzKkDoNUq3rTNnH1Vnif6d6X4JCrUb5d3W+DmYClyJrZ5HgD/hUpdSkTRqdbQ2TrvSAxRacj+vHHT4F4dm1bJSewm3B2D8HVOoi/CbVh3dsIiCdp8VltdZx4qYVfYe2LwVINCbAa3d3tj9ma7RVfw3OH2Mfb+toLd1N5tBQFb7oqTt2nC6I/6Bd4JwPUld+IEitw/suElq/AIJVQXXujeyiZlea90HE65U2mF1ytr17HTAIT2ySokJWyuBANGACk6iIaw==";
const SAMPLE_HASHED = `|1|gJbSEPBG9ZSBoZpHNtZBD1bHKBA=|bQv+0Xa0dByrwkA1EB0E7Xop/Fo= ssh-rsa ${SAMPLE_B64}`;
const sampleKey = Key.fromString(new Uint8Array(Buffer.from(SAMPLE_B64, "base64")));

const ed = Key.generate("ed25519").public();
const ed2 = Key.generate("ed25519").public();
const ec = Key.generate("ecdsa").public();

function line(hosts: string, key: keys.Key, comment = ""): string {
  return `${hosts} ${key.sshType()} ${Buffer.from(key.blob()).toString("base64")}${comment ? " " + comment : ""}`;
}

function fileWith(t: Parameters<typeof tempDir>[0], lines: string[]): string {
  const path = join(tempDir(t), "known_hosts");
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

async function rejects(d: Deferred<unknown>, cls: new (...a: never[]) => Error): Promise<Error> {
  try {
    await d;
  } catch (e) {
    assert.ok(e instanceof cls, `expected ${cls.name}, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected ${cls.name}`);
}

test("a hashed entry from Twisted's tests matches its host and no other", (t) => {
  const f = KnownHostsFile.fromPath(fileWith(t, [SAMPLE_HASHED]));
  assert.equal(f.hasHostKey("www.twistedmatrix.com", sampleKey), true);
  assert.equal(f.hasHostKey("twistedmatrix.com", sampleKey), false);
  const [entry] = [...f];
  assert.ok(entry instanceof knownhosts.HashedEntry);
  assert.equal(entry.toString(), SAMPLE_HASHED, "a hashed entry writes back as it was read");
});

test("plain entries: comma lists, * and ? patterns, ! negation and [host]:port", (t) => {
  const f = KnownHostsFile.fromPath(
    fileWith(t, [line("alpha.example.com,10.0.0.1", ed), line("*.wild.example,!bad.wild.example", ec), line("host?.q.example", ed), line("[ported.example]:2222", ed)]),
  );
  assert.equal(f.hasHostKey("alpha.example.com", ed), true);
  assert.equal(f.hasHostKey("10.0.0.1", ed), true);
  assert.equal(f.hasHostKey("ALPHA.example.com", ed), true, "host names compare without case");
  assert.equal(f.hasHostKey("a.wild.example", ec), true);
  assert.equal(f.hasHostKey("bad.wild.example", ec), false, "a negated pattern excludes the host");
  assert.equal(f.hasHostKey("host1.q.example", ed), true);
  assert.equal(f.hasHostKey("host12.q.example", ed), false);
  assert.equal(f.hasHostKey(knownhosts.hostKeyName("ported.example", 2222), ed), true);
  assert.equal(f.hasHostKey("ported.example", ed), false, "[host]:port does not match port 22");
  assert.equal(knownhosts.hostKeyName("h", 22), "h");
});

test("hasHostKey throws HostKeyChanged with the line number when the key differs", (t) => {
  const path = fileWith(t, ["# a comment", "", line("changed.example", ed)]);
  const f = KnownHostsFile.fromPath(path);
  assert.throws(
    () => f.hasHostKey("changed.example", ed2),
    (e: unknown) => {
      assert.ok(e instanceof HostKeyChanged);
      assert.equal(e.lineno, 3);
      assert.equal(e.path, path);
      assert.match(e.message, /has changed .*line 3 .*man-in-the-middle.*ssh-keygen -R/);
      return true;
    },
  );
  assert.equal(f.hasHostKey("changed.example", ec), false, "another key type is unknown, not changed");
});

test("@revoked keys are refused for every host; @cert-authority lines are parsed and kept", (t) => {
  const path = fileWith(t, [`@revoked * ${ed.sshType()} ${Buffer.from(ed.blob()).toString("base64")}`, `@cert-authority *.example.com ${line("", ec).trim()}`, line("ok.example", ed)]);
  const f = KnownHostsFile.fromPath(path);
  const entries = [...f];
  assert.equal(entries[0]!.marker, "@revoked");
  assert.equal(entries[1]!.marker, "@cert-authority");
  assert.ok(entries[1]!.publicKey?.equals(ec));
  assert.throws(() => f.hasHostKey("ok.example", ed), HostKeyRevoked);
  assert.equal(f.hasHostKey("a.example.com", ec), false, "a CA key is not a host key");
});

test("a corrupt line is skipped with a warning, kept, and written back unchanged", (t) => {
  const events: LogEvent[] = [];
  const obs = (e: LogEvent): void => void events.push(e);
  addObserver(obs);
  t.after(() => removeObserver(obs));
  const bad = ["garbage", "host ssh-ed25519 !!!notbase64", `host ssh-rsa ${Buffer.from(ed.blob()).toString("base64")}`, "|1|bad|hash ssh-ed25519 AAAA", "@weird host ssh-ed25519 AAAA"];
  const path = fileWith(t, [...bad, line("good.example", ed)]);
  const f = KnownHostsFile.fromPath(path);
  assert.equal(f.hasHostKey("good.example", ed), true);
  const warnings = events.filter((e) => e.log_level === "warn" && e.log_namespace === "twisted-ts.conch.knownhosts");
  assert.deepEqual(
    warnings.map((e) => e["lineno"]),
    [1, 2, 3, 4, 5],
  );
  f.addHostKey("new.example", ec);
  f.save();
  const text = readFileSync(path, "utf8").split("\n");
  assert.deepEqual(text.slice(0, 6), [...bad, line("good.example", ed)]);
});

test("addHostKey writes a hashed |1|salt|hash entry by default, which reads back", (t) => {
  const path = join(tempDir(t), "sub", "known_hosts");
  const f = KnownHostsFile.fromPath(path);
  const entry = f.addHostKey("fresh.example", ed);
  assert.match(entry.toString(), /^\|1\|[A-Za-z0-9+/]{27}=\|[A-Za-z0-9+/]{27}= ssh-ed25519 AAAA/);
  assert.equal(f.hasHostKey("fresh.example", ed), true, "an added entry counts before save");
  f.save();
  const again = KnownHostsFile.fromPath(path);
  assert.equal(again.hasHostKey("fresh.example", ed), true);
  assert.equal(readFileSync(path, "utf8").includes("fresh.example"), false);
  f.addHostKey("plain.example", ec, { hashed: false, comment: "added by test" });
  f.save();
  assert.match(readFileSync(path, "utf8"), /\nplain\.example ecdsa-sha2-nistp256 AAAA\S+ added by test\n$/);
});

test("save appends, and adds a newline when the file lacked one", (t) => {
  const path = join(tempDir(t), "known_hosts");
  writeFileSync(path, line("old.example", ed));
  const f = KnownHostsFile.fromPath(path);
  f.addHostKey("new.example", ec, { hashed: false });
  f.save();
  assert.equal(readFileSync(path, "utf8"), `${line("old.example", ed)}\n${line("new.example", ec)}\n`);
});

test("new KnownHostsFile(path) overwrites on save, as Twisted's constructor", (t) => {
  const path = join(tempDir(t), "known_hosts");
  writeFileSync(path, line("old.example", ed) + "\n");
  const f = new KnownHostsFile(path);
  f.addHostKey("new.example", ec, { hashed: false });
  f.save();
  assert.equal(readFileSync(path, "utf8"), line("new.example", ec) + "\n");
});

class FakeUI implements knownhosts.UI {
  prompts: string[] = [];
  warnings: string[] = [];
  constructor(private readonly answer: boolean) {}
  prompt(text: string): Deferred<boolean> {
    this.prompts.push(text);
    return succeed(this.answer);
  }
  warn(text: string): void {
    this.warnings.push(text);
  }
}

test("verifyHostKey strict: a known key passes, an unknown one fails with HostKeyNotVerifiableError", async (t) => {
  const path = fileWith(t, [line("known.example", ed)]);
  assert.equal(await knownhosts.verifyHostKey(ed, { knownHosts: path, hostname: "known.example", policy: "strict" }), true);
  const e = await rejects(knownhosts.verifyHostKey(ed, { knownHosts: path, hostname: "unknown.example", policy: "strict" }), HostKeyNotVerifiableError);
  assert.match(e.message, /no ssh-ed25519 host key is known for unknown\.example and strict host key checking is on/);
});

test("verifyHostKey accept-new: an unknown key is recorded (hashed) and accepted; a changed one fails", async (t) => {
  const path = fileWith(t, [line("known.example", ed)]);
  const ui = new FakeUI(false);
  assert.equal(await knownhosts.verifyHostKey(ec.blob(), { knownHosts: path, hostname: "new.example", port: 2200, ip: "127.0.0.1", policy: "accept-new", ui }), true);
  assert.equal(ui.prompts.length, 0);
  assert.match(ui.warnings[0]!, /Permanently added '\[new\.example\]:2200'/);
  const f = KnownHostsFile.fromPath(path);
  assert.equal(f.hasHostKey("[new.example]:2200", ec), true);
  assert.equal(f.hasHostKey("[127.0.0.1]:2200", ec), true);
  await rejects(knownhosts.verifyHostKey(ed2, { knownHosts: path, hostname: "known.example", policy: "accept-new" }), HostKeyChanged);
});

test("verifyHostKey ask: yes records the host and IP, no fails with UserRejectedKey", async (t) => {
  const path = join(tempDir(t), "known_hosts");
  const no = new FakeUI(false);
  await rejects(knownhosts.verifyHostKey(ec, { knownHosts: path, hostname: "asked.example", ip: "192.0.2.7", ui: no }), UserRejectedKey);
  assert.match(no.prompts[0]!, /^The authenticity of host 'asked\.example \(192\.0\.2\.7\)' can't be established\.\nECDSA key fingerprint is SHA256:[A-Za-z0-9+/]{43}\.\nAre you sure you want to continue connecting \(yes\/no\)\? $/);
  const yes = new FakeUI(true);
  assert.equal(await knownhosts.verifyHostKey(ec, { knownHosts: path, hostname: "asked.example", ip: "192.0.2.7", ui: yes }), true);
  const f = KnownHostsFile.fromPath(path);
  assert.equal(f.hasHostKey("asked.example", ec), true);
  assert.equal(f.hasHostKey("192.0.2.7", ec), true);
  await rejects(knownhosts.verifyHostKey(Key.generate("ecdsa").public(), { knownHosts: f, hostname: "asked.example", ui: yes }), HostKeyChanged);
});

test("KnownHostsFile.verifyHostKey adds a new IP for a known host name with a warning, as Twisted", async (t) => {
  const path = fileWith(t, [line("named.example", ed)]);
  const f = KnownHostsFile.fromPath(path);
  const ui = new FakeUI(false);
  assert.equal(await f.verifyHostKey(ui, "named.example", "198.51.100.1", ed), true);
  assert.deepEqual(ui.warnings, ["Warning: Permanently added the Ed25519 host key for IP address '198.51.100.1' to the list of known hosts."]);
  assert.equal(KnownHostsFile.fromPath(path).hasHostKey("198.51.100.1", ed), true);
});

test("ConsoleUI asks again until it reads yes or no; the end of input answers no", async () => {
  const input = new PassThrough();
  const output = new PassThrough();
  let written = "";
  output.on("data", (d: Buffer) => (written += d.toString()));
  const ui = new knownhosts.ConsoleUI(() => ({ input, output }));
  const answer = ui.prompt("Continue? ");
  input.write("maybe\n");
  input.write("ye");
  input.write("s\n");
  assert.equal(await answer, true);
  assert.equal(written, "Continue? Please type 'yes' or 'no': ");
  const second = ui.prompt("Again? ");
  input.end("no\n");
  assert.equal(await second, false);
  const eofInput = new PassThrough();
  const third = new knownhosts.ConsoleUI(() => ({ input: eofInput, output })).prompt("? ");
  eofInput.end();
  assert.equal(await third, false);
});
