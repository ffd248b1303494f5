/**
 * `curl sftp://` (Debian's curl is built with libssh2) against OUR server's sftp subsystem:
 * upload, download, a directory listing, and quote commands (mkdir, rename, chmod, symlink, rm,
 * rmdir) — byte for byte.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requirePeer, runCommand } from "../_support/peers.js";
import { clientEnv, startOurServer } from "./_server_support.js";
import { sftpServerOptions } from "./_sftp_support.js";

test("curl sftp://: upload, download, listing, and quote commands", async (t) => {
  const curl = requirePeer(t, "curl", "curl");
  if (curl === undefined) return;
  const server = await startOurServer(t, sftpServerOptions());
  const local = join(server.dir, "local");
  mkdirSync(local);
  const data = randomBytes(2 * 1024 * 1024 + 1);
  writeFileSync(join(local, "src.bin"), data);
  const hostKey = Object.values(server.hostKeys)[0]!;
  const pin = createHash("sha256").update(hostKey.public().blob()).digest("base64");
  const base = `sftp://127.0.0.1:${server.port}/~/`;
  const args = ["-sS", "--fail", "-u", `${server.user}:`, "--key", server.keyPath, "--pubkey", `${server.keyPath}.pub`, "--hostpubsha256", pin];
  const run = async (extra: string[]): Promise<string> => {
    const r = await runCommand(curl, [...args, ...extra], { env: clientEnv(server), timeoutMs: 60_000 });
    assert.equal(r.code, 0, `curl ${extra.join(" ")}: ${r.stderr}\n--- server log ---\n${server.logText()}`);
    return r.stdout.toString();
  };
  await run(["-T", join(local, "src.bin"), `${base}up.bin`]);
  assert.deepEqual(readFileSync(join(server.home, "up.bin")), data, "upload");
  await run(["-o", join(local, "down.bin"), `${base}up.bin`]);
  assert.deepEqual(readFileSync(join(local, "down.bin")), data, "download");
  await run(["-Q", "mkdir d", "-Q", "rename up.bin d/moved.bin", "-Q", "chmod 600 d/moved.bin", "-Q", "symlink d/moved.bin l", "-I", base]);
  assert.equal(statSync(join(server.home, "d", "moved.bin")).mode & 0o777, 0o600);
  assert.equal(readlinkSync(join(server.home, "l")), "d/moved.bin");
  const listing = await run([base]);
  assert.match(listing, /^drwx\S* +\d+ \S+ +\S+ +\d+ .* d$/m);
  assert.match(listing, /^lrwxrwxrwx +1 .* l -> d\/moved\.bin$/m, "curl reads the link itself and adds its target");
  await run(["-Q", "rm l", "-Q", "rm d/moved.bin", "-Q", "rmdir d", "-I", base]);
  assert.equal(lstatSync(join(server.home, "d"), { throwIfNoEntry: false }), undefined);
  assert.deepEqual(server.criticals(), []);
});
