/**
 * `ProcessLauncher`: spawns children from a small helper process instead of this one.
 *
 * `child_process.spawn` returns only once the child has exec'd, and libuv forks with `clone()`
 * without `CLONE_VM`, copying the spawner's page tables: from a server with a large heap on a busy
 * machine each spawn stops the event loop for milliseconds, so one user opening many sessions
 * stalls every connection. The launcher (`./launcher_process.ts`, forked lazily, once) spawns
 * instead, and the stall is its own.
 *
 * The child's stdio are sockets, as OpenSSH gives its non-pty children socketpairs: for each
 * descriptor this process connects to its own private UNIX socket (in a 0700 directory), keeps the
 * connecting end as the child's pipe, and sends the accepted end to the launcher (IPC handle
 * passing), which makes it the child's descriptor. Nothing is relayed: the child's output arrives
 * on our sockets straight from the kernel. Nothing may be written to an input socket before the
 * `spawn` event (the launcher's short-lived copy could read it); the process transport holds
 * writes until then.
 *
 * If the launcher dies it is started again on the next spawn; children not yet started fail with
 * an error, running ones are hung up and reported as terminated (their exit status is lost).
 */
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { EventEmitter } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { LauncherReply, LauncherRequest } from "./launcher_messages.js";
import { LaunchedPty, type PtyRequest } from "./launcher_pty.js";

export { LaunchedPty, type PtyRequest } from "./launcher_pty.js";

/** What the launcher reports on. */
interface LaunchedChild {
  readonly id: number;
  readonly done: boolean;
  readonly pid: number | undefined;
  _spawned(pid: number): void;
  _exited(code: number | null, signal: string | null): void;
  _failed(err: Error): void;
}

/** What to spawn, as `spawnProcess` was asked. */
export interface LaunchRequest {
  readonly file: string;
  /** The whole argv, argv[0] included. */
  readonly argv: readonly string[];
  readonly env: Record<string, string>;
  readonly cwd?: string | undefined;
  readonly uid?: number | undefined;
  readonly gid?: number | undefined;
  /** The child's descriptors that get a pipe: `"w"` we write to it, `"r"` we read from it. */
  readonly pipes: ReadonlyMap<number, "r" | "w">;
}

const TOKEN_LENGTH = 16;

/** The private directories of this process's launchers, removed when it exits. */
const socketDirs = new Set<string>();
let exitHookAdded = false;
function removeSocketDirs(): void {
  for (const dir of socketDirs) rmSync(dir, { recursive: true, force: true });
}

/**
 * A child spawned through a {@link ProcessLauncher}, with the part of `ChildProcess`'s interface
 * the process transport uses: `stdio`, `pid`, `kill()`, and the `error` and `exit` events.
 */
export class LaunchedProcess extends EventEmitter {
  /** Our end of each of the child's pipes, by descriptor. */
  readonly stdio: Array<Socket | null> = [];
  pid: number | undefined = undefined;
  /** True once the launcher reported the child's exit or failure (or died). */
  done = false;
  private readonly queuedSignals: string[] = [];

  get stdin(): Socket | null {
    return this.stdio[0] ?? null;
  }
  get stdout(): Socket | null {
    return this.stdio[1] ?? null;
  }
  get stderr(): Socket | null {
    return this.stdio[2] ?? null;
  }

  constructor(
    private readonly launcher: ProcessLauncher,
    readonly id: number,
    private readonly pipes: ReadonlyMap<number, "r" | "w">,
  ) {
    super();
  }

  /** Sends `signal` to the child (through the launcher, which knows whether it is still running). */
  kill(signal: string | number = "SIGTERM"): boolean {
    if (this.done) return false;
    const s = String(signal);
    if (this.pid === undefined) this.queuedSignals.push(s);
    else this.launcher._send({ t: "kill", id: this.id, signal: s });
    return true;
  }

