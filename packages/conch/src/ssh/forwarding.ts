/**
 * `twisted.conch.ssh.forwarding`: TCP/IP port forwarding (RFC 4254 §7).
 *
 * - Local forwarding (`ssh -L`): the client listens with an {@link SSHListenForwardingFactory}
 *   and opens a `direct-tcpip` channel per accepted connection; the server's
 *   {@link SSHConnectForwardingChannel} (from {@link openConnectForwardingClient}, in the avatar's
 *   `channelLookup`) connects to the destination.
 * - Remote forwarding (`ssh -R`): the client sends the `tcpip-forward` global request; the server
 *   listens and opens `forwarded-tcpip` channels back.
 *
 * Each forwarded connection is a Protocol ({@link SSHForwardingClient}) on the socket joined to a
 * channel, with half-close both ways as RFC 4254 §5.3 asks: the socket's EOF (FIN) goes on as
 * CHANNEL_EOF and the channel's EOF as a shutdown of the socket's write side; the channel closes
 * only when both directions are done (or either end is closed outright). Flow control runs end to
 * end: the socket is not read while the peer's window is full, and no window is given back while
 * the socket cannot take more.
 *
 * The pack/unpack helpers build and read the channel-open and global-request payloads.
 */
import type { Deferred } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import type { IAddress, IHalfCloseableProtocol, IProtocolFactory, IReactorTCP, ITCPTransport } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { ClientCreator, Protocol } from "@twisted-ts/internet/protocol";
import { SSHChannel, type SSHChannelOptions } from "./channel.js";
import { SSHReader, SSHWriter, concatBytes } from "./common.js";
import { ConchError, OPEN_CONNECT_FAILED } from "../error.js";
import type { SSHConnection } from "./connection.js";
import { mayOpenForwardedChannel } from "./_forwarding/policy.js";

const log = new Logger("twisted-ts.conch.ssh.forwarding");

/** A host and port, as Twisted's `(host, port)` tuples. */
export type HostPort = readonly [host: string, port: number];

let defaultReactor: IReactorTCP | undefined;

/** The reactor used to connect and listen, unless one is given: the global one, loaded on first use. */
export async function forwardingReactor(reactor?: IReactorTCP): Promise<IReactorTCP> {
  if (reactor !== undefined) return reactor;
  if (defaultReactor === undefined) defaultReactor = (await import("@twisted-ts/internet/reactor")).reactor;
  return defaultReactor;
}

/** Twisted's `SSHListenForwardingFactory`: each accepted connection opens a channel of `klass`. */
export class SSHListenForwardingFactory implements IProtocolFactory {
  constructor(
    readonly conn: SSHConnection,
    /** The address sent in each channel open (the forwarded address; the real port once bound to 0). */
    public hostport: HostPort,
    readonly klass: new (options: SSHChannelOptions) => SSHListenForwardingChannel,
  ) {}

  buildProtocol(addr: IAddress): SSHForwardingClient | null {
    if (!mayOpenForwardedChannel(this.conn, `${this.klass.name} for ${addr.host}:${addr.port}`)) return null;
    const channel = new this.klass({ conn: this.conn });
    const client = new SSHForwardingClient(channel);
    channel.client = client;
    const origin: HostPort = [addr.host, addr.port];
    this.conn.openChannel(channel, packOpen_direct_tcpip(this.hostport, origin));
    return client;
  }

  doStart(): void {}
  doStop(): void {}
}

/** Twisted's `SSHListenForwardingChannel`: the channel of one accepted, forwarded connection. */
export class SSHListenForwardingChannel extends SSHChannel {
  client: SSHForwardingClient | undefined = undefined;

  override channelOpen(_specificData: Uint8Array): void {
    this.log.info("opened forwarding channel {id}", { id: this.id });
    this.client?.channelReady();
  }

  override openFailed(reason: Error): void {
    this.log.info("forwarding channel refused: {reason}", { reason: reason.message });
    this.closed();
  }

  override dataReceived(data: Uint8Array): void {
    this.client?.transport.write(data);
  }

  override eofReceived(): void {
    this.client?.channelEOFReceived();
  }

