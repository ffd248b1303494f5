/**
 * Our SSH server in a process of its own, for bench/load.ts's direct case:
 * `node --expose-gc bench/dist/_our_server.js '<json>'` with `{ endpoint, userPub, hostKeyPath, launcher }`.
 *
 * It listens on `endpoint` (a `serverFromString` description such as
 * `tcp:2222:interface=127.0.0.1`) with `ourFactory` and the given host key. Over the IPC channel
 * it prints `{ listening: true }` once it listens, and answers `{ cmd: "stats" }` with
 * `{ rss, heap, loopP99, loopMax }` (event-loop delay in ms since the last query) after a GC:
 * figures the `conchd` command, which load.ts runs for the HAProxy cases, does not report.
 */
import { readFileSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { serverFromString } from "@twisted-ts/internet/endpoints";
import { reactor } from "@twisted-ts/internet/reactor";
import { keys } from "@twisted-ts/conch/ssh";
import { ourFactory } from "./_servers.js";

interface Args {
  endpoint: string;
  userPub: string;
  hostKeyPath: string;
  /** Spawn sessions' commands through the process launcher (default true; `--no-launcher` in load.ts). */
  launcher?: boolean;
}

/** What one process reports. */
export interface ServerStats {
  rss: number;
  heap: number;
  loopP99: number;
  loopMax: number;
}

const args = JSON.parse(process.argv[2] ?? "{}") as Args;
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

serve().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
process.on("disconnect", () => process.exit(0));
