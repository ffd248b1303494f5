/**
 * OUR client offering a user certificate to OpenSSH's sshd (`TrustedUserCAKeys`, no authorized
 * keys): certificates made by `Key.signCertificate` for Ed25519 and RSA user keys log in (the RSA
 * one as `rsa-sha2-512-cert-v01@openssh.com`); one for another principal is refused. And our client
 * checking sshd's host certificate (`HostCertificate`, from ssh-keygen -s -h) against a known_hosts
 * `@cert-authority` line: accepted, or refused for a wrong name or an expired certificate. And
 * OpenSSH's `ssh` logging into sshd with a certificate written by `ckeygen -s`.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { addObserver, formatEvent, removeObserver, type LogEvent } from "@twisted-ts/internet/log";
import { keys } from "@twisted-ts/conch/ssh";
import { runCommand, tempDir } from "../_support/peers.js";
import { sshKeygen, startSshd, type Sshd } from "../_support/sshd.js";
import { main as ckeygen } from "@twisted-ts/conch/scripts/ckeygen";
import { connectClient, type UserKey } from "./_client_support.js";
import { sshClientArgs } from "./_server_support.js";

/**
 * sshd's log line matching `re`: sshd writes it to its stderr when it decides, and it reaches this
 * process a little later than the client sees the outcome, so it is waited for (10 s at most).
 */
async function sshdLogged(sshd: Sshd, re: RegExp): Promise<void> {
  for (let i = 0; i < 500 && !re.test(sshd.output()); i++) await new Promise((r) => setTimeout(r, 20));
  assert.match(sshd.output(), re);
}

const { Key } = keys;

async function sshdTrusting(t: TestContext, ca: keys.Key): Promise<Sshd | undefined> {
  const caPath = join(tempDir(t, "twisted-ts-userca-"), "user_ca.pub");
  writeFileSync(caPath, ca.public().toString("openssh") + "\n");
  return startSshd(t, { authorizedKeys: [], hostKeyTypes: ["ed25519"], config: [`TrustedUserCAKeys ${caPath}`] });
}

async function userKey(t: TestContext, type: "ed25519" | "rsa"): Promise<UserKey> {
  const [privatePath, publicLine] = await sshKeygen(tempDir(t, "twisted-ts-clientkey-"), `id_${type}`, type);
  return { privatePath, privateKey: readFileSync(privatePath, "utf8"), publicLine };
}

for (const type of ["ed25519", "rsa"] as const) {
  test(`our client logs into sshd with a ${type} user certificate signed here (TrustedUserCAKeys)`, async (t) => {
    const ca = Key.generate("ed25519");
    const sshd = await sshdTrusting(t, ca);
    if (sshd === undefined) return;
    const key = await userKey(t, type);
    const cert = ca.signCertificate(Key.fromString(key.publicLine), { type: "user", keyId: `ours-${type}`, principals: [sshd.user] });
    const client = await connectClient({ port: sshd.port, user: sshd.user, key, certificate: cert.toString(), hostKey: sshd.hostKeys["ed25519"], peerLog: sshd.output });
    t.after(() => client.close());
    const r = await client.exec("echo via-certificate");
    assert.equal(r.stdout, "via-certificate\n");
    await sshdLogged(sshd, new RegExp(`Accepted publickey for \\S+ from 127\\.0\\.0\\.1 port \\d+ ssh2: ${type === "rsa" ? "RSA" : "ED25519"}-CERT SHA256:\\S+ ID ours-${type}`));
  });
}

test("sshd refuses our certificate for another principal, and our client reports the failure", async (t) => {
  const ca = Key.generate("ed25519");
  const sshd = await sshdTrusting(t, ca);
  if (sshd === undefined) return;
  const key = await userKey(t, "ed25519");
  const cert = ca.signCertificate(Key.fromString(key.publicLine), { type: "user", keyId: "not-for-you", principals: ["someone-else"] });
  await assert.rejects(connectClient({ port: sshd.port, user: sshd.user, key, certificate: cert.toString(), hostKey: sshd.hostKeys["ed25519"], peerLog: sshd.output }));
  await sshdLogged(sshd, /Certificate invalid: name is not a listed principal/);
});

