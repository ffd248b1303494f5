/**
 * Many clients against one server, ours and OpenSSH's sshd side by side in one run, on loopback.
 * The load comes from K client processes (bench/_load_client.ts, our client), each running many
 * connections; our server runs in processes of its own: bench/_our_server.ts for the direct case
 * (it reports memory and event-loop delay), the `conchd` command behind HAProxy.
 *
 * (a) N concurrent sessions, each a new connection: handshake (curve25519-sha256), publickey
 *     login, `exec true`, close. Sessions per second over the whole span, p50/p99 latency,
 *     failures (the target is 0), and our server's worst event-loop delay meanwhile.
 * (b) M idle authenticated connections held on one server: memory per connection, from RSS and
 *     heap deltas (ours, one process, after a GC) and from the PSS and RSS of every sshd process
 *     (sshd forks per connection, so its memory is counted across processes).
 * (c) the same against sshd (MaxStartups and MaxSessions raised so it never drops).
 * (d) `conchd` (packages/conch/dist/scripts/conchd.js, the server command as users run it, with a
 *     temp config) behind HAProxy (send-proxy-v2, a `haproxy:` endpoint) with `--workers 1` and
 *     `--workers 2` (node:cluster, one shared port), load (a) again.
 * (e) [table (c)] logins per second (handshake + publickey, no command) through HAProxy to `conchd` with 1 and
 *     2 workers and an RSA-8192 host key (`--rsa-bits`), the server's work at its largest (see workersLoad).
 *
 *     npx tsc -b && node bench/dist/load.js [--quick] [--sizes=50,100,500] [--idle=10000]
 *         [--sshd-idle=1000] [--clients=4] [--no-sshd] [--no-haproxy] [--no-launcher] [--workers-only] [--rsa-bits=8192]
 *
 * Defaults are the full sizes; `--quick` is a smoke run (N = 10, 20; 200 idle). sshd's idle count
 * is capped separately (`--sshd-idle`): each of its connections is a process of its own. Each
 * server first serves a few unreported sessions (warm-up). `--no-launcher` makes our server spawn
 * sessions' commands itself instead of through its process launcher (the Unix realm's
 * `processLauncher: false`), to compare the event-loop delay.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort, waitForPort } from "./_net.js";
import { startSshd } from "./_servers.js";
import type { ServerStats } from "./_our_server.js";

const flags = new Map(process.argv.slice(2).map((a) => a.replace(/^--/, "").split("=") as [string, string | undefined]));
const QUICK = flags.has("quick");
const num = (name: string, full: number, quick: number): number => Number(flags.get(name) ?? (QUICK ? quick : full));
const SIZES = (flags.get("sizes") ?? (QUICK ? "10,20" : "50,100,500")).split(",").map(Number);
/** The hard limit on open files: children raise their soft limit to it (`ulimit -n`). */
const FD_HARD = Number(/^Max open files\s+\d+\s+(\d+)/m.exec(readFileSync("/proc/self/limits", "utf8"))?.[1] ?? 1024);
const IDLE_WANTED = num("idle", 10_000, 200);
/** Our server holds one descriptor per connection, plus a few hundred of its own. */
const IDLE = Math.min(IDLE_WANTED, FD_HARD - 500);
const SSHD_IDLE = Math.min(num("sshd-idle", 1000, 100), IDLE);
const CLIENTS = num("clients", 4, 2);
/** Table (c)'s host key size (`--rsa-bits`): the larger, the more of each handshake is the server's. */
const RSA_BITS = num("rsa-bits", 8192, 4096);
const KEX = "curve25519-sha256";
const USER = userInfo().username;
const DIST = new URL(".", import.meta.url).pathname;
const CONCHD = new URL("../../packages/conch/dist/scripts/conchd.js", import.meta.url).pathname;

interface ExecResult {
  start: number;
  end: number;
  latencies: number[];
  failures: number;
  firstError?: string;
}

/** Splits `n` over the client processes. */
function shares(n: number): number[] {
  const k = Math.min(CLIENTS, n);
  return Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0));
}

/** Spawns node with `argv` after raising the soft open-files limit to the hard one. */
function spawnNode(argv: string[], stdio: Array<"pipe" | "ignore" | "inherit" | "ipc">): ChildProcess {
  return spawn("/bin/sh", ["-c", 'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$0" "$@"', process.execPath, ...argv], { stdio });
}

function client(op: "exec" | "login" | "idle", port: number, keyPath: string, count: number): ChildProcess {
  const a = JSON.stringify({ op, port, user: USER, keyPath, count, kex: KEX });
  return spawnNode([join(DIST, "_load_client.js"), a], ["pipe", "pipe", "inherit"]);
}

