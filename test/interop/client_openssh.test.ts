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
  checkDownload,
  checkEnv,
  checkExec,
  checkExitSignal,
  checkManyChannels,
  checkPtyShell,
  checkSftpSubsystem,
  checkUpload,
  checkCommandNotFound,
  checkConcurrentEcho,
  checkConnectionLost,
  checkUploadOneWrite,
  checkSmallWindow,
  checkGlobalRequestRefused,
  checkPausedConsumer,
  checkRequestOnClosedChannel,
  checkStdoutAndStderrBulk,
  checkUnknownChannelType,
  connectClient,
  makeUserKey,
} from "./_client_support.js";

test("our client against OpenSSH's sshd", async (t: TestContext) => {
  const key = await makeUserKey(t);
  // MaxSessions: sshd allows 10 sessions per connection by default; the test opens 50.
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], config: ["MaxSessions 64"], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const client = await connectClient({ port: sshd.port, user: sshd.user, key, hostKey: sshd.hostKeys.ed25519!, peerLog: sshd.output });
  t.after(() => client.close());

  await t.test("exec: stdin, stdout, stderr and exit status", () => checkExec(client));
  await t.test("exec: exit-signal for a command killed by SIGTERM", () => checkExitSignal(client));
  await t.test("env: an LC_ variable reaches the command", () => checkEnv(client));
  await t.test("pty-req + shell: stty size, tty, window-change, exit status", () => checkPtyShell(client));
  await t.test("subsystem: sftp answers INIT and REALPATH", () => checkSftpSubsystem(client));
  await t.test("50 session channels at once on one connection", () => checkManyChannels(client, 50));
  await t.test("exec: a command that does not exist exits 127", () => checkCommandNotFound(client));
  await t.test("flow control: a paused channel receives one window, then the rest once resumed", () => checkPausedConsumer(client));
  await t.test("flow control: 4 MiB on stdout and on stderr at once", () => checkStdoutAndStderrBulk(client));
  // sshd refuses every channel type it does not serve with OPEN_CONNECT_FAILED, not 3.
  await t.test("flow control: 16 MiB in one write, then EOF held until it is sent", () => checkUploadOneWrite(client));
  await t.test("flow control: 8 channels echoing 4 MiB each through cat at once", () => checkConcurrentEcho(client));
  await t.test("flow control: a 16 KiB local window (below the max packet) still moves 2 MiB", () => checkSmallWindow(client));
  await t.test("CHANNEL_OPEN of an unknown type: refused (sshd says OPEN_CONNECT_FAILED)", () => checkUnknownChannelType(client, error.OPEN_CONNECT_FAILED));
  await t.test("GLOBAL_REQUEST unknown to the server: GlobalRequestFailedError", () => checkGlobalRequestRefused(client));
  await t.test("a request on a closed channel: ChannelClosedError, nothing sent", () => checkRequestOnClosedChannel(client));
  await t.test("256 MiB server to client, SHA-256 checked", async (tt) => {
    const r = await checkDownload(client, BULK_FULL);
    tt.diagnostic(`download ${r.bytes} bytes in ${r.seconds.toFixed(2)} s (${r.mbPerSecond.toFixed(0)} MB/s)`);
  });
  await t.test("256 MiB client to server, SHA-256 checked", async (tt) => {
    const r = await checkUpload(client, BULK_FULL);
    tt.diagnostic(`upload ${r.bytes} bytes in ${r.seconds.toFixed(2)} s (${r.mbPerSecond.toFixed(0)} MB/s)`);
  });
  await t.test("connection lost: the running channel is closed, the opening one fails", () => checkConnectionLost(client));
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
