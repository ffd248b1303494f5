/**
 * FileTransferClient and FileTransferServer pumped in memory over a temp folder: every request
 * of the client API and every OpenSSH extension, then the root-folder confinement against `..`,
 * symbolic links (old, made during the session, and swapped in between the check and the use).
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, mkdirSync, promises as fsp, readFileSync, readlinkSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { Failure } from "@twisted-ts/internet/failure";
import { ConnectionDone } from "@twisted-ts/internet/error";
import { fail } from "@twisted-ts/internet/defer";
import type { IProtocol } from "@twisted-ts/internet/interfaces";
import { common } from "@twisted-ts/conch/ssh";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import { tempDir } from "../../_support/peers.js";
import { UnpausableTransport } from "./_filetransfer_fakes.js";

/** One end of an in-memory pipe: what is written reaches the other protocol on a later microtask. */
class PipeEnd extends UnpausableTransport {
  peer: IProtocol | undefined = undefined;
  self: IProtocol | undefined = undefined;
  other: PipeEnd | undefined = undefined;
  override write(data: Uint8Array | string): void {
    const copy = Buffer.from(data);
    queueMicrotask(() => this.peer?.dataReceived(copy));
  }
  override loseConnection(): void {
    if (this.disconnecting) return;
    this.disconnecting = true;
    this.other!.disconnecting = true;
    const reason = new Failure(new ConnectionDone());
    queueMicrotask(() => {
      this.self?.connectionLost(reason);
      this.peer?.connectionLost(reason);
    });
  }
}

async function loopback(
  t: TestContext,
  options: ft.FilesystemSFTPServerOptions | ft.ISFTPServer,
  protocol: ft.FileTransferServerOptions = {},
  /** The server's end (what carries its replies to the client). */
  serverEnd: PipeEnd = new PipeEnd(),
): Promise<{ client: ft.FileTransferClient; server: ft.FileTransferServer }> {
  const server = new ft.FileTransferServer(ft.providesSFTPServer(options) ? options : new ft.FilesystemSFTPServer(options), protocol);
  const client = new ft.FileTransferClient();
  const a = new PipeEnd();
  const b = serverEnd;
  a.other = b;
  b.other = a;
  a.self = client;
  a.peer = server;
  b.self = server;
  b.peer = client;
  server.makeConnection(b);
  client.makeConnection(a);
  await client.whenReady;
  t.after(() => a.loseConnection());
  return { client, server };
}

async function rejectsWith(p: PromiseLike<unknown>, code: number, what: string): Promise<void> {
  await assert.rejects(Promise.resolve(p), (e: unknown) => {
    assert.ok(e instanceof ft.SFTPError, `${what}: ${String(e)}`);
    assert.equal(e.statusName, ft.statusName(code), `${what}: ${e.message}`);
    return true;
  });
}

test("loopback: files — open/write/read/fstat/fsetstat/close, short reads, EOF as SFTPError(FX_EOF)", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir });
  const f = await client.openFile("a.bin", ft.FXF_WRITE | ft.FXF_CREAT | ft.FXF_TRUNC, { permissions: 0o600 });
  const data = Buffer.alloc(100_000, 7);
  // Many writes in flight at once; replies come back by id.
  await Promise.all([0, 1, 2, 3].map((i) => f.writeChunk(i * 25_000, data.subarray(i * 25_000, (i + 1) * 25_000))));
  await f.setAttrs({ permissions: 0o640 });
  const attrs = await f.getAttrs();
  assert.equal(attrs.size, 100_000);
  assert.equal((attrs.permissions ?? 0) & 0o777, 0o640);
  await f.close();
  assert.deepEqual(readFileSync(join(dir, "a.bin")), data);

  const r = await client.openFile("a.bin", ft.FXF_READ);
  const chunks = await Promise.all([r.readChunk(0, 60_000), r.readChunk(60_000, 60_000)]);
  assert.equal(chunks[0].length, 60_000);
  assert.equal(chunks[1].length, 40_000, "a short read at the end");
  await rejectsWith(r.readChunk(100_000, 10), ft.FX_EOF, "read at the end");
  await r.close();
});

