/**
 * Our server behind Debian's HAProxy (mode tcp, `send-proxy-v2`), listening through a
 * `haproxy:tcp:…` endpoint. OpenSSH's `ssh` connects to HAProxy from 127.0.0.2 or 127.0.0.3
 * (`-b`), HAProxy connects to us from 127.0.0.1: everything that acts on the client's address
 * must see the PROXY header's source, not HAProxy's. That is `getPeer()` on the SSH transport,
 * authorized_keys `from=`, the log lines and PerSourcePenalties. A second test shows penalties
 * without HAProxy: one source shut out, another unaffected.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, requirePeer, runCommand, spawnPeer, tempDir, waitForPort } from "../_support/peers.js";
import { sshKeygen } from "../_support/sshd.js";
import { clientEnv, sshClientArgs, startOurServer, type OurServer } from "./_server_support.js";

/** Starts `haproxy -db` on 127.0.0.1 in front of `backendPort`; resolves with its port. */
async function startHAProxy(t: TestContext, backendPort: number): Promise<number | undefined> {
  const bin = requirePeer(t, "haproxy");
  if (bin === undefined) return undefined;
  const dir = tempDir(t, "twisted-ts-haproxy-");
  const port = await freePort();
  const cfg = join(dir, "haproxy.cfg");
  writeFileSync(
    cfg,
    [
      "global",
      "  maxconn 256",
      "defaults",
      "  mode tcp",
      "  timeout connect 5s",
      "  timeout client 60s",
      "  timeout server 60s",
      "frontend ssh",
      `  bind 127.0.0.1:${port}`,
      "  default_backend ours",
      "backend ours",
      `  server s1 127.0.0.1:${backendPort} send-proxy-v2`,
      "",
    ].join("\n"),
  );
  const child = spawnPeer(t, bin, ["-f", cfg, "-db"]);
  try {
    await waitForPort(port, 15_000);
  } catch (e) {
    throw new Error(`haproxy did not start: ${child.output()}`, { cause: e });
  }
  return port;
}

/** `ssh -b source` through HAProxy with `keyPath`, running `echo ok`. */
async function sshVia(server: OurServer, port: number, knownHosts: string, source: string, keyPath: string) {
  const r = await runCommand(
    "ssh",
    [...sshClientArgs({ port, keyPath, knownHosts }, ["-b", source]), `${server.user}@127.0.0.1`, "echo ok"],
    { env: clientEnv(server), timeoutMs: 60_000 },
  );
  return { code: r.code, out: r.stdout.toString(), err: r.stderr };
}

test("behind HAProxy (send-proxy-v2) getPeer(), authorized_keys from=, the logs and PerSourcePenalties all see the client's address, not HAProxy's", { timeout: 180_000 }, async (t) => {
  if (requirePeer(t, "ssh", "openssh-client") === undefined) return;
  const keysDir = tempDir(t, "twisted-ts-haproxy-keys-");
  const [otherKey, otherPub] = await sshKeygen(keysDir, "id_other", "ed25519");
  const server = await startOurServer(t, {
    endpoint: "haproxy:tcp:0:interface=127.0.0.1",
    authorizedKeys: (pub) => `from="127.0.0.2" ${pub}\nfrom="127.0.0.3" ${otherPub}\n`,
    // Nothing exempt, and one failed login shuts a source out (30 s is more than min, 15 s).
    perSourcePenaltyExemptList: [],
    perSourcePenalties: { authfail: 30 },
  });
  const port = await startHAProxy(t, server.port);
  if (port === undefined) return;
  const knownHosts = join(server.dir, "known_hosts_haproxy");
  writeFileSync(knownHosts, Object.values(server.hostKeys).map((k) => `[127.0.0.1]:${port} ${k.public().toString("openssh")}\n`).join(""));

  // waitForPort's probe goes through HAProxy from 127.0.0.1 (and may reach us late): leave it out.
  const peers = (): string[] => server.peers().filter((h) => h !== "127.0.0.1");
  const fromTwo = await sshVia(server, port, knownHosts, "127.0.0.2", server.keyPath);
  assert.equal(fromTwo.code, 0, fromTwo.err);
  assert.equal(fromTwo.out, "ok\n");
  assert.deepEqual(peers(), ["127.0.0.2"], "getPeer() on the SSH transport is the PROXY header's source");

  const fromThree = await sshVia(server, port, knownHosts, "127.0.0.3", otherKey);
  assert.equal(fromThree.code, 0, fromThree.err);
  assert.deepEqual(peers(), ["127.0.0.2", "127.0.0.3"]);

  // The from="127.0.0.3" key from 127.0.0.2 is refused: from= acts on the client's address.
  const wrongSource = await sshVia(server, port, knownHosts, "127.0.0.2", otherKey);
  assert.equal(wrongSource.code, 255);
  assert.match(wrongSource.err, /Permission denied/);
  assert.match(server.logText(), /not allowed from 127\.0\.0\.2/);
  assert.doesNotMatch(server.logText(), /not allowed from 127\.0\.0\.1\b/);

  // That failed login penalised 127.0.0.2 (not HAProxy's 127.0.0.1): it is now refused at once…
  const penalised = await sshVia(server, port, knownHosts, "127.0.0.2", server.keyPath);
  assert.equal(penalised.code, 255);
  assert.doesNotMatch(penalised.err, /Permission denied/);
  assert.match(server.logText(), /drop connection from 127\.0\.0\.2: penalty: failed authentication/);
  // …while 127.0.0.3, through the same HAProxy, is unaffected.
  const other = await sshVia(server, port, knownHosts, "127.0.0.3", otherKey);
  assert.equal(other.code, 0, other.err);
  assert.equal(other.out, "ok\n");
  assert.equal(server.criticals().length, 0, server.logText());
});

test("without HAProxy: a source penalised for a failed login is refused before SSH while another loopback source logs in", { timeout: 120_000 }, async (t) => {
  if (requirePeer(t, "ssh", "openssh-client") === undefined) return;
  const keysDir = tempDir(t, "twisted-ts-penalty-keys-");
  const [strangerKey] = await sshKeygen(keysDir, "id_stranger", "ed25519");
  const server = await startOurServer(t, { perSourcePenaltyExemptList: [], perSourcePenalties: { authfail: 30 } });
  const denied = await sshVia(server, server.port, server.knownHosts, "127.0.0.2", strangerKey);
  assert.equal(denied.code, 255);
  assert.match(denied.err, /Permission denied/);
  const refused = await sshVia(server, server.port, server.knownHosts, "127.0.0.2", server.keyPath);
  assert.equal(refused.code, 255);
  assert.doesNotMatch(refused.err, /Permission denied/);
  assert.match(server.logText(), /drop connection from 127\.0\.0\.2: penalty: failed authentication/);
  const fine = await sshVia(server, server.port, server.knownHosts, "127.0.0.3", server.keyPath);
  assert.equal(fine.code, 0, fine.err);
  assert.equal(fine.out, "ok\n");
  assert.deepEqual(server.peers(), ["127.0.0.2", "127.0.0.2", "127.0.0.3"]);
});
