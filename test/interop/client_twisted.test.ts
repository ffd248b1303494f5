/**
 * Our client against Twisted Conch's own server (Debian's python3-twisted 22.4), started by the
 * test on 127.0.0.1 from test/interop/peers/twisted_conch_server.py: Twisted's Unix realm with an
 * in-memory publickey database. exec with stdin/stdout/stderr and exit status, exit-signal, env,
 * a shell with a pty (and window-change), the sftp subsystem (Twisted's FileTransferServer),
 * 32 MiB each way with SHA-256 checks (the full 256 MiB runs against sshd and Dropbear; a Python
 * server moves bulk data far slower), and 50 channels at once.
 */
import { test, type TestContext } from "node:test";
import { userInfo } from "node:os";
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
  checkStdoutAndStderrBulk,
  checkUnknownChannelType,
  connectClient,
  makeUserKey,
  peerScript,
  startListeningPeer,
} from "./_client_support.js";

test("our client against Twisted Conch's server", async (t: TestContext) => {
  if (!requirePythonModule(t, "twisted.conch.unix", "python3-twisted")) return;
  const dir = tempDir(t, "twisted-ts-conchd-");
  const [hostKeyPath, hostKey] = await sshKeygen(dir, "ssh_host_ed25519_key", "ed25519");
  const key = await makeUserKey(t);
  const user = userInfo().username;
  const server = await startListeningPeer(t, SYSTEM_PYTHON, (port) => [
    "-W",
    "ignore",
    peerScript("twisted_conch_server.py"),
    String(port),
    hostKeyPath,
    user,
    key.publicLine,
  ]);
  const client = await connectClient({ port: server.port, user, key, hostKey, peerLog: server.output });
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
  // Twisted 22.4 has neither chacha20-poly1305 nor AES-GCM, nor the -etm MACs.
  await t.test("each CTR cipher with an HMAC Twisted offers: 1 MiB through cat", () =>
    checkCipherMatrix(
      (ciphers, macs) => connectClient({ port: server.port, user, key, hostKey, ciphers, macs, peerLog: server.output }),
      [
        ["aes128-ctr", "hmac-sha2-256"],
        ["aes192-ctr", "hmac-sha2-512"],
        ["aes256-ctr", "hmac-sha1"],
      ],
    ),
  );
});