test("loopback: paths — stat/lstat, setstat, mkdir, readdir, rename (refuses to replace), posix-rename, symlink/readlink, hardlink, remove, rmdir", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir });
  writeFileSync(join(dir, "x"), "hello");
  await client.makeDirectory("sub", { permissions: 0o750 });
  assert.equal(statSync(join(dir, "sub")).mode & 0o777, 0o750);
  await client.makeLink("sub/link", "../x");
  assert.equal(readlinkSync(join(dir, "sub/link")), "../x");
  assert.equal(await client.readLink("sub/link"), "../x");
  const l = await client.getAttrs("sub/link");
  assert.equal((l.permissions ?? 0) & 0o170000, 0o120000, "LSTAT sees the link");
  const s = await client.getAttrs("sub/link", true);
  assert.equal(s.size, 5, "STAT follows it");
  await client.setAttrs("x", { atime: 1_000_000, mtime: 2_000_000 });
  assert.equal(statSync(join(dir, "x")).mtimeMs, 2_000_000_000);

  const dirh = await client.openDirectory(".");
  const names = (await dirh.readAll()).map(([n]) => n).sort();
  assert.deepEqual(names, ["sub", "x"]);
  const long = (await (await client.openDirectory("sub")).readAll())[0]!;
  assert.equal(long[0], "link");
  assert.match(long[1], /^lrwxrwxrwx +1 \S+ +\S+ +4 \w{3} [ \d]\d [ \d:]{5} link$/);

  writeFileSync(join(dir, "y"), "other");
  await rejectsWith(client.renameFile("x", "y"), ft.FX_FAILURE, "v3 rename over an existing file");
  assert.equal(readFileSync(join(dir, "y"), "utf8"), "other");
  await client.renameFile("x", "z");
  await client.posixRename("z", "y");
  assert.equal(readFileSync(join(dir, "y"), "utf8"), "hello");
  await client.hardLink("y", "h");
  assert.equal(statSync(join(dir, "h")).ino, statSync(join(dir, "y")).ino);
  await client.removeFile("h");
  await rejectsWith(client.removeFile("h"), ft.FX_NO_SUCH_FILE, "remove twice");
  await rejectsWith(client.removeDirectory("sub"), ft.FX_FAILURE, "rmdir of a non-empty directory");
  await client.removeFile("sub/link");
  await client.removeDirectory("sub");
  assert.equal(lstatSync(join(dir, "sub"), { throwIfNoEntry: false }), undefined);
});

test("loopback: extensions — limits, statvfs, fstatvfs, fsync, lsetstat, expand-path, home-directory, copy-data, an unknown one", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir });
  assert.deepEqual(await client.limits(), { maxPacketLength: ft.MAX_PACKET_LENGTH, maxReadLength: ft.MAX_READ_LENGTH, maxWriteLength: ft.MAX_PACKET_LENGTH - 1024, maxOpenHandles: ft.MAX_OPEN_HANDLES });
  const vfs = new common.SSHReader(await client.extendedRequest("statvfs@openssh.com", common.NS(".")));
  assert.ok(vfs.uint64() > 0n, "block size");
  const f = await client.openFile("c", ft.FXF_WRITE | ft.FXF_READ | ft.FXF_CREAT);
  await f.writeChunk(0, "0123456789");
  await f.sync();
  const fvfs = await client.extendedRequest("fstatvfs@openssh.com", common.NS(f.handle));
  assert.equal(fvfs.length, 88);
  // copy-data: 4 bytes from offset 2 to offset 10 of the same file.
  await client.extendedStatusRequest("copy-data", (w) => w.string(f.handle).uint64(2).uint64(4).string(f.handle).uint64(10));
  await f.close();
  assert.equal(readFileSync(join(dir, "c"), "utf8"), "01234567892345");
  symlinkSync("c", join(dir, "lc"));
  await client.extendedStatusRequest("lsetstat@openssh.com", (w) => ft.writeAttrs(w.string("lc"), { atime: 5, mtime: 6 }));
  assert.equal(lstatSync(join(dir, "lc")).mtimeMs, 6000);
  assert.notEqual(statSync(join(dir, "c")).mtimeMs, 6000);
  assert.equal(await client.extendedNameRequest("expand-path@openssh.com", "~/c"), join(realpathSync(dir), "c"));
  assert.equal(await client.extendedNameRequest("home-directory", ""), dir);
  await rejectsWith(client.extendedRequest("nobody@example.com"), ft.FX_OP_UNSUPPORTED, "unknown extension");
});

