/**
 * The reactor (`twisted.internet.reactor`), built on Node's own event loop: sockets, timers and
 * child processes are Node handles, so nothing polls and nothing blocks. Connections work as
 * soon as they are made, whether or not `run()` was called; `run()` adds Twisted's lifecycle:
 * startup triggers, keeping the process alive until `stop()`, and an orderly shutdown (before
 * triggers, whose Deferreds are waited for; then listening ports closed and connections dropped;
 * then after triggers).
 *
 * ```ts
 * import { reactor } from "@twisted-ts/internet";
 * reactor.listenTCP(8000, Factory.forProtocol(Echo));
 * await reactor.run();
 * ```
 *
 * `reactor` is the process-wide instance; tests make their own with `new NodeReactor()`.
 */
import { Deferred } from "./defer.js";
import { ConnectionLost, ReactorAlreadyRunning, ReactorNotRestartable, ReactorNotRunning } from "./error.js";
import { Failure } from "./failure.js";
import type {
  IClientFactory,
  IContextFactory,
  IDatagramProtocol,
  IDelayedCall,
  IProcessProtocol,
  IProtocolFactory,
  IReactor,
  SpawnProcessOptions,
  SystemEvent,
  SystemEventPhase,
  TLSOptions,
} from "./interfaces.js";
import { Logger } from "./log.js";
import { ProcessTransport } from "./_internal/process_transport.js";
import { ProcessLauncher } from "./_internal/launcher.js";
import { ReactorDelayedCall } from "./_internal/reactor_time.js";
import type { Connection } from "./_internal/tcp_connection.js";
import { StreamConnector, StreamPort } from "./_internal/tcp_port.js";
import { UDPPort } from "./_internal/udp_port.js";

export { StreamConnector as Connector, StreamPort as Port } from "./_internal/tcp_port.js";
export { Connection as TCPTransport } from "./_internal/tcp_connection.js";
export { UDPPort } from "./_internal/udp_port.js";
export { ProcessTransport as Process } from "./_internal/process_transport.js";
export { LaunchedProcess, ProcessLauncher, type LaunchRequest } from "./_internal/launcher.js";

/**
 * TLS settings for `listenSSL` / `connectSSL` / `startTLS`: Twisted's context factory, holding
 * Node's TLS options (`key`, `cert`, `ca`, `rejectUnauthorized`, `servername`, …).
 */
export class ContextFactory implements IContextFactory {
  constructor(readonly options: TLSOptions = {}) {}
  getContext(): TLSOptions {
    return this.options;
  }
}

interface Trigger {
  readonly id: number;
  readonly phase: SystemEventPhase;
  readonly event: SystemEvent;
  readonly fn: (...args: unknown[]) => unknown;
  readonly args: readonly unknown[];
}

/** What `addSystemEventTrigger` returns, for `removeSystemEventTrigger`. */
export interface TriggerID {
  readonly id: number;
  readonly event: SystemEvent;
  readonly phase: SystemEventPhase;
}

/** Options for `run()`. */
export interface RunOptions {
  /** Stop on SIGINT / SIGTERM (default true). */
  installSignalHandlers?: boolean;
}

/** A reactor on Node's event loop. See the module comment. */
export class NodeReactor implements IReactor {
  readonly log = new Logger("twisted-ts.internet.reactor");
  /** True from `run()` until shutdown has completed. */
  running = false;
  /** True once `stop()` was called. */
  private stopping = false;
  private started = false;
  private keepAlive: NodeJS.Timeout | null = null;
  private triggers: Trigger[] = [];
  private nextTriggerId = 1;
  private finished: Promise<void> | null = null;
  private resolveFinished: (() => void) | null = null;
  private signalHandler: (() => void) | null = null;
  /** @internal Open things the reactor closes at shutdown. */
  readonly delayedCalls = new Set<ReactorDelayedCall>();
  /** @internal */
  readonly ports = new Set<{ stopListening(): Deferred<void> }>();
  /** @internal */
  readonly connections = new Set<Connection>();
  /** @internal */
  readonly connectors = new Set<StreamConnector>();
  /** @internal */
  readonly processes = new Set<ProcessTransport>();
  private launcher: ProcessLauncher | null = null;

  /**
   * The {@link ProcessLauncher} that `spawnProcess(…, { launcher: true })` spawns through, made
   * (and its helper process started) on first use: one per reactor, so one per server process.
   */
  get processLauncher(): ProcessLauncher {
    this.launcher ??= new ProcessLauncher();
    return this.launcher;
  }

  // --- IReactorCore -------------------------------------------------------------------------