/** The first line the child prints, parsed. */
function firstLine<T>(c: ChildProcess): Promise<T> {
  return new Promise((resolve, reject) => {
    let buf = "";
    c.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      const nl = buf.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(buf.slice(0, nl)) as T);
    });
    c.once("exit", (code) => reject(new Error(`client exited ${code} before reporting`)));
  });
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

interface ExecRow {
  perSecond: number;
  p50: number;
  p99: number;
  failures: number;
  firstError: string | undefined;
}

async function execLoad(port: number, keyPath: string, n: number, op: "exec" | "login" = "exec"): Promise<ExecRow> {
  const rs = await Promise.all(shares(n).map((k) => firstLine<ExecResult>(client(op, port, keyPath, k))));
  const lat = rs.flatMap((r) => r.latencies);
  const span = (Math.max(...rs.map((r) => r.end)) - Math.min(...rs.map((r) => r.start))) / 1000;
  const failures = rs.reduce((a, r) => a + r.failures, 0);
  return { perSecond: lat.length / span, p50: pct(lat, 50), p99: pct(lat, 99), failures, firstError: rs.find((r) => r.firstError)?.firstError };
}

/** Our server in a process of its own; `stats()` asks it over IPC. */
class OurServerProcess {
  private readonly child: ChildProcess;
  private readonly ready: Promise<void>;
  private waiting: ((s: ServerStats) => void) | undefined;
  constructor(endpoint: string, userPub: string, hostKeyPath: string) {
    const a = JSON.stringify({ endpoint, userPub, hostKeyPath, launcher: !flags.has("no-launcher") });
    this.child = spawnNode(["--expose-gc", join(DIST, "_our_server.js"), a], ["ignore", "inherit", "inherit", "ipc"]);
    this.ready = new Promise((resolve, reject) => {
      this.child.on("message", (m: { listening?: boolean; stats?: ServerStats }) => {
        if (m.listening === true) resolve();
        if (m.stats !== undefined) this.waiting?.(m.stats);
      });
      this.child.once("exit", (code) => reject(new Error(`our server exited ${code}`)));
    });
  }
  whenListening(): Promise<void> {
    return this.ready;
  }
  stats(): Promise<ServerStats> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.child.send({ cmd: "stats" });
    });
  }
  stop(): void {
    this.child.disconnect();
  }
}

/**
 * The `conchd` config of the HAProxy cases: the bench's host key and user key, as the direct
 * server has them; MaxStartups raised as sshd's in the same run and loopback never penalised (the
 * load comes from one address on purpose); errors only in the log.
 */
