/**
 * Terminals for Unix sessions through the optional `node-pty` package, and a node-pty process as
 * an IProcessTransport.
 */
import { ProcessDone, ProcessTerminated, ProcessExitedAlready } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import type { IAddress, IProcessProtocol, IProcessTransport, IPushProducer, IPullProducer } from "@twisted-ts/internet/interfaces";
import { signalName } from "../ssh/_session/requests.js";

/** The part of node-pty's API used here. */
export interface PtyProcess {
  readonly pid: number;
  onData(cb: (data: string | Uint8Array) => void): unknown;
  onExit(cb: (e: { exitCode: number; signal?: number }) => void): unknown;
  write(data: string | Buffer): void;
  resize(cols: number, rows: number): void;
  kill(signal?: string): void;
}
export interface PtyModule {
  spawn(file: string, args: string[], options: { name: string; cols: number; rows: number; cwd: string; env: Record<string, string>; encoding?: null }): PtyProcess;
}

let ptyModule: PtyModule | undefined;
let ptyProbe: Promise<PtyModule | undefined> | undefined;

/** Imports `node-pty` once (it is optional: not a dependency). Resolves undefined without it. */
export function loadNodePty(): Promise<PtyModule | undefined> {
  if (ptyProbe === undefined) {
    const name = "node-pty";
    ptyProbe = (import(name) as Promise<{ default?: PtyModule } & Partial<PtyModule>>).then(
      (m) => (ptyModule = typeof m.spawn === "function" ? (m as PtyModule) : m.default),
      () => undefined,
    );
  }
  return ptyProbe;
}
void loadNodePty();

/** True when `node-pty` has been loaded, so pty requests can be granted. */
export function ptyAvailable(): boolean {
  return ptyModule !== undefined;
}

/** The loaded node-pty module, or undefined while it is not (yet) loaded. */
export function loadedNodePty(): PtyModule | undefined {
  return ptyModule;
}

/** A node-pty process as an IProcessTransport: terminal output arrives as stdout. */
export class PtyTransport implements IProcessTransport {
  private exited = false;

  constructor(
    private readonly pty: PtyProcess,
    private readonly proto: IProcessProtocol,
  ) {
    pty.onData((d) => proto.childDataReceived(1, typeof d === "string" ? Buffer.from(d, "utf8") : d));
    pty.onExit(({ exitCode, signal }) => {
      this.exited = true;
      proto.childConnectionLost(1);
      proto.childConnectionLost(2);
      const reason =
        signal !== undefined && signal !== 0
          ? new ProcessTerminated(null, `SIG${signalName(signal)}`)
          : exitCode === 0
            ? new ProcessDone(0)
            : new ProcessTerminated(exitCode);
      proto.processExited(new Failure(reason));
      proto.processEnded(new Failure(reason));
    });
  }
  get pid(): number | undefined {
    // A launched terminal's pid is 0 until the launcher has started it.
    return this.exited || this.pty.pid === 0 ? undefined : this.pty.pid;
  }
  write(data: Uint8Array | string): void {
    if (!this.exited) this.pty.write(typeof data === "string" ? data : Buffer.from(data));
  }
  writeSequence(seq: Iterable<Uint8Array | string>): void {
    for (const d of seq) this.write(d);
  }
  writeToChild(_fd: number, data: Uint8Array | string): void {
    this.write(data);
  }
  closeStdin(): void {}
  closeStdout(): void {}
  closeStderr(): void {}
  closeChildFD(): void {}
  signalProcess(signal: string | number): void {
    if (this.exited) throw new ProcessExitedAlready();
    const s = typeof signal === "number" ? String(signal) : signal.toUpperCase();
    this.pty.kill(s.startsWith("SIG") || /^\d+$/.test(s) ? s : `SIG${s}`);
  }
  loseConnection(): void {
    if (!this.exited) this.pty.kill("SIGHUP");
  }
  registerProducer(_p: IPushProducer | IPullProducer, _streaming: boolean): void {}
  unregisterProducer(): void {}
  getPeer(): IAddress {
    return { type: "UNIX", family: "UNIX", name: null, host: "", port: 0 };
  }
  getHost(): IAddress {
    return this.getPeer();
  }
}

