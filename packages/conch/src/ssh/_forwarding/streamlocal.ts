/**
 * UNIX-socket forwarding, OpenSSH's extension (PROTOCOL §2.4): the `direct-streamlocal@openssh.com`
 * and `forwarded-streamlocal@openssh.com` channels and the `streamlocal-forward@openssh.com` /
 * `cancel-streamlocal-forward@openssh.com` global requests; their payloads; the client's
 * {@link localStreamForward} (`ssh -L /local.sock:/remote.sock`) and {@link remoteStreamForward}
 * (`ssh -R /remote.sock:host:port`); and the server channel that connects to a socket path.
 *
 * Each forwarded connection is an `SSHForwardingClient` joined to its channel, so half-close and
 * flow control work as for TCP forwarding.
 */
import type { Failure } from "@twisted-ts/internet/failure";
import type { IAddress, IClientFactory, IListeningPort, IProtocol, IProtocolFactory, IReactorTCP, IReactorUNIX } from "@twisted-ts/internet/interfaces";
import { ClientFactory } from "@twisted-ts/internet/protocol";
import { Deferred } from "@twisted-ts/internet/defer";
import { ConchError, OPEN_ADMINISTRATIVELY_PROHIBITED, OPEN_CONNECT_FAILED } from "../../error.js";
import type { SSHChannel, SSHChannelOptions } from "../channel.js";
import { SSHReader, SSHWriter } from "../common.js";
import type { SSHConnection } from "../connection.js";
// Values from forwarding.ts are used only inside functions: it re-exports this module, so nothing
// of it may be needed while this module is evaluated (no `extends` of its classes here).
import { SSHConnectForwardingChannel, SSHForwardingClient, SSHListenForwardingChannel, packOpen_direct_tcpip, type HostPort } from "../forwarding.js";
import { mayOpenForwardedChannel } from "./policy.js";

/** Where a forwarded connection goes: a TCP host and port, or a UNIX socket path. */
export type StreamForwardDestination = HostPort | { readonly path: string };

/** The reactor UNIX-socket forwarding listens and connects with. */
export type StreamLocalClientReactor = IReactorTCP & IReactorUNIX;

/** Options of the client's UNIX-socket forwarding functions. */
export interface StreamForwardOptions {
  /** The reactor (default: the global one). */
  reactor?: StreamLocalClientReactor;
}

let defaultReactor: StreamLocalClientReactor | undefined;
async function reactorOf(reactor: StreamLocalClientReactor | undefined): Promise<StreamLocalClientReactor> {
  if (reactor !== undefined) return reactor;
  if (defaultReactor === undefined) defaultReactor = (await import("@twisted-ts/internet/reactor")).reactor;
  return defaultReactor;
}

/** Longest socket path (`sun_path` holds 108 bytes with its NUL). */
export const MAX_SOCKET_PATH = 107;

/** A socket path a peer sent that cannot be used (empty, too long, or with a NUL). */
export class BadSocketPathError extends ConchError {
  override readonly code = "ERR_SSH_BAD_SOCKET_PATH";
  constructor(path: string) {
    super(`bad socket path ${JSON.stringify(path.slice(0, 200))}`, OPEN_CONNECT_FAILED);
    this.name = "BadSocketPathError";
  }
}

function checkedPath(path: string): string {
  if (path.length === 0 || Buffer.byteLength(path) > MAX_SOCKET_PATH || path.includes("\0")) throw new BadSocketPathError(path);
  return path;
}

// ---- payloads ----------------------------------------------------------------------------------

/** Packs a `direct-streamlocal@openssh.com` open: socket path, reserved string, reserved uint32. */
export function packOpen_direct_streamlocal(path: string): Uint8Array {
  return new SSHWriter().string(path).string("").uint32(0).finish().slice();
}

/** Reads a `direct-streamlocal@openssh.com` open: the socket path (checked: not empty, no NUL, fits `sun_path`). */
export function unpackOpen_direct_streamlocal(data: Uint8Array): string {
  const r = new SSHReader(data);
  const path = r.utf8("socket path");
  r.string();
  r.uint32();
  return checkedPath(path);
}

/** Packs a `forwarded-streamlocal@openssh.com` open: the socket path that was connected to, reserved string. */
export function packOpen_forwarded_streamlocal(path: string): Uint8Array {
  return new SSHWriter().string(path).string("").finish().slice();
}

