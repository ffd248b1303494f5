/**
 * CPU time of one sntrup761 key generation, encapsulation and decapsulation (ms), the minimum
 * over several runs of a batch each, so that other processes on a shared machine skew it little.
 *
 *     npx tsc -b && node bench/dist/sntrup761.js [runs] [iterations-per-run]
 */
type Crypto = typeof import("../packages/conch/dist/ssh/_transport/index.js");
const root = import.meta.resolve("@twisted-ts/conch/package.json");
const T = (await import(new URL("dist/ssh/_transport/index.js", root).href)) as Crypto;

const RUNS = Number(process.argv[2] ?? 7);
const ITERATIONS = Number(process.argv[3] ?? 20);

/** The least CPU time (user + system, ms) of one call to `fn`, over RUNS batches of ITERATIONS. */
function cpuMs(fn: () => void): number {
  for (let i = 0; i < ITERATIONS; i++) fn(); // warm-up: JIT
  let best = Infinity;
  for (let run = 0; run < RUNS; run++) {
    const start = process.cpuUsage();
    for (let i = 0; i < ITERATIONS; i++) fn();
    const used = process.cpuUsage(start);
    best = Math.min(best, (used.user + used.system) / 1000 / ITERATIONS);
  }
  return best;
}

const { publicKey, secretKey } = T.sntrup761KeyPair();
const { cipherText } = T.sntrup761Encapsulate(publicKey);
const rows: Array<[string, number]> = [
  ["key generation", cpuMs(() => T.sntrup761KeyPair())],
  ["encapsulation", cpuMs(() => T.sntrup761Encapsulate(publicKey))],
  ["decapsulation", cpuMs(() => T.sntrup761Decapsulate(cipherText, secretKey))],
];
console.log(`\nsntrup761 CPU ms per operation, least of ${RUNS} runs of ${ITERATIONS}\n`);
console.log("| operation | CPU ms |");
console.log("|---|---:|");
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(2)} |`);
