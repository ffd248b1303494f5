/**
 * sshfs (FUSE, over OpenSSH's ssh) against OUR server's sftp subsystem: mount, write, read,
 * `ls -l`-style listing, rename, remove, unmount. Our server runs in this process, so everything
 * done in the mount goes through async `fs` calls (a sync call would block the event loop the
 * server answers on).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, promises as fsp, readFileSync } from "node:fs";
import { join } from "node:path";
import { missing, requirePeer, runCommand } from "../_support/peers.js";
import { clientEnv, startOurServer } from "./_server_support.js";
import { sftpServerOptions } from "./_sftp_support.js";

test("sshfs: mount, write, read, list, rename, remove, unmount — byte for byte", async (t) => {
  const sshfs = requirePeer(t, "sshfs", "sshfs");
  if (sshfs === undefined) return;
  if (!existsSync("/dev/fuse")) return missing(t, "FUSE is not available here (/dev/fuse is missing)");
  const server = await startOurServer(t, sftpServerOptions());
  const mnt = join(server.dir, "mnt");
  mkdirSync(mnt);
  const r = await runCommand(
    sshfs,
    [
      `${server.user}@127.0.0.1:${server.home}`,
      mnt,
      "-p", String(server.port),
      "-o", `IdentityFile=${server.keyPath}`,
      "-o", `UserKnownHostsFile=${server.knownHosts}`,
      "-o", "StrictHostKeyChecking=yes",
      "-o", "BatchMode=yes",
      "-o", "IdentitiesOnly=yes",
      "-F", "/dev/null",
    ],
    { env: clientEnv(server), timeoutMs: 30_000 },
  );
  if (r.code !== 0 && /fuse|permission|mount/i.test(r.stderr)) return missing(t, `FUSE mounts are not allowed here: ${r.stderr.trim()}`);
  assert.equal(r.code, 0, `${r.stderr}\n--- server log ---\n${server.logText()}`);
  t.after(async () => {
    await runCommand("umount", ["-l", mnt]);
  });
  const data = randomBytes(1_234_567);
  await fsp.writeFile(join(mnt, "w.bin"), data);
  assert.deepEqual(readFileSync(join(server.home, "w.bin")), data, "written through the mount");
  assert.deepEqual(await fsp.readFile(join(mnt, "w.bin")), data, "read back through the mount");
  await fsp.mkdir(join(mnt, "d"));
  await fsp.rename(join(mnt, "w.bin"), join(mnt, "d", "moved.bin"));
  const entries = await fsp.readdir(join(mnt, "d"), { withFileTypes: true });
  assert.deepEqual(entries.map((e) => [e.name, e.isFile()]), [["moved.bin", true]]);
  const st = await fsp.stat(join(mnt, "d", "moved.bin"));
  assert.equal(st.size, data.length);
  await fsp.rm(join(mnt, "d", "moved.bin"));
  await fsp.rmdir(join(mnt, "d"));
  assert.equal(existsSync(join(server.home, "d")), false);
  const u = await runCommand("umount", [mnt]);
  assert.equal(u.code, 0, u.stderr);
  assert.deepEqual(server.criticals(), []);
});
