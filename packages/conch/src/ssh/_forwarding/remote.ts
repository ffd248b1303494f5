/**
 * Client side of remote forwarding (`ssh -R`, RFC 4254 §7.1): the `tcpip-forward` and
 * `cancel-tcpip-forward` global requests, and the `forwarded-tcpip` channels the server opens back
 * for each connection it accepts.
 *
 * A `forwarded-tcpip` open is matched to a forward by the address and port it names as connected
 * (what the forward asked to bind, and the port the server allocated for port 0), as OpenSSH
 * does; when no forward has that address, a forward with the same port is used if there is just
 * one (servers that name the address they really bound). An open that matches nothing is refused
 * with OPEN_ADMINISTRATIVELY_PROHIBITED, as OpenSSH refuses it.
 */
import type { Deferred } from "@twisted-ts/internet/defer";
import { fail } from "@twisted-ts/internet/defer";
import type { IReactorTCP } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { ConchError, NotPermittedError, OPEN_CONNECT_FAILED } from "../../error.js";
import type { SSHChannel } from "../channel.js";
import { SSHReader } from "../common.js";
import type { SSHConnection } from "../connection.js";
import { type HostPort, SSHConnectForwardingChannel, packGlobal_tcpip_forward, unpackOpen_forwarded_tcpip } from "../forwarding.js";
import type { ForwardListen } from "./client.js";

const log = new Logger("twisted-ts.conch.ssh.forwarding");

/** One remote forward the server accepted. */
interface RemoteForward {
  /** The address as we asked the server to bind it. */
  readonly host: string;
  /** The bound port (the allocated one when we asked for 0). */
  readonly port: number;
  readonly destination: HostPort;
  readonly reactor: IReactorTCP | undefined;
}

/** Each connection's remote forwards, by "host:port" as bound. */
const forwards = new WeakMap<SSHConnection, Map<string, RemoteForward>>();

const keyOf = (host: string, port: number): string => `${port} ${host}`;

/** The address a remote forward asks the server to bind: as given, `localhost` when omitted (OpenSSH's default). */
function bindAddress(listen: ForwardListen): string {
  return listen.host ?? "localhost";
}

/**
 * Remote forwarding, as `ssh -R [bind:]port:host:hostport`: asks the server (`tcpip-forward`) to
 * listen on `listen` (address default `localhost`, the server's loopback; port 0 lets the server
 * pick) and connects each connection it forwards back to `destination` from here. Fires with the
 * bound port (the allocated one for port 0); fails with `GlobalRequestFailedError` when the server
 * refuses.
 */
export function remoteForward(connection: SSHConnection, listen: ForwardListen, destination: HostPort, reactor?: IReactorTCP): Deferred<number> {
  const host = bindAddress(listen);
  let d: Deferred<Uint8Array>;
  try {
    d = connection.sendGlobalRequest("tcpip-forward", packGlobal_tcpip_forward([host, listen.port]), true);
  } catch (e) {
    return fail(e);
  }
  return d.addCallback((reply: Uint8Array) => {
    let port = listen.port;
    if (port === 0) {
      // RFC 4254 §7.1: for port 0 the reply carries the port the server allocated.
      port = reply.length >= 4 ? new SSHReader(reply).uint32() : 0;
      if (port === 0 || port > 0xffff) throw new ConchError("tcpip-forward to port 0: the server's reply names no port");
      log.info("allocated port {port} for remote forward to {host}:{destPort}", { port, host: destination[0], destPort: destination[1] });
    }
    let table = forwards.get(connection);
    if (table === undefined) forwards.set(connection, (table = new Map()));
    table.set(keyOf(host, port), { host, port, destination, reactor });
    return port;
  });
}

/**
 * Cancels a remote forward (`cancel-tcpip-forward`): `listen` names it as it was asked for, with
 * the bound port. Connections the server forwards from now on are refused; those already
 * forwarded go on. Fails with `GlobalRequestFailedError` when the server refuses.
 */
export function cancelRemoteForward(connection: SSHConnection, listen: ForwardListen): Deferred<void> {
  const host = bindAddress(listen);
  forwards.get(connection)?.delete(keyOf(host, listen.port));
  let d: Deferred<Uint8Array>;
  try {
    d = connection.sendGlobalRequest("cancel-tcpip-forward", packGlobal_tcpip_forward([host, listen.port]), true);
  } catch (e) {
    return fail(e);
  }
  return d.addCallback(() => undefined);
}

/** The forward `bound` (from a forwarded-tcpip open) belongs to, if any. */
function match(connection: SSHConnection, bound: HostPort): RemoteForward | undefined {
  const table = forwards.get(connection);
  if (table === undefined) return undefined;
  const exact = table.get(keyOf(bound[0], bound[1]));
  if (exact !== undefined) return exact;
  const samePort = [...table.values()].filter((f) => f.port === bound[1]);
  return samePort.length === 1 ? samePort[0] : undefined;
}

/**
 * @internal The client side of `SSHConnection.getChannel` for a type it has no `channel_<type>`
 * method for: a `forwarded-tcpip` open becomes an {@link SSHConnectForwardingChannel} to the
 * matching forward's destination; one that matches nothing is refused. Other types: undefined.
 */
export function forwardedTCPIPChannel(connection: SSHConnection, channelType: string, windowSize: number, maxPacket: number, data: Uint8Array): SSHChannel | undefined {
  if (channelType !== "forwarded-tcpip") return undefined;
  let bound: HostPort;
  let origin: HostPort;
  try {
    [bound, origin] = unpackOpen_forwarded_tcpip(data);
  } catch (e) {
    throw new ConchError(`malformed forwarded-tcpip open: ${(e as Error).message}`, OPEN_CONNECT_FAILED);
  }
  const forward = match(connection, bound);
  if (forward === undefined) {
    log.warn("the server forwards a connection for {host}:{port}, which we did not ask for: refused", { host: bound[0], port: bound[1] });
    throw new NotPermittedError("open failed");
  }
  log.info("forwarded connection from {origin}:{originPort} to {host}:{port}", {
    origin: origin[0],
    originPort: origin[1],
    host: forward.destination[0],
    port: forward.destination[1],
  });
  const channel = new SSHConnectForwardingChannel(forward.destination, { remoteWindow: windowSize, remoteMaxPacket: maxPacket, conn: connection });
  channel.reactor = forward.reactor;
  return channel;
}
