/**
 * `twisted.conch.ssh.filetransfer` at the wire: the packet framer fed whole, split and one byte at
 * a time; attributes; and FileTransferServer / FileTransferClient against a StringTransport with
 * exact packets, including every limit and bad input the issue names.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, readlinkSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StringTransport } from "@twisted-ts/internet/testing";
import { Failure } from "@twisted-ts/internet/failure";
import { ConnectionDone, ConnectionLost } from "@twisted-ts/internet/error";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { common } from "@twisted-ts/conch/ssh";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import { tempDir } from "../../_support/peers.js";
import { UnpausableTransport } from "./_filetransfer_fakes.js";

/** One packet's bytes: length, type, body. */
function pkt(type: number, fill: (w: common.SSHWriter) => void = () => undefined): Uint8Array {
  const w = new common.SSHWriter();
  fill(w);
  const body = w.finish();
  return common.concatBytes(new common.SSHWriter().uint32(body.length + 1).byte(type).finish(), body);
}

/** Splits everything written into packets: [type, reader over the body]. */
function packets(bytes: Uint8Array): Array<[number, common.SSHReader]> {
  const out: Array<[number, common.SSHReader]> = [];
  const r = new common.SSHReader(bytes);
  while (r.remaining > 0) {
    const body = r.raw(r.uint32());
    out.push([body[0]!, new common.SSHReader(body.slice(1))]);
  }
  return out;
}

function status(r: common.SSHReader): { id: number; code: number; message: string } {
  return { id: r.uint32(), code: r.uint32(), message: r.utf8() };
}

/**
 * Lets pending promise callbacks and fs operations run until `cond` holds (no timers involved;
 * the bound only stops a hang, and is generous because fs work may queue behind other processes).
 */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1_000_000; i++) {
    if (cond()) return;
    await new Promise((r) => setImmediate(r));
  }
  assert.fail(`never happened: ${what}`);
}

test("PacketFramer: packets fed whole, split at every offset, and one byte at a time come out the same", () => {
  const stream = common.concatBytes(
    pkt(ft.FXP_INIT, (w) => w.uint32(3)),
    pkt(ft.FXP_REALPATH, (w) => w.uint32(7).string(".")),
    pkt(ft.FXP_WRITE, (w) => w.uint32(8).string("h").uint64(0).string(new Uint8Array(5000).fill(0x61))),
  );
  const run = (chunks: Uint8Array[]): string[] => {
    const got: string[] = [];
    const f = new ft.PacketFramer(
      (type, body) => got.push(`${type}:${Buffer.from(body).toString("hex")}`),
      (e) => assert.fail(e.message),
    );
    for (const c of chunks) f.feed(c);
    return got;
  };
  const whole = run([stream]);
  assert.equal(whole.length, 3);
  assert.equal(whole[0], "1:00000003");
  for (const cut of [1, 3, 4, 5, 8, 9, 20, stream.length - 1]) assert.deepEqual(run([stream.subarray(0, cut), stream.subarray(cut)]), whole, `cut at ${cut}`);
  assert.deepEqual(run([...stream].map((b) => Uint8Array.of(b))), whole);
});

test("PacketFramer: a packet inside one chunk is a view (not owned); one assembled from pieces is owned and never touched again", () => {
  const a = pkt(ft.FXP_WRITE, (w) => w.uint32(1).string("h").uint64(0).string(new Uint8Array(100).fill(0x61)));
  const b = pkt(ft.FXP_WRITE, (w) => w.uint32(2).string("h").uint64(0).string(new Uint8Array(100).fill(0x62)));
  const got: Array<{ body: Uint8Array; copy: string; owned: boolean }> = [];
  const f = new ft.PacketFramer(
    (_type, body, owned) => got.push({ body, copy: Buffer.from(body).toString("hex"), owned }),
    (e) => assert.fail(e.message),
  );
  f.feed(a);
  f.feed(b.subarray(0, 50));
  f.feed(b.subarray(50));
  // Later input must not change a packet handed out as owned.
  f.feed(a.subarray(0, 60));
  f.feed(a.subarray(60));
  assert.deepEqual(got.map((g) => g.owned), [false, true, true]);
  for (const g of got.filter((x) => x.owned)) assert.equal(Buffer.from(g.body).toString("hex"), g.copy);
  assert.equal(got[1]!.copy, Buffer.from(b.subarray(5)).toString("hex"));
});

