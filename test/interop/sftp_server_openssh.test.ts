/**
 * OpenSSH's `sftp -b` and `scp` (SFTP mode, OpenSSH 9's default) against OUR server, whose avatar
 * serves the `sftp` subsystem in process: FileTransferServer over FilesystemSFTPServer in the
 * user's home. Files are compared byte for byte.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { requirePeer, runCommand } from "../_support/peers.js";
import { clientEnv, sshClientArgs, startOurServer, type OurServer } from "./_server_support.js";
import { sftpServerOptions } from "./_sftp_support.js";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";

async function sftpBatch(t: TestContext, server: OurServer, batch: string, cwd: string) {
  const bin = requirePeer(t, "sftp", "openssh-client");
  if (bin === undefined) return undefined;
  const file = join(cwd, "batch.txt");
  writeFileSync(file, batch);
  const r = await runCommand(bin, [...sshClientArgs(server, [], "-P"), "-b", file, `${server.user}@127.0.0.1`], { env: clientEnv(server), timeoutMs: 60_000, cwd });
  return { ...r, out: r.stdout.toString() };
}

test("sftp -b: put, get, ls -l, rename, mkdir, rmdir, symlink, chmod, reget, rm — byte for byte", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  const local = join(server.dir, "local");
  mkdirSync(local);
  const data = randomBytes(1_000_000 + 123);
  writeFileSync(join(local, "src.bin"), data);
  // reget resumes from what is already there.
  writeFileSync(join(local, "partial.bin"), data.subarray(0, 300_000));
  const r = await sftpBatch(
    t,
    server,
    [
      "put src.bin up.bin",
      "get up.bin down.bin",
      "mkdir newdir",
      "rename up.bin newdir/moved.bin",
      "symlink newdir/moved.bin link.bin",
      "chmod 600 newdir/moved.bin",
      "ls -l",
      "ls -l newdir",
      "reget link.bin partial.bin",
      "mkdir gone",
      "rmdir gone",
      "rm link.bin",
      "pwd",
    ].join("\n") + "\n",
    local,
  );
  if (r === undefined) return;
  assert.equal(r.code, 0, `${r.stderr}\n--- server log ---\n${server.logText()}`);
  assert.deepEqual(readFileSync(join(local, "down.bin")), data, "get");
  assert.deepEqual(readFileSync(join(server.home, "newdir", "moved.bin")), data, "put then rename");
  assert.deepEqual(readFileSync(join(local, "partial.bin")), data, "reget through a symlink");
  assert.equal(statSync(join(server.home, "newdir", "moved.bin")).mode & 0o777, 0o600, "chmod");
  assert.equal(lstatSync(join(server.home, "link.bin"), { throwIfNoEntry: false }), undefined, "rm");
  assert.equal(lstatSync(join(server.home, "gone"), { throwIfNoEntry: false }), undefined, "rmdir");
  assert.match(r.out, /^drwx\S* +\d+ \S+ +\S+ +\d+ \w{3} [ \d]\d [ \d:]{5} newdir$/m, "ls -l lists the directory");
  assert.match(r.out, /^lrwxrwxrwx +1 \S+ +\S+ +\d+ .* link\.bin$/m, "ls -l lists the link");
  assert.match(r.out, new RegExp(`^-rw------- +1 \\S+ +\\S+ +${data.length} .* moved\\.bin$`, "m"), "ls -l newdir shows the mode and size");
  assert.match(r.out, new RegExp(`Remote working directory: ${server.home.replace(/[/.]/g, "\\$&")}`));
  assert.deepEqual(server.criticals(), []);
});

test("sftp -b: errors come back as the statuses sftp prints (no such file, failure on an existing rename target)", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  writeFileSync(join(server.home, "a"), "a");
  writeFileSync(join(server.home, "b"), "b");
  const local = join(server.dir, "local");
  mkdirSync(local);
  const r1 = await sftpBatch(t, server, "get no-such-file\n", local);
  if (r1 === undefined) return;
  assert.notEqual(r1.code, 0);
  assert.match(r1.stderr, /no-such-file.*not found/);
  const r2 = await sftpBatch(t, server, "rename a b\n", local);
  // OpenSSH's sftp uses posix-rename@openssh.com when offered, which replaces.
  assert.equal(r2?.code, 0, r2?.stderr);
  assert.equal(readFileSync(join(server.home, "b"), "utf8"), "a");
  assert.match(server.logText(), /SFTP client version 3/);
});

test("sftp -b: confined to a root folder, '..' and a symlink out stay inside", async (t) => {
  const server = await startOurServer(t, sftpServerOptions((home) => ({ root: home })));
  writeFileSync(join(server.dir, "secret"), "outside");
  const local = join(server.dir, "local");
  mkdirSync(local);
  const r = await sftpBatch(t, server, ["pwd", "-get ../secret s1", "symlink /.. out", "-get out/secret s2", "put batch.txt ../../escaped"].join("\n") + "\n", local);
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.out, /Remote working directory: \/$/m);
  assert.equal(lstatSync(join(local, "s1"), { throwIfNoEntry: false }), undefined);
  assert.equal(lstatSync(join(local, "s2"), { throwIfNoEntry: false }), undefined);
  assert.equal(readlinkSync(join(server.home, "out")), "/..");
  assert.ok(lstatSync(join(server.home, "escaped")).isFile(), "'../../escaped' lands in the root");
  assert.equal(lstatSync(join(server.dir, "escaped"), { throwIfNoEntry: false }), undefined);
});

test("scp (SFTP mode): upload and download, byte for byte", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  const bin = requirePeer(t, "scp", "openssh-client");
  if (bin === undefined) return;
  const local = join(server.dir, "local");
  mkdirSync(local);
  const data = randomBytes(3_000_000 + 7);
  writeFileSync(join(local, "up.bin"), data);
  const up = await runCommand(bin, [...sshClientArgs(server, [], "-P"), "-s", join(local, "up.bin"), `${server.user}@127.0.0.1:scp-up.bin`], { env: clientEnv(server), timeoutMs: 60_000 });
  assert.equal(up.code, 0, `${up.stderr}\n${server.logText()}`);
  assert.deepEqual(readFileSync(join(server.home, "scp-up.bin")), data);
  const down = await runCommand(bin, [...sshClientArgs(server, [], "-P"), "-s", `${server.user}@127.0.0.1:scp-up.bin`, join(local, "down.bin")], { env: clientEnv(server), timeoutMs: 60_000 });
  assert.equal(down.code, 0, down.stderr);
  assert.deepEqual(readFileSync(join(local, "down.bin")), data);
  assert.match(server.logText(), /asking for subsystem sftp/);
});

test("sftp -b through the Unix realm as it comes: its default subsystems run our sftp-server bin as the user", async (t) => {
  const server = await startOurServer(t);
  const local = join(server.dir, "local");
  mkdirSync(local);
  const data = randomBytes(2_000_003);
  writeFileSync(join(local, "src.bin"), data);
  const r = await sftpBatch(t, server, ["put src.bin up.bin", "get up.bin down.bin", "ls -l", "rename up.bin moved.bin", "pwd"].join("\n") + "\n", local);
  if (r === undefined) return;
  assert.equal(r.code, 0, `${r.stderr}\n--- server log ---\n${server.logText()}`);
  assert.deepEqual(readFileSync(join(local, "down.bin")), data);
  assert.deepEqual(readFileSync(join(server.home, "moved.bin")), data);
  assert.match(r.out, new RegExp(`Remote working directory: ${server.home.replace(/[/.]/g, "\\$&")}`));
  assert.match(server.logText(), /subsystem sftp for \S+: /);
  assert.deepEqual(server.criticals(), []);
});
