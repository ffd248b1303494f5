import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";

import {
  HAProxyServerEndpoint,
  TCP4ClientEndpoint,
  TCP4ServerEndpoint,
  TCP6ServerEndpoint,
  UNIXClientEndpoint,
  UNIXServerEndpoint,
  clientFromString,
  connectProtocol,
  parseDescription,
  serverFromString,
} from "@twisted-ts/internet/endpoints";
import { ConnectingCancelledError, ConnectionRefusedError, NoProtocol } from "@twisted-ts/internet/error";
import type { IListeningPort } from "@twisted-ts/internet/interfaces";
import { Factory, Protocol } from "@twisted-ts/internet/protocol";
import { NodeReactor } from "@twisted-ts/internet/reactor";
import { freePort, tempDir } from "../_support/peers.js";
import { Recorder, until } from "./_helpers.js";

class Echo extends Protocol {
  override dataReceived(data: Uint8Array): void {
    this.transport.write(data);
  }
}

test("parseDescription splits positional and key=value parts and honours backslash escapes", () => {
  assert.deepEqual(parseDescription("tcp:2222:interface=127.0.0.1"), { args: ["tcp", "2222"], kw: { interface: "127.0.0.1" } });
  assert.deepEqual(parseDescription("tcp6:22:interface=\\:\\:1"), { args: ["tcp6", "22"], kw: { interface: "::1" } });
  assert.deepEqual(parseDescription("a:b:d=1:c"), { args: ["a", "b", "c"], kw: { d: "1" } });
});

test("serverFromString and clientFromString build the endpoints their descriptions name", () => {
  const r = new NodeReactor();
  const s = serverFromString(r, "tcp:2222:interface=127.0.0.1:backlog=7") as TCP4ServerEndpoint;
  assert.ok(s instanceof TCP4ServerEndpoint);
  assert.equal(s.port, 2222);
  assert.equal(s.iface, "127.0.0.1");
  assert.equal(s.backlog, 7);
  assert.ok(serverFromString(r, "tcp6:22") instanceof TCP6ServerEndpoint);
  assert.ok(serverFromString(r, "unix:/tmp/x.sock") instanceof UNIXServerEndpoint);
  const h = serverFromString(r, "haproxy:tcp:2222:interface=127.0.0.1") as HAProxyServerEndpoint;
  assert.ok(h instanceof HAProxyServerEndpoint);
  assert.equal((h.wrappedEndpoint as TCP4ServerEndpoint).iface, "127.0.0.1");
  const c = clientFromString(r, "tcp:host=localhost:port=22:timeout=5") as TCP4ClientEndpoint;
  assert.equal(c.host, "localhost");
  assert.equal(c.port, 22);
  assert.equal(c.timeout, 5);
  const c2 = clientFromString(r, "tcp:example.org:2200") as TCP4ClientEndpoint;
  assert.equal(c2.host, "example.org");
  assert.equal(c2.port, 2200);
  assert.ok(clientFromString(r, "unix:path=/tmp/x.sock") instanceof UNIXClientEndpoint);
  assert.throws(() => serverFromString(r, "bogus:1"), /Unknown endpoint type/);
  assert.throws(() => clientFromString(r, "tcp:host=h:port=notanumber"), /bad port/);
});

test("endpoints: listen then connect fires with the protocol after its connectionMade", async (t) => {
  const r = new NodeReactor();
  const port = (await serverFromString(r, "tcp:0:interface=127.0.0.1").listen(Factory.forProtocol(Echo))) as IListeningPort;
  t.after(() => port.stopListening());
  let madeBeforeFired = false;
  class C extends Recorder {
    override connectionMade(): void {
      super.connectionMade();
      madeBeforeFired = true;
    }
  }
  const p = (await clientFromString(r, `tcp:host=127.0.0.1:port=${port.getHost().port}`).connect(Factory.forProtocol(C))) as C;
  assert.ok(p instanceof C);
  assert.equal(madeBeforeFired, true);
  p.transport.write("via endpoints");
  await until(() => p.text() === "via endpoints");
  p.transport.loseConnection();
  await p.lost;
});