test("PacketFramer: a length over the limit is reported with the request id before any body is kept", () => {
  const errors: ft.SFTPFramingError[] = [];
  const f = new ft.PacketFramer(() => assert.fail("no packet"), (e) => errors.push(e), 1000);
  const header = new common.SSHWriter().uint32(1001).byte(ft.FXP_WRITE).uint32(42).finish();
  for (const b of header) f.feed(Uint8Array.of(b));
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.requestId, 42);
  assert.match(errors[0]!.message, /1001 bytes is over the limit of 1000/);
  assert.equal(f.stopped, true);
});

test("PacketFramer: a length of 0 stops the framer", () => {
  const errors: ft.SFTPFramingError[] = [];
  const f = new ft.PacketFramer(() => assert.fail("no packet"), (e) => errors.push(e));
  f.feed(new Uint8Array(4));
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.requestId, undefined);
});

test("ATTRS: every field round-trips, and uid/gid and atime/mtime only go as pairs", () => {
  const attrs: ft.FileAttributes = { size: 2 ** 40, uid: 1000, gid: 100, permissions: 0o100644, atime: 1, mtime: 2, extended: { "a@b": Uint8Array.of(1, 2) } };
  const bytes = ft.writeAttrs(new common.SSHWriter(), attrs).finish();
  assert.equal(new DataView(bytes.buffer, bytes.byteOffset).getUint32(0), 0x8000000f);
  const back = ft.readAttrs(new common.SSHReader(bytes));
  assert.deepEqual({ ...back, extended: { ...back.extended } }, attrs);
  const half = ft.writeAttrs(new common.SSHWriter(), { uid: 5, atime: 3 }).finish();
  assert.deepEqual([...half], [0, 0, 0, 0]);
});

test("ATTRS: a size over 2^53 - 1 is a malformed field, not a rounded number", () => {
  const bytes = new common.SSHWriter().uint32(ft.FILEXFER_ATTR_SIZE).uint64(2n ** 60n).finish();
  assert.throws(() => ft.readAttrs(new common.SSHReader(bytes)), { name: "MalformedFieldError" });
});

function serverOn(dir: string, options: ft.FileTransferServerOptions = {}, transport: ITransport = new StringTransport()): { server: ft.FileTransferServer; t: StringTransport } {
  const server = new ft.FileTransferServer(new ft.FilesystemSFTPServer({ home: dir }), options);
  server.makeConnection(transport);
  server.dataReceived(pkt(ft.FXP_INIT, (w) => w.uint32(3)));
  return { server, t: transport as StringTransport };
}

test("INIT: VERSION 3 lists exactly the extensions implemented", (t) => {
  const { t: tr } = serverOn(tempDir(t));
  const [[type, r]] = packets(tr.value()) as [[number, common.SSHReader]];
  assert.equal(type, ft.FXP_VERSION);
  assert.equal(r.uint32(), 3);
  const ext: Record<string, string> = {};
  while (r.remaining > 0) ext[r.utf8()] = r.utf8();
  assert.deepEqual(ext, {
    "posix-rename@openssh.com": "1",
    "statvfs@openssh.com": "2",
    "fstatvfs@openssh.com": "2",
    "hardlink@openssh.com": "1",
    "fsync@openssh.com": "1",
    "lsetstat@openssh.com": "1",
    "limits@openssh.com": "1",
    "copy-data": "1",
    "expand-path@openssh.com": "1",
    "home-directory": "1",
  });
});

test("INIT: a server without the optional methods advertises only what the protocol serves itself", () => {
  const bare: ft.ISFTPServer = {
    gotVersion: () => ({}),
    openFile: () => Promise.reject(new ft.SFTPError(ft.FX_OP_UNSUPPORTED, "no")),
    removeFile: () => undefined,
    renameFile: () => undefined,
    makeDirectory: () => undefined,
    removeDirectory: () => undefined,
    openDirectory: () => Promise.reject(new Error("no")),
    getAttrs: () => ({}),
    setAttrs: () => undefined,
    readLink: () => "",
    makeLink: () => undefined,
    realPath: (p) => p,
    extendedRequest: () => new Uint8Array(0),
  };
  const s = new ft.FileTransferServer(bare);
  const tr = new StringTransport();
  s.makeConnection(tr);
  s.dataReceived(pkt(ft.FXP_INIT, (w) => w.uint32(3)));
  assert.deepEqual(Object.keys(s.extensions), ["limits@openssh.com", "copy-data"]);
});

test("REALPATH: '.' is the start directory, answered as a NAME with the request id (request fed one byte at a time)", async (t) => {
  const dir = tempDir(t);
  const { server, t: tr } = serverOn(dir);
  tr.clear();
  for (const b of pkt(ft.FXP_REALPATH, (w) => w.uint32(0xdeadbeef).string("."))) server.dataReceived(Uint8Array.of(b));
  await until(() => tr.value().length > 0, "NAME");
  const [[type, r]] = packets(tr.value()) as [[number, common.SSHReader]];
  assert.equal(type, ft.FXP_NAME);
  assert.equal(r.uint32(), 0xdeadbeef);
  assert.equal(r.uint32(), 1);
  assert.equal(r.utf8(), realpathSync(dir));
});