test("confinement: '..' never climbs out of the root, and the client sees the root as '/'", async (t) => {
  const base = tempDir(t);
  const root = join(base, "root");
  mkdirSync(join(root, "in"), { recursive: true });
  writeFileSync(join(base, "secret"), "outside");
  const { client } = await loopback(t, { root });
  assert.equal(await client.realPath("."), "/");
  assert.equal(await client.realPath("../../.."), "/");
  assert.equal(await client.realPath("/in/../../in"), "/in");
  await rejectsWith(client.readLink("/"), ft.FX_BAD_MESSAGE, "READLINK of the root tells nothing of the real path");
  await rejectsWith(client.readLink("/.."), ft.FX_BAD_MESSAGE, "nor of '..'");
  await rejectsWith(client.openFile("../secret", ft.FXF_READ), ft.FX_NO_SUCH_FILE, "../secret");
  await rejectsWith(client.openFile("/../../secret", ft.FXF_READ), ft.FX_NO_SUCH_FILE, "/../../secret");
  const w = await client.openFile("../escaped", ft.FXF_WRITE | ft.FXF_CREAT);
  await w.close();
  assert.equal(lstatSync(join(base, "escaped"), { throwIfNoEntry: false }), undefined, "nothing written outside");
  assert.ok(lstatSync(join(root, "escaped")).isFile(), "'../escaped' is /escaped inside the root");
});

test("confinement: symlinks — ones that were there and ones made during the session — resolve inside the root", async (t) => {
  const base = tempDir(t);
  const root = join(base, "root");
  mkdirSync(join(root, "etc"), { recursive: true });
  mkdirSync(join(base, "etc"));
  writeFileSync(join(base, "etc", "passwd"), "outside");
  writeFileSync(join(root, "etc", "passwd"), "inside");
  symlinkSync(join(base, "etc"), join(root, "abs")); // an absolute link to the real outside folder
  symlinkSync("../../etc", join(root, "etc", "rel"));
  const { client } = await loopback(t, { root });
  const read = async (p: string): Promise<string> => {
    const f = await client.openFile(p, ft.FXF_READ);
    const d = await f.readChunk(0, 100);
    await f.close();
    return Buffer.from(d).toString();
  };
  assert.equal(await read("etc/rel/passwd"), "inside", "a relative link climbing out stops at the root");
  await rejectsWith(read("abs/passwd"), ft.FX_NO_SUCH_FILE, "an absolute link is read inside the root");
  // Made during the session.
  await client.makeLink("/new", "/../../../../etc");
  assert.equal(await read("new/passwd"), "inside");
  await client.makeLink("/up", "..");
  assert.equal(await client.realPath("up/up/up"), "/");
  const ls = (await (await client.openDirectory("/etc/rel")).readAll()).map(([n]) => n).sort();
  assert.deepEqual(ls, ["passwd", "rel"]);
  const outsideMode = statSync(join(base, "etc", "passwd")).mode;
  await client.setAttrs("etc/rel/passwd", { permissions: 0o600 });
  assert.equal(statSync(join(base, "etc", "passwd")).mode, outsideMode);
  assert.equal(statSync(join(root, "etc", "passwd")).mode & 0o777, 0o600);
  await rejectsWith(client.removeDirectory("/"), ft.FX_PERMISSION_DENIED, "the root itself");
});

test("confinement: a directory swapped for an outside symlink between the check and the use is refused (the race)", async (t) => {
  const base = tempDir(t);
  const root = join(base, "root");
  mkdirSync(join(root, "d"), { recursive: true });
  mkdirSync(join(base, "outside"));
  writeFileSync(join(base, "outside", "f"), "outside");
  writeFileSync(join(root, "d", "f"), "inside");
  const { client } = await loopback(t, { root });
  // Deterministic race: right after the walk has looked at "d", swap it for a link out.
  const realLstat = fsp.lstat;
  let swapped = false;
  (fsp as { lstat: typeof fsp.lstat }).lstat = (async (p: Parameters<typeof fsp.lstat>[0], o?: unknown) => {
    const st = await (realLstat as (p: unknown, o?: unknown) => Promise<unknown>)(p, o);
    if (!swapped && String(p).endsWith("/root/d")) {
      swapped = true;
      rmSync(join(root, "d"), { recursive: true });
      symlinkSync(join(base, "outside"), join(root, "d"));
    }
    return st;
  }) as typeof fsp.lstat;
  t.after(() => void ((fsp as { lstat: typeof fsp.lstat }).lstat = realLstat));
  await rejectsWith(client.openFile("d/f", ft.FXF_READ), ft.FX_PERMISSION_DENIED, "open through the swapped directory");
  assert.equal(swapped, true);
  await rejectsWith(client.removeFile("d/f"), ft.FX_NO_SUCH_FILE, "the next walk sees the link and reads it inside the root");
  assert.equal(readFileSync(join(base, "outside", "f"), "utf8"), "outside");
});