test("endpoints: connectProtocol connects a given instance", async (t) => {
  const r = new NodeReactor();
  const port = (await new TCP4ServerEndpoint(r, 0, 50, "127.0.0.1").listen(Factory.forProtocol(Echo))) as IListeningPort;
  t.after(() => port.stopListening());
  const mine = new Recorder();
  const got = await connectProtocol(new TCP4ClientEndpoint(r, "127.0.0.1", port.getHost().port), mine);
  assert.equal(got, mine);
  mine.transport.loseConnection();
  await mine.lost;
});

test("endpoints: a refused connection errbacks with ConnectionRefusedError; a null buildProtocol gives NoProtocol", async (t) => {
  const r = new NodeReactor();
  const refused = new TCP4ClientEndpoint(r, "127.0.0.1", await freePort());
  await assert.rejects(Promise.resolve(refused.connect(Factory.forProtocol(Recorder))), ConnectionRefusedError);
  const port = (await new TCP4ServerEndpoint(r, 0, 50, "127.0.0.1").listen(Factory.forProtocol(Echo))) as IListeningPort;
  t.after(() => port.stopListening());
  class Nothing extends Factory {
    override buildProtocol(): null {
      return null;
    }
  }
  await assert.rejects(Promise.resolve(new TCP4ClientEndpoint(r, "127.0.0.1", port.getHost().port).connect(new Nothing())), NoProtocol);
});

test("endpoints: cancelling a connection attempt errbacks with ConnectingCancelledError", async (t) => {
  // A listener with a full accept queue, so the attempt stays pending.
  const portNumber = await freePort();
  const py = spawn("/usr/bin/python3", [
    "-c",
    `import socket,time
s=socket.socket(); s.bind(("127.0.0.1", ${portNumber})); s.listen(0)
fill=[]
for i in range(3):
    c=socket.socket(); c.setblocking(False)
    try: c.connect(("127.0.0.1", ${portNumber}))
    except BlockingIOError: pass
    fill.append(c)
print("ready", flush=True)
time.sleep(60)`,
  ]);
  t.after(() => py.kill("SIGKILL"));
  await new Promise<void>((resolve) => py.stdout.on("data", () => resolve()));
  const r = new NodeReactor();
  const d = new TCP4ClientEndpoint(r, "127.0.0.1", portNumber).connect(Factory.forProtocol(Recorder));
  d.cancel();
  await assert.rejects(Promise.resolve(d), (e: unknown) => {
    assert.ok(e instanceof ConnectingCancelledError);
    return true;
  });
});

test("endpoints: listening twice on one port errbacks with CannotListenError", async (t) => {
  const r = new NodeReactor();
  const port = (await new TCP4ServerEndpoint(r, 0, 50, "127.0.0.1").listen(Factory.forProtocol(Echo))) as IListeningPort;
  t.after(() => port.stopListening());
  await assert.rejects(
    Promise.resolve(new TCP4ServerEndpoint(r, port.getHost().port, 50, "127.0.0.1").listen(Factory.forProtocol(Echo))),
    { name: "CannotListenError" },
  );
});

test("endpoints: UNIX server and client endpoints", async (t) => {
  const r = new NodeReactor();
  const path = `${tempDir(t)}/e.sock`;
  const port = (await serverFromString(r, `unix:${path}`).listen(Factory.forProtocol(Echo))) as IListeningPort;
  t.after(() => port.stopListening());
  const p = (await clientFromString(r, `unix:path=${path}`).connect(Factory.forProtocol(Recorder))) as Recorder;
  p.transport.write("unix endpoint");
  await until(() => p.text() === "unix endpoint");
  p.transport.loseConnection();
  await p.lost;
});