/** Sends `req` and waits for exactly one reply. */
async function ask(server: ft.FileTransferServer, tr: StringTransport, req: Uint8Array): Promise<[number, common.SSHReader]> {
  tr.clear();
  server.dataReceived(req);
  await until(() => tr.value().length > 0 && !server.outstanding, "a reply");
  const all = packets(tr.value());
  assert.equal(all.length, 1);
  return all[0]!;
}

test("OPEN of a missing file: STATUS FX_NO_SUCH_FILE with the request id", async (t) => {
  const { server, t: tr } = serverOn(tempDir(t));
  const [type, r] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(5).string("nope").uint32(ft.FXF_READ), {})));
  assert.equal(type, ft.FXP_STATUS);
  assert.deepEqual(status(r), { id: 5, code: ft.FX_NO_SUCH_FILE, message: "No such file or directory" });
});

test("bad input: a packet over the limit is answered FX_BAD_MESSAGE, logged, and the session ends", async (t) => {
  const { server, t: tr } = serverOn(tempDir(t), { maxPacketLength: 1024 });
  const [type, r] = await ask(server, tr, new common.SSHWriter().uint32(1025).byte(ft.FXP_WRITE).uint32(9).finish());
  assert.equal(type, ft.FXP_STATUS);
  const s = status(r);
  assert.equal(s.id, 9);
  assert.equal(s.code, ft.FX_BAD_MESSAGE);
  assert.match(s.message, /over the limit of 1024/);
  assert.equal(tr.disconnecting, true);
});

test("bad input: a packet whose length lies about its fields is FX_BAD_MESSAGE, and the session goes on", async (t) => {
  const { server, t: tr } = serverOn(tempDir(t));
  // The string claims 1000 bytes; the packet holds 3.
  const lying = new common.SSHWriter().uint32(12).byte(ft.FXP_STAT).uint32(3).uint32(1000).raw("abc").finish();
  const [type, r] = await ask(server, tr, lying);
  assert.equal(type, ft.FXP_STATUS);
  const s = status(r);
  assert.equal(s.id, 3);
  assert.equal(s.code, ft.FX_BAD_MESSAGE);
  // Trailing bytes the fields do not account for are refused too.
  const [, r2] = await ask(server, tr, pkt(ft.FXP_REALPATH, (w) => w.uint32(4).string(".").raw("junk")));
  assert.equal(status(r2).code, ft.FX_BAD_MESSAGE);
  const [type3] = await ask(server, tr, pkt(ft.FXP_REALPATH, (w) => w.uint32(5).string(".")));
  assert.equal(type3, ft.FXP_NAME);
});

test("bad input: an unknown request type is FX_OP_UNSUPPORTED", async (t) => {
  const { server, t: tr } = serverOn(tempDir(t));
  const [type, r] = await ask(server, tr, pkt(99, (w) => w.uint32(77).string("x")));
  assert.equal(type, ft.FXP_STATUS);
  assert.deepEqual(status(r), { id: 77, code: ft.FX_OP_UNSUPPORTED, message: "Unsupported request type 99" });
});

test("bad input: a handle never issued, and one already closed, are FX_FAILURE 'Invalid handle'", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "f"), "data");
  const { server, t: tr } = serverOn(dir);
  const [, r0] = await ask(server, tr, pkt(ft.FXP_READ, (w) => w.uint32(1).string("12345").uint64(0).uint32(10)));
  assert.deepEqual(status(r0), { id: 1, code: ft.FX_FAILURE, message: "Invalid handle" });
  const [type, r] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(2).string("f").uint32(ft.FXF_READ), {})));
  assert.equal(type, ft.FXP_HANDLE);
  r.uint32();
  const handle = r.string().slice();
  const [, r1] = await ask(server, tr, pkt(ft.FXP_CLOSE, (w) => w.uint32(3).string(handle)));
  assert.equal(status(r1).code, ft.FX_OK);
  const [, r2] = await ask(server, tr, pkt(ft.FXP_READ, (w) => w.uint32(4).string(handle).uint64(0).uint32(10)));
  assert.deepEqual(status(r2), { id: 4, code: ft.FX_FAILURE, message: "Invalid handle" });
  const [, r3] = await ask(server, tr, pkt(ft.FXP_CLOSE, (w) => w.uint32(5).string(handle)));
  assert.equal(status(r3).code, ft.FX_FAILURE);
});

