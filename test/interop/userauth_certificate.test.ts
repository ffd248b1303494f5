/**
 * OpenSSH's `ssh` logging into OUR server with a user certificate (`CertificateFile`), the server
 * trusting a user CA (`trustedUserCAKeys`) and no plain key: certificates from `ssh-keygen -s` and
 * from `Key.signCertificate` log in; expired, not-yet-valid, wrong-principal, wrong-CA and
 * source-address-mismatch certificates are refused with the reason in the server's log;
 * force-command replaces the command and a certificate without permit-pty gets no terminal;
 * behind the PROXY protocol, source-address is checked against the address the header names.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { keys } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand } from "../_support/peers.js";
import { peerScript } from "./_client_support.js";
import { clientEnv, sshClientArgs, startOurServer, type OurServer, type ServerOptions } from "./_server_support.js";

const { Key } = keys;

async function keygen(args: string[]): Promise<void> {
  const r = await runCommand("ssh-keygen", args);
  if (r.code !== 0) throw new Error(`ssh-keygen ${args.join(" ")} failed (${r.code}): ${r.stderr}`);
}

interface Setup {
  server: OurServer;
  ca: keys.Key;
  caPath: string;
}

/** Our server trusting a fresh Ed25519 user CA, with an empty authorized_keys. */
async function setup(t: TestContext, opts: ServerOptions = {}): Promise<Setup | undefined> {
  if (requirePeer(t, "ssh", "openssh-client") === undefined || requirePeer(t, "ssh-keygen", "openssh-client") === undefined) return undefined;
  const ca = Key.generate("ed25519");
  const server = await startOurServer(t, {
    ...opts,
    authorizedKeys: () => "# certificates only\n",
    configureKeyChecker: (c) => void (c.trustedUserCAKeys = [ca.public()]),
  });
  const caPath = join(server.dir, "user_ca");
  writeFileSync(caPath, ca.toString("openssh"), { mode: 0o600 });
  return { server, ca, caPath };
}

/** Signs alice's key with ssh-keygen -s; returns the certificate path. */
async function keygenCert(s: Setup, args: string[]): Promise<string> {
  await keygen(["-q", "-s", s.caPath, "-I", "alice-cert", ...args, `${s.server.keyPath}.pub`]);
  return `${s.server.keyPath}-cert.pub`;
}

/** Signs alice's key here; returns the certificate path. */
function ourCert(s: Setup, terms: Partial<keys.CertificateTerms>, signer = s.ca): string {
  const cert = signer.signCertificate(Key.fromString(s.server.keyPub), { type: "user", keyId: "alice-ours", principals: ["alice"], ...terms });
  const path = join(s.server.dir, "ours-cert.pub");
  writeFileSync(path, cert.toString() + "\n");
  return path;
}

async function ssh(s: Setup, certPath: string, extra: string[], command: string[]) {
  const target = { port: s.server.port, keyPath: s.server.keyPath, knownHosts: s.server.knownHosts };
  const args = [...sshClientArgs(target, ["-o", `CertificateFile=${certPath}`, ...extra]), `${s.server.user}@127.0.0.1`, ...command];
  const r = await runCommand("ssh", args, { env: clientEnv(s.server), timeoutMs: 30_000, input: "" });
  return { ...r, out: r.stdout.toString() };
}

test("ssh logs in with a certificate from ssh-keygen -s; the plain key alone is refused", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const r = await ssh(s, await keygenCert(s, ["-n", "alice", "-V", "-1h:+1h"]), [], ["echo logged-in"]);
  assert.equal(r.code, 0, r.stderr + s.server.logText());
  assert.equal(r.out, "logged-in\n");
  assert.match(s.server.logText(), /accepted certificate alice-cert \(serial 0\) for alice/);
  // Without the certificate (none beside the key either), the same key is not authorized.
  rmSync(`${s.server.keyPath}-cert.pub`);
  const plain = await ssh(s, "/dev/null", [], ["echo logged-in"]);
  assert.equal(plain.code, 255);
  assert.match(plain.stderr, /Permission denied \(publickey/);
});

