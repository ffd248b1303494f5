/**
 * Our FileTransferClient against Paramiko's SFTP server (test/interop/peers/paramiko_sftp_server.py):
 * the same requests as against sshd (Paramiko offers none of OpenSSH's extensions but takes
 * SYMLINK target first, which our client sends to a server whose version names paramiko), and a
 * pipelined get/put/reget with SHA-256 checks.
 */
import { test } from "node:test";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import { SYSTEM_PYTHON, requirePythonModule, tempDir } from "../_support/peers.js";
import { sshKeygen } from "../_support/sshd.js";
import { connectClient, makeUserKey, peerScript, startListeningPeer, within } from "./_client_support.js";
import { checkGetPut, exerciseClient } from "./_sftp_support.js";

test("our client against Paramiko's SFTP server: every request, then get/put/reget of 4 MiB with SHA-256", async (t) => {
  if (!requirePythonModule(t, "paramiko", "python3-paramiko")) return;
  const dir = tempDir(t, "twisted-ts-paramikod-");
  const [hostKeyPath, hostKey] = await sshKeygen(dir, "ssh_host_ed25519_key", "ed25519");
  const key = await makeUserKey(t);
  const server = await startListeningPeer(t, SYSTEM_PYTHON, (port) => ["-W", "ignore", peerScript("paramiko_sftp_server.py"), String(port), hostKeyPath, key.publicLine]);
  const client = await connectClient({ port: server.port, user: "alice", key, hostKey, peerLog: server.output });
  t.after(() => client.close());
  const sftp = await within(ft.openSFTPChannel(client.conn), 30_000, "sftp subsystem", server.output);
  await exerciseClient(sftp, tempDir(t), []);
  await checkGetPut(sftp, tempDir(t), 4 * 1024 * 1024 + 1, server.output);
});
