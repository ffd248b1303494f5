/**
 * Cold key exchange: what a fresh process (a CLI run such as `conch` or `cftp`) pays the first
 * time, before V8 has optimized anything. Each figure is the median over fresh processes, with
 * the minimum beside it, of CPU time (user + system) from process.cpuUsage.
 *
 * 1. sntrup761 primitives: importing the transport's crypto, then the first key generation, the
 *    first encapsulation, the first decapsulation and a second key generation, in that order.
 * 2. One handshake by our client (connect to keys in use: curve25519 / the hybrids, ssh-ed25519,
 *    aes128-gcm@openssh.com) from a fresh process, against sshd and against our server running
 *    warm in this process: the client's CPU and the wall time of the handshake, import excluded,
 *    and the wall time until the server's KEXINIT arrives (the wait that a key generation started
 *    speculatively, before the negotiation, could overlap).
 *
 *     npx tsc -b && node bench/dist/cold_kex.js [processes] [kex ...]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { median } from "./_util.js";

const SELF = fileURLToPath(import.meta.url);
const KEX_ALL = ["curve25519-sha256", "sntrup761x25519-sha512@openssh.com", "mlkem768x25519-sha256"];

function cpuMs(since?: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
}

// ---- children (one measurement each, printed as one JSON line) --------------------------------

async function childPrimitives(): Promise<void> {
  const c0 = process.cpuUsage();
  const root = import.meta.resolve("@twisted-ts/conch/package.json");
  type Crypto = typeof import("../packages/conch/dist/ssh/_transport/index.js");
  const T = (await import(new URL("dist/ssh/_transport/index.js", root).href)) as Crypto;
  const out: Record<string, number> = { import: cpuMs(c0) };
  const time = <R>(name: string, fn: () => R): R => {
    const c = process.cpuUsage();
    const r = fn();
    out[name] = cpuMs(c);
    return r;
  };
  const { publicKey, secretKey } = time("keygen", () => T.sntrup761KeyPair());
  const { cipherText } = time("encap", () => T.sntrup761Encapsulate(publicKey));
  time("decap", () => T.sntrup761Decapsulate(cipherText, secretKey));
  time("keygen2", () => T.sntrup761KeyPair());
  console.log(JSON.stringify(out));
}

async function childHandshake(port: number, kex: string): Promise<void> {
  const c0 = process.cpuUsage();
  // The shared handshake client imports the transport: its import is what is timed here.
  const { handshakeOnce } = await import("./_handshake.js");
  const importMs = cpuMs(c0);
  const c1 = process.cpuUsage();
  const t1 = process.hrtime.bigint();
  let kexinit = 0;
  await handshakeOnce(port, { kex, onKexinit: () => (kexinit = Number(process.hrtime.bigint() - t1) / 1e6) });
  const out = { import: importMs, cpu: cpuMs(c1), wall: Number(process.hrtime.bigint() - t1) / 1e6, kexinit };
  console.log(JSON.stringify(out));
  process.exit(0);
}

// ---- the parent -------------------------------------------------------------------------------

/** Runs this file as a child with `args`; its one JSON line. */
function child(args: string[]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [SELF, "--child", ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let s = "";
    p.stdout.on("data", (d: Buffer) => (s += d.toString()));
    p.once("error", reject);
    p.once("close", (code) => (code === 0 ? resolve(JSON.parse(s) as Record<string, number>) : reject(new Error(`child ${args.join(" ")} exited ${code}`))));
  });
}

/** "median (min)" of one field over the runs. */
function cell(runs: Array<Record<string, number>>, field: string): string {
  const xs = runs.map((r) => r[field]!);
  return `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)})`;
}

async function main(): Promise<void> {
  const n = Number(process.argv[2] ?? 10);
  const only = process.argv.slice(3);
  const kexes = only.length > 0 ? only : KEX_ALL;

  const prims: Array<Record<string, number>> = [];
  for (let i = 0; i < n; i++) prims.push(await child(["prims"]));
  console.log(`\nsntrup761 in a fresh process, CPU ms, median (min) of ${n} processes\n`);
  console.log("| import | 1st keygen | 1st encap | 1st decap | 2nd keygen |");
  console.log("|---:|---:|---:|---:|---:|");
  console.log(`| ${["import", "keygen", "encap", "decap", "keygen2"].map((f) => cell(prims, f)).join(" | ")} |`);

  const { reactor } = await import("@twisted-ts/internet");
  const { factory, keys, service } = await import("@twisted-ts/conch/ssh");
  const { startSshd } = await import("./_servers.js");
  const f = new factory.SSHFactory();
  f.privateKeys = { "ssh-ed25519": keys.Key.generate("ed25519") };
  f.services = { "ssh-userauth": service.SSHService };
  // Handshakes that end before authentication: keep loopback out of PerSourcePenalties' noauth.
  f.perSourcePenaltyExemptList = ["127.0.0.0/8", "::1"];
  const listening = reactor.listenTCP(0, f, 50, "127.0.0.1");
  await listening.whenListening();
  const ourPort = (listening.getHost() as { port: number }).port;
  const dir = mkdtempSync(join(tmpdir(), "bench-cold-"));
  const sshd = await startSshd(dir, keys.Key.generate("ed25519").public().toString("openssh")).catch(() => undefined);
  const sshdKex = ["curve25519-sha256", "sntrup761x25519-sha512@openssh.com"];

  // Our server warms up first, so that only the client is cold.
  for (const kex of kexes) for (let i = 0; i < 3; i++) await child(["handshake", String(ourPort), kex]);
  console.log(`\nOne handshake by our client in a fresh process (import excluded), median (min) of ${n} processes\n`);
  console.log("| key exchange | server | client CPU ms | wall ms | wall ms to the server's KEXINIT |");
  console.log("|---|---|---:|---:|---:|");
  for (const kex of kexes) {
    const targets: Array<[string, number]> = [["twisted-ts (warm)", ourPort]];
    if (sshd !== undefined && sshdKex.includes(kex)) targets.push(["sshd", sshd.port]);
    for (const [name, port] of targets) {
      const runs: Array<Record<string, number>> = [];
      for (let i = 0; i < n; i++) runs.push(await child(["handshake", String(port), kex]));
      console.log(`| ${kex} | ${name} | ${cell(runs, "cpu")} | ${cell(runs, "wall")} | ${cell(runs, "kexinit")} |`);
    }
  }
  sshd?.stop();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}

if (process.argv[2] === "--child") {
  if (process.argv[3] === "prims") await childPrimitives();
  else await childHandshake(Number(process.argv[4]), process.argv[5]!);
} else {
  await main();
}
