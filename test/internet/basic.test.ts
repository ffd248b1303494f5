import { test } from "node:test";
import assert from "node:assert/strict";

import {
  Int16StringReceiver,
  Int32StringReceiver,
  Int8StringReceiver,
  LineOnlyReceiver,
  LineReceiver,
  NetstringReceiver,
  StringTooLongError,
} from "@twisted-ts/internet/basic";
import { StringTransport } from "@twisted-ts/internet/testing";

const b = (s: string): Buffer => Buffer.from(s, "latin1");
const s = (u: Uint8Array): string => Buffer.from(u).toString("latin1");

/** The ways a byte string is fed: whole, in two at every split point, and one byte at a time. */
function splits(data: Buffer): Buffer[][] {
  const out: Buffer[][] = [[data]];
  for (let i = 1; i < data.length; i++) out.push([data.subarray(0, i), data.subarray(i)]);
  out.push([...data].map((x) => Buffer.from([x])));
  return out;
}

class Lines extends LineReceiver {
  lines: string[] = [];
  raw: string[] = [];
  exceeded: string[] = [];
  override lineReceived(line: Uint8Array): unknown {
    this.lines.push(s(line));
    return undefined;
  }
  override rawDataReceived(data: Uint8Array): unknown {
    this.raw.push(s(data));
    return undefined;
  }
  override lineLengthExceeded(line: Uint8Array): unknown {
    this.exceeded.push(s(line));
    return super.lineLengthExceeded(line);
  }
}

function connect<P extends { makeConnection(t: StringTransport): void }>(p: P): StringTransport {
  const t = new StringTransport();
  p.makeConnection(t);
  return t;
}

test("LineReceiver: lines arrive the same whole, split anywhere, and a byte at a time", () => {
  const data = b("one\r\ntwo\r\n\r\nthree\r\nrest");
  for (const chunks of splits(data)) {
    const p = new Lines();
    connect(p);
    for (const c of chunks) p.dataReceived(c);
    assert.deepEqual(p.lines, ["one", "two", "", "three"]);
    assert.equal(s(p.clearLineBuffer()), "rest");
  }
});

test("LineReceiver: a delimiter split across packets is still found", () => {
  const p = new Lines();
  connect(p);
  p.dataReceived(b("abc\r"));
  assert.deepEqual(p.lines, []);
  p.dataReceived(b("\ndef"));
  assert.deepEqual(p.lines, ["abc"]);
});

test("LineReceiver: a custom delimiter works under every split", () => {
  class NL extends Lines {
    override delimiter = b("\n");
  }
  for (const chunks of splits(b("a\nbb\nccc\n"))) {
    const p = new NL();
    connect(p);
    for (const c of chunks) p.dataReceived(c);
    assert.deepEqual(p.lines, ["a", "bb", "ccc"]);
  }
});

test("LineReceiver: setRawMode inside lineReceived sends the rest of the same chunk to rawDataReceived", () => {
  class Switch extends Lines {
    override lineReceived(line: Uint8Array): unknown {
      super.lineReceived(line);
      if (s(line) === "RAW") this.setRawMode();
      return undefined;
    }
  }
  const p = new Switch();
  connect(p);
  p.dataReceived(b("hello\r\nRAW\r\nraw bytes\r\nmore"));
  assert.deepEqual(p.lines, ["hello", "RAW"]);
  assert.deepEqual(p.raw, ["raw bytes\r\nmore"]);
  p.dataReceived(b("x\r\n"));
  assert.deepEqual(p.raw, ["raw bytes\r\nmore", "x\r\n"]);
});

test("LineReceiver: setLineMode(extra) parses the extra data for lines", () => {
  class Back extends Lines {
    override rawDataReceived(data: Uint8Array): unknown {
      const text = s(data);
      const i = text.indexOf("|");
      if (i < 0) return super.rawDataReceived(data);
      super.rawDataReceived(b(text.slice(0, i)));
      return this.setLineMode(b(text.slice(i + 1)));
    }
  }
  const p = new Back();
  connect(p);
  p.setRawMode();
  p.dataReceived(b("rawpart|line1\r\nline2\r\npartial"));
  assert.deepEqual(p.raw, ["rawpart"]);
  assert.deepEqual(p.lines, ["line1", "line2"]);
  p.dataReceived(b("\r\n"));
  assert.deepEqual(p.lines, ["line1", "line2", "partial"]);
});

