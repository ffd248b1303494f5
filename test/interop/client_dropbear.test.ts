/**
 * Our client against Dropbear's server (dropbear-bin), started by the test on 127.0.0.1 with an
 * ed25519 host key in a temp dir: exec with stdin/stdout/stderr and exit status, exit-signal,
 * env (refused: Dropbear has no env request), a shell with a pty (and window-change), the sftp subsystem (Dropbear runs
 * /usr/lib/sftp-server), 256 MiB each way with SHA-256 checks, and 50 channels at once.
 *
 * Dropbear 2022.83 reads authorized keys only from the user's ~/.ssh/authorized_keys (no option
 * to point elsewhere), so the test appends its key there with a marker and removes exactly that
 * line (and any file or directory it created) when it ends.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmdirSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { join } from "node:path";
import { freePort, requirePeer, runCommand, spawnPeer, tempDir, waitForPort } from "../_support/peers.js";
import {
  BULK_FULL,
  connectClient,
  makeUserKey,
  runServerScenarios,
  type UserKey,
} from "./_client_support.js";

/** Appends `line` to ~/.ssh/authorized_keys for the test's duration; restores the file after. */
function authorizeForTest(t: TestContext, line: string): void {
  const sshDir = join(userInfo().homedir, ".ssh");
  const file = join(sshDir, "authorized_keys");
  const marker = `twisted-ts-interop-${process.pid}-${Date.now()}`;
  const madeDir = !existsSync(sshDir);
  if (madeDir) mkdirSync(sshDir, { mode: 0o700 });
  const madeFile = !existsSync(file);
  const before = madeFile ? "" : readFileSync(file, "utf8");
  const sep = before === "" || before.endsWith("\n") ? "" : "\n";
  appendFileSync(file, `${sep}${line} ${marker}\n`, { mode: 0o600 });
  t.after(() => {
    const now = existsSync(file) ? readFileSync(file, "utf8") : "";
    const kept = now.split("\n").filter((l) => !l.includes(marker)).join("\n");
    if (madeFile && kept.trim() === "") rmSync(file, { force: true });
    else writeFileSync(file, sep !== "" && kept.endsWith("\n") ? kept.slice(0, -1) : kept);
    if (madeDir && readdirSync(sshDir).length === 0) rmdirSync(sshDir);
  });
}

/** Starts dropbear on a free port; returns the port, its host key line and its output. */
async function startDropbear(t: TestContext, key: UserKey): Promise<{ port: number; hostKey: string; output: () => string } | undefined> {
  const dropbear = requirePeer(t, "/usr/sbin/dropbear", "dropbear-bin");
  if (dropbear === undefined) return undefined;
  const dropbearkey = requirePeer(t, "dropbearkey", "dropbear-bin");
  if (dropbearkey === undefined) return undefined;
  const dir = tempDir(t, "twisted-ts-dropbear-");
  const hostKeyPath = join(dir, "dropbear_ed25519_host_key");
  const made = await runCommand(dropbearkey, ["-t", "ed25519", "-f", hostKeyPath]);
  const hostKey = /^(ssh-ed25519 \S+)/m.exec(made.stdout.toString())?.[1];
  if (made.code !== 0 || hostKey === undefined) throw new Error(`dropbearkey failed: ${made.stderr}${made.stdout.toString()}`);
  authorizeForTest(t, key.publicLine);
  const port = await freePort();
  // -e passes our environment on: SHLVL=1 keeps root's bash from sourcing ~/.bashrc (pyenv) for
  // every command (see PERF-NOTES). -W: a 2 MiB receive window, as OpenSSH uses (default 24 KiB).
  const server = spawnPeer(
    t,
    dropbear,
    ["-F", "-E", "-e", "-s", "-p", `127.0.0.1:${port}`, "-r", hostKeyPath, "-P", join(dir, "dropbear.pid"), "-W", String(2 * 1024 * 1024)],
    { ...process.env, SHLVL: "1" },
  );
  await waitForPort(port);
  return { port, hostKey, output: server.output };
}

test("our client against Dropbear's server", async (t: TestContext) => {
  const key = await makeUserKey(t);
  const server = await startDropbear(t, key);
  if (server === undefined) return;
  const client = await connectClient({ port: server.port, user: userInfo().username, key, hostKey: server.hostKey, peerLog: server.output });
  t.after(() => client.close());

  // Dropbear 2022.83 has no "env" channel request (it passes its own environment on with -e).
  await runServerScenarios(t, client, { bulkBytes: BULK_FULL, env: "refused" });
});

test("our client with each cipher and MAC Dropbear 2022.83 offers: 1 MiB through cat, both ways", async (t: TestContext) => {
  const key = await makeUserKey(t);
  const server = await startDropbear(t, key);
  if (server === undefined) return;
  // 1 MiB of ASCII (so the collected stdout text compares exactly).
  const data = Buffer.alloc(1024 * 1024, "abcdefghijklmnopqrstuvwxyz0123456789\n").toString();
  const combos: Array<[string, string]> = [
    ["chacha20-poly1305@openssh.com", "hmac-sha2-256"],
    ["aes128-ctr", "hmac-sha1"],
    ["aes128-ctr", "hmac-sha2-256"],
    ["aes256-ctr", "hmac-sha1"],
    ["aes256-ctr", "hmac-sha2-256"],
  ];
  for (const [cipher, mac] of combos) {
    const client = await connectClient({ port: server.port, user: userInfo().username, key, hostKey: server.hostKey, ciphers: [cipher], macs: [mac], peerLog: server.output });
    try {
      const r = await client.exec("cat; echo done >&2", { stdin: data });
      assert.ok(r.stdout === data, `${cipher} + ${mac}: the bytes came back (${r.stdout.length} of ${data.length})`);
      assert.equal(r.stderr, "done\n");
      assert.equal(r.exitStatus, 0);
    } finally {
      client.close();
    }
  }
  // The preference list is really what we offer: AES-GCM alone, which Dropbear lacks, fails.
  await assert.rejects(
    connectClient({ port: server.port, user: userInfo().username, key, hostKey: server.hostKey, ciphers: ["aes128-gcm@openssh.com"], peerLog: server.output }),
  );
});
