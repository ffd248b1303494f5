import { test } from "node:test";
import assert from "node:assert/strict";

import { ProcessDone, ProcessExitedAlready, ProcessTerminated } from "@twisted-ts/internet/error";
import type { Failure } from "@twisted-ts/internet/failure";
import { ProcessProtocol } from "@twisted-ts/internet/protocol";
import type { NodeReactor } from "@twisted-ts/internet/reactor";
import { until } from "./_helpers.js";

export class Collect extends ProcessProtocol {
  out: Buffer[] = [];
  err: Buffer[] = [];
  events: string[] = [];
  exited: Failure | null = null;
  ended: Failure | null = null;
  override connectionMade(): void {
    this.events.push("made");
  }
  override outReceived(data: Uint8Array): void {
    this.out.push(Buffer.from(data));
  }
  override errReceived(data: Uint8Array): void {
    this.err.push(Buffer.from(data));
  }
  override childConnectionLost(fd: number): void {
    this.events.push(`lost ${fd}`);
    super.childConnectionLost(fd);
  }
  override processExited(reason: Failure): void {
    this.events.push("exited");
    this.exited = reason;
  }
  override processEnded(reason: Failure): void {
    this.events.push("ended");
    this.ended = reason;
  }
  stdout(): string {
    return Buffer.concat(this.out).toString();
  }
}

export const SH = "/bin/sh";

/**
 * The spawnProcess tests, run against the reactors `makeReactor` makes (spawning itself, or
 * through its process launcher), each title ending with `suffix`. A launched child has its pid
 * once the launcher has spawned it, not at once.
 */
