/**
 * Logging, as `twisted.logger` (a namespaced `Logger` with levels and `{field}` format strings,
 * observers) plus the legacy `twisted.python.log` helpers `startLogging`, `msg` and `err`.
 */

import { Failure } from "./failure.js";

export type LogLevel = "debug" | "info" | "warn" | "error" | "critical";

const LEVEL_ORDER: Readonly<Record<LogLevel, number>> = { debug: 0, info: 1, warn: 2, error: 3, critical: 4 };

/** One log event: Twisted's event dictionary. */
export interface LogEvent {
  log_format: string;
  log_level: LogLevel;
  log_namespace: string;
  log_time: number;
  log_source?: unknown;
  /** A Failure (or Error) attached by `Logger.failure` / `log.err`. */
  log_failure?: unknown;
  [field: string]: unknown;
}

export type LogObserver = (event: LogEvent) => void;

/** Renders `{field}` placeholders from the event (`{{` and `}}` are literal braces). */
export function formatEvent(event: LogEvent): string {
  return event.log_format.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (m: string, key: string | undefined) => {
    if (m === "{{") return "{";
    if (m === "}}") return "}";
    const v = event[key ?? ""];
    if (v instanceof Uint8Array) return Buffer.from(v).toString("hex");
    return typeof v === "string" ? v : v === undefined ? `{${key}}` : String(v);
  });
}

/**
 * Fans events out to observers; an observer that throws is removed from this event only. While it
 * has no observers, events go to `lastResort` if one was given.
 */
export class LogPublisher {
  private observers: LogObserver[] = [];
  private readonly lastResort: LogObserver | null;

  constructor(lastResort: LogObserver | null = null) {
    this.lastResort = lastResort;
  }

  addObserver(observer: LogObserver): void {
    if (!this.observers.includes(observer)) this.observers.push(observer);
  }

  removeObserver(observer: LogObserver): void {
    this.observers = this.observers.filter((o) => o !== observer);
  }

  get observerCount(): number {
    return this.observers.length;
  }

  publish(event: LogEvent): void {
    if (this.observers.length === 0) {
      this.lastResort?.(event);
      return;
    }
    for (const o of [...this.observers]) {
      try {
        o(event);
      } catch (e) {
        process.stderr.write(`log observer failed: ${String(e)}\n`);
      }
    }
  }
}

/**
 * Writes `critical` events to standard error: the global publisher's fallback while nobody observes
 * it, so that an unhandled error in a Deferred is not lost silently (Python's logging has the same
 * "last resort"). Adding any observer (e.g. `startLogging`) turns it off.
 */
export function lastResortObserver(event: LogEvent): void {
  if (event.log_level !== "critical") return;
  process.stderr.write(`[${event.log_namespace}#critical] ${eventAsText(event)}\n`);
}

/** The process-wide publisher every Logger emits to by default. */
export const globalLogPublisher = new LogPublisher(lastResortObserver);

/** A namespaced logger: `new Logger("twisted-ts.conch.transport")`. */
export class Logger {
  readonly namespace: string;
  readonly source: unknown;
  private readonly observer: LogObserver;

  constructor(namespace = "twisted-ts", source?: unknown, observer?: LogObserver) {
    this.namespace = namespace;
    this.source = source;
    this.observer = observer ?? ((e) => globalLogPublisher.publish(e));
  }

  /** Emits an event at `level` with `format` and the given fields. */
  emit(level: LogLevel, format: string, fields: Record<string, unknown> = {}): void {
    const event: LogEvent = {
      ...fields,
      log_format: format,
      log_level: level,
      log_namespace: this.namespace,
      log_time: Date.now() / 1000,
    };
    if (this.source !== undefined) event.log_source = this.source;
    this.observer(event);
  }

  debug(format: string, fields?: Record<string, unknown>): void {
    this.emit("debug", format, fields);
  }
  info(format: string, fields?: Record<string, unknown>): void {
    this.emit("info", format, fields);
  }
  warn(format: string, fields?: Record<string, unknown>): void {
    this.emit("warn", format, fields);
  }
  error(format: string, fields?: Record<string, unknown>): void {
    this.emit("error", format, fields);
  }
  critical(format: string, fields?: Record<string, unknown>): void {
    this.emit("critical", format, fields);
  }
  /** Logs an error or Failure at `level` (default critical), as Twisted's `Logger.failure`. */
  failure(format: string, failure: unknown, level: LogLevel = "critical", fields: Record<string, unknown> = {}): void {
    this.emit(level, format, { ...fields, log_failure: failure });
  }
}

