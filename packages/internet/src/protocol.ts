/**
 * `twisted.internet.protocol`: the classes a user subclasses. A `Protocol` handles one
 * connection (`connectionMade`, `dataReceived`, `connectionLost`); a `Factory` makes one per
 * connection; a `ClientFactory` also hears about failed and lost connection attempts, and
 * `ReconnectingClientFactory` retries with Twisted's exponential backoff.
 *
 * On `transport`: Python code writes `self.transport.write(...)` and relies on the transport
 * being set by `makeConnection` before any other callback. Here it is declared
 * `transport!: T` (a definite-assignment field, `undefined` until `makeConnection`), so ported
 * code compiles under `strict` without `?.` or casts. `T` defaults to `ITCPTransport`, the full
 * stream surface (`setTcpNoDelay`, half-close, producer methods) that TCP, TLS, UNIX, the test
 * `StringTransport` and the in-memory loopback all provide; a protocol meant to run over a
 * narrower transport (an SSH channel) can say `Protocol<ITransport>`.
 */
import { Deferred } from "./defer.js";
import { ConnectionDone, NotConnectingError } from "./error.js";
import { Failure } from "./failure.js";
import type {
  IAddress,
  IClientFactory,
  IConnector,
  IDatagramProtocol,
  IDelayedCall,
  IPv4Address,
  IPv6Address,
  IProcessProtocol,
  IProcessTransport,
  IProtocol,
  IProtocolFactory,
  IReactorTime,
  IReactorTCP,
  ITCPTransport,
  ITransport,
  IUDPTransport,
} from "./interfaces.js";
import { Logger } from "./log.js";

const log = new Logger("twisted-ts.internet.protocol");

/** The shared part of stream and process protocols (`BaseProtocol`). */
export class BaseProtocol<T = ITCPTransport> {
  /** True between `makeConnection` and `connectionLost`. */
  connected = false;
  /** Set by `makeConnection`; see the module comment. */
  transport!: T;

  /** Connects this protocol to `transport` and calls `connectionMade`. */
  makeConnection(transport: T): void {
    this.connected = true;
    this.transport = transport;
    this.connectionMade();
  }

  /** Called once the connection is up; override to greet the peer. */
  connectionMade(): void {}
}

/** A stream protocol: override `dataReceived` and friends. */
export class Protocol<T extends ITransport = ITCPTransport> extends BaseProtocol<T> implements IProtocol {
  /** The factory that built this protocol (set by `Factory.buildProtocol`). */
  factory: IProtocolFactory | null = null;

  /** A short name for log lines. */
  logPrefix(): string {
    return this.constructor.name;
  }

  /** Bytes arrived; they may be any piece of what the peer sent. */
  dataReceived(_data: Uint8Array): void {}

  /**
   * The connection ended. `reason` wraps `ConnectionDone` (clean close), `ConnectionLost`
   * (unclean; `ConnectionAborted` after `abortConnection`), or the error that ended it.
   */
  connectionLost(_reason: Failure): void {
    this.connected = false;
  }
}

/** A protocol class whose instances a factory builds. */
export type ProtocolClass<P extends IProtocol = IProtocol> = new () => P;

/** Makes a protocol per connection (`twisted.internet.protocol.Factory`). */
export class Factory<P extends IProtocol = IProtocol> implements IProtocolFactory {
  /** The protocol class `buildProtocol` instantiates. */
  protocol: ProtocolClass<P> | null = null;
  /** How many ports/connectors use this factory; `startFactory` runs at 0 → 1, `stopFactory` at 1 → 0. */
  numPorts = 0;
  /** Log start and stop. */
  noisy = true;

  /** A factory of this class (built with `args`) whose `protocol` is `protocolClass`. */
  static forProtocol<F extends { protocol: unknown }, A extends unknown[]>(
    this: new (...args: A) => F,
    protocolClass: NonNullable<F["protocol"]>,
    ...args: A
  ): F {
    const f = new this(...args);
    f.protocol = protocolClass;
    return f;
  }

  logPrefix(): string {
    return this.constructor.name;
  }

  /** Called by a port or connector when it starts using this factory. */
  doStart(): void {
    if (this.numPorts === 0) {
      if (this.noisy) log.debug("Starting factory {factory}", { factory: this.logPrefix() });
      this.startFactory();
    }
    this.numPorts += 1;
  }