/** sshd presenting a host certificate made by ssh-keygen -s -h, and a known_hosts naming only its CA. */
async function sshdWithHostCert(t: TestContext, principals: string, validity = "-1h:+1h"): Promise<{ sshd: Sshd; knownHosts: string } | undefined> {
  const dir = tempDir(t, "twisted-ts-hostca-");
  const [caPath, caPub] = await sshKeygen(dir, "host_ca", "ed25519");
  const [hostKey] = await sshKeygen(dir, "ssh_host_cert_key", "ed25519");
  const r = await runCommand("ssh-keygen", ["-q", "-s", caPath, "-h", "-I", "sshd-host", "-n", principals, "-V", validity, `${hostKey}.pub`]);
  if (r.code !== 0) throw new Error(r.stderr);
  const sshd = await startSshd(t, { hostKeyTypes: ["rsa"], config: [`HostKey ${hostKey}`, `HostCertificate ${hostKey}-cert.pub`] });
  if (sshd === undefined) return undefined;
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `@cert-authority [127.0.0.1]:${sshd.port} ${caPub}\n`);
  return { sshd, knownHosts };
}

test("our client accepts sshd's host certificate from a CA named by @cert-authority, preferring certificate algorithms", async (t) => {
  const s = await sshdWithHostCert(t, "127.0.0.1");
  if (s === undefined) return;
  const key = await userKey(t, "ed25519");
  writeFileSync(join(s.sshd.dir, "authorized_keys"), key.publicLine + "\n");
  const client = await connectClient({ port: s.sshd.port, user: s.sshd.user, key, knownHosts: { path: s.knownHosts, hostname: "127.0.0.1" }, peerLog: s.sshd.output });
  t.after(() => client.close());
  assert.equal(client.sshTransport.keyAlg, "ssh-ed25519-cert-v01@openssh.com");
  assert.equal((await client.exec("echo host-cert-ok")).stdout, "host-cert-ok\n");
});

test("our client refuses sshd's host certificate for another name, or expired, with the reason", async (t) => {
  const logged: string[] = [];
  const observer = (e: LogEvent): void => void logged.push(formatEvent(e));
  addObserver(observer);
  t.after(() => removeObserver(observer));
  for (const [principals, validity, reason] of [
    ["other.example", "-1h:+1h", /host certificate for \[127\.0\.0\.1\]:\d+ refused: .*"127\.0\.0\.1" is not a listed principal/],
    ["127.0.0.1", "20200101:20200102", /host certificate for \[127\.0\.0\.1\]:\d+ refused: .*expired \(valid until 2020-01-02/],
  ] as const) {
    const s = await sshdWithHostCert(t, principals, validity);
    if (s === undefined) return;
    const key = await userKey(t, "ed25519");
    await assert.rejects(connectClient({ port: s.sshd.port, user: s.sshd.user, key, knownHosts: { path: s.knownHosts, hostname: "127.0.0.1" }, peerLog: s.sshd.output }));
    assert.match(logged.join("\n"), reason);
  }
});

test("OpenSSH's ssh logs into sshd with a user certificate from ckeygen -s (TrustedUserCAKeys)", async (t) => {
  const ca = Key.generate("ecdsa", { bits: 384 });
  const sshd = await sshdTrusting(t, ca);
  if (sshd === undefined) return;
  const dir = tempDir(t, "twisted-ts-ckeygen-cert-");
  writeFileSync(join(dir, "ca"), ca.toString("openssh"), { mode: 0o600 });
  const [keyPath] = await sshKeygen(dir, "id_rsa", "rsa");
  const io = { out: "", err: "", stdout: (s: string) => void (io.out += s), stderr: (s: string) => void (io.err += s), prompt: () => Promise.reject(new Error("no prompt")) };
  assert.equal(await ckeygen(["-s", join(dir, "ca"), "-I", "from-ckeygen", "-n", sshd.user, "-V", "-5m:+1h", `${keyPath}.pub`], io), 0, io.err);
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys["ed25519"]}\n`);
  const r = await runCommand(
    "ssh",
    [...sshClientArgs({ port: sshd.port, keyPath, knownHosts }, ["-o", `CertificateFile=${keyPath}-cert.pub`]), `${sshd.user}@127.0.0.1`, "echo", "ckeygen-cert-ok"],
    { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir }, timeoutMs: 30_000, input: "" },
  );
  assert.equal(r.code, 0, r.stderr + sshd.output());
  assert.equal(r.stdout.toString(), "ckeygen-cert-ok\n");
  await sshdLogged(sshd, /Accepted publickey for \S+ from 127\.0\.0\.1 port \d+ ssh2: RSA-CERT SHA256:\S+ ID from-ckeygen/);
});
