/**
 * russh's SFTP client (Rust: russh-sftp under russh 0.63.3, through the npm package `russh`)
 * against OUR server's sftp subsystem: a multi-chunk upload and download byte for byte, stat,
 * directory listing, chmod, rename, a symlink read back, an append, typed failures, removal.
 * The session's key exchange is russh's default, mlkem768x25519-sha256.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startOurServer } from "./_server_support.js";
import { sftpServerOptions } from "./_sftp_support.js";
import { login, russh, type RusshSftpFile } from "./_russh_support.js";

async function readAll(f: RusshSftpFile): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (;;) {
    const chunk = await f.read(256 * 1024);
    if (chunk.length === 0) return Buffer.concat(parts);
    parts.push(Buffer.from(chunk));
  }
}

test("russh SFTP: upload, download, stat, readdir, chmod, rename, readlink, append, errors, remove", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  const session = await login(t, server);
  const sftp = await session.client.activateSFTP(await session.client.openSessionChannel());
  const home = server.home;
  const data = randomBytes(3 * 1024 * 1024 + 17);

  const w = await sftp.open(join(home, "up.bin"), russh.OPEN_WRITE | russh.OPEN_CREATE | russh.OPEN_TRUNCATE);
  await w.writeAll(data);
  await w.flush();
  await w.shutdown();
  assert.deepEqual(readFileSync(join(home, "up.bin")), data, "upload, byte for byte");
  assert.equal((await sftp.stat(join(home, "up.bin"))).size, data.length);

  const r = await sftp.open(join(home, "up.bin"), russh.OPEN_READ);
  assert.deepEqual(await readAll(r), data, "download, byte for byte");
  await r.shutdown();

  await sftp.createDirectory(join(home, "d"));
  await sftp.rename(join(home, "up.bin"), join(home, "d", "moved.bin"));
  await sftp.chmod(join(home, "d", "moved.bin"), 0o600);
  assert.equal(statSync(join(home, "d", "moved.bin")).mode & 0o777, 0o600);
  const listing = await sftp.readDirectory(join(home, "d"));
  assert.deepEqual(
    listing.filter((e) => e.name !== "." && e.name !== "..").map((e) => [e.name, e.metadata.size]),
    [["moved.bin", data.length]],
  );
  symlinkSync("d/moved.bin", join(home, "link"));
  assert.equal(await sftp.readlink(join(home, "link")), "d/moved.bin");

  writeFileSync(join(home, "log.txt"), "hello");
  const a = await sftp.open(join(home, "log.txt"), russh.OPEN_WRITE | russh.OPEN_APPEND);
  await a.writeAll(Buffer.from(" world"));
  await a.shutdown();
  assert.equal(readFileSync(join(home, "log.txt"), "utf8"), "hello world");

  await assert.rejects(sftp.stat(join(home, "missing")), /no such file/i);
  await assert.rejects(sftp.removeDirectory(join(home, "d")), "a directory that is not empty stays");

  await sftp.removeFile(join(home, "d", "moved.bin"));
  await sftp.removeFile(join(home, "link"));
  await sftp.removeFile(join(home, "log.txt"));
  await sftp.removeDirectory(join(home, "d"));
  assert.deepEqual(
    (await sftp.readDirectory(home)).map((e) => e.name).filter((n) => ["d", "link", "log.txt", "up.bin"].includes(n)),
    [],
  );
  await sftp.close();
  assert.deepEqual(server.criticals(), []);
});
