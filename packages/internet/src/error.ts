/**
 * Exceptions of `twisted.internet.error`: why a connection ended or could not start, why a
 * process ended, and misuse of the reactor. Every class has a stable `code` and keeps Twisted's
 * name and hierarchy (`ConnectionAborted` is a `ConnectionLost`; `ConnectionRefusedError` is a
 * `ConnectError`), so `failure.check(ConnectionLost)` reads as it does in Python.
 */

/** Base of this module's errors; `code` is stable across releases. */
export class InternetError extends Error {
  readonly code: string = "ERR_TWISTED_INTERNET";
  constructor(message = "") {
    super(message);
    this.name = new.target.name;
  }
}

// ---------------------------------------------------------------------------------------------
// Connecting

/** An error occurred while connecting (`twisted.internet.error.ConnectError`). */
export class ConnectError extends InternetError {
  override readonly code: string = "ERR_CONNECT";
  /** The OS error text or errno name, when there was one. */
  readonly osError: string | undefined;
  constructor(osError?: string, message = "") {
    const base = "An error occurred while connecting";
    const parts = [base, osError, message].filter((s): s is string => s !== undefined && s !== "");
    super(parts.length > 1 ? `${parts.join(": ")}.` : `${base}.`);
    this.osError = osError;
  }
}

export class ConnectBindError extends ConnectError {
  override readonly code: string = "ERR_CONNECT_BIND";
}
export class UnknownHostError extends ConnectError {
  override readonly code: string = "ERR_UNKNOWN_HOST";
}
export class NoRouteError extends ConnectError {
  override readonly code: string = "ERR_NO_ROUTE";
}
/** The peer refused the connection (ECONNREFUSED). */
export class ConnectionRefusedError extends ConnectError {
  override readonly code: string = "ERR_CONNECTION_REFUSED";
}
/** The OS gave up connecting (ETIMEDOUT). */
export class TCPTimedOutError extends ConnectError {
  override readonly code: string = "ERR_TCP_TIMED_OUT";
}
export class BadFileError extends ConnectError {
  override readonly code: string = "ERR_BAD_FILE";
}
export class ServiceNameUnknownError extends ConnectError {
  override readonly code: string = "ERR_SERVICE_NAME_UNKNOWN";
}
/** The connection was cancelled by the user (`connector.stopConnecting()`). */
export class UserError extends ConnectError {
  override readonly code: string = "ERR_USER";
}
/** The user-given connect timeout expired. */
export class TimeoutError extends UserError {
  override readonly code: string = "ERR_CONNECT_TIMEOUT";
}
export class SSLError extends ConnectError {
  override readonly code: string = "ERR_SSL";
}
/** A hostname did not resolve. */
export class DNSLookupError extends ConnectError {
  override readonly code: string = "ERR_DNS_LOOKUP";
}
/** An endpoint's connection attempt was cancelled; `address` is what it was connecting to. */
export class ConnectingCancelledError extends InternetError {
  override readonly code: string = "ERR_CONNECTING_CANCELLED";
  readonly address: unknown;
  constructor(address: unknown) {
    super("Connecting was cancelled");
    this.address = address;
  }
}
/** An endpoint's factory returned no protocol from `buildProtocol`. */
export class NoProtocol extends InternetError {
  override readonly code: string = "ERR_NO_PROTOCOL";
}
export class NotConnectingError extends InternetError {
  override readonly code: string = "ERR_NOT_CONNECTING";
  constructor(message = "The Connector was not connecting when it was asked to stop connecting") {
    super(message);
  }
}
export class NotListeningError extends InternetError {
  override readonly code: string = "ERR_NOT_LISTENING";
  constructor(message = "The Port was not listening when it was asked to stop listening") {
    super(message);
  }
}
export class InvalidAddressError extends InternetError {
  override readonly code: string = "ERR_INVALID_ADDRESS";
  readonly address: unknown;
  constructor(address: unknown, message: string) {
    super(`Invalid address ${String(address)}: ${message}`);
    this.address = address;
  }
}

/** Maps a Node socket error (its `code`) to the Twisted connect error class. */
export function connectErrorFromNode(err: unknown): ConnectError {
  const e = err as NodeJS.ErrnoException;
  const code = typeof e?.code === "string" ? e.code : undefined;
  const msg = e instanceof Error ? e.message : String(err);
  switch (code) {
    case "ECONNREFUSED":
      return new ConnectionRefusedError(code, msg);
    case "ETIMEDOUT":
      return new TCPTimedOutError(code, msg);
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_FAIL":
      return new DNSLookupError(code, msg);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return new NoRouteError(code, msg);
    case "EADDRINUSE":
    case "EADDRNOTAVAIL":
      return new ConnectBindError(code, msg);
    case "ENOENT":
    case "EBADF":
      return new BadFileError(code, msg);
    default:
      return new ConnectError(code, msg);
  }
}

