/**
 * One client process of bench/load.ts: `node bench/dist/_load_client.js '<json>'` with
 * `{ op: "exec" | "login" | "idle", port, user, keyPath, count, kex }`.
 *
 * - `exec`: `count` sessions at once, each a new connection doing the handshake, publickey login
 *   and `exec true`, then closing. Prints `{ start, end, latencies: [seconds…], failures, firstError? }`
 *   (start and end in epoch milliseconds, for the span across processes).
 * - `login`: as `exec` without the command: handshake and publickey login, then close.
 * - `idle`: `count` connections logged in and left open (opened `IDLE_BATCH` at a time). Prints
 *   `{ up, failures, firstError? }` once all are up, then holds them until stdin closes.
 */
import { readFileSync } from "node:fs";
import { oursConnect, oursOpen, type ConnectOptions } from "./_ours_client.js";

interface Args {
  op: "exec" | "login" | "idle";
  port: number;
  user: string;
  keyPath: string;
  count: number;
  kex: string;
}

/** Idle connections opened at a time: enough to keep the server busy, not a SYN flood. */
const IDLE_BATCH = 64;

const args = JSON.parse(process.argv[2] ?? "{}") as Args;
const opts: ConnectOptions = {
  port: args.port,
  user: args.user,
  privateKey: readFileSync(args.keyPath, "utf8"),
  publicLine: readFileSync(args.keyPath + ".pub", "utf8"),
  kex: args.kex,
};

function now(): number {
  return Number(process.hrtime.bigint()) / 1e9;
}

function describe(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function oneSession(): Promise<number> {
  const t0 = now();
  const { conn, close } = await oursConnect(opts);
  if (args.op === "login") {
    close();
    return now() - t0;
  }
  const ch = await oursOpen(conn, "true");
  conn.sendEOF(ch);
  await ch.whenClosed.asPromise();
  const seconds = now() - t0;
  close();
  if (ch.exitStatus !== 0) throw new Error(`exec true exited ${String(ch.exitStatus)}`);
  return seconds;
}

async function execLoad(): Promise<void> {
  const start = Date.now();
  const results = await Promise.allSettled(Array.from({ length: args.count }, () => oneSession()));
  const latencies = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  const firstError = failed[0] === undefined ? undefined : describe(failed[0].reason);
  process.stdout.write(JSON.stringify({ start, end: Date.now(), latencies, failures: failed.length, firstError }) + "\n");
  process.exit(0);
}

async function idleLoad(): Promise<void> {
  const open: Array<() => void> = [];
  let failures = 0;
  let firstError: string | undefined;
  for (let i = 0; i < args.count; i += IDLE_BATCH) {
    const batch = await Promise.allSettled(Array.from({ length: Math.min(IDLE_BATCH, args.count - i) }, () => oursConnect(opts)));
    for (const r of batch) {
      if (r.status === "fulfilled") open.push(r.value.close);
      else {
        failures += 1;
        firstError ??= describe(r.reason);
      }
    }
  }
  process.stdout.write(JSON.stringify({ up: open.length, failures, firstError }) + "\n");
  process.stdin.resume();
  process.stdin.once("end", () => {
    for (const close of open) close();
    setTimeout(() => process.exit(0), 200);
  });
}

(args.op === "idle" ? idleLoad() : execLoad()).catch((e: unknown) => {
  process.stderr.write(`${describe(e)}\n`);
  process.exit(1);
});
