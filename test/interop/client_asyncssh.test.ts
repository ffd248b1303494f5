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
  checkCipherMatrix,
  connectClient,
  makeUserKey,
  peerScript,
  runServerScenarios,
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

  await runServerScenarios(t, client, { bulkBytes: BULK_SMALL });
  await t.test("each cipher and MAC in CIPHER_MATRIX: 1 MiB through cat", () =>
    checkCipherMatrix((ciphers, macs) => connectClient({ port: server.port, user: "alice", key, hostKey, ciphers, macs, peerLog: server.output })),
  );
});