test("LineReceiver: with MAX_LENGTH 4, five bytes without a delimiter wait and six exceed", () => {
  class Short extends Lines {
    override MAX_LENGTH = 4;
  }
  const p5 = new Short();
  const t5 = connect(p5);
  p5.dataReceived(b("12345"));
  assert.deepEqual(p5.exceeded, []);
  assert.equal(t5.disconnecting, false);

  const p6 = new Short();
  const t6 = connect(p6);
  p6.dataReceived(b("123456"));
  assert.deepEqual(p6.exceeded, ["123456"]);
  assert.equal(t6.disconnecting, true, "the default drops the connection");
});

test("LineReceiver: a delimited line over MAX_LENGTH calls lineLengthExceeded with the rest of the buffer", () => {
  class Short extends Lines {
    override MAX_LENGTH = 4;
  }
  for (const chunks of splits(b("ok\r\ntoolong\r\nafter\r\n"))) {
    const p = new Short();
    const t = connect(p);
    // A real transport stops reading once it is disconnecting.
    for (const c of chunks) if (!t.disconnecting) p.dataReceived(c);
    assert.deepEqual(p.lines, ["ok"]);
    assert.equal(p.exceeded.length, 1);
    assert.ok(p.exceeded[0]!.startsWith("too"));
    assert.equal(t.disconnecting, true);
  }
});

test("LineReceiver: a truthy return from lineReceived stops processing the input", () => {
  class Stop extends Lines {
    override lineReceived(line: Uint8Array): unknown {
      super.lineReceived(line);
      return s(line) === "stop" ? "stopped" : undefined;
    }
  }
  const p = new Stop();
  connect(p);
  assert.equal(p.dataReceived(b("a\r\nstop\r\nb\r\n")), "stopped");
  assert.deepEqual(p.lines, ["a", "stop"]);
});

test("LineReceiver: lines after the transport starts disconnecting are not delivered", () => {
  class Quit extends Lines {
    override lineReceived(line: Uint8Array): unknown {
      super.lineReceived(line);
      if (s(line) === "quit") this.transport.loseConnection();
      return undefined;
    }
  }
  const p = new Quit();
  connect(p);
  p.dataReceived(b("a\r\nquit\r\nb\r\nc\r\n"));
  assert.deepEqual(p.lines, ["a", "quit"]);
});

test("LineReceiver: a re-entrant dataReceived only buffers; the outer call parses it in order", () => {
  class Reenter extends Lines {
    override lineReceived(line: Uint8Array): unknown {
      super.lineReceived(line);
      if (s(line) === "first") this.dataReceived(b("injected\r\n"));
      return undefined;
    }
  }
  const p = new Reenter();
  connect(p);
  p.dataReceived(b("first\r\nsecond\r\n"));
  assert.deepEqual(p.lines, ["first", "second", "injected"]);
});

test("LineReceiver: sendLine writes the line and the delimiter in one write", () => {
  const p = new Lines();
  const t = connect(p);
  p.sendLine("hi");
  p.sendLine(b("there"));
  assert.equal(s(t.value()), "hi\r\nthere\r\n");
});

test("LineReceiver: pauseProducing holds buffered lines until resumeProducing", () => {
  class Pauser extends Lines {
    override lineReceived(line: Uint8Array): unknown {
      super.lineReceived(line);
      if (s(line) === "pause") this.pauseProducing();
      return undefined;
    }
  }
  const p = new Pauser();
  const t = connect(p);
  p.dataReceived(b("pause\r\nlater\r\n"));
  assert.deepEqual(p.lines, ["pause"]);
  assert.equal(t.producerState, "paused");
  p.resumeProducing();
  assert.deepEqual(p.lines, ["pause", "later"]);
  assert.equal(t.producerState, "producing");
});

