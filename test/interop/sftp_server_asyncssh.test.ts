/**
 * AsyncSSH's SFTP client against OUR server's sftp subsystem: put, get, mkdir, rename, symlink
 * (AsyncSSH sends the draft's argument order to a server that is not OpenSSH), chmod, stat,
 * listdir, realpath, a typed error, remove, rmdir — byte for byte.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runPythonClient, startOurServer } from "./_server_support.js";
import { sftpServerOptions } from "./_sftp_support.js";

test("asyncssh SFTP client: put, get, mkdir, rename, symlink, chmod, stat, listdir, errors, remove", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  const local = join(server.dir, "local");
  mkdirSync(local);
  const data = randomBytes(4 * 1024 * 1024 + 9);
  writeFileSync(join(local, "src.bin"), data);
  const r = await runPythonClient(t, server, "sftp_asyncssh_client.py", "asyncssh", "python3-asyncssh", local);
  if (r === undefined) return;
  assert.deepEqual(readFileSync(join(local, "a-down.bin")), data, "get, byte for byte");
  assert.deepEqual(r, {
    readlink: "ad/moved.bin",
    mode: 0o640,
    size: data.length,
    islink: true,
    listdir: ["ad", "alink"],
    realpath: server.home,
    missing: "SFTPNoSuchFile",
    after: [],
  });
  assert.deepEqual(server.criticals(), []);
});
