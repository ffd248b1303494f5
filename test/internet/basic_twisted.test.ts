/**
 * LineReceiver behaviours taken from Twisted's own tests (twisted/protocols/test/test_basic.py),
 * rewritten here: mode switching under every packet size, pausing, stopProducing, clearing the
 * buffer from inside a callback, deep mode flipping, and the MAX_LENGTH edge cases.
 */
import { test } from "node:test";
import assert from "node:assert/strict";

import { LineReceiver } from "@twisted-ts/internet/basic";
import { Clock } from "@twisted-ts/internet/task";
import { StringTransport } from "@twisted-ts/internet/testing";

const b = (s: string): Buffer => Buffer.from(s, "latin1");
const s = (u: Uint8Array): string => Buffer.from(u).toString("latin1");

/** Twisted's LineTester: acts on tokens (len N → raw mode for N bytes, pause, rawpause, stop, produce). */
class LineTester extends LineReceiver {
  override delimiter = b("\n");
  override MAX_LENGTH = 64;
  received: string[] = [];
  length = 0;
  constructor(readonly clock: Clock | null = null) {
    super();
  }
  override lineReceived(line: Uint8Array): unknown {
    const text = s(line);
    this.received.push(text);
    if (text === "") this.setRawMode();
    else if (text === "pause") {
      this.pauseProducing();
      this.clock!.callLater(0, () => this.resumeProducing());
    } else if (text === "rawpause") {
      this.pauseProducing();
      this.setRawMode();
      this.received.push("");
      this.clock!.callLater(0, () => this.resumeProducing());
    } else if (text === "stop") this.stopProducing();
    else if (text.startsWith("len ")) this.length = Number(text.slice(4));
    else if (text.startsWith("produce")) this.transport.registerProducer(this, false);
    else if (text.startsWith("unproduce")) this.transport.unregisterProducer();
    return undefined;
  }
  override rawDataReceived(data: Uint8Array): unknown {
    const d = Buffer.from(data);
    const take = d.subarray(0, this.length);
    const rest = d.subarray(this.length);
    this.length -= take.length;
    this.received[this.received.length - 1] += s(take);
    if (this.length === 0) this.setLineMode(rest);
    return undefined;
  }
  override lineLengthExceeded(line: Uint8Array): unknown {
    if (line.length > this.MAX_LENGTH + 1) this.setLineMode(Buffer.from(line).subarray(this.MAX_LENGTH + 1));
    return undefined;
  }
}

function feedInPackets(p: LineReceiver, data: Buffer, size: number): void {
  for (let i = 0; i < Math.floor(data.length / size) + 1; i++) p.dataReceived(data.subarray(i * size, (i + 1) * size));
}

const BUFFER = b(`len 10

0123456789len 5

1234
len 20
foo 123

0123456789
012345678len 0
foo 5

1234567890123456789012345678901234567890123456789012345678901234567890
len 1

a`);

const OUTPUT = ["len 10", "0123456789", "len 5", "1234\n", "len 20", "foo 123", "0123456789\n012345678", "len 0", "foo 5", "", "67890", "len 1", "a"];

test("LineReceiver: switching between line and raw mode gives the same result for every packet size", () => {
  for (let size = 1; size < 10; size++) {
    const a = new LineTester();
    a.makeConnection(new StringTransport());
    feedInPackets(a, BUFFER, size);
    assert.deepEqual(a.received, OUTPUT, `packet size ${size}`);
  }
});

test("LineReceiver: pauseProducing inside lineReceived holds the rest until resumeProducing", () => {
  const buf = b("twiddle1\ntwiddle2\npause\ntwiddle3\n");
  for (let size = 1; size < 10; size++) {
    const clock = new Clock();
    const a = new LineTester(clock);
    a.makeConnection(new StringTransport());
    feedInPackets(a, buf, size);
    assert.deepEqual(a.received, ["twiddle1", "twiddle2", "pause"]);
    clock.advance(0);
    assert.deepEqual(a.received, ["twiddle1", "twiddle2", "pause", "twiddle3"]);
  }
});

test("LineReceiver: pausing while switching to raw mode delivers the raw bytes after resuming", () => {
  const buf = b("twiddle1\ntwiddle2\nlen 5\nrawpause\n12345twiddle3\n");
  for (let size = 1; size < 10; size++) {
    const clock = new Clock();
    const a = new LineTester(clock);
    a.makeConnection(new StringTransport());
    feedInPackets(a, buf, size);
    assert.deepEqual(a.received, ["twiddle1", "twiddle2", "len 5", "rawpause", ""]);
    clock.advance(0);
    assert.deepEqual(a.received, ["twiddle1", "twiddle2", "len 5", "rawpause", "12345", "twiddle3"]);
  }
});

