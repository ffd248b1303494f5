/**
 * Shared by the `sftp_*` interop tests: our server's options for serving the `sftp` subsystem in
 * process (FileTransferServer over FilesystemSFTPServer in the user's home, or confined).
 */
import assert from "node:assert/strict";
import { createHash, randomBytes, randomFillSync } from "node:crypto";
import { closeSync, createReadStream, lstatSync, openSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import type { ServerOptions } from "./_server_support.js";
import { within } from "./_client_support.js";

/** Our server with the sftp subsystem in process over the user's home (options from `fs`). */
export function sftpServerOptions(
  fs: (home: string) => ft.FilesystemSFTPServerOptions = (home) => ({ home }),
  protocol: ft.FileTransferServerOptions = {},
): ServerOptions {
  return {
    // The realm's own subsystems (by default sftp through the sftp-server bin) come first: none here.
    unixOptions: { subsystems: {} },
    configureAvatar: (avatar, home) => {
      avatar.subsystemLookup["sftp"] = () => new ft.FileTransferServer(new ft.FilesystemSFTPServer(fs(home)), protocol);
    },
  };
}

export async function rejectsWith(p: PromiseLike<unknown>, code: number, what: string): Promise<void> {
  await assert.rejects(Promise.resolve(p), (e: unknown) => {
    assert.ok(e instanceof ft.SFTPError, `${what}: ${String(e)}`);
    assert.equal(e.statusName, ft.statusName(code), `${what}: ${e.message}`);
    return true;
  });
}

/**
 * Our FileTransferClient through every request against a server whose files live in `dir` (an
 * absolute path the server sees too): pipelined writes and reads, fsync, fstat/fsetstat,
 * directories, symlinks (OpenSSH's argument order), setstat, rename and posix-rename, hardlink,
 * limits, typed errors, removal.
 */
export async function exerciseClient(
  sftp: ft.FileTransferClient,
  dir: string,
  extensions: readonly string[] = ["posix-rename@openssh.com", "statvfs@openssh.com", "hardlink@openssh.com", "fsync@openssh.com"],
): Promise<void> {
  assert.equal(sftp.version, 3);
  for (const ext of extensions) assert.ok(sftp.hasExtension(ext), `the server offers ${ext}`);
  const p = (name: string): string => join(dir, name);

  const data = randomBytes(1_500_000);
  const f = await sftp.openFile(p("a.bin"), ft.FXF_WRITE | ft.FXF_CREAT | ft.FXF_TRUNC, { permissions: 0o644 });
  const step = 32 * 1024;
  const writes = [];
  for (let off = 0; off < data.length; off += step) writes.push(f.writeChunk(off, data.subarray(off, off + step)));
  await Promise.all(writes);
  if (sftp.hasExtension("fsync@openssh.com")) await f.sync();
  assert.equal((await f.getAttrs()).size, data.length);
  await f.setAttrs({ permissions: 0o600 });
  await f.close();
  assert.deepEqual(readFileSync(p("a.bin")), data);
  assert.equal(statSync(p("a.bin")).mode & 0o777, 0o600);

  const r = await sftp.openFile(p("a.bin"), ft.FXF_READ);
  const reads = [];
  for (let off = 0; off < data.length; off += step) reads.push(r.readChunk(off, step));
  assert.deepEqual(Buffer.concat(await Promise.all(reads)), data);
  await rejectsWith(r.readChunk(data.length, 10), ft.FX_EOF, "read at the end");
  await r.close();

  await sftp.makeDirectory(p("d"), { permissions: 0o755 });
  await sftp.makeLink(p("d/link"), "../a.bin");
  assert.equal(readlinkSync(p("d/link")), "../a.bin", "symlink arguments in OpenSSH's order");
  assert.equal(await sftp.readLink(p("d/link")), "../a.bin");
  assert.equal((await sftp.getAttrs(p("d/link"), true)).size, data.length);
  assert.equal(((await sftp.getAttrs(p("d/link"))).permissions ?? 0) & 0o170000, 0o120000);
  const entries = await (await sftp.openDirectory(p("d"))).readAll();
  assert.deepEqual(entries.map(([n]) => n).filter((n) => n !== "." && n !== "..").sort(), ["link"]);
  assert.equal(await sftp.realPath(p("d/../d")), p("d"));
  await sftp.setAttrs(p("a.bin"), { atime: 1_000_000, mtime: 1_500_000 });
  assert.equal(statSync(p("a.bin")).mtimeMs, 1_500_000_000);

  writeFileSync(p("b"), "b");
  await rejectsWith(sftp.renameFile(p("a.bin"), p("b")), ft.FX_FAILURE, "v3 rename onto an existing file");
  if (sftp.hasExtension("posix-rename@openssh.com")) await sftp.posixRename(p("a.bin"), p("b"));
  else {
    await sftp.removeFile(p("b"));
    await sftp.renameFile(p("a.bin"), p("b"));
  }
  assert.deepEqual(readFileSync(p("b")), data);
  if (sftp.hasExtension("hardlink@openssh.com")) await sftp.hardLink(p("b"), p("h"));
  else writeFileSync(p("h"), "");
  if (sftp.hasExtension("hardlink@openssh.com")) assert.equal(statSync(p("h")).ino, statSync(p("b")).ino);
  if (sftp.hasExtension("limits@openssh.com")) {
    const limits = await sftp.limits();
    assert.ok(limits.maxReadLength >= 32768 && limits.maxPacketLength >= 32768, JSON.stringify(limits));
  }

  await rejectsWith(sftp.openFile(p("missing"), ft.FXF_READ), ft.FX_NO_SUCH_FILE, "open of a missing file");
  await rejectsWith(sftp.removeDirectory(p("d")), ft.FX_FAILURE, "rmdir of a non-empty directory");
  await sftp.removeFile(p("d/link"));
  await sftp.removeDirectory(p("d"));
  await sftp.removeFile(p("h"));
  assert.equal(lstatSync(p("d"), { throwIfNoEntry: false }), undefined);
}

/**
 * Our client's pipelined `put` then `get` of `size` random bytes in `dir` (a path the server sees
 * too), SHA-256 compared, then a `reget` of a file holding the first third.
 */
export async function checkGetPut(sftp: ft.FileTransferClient, dir: string, size: number, peerLog: () => string): Promise<void> {
  const data = randomBytes(size);
  const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
  writeFileSync(join(dir, "src"), data);
  assert.equal(await within(sftp.put(join(dir, "src"), join(dir, "remote")), 120_000, "put", peerLog), data.length);
  assert.equal(sha(readFileSync(join(dir, "remote"))), sha(data));
  assert.equal(await within(sftp.get(join(dir, "remote"), join(dir, "back")), 120_000, "get", peerLog), data.length);
  assert.equal(sha(readFileSync(join(dir, "back"))), sha(data));
  writeFileSync(join(dir, "partial"), data.subarray(0, Math.floor(size / 3)));
  await within(sftp.get(join(dir, "remote"), join(dir, "partial"), { resume: true }), 120_000, "reget", peerLog);
  assert.equal(sha(readFileSync(join(dir, "partial"))), sha(data));
}

/** SHA-256 of a file, read as a stream (for files too large to hold). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  return h.digest("hex");
}

/**
 * Moves a file of `size` random bytes up (`put`) and back down (`get`), never holding it in
 * memory, and checks each copy's SHA-256 against the original's. At most two copies are on disk.
 */
export async function checkLargeGetPut(sftp: ft.FileTransferClient, dir: string, size: number, peerLog: () => string, timeoutMs: number): Promise<void> {
  const src = join(dir, "src"), remote = join(dir, "remote"), back = join(dir, "back");
  const h = createHash("sha256");
  const fd = openSync(src, "w");
  const block = Buffer.allocUnsafe(1 << 20);
  for (let done = 0; done < size; done += block.length) {
    const b = randomFillSync(block).subarray(0, Math.min(block.length, size - done));
    h.update(b);
    writeSync(fd, b);
  }
  closeSync(fd);
  const digest = h.digest("hex");
  assert.equal(await within(sftp.put(src, remote), timeoutMs, "put", peerLog), size);
  assert.equal(await sha256File(remote), digest, "the uploaded copy");
  rmSync(src);
  assert.equal(await within(sftp.get(remote, back), timeoutMs, "get", peerLog), size);
  assert.equal(await sha256File(back), digest, "the downloaded copy");
  rmSync(remote);
  rmSync(back);
}
