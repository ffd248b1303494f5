/**
 * AsyncSSH (python3-asyncssh) as a client of OUR server, through test/interop/peers/client_asyncssh.py:
 * publickey, password and keyboard-interactive logins with the host key pinned in known_hosts,
 * exec with stdin/stdout/stderr and exit codes, a missing command (127), an exit signal, a signal
 * request delivered to the command, env,
 * 2 MiB through `cat`, twenty channels at once, a shell without a pty, and a pty shell
 * (in-process realm).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { TERMINAL_SHELL, runPythonClient, startOurServer } from "./_server_support.js";

interface Run {
  stdout: string;
  stderr: string;
  status: number | null;
  signal: string | null;
  bytes: number;
  sha256: string;
}

test("AsyncSSH: exec, exit codes and signals, 127, env, bulk, parallel channels, shell, and three login methods", async (t) => {
  const server = await startOurServer(t, { maxSessions: 64 }); // parallel channels past OpenSSH's MaxSessions of 10
  const r = await runPythonClient(t, server, "client_asyncssh.py", "asyncssh", "python3-asyncssh", "unix");
  if (r === undefined) return;
  const exec = r["exec"] as Run;
  assert.deepEqual([exec.stdout, exec.stderr, exec.status], ["got hello\n", "oops\n", 3]);
  const missing = r["missing"] as Run;
  assert.equal(missing.status, 127);
  assert.match(missing.stderr, /no-such-command-asyncssh: .*not found/);
  assert.equal((r["signal"] as Run).signal, "TERM");
  assert.equal((r["env"] as Run).stdout, "from asyncssh\n");
  assert.deepEqual(r["sent_signal"], { signal: "TERM", status: -1 });
  const bulk = r["bulk"] as Run;
  assert.equal(bulk.bytes, 2 * 1024 * 1024);
  assert.equal(bulk.sha256, r["bulk_sent_sha256"]);
  assert.deepEqual(r["parallel"], Array.from({ length: 20 }, (_, i) => `channel-${i}\n`));
  const shell = r["shell"] as Run;
  assert.deepEqual([shell.stdout, shell.status], ["from-shell\n", 4]);
  assert.equal((r["password"] as Run).stdout, "by-password\n");
  assert.equal((r["kbdint"] as Run).stdout, "by-kbdint\n");
  assert.deepEqual(server.loginMethods(), ["publickey", "password", "keyboard-interactive"]);
  assert.deepEqual(server.criticals(), []);
});

test("AsyncSSH: a pty shell (term type, size, env) on the in-process realm", async (t) => {
  const server = await startOurServer(t, TERMINAL_SHELL);
  const r = await runPythonClient(t, server, "client_asyncssh.py", "asyncssh", "python3-asyncssh", "pty");
  if (r === undefined) return;
  const shell = r["shell"] as { output: string; status: number };
  assert.match(shell.output, /term=xterm size=120x40 TT=yes/);
  assert.match(shell.output, /echo: hello pty/);
  assert.equal(shell.status, 5);
});
