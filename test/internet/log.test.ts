import { test } from "node:test";
import assert from "node:assert/strict";
import {
  Logger,
  LogPublisher,
  err,
  eventAsText,
  filteringObserver,
  formatEvent,
  globalLogPublisher,
  lastResortObserver,
  levelAtLeast,
  msg,
  removeObserver,
  startLogging,
  stopStdoutRedirect,
  textFileLogObserver,
} from "@twisted-ts/internet/log";
import type { LogEvent } from "@twisted-ts/internet/log";
import { Failure } from "@twisted-ts/internet/failure";

class LoggedError extends Error {}

function collector(): { events: LogEvent[]; observer: (e: LogEvent) => void } {
  const events: LogEvent[] = [];
  return { events, observer: (e) => void events.push(e) };
}

test("Logger emits events with namespace, level, format and fields", () => {
  const { events, observer } = collector();
  const log = new Logger("twisted-ts.test", "src", observer);
  log.info("hello {who}", { who: "world" });
  const e = events[0]!;
  assert.equal(e.log_namespace, "twisted-ts.test");
  assert.equal(e.log_level, "info");
  assert.equal(e.log_source, "src");
  assert.equal(formatEvent(e), "hello world");
  assert.equal(typeof e.log_time, "number");
});

test("formatEvent renders fields, bytes as hex, {{ }} as braces and unknown fields as is", () => {
  const e: LogEvent = { log_format: "{a} {b} {{x}} {missing}", log_level: "info", log_namespace: "n", log_time: 0, a: 1, b: new Uint8Array([0xab]) };
  assert.equal(formatEvent(e), "1 ab {x} {missing}");
});

test("levels are ordered debug < info < warn < error < critical", () => {
  assert.ok(levelAtLeast("critical", "error"));
  assert.ok(levelAtLeast("warn", "warn"));
  assert.ok(!levelAtLeast("debug", "info"));
});

test("Logger.failure attaches the failure, at critical level by default", () => {
  const { events, observer } = collector();
  const log = new Logger("t", undefined, observer);
  const f = new Failure(new LoggedError("bad"));
  log.failure("it failed", f);
  log.failure("warned", new LoggedError("w"), "warn");
  assert.equal(events[0]?.log_level, "critical");
  assert.equal(events[0]?.log_failure, f);
  assert.match(eventAsText(events[0]!), /^it failed\nLoggedError: bad\n\s+at /);
  assert.equal(events[1]?.log_level, "warn");
  assert.match(eventAsText(events[1]!), /LoggedError: w/);
});

test("a LogPublisher fans out and survives an observer that throws", () => {
  const pub = new LogPublisher();
  const { events, observer } = collector();
  const saved = process.stderr.write.bind(process.stderr);
  let stderr = "";
  process.stderr.write = ((s: string) => {
    stderr += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    pub.addObserver(() => {
      throw new Error("observer broke");
    });
    pub.addObserver(observer);
    pub.addObserver(observer);
    assert.equal(pub.observerCount, 2);
    new Logger("t", undefined, (e) => pub.publish(e)).info("x");
  } finally {
    process.stderr.write = saved;
  }
  assert.equal(events.length, 1);
  assert.match(stderr, /observer broke/);
});

test("textFileLogObserver writes a time stamp, namespace#level and the text, indenting tracebacks", () => {
  let out = "";
  const obs = textFileLogObserver({ write: (s: string) => (out += s) });
  const log = new Logger("twisted-ts.conch", undefined, obs);
  log.warn("careful {n}", { n: 1 });
  log.failure("oops", new LoggedError("tb"));
  const lines = out.split("\n");
  assert.match(lines[0]!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000 \[twisted-ts\.conch#warn\] careful 1$/);
  assert.match(lines[1]!, /\[twisted-ts\.conch#critical\] oops$/);
  assert.equal(lines[2], "\tLoggedError: tb");
  assert.match(lines[3]!, /^\t\s+at /);
});

test("textFileLogObserver and filteringObserver drop events below the minimum level", () => {
  let out = "";
  const obs = textFileLogObserver({ write: (s: string) => (out += s) }, "warn");
  new Logger("t", undefined, obs).info("quiet");
  assert.equal(out, "");
  const { events, observer } = collector();
  const log = new Logger("t", undefined, filteringObserver(observer, "error"));
  log.warn("no");
  log.error("yes");
  assert.deepEqual(
    events.map((e) => e.log_format),
    ["yes"],
  );
});

test("startLogging writes every event to the stream; msg joins its parts; err logs the traceback", () => {
  let out = "";
  const obs = startLogging({ write: (s: string) => (out += s) });
  try {
    msg("hello", 42, "{not a field}");
    err(new Failure(new LoggedError("legacy")), "while testing");
    err(new LoggedError("no why"));
  } finally {
    removeObserver(obs);
  }
  assert.match(out, /\[log_legacy#info\] Log opened\.\n/);
  assert.match(out, /\[log_legacy#info\] hello 42 \{not a field\}\n/);
  assert.match(out, /\[log_legacy#critical\] while testing\n\tLoggedError: legacy\n/);
  assert.match(out, /\[log_legacy#critical\] Unhandled Error\n\tLoggedError: no why\n/);
});

test("startLogging with setStdout sends console.log to the log until undone", () => {
  let out = "";
  const obs = startLogging({ write: (s: string) => (out += s) }, true);
  try {
    console.log("via console", 1);
  } finally {
    stopStdoutRedirect();
    removeObserver(obs);
  }
  assert.match(out, /\[log_legacy#info\] via console 1\n/);
});

test("the global publisher receives events from Loggers without an observer", () => {
  const { events, observer } = collector();
  globalLogPublisher.addObserver(observer);
  try {
    new Logger("twisted-ts.global").debug("to the world");
  } finally {
    globalLogPublisher.removeObserver(observer);
  }
  assert.equal(events.length, 1);
});

test("a publisher without observers sends events to its last resort; the default one prints critical events", () => {
  const { events, observer } = collector();
  const pub = new LogPublisher(observer);
  const log = new Logger("t", undefined, (e) => pub.publish(e));
  log.info("to the last resort");
  assert.equal(events.length, 1);
  const other = collector();
  pub.addObserver(other.observer);
  log.info("to the observer");
  assert.equal(events.length, 1);
  assert.equal(other.events.length, 1);

  const saved = process.stderr.write.bind(process.stderr);
  let stderr = "";
  process.stderr.write = ((s: string) => {
    stderr += s;
    return true;
  }) as typeof process.stderr.write;
  try {
    const quiet = new Logger("twisted-ts.quiet", undefined, lastResortObserver);
    quiet.error("not printed");
    quiet.failure("printed", new LoggedError("last resort"));
  } finally {
    process.stderr.write = saved;
  }
  assert.doesNotMatch(stderr, /not printed/);
  assert.match(stderr, /^\[twisted-ts\.quiet#critical\] printed\nLoggedError: last resort\n/);
});
