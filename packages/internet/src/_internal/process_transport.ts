/**
 * A child process as a transport (Twisted's `process.Process`) over `child_process.spawn`.
 *
 * As in Twisted, `args[0]` is the program's `argv[0]` (the executable is found as given, or on
 * the child's PATH), the environment defaults to empty, and `childFDs` maps the child's
 * descriptors: `"w"` a pipe we write, `"r"` a pipe we read, a number one of our descriptors the
 * child inherits. `processExited` comes when the process exits; `processEnded` once it has
 * exited and all its pipes are closed.
 */
import { ChildProcess, spawn } from "node:child_process";
import type { EventEmitter } from "node:events";
import type { StdioOptions } from "node:child_process";
import { Socket } from "node:net";
import type { Readable, Writable } from "node:stream";
import { UNIXAddress } from "../address.js";
import { ProcessDone, ProcessExitedAlready, ProcessTerminated } from "../error.js";
import { Failure } from "../failure.js";
import type {
  IAddress,
  IProcessProtocol,
  IProcessTransport,
  IPullProducer,
  IPushProducer,
  SpawnProcessOptions,
} from "../interfaces.js";
import { borrowsReceivedData } from "../interfaces.js";
import { moveToReusedReadBuffer } from "./tcp_connection.js";
import type { Logger } from "../log.js";
import { LaunchedProcess, type ProcessLauncher } from "./launcher.js";

export interface ProcessReactor {
  readonly log: Logger;
  readonly processes: Set<ProcessTransport>;
  /** Where `spawnProcess(…, { launcher: true })` spawns. */
  readonly processLauncher?: ProcessLauncher;
}

function signalName(sig: string | number): NodeJS.Signals | number {
  if (typeof sig === "number") return sig;
  const s = sig.toUpperCase();
  return (s.startsWith("SIG") ? s : `SIG${s}`) as NodeJS.Signals;
}

/** Input held for a launched child not yet spawned beyond which a streaming producer is paused. */
const HELD_LIMIT = 64 * 1024;

/** The size of the buffer a child's output pipe is read into when it is reused. */
const READ_BUFFER_SIZE = 64 * 1024;

/**
 * Reads a child's output pipe into one reused buffer, handing each read to `deliver` as a view of
 * it, for a process protocol that borrows its data (IBorrowingProtocol): Node would read into a
 * new buffer per read (an allocation, fresh pages to fault in and garbage to collect for every few
 * KiB a program writes). Null where the pipe must be read as a stream.
 */
function readIntoReusedBuffer(stream: Readable, deliver: (chunk: Uint8Array) => void): Socket | null {
  if (!(stream instanceof Socket)) return null;
  const onread = {
    buffer: Buffer.allocUnsafe(READ_BUFFER_SIZE),
    callback: (nread: number, buf: Uint8Array): boolean => {
      deliver(buf.subarray(0, nread));
      return true;
    },
  };
  return moveToReusedReadBuffer(stream, onread, { writable: false, allowHalfOpen: false });
}

export class ProcessTransport implements IProcessTransport {
  /** The child: Node's own, or one a {@link ProcessLauncher} spawned (`launcher: true`). */
  readonly child: ChildProcess | LaunchedProcess;
  /** The child's exit status once it has exited. */
  status: { code: number | null; signal: string | null } | null = null;
  private readonly openPipes = new Set<number>();
  private readonly pipeModes: Map<number, "r" | "w">;
  private ended = false;
  private lostReported = new Set<number>();
  private spawnError: Error | null = null;
  private producer: IPushProducer | IPullProducer | null = null;
  /** The streams of the child's pipes by descriptor (an output pipe may be our own socket on it). */
  private readonly pipes = new Map<number, Readable | Writable>();
  private streaming = false;
  /** Writes and closes of input pipes waiting for a launched child to exist (null: none wait). */
  private held: Array<() => void> | null = null;
  /** Bytes written while held, and whether that paused the producer. */
  private heldBytes = 0;
  private pausedWhileHeld = false;
  /** Whether the child's output is paused (pauseProducing). */
  private paused = false;