test("LineReceiver: stopProducing inside lineReceived stops all further delivery", () => {
  const buf = b("twiddle1\ntwiddle2\nstop\nmore\nstuff\n");
  for (let size = 1; size < 10; size++) {
    const a = new LineTester();
    const t = new StringTransport();
    a.makeConnection(t);
    feedInPackets(a, buf, size);
    assert.deepEqual(a.received, ["twiddle1", "twiddle2", "stop"]);
    assert.equal(t.producerState, "stopped");
  }
});

test("LineReceiver: a line receiver can register itself as the transport's producer", () => {
  const a = new LineTester();
  const t = new StringTransport();
  a.makeConnection(t);
  a.dataReceived(b("produce\nhello world\nunproduce\ngoodbye\n"));
  assert.deepEqual(a.received, ["produce", "hello world", "unproduce", "goodbye"]);
  assert.equal(t.producer, null);
});

test("LineReceiver: clearLineBuffer from inside lineReceived returns and drops the rest (no transport needed)", () => {
  class Clearing extends LineReceiver {
    line = "";
    rest = "";
    override lineReceived(line: Uint8Array): unknown {
      this.line = s(line);
      this.rest = s(this.clearLineBuffer());
      return undefined;
    }
  }
  const p = new Clearing();
  p.dataReceived(b("foo\r\nbar\r\nbaz"));
  assert.equal(p.line, "foo");
  assert.equal(p.rest, "bar\r\nbaz");
  p.dataReceived(b("quux\r\n"));
  assert.equal(p.line, "quux");
  assert.equal(p.rest, "");
});

test("LineReceiver: flipping modes on every line of a long input does not recurse", () => {
  class Flipping extends LineReceiver {
    override delimiter = b("\n");
    lines: string[] = [];
    override lineReceived(line: Uint8Array): unknown {
      this.lines.push(s(line));
      this.setRawMode();
      return undefined;
    }
    override rawDataReceived(data: Uint8Array): unknown {
      return this.setLineMode(Buffer.from(data).subarray(1));
    }
  }
  const p = new Flipping();
  p.makeConnection(new StringTransport());
  const n = 20000;
  p.dataReceived(b("x\nx".repeat(n)));
  assert.equal(p.lines.join(""), "x".repeat(n));
});

test("LineReceiver: a line exactly MAX_LENGTH long whose delimiter arrives split is accepted", () => {
  const p = new LineTester();
  p.MAX_LENGTH = 4;
  const t = new StringTransport();
  p.makeConnection(t);
  const line = "xxx";
  p.dataReceived(b(line));
  p.dataReceived(p.delimiter.subarray(0, -1));
  p.dataReceived(Buffer.concat([p.delimiter.subarray(-1), b(line)]));
  assert.equal(t.disconnecting, false);
  assert.deepEqual(p.received, [line]);
});

test("LineReceiver: MAX_LENGTH bytes plus part of the delimiter do not disconnect; one more line byte does", () => {
  const p = new LineReceiver();
  const t = new StringTransport();
  p.makeConnection(t);
  p.dataReceived(Buffer.concat([Buffer.alloc(p.MAX_LENGTH, 0x78), b("\r")]));
  assert.equal(t.disconnecting, false);
  const q = new LineReceiver();
  const tq = new StringTransport();
  q.makeConnection(tq);
  q.dataReceived(Buffer.concat([Buffer.alloc(q.MAX_LENGTH + 1, 0x78), b("\r\nr")]));
  assert.equal(tq.disconnecting, true);
});

class Catcher extends LineReceiver {
  override MAX_LENGTH = 6;
  longLines: string[] = [];
  override lineReceived(): unknown {
    return undefined;
  }
  override lineLengthExceeded(line: Uint8Array): unknown {
    this.longLines.push(s(line));
    return undefined;
  }
}

test("LineReceiver: lineLengthExceeded gets all the bytes of an over-long input, with or without delimiters", () => {
  const excessive = "x".repeat(6 * 2 + 2);
  const cases: Array<[string, string]> = [
    [excessive, excessive],
    [`x\r\n${excessive}`, excessive],
    [[excessive, excessive].join("\r\n"), [excessive, excessive].join("\r\n")],
    [`${excessive}\r\n${excessive}\r\n`, `${excessive}\r\n${excessive}\r\n`],
  ];
  for (const [input, expected] of cases) {
    const p = new Catcher();
    p.makeConnection(new StringTransport());
    p.dataReceived(b(input));
    assert.deepEqual(p.longLines, [expected], JSON.stringify(input));
  }
});
