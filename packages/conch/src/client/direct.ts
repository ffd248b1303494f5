/**
 * `twisted.conch.client.direct`: an SSH client connection with the default client's host key
 * check and authentication, made through any stream endpoint. {@link connect} fires with the
 * authenticated {@link SSHConnection}; the endpoint may be TCP or a `direct-tcpip` channel of
 * another connection (a jump host: see `client/endpoints`'s SSHDirectTCPIPClientEndpoint).
 */
import { Deferred } from "@twisted-ts/internet/defer";
import { connectProtocol } from "@twisted-ts/internet/endpoints";
import { Failure } from "@twisted-ts/internet/failure";
import type { IStreamClientEndpoint } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { ConchError, NoMoreAuthMethodsError } from "../error.js";
import { SSHConnection } from "../ssh/connection.js";
import type { SSHService } from "../ssh/service.js";
import { DEFAULT_PUBLIC_KEYS, SSHClientTransport as BaseClientTransport } from "../ssh/transport.js";
import { type ClientOptions, type HostKeyCheckOptions, SSHUserAuthClient, verifyHostKey } from "./default.js";
import { SSHAgentClient } from "./agent.js";
import { hostKeyAlgorithmsFor, KnownHostsFile } from "./knownhosts.js";

const logger = new Logger("twisted-ts.conch.client.direct");

/** Authentication did not succeed (Twisted's `endpoints.AuthenticationFailed`). */
export class AuthenticationFailed extends ConchError {
  override readonly code = "ERR_SSH_AUTHENTICATION_FAILED";
  constructor(message = "Connection lost while authenticating") {
    super(message);
    this.name = "AuthenticationFailed";
  }
}

/** Everything a client connection needs: who, where, the host key check and how to log in. */
export interface ConnectOptions extends Omit<ClientOptions, "hostname">, Omit<HostKeyCheckOptions, "ui"> {
  /** The user to log in as. */
  user: string;
  /** ssh's ServerAliveInterval in seconds; 0 or unset is off. */
  keepaliveInterval?: number;
  /** ssh's ServerAliveCountMax (3 when unset). */
  keepaliveCountMax?: number;
  /** Makes the connection service; a plain {@link SSHConnection} by default. */
  makeConnection?: () => SSHConnection;
}

/**
 * Twisted's `direct.SSHClientTransport`: checks the host key with {@link verifyHostKey}, logs in
 * with the default {@link SSHUserAuthClient} and fires {@link connectionReady} with the
 * connection service once it runs; a failure before that (host key refused, authentication
 * failed, connection lost) errbacks it with the reason.
 */
export class SSHClientTransport extends BaseClientTransport {
  /** Fires with the connection service once authentication succeeded. */
  readonly connectionReady: Deferred<SSHConnection>;
  /** The user authentication service, once the connection is secure. */
  userauth: SSHUserAuthClient | undefined = undefined;
  private hostKeyFailure: unknown = undefined;
  private authFailure: unknown = undefined;
  private readonly connection: SSHConnection;
  private agent: SSHAgentClient | undefined = undefined;

  constructor(readonly options: ConnectOptions) {
    super();
    this.connectionReady = new Deferred<SSHConnection>(() => this.transport?.loseConnection());
    this.connection = options.makeConnection?.() ?? new SSHConnection();
    if (options.keepaliveInterval !== undefined) this.connection.keepaliveInterval = options.keepaliveInterval;
    if (options.keepaliveCountMax !== undefined) this.connection.keepaliveCountMax = options.keepaliveCountMax;
    // Certificate host key algorithms first when known_hosts names a CA for the host, as ssh.
    try {
      const file = typeof options.knownHosts === "string" ? KnownHostsFile.fromPath(options.knownHosts) : options.knownHosts;
      this.supportedPublicKeys = hostKeyAlgorithmsFor(file, options.hostname, options.port !== 22 ? options.port : undefined, DEFAULT_PUBLIC_KEYS);
    } catch {
      /* an unreadable known_hosts is reported by the host key check */
    }
  }

  override verifyHostKey(pubKey: Uint8Array, _fingerprint: string): Deferred<boolean> {
    return verifyHostKey(pubKey, this.options).addErrback((f: Failure): boolean => {
      this.hostKeyFailure = f.value;
      throw f.value;
    });
  }

  /**
   * Starts authentication; with `agentEndpoint`, connects to the agent first and offers its keys
   * before the others (an agent that cannot be reached is logged and done without, as Twisted's
   * `maybeGotAgent`).
   */
  override connectionSecure(): void {
    const auth = new SSHUserAuthClient(this.options.user, this.options, this.connection);
    this.userauth = auth;
    auth.whenDone().addErrback((f: Failure) => {
      this.authFailure = f.value instanceof NoMoreAuthMethodsError ? new AuthenticationFailed(`Permission denied (${f.getErrorMessage()})`) : f.value;
    });
    const agentEndpoint = this.options.agentEndpoint;
    if (agentEndpoint === undefined) {
      this.requestService(auth);
      return;
    }
    connectProtocol(agentEndpoint, new SSHAgentClient()).addCallbacks(
      (agent: SSHAgentClient) => {
        this.agent = agent;
        auth.keyAgent = agent;
        if (this.disconnected) this.loseAgentConnection();
        else this.requestService(auth);
      },
      (f: Failure) => {
        logger.info("no agent: {error}", { error: f.getErrorMessage() });
        if (!this.disconnected) this.requestService(auth);
      },
    );
  }

  /** Closes the connection to the agent, if there is one (Twisted's `loseAgentConnection`). */
  loseAgentConnection(): void {
    this.agent?.transport?.loseConnection();
    this.agent = undefined;
  }

  override setService(service: SSHService): void {
    super.setService(service);
    if (service === this.connection && !this.connectionReady.called) this.connectionReady.callback(this.connection);
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.loseAgentConnection();
    if (this.connectionReady.called) return;
    const why = this.hostKeyFailure ?? this.authFailure ?? (this.userauth !== undefined ? new AuthenticationFailed() : undefined) ?? this.disconnectReason;
    this.connectionReady.errback(why !== undefined ? new Failure(why) : reason);
  }
}

/**
 * Twisted's `direct.connect`: connects through `endpoint`, checks the host key and logs in; fires
 * with the authenticated connection. Cancelling it closes the connection.
 */
export function connect(endpoint: IStreamClientEndpoint, options: ConnectOptions): Deferred<SSHConnection> {
  const protocol = new SSHClientTransport(options);
  const connecting = connectProtocol(endpoint, protocol);
  // Cancelled while connecting: stop connecting; later: close the connection.
  const d = new Deferred<SSHConnection>(() => (connecting.called ? protocol.connectionReady.cancel() : connecting.cancel()));
  connecting.addCallbacks(
    () => protocol.connectionReady.chainDeferred(d),
    (f: Failure) => void (d.called || d.errback(f)),
  );
  return d;
}
