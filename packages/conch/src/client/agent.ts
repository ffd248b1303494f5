/**
 * `twisted.conch.client.agent`: using the user's SSH agent from a client.
 *
 * - {@link connectAgent} connects an {@link SSHAgentClient} to `SSH_AUTH_SOCK`. Give it to
 *   `SSHUserAuthClient` as its `keyAgent` and the agent's keys are offered first (signed by the
 *   agent), before the client's own.
 * - Agent forwarding (`ssh -A`): enable it on a client `SSHConnection` with
 *   {@link acceptAgentForwarding}`(conn)` (before or after the connection starts: it only lets the
 *   server open `auth-agent@openssh.com` channels, each relayed to the local agent socket), then
 *   ask for it on each session channel with {@link requestAgentForwarding}`(channel)` — in the
 *   channel's `channelOpen`, before the shell or exec request, as OpenSSH does:
 *
 *   ```ts
 *   class Session extends SSHChannel {
 *     override name = "session";
 *     override channelOpen(): void {
 *       void requestAgentForwarding(this);
 *       void this.conn.sendRequest(this, "exec", NS("ssh-add -l"), true);
 *     }
 *   }
 *   acceptAgentForwarding(conn);          // conn: the client's SSHConnection
 *   conn.openChannel(new Session());      // in conn.serviceStarted()
 *   ```
 *
 * A subclass of `SSHConnection` may instead define `channel_auth_agent_openssh_com(window,
 * maxPacket, data)` returning an {@link SSHAgentForwardingChannel}, as Twisted's users did.
 */
import { Deferred, fail } from "@twisted-ts/internet/defer";
import { UNIXClientEndpoint, connectProtocol } from "@twisted-ts/internet/endpoints";
import type { IReactorTCP, IReactorUNIX } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { reactor as globalReactor } from "@twisted-ts/internet/reactor";
import { SSHAgentClient as BaseAgentClient, AgentError } from "../ssh/agent.js";
import type { SSHChannel, SSHChannelOptions } from "../ssh/channel.js";
import type { SSHConnection } from "../ssh/connection.js";
import { SSHConnectForwardingChannel, SSHForwardingClient } from "../ssh/forwarding.js";
import { Key } from "../ssh/keys.js";

const log = new Logger("twisted-ts.conch.client.agent");

/** The channel type of a forwarded agent connection (OpenSSH's PROTOCOL §2.1 / 4.1). */
export const AGENT_CHANNEL_TYPE = "auth-agent@openssh.com";
/** The session request that asks for agent forwarding. */
export const AGENT_FORWARDING_REQUEST = "auth-agent-req@openssh.com";

/**
 * Twisted's client-side `SSHAgentClient`: the protocol client with `getPublicKeys()` (fetch the
 * agent's list) and `getPublicKey()` (the next of them, or undefined), as `default.py` uses it.
 */
export class SSHAgentClient extends BaseAgentClient {
  /** Blobs of the keys fetched by `getPublicKeys`, not yet handed out. */
  blobs: Uint8Array[] = [];

  /** Fetches the agent's keys into `blobs`. */
  getPublicKeys(): Deferred<void> {
    return this.requestIdentities().addCallback((identities) => {
      log.debug("got {num} public keys", { num: identities.length });
      this.blobs = identities.map(([blob]) => blob);
    });
  }

  /** The next fetched key (keys of types this library cannot read are skipped), or undefined. */
  getPublicKey(): Key | undefined {
    while (this.blobs.length > 0) {
      const blob = this.blobs.shift()!;
      try {
        return Key.fromString(blob, "blob");
      } catch (e) {
        log.debug("skipping an agent key: {error}", { error: e instanceof Error ? e.message : String(e) });
      }
    }
    return undefined;
  }
}

/**
 * Connects to the agent at `path` (default `SSH_AUTH_SOCK`); fires with a connected
 * {@link SSHAgentClient}, or fails with {@link AgentError} when there is no socket to connect to.
 */
export function connectAgent(reactor: IReactorUNIX = globalReactor, path: string | undefined = process.env["SSH_AUTH_SOCK"]): Deferred<SSHAgentClient> {
  if (path === undefined || path === "") return fail(new AgentError("no agent: SSH_AUTH_SOCK is not set"));
  return connectProtocol(new UNIXClientEndpoint(reactor, path), new SSHAgentClient());
}

/** Options of the agent forwarding channels. */
export interface AgentForwardingOptions {
  /** The local agent socket (default: `SSH_AUTH_SOCK` when each channel opens). */
  path?: string;
  /** The reactor to connect with (default: the global one). */
  reactor?: IReactorUNIX & IReactorTCP;
}

/**
 * Twisted's `SSHAgentForwardingChannel`: an `auth-agent@openssh.com` channel the server opened,
 * joined to a new connection to the local agent socket. Data from the server waits (one window at
 * most) until that connection is made; if it cannot be made, the channel closes.
 */
export class SSHAgentForwardingChannel extends SSHConnectForwardingChannel {
  override name = AGENT_CHANNEL_TYPE;
  private readonly unixReactor: IReactorUNIX | undefined;

  constructor(options: SSHChannelOptions & AgentForwardingOptions = {}) {
    super([options.path ?? process.env["SSH_AUTH_SOCK"] ?? "", 0], options);
    this.unixReactor = options.reactor;
    if (options.reactor !== undefined) this.reactor = options.reactor;
  }

  protected override connectClient(reactor: IReactorTCP): Deferred<SSHForwardingClient> {
    const path = this.hostport[0];
    if (path === "") return fail(new AgentError("agent forwarding: SSH_AUTH_SOCK is not set"));
    const r = this.unixReactor ?? (reactor as unknown as Partial<IReactorUNIX>);
    if (typeof r.connectUNIX !== "function") return fail(new AgentError("agent forwarding needs a reactor that connects to UNIX sockets"));
    return connectProtocol(new UNIXClientEndpoint(r as IReactorUNIX, path), new SSHAgentForwardingLocal(this));
  }
}

/** Twisted's `SSHAgentForwardingLocal`: the local agent socket's side of a forwarded connection. */
export class SSHAgentForwardingLocal extends SSHForwardingClient {}

/**
 * Lets the server of `conn` (a client connection) open `auth-agent@openssh.com` channels, each
 * relayed to the local agent. Without it such channels are refused, so an agent is never
 * forwarded unless asked for.
 */
export function acceptAgentForwarding(conn: SSHConnection, options: AgentForwardingOptions = {}): void {
  (conn as unknown as Record<string, unknown>)["channel_auth_agent_openssh_com"] = (windowSize: number, maxPacket: number, data: Uint8Array): SSHChannel =>
    new SSHAgentForwardingChannel({ ...options, remoteWindow: windowSize, remoteMaxPacket: maxPacket, data, conn });
}

/**
 * Sends `auth-agent-req@openssh.com` on session channel `channel` (which must be open): the
 * server then gives the session's processes an `SSH_AUTH_SOCK` that reaches our agent. Fires
 * with "" when the server agrees, fails with `ConchError("channel request failed")` when not.
 */
export function requestAgentForwarding(channel: SSHChannel): Deferred<string> {
  return channel.conn.sendRequest(channel, AGENT_FORWARDING_REQUEST, new Uint8Array(0), true);
}
