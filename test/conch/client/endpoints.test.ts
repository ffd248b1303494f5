import { test } from "node:test";
import assert from "node:assert/strict";
import { Deferred } from "@twisted-ts/internet/defer";
import { ConnectionDone, ProcessTerminated } from "@twisted-ts/internet/error";
import { Failure } from "@twisted-ts/internet/failure";
import type { IProtocol, ITransport } from "@twisted-ts/internet/interfaces";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { unix } from "@twisted-ts/conch";
import { SSHCommandClientEndpoint, SSHDirectTCPIPClientEndpoint } from "@twisted-ts/conch/client/endpoints";
import { channel, connection, forwarding, session } from "@twisted-ts/conch/ssh";
import { Pump, text } from "../ssh/_connection_fakes.js";

/** Records what it receives and how it ended (wrapped: a Failure given to callback() is an errback). */
class Recorder extends Protocol<ITransport> {
  received = "";
  made = false;
  readonly lost = new Deferred<{ reason: Failure }>();
  override connectionMade(): void {
    this.made = true;
  }
  override dataReceived(data: Uint8Array): void {
    this.received += text(data);
  }
  override connectionLost(reason: Failure): void {
    this.lost.callback({ reason });
  }
}

class Upper extends Protocol<ITransport> {
  override dataReceived(data: Uint8Array): void {
    this.transport.write(text(data).toUpperCase());
  }
}

function ending(how: (t: session.SSHSessionProcessProtocol) => void): unix.CommandFactory {
  return () =>
    new (class extends Protocol<ITransport> {
      override connectionMade(): void {
        const t = this.transport as session.SSHSessionProcessProtocol;
        t.write("bye\n");
        how(t);
      }
    })();
}

function pair(): { client: connection.SSHConnection; pump: Pump } {
  const avatar = new unix.InProcessConchUser("alice", {
    commands: {
      upper: () => new Upper(),
      three: ending((t) => t.exit(3)),
      zero: ending((t) => t.exit(0)),
      killed: ending((t) => t.processEnded(new Failure(new ProcessTerminated(null, "SIGTERM")))),
    },
  });
  const client = new connection.SSHConnection();
  const pump = new Pump(client, new connection.SSHConnection(), avatar);
  return { client, pump };
}

async function connect(ep: { connect(f: Factory): Deferred<IProtocol> }, pump: Pump): Promise<Recorder> {
  const d = ep.connect(Factory.forProtocol(Recorder));
  pump.flush();
  return (await d) as Recorder;
}

test("existingConnection: connect fires with the protocol connected to the command's stdin and stdout", async () => {
  const { client, pump } = pair();
  const p = await connect(SSHCommandClientEndpoint.existingConnection(client, "upper"), pump);
  assert.equal(p.made, true);
  p.transport!.write("hello");
  pump.flush();
  assert.equal(p.received, "HELLO");
});

test("closing the protocol's transport closes the channel; the existing connection stays open", async () => {
  const { client, pump } = pair();
  const p = await connect(SSHCommandClientEndpoint.existingConnection(client, "upper"), pump);
  p.transport!.loseConnection();
  pump.flush();
  // The server gives an in-process command SESSION_CLOSE_GRACE seconds to end before it closes.
  pump.serverTransport.clock.advance(session.SESSION_CLOSE_GRACE);
  pump.flush();
  const { reason } = await p.lost;
  assert.ok(reason.value instanceof ConnectionDone);
  assert.equal(client.channels.size, 0);
  assert.equal(pump.clientTransport.lost, false);
});

test("exit-status: a non-zero status reaches connectionLost as ProcessTerminated with the exit code", async () => {
  const { client, pump } = pair();
  const p = await connect(SSHCommandClientEndpoint.existingConnection(client, "three"), pump);
  pump.flush();
  const { reason } = await p.lost;
  assert.equal(p.received, "bye\n");
  assert.ok(reason.value instanceof ProcessTerminated);
  assert.equal(reason.value.exitCode, 3);
});

