/**
 * Our SSH server for bench/load.ts, in processes of its own:
 * `node --expose-gc bench/dist/_cluster_server.js '<json>'` with
 * `{ workers, endpoint, userPub, hostKeyPath, launcher }`.
 *
 * `workers` 0 serves in this process; N ≥ 1 forks N workers with node:cluster that all listen on
 * `endpoint` (a `serverFromString` description such as `tcp:2222:interface=127.0.0.1` or
 * `haproxy:tcp:2222:interface=127.0.0.1`), sharing one port, with the same host key so clients
 * see one server. Over the IPC channel it prints `{ listening: true }` once every worker listens,
 * and answers `{ cmd: "stats" }` with `{ rss, heap, loopP99, loopMax }` summed (memory) or maxed
 * (event-loop delay, ms, since the last query) over the workers, after a GC in each.
 *
 * The lead may replace this launcher with `conchd --workers N`.
 */
import cluster from "node:cluster";
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { serverFromString } from "@twisted-ts/internet/endpoints";
import { reactor } from "@twisted-ts/internet/reactor";
import { keys } from "@twisted-ts/conch/ssh";
import { ourFactory } from "./_servers.js";

interface Args {
  workers: number;
  endpoint: string;
  userPub: string;
  hostKeyPath: string;
  /** Spawn sessions' commands through the process launcher (default true). */
  launcher?: boolean;
}

/** What one process reports. */
export interface ServerStats {
  rss: number;
  heap: number;
  loopP99: number;
  loopMax: number;
}

const args = JSON.parse(process.argv[2] ?? process.env["LOAD_SERVER_ARGS"] ?? "{}") as Args;
const gc = (globalThis as { gc?: () => void }).gc;

function send(msg: unknown): void {
  process.send?.(msg);
}

async function serve(): Promise<void> {
  const f = ourFactory(args.userPub, "bin", args.launcher !== false);
  const hostKey = keys.Key.fromString(readFileSync(args.hostKeyPath, "utf8"));
  f.privateKeys = { [hostKey.sshType()]: hostKey };
  // The load comes from one address on purpose: MaxStartups as raised as sshd's in the same run,
  // and loopback never penalised.
  f.maxStartups = { start: 100_000, rate: 30, full: 100_000 };
  f.perSourcePenaltyExemptList = ["127.0.0.0/8", "::1"];
  await serverFromString(reactor, args.endpoint).listen(f);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  process.on("message", (m: { cmd?: string }) => {
    if (m.cmd !== "stats") return;
    gc?.();
    const mem = process.memoryUsage();
    const stats: ServerStats = { rss: mem.rss, heap: mem.heapUsed, loopP99: loop.percentile(99) / 1e6, loopMax: loop.max / 1e6 };
    loop.reset();
    send({ stats });
  });
  send({ listening: true });
}

function primary(): void {
  const workers = Array.from({ length: args.workers }, () => cluster.fork({ LOAD_SERVER_ARGS: JSON.stringify(args) }));
  let listening = 0;
  let pending: ServerStats[] = [];
  for (const w of workers) {
    w.on("message", (m: { listening?: boolean; stats?: ServerStats }) => {
      if (m.listening === true && ++listening === workers.length) send({ listening: true });
      if (m.stats !== undefined) {
        pending.push(m.stats);
        if (pending.length === workers.length) {
          const own = process.memoryUsage();
          const sum = (k: "rss" | "heap"): number => pending.reduce((a, s) => a + s[k], 0);
          const max = (k: "loopP99" | "loopMax"): number => Math.max(...pending.map((s) => s[k]));
          send({ stats: { rss: sum("rss") + own.rss, heap: sum("heap"), loopP99: max("loopP99"), loopMax: max("loopMax") } });
          pending = [];
        }
      }
    });
  }
  process.on("message", (m: { cmd?: string }) => {
    if (m.cmd === "stats") for (const w of workers) w.send(m);
  });
  process.on("disconnect", () => {
    for (const w of workers) w.kill();
    process.exit(0);
  });
}

if (cluster.isPrimary && args.workers > 0) primary();
else {
  serve().catch((e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  });
  if (cluster.isPrimary) process.on("disconnect", () => process.exit(0));
}
