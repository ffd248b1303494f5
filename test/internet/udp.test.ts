import { test } from "node:test";
import assert from "node:assert/strict";

import type { IPv4Address, IPv6Address } from "@twisted-ts/internet/interfaces";
import { DatagramProtocol } from "@twisted-ts/internet/protocol";
import { NodeReactor } from "@twisted-ts/internet/reactor";
import { until } from "./_helpers.js";

class EchoUDP extends DatagramProtocol {
  override datagramReceived(data: Uint8Array, addr: IPv4Address | IPv6Address): void {
    this.transport.write(data, addr);
  }
}

class Collect extends DatagramProtocol {
  got: Array<{ data: string; from: number }> = [];
  started = 0;
  stopped = 0;
  override startProtocol(): void {
    this.started += 1;
  }
  override stopProtocol(): void {
    this.stopped += 1;
  }
  override datagramReceived(data: Uint8Array, addr: IPv4Address | IPv6Address): void {
    this.got.push({ data: Buffer.from(data).toString(), from: addr.port });
  }
}

test("UDP: a datagram echo server answers each datagram to its sender", async () => {
  const r = new NodeReactor();
  const server = r.listenUDP(0, new EchoUDP(), "127.0.0.1");
  await server.whenListening();
  const clientProto = new Collect();
  const client = r.listenUDP(0, clientProto, "127.0.0.1");
  await client.whenListening();
  assert.equal(clientProto.started, 1);
  const serverPort = server.getHost().port;
  for (const m of ["one", "two", "three"]) clientProto.transport.write(m, { host: "127.0.0.1", port: serverPort });
  await until(() => clientProto.got.length === 3, "three echoes");
  assert.deepEqual(clientProto.got.map((g) => g.data).sort(), ["one", "three", "two"]);
  assert.ok(clientProto.got.every((g) => g.from === serverPort));
  assert.equal(server.getHost().type, "UDP");
  // A connected port sends without an address.
  clientProto.transport.connect("127.0.0.1", serverPort);
  clientProto.transport.write("four");
  await until(() => clientProto.got.length === 4);
  await client.stopListening();
  await server.stopListening();
  assert.equal(clientProto.stopped, 1);
});