  /**
   * Starts the reactor: fires the startup triggers and the `callWhenRunning` calls, and keeps
   * the process alive until `stop()`. Resolves once shutdown is complete.
   */
  run(options: RunOptions = {}): Promise<void> {
    if (this.running) throw new ReactorAlreadyRunning();
    if (this.started) throw new ReactorNotRestartable();
    this.started = true;
    this.running = true;
    this.finished = new Promise<void>((resolve) => {
      this.resolveFinished = resolve;
    });
    this.keepAlive = setInterval(() => {}, 2 ** 30);
    if (options.installSignalHandlers !== false) {
      this.signalHandler = () => {
        if (this.running && !this.stopping) this.stop();
      };
      process.on("SIGINT", this.signalHandler);
      process.on("SIGTERM", this.signalHandler);
    }
    void this.fireSystemEvent("startup");
    return this.finished;
  }

  /** Stops the reactor: shutdown runs on the next turn. Throws ReactorNotRunning when not running. */
  stop(): void {
    if (!this.running || this.stopping) throw new ReactorNotRunning();
    this.stopping = true;
    setImmediate(() => {
      void this.shutdown();
    });
  }

  private async shutdown(): Promise<void> {
    await this.fireSystemEvent("shutdown");
    for (const c of this.delayedCalls) c.cancel();
    if (this.keepAlive !== null) clearInterval(this.keepAlive);
    this.keepAlive = null;
    if (this.signalHandler !== null) {
      process.off("SIGINT", this.signalHandler);
      process.off("SIGTERM", this.signalHandler);
      this.signalHandler = null;
    }
    this.running = false;
    this.resolveFinished?.();
  }

  /** Closes listening ports, drops connections and connection attempts (the "during shutdown" work). */
  private async disconnectAll(): Promise<void> {
    const waits: Array<Promise<unknown>> = [];
    for (const p of [...this.ports]) waits.push(Promise.resolve(p.stopListening()).catch(() => undefined));
    for (const c of [...this.connectors]) c.shutdown();
    for (const conn of [...this.connections]) {
      if (conn.disconnected) continue;
      waits.push(
        new Promise<void>((resolve) => {
          conn.socket.once("close", () => resolve());
          conn.dropConnection(new ConnectionLost("Connection was closed by reactor shutdown"));
        }),
      );
    }
    await Promise.all(waits);
  }

  private fireSystemEvent(event: SystemEvent): Promise<void> {
    const run = (phase: SystemEventPhase): unknown[] => {
      const results: unknown[] = [];
      for (const t of this.triggers.filter((x) => x.event === event && x.phase === phase)) {
        try {
          results.push(t.fn(...t.args));
        } catch (e) {
          this.log.failure("Error in {phase}-{event} trigger", new Failure(e), "error", { phase, event });
        }
      }
      return results;
    };
    const pending = run("before").filter(
      (r): r is PromiseLike<unknown> => typeof r === "object" && r !== null && typeof (r as PromiseLike<unknown>).then === "function",
    );
    const rest = (): Promise<void> | undefined => {
      run("during");
      if (event === "shutdown") return this.disconnectAll().then(() => void run("after"));
      run("after");
      return undefined;
    };
    // Without Deferreds to wait for, the phases run synchronously (startup triggers and
    // callWhenRunning calls have run when run() returns).
    if (pending.length === 0) return rest() ?? Promise.resolve();
    return Promise.all(
      pending.map((d) =>
        Promise.resolve(d).then(undefined, (err: unknown) => {
          this.log.failure("Error in before-{event} trigger", err instanceof Failure ? err : new Failure(err), "error", { event });
        }),
      ),
    ).then(() => rest());
  }

