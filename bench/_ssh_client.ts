/**
 * The Node clients of bench/ssh.ts, each run in a process of its own so that its CPU time is its
 * own: `node bench/dist/_ssh_client.js '<json>'` with
 * `{ impl: "ours" | "ssh2", op: "up" | "down" | "true", port, user, keyPath, cipher, mac, bytes, reps, warmup? }`.
 * Prints one JSON line: `{ runs: [{ seconds, cpu }] }` — for up/down the seconds of the data phase
 * (from the remote command's first output byte to the channel's close) and the process CPU seconds
 * over the same span; for "true" the seconds from connect to the channel's close (a new
 * connection each run).
 *
 * SFTP (bench/sftp.ts): op "get" / "put" moves `remote` ↔ `local` twice on one connection, ours with
 * `FileTransferClient.get`/`put`, ssh2 with `fastGet`/`fastPut`, and prints
 * `{ runs: [cold, warm] }`: the seconds and CPU seconds of each transfer (SFTP session already open).
 *
 * Upload runs `printf S; exec cat >/dev/null` and starts writing right after the exec request
 * (as `ssh` does with its stdin); download runs `head -c N /dev/zero`.
 */
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import type { IPushProducer } from "@twisted-ts/internet/interfaces";
import { connection, filetransfer } from "@twisted-ts/conch/ssh";
import { oursConnect, oursOpen, type ConnectOptions } from "./_ours_client.js";

interface Args {
  impl: "ours" | "ssh2";
  op: "up" | "down" | "true" | "get" | "put";
  /** SFTP: the remote and local paths of "get" / "put". */
  remote?: string;
  local?: string;
  port: number;
  user: string;
  keyPath: string;
  cipher: string;
  mac: string;
  bytes: number;
  reps: number;
  /**
   * Bytes moved once on the same connection, the same way, before the measured transfers (default
   * 0): a Node process compiles its hot paths and grows its heaps during the first hundred MiB,
   * so a single cold transfer measures start-up as much as throughput.
   */
  warmup?: number;
  /** Our client's channel window and maximum packet (default: the channel's defaults). */
  window?: number;
  maxPacket?: number;
}

export interface Run {
  seconds: number;
  cpu: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as Args;
const KEX = "curve25519-sha256";
const CHUNK = Buffer.alloc(256 * 1024);
const UP_COMMAND = "printf S; exec cat >/dev/null";
const downCommand = (n: number): string => `head -c ${n} /dev/zero`;

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

// ---- ours -------------------------------------------------------------------------------------

function connectOptions(): ConnectOptions {
  return {
    port: args.port,
    user: args.user,
    privateKey: readFileSync(args.keyPath, "utf8"),
    publicLine: readFileSync(args.keyPath + ".pub", "utf8"),
    kex: KEX,
    cipher: args.cipher,
    mac: args.mac,
  };
}

async function oursTransfer(conn: connection.SSHConnection, op: "up" | "down", n: number): Promise<Run> {
  let start = 0;
  let cpu0 = 0;
  let received = 0;
  const mark = (): void => {
    if (start === 0) {
      start = now();
      cpu0 = cpuSeconds();
    }
  };
  if (op === "down") {
    const ch = await oursOpen(conn, downCommand(n), args.window, args.maxPacket);
    ch.onData = (k) => {
      mark();
      received += k;
    };
    conn.sendEOF(ch);
    await ch.whenClosed.asPromise();
    if (received !== n) throw new Error(`received ${received} of ${n} bytes`);
  } else {
    const ch = await oursOpen(conn, UP_COMMAND, args.window, args.maxPacket);
    ch.onData = mark;
    let sent = 0;
    let paused = false;
    let done = false;
    const pump = (): void => {
      while (!paused && sent < n) {
        const k = Math.min(CHUNK.length, n - sent);
        ch.write(k === CHUNK.length ? CHUNK : CHUNK.subarray(0, k));
        sent += k;
      }
      if (sent >= n && !done) {
        done = true;
        ch.unregisterProducer();
        conn.sendEOF(ch);
      }
    };
    const producer: IPushProducer = {
      pauseProducing: () => void (paused = true),
      resumeProducing: () => {
        paused = false;
        pump();
      },
      stopProducing: () => void (paused = true),
    };
    ch.registerProducer(producer, true);
    pump();
    await ch.whenClosed.asPromise();
    if (ch.exitStatus !== 0) throw new Error(`upload command exited ${ch.exitStatus}`);
  }
  return { seconds: now() - start, cpu: cpuSeconds() - cpu0 };
}

async function oursTrue(): Promise<Run> {
  const t0 = now();
  const c0 = cpuSeconds();
  const { conn, close } = await oursConnect(connectOptions());
  const ch = await oursOpen(conn, "true");
  conn.sendEOF(ch);
  await ch.whenClosed.asPromise();
  const r = { seconds: now() - t0, cpu: cpuSeconds() - c0 };
  close();
  return r;
}

// ---- ssh2 -------------------------------------------------------------------------------------

interface Ssh2Stream {
  on(event: string, fn: (...a: never[]) => void): Ssh2Stream;
  once(event: string, fn: (...a: never[]) => void): Ssh2Stream;
  write(b: Uint8Array): boolean;
  end(): void;
  stderr: { on(event: string, fn: (...a: never[]) => void): void };
}
interface Ssh2Client {
  on(event: string, fn: (...a: never[]) => void): Ssh2Client;
  connect(opts: Record<string, unknown>): void;
  exec(command: string, cb: (err: Error | undefined, stream: Ssh2Stream) => void): void;
  sftp(cb: (err: Error | undefined, sftp: Ssh2SFTP) => void): void;
  end(): void;
}

function ssh2Connect(): Promise<Ssh2Client> {
  const require = createRequire(import.meta.url);
  const { Client } = require("ssh2") as { Client: new () => Ssh2Client };
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.on("ready", () => resolve(c));
    c.on("error", (e: Error) => reject(e));
    c.connect({
      host: "127.0.0.1",
      port: args.port,
      username: args.user,
      privateKey: readFileSync(args.keyPath),
      algorithms: { kex: [KEX], cipher: [args.cipher], hmac: [args.mac], serverHostKey: ["ssh-ed25519"] },
      hostVerifier: () => true,
    });
  });
}

