/**
 * The `sftp-server` bin's module: `serve` over in-memory streams (requests already sent when the
 * input ends are still answered, then it resolves), and `main`'s options.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { realpathSync, writeFileSync } from "node:fs";
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
