/**
 * Issue 13: the SSH agent against OpenSSH. (a) A real `ssh-agent`: our client logs in to a real
 * sshd with keys only from it (a plain RSA key; an RSA user certificate), and our SSHAgentClient
 * lists, signs, adds, removes, locks and unlocks. (b) Our agent server: OpenSSH's `ssh-add` and `ssh` use it. (c) Agent forwarding both
 * ways: `ssh -A` to our server (Unix realm, as twts-alice), and our client with forwarding to sshd,
 * each running `ssh-add -l` remotely.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { reactor } from "@twisted-ts/internet/reactor";
import { unix } from "@twisted-ts/conch";
import { agent, keys, common } from "@twisted-ts/conch/ssh";
import { connectAgent, acceptAgentForwarding, requestAgentForwarding } from "@twisted-ts/conch/client/agent";
import { missing, requirePeer, runCommand, spawnPeer, tempDir } from "../_support/peers.js";
import { sshKeygen, startSshd } from "../_support/sshd.js";
import { ensureTestUser } from "../_support/users.js";
import { SessionChannel, connectClient, within } from "./_client_support.js";
import { sshClientArgs, startOurServer } from "./_server_support.js";

const ENV = { PATH: "/usr/bin:/bin", LANG: "C.UTF-8" };

/** `SHA256:…` as ssh-add -l prints it. */
const fp = (k: keys.Key): string => `SHA256:${k.fingerprint("sha256-base64").replace(/=+$/, "")}`;
const pubOf = (line: string): keys.Key => keys.Key.fromString(line);

async function waitFor(cond: () => boolean, what: string, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A real `ssh-agent -D` on a socket in a temp dir, killed when the test ends. */
async function startSshAgent(t: TestContext, dir: string): Promise<string | undefined> {
  const bin = requirePeer(t, "ssh-agent", "openssh-client");
  if (bin === undefined) return undefined;
  const sock = join(dir, "agent.sock");
  const child = spawnPeer(t, bin, ["-D", "-a", sock], ENV);
  await waitFor(() => existsSync(sock), `ssh-agent's socket (${child.output()})`);
  return sock;
}

async function sshAdd(t: TestContext, sock: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string }> {
  const bin = requirePeer(t, "ssh-add", "openssh-client");
  if (bin === undefined) throw new Error("no ssh-add");
  const r = await runCommand(bin, args, { env: { ...ENV, SSH_AUTH_SOCK: sock, ...env }, timeoutMs: 30_000 });
  return { code: r.code, out: r.stdout.toString() + r.stderr };
}

test("a real ssh-agent: our client logs in to sshd with keys only from the agent (an unknown ed25519 key, then RSA signed with rsa-sha2)", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, "twisted-ts-agent-");
  const sock = await startSshAgent(t, dir);
  if (sock === undefined) return;
  const [edPath] = await sshKeygen(dir, "id_other", "ed25519");
  const [rsaPath, rsaPub] = await sshKeygen(dir, "id_rsa", "rsa");
  assert.equal((await sshAdd(t, sock, [edPath])).code, 0);
  assert.equal((await sshAdd(t, sock, [rsaPath])).code, 0);
  const sshd = await startSshd(t, { authorizedKeys: [rsaPub] });
  if (sshd === undefined) return;
  const keyAgent = await within(connectAgent(reactor, sock).asPromise(), 10_000, "connecting to ssh-agent");
  t.after(() => keyAgent.transport.loseConnection());
  const client = await connectClient({ port: sshd.port, user: sshd.user, keyAgent, hostKey: sshd.hostKeys["ed25519"], peerLog: sshd.output });
  t.after(() => client.close());
  const r = await client.exec("echo logged-in-by-agent");
  assert.equal(r.stdout, "logged-in-by-agent\n");
  assert.match(sshd.output(), /Accepted publickey .* RSA SHA256:/);
});

