/**
 * Our FileTransferClient against ssh2's SFTP server (test/interop/peers/ssh2_sftp_server.cjs, the
 * npm package over plain `fs` calls): every v3 request (ssh2 offers none of OpenSSH's extensions,
 * and takes SYMLINK in the draft's order from a client that is not OpenSSH), then a pipelined
 * get/put/reget with SHA-256 checks.
 */
import { test } from "node:test";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import { tempDir } from "../_support/peers.js";
import { sshKeygen } from "../_support/sshd.js";
import { connectClient, makeUserKey, peerScript, startListeningPeer, within } from "./_client_support.js";
import { checkGetPut, exerciseClient } from "./_sftp_support.js";

test("our client against ssh2's SFTP server: every request, then get/put/reget of 4 MiB with SHA-256", async (t) => {
  const dir = tempDir(t, "twisted-ts-ssh2sftpd-");
  const [hostKeyPath, hostKey] = await sshKeygen(dir, "ssh_host_ed25519_key", "ed25519");
  const key = await makeUserKey(t);
  const server = await startListeningPeer(t, process.execPath, (port) => [peerScript("ssh2_sftp_server.cjs"), String(port), hostKeyPath, key.publicLine]);
  const client = await connectClient({ port: server.port, user: "alice", key, hostKey, peerLog: server.output });
  t.after(() => client.close());
  const sftp = await within(ft.openSFTPChannel(client.conn), 30_000, "sftp subsystem", server.output);
  await exerciseClient(sftp, tempDir(t), []);
  await checkGetPut(sftp, tempDir(t), 4 * 1024 * 1024 + 1, server.output);
});