/** Reads a `forwarded-streamlocal@openssh.com` open: the socket path. */
export function unpackOpen_forwarded_streamlocal(data: Uint8Array): string {
  const r = new SSHReader(data);
  const path = r.utf8("socket path");
  r.string();
  return path;
}

/** Packs a `streamlocal-forward@openssh.com` / `cancel-streamlocal-forward@openssh.com` payload: the socket path. */
export function packGlobal_streamlocal_forward(path: string): Uint8Array {
  return new SSHWriter().string(path).finish().slice();
}

/** Reads a `streamlocal-forward@openssh.com` / `cancel-…` payload: the socket path (checked). */
export function unpackGlobal_streamlocal_forward(data: Uint8Array): string {
  return checkedPath(new SSHReader(data).utf8("socket path"));
}

export const packGlobal_cancel_streamlocal_forward = packGlobal_streamlocal_forward;
export const unpackGlobal_cancel_streamlocal_forward = unpackGlobal_streamlocal_forward;

// ---- channels ----------------------------------------------------------------------------------

/** Opens a connection to join to a channel: fires with the client once connected. */
export type StreamConnector = (build: () => SSHForwardingClient) => Deferred<SSHForwardingClient>;

/**
 * The channel of the side that connects to a socket path (the server for `direct-streamlocal`, the
 * client for `forwarded-streamlocal`): an `SSHConnectForwardingChannel` whose connection comes
 * from `connector` (on a server running as root: made as the user).
 */
export function connectStreamLocalChannel(path: string, connector: StreamConnector, options: SSHChannelOptions = {}): SSHConnectForwardingChannel {
  const channel = new SSHConnectForwardingChannel([path, 0], options);
  channel.name = "direct-streamlocal@openssh.com";
  channel.connector = connector;
  return channel;
}

/** One-shot client factory: fires with the protocol built, or fails. */
class OneConnection<P extends IProtocol> extends ClientFactory<P> implements IClientFactory {
  constructor(
    private readonly build: () => P,
    private readonly d: Deferred<P>,
  ) {
    super();
  }
  override buildProtocol(_addr: IAddress): P {
    const p = this.build();
    this.d.callback(p);
    return p;
  }
  override clientConnectionFailed(_connector: unknown, reason: Failure): void {
    this.d.errback(reason);
  }
}

/** Connects to the UNIX socket `path` with `build`'s protocol; fires with it once connected (ClientCreator's `connectUNIX`). */
export function connectUNIXProtocol<P extends IProtocol>(reactor: IReactorUNIX, path: string, build: () => P): Deferred<P> {
  const d = new Deferred<P>();
  reactor.connectUNIX(path, new OneConnection(build, d));
  return d;
}

/** A {@link StreamConnector} for `path` with this process's own rights. */
export function unixConnector(reactor: IReactorUNIX, path: string): StreamConnector {
  return (build) => connectUNIXProtocol(reactor, path, build);
}

/**
 * Listens for forwarded connections and opens one channel per connection, with `openData` as the
 * channel's open payload (Twisted's `SSHListenForwardingFactory` for any channel type). Past the
 * forwarded-channel limit a connection is closed at once.
 */
export class SSHListenStreamForwardingFactory implements IProtocolFactory {
  constructor(
    readonly conn: SSHConnection,
    /** The channel type opened: `direct-streamlocal@openssh.com`, `forwarded-streamlocal@openssh.com`, `direct-tcpip`. */
    readonly channelType: string,
    readonly openData: () => Uint8Array,
  ) {}

  buildProtocol(_addr: IAddress): SSHForwardingClient | null {
    if (!mayOpenForwardedChannel(this.conn, `${this.channelType} channel`)) return null;
    const channel = new SSHListenForwardingChannel({ conn: this.conn });
    channel.name = this.channelType;
    const client = new SSHForwardingClient(channel);
    channel.client = client;
    this.conn.openChannel(channel, this.openData());
    return client;
  }

  doStart(): void {}
  doStop(): void {}
}

function isPath(d: StreamForwardDestination): d is { readonly path: string } {
  return !Array.isArray(d);
}

// ---- the client's forwards ---------------------------------------------------------------------

