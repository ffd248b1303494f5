/**
 * The packages as a user installs them: `npm pack` each workspace, install the tarballs into a new
 * project, then import every subpath each exports map names and run every bin through
 * `node_modules/.bin`, as npm runs them (through a symlink).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { tempDir } from "./_support/peers.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WORKSPACES = ["packages/internet", "packages/cred", "packages/conch"];

interface Manifest {
  name: string;
  exports: Record<string, unknown>;
  bin?: Record<string, string>;
}

test("packed tarballs: every exported subpath imports and every bin runs through node_modules/.bin", async (t) => {
  const packs = tempDir(t, "twisted-ts-pack-");
  const project = tempDir(t, "twisted-ts-project-");
  await run("npm", ["pack", "--silent", "--pack-destination", packs, ...WORKSPACES.flatMap((w) => ["-w", w])], { cwd: ROOT });
  const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz")).map((f) => join(packs, f));
  assert.equal(tarballs.length, WORKSPACES.length);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "user-project", private: true, type: "module" }));
  // node-pty is optional and builds a native addon: leave it out, as a user without a compiler gets.
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--omit=optional", ...tarballs], { cwd: project });

  const manifests = WORKSPACES.map((w) => JSON.parse(readFileSync(join(ROOT, w, "package.json"), "utf8")) as Manifest);
  const specifiers = manifests.flatMap((m) =>
    Object.keys(m.exports)
      .filter((sub) => sub !== "./package.json")
      .map((sub) => (sub === "." ? m.name : `${m.name}/${sub.slice(2)}`)),
  );
  const script = `for (const s of ${JSON.stringify(specifiers)}) { try { await import(s); } catch (e) { console.log(s + ": " + e.code); } }`;
  const { stdout } = await run(process.execPath, ["--input-type=module", "-e", script], { cwd: project });
  assert.equal(stdout, "", `exported subpaths that do not import:\n${stdout}`);

  const bins = manifests.flatMap((m) => Object.keys(m.bin ?? {}));
  assert.ok(bins.includes("ckeygen"));
  for (const bin of bins) {
    const { stdout: help } = await run(join(project, "node_modules", ".bin", bin), ["--help"], { cwd: project });
    assert.match(help, /usage/i, `${bin} --help prints its usage`);
  }
  await run(join(project, "node_modules", ".bin", "ckeygen"), ["-t", "ed25519", "-f", "k", "-N", ""], { cwd: project });
  assert.ok(existsSync(join(project, "k")) && existsSync(join(project, "k.pub")), "ckeygen wrote the key pair");
  assert.match(readFileSync(join(project, "k.pub"), "utf8"), /^ssh-ed25519 /);
});
