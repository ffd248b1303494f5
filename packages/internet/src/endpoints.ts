/**
 * Endpoints (`twisted.internet.endpoints`): where to listen or connect, as objects. A server
 * endpoint's `listen(factory)` fires with the listening port; a client endpoint's
 * `connect(factory)` fires with the protocol once its `connectionMade` has run (cancelling it
 * gives `ConnectingCancelledError`; a factory that builds no protocol gives `NoProtocol`).
 *
 * Strings: `serverFromString(reactor, "tcp:2222:interface=127.0.0.1")`,
 * `"unix:/run/x.sock"`, `"ssl:443:privateKey=key.pem:certKey=cert.pem"`, and the `haproxy:`
 * prefix (`"haproxy:tcp:2222"`) for servers behind a load balancer speaking the PROXY protocol;
 * `clientFromString(reactor, "tcp:host=localhost:port=22")`, `"tcp:localhost:22"`,
 * `"unix:path=/run/x.sock"`, `"ssl:host=example.com:port=443:caCerts=ca.pem"`.
 */
import { readFileSync } from "node:fs";
import { Deferred } from "./defer.js";
import { ConnectingCancelledError, NoProtocol } from "./error.js";
import { Failure } from "./failure.js";
import type {
  IAddress,
  IConnector,
  IContextFactory,
  IListeningPort,
  IProtocol,
  IProtocolFactory,
  IReactorSSL,
  IReactorTCP,
  IReactorUNIX,
  IStreamClientEndpoint,
  IStreamServerEndpoint,
  ITransport,
} from "./interfaces.js";
import { borrowsReceivedData, isHalfCloseable } from "./interfaces.js";
import { ClientFactory, Factory } from "./protocol.js";
import { ContextFactory } from "./reactor.js";
import { HAProxyWrappingFactory } from "./_internal/proxy_wrapper.js";

export { HAProxyProtocolWrapper, HAProxyWrappingFactory, ProxiedTransport } from "./_internal/proxy_wrapper.js";
export { ProxyHeaderParser, parseV1, parseV2, V1_MAX_LENGTH, V2_MAX_PAYLOAD, type ProxyInfo } from "./_internal/proxy_parser.js";

/** A reactor with everything endpoints use. */
export type EndpointReactor = IReactorTCP & IReactorUNIX & IReactorSSL;

/** Waits for a port that binds asynchronously (the Node reactor's ports have `whenListening`). */
function listened(port: IListeningPort): Deferred<IListeningPort> {
  const w = (port as { whenListening?: () => Deferred<unknown> }).whenListening;
  if (w === undefined) {
    const d = new Deferred<IListeningPort>();
    d.callback(port);
    return d;
  }
  return w.call(port).addCallback(() => port);
}

function listenWith(make: () => IListeningPort): Deferred<IListeningPort> {
  let port: IListeningPort;
  try {
    port = make();
  } catch (e) {
    const d = new Deferred<IListeningPort>();
    d.errback(new Failure(e));
    return d;
  }
  return listened(port);
}

// ---------------------------------------------------------------------------------------------
// Client-side wrapping: fire the connect Deferred after connectionMade

/** Forwards everything to the wrapped protocol and fires `connected` after its connectionMade. */
export class WrappingProtocol implements IProtocol {
  transport: ITransport | null = null;

  constructor(
    private readonly connected: Deferred<IProtocol>,
    readonly wrappedProtocol: IProtocol,
  ) {
    const w = wrappedProtocol;
    if (isHalfCloseable(w)) {
      Object.assign(this, {
        readConnectionLost: () => w.readConnectionLost(),
        writeConnectionLost: () => w.writeConnectionLost(),
      });
    }
    // Borrowed read buffers pass straight through when the wrapped protocol takes them.
    if (borrowsReceivedData(w)) Object.assign(this, { borrowsReceivedData: true });
  }

  makeConnection(transport: ITransport): void {
    this.transport = transport;
    this.wrappedProtocol.makeConnection(transport);
    this.connected.callback(this.wrappedProtocol);
  }
  connectionMade(): void {}
  dataReceived(data: Uint8Array): void {
    this.wrappedProtocol.dataReceived(data);
  }
  connectionLost(reason: Failure): void {
    this.wrappedProtocol.connectionLost(reason);
  }
}

