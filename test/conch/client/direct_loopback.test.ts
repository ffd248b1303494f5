/**
 * client/direct's SSHClientTransport (the default client's host key check and login) against our
 * server, pumped in memory on a task.Clock: which methods the default client uses with and without
 * a terminal.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CancelledError, Deferred } from "@twisted-ts/internet/defer";
import type { IProtocol } from "@twisted-ts/internet/interfaces";
import { IPv4Address } from "@twisted-ts/internet/address";
import { Clock } from "@twisted-ts/internet/task";
import { connectedServerAndClient } from "@twisted-ts/internet/testing";
import { checkers as cchecks, portal as cportal } from "@twisted-ts/cred";
import { AuthenticationFailed, connect, SSHClientTransport, type ConnectOptions } from "@twisted-ts/conch/client/direct";
import { UserRejectedKey } from "@twisted-ts/conch/error";
import { factory, keys, transport } from "@twisted-ts/conch/ssh";
import { ScriptedUI } from "./_scripted_ui.js";
import { tempDir } from "../../_support/peers.js";
import { TestRealm, type TestAvatar } from "../ssh/_userauth_fakes.js";

const hostKey = keys.Key.generate("ed25519");


function knownHosts(t: TestContext, known = true): string {
  const path = join(tempDir(t), "known_hosts");
  writeFileSync(path, known ? `[127.0.0.1]:2222 ${hostKey.public().toString("openssh")}\n` : "");
  return path;
}

/** Logs in with `options` against a server whose portal has `checkers`; returns the outcome. */
async function login(options: Omit<ConnectOptions, "user" | "hostname" | "port">, checkers: cchecks.ICredentialsChecker[]) {
  const clock = new Clock();
  const realm = new TestRealm();
  const f = new factory.SSHFactory();
  f.moduliPath = undefined;
  f.privateKeys = { [hostKey.sshType()]: hostKey };
  f.portal = new cportal.Portal(realm, checkers);
  const server = f.buildProtocol(new IPv4Address("TCP", "127.0.0.1", 2222))!;
  const client = new SSHClientTransport({ user: "alice", hostname: "127.0.0.1", port: 2222, ...options });
  server.clock = clock;
  client.clock = clock;
  // ML-KEM (the default key exchange) loads on a process's first exchange; the pump below is synchronous.
  await transport.loadKeyExchange("mlkem768x25519-sha256");
  const lb = connectedServerAndClient(server, client, { clock });
  let outcome: unknown = undefined;
  client.connectionReady.addCallbacks(
    (c) => void (outcome = c),
    (f) => void (outcome = f.value),
  );
  for (let i = 0; i < 20 && outcome === undefined; i++) {
    lb.pump.flush();
    clock.advance(1);
  }
  lb.pump.flush();
  return { outcome, realm, client };
}

const passwords = () => new cchecks.InMemoryUsernamePasswordDatabaseDontUse({ alice: "sesame" });

test("a password asked on the terminal logs in; a wrong one is asked again", async (t) => {
  const ui = new ScriptedUI(["wrong", "sesame"]);
  const { outcome, realm } = await login({ knownHosts: knownHosts(t), policy: "strict", ui }, [passwords()]);
  assert.equal((outcome as { name?: string }).name, "ssh-connection");
  assert.deepEqual(ui.asked, [
    ["alice@127.0.0.1's password: ", false],
    ["alice@127.0.0.1's password: ", false],
  ]);
  assert.equal((realm.avatars[0] as TestAvatar).mind.method, "password");
});

test("keyboard-interactive prompts are answered on the terminal", async (t) => {
  const ui = new ScriptedUI(["sesame"]);
  const pam = new cchecks.PAMPasswordChecker(passwords());
  const { outcome, realm } = await login({ knownHosts: knownHosts(t), policy: "strict", ui }, [pam]);
  assert.equal((outcome as { name?: string }).name, "ssh-connection");
  assert.equal(ui.asked.length, 1);
  assert.equal(ui.asked[0]![1], false, "the password prompt is not echoed");
  assert.equal((realm.avatars[0] as TestAvatar).mind.method, "keyboard-interactive");
});

test("without a terminal nothing is asked and the login fails with AuthenticationFailed", async (t) => {
  const { outcome } = await login({ knownHosts: knownHosts(t), policy: "strict" }, [passwords(), new cchecks.PAMPasswordChecker(passwords())]);
  assert.ok(outcome instanceof AuthenticationFailed, String(outcome));
  assert.match(outcome.message, /^Permission denied/);
});

test("a password given in the options is sent without a terminal", async (t) => {
  const { outcome } = await login({ knownHosts: knownHosts(t), policy: "strict", password: "sesame" }, [passwords()]);
  assert.equal((outcome as { name?: string }).name, "ssh-connection");
});

test("an unknown host key answered no on the terminal fails with UserRejectedKey before any login", async (t) => {
  const ui = new ScriptedUI(["sesame"], false);
  const { outcome, realm } = await login({ knownHosts: knownHosts(t, false), ui }, [passwords()]);
  assert.ok(outcome instanceof UserRejectedKey, String(outcome));
  assert.equal(realm.avatars.length, 0);
  assert.match(ui.asked[0]![0], /can't be established/);
});

test("cancelling connect while the endpoint is still connecting cancels the endpoint's attempt", async (t) => {
  let cancelled = false;
  const endpoint = { connect: () => new Deferred<IProtocol>(() => void (cancelled = true)) };
  const d = connect(endpoint, { user: "alice", hostname: "h", knownHosts: knownHosts(t) });
  d.cancel();
  assert.equal(cancelled, true);
  await assert.rejects(d.asPromise(), CancelledError);
});
