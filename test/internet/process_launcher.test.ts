import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";

import { ProcessDone, ProcessTerminated } from "@twisted-ts/internet/error";
import type { IProcessProtocol, IProcessTransport, IPushProducer, SpawnProcessOptions } from "@twisted-ts/internet/interfaces";
import { NodeReactor, type Process } from "@twisted-ts/internet/reactor";
import { missing } from "../_support/peers.js";
import { until } from "./_helpers.js";
import { Collect, processCases, SH } from "./_process_cases.js";

/** A reactor whose every spawnProcess goes through its process launcher. */
class LauncherReactor extends NodeReactor {
  override spawnProcess(
    proto: IProcessProtocol,
    executable: string,
    args?: readonly string[],
    options: SpawnProcessOptions = {},
  ): Process {
    return super.spawnProcess(proto, executable, args, { ...options, launcher: true });
  }
}

processCases(() => new LauncherReactor(), " (through the process launcher)", false);

test("ProcessLauncher: the child runs in the launcher's process, not ours, with sockets for stdio", async () => {
  const r = new LauncherReactor();
  const p = new Collect();
  r.spawnProcess(p, SH, ["sh", "-c", 'echo "$PPID"; stat -L -c %F /dev/stdin /dev/stdout']);
  await until(() => p.ended !== null, "processEnded");
  assert.equal(p.stdout(), `${r.processLauncher.launcherPid}\nsocket\nsocket\n`);
  assert.notEqual(r.processLauncher.launcherPid, process.pid);
});

test("ProcessLauncher: 8 MiB written to cat under a streaming producer comes back whole, with back-pressure", async () => {
  const r = new LauncherReactor();
  const p = new Collect();
  const t: IProcessTransport = r.spawnProcess(p, "/bin/cat", ["cat"]);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const total = 128;
  let sent = 0;
  let paused = false;
  let pauses = 0;
  const producer: IPushProducer = {
    pauseProducing: () => {
      paused = true;
      pauses++;
    },
    resumeProducing: () => {
      paused = false;
      pump();
    },
    stopProducing: () => undefined,
  };
  const pump = (): void => {
    while (!paused && sent < total) {
      sent++;
      t.write(chunk);
    }
    if (sent === total && !paused) {
      t.unregisterProducer();
      t.closeStdin();
    }
  };
  t.registerProducer(producer, true);
  pump();
  await until(() => p.ended !== null, "processEnded");
  assert.equal(Buffer.concat(p.out).length, total * chunk.length);
  assert.ok(pauses > 0, "the producer was paused");
  assert.ok(p.ended!.check(ProcessDone));
});

test("ProcessLauncher: when the launcher dies, a running child is hung up and ends as ProcessTerminated; the next spawn starts a new launcher", async () => {
  const r = new LauncherReactor();
  const p = new Collect();
  r.spawnProcess(p, SH, ["sh", "-c", "echo ready; exec sleep 30"]);
  await until(() => p.stdout() === "ready\n", "child running");
  const first = r.processLauncher.launcherPid!;
  process.kill(first, "SIGKILL");
  await until(() => p.ended !== null, "processEnded");
  assert.ok(p.ended!.check(ProcessTerminated));
  const q = new Collect();
  r.spawnProcess(q, SH, ["sh", "-c", "echo again; exit 4"]);
  await until(() => q.ended !== null, "second processEnded");
  assert.equal(q.stdout(), "again\n");
  assert.equal((q.ended!.value as ProcessTerminated).exitCode, 4);
  assert.notEqual(r.processLauncher.launcherPid, first);
});

test("ProcessLauncher: spawns in flight when the launcher dies fail cleanly with ProcessTerminated", async () => {
  const r = new LauncherReactor();
  const warm = new Collect();
  r.spawnProcess(warm, "/bin/true", ["true"]);
  await until(() => warm.ended !== null, "warm-up");
  const ps = Array.from({ length: 5 }, () => new Collect());
  for (const p of ps) r.spawnProcess(p, SH, ["sh", "-c", "exec sleep 30"]);
  process.kill(r.processLauncher.launcherPid!, "SIGKILL");
  await until(() => ps.every((p) => p.ended !== null), "every processEnded");
  for (const p of ps) assert.ok(p.ended!.check(ProcessTerminated));
  const q = new Collect();
  r.spawnProcess(q, "/bin/true", ["true"]);
  await until(() => q.ended !== null, "spawn after recovery");
  assert.ok(q.ended!.check(ProcessDone));
});

/** Whether node-pty (optional) can be imported; skips the test when not, and fails it under CI. */
async function havePty(t: TestContext): Promise<boolean> {
  const name = "node-pty";
  const ok = await import(name).then(
    () => true,
    () => false,
  );
  if (!ok) missing(t, "node-pty is not installed (npm install node-pty)");
  return ok;
}

test("ProcessLauncher.spawnPty: a terminal in the launcher; its output, input, size and exit code come over one socket", async (t) => {
  if (!(await havePty(t))) return;
  const r = new NodeReactor();
  const pty = r.processLauncher.spawnPty({
    file: SH,
    args: ["-c", 'test -t 0 && echo tty; read line; echo "got $line"; stty size; exit 3'],
    name: "xterm",
    cols: 80,
    rows: 24,
    cwd: "/",
    env: { PATH: "/usr/bin:/bin" },
  });
  const out: Buffer[] = [];
  let exit: { exitCode: number; signal?: number } | null = null;
  pty.onData((d) => out.push(Buffer.from(d)));
  pty.onExit((e) => (exit = e));
  pty.resize(100, 30);
  // The terminal echoes input at once: write it once the shell is reading, so the order is fixed.
  await until(() => Buffer.concat(out).toString().startsWith("tty\r\n"), "tty");
  pty.write("hello\r");
  await until(() => exit !== null, "exit");
  const text = Buffer.concat(out).toString();
  assert.match(text, /^tty\r\n/);
  assert.match(text, /got hello\r\n/);
  assert.match(text, /30 100\r\n/);
  assert.deepEqual(exit, { exitCode: 3 });
});

test("ProcessLauncher.spawnPty: kill signals the terminal's process; the exit carries the signal", async (t) => {
  if (!(await havePty(t))) return;
  const r = new NodeReactor();
  const pty = r.processLauncher.spawnPty({ file: "/bin/sleep", args: ["30"], name: "xterm", cols: 80, rows: 24, cwd: "/", env: {} });
  let exit: { exitCode: number; signal?: number } | null = null;
  pty.onExit((e) => (exit = e));
  await until(() => pty.pid !== 0, "spawned");
  pty.kill("SIGTERM");
  await until(() => exit !== null, "exit");
  assert.equal(exit!.signal, 15);
});
