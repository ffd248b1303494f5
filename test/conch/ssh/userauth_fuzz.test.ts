/**
 * Property tests: whatever bytes a peer sends, userauth answers, fails the attempt or
 * disconnects — it never throws into the transport — and authorized_keys parsing either gives
 * options or a typed error.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { portal as cportal, checkers as cchecks } from "@twisted-ts/cred";
import { userauth, common, service } from "@twisted-ts/conch/ssh";
import { checkers } from "@twisted-ts/conch";
import { FakeTransport, TestRealm, userKey } from "./_userauth_fakes.js";

const { NS, concatBytes } = common;

function server() {
  const pw = new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" });
  const p = new cportal.Portal(new TestRealm(), [
    new checkers.SSHPublicKeyChecker(new checkers.InMemorySSHKeyDB({ alice: [userKey("ed25519")] })),
    pw,
    new cchecks.PAMPasswordChecker(pw),
  ]);
  const t = new FakeTransport({ isClient: false, portal: p });
  const s = new userauth.SSHUserAuthServer();
  s.transport = t;
  s.serviceStarted();
  return { s, t };
}

const method = fc.constantFrom("none", "password", "publickey", "keyboard-interactive", "hostbased", "");
const bytes = fc.uint8Array({ maxLength: 80 });

test("USERAUTH_REQUEST: random payloads and random method data never throw", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(50, 60, 61, 62, 79), fc.oneof(bytes, fc.tuple(bytes, method, bytes).map(([u, m, rest]) => concatBytes(NS(u), NS("ssh-connection"), NS(m), rest)))), { maxLength: 12 }), (msgs) => {
      const { s, t } = server();
      for (const [num, payload] of msgs) s.packetReceived(num, payload);
      t.clock.advance(100);
      assert.equal(t.services.length, 0, "nothing random logs in");
    }),
    { numRuns: 300 },
  );
});

test("client: random server messages never throw", () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.constantFrom(51, 52, 53, 60, 61, 70), bytes), { maxLength: 10 }), (msgs) => {
      const t = new FakeTransport({ isClient: true });
      const c = new userauth.SSHUserAuthClient("alice", new service.SSHService());
      c.transport = t;
      c.serviceStarted();
      c.whenDone().addErrback(() => undefined);
      for (const [num, payload] of msgs) c.packetReceived(num, payload);
    }),
    { numRuns: 300 },
  );
});

test("parseAuthorizedKeyOptions: any text gives options or an AuthorizedKeysParseError", () => {
  const piece = fc.constantFrom("no-pty", "restrict", "pty", 'command="', '"', "\\", ",", "=", "from=", '"10.*"', "environment=", "x", " ", "permitopen=");
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 12 }).map((a) => a.join("")), (text) => {
      try {
        checkers.parseAuthorizedKeyOptions(text);
      } catch (e) {
        assert.ok(e instanceof checkers.AuthorizedKeysParseError, String(e));
      }
    }),
    { numRuns: 1000 },
  );
});
