/**
 * Property tests for the byte-fed parsers: any split of the input gives the same result as the
 * whole, and arbitrary bytes never make a parser throw anything but its own typed error.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";

import { Int32StringReceiver, LineReceiver, NetstringReceiver } from "@twisted-ts/internet/basic";
import { ProxyHeaderParser } from "@twisted-ts/internet/endpoints";
import { InvalidProxyHeader } from "@twisted-ts/internet/error";
import { StringTransport } from "@twisted-ts/internet/testing";
import { chunksOf } from "../_support/fuzz.js";

/** `data` cut at the given offsets (taken modulo its length). */
const cut = (data: Uint8Array, offsets: number[]): Uint8Array[] => chunksOf(data, { kind: "cuts", at: offsets });

class Lines extends LineReceiver {
  got: string[] = [];
  exceeded = 0;
  override MAX_LENGTH = 40;
  override lineReceived(line: Uint8Array): unknown {
    this.got.push(Buffer.from(line).toString("hex"));
    return undefined;
  }
  override lineLengthExceeded(): unknown {
    this.exceeded += 1;
    this.transport.loseConnection();
    return undefined;
  }
}

test("LineReceiver: any split of any input gives the same lines as the whole input", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(), { maxLength: 20 }), (data, offsets) => {
      const run = (chunks: Uint8Array[]): { got: string[]; exceeded: number } => {
        const p = new Lines();
        const t = new StringTransport();
        p.makeConnection(t);
        for (const c of chunks) if (!t.disconnecting) p.dataReceived(c);
        return { got: p.got, exceeded: p.exceeded };
      };
      const whole = run([data]);
      const split = run(cut(data, offsets));
      // Where the limit is hit can depend on the split only after the last complete line.
      assert.deepEqual(split.got.slice(0, whole.got.length), whole.got.slice(0, split.got.length));
      if (whole.exceeded === 0) assert.deepEqual(split, whole);
    }),
    { numRuns: 300 },
  );
});

test("Int32StringReceiver: strings written by sendString are received intact under any split", () => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 10 }), fc.array(fc.nat(), { maxLength: 30 }), (strings, offsets) => {
      class R extends Int32StringReceiver {
        got: string[] = [];
        override stringReceived(str: Uint8Array): void {
          this.got.push(Buffer.from(str).toString("hex"));
        }
      }
      const w = new R();
      const wt = new StringTransport();
      w.makeConnection(wt);
      for (const s of strings) w.sendString(s);
      const r = new R();
      r.makeConnection(new StringTransport());
      for (const c of cut(wt.value(), offsets)) r.dataReceived(c);
      assert.deepEqual(r.got, strings.map((s) => Buffer.from(s).toString("hex")));
    }),
    { numRuns: 200 },
  );
});

test("NetstringReceiver: arbitrary bytes either parse or mark the peer broken, never throw", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 100 }), fc.array(fc.nat(), { maxLength: 10 }), (data, offsets) => {
      class N extends NetstringReceiver {
        override stringReceived(): void {}
      }
      const p = new N();
      const t = new StringTransport();
      p.makeConnection(t);
      for (const c of cut(data, offsets)) if (!t.disconnecting) p.dataReceived(c);
      assert.equal(t.disconnecting, p.brokenPeer === 1);
    }),
    { numRuns: 300 },
  );
});

test("PROXY header parser: arbitrary bytes give a header, need more input, or InvalidProxyHeader", () => {
  const prefixes = [Buffer.alloc(0), Buffer.from("PROXY "), Buffer.from("0d0a0d0a000d0a515549540a", "hex")];
  fc.assert(
    fc.property(fc.constantFrom(...prefixes), fc.uint8Array({ maxLength: 120 }), fc.array(fc.nat(), { maxLength: 10 }), (prefix, tail, offsets) => {
      const data = Buffer.concat([prefix, tail]);
      const p = new ProxyHeaderParser();
      try {
        for (const c of cut(data, offsets)) if (p.feed(c) !== null) break;
      } catch (e) {
        assert.ok(e instanceof InvalidProxyHeader, String(e));
      }
    }),
    { numRuns: 500 },
  );
});