  /** Runs `fn(...args)` once the reactor is running (at once if it already is). */
  callWhenRunning<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): TriggerID | null {
    if (this.running) {
      fn(...args);
      return null;
    }
    return this.addSystemEventTrigger("after", "startup", fn, ...args);
  }

  /**
   * Calls `fn(...args)` in `phase` of `event`. A before-shutdown trigger may return a Deferred
   * (or Promise): shutdown waits for it.
   */
  addSystemEventTrigger<A extends unknown[]>(
    phase: SystemEventPhase,
    event: SystemEvent,
    fn: (...args: A) => unknown,
    ...args: A
  ): TriggerID {
    if (!["before", "during", "after"].includes(phase)) throw new TypeError(`bad trigger phase ${String(phase)}`);
    const t: Trigger = { id: this.nextTriggerId++, phase, event, fn: fn as (...a: unknown[]) => unknown, args };
    this.triggers.push(t);
    return { id: t.id, event, phase };
  }

  removeSystemEventTrigger(triggerID: unknown): void {
    const id = (triggerID as TriggerID | null)?.id;
    const before = this.triggers.length;
    this.triggers = this.triggers.filter((t) => t.id !== id);
    if (this.triggers.length === before) throw new TypeError("trigger not found");
  }

  /** Runs `fn(...args)` on a later turn of the event loop (Twisted's `callFromThread`). */
  callSoon<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): void {
    setImmediate(() => {
      try {
        fn(...args);
      } catch (e) {
        this.log.failure("Unhandled error in callSoon", new Failure(e), "critical");
      }
    });
  }

  /** Alias of `callSoon`, Twisted's name. */
  callFromThread<A extends unknown[]>(fn: (...args: A) => unknown, ...args: A): void {
    this.callSoon(fn, ...args);
  }

  // --- IReactorTime -------------------------------------------------------------------------

  seconds(): number {
    return (performance.timeOrigin + performance.now()) / 1000;
  }

  callLater<A extends unknown[]>(delay: number, fn: (...args: A) => unknown, ...args: A): IDelayedCall {
    if (!(delay >= 0)) throw new RangeError(`callLater delay must be >= 0, not ${delay}`);
    return new ReactorDelayedCall(this, this.seconds() + delay, fn as (...a: unknown[]) => unknown, args);
  }

  getDelayedCalls(): IDelayedCall[] {
    return [...this.delayedCalls];
  }

  // --- Stream sockets -----------------------------------------------------------------------

  /**
   * Listens on TCP `port` (0: any free port) on `iface` ("" = all interfaces, IPv4 and IPv6).
   * With an explicit interface Node binds on a later turn: `port.whenListening()` fires once
   * `getHost()` is known and fails with CannotListenError.
   */
  listenTCP(port: number, factory: IProtocolFactory, backlog = 50, iface = ""): StreamPort {
    const p = new StreamPort(this, { kind: "TCP", port, iface, backlog }, factory);
    p.startListening();
    return p;
  }

  /**
   * Connects to `host:port` (names and IPv6 resolve as Node does). The factory hears
   * `startedConnecting`, then `buildProtocol` on success or `clientConnectionFailed`
   * (ConnectionRefusedError, TimeoutError after `timeout` seconds, DNSLookupError, …).
   */
  connectTCP(
    host: string,
    port: number,
    factory: IClientFactory,
    timeout = 30,
    bindAddress: { host: string; port: number } | null = null,
  ): StreamConnector {
    const c = new StreamConnector(this, { kind: "TCP", host, port, bindAddress }, factory, timeout);
    c.connect();
    return c;
  }

  listenUNIX(path: string, factory: IProtocolFactory, backlog = 50): StreamPort {
    const p = new StreamPort(this, { kind: "UNIX", path, backlog }, factory);
    p.startListening();
    return p;
  }

  connectUNIX(path: string, factory: IClientFactory, timeout = 30): StreamConnector {
    const c = new StreamConnector(this, { kind: "UNIX", path }, factory, timeout);
    c.connect();
    return c;
  }

  /** Listens for TLS connections; protocols see connections after the handshake. */
  listenSSL(port: number, factory: IProtocolFactory, contextFactory: IContextFactory, backlog = 50, iface = ""): StreamPort {
    const p = new StreamPort(this, { kind: "TCP", port, iface, backlog, tls: contextFactory }, factory);
    p.startListening();
    return p;
  }

  /** Connects with TLS; `buildProtocol` runs after the handshake, a handshake failure is SSLError. */
  connectSSL(
    host: string,
    port: number,
    factory: IClientFactory,
    contextFactory: IContextFactory,
    timeout = 30,
    bindAddress: { host: string; port: number } | null = null,
  ): StreamConnector {
    const c = new StreamConnector(this, { kind: "TCP", host, port, bindAddress, tls: contextFactory }, factory, timeout);
    c.connect();
    return c;
  }

  // --- Datagrams and processes --------------------------------------------------------------

  /** Binds a UDP port; the protocol's `startProtocol` runs once bound (`port.whenListening()`). */
  listenUDP(port: number, protocol: IDatagramProtocol, iface = "", maxPacketSize = 8192): UDPPort {
    const p = new UDPPort(this, port, protocol, iface, maxPacketSize);
    p.startListening();
    return p;
  }

  /**
   * Runs `executable` with `args` (`args[0]` is the child's argv[0], as in Twisted) and connects
   * `processProtocol` to it. The environment defaults to empty; pass `env: process.env` to inherit.
   */
  spawnProcess(
    processProtocol: IProcessProtocol,
    executable: string,
    args: readonly string[] = [executable],
    options: SpawnProcessOptions = {},
  ): ProcessTransport {
    const t = new ProcessTransport(this, processProtocol, executable, args, options);
    processProtocol.makeConnection(t);
    return t;
  }
}

/** Twisted's name for the reactor class. */
export { NodeReactor as Reactor };

/** The process-wide reactor. */
export const reactor: NodeReactor = new NodeReactor();

export default reactor;