test("get/put: pipelined transfers byte for byte, with short reads from a server that caps READ, and progress", async (t) => {
  const dir = tempDir(t);
  // The server answers at most 10,000 bytes per READ: the client asks again for the rest.
  const { client, server } = await loopback(t, { home: dir }, { maxReadLength: 10_000 });
  const data = randomBytes(1_000_003);
  writeFileSync(join(dir, "src"), data);
  const seen: number[] = [];
  let most = 0;
  const before = server.outstanding;
  assert.equal(before, 0);
  const n = await client.get("src", join(dir, "got"), { chunkSize: 16_384, requests: 8, progress: (done, total) => {
    seen.push(done);
    assert.equal(total, data.length);
    most = Math.max(most, server.outstanding);
  } });
  assert.equal(n, data.length);
  assert.deepEqual(readFileSync(join(dir, "got")), data);
  assert.equal(seen.at(-1), data.length);
  assert.ok(most <= 8, `at most 8 requests in flight, saw ${most}`);
  const up = await client.put(join(dir, "got"), "put", { chunkSize: 7_000, requests: 3 });
  assert.equal(up, data.length);
  assert.deepEqual(readFileSync(join(dir, "put")), data);
  // Sizes that are multiples of the chunk, and empty files.
  writeFileSync(join(dir, "even"), data.subarray(0, 65_536));
  assert.equal(await client.get("even", join(dir, "even2"), { chunkSize: 16_384 }), 65_536);
  assert.deepEqual(readFileSync(join(dir, "even2")), data.subarray(0, 65_536));
  writeFileSync(join(dir, "empty"), "");
  assert.equal(await client.get("empty", join(dir, "empty2")), 0);
  assert.equal(await client.put(join(dir, "empty"), "empty3"), 0);
  assert.equal(readFileSync(join(dir, "empty3")).length, 0);
});

test("get/put: the same bytes with blocking file I/O (the sftp-server bin's setting) and from a file that has only readChunk", async (t) => {
  const dir = tempDir(t);
  const data = randomBytes(300_001);
  writeFileSync(join(dir, "src"), data);
  const blocking = await loopback(t, { home: dir, blockingIO: true });
  assert.equal(await blocking.client.put(join(dir, "src"), "up", { chunkSize: 32_768 }), data.length);
  assert.deepEqual(readFileSync(join(dir, "up")), data);
  assert.equal(await blocking.client.get("up", join(dir, "down"), { chunkSize: 32_768 }), data.length);
  assert.deepEqual(readFileSync(join(dir, "down")), data);
  // An ISFTPFile without the optional readChunkInto: the server sends what readChunk returns.
  class ChunkOnly extends ft.FilesystemSFTPServer {
    override async openFile(filename: string, flags: number, attrs: ft.FileAttributes): Promise<ft.ISFTPFile> {
      const f = await super.openFile(filename, flags, attrs);
      return { readChunk: (o, n) => f.readChunk(o, n), writeChunk: (o, d) => f.writeChunk(o, d), getAttrs: () => f.getAttrs(), setAttrs: (a) => f.setAttrs(a), close: () => f.close() };
    }
  }
  const { client } = await loopback(t, new ChunkOnly({ home: dir }));
  assert.equal(await client.get("src", join(dir, "down2"), { chunkSize: 20_000 }), data.length);
  assert.deepEqual(readFileSync(join(dir, "down2")), data);
});

