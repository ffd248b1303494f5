/**
 * listenAgentSocket on the real reactor: a 0700 directory, a 0600 socket, both given to `owner`
 * (when root), served to connectAgent, and removed by close().
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, statSync } from "node:fs";
import { reactor } from "@twisted-ts/internet/reactor";
import { agent, keys } from "@twisted-ts/conch/ssh";
import { connectAgent } from "@twisted-ts/conch/client/agent";
import { tempDir } from "../../_support/peers.js";

test("listenAgentSocket: a 0600 socket in a fresh 0700 directory that connectAgent reaches; close() removes both", async (t) => {
  const parent = tempDir(t, "twisted-ts-agentsock-");
  const factory = new agent.SSHAgentFactory();
  const sock = agent.listenAgentSocket(factory, { parent });
  t.after(() => sock.close());
  assert.ok(sock.directory.startsWith(`${parent}/ssh-`));
  assert.equal(sock.path, `${sock.directory}/agent.${process.pid}`);
  assert.equal(statSync(sock.directory).mode & 0o777, 0o700);
  assert.ok(statSync(sock.path).isSocket());
  assert.equal(statSync(sock.path).mode & 0o777, 0o600);
  const client = await connectAgent(reactor, sock.path).asPromise();
  await client.addIdentity(keys.Key.generate("ed25519"), "k").asPromise();
  assert.deepEqual((await client.requestIdentities().asPromise()).map(([, c]) => c), ["k"]);
  client.transport.loseConnection();
  sock.close();
  sock.close();
  assert.equal(existsSync(sock.directory), false);
});

test("listenAgentSocket: with an owner (as root) the directory and socket belong to that account", { skip: process.getuid?.() !== 0 ? "needs root" : false }, (t) => {
  const parent = tempDir(t, "twisted-ts-agentsock-");
  const sock = agent.listenAgentSocket(new agent.SSHAgentFactory(), { parent, owner: { uid: 65534, gid: 65534 } });
  t.after(() => sock.close());
  for (const p of [sock.directory, sock.path]) {
    const st = statSync(p);
    assert.deepEqual([st.uid, st.gid], [65534, 65534], p);
  }
});

test("listenAgentSocket: a parent whose socket path would pass MAX_UNIX_SOCKET_PATH is refused with AgentError, leaving nothing behind", (t) => {
  const parent = tempDir(t, "twisted-ts-agentsock-");
  const deep = `${parent}/${"d".repeat(agent.MAX_UNIX_SOCKET_PATH)}`;
  assert.throws(() => agent.listenAgentSocket(new agent.SSHAgentFactory(), { parent: deep }), (e: unknown) => e instanceof agent.AgentError && /107-byte limit/.test(e.message));
  assert.equal(existsSync(deep), false);
});
