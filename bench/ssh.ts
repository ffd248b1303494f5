/**
 * SSH bulk throughput through a session channel and time to `exec true`, all in one run:
 *
 * - clients → OpenSSH's sshd: our client, `ssh2` (with its native crypto binding) and OpenSSH's
 *   `ssh`, each in a process of its own, its CPU seconds measured;
 * - OpenSSH's `ssh` → our server (SSHFactory, the Unix realm, in this process) beside `ssh` → sshd.
 *
 * Per cipher (aes128-gcm@openssh.com, chacha20-poly1305@openssh.com, aes128-ctr with
 * hmac-sha2-256-etm@openssh.com) and direction: up runs `printf S; exec cat >/dev/null` with the
 * client writing N zero bytes from the start, down runs `head -c N /dev/zero`. The data phase runs
 * from the remote command's first output byte to the end (channel closed / `ssh` exited); MB/s is
 * N / that time. (`ssh` gets the marker on stderr and sends stdout to /dev/null; see sshTransfer.) CPU is the client process's user+system seconds per GiB (the Node clients over the
 * data phase, `ssh` over its whole life through /usr/bin/time, handshake included: a few ms).
 * Key exchange curve25519-sha256 and ssh-ed25519 host keys everywhere. Median of the repetitions; the Node sides are warmed up first (WARMUP).
 *
 *     npm run build && node bench/dist/ssh.js [MiB per transfer = 256] [repetitions = 3] [ciphers,comma,separated]
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startOurServer, startSshd } from "./_servers.js";
import { median, q, run } from "./_util.js";

const MIB = Number(process.argv[2] ?? 256);
const REPS = Number(process.argv[3] ?? 3);
const N = MIB * 1024 * 1024;
/**
 * Moved once before the measured transfers by each Node client (on the same connection) and
 * through our server (per cipher and direction), so that the figures are of warm code: a Node
 * process compiles its hot paths and grows its heaps during its first hundred MiB or so.
 * `BENCH_WARMUP_MIB=0` measures cold.
 */
const WARMUP = Number(process.env.BENCH_WARMUP_MIB ?? 64) * 1024 * 1024;
const GIB = 1024 * 1024 * 1024;
const KEX = "curve25519-sha256";
const ETM = "hmac-sha2-256-etm@openssh.com";
const ALL_CIPHERS = ["aes128-gcm@openssh.com", "chacha20-poly1305@openssh.com", "aes128-ctr"];
const CIPHERS = process.argv[4] ? process.argv[4].split(",") : ALL_CIPHERS;
const HELPER = fileURLToPath(new URL("./_ssh_client.js", import.meta.url));
const USER = userInfo().username;

interface Run {
  seconds: number;
  cpu: number;
  /** ssh → twisted-ts: CPU seconds of this process (our server) over the whole transfer. */
  serverCpu?: number;
}

interface Row {
  pair: string;
  cipher: string;
  dir: "up" | "down";
  mbps: number;
  cpuPerGiB: number;
  serverCpuPerGiB?: number;
}




