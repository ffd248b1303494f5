/**
 * The agent protocol in memory: SSHAgentClient against SSHAgentServer (wired synchronously, key
 * lifetimes and unlock delays on a Clock), and each side fed exact bytes through a StringTransport.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Deferred } from "@twisted-ts/internet/defer";
import { StringTransport } from "@twisted-ts/internet/testing";
import { common, keys, agent } from "@twisted-ts/conch/ssh";
import { failureOf, resultOf, wiredAgent } from "./_agent_fakes.js";

const { NS, SSHReader } = common;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const frame = (type: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array => agent.frameMessage(type, payload);

const keyCache = new Map<string, keys.Key>();
function key(kind: "ed25519" | "ecdsa" | "rsa"): keys.Key {
  let k = keyCache.get(kind);
  if (k === undefined) keyCache.set(kind, (k = keys.Key.generate(kind, kind === "rsa" ? { bits: 2048 } : {})));
  return k;
}

function sigAlg(signature: Uint8Array): string {
  return Buffer.from(new SSHReader(signature).string()).toString();
}

test("REQUEST_IDENTITIES: an empty agent lists nothing; added keys are listed in order with their comments", () => {
  const { client } = wiredAgent();
  assert.deepEqual(resultOf(client.requestIdentities()), []);
  resultOf(client.addIdentity(key("ed25519"), "ed"));
  resultOf(client.addIdentity(key("ecdsa"), "ec"));
  resultOf(client.addIdentity(key("rsa").privateBlob(), "rsa"));
  const ids = resultOf(client.requestIdentities());
  assert.deepEqual(
    ids.map(([b, c]) => [hex(b), c]),
    [
      [hex(key("ed25519").blob()), "ed"],
      [hex(key("ecdsa").blob()), "ec"],
      [hex(key("rsa").blob()), "rsa"],
    ],
  );
});

test("ADD_IDENTITY: adding a key again replaces its comment, not its place in the count", () => {
  const { client, factory } = wiredAgent();
  resultOf(client.addIdentity(key("ed25519"), "one"));
  resultOf(client.addIdentity(key("ed25519"), "two"));
  assert.equal(factory.keyring.size, 1);
  assert.equal(resultOf(client.requestIdentities())[0]![1], "two");
});

for (const kind of ["ed25519", "ecdsa", "rsa"] as const) {
  test(`SIGN_REQUEST: an ${kind} key signs and the signature verifies`, () => {
    const { client } = wiredAgent();
    resultOf(client.addIdentity(key(kind)));
    const sig = resultOf(client.signData(key(kind).blob(), "data to sign"));
    assert.ok(key(kind).public().verify(sig, "data to sign"));
  });
}

test("SIGN_REQUEST: RSA follows the flags: none is ssh-rsa, then rsa-sha2-256 and rsa-sha2-512", () => {
  const { client } = wiredAgent();
  resultOf(client.addIdentity(key("rsa")));
  const blob = key("rsa").blob();
  const cases: Array<[number, string]> = [
    [0, "ssh-rsa"],
    [agent.SSH_AGENT_RSA_SHA2_256, "rsa-sha2-256"],
    [agent.SSH_AGENT_RSA_SHA2_512, "rsa-sha2-512"],
  ];
  for (const [flags, alg] of cases) {
    const sig = resultOf(client.signData(blob, "x", flags));
    assert.equal(sigAlg(sig), alg);
    assert.ok(key("rsa").public().verify(sig, "x"));
  }
  assert.equal(agent.signFlagsFor("rsa-sha2-512"), agent.SSH_AGENT_RSA_SHA2_512);
  assert.equal(agent.signFlagsFor("ssh-ed25519"), 0);
});

test("SIGN_REQUEST: a key the agent does not hold fails with AgentFailureError", () => {
  const { client } = wiredAgent();
  const e = failureOf(client.signData(key("ed25519").blob(), "x"));
  assert.ok(e instanceof agent.AgentFailureError);
  assert.equal((e as agent.AgentFailureError).code, "ERR_SSH_AGENT_FAILURE");
  assert.equal((e as agent.AgentFailureError).requestType, agent.AGENTC_SIGN_REQUEST);
});

test("REMOVE_IDENTITY and REMOVE_ALL_IDENTITIES forget keys; removing an unknown key fails", () => {
  const { client } = wiredAgent();
  resultOf(client.addIdentity(key("ed25519")));
  resultOf(client.addIdentity(key("ecdsa")));
  resultOf(client.removeIdentity(key("ed25519")));
  assert.deepEqual(resultOf(client.requestIdentities()).map(([b]) => hex(b)), [hex(key("ecdsa").blob())]);
  assert.ok(failureOf(client.removeIdentity(key("ed25519").blob())) instanceof agent.AgentFailureError);
  resultOf(client.removeAllIdentities());
  assert.deepEqual(resultOf(client.requestIdentities()), []);
});

test("ADD_ID_CONSTRAINED: a key with a lifetime is forgotten when it runs out on the clock", () => {
  const { client, clock } = wiredAgent();
  resultOf(client.addIdentity(key("ed25519"), "short", { lifetime: 10 }));
  resultOf(client.addIdentity(key("ecdsa"), "long"));
  clock.advance(9.5);
  assert.equal(resultOf(client.requestIdentities()).length, 2);
  clock.advance(0.5);
  assert.deepEqual(resultOf(client.requestIdentities()).map(([, c]) => c), ["long"]);
  assert.equal(clock.getDelayedCalls().length, 0);
});

test("ADD_ID_CONSTRAINED: re-adding a key without a lifetime cancels its timer; removing all cancels every timer", () => {
  const { client, clock } = wiredAgent();
  resultOf(client.addIdentity(key("ed25519"), "", { lifetime: 5 }));
  resultOf(client.addIdentity(key("ed25519"), ""));
  assert.equal(clock.getDelayedCalls().length, 0);
  resultOf(client.addIdentity(key("ecdsa"), "", { lifetime: 5 }));
  resultOf(client.removeAllIdentities());
  assert.equal(clock.getDelayedCalls().length, 0);
});

test("ADD_ID_CONSTRAINED: a confirm-constrained key is refused by default (there is no askpass)", () => {
  const { client } = wiredAgent();
  resultOf(client.addIdentity(key("ed25519"), "c", { confirm: true }));
  assert.ok(failureOf(client.signData(key("ed25519").blob(), "x")) instanceof agent.AgentFailureError);
});

test("ADD_ID_CONSTRAINED: the confirm callback decides; replies stay in request order while it is pending", () => {
  let answer = new Deferred<boolean>();
  const asked: string[] = [];
  const { client } = wiredAgent({
    confirm: (entry) => {
      asked.push(entry.comment);
      return answer;
    },
  });
  resultOf(client.addIdentity(key("ed25519"), "c", { confirm: true }));
  const order: string[] = [];
  const sig = client.signData(key("ed25519").blob(), "x").addCallback((s) => (order.push("sign"), s));
  const list = client.requestIdentities().addCallback((l) => (order.push("list"), l));
  assert.deepEqual(order, []);
  answer.callback(true);
  assert.deepEqual(order, ["sign", "list"]);
  assert.ok(key("ed25519").public().verify(resultOf(sig), "x"));
  assert.equal(resultOf(list).length, 1);
  answer = new Deferred<boolean>();
  const refused = client.signData(key("ed25519").blob(), "y");
  answer.callback(false);
  assert.ok(failureOf(refused) instanceof agent.AgentFailureError);
  assert.deepEqual(asked, ["c", "c"]);
});

test("ADD_ID_CONSTRAINED: an unknown constraint is refused and the key is not added", () => {
  const t = new StringTransport();
  const factory = new agent.SSHAgentFactory();
  const server = factory.buildProtocol({ type: "UNIX", family: "UNIX", name: null, host: "" } as never)!;
  server.makeConnection(t);
  server.dataReceived(frame(agent.AGENTC_ADD_ID_CONSTRAINED, Buffer.concat([key("ed25519").privateBlob(), NS("c"), Uint8Array.of(7)])));
  assert.equal(hex(t.value()), "0000000105");
  assert.equal(factory.keyring.size, 0);
  factory.keyring.stop();
});

test("LOCK / UNLOCK: a locked agent lists nothing, signs and adds nothing; the right passphrase brings the keys back", () => {
  const { client, clock } = wiredAgent();
  resultOf(client.addIdentity(key("ed25519"), "k"));
  resultOf(client.lock("sesame"));
  assert.deepEqual(resultOf(client.requestIdentities()), []);
  assert.ok(failureOf(client.signData(key("ed25519").blob(), "x")) instanceof agent.AgentFailureError);
  assert.ok(failureOf(client.addIdentity(key("ecdsa"))) instanceof agent.AgentFailureError);
  assert.ok(failureOf(client.lock("again")) instanceof agent.AgentFailureError, "locking twice fails");
  const wrong = client.unlock("open sesame");
  assert.equal(wrong.called, false, "a wrong passphrase is answered only after a delay");
  clock.advance(agent.UNLOCK_FAILURE_DELAY);
  assert.ok(failureOf(wrong) instanceof agent.AgentFailureError);
  resultOf(client.unlock("sesame"));
  assert.deepEqual(resultOf(client.requestIdentities()).map(([, c]) => c), ["k"]);
  assert.ok(failureOf(client.unlock("sesame")) instanceof agent.AgentFailureError, "unlocking an unlocked agent fails");
});

test("AgentKeyring: only a keyed hash of the lock passphrase is kept", () => {
  const ring = new agent.AgentKeyring(new (class {
    seconds = () => 0;
    callLater = () => { throw new Error("no timers"); };
    getDelayedCalls = () => [];
  })());
  ring.lock("hunter2");
  assert.ok(!JSON.stringify(Object.values(ring)).includes("hunter2"));
  assert.equal(ring.unlock("hunter3"), false);
  assert.equal(ring.failedUnlocks, 1);
  assert.equal(ring.unlock("hunter2"), true);
});

test("an unknown message, an extension and a smartcard request get SSH_AGENT_FAILURE", () => {
  const t = new StringTransport();
  const server = new agent.SSHAgentServer(new agent.AgentKeyring(new (class {
    seconds = () => 0;
    callLater = () => { throw new Error("no timers"); };
    getDelayedCalls = () => [];
  })()));
  server.makeConnection(t);
  server.dataReceived(Buffer.concat([frame(99), frame(agent.AGENTC_EXTENSION, NS("query")), frame(agent.AGENTC_ADD_SMARTCARD_KEY, NS("id"))]));
  assert.equal(hex(t.value()), "0000000105".repeat(3));
  assert.equal(t.disconnecting, false);
});

test("SSHAgentServer: malformed requests and key fields that do not belong together get SSH_AGENT_FAILURE", () => {
  const { server, serverTransport, factory } = wiredAgent();
  serverTransport.peer = undefined;
  serverTransport.clear();
  const bad = key("ed25519").privateBlob().slice();
  bad[bad.length - 1]! ^= 1; // the private half's copy of the public key
  server.dataReceived(Buffer.concat([
    frame(agent.AGENTC_SIGN_REQUEST, Uint8Array.of(0, 0, 1)),
    frame(agent.AGENTC_ADD_IDENTITY, Buffer.concat([bad, NS("")])),
    frame(agent.AGENTC_ADD_IDENTITY, NS("ssh-unknown")),
  ]));
  assert.equal(hex(serverTransport.value()), "0000000105".repeat(3));
  assert.equal(factory.keyring.size, 0);
});

const IDENTITIES = frame(agent.AGENTC_REQUEST_IDENTITIES);

for (const [how, split] of [
  ["whole", (b: Uint8Array) => [b]],
  ["split in two", (b: Uint8Array) => [b.subarray(0, 3), b.subarray(3)]],
  ["one byte at a time", (b: Uint8Array) => Array.from(b, (_, i) => b.subarray(i, i + 1))],
] as const) {
  test(`framing: the server reads requests fed ${how}`, () => {
    const t = new StringTransport();
    const factory = new agent.SSHAgentFactory();
    const server = factory.buildProtocol({ type: "UNIX", family: "UNIX", name: null, host: "" } as never)!;
    server.makeConnection(t);
    for (const piece of split(Buffer.concat([IDENTITIES, IDENTITIES]))) server.dataReceived(piece);
    assert.equal(hex(t.value()), "000000050c00000000".repeat(2));
  });

  test(`framing: the client reads replies fed ${how}`, () => {
    const t = new StringTransport();
    const client = new agent.SSHAgentClient();
    client.makeConnection(t);
    const d1 = client.requestIdentities();
    const d2 = client.signData(Uint8Array.of(1), "x");
    assert.equal(hex(t.value()), hex(Buffer.concat([IDENTITIES, frame(agent.AGENTC_SIGN_REQUEST, Buffer.concat([NS(Uint8Array.of(1)), NS("x"), Uint8Array.of(0, 0, 0, 0)]))])));
    const reply = Buffer.concat([frame(agent.AGENT_IDENTITIES_ANSWER, Buffer.concat([Uint8Array.of(0, 0, 0, 1), NS("blob"), NS("comment")])), frame(agent.AGENT_SIGN_RESPONSE, NS("sig"))]);
    for (const piece of split(reply)) client.dataReceived(piece);
    assert.deepEqual(resultOf(d1).map(([b, c]) => [Buffer.from(b).toString(), c]), [["blob", "comment"]]);
    assert.equal(Buffer.from(resultOf(d2)).toString(), "sig");
  });
}

test("framing: AgentFrameParser takes a message of exactly the limit and refuses one byte more before buffering it", () => {
  const p = new agent.AgentFrameParser(16);
  const ok = new Uint8Array(20);
  new DataView(ok.buffer).setUint32(0, 16);
  assert.equal(p.feed(ok).length, 1);
  const big = Uint8Array.of(0, 0, 0, 17, 1);
  assert.throws(() => p.feed(big), agent.AgentMessageTooLongError);
  assert.equal(p.buffered, 4, "only the length was held");
  assert.throws(() => new agent.AgentFrameParser().feed(Uint8Array.of(0, 0, 0, 0)), /length 0/);
});

test("framing: an oversize request closes the server's connection without an answer", () => {
  const t = new StringTransport();
  const server = new agent.SSHAgentServer();
  server.makeConnection(t);
  server.dataReceived(Uint8Array.of(0, 4, 0, 1, agent.AGENTC_REQUEST_IDENTITIES));
  assert.equal(agent.MAX_AGENT_MESSAGE, 256 * 1024);
  assert.equal(t.value().length, 0);
  assert.equal(t.disconnecting, true);
});

test("framing: an oversize reply fails the pending requests with AgentMessageTooLongError and closes the connection", () => {
  const { client, clientTransport } = wiredAgent();
  clientTransport.peer = undefined;
  const d = client.requestIdentities();
  client.dataReceived(Uint8Array.of(0, 4, 0, 1));
  assert.ok(failureOf(d) instanceof agent.AgentMessageTooLongError);
  assert.equal(clientTransport.disconnecting, true);
  assert.ok(failureOf(client.requestIdentities()) instanceof agent.AgentMessageTooLongError, "later requests fail at once");
});

test("a reply to no request closes the client's connection", () => {
  const t = new StringTransport();
  const client = new agent.SSHAgentClient();
  client.makeConnection(t);
  client.dataReceived(frame(agent.AGENT_SUCCESS));
  assert.equal(t.disconnecting, true);
});

test("an unexpected reply type fails the request with AgentProtocolError", () => {
  const t = new StringTransport();
  const client = new agent.SSHAgentClient();
  client.makeConnection(t);
  const d = client.requestIdentities();
  client.dataReceived(frame(agent.AGENT_SUCCESS));
  assert.ok(failureOf(d) instanceof agent.AgentProtocolError);
  const d2 = client.requestIdentities();
  client.dataReceived(frame(agent.AGENT_IDENTITIES_ANSWER, Uint8Array.of(0xff, 0xff, 0xff, 0xff)));
  assert.match(failureOf(d2).message, /claims 4294967295 identities/);
});

test("losing the connection fails every pending request with AgentConnectionLostError", () => {
  const { client, clientTransport, server } = wiredAgent({ confirm: () => new Deferred<boolean>() });
  resultOf(client.addIdentity(key("ed25519"), "", { confirm: true }));
  const pending = [client.signData(key("ed25519").blob(), "x"), client.requestIdentities()];
  clientTransport.loseConnection();
  for (const d of pending) assert.ok(failureOf(d) instanceof agent.AgentConnectionLostError);
  assert.equal(server.connected, false);
});

test("SSHAgentServer: more requests waiting than MAX_AGENT_QUEUED_REQUESTS close the connection", () => {
  const { client, serverTransport } = wiredAgent({ confirm: () => new Deferred<boolean>() });
  resultOf(client.addIdentity(key("ed25519"), "", { confirm: true }));
  const ds: Array<Deferred<unknown>> = [client.signData(key("ed25519").blob(), "x")];
  for (let i = 0; i <= agent.MAX_AGENT_QUEUED_REQUESTS; i++) ds.push(client.requestIdentities());
  assert.equal(serverTransport.disconnecting, true);
  for (const d of ds) assert.ok(failureOf(d) instanceof agent.AgentConnectionLostError);
});

test("addIdentity: a lifetime that is not a whole number of seconds is refused before anything is sent", () => {
  const { client, clientTransport } = wiredAgent();
  clientTransport.clear();
  assert.ok(failureOf(client.addIdentity(key("ed25519"), "", { lifetime: 0.5 })) instanceof RangeError);
  assert.equal(clientTransport.value().length, 0);
});