test("limit: open handles per session (maxOpenHandles) — the one over is FX_FAILURE, and closing one frees a slot", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "f"), "data");
  mkdirSync(join(dir, "d"));
  const { server, t: tr } = serverOn(dir, { maxOpenHandles: 3 });
  const handles: Uint8Array[] = [];
  for (let i = 0; i < 2; i++) {
    const [type, r] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(i).string("f").uint32(ft.FXF_READ), {})));
    assert.equal(type, ft.FXP_HANDLE);
    r.uint32();
    handles.push(r.string().slice());
  }
  const [typeDir] = await ask(server, tr, pkt(ft.FXP_OPENDIR, (w) => w.uint32(10).string("d")));
  assert.equal(typeDir, ft.FXP_HANDLE);
  const [type, r] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(11).string("f").uint32(ft.FXF_READ), {})));
  assert.equal(type, ft.FXP_STATUS);
  assert.deepEqual(status(r), { id: 11, code: ft.FX_FAILURE, message: "Too many open handles" });
  assert.equal(server.openFiles.size + server.openDirs.size, 3);
  await ask(server, tr, pkt(ft.FXP_CLOSE, (w) => w.uint32(12).string(handles[0]!)));
  const [again] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(13).string("f").uint32(ft.FXF_READ), {})));
  assert.equal(again, ft.FXP_HANDLE);
  assert.equal(ft.MAX_OPEN_HANDLES, 512);
});

test("limit: at maxOutstandingRequests the transport is paused, and resumed once the queue has drained", async (t) => {
  const dir = tempDir(t);
  const { server, t: tr } = serverOn(dir, { maxOutstandingRequests: 4 });
  tr.clear();
  const burst = common.concatBytes(...Array.from({ length: 10 }, (_, i) => pkt(ft.FXP_STAT, (w) => w.uint32(i).string("."))));
  server.dataReceived(burst);
  assert.equal(tr.producerState, "paused");
  await until(() => server.outstanding === 0, "all answered");
  assert.equal(tr.producerState, "producing");
  const replies = packets(tr.value());
  assert.deepEqual(replies.map(([type, r]) => [type, r.uint32()]), Array.from({ length: 10 }, (_, i) => [ft.FXP_ATTRS, i]), "every request answered, in order");
});


test("limit: a transport that cannot pause gets FX_FAILURE for requests over maxOutstandingRequests", async (t) => {
  const tr = new UnpausableTransport();
  const server = new ft.FileTransferServer(new ft.FilesystemSFTPServer({ home: tempDir(t) }), { maxOutstandingRequests: 4 });
  server.makeConnection(tr);
  server.dataReceived(common.concatBytes(...Array.from({ length: 6 }, (_, i) => pkt(ft.FXP_STAT, (w) => w.uint32(i).string(".")))));
  await until(() => server.outstanding === 0, "all answered");
  const replies = packets(Buffer.concat(tr.out)).map(([type, r]) => (type === ft.FXP_STATUS ? status(r) : { id: r.uint32(), type }));
  assert.deepEqual(
    replies.filter((x) => "code" in x),
    [
      { id: 4, code: ft.FX_FAILURE, message: "Too many outstanding requests" },
      { id: 5, code: ft.FX_FAILURE, message: "Too many outstanding requests" },
    ],
  );
  assert.equal(replies.length, 6);
});

test("bad input: READ of a directory opened as a file is a typed failure", async (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, "d"));
  const { server, t: tr } = serverOn(dir);
  const [type, r] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(1).string("d").uint32(ft.FXF_READ), {})));
  assert.equal(type, ft.FXP_HANDLE);
  r.uint32();
  const h = r.string().slice();
  const [, r2] = await ask(server, tr, pkt(ft.FXP_READ, (w) => w.uint32(2).string(h).uint64(0).uint32(100)));
  assert.deepEqual(status(r2), { id: 2, code: ft.FX_FAILURE, message: "Is a directory" });
});