test("LineOnlyReceiver: lines under every split, and an over-long line drops the connection", () => {
  class Only extends LineOnlyReceiver {
    lines: string[] = [];
    override MAX_LENGTH = 8;
    override lineReceived(line: Uint8Array): void {
      this.lines.push(s(line));
    }
  }
  for (const chunks of splits(b("a\r\nbc\r\n"))) {
    const p = new Only();
    connect(p);
    for (const c of chunks) p.dataReceived(c);
    assert.deepEqual(p.lines, ["a", "bc"]);
  }
  const p = new Only();
  const t = connect(p);
  p.dataReceived(b("123456789"));
  assert.equal(t.disconnecting, true);
  const q = new Only();
  const tq = connect(q);
  q.sendLine("x");
  assert.equal(s(tq.value()), "x\r\n");
});

class Strings32 extends Int32StringReceiver {
  got: string[] = [];
  limit: number[] = [];
  override stringReceived(str: Uint8Array): void {
    this.got.push(s(str));
  }
  override lengthLimitExceeded(length: number): void {
    this.limit.push(length);
    super.lengthLimitExceeded(length);
  }
}

test("Int32StringReceiver: strings are reassembled from any split, including one byte at a time", () => {
  const w = new Strings32();
  const wt = connect(w);
  w.sendString("hello");
  w.sendString("");
  w.sendString(b("x".repeat(300)));
  const wire = wt.value();
  assert.equal(wire.subarray(0, 9).toString("hex"), "0000000568656c6c6f");
  for (const chunks of splits(wire)) {
    const p = new Strings32();
    connect(p);
    for (const c of chunks) p.dataReceived(c);
    assert.deepEqual(p.got, ["hello", "", "x".repeat(300)]);
  }
});

test("Int32StringReceiver: a prefix over MAX_LENGTH calls lengthLimitExceeded before any body arrives", () => {
  const p = new Strings32();
  p.MAX_LENGTH = 10;
  const t = connect(p);
  p.dataReceived(Buffer.from("0000000b", "hex"));
  assert.deepEqual(p.limit, [11]);
  assert.deepEqual(p.got, []);
  assert.equal(t.disconnecting, true);
});

test("Int8StringReceiver and Int16StringReceiver: sendString refuses strings the prefix cannot hold", () => {
  class S8 extends Int8StringReceiver {}
  class S16 extends Int16StringReceiver {
    got: string[] = [];
    override stringReceived(str: Uint8Array): void {
      this.got.push(s(str));
    }
  }
  const p8 = new S8();
  const t8 = connect(p8);
  p8.sendString(Buffer.alloc(255));
  assert.equal(t8.value().length, 256);
  assert.throws(() => p8.sendString(Buffer.alloc(256)), StringTooLongError);
  const p16 = new S16();
  const t16 = connect(p16);
  assert.throws(() => p16.sendString(Buffer.alloc(65536)), StringTooLongError);
  p16.sendString("ab");
  assert.equal(t16.value().toString("hex"), "00026162");
  for (const chunks of splits(Buffer.from("000161000162", "hex"))) {
    const q = new S16();
    connect(q);
    for (const c of chunks) q.dataReceived(c);
    assert.deepEqual(q.got, ["a", "b"]);
  }
});

class Nets extends NetstringReceiver {
  got: string[] = [];
  override stringReceived(str: Uint8Array): void {
    this.got.push(s(str));
  }
}

test("NetstringReceiver: netstrings parse under every split", () => {
  const w = new Nets();
  const wt = connect(w);
  w.sendString("hello");
  w.sendString("");
  assert.equal(s(wt.value()), "5:hello,0:,");
  for (const chunks of splits(b("5:hello,0:,12:hello world!,"))) {
    const p = new Nets();
    const t = connect(p);
    for (const c of chunks) p.dataReceived(c);
    assert.deepEqual(p.got, ["hello", "", "hello world!"]);
    assert.equal(t.disconnecting, false);
  }
});

test("NetstringReceiver: a bad trailer, a bad length or a length over MAX_LENGTH drops the connection and sets brokenPeer", () => {
  for (const bad of ["3:abc;", "x:abc,", "03:abc,", "-1:a,", "100000:"]) {
    for (const chunks of splits(b(bad))) {
      const p = new Nets();
      const t = connect(p);
      for (const c of chunks) if (!t.disconnecting) p.dataReceived(c);
      assert.equal(p.brokenPeer, 1, bad);
      assert.equal(t.disconnecting, true, bad);
      assert.deepEqual(p.got, []);
    }
  }
});