/**
 * `ssh -L listenPath:destination`: listens on the UNIX socket `listenPath` (which must not exist)
 * and forwards each connection through `connection` to `destination`, a socket path on the server
 * (`direct-streamlocal@openssh.com`) or a host and port (`direct-tcpip`). Fires with the listening
 * port; `stopListening()` cancels the forward (connections already made carry on) and removes the
 * socket file.
 */
export async function localStreamForward(
  connection: SSHConnection,
  listenPath: string,
  destination: StreamForwardDestination,
  options: StreamForwardOptions = {},
): Promise<IListeningPort> {
  const reactor = await reactorOf(options.reactor);
  const factory = isPath(destination)
    ? new SSHListenStreamForwardingFactory(connection, "direct-streamlocal@openssh.com", () => packOpen_direct_streamlocal(destination.path))
    : new SSHListenStreamForwardingFactory(connection, "direct-tcpip", () => packOpen_direct_tcpip(destination, ["127.0.0.1", 0]));
  const port = reactor.listenUNIX(checkedPath(listenPath), factory);
  const ready = (port as IListeningPort & { whenListening?: () => PromiseLike<unknown> }).whenListening?.();
  if (ready !== undefined) await ready;
  return port;
}

const FORWARDS = Symbol("twisted-ts.conch.streamlocal.forwards");
const CHANNEL_METHOD = "channel_forwarded_streamlocal_openssh_com";

interface ForwardingConnection {
  [FORWARDS]?: Map<string, StreamForwardDestination>;
  [CHANNEL_METHOD]?: (windowSize: number, maxPacket: number, data: Uint8Array) => SSHChannel;
}

/** The connection's remote stream forwards, installing its `forwarded-streamlocal` channel factory on first use. */
function remoteForwards(connection: SSHConnection, reactor: StreamLocalClientReactor): Map<string, StreamForwardDestination> {
  const conn = connection as SSHConnection & ForwardingConnection;
  let table = conn[FORWARDS];
  if (table !== undefined) return table;
  const forwards = new Map<string, StreamForwardDestination>();
  table = conn[FORWARDS] = forwards;
  conn[CHANNEL_METHOD] = (windowSize, maxPacket, data) => {
    const path = unpackOpen_forwarded_streamlocal(data);
    const destination = forwards.get(path);
    if (destination === undefined) throw new ConchError(`no forward for ${JSON.stringify(path)}`, OPEN_ADMINISTRATIVELY_PROHIBITED);
    const options = { remoteWindow: windowSize, remoteMaxPacket: maxPacket };
    if (isPath(destination)) return connectStreamLocalChannel(destination.path, unixConnector(reactor, destination.path), options);
    const channel = new SSHConnectForwardingChannel(destination, options);
    channel.reactor = reactor;
    return channel;
  };
  return table;
}

/**
 * `ssh -R remotePath:destination`: asks the server to listen on the UNIX socket `remotePath`
 * (`streamlocal-forward@openssh.com`); each connection it accepts comes back as a
 * `forwarded-streamlocal@openssh.com` channel that this side joins to `destination` (a host and
 * port, or a socket path). Fails with `GlobalRequestFailedError` when the server refuses.
 */
export async function remoteStreamForward(
  connection: SSHConnection,
  remotePath: string,
  destination: StreamForwardDestination,
  options: StreamForwardOptions = {},
): Promise<void> {
  const reactor = await reactorOf(options.reactor);
  const forwards = remoteForwards(connection, reactor);
  forwards.set(remotePath, destination);
  try {
    await connection.sendGlobalRequest("streamlocal-forward@openssh.com", packGlobal_streamlocal_forward(checkedPath(remotePath)), true);
  } catch (e) {
    if (forwards.get(remotePath) === destination) forwards.delete(remotePath);
    throw e;
  }
}

/** Cancels a {@link remoteStreamForward} (`cancel-streamlocal-forward@openssh.com`); connections already made carry on. */
export async function cancelRemoteStreamForward(connection: SSHConnection, remotePath: string): Promise<void> {
  (connection as SSHConnection & ForwardingConnection)[FORWARDS]?.delete(remotePath);
  await connection.sendGlobalRequest("cancel-streamlocal-forward@openssh.com", packGlobal_cancel_streamlocal_forward(remotePath), true);
}
