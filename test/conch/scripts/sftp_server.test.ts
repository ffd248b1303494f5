/**
 * The `sftp-server` bin's module: `serve` over in-memory streams (requests already sent when the
 * input ends are still answered, then it resolves), and `main`'s options; and the bin itself as
 * sshd runs it, a process on pipes (its standard input read into one reused buffer).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync, realpathSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { common } from "@twisted-ts/conch/ssh";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import { main, serve } from "@twisted-ts/conch/scripts/sftp-server";
import { tempDir } from "../../_support/peers.js";

function pkt(type: number, fill: (w: common.SSHWriter) => void): Uint8Array {
  const w = new common.SSHWriter();
  fill(w);
  const body = w.finish();
  return common.concatBytes(new common.SSHWriter().uint32(body.length + 1).byte(type).finish(), body);
}

test("serve: INIT, then REALPATH and STAT sent with EOF right behind them are answered before it ends", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "f"), "12345");
  const input = new PassThrough();
  const output = new PassThrough();
  const chunks: Buffer[] = [];
  output.on("data", (d: Buffer) => chunks.push(d));
  const done = serve(input, output, { home: dir });
  input.end(common.concatBytes(pkt(ft.FXP_INIT, (w) => w.uint32(3)), pkt(ft.FXP_REALPATH, (w) => w.uint32(1).string(".")), pkt(ft.FXP_STAT, (w) => w.uint32(2).string("f"))));
  await done;
  const r = new common.SSHReader(Buffer.concat(chunks));
  const types: number[] = [];
  const bodies: common.SSHReader[] = [];
  while (r.remaining > 0) {
    const body = r.raw(r.uint32());
    types.push(body[0]!);
    bodies.push(new common.SSHReader(body.subarray(1)));
  }
  assert.deepEqual(types, [ft.FXP_VERSION, ft.FXP_NAME, ft.FXP_ATTRS]);
  bodies[1]!.uint32();
  bodies[1]!.uint32();
  assert.equal(bodies[1]!.utf8(), realpathSync(dir));
  assert.equal(bodies[2]!.uint32(), 2);
  assert.equal(ft.readAttrs(bodies[2]!).size, 5);
  assert.equal(output.writableEnded, true);
});

test("main: an unknown option prints the usage and exits 1; --help exits 0", async () => {
  let err = "";
  let out = "";
  const io = { stdin: new PassThrough(), stdout: Object.assign(new PassThrough(), {}), stderr: new PassThrough() };
  io.stderr.on("data", (d: Buffer) => (err += d.toString()));
  io.stdout.on("data", (d: Buffer) => (out += d.toString()));
  assert.equal(await main(["-x"], io), 1);
  assert.match(err, /unknown option -x\nusage: sftp-server/);
  assert.equal(await main(["--help"], io), 0);
  assert.match(out, /^usage: sftp-server/);
});

const READ_LENGTH = ft.MAX_READ_LENGTH;

/** The bin serving `dir`, and every reply it writes, as [type, id, body after the id]. */
function spawnBin(dir: string): { child: ReturnType<typeof spawn>; replies: () => Array<[number, number, Buffer]>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [ft.SFTP_SERVER_SCRIPT, "-d", dir], { stdio: ["pipe", "pipe", "inherit"] });
  const chunks: Buffer[] = [];
  child.stdout!.on("data", (d: Buffer) => chunks.push(d));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const replies = (): Array<[number, number, Buffer]> => {
    const all = Buffer.concat(chunks);
    const out: Array<[number, number, Buffer]> = [];
    for (let off = 0; off + 4 <= all.length; ) {
      const len = all.readUInt32BE(off);
      const p = all.subarray(off + 4, off + 4 + len);
      out.push([p[0]!, p[0] === ft.FXP_VERSION ? 0 : p.readUInt32BE(1), p.subarray(5)]);
      off += 4 + len;
    }
    return out;
  };
  return { child, replies, exited };
}

/** INIT, then OPEN of `name` for reading (its handle is "0", the session's first), then READs of `READ_LENGTH` at `offsets` (ids 2, 3, …). */
function openAndRead(name: string, offsets: readonly number[]): Uint8Array {
  return common.concatBytes(
    pkt(ft.FXP_INIT, (w) => w.uint32(3)),
    pkt(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(1).string(name).uint32(ft.FXF_READ), {})),
    ...offsets.map((off, i) => pkt(ft.FXP_READ, (w) => w.uint32(i + 2).string("0").uint64(off).uint32(READ_LENGTH))),
  );
}

test("sftp-server bin: READs sent with the input closed right behind them are all answered, in order and byte for byte, then it exits 0", async (t) => {
  const dir = tempDir(t);
  const content = randomBytes(6 * READ_LENGTH + 1000);
  writeFileSync(join(dir, "f"), content);
  const offsets = [0, 1, 2, 3, 4, 5, 6].map((i) => i * READ_LENGTH);
  const { child, replies, exited } = spawnBin(dir);
  child.stdin!.end(openAndRead("f", offsets));
  assert.equal(await exited, 0);
  const got = replies();
  assert.deepEqual(got.map(([type, id]) => [type, id]), [[ft.FXP_VERSION, 0], [ft.FXP_HANDLE, 1], ...offsets.map((_, i) => [ft.FXP_DATA, i + 2])]);
  const data = Buffer.concat(got.slice(2).map(([, , body]) => body.subarray(4)));
  assert.ok(data.equals(content), "the DATA replies are the file");
});

test("sftp-server bin: a client that stops reading stops it (memory stays bounded); every reply still comes once it reads", async (t) => {
  const dir = tempDir(t);
  const content = randomBytes(4 * READ_LENGTH);
  writeFileSync(join(dir, "f"), content);
  // 2,000 READs: 500 MiB of replies, were they all made while nobody reads them.
  const offsets = Array.from({ length: 2000 }, (_, i) => (i % 4) * READ_LENGTH);
  const { child, replies, exited } = spawnBin(dir);
  child.stdout!.pause();
  child.stdin!.end(openAndRead("f", offsets));
  const rssMiB = (): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid!}/status`, "utf8"))![1]) / 1024;
  let most = 0;
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 50));
    most = Math.max(most, rssMiB());
  }
  assert.ok(most < 150, `resident memory while nobody reads: ${most.toFixed(0)} MiB`);
  child.stdout!.resume();
  assert.equal(await exited, 0);
  const got = replies();
  assert.equal(got.length, 2 + offsets.length);
  for (const [i, off] of offsets.entries()) {
    const [type, id, body] = got[i + 2]!;
    assert.deepEqual([type, id], [ft.FXP_DATA, i + 2]);
    assert.ok(body.subarray(4).equals(content.subarray(off, off + READ_LENGTH)), `DATA ${id}`);
  }
});

test("sftp-server bin: a client that goes away mid-transfer (closes both pipes) ends it with status 1 and one line on stderr, as OpenSSH's exits on a failed write", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "f"), randomBytes(20 * READ_LENGTH));
  const child = spawn(process.execPath, [ft.SFTP_SERVER_SCRIPT, "-d", dir], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  child.stdin!.write(openAndRead("f", Array.from({ length: 20 }, (_, i) => i * READ_LENGTH)));
  child.stdout!.once("data", () => {
    child.stdout!.destroy();
    child.stdin!.end();
  });
  assert.equal(await exited, 1);
  assert.match(stderr, /^sftp-server: write (EPIPE|ECONNRESET)\n$/);
});
