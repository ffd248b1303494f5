/**
 * OUR client offering a user certificate to OpenSSH's sshd (`TrustedUserCAKeys`, no authorized
 * keys): certificates made by `Key.signCertificate` for Ed25519 and RSA user keys log in (the RSA
 * one as `rsa-sha2-512-cert-v01@openssh.com`); one for another principal is refused.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { keys } from "@twisted-ts/conch/ssh";
import { tempDir } from "../_support/peers.js";
import { sshKeygen, startSshd, type Sshd } from "../_support/sshd.js";
import { connectClient, type UserKey } from "./_client_support.js";

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
    assert.match(sshd.output(), new RegExp(`Accepted publickey for \\S+ from 127\\.0\\.0\\.1 port \\d+ ssh2: ${type === "rsa" ? "RSA" : "ED25519"}-CERT SHA256:\\S+ ID ours-${type}`));
  });
}

test("sshd refuses our certificate for another principal, and our client reports the failure", async (t) => {
  const ca = Key.generate("ed25519");
  const sshd = await sshdTrusting(t, ca);
  if (sshd === undefined) return;
  const key = await userKey(t, "ed25519");
  const cert = ca.signCertificate(Key.fromString(key.publicLine), { type: "user", keyId: "not-for-you", principals: ["someone-else"] });
  await assert.rejects(connectClient({ port: sshd.port, user: sshd.user, key, certificate: cert.toString(), hostKey: sshd.hostKeys["ed25519"], peerLog: sshd.output }));
  assert.match(sshd.output(), /Certificate invalid: name is not a listed principal/);
});
