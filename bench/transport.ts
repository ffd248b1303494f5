/**
 * SSH handshakes per second over loopback TCP, our transport beside ssh2 and OpenSSH's sshd in
 * the same run: connect, key exchange (curve25519-sha256, ssh-ed25519 host key,
 * aes128-gcm@openssh.com), host key check, done, disconnect — one connection at a time. Then the
 * same with each key exchange in {@link BY_KEX}: our client against our server beside our client
 * against sshd (a name sshd lacks is n/a), with the CPU time this process spent per handshake
 * (against sshd that is our client alone; against our server, client and server together).
 * Key exchange names after the seconds run only the second table, for those names.
 *
 *     npm run build && node bench/dist/transport.js [seconds-per-case] [kex ...]
 */
import { createRequire } from "node:module";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { reactor } from "@twisted-ts/internet";
import { factory, keys, service } from "@twisted-ts/conch/ssh";
import { handshakeOnce } from "./_handshake.js";
import { freePort, waitForPort } from "./_net.js";

const require = createRequire(import.meta.url);
const SECONDS = Number(process.argv[2] ?? 3);
const KEX = "curve25519-sha256";
const CIPHER = "aes128-gcm@openssh.com";
/** The key exchanges of the second table: the post-quantum hybrids beside the classical ones. */
const BY_KEX_ALL = [
  "curve25519-sha256",
  "mlkem768x25519-sha256",
  "sntrup761x25519-sha512",
  "sntrup761x25519-sha512@openssh.com",
  "ecdh-sha2-nistp256",
  "diffie-hellman-group14-sha256",
  "diffie-hellman-group16-sha512",
];
const ONLY_KEX = process.argv.slice(3);
const BY_KEX = ONLY_KEX.length > 0 ? ONLY_KEX : BY_KEX_ALL;

interface Ssh2Client {
  on(event: string, fn: (...a: unknown[]) => void): Ssh2Client;
  connect(opts: Record<string, unknown>): void;
  end(): void;
  destroy(): void;
}
interface Ssh2Module {
  Client: new () => Ssh2Client;
  Server: new (opts: Record<string, unknown>, fn: (client: { on(e: string, fn: (...a: unknown[]) => void): void; end(): void }) => void) => {
    listen(port: number, host: string, fn: () => void): void;
    address(): { port: number };
    close(): void;
  };
}
const ssh2 = require("ssh2") as Ssh2Module;


/** One handshake by our client with `kex`; resolves when the keys are in use. */
function oursOnce(port: number, kex = KEX): Promise<void> {
  return handshakeOnce(port, { kex, cipher: CIPHER });
}

/** One handshake by ssh2's client; resolves on its 'handshake' event. */
function ssh2Once(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    c.on("handshake", () => {
      resolve();
      c.destroy();
    });
    c.on("error", (e) => reject(e));
    c.connect({
      host: "127.0.0.1",
      port,
      username: "bench",
      algorithms: { kex: [KEX], cipher: [CIPHER], serverHostKey: ["ssh-ed25519"] },
      hostVerifier: () => true,
    });
  });
}

/** Handshakes per second, and this process's CPU ms per handshake. */
async function rate(name: string, once: () => Promise<void>): Promise<[string, number, number]> {
  for (let i = 0; i < 5; i++) await once();
  const end = Date.now() + SECONDS * 1000;
  let n = 0;
  const t0 = process.hrtime.bigint();
  const cpu0 = process.cpuUsage();
  while (Date.now() < end) {
    await once();
    n++;
  }
  const cpu = process.cpuUsage(cpu0);
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return [name, n / secs, (cpu.user + cpu.system) / 1000 / n];
}

/** The first table: handshakes per second for each client → server pair, and two ratios. */
function printFirstTable(results: Array<[string, number, number]>): void {
  console.log(`\nSSH handshakes per second (${KEX}, ssh-ed25519, ${CIPHER}), ${SECONDS} s per case, sequential\n`);
  console.log("| client → server | handshakes/s |");
  console.log("|---|---|");
  for (const [name, r] of results) console.log(`| ${name} | ${r.toFixed(0)} |`);
  const byName = new Map(results.map(([name, r]) => [name, r]));
  const ratio = (a: string, b: string): string => {
    const x = byName.get(a);
    const y = byName.get(b);
    return x && y ? (x / y).toFixed(2) : "n/a";
  };
  console.log(`\nours→ours / ssh2→ssh2: ${ratio("twisted-ts client → twisted-ts server", "ssh2 client → ssh2 server")}`);
  console.log(`ours→sshd / ssh2→sshd: ${ratio("twisted-ts client → sshd", "ssh2 client → sshd")}`);
}

