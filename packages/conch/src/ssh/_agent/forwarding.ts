/**
 * Internal: the server side of agent forwarding. Re-exported by `ssh/agent.ts`.
 *
 * A session that asked for `auth-agent-req@openssh.com` gets an `SSH_AUTH_SOCK`; each connection
 * to that socket opens an `auth-agent@openssh.com` channel back to the client (no open data), and
 * the two are joined as a forwarded TCP connection is.
 */
import type { IAddress, IProtocolFactory } from "@twisted-ts/internet/interfaces";
import type { Logger } from "@twisted-ts/internet/log";
import type { SSHConnection } from "../connection.js";
import { SSHForwardingClient, SSHListenForwardingChannel } from "../forwarding.js";

/** An `auth-agent@openssh.com` channel the server opens for one connection to its agent socket. */
export class SSHAgentForwardedChannel extends SSHListenForwardingChannel {
  override name = "auth-agent@openssh.com";
}

/** Listens on a session's agent socket: each connection opens an {@link SSHAgentForwardedChannel} on `conn`. */
export class SSHAgentForwardingFactory implements IProtocolFactory {
  constructor(readonly conn: SSHConnection) {}

  buildProtocol(_addr: IAddress): SSHForwardingClient {
    const channel = new SSHAgentForwardedChannel({ conn: this.conn });
    const client = new SSHForwardingClient(channel);
    channel.client = client;
    this.conn.openChannel(channel);
    return client;
  }

  doStart(): void {}
  doStop(): void {}
}

/**
 * An avatar that can forward the client's agent: `agentForwardingSocket(conn)` gives the path of
 * a socket (made on first call, then the same one for the connection) for `SSH_AUTH_SOCK`, or
 * undefined to refuse. `SSHSession` asks it on `auth-agent-req@openssh.com`.
 */
export interface IAgentForwardingAvatar {
  agentForwardingSocket(conn: SSHConnection): string | undefined;
}

/**
 * The socket path `avatar` gives for agent forwarding on `conn`, or undefined when it does not
 * forward agents (or failed to listen, which is logged).
 */
export function agentForwardingPath(avatar: unknown, conn: SSHConnection, log: Logger): string | undefined {
  const provider = avatar as Partial<IAgentForwardingAvatar> | undefined;
  if (typeof provider?.agentForwardingSocket !== "function") {
    log.info("refusing agent forwarding: the avatar has no agentForwardingSocket");
    return undefined;
  }
  try {
    return provider.agentForwardingSocket(conn);
  } catch (e) {
    log.failure("agent forwarding failed", e, "warn");
    return undefined;
  }
}