test("READ: a DATA reply's memory is reused once the transport released it, never while it holds it", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "f"), "0123456789");
  /** Keeps what is written as it is (no copy) and the release callbacks of writeAndRelease. */
  class Releasing extends StringTransport {
    readonly kept: Uint8Array[] = [];
    readonly releases: Array<() => void> = [];
    writeAndRelease(data: Uint8Array, release: () => void): void {
      this.kept.push(data);
      this.releases.push(release);
      this.write(data);
    }
  }
  const tr = new Releasing();
  const { server } = serverOn(dir, {}, tr);
  const [, r] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(1).string("f").uint32(ft.FXF_READ), {})));
  r.uint32();
  const h = r.string().slice();
  const read = async (id: number, offset: number): Promise<Uint8Array> => {
    const [type, d] = await ask(server, tr, pkt(ft.FXP_READ, (w) => w.uint32(id).string(h).uint64(offset).uint32(4)));
    assert.equal(type, ft.FXP_DATA);
    assert.equal(d.uint32(), id);
    return d.string().slice();
  };
  assert.equal(Buffer.from(await read(2, 0)).toString(), "0123");
  assert.equal(Buffer.from(await read(3, 4)).toString(), "4567");
  const [first, second] = tr.kept as [Uint8Array, Uint8Array];
  assert.notEqual(second.buffer, first.buffer, "the first reply is still held");
  tr.releases[0]!();
  assert.equal(Buffer.from(await read(4, 6)).toString(), "6789");
  assert.equal(tr.kept[2]!.buffer, first.buffer, "the released memory answered the next READ");
  assert.equal(Buffer.from(second.subarray(13)).toString(), "4567", "held memory is left alone");
});

test("client: replies are matched to requests by id, whatever their order", async () => {
  const c = new ft.FileTransferClient();
  const tr = new StringTransport();
  c.makeConnection(tr);
  c.dataReceived(pkt(ft.FXP_VERSION, (w) => w.uint32(3).string("limits@openssh.com").string("1")));
  assert.equal(await c.whenReady, 3);
  assert.equal(c.hasExtension("limits@openssh.com"), true);
  const a = c.realPath("a");
  const b = c.realPath("b");
  const missing = c.getAttrs("nope");
  const sent = packets(tr.value()).slice(1);
  assert.deepEqual(sent.map(([type, r]) => [type, r.uint32(), r.utf8()]), [
    [ft.FXP_REALPATH, 0, "a"],
    [ft.FXP_REALPATH, 1, "b"],
    [ft.FXP_LSTAT, 2, "nope"],
  ]);
  const name = (id: number, p: string): Uint8Array => pkt(ft.FXP_NAME, (w) => ft.writeAttrs(w.uint32(id).uint32(1).string(p).string(p), {}));
  c.dataReceived(common.concatBytes(pkt(ft.FXP_STATUS, (w) => w.uint32(2).uint32(ft.FX_NO_SUCH_FILE).string("gone").string("en")), name(1, "/b"), name(0, "/a")));
  assert.equal(await a, "/a");
  assert.equal(await b, "/b");
  await assert.rejects(Promise.resolve(missing), (e: unknown) => e instanceof ft.SFTPError && e.code === ft.FX_NO_SUCH_FILE && e.message === "gone" && e.lang === "en");
  assert.equal(c.openRequests.size, 0);
});

test("client: a handle and a short DATA reply fed in a Buffer that the next read overwrites keep their own bytes", async () => {
  const c = new ft.FileTransferClient();
  const tr = new StringTransport();
  c.makeConnection(tr);
  c.dataReceived(pkt(ft.FXP_VERSION, (w) => w.uint32(3)));
  await c.whenReady;
  const opening = c.openFile("f", ft.FXF_READ);
  // One Buffer, reused as a transport that reuses its read memory would: Buffer#slice is a view of it.
  const input = Buffer.from(pkt(ft.FXP_HANDLE, (w) => w.uint32(0).string(Buffer.from("handle-1"))));
  c.dataReceived(input);
  input.fill(0);
  const file = await opening;
  const reading = file.readChunk(0, 5);
  const data = Buffer.from(pkt(ft.FXP_DATA, (w) => w.uint32(1).string(Buffer.from("hello"))));
  c.dataReceived(data);
  data.fill(0);
  assert.equal(Buffer.from(await reading).toString(), "hello");
  void file.close();
  const [type, r] = packets(tr.value()).at(-1)!;
  assert.equal(type, ft.FXP_CLOSE);
  r.uint32();
  assert.equal(Buffer.from(r.string()).toString(), "handle-1", "CLOSE names the handle the server gave");
});

test("client: requests pending when the session ends fail with ConnectionLost", async () => {
  const c = new ft.FileTransferClient();
  c.makeConnection(new StringTransport());
  const d = c.realPath(".");
  c.connectionLost(new Failure(new ConnectionDone()));
  await assert.rejects(Promise.resolve(d), ConnectionLost);
  await assert.rejects(Promise.resolve(c.realPath(".")), ConnectionLost);
});

/** A StringTransport that looks like a session channel on a connection whose peer sent `version`. */
function channelTransport(version: string): StringTransport {
  return Object.assign(new StringTransport(), { conn: { transport: { otherVersionString: version } } });
}

