/**
 * Twisted's own `conch` client script (python3-twisted 22.4, `python3 -m twisted.conch.scripts.conch`)
 * against OUR server: publickey login with the host key pinned by `--known-hosts`, exec with
 * stdin, stderr and exit codes, a missing command (127), 1 MiB of stdin into a file, and a shell
 * without a pty.
 *
 * conch 22.4 writes the channel's stdout through StandardIO and loses it when its stdout is not a
 * terminal — it does the same against OpenSSH's sshd — so these commands report on stderr (which
 * conch writes directly) or into files the test reads.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { SYSTEM_PYTHON, requirePythonModule, runCommand } from "../_support/peers.js";
import { clientEnv, startOurServer, type OurServer } from "./_server_support.js";

async function conch(t: TestContext, server: OurServer, args: string[], input?: Uint8Array | string) {
  if (!requirePythonModule(t, "twisted.conch.scripts.conch", "python3-twisted")) return undefined;
  // Twisted 22.4's known_hosts has no [host]:port entries: name the host alone.
  const kh = join(server.dir, "known_hosts.conch");
  writeFileSync(kh, Object.values(server.hostKeys).map((k) => `127.0.0.1 ${k.public().toString("openssh")}\n`).join(""));
  const r = await runCommand(
    SYSTEM_PYTHON,
    ["-W", "ignore", "-m", "twisted.conch.scripts.conch", "-T", "--known-hosts", kh, "-p", String(server.port), "-l", server.user, "-i", server.keyPath, "--user-authentications=publickey", "127.0.0.1", ...args],
    { env: clientEnv(server), timeoutMs: 30_000, ...(input !== undefined ? { input } : {}) },
  );
  return r;
}

test("conch exec: stdin reaches the command, stderr comes back, exit codes 3 and 127", async (t) => {
  const server = await startOurServer(t);
  const r = await conch(t, server, ['read line; echo "got $line" >&2; exit 3'], "hello\n");
  if (r === undefined) return;
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stderr, /^got hello$/m);
  const missing = await conch(t, server, ["no-such-command-conch"]);
  assert.equal(missing?.code, 127, missing?.stderr);
  assert.match(missing?.stderr ?? "", /no-such-command-conch: .*not found/);
  assert.deepEqual(server.loginMethods(), ["publickey", "publickey"]);
  assert.deepEqual(server.criticals(), []);
});

test("conch exec: 1 MiB of stdin lands intact in a file; a shell without a pty runs commands from stdin", async (t) => {
  const server = await startOurServer(t);
  const blob = randomBytes(1024 * 1024);
  const r = await conch(t, server, ["cat > from-conch.bin"], blob);
  if (r === undefined) return;
  assert.equal(r.code, 0, r.stderr);
  const sha = (b: Uint8Array): string => createHash("sha256").update(b).digest("hex");
  assert.equal(sha(readFileSync(join(server.home, "from-conch.bin"))), sha(blob));
  const shell = await conch(t, server, [], "echo from-shell >&2\nexit 6\n");
  assert.equal(shell?.code, 6, shell?.stderr);
  assert.match(shell?.stderr ?? "", /^from-shell$/m);
});
