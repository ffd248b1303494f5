import { test } from "node:test";
import assert from "node:assert/strict";
import { connect as netConnect } from "node:net";

import { ProxyHeaderParser, serverFromString, V1_MAX_LENGTH } from "@twisted-ts/internet/endpoints";
import { InvalidNetworkProtocol, InvalidProxyHeader, MissingAddressData } from "@twisted-ts/internet/error";
import type { IListeningPort } from "@twisted-ts/internet/interfaces";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { NodeReactor } from "@twisted-ts/internet/reactor";
import { until } from "./_helpers.js";

const V2SIG = "0d0a0d0a000d0a515549540a";

function v2(verCmd: number, famProto: number, body: string): Buffer {
  const b = Buffer.from(body, "hex");
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([Buffer.from(V2SIG, "hex"), Buffer.from([verCmd, famProto]), len, b]);
}

/** Feeds `data` whole, split at every point, and a byte at a time; returns each outcome. */
function feedAll(data: Buffer): Array<ReturnType<ProxyHeaderParser["feed"]> | Error> {
  const ways: Buffer[][] = [[data]];
  for (let i = 1; i < data.length; i++) ways.push([data.subarray(0, i), data.subarray(i)]);
  ways.push([...data].map((x) => Buffer.from([x])));
  return ways.map((chunks) => {
    const p = new ProxyHeaderParser();
    let out: ReturnType<ProxyHeaderParser["feed"]> = null;
    try {
      for (const c of chunks) {
        out = p.feed(c);
        if (out !== null) break;
      }
    } catch (e) {
      return e as Error;
    }
    return out;
  });
}

test("PROXY v1: TCP4 and TCP6 headers parse under every split, leaving the bytes after them", () => {
  const data = Buffer.from("PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nhello", "latin1");
  for (const r of feedAll(data)) {
    assert.ok(r !== null && !(r instanceof Error), String(r));
    const src = r.info.source!;
    assert.equal(src.host, "192.0.2.1");
    assert.equal(src.port, 56324);
    assert.equal(r.info.destination!.port, 443);
    assert.ok(r.rest.toString() === "hello" || r.rest.length <= 5);
  }
  const six = new ProxyHeaderParser().feed(Buffer.from("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n"));
  assert.equal(six!.info.source!.family, "IPv6");
  assert.equal(six!.info.source!.host, "2001:db8::1");
  const unknown = new ProxyHeaderParser().feed(Buffer.from("PROXY UNKNOWN\r\n"));
  assert.equal(unknown!.info.source, null);
});

test("PROXY v1: malformed headers are refused", () => {
  const bad: Array<[string, abstract new (...a: never[]) => Error]> = [
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", MissingAddressData],
    ["PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", InvalidNetworkProtocol],
    ["PROXY TCP4 1.2.3.400 5.6.7.8 1 2\r\n", InvalidProxyHeader],
    ["PROXY TCP4 ::1 5.6.7.8 1 2\r\n", InvalidProxyHeader],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n", InvalidProxyHeader],
    ["PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n", InvalidProxyHeader],
    ["GET / HTTP/1.1\r\n", InvalidProxyHeader],
    [`PROXY TCP4 ${"1".repeat(V1_MAX_LENGTH)}`, InvalidProxyHeader],
  ];
  for (const [text, cls] of bad) {
    for (const r of feedAll(Buffer.from(text, "latin1"))) {
      assert.ok(r instanceof cls, `${JSON.stringify(text)} → ${String(r)}`);
    }
  }
});

test("PROXY v2: IPv4, IPv6, UNIX and LOCAL headers parse under every split", () => {
  const ipv4 = v2(0x21, 0x11, "c0000201" + "c6336402" + "dc04" + "01bb");
  for (const r of feedAll(Buffer.concat([ipv4, Buffer.from("rest")]))) {
    assert.ok(r !== null && !(r instanceof Error), String(r));
    assert.equal(r.info.source!.host, "192.0.2.1");
    assert.equal(r.info.source!.port, 0xdc04);
    assert.equal(r.info.destination!.host, "198.51.100.2");
    assert.equal(r.info.destination!.port, 443);
  }
  const ipv6 = v2(0x21, 0x21, "20010db8000000000000000000000001" + "20010db8000000000000000000000002" + "0001" + "0002");
  const r6 = new ProxyHeaderParser().feed(ipv6)!;
  assert.equal(r6.info.source!.host, "2001:db8::1");
  assert.equal(r6.info.destination!.host, "2001:db8::2");
  const path = (s: string): string => Buffer.concat([Buffer.from(s), Buffer.alloc(108 - s.length)]).toString("hex");
  const unix = new ProxyHeaderParser().feed(v2(0x21, 0x31, path("/src") + path("/dst")))!;
  assert.equal(unix.info.source!.family, "UNIX");
  const local = new ProxyHeaderParser().feed(v2(0x20, 0x00, ""))!;
  assert.equal(local.info.source, null);
});

