/**
 * The fuzz targets of the `fuzz_*` tests, run long: each for a few seconds (or the number given)
 * from a fresh seed, reporting inputs per second and anything found, with the seed and path that
 * replay it in the test slice (`FUZZ_SEED=… FUZZ_PATH=… node scripts/run-tests.mjs fuzz_`).
 * An input that takes longer than SLOW_INPUT_MS is a finding too (a hang in the making).
 *
 *     npm run build && node bench/dist/fuzz.js [seconds-per-target] [name-filter] [seed]
 */
import fc from "fast-check";

type Targets = typeof import("../test/dist/_support/fuzz_targets.js");
type Harness = typeof import("../test/dist/_support/fuzz.js");

// The targets live with the tests (they use the tests' fakes); load them from the built tests.
const targets = (await import(new URL("../../test/dist/_support/fuzz_targets.js", import.meta.url).href)) as Targets;
const harness = (await import(new URL("../../test/dist/_support/fuzz.js", import.meta.url).href)) as Harness;

/** One input taking this long is reported: every target's inputs take well under a millisecond or a few. */
const SLOW_INPUT_MS = 1000;

const SECONDS = Number(process.argv[2] ?? 5);
const FILTER = process.argv[3] ?? "";
const BASE_SEED = process.argv[4] !== undefined ? Number(process.argv[4]) : Date.now() >>> 0;

interface Row {
  name: string;
  inputs: number;
  seconds: number;
  found: string | undefined;
}

const rows: Row[] = [];
const chosen = targets.ALL_TARGETS.filter((t) => t.name.includes(FILTER));
console.log(`fuzzing ${chosen.length} targets for ${SECONDS} s each, base seed ${BASE_SEED}`);
for (const [i, t] of chosen.entries()) {
  const seed = (BASE_SEED + i * 7919) >>> 0;
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
    interruptAfterTimeLimit: SECONDS * 1000,
    markInterruptAsFailure: false,
  });
  const seconds = (performance.now() - start) / 1000;
  let found: string | undefined;
  if (result.failed) {
    const why = result.errorInstance instanceof Error ? result.errorInstance.message : String(result.errorInstance);
    found = `seed ${result.seed} path "${result.counterexamplePath ?? ""}": ${why.split("\n")[0]}`;
  }
  rows.push({ name: t.name, inputs, seconds, found });
  console.log(`${t.name.padEnd(72)} ${String(inputs).padStart(9)} inputs ${(inputs / seconds).toFixed(0).padStart(7)}/s${found === undefined ? "" : `  FOUND ${found}`}`);
}

const total = rows.reduce((n, r) => n + r.inputs, 0);
const findings = rows.filter((r) => r.found !== undefined);
console.log(`\n${total} inputs in ${rows.reduce((s, r) => s + r.seconds, 0).toFixed(0)} s; ${findings.length} finding(s)`);
for (const r of findings) {
  console.log(`  ${r.name}: ${r.found}\n    replay: FUZZ_SEED=${r.found!.match(/seed (\d+)/)?.[1] ?? "?"} FUZZ_PATH='${r.found!.match(/path "([^"]*)"/)?.[1] ?? ""}' node scripts/run-tests.mjs fuzz_`);
}
process.exitCode = findings.length === 0 ? 0 : 1;
