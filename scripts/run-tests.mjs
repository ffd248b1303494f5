#!/usr/bin/env node
// Runs the compiled test files under test/dist with Node's built-in runner.
// Arguments filter by path substring: `npm test -- conch/ssh interop/openssh`.
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = new URL("../test/dist/", import.meta.url).pathname;
const filters = process.argv.slice(2);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith(".test.js")) out.push(p);
  }
  return out;
}

const files = walk(root).filter((f) => filters.length === 0 || filters.some((s) => relative(root, f).includes(s)));
if (files.length === 0) {
  console.error("no test files matched", filters);
  process.exit(1);
}
const concurrency = process.env.TEST_CONCURRENCY ?? "2";
// A test file whose tests are done exits even if a handle stays open, and no single test may run
// longer than 10 minutes: a hang fails the run instead of stalling CI. test-preload.mjs keeps that
// forced exit from losing the verdicts a file's process has not yet written to the runner.
const r = spawnSync(
  process.execPath,
  [
    "--import",
    new URL("./test-preload.mjs", import.meta.url).href,
    "--test",
    `--test-concurrency=${concurrency}`,
    "--test-force-exit",
    "--test-timeout=600000",
    ...files,
  ],
  { stdio: "inherit" },
);
process.exit(r.status ?? 1);
