import { test } from "node:test";
import assert from "node:assert/strict";
import { credentials, error as cerror } from "@twisted-ts/cred";
import { checkers } from "@twisted-ts/conch";
import { keys, common } from "@twisted-ts/conch/ssh";

const { Key } = keys;
const ca = Key.generate("ed25519");
const userKey = Key.generate("ecdsa");
const NOW = 1_700_000_000;

function cert(terms: Partial<keys.CertificateTerms> = {}, signer: keys.Key = ca): keys.Certificate {
  return signer.signCertificate(userKey.public(), { type: "user", keyId: "alice-laptop", principals: ["alice"], ...terms });
}

function signedCert(c: keys.Certificate, user = "alice", peerHost = "127.0.0.1") {
  const sigData = common.concatBytes(common.NS("session"), Uint8Array.of(50), common.NS(user));
  const creds = new credentials.SSHPrivateKey(user, c.certType, c.blob(), sigData, userKey.sign(sigData));
  creds.peerHost = peerHost;
  return creds;
}

function checker(lines: string[] = [], trusted: keys.Key[] = [ca]): checkers.SSHPublicKeyChecker {
  const db = new checkers.InMemorySSHKeyDB({ alice: checkers.readAuthorizedKeyFile(lines.join("\n")) });
  const ch = new checkers.SSHPublicKeyChecker(db);
  ch.trustedUserCAKeys = trusted;
  ch.now = () => new Date(NOW * 1000);
  return ch;
}

async function refused(ch: checkers.SSHPublicKeyChecker, creds: object): Promise<void> {
  await assert.rejects(Promise.resolve(ch.requestAvatarId(creds)), cerror.UnauthorizedLogin);
}

test("a certificate signed by a trusted user CA logs in as a listed principal, with its terms as key options", async () => {
  const ch = checker();
  const creds = signedCert(cert({ criticalOptions: { "force-command": "/bin/date" }, extensions: { "permit-port-forwarding": "" } }));
  assert.equal(await ch.requestAvatarId(creds), "alice");
  const o = creds.keyOptions as checkers.AuthorizedKeyOptions;
  assert.equal(o.command, "/bin/date");
  assert.equal(o.pty, false);
  assert.equal(o.portForwarding, true);
  assert.equal(o.agentForwarding, false);
  assert.equal(o.x11Forwarding, false);
});

test("expired, not yet valid, wrong principal, empty principals, wrong CA and host certificates are refused", async () => {
  const other = Key.generate("ed25519");
  for (const c of [
    cert({ validBefore: BigInt(NOW) }),
    cert({ validAfter: BigInt(NOW + 1) }),
    cert({ principals: ["bob"] }),
    cert({ principals: [] }),
    cert({}, other),
    cert({ type: "host" }),
    cert({ criticalOptions: { "unknown@example.com": "" } }),
  ]) {
    await refused(checker(), signedCert(c));
  }
  await assert.rejects(Promise.resolve(checker().requestAvatarId(signedCert(cert({ validBefore: BigInt(NOW) })))), /certificate refused \(expired\)/);
  await assert.rejects(Promise.resolve(checker().requestAvatarId(signedCert(cert({}, other)))), /refused \(untrusted-ca\)/);
});

test("a query without signature is refused for a bad certificate and gets PK_OK for a good one", async () => {
  const ch = checker();
  const good = cert();
  const query = new credentials.SSHPrivateKey("alice", good.certType, good.blob(), undefined, undefined);
  await assert.rejects(Promise.resolve(ch.requestAvatarId(query)), (e: unknown) => (e as Error).name === "ValidPublicKey");
  const bad = cert({ principals: ["bob"] });
  await refused(ch, new credentials.SSHPrivateKey("alice", bad.certType, bad.blob(), undefined, undefined));
});

test("source-address is checked against the peer", async () => {
  const c = cert({ criticalOptions: { "source-address": "10.0.0.0/8,::1" } });
  assert.equal(await checker().requestAvatarId(signedCert(c, "alice", "10.1.2.3")), "alice");
  assert.equal(await checker().requestAvatarId(signedCert(c, "alice", "::1")), "alice");
  await assert.rejects(Promise.resolve(checker().requestAvatarId(signedCert(c, "alice", "127.0.0.1"))), /certificate refused \(source-address\): .*127\.0\.0\.1 is not in its source-address list/);
  // Only addresses and CIDR blocks, as OpenSSH: a wildcard makes the list unusable.
  const wild = cert({ criticalOptions: { "source-address": "127.0.0.*" } });
  await assert.rejects(Promise.resolve(checker().requestAvatarId(signedCert(wild))), /"127\.0\.0\.\*" in its source-address list is not an address or CIDR block/);
});

test("principalsFor maps names to the user (AuthorizedPrincipalsFile)", async () => {
  const ch = checker();
  ch.principalsFor = (user) => Promise.resolve(user === "alice" ? ["team-a", "root-ops"] : []);
  assert.equal(await ch.requestAvatarId(signedCert(cert({ principals: ["root-ops"] }))), "alice");
  await refused(ch, signedCert(cert({ principals: ["alice"] })));
});

test("cert-authority lines in authorized_keys: principals= replaces the user name, options narrow the certificate", async () => {
  const line = `cert-authority,principals="ops",no-port-forwarding ${ca.public().toString("openssh")}`;
  const ch = checker([line], []);
  const creds = signedCert(cert({ principals: ["ops"] }));
  assert.equal(await ch.requestAvatarId(creds), "alice");
  assert.equal((creds.keyOptions as checkers.AuthorizedKeyOptions).portForwarding, false);
  assert.equal((creds.keyOptions as checkers.AuthorizedKeyOptions).pty, true);
  await refused(ch, signedCert(cert({ principals: ["alice"] })));
  // The plain CA line does not make the CA key, nor the certified key, a user key.
  await refused(checker([`cert-authority ${ca.public().toString("openssh")}`], []), signedCert(cert({}, Key.generate("ed25519"))));
  assert.equal(await checker([`cert-authority ${ca.public().toString("openssh")}`], []).requestAvatarId(signedCert(cert())), "alice");
});

test("a certificate is never accepted through its plain key's authorized_keys line", async () => {
  await refused(checker([userKey.public().toString("openssh")], []), signedCert(cert()));
});

test("the line's command= and a different force-command refuse the login", async () => {
  const line = `cert-authority,command="ls" ${ca.public().toString("openssh")}`;
  await refused(checker([line], []), signedCert(cert({ criticalOptions: { "force-command": "id" } })));
  assert.equal(await checker([line], []).requestAvatarId(signedCert(cert({ criticalOptions: { "force-command": "ls" } }))), "alice");
});

test("revokedKeys (RevokedKeys): a revoked CA refuses its certificates, a revoked key its certificates and itself", async () => {
  const byCa = checker();
  byCa.revokedKeys = [ca.public()];
  await refused(byCa, signedCert(cert()));
  const byKey = checker();
  byKey.revokedKeys = [userKey.public()];
  await refused(byKey, signedCert(cert()));
  const plain = checker([userKey.public().toString("openssh")], []);
  const sigData = common.NS("data");
  const creds = new credentials.SSHPrivateKey("alice", userKey.sshType(), userKey.public().blob(), sigData, userKey.sign(sigData));
  assert.equal(await plain.requestAvatarId(creds), "alice");
  plain.revokedKeys = [userKey.public()];
  await refused(plain, creds);
});