test("get/put resume (reget/reput): only the missing tail moves", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir });
  const data = randomBytes(300_000);
  writeFileSync(join(dir, "src"), data);
  writeFileSync(join(dir, "partial"), data.subarray(0, 123_456));
  let first = -1;
  await client.get("src", join(dir, "partial"), { resume: true, progress: (done) => void (first < 0 && (first = done)) });
  assert.deepEqual(readFileSync(join(dir, "partial")), data);
  const { read } = await client.transferChunkSizes();
  assert.ok(first > 123_456 && first <= 123_456 + read, `started from the local size: ${first}`);
  writeFileSync(join(dir, "remote-partial"), data.subarray(0, 5));
  assert.equal(await client.put(join(dir, "src"), "remote-partial", { resume: true }), data.length);
  assert.deepEqual(readFileSync(join(dir, "remote-partial")), data);
  await rejectsWith(client.get("missing", join(dir, "x")), ft.FX_NO_SUCH_FILE, "get of a missing file");
});

test("quota (maxFileSize): a WRITE or a size change past it is FX_FAILURE 'Disk quota exceeded', and nothing past it is written", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir, maxFileSize: 1000 });
  const f = await client.openFile("q", ft.FXF_WRITE | ft.FXF_CREAT);
  await f.writeChunk(0, Buffer.alloc(1000, 1));
  await assert.rejects(Promise.resolve(f.writeChunk(990, Buffer.alloc(11, 2))), (e: unknown) => e instanceof ft.SFTPError && e.code === ft.FX_FAILURE && e.message === "Disk quota exceeded");
  await rejectsWith(f.setAttrs({ size: 1001 }), ft.FX_FAILURE, "ftruncate past the quota");
  await rejectsWith(client.setAttrs("q", { size: 5000 }), ft.FX_FAILURE, "truncate past the quota");
  await f.close();
  assert.deepEqual(readFileSync(join(dir, "q")), Buffer.alloc(1000, 1));
});

test("streams: createReadStream / createWriteStream pipe a file through, short reads and ranges included", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir }, { maxReadLength: 5_000 });
  const data = randomBytes(250_001);
  writeFileSync(join(dir, "src"), data);
  const { pipeline } = await import("node:stream/promises");
  await pipeline(client.createReadStream("src", { chunkSize: 16_384, requests: 4 }), client.createWriteStream("copy", { requests: 3 }));
  assert.deepEqual(readFileSync(join(dir, "copy")), data);
  const parts: Buffer[] = [];
  for await (const c of client.createReadStream("src", { start: 1000, end: 99_999, chunkSize: 7_000 })) parts.push(c as Buffer);
  assert.deepEqual(Buffer.concat(parts), data.subarray(1000, 100_000));
  await assert.rejects(pipeline(client.createReadStream("missing"), client.createWriteStream("never")), (e: unknown) => e instanceof ft.SFTPError && e.code === ft.FX_NO_SUCH_FILE);
  // The writer's OPEN was already sent; the server answers in order, so once a later request is
  // answered that file exists (and the folder can be removed without racing its creation).
  await client.realPath(".");
});

test("streams: a paused consumer stops new READs (back-pressure)", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir });
  writeFileSync(join(dir, "big"), randomBytes(4 * 1024 * 1024));
  const rs = client.createReadStream("big", { chunkSize: 32_768, requests: 8 });
  try {
    let got = 0;
    rs.on("data", (c: Buffer) => {
      got += c.length;
      rs.pause();
    });
    await new Promise((r) => rs.once("pause", r));
    // Everything in flight lands (fs work included); then nothing more is asked for while paused.
    const settled = async (): Promise<void> => {
      for (let i = 0; i < 100_000 && client.openRequests.size > 0; i++) await new Promise((r) => setImmediate(r));
      assert.equal(client.openRequests.size, 0, "the READs in flight were answered");
    };
    await settled();
    const sent = client.counter;
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    await settled();
    assert.equal(client.counter, sent, "no READs while paused");
    assert.ok(sent <= 1 + 8 + 4 + 8, `about a buffer and a pipeline of READs were sent, not the whole file (${sent})`);
    assert.ok(got > 0);
  } finally {
    rs.destroy();
  }
});

