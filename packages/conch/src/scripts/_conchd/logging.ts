/**
 * conchd's log: one line per event on standard output, as text or JSON, each line about a
 * connection carrying its id, the peer's `ip:port` and, once known, the user.
 */
import { addObserver, formatEvent, failureText, levelAtLeast, removeObserver, type LogEvent, type LogLevel, type LogObserver, type TextSink } from "@twisted-ts/internet/log";
import type { ConchdLogLevel } from "./config.js";

/** What a connection tells the log about itself (the server transport conchd builds implements it). */
export interface LoggedConnection {
  /** A short id unique in this process (with the worker number when there are workers). */
  readonly connectionId: string;
  /** The peer as `ip:port` (the PROXY header's source behind `haproxy:`). */
  peerLabel(): string;
  /** The user once one is named (being authenticated, then logged in). */
  userLabel(): string | undefined;
}

function isLoggedConnection(x: unknown): x is LoggedConnection {
  return typeof x === "object" && x !== null && typeof (x as { connectionId?: unknown }).connectionId === "string";
}

/**
 * The connection an event's source belongs to: the transport itself, or a service, channel or
 * session reached from it through `transport`, `conn` and `channel` links.
 */
export function connectionOf(source: unknown): LoggedConnection | undefined {
  let s: unknown = source;
  for (let i = 0; i < 5 && typeof s === "object" && s !== null; i++) {
    if (isLoggedConnection(s)) return s;
    const o = s as { transport?: unknown; conn?: unknown; channel?: unknown; session?: unknown };
    s = isLoggedConnection(o.transport) ? o.transport : (o.conn ?? o.transport ?? o.channel ?? o.session);
  }
  return undefined;
}

/** The lowest event level written for each LogLevel; undefined writes nothing (QUIET). */
export function minimumLevel(level: ConchdLogLevel): LogLevel | undefined {
  switch (level) {
    case "QUIET":
      return undefined;
    case "FATAL":
      return "critical";
    case "ERROR":
      return "error";
    case "INFO":
    case "VERBOSE":
      return "info";
    case "DEBUG":
      return "debug";
  }
}

const RESERVED: ReadonlySet<string> = new Set(["time", "level", "namespace", "worker", "conn", "peer", "user", "msg", "failure"]);

/** Extra fields on every line (the worker number in a cluster). */
export type LogContext = Readonly<Record<string, string | number>>;

/** The fields of one line: time, level, namespace, message, connection, then the event's own strings and numbers. */
export function lineFields(event: LogEvent, context: LogContext = {}): Record<string, unknown> {
  const conn = connectionOf(event.log_source);
  const out: Record<string, unknown> = {
    time: new Date(event.log_time * 1000).toISOString(),
    level: event.log_level,
    namespace: event.log_namespace,
    ...context,
  };
  if (conn !== undefined) {
    out["conn"] = conn.connectionId;
    out["peer"] = conn.peerLabel();
    const user = conn.userLabel();
    if (user !== undefined) out["user"] = user;
  }
  out["msg"] = formatEvent(event);
  if (event.log_failure !== undefined) out["failure"] = failureText(event);
  for (const [k, v] of Object.entries(event)) {
    // The connection's own fields are only ever the connection's: an event's `user` (quoted by
    // userauth, or the name a checker was asked about) stays in its message.
    if (k.startsWith("log_") || k in out || RESERVED.has(k)) continue;
    if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") out[k] = v;
  }
  return out;
}

/** A JSON-lines observer. */
export function jsonLogObserver(sink: TextSink, context: LogContext = {}): LogObserver {
  return (event) => sink.write(`${JSON.stringify(lineFields(event, context))}\n`);
}

/** A text observer: `time [namespace#level] conn peer user: message`. */
export function textLogObserver(sink: TextSink, context: LogContext = {}): LogObserver {
  return (event) => {
    const f = lineFields(event, context);
    const who = [f["worker"] !== undefined ? `worker ${String(f["worker"])}` : undefined, f["conn"], f["peer"], f["user"]].filter((x) => x !== undefined).join(" ");
    const failure = f["failure"] !== undefined ? `\n${String(f["failure"])}` : "";
    sink.write(`${String(f["time"])} [${event.log_namespace}#${event.log_level}] ${who !== "" ? `${who}: ` : ""}${String(f["msg"])}${failure}\n`);
  };
}

/**
 * Starts conchd's log on `sink` at `level` in `format`; returns a function that stops it (for
 * reloading with other settings).
 */
export function startConchdLogging(sink: TextSink, level: ConchdLogLevel, format: "text" | "json", context: LogContext = {}): () => void {
  const min = minimumLevel(level);
  const write = format === "json" ? jsonLogObserver(sink, context) : textLogObserver(sink, context);
  const observer: LogObserver = (event) => {
    if (min !== undefined && levelAtLeast(event.log_level, min)) write(event);
  };
  addObserver(observer);
  return () => removeObserver(observer);
}
