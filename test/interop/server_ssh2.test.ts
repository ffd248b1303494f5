/**
 * The `ssh2` npm package's Client against OUR server, in this process: publickey, password and
 * keyboard-interactive logins with the host key checked by `hostVerifier`, exec with
 * stdin/stdout/stderr, exit codes and signals, a missing command (127), env, 4 MiB through `cat`,
 * many channels at once on one connection, and a pty shell (in-process realm).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { EventEmitter } from "node:events";
import type { Duplex } from "node:stream";
import { TERMINAL_SHELL, startOurServer, type OurServer } from "./_server_support.js";

/** The part of ssh2's (untyped here) API these tests use. */
interface Ssh2Stream extends Duplex {
  stderr: EventEmitter;
  setWindow?(rows: number, cols: number, height: number, width: number): void;
}
interface Ssh2Client extends EventEmitter {
  connect(config: Record<string, unknown>): void;
  exec(command: string, options: Record<string, unknown>, cb: (err: Error | undefined, stream: Ssh2Stream) => void): boolean;
  shell(window: Record<string, unknown>, options: Record<string, unknown>, cb: (err: Error | undefined, stream: Ssh2Stream) => void): boolean;
  end(): void;
}

const require = createRequire(import.meta.url);
const { Client } = require("ssh2") as { Client: new () => Ssh2Client };

function connect(server: OurServer, auth: "key" | "password" | "kbdint"): Promise<Ssh2Client> {
  const hostBlob = Buffer.from(Object.values(server.hostKeys)[0]!.public().blob());
  return new Promise((resolve, reject) => {
    const c = new Client();
    c.once("ready", () => resolve(c));
    c.once("error", reject);
    c.on("keyboard-interactive", (_name: string, _instr: string, _lang: string, prompts: unknown[], finish: (answers: string[]) => void) => {
      finish(prompts.map(() => server.password));
    });
    c.connect({
      host: "127.0.0.1",
      port: server.port,
      username: server.user,
      readyTimeout: 15_000,
      hostVerifier: (key: Buffer) => key.equals(hostBlob),
      ...(auth === "key" ? { privateKey: readFileSync(server.keyPath) } : {}),
      ...(auth === "password" ? { password: server.password } : {}),
      ...(auth === "kbdint" ? { tryKeyboard: true } : {}),
    });
  });
}

interface ExecResult {
  stdout: Buffer;
  stderr: string;
  code: number | null;
  signal: string | null;
}

function exec(c: Ssh2Client, command: string, input?: Buffer | string, env?: Record<string, string>): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    c.exec(command, env ? { env } : {}, (err, stream) => {
      if (err) {
        reject(err);
        return;
      }
      const out: Buffer[] = [];
      let errText = "";
      let code: number | null = null;
      let signal: string | null = null;
      stream.on("data", (d: Buffer) => out.push(d));
      stream.stderr.on("data", (d: Buffer) => (errText += d.toString()));
      stream.on("exit", (c2: number | null, s: string | null) => {
        code = c2;
        signal = s ?? null;
      });
      stream.on("close", () => resolve({ stdout: Buffer.concat(out), stderr: errText, code, signal }));
      stream.end(input);
    });
  });
}

test("ssh2: exec with stdin/stdout/stderr, exit codes, signals, 127, env, 4 MiB, and 50 channels at once", async (t) => {
  const server = await startOurServer(t, { maxSessions: 64 }); // parallel channels past OpenSSH's MaxSessions of 10
  const c = await connect(server, "key");
  t.after(() => c.end());
  const r = await exec(c, 'read line; echo "got $line"; echo oops >&2; exit 3', "hello\n");
  assert.deepEqual([r.stdout.toString(), r.stderr, r.code], ["got hello\n", "oops\n", 3]);
  const missing = await exec(c, "no-such-command-ssh2");
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /no-such-command-ssh2: .*not found/);
  const killed = await exec(c, "kill -TERM $$");
  assert.equal(killed.signal, "SIGTERM");
  const env = await exec(c, 'echo "$GREETING"', undefined, { GREETING: "from ssh2" });
  assert.equal(env.stdout.toString(), "from ssh2\n");
  const blob = randomBytes(4 * 1024 * 1024);
  const bulk = await exec(c, "cat", blob);
  assert.equal(bulk.stdout.length, blob.length);
  assert.equal(createHash("sha256").update(bulk.stdout).digest("hex"), createHash("sha256").update(blob).digest("hex"));
  const many = await Promise.all(Array.from({ length: 50 }, (_, i) => exec(c, `echo channel-${i}`)));
  assert.deepEqual(
    many.map((m) => m.stdout.toString()),
    Array.from({ length: 50 }, (_, i) => `channel-${i}\n`),
  );
  assert.deepEqual(server.criticals(), []);
});

test("ssh2: password and keyboard-interactive logins", async (t) => {
  const server = await startOurServer(t);
  for (const auth of ["password", "kbdint"] as const) {
    const c = await connect(server, auth);
    const r = await exec(c, `echo by-${auth}`);
    assert.equal(r.stdout.toString(), `by-${auth}\n`);
    c.end();
  }
  assert.deepEqual(server.loginMethods(), ["password", "keyboard-interactive"]);
});

test("ssh2: a pty shell (term, size, env, window change) on the in-process realm", async (t) => {
  const server = await startOurServer(t, TERMINAL_SHELL);
  const c = await connect(server, "key");
  t.after(() => c.end());
  const { output, code } = await new Promise<{ output: string; code: number | null }>((resolve, reject) => {
    c.shell({ term: "screen", rows: 33, cols: 111 }, { env: { TT_VAR: "yes" } }, (err, stream) => {
      if (err) {
        reject(err);
        return;
      }
      let output = "";
      let code: number | null = null;
      let sent = false;
      stream.on("data", (d: Buffer) => {
        output += d.toString();
        if (!sent && output.includes("TT=")) {
          sent = true;
          stream.setWindow?.(40, 132, 0, 0);
          stream.write("size\rhello pty\r");
        }
        if (output.includes("echo: hello pty")) stream.write("exit\r");
      });
      stream.on("exit", (c2: number | null) => (code = c2));
      stream.on("close", () => resolve({ output, code }));
    });
  });
  assert.match(output, /term=screen size=111x33 TT=yes/);
  assert.match(output, /now 132x40/);
  assert.match(output, /echo: hello pty/);
  assert.equal(code, 5);
});