test("getRecursive/putRecursive (get -R / put -R): a tree of files and directories both ways; links are skipped", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir });
  const tree = join(dir, "tree");
  mkdirSync(join(tree, "a", "b"), { recursive: true });
  mkdirSync(join(tree, "empty"));
  const files: Record<string, Buffer> = { "top.bin": randomBytes(70_000), "a/one": randomBytes(10), "a/b/two": randomBytes(100_001) };
  for (const [name, data] of Object.entries(files)) writeFileSync(join(tree, name), data);
  symlinkSync("top.bin", join(tree, "link"));
  const down = await client.getRecursive("tree", join(dir, "down"));
  assert.deepEqual({ ...down, skipped: down.skipped.length }, { files: 3, directories: 4, bytes: 170_011, skipped: 1 });
  for (const [name, data] of Object.entries(files)) assert.deepEqual(readFileSync(join(dir, "down", name)), data, name);
  assert.ok(statSync(join(dir, "down", "empty")).isDirectory());
  const up = await client.putRecursive(join(dir, "down"), "up");
  assert.deepEqual({ ...up, skipped: up.skipped.length }, { files: 3, directories: 4, bytes: 170_011, skipped: 0 });
  for (const [name, data] of Object.entries(files)) assert.deepEqual(readFileSync(join(dir, "up", name)), data, name);
  // Again onto the existing tree: directories that exist are fine, files are replaced.
  await client.putRecursive(join(dir, "down"), "up");
  assert.deepEqual(readFileSync(join(dir, "up", "a/b/two")), files["a/b/two"]);
});

/** A PipeEnd that hands its bytes over in small pieces, so every DATA reply spans several feeds. */
class SplittingPipeEnd extends PipeEnd {
  override write(data: Uint8Array | string): void {
    const copy = Buffer.from(data);
    for (let off = 0; off < copy.length; off += 5_000) {
      const piece = copy.subarray(off, off + 5_000);
      queueMicrotask(() => this.peer?.dataReceived(piece));
    }
  }
}

test("get: DATA replies assembled from pieces reuse the buffers of written chunks, byte for byte; a chunk the caller keeps is never reused (issue 12)", async (t) => {
  const dir = tempDir(t);
  const { client } = await loopback(t, { home: dir }, {}, new SplittingPipeEnd());
  const data = randomBytes(3_000_017);
  writeFileSync(join(dir, "src"), data);
  const f = await client.openFile("src", ft.FXF_READ);
  const kept = await f.readChunk(0, ft.TRANSFER_CHUNK_SIZE);
  assert.deepEqual(Buffer.from(kept), data.subarray(0, ft.TRANSFER_CHUNK_SIZE));
  for (let i = 0; i < 2; i++) {
    assert.equal(await client.get("src", join(dir, `got${i}`)), data.length);
    assert.deepEqual(readFileSync(join(dir, `got${i}`)), data);
  }
  assert.deepEqual(Buffer.from(kept), data.subarray(0, ft.TRANSFER_CHUNK_SIZE), "the kept chunk is untouched");
  await f.close();
});

/** A filesystem server that records the length of every READ and WRITE its files serve. */
class RecordingServer extends ft.FilesystemSFTPServer {
  readonly reads: number[] = [];
  readonly writes: number[] = [];
  override async openFile(filename: string, flags: number, attrs: ft.FileAttributes): Promise<ft.ISFTPFile> {
    const f = await super.openFile(filename, flags, attrs);
    const { reads, writes } = this;
    return {
      close: () => f.close(),
      getAttrs: () => f.getAttrs(),
      setAttrs: (a: ft.FileAttributes) => f.setAttrs(a),
      readChunk: (offset: number, length: number) => (reads.push(length), f.readChunk(offset, length)),
      writeChunk: (offset: number, data: Uint8Array) => (writes.push(data.length), f.writeChunk(offset, data)),
    };
  }
}

/**
 * `n` bytes in chunks of `size`, the last one shorter; in ascending order, as `sorted` gives a
 * server's WRITE lengths (a put has several local reads in flight, so its WRITEs may leave in
 * any order, each with its offset).
 */
function chunksOf(n: number, size: number): number[] {
  const out: number[] = [];
  for (let at = 0; at < n; at += size) out.push(Math.min(size, n - at));
  return sorted(out);
}

function sorted(lengths: readonly number[]): number[] {
  return [...lengths].sort((a, b) => a - b);
}

/**
 * A download of `n` bytes asked for whole chunks of `size` up to the end; after the short read
 * at the end, only the rest of that chunk (the request past the end that finds EOF).
 */
function assertReads(reads: number[], n: number, size: number): void {
  const whole = Math.ceil(n / size);
  assert.deepEqual(reads.slice(0, whole), Array<number>(whole).fill(size), `READ lengths ${reads.join(", ")}`);
  assert.ok(reads.slice(whole).every((k) => k === whole * size - n), `READ lengths ${reads.join(", ")}`);
}