test("a real ssh-agent: SSHAgentClient lists, signs, adds, removes, locks and unlocks", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, "twisted-ts-agent-");
  const sock = await startSshAgent(t, dir);
  if (sock === undefined) return;
  const [edPath, edPub] = await sshKeygen(dir, "id_ed", "ed25519");
  assert.equal((await sshAdd(t, sock, [edPath])).code, 0);
  const client = await within(connectAgent(reactor, sock).asPromise(), 10_000, "connecting to ssh-agent");
  t.after(() => client.transport.loseConnection());
  const ed = pubOf(edPub);

  const listed = await client.requestIdentities().asPromise();
  assert.deepEqual(listed.map(([b, c]) => [Buffer.from(b).toString("hex"), c]), [[Buffer.from(ed.blob()).toString("hex"), "id_ed"]]);
  const sig = await client.signData(ed.blob(), "sign me").asPromise();
  assert.ok(ed.verify(sig, "sign me"), "ssh-agent's ed25519 signature verifies");

  const rsa = keys.Key.generate("rsa", { bits: 2048 });
  const ec = keys.Key.generate("ecdsa");
  await client.addIdentity(rsa, "added rsa").asPromise();
  await client.addIdentity(ec, "added ec", { lifetime: 600 }).asPromise();
  const l = (await sshAdd(t, sock, ["-l"])).out;
  for (const [k, c] of [[rsa, "added rsa"], [ec, "added ec"]] as const) assert.match(l, new RegExp(`${fp(k).replace(/[+/]/g, "\\$&")} ${c}`));
  for (const [flag, alg] of [[agent.SSH_AGENT_RSA_SHA2_256, "rsa-sha2-256"], [agent.SSH_AGENT_RSA_SHA2_512, "rsa-sha2-512"]] as const) {
    const s = await client.signData(rsa.blob(), "data", flag).asPromise();
    assert.equal(Buffer.from(new common.SSHReader(s).string()).toString(), alg);
    assert.ok(rsa.verify(s, "data"));
  }
  assert.ok(ec.verify(await client.signData(ec.blob(), "data").asPromise(), "data"));

  await client.removeIdentity(rsa).asPromise();
  await assert.rejects(client.removeIdentity(rsa).asPromise(), agent.AgentFailureError);
  assert.doesNotMatch((await sshAdd(t, sock, ["-l"])).out, /added rsa/);

  await client.lock("lock phrase").asPromise();
  assert.deepEqual(await client.requestIdentities().asPromise(), []);
  await assert.rejects(client.signData(ed.blob(), "x").asPromise(), agent.AgentFailureError);
  await assert.rejects(client.unlock("wrong phrase").asPromise(), agent.AgentFailureError);
  await client.unlock("lock phrase").asPromise();
  assert.equal((await client.requestIdentities().asPromise()).length, 2);
  await client.removeAllIdentities().asPromise();
  assert.match((await sshAdd(t, sock, ["-l"])).out, /no identities/);
});

