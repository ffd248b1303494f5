/**
 * Logging, as `twisted.logger` (a namespaced `Logger` with levels and `{field}` format strings,
 * observers) plus the legacy `twisted.python.log` helpers `startLogging`, `msg` and `err`.
 */

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

/** Fans events out to observers; an observer that throws is removed from this event only. */
export class LogPublisher {
  private observers: LogObserver[] = [];

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
    for (const o of [...this.observers]) {
      try {
        o(event);
      } catch (e) {
        process.stderr.write(`log observer failed: ${String(e)}\n`);
      }
    }
  }
}

/** The process-wide publisher every Logger emits to by default. */
export const globalLogPublisher = new LogPublisher();

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
