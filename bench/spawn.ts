/**
 * What spawning costs the spawner's event loop (issue 14): `spawnProcess` of `/bin/true`, one at a
 * time, from a process holding `--heap` MiB of live JavaScript objects, directly and through the
 * reactor's process launcher. Reports the time `spawnProcess` itself takes (the event loop is
 * stopped meanwhile) and the worst and p99 event-loop delay over the run.
 *
 *     npx tsc -b && node bench/dist/spawn.js [--heap=200] [--count=100]
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { ProcessProtocol } from "@twisted-ts/internet/protocol";
import { NodeReactor } from "@twisted-ts/internet/reactor";

const flags = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string | undefined]));
const HEAP_MIB = Number(flags.get("heap") ?? 200);
const COUNT = Number(flags.get("count") ?? 100);

/** About `mib` MiB of small live objects, as a busy server holds. */
function ballast(mib: number): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < mib * 8192; i++) out.push({ i, s: `connection ${i}`, b: [i, i + 1] });
  return out;
}

async function run(launcher: boolean): Promise<{ spawnMs: number; p99: number; max: number }> {
  const reactor = new NodeReactor();
  const once = (): Promise<number> =>
    new Promise((resolve) => {
      const proto = new (class extends ProcessProtocol {
        override processEnded(): void {
          resolve(took);
        }
      })();
      const t0 = performance.now();
      reactor.spawnProcess(proto, "/bin/true", ["true"], { launcher });
      const took = performance.now() - t0;
    });
  await once(); // the launcher starts here
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  let total = 0;
  for (let i = 0; i < COUNT; i++) total += await once();
  loop.disable();
  if (launcher) reactor.processLauncher.close();
  return { spawnMs: total / COUNT, p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 };
}

const held = ballast(HEAP_MIB);
const rss = process.memoryUsage().rss / 2 ** 20;
console.log(`heap ${HEAP_MIB} MiB of objects, RSS ${rss.toFixed(0)} MiB, ${COUNT} spawns of /bin/true one at a time\n`);
console.log("| spawned by | spawnProcess ms (mean) | event-loop delay p99 ms | worst ms |");
console.log("|---|---:|---:|---:|");
for (const launcher of [false, true, false, true]) {
  const r = await run(launcher);
  console.log(`| ${launcher ? "the process launcher" : "this process"} | ${r.spawnMs.toFixed(2)} | ${r.p99.toFixed(1)} | ${r.max.toFixed(1)} |`);
}
if (held.length < 0) console.log(held);