function ssh2Exec(c: Ssh2Client, command: string): Promise<Ssh2Stream> {
  return new Promise((resolve, reject) => c.exec(command, (err, s) => (err ? reject(err) : resolve(s))));
}

async function ssh2Transfer(c: Ssh2Client, op: "up" | "down", n: number): Promise<Run> {
  let start = 0;
  let cpu0 = 0;
  let received = 0;
  const mark = (): void => {
    if (start === 0) {
      start = now();
      cpu0 = cpuSeconds();
    }
  };
  const s = await ssh2Exec(c, op === "down" ? downCommand(n) : UP_COMMAND);
  const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
  s.on("data", (d: Buffer) => {
    mark();
    received += d.length;
  });
  if (op === "down") {
    s.end();
    await closed;
    if (received !== n) throw new Error(`received ${received} of ${n} bytes`);
  } else {
    let sent = 0;
    await new Promise<void>((resolve) => {
      const pump = (): void => {
        while (sent < n) {
          const k = Math.min(CHUNK.length, n - sent);
          sent += k;
          if (!s.write(k === CHUNK.length ? CHUNK : CHUNK.subarray(0, k))) {
            s.once("drain", pump);
            return;
          }
        }
        resolve();
      };
      pump();
    });
    s.end();
    await closed;
  }
  return { seconds: now() - start, cpu: cpuSeconds() - cpu0 };
}

async function ssh2True(): Promise<Run> {
  const t0 = now();
  const c0 = cpuSeconds();
  const c = await ssh2Connect();
  const s = await ssh2Exec(c, "true");
  s.on("data", () => undefined);
  await new Promise<void>((resolve) => s.once("close", () => resolve()));
  const r = { seconds: now() - t0, cpu: cpuSeconds() - c0 };
  c.end();
  return r;
}

// ---- SFTP -------------------------------------------------------------------------------------

interface Ssh2SFTP {
  fastGet(remote: string, local: string, cb: (err: Error | undefined) => void): void;
  fastPut(local: string, remote: string, cb: (err: Error | undefined) => void): void;
}

/** Times `f` in seconds and this process's CPU seconds. */
async function timed(f: () => PromiseLike<unknown>): Promise<Run> {
  const t0 = now();
  const c0 = cpuSeconds();
  await f();
  return { seconds: now() - t0, cpu: cpuSeconds() - c0 };
}

async function sftpRuns(): Promise<Run[]> {
  const { op, remote, local } = args as Required<Args>;
  const runs: Run[] = [];
  if (args.impl === "ours") {
    const { conn, close } = await oursConnect(connectOptions());
    const sftp = await filetransfer.openSFTPChannel(conn);
    for (let i = 0; i < 2; i++) runs.push(await timed(() => (op === "get" ? sftp.get(remote, local) : sftp.put(local, remote))));
    close();
  } else {
    const c = await ssh2Connect();
    const sftp = await new Promise<Ssh2SFTP>((resolve, reject) => c.sftp((err, s) => (err ? reject(err) : resolve(s))));
    const move = (): Promise<void> =>
      new Promise((resolve, reject) => {
        const cb = (err: Error | undefined): void => (err ? reject(err) : resolve());
        if (op === "get") sftp.fastGet(remote, local, cb);
        else sftp.fastPut(local, remote, cb);
      });
    for (let i = 0; i < 2; i++) runs.push(await timed(move));
    c.end();
  }
  return runs;
}

// ---- main -------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const runs: Run[] = [];
  if (args.op === "get" || args.op === "put") {
    runs.push(...(await sftpRuns()));
  } else if (args.op === "true") {
    for (let i = 0; i < args.reps; i++) runs.push(await (args.impl === "ours" ? oursTrue() : ssh2True()));
  } else if (args.impl === "ours") {
    const { conn, close } = await oursConnect(connectOptions());
    if ((args.warmup ?? 0) > 0) await oursTransfer(conn, args.op, args.warmup!);
    for (let i = 0; i < args.reps; i++) runs.push(await oursTransfer(conn, args.op, args.bytes));
    close();
  } else {
    const c = await ssh2Connect();
    if ((args.warmup ?? 0) > 0) await ssh2Transfer(c, args.op, args.warmup!);
    for (let i = 0; i < args.reps; i++) runs.push(await ssh2Transfer(c, args.op, args.bytes));
    c.end();
  }
  process.stdout.write(JSON.stringify({ runs }) + "\n");
  process.exit(0);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
