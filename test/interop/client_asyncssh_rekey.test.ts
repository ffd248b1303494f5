/**
 * Our client through AsyncSSH's server-initiated rekeys: AsyncSSH 2.10 keeps sending CHANNEL_DATA
 * after its own rekey KEXINIT, which the transport must deliver rather than treat as a fault.
 */
import { test, type TestContext } from "node:test";
import { sshKeygen } from "../_support/sshd.js";
import { SYSTEM_PYTHON, requirePythonModule, tempDir } from "../_support/peers.js";
import { checkDownload, checkUpload, connectClient, makeUserKey, peerScript, startListeningPeer } from "./_client_support.js";

test("our client through AsyncSSH's server-initiated rekeying every MiB: 8 MiB each way, hashed", async (t: TestContext) => {
  if (!requirePythonModule(t, "asyncssh", "python3-asyncssh")) return;
  const dir = tempDir(t, "twisted-ts-asyncsshd-");
  const [hostKeyPath, hostKey] = await sshKeygen(dir, "ssh_host_ed25519_key", "ed25519");
  const key = await makeUserKey(t);
  // The 4th argument makes AsyncSSH rekey after every MiB (its default is 1 GiB or one hour).
  const server = await startListeningPeer(t, SYSTEM_PYTHON, (port) => ["-W", "ignore", peerScript("asyncssh_server.py"), String(port), hostKeyPath, key.publicLine, String(1024 * 1024)]);
  const client = await connectClient({ port: server.port, user: "alice", key, hostKey, peerLog: server.output });
  t.after(() => client.close());
  await checkDownload(client, 8 * 1024 * 1024);
  await checkUpload(client, 8 * 1024 * 1024);
});