  override closed(): void {
    const client = this.client;
    if (client === undefined) return;
    this.log.info("closing local forwarding channel {id}", { id: this.id });
    this.client = undefined;
    client.channel = undefined;
    client.transport?.loseConnection();
  }
}

/** `direct-tcpip`: local (`-L`) forwarding, opened by the client. */
export class SSHListenClientForwardingChannel extends SSHListenForwardingChannel {
  override name = "direct-tcpip";
}

/** `forwarded-tcpip`: remote (`-R`) forwarding, opened by the server. */
export class SSHListenServerForwardingChannel extends SSHListenForwardingChannel {
  override name = "forwarded-tcpip";
}

/**
 * Twisted's `SSHConnectForwardingChannel`: server side of `direct-tcpip` — connects to `hostport`
 * and joins the connection to the channel. Data from the client is held until connected (one
 * window at most: no window is given back meanwhile).
 */
export class SSHConnectForwardingChannel extends SSHChannel {
  override name = "direct-tcpip";
  /** Where to connect; the reactor to connect with (default: the global one). */
  reactor: IReactorTCP | undefined = undefined;
  client: SSHForwardingClient | undefined = undefined;
  private readonly clientBuf: Uint8Array[] = [];
  /** The client's EOF came before the connection did (`ssh -W` with its input already read). */
  private eofBeforeConnect = false;
  /**
   * For tests: when the channel was confirmed without `readyToConfirm` and so connects in
   * `channelOpen`, fires once the attempt has been made (with the client or after a failure).
   */
  channelOpenDeferred: Deferred<unknown> | undefined = undefined;

  constructor(
    readonly hostport: HostPort,
    options: SSHChannelOptions = {},
  ) {
    super(options);
  }

  /** The connection `readyToConfirm` made, until `channelOpen` joins it. */
  private connectedEarly: SSHForwardingClient | undefined = undefined;
  /** The SSH connection ended before the open was confirmed. */
  private abandoned = false;

  /**
   * Connects before the open is confirmed, as sshd does: the connection service confirms once
   * connected, and answers CHANNEL_OPEN_FAILURE (OPEN_CONNECT_FAILED, "connect to host:port
   * failed: …") when the destination cannot be reached.
   */
  readyToConfirm(): Promise<void> {
    const [host, port] = this.hostport;
    this.log.info("connecting to {host}:{port}", { host, port });
    return forwardingReactor(this.reactor)
      .then((reactor) => this.connectClient(reactor).asPromise())
      .then(
        (client) => {
          if (this.abandoned) dropClient(client);
          else this.connectedEarly = client;
        },
        (e: unknown) => {
          const reason = e instanceof Error ? e.message : String(e);
          this.log.error("failed to connect to {host}:{port}: {reason}", { host, port, reason });
          // A UNIX-socket destination (a `connector`) is its path alone.
          throw new ConchError(`connect to ${this.connector === undefined ? `${host}:${port}` : host} failed: ${reason}`, OPEN_CONNECT_FAILED);
        },
      );
  }

  /** The SSH connection ended before the open was confirmed: the destination's connection goes too. */
  override openFailed(_reason: Error): void {
    this.abandoned = true;
    const client = this.connectedEarly;
    this.connectedEarly = undefined;
    if (client !== undefined) dropClient(client);
  }

  override channelOpen(_specificData: Uint8Array): void {
    const early = this.connectedEarly;
    if (early !== undefined) {
      this.connectedEarly = undefined;
      this.pauseProducing();
      // The destination closed while the open was being confirmed.
      if (this.closing) this.loseConnection();
      else this.setClient(early);
      return;
    }
    const [host, port] = this.hostport;
    this.log.info("connecting to {host}:{port}", { host, port });
    // No window goes back until the socket can take the data: what is held is one window at most.
    this.pauseProducing();
    void forwardingReactor(this.reactor).then((reactor) => {
      if (this.localClosed) return;
      const d = this.connectClient(reactor);
      this.channelOpenDeferred = d.addCallbacks(
        (client: SSHForwardingClient) => this.setClient(client),
        (reason: Failure) => this.close(reason),
      );
    });
  }

