/**
 * An SSH agent and its client in one process: our agent (`SSHAgentFactory`) listens on a private
 * UNIX socket (a 0700 directory, as sshd's), and `connectAgent` talks to it as `ssh-add` would —
 * add a key with a lifetime, list, sign and verify, lock, unlock. Point `SSH_AUTH_SOCK` at the
 * printed path and OpenSSH's `ssh-add -l` lists the same key while it runs (pass `--wait`).
 *
 *     npm run build && node examples/dist/conch/agentdemo.js
 */
import { reactor } from "@twisted-ts/internet/reactor";
import { connectAgent } from "@twisted-ts/conch/client/agent";
import { agent, keys } from "@twisted-ts/conch/ssh";

const factory = new agent.SSHAgentFactory();
const sock = agent.listenAgentSocket(factory);
console.log(`SSH_AUTH_SOCK=${sock.path}`);
try {
  const client = await connectAgent(reactor, sock.path).asPromise();
  const key = keys.Key.generate("ed25519");
  await client.addIdentity(key, "demo key", { lifetime: 300 }).asPromise();
  for (const [blob, comment] of await client.requestIdentities().asPromise()) {
    console.log(`the agent holds ${comment}: ${keys.Key.fromString(blob).fingerprint("sha256-base64")}`);
  }
  const signature = await client.signData(key.blob(), "hello, agent").asPromise();
  console.log(`the agent's signature verifies: ${key.public().verify(signature, "hello, agent")}`);
  await client.lock("demo passphrase").asPromise();
  console.log(`locked, it lists ${(await client.requestIdentities().asPromise()).length} keys`);
  await client.unlock("demo passphrase").asPromise();
  console.log(`unlocked, it lists ${(await client.requestIdentities().asPromise()).length} key`);
  if (process.argv.includes("--wait")) await new Promise((r) => setTimeout(r, 60_000));
  client.transport.loseConnection();
} finally {
  sock.close();
}