test("PROXY v2: malformed headers are refused", () => {
  const cases: Array<[Buffer, abstract new (...a: never[]) => Error]> = [
    [v2(0x31, 0x11, "c0000201c6336402dc0401bb"), InvalidProxyHeader], // version 3
    [v2(0x22, 0x11, "c0000201c6336402dc0401bb"), InvalidProxyHeader], // command 2
    [v2(0x21, 0x11, "c0000201"), MissingAddressData], // short IPv4 block
    [v2(0x21, 0x41, "00"), InvalidNetworkProtocol], // family 4
    [v2(0x21, 0x13, "c0000201c6336402dc0401bb"), InvalidNetworkProtocol], // transport 3
    [Buffer.concat([Buffer.from(V2SIG, "hex"), Buffer.from([0x21, 0x11, 0xff, 0xff])]), InvalidProxyHeader], // too long
    [Buffer.from("0d0a0d0a000d0a5155495400", "hex"), InvalidProxyHeader], // bad signature
  ];
  for (const [data, cls] of cases) {
    for (const r of feedAll(data)) assert.ok(r instanceof cls, `${data.toString("hex")} → ${String(r)}`);
  }
});

test("haproxy: endpoint: getPeer reports the client from a v1 or v2 header; a malformed header closes the connection unseen", async (t) => {
  const r = new NodeReactor();
  const seen: Array<{ peer: string; host: string; data: string }> = [];
  let connections = 0;
  class Server extends Protocol {
    private data = "";
    override connectionMade(): void {
      connections += 1;
    }
    override dataReceived(d: Uint8Array): void {
      this.data += Buffer.from(d).toString();
      if (this.data.endsWith("\n")) {
        const peer = this.transport.getPeer();
        const host = this.transport.getHost();
        seen.push({ peer: `${peer.host}:${peer.port}`, host: `${host.host}:${host.port}`, data: this.data });
        this.transport.write("ok\n");
      }
    }
  }
  const port = (await serverFromString(r, "haproxy:tcp:0:interface=127.0.0.1").listen(Factory.forProtocol(Server))) as IListeningPort;
  t.after(() => port.stopListening());
  const send = (chunks: Buffer[]): Promise<string> =>
    new Promise((resolve) => {
      const s = netConnect(port.getHost().port, "127.0.0.1");
      let got = "";
      s.on("data", (d) => (got += d.toString()));
      s.on("close", () => resolve(got));
      s.on("error", () => undefined);
      s.on("connect", async () => {
        s.setNoDelay(true);
        for (const c of chunks) {
          s.write(c);
          await new Promise((res) => setTimeout(res, 2));
        }
        setTimeout(() => s.end(), 20);
      });
    });
  const v1 = Buffer.from("PROXY TCP4 203.0.113.7 10.0.0.1 40000 22\r\nline one\n");
  assert.equal(await send([v1.subarray(0, 7), v1.subarray(7, 30), v1.subarray(30)]), "ok\n");
  const v2h = v2(0x21, 0x11, "cb007108" + "0a000001" + "9c41" + "0016");
  assert.equal(await send([v2h.subarray(0, 10), Buffer.concat([v2h.subarray(10), Buffer.from("line two\n")])]), "ok\n");
  assert.deepEqual(seen, [
    { peer: "203.0.113.7:40000", host: "10.0.0.1:22", data: "line one\n" },
    { peer: "203.0.113.8:40001", host: "10.0.0.1:22", data: "line two\n" },
  ]);
  assert.equal(connections, 2);
  assert.equal(await send([Buffer.from("SSH-2.0-client\r\n")]), "");
  assert.equal(await send([Buffer.from("PROXY TCP4 1.2.3.4 5.6.7.8 1\r\nline\n")]), "");
  await until(() => true);
  assert.equal(connections, 2, "the wrapped protocol never saw the bad connections");
  assert.equal(seen.length, 2);
});
