/**
 * Keepalive for the connection service (internal): OpenSSH's `ServerAliveInterval` /
 * `ServerAliveCountMax` on the client and `ClientAliveInterval` / `ClientAliveCountMax` on the
 * server.
 *
 * After `interval` seconds in which nothing came from the peer, a `keepalive@openssh.com` global
 * request with want-reply goes out. Any reply, REQUEST_SUCCESS or REQUEST_FAILURE, is an answer
 * and resets the count of unanswered ones, as does any other packet from the peer. When the timer
 * fires with `countMax` requests already unanswered the connection is dropped with a log line and
 * a DISCONNECT, as `server_alive_check` in OpenSSH's clientloop.c does: a silent peer is dropped
 * `interval × (countMax + 1)` seconds after the last thing it sent.
 */
import type { Deferred } from "@twisted-ts/internet/defer";
import type { Logger } from "@twisted-ts/internet/log";
import { DISCONNECT_CONNECTION_LOST } from "../../error.js";
import type { ServiceClock, SSHServiceTransport } from "../service.js";

/** The global request name OpenSSH sends and answers with REQUEST_FAILURE. */
export const KEEPALIVE_REQUEST = "keepalive@openssh.com";

/** What the keepalive needs of the connection it watches. */
export interface KeepaliveConnection {
  readonly transport: SSHServiceTransport | undefined;
  sendGlobalRequest(request: string, data?: Uint8Array | string, wantReply?: boolean | number): Deferred<Uint8Array>;
}

/** Sends keepalives on one connection; made by the connection service when the interval is set. */
export class Keepalive {
  /** Keepalives sent and not answered yet. */
  unanswered = 0;
  private timer: { cancel(): void; active(): boolean } | undefined = undefined;
  private stopped = false;

  constructor(
    private readonly connection: KeepaliveConnection,
    private readonly clock: ServiceClock,
    private readonly log: Logger,
    /** Seconds of silence before a keepalive goes out. */
    readonly interval: number,
    /** Unanswered keepalives after which the connection is dropped. */
    readonly countMax: number,
  ) {
    this.schedule();
  }

  /** Something came from the peer: it is alive, the silence starts again. */
  packetReceived(): void {
    if (this.stopped) return;
    this.unanswered = 0;
    this.schedule();
  }

  /** Stops the timer (the connection is gone). */
  stop(): void {
    this.stopped = true;
    if (this.timer?.active() === true) this.timer.cancel();
    this.timer = undefined;
  }

  private schedule(): void {
    if (this.timer?.active() === true) this.timer.cancel();
    this.timer = this.clock.callLater(this.interval, () => this.fire());
  }

  private fire(): void {
    this.timer = undefined;
    if (this.stopped) return;
    const transport = this.connection.transport;
    if (transport === undefined) return;
    if (this.unanswered >= this.countMax) {
      const who = transport.isClient ? "server" : "client";
      this.log.warn("Timeout, {who} not responding: {count} keepalives unanswered", { who, count: this.unanswered });
      this.stop();
      transport.sendDisconnect(DISCONNECT_CONNECTION_LOST, `Timeout, ${who} not responding`);
      return;
    }
    this.unanswered++;
    // The reply (success or failure) comes through packetReceived, which resets the count.
    this.connection.sendGlobalRequest(KEEPALIVE_REQUEST, new Uint8Array(0), true).addErrback(() => undefined);
    this.schedule();
  }
}

/** OpenSSH's default ServerAliveCountMax / ClientAliveCountMax. */
export const DEFAULT_KEEPALIVE_COUNT_MAX = 3;

/**
 * Starts the keepalive of `connection` once its service starts: with its own interval, or on a
 * server with the factory's `clientAliveInterval` / `clientAliveCountMax`; undefined when off.
 */
export function startKeepalive(
  connection: KeepaliveConnection,
  interval: number | undefined,
  countMax: number | undefined,
): Keepalive | undefined {
  const transport = connection.transport;
  if (transport === undefined) return undefined;
  const factory = transport.isClient ? undefined : transport.factory;
  const seconds = interval ?? factory?.clientAliveInterval ?? 0;
  if (!(seconds > 0)) return undefined;
  const max = countMax ?? factory?.clientAliveCountMax ?? DEFAULT_KEEPALIVE_COUNT_MAX;
  return new Keepalive(connection, transport.clock, transport.logger, seconds, max);
}
