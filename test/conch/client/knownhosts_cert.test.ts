import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { knownhosts } from "@twisted-ts/conch/client";
import { keys } from "@twisted-ts/conch/ssh";
import { HostKeyNotVerifiableError, HostKeyRevoked } from "@twisted-ts/conch/error";
import { tempDir } from "../../_support/peers.js";

const { Key } = keys;
const NOW = 1_700_000_000;
const ca = Key.generate("ed25519");
const hostKey = Key.generate("ed25519");

function hostCert(terms: Partial<keys.CertificateTerms> = {}, signer = ca): keys.Certificate {
  return signer.signCertificate(hostKey.public(), { type: "host", keyId: "web1", principals: ["web1.example.com"], ...terms });
}

function file(t: import("node:test").TestContext, lines: string[]): string {
  const path = join(tempDir(t), "known_hosts");
  writeFileSync(path, lines.join("\n") + "\n");
  return path;
}

const caLine = `@cert-authority *.example.com ${ca.public().toString("openssh")}`;

function verify(path: string, key: keys.Certificate | Uint8Array, hostname = "web1.example.com") {
  return Promise.resolve(knownhosts.verifyHostKey(key, { knownHosts: path, hostname, policy: "strict", now: () => NOW }));
}

test("@cert-authority: a host certificate from the CA, listing the host name, is accepted (blob or Certificate)", async (t) => {
  const path = file(t, [caLine]);
  assert.equal(await verify(path, hostCert()), true);
  assert.equal(await verify(path, hostCert().blob()), true);
  assert.equal(await verify(path, hostCert({ principals: ["WEB1.example.com", "web1.example.com"] }), "Web1.Example.com"), true);
});

test("@cert-authority: wrong name, expired, empty principals and user certificates are refused with the reason", async (t) => {
  const path = file(t, [caLine]);
  for (const [cert, reason] of [
    [hostCert({ principals: ["web2.example.com"] }), "principal"],
    [hostCert({ validBefore: BigInt(NOW) }), "expired"],
    [hostCert({ validAfter: BigInt(NOW + 60) }), "not-yet-valid"],
    [hostCert({ principals: [] }), "no-principals"],
    [hostCert({ type: "user" }), "type"],
  ] as const) {
    await assert.rejects(verify(path, cert), (e: unknown) => e instanceof keys.CertificateError && e.reason === reason, reason);
  }
});

test("@cert-authority: a certificate from an unknown CA, or for a host the CA line does not name, falls back to the plain key", async (t) => {
  const path = file(t, [caLine]);
  await assert.rejects(verify(path, hostCert({}, Key.generate("ed25519"))), HostKeyNotVerifiableError);
  await assert.rejects(verify(path, hostCert({ principals: ["other.test"] }), "other.test"), HostKeyNotVerifiableError);
  const plain = file(t, [caLine, `other.test ${hostKey.public().toString("openssh")}`]);
  assert.equal(await verify(plain, hostCert({}, Key.generate("ed25519")), "other.test"), true);
});

test("@revoked: a revoked CA or a revoked certified key refuses the certificate", async (t) => {
  await assert.rejects(verify(file(t, [caLine, `@revoked * ${ca.public().toString("openssh")}`]), hostCert()), HostKeyRevoked);
  await assert.rejects(verify(file(t, [caLine, `@revoked * ${hostKey.public().toString("openssh")}`]), hostCert()), /host key SHA256:\S+ of the host certificate "web1" is marked @revoked/);
});

test("hostKeyAlgorithmsFor: certificate algorithms first only when a CA is known for the host", (t) => {
  const kh = knownhosts.KnownHostsFile.fromPath(file(t, [caLine]));
  const algs = ["ssh-ed25519", "rsa-sha2-512"];
  assert.deepEqual(knownhosts.hostKeyAlgorithmsFor(kh, "web1.example.com", undefined, algs), [
    "ssh-ed25519-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-ed25519",
    "rsa-sha2-512",
  ]);
  assert.deepEqual(knownhosts.hostKeyAlgorithmsFor(kh, "elsewhere.test", undefined, algs), algs);
});
