#!/usr/bin/env node
// Runs every compiled benchmark under bench/dist (or those whose path contains an argument).
import { spawnSync } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("../bench/dist/", import.meta.url).pathname;
const filters = process.argv.slice(2);
const files = readdirSync(root)
  .filter((n) => n.endsWith(".js") && !n.startsWith("_"))
  .filter((n) => filters.length === 0 || filters.some((s) => n.includes(s)))
  .sort();
let status = 0;
for (const f of files) {
  console.log(`\n## ${f}`);
  const r = spawnSync(process.execPath, ["--expose-gc", join(root, f)], { stdio: "inherit" });
  if (r.status !== 0) status = 1;
}
process.exit(status);
