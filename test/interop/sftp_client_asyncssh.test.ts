/**
 * Our FileTransferClient against AsyncSSH's SFTP server (test/interop/peers/asyncssh_server.py):
 * the same requests as against sshd, and a pipelined get/put with SHA-256 checks.
 */
import { test } from "node:test";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import { SYSTEM_PYTHON, requirePythonModule, tempDir } from "../_support/peers.js";
import { sshKeygen } from "../_support/sshd.js";
import { connectClient, makeUserKey, peerScript, startListeningPeer, within } from "./_client_support.js";
import { checkGetPut, exerciseClient } from "./_sftp_support.js";

test("our client against AsyncSSH's SFTP server: every request, then get/put/reget of 8 MiB with SHA-256", async (t) => {
  if (!requirePythonModule(t, "asyncssh", "python3-asyncssh")) return;
  const dir = tempDir(t, "twisted-ts-asyncsshd-");
  const [hostKeyPath, hostKey] = await sshKeygen(dir, "ssh_host_ed25519_key", "ed25519");
  const key = await makeUserKey(t);
  const server = await startListeningPeer(t, SYSTEM_PYTHON, (port) => ["-W", "ignore", peerScript("asyncssh_server.py"), String(port), hostKeyPath, key.publicLine]);
  const client = await connectClient({ port: server.port, user: "alice", key, hostKey, peerLog: server.output });
  t.after(() => client.close());
  const sftp = await within(ft.openSFTPChannel(client.conn), 30_000, "sftp subsystem", server.output);
  await exerciseClient(sftp, tempDir(t));
  await checkGetPut(sftp, tempDir(t), 8 * 1024 * 1024 + 3, server.output);
});
