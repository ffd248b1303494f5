/**
 * Paramiko's SFTPClient against OUR server's sftp subsystem (FileTransferServer over
 * FilesystemSFTPServer in the user's home): put, a prefetching get, mkdir, rename, symlink,
 * chmod, stat/lstat, listdir, append, typed errors, remove, rmdir — byte for byte.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runPythonClient, startOurServer } from "./_server_support.js";
import { sftpServerOptions } from "./_sftp_support.js";

test("paramiko SFTPClient: put, prefetching get, mkdir, rename, symlink, chmod, listdir, append, errors, remove", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  const local = join(server.dir, "local");
  mkdirSync(local);
  const data = randomBytes(8 * 1024 * 1024 + 5);
  writeFileSync(join(local, "src.bin"), data);
  const r = await runPythonClient(t, server, "sftp_paramiko_client.py", "paramiko", "python3-paramiko", local);
  if (r === undefined) return;
  assert.deepEqual(readFileSync(join(local, "p-down.bin")), data, "get, byte for byte");
  assert.deepEqual(r, {
    put_size: data.length,
    readlink: "pd/moved.bin",
    mode: 0o600,
    lstat_is_link: true,
    listdir: ["pd", "plink"],
    listdir_attr: [["moved.bin", data.length]],
    normalize: server.home,
    appended: "hello world",
    missing: "FileNotFoundError",
    rmdir_nonempty: "IOError",
    after: [],
  });
  assert.deepEqual(server.criticals(), []);
});
