/**
 * The process launcher's own program (see `ProcessLauncher` in `./launcher.ts`): a small Node
 * process, forked once, that spawns children for its parent. Spawning blocks the spawner until
 * the child has exec'd, and forking copies the spawner's page tables, so a server with a large heap
 * that spawned for itself would stall every connection for milliseconds per child; this process
 * stays small and takes that stall instead.
 *
 * The parent sends `spawn` (argv, env, cwd, uid, gid), then one `fd` message per child descriptor
 * carrying a connected socket (IPC handle passing); once all have arrived the child is spawned
 * with them as its stdio, and our copies are closed. A `pty` request (node-pty, imported here) gets
 * one socket, over which the terminal's data travels both ways. Replies: `spawned` (pid),
 * `error`, `exit` (for a terminal, after its last output was written to the socket).
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import type { Socket } from "node:net";
import type { LauncherReply, LauncherRequest } from "./launcher_messages.js";

interface Pending {
  readonly request: Extract<LauncherRequest, { t: "spawn" }>;
  readonly sockets: Map<number, Socket>;
  readonly signals: string[];
}

const pending = new Map<number, Pending>();
const running = new Map<number, { kill(signal: NodeJS.Signals): unknown }>();
const pendingPty = new Map<number, Extract<LauncherRequest, { t: "pty" }>>();
const terminals = new Map<number, PtyProcess>();

/** The part of node-pty used here. */
interface PtyProcess {
  readonly pid: number;
  onData(cb: (data: string | Uint8Array) => void): unknown;
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): unknown;
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  kill(signal?: string): void;
  pause(): void;
  resume(): void;
}
interface PtyModule {
  spawn(file: string, args: string[], options: object): PtyProcess;
}
let ptyModule: Promise<PtyModule | undefined> | undefined;

/** node-pty, optional: imported on the first terminal. */
function loadPty(): Promise<PtyModule | undefined> {
  const name = "node-pty";
  ptyModule ??= (import(name) as Promise<{ default?: PtyModule } & Partial<PtyModule>>).then(
    (m) => (typeof m.spawn === "function" ? (m as PtyModule) : m.default),
    () => undefined,
  );
  return ptyModule;
}

/** Starts a terminal; its data goes both ways over `socket`, its exit after the last of it. */
async function startPty(r: Extract<LauncherRequest, { t: "pty" }>, socket: Socket): Promise<void> {
  const pty = await loadPty();
  let p: PtyProcess;
  try {
    if (pty === undefined) throw new Error("node-pty cannot be imported by the process launcher");
    p = pty.spawn(r.file, [...r.args], { name: r.name, cols: r.cols, rows: r.rows, cwd: r.cwd, env: r.env, encoding: null });
  } catch (e) {
    socket.destroy();
    reply({ t: "error", id: r.id, message: e instanceof Error ? e.message : String(e) });
    return;
  }
  running.set(r.id, p);
  terminals.set(r.id, p);
  socket.on("data", (d: Buffer) => p.write(d));
  socket.resume();
  socket.on("drain", () => p.resume());
  p.onData((d) => {
    if (!socket.write(typeof d === "string" ? Buffer.from(d, "utf8") : d)) p.pause();
  });
  p.onExit(({ exitCode, signal }) => {
    running.delete(r.id);
    terminals.delete(r.id);
    socket.end();
    reply({ t: "exit", id: r.id, code: exitCode, signal: signal !== undefined && signal !== 0 ? String(signal) : null });
  });
  reply({ t: "spawned", id: r.id, pid: p.pid });
}

function reply(message: LauncherReply): void {
  if (process.connected) process.send?.(message);
}

function start(id: number, p: Pending): void {
  pending.delete(id);
  const r = p.request;
  const stdio: Array<Socket | "ignore"> = [];
  for (let fd = 0; fd <= r.maxFD; fd++) stdio.push(p.sockets.get(fd) ?? "ignore");
  let child: ChildProcess;
  try {
    child = spawn(r.file, r.argv.slice(1), {
      argv0: r.argv[0] ?? r.file,
      env: r.env,
      stdio: stdio as StdioOptions,
      ...(r.cwd !== undefined ? { cwd: r.cwd } : {}),
      ...(r.uid !== undefined ? { uid: r.uid } : {}),
      ...(r.gid !== undefined ? { gid: r.gid } : {}),
    });
  } catch (e) {
    for (const s of p.sockets.values()) s.destroy();
    const err = e as NodeJS.ErrnoException;
    reply({ t: "error", id, message: err.message, ...(err.code !== undefined ? { code: err.code } : {}) });
    return;
  }
  // The child holds its own duplicates now; ours must go, or the parent never sees EOF.
  for (const s of p.sockets.values()) s.destroy();
  child.on("error", (err: NodeJS.ErrnoException) => {
    running.delete(id);
    reply({ t: "error", id, message: err.message, ...(err.code !== undefined ? { code: err.code } : {}) });
  });
  if (child.pid === undefined) return;
  running.set(id, child);
  child.on("exit", (code, signal) => {
    running.delete(id);
    reply({ t: "exit", id, code, signal });
  });
  reply({ t: "spawned", id, pid: child.pid });
  for (const sig of p.signals) kill(id, sig);
}

function kill(id: number, signal: string): void {
  const p = pending.get(id);
  if (p !== undefined) p.signals.push(signal);
  else running.get(id)?.kill(signal as NodeJS.Signals);
}

process.on("message", (m: LauncherRequest, handle?: Socket) => {
  if (m.t === "spawn") {
    pending.set(m.id, { request: m, sockets: new Map(), signals: [] });
  } else if (m.t === "pty") {
    pendingPty.set(m.id, m);
  } else if (m.t === "resize") {
    terminals.get(m.id)?.resize(m.cols, m.rows);
  } else if (m.t === "fd" && pendingPty.has(m.id) && handle !== undefined) {
    const r = pendingPty.get(m.id)!;
    pendingPty.delete(m.id);
    handle.on("error", () => undefined);
    // Held until the terminal exists, so nothing the parent sends is read and lost meanwhile.
    handle.pause();
    void startPty(r, handle);
  } else if (m.t === "fd") {
    const p = pending.get(m.id);
    if (p === undefined || handle === undefined) {
      handle?.destroy();
      return;
    }
    handle.on("error", () => undefined);
    p.sockets.set(m.fd, handle);
    if (p.sockets.size === p.request.fds.length) start(m.id, p);
  } else if (m.t === "kill") {
    kill(m.id, m.signal);
  }
});
// The parent is gone: nobody is left to report to.
process.on("disconnect", () => process.exit(0));