function conchdConfig(dir: string, hostKey = "ourhost"): string {
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "id_ed25519.pub")));
  return [
    `HostKey ${join(dir, hostKey)}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    // The keys are in a fresh 0700 folder under /tmp, which StrictModes would refuse.
    "StrictModes no",
    "PasswordAuthentication no",
    "SetEnv SHLVL=1",
    "MaxStartups 100000:30:100000",
    "PerSourcePenaltyExemptList 127.0.0.0/8,::1",
    "LogLevel ERROR",
    "ShutdownGraceTime 0",
    "",
  ].join("\n");
}

/** `conchd -f config -p endpoint --workers N`; resolves once its port takes connections. */
async function startConchd(config: string, endpoint: string, port: number, workers: number): Promise<() => void> {
  const child = spawnNode([CONCHD, "-f", config, "-p", endpoint, "--workers", String(workers)], ["ignore", "inherit", "inherit"]);
  const exited = new Promise<never>((_, reject) => child.once("exit", (code) => reject(new Error(`conchd exited ${code}`))));
  exited.catch(() => undefined);
  await Promise.race([waitForPort(port), exited]);
  return () => child.kill("SIGTERM");
}

/** PSS and RSS (bytes) summed over `pid` and all its descendants. */
function treeMemory(pid: number): { pss: number; rss: number; procs: number } {
  const children = new Map<number, number[]>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(name)]);
    } catch {
      /* gone meanwhile */
    }
  }
  let pss = 0;
  let rss = 0;
  let procs = 0;
  const stack = [pid];
  while (stack.length > 0) {
    const p = stack.pop()!;
    stack.push(...(children.get(p) ?? []));
    try {
      const text = readFileSync(`/proc/${p}/smaps_rollup`, "utf8");
      pss += Number(/^Pss:\s+(\d+)/m.exec(text)?.[1] ?? 0) * 1024;
      rss += Number(/^Rss:\s+(\d+)/m.exec(text)?.[1] ?? 0) * 1024;
      procs += 1;
    } catch {
      /* gone meanwhile */
    }
  }
  return { pss, rss, procs };
}

/** Opens `count` idle logged-in connections; resolves with how many came up and a closer. */
async function idleLoad(port: number, keyPath: string, count: number): Promise<{ up: number; failures: number; firstError: string | undefined; close: () => Promise<void> }> {
  const cs = shares(count).map((k) => client("idle", port, keyPath, k));
  const rs = await Promise.all(cs.map((c) => firstLine<{ up: number; failures: number; firstError?: string }>(c)));
  const close = (): Promise<void> =>
    Promise.all(cs.map((c) => new Promise<void>((r) => (c.once("exit", () => r()), c.stdin!.end())))).then(() => undefined);
  return { up: rs.reduce((a, r) => a + r.up, 0), failures: rs.reduce((a, r) => a + r.failures, 0), firstError: rs.find((r) => r.firstError)?.firstError, close };
}

const settle = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const kib = (bytes: number): string => (bytes / 1024).toFixed(1);
const fmt = (x: number, d = 0): string => (Number.isFinite(x) ? x.toFixed(d) : "—");

function haproxyConfig(frontPort: number, backendPort: number): string {
  return [
    "global",
    "  maxconn 9000",
    "defaults",
    "  mode tcp",
    "  timeout connect 10s",
    "  timeout client 300s",
    "  timeout server 300s",
    "frontend ssh",
    `  bind 127.0.0.1:${frontPort}`,
    "  default_backend ours",
    "backend ours",
    `  server s1 127.0.0.1:${backendPort} send-proxy-v2 maxconn 9000`,
    "",
  ].join("\n");
}

/** HAProxy in front of `conchd -f config --workers N` on fresh ports; fires with HAProxy's port. */
async function conchdBehindHAProxy(dir: string, config: string, workers: number, stops: Array<() => void>): Promise<number> {
  const back = await freePort();
  const front = await freePort();
  stops.push(await startConchd(config, `haproxy:tcp:${back}:interface=127.0.0.1:backlog=4096`, back, workers));
  const cfg = join(dir, `haproxy-${workers}-${back}.cfg`);
  writeFileSync(cfg, haproxyConfig(front, back));
  const h = spawn("haproxy", ["-f", cfg, "-db"], { stdio: ["ignore", "ignore", "inherit"] });
  stops.push(() => h.kill());
  await waitForPort(front);
  return front;
}

/**
 * (c) Logins per second where the server's share of the work is largest: an RSA-8192 host key
 * (a load shape, not a recommendation), so each handshake costs the server an rsa-sha2-512
 * signature (tens of milliseconds) and the client only its verification. With `exec true` or an ed25519 host key, the clients on the same 2 cores cost
 * as much as the server, and a second worker has no free core to use.
 */
async function workersLoad(dir: string, keyPath: string): Promise<void> {
  execFileSync("ssh-keygen", ["-q", "-t", "rsa", "-b", String(RSA_BITS), "-N", "", "-f", join(dir, "ourhost_rsa")]);
  const config = join(dir, "conchd-rsa.conf");
  writeFileSync(config, conchdConfig(dir, "ourhost_rsa"));
  const n = Math.max(...SIZES);
  console.log(`\n## (c) logins per second by workers: HAProxy → conchd, RSA-${RSA_BITS} host key, handshake + publickey, N = ${n}\n`);
  console.log("| workers | logins/s | p50 ms | p99 ms | failures | vs 1 worker |");
  console.log("|---:|---:|---:|---:|---:|---:|");
  let one: number | undefined;
  for (const workers of [1, 2]) {
    const stopsHere: Array<() => void> = [];
    try {
      const port = await conchdBehindHAProxy(dir, config, workers, stopsHere);
      await execLoad(port, keyPath, Math.min(20, n), "login");
      const row = await execLoad(port, keyPath, n, "login");
      one ??= row.perSecond;
      const err = row.firstError === undefined ? "" : ` (${row.firstError})`;
      console.log(`| ${workers} | ${fmt(row.perSecond, 1)} | ${fmt(row.p50 * 1000)} | ${fmt(row.p99 * 1000)} | ${row.failures}${err} | ${(row.perSecond / one).toFixed(2)}x |`);
    } finally {
      for (const stop of stopsHere.reverse()) stop();
      await settle(500);
    }
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "twisted-ts-load-"));
  const stops: Array<() => void> = [];
  try {
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "id_ed25519")]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "ourhost")]);
    const keyPath = join(dir, "id_ed25519");
    const userPub = readFileSync(keyPath + ".pub", "utf8").trim();
    const scale = QUICK ? "--quick" : "custom";
    if (IDLE < IDLE_WANTED) console.log(`# idle connections capped at ${IDLE} (of ${IDLE_WANTED}) by the open-files limit ${FD_HARD}`);
    console.log(`# load: sizes ${SIZES.join(", ")}; idle ${IDLE} (sshd ${SSHD_IDLE}); ${CLIENTS} client processes; ${scale === "custom" ? "" : "quick; "}Node ${process.version}; load average ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);

    if (flags.has("workers-only")) {
      await workersLoad(dir, keyPath);
      return;
    }
    const targets: Array<{ name: string; port: number; ours?: OurServerProcess; sshdPid?: number }> = [];
    const oursPort = await freePort();
    const ours = new OurServerProcess(`tcp:${oursPort}:interface=127.0.0.1:backlog=4096`, userPub, join(dir, "ourhost"));
    stops.push(() => ours.stop());
    await ours.whenListening();
    targets.push({ name: "twisted-ts", port: oursPort, ours });
    if (!flags.has("no-sshd")) {
      const sshd = await startSshd(dir, userPub, ["MaxStartups 100000:30:100000", "MaxSessions 1000"]);
      stops.push(sshd.stop);
      targets.push({ name: "sshd", port: sshd.port, sshdPid: sshd.pid });
    }
    if (!flags.has("no-haproxy")) {
      const config = join(dir, "conchd.conf");
      writeFileSync(config, conchdConfig(dir));
      for (const workers of [1, 2]) {
        const front = await conchdBehindHAProxy(dir, config, workers, stops);
        targets.push({ name: `HAProxy → conchd --workers ${workers}`, port: front });
      }
    }

    // A few sessions first on each server, unreported: Node compiles its hot paths on the first ones.
    for (const t of targets) await execLoad(t.port, keyPath, Math.min(10, SIZES[0] ?? 10));
    console.log("\n## (a) concurrent sessions: handshake + publickey + exec true\n");
    console.log("| N | server | sessions/s | p50 ms | p99 ms | failures | our event-loop delay p99 / worst ms | vs sshd |");
    console.log("|---:|---|---:|---:|---:|---:|---:|---:|");
    for (const n of SIZES) {
      const rows: Array<{ name: string; row: ExecRow; loop: ServerStats | undefined }> = [];
      for (const t of targets) {
        await t.ours?.stats();
        const row = await execLoad(t.port, keyPath, n);
        const loop = t.ours === undefined ? undefined : await t.ours.stats();
        rows.push({ name: t.name, row, loop });
        await settle(500);
      }
      const sshd = rows.find((r) => r.name === "sshd")?.row.perSecond;
      for (const { name, row, loop } of rows) {
        const ratio = sshd === undefined || name === "sshd" ? "" : `${(row.perSecond / sshd).toFixed(2)}x`;
        const err = row.firstError === undefined ? "" : ` (${row.firstError})`;
        console.log(`| ${n} | ${name} | ${fmt(row.perSecond, 1)} | ${fmt(row.p50 * 1000)} | ${fmt(row.p99 * 1000)} | ${row.failures}${err} | ${loop === undefined ? "" : `${fmt(loop.loopP99)} / ${fmt(loop.loopMax)}`} | ${ratio} |`);
      }
    }

    console.log("\n## (b) idle authenticated connections: memory per connection\n");
    console.log("| server | connections up | failures | RSS KiB/conn | heap KiB/conn | PSS KiB/conn | processes |");
    console.log("|---|---:|---:|---:|---:|---:|---:|");
    const ourTarget = targets[0]!;
    const before = await ours.stats();
    const idle = await idleLoad(ourTarget.port, keyPath, IDLE);
    await settle(1000);
    const after = await ours.stats();
    const err = idle.firstError === undefined ? "" : ` (${idle.firstError})`;
    console.log(`| twisted-ts (1 process) | ${idle.up} | ${idle.failures}${err} | ${kib((after.rss - before.rss) / idle.up)} | ${kib((after.heap - before.heap) / idle.up)} | | 1 |`);
    await idle.close();
    const sshdTarget = targets.find((t) => t.sshdPid !== undefined);
    if (sshdTarget !== undefined) {
      const m0 = treeMemory(sshdTarget.sshdPid!);
      const s = await idleLoad(sshdTarget.port, keyPath, SSHD_IDLE);
      await settle(1000);
      const m1 = treeMemory(sshdTarget.sshdPid!);
      const e = s.firstError === undefined ? "" : ` (${s.firstError})`;
      console.log(`| sshd (a process tree) | ${s.up} | ${s.failures}${e} | ${kib((m1.rss - m0.rss) / s.up)} | | ${kib((m1.pss - m0.pss) / s.up)} | ${m1.procs} |`);
      await s.close();
    }
    if (!flags.has("no-haproxy")) await workersLoad(dir, keyPath);
  } finally {
    for (const stop of stops.reverse()) stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
process.exit(0);