test("get/put (issue 12): READs and WRITEs are as long as the server's limits@openssh.com allow, up to TRANSFER_MAX_CHUNK_SIZE; an odd-sized file arrives byte for byte", async (t) => {
  const dir = tempDir(t);
  const server = new RecordingServer({ home: dir });
  const { client } = await loopback(t, server);
  // Our server states a 256 KiB packet, 255 KiB reads and writes of its packet less 1 KiB.
  assert.deepEqual(await client.transferChunkSizes(), { read: ft.TRANSFER_MAX_CHUNK_SIZE, write: ft.TRANSFER_MAX_CHUNK_SIZE });
  const data = randomBytes(3 * ft.TRANSFER_MAX_CHUNK_SIZE + 12_345);
  writeFileSync(join(dir, "src"), data);
  assert.equal(await client.put(join(dir, "src"), "up"), data.length);
  assert.deepEqual(readFileSync(join(dir, "up")), data);
  assert.deepEqual(sorted(server.writes), chunksOf(data.length, ft.TRANSFER_MAX_CHUNK_SIZE));
  assert.equal(await client.get("up", join(dir, "down")), data.length);
  assert.deepEqual(readFileSync(join(dir, "down")), data);
  assertReads(server.reads, data.length, ft.TRANSFER_MAX_CHUNK_SIZE);
  // A chunk size the caller gives wins.
  server.writes.length = 0;
  assert.equal(await client.put(join(dir, "src"), "up", { chunkSize: 100_000 }), data.length);
  assert.deepEqual(sorted(server.writes), chunksOf(data.length, 100_000));
  assert.deepEqual(readFileSync(join(dir, "up")), data);
});

test("put (issue 12): against a server with a small packet limit every WRITE fits it, and the file arrives byte for byte", async (t) => {
  const dir = tempDir(t);
  const server = new RecordingServer({ home: dir });
  // Packets of at most 40,000 bytes: WRITEs of 38,976 (the packet less 1 KiB), READs of 20,000.
  const { client } = await loopback(t, server, { maxPacketLength: 40_000, maxReadLength: 20_000 });
  assert.deepEqual(await client.transferChunkSizes(), { read: 20_000, write: 38_976 });
  const data = randomBytes(100_001);
  writeFileSync(join(dir, "src"), data);
  assert.equal(await client.put(join(dir, "src"), "up"), data.length);
  assert.deepEqual(readFileSync(join(dir, "up")), data);
  assert.deepEqual(sorted(server.writes), chunksOf(data.length, 38_976));
  assert.equal(await client.get("up", join(dir, "down")), data.length);
  assert.deepEqual(readFileSync(join(dir, "down")), data);
  assertReads(server.reads, data.length, 20_000);
});

test("get/put (issue 12): without limits@openssh.com, or when the server refuses it, transfers use TRANSFER_CHUNK_SIZE", async (t) => {
  const dir = tempDir(t);
  const data = randomBytes(ft.TRANSFER_CHUNK_SIZE * 2 + 7);
  writeFileSync(join(dir, "src"), data);
  for (const how of ["not advertised", "refused"] as const) {
    const server = new RecordingServer({ home: dir });
    const { client } = await loopback(t, server);
    if (how === "not advertised") delete client.serverExtensions["limits@openssh.com"];
    else client.limits = () => fail(new ft.SFTPError(ft.FX_OP_UNSUPPORTED, "no limits here"));
    assert.deepEqual(await client.transferChunkSizes(), { read: ft.TRANSFER_CHUNK_SIZE, write: ft.TRANSFER_CHUNK_SIZE }, how);
    assert.equal(await client.put(join(dir, "src"), `up-${how}`), data.length);
    assert.deepEqual(readFileSync(join(dir, `up-${how}`)), data, how);
    assert.deepEqual(sorted(server.writes), chunksOf(data.length, ft.TRANSFER_CHUNK_SIZE), how);
    assert.equal(await client.get(`up-${how}`, join(dir, `down-${how}`)), data.length);
    assert.deepEqual(readFileSync(join(dir, `down-${how}`)), data, how);
    assertReads(server.reads, data.length, ft.TRANSFER_CHUNK_SIZE);
  }
});
