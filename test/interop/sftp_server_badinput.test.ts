/**
 * Bad SFTP input sent to OUR server over a real SSH session channel, raw packets built by hand:
 * each is answered with the right status and a log line, and nothing crashes or leaves the root.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { lstatSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { common } from "@twisted-ts/conch/ssh";
import * as ft from "@twisted-ts/conch/ssh/filetransfer";
import { connectClient, within, type Client, type SessionChannel } from "./_client_support.js";
import { startOurServer, type OurServer } from "./_server_support.js";
import { sftpServerOptions } from "./_sftp_support.js";

/** An sftp subsystem channel driven by raw packets. */
class RawSFTP {
  /** Received bytes not yet taken as packets (kept apart from the channel's stdout, which joins everything on each read). */
  private pending: Buffer = Buffer.alloc(0);
  constructor(
    readonly ch: SessionChannel,
    readonly client: Client,
  ) {
    ch.stdoutSink = (d) => (this.pending = this.pending.length === 0 ? Buffer.from(d) : Buffer.concat([this.pending, d]));
  }

  send(bytes: Uint8Array): void {
    this.ch.write(bytes.slice());
  }

  packet(type: number, fill: (w: common.SSHWriter) => void): void {
    const w = new common.SSHWriter();
    fill(w);
    const body = w.finish();
    this.send(common.concatBytes(new common.SSHWriter().uint32(body.length + 1).byte(type).finish(), body));
  }

  private take(): [number, common.SSHReader] | undefined {
    const all = this.pending;
    if (all.length < 4) return undefined;
    const len = all.readUInt32BE(0);
    if (all.length < 4 + len) return undefined;
    const body = all.subarray(4, 4 + len);
    this.pending = all.subarray(4 + len);
    return [body[0]!, new common.SSHReader(body.slice(1))];
  }

  /** The next reply. */
  next(): Promise<[number, common.SSHReader]> {
    return within(
      new Promise((resolve, reject) => {
        const check = (): void => {
          const p = this.take();
          if (p !== undefined) {
            this.ch.onOutput = undefined;
            resolve(p);
          } else if (this.ch.isClosed) reject(new Error("the channel closed"));
        };
        this.ch.onOutput = check;
        void this.ch.whenClosed.asPromise().then(check);
        check();
      }),
      30_000,
      "an SFTP reply",
      this.client.peerLog,
    );
  }

  async status(): Promise<{ id: number; code: number; message: string }> {
    const [type, r] = await this.next();
    assert.equal(type, ft.FXP_STATUS, `expected STATUS, got ${type}`);
    return { id: r.uint32(), code: r.uint32(), message: r.utf8() };
  }
}

async function open(t: TestContext, server: OurServer): Promise<RawSFTP> {
  const hostKey = Object.values(server.hostKeys)[0]!.public().toString("openssh");
  const client = await connectClient({
    port: server.port,
    user: server.user,
    key: { privatePath: server.keyPath, privateKey: readFileSync(server.keyPath, "utf8"), publicLine: server.keyPub },
    hostKey,
    peerLog: server.logText,
  });
  t.after(() => client.close());
  const ch = await client.openSession();
  await ch.request("subsystem", common.NS("sftp"));
  const raw = new RawSFTP(ch, client);
  raw.packet(ft.FXP_INIT, (w) => w.uint32(3));
  const [type] = await raw.next();
  assert.equal(type, ft.FXP_VERSION);
  return raw;
}

test("bad input: lying length, unknown type, handles never issued or closed — each a status and a log line", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  writeFileSync(join(server.home, "f"), "data");
  const s = await open(t, server);
  s.send(new common.SSHWriter().uint32(12).byte(ft.FXP_STAT).uint32(1).uint32(1000).raw("abc").finish());
  assert.deepEqual({ ...(await s.status()), message: "" }, { id: 1, code: ft.FX_BAD_MESSAGE, message: "" });
  s.packet(99, (w) => w.uint32(2));
  assert.deepEqual(await s.status(), { id: 2, code: ft.FX_OP_UNSUPPORTED, message: "Unsupported request type 99" });
  s.packet(ft.FXP_READ, (w) => w.uint32(3).string("4711").uint64(0).uint32(10));
  assert.deepEqual(await s.status(), { id: 3, code: ft.FX_FAILURE, message: "Invalid handle" });
  s.packet(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(4).string("f").uint32(ft.FXF_READ), {}));
  const [type, r] = await s.next();
  assert.equal(type, ft.FXP_HANDLE);
  r.uint32();
  const h = r.string().slice();
  s.packet(ft.FXP_CLOSE, (w) => w.uint32(5).string(h));
  assert.equal((await s.status()).code, ft.FX_OK);
  s.packet(ft.FXP_READ, (w) => w.uint32(6).string(h).uint64(0).uint32(10));
  assert.deepEqual(await s.status(), { id: 6, code: ft.FX_FAILURE, message: "Invalid handle" });
  s.packet(ft.FXP_OPENDIR, (w) => w.uint32(7).string("f"));
  assert.equal((await s.status()).code, ft.FX_NO_SUCH_FILE, "OPENDIR of a file");
  const log = server.logText();
  assert.match(log, /request 1 \(STAT\): Bad message/);
  assert.match(log, /request 2: unknown or unsupported packet type 99/);
  assert.match(log, /no open file for handle "4711"/);
  assert.match(log, /no open file for handle "0"/);
  assert.deepEqual(server.criticals(), []);
});