test("exit-status 0 reaches connectionLost as ConnectionDone", async () => {
  const { client, pump } = pair();
  const p = await connect(SSHCommandClientEndpoint.existingConnection(client, "zero"), pump);
  pump.flush();
  const { reason } = await p.lost;
  assert.ok(reason.value instanceof ConnectionDone && !(reason.value instanceof ProcessTerminated));
});

test("exit-signal reaches connectionLost as ProcessTerminated with the signal", async () => {
  const { client, pump } = pair();
  const p = await connect(SSHCommandClientEndpoint.existingConnection(client, "killed"), pump);
  pump.flush();
  const { reason } = await p.lost;
  assert.ok(reason.value instanceof ProcessTerminated);
  assert.equal(reason.value.signal, "SIGTERM");
  assert.equal(reason.value.exitCode, null);
});

test("an unknown command still connects, then ends with its status 127", async () => {
  const { client, pump } = pair();
  const p = await connect(SSHCommandClientEndpoint.existingConnection(client, "nonesuch"), pump);
  pump.flush();
  const { reason } = await p.lost;
  assert.equal((reason.value as ProcessTerminated).exitCode, 127);
});

test("a refused exec fails connect and closes the channel", async () => {
  const avatar = {
    conn: undefined,
    lookupChannel: (_type: string, windowSize: number, maxPacket: number): channel.SSHChannel =>
      new (class extends channel.SSHChannel {
        request_exec(): boolean {
          return false;
        }
      })({ remoteWindow: windowSize, remoteMaxPacket: maxPacket }),
    lookupSubsystem: () => false,
    gotGlobalRequest: () => false,
  };
  const client = new connection.SSHConnection();
  const pump = new Pump(client, new connection.SSHConnection(), avatar);
  const d = SSHCommandClientEndpoint.existingConnection(client, "x").connect(Factory.forProtocol(Recorder));
  pump.flush();
  await assert.rejects(d.asPromise(), /channel request failed/);
  assert.equal(client.channels.size, 0);
});

/** A server avatar whose direct-tcpip channels echo, recording where they were asked to go. */
class EchoAvatar {
  conn: connection.SSHConnection | undefined;
  readonly asked: Array<[string, number]> = [];
  lookupChannel(channelType: string, windowSize: number, maxPacket: number, data: Uint8Array): channel.SSHChannel | undefined {
    if (channelType !== "direct-tcpip") return undefined;
    const [[host, port]] = forwarding.unpackOpen_direct_tcpip(data);
    this.asked.push([host, port]);
    if (port === 9) return undefined;
    return new (class extends channel.SSHChannel {
      override dataReceived(d: Uint8Array): void {
        this.write(d);
      }
    })({ remoteWindow: windowSize, remoteMaxPacket: maxPacket, data });
  }
  lookupSubsystem(): false {
    return false;
  }
  gotGlobalRequest(): boolean {
    return false;
  }
}

test("SSHDirectTCPIPClientEndpoint.existingConnection: the protocol runs over a direct-tcpip channel to host:port", async () => {
  const avatar = new EchoAvatar();
  const client = new connection.SSHConnection();
  const pump = new Pump(client, new connection.SSHConnection(), avatar);
  const p = await connect(SSHDirectTCPIPClientEndpoint.existingConnection(client, "inner.example", 2222), pump);
  assert.deepEqual(avatar.asked, [["inner.example", 2222]]);
  p.transport!.write("ping");
  pump.flush();
  assert.equal(p.received, "ping");
  p.transport!.loseConnection();
  pump.flush();
  const { reason } = await p.lost;
  assert.ok(reason.value instanceof ConnectionDone);
});

test("SSHDirectTCPIPClientEndpoint: a refused open fails connect", async () => {
  const client = new connection.SSHConnection();
  const pump = new Pump(client, new connection.SSHConnection(), new EchoAvatar());
  const d = SSHDirectTCPIPClientEndpoint.existingConnection(client, "h", 9).connect(Factory.forProtocol(Recorder));
  pump.flush();
  await assert.rejects(d.asPromise());
});