/** A client factory that wraps a plain factory for an endpoint's `connect`. */
export class WrappingFactory extends ClientFactory<IProtocol> {
  override noisy = false;
  readonly onConnection: Deferred<IProtocol>;
  connector: IConnector | null = null;
  private settled = false;

  constructor(readonly wrappedFactory: IProtocolFactory) {
    super();
    this.onConnection = new Deferred<IProtocol>(() => {
      const c = this.connector;
      if (c !== null) {
        const dest = c.getDestination();
        this.settle(new Failure(new ConnectingCancelledError(dest)));
        try {
          c.stopConnecting();
        } catch {
          // already connected or failed
        }
      }
    });
  }

  private settle(result: Failure): void {
    if (this.settled) return;
    this.settled = true;
    this.onConnection.errback(result);
  }

  override doStart(): void {
    this.wrappedFactory.doStart();
  }
  override doStop(): void {
    this.wrappedFactory.doStop();
  }
  override startedConnecting(connector: IConnector): void {
    this.connector = connector;
  }

  override buildProtocol(addr: IAddress): IProtocol | null {
    let p: IProtocol | null;
    try {
      p = this.wrappedFactory.buildProtocol(addr);
    } catch (e) {
      this.settle(new Failure(e));
      return null;
    }
    if (p === null) {
      this.settle(new Failure(new NoProtocol()));
      return null;
    }
    this.settled = true;
    return new WrappingProtocol(this.onConnection, p);
  }

  override clientConnectionFailed(_connector: IConnector, reason: Failure): void {
    this.settle(reason);
  }
}

function connectWith(factory: IProtocolFactory, start: (wf: WrappingFactory) => IConnector): Deferred<IProtocol> {
  const wf = new WrappingFactory(factory);
  try {
    wf.connector = start(wf);
  } catch (e) {
    const d = new Deferred<IProtocol>();
    d.errback(new Failure(e));
    return d;
  }
  return wf.onConnection;
}

// ---------------------------------------------------------------------------------------------
// Server endpoints

export class TCP4ServerEndpoint implements IStreamServerEndpoint {
  constructor(
    readonly reactor: IReactorTCP,
    readonly port: number,
    readonly backlog = 50,
    readonly iface = "",
  ) {}
  listen(factory: IProtocolFactory): Deferred<IListeningPort> {
    return listenWith(() => this.reactor.listenTCP(this.port, factory, this.backlog, this.iface));
  }
}

export class TCP6ServerEndpoint extends TCP4ServerEndpoint {
  constructor(reactor: IReactorTCP, port: number, backlog = 50, iface = "::") {
    super(reactor, port, backlog, iface);
  }
}

export class UNIXServerEndpoint implements IStreamServerEndpoint {
  constructor(
    readonly reactor: IReactorUNIX,
    readonly address: string,
    readonly backlog = 50,
  ) {}
  listen(factory: IProtocolFactory): Deferred<IListeningPort> {
    return listenWith(() => this.reactor.listenUNIX(this.address, factory, this.backlog));
  }
}

export class SSL4ServerEndpoint implements IStreamServerEndpoint {
  constructor(
    readonly reactor: IReactorSSL,
    readonly port: number,
    readonly contextFactory: IContextFactory,
    readonly backlog = 50,
    readonly iface = "",
  ) {}
  listen(factory: IProtocolFactory): Deferred<IListeningPort> {
    return listenWith(() => this.reactor.listenSSL(this.port, factory, this.contextFactory, this.backlog, this.iface));
  }
}

/** A server endpoint whose connections begin with a PROXY header (Twisted's `proxyEndpoint`). */
export class HAProxyServerEndpoint implements IStreamServerEndpoint {
  constructor(readonly wrappedEndpoint: IStreamServerEndpoint) {}
  listen(factory: IProtocolFactory): Deferred<IListeningPort> {
    return this.wrappedEndpoint.listen(new HAProxyWrappingFactory(factory));
  }
}