test("ssh logs in with certificates signed here: Ed25519 CA, and an RSA CA with rsa-sha2-256", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const r = await ssh(s, ourCert(s, {}), [], ["echo ed25519-ca"]);
  assert.equal(r.code, 0, r.stderr + s.server.logText());
  assert.equal(r.out, "ed25519-ca\n");
  const rsaCa = Key.generate("rsa", { bits: 2048 });
  const s2 = await (async () => {
    const server = await startOurServer(t, { authorizedKeys: () => "", configureKeyChecker: (c) => void (c.trustedUserCAKeys = [rsaCa.public()]) });
    return { server, ca: rsaCa, caPath: "" };
  })();
  const r2 = await ssh(s2, ourCert(s2, { signatureAlgorithm: "rsa-sha2-256" }), [], ["echo rsa-ca"]);
  assert.equal(r2.code, 0, r2.stderr + s2.server.logText());
  assert.equal(r2.out, "rsa-ca\n");
});

test("expired, not yet valid, wrong principal, empty principals, wrong CA and source-address mismatch are refused with the reason logged", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const now = BigInt(Math.floor(Date.now() / 1000));
  const cases: [string, () => Promise<string> | string][] = [
    ["expired", () => keygenCert(s, ["-n", "alice", "-V", "20200101:20200102"])],
    ["not-yet-valid", () => ourCert(s, { validAfter: now + 86400n })],
    ["principal", () => keygenCert(s, ["-n", "bob,carol"])],
    ["no-principals", () => ourCert(s, { principals: [] })],
    ["source-address", () => keygenCert(s, ["-n", "alice", "-O", "source-address=10.0.0.0/8"])],
  ];
  for (const [reason, make] of cases) {
    const r = await ssh(s, await make(), [], ["echo should-not-run"]);
    assert.equal(r.code, 255, reason);
    assert.equal(r.out, "", reason);
    assert.match(s.server.logText(), new RegExp(`refused \\(${reason}\\)`), reason);
  }
  const wrong = await ssh(s, ourCert(s, {}, Key.generate("ed25519")), [], ["echo should-not-run"]);
  assert.equal(wrong.code, 255);
  assert.match(s.server.logText(), /CA SHA256:\S+ is not trusted/);
  assert.equal(s.server.logins(), 0);
  assert.deepEqual(s.server.criticals(), []);
});

test("force-command runs instead of the requested command", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const r = await ssh(s, await keygenCert(s, ["-n", "alice", "-O", "force-command=echo forced by the CA"]), [], ["echo asked-for"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.out, "forced by the CA\n");
});

test("without permit-pty, ssh -tt gets no terminal and gives up; with it, the command runs on a tty", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const noPty = await ssh(s, await keygenCert(s, ["-n", "alice", "-O", "no-pty"]), ["-tt"], ["echo ran"]);
  assert.match(noPty.stderr, /PTY allocation request failed on channel 0/);
  assert.equal(noPty.code, 255);
  assert.doesNotMatch(noPty.out, /ran/);
  const pty = await ssh(s, await keygenCert(s, ["-n", "alice"]), ["-tt"], ["tty"]);
  assert.equal(pty.code, 0, pty.stderr);
  assert.match(pty.out, /^\/dev\/pts\/\d+/);
});

test("behind the PROXY protocol, source-address is checked against the client the header names", async (t) => {
  const s = await setup(t, { proxyProtocol: true });
  if (s === undefined) return;
  const cert = await keygenCert(s, ["-n", "alice", "-O", "source-address=10.1.0.0/16"]);
  const via = (source: string): string[] => ["-o", `ProxyCommand=${process.execPath} ${peerScript("proxy_header.cjs")} ${s.server.port} ${source}`];
  const inside = await ssh(s, cert, via("10.1.2.3"), ["echo from-10.1.2.3"]);
  assert.equal(inside.code, 0, inside.stderr + s.server.logText());
  assert.equal(inside.out, "from-10.1.2.3\n");
  const outside = await ssh(s, cert, via("192.0.2.7"), ["echo should-not-run"]);
  assert.equal(outside.code, 255);
  assert.match(s.server.logText(), /refused \(source-address\): certificate "alice-cert": 192\.0\.2\.7 is not in its source-address list 10\.1\.0\.0\/16/);
});
