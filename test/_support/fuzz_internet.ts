/**
 * Fuzz targets for @twisted-ts/internet's byte-fed parsers: LineReceiver, Int32StringReceiver,
 * NetstringReceiver and the PROXY protocol header parser. Each is fed mutants of valid streams,
 * whole, split and one byte at a time; the buffer each keeps must stay under its limit.
 */
import fc from "fast-check";
import { Int32StringReceiver, LineReceiver, NetstringReceiver } from "@twisted-ts/internet/basic";
import { ProxyHeaderParser, V1_MAX_LENGTH, V2_MAX_PAYLOAD } from "@twisted-ts/internet/endpoints";
import { StringTransport } from "@twisted-ts/internet/testing";
import type { IProtocol } from "@twisted-ts/internet/interfaces";
import { FuzzFinding, bounded, chunking, chunksOf, fuzzBytes, requireTyped, target, type Chunking, type FuzzTarget } from "./fuzz.js";

const latin1 = (s: string): Uint8Array => Buffer.from(s, "latin1");

/**
 * Connects `p` to a StringTransport and feeds it `data` in the reads `how` describes, calling
 * `held` after each read while it is still connected, until it disconnects.
 */
function feedProtocol(p: IProtocol, data: Uint8Array, how: Chunking, held: () => void): StringTransport {
  const t = new StringTransport();
  p.makeConnection(t);
  for (const c of chunksOf(data, how)) {
    if (t.disconnecting) break;
    p.dataReceived(c);
    if (!t.disconnecting) held();
  }
  return t;
}

/** A small limit, so that mutants reach it often. */
const LINE_MAX = 64;

class Lines extends LineReceiver {
  override MAX_LENGTH = LINE_MAX;
  longest = 0;
  override lineReceived(line: Uint8Array): unknown {
    this.longest = Math.max(this.longest, line.length);
    return undefined;
  }
}

const LINE_CORPUS = [
  latin1("USER alice\r\nPASS secret\r\nQUIT\r\n"),
  latin1(`${"x".repeat(LINE_MAX)}\r\n${"y".repeat(LINE_MAX - 1)}\r\n`),
  latin1("\r\n\r\n\r"),
  latin1(`${"z".repeat(LINE_MAX + 1)}`),
];

const lineReceiver = target("internet/LineReceiver", 400, fc.tuple(fuzzBytes(LINE_CORPUS), chunking), ([data, how]) => {
  const p = new Lines();
  // Twisted's check: no delimiter within MAX_LENGTH + len(delimiter) bytes ends the connection.
  feedProtocol(p, data, how, () => bounded("LineReceiver buffer", (p as unknown as { _buffer: Uint8Array })._buffer.length, LINE_MAX + p.delimiter.length - 1));
  bounded("LineReceiver line", p.longest, LINE_MAX);
});

const STRING_MAX = 1000;

/** A string receiver class with MAX_LENGTH = STRING_MAX that records the longest string it got. */
// `any[]` is the constructor signature TypeScript requires of a mixin base.
function measured<B extends new (...args: any[]) => IProtocol & { MAX_LENGTH: number; stringReceived(s: Uint8Array): void }>(Base: B) {
  return class extends Base {
    override MAX_LENGTH = STRING_MAX;
    longest = 0;
    override stringReceived(s: Uint8Array): void {
      this.longest = Math.max(this.longest, s.length);
    }
  };
}

function int32Frames(strings: string[]): Uint8Array {
  return Buffer.concat(
    strings.map((s) => {
      const b = latin1(s);
      const h = Buffer.alloc(4);
      h.writeUInt32BE(b.length);
      return Buffer.concat([h, b]);
    }),
  );
}

const int32Receiver = target(
  "internet/Int32StringReceiver",
  400,
  fc.tuple(fuzzBytes([int32Frames(["hello", "", "world"]), int32Frames(["a".repeat(STRING_MAX)]), int32Frames(["b".repeat(STRING_MAX + 1)])]), chunking),
  ([data, how]) => {
    const p = new (measured(Int32StringReceiver))();
    // The length limit is checked before a body is buffered (Twisted's lengthLimitExceeded).
    feedProtocol(p, data, how, () => bounded("Int32StringReceiver buffer", (p as unknown as { _unprocessed: Uint8Array })._unprocessed.length, 4 + STRING_MAX - 1));
    bounded("Int32StringReceiver string", p.longest, STRING_MAX);
  },
);

const netstringReceiver = target(
  "internet/NetstringReceiver",
  400,
  fc.tuple(fuzzBytes([latin1("5:hello,0:,3:abc,"), latin1(`${STRING_MAX}:${"q".repeat(STRING_MAX)},`), latin1("1001:")]), chunking),
  ([data, how]) => {
    const p = new (measured(NetstringReceiver))();
    const inner = p as unknown as { _payloadSize: number; _remaining: Uint8Array };
    const t = feedProtocol(p, data, how, () => {
      // The payload plus its comma; a length prefix longer than the digits of MAX_LENGTH is refused at once.
      bounded("NetstringReceiver payload", inner._payloadSize, STRING_MAX + 1);
      bounded("NetstringReceiver unparsed", inner._remaining.length, Math.ceil(Math.log10(STRING_MAX)) + 1);
    });
    if (t.disconnecting !== (p.brokenPeer === 1)) throw new FuzzFinding("NetstringReceiver: disconnected without brokenPeer, or the reverse");
    bounded("NetstringReceiver string", p.longest, STRING_MAX);
  },
);

function proxyV2(verCmd: number, famProto: number, body: Uint8Array): Uint8Array {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([Buffer.from("0d0a0d0a000d0a515549540a", "hex"), Buffer.from([verCmd, famProto]), len, body]);
}

const PROXY_CORPUS = [
  latin1("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nSSH-2.0-x\r\n"),
  latin1("PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n"),
  latin1("PROXY UNKNOWN\r\n"),
  proxyV2(0x21, 0x11, Buffer.from("c000020100000001d4310016", "hex")),
  proxyV2(0x21, 0x21, Buffer.concat([Buffer.alloc(32, 1), Buffer.from("00160017", "hex")])),
  proxyV2(0x21, 0x31, Buffer.concat([Buffer.from("/run/a.sock".padEnd(108, "\0")), Buffer.from("/run/b.sock".padEnd(108, "\0"))])),
  proxyV2(0x20, 0x00, new Uint8Array(0)),
  proxyV2(0x21, 0x11, Buffer.concat([Buffer.from("c000020100000001d4310016", "hex"), Buffer.from("0400030a0b0c", "hex")])),
];

const proxyHeader = target("internet/PROXY header", 500, fc.tuple(fuzzBytes(PROXY_CORPUS), chunking), ([data, how]) => {
  const p = new ProxyHeaderParser();
  try {
    for (const c of chunksOf(data, how)) {
      if (p.feed(c) !== null) return;
      const held = (p as unknown as { buf: Uint8Array }).buf;
      if (held[0] === 0x50) bounded("ProxyHeaderParser v1 buffer", held.length, V1_MAX_LENGTH - 1);
      else bounded("ProxyHeaderParser v2 buffer", held.length, 16 + V2_MAX_PAYLOAD - 1);
    }
  } catch (e) {
    if (e instanceof FuzzFinding) throw e;
    requireTyped(e, "ProxyHeaderParser.feed");
  }
});

export const INTERNET_TARGETS: readonly FuzzTarget[] = [lineReceiver, int32Receiver, netstringReceiver, proxyHeader];