/** Wraps `endpoint` with PROXY protocol support. */
export function proxyEndpoint(endpoint: IStreamServerEndpoint): HAProxyServerEndpoint {
  return new HAProxyServerEndpoint(endpoint);
}

// ---------------------------------------------------------------------------------------------
// Client endpoints

export class TCP4ClientEndpoint implements IStreamClientEndpoint {
  constructor(
    readonly reactor: IReactorTCP,
    readonly host: string,
    readonly port: number,
    readonly timeout = 30,
    readonly bindAddress: { host: string; port: number } | null = null,
  ) {}
  connect(factory: IProtocolFactory): Deferred<IProtocol> {
    return connectWith(factory, (wf) => this.reactor.connectTCP(this.host, this.port, wf, this.timeout, this.bindAddress));
  }
}

export class TCP6ClientEndpoint extends TCP4ClientEndpoint {}

/**
 * Connects to a hostname: Node resolves it and tries its addresses (Happy Eyeballs via
 * `autoSelectFamily`), which is what Twisted's `HostnameEndpoint` does by hand.
 */
export class HostnameEndpoint extends TCP4ClientEndpoint {}

export class UNIXClientEndpoint implements IStreamClientEndpoint {
  constructor(
    readonly reactor: IReactorUNIX,
    readonly path: string,
    readonly timeout = 30,
  ) {}
  connect(factory: IProtocolFactory): Deferred<IProtocol> {
    return connectWith(factory, (wf) => this.reactor.connectUNIX(this.path, wf, this.timeout));
  }
}

export class SSL4ClientEndpoint implements IStreamClientEndpoint {
  constructor(
    readonly reactor: IReactorSSL,
    readonly host: string,
    readonly port: number,
    readonly contextFactory: IContextFactory,
    readonly timeout = 30,
    readonly bindAddress: { host: string; port: number } | null = null,
  ) {}
  connect(factory: IProtocolFactory): Deferred<IProtocol> {
    return connectWith(factory, (wf) =>
      this.reactor.connectSSL(this.host, this.port, wf, this.contextFactory, this.timeout, this.bindAddress),
    );
  }
}

/** Connects `protocol` (an instance) through `endpoint`; fires with it once connected. */
export function connectProtocol<P extends IProtocol>(endpoint: IStreamClientEndpoint, protocol: P): Deferred<P> {
  class OneShot extends Factory<P> {
    override noisy = false;
    override buildProtocol(): P {
      return protocol;
    }
  }
  return endpoint.connect(new OneShot()) as unknown as Deferred<P>;
}

// ---------------------------------------------------------------------------------------------
// Description strings

/** Splits a description into positional and `key=value` parts; `\` escapes the next character. */
export function parseDescription(description: string): { args: string[]; kw: Record<string, string> } {
  const args: string[] = [];
  const kw: Record<string, string> = {};
  let parts: string[] = [""];
  const add = (): void => {
    if (parts.length === 1) args.push(parts[0]!);
    else kw[parts[0]!] = parts.slice(1).join("=");
    parts = [""];
  };
  for (let i = 0; i < description.length; i++) {
    const ch = description[i]!;
    if (ch === "\\" && i + 1 < description.length) {
      parts[parts.length - 1] += description[++i]!;
    } else if (ch === ":") {
      add();
    } else if (ch === "=" && parts.length === 1) {
      parts.push("");
    } else {
      parts[parts.length - 1] += ch;
    }
  }
  add();
  return { args, kw };
}

function intArg(v: string | undefined, name: string, dflt?: number): number {
  if (v === undefined) {
    if (dflt === undefined) throw new TypeError(`missing ${name}`);
    return dflt;
  }
  if (!/^\d+$/.test(v)) throw new TypeError(`bad ${name}: ${JSON.stringify(v)}`);
  return Number(v);
}

function numArg(v: string | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new TypeError(`bad ${name}: ${JSON.stringify(v)}`);
  return n;
}

/**
 * A server endpoint from a description: `tcp:PORT[:interface=IP][:backlog=N]`, `tcp6:…`,
 * `unix:PATH[:backlog=N]`, `ssl:PORT:privateKey=FILE[:certKey=FILE][:interface=IP]`, and
 * `haproxy:` before any of them.
 */
