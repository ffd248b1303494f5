/**
 * Our FileTransferClient against OpenSSH: sshd's sftp subsystem (internal-sftp) over a real SSH
 * connection, and OpenSSH's `sftp -D` driving our `sftp-server` bin over a pipe (no SSH at all).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { StreamTransport } from "@twisted-ts/conch/scripts/sftp-server";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import { requirePeer, runCommand, tempDir } from "../_support/peers.js";
import { startSshd } from "../_support/sshd.js";
import { connectClient, makeUserKey, within } from "./_client_support.js";
import { checkGetPut, checkLargeGetPut, exerciseClient } from "./_sftp_support.js";

/** sshd with a user key, our client logged in, and the sftp subsystem started on it. */
async function sftpToSshd(t: TestContext): Promise<{ sftp: ft.FileTransferClient; log: () => string } | undefined> {
  const key = await makeUserKey(t);
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return undefined;
  const client = await connectClient({ port: sshd.port, user: sshd.user, key, hostKey: sshd.hostKeys["ed25519"], peerLog: sshd.output });
  t.after(() => client.close());
  return { sftp: await within(ft.openSFTPChannel(client.conn), 30_000, "sftp subsystem", sshd.output), log: sshd.output };
}

test("our client against sshd's sftp: files, directories, links, attributes, extensions, errors", async (t) => {
  const s = await sftpToSshd(t);
  if (s === undefined) return;
  await exerciseClient(s.sftp, tempDir(t));
});

test("our client's get/put against sshd: 32 MiB each way in sshd's 255 KiB chunks (limits@openssh.com), pipelined, SHA-256 equal, and reget of a partial file", async (t) => {
  const s = await sftpToSshd(t);
  if (s === undefined) return;
  // sshd's sftp-server allows 255 KiB reads and writes (its 256 KiB packet less 1 KiB), as OpenSSH's sftp uses them.
  assert.deepEqual(await s.sftp.transferChunkSizes(), { read: 255 * 1024, write: 255 * 1024 });
  await checkGetPut(s.sftp, tempDir(t), 32 * 1024 * 1024, s.log);
});

test("our client's get/put against sshd: 1 GiB each way, SHA-256 equal (issue 12)", async (t) => {
  const s = await sftpToSshd(t);
  if (s === undefined) return;
  await checkLargeGetPut(s.sftp, tempDir(t), 1024 * 1024 * 1024, s.log, 300_000);
});

test("our client against OpenSSH's sftp-server program over a pipe (no SSH): every request and a get/put", async (t) => {
  const bin = requirePeer(t, "/usr/lib/openssh/sftp-server", "openssh-sftp-server");
  if (bin === undefined) return;
  const child = spawn(bin, ["-e", "-l", "INFO"], { stdio: ["pipe", "pipe", "pipe"] });
  let log = "";
  child.stderr.on("data", (d: Buffer) => (log += d.toString()));
  t.after(() => child.kill());
  const sftp = new ft.FileTransferClient();
  // OpenSSH's order for SYMLINK: there is no SSH version line on a pipe, and this is OpenSSH.
  sftp.symlinkTargetFirst = true;
  child.stdout.on("data", (d: Buffer) => sftp.dataReceived(d));
  sftp.makeConnection(new StreamTransport(child.stdout, child.stdin));
  await within(sftp.whenReady, 30_000, "VERSION", () => log);
  await exerciseClient(sftp, tempDir(t));
  await checkGetPut(sftp, tempDir(t), 4 * 1024 * 1024, () => log);
});

const SFTP_SERVER_BIN = ft.SFTP_SERVER_SCRIPT;

test("sftp-server bin: OpenSSH's sftp -D drives it over a pipe (put, get, ls -l, rename, symlink, chmod, rm)", async (t) => {
  const sftp = requirePeer(t, "sftp", "openssh-client");
  if (sftp === undefined) return;
  const dir = tempDir(t);
  const remote = join(dir, "remote");
  const local = join(dir, "local");
  mkdirSync(remote);
  mkdirSync(local);
  const data = randomBytes(700_001);
  writeFileSync(join(local, "src"), data);
  writeFileSync(join(local, "batch"), ["put src up", "get up down", "rename up moved", "symlink moved l", "chmod 640 moved", "ls -l", "rm l"].join("\n") + "\n");
  const r = await runCommand(sftp, ["-D", `${process.execPath} ${SFTP_SERVER_BIN} -d ${remote}`, "-b", "batch"], { cwd: local, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readFileSync(join(local, "down")), data);
  assert.deepEqual(readFileSync(join(remote, "moved")), data);
  assert.equal(statSync(join(remote, "moved")).mode & 0o777, 0o640);
  assert.match(r.stdout.toString(), /^lrwxrwxrwx +1 .* l$/m);
  assert.equal(lstatSync(join(remote, "l"), { throwIfNoEntry: false }), undefined);
});

test("sftp-server bin: --root confines the session; '..' and a symlink out stay inside", async (t) => {
  const sftp = requirePeer(t, "sftp", "openssh-client");
  if (sftp === undefined) return;
  const dir = tempDir(t);
  const root = join(dir, "root");
  mkdirSync(root);
  writeFileSync(join(dir, "secret"), "outside");
  writeFileSync(join(dir, "batch"), ["pwd", "-get ../secret s1", "symlink /../.. out", "-get out/secret s2", "ls /out"].join("\n") + "\n");
  const r = await runCommand(sftp, ["-D", `${process.execPath} ${SFTP_SERVER_BIN} --root ${root}`, "-b", "batch"], { cwd: dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout.toString(), /Remote working directory: \/$/m);
  assert.equal(lstatSync(join(dir, "s1"), { throwIfNoEntry: false }), undefined);
  assert.equal(lstatSync(join(dir, "s2"), { throwIfNoEntry: false }), undefined);
  // The link leads to the root: its listing is the root's one entry, the link itself.
  assert.match(r.stdout.toString(), /sftp> ls \/out\n\/out\/out *\n$/);
});