test("SYMLINK: the argument order follows the peer — OpenSSH, Paramiko and libssh2 clients send the target first, others the draft's order", async (t) => {
  const dir = tempDir(t);
  const cases: Array<[string, string]> = [
    ["SSH-2.0-OpenSSH_9.2p1 Debian-2", "target-first"],
    ["SSH-2.0-paramiko_2.12.0", "target-first"],
    ["SSH-2.0-libssh2_1.10.0", "target-first"],
    ["SSH-2.0-AsyncSSH_2.13.0", "draft"],
    ["SSH-2.0-TwistedTS_0.1.0", "draft"],
  ];
  for (const [i, [version, order]] of cases.entries()) {
    const tr = channelTransport(version);
    const server = new ft.FileTransferServer(new ft.FilesystemSFTPServer({ home: dir }));
    server.makeConnection(tr);
    assert.equal(server.symlinkTargetFirst, order === "target-first", version);
    const link = `link-${i}`;
    const [type, r] = await ask(server, tr, pkt(ft.FXP_SYMLINK, (w) => (order === "draft" ? w.uint32(1).string(link).string("T") : w.uint32(1).string("T").string(link))));
    assert.equal(type, ft.FXP_STATUS);
    assert.equal(status(r).code, ft.FX_OK, version);
    assert.equal(readlinkSync(join(dir, link)), "T", version);
  }
  // The client: target first to OpenSSH and Paramiko servers, the draft's order to others.
  for (const [version, targetFirst] of [["SSH-2.0-OpenSSH_9.2", true], ["SSH-2.0-Twisted_22.4.0", false], ["SSH-2.0-AsyncSSH_2.13.0", false]] as const) {
    const c = new ft.FileTransferClient();
    const tr = channelTransport(version);
    c.makeConnection(tr);
    tr.clear();
    void c.makeLink("LINK", "TARGET").addErrback(() => undefined);
    const [[, r]] = packets(tr.value()) as [[number, common.SSHReader]];
    r.uint32();
    assert.deepEqual([r.utf8(), r.utf8()], targetFirst ? ["TARGET", "LINK"] : ["LINK", "TARGET"], version);
  }
});

test("client: VERSION and replies fed one byte at a time, and split at every offset, give the same results", async () => {
  const version = pkt(ft.FXP_VERSION, (w) => w.uint32(3).string("posix-rename@openssh.com").string("1"));
  const replies = common.concatBytes(
    pkt(ft.FXP_DATA, (w) => w.uint32(0).string("hello, world")),
    pkt(ft.FXP_ATTRS, (w) => ft.writeAttrs(w.uint32(1), { size: 12, permissions: 0o100644 })),
  );
  const run = async (feed: (c: ft.FileTransferClient, bytes: Uint8Array) => void): Promise<unknown[]> => {
    const c = new ft.FileTransferClient();
    c.makeConnection(new StringTransport());
    feed(c, version);
    await c.whenReady;
    const file = new ft.ClientFile(c, new TextEncoder().encode("h"));
    const data = file.readChunk(0, 100);
    const attrs = file.getAttrs();
    feed(c, replies);
    return [c.serverExtensions["posix-rename@openssh.com"]?.length, Buffer.from(await data).toString(), await attrs];
  };
  const whole = await run((c, b) => c.dataReceived(b));
  assert.deepEqual(whole, [1, "hello, world", { size: 12, permissions: 0o100644 }]);
  assert.deepEqual(await run((c, b) => b.forEach((x) => c.dataReceived(Uint8Array.of(x)))), whole);
  for (const cut of [1, 4, 5, 9, 13, 20]) assert.deepEqual(await run((c, b) => (c.dataReceived(b.subarray(0, cut)), c.dataReceived(b.subarray(cut)))), whole, `cut at ${cut}`);
});

test("sftpSubsystem: the avatar as ISFTPServer, its sftpServer(), or a filesystem server in its home directory", async (t) => {
  const home = tempDir(t);
  const realpathOf = async (avatar: unknown): Promise<string> => {
    const server = ft.sftpSubsystem()(new Uint8Array(0), avatar);
    const tr = new StringTransport();
    server.makeConnection(tr);
    server.dataReceived(pkt(ft.FXP_INIT, (w) => w.uint32(3)));
    const [, r] = await ask(server, tr, pkt(ft.FXP_REALPATH, (w) => w.uint32(1).string(".")));
    r.uint32();
    r.uint32();
    return r.utf8();
  };
  assert.equal(await realpathOf({ getHomeDir: () => home }), realpathSync(home));
  const fsServer = new ft.FilesystemSFTPServer({ root: home });
  assert.equal(ft.providesSFTPServer(fsServer), true);
  assert.equal(await realpathOf({ sftpServer: () => fsServer }), "/");
  const own = Object.assign(new ft.FilesystemSFTPServer({ home }), { realPath: () => "/own" });
  assert.equal(await realpathOf(own), "/own");
});

