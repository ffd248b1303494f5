/**
 * OUR server presenting a host certificate to OpenSSH's `ssh`, whose known_hosts holds only an
 * `@cert-authority` line for the CA: certificates from `Key.signCertificate` (Ed25519 and RSA CAs,
 * Ed25519 and RSA host keys) are accepted; one for another host name, an expired one, and one
 * from another CA are not. A host certificate made by the `ckeygen -s -h` command is accepted too.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { keys } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand, tempDir } from "../_support/peers.js";
import { clientEnv, sshClientArgs, startOurServer, type HostKeyType } from "./_server_support.js";

const { Key } = keys;

async function sshWithCA(
  t: TestContext,
  ca: keys.Key,
  hostKeyType: HostKeyType,
  terms: Partial<keys.CertificateTerms>,
  signer = ca,
  certify: (hostKey: keys.Key) => keys.Certificate = (k) => signer.signCertificate(k.public(), { type: "host", keyId: "our-host", principals: ["127.0.0.1"], ...terms }),
) {
  if (requirePeer(t, "ssh", "openssh-client") === undefined) return undefined;
  const server = await startOurServer(t, {
    hostKeyTypes: [hostKeyType],
    hostCertificates: (hostKeys) => Object.values(hostKeys).map(certify),
  });
  const knownHosts = join(server.dir, "known_hosts_ca");
  writeFileSync(knownHosts, `@cert-authority [127.0.0.1]:${server.port} ${ca.public().toString("openssh")}\n`);
  const target = { port: server.port, keyPath: server.keyPath, knownHosts };
  const r = await runCommand("ssh", [...sshClientArgs(target, ["-v"]), `${server.user}@127.0.0.1`, "echo", "host-ok"], { env: clientEnv(server), timeoutMs: 30_000, input: "" });
  return { ...r, out: r.stdout.toString() };
}

for (const [caType, hostType] of [["ed25519", "ed25519"], ["rsa", "rsa"], ["ed25519", "ecdsa"]] as const) {
  test(`ssh accepts our ${hostType} host certificate from a ${caType} CA named by @cert-authority`, async (t) => {
    const ca = caType === "rsa" ? Key.generate("rsa", { bits: 2048 }) : Key.generate("ed25519");
    const r = await sshWithCA(t, ca, hostType, {});
    if (r === undefined) return;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.out, "host-ok\n");
    assert.match(r.stderr, /Server host certificate: \S+-cert-v01@openssh\.com/);
    assert.match(r.stderr, /Host '\[127\.0\.0\.1\]:\d+' is known and matches the \S+-CERT host certificate/);
  });
}

test("ssh accepts a host certificate made by the ckeygen command (ckeygen -s ca -h -I -n -V host.pub)", async (t) => {
  const ca = Key.generate("ed25519");
  const dir = tempDir(t, "twisted-ts-ckeygen-host-");
  writeFileSync(join(dir, "ca"), ca.toString("openssh"), { mode: 0o600 });
  const ckeygen = fileURLToPath(import.meta.resolve("@twisted-ts/conch/scripts/ckeygen"));
  const r = await sshWithCA(t, ca, "ed25519", {}, ca, (hostKey) => {
    writeFileSync(join(dir, "host.pub"), hostKey.public().toString("openssh"));
    execFileSync(process.execPath, [ckeygen, "-s", join(dir, "ca"), "-h", "-I", "from-ckeygen", "-n", "127.0.0.1", "-V", "-1h:+1h", join(dir, "host.pub")]);
    return keys.Certificate.fromString(readFileSync(join(dir, "host-cert.pub"), "utf8"));
  });
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.out, "host-ok\n");
  assert.match(r.stderr, /Host '\[127\.0\.0\.1\]:\d+' is known and matches the ED25519-CERT host certificate/);
});

test("ssh refuses our host certificate for another name, an expired one, and one from another CA", async (t) => {
  const ca = Key.generate("ed25519");
  for (const [terms, signer, why] of [
    [{ principals: ["elsewhere.example"] }, ca, /Certificate invalid: name is not a listed principal/],
    [{ validAfter: 1n, validBefore: 2n }, ca, /Certificate invalid: expired/],
    [{}, Key.generate("ed25519"), /No matching host key|Host key verification failed/],
  ] as const) {
    const r = await sshWithCA(t, ca, "ed25519", terms, signer);
    if (r === undefined) return;
    assert.equal(r.code, 255);
    assert.equal(r.out, "");
    assert.match(r.stderr, why);
  }
});
