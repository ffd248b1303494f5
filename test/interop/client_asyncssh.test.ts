/**
 * Our client against AsyncSSH's server (Debian's python3-asyncssh 2.10), started by the test on
 * 127.0.0.1 from test/interop/peers/asyncssh_server.py (AsyncSSH's process API running real
 * commands, a real pty for shells, AsyncSSH's own SFTP server): exec with stdin/stdout/stderr
 * and exit status, exit-signal, env, a shell with a pty (and window-change), the sftp subsystem,
 * 32 MiB each way with SHA-256 checks (the full 256 MiB runs against sshd and Dropbear), and 50
 * channels at once.
 */
import { test, type TestContext } from "node:test";
import { sshKeygen } from "../_support/sshd.js";
import { SYSTEM_PYTHON, requirePythonModule, tempDir } from "../_support/peers.js";
import {
  BULK_SMALL,
  checkDownload,
  checkEnv,
  checkExec,
  checkExitSignal,
  checkManyChannels,
  checkPtyShell,
  checkSftpSubsystem,
  checkUpload,
  checkCipherMatrix,
  checkCommandNotFound,
  checkConcurrentEcho,
  checkConnectionLost,
  checkUploadOneWrite,
  checkSmallWindow,
  checkGlobalRequestRefused,
  checkPausedConsumer,
  checkRequestOnClosedChannel,
  checkSignalRequest,
  checkStdoutAndStderrBulk,
  checkUnknownChannelType,
  connectClient,
  makeUserKey,
  peerScript,
  startListeningPeer,
} from "./_client_support.js";

test("our client against AsyncSSH's server", async (t: TestContext) => {
  if (!requirePythonModule(t, "asyncssh", "python3-asyncssh")) return;
  const dir = tempDir(t, "twisted-ts-asyncsshd-");
  const [hostKeyPath, hostKey] = await sshKeygen(dir, "ssh_host_ed25519_key", "ed25519");
  const key = await makeUserKey(t);
  const server = await startListeningPeer(t, SYSTEM_PYTHON, (port) => [
    "-W",
    "ignore",
    peerScript("asyncssh_server.py"),
    String(port),
    hostKeyPath,
    key.publicLine,
  ]);
  const client = await connectClient({ port: server.port, user: "alice", key, hostKey, peerLog: server.output });
  t.after(() => client.close());

  await t.test("exec: stdin, stdout, stderr and exit status", () => checkExec(client));
  await t.test("exec: exit-signal for a command killed by SIGTERM", () => checkExitSignal(client));
  await t.test("env: an LC_ variable reaches the command", () => checkEnv(client));
  await t.test("pty-req + shell: stty size, tty, window-change, exit status", () => checkPtyShell(client));
  await t.test("subsystem: sftp answers INIT and REALPATH", () => checkSftpSubsystem(client));
  await t.test("50 session channels at once on one connection", () => checkManyChannels(client, 50));
  await t.test("exec: a command that does not exist exits 127", () => checkCommandNotFound(client));
  await t.test("signal: TERM ends a running command with exit-signal TERM", () => checkSignalRequest(client));
  await t.test("flow control: a paused channel receives one window, then the rest once resumed", () => checkPausedConsumer(client));
  await t.test("flow control: 4 MiB on stdout and on stderr at once", () => checkStdoutAndStderrBulk(client));
  await t.test("flow control: 16 MiB in one write, then EOF held until it is sent", () => checkUploadOneWrite(client));
  await t.test("flow control: 8 channels echoing 4 MiB each through cat at once", () => checkConcurrentEcho(client));
  await t.test("flow control: a 16 KiB local window (below the max packet) still moves 2 MiB", () => checkSmallWindow(client));
  await t.test("CHANNEL_OPEN of an unknown type: OPEN_UNKNOWN_CHANNEL_TYPE", () => checkUnknownChannelType(client));
  await t.test("GLOBAL_REQUEST unknown to the server: GlobalRequestFailedError", () => checkGlobalRequestRefused(client));
  await t.test("a request on a closed channel: ChannelClosedError, nothing sent", () => checkRequestOnClosedChannel(client));
  await t.test("32 MiB server to client, SHA-256 checked", async (tt) => {
    const r = await checkDownload(client, BULK_SMALL);
    tt.diagnostic(`download ${r.bytes} bytes in ${r.seconds.toFixed(2)} s (${r.mbPerSecond.toFixed(0)} MB/s)`);
  });
  await t.test("32 MiB client to server, SHA-256 checked", async (tt) => {
    const r = await checkUpload(client, BULK_SMALL);
    tt.diagnostic(`upload ${r.bytes} bytes in ${r.seconds.toFixed(2)} s (${r.mbPerSecond.toFixed(0)} MB/s)`);
  });
  await t.test("connection lost: the running channel is closed, the opening one fails", () => checkConnectionLost(client));
  await t.test("each cipher and MAC in CIPHER_MATRIX: 1 MiB through cat", () =>
    checkCipherMatrix((ciphers, macs) => connectClient({ port: server.port, user: "alice", key, hostKey, ciphers, macs, peerLog: server.output })),
  );
});
