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
  checkCipherMatrix,
  connectClient,
  makeUserKey,
  peerScript,
  runServerScenarios,
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

  // Twisted 22.4's session has no signal request.
  await runServerScenarios(t, client, { bulkBytes: BULK_SMALL, signals: false });
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