/** True when `level` is at or above `min`. */
export function levelAtLeast(level: LogLevel, min: LogLevel): boolean {
  return LEVEL_ORDER[level] >= LEVEL_ORDER[min];
}

/** Adds an observer to the global publisher (Twisted's `globalLogPublisher.addObserver`). */
export function addObserver(observer: LogObserver): void {
  globalLogPublisher.addObserver(observer);
}

/** Removes an observer from the global publisher. */
export function removeObserver(observer: LogObserver): void {
  globalLogPublisher.removeObserver(observer);
}

/** The traceback text of an event's `log_failure` (a Failure, an Error or any thrown value), or "". */
export function failureText(event: LogEvent): string {
  const f = event.log_failure;
  if (f === undefined || f === null) return "";
  return (f instanceof Failure ? f : new Failure(f)).getTraceback();
}

/**
 * An event as text: the formatted message, followed by the traceback of its `log_failure` when it
 * has one (Twisted's `eventAsText` without the time stamp).
 */
export function eventAsText(event: LogEvent): string {
  const text = formatEvent(event);
  const tb = failureText(event);
  if (!tb) return text;
  return text ? `${text}\n${tb.replace(/\n$/, "")}` : tb.replace(/\n$/, "");
}

/** Where a text observer writes: a Node stream, or anything with a `write(string)` method. */
export interface TextSink {
  write(text: string): unknown;
}

function timeStamp(t: number): string {
  return new Date(t * 1000).toISOString().replace(/\.\d{3}Z$/, "+0000");
}

/**
 * An observer writing one line per event to `stream`:
 * `2026-01-01T10:00:00+0000 [namespace#level] message` (a traceback follows on the next lines).
 * Events below `minLevel` are dropped.
 */
export function textFileLogObserver(stream: TextSink, minLevel: LogLevel = "debug"): LogObserver {
  return (event: LogEvent) => {
    if (!levelAtLeast(event.log_level, minLevel)) return;
    const text = eventAsText(event).replace(/\n/g, "\n\t");
    stream.write(`${timeStamp(event.log_time)} [${event.log_namespace}#${event.log_level}] ${text}\n`);
  };
}

/** An observer that passes on to `observer` only the events at or above `minLevel`. */
export function filteringObserver(observer: LogObserver, minLevel: LogLevel): LogObserver {
  return (event) => {
    if (levelAtLeast(event.log_level, minLevel)) observer(event);
  };
}

const legacyLog = new Logger("log_legacy");
let stdoutRedirect: { restore: () => void } | null = null;

/**
 * Starts writing every log event to `stream` (Twisted's `log.startLogging`), and returns the
 * observer so it can be removed with `removeObserver`. With `setStdout`, `console.log` and
 * `console.info` go to the log (at info level) instead of standard output; unlike Twisted this is
 * off by default, because redirecting Node's console is rarely what a library user wants.
 */
export function startLogging(stream: TextSink, setStdout = false): LogObserver {
  const observer = textFileLogObserver(stream);
  globalLogPublisher.addObserver(observer);
  if (setStdout && stdoutRedirect === null) {
    const { log: origLog, info: origInfo } = console;
    const toLog = (...parts: unknown[]): void => msg(...parts);
    console.log = toLog;
    console.info = toLog;
    stdoutRedirect = {
      restore: () => {
        console.log = origLog;
        console.info = origInfo;
      },
    };
  }
  msg("Log opened.");
  return observer;
}

/** Undoes `startLogging`'s console redirection (the observer stays; remove it with `removeObserver`). */
export function stopStdoutRedirect(): void {
  stdoutRedirect?.restore();
  stdoutRedirect = null;
}

function escapeBraces(s: string): string {
  return s.replace(/[{}]/g, (c) => c + c);
}

/** Logs the message parts, joined by spaces, at info level (Twisted's `log.msg`). */
export function msg(...message: unknown[]): void {
  const text = message.map((m) => (typeof m === "string" ? m : String(m))).join(" ");
  legacyLog.emit("info", escapeBraces(text), { message: text, isError: false });
}

/**
 * Logs a Failure (or an error, wrapped in one) at critical level with `why` as the message
 * (Twisted's `log.err`; the text reads `why` then the traceback, or "Unhandled Error").
 */
export function err(failure: unknown, why?: string): void {
  const f = failure instanceof Failure ? failure : new Failure(failure);
  legacyLog.failure(escapeBraces(why ?? "Unhandled Error"), f, "critical", { why: why ?? null, isError: true });
}
