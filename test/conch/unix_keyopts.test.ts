/**
 * The Unix realm under a login's authorized_keys options: real processes get the forced command,
 * SSH_ORIGINAL_COMMAND and `environment=` through `setServerEnv`, although a client may not set
 * SSH_* variables itself. Client and server connections are joined in memory.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { userInfo } from "node:os";
import { checkers, unix } from "@twisted-ts/conch";
import { authopt, common, connection, service, session } from "@twisted-ts/conch/ssh";
import { Pump, text } from "./ssh/_connection_fakes.js";

const me = userInfo().username;

/** Opens a session, sends `requests` (each wanting a reply), then EOF; resolves once it closed. */
async function run(
  keyOptions: string,
  requests: Array<[string, Uint8Array]>,
  settings: Partial<authopt.ServerAuthSettings> = {},
): Promise<{ ch: session.SSHSessionClientChannel; replies: string[] }> {
  const client = new connection.SSHConnection();
  const server = new connection.SSHConnection();
  const pump = new Pump(client, server, new unix.UnixConchUser(me));
  (pump.serverTransport as service.SSHServiceTransport).authOptions = authopt.authOptionsFor(checkers.parseAuthorizedKeyOptions(keyOptions), settings);
  const ch = new session.SSHSessionClientChannel({ conn: client });
  client.openChannel(ch);
  pump.flush();
  const replies: string[] = [];
  for (const [name, data] of requests) {
    client.sendRequest(ch, name, data, true).addCallbacks(
      () => void replies.push(`${name} ok`),
      () => void replies.push(`${name} refused`),
    );
  }
  client.sendEOF(ch);
  await pump.until(() => ch.isClosed);
  return { ch, replies };
}

test("UnixSession: the forced command runs in the user's shell with the client's command as SSH_ORIGINAL_COMMAND", async () => {
  const { ch, replies } = await run('command="echo forced; echo \\"orig=$SSH_ORIGINAL_COMMAND\\""', [
    ["env", session.packRequest_env("SSH_ORIGINAL_COMMAND", "forged")],
    ["exec", common.NS("echo hi")],
  ]);
  assert.deepEqual(replies, ["env refused", "exec ok"]);
  assert.equal(text(ch.stdout), "forced\norig=echo hi\n");
  assert.equal(ch.exitStatus, 0);
});

test("UnixSession: environment= reaches the process under PermitUserEnvironment, and only then", async () => {
  const opts = 'environment="KEYOPT_VAR=from key"';
  const on = await run(opts, [["exec", common.NS('echo "[$KEYOPT_VAR]"')]], { permitUserEnvironment: true });
  assert.equal(text(on.ch.stdout), "[from key]\n");
  const off = await run(opts, [["exec", common.NS('echo "[$KEYOPT_VAR]"')]]);
  assert.equal(text(off.ch.stdout), "[]\n");
});

test("UnixSession and InProcessSession: setServerEnv takes names setEnv refuses", () => {
  const ch = { getPeer: () => ({ type: "TCP", family: "IPv4", host: "127.0.0.1", port: 1 }), getHost: () => ({ type: "TCP", family: "IPv4", host: "127.0.0.1", port: 22 }) };
  const u = new unix.UnixSession(new unix.UnixConchUser(me), ch as never);
  assert.throws(() => u.setEnv("SSH_ORIGINAL_COMMAND", "x"));
  u.setServerEnv("SSH_ORIGINAL_COMMAND", "ls");
  u.setServerEnv("LD_PRELOAD", "/lib/x.so");
  assert.equal(u.environment()["SSH_ORIGINAL_COMMAND"], "ls");
  assert.equal(u.environment()["LD_PRELOAD"], "/lib/x.so", "environment= may set anything once the server permits user environments, as sshd");
  const p = new unix.InProcessSession(new unix.InProcessConchUser("alice"), ch as never);
  assert.throws(() => p.setEnv("SSH_ORIGINAL_COMMAND", "x"));
  p.setServerEnv("SSH_ORIGINAL_COMMAND", "ls");
  assert.deepEqual(p.env, { SSH_ORIGINAL_COMMAND: "ls" });
});
