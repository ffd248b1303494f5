/**
 * Our client against ssh2's server (the npm package, 1.17), started by the test on
 * 127.0.0.1 from test/interop/peers/ssh2_server.cjs (real commands through child_process, a real pty through
 * peers/pty_bridge.py, ssh2's SFTP server): exec with stdin/stdout/stderr
 * and exit status, exit-signal, env, a shell with a pty (and window-change), the sftp subsystem,
 * 32 MiB each way with SHA-256 checks (the full 256 MiB runs against sshd and Dropbear), and 50
 * channels at once.
 */
import { test, type TestContext } from "node:test";
import { sshKeygen } from "../_support/sshd.js";
import { requirePythonModule, tempDir } from "../_support/peers.js";
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
  checkUnknownChannelType,
  connectClient,
  makeUserKey,
  peerScript,
  startListeningPeer,
} from "./_client_support.js";

test("our client against ssh2's server", async (t: TestContext) => {
  // The ssh2 package is a dev dependency; the pty bridge needs Debian's python3.
  if (!requirePythonModule(t, "pty", "python3")) return;
  const dir = tempDir(t, "twisted-ts-ssh2d-");
  const [hostKeyPath, hostKey] = await sshKeygen(dir, "ssh_host_ed25519_key", "ed25519");
  const key = await makeUserKey(t);
  const server = await startListeningPeer(t, process.execPath, (port) => [
    peerScript("ssh2_server.cjs"),
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
  // Not "4 MiB on stdout and on stderr at once": ssh2 1.17's server mixes up its two streams when
  // both wait for window (server.js CHANNEL_WINDOW_ADJUST resumes a stale stdout chunk left in
  // channel._chunk instead of the waiting stderr one): stdout arrives with extra bytes and stderr
  // stops short, while our window is open. A peer bug, shown with a 4 MiB `cat f; cat f >&2`.
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

test("our client through ssh2's server rekeying every 400 ms, host key checks answered 300 ms late: 3 × 4 MiB each way, hashed", async (t: TestContext) => {
  if (!requirePythonModule(t, "pty", "python3")) return;
  const dir = tempDir(t, "twisted-ts-ssh2d-");
  const [hostKeyPath, hostKey] = await sshKeygen(dir, "ssh_host_ed25519_key", "ed25519");
  const key = await makeUserKey(t);
  const server = await startListeningPeer(t, process.execPath, (port) => [peerScript("ssh2_server.cjs"), String(port), hostKeyPath, key.publicLine], {
    ...process.env,
    SSH2_REKEY_EVERY_MS: "400",
  });
  const client = await connectClient({ port: server.port, user: "alice", key, hostKey, verifyDelayMs: 300, peerLog: server.output });
  t.after(() => client.close());
  for (let i = 0; i < 3; i++) {
    await checkDownload(client, 4 * 1024 * 1024);
    await checkUpload(client, 4 * 1024 * 1024);
    await new Promise((r) => setTimeout(r, 300));
  }
});