/** Runs the Node helper for `impl`; returns its runs. */
async function nodeClient(impl: "ours" | "ssh2", op: "up" | "down" | "true", port: number, keyPath: string, cipher: string, reps: number): Promise<Run[]> {
  const a = JSON.stringify({ impl, op, port, user: USER, keyPath, cipher, mac: ETM, bytes: N, reps, warmup: WARMUP });
  const r = await run(process.execPath, [HELPER, a]);
  if (r.code !== 0) throw new Error(`${impl} ${op} ${cipher}: exit ${r.code}\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { runs: Run[] }).runs;
}

function sshArgs(port: number, keyPath: string, cipher: string): string[] {
  return [
    "-F", "/dev/null", "-i", keyPath, "-p", String(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", `KexAlgorithms=${KEX}`,
    "-o", "HostKeyAlgorithms=ssh-ed25519", "-c", cipher, "-m", ETM, `${USER}@127.0.0.1`,
  ];
}


/**
 * One bulk transfer with OpenSSH's ssh: a shell pipeline times the data phase and /usr/bin/time
 * gives ssh's CPU. Its stdout goes to /dev/null (through a pipe to a reader, ssh spends 4x the
 * CPU and takes twice as long here); the remote command writes a marker to stderr as it starts,
 * and the marker's arrival starts the clock.
 */
async function sshTransfer(dir: string, op: "up" | "down", port: number, keyPath: string, cipher: string, bytes = N): Promise<Run> {
  const t = join(dir, "time"), s = join(dir, "start"), e = join(dir, "end");
  const remote = op === "up" ? "printf S >&2; exec cat >/dev/null" : `printf S >&2; exec head -c ${bytes} /dev/zero`;
  const ssh = `/usr/bin/time -f '%U %S' -o ${t} ssh ${sshArgs(port, keyPath, cipher).map(q).join(" ")} ${q(remote)} 2>&1 >/dev/null`;
  const source = op === "up" ? `head -c ${bytes} /dev/zero | ${ssh}` : `${ssh} </dev/null`;
  const script = `{ ${source}; } | { head -c 1 >/dev/null; date +%s.%N >${s}; cat >/dev/null; }; date +%s.%N >${e}`;
  const r = await run("/bin/sh", ["-c", script]);
  const times = readFileSync(t, "utf8");
  if (r.code !== 0 || /exited|signal/.test(times)) throw new Error(`ssh ${op} ${cipher}: ${times} ${r.stderr}`);
  const [user, sys] = times.trim().split(/\s+/).slice(-2).map(Number) as [number, number];
  const seconds = Number(readFileSync(e, "utf8")) - Number(readFileSync(s, "utf8"));
  return { seconds, cpu: user + sys };
}

async function sshTrue(port: number, keyPath: string): Promise<Run> {
  const r = await run("ssh", [...sshArgs(port, keyPath, "aes128-gcm@openssh.com"), "true"]);
  if (r.code !== 0) throw new Error(`ssh true: exit ${r.code}\n${r.stderr}`);
  return { seconds: r.seconds, cpu: 0 };
}

/** A transfer to our server (in this process), with this process's CPU seconds over it. */
async function withServerCpu(f: () => Promise<Run>): Promise<Run[]> {
  const c0 = process.cpuUsage();
  const r = await f();
  const c = process.cpuUsage(c0);
  return [{ ...r, serverCpu: (c.user + c.system) / 1e6 }];
}

function fmt(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : "n/a";
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-ssh-"));
  const keyPath = join(dir, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", keyPath]);
  const userPub = readFileSync(keyPath + ".pub", "utf8").trim();
  const sshd = await startSshd(dir, userPub);
  const ours = await startOurServer(userPub);
  const rows: Row[] = [];
  const add = (pair: string, cipher: string, d: "up" | "down", runs: Run[]): void => {
    const mbps = median(runs.map((r) => N / 1e6 / r.seconds));
    const cpuPerGiB = median(runs.map((r) => (r.cpu * GIB) / N));
    const server = runs.every((r) => r.serverCpu !== undefined) ? median(runs.map((r) => (r.serverCpu! * GIB) / N)) : undefined;
    rows.push({ pair, cipher, dir: d, mbps, cpuPerGiB, ...(server === undefined ? {} : { serverCpuPerGiB: server }) });
    const serverNote = server === undefined ? "" : `  (server ${fmt(server, 2)} CPU s/GiB)`;
    process.stderr.write(`${pair.padEnd(22)} ${cipher.padEnd(30)} ${d.padEnd(4)} ${fmt(mbps).padStart(5)} MB/s  ${fmt(cpuPerGiB, 2)} CPU s/GiB${serverNote}\n`);
  };
  // Repetitions are interleaved (every client once, then again) so that the load of the shared
  // machine drifts over all of them alike.
  const cases: Array<{ pair: string; cipher: string; d: "up" | "down"; once: () => Promise<Run[]>; runs: Run[]; failed?: string }> = [];
  for (const cipher of CIPHERS) {
    for (const d of ["up", "down"] as const) {
      cases.push({ pair: "twisted-ts → sshd", cipher, d, once: () => nodeClient("ours", d, sshd.port, keyPath, cipher, 1), runs: [] });
      cases.push({ pair: "ssh2 → sshd", cipher, d, once: () => nodeClient("ssh2", d, sshd.port, keyPath, cipher, 1), runs: [] });
      cases.push({ pair: "ssh → sshd", cipher, d, once: async () => [await sshTransfer(dir, d, sshd.port, keyPath, cipher)], runs: [] });
      cases.push({ pair: "ssh → twisted-ts", cipher, d, once: () => withServerCpu(() => sshTransfer(dir, d, ours.port, keyPath, cipher)), runs: [] });
    }
  }
  if (WARMUP > 0) {
    for (const cipher of CIPHERS) for (const d of ["up", "down"] as const) await sshTransfer(dir, d, ours.port, keyPath, cipher, WARMUP);
  }
  for (let i = 0; i < REPS; i++) {
    for (const c of cases) {
      if (c.failed !== undefined) continue;
      try {
        c.runs.push(...(await c.once()));
      } catch (e) {
        c.failed = e instanceof Error ? e.message : String(e);
        process.stderr.write(`${c.pair} ${c.cipher} ${c.d}: ${c.failed}\n`);
      }
    }
  }
  for (const c of cases) {
    if (c.failed === undefined) add(c.pair, c.cipher, c.d, c.runs);
    else rows.push({ pair: c.pair, cipher: c.cipher, dir: c.d, mbps: NaN, cpuPerGiB: NaN });
  }

  // Time to the end of `exec true` on a new connection (connect, kex, auth, session, exec, close).
  const TRUE_REPS = Math.max(5, REPS);
  const ttfb: Array<[string, number]> = [];
  const trueCase = async (name: string, f: () => Promise<Run[]>): Promise<void> => {
    try {
      ttfb.push([name, median((await f()).map((r) => r.seconds * 1000))]);
    } catch (e) {
      process.stderr.write(`${name} exec true: ${e instanceof Error ? e.message : String(e)}\n`);
      ttfb.push([name, NaN]);
    }
  };
  const sshTrues = async (port: number): Promise<Run[]> => {
    const runs: Run[] = [];
    for (let i = 0; i < TRUE_REPS; i++) runs.push(await sshTrue(port, keyPath));
    return runs;
  };
  await trueCase("twisted-ts → sshd", () => nodeClient("ours", "true", sshd.port, keyPath, "aes128-gcm@openssh.com", TRUE_REPS));
  await trueCase("ssh2 → sshd", () => nodeClient("ssh2", "true", sshd.port, keyPath, "aes128-gcm@openssh.com", TRUE_REPS));
  await trueCase("ssh → sshd", () => sshTrues(sshd.port));
  await trueCase("ssh → twisted-ts", () => sshTrues(ours.port));

  sshd.stop();
  await ours.stop();
  rmSync(dir, { recursive: true, force: true });

  const get = (pair: string, cipher: string, d: string): Row | undefined => rows.find((r) => r.pair === pair && r.cipher === cipher && r.dir === d);
  const short = (c: string): string => (c === "aes128-ctr" ? "aes128-ctr + hmac-sha2-256-etm" : c.replace("@openssh.com", ""));
  console.log(`\nSSH throughput, ${MIB} MiB per transfer, median of ${REPS}: MB/s of the data phase (client CPU s/GiB)\n`);
  console.log(`| client → server | dir | ${CIPHERS.map(short).join(" | ")} |`);
  console.log(`|---|---|${CIPHERS.map(() => "---").join("|")}|`);
  for (const pair of ["twisted-ts → sshd", "ssh2 → sshd", "ssh → sshd", "ssh → twisted-ts"]) {
    for (const d of ["up", "down"]) {
      const cells = CIPHERS.map((c) => {
        const r = get(pair, c, d);
        return r === undefined ? "n/a" : `${fmt(r.mbps)} (${fmt(r.cpuPerGiB, 2)})`;
      });
      console.log(`| ${pair} | ${d} | ${cells.join(" | ")} |`);
    }
  }
  console.log(`\nOur server's CPU s/GiB (this process, whole transfer) under ssh → twisted-ts\n`);
  console.log(`| dir | ${CIPHERS.map(short).join(" | ")} |`);
  console.log(`|---|${CIPHERS.map(() => "---").join("|")}|`);
  for (const d of ["up", "down"]) console.log(`| ${d} | ${CIPHERS.map((c) => fmt(get("ssh → twisted-ts", c, d)?.serverCpuPerGiB ?? NaN, 2)).join(" | ")} |`);
  const ratio = (a: string, b: string, d: string, c: string, what: "mbps" | "cpuPerGiB"): string => {
    const x = get(a, c, d)?.[what];
    const y = get(b, c, d)?.[what];
    return x !== undefined && y !== undefined ? fmt(x / y, 2) : "n/a";
  };
  console.log(`\nRatios (throughput; CPU/GiB in brackets, lower is better)\n`);
  console.log(`| ratio | dir | ${CIPHERS.map(short).join(" | ")} |`);
  console.log(`|---|---|${CIPHERS.map(() => "---").join("|")}|`);
  const pairs: Array<[string, string, string, boolean]> = [
    ["twisted-ts / ssh2 (client → sshd)", "twisted-ts → sshd", "ssh2 → sshd", true],
    ["twisted-ts / ssh (client → sshd)", "twisted-ts → sshd", "ssh → sshd", true],
    ["twisted-ts / sshd (server, ssh client)", "ssh → twisted-ts", "ssh → sshd", false],
  ];
  for (const [label, a, b, cpu] of pairs) {
    for (const d of ["up", "down"]) {
      const cells = CIPHERS.map((c) => ratio(a, b, d, c, "mbps") + (cpu ? ` (${ratio(a, b, d, c, "cpuPerGiB")})` : ""));
      console.log(`| ${label} | ${d} | ${cells.join(" | ")} |`);
    }
  }
  console.log(`\nTime to the end of \`exec true\` on a new connection (ms, median of ${TRUE_REPS}; ssh: the whole process)\n`);
  console.log("| client → server | ms |");
  console.log("|---|---|");
  for (const [name, ms] of ttfb) console.log(`| ${name} | ${fmt(ms)} |`);
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
