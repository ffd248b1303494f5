/**
 * SFTP throughput, all in one run, every file checked by SHA-256 after it moved:
 *
 * - clients → OpenSSH's sshd (its sftp-server): our `FileTransferClient.get`/`put`, `ssh2`'s
 *   `fastGet`/`fastPut` (each in a process of its own: the first transfer cold, the second on the
 *   same connection warm) and OpenSSH's `sftp -b` (a fresh process each time);
 * - OpenSSH's `sftp` → our server (SSHFactory with the Unix realm, in this process): the realm's
 *   default `sftp` subsystem (our sftp-server bin run as the user, as sshd runs its sftp-server)
 *   and the in-process `filetransfer.sftpSubsystem()`, beside `sftp` → sshd;
 * - `sftp -D`: OpenSSH's `sftp` driving a server over a pipe, no SSH at all — our sftp-server bin
 *   against OpenSSH's, which isolates the SFTP server's own cost.
 *
 * aes128-gcm@openssh.com, curve25519-sha256 and ssh-ed25519 everywhere. MB/s is the file size
 * over the transfer's time: for the Node clients from the open SFTP session to the end, for `sftp`
 * its whole process (connection and handshake included: about 0.1 s). CPU is the client's user +
 * system seconds per GiB over the same span; server CPU is this process's (in-process server) or
 * the server process's through /usr/bin/time (`sftp -D`). Median of the repetitions, interleaved.
 *
 *     npm run build && node bench/dist/sftp.js [MiB = 1024] [repetitions = 3] [only]
 *
 * `only` keeps the cases whose label contains it (`"→ sshd"`: the clients through sshd alone).
 */
import { execFileSync } from "node:child_process";
import { createHash, randomFillSync } from "node:crypto";
import { closeSync, createReadStream, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { filetransfer } from "@twisted-ts/conch/ssh";
import { startOurServer, startSshd } from "./_servers.js";
import { median, q, run } from "./_util.js";

const MIB = Number(process.argv[2] ?? 1024);
const REPS = Number(process.argv[3] ?? 3);
const ONLY = process.argv[4];
const N = MIB * 1024 * 1024;
const GIB = 1024 * 1024 * 1024;
const CIPHER = "aes128-gcm@openssh.com";
const HELPER = fileURLToPath(new URL("./_ssh_client.js", import.meta.url));
const OUR_SFTP_SERVER = `${process.execPath} ${filetransfer.SFTP_SERVER_SCRIPT}`;
const OPENSSH_SFTP_SERVER = "/usr/lib/openssh/sftp-server";
const USER = userInfo().username;

interface Run {
  seconds: number;
  cpu: number;
  serverCpu?: number;
}



function fmt(x: number | undefined, digits = 0): string {
  return x !== undefined && Number.isFinite(x) ? x.toFixed(digits) : "n/a";
}


function sha256(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path, { highWaterMark: 1 << 20 })
      .on("data", (d) => h.update(d))
      .once("end", () => resolve(h.digest("hex")))
      .once("error", reject);
  });
}

/** `bytes` of random data at `path` (random so that nothing on the way can compress it). */
function makeFile(path: string, bytes: number): void {
  const fd = openSync(path, "w");
  const chunk = Buffer.alloc(1 << 20);
  for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, randomFillSync(chunk), 0, Math.min(chunk.length, bytes - done));
  closeSync(fd);
}

function readTimes(path: string): number[] {
  const t = readFileSync(path, "utf8").trim();
  if (/exited|signal/.test(t)) throw new Error(t);
  return t.split(/\s+/).slice(-3).map(Number);
}

/**
 * One `sftp -b` transfer, timed by /usr/bin/time (wall, user, system). `target` is either
 * ["-D", server command] or the ssh destination options; a server command is itself wrapped in
 * /usr/bin/time so that its CPU is known.
 */
async function sftpBatch(dir: string, op: "get" | "put", from: string, to: string, target: string[], serverTimed: boolean): Promise<Run> {
  const batch = join(dir, "batch");
  writeFileSync(batch, `${op} ${from} ${to}\n`);
  const t = join(dir, "time.client"), ts = join(dir, "time.server");
  const argv = [...target];
  if (serverTimed) argv[1] = `/usr/bin/time -f '%e %U %S' -o ${q(ts)} ${argv[1]!}`;
  const r = await run("/usr/bin/time", ["-f", "%e %U %S", "-o", t, "sftp", "-q", "-b", batch, ...argv]);
  if (r.code !== 0) throw new Error(`sftp ${op}: exit ${r.code}\n${r.stderr}`);
  const [wall, user, sys] = readTimes(t) as [number, number, number];
  if (!serverTimed) return { seconds: wall, cpu: user + sys };
  const [, su, ss] = readTimes(ts) as [number, number, number];
  // /usr/bin/time counts sftp's children: the server's CPU is not the client's.
  return { seconds: wall, cpu: user + sys - su - ss, serverCpu: su + ss };
}

