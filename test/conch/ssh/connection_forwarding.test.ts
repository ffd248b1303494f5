/**
 * Port forwarding (RFC 4254 §7) over two in-memory connections, with real loopback sockets at the
 * ends.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { userInfo } from "node:os";
import type { ITransport } from "@twisted-ts/internet/interfaces";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { reactor } from "@twisted-ts/internet/reactor";
import { common, connection, forwarding } from "@twisted-ts/conch/ssh";
import { unix } from "@twisted-ts/conch";
import { cat, hex, Pump, RecordingChannel, text, u32 } from "./_connection_fakes.js";

const { NS } = common;

test("direct-tcpip / forwarded-tcpip payloads", () => {
  const packed = forwarding.packOpen_direct_tcpip(["example.com", 80], ["127.0.0.1", 4242]);
  assert.equal(hex(packed), hex(cat(NS("example.com"), u32(80), NS("127.0.0.1"), u32(4242))));
  assert.deepEqual(forwarding.unpackOpen_direct_tcpip(packed), [
    ["example.com", 80],
    ["127.0.0.1", 4242],
  ]);
  assert.deepEqual(forwarding.unpackOpen_forwarded_tcpip(packed), forwarding.unpackOpen_direct_tcpip(packed));
});

test("tcpip-forward payloads", () => {
  const packed = forwarding.packGlobal_tcpip_forward(["", 0]);
  assert.equal(hex(packed), hex(cat(NS(""), u32(0))));
  assert.deepEqual(forwarding.unpackGlobal_tcpip_forward(cat(NS("localhost"), u32(8080))), ["localhost", 8080]);
});

class Echo extends Protocol<ITransport> {
  override dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
}

/**
 * Runs `fn` with a direct-tcpip channel opened (from an in-memory client to the Unix realm's
 * server) to a loopback echo server, which stops listening afterwards.
 */
async function withEchoTunnel(fn: (ch: RecordingChannel, client: connection.SSHConnection, pump: Pump) => Promise<void>): Promise<void> {
  const port = reactor.listenTCP(0, Factory.forProtocol(Echo), 50, "127.0.0.1") as ReturnType<typeof reactor.listenTCP> & {
    whenListening(): PromiseLike<unknown>;
  };
  await port.whenListening();
  try {
    const client = new connection.SSHConnection();
    const server = new connection.SSHConnection();
    const pump = new Pump(client, server, new unix.UnixConchUser(userInfo().username));
    const ch = new RecordingChannel({ conn: client });
    ch.name = "direct-tcpip";
    client.openChannel(ch, forwarding.packOpen_direct_tcpip(["127.0.0.1", port.getHost().port], ["127.0.0.1", 5555]));
    pump.flush();
    await fn(ch, client, pump);
  } finally {
    await port.stopListening();
  }
}

test("direct-tcpip: the server connects to the destination and joins it to the channel", async () => {
  await withEchoTunnel(async (ch, _client, pump) => {
    ch.write("ping through the tunnel");
    await pump.until(() => ch.receivedText === "ping through the tunnel");
    ch.loseConnection();
    await pump.until(() => ch.events.includes("closed"));
  });
});

test("direct-tcpip: a refused destination closes the channel", async () => {
  const probe = reactor.listenTCP(0, Factory.forProtocol(Echo), 50, "127.0.0.1") as ReturnType<typeof reactor.listenTCP> & {
    whenListening(): PromiseLike<unknown>;
  };
  await probe.whenListening();
  const deadPort = probe.getHost().port;
  await probe.stopListening();
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(userInfo().username));
  const ch = new RecordingChannel({ conn: client });
  ch.name = "direct-tcpip";
  client.openChannel(ch, forwarding.packOpen_direct_tcpip(["127.0.0.1", deadPort], ["127.0.0.1", 5555]));
  await pump.until(() => ch.events.includes("closed"));
  assert.deepEqual(ch.received, []);
});

test("tcpip-forward to port 0: the reply carries the port; connections come back as forwarded-tcpip channels", async () => {
  const opened: Array<[string, number]> = [];
  class ClientConn extends connection.SSHConnection {
    channel_forwarded_tcpip(windowSize: number, maxPacket: number, data: Uint8Array): RecordingChannel {
      const [dest] = forwarding.unpackOpen_forwarded_tcpip(data);
      opened.push([dest[0], dest[1]]);
      const ch = new (class extends RecordingChannel {
        override dataReceived(d: Uint8Array): void {
          super.dataReceived(d);
          this.write(text(d).toUpperCase());
        }
      })({ remoteWindow: windowSize, remoteMaxPacket: maxPacket });
      return ch;
    }
  }
  const client = new ClientConn();
  const server = new connection.SSHConnection();
  const user = new unix.UnixConchUser(userInfo().username);
  const pump = new Pump(client, server, user);
  let bound = -1;
  client.sendGlobalRequest("tcpip-forward", forwarding.packGlobal_tcpip_forward(["localhost", 0]), true).addCallback((reply) => {
    bound = new DataView(reply.buffer, reply.byteOffset).getUint32(0);
  });
  await pump.until(() => bound > 0);
  let got = "";
  class Talker extends Protocol<ITransport> {
    override connectionMade(): void {
      this.transport.write("hello");
    }
    override dataReceived(data: Uint8Array): void {
      got += text(data);
      if (got === "HELLO") this.transport.loseConnection();
    }
  }
  const { ClientCreator } = await import("@twisted-ts/internet/protocol");
  await new ClientCreator(reactor, Talker).connectTCP("127.0.0.1", bound);
  await pump.until(() => got === "HELLO");
  assert.deepEqual(opened, [["localhost", bound]]);
  user.logout();
});

test("issue 11: direct-tcpip: an EOF that arrives before the destination answers still reaches it (ssh -W)", async () => {
  await withEchoTunnel(async (ch, client, pump) => {
    ch.write("ping, then EOF at once");
    client.sendEOF(ch);
    pump.flush();
    // The destination sees EOF, closes, and so the channel closes: without the EOF it never would.
    await pump.until(() => ch.events.includes("closed"));
    assert.equal(ch.receivedText, "ping, then EOF at once");
  });
});
