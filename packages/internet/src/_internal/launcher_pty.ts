/**
 * A terminal spawned by the process launcher: node-pty runs in the launcher and the terminal's
 * data travels over one socket between it and us, with node-pty's process interface on our side
 * (`onData`, `onExit`, `write`, `resize`, `kill`, `pid`).
 */
import type { Socket } from "node:net";
import { Logger } from "../log.js";
import type { ProcessLauncher } from "./launcher.js";

const log = new Logger("twisted-ts.internet.launcher");

/** What to start on a terminal. */
export interface PtyRequest {
  readonly file: string;
  /** argv after argv[0] (node-pty makes argv[0] the file). */
  readonly args: readonly string[];
  /** `TERM`'s value. */
  readonly name: string;
  readonly cols: number;
  readonly rows: number;
  readonly cwd: string;
  readonly env: Record<string, string>;
}

/** Exit code reported when the terminal could not be started or its launcher died. */
const FAILED = 1;

export class LaunchedPty {
  /** The child's pid once the launcher has started it; 0 before. */
  pid = 0;
  done = false;
  private socket: Socket | null = null;
  private readonly dataCallbacks: Array<(data: Uint8Array) => void> = [];
  private readonly exitCallbacks: Array<(e: { exitCode: number; signal?: number }) => void> = [];
  /**
   * Input, resizes and signals before the child exists, for then (the launcher's copy of the
   * socket could read input meanwhile, and knows no terminal to resize or signal).
   */
  private held: Array<() => void> | null = [];
  /** The exit, reported once the terminal's output has all arrived (the socket's end). */
  private exit: { exitCode: number; signal?: number } | null = null;
  private outputEnded = false;
  private reported = false;

  constructor(
    private readonly launcher: ProcessLauncher,
    readonly id: number,
  ) {}

  onData(cb: (data: Uint8Array) => void): void {
    this.dataCallbacks.push(cb);
  }
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): void {
    this.exitCallbacks.push(cb);
  }

  write(data: string | Uint8Array): void {
    const b = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
    if (this.held !== null) this.held.push(() => this.write(b));
    else if (!this.done) this.socket?.write(b);
  }

  resize(cols: number, rows: number): void {
    if (this.held !== null) this.held.push(() => this.resize(cols, rows));
    else if (!this.done) this.launcher._send({ t: "resize", id: this.id, cols, rows });
  }

  kill(signal = "SIGHUP"): void {
    if (this.held !== null) this.held.push(() => this.kill(signal));
    else if (!this.done) this.launcher._send({ t: "kill", id: this.id, signal });
  }

  /** @internal */
  _connected(socket: Socket): void {
    this.socket = socket;
    socket.on("data", (d: Buffer) => {
      for (const cb of this.dataCallbacks) cb(d);
    });
    socket.on("end", () => {
      this.outputEnded = true;
      this.report();
    });
    socket.on("close", () => {
      this.outputEnded = true;
      this.report();
    });
  }

  /** @internal */
  _spawned(pid: number): void {
    this.pid = pid;
    const held = this.held ?? [];
    this.held = null;
    for (const f of held) f();
  }

  /** @internal */
  _exited(code: number | null, signal: string | null): void {
    this.done = true;
    this.held = null;
    const n = signal === null ? undefined : Number(signal);
    this.exit = { exitCode: code ?? (n === undefined ? FAILED : 0), ...(n !== undefined && n > 0 ? { signal: n } : {}) };
    if (code === null && signal === null) this.outputEnded = true;
    this.report();
  }

  /** @internal */
  _failed(err: Error): void {
    this.done = true;
    this.held = null;
    this.exit = { exitCode: FAILED };
    this.outputEnded = true;
    log.warn("terminal could not be started: {error}", { error: err.message });
    this.report();
  }

  private report(): void {
    if (this.reported || this.exit === null || !this.outputEnded) return;
    this.reported = true;
    this.socket?.destroy();
    for (const cb of this.exitCallbacks) cb(this.exit);
  }
}
