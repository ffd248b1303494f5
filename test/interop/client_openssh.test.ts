/**
 * Our client (SSHClientTransport, SSHUserAuthClient, SSHConnection, session channels) against
 * OpenSSH's sshd, started by the test on 127.0.0.1: exec with stdin/stdout/stderr and exit
 * status, exit-signal, env, a shell with a pty (and window-change), the sftp subsystem, 256 MiB
 * each way with SHA-256 checks, and 50 channels at once on one connection; then flow control
 * (a paused channel, stdout and stderr together) and refusals (unknown channel type, unknown
 * global request, a request on a closed channel). No "signal" request: sshd refuses to signal
 * root's sessions ("session signalling requires privilege separation").
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { error } from "@twisted-ts/conch";
import { startSshd } from "../_support/sshd.js";
import {
  BULK_FULL,
  connectClient,
  makeUserKey,
  runServerScenarios,
} from "./_client_support.js";

test("our client against OpenSSH's sshd", async (t: TestContext) => {
  const key = await makeUserKey(t);
  // MaxSessions: sshd allows 10 sessions per connection by default; the test opens 50.
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], config: ["MaxSessions 64"], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const client = await connectClient({ port: sshd.port, user: sshd.user, key, hostKey: sshd.hostKeys.ed25519!, peerLog: sshd.output });
  t.after(() => client.close());

  // sshd does not deliver signal requests to root's sessions, and refuses every channel type it
  // does not serve with OPEN_CONNECT_FAILED rather than OPEN_UNKNOWN_CHANNEL_TYPE.
  await runServerScenarios(t, client, { bulkBytes: BULK_FULL, signals: false, unknownChannelReason: error.OPEN_CONNECT_FAILED });
});

test("our client answers sshd's keepalive@openssh.com probes, so ClientAliveInterval does not drop it", async (t: TestContext) => {
  const key = await makeUserKey(t);
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], config: ["ClientAliveInterval 1", "ClientAliveCountMax 1"], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const client = await connectClient({ port: sshd.port, user: sshd.user, key, hostKey: sshd.hostKeys.ed25519!, peerLog: sshd.output });
  t.after(() => client.close());
  // sshd probes every second and drops a client that misses more than one probe; with a channel
  // open the probe is a channel request, without one a global request: both must be answered.
  await new Promise((r) => setTimeout(r, 3_500));
  const r = await client.exec("sleep 3; echo alive");
  assert.equal(r.stdout, "alive\n");
  assert.equal(r.exitStatus, 0);
  assert.doesNotMatch(sshd.output(), /Timeout, client not responding/);
});