test("bad input: a packet over the limit is answered FX_BAD_MESSAGE, logged, and the session closes", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  const s = await open(t, server);
  s.send(new common.SSHWriter().uint32(ft.MAX_PACKET_LENGTH + 1).byte(ft.FXP_WRITE).uint32(9).finish());
  const st = await s.status();
  assert.equal(st.id, 9);
  assert.equal(st.code, ft.FX_BAD_MESSAGE);
  await within(s.ch.whenClosed.asPromise(), 30_000, "channel close");
  assert.match(server.logText(), new RegExp(`ending the SFTP session: packet of ${ft.MAX_PACKET_LENGTH + 1} bytes is over the limit`));
  assert.deepEqual(server.criticals(), []);
});

test("bad input: 10,000 OPENs pipelined — the first maxOpenHandles get handles, the rest FX_FAILURE, all answered in order", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  writeFileSync(join(server.home, "f"), "data");
  const s = await open(t, server);
  const n = 10_000;
  const batch: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const w = new common.SSHWriter();
    ft.writeAttrs(w.uint32(i).string("f").uint32(ft.FXF_READ), {});
    const body = w.finish();
    batch.push(common.concatBytes(new common.SSHWriter().uint32(body.length + 1).byte(ft.FXP_OPEN).finish(), body));
  }
  s.send(common.concatBytes(...batch));
  let handles = 0;
  for (let i = 0; i < n; i++) {
    const [type, r] = await s.next();
    assert.equal(r.uint32(), i, "replies in order");
    if (type === ft.FXP_HANDLE) handles++;
    else {
      assert.equal(type, ft.FXP_STATUS);
      assert.equal(r.uint32(), ft.FX_FAILURE);
      assert.equal(r.utf8(), "Too many open handles");
    }
  }
  assert.equal(handles, ft.MAX_OPEN_HANDLES);
  assert.match(server.logText(), /refusing to open a handle: 512 open \(limit 512\)/);
  assert.deepEqual(server.criticals(), []);
});

test("bad input: under confinement, '../' and a symlink out (made before and during the session) stay inside", async (t) => {
  const server = await startOurServer(t, sftpServerOptions((home) => ({ root: home })));
  writeFileSync(join(server.dir, "secret"), "outside");
  symlinkSync(server.dir, join(server.home, "before"));
  const s = await open(t, server);
  s.packet(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(1).string("../secret").uint32(ft.FXF_READ), {}));
  assert.equal((await s.status()).code, ft.FX_NO_SUCH_FILE);
  s.packet(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(2).string("before/secret").uint32(ft.FXF_READ), {}));
  assert.equal((await s.status()).code, ft.FX_NO_SUCH_FILE);
  // Our client's SSH version is not one that sends OpenSSH's order: the draft's, link path first.
  s.packet(ft.FXP_SYMLINK, (w) => w.uint32(3).string("during").string("../../../.."));
  assert.equal((await s.status()).code, ft.FX_OK);
  s.packet(ft.FXP_OPEN, (w) => ft.writeAttrs(w.uint32(4).string("during/secret").uint32(ft.FXF_WRITE | ft.FXF_CREAT | ft.FXF_TRUNC), {}));
  const [type] = await s.next();
  assert.equal(type, ft.FXP_HANDLE, "creates during/secret — inside the root");
  assert.equal(readFileSync(join(server.dir, "secret"), "utf8"), "outside");
  assert.ok(lstatSync(join(server.home, "secret")).isFile());
  s.packet(ft.FXP_REALPATH, (w) => w.uint32(5).string("during/before/.."));
  const [, r] = await s.next();
  assert.equal(r.uint32(), 5);
  r.uint32();
  assert.equal(r.utf8(), "/");
});
