/**
 * mlkem768x25519-sha256 against an implementation that is not ours (issue 16): the client of
 * russh 0.63 (Rust; its ML-KEM is RustCrypto's `ml-kem` 0.3.2, its X25519 `curve25519-dalek` 5.0.0),
 * through the npm package `russh` (Tabby's N-API bindings, client side only), against our server.
 *
 * None of Debian 12's peers has ML-KEM (docs/interop.md), and a second combiner written by us would
 * only check ourselves. Here the shared secret, the exchange hash and every key derived from them
 * come from russh's code: a session that carries a command's output and 1 MiB each way under the
 * derived keys, with the host key signature over the exchange hash verified by russh, shows the
 * two sides computed the same exchange. The bindings are a client only, so the other direction
 * (our client against russh's server) cannot be run here.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { startOurServer, type OurServer } from "./_server_support.js";
import { login, run, russh } from "./_russh_support.js";

const MLKEM = "mlkem768x25519-sha256";

function negotiated(server: OurServer): string[] {
  return [...server.logText().matchAll(/kex alg=(\S+) /g)].map((m) => m[1]!);
}

test("russh offers mlkem768x25519-sha256 first, as OpenSSH 10 does", () => {
  assert.equal(russh.getSupportedKexAlgorithms()[0], MLKEM);
});

test(`${MLKEM}: russh's client runs a command on our server by default`, async (t) => {
  const server = await startOurServer(t);
  const session = await login(t, server);
  assert.equal(session.hostKeyAlgorithm, "ssh-ed25519");
  assert.equal((await run(session, "echo mlkem-ok")).toString(), "mlkem-ok\n");
  assert.deepEqual(negotiated(server), [MLKEM]);
  assert.deepEqual(server.criticals(), []);
});

for (const cipher of ["aes256-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"]) {
  test(`${MLKEM} forced, ${cipher}: 1 MiB through cat both ways under the derived keys`, async (t) => {
    const server = await startOurServer(t, { keyExchanges: [MLKEM] });
    const session = await login(t, server, {
      kex: [MLKEM],
      ciphers: [cipher],
      ...(cipher === "aes128-ctr" ? { mac: ["hmac-sha2-256-etm@openssh.com"] } : {}),
    });
    const data = randomBytes(1024 * 1024);
    const echoed = await run(session, "cat", data);
    assert.equal(echoed.length, data.length);
    assert.equal(createHash("sha256").update(echoed).digest("hex"), createHash("sha256").update(data).digest("hex"));
    assert.deepEqual(negotiated(server), [MLKEM]);
    assert.deepEqual(server.criticals(), []);
  });
}

test(`${MLKEM}: russh forced to it cannot connect to a server that does not offer it`, async (t) => {
  // The control for the tests above: forcing the method is what made them use it.
  const server = await startOurServer(t, { keyExchanges: ["curve25519-sha256"] });
  await assert.rejects(login(t, server, { kex: [MLKEM] }));
  assert.deepEqual(negotiated(server), []);
  assert.deepEqual(server.criticals(), []);
});
