/**
 * The runnable examples stay true to the code: each conch demo runs as a user would run it (a
 * fresh Node process on the compiled example), prints what its header promises and exits 0.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { sshKeygen, startSshd } from "./_support/sshd.js";
import { tempDir } from "./_support/peers.js";

const run = promisify(execFile);
const EXAMPLES = fileURLToPath(new URL("../../examples/dist/conch/", import.meta.url));

test("examples/conch/demo.ts (npm start) prints what cat echoed and exits 0", async () => {
  const { stdout } = await run(process.execPath, [`${EXAMPLES}demo.js`], { timeout: 60_000 });
  assert.match(stdout, /We got this from "cat": This data will be echoed back to us by "cat\."/);
});

test("examples/conch/sftpdemo.ts puts, lists and gets a file through the Unix realm's sftp and exits 0", async () => {
  const { stdout } = await run(process.execPath, [`${EXAMPLES}sftpdemo.js`], { timeout: 60_000 });
  assert.match(stdout, /uploaded\.bin/);
  assert.match(stdout, /the file came back byte for byte/);
});

test("examples/conch/echoclient_ssh.ts runs cat on sshd through SSHCommandClientEndpoint, prints the three echoes and exits 0", async (t) => {
  const dir = tempDir(t, "twisted-ts-echoclient-");
  const [keyPath, pub] = await sshKeygen(dir, "id_ed25519", "ed25519");
  const sshd = await startSshd(t, { authorizedKeys: [pub], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519!}\n`);
  const args = ["-p", String(sshd.port), "-u", sshd.user, "-i", keyPath, "-k", knownHosts, "--no-agent", "127.0.0.1"];
  const { stdout } = await run(process.execPath, [`${EXAMPLES}echoclient_ssh.js`, ...args], { timeout: 60_000 });
  assert.equal(stdout, "Server says: bif\nServer says: pow\nServer says: zot\n");
});

test("examples/conch/agentdemo.ts adds, lists, signs with, locks and unlocks a key in its own agent and exits 0", async () => {
  const { stdout } = await run(process.execPath, [`${EXAMPLES}agentdemo.js`], { timeout: 60_000 });
  assert.match(stdout, /SSH_AUTH_SOCK=\S+\/ssh-\w+\/agent\.\d+/);
  assert.match(stdout, /the agent holds demo key: /);
  assert.match(stdout, /the agent's signature verifies: true/);
  assert.match(stdout, /locked, it lists 0 keys\nunlocked, it lists 1 key/);
});