  /** @internal */
  _spawned(pid: number): void {
    this.pid = pid;
    this.emit("spawn");
    for (const s of this.queuedSignals.splice(0)) this.launcher._send({ t: "kill", id: this.id, signal: s });
  }

  /** @internal As Node's ChildProcess: our input ends close when the child exits. */
  _exited(code: number | null, signal: string | null): void {
    if (this.done) return;
    this.done = true;
    for (const [fd, mode] of this.pipes) if (mode === "w") this.stdio[fd]?.destroy();
    this.emit("exit", code, signal);
  }

  /** @internal */
  _failed(err: Error): void {
    if (this.done) return;
    this.done = true;
    for (const s of this.stdio) s?.destroy();
    this.emit("error", err);
  }
}

/**
 * Spawns processes from a small long-lived helper process (see the module comment). One is
 * enough per server process; `NodeReactor.processLauncher` keeps one. The helper and its private
 * socket never keep this process alive while no child runs.
 */
export class ProcessLauncher {
  private proc: ChildProcess | null = null;
  private server: Server | null = null;
  private dir: string | null = null;
  private nextID = 1;
  private readonly children = new Map<number, LaunchedChild>();
  /** Accepted ends waiting for their token, by token. */
  private readonly awaiting = new Map<string, (accepted: Socket) => void>();

  /** The launcher process's pid while it runs (tests kill it to check recovery). */
  get launcherPid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts `request.file` with sockets for its pipes; the result reports `error` or `exit`. */
  spawn(request: LaunchRequest): LaunchedProcess {
    const id = this.nextID++;
    const child = new LaunchedProcess(this, id, request.pipes);
    if (!this.begin(child)) return child;
    const fds = [...request.pipes.keys()];
    this._send({
      t: "spawn",
      id,
      file: request.file,
      argv: request.argv,
      env: request.env,
      fds,
      maxFD: Math.max(2, ...fds),
      ...(request.cwd !== undefined ? { cwd: request.cwd } : {}),
      ...(request.uid !== undefined ? { uid: request.uid } : {}),
      ...(request.gid !== undefined ? { gid: request.gid } : {}),
    });
    for (const [fd, mode] of request.pipes) {
      const ours = this.connectPipe(child, fd);
      // Our input end is a duplex socket that is never read: it is done once written and shut.
      if (mode === "w") ours.once("finish", () => ours.destroy());
      child.stdio[fd] = ours;
    }
    return child;
  }

  /**
   * Starts `request.file` on a terminal made by node-pty in the launcher (which must be able to
   * import it); the terminal's data travels over one socket. A node-pty-like process.
   */
  spawnPty(request: PtyRequest): LaunchedPty {
    const id = this.nextID++;
    const child = new LaunchedPty(this, id);
    if (!this.begin(child)) return child;
    this._send({ t: "pty", ...request, id });
    child._connected(this.connectPipe(child, 0));
    return child;
  }

  /** Starts the launcher if need be and registers `child`; false (and `child` fails) if it cannot. */
  private begin(child: LaunchedChild): boolean {
    try {
      this.listening();
      this.started();
    } catch (e) {
      setImmediate(() => child._failed(e instanceof Error ? e : new Error(String(e))));
      return false;
    }
    this.children.set(child.id, child);
    this.updateRef();
    return true;
  }

  /** Our end of a new socket whose other end goes to the launcher as `child`'s descriptor `fd`. */
  private connectPipe(child: LaunchedChild, fd: number): Socket {
    const token = randomBytes(TOKEN_LENGTH);
    const ours = connect(this.server!.address() as string);
    let connected = false;
    ours.once("connect", () => (connected = true));
    ours.on("error", (err: Error) => {
      // Later errors are the process transport's; one before the connection fails the spawn.
      if (connected || child.done) return;
      this.children.delete(child.id);
      this.updateRef();
      child._failed(err);
    });
    this.awaiting.set(token.toString("hex"), (accepted) => {
      if (child.done) accepted.destroy();
      else this.proc?.send({ t: "fd", id: child.id, fd } satisfies LauncherRequest, accepted);
    });
    ours.write(token);
    return ours;
  }