test("limit: read-only requests in a row overlap up to maxConcurrentReads; a WRITE waits for them and they for it; replies stay in order", async (t) => {
  const pending: Array<() => void> = [];
  let live = 0;
  let most = 0;
  const content = Buffer.from("0123456789");
  const events: string[] = [];
  const file: ft.ISFTPFile = {
    readChunk: (offset, length) =>
      new Promise((resolve) => {
        live++;
        most = Math.max(most, live);
        events.push(`read ${offset}`);
        pending.push(() => {
          live--;
          resolve(content.subarray(offset, offset + length));
        });
      }),
    writeChunk: (offset, data) => {
      events.push(`write ${offset} (${live} reads running)`);
      content.set(data, offset);
    },
    getAttrs: () => ({}),
    setAttrs: () => undefined,
    close: () => undefined,
  };
  const fsServer = new ft.FilesystemSFTPServer({ home: tempDir(t) });
  const server = new ft.FileTransferServer(Object.assign(fsServer, { openFile: () => file }), { maxConcurrentReads: 4 });
  const tr = new StringTransport();
  server.makeConnection(tr);
  server.dataReceived(pkt(ft.FXP_INIT, (w) => w.uint32(3)));
  const [type, r] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(100).string("f").uint32(ft.FXF_READ | ft.FXF_WRITE), {})));
  assert.equal(type, ft.FXP_HANDLE);
  r.uint32();
  const h = r.string().slice();
  tr.clear();
  const read = (id: number, off: number): Uint8Array => pkt(ft.FXP_READ, (w) => w.uint32(id).string(h).uint64(off).uint32(1));
  server.dataReceived(common.concatBytes(...[0, 1, 2, 3, 4, 5].map((i) => read(i, i)), pkt(ft.FXP_WRITE, (w) => w.uint32(6).string(h).uint64(0).string("X")), read(7, 0)));
  // Answer the reads last-first: the replies must still go out in request order.
  for (let round = 0; round < 20 && (pending.length > 0 || events.length < 8); round++) {
    await until(() => pending.length > 0 || events.length >= 8, "a read");
    for (const finish of pending.splice(0).reverse()) finish();
    await new Promise((r) => setImmediate(r));
  }
  await until(() => server.outstanding === 0, "all answered");
  assert.equal(most, 4, "at most maxConcurrentReads reads at once");
  assert.deepEqual(events, ["read 0", "read 1", "read 2", "read 3", "read 4", "read 5", "write 0 (0 reads running)", "read 0"]);
  const replies = packets(tr.value()).map(([type, r]) => [type, r.uint32(), type === ft.FXP_DATA ? r.utf8() : ""]);
  assert.deepEqual(replies, [
    [ft.FXP_DATA, 0, "0"],
    [ft.FXP_DATA, 1, "1"],
    [ft.FXP_DATA, 2, "2"],
    [ft.FXP_DATA, 3, "3"],
    [ft.FXP_DATA, 4, "4"],
    [ft.FXP_DATA, 5, "5"],
    [ft.FXP_STATUS, 6, ""],
    [ft.FXP_DATA, 7, "X"],
  ]);
  assert.equal(ft.MAX_CONCURRENT_READS, 16);
});

/** A server whose every file is `file`, after INIT and an OPEN; returns the handle. */
async function serverWithFile(t: import("node:test").TestContext, file: ft.ISFTPFile): Promise<{ server: ft.FileTransferServer; tr: StringTransport; h: Uint8Array }> {
  const fsServer = new ft.FilesystemSFTPServer({ home: tempDir(t) });
  const server = new ft.FileTransferServer(Object.assign(fsServer, { openFile: () => file }));
  const tr = new StringTransport();
  server.makeConnection(tr);
  server.dataReceived(pkt(ft.FXP_INIT, (w) => w.uint32(3)));
  const [type, r] = await ask(server, tr, pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(100).string("f").uint32(ft.FXF_WRITE), {})));
  assert.equal(type, ft.FXP_HANDLE);
  r.uint32();
  const h = r.string().slice();
  tr.clear();
  return { server, tr, h };
}

/** A file whose writes wait until `finish` is called, keeping the data they were given as it is. */
function heldWrites(lend: boolean): { file: ft.ISFTPFile; kept: Uint8Array[]; pending: Array<() => void> } {
  const kept: Uint8Array[] = [];
  const pending: Array<() => void> = [];
  const write = (_offset: number, data: Uint8Array): Promise<void> =>
    new Promise((resolve) => {
      kept.push(data);
      pending.push(resolve);
    });
  const file: ft.ISFTPFile = { readChunk: () => new Uint8Array(0), writeChunk: write, getAttrs: () => ({}), setAttrs: () => undefined, close: () => undefined };
  if (lend) file.writeChunkFrom = write;
  return { file, kept, pending };
}