// ---------------------------------------------------------------------------------------------
// Established connections

/** Base of the reasons a connection ends. */
export class ConnectionClosed extends InternetError {
  override readonly code: string = "ERR_CONNECTION_CLOSED";
}
/** The connection ended uncleanly (reset, I/O error, or the protocol raised). */
export class ConnectionLost extends ConnectionClosed {
  override readonly code: string = "ERR_CONNECTION_LOST";
  constructor(message = "Connection to the other side was lost in a non-clean fashion") {
    super(message);
  }
}
/** `abortConnection()` ended the connection. */
export class ConnectionAborted extends ConnectionLost {
  override readonly code: string = "ERR_CONNECTION_ABORTED";
  constructor(message = "Connection was aborted locally using ITCPTransport.abortConnection") {
    super(message);
  }
}
/** The connection was closed cleanly. */
export class ConnectionDone extends ConnectionClosed {
  override readonly code: string = "ERR_CONNECTION_DONE";
  constructor(message = "Connection was closed cleanly") {
    super(message);
  }
}
export class ConnectionFdescWentAway extends ConnectionLost {
  override readonly code: string = "ERR_CONNECTION_FDESC_WENT_AWAY";
}

/** A listening port could not be bound. */
export class CannotListenError extends InternetError {
  override readonly code: string = "ERR_CANNOT_LISTEN";
  readonly interface: string;
  readonly port: number | string;
  readonly socketError: unknown;
  constructor(iface: string, port: number | string, socketError: unknown) {
    const why = socketError instanceof Error ? socketError.message : String(socketError);
    super(`Couldn't listen on ${iface || "any"}:${String(port)}: ${why}.`);
    this.interface = iface;
    this.port = port;
    this.socketError = socketError;
  }
}

/** A datagram was too long for the transport. */
export class MessageLengthError extends InternetError {
  override readonly code: string = "ERR_MESSAGE_LENGTH";
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A process ended; `exitCode` / `signal` say how (`status` is Node's raw view of the same). */
export class ProcessTerminated extends ConnectionLost {
  override readonly code: string = "ERR_PROCESS_TERMINATED";
  readonly exitCode: number | null;
  readonly signal: string | null;
  readonly status: number | null;
  constructor(exitCode: number | null = null, signal: string | null = null, status: number | null = null) {
    const parts: string[] = ["A process has ended with a probable error condition"];
    if (signal !== null) parts.push(`process ended by signal ${signal}`);
    else if (exitCode !== null) parts.push(`process ended with exit code ${exitCode}`);
    super(`${parts.join(": ")}.`);
    this.exitCode = exitCode;
    this.signal = signal;
    this.status = status;
  }
}
/** A process ended with exit code 0. */
export class ProcessDone extends ConnectionDone {
  override readonly code: string = "ERR_PROCESS_DONE";
  readonly exitCode = 0;
  readonly signal: string | null = null;
  readonly status: number;
  constructor(status = 0) {
    super("A process has ended without apparent errors: process finished with exit code 0.");
    this.status = status;
  }
}
export class ProcessExitedAlready extends InternetError {
  override readonly code: string = "ERR_PROCESS_EXITED_ALREADY";
  constructor(message = "The process has already exited") {
    super(message);
  }
}

// ---------------------------------------------------------------------------------------------
// The reactor

export class ReactorNotRunning extends InternetError {
  override readonly code: string = "ERR_REACTOR_NOT_RUNNING";
  constructor(message = "Can't stop reactor that isn't running.") {
    super(message);
  }
}
export class ReactorNotRestartable extends InternetError {
  override readonly code: string = "ERR_REACTOR_NOT_RESTARTABLE";
  constructor(message = "The reactor cannot be restarted.") {
    super(message);
  }
}
export class ReactorAlreadyRunning extends InternetError {
  override readonly code: string = "ERR_REACTOR_ALREADY_RUNNING";
  constructor(message = "The reactor is already running.") {
    super(message);
  }
}
export { AlreadyCalled, AlreadyCancelled } from "./_internal/task_errors.js";

// ---------------------------------------------------------------------------------------------
// HAProxy PROXY protocol (`twisted.protocols.haproxy`)

/** The PROXY header is malformed. */
export class InvalidProxyHeader extends InternetError {
  override readonly code: string = "ERR_INVALID_PROXY_HEADER";
}
/** The PROXY header names a network protocol we do not handle. */
export class InvalidNetworkProtocol extends InvalidProxyHeader {
  override readonly code: string = "ERR_INVALID_NETWORK_PROTOCOL";
}
/** The PROXY header lacks an address or port. */
export class MissingAddressData extends InvalidProxyHeader {
  override readonly code: string = "ERR_MISSING_ADDRESS_DATA";
}