function sshTarget(port: number, keyPath: string): string[] {
  return [
    "-F", "/dev/null", "-i", keyPath, "-P", String(port), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "KexAlgorithms=curve25519-sha256",
    "-o", "HostKeyAlgorithms=ssh-ed25519", "-c", CIPHER, `${USER}@127.0.0.1`,
  ];
}

/** Our client or ssh2's in a process of its own: [cold, warm]. */
async function nodeClient(impl: "ours" | "ssh2", op: "get" | "put", port: number, keyPath: string, remote: string, local: string): Promise<Run[]> {
  const a = JSON.stringify({ impl, op, port, user: USER, keyPath, cipher: CIPHER, mac: "hmac-sha2-256-etm@openssh.com", bytes: N, reps: 1, remote, local });
  const r = await run(process.execPath, [HELPER, a]);
  if (r.code !== 0) throw new Error(`${impl} ${op}: exit ${r.code}\n${r.stderr}`);
  return (JSON.parse(r.stdout) as { runs: Run[] }).runs;
}

/** The in-process server's transfer, with this process's CPU over it. */
async function withServerCpu(f: () => Promise<Run>): Promise<Run> {
  const c0 = process.cpuUsage();
  const r = await f();
  const c = process.cpuUsage(c0);
  return { ...r, serverCpu: (c.user + c.system) / 1e6 };
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-sftp-"));
  const keyPath = join(dir, "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bench", "-f", keyPath]);
  const userPub = readFileSync(keyPath + ".pub", "utf8").trim();
  const src = join(dir, "src.bin");
  const dst = join(dir, "dst.bin");
  makeFile(src, N);
  const digest = await sha256(src);
  const sshd = await startSshd(dir, userPub);
  const oursBin = await startOurServer(userPub, "bin");
  const oursInProcess = await startOurServer(userPub, "in-process");

  // Each case moves src → dst one way and returns its runs, labelled (the Node clients: cold and warm).
  type Case = { label: string; op: "get" | "put"; once: () => Promise<Array<[string, Run]>> };
  const cases: Case[] = [];
  for (const op of ["get", "put"] as const) {
    // get reads the "remote" src into the "local" dst; put writes the local src to the remote dst.
    const [remote, local] = op === "get" ? [src, dst] : [dst, src];
    const [from, to] = [src, dst];
    for (const impl of ["ours", "ssh2"] as const) {
      const name = impl === "ours" ? "twisted-ts → sshd" : "ssh2 → sshd";
      cases.push({ label: name, op, once: async () => {
        const [cold, warm] = await nodeClient(impl, op, sshd.port, keyPath, remote, local);
        return [[`${name} (cold)`, cold!], [`${name} (warm)`, warm!]];
      } });
    }
    const sftpTo = (name: string, port: number, inProcess: boolean): Case => ({ label: name, op, once: async () => {
      const t = (): Promise<Run> => sftpBatch(dir, op, from, to, sshTarget(port, keyPath), false);
      return [[name, inProcess ? await withServerCpu(t) : await t()]];
    } });
    cases.push(sftpTo("sftp → sshd", sshd.port, false));
    cases.push(sftpTo("sftp → twisted-ts (bin)", oursBin.port, false));
    cases.push(sftpTo("sftp → twisted-ts (in-process)", oursInProcess.port, true));
    for (const [name, server] of [["sftp -D OpenSSH sftp-server", OPENSSH_SFTP_SERVER], ["sftp -D twisted-ts sftp-server", OUR_SFTP_SERVER]] as const) {
      cases.push({ label: name, op, once: async () => [[name, await sftpBatch(dir, op, from, to, ["-D", server], true)]] });
    }
  }

  if (ONLY !== undefined) cases.splice(0, cases.length, ...cases.filter((c) => c.label.includes(ONLY)));
  const runs = new Map<string, Run[]>();
  const failed = new Map<string, string>();
  for (let i = 0; i < REPS; i++) {
    for (const c of cases) {
      const key = `${c.op} ${c.label}`;
      if (failed.has(key)) continue;
      try {
        rmSync(dst, { force: true });
        const got = await c.once();
        const d = await sha256(dst);
        if (d !== digest) throw new Error(`SHA-256 of the copy ${d} is not the original's ${digest}`);
        for (const [label, r] of got) {
          const k = `${c.op} ${label}`;
          runs.set(k, [...(runs.get(k) ?? []), r]);
          process.stderr.write(`${k.padEnd(40)} ${fmt(N / 1e6 / r.seconds).padStart(5)} MB/s  ${fmt((r.cpu * GIB) / N, 2)} CPU s/GiB${r.serverCpu === undefined ? "" : `  server ${fmt((r.serverCpu * GIB) / N, 2)}`}\n`);
        }
      } catch (e) {
        failed.set(key, e instanceof Error ? e.message : String(e));
        process.stderr.write(`${key}: ${failed.get(key)}\n`);
      }
    }
  }
  sshd.stop();
  await oursBin.stop();
  await oursInProcess.stop();
  rmSync(dir, { recursive: true, force: true });

  const stat = (k: string): { mbps: number; cpu: number; server: number | undefined } | undefined => {
    const rs = runs.get(k);
    if (rs === undefined || rs.length === 0) return undefined;
    const server = rs.every((r) => r.serverCpu !== undefined) ? median(rs.map((r) => (r.serverCpu! * GIB) / N)) : undefined;
    return { mbps: median(rs.map((r) => N / 1e6 / r.seconds)), cpu: median(rs.map((r) => (r.cpu * GIB) / N)), server };
  };
  const labels = [...new Set([...runs.keys()].map((k) => k.slice(4)))];
  console.log(`\nSFTP, ${MIB} MiB file, median of ${REPS}, SHA-256 checked: MB/s (client CPU s/GiB; server CPU s/GiB where measured)\n`);
  console.log("| client → server | get | put |");
  console.log("|---|---|---|");
  const cell = (k: string): string => {
    const s = stat(k);
    if (s === undefined) return failed.has(k) ? "failed" : "n/a";
    return `${fmt(s.mbps)} (${fmt(s.cpu, 2)}${s.server === undefined ? "" : `; server ${fmt(s.server, 2)}`})`;
  };
  for (const l of labels) console.log(`| ${l} | ${cell(`get ${l}`)} | ${cell(`put ${l}`)} |`);
  const ratio = (a: string, b: string, op: string): string => {
    const x = stat(`${op} ${a}`), y = stat(`${op} ${b}`);
    return x && y ? `${fmt(x.mbps / y.mbps, 2)} (CPU ${fmt(x.cpu / y.cpu, 2)})` : "n/a";
  };
  const serverRatio = (a: string, b: string, op: string): string => {
    const x = stat(`${op} ${a}`), y = stat(`${op} ${b}`);
    if (!x || !y) return "n/a";
    const cpu = x.server !== undefined && y.server !== undefined ? ` (server CPU ${fmt(x.server / y.server, 2)})` : "";
    return `${fmt(x.mbps / y.mbps, 2)}${cpu}`;
  };
  console.log(`\nRatios of throughput (of client CPU per GiB, lower is better)\n`);
  console.log("| ratio | get | put |");
  console.log("|---|---|---|");
  const pairs: Array<[string, string, string]> = [
    ["twisted-ts / ssh2, warm", "twisted-ts → sshd (warm)", "ssh2 → sshd (warm)"],
    ["twisted-ts / ssh2, cold", "twisted-ts → sshd (cold)", "ssh2 → sshd (cold)"],
    ["twisted-ts (warm) / sftp", "twisted-ts → sshd (warm)", "sftp → sshd"],
    ["twisted-ts (cold) / sftp", "twisted-ts → sshd (cold)", "sftp → sshd"],
  ];
  for (const [l, a, b] of pairs) console.log(`| ${l} | ${ratio(a, b, "get")} | ${ratio(a, b, "put")} |`);
  const serverPairs: Array<[string, string, string]> = [
    ["server: twisted-ts bin / sshd (sftp client)", "sftp → twisted-ts (bin)", "sftp → sshd"],
    ["server: twisted-ts in-process / sshd (sftp client)", "sftp → twisted-ts (in-process)", "sftp → sshd"],
    ["sftp-server alone: twisted-ts / OpenSSH (sftp -D)", "sftp -D twisted-ts sftp-server", "sftp -D OpenSSH sftp-server"],
  ];
  for (const [l, a, b] of serverPairs) console.log(`| ${l} | ${serverRatio(a, b, "get")} | ${serverRatio(a, b, "put")} |`);
  process.exit(failed.size === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