export function serverFromString(reactor: EndpointReactor, description: string): IStreamServerEndpoint {
  const { args, kw } = parseDescription(description);
  const kind = (args[0] ?? "").toLowerCase();
  if (kind === "haproxy") {
    const inner = description.slice(description.indexOf(":") + 1);
    return proxyEndpoint(serverFromString(reactor, inner));
  }
  const pos = args.slice(1);
  switch (kind) {
    case "tcp":
    case "tcp6": {
      const port = intArg(kw.port ?? pos[0], "port");
      const backlog = intArg(kw.backlog, "backlog", 50);
      const iface = kw.interface ?? pos[1] ?? (kind === "tcp6" ? "::" : "");
      return kind === "tcp6" ? new TCP6ServerEndpoint(reactor, port, backlog, iface) : new TCP4ServerEndpoint(reactor, port, backlog, iface);
    }
    case "unix": {
      const path = kw.address ?? pos[0];
      if (path === undefined) throw new TypeError("unix: needs a path");
      return new UNIXServerEndpoint(reactor, path, intArg(kw.backlog, "backlog", 50));
    }
    case "ssl": {
      const port = intArg(kw.port ?? pos[0], "port");
      const keyFile = kw.privateKey ?? "server.pem";
      const certFile = kw.certKey ?? keyFile;
      const options = {
        key: readFileSync(keyFile, "utf8"),
        cert: readFileSync(certFile, "utf8"),
        ...(kw.extraCertChain !== undefined ? { ca: readFileSync(kw.extraCertChain, "utf8") } : {}),
      };
      return new SSL4ServerEndpoint(reactor, port, new ContextFactory(options), intArg(kw.backlog, "backlog", 50), kw.interface ?? "");
    }
    default:
      throw new TypeError(`Unknown endpoint type: ${JSON.stringify(args[0] ?? "")}`);
  }
}

/**
 * A client endpoint from a description: `tcp:host=H:port=P[:timeout=S][:bindAddress=IP]`
 * (or `tcp:H:P`), `unix:path=PATH` (or `unix:PATH`), `ssl:host=H:port=P[:caCerts=FILE]`.
 */
export function clientFromString(reactor: EndpointReactor, description: string): IStreamClientEndpoint {
  const { args, kw } = parseDescription(description);
  const kind = (args[0] ?? "").toLowerCase();
  const pos = args.slice(1);
  switch (kind) {
    case "tcp":
    case "tcp6": {
      const host = kw.host ?? pos[0];
      if (host === undefined) throw new TypeError("tcp: needs a host");
      const port = intArg(kw.port ?? pos[1], "port");
      const timeout = numArg(kw.timeout, "timeout", 30);
      const bind = kw.bindAddress !== undefined ? { host: kw.bindAddress, port: 0 } : null;
      return new TCP4ClientEndpoint(reactor, host, port, timeout, bind);
    }
    case "unix": {
      const path = kw.path ?? pos[0];
      if (path === undefined) throw new TypeError("unix: needs a path");
      return new UNIXClientEndpoint(reactor, path, numArg(kw.timeout, "timeout", 30));
    }
    case "ssl": {
      const host = kw.host ?? pos[0];
      if (host === undefined) throw new TypeError("ssl: needs a host");
      const port = intArg(kw.port ?? pos[1], "port");
      const options = {
        servername: host,
        ...(kw.caCerts !== undefined ? { ca: readFileSync(kw.caCerts, "utf8") } : {}),
        ...(kw.certKey !== undefined ? { cert: readFileSync(kw.certKey, "utf8") } : {}),
        ...(kw.privateKey !== undefined ? { key: readFileSync(kw.privateKey, "utf8") } : {}),
      };
      return new SSL4ClientEndpoint(reactor, host, port, new ContextFactory(options), numArg(kw.timeout, "timeout", 30));
    }
    default:
      throw new TypeError(`Unknown endpoint type: ${JSON.stringify(args[0] ?? "")}`);
  }
}
