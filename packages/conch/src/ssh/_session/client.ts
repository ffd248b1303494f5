/**
 * The client side of a session channel (internal: `session.ts` re-exports it): Twisted's
 * `SSHSessionClient`, and a channel that collects what the server sends.
 */
import { Deferred } from "@twisted-ts/internet/defer";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { Protocol } from "@twisted-ts/internet/protocol";
import { SSHChannel } from "../channel.js";
import { concatBytes } from "../common.js";
import { EXTENDED_DATA_STDERR } from "../_connection/messages.js";
import { type ExitSignal, parseRequest_exit_signal, parseRequest_exit_status } from "./requests.js";

/** Twisted's `SSHSessionClient`: a protocol that sends what it receives to its transport. */
export class SSHSessionClient extends Protocol<ITransport> {
  override dataReceived(data: Uint8Array): void {
    this.transport?.write(data);
  }
}

/**
 * A client-side session channel that collects what the server sends: stdout, stderr, the exit
 * status or signal. Subclass it and send `exec` / `shell` in `channelOpen`; `whenClosed` fires
 * once both sides have closed.
 */
export class SSHSessionClientChannel extends SSHChannel {
  override name = "session";
  /** Exit code from the server's exit-status request, if one came. */
  exitStatus: number | undefined = undefined;
  /** The server's exit-signal request, if one came. */
  exitSignal: ExitSignal | undefined = undefined;
  /** True once the channel has closed on both sides. */
  isClosed = false;
  /** Fires with the channel when it has closed on both sides. */
  readonly whenClosed = new Deferred<SSHSessionClientChannel>();
  private readonly out: Uint8Array[] = [];
  private readonly err: Uint8Array[] = [];

  /** Everything received as data (stdout). */
  get stdout(): Uint8Array {
    return concatBytes(...this.out);
  }

  /** Everything received as extended data type 1 (stderr). */
  get stderr(): Uint8Array {
    return concatBytes(...this.err);
  }

  override dataReceived(data: Uint8Array): void {
    this.out.push(data.slice());
  }

  override extReceived(dataType: number, data: Uint8Array): void {
    if (dataType === EXTENDED_DATA_STDERR) this.err.push(data.slice());
  }

  /** RFC 4254 §6.10: `uint32 exit_status`. */
  request_exit_status(data: Uint8Array): boolean {
    this.exitStatus = parseRequest_exit_status(data);
    return true;
  }

  /** RFC 4254 §6.10: signal name, core dumped, error message, language tag. */
  request_exit_signal(data: Uint8Array): boolean {
    this.exitSignal = parseRequest_exit_signal(data);
    return true;
  }

  override closed(): void {
    this.isClosed = true;
    this.whenClosed.callback(this);
  }
}