async function main(): Promise<void> {
  const hostKey = keys.Key.generate("ed25519");
  // Our server.
  const f = new factory.SSHFactory();
  f.privateKeys = { "ssh-ed25519": hostKey };
  f.services = { "ssh-userauth": service.SSHService };
  // Every handshake here ends before authentication, which OpenSSH 9.8's PerSourcePenalties (our
  // default) counts as `noauth` against the source: loopback is exempt, as in the other benches.
  f.perSourcePenaltyExemptList = ["127.0.0.0/8", "::1"];
  const port = reactor.listenTCP(0, f, 50, "127.0.0.1");
  await port.whenListening();
  const ourPort = (port.getHost() as { port: number }).port;
  // ssh2's server.
  const s2 = new ssh2.Server({ hostKeys: [hostKey.toString("openssh")] }, (client) => {
    client.on("error", () => undefined);
  });
  await new Promise<void>((r) => s2.listen(0, "127.0.0.1", r));
  const s2Port = s2.address().port;
  // OpenSSH's sshd.
  let sshdPort: number | undefined;
  let sshd: ReturnType<typeof spawn> | undefined;
  const dir = mkdtempSync(join(tmpdir(), "bench-sshd-"));
  if (existsSync("/usr/sbin/sshd")) {
    if (!existsSync("/run/sshd")) mkdirSync("/run/sshd", { recursive: true });
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(dir, "hk")]);
    sshdPort = await freePort();
    writeFileSync(
      join(dir, "cfg"),
      [`Port ${sshdPort}`, "ListenAddress 127.0.0.1", `HostKey ${join(dir, "hk")}`, `PidFile ${join(dir, "pid")}`, "UsePAM no", "MaxStartups 100", "LogLevel QUIET"].join("\n") + "\n",
    );
    sshd = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", join(dir, "cfg")], { stdio: "ignore" });
    await waitForPort(sshdPort);
  }

  const results: Array<[string, number, number]> = [];
  if (ONLY_KEX.length === 0) {
    results.push(await rate("twisted-ts client → twisted-ts server", () => oursOnce(ourPort)));
    results.push(await rate("ssh2 client → ssh2 server", () => ssh2Once(s2Port)));
    if (sshdPort !== undefined) {
      results.push(await rate("twisted-ts client → sshd", () => oursOnce(sshdPort!)));
      results.push(await rate("ssh2 client → sshd", () => ssh2Once(sshdPort!)));
    }
  }
  const sshdKex = sshdPort === undefined ? [] : execFileSync("ssh", ["-Q", "kex"], { encoding: "utf8" }).split("\n");
  const byKex: Array<[kex: string, ours: [string, number, number], sshd: [string, number, number] | undefined]> = [];
  for (const kex of BY_KEX) {
    const ours = await rate(kex, () => oursOnce(ourPort, kex));
    const sshdRate = sshdPort !== undefined && sshdKex.includes(kex) ? await rate(kex, () => oursOnce(sshdPort!, kex)) : undefined;
    byKex.push([kex, ours, sshdRate]);
  }
  await port.stopListening();
  s2.close();
  sshd?.kill();
  rmSync(dir, { recursive: true, force: true });

  if (ONLY_KEX.length === 0) printFirstTable(results);
  console.log(`\nBy key exchange (our client; ssh-ed25519, ${CIPHER}), ${SECONDS} s per case\n`);
  console.log("| key exchange | → twisted-ts server | → sshd | ours / sshd | CPU ms: client + server | CPU ms: client (→ sshd) |");
  console.log("|---|---|---|---|---|---|");
  for (const [kex, [, ours, oursCpu], theirs] of byKex) {
    const [sshdRate, sshdCpu] = theirs === undefined ? ["n/a", "n/a"] : [theirs[1].toFixed(0), theirs[2].toFixed(1)];
    const ratio = theirs === undefined ? "n/a" : (ours / theirs[1]).toFixed(2);
    console.log(`| ${kex} | ${ours.toFixed(0)} | ${sshdRate} | ${ratio} | ${oursCpu.toFixed(1)} | ${sshdCpu} |`);
  }
  process.exit(0);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
