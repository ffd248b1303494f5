import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

import { LineReceiver } from "@twisted-ts/internet/basic";
import { ConnectionDone, SSLError } from "@twisted-ts/internet/error";
import type { ITLSTransport } from "@twisted-ts/internet/interfaces";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { ContextFactory, NodeReactor } from "@twisted-ts/internet/reactor";
import { requirePeer, tempDir } from "../_support/peers.js";
import { Recorder, RecordingClientFactory, until } from "./_helpers.js";

function makeCert(t: TestContext): { key: string; cert: string } | undefined {
  const openssl = requirePeer(t, "openssl");
  if (openssl === undefined) return undefined;
  const dir = tempDir(t);
  execFileSync(openssl, [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"), "-days", "1",
    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], { stdio: "ignore" });
  return { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
}

class Echo extends Protocol {
  override dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
}

test("TLS: listenSSL and connectSSL round-trip data with a generated certificate", async (t) => {
  const pem = makeCert(t);
  if (pem === undefined) return;
  const r = new NodeReactor();
  const port = r.listenSSL(0, Factory.forProtocol(Echo), new ContextFactory({ key: pem.key, cert: pem.cert }), 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());
  const f = new RecordingClientFactory(Recorder);
  let client: Recorder | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as Recorder);
  r.connectSSL("127.0.0.1", port.getHost().port, f, new ContextFactory({ ca: pem.cert, servername: "localhost" }));
  await until(() => client !== null && client.connected, "TLS connection");
  const payload = Buffer.alloc(100_000, 0x61);
  client!.transport.write(payload);
  await until(() => client!.chunks.reduce((n, c) => n + c.length, 0) === payload.length, "echo");
  assert.ok(Buffer.concat(client!.chunks).equals(payload));
  client!.transport.loseConnection();
  assert.ok((await client!.lost).check(ConnectionDone));
});

test("TLS: a certificate the client does not trust fails the connection with SSLError", async (t) => {
  const pem = makeCert(t);
  if (pem === undefined) return;
  const r = new NodeReactor();
  const port = r.listenSSL(0, Factory.forProtocol(Echo), new ContextFactory({ key: pem.key, cert: pem.cert }), 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());
  const f = new RecordingClientFactory(Recorder);
  r.connectSSL("127.0.0.1", port.getHost().port, f, new ContextFactory({ servername: "localhost" }));
  const reason = await f.failed;
  assert.ok(reason.check(SSLError), String(reason));
});

test("TLS: startTLS upgrades a plain TCP connection after a STARTTLS line", async (t) => {
  const pem = makeCert(t);
  if (pem === undefined) return;
  const r = new NodeReactor();
  class Server extends LineReceiver {
    override lineReceived(line: Uint8Array): unknown {
      const text = Buffer.from(line).toString();
      if (text === "STARTTLS") {
        this.sendLine("GO");
        (this.transport as ITLSTransport).startTLS(new ContextFactory({ key: pem!.key, cert: pem!.cert }));
      } else {
        this.sendLine(`secure ${text}`);
      }
      return undefined;
    }
  }
  const port = r.listenTCP(0, Factory.forProtocol(Server), 50, "127.0.0.1");
  await port.whenListening();
  t.after(() => port.stopListening());
  const lines: string[] = [];
  class Client extends LineReceiver {
    override connectionMade(): void {
      this.sendLine("STARTTLS");
    }
    override lineReceived(line: Uint8Array): unknown {
      const text = Buffer.from(line).toString();
      lines.push(text);
      if (text === "GO") {
        (this.transport as ITLSTransport).startTLS(new ContextFactory({ ca: pem!.cert, servername: "localhost" }));
        this.sendLine("hello");
      }
      return undefined;
    }
  }
  const f = new RecordingClientFactory(Client);
  let client: Client | null = null;
  const orig = f.buildProtocol.bind(f);
  f.buildProtocol = (addr) => (client = orig(addr) as Client);
  r.connectTCP("127.0.0.1", port.getHost().port, f);
  await until(() => lines.length === 2, "the reply over TLS");
  assert.deepEqual(lines, ["GO", "secure hello"]);
  client!.transport.loseConnection();
  await until(() => f.lostReasons.length === 1);
});