  /** Called by a port or connector when it stops using this factory. */
  doStop(): void {
    if (this.numPorts === 0) return;
    this.numPorts -= 1;
    if (this.numPorts === 0) {
      if (this.noisy) log.debug("Stopping factory {factory}", { factory: this.logPrefix() });
      this.stopFactory();
    }
  }

  /** Override: set up state shared by this factory's protocols. */
  startFactory(): void {}
  /** Override: tear it down. */
  stopFactory(): void {}

  /**
   * A protocol for a connection with `addr`: an instance of `this.protocol` with its `factory`
   * set. Return null to refuse the connection.
   */
  buildProtocol(_addr: IAddress): P | null {
    if (this.protocol === null) throw new TypeError(`${this.logPrefix()}.protocol is not set`);
    const p = new this.protocol();
    if (typeof p === "object" && p !== null && "factory" in p) (p as { factory: unknown }).factory = this;
    return p;
  }
}

/** A factory for servers; identical to Factory, as in Twisted. */
export class ServerFactory<P extends IProtocol = IProtocol> extends Factory<P> {}

/** A factory for clients: told when a connection attempt starts, fails, or its connection ends. */
export class ClientFactory<P extends IProtocol = IProtocol> extends Factory<P> implements IClientFactory {
  startedConnecting(_connector: IConnector): void {}
  clientConnectionFailed(_connector: IConnector, _reason: Failure): void {}
  clientConnectionLost(_connector: IConnector, _reason: Failure): void {}
}