  /** Opens the connection instead of a TCP connection to `hostport` (UNIX-socket forwarding sets it). */
  connector: ((build: () => SSHForwardingClient) => Deferred<SSHForwardingClient>) | undefined = undefined;

  /**
   * Connects an {@link SSHForwardingClient} joined to this channel to the destination:
   * `connector`'s (UNIX-socket forwarding), else TCP to `hostport`; agent forwarding overrides it
   * to reach a UNIX socket.
   */
  protected connectClient(reactor: IReactorTCP): Deferred<SSHForwardingClient> {
    if (this.connector !== undefined) return this.connector(() => new SSHForwardingClient(this as SSHChannel));
    const [host, port] = this.hostport;
    return new ClientCreator(reactor, SSHForwardingClient, this as SSHChannel).connectTCP(host, port);
  }

  private setClient(client: SSHForwardingClient): void {
    if (!client.connected) {
      // The connect Deferred may fire before makeConnection gave the protocol its transport.
      client.onConnected = () => this.setClient(client);
      return;
    }
    this.client = client;
    this.log.info("connected to {host}:{port}", { host: this.hostport[0], port: this.hostport[1] });
    for (const b of this.clientBuf.splice(0)) client.transport.write(b);
    if (this.eofBeforeConnect) this.eofReceived();
    // Before channelReady: registering with the socket pauses us again if its buffer is full.
    this.resumeProducing();
    client.channelReady();
  }

  private close(reason: Failure): void {
    this.log.error("failed to connect to {host}:{port}: {reason}", { host: this.hostport[0], port: this.hostport[1], reason: reason.value.message });
    this.loseConnection();
  }

  override dataReceived(data: Uint8Array): void {
    if (this.client !== undefined) this.client.transport.write(data);
    else this.clientBuf.push(data.slice());
  }

  override eofReceived(): void {
    this.eofBeforeConnect = this.client === undefined;
    this.client?.channelEOFReceived();
  }

  override closed(): void {
    const client = this.client;
    if (client === undefined) return;
    this.log.info("closed remote forwarding channel {id}", { id: this.id });
    this.client = undefined;
    client.channel = undefined;
    client.transport.loseConnection();
  }
}

/** Closes a connection made for a channel that will not be opened (once it is connected). */
function dropClient(client: SSHForwardingClient): void {
  client.channel = undefined;
  if (client.connected) client.transport.loseConnection();
  else client.onConnected = () => client.transport.loseConnection();
}

/**
 * The `direct-tcpip` entry of a server avatar's `channelLookup`: reads the destination from the
 * open request and makes an {@link SSHConnectForwardingChannel}.
 */
export function openConnectForwardingClient(options: Required<Pick<SSHChannelOptions, "remoteWindow" | "remoteMaxPacket" | "data" | "avatar">>): SSHChannel {
  const [remoteHP] = unpackOpen_direct_tcpip(options.data);
  return new SSHConnectForwardingChannel(remoteHP, {
    remoteWindow: options.remoteWindow,
    remoteMaxPacket: options.remoteMaxPacket,
    avatar: options.avatar,
  });
}

/**
 * Twisted's `SSHForwardingClient`: the socket side of a forwarded connection, joined to `channel`.
 * Until the channel is open (or, for a connection we made, until it is joined) the socket is not
 * read, and what arrived already is held and sent once it is.
 *
 * It is half-closeable (`IHalfCloseableProtocol`), which Twisted's is not: the socket's EOF becomes
 * CHANNEL_EOF instead of closing the channel, so a peer that answers after reading to EOF
 * (`nc -N`, `sha256sum`, an HTTP/1.0 client) still gets its answer, as through OpenSSH.
 */
export class SSHForwardingClient extends Protocol<ITCPTransport> implements IHalfCloseableProtocol {
  channel: SSHChannel | undefined;
  private pending: Uint8Array[] | undefined = [];
  /** The socket's peer sent EOF: no more data for the channel. */
  private readDone = false;
  /** Our write side is shut (the channel's peer sent EOF and all it sent was written). */
  private writeDone = false;

  constructor(channel: SSHChannel) {
    super();
    this.channel = channel;
  }

  /** @internal Called once from connectionMade. */
  onConnected: (() => void) | undefined = undefined;

