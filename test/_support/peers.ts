/**
 * Shared helpers for tests that use real peers and real sockets: finding a peer program, free
 * loopback ports, temporary directories, and waiting for a server to listen.
 *
 * A missing peer skips the test with a message, except under `CI=true`, where it fails it.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { TestContext } from "node:test";

export const IN_CI = process.env.CI === "true";

/** Debian's Python, which has python3-twisted / python3-asyncssh / python3-paramiko. */
export const SYSTEM_PYTHON = "/usr/bin/python3";

/** The absolute path of `program` (a path, or a name on PATH), or undefined. */
export function findProgram(program: string): string | undefined {
  if (program.startsWith("/")) return existsSync(program) ? program : undefined;
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/usr/bin", "/sbin", "/bin"])) {
    const p = join(dir, program);
    if (dir && existsSync(p)) return p;
  }
  return undefined;
}

/**
 * Something the test needs is missing here: the test is skipped locally and fails under CI=true,
 * where `.ci/run` has installed everything (a skip there would pass a check that never ran).
 */
export function missing(t: TestContext, msg: string): void {
  if (IN_CI) throw new Error(msg);
  t.skip(msg);
}

/**
 * The path of a peer program; when it is missing the test is skipped (or, under CI=true, fails).
 * Returns undefined after skipping: `const ssh = requirePeer(t, "ssh"); if (!ssh) return;`
 */
export function requirePeer(t: TestContext, program: string, hint = program): string | undefined {
  const p = findProgram(program);
  if (p !== undefined) return p;
  missing(t, `${program} is not installed (apt-get install ${hint})`);
  return undefined;
}

/** True when Debian's python3 can import `module`; skip (or fail under CI) otherwise. */
export function requirePythonModule(t: TestContext, module: string, hint: string): boolean {
  try {
    execFileSync(SYSTEM_PYTHON, ["-c", `import ${module}`], { stdio: "ignore" });
    return true;
  } catch {
    missing(t, `${SYSTEM_PYTHON} cannot import ${module} (apt-get install ${hint})`);
    return false;
  }
}

/** A TCP port free on 127.0.0.1 at the time of asking. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr !== null ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** A new temporary directory, removed when the test ends. */
export function tempDir(t: TestContext, prefix = "twisted-ts-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port (gives up after `ms`). */
export async function waitForPort(port: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => {
        c.destroy();
        resolve(true);
      });
      c.once("error", () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listened on 127.0.0.1:${port} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Spawns a long-running peer (a server) that is killed when the test ends; its output is kept. */
export function spawnPeer(t: TestContext, cmd: string, args: string[], env?: NodeJS.ProcessEnv): ChildProcess & { output: () => string } {
  const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"], env: env ?? process.env });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr?.on("data", (d: Buffer) => (out += d.toString()));
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  return Object.assign(child, { output: () => out });
}

/** Runs a command to completion; resolves with its exit code and output (never rejects on a non-zero exit). */
export function runCommand(
  cmd: string,
  args: string[],
  opts: { input?: Uint8Array | string; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: Buffer; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ["pipe", "pipe", "pipe"], env: opts.env ?? process.env, cwd: opts.cwd });
    const chunks: Buffer[] = [];
    let err = "";
    const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 60_000);
    child.stdout.on("data", (d: Buffer) => chunks.push(d));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(chunks), stderr: err });
    });
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Removes a path, ignoring errors. */
export function removePath(p: string): void {
  rmSync(p, { recursive: true, force: true });
}
