/**
 * PROXY protocol support for servers (`twisted.protocols.haproxy`): a factory wrapper whose
 * protocols read the PROXY header first, then hand the connection to the wrapped protocol with
 * a transport whose `getPeer()` / `getHost()` report the addresses from the header.
 *
 * Unlike Twisted, the wrapped protocol's `connectionMade` runs only after the header has been
 * parsed, so `getPeer()` is already the real client there. A malformed header closes the
 * connection; the wrapped protocol never sees it.
 */
import { InvalidProxyHeader } from "../error.js";
import type { Failure } from "../failure.js";
import type {
  IAddress,
  IProtocol,
  IProtocolFactory,
  IPullProducer,
  IPushProducer,
  ITCPTransport,
  ITransport,
} from "../interfaces.js";
import { isHalfCloseable } from "../interfaces.js";
import { Logger } from "../log.js";
import { ProxyHeaderParser, type ProxyInfo } from "./proxy_parser.js";

const log = new Logger("twisted-ts.internet.haproxy");

/** The wrapped protocol's view of the connection: everything delegates except the addresses. */
export class ProxiedTransport implements ITCPTransport {
  constructor(
    readonly inner: ITransport,
    readonly info: ProxyInfo,
  ) {}
  private get tcp(): Partial<ITCPTransport> {
    return this.inner as Partial<ITCPTransport>;
  }
  get disconnecting(): boolean {
    return this.inner.disconnecting;
  }
  getPeer(): IAddress {
    return this.info.source ?? this.inner.getPeer();
  }
  getHost(): IAddress {
    return this.info.destination ?? this.inner.getHost();
  }
  write(data: Uint8Array | string): void {
    this.inner.write(data);
  }
  writeSequence(data: Iterable<Uint8Array | string>): void {
    this.inner.writeSequence(data);
  }
  loseConnection(): void {
    this.inner.loseConnection();
  }
  abortConnection(): void {
    this.inner.abortConnection();
  }
  registerProducer(producer: IPushProducer | IPullProducer, streaming: boolean): void {
    this.inner.registerProducer(producer, streaming);
  }
  unregisterProducer(): void {
    this.inner.unregisterProducer();
  }
  loseWriteConnection(): void {
    this.tcp.loseWriteConnection?.();
  }
  getTcpNoDelay(): boolean {
    return this.tcp.getTcpNoDelay?.() ?? false;
  }
  setTcpNoDelay(enabled: boolean): void {
    this.tcp.setTcpNoDelay?.(enabled);
  }
  getTcpKeepAlive(): boolean {
    return this.tcp.getTcpKeepAlive?.() ?? false;
  }
  setTcpKeepAlive(enabled: boolean): void {
    this.tcp.setTcpKeepAlive?.(enabled);
  }
  pauseProducing(): void {
    this.tcp.pauseProducing?.();
  }
  resumeProducing(): void {
    this.tcp.resumeProducing?.();
  }
  stopProducing(): void {
    if (this.tcp.stopProducing !== undefined) this.tcp.stopProducing();
    else this.inner.loseConnection();
  }
}

/** Reads the PROXY header, then runs the wrapped protocol. */
export class HAProxyProtocolWrapper implements IProtocol {
  transport: ITransport | null = null;
  /** The parsed header, once it has arrived. */
  proxyInfo: ProxyInfo | null = null;
  private parser: ProxyHeaderParser | null = new ProxyHeaderParser();
  private started = false;

  constructor(
    readonly factory: HAProxyWrappingFactory,
    readonly wrappedProtocol: IProtocol,
  ) {
    const w = wrappedProtocol;
    if (isHalfCloseable(w)) {
      Object.assign(this, {
        readConnectionLost: () => w.readConnectionLost(),
        writeConnectionLost: () => w.writeConnectionLost(),
      });
    }
  }

  makeConnection(transport: ITransport): void {
    this.transport = transport;
    this.connectionMade();
  }

  connectionMade(): void {}

  dataReceived(data: Uint8Array): void {
    if (this.parser === null) {
      if (this.started) this.wrappedProtocol.dataReceived(data);
      return;
    }
    let parsed;
    try {
      parsed = this.parser.feed(data);
    } catch (e) {
      if (!(e instanceof InvalidProxyHeader)) throw e;
      this.parser = null;
      log.info("Refusing connection with a bad PROXY header: {why}", { why: e.message });
      this.transport?.loseConnection();
      return;
    }
    if (parsed === null) return;
    this.parser = null;
    this.proxyInfo = parsed.info;
    this.started = true;
    this.wrappedProtocol.makeConnection(new ProxiedTransport(this.transport!, parsed.info));
    if (parsed.rest.length > 0 && !this.transport!.disconnecting) this.wrappedProtocol.dataReceived(parsed.rest);
  }

  connectionLost(reason: Failure): void {
    if (this.started) this.wrappedProtocol.connectionLost(reason);
  }
}

/** Wraps a server factory so its connections start with a PROXY header (v1 or v2). */
export class HAProxyWrappingFactory implements IProtocolFactory {
  constructor(readonly wrappedFactory: IProtocolFactory) {}

  logPrefix(): string {
    return `${this.wrappedFactory.constructor.name} (PROXY)`;
  }

  doStart(): void {
    this.wrappedFactory.doStart();
  }

  doStop(): void {
    this.wrappedFactory.doStop();
  }

  buildProtocol(addr: IAddress): IProtocol | null {
    const p = this.wrappedFactory.buildProtocol(addr);
    return p === null ? null : new HAProxyProtocolWrapper(this, p);
  }
}