export function processCases(makeReactor: () => NodeReactor, suffix: string, pidAtOnce = true): void {

  test(`spawnProcess: output on stdout and stderr, exit code 0 as ProcessDone, processEnded after the pipes close${suffix}`, async () => {
    const r = makeReactor();
    const p = new Collect();
    const t = r.spawnProcess(p, SH, ["sh", "-c", 'echo "out $0 $FOO"; echo err >&2'], { env: { FOO: "bar" } });
    if (pidAtOnce) assert.equal(typeof t.pid, "number");
    else await until(() => typeof t.pid === "number" || p.exited !== null, "pid");
    await until(() => p.ended !== null, "processEnded");
    assert.equal(p.stdout(), "out sh bar\n");
    assert.equal(Buffer.concat(p.err).toString(), "err\n");
    assert.ok(p.exited!.check(ProcessDone));
    assert.ok(p.ended!.check(ProcessDone));
    assert.equal(p.events[0], "made");
    assert.equal(p.events.at(-1), "ended");
    for (const fd of [0, 1, 2]) assert.ok(p.events.includes(`lost ${fd}`), `fd ${fd} reported lost`);
  });

  test(`spawnProcess: a non-zero exit is ProcessTerminated with exitCode${suffix}`, async () => {
    const r = makeReactor();
    const p = new Collect();
    r.spawnProcess(p, SH, ["sh", "-c", "exit 3"]);
    await until(() => p.ended !== null);
    const e = p.ended!.value as ProcessTerminated;
    assert.ok(e instanceof ProcessTerminated);
    assert.equal(e.exitCode, 3);
    assert.equal(e.signal, null);
  });

  test(`spawnProcess: stdin is written and closed; cat echoes it back${suffix}`, async () => {
    const r = makeReactor();
    const p = new Collect();
    const t = r.spawnProcess(p, "/bin/cat", ["cat"]);
    t.write("hello ");
    t.writeSequence([Buffer.from("from "), "stdin"]);
    t.closeStdin();
    await until(() => p.ended !== null);
    assert.equal(p.stdout(), "hello from stdin");
    assert.ok(p.ended!.check(ProcessDone));
  });

  test(`spawnProcess: signalProcess ends the process with ProcessTerminated carrying the signal${suffix}`, async () => {
    const r = makeReactor();
    const p = new Collect();
    const t = r.spawnProcess(p, SH, ["sh", "-c", "echo ready; exec sleep 30"]);
    await until(() => p.stdout() === "ready\n");
    t.signalProcess("TERM");
    await until(() => p.ended !== null);
    const e = p.ended!.value as ProcessTerminated;
    assert.ok(e instanceof ProcessTerminated);
    assert.equal(e.signal, "SIGTERM");
    assert.equal(e.exitCode, null);
    assert.throws(() => t.signalProcess("KILL"), ProcessExitedAlready);
  });

  test(`spawnProcess: childFDs maps an extra pipe the child writes to (fd 3) and the cwd is set by path${suffix}`, async () => {
    const r = makeReactor();
    const got: string[] = [];
    class Fd3 extends Collect {
      override childDataReceived(fd: number, data: Uint8Array): void {
        if (fd === 3) got.push(Buffer.from(data).toString());
        else super.childDataReceived(fd, data);
      }
    }
    const p = new Fd3();
    r.spawnProcess(p, SH, ["sh", "-c", "pwd; echo three >&3"], { path: "/tmp", childFDs: { 0: "w", 1: "r", 2: "r", 3: "r" } });
    await until(() => p.ended !== null);
    assert.equal(p.stdout(), "/tmp\n");
    assert.deepEqual(got, ["three\n"]);
    assert.ok(p.events.includes("lost 3"));
  });

  test(`spawnProcess: a missing executable ends the protocol with ProcessTerminated instead of throwing${suffix}`, async () => {
    const r = makeReactor();
    const p = new Collect();
    r.spawnProcess(p, "/nonexistent/program", ["program"]);
    await until(() => p.ended !== null);
    assert.ok(p.ended!.check(ProcessTerminated));
  });

  test(`spawnProcess: uid and gid run the child as another user; without root that fails as ProcessTerminated${suffix}`, async () => {
    const root = process.getuid?.() === 0;
    // As root, become nobody; as anyone else, try to become root.
    const id = root ? 65534 : 0;
    const r = makeReactor();
    const p = new Collect();
    r.spawnProcess(p, SH, ["sh", "-c", "id -u; id -g"], { uid: id, gid: id, env: { PATH: "/usr/bin:/bin" } });
    await until(() => p.ended !== null);
    if (root) {
      assert.equal(p.stdout(), "65534\n65534\n");
    } else {
      // Not allowed to change user: the spawn fails (EPERM) and ends the protocol, as a missing program does.
      assert.ok(p.ended!.check(ProcessTerminated));
      assert.equal(p.stdout(), "");
    }
  });

  /** Copies what it is given, then scribbles over it; records the memory each read lived in. */
  class BorrowingCollect extends Collect {
    readonly borrowsReceivedData = true as const;
    buffers = new Map<number, Set<ArrayBufferLike>>();
    reads = 0;
    override childDataReceived(fd: number, data: Uint8Array): void {
      const seen = this.buffers.get(fd) ?? new Set<ArrayBufferLike>();
      seen.add(data.buffer);
      this.buffers.set(fd, seen);
      this.reads++;
      super.childDataReceived(fd, data);
      data.fill(0x2a);
    }
  }

  test(`spawnProcess: a borrowing protocol gets its output as views of one reused buffer per pipe, intact, on both pipes${suffix}`, async () => {
    const r = makeReactor();
    const p = new BorrowingCollect();
    // 3 MiB of numbered lines on stdout, a line on stderr, then exit 5.
    const script = "seq -f '%063.0f' 0 49151; echo bye >&2; exit 5";
    r.spawnProcess(p, SH, ["sh", "-c", script], {});
    await until(() => p.ended !== null, "processEnded");
    const lines = p.stdout().split("\n");
    assert.equal(lines.length, 49153);
    for (let i = 0; i < 49152; i++) if (lines[i] !== String(i).padStart(63, "0")) assert.fail(`line ${i}: ${lines[i]}`);
    assert.equal(Buffer.concat(p.err).toString(), "bye\n");
    assert.ok(p.reads > 2, "several reads");
    assert.equal(p.buffers.get(1)?.size, 1, "every read of stdout in the same buffer");
    assert.equal(p.buffers.get(2)?.size, 1);
    assert.ok(p.ended!.check(ProcessTerminated));
    assert.equal((p.ended!.value as ProcessTerminated).exitCode, 5);
    for (const fd of [0, 1, 2]) assert.ok(p.events.includes(`lost ${fd}`), `fd ${fd} reported lost`);
  });

  test(`spawnProcess: pauseProducing stops reading the child's output until resumeProducing${suffix}`, async () => {
    const r = makeReactor();
    const p = new BorrowingCollect();
    const t = r.spawnProcess(p, SH, ["sh", "-c", "head -c 4194304 /dev/zero"], {}) as unknown as {
      pauseProducing(): void;
      resumeProducing(): void;
    };
    await until(() => p.reads > 0, "first read");
    t.pauseProducing();
    const at = p.reads;
    await new Promise((resolve) => setTimeout(resolve, 200));
    // At most the reads already under way when it paused.
    assert.ok(p.reads <= at + 1, `${p.reads - at} reads while paused`);
    assert.equal(p.ended, null);
    t.resumeProducing();
    await until(() => p.ended !== null, "processEnded");
    assert.equal(Buffer.concat(p.out).length, 4194304);
  });
}