/** Normal deviate with mean `mu` and deviation `sigma` (Box–Muller), as `random.normalvariate`. */
function normalVariate(mu: number, sigma: number): number {
  let u = 0;
  while (u === 0) u = Math.random();
  const v = Math.random();
  return mu + sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * A client factory that reconnects with exponential backoff (Twisted's
 * `ReconnectingClientFactory`): after each failure or loss the delay is multiplied by `factor`,
 * capped at `maxDelay`, then jittered by a normal deviate of `delay * jitter`. Call
 * `resetDelay()` from `connectionMade` once a connection counts as good.
 */
export class ReconnectingClientFactory<P extends IProtocol = IProtocol> extends ClientFactory<P> {
  maxDelay = 3600;
  initialDelay = 1.0;
  factor = 2.7182818284590451;
  jitter = 0.11962656472;
  delay = this.initialDelay;
  retries = 0;
  /** Give up after this many retries; null: never. */
  maxRetries: number | null = null;
  continueTrying = true;
  connector: IConnector | null = null;
  /** The clock retries are scheduled on; null: the global reactor (tests set a `task.Clock`). */
  clock: IReactorTime | null = null;
  /** The deviate source for jitter; replace for deterministic tests. */
  normalVariate: (mu: number, sigma: number) => number = normalVariate;
  protected _callID: IDelayedCall | null = null;

  override clientConnectionFailed(connector: IConnector, _reason: Failure): void {
    if (this.continueTrying) {
      this.connector = connector;
      this.retry();
    }
  }

  override clientConnectionLost(connector: IConnector, _reason: Failure): void {
    if (this.continueTrying) {
      this.connector = connector;
      this.retry();
    }
  }

  /** Schedules the next connection attempt. */
  retry(connector?: IConnector): void {
    if (!this.continueTrying) return;
    const c = connector ?? this.connector;
    if (c === null) throw new TypeError("no connector to retry");
    this.retries += 1;
    if (this.maxRetries !== null && this.retries > this.maxRetries) {
      if (this.noisy) log.info("Abandoning {connector} after {retries} retries.", { connector: String(c), retries: this.retries });
      return;
    }
    this.delay = Math.min(this.delay * this.factor, this.maxDelay);
    if (this.jitter) this.delay = this.normalVariate(this.delay, this.delay * this.jitter);
    if (this.noisy) log.debug("Will retry in {delay} seconds", { delay: this.delay });
    const schedule = (clock: IReactorTime): void => {
      this._callID = clock.callLater(this.delay, () => {
        this._callID = null;
        c.connect();
      });
    };
    const clock = this.clock ?? globalReactor;
    if (clock !== undefined) schedule(clock);
    else
      void import("./reactor.js").then(({ reactor }) => {
        globalReactor = reactor;
        if (this.continueTrying && this._callID === null) schedule(reactor);
      });
  }

  /** Stops retrying: cancels the pending attempt and stops a connection in progress. */
  stopTrying(): void {
    if (this._callID !== null) {
      this._callID.cancel();
      this._callID = null;
    }
    this.continueTrying = false;
    if (this.connector !== null) {
      try {
        this.connector.stopConnecting();
      } catch (e) {
        if (!(e instanceof NotConnectingError)) throw e;
      }
    }
  }

  /** Back to the initial delay and zero retries (call after a good connection). */
  resetDelay(): void {
    this.delay = this.initialDelay;
    this.retries = 0;
    this._callID = null;
    this.continueTrying = true;
  }
}

/**
 * The global reactor, once a retry needed it: imported then, not by this module, which every
 * protocol imports (the sftp-server bin, a process per session, would pay for the reactor's
 * TCP, TLS, UDP and process modules at each start).
 */
let globalReactor: IReactorTime | undefined;

class InstanceFactory<P extends IProtocol> extends ClientFactory<P> {
  override noisy = false;
  pending = true;
  constructor(
    private readonly make: () => P,
    readonly deferred: Deferred<P>,
  ) {
    super();
  }
  override buildProtocol(_addr: IAddress): P {
    const p = this.make();
    this.pending = false;
    this.deferred.callback(p);
    return p;
  }
  override clientConnectionFailed(_connector: IConnector, reason: Failure): void {
    if (this.pending) {
      this.pending = false;
      this.deferred.errback(reason);
    }
  }
}

/**
 * Connects a protocol instance without writing a factory (`ClientCreator`): each connect method
 * returns a Deferred that fires with the protocol once connected.
 */
export class ClientCreator<P extends IProtocol, A extends unknown[] = []> {
  private readonly args: A;
  constructor(
    readonly reactor: IReactorTCP,
    readonly protocolClass: new (...args: A) => P,
    ...args: A
  ) {
    this.args = args;
  }

  connectTCP(
    host: string,
    port: number,
    timeout = 30,
    bindAddress: { host: string; port: number } | null = null,
  ): Deferred<P> {
    const d = new Deferred<P>(() => connector.stopConnecting());
    const f = new InstanceFactory(() => new this.protocolClass(...this.args), d);
    const connector = this.reactor.connectTCP(host, port, f, timeout, bindAddress);
    return d;
  }
}

// ---------------------------------------------------------------------------------------------
// Processes

/** Receives a child process's output and exit (`ProcessProtocol`). */
export class ProcessProtocol extends BaseProtocol<IProcessTransport> implements IProcessProtocol {
  /** Output on any of the child's descriptors; dispatches fd 1 and 2 to `outReceived` / `errReceived`. */
  childDataReceived(childFD: number, data: Uint8Array): void {
    if (childFD === 1) this.outReceived(data);
    else if (childFD === 2) this.errReceived(data);
  }
  outReceived(_data: Uint8Array): void {}
  errReceived(_data: Uint8Array): void {}

  /** One of the child's descriptors closed; dispatches 0, 1, 2 to the specific methods. */
  childConnectionLost(childFD: number): void {
    if (childFD === 0) this.inConnectionLost();
    else if (childFD === 1) this.outConnectionLost();
    else if (childFD === 2) this.errConnectionLost();
  }
  inConnectionLost(): void {}
  outConnectionLost(): void {}
  errConnectionLost(): void {}

  /** The process exited (its pipes may still be open). `reason` wraps ProcessDone or ProcessTerminated. */
  processExited(_reason: Failure): void {}
  /** The process exited and all its pipes closed. */
  processEnded(_reason: Failure): void {}
}

// ---------------------------------------------------------------------------------------------
// Datagrams

/** A UDP protocol (`DatagramProtocol`): override `datagramReceived`. */
export class DatagramProtocol implements IDatagramProtocol {
  transport!: IUDPTransport;
  numPorts = 0;
  noisy = true;

  logPrefix(): string {
    return this.constructor.name;
  }

  makeConnection(transport: IUDPTransport): void {
    this.transport = transport;
    this.doStart();
  }

  doStart(): void {
    if (this.numPorts === 0) this.startProtocol();
    this.numPorts += 1;
  }

  doStop(): void {
    if (this.numPorts === 0) return;
    this.numPorts -= 1;
    if (this.numPorts === 0) this.stopProtocol();
  }

  /** The protocol is listening. */
  startProtocol(): void {}
  /** The protocol is no longer listening. */
  stopProtocol(): void {}
  datagramReceived(_data: Uint8Array, _addr: IPv4Address | IPv6Address): void {}
  /** For connected UDP: the peer refused a datagram (ICMP port unreachable). */
  connectionRefused(): void {}
}

/** A Failure wrapping `ConnectionDone`: the reason for a clean close. */
export function connectionDone(): Failure {
  return new Failure(new ConnectionDone());
}
