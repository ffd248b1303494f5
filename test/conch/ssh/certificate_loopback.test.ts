/**
 * Certificates over our own client and server transports pumped in memory, with a task.Clock:
 * a user certificate logs in and its terms become the login's options; a host certificate is
 * negotiated, sent as K_S and verified by the client.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { succeed } from "@twisted-ts/internet/defer";
import { portal as cportal } from "@twisted-ts/cred";
import { userauth, keys, service, factory } from "@twisted-ts/conch/ssh";
import { checkers } from "@twisted-ts/conch";
import { hostKey, sshPair } from "./_sshpair.js";
import { TestRealm, userKey } from "./_userauth_fakes.js";

const ca = keys.Key.generate("ed25519");

class Connection extends service.SSHService {
  override name = "ssh-connection";
}

class CertClient extends userauth.SSHUserAuthClient {
  offers: Array<keys.Certificate | keys.Key> = [];
  override preferredOrder = ["publickey"];
  override getPublicKey() {
    return this.offers.shift();
  }
  override getPrivateKey() {
    return succeed(userKey("rsa"));
  }
  override getPassword() {
    return undefined;
  }
}

function certLogin(cert: keys.Certificate) {
  const checker = new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [] }));
  checker.trustedUserCAKeys = [ca.public()];
  const auth = new CertClient("alice", new Connection());
  auth.offers = [cert];
  const pair = sshPair({ configure: (client) => (client.connectionSecure = () => client.requestService(auth)), greet: false });
  pair.serverFactory.services = { "ssh-userauth": userauth.SSHUserAuthServer, "ssh-connection": Connection };
  pair.serverFactory.portal = new cportal.Portal(new TestRealm(), [checker]);
  let outcome: string | undefined;
  auth.whenDone().addCallbacks(
    () => void (outcome = "ok"),
    (f) => void (outcome = (f.value as Error).message),
  );
  pair.pump.flush();
  for (let i = 0; i < 5; i++) {
    pair.clock.advance(1);
    pair.pump.flush();
  }
  return { pair, auth, outcome: () => outcome };
}

test("loopback: an RSA user certificate logs in as rsa-sha2-512-cert-v01@openssh.com, its terms on authOptions", () => {
  const cert = ca.signCertificate(userKey("rsa").public(), {
    type: "user",
    keyId: "loop",
    principals: ["alice"],
    criticalOptions: { "force-command": "/bin/true" },
    extensions: { "permit-port-forwarding": "" },
  });
  const { pair, auth, outcome } = certLogin(cert);
  assert.equal(outcome(), "ok");
  assert.equal(auth.lastCertificate, cert);
  assert.equal(auth.lastSignatureAlgorithm, "rsa-sha2-512");
  const opts = pair.server.authOptions!;
  assert.equal(opts.forceCommand, "/bin/true");
  assert.equal(opts.permitPty, false);
  assert.equal(opts.permitPortForwarding, true);
  assert.equal(opts.permitAgentForwarding, false);
});

test("loopback: a user certificate for another principal is refused and the client runs out of keys", () => {
  const cert = ca.signCertificate(userKey("rsa").public(), { type: "user", keyId: "loop", principals: ["bob"] });
  const { outcome } = certLogin(cert);
  assert.notEqual(outcome(), "ok");
  assert.notEqual(outcome(), undefined);
});

test("loopback: a host certificate is negotiated first, sent as K_S and verified against its CA", () => {
  const host = hostKey("ed25519");
  const hostCert = ca.signCertificate(host.public(), { type: "host", keyId: "loop-host", principals: ["127.0.0.1"] });
  let seen: Uint8Array | undefined;
  const pair = sshPair({
    hostKeys: [host, hostKey("ecdsa")],
    configure: (client, server) => {
      (server.factory as factory.SSHFactory).hostCertificates = [hostCert];
      client.supportedPublicKeys = ["ssh-ed25519-cert-v01@openssh.com", ...client.supportedPublicKeys];
      client.verifyHostKey = (pubKey: Uint8Array) => {
        seen = pubKey;
        keys.Certificate.fromBlob(pubKey).check({ type: "host", principal: "127.0.0.1", trustedCAs: [ca.public()], now: 1 });
        return succeed(true);
      };
    },
  });
  assert.equal(pair.client.keyAlg, "ssh-ed25519-cert-v01@openssh.com");
  assert.deepEqual(seen, hostCert.blob());
  assert.equal(pair.client.secureCount, 1);
});

test("loopback: without certificate algorithms on the client, the plain host key is used", () => {
  const host = hostKey("ed25519");
  const pair = sshPair({
    configure: (_client, server) => {
      (server.factory as factory.SSHFactory).hostCertificates = [ca.signCertificate(host.public(), { type: "host", keyId: "h", principals: ["h"] })];
    },
  });
  assert.equal(pair.client.keyAlg, "ssh-ed25519");
  assert.equal(pair.client.secureCount, 1);
});
