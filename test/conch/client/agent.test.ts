/**
 * client/agent without sockets: connectAgent's refusal without SSH_AUTH_SOCK, Twisted's
 * getPublicKeys/getPublicKey, and the auth-agent@openssh.com channels a client accepts only after
 * acceptAgentForwarding, each connecting to the agent socket (a MemoryReactor records where).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryReactor } from "@twisted-ts/internet/testing";
import { connection } from "@twisted-ts/conch/ssh";
import { error } from "@twisted-ts/conch";
import * as clientAgent from "@twisted-ts/conch/client/agent";
import { keys } from "@twisted-ts/conch/ssh";
import { failureOf, resultOf, wiredAgent } from "../ssh/_agent_fakes.js";

test("connectAgent: without SSH_AUTH_SOCK it fails with AgentError and connects nowhere", () => {
  const reactor = new MemoryReactor();
  const e = failureOf(clientAgent.connectAgent(reactor, ""));
  assert.equal((e as { code?: string }).code, "ERR_SSH_AGENT");
  assert.equal(reactor.unixClients.length, 0);
});

test("connectAgent: connects to the given socket path", () => {
  const reactor = new MemoryReactor();
  void clientAgent.connectAgent(reactor, "/run/agent.sock");
  assert.deepEqual(reactor.unixClients.map((c) => c.path), ["/run/agent.sock"]);
});

test("SSHAgentClient (client): getPublicKeys fetches the agent's keys, getPublicKey hands them out in order", () => {
  const { client } = wiredAgent({ client: new clientAgent.SSHAgentClient() });
  const a = keys.Key.generate("ed25519");
  const b = keys.Key.generate("ecdsa");
  resultOf(client.addIdentity(a));
  resultOf(client.addIdentity(b));
  const c = client as clientAgent.SSHAgentClient;
  resultOf(c.getPublicKeys());
  assert.ok(c.getPublicKey()?.equals(a.public()));
  assert.ok(c.getPublicKey()?.equals(b.public()));
  assert.equal(c.getPublicKey(), undefined);
});

test("auth-agent@openssh.com: refused as an unknown channel type unless acceptAgentForwarding was called", () => {
  const conn = new connection.SSHConnection();
  assert.throws(() => conn.getChannel(clientAgent.AGENT_CHANNEL_TYPE, 1024, 1024, new Uint8Array(0)), (e: unknown) => e instanceof error.ConchError && e.data === error.OPEN_UNKNOWN_CHANNEL_TYPE);
});

test("auth-agent@openssh.com: once accepted, each channel connects to the agent socket when it opens", async () => {
  const reactor = new MemoryReactor();
  const conn = new connection.SSHConnection();
  clientAgent.acceptAgentForwarding(conn, { path: "/tmp/ssh-x/agent.1", reactor });
  const ch = conn.getChannel(clientAgent.AGENT_CHANNEL_TYPE, 65536, 32768, new Uint8Array(0));
  assert.ok(ch instanceof clientAgent.SSHAgentForwardingChannel);
  assert.equal(ch.name, "auth-agent@openssh.com");
  ch.channelOpen(new Uint8Array(0));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(reactor.unixClients.map((c) => c.path), ["/tmp/ssh-x/agent.1"]);
});
