/**
 * Paramiko (python3-paramiko) as a client of OUR server, through test/interop/peers/client_paramiko.py:
 * publickey and password logins with the host key pinned, exec with stdin/stdout/stderr and exit
 * codes, a missing command (127), env, 2 MiB through `cat`, ten channels at once on one
 * connection, and a shell with a pty (in-process realm).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TERMINAL_SHELL, runPythonClient, startOurServer } from "./_server_support.js";

interface Run {
  stdout: string;
  stderr: string;
  status: number;
  bytes: number;
  sha256: string;
}

test("Paramiko: exec, exit codes, 127, env, bulk, parallel channels and password login against the Unix realm", async (t) => {
  const server = await startOurServer(t);
  const r = await runPythonClient(t, server, "client_paramiko.py", "paramiko", "python3-paramiko", "unix");
  if (r === undefined) return;
  assert.equal(r["hostkey"], "ssh-ed25519");
  const exec = r["exec"] as Run;
  assert.deepEqual([exec.stdout, exec.stderr, exec.status], ["got hello\n", "oops\n", 3]);
  const missing = r["missing"] as Run;
  assert.equal(missing.status, 127);
  assert.match(missing.stderr, /no-such-command-paramiko: .*not found/);
  assert.equal((r["env"] as Run).stdout, "from paramiko\n");
  const bulk = r["bulk"] as Run;
  assert.equal(bulk.bytes, 2 * 1024 * 1024);
  assert.equal(bulk.sha256, r["bulk_sent_sha256"]);
  assert.deepEqual(r["parallel"], Array.from({ length: 10 }, (_, i) => `channel-${i}\n`));
  assert.equal((r["password"] as Run).stdout, "by-password\n");
  assert.deepEqual(server.loginMethods(), ["publickey", "password"]);
  assert.deepEqual(server.criticals(), []);
});

test("Paramiko: a shell with a pty (get_pty, env, invoke_shell) on the in-process realm", async (t) => {
  const server = await startOurServer(t, TERMINAL_SHELL);
  const r = await runPythonClient(t, server, "client_paramiko.py", "paramiko", "python3-paramiko", "pty");
  if (r === undefined) return;
  const shell = r["shell"] as { output: string; status: number };
  assert.match(shell.output, /term=vt220 size=100x30 TT=yes/);
  assert.match(shell.output, /echo: hello pty/);
  assert.equal(shell.status, 5);
});
