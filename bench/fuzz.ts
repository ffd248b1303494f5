/**
 * The fuzz targets of the `fuzz_*` tests, run long: each for a few seconds (or the number given)
 * from a fresh seed, reporting inputs per second and anything found, with the seed and path that
 * replay it. An input that takes longer than SLOW_INPUT_MS is a finding too (a hang in the making).
 *
 *     npm run build && node bench/dist/fuzz.js [seconds-per-target] [name-filter] [seed]
 *     node bench/dist/fuzz.js replay "<target name>" <seed> <path>   # the shrunk input, with its error
 */
import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import fc from "fast-check";

type Targets = typeof import("../test/dist/_support/fuzz_targets.js");
type Harness = typeof import("../test/dist/_support/fuzz.js");

// The targets live with the tests (they use the tests' fakes); load them from the built tests.
const targets = (await import(new URL("../../test/dist/_support/fuzz_targets.js", import.meta.url).href)) as Targets;
const harness = (await import(new URL("../../test/dist/_support/fuzz.js", import.meta.url).href)) as Harness;

/** One input taking this long is reported: every target's inputs take well under a millisecond or a few. */
const SLOW_INPUT_MS = 1000;

if (process.argv[2] === "replay") {
  const [name, seed, path] = process.argv.slice(3);
  const t = targets.ALL_TARGETS.find((x) => x.name === name);
  if (t === undefined || seed === undefined || path === undefined) {
    console.error(`usage: fuzz.js replay "<target name>" <seed> <path>; targets:\n${targets.ALL_TARGETS.map((x) => `  ${x.name}`).join("\n")}`);
    process.exit(2);
  }
  fc.assert(harness.propertyOf(t), { seed: Number(seed), path, numRuns: 1, verbose: 2 });
  console.log("the input passes now");
  process.exit(0);
}

/** What one target's run found, as the child prints it on its last line. */
interface Row {
  name: string;
  inputs: number;
  seconds: number;
  found: string | undefined;
  replay: string | undefined;
}

/** Runs target `name` for `seconds` from `seed` in this process and prints its Row as JSON. */
function runOne(name: string, seconds: number, seed: number): void {
  const t = targets.ALL_TARGETS.find((x) => x.name === name)!;
  let inputs = 0;
  const timed = (check: () => void): void => {
    const start = performance.now();
    check();
    inputs++;
    const ms = performance.now() - start;
    if (ms > SLOW_INPUT_MS) throw new harness.FuzzFinding(`one input took ${ms.toFixed(0)} ms`);
  };
  const start = performance.now();
  const result = fc.check(harness.propertyOf(t, timed), {
    seed,
    numRuns: Number.MAX_SAFE_INTEGER,
    interruptAfterTimeLimit: seconds * 1000,
    markInterruptAsFailure: false,
  });
  const row: Row = { name, inputs, seconds: (performance.now() - start) / 1000, found: undefined, replay: undefined };
  if (result.failed) {
    const why = result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
    row.found = `seed ${result.seed} path "${result.counterexamplePath ?? ""}": ${why.split("\n")[0]}`;
    row.replay = `node bench/dist/fuzz.js replay "${name}" ${result.seed} "${result.counterexamplePath ?? ""}"`;
  }
  console.log(JSON.stringify(row));
}

if (process.argv[2] === "child") {
  runOne(process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
  process.exit(0);
}

const SECONDS = Number(process.argv[2] ?? 5);
const FILTER = process.argv[3] ?? "";
const BASE_SEED = process.argv[4] !== undefined ? Number(process.argv[4]) : Date.now() >>> 0;

const rows: Row[] = [];
const chosen = targets.ALL_TARGETS.filter((t) => t.name.includes(FILTER));
console.log(`fuzzing ${chosen.length} targets for ${SECONDS} s each, base seed ${BASE_SEED}`);
for (const [i, t] of chosen.entries()) {
  const seed = (BASE_SEED + i * 7919) >>> 0;
  // Each target in a child: a fault that kills the process (a native assertion, running out of
  // memory) is reported as a finding instead of ending the run. The same seed replays it.
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), "child", t.name, String(SECONDS), String(seed)], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const last = child.stdout.trim().split("\n").at(-1) ?? "";
  let row: Row;
  if (child.status === 0 && last.startsWith("{")) {
    row = JSON.parse(last) as Row;
  } else {
    const why = child.signal !== null ? `the process died (${child.signal})` : `the process exited ${child.status}`;
    const detail = child.stderr.split("\n").find((l) => /Assertion|Error|FATAL/.test(l))?.trim() ?? "";
    row = { name: t.name, inputs: 0, seconds: SECONDS, found: `seed ${seed}: ${why} ${detail}`, replay: `node bench/dist/fuzz.js ${SECONDS} "${t.name}" ${seed}` };
  }
  rows.push(row);
  console.log(`${t.name.padEnd(72)} ${String(row.inputs).padStart(9)} inputs ${(row.inputs / row.seconds).toFixed(0).padStart(7)}/s${row.found === undefined ? "" : `  FOUND ${row.found}`}`);
}

const total = rows.reduce((n, r) => n + r.inputs, 0);
const findings = rows.filter((r) => r.found !== undefined);
console.log(`\n${total} inputs in ${rows.reduce((s, r) => s + r.seconds, 0).toFixed(0)} s; ${findings.length} finding(s)`);
for (const r of findings) console.log(`  ${r.name}: ${r.found}\n    replay: ${r.replay}`);
process.exitCode = findings.length === 0 ? 0 : 1;