  constructor(
    private readonly reactor: ProcessReactor,
    readonly proto: IProcessProtocol,
    executable: string,
    args: readonly string[],
    options: SpawnProcessOptions,
  ) {
    const childFDs = options.childFDs ?? { 0: "w", 1: "r", 2: "r" };
    const maxFD = Math.max(2, ...Object.keys(childFDs).map(Number));
    const stdio: Array<"pipe" | "ignore" | number> = [];
    this.pipeModes = new Map();
    for (let fd = 0; fd <= maxFD; fd++) {
      const m = childFDs[fd];
      if (m === "r" || m === "w") {
        stdio.push("pipe");
        this.pipeModes.set(fd, m);
      } else if (typeof m === "number") stdio.push(m);
      else stdio.push("ignore");
    }
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(options.env ?? {})) if (v !== undefined) env[k] = v;
    const launcher = options.launcher === true ? reactor.processLauncher : undefined;
    if (launcher !== undefined && stdio.every((x) => typeof x !== "number")) {
      this.child = launcher.spawn({
        file: executable,
        argv: [args[0] ?? executable, ...args.slice(1)],
        env,
        cwd: options.path,
        uid: options.uid,
        gid: options.gid,
        pipes: this.pipeModes,
      });
      const held: Array<() => void> = [];
      this.held = held;
      this.child.once("spawn", () => this.release(held));
    } else try {
      this.child = spawn(executable, args.slice(1), {
        argv0: args[0] ?? executable,
        env,
        stdio: stdio as StdioOptions,
        ...(options.path !== undefined ? { cwd: options.path } : {}),
        ...(options.uid !== undefined ? { uid: options.uid } : {}),
        ...(options.gid !== undefined ? { gid: options.gid } : {}),
      });
    } catch (e) {
      // Some failures (EPERM for a uid we may not take) are thrown rather than emitted: report
      // them as the emitted ones are (below), once the protocol is connected.
      const child = new ChildProcess();
      setImmediate(() => child.emit("error", e instanceof Error ? e : new Error(String(e))));
      this.child = child;
    }
    reactor.processes.add(this);
    const borrowing = borrowsReceivedData(proto);
    // An unspawned ChildProcess has no stdio at all.
    const stdioStreams = (this.child.stdio as ReadonlyArray<Readable | Writable | null | undefined> | null) ?? [];
    for (const [fd, mode] of this.pipeModes) {
      let stream: Readable | Writable | null | undefined = stdioStreams[fd];
      if (stream === null || stream === undefined) continue;
      this.openPipes.add(fd);
      if (mode === "r") {
        const s = stream as Readable;
        if (borrowing && s instanceof Socket && s.connecting) {
          // A launched child's socket: its handle can move only once connected (nothing is
          // read before that).
          s.once("connect", () => {
            const moved = this.readOutput(fd, s, true);
            if (moved !== s) this.watchPipe(fd, moved);
            if (this.paused) moved.pause();
          });
        } else stream = this.readOutput(fd, s, borrowing);
      }
      this.watchPipe(fd, stream);
      if (mode === "w") {
        (stream as Writable).on("drain", () => {
          const p = this.producer;
          if (p !== null) p.resumeProducing();
        });
      }
    }
    const child = this.child as EventEmitter;
    child.on("error", (err: Error) => {
      if (this.status !== null) return;
      this.spawnError = err;
      this.held = null;
      this.reactor.log.failure("Could not run {executable}", new Failure(err), "error", { executable });
      this.exited(1, null);
      for (const fd of [...this.openPipes]) this.pipeLost(fd);
    });
    child.on("exit", (code: number | null, signal: string | null) => this.exited(code, signal));
  }

  /** Delivers what the child writes on `fd` to the protocol; the stream now to read it from. */
  private readOutput(fd: number, stream: Readable, borrowing: boolean): Readable {
    const deliver = (chunk: Uint8Array): void => {
      try {
        this.proto.childDataReceived(fd, chunk);
      } catch (e) {
        this.reactor.log.failure("Unhandled error in childDataReceived", new Failure(e), "error");
      }
    };
    const reused = borrowing ? readIntoReusedBuffer(stream, deliver) : null;
    if (reused !== null) stream = reused;
    else stream.on("data", deliver);
    stream.on("end", () => this.pipeLost(fd));
    return stream;
  }

  private watchPipe(fd: number, stream: Readable | Writable): void {
    this.pipes.set(fd, stream);
    stream.on("close", () => this.pipeLost(fd));
    stream.on("error", (err: Error) => {
      this.reactor.log.debug("child fd {fd} error: {error}", { fd, error: err.message });
    });
  }

  get pid(): number | undefined {
    return this.status === null ? this.child.pid : undefined;
  }

  private reason(): Failure {
    const st = this.status ?? { code: null, signal: null };
    if (st.code === 0 && st.signal === null) return new Failure(new ProcessDone(0));
    return new Failure(new ProcessTerminated(st.code, st.signal, st.code));
  }

  private exited(code: number | null, signal: string | null): void {
    if (this.status !== null) return;
    this.status = { code, signal };
    try {
      this.proto.processExited(this.reason());
    } catch (e) {
      this.reactor.log.failure("Unhandled error in processExited", new Failure(e), "error");
    }
    this.maybeEnded();
  }

  private pipeLost(fd: number): void {
    if (this.lostReported.has(fd)) return;
    this.lostReported.add(fd);
    this.openPipes.delete(fd);
    try {
      this.proto.childConnectionLost(fd);
    } catch (e) {
      this.reactor.log.failure("Unhandled error in childConnectionLost", new Failure(e), "error");
    }
    this.maybeEnded();
  }

  private maybeEnded(): void {
    if (this.ended || this.status === null || this.openPipes.size > 0) return;
    this.ended = true;
    this.reactor.processes.delete(this);
    try {
      this.proto.processEnded(this.reason());
    } catch (e) {
      this.reactor.log.failure("Unhandled error in processEnded", new Failure(e), "error");
    }
  }

  /** A launched child exists: what was written meanwhile goes to it. */
  private release(held: ReadonlyArray<() => void>): void {
    this.held = null;
    for (const f of held) f();
    const stdin = this.pipes.get(0) as Writable | undefined;
    if (this.pausedWhileHeld && this.producer !== null && stdin?.writableNeedDrain !== true) this.producer.resumeProducing();
    this.pausedWhileHeld = false;
  }

  writeToChild(childFD: number, data: Uint8Array | string): void {
    if (this.held !== null) {
      this.held.push(() => this.writeToChild(childFD, data));
      this.heldBytes += data.length;
      if (this.heldBytes > HELD_LIMIT && this.producer !== null && this.streaming && !this.pausedWhileHeld) {
        this.pausedWhileHeld = true;
        (this.producer as IPushProducer).pauseProducing();
      }
      return;
    }
    const s = this.pipes.get(childFD) as Writable | undefined;
    if (s === null || s === undefined || this.pipeModes.get(childFD) !== "w" || s.writableEnded) return;
    const ok = s.write(typeof data === "string" ? Buffer.from(data, "utf8") : data);
    if (!ok && this.producer !== null && this.streaming) (this.producer as IPushProducer).pauseProducing();
  }

  write(data: Uint8Array | string): void {
    this.writeToChild(0, data);
  }

  /** Writes the pieces to the child's stdin together (corked: one system call where possible). */
  writeSequence(data: Iterable<Uint8Array | string>): void {
    const s = this.pipes.get(0) as Writable | undefined;
    s?.cork();
    try {
      for (const d of data) this.write(d);
    } finally {
      s?.uncork();
    }
  }

  closeChildFD(childFD: number): void {
    if (this.held !== null && this.pipeModes.get(childFD) === "w") {
      this.held.push(() => this.closeChildFD(childFD));
      return;
    }
    const s = this.pipes.get(childFD);
    if (s === undefined) return;
    if (this.pipeModes.get(childFD) === "w") (s as Writable).end();
    else s.destroy();
  }

  closeStdin(): void {
    this.closeChildFD(0);
  }
  closeStdout(): void {
    this.closeChildFD(1);
  }
  closeStderr(): void {
    this.closeChildFD(2);
  }

  loseConnection(): void {
    this.closeStdin();
    this.closeStderr();
    this.closeStdout();
  }

  signalProcess(signal: string | number): void {
    if (this.status !== null || this.spawnError !== null) throw new ProcessExitedAlready();
    this.child.kill(signalName(signal));
  }

  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void {
    this.producer = producer;
    this.streaming = streaming;
    if (!streaming) setImmediate(() => this.producer === producer && producer.resumeProducing());
  }

  unregisterProducer(): void {
    this.producer = null;
  }

  // --- IPushProducer (the child's output), as Twisted's Process -------------------------------

  /** Stops reading the child's output pipes (the child blocks once they fill). */
  pauseProducing(): void {
    this.paused = true;
    for (const [fd, s] of this.pipes) if (this.pipeModes.get(fd) === "r") (s as Readable).pause();
  }

  resumeProducing(): void {
    this.paused = false;
    for (const [fd, s] of this.pipes) if (this.pipeModes.get(fd) === "r") (s as Readable).resume();
  }

  stopProducing(): void {
    this.loseConnection();
  }

  getPeer(): IAddress {
    return new UNIXAddress(null);
  }
  getHost(): IAddress {
    return new UNIXAddress(null);
  }
}