test("our agent server: OpenSSH's ssh-add adds, lists, locks, unlocks and removes, and ssh logs in to sshd through it", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, "twisted-ts-agent-");
  const factory = new agent.SSHAgentFactory();
  const sockAt = agent.listenAgentSocket(factory, { parent: dir });
  t.after(() => sockAt.close());
  const sock = sockAt.path;
  const [edPath, edPub] = await sshKeygen(dir, "id_ed", "ed25519");
  const [rsaPath, rsaPub] = await sshKeygen(dir, "id_rsa", "rsa");
  let r = await sshAdd(t, sock, [edPath]);
  assert.equal(r.code, 0, r.out);
  r = await sshAdd(t, sock, ["-t", "600", rsaPath]);
  assert.equal(r.code, 0, r.out);
  assert.equal(factory.keyring.list()[1]?.expiresAt !== undefined, true, "ssh-add -t set a lifetime");
  r = await sshAdd(t, sock, ["-l"]);
  assert.equal(r.code, 0, r.out);
  assert.ok(r.out.includes(fp(pubOf(edPub))) && r.out.includes(fp(pubOf(rsaPub))), r.out);

  // -x / -X read the passphrase through askpass.
  const askpass = join(dir, "askpass");
  writeFileSync(askpass, "#!/bin/sh\necho 'agent lock phrase'\n");
  chmodSync(askpass, 0o755);
  const ask = { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: ":0" };
  r = await sshAdd(t, sock, ["-x"], ask);
  assert.equal(r.code, 0, r.out);
  assert.equal(factory.keyring.locked, true);
  assert.match((await sshAdd(t, sock, ["-l"])).out, /no identities/);
  r = await sshAdd(t, sock, ["-X"], ask);
  assert.equal(r.code, 0, r.out);
  assert.equal(factory.keyring.size, 2);

  const sshd = await startSshd(t, { authorizedKeys: [rsaPub] });
  if (sshd === undefined) return;
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys["ed25519"]}\n`);
  const ssh = requirePeer(t, "ssh", "openssh-client");
  if (ssh === undefined) return;
  // No -i and no IdentitiesOnly: HOME has no keys, so only the agent's are offered.
  const args = ["-F", "/dev/null", "-p", String(sshd.port), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey"];
  const login = await runCommand(ssh, [...args, `${sshd.user}@127.0.0.1`, "echo via-our-agent"], { env: { ...ENV, HOME: dir, SSH_AUTH_SOCK: sock }, timeoutMs: 30_000 });
  assert.equal(login.stdout.toString(), "via-our-agent\n", login.stderr + sshd.output().slice(-2000));

  r = await sshAdd(t, sock, ["-d", edPath]);
  assert.equal(r.code, 0, r.out);
  r = await sshAdd(t, sock, ["-l"]);
  assert.ok(!r.out.includes(fp(pubOf(edPub))) && r.out.includes(fp(pubOf(rsaPub))), r.out);
  assert.equal((await sshAdd(t, sock, ["-D"])).code, 0);
  assert.equal(factory.keyring.size, 0);
});

test("agent forwarding: ssh -A to our server (Unix realm, as twts-alice) gives ssh-add -l the local agent's key through a 0700 directory owned by the user", { timeout: 120_000 }, async (t) => {
  const account = ensureTestUser(t);
  if (account === undefined) return;
  const ssh = requirePeer(t, "ssh", "openssh-client");
  if (ssh === undefined) return;
  const dir = tempDir(t, "twisted-ts-agent-");
  const sock = await startSshAgent(t, dir);
  if (sock === undefined) return;
  const [localPath, localPub] = await sshKeygen(dir, "id_local", "ed25519");
  assert.equal((await sshAdd(t, sock, [localPath])).code, 0);
  const ours = await startOurServer(t, { user: account.name, unixOptions: { lookupUser: (n) => unix.getpwnam(n), env: { SHLVL: "1" } } });
  const remote = 'ssh-add -l; d=$(dirname "$SSH_AUTH_SOCK"); stat -c "dir %a %U" "$d"; stat -c "sock %a %U" "$SSH_AUTH_SOCK"; echo "path $SSH_AUTH_SOCK"';
  const r = await runCommand(ssh, [...sshClientArgs(ours, ["-A"]), `${account.name}@127.0.0.1`, remote], { env: { ...ENV, HOME: dir, SSH_AUTH_SOCK: sock }, timeoutMs: 30_000 });
  const out = r.stdout.toString();
  assert.ok(out.includes(fp(pubOf(localPub))), `ssh-add -l remotely lists the local key:\n${out}\n${r.stderr}\n${ours.logText().slice(-3000)}`);
  assert.match(out, new RegExp(`^dir 700 ${account.name}$`, "m"));
  assert.match(out, new RegExp(`^sock 600 ${account.name}$`, "m"));
  const path = /^path (\S+)$/m.exec(out)?.[1];
  assert.ok(path !== undefined && path.startsWith("/tmp/ssh-"), out);
  await waitFor(() => !existsSync(join(path, "..")), "the agent socket's directory to be removed after the connection ended");
});

test("agent forwarding: our server refuses it under no-agent-forwarding and under AllowAgentForwarding no", { timeout: 120_000 }, async (t) => {
  const ssh = requirePeer(t, "ssh", "openssh-client");
  if (ssh === undefined) return;
  const dir = tempDir(t, "twisted-ts-agent-");
  const sock = await startSshAgent(t, dir);
  if (sock === undefined) return;
  for (const opts of [{ authorizedKeys: (pub: string) => `no-agent-forwarding ${pub}\n` }, { authSettings: { allowAgentForwarding: false } }]) {
    const ours = await startOurServer(t, opts);
    const r = await runCommand(ssh, [...sshClientArgs(ours, ["-A"]), `${ours.user}@127.0.0.1`, 'echo "[$SSH_AUTH_SOCK]"'], { env: { ...ENV, HOME: dir, SSH_AUTH_SOCK: sock }, timeoutMs: 30_000 });
    assert.equal(r.stdout.toString(), "[]\n", r.stderr);
    assert.match(ours.logText(), /agent forwarding is not permitted/);
  }
});

test("agent forwarding: our client logged in to sshd through our agent forwards it, and ssh-add -l remotely lists its keys", { timeout: 120_000 }, async (t) => {
  if (process.getuid?.() !== 0) {
    missing(t, "sshd serves the current user only as root here");
    return;
  }
  const dir = tempDir(t, "twisted-ts-agent-");
  const factory = new agent.SSHAgentFactory();
  const sockAt = agent.listenAgentSocket(factory, { parent: dir });
  t.after(() => sockAt.close());
  const key = keys.Key.generate("ed25519");
  const other = keys.Key.generate("ecdsa");
  factory.keyring.add(key, "our agent key");
  factory.keyring.add(other, "our other key");
  const sshd = await startSshd(t, { authorizedKeys: [key.public().toString("openssh")] });
  if (sshd === undefined) return;
  const keyAgent = await within(connectAgent(reactor, sockAt.path).asPromise(), 10_000, "connecting to our agent");
  t.after(() => keyAgent.transport.loseConnection());
  const client = await connectClient({
    port: sshd.port,
    user: sshd.user,
    keyAgent,
    hostKey: sshd.hostKeys["ed25519"],
    peerLog: sshd.output,
    configureConnection: (conn) => acceptAgentForwarding(conn, { path: sockAt.path }),
  });
  t.after(() => client.close());
  const ch = await client.openSession(new SessionChannel());
  await within(requestAgentForwarding(ch).asPromise(), 10_000, "auth-agent-req@openssh.com", sshd.output);
  await ch.request("exec", common.NS('ssh-add -l; stat -c "dir %a %U" "$(dirname "$SSH_AUTH_SOCK")"'));
  await within(ch.whenClosed.asPromise(), 30_000, "the remote ssh-add -l", sshd.output);
  const out = ch.stdoutText;
  assert.ok(out.includes(`${fp(key)} our agent key`) && out.includes(`${fp(other)} our other key`), `${out}\n${ch.stderrText}`);
  assert.match(out, new RegExp(`^dir 700 ${sshd.user}$`, "m"));
});

test("a real ssh-agent holding an RSA user certificate: our client logs in to sshd (TrustedUserCAKeys, no authorized keys) with it", { timeout: 120_000 }, async (t) => {
  const dir = tempDir(t, "twisted-ts-agent-");
  const sock = await startSshAgent(t, dir);
  if (sock === undefined) return;
  const ca = keys.Key.generate("ed25519");
  const caPath = join(dir, "user_ca.pub");
  writeFileSync(caPath, ca.public().toString("openssh") + "\n");
  const sshd = await startSshd(t, { authorizedKeys: [], config: [`TrustedUserCAKeys ${caPath}`] });
  if (sshd === undefined) return;
  const [rsaPath, rsaPub] = await sshKeygen(dir, "id_rsa", "rsa");
  const cert = ca.signCertificate(pubOf(rsaPub), { type: "user", keyId: "agent-cert", principals: [sshd.user] });
  writeFileSync(`${rsaPath}-cert.pub`, cert.toString() + "\n");
  const added = await sshAdd(t, sock, [rsaPath]);
  assert.match(added.out, /Certificate added/, added.out);
  const keyAgent = await within(connectAgent(reactor, sock).asPromise(), 10_000, "connecting to ssh-agent");
  t.after(() => keyAgent.transport.loseConnection());
  const client = await connectClient({ port: sshd.port, user: sshd.user, keyAgent, hostKey: sshd.hostKeys["ed25519"], peerLog: sshd.output });
  t.after(() => client.close());
  assert.equal((await client.exec("echo via-agent-certificate")).stdout, "via-agent-certificate\n");
  await waitFor(() => /Accepted publickey .* RSA-CERT SHA256:\S+ ID agent-cert/.test(sshd.output()), "sshd's log of the certificate login");
});