  override connectionMade(): void {
    // Not read before the channel can carry it: what a fast client sends waits in the kernel.
    if (this.pending !== undefined) this.transport.pauseProducing();
    const f = this.onConnected;
    this.onConnected = undefined;
    f?.();
  }

  /** The channel is open (or the socket joined to it): send what was held and join the flows. */
  channelReady(): void {
    const held = this.pending;
    this.pending = undefined;
    const channel = this.channel;
    if (channel === undefined) return;
    if (held !== undefined && held.length > 0) channel.write(concatBytes(...held));
    // Resume before registering: the channel pauses its producer at once if the window is full.
    if (!this.readDone) this.transport.resumeProducing();
    channel.registerProducer(this.transport, true);
    this.transport.registerProducer(channel, true);
    if (this.readDone) channel.loseWriteConnection();
  }

  override dataReceived(data: Uint8Array): void {
    if (this.pending !== undefined) this.pending.push(data.slice());
    else this.channel?.write(data);
  }

  /** The channel's peer sent EOF: shut the socket's write side once what it sent is written. */
  channelEOFReceived(): void {
    this.transport.loseWriteConnection();
  }

  /** The socket's peer sent EOF (FIN): CHANNEL_EOF, after what the channel still holds. */
  readConnectionLost(): void {
    this.readDone = true;
    const channel = this.channel;
    if (channel === undefined) this.transport.loseConnection();
    else if (this.pending === undefined) channel.loseWriteConnection();
    this.closeIfDone();
  }

  /** Our write side is shut. */
  writeConnectionLost(): void {
    this.writeDone = true;
    this.closeIfDone();
  }

  /** Both directions are done: close the socket, and with it (connectionLost) the channel. */
  private closeIfDone(): void {
    if (this.readDone && this.writeDone) this.transport.loseConnection();
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    const channel = this.channel;
    this.channel = undefined;
    channel?.loseConnection();
  }
}

// ---- payloads ----------------------------------------------------------------------------------

/**
 * Packs a `direct-tcpip` / `forwarded-tcpip` open payload (RFC 4254 §7.2): host and port to
 * connect to (or that was connected), then originator address and port.
 */
export function packOpen_direct_tcpip(destination: HostPort, source: HostPort): Uint8Array {
  return new SSHWriter().string(destination[0]).uint32(destination[1]).string(source[0]).uint32(source[1]).finish().slice();
}

/** Reads a `direct-tcpip` / `forwarded-tcpip` open payload: `[destination, source]`. */
export function unpackOpen_direct_tcpip(data: Uint8Array): [HostPort, HostPort] {
  const r = new SSHReader(data);
  const host = r.utf8("host");
  const port = r.uint32();
  const origHost = r.utf8("originator address");
  const origPort = r.uint32();
  return [
    [host, port],
    [origHost, origPort],
  ];
}

export const packOpen_forwarded_tcpip = packOpen_direct_tcpip;
export const unpackOpen_forwarded_tcpip = unpackOpen_direct_tcpip;

/** Packs a `tcpip-forward` / `cancel-tcpip-forward` global request payload (RFC 4254 §7.1). */
export function packGlobal_tcpip_forward(peer: HostPort): Uint8Array {
  return new SSHWriter().string(peer[0]).uint32(peer[1]).finish().slice();
}

/** Reads a `tcpip-forward` / `cancel-tcpip-forward` payload: `[address to bind, port]`. */
export function unpackGlobal_tcpip_forward(data: Uint8Array): HostPort {
  const r = new SSHReader(data);
  const host = r.utf8("address to bind");
  return [host, r.uint32()];
}

export const packGlobal_cancel_tcpip_forward = packGlobal_tcpip_forward;
export const unpackGlobal_cancel_tcpip_forward = unpackGlobal_tcpip_forward;

// ---- server policy and UNIX-socket forwarding (ssh/_forwarding/) ------------------------------

export * from "./_forwarding/policy.js";
export * from "./_forwarding/streamlocal.js";

// ---- client side: local, remote and dynamic (SOCKS) forwarding ---------------------------------

export * from "./_forwarding/client.js";
export * from "./_forwarding/remote.js";
export * from "./_forwarding/socks.js";