  /** Stops the launcher and removes the private socket (children already running keep running). */
  close(): void {
    this.proc?.kill();
    this.server?.close();
    this.server = null;
    this.removeDir();
  }

  /** @internal */
  _send(message: LauncherRequest): void {
    this.proc?.send(message);
  }

  private listening(): Server {
    if (this.server !== null) return this.server;
    this.dir = mkdtempSync(join(tmpdir(), "twisted-launcher-"));
    if (!exitHookAdded) process.once("exit", removeSocketDirs);
    exitHookAdded = true;
    socketDirs.add(this.dir);
    // Half-open: an accepted end must stay whole until it has been handed to the launcher.
    const server = createServer({ allowHalfOpen: true }, (s) => this.accepted(s));
    // Three connections per spawn, all made in one turn when many sessions start together.
    server.listen({ path: join(this.dir, "s"), backlog: 4096 });
    server.unref();
    this.server = server;
    return server;
  }

  private accepted(s: Socket): void {
    s.on("error", () => undefined);
    let got = Buffer.alloc(0);
    const onData = (d: Buffer): void => {
      got = Buffer.concat([got, d]);
      if (got.length < TOKEN_LENGTH) return;
      s.off("data", onData);
      s.pause();
      const key = got.subarray(0, TOKEN_LENGTH).toString("hex");
      const deliver = this.awaiting.get(key);
      this.awaiting.delete(key);
      if (deliver === undefined || got.length !== TOKEN_LENGTH) s.destroy();
      else deliver(s);
    };
    s.on("data", onData);
  }

  private started(): ChildProcess {
    if (this.proc !== null) return this.proc;
    const proc = fork(new URL("./launcher_process.js", import.meta.url), [], {
      stdio: ["ignore", "ignore", "inherit", "ipc"],
      env: {},
      execArgv: [],
    });
    this.proc = proc;
    proc.on("message", (m: LauncherReply) => this.replied(m));
    proc.on("error", () => this.lost(proc, "the process launcher could not be started"));
    proc.on("exit", () => this.lost(proc, "the process launcher exited"));
    return proc;
  }

  private replied(m: LauncherReply): void {
    const child = this.children.get(m.id);
    if (child === undefined) return;
    if (m.t === "spawned") {
      child._spawned(m.pid);
      return;
    }
    this.children.delete(m.id);
    this.updateRef();
    if (m.t === "exit") child._exited(m.code, m.signal);
    else child._failed(Object.assign(new Error(m.message), m.code !== undefined ? { code: m.code } : {}));
  }

  /** The launcher died: fail what it had not started, hang up what it had. */
  private lost(proc: ChildProcess, why: string): void {
    if (this.proc !== proc) return;
    this.proc = null;
    const children = [...this.children.values()];
    this.children.clear();
    this.awaiting.clear();
    for (const child of children) {
      if (child.pid === undefined || child.pid === 0) {
        child._failed(new Error(why));
        continue;
      }
      try {
        process.kill(child.pid, "SIGHUP");
      } catch {
        // Already gone.
      }
      child._exited(null, null);
    }
  }

  /** The launcher keeps this process alive only while it has children to report on. */
  private updateRef(): void {
    const p = this.proc;
    if (p === null) return;
    const channel = p.channel as { ref(): void; unref(): void } | null | undefined;
    if (this.children.size > 0) {
      p.ref();
      channel?.ref();
    } else {
      p.unref();
      channel?.unref();
    }
  }

  private removeDir(): void {
    if (this.dir === null) return;
    rmSync(this.dir, { recursive: true, force: true });
    socketDirs.delete(this.dir);
    this.dir = null;
  }
}