const write = (h: Uint8Array, id: number, data: Uint8Array): Uint8Array => pkt(ft.FXP_WRITE, (w) => w.uint32(id).string(h).uint64(0).string(data));

test("WRITE: queued requests fed in a Buffer that the next read overwrites keep their own bytes, short and long (issue 12)", async (t) => {
  const { file, kept, pending } = heldWrites(false);
  const { server, tr, h } = await serverWithFile(t, file);
  const long = new Uint8Array(5000).fill(0x62);
  // One Buffer, reused as the sftp-server bin reuses its input buffer: Buffer#slice would be a view of it.
  const input = Buffer.from(common.concatBytes(write(h, 1, Buffer.from("first")), write(h, 2, Buffer.from("short")), write(h, 3, long)));
  server.dataReceived(input);
  input.fill(0);
  for (let i = 0; i < 3; i++) {
    await until(() => pending.length > 0, "a write");
    pending.shift()!();
  }
  await until(() => server.outstanding === 0, "all answered");
  assert.deepEqual(kept.map((d) => Buffer.from(d).toString("latin1")), ["first", "short", "b".repeat(5000)]);
  assert.deepEqual(packets(tr.value()).map(([type, r]) => [type, status(r).id]), [[ft.FXP_STATUS, 1], [ft.FXP_STATUS, 2], [ft.FXP_STATUS, 3]]);
});

test("WRITE: a queued WRITE's memory is reused once writeChunkFrom settled; a file with writeChunk alone keeps what it was given", async (t) => {
  for (const lend of [true, false]) {
    const { file, kept, pending } = heldWrites(lend);
    const { server, h } = await serverWithFile(t, file);
    const send = (id: number, fill: number): void => server.dataReceived(Buffer.from(write(h, id, new Uint8Array(5000).fill(fill))));
    send(1, 0x61);
    send(2, 0x62);
    await until(() => pending.length === 1, "the first write");
    pending.shift()!();
    await until(() => pending.length === 1, "the second write");
    // The first is answered: its memory is spare when the third comes.
    send(3, 0x63);
    pending.shift()!();
    await until(() => pending.length === 1, "the third write");
    pending.shift()!();
    await until(() => server.outstanding === 0, "all answered");
    const [a, b, c] = kept as [Uint8Array, Uint8Array, Uint8Array];
    assert.ok(b.every((x) => x === 0x62) && c.every((x) => x === 0x63));
    if (lend) assert.equal(c.buffer, a.buffer, "the first WRITE's memory took the third");
    else {
      assert.notEqual(c.buffer, a.buffer);
      assert.ok(a.every((x) => x === 0x61), "what the file kept is untouched");
    }
  }
});

test("READ: a request reusing the id of one being answered waits for it, so each reply goes out once, in order", async (t) => {
  const pending: Array<() => void> = [];
  const started: number[] = [];
  const file: ft.ISFTPFile = {
    readChunk: (offset) =>
      new Promise((resolve) => {
        started.push(offset);
        pending.push(() => resolve(Buffer.from(String(offset))));
      }),
    writeChunk: () => undefined,
    getAttrs: () => ({}),
    setAttrs: () => undefined,
    close: () => undefined,
  };
  const { server, tr, h } = await serverWithFile(t, file);
  const read = (id: number, offset: number): Uint8Array => pkt(ft.FXP_READ, (w) => w.uint32(id).string(h).uint64(offset).uint32(1));
  // READ 6 first, so that the three behind it are queued together and overlap once it is answered.
  server.dataReceived(read(6, 0));
  await until(() => started.length === 1, "READ 6");
  server.dataReceived(common.concatBytes(read(7, 1), read(8, 2), read(7, 3)));
  pending.shift()!();
  await until(() => started.length === 3, "READs 7 and 8 at once");
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(started, [0, 1, 2], "the second READ 7 has not started");
  pending.shift()!();
  await until(() => started.length === 4, "the second READ 7");
  for (const finish of pending.splice(0).reverse()) finish();
  await until(() => server.outstanding === 0, "all answered");
  assert.deepEqual(packets(tr.value()).map(([type, r]) => [type, r.uint32(), r.utf8()]), [
    [ft.FXP_DATA, 6, "0"],
    [ft.FXP_DATA, 7, "1"],
    [ft.FXP_DATA, 8, "2"],
    [ft.FXP_DATA, 7, "3"],
  ]);
});
