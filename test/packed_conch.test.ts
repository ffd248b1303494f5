/**
 * The `conch` bin as a user installs it: the packed tarballs installed into a new project, then
 * `node_modules/.bin/conch` run against a real sshd on 127.0.0.1 with HOME a temp dir holding
 * known_hosts and the id key. Packing is slow: done once for the whole file.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { connect, createServer, type AddressInfo } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startSshd } from "./_support/sshd.js";
import { freePort, requirePeer, runCommand, spawnPeer, tempDir, waitForPort } from "./_support/peers.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const WORKSPACES = ["packages/internet", "packages/cred", "packages/conch"];

test("node_modules/.bin/conch from the packed tarball: echo hi, exit 3, stdio, -tt, -J, -L, -R 0, -A, and a changed host key refused with 255", { timeout: 600_000 }, async (t) => {
  if (requirePeer(t, "ssh-keygen", "openssh-client") === undefined) return;
  const home = tempDir(t, "twisted-ts-conch-home-");
  const ssh = join(home, ".ssh");
  mkdirSync(ssh, { mode: 0o700 });
  const keygen = await runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "conch-test", "-f", join(ssh, "id_ed25519")]);
  assert.equal(keygen.code, 0, keygen.stderr);
  const pub = (await runCommand("cat", [join(ssh, "id_ed25519.pub")])).stdout.toString("utf8").trim();
  const sshd = await startSshd(t, { authorizedKeys: [pub], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const knownHosts = join(ssh, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys.ed25519!}\n`);

  const packs = tempDir(t, "twisted-ts-pack-");
  const project = tempDir(t, "twisted-ts-project-");
  await run("npm", ["pack", "--silent", "--pack-destination", packs, ...WORKSPACES.flatMap((w) => ["-w", w])], { cwd: ROOT });
  const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz")).map((f) => join(packs, f));
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "user-project", private: true, type: "module" }));
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--omit=optional", ...tarballs], { cwd: project });
  const conch = join(project, "node_modules", ".bin", "conch");
  const env = { ...process.env, HOME: home, TERM: "dumb" };
  const target = `${sshd.user}@127.0.0.1`;

  const hi = await runCommand(conch, ["-p", String(sshd.port), target, "echo", "hi"], { env, cwd: project, timeoutMs: 120_000 });
  assert.equal(hi.stdout.toString("utf8"), "hi\n", hi.stderr);
  assert.equal(hi.code, 0, hi.stderr);

  const three = await runCommand(conch, ["-p", String(sshd.port), target, "exit 3"], { env, cwd: project, timeoutMs: 120_000 });
  assert.equal(three.code, 3, three.stderr);

  const piped = await runCommand(conch, ["-p", String(sshd.port), target, "cat; echo err >&2"], { env, cwd: project, input: "through stdin\n", timeoutMs: 120_000 });
  assert.equal(piped.stdout.toString("utf8"), "through stdin\n");
  assert.equal(piped.stderr, "err\n");
  assert.equal(piped.code, 0);

  // -tt: a pty even without a local terminal; TERM goes with the pty-req.
  const tty = await runCommand(conch, ["-tt", "-p", String(sshd.port), target, "tty; echo $TERM"], { env, cwd: project, timeoutMs: 120_000 });
  assert.match(tty.stdout.toString("utf8"), /^\/dev\/pts\/\d+\r?\ndumb\r?\n$/, tty.stderr);
  assert.equal(tty.code, 0, tty.stderr);

  // -J: through the same sshd as a jump host, twice (a chain), to itself.
  const jump = `${sshd.user}@127.0.0.1:${sshd.port}`;
  const jumped = await runCommand(conch, ["-J", `${jump},${jump}`, "-p", String(sshd.port), target, "echo $SSH_CONNECTION"], { env, cwd: project, timeoutMs: 120_000 });
  assert.match(jumped.stdout.toString("utf8"), new RegExp(`^127\\.0\\.0\\.1 \\d+ 127\\.0\\.0\\.1 ${sshd.port}\n$`), jumped.stderr);
  assert.equal(jumped.code, 0, jumped.stderr);

  // -N -L: a local forward to a service on this machine, through sshd; -R 0: the allocated port is printed.
  const service = createServer((socket) => {
    const chunks: Buffer[] = [];
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", () => socket.end(`got ${Buffer.concat(chunks).length} bytes\n`));
  });
  await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve));
  t.after(() => service.close());
  const servicePort = (service.address() as AddressInfo).port;
  const localPort = await freePort();
  const forwarder = spawnPeer(t, conch, ["-N", "-L", `127.0.0.1:${localPort}:127.0.0.1:${servicePort}`, "-R", `0:127.0.0.1:${servicePort}`, "-p", String(sshd.port), target], env);
  await waitForPort(localPort, 60_000);
  const answer = await new Promise<string>((resolve, reject) => {
    const c = connect(localPort, "127.0.0.1", () => c.end(Buffer.alloc(100_000, 7)));
    let text = "";
    c.on("data", (d: Buffer) => (text += d.toString("utf8")));
    c.on("end", () => resolve(text));
    c.on("error", reject);
  });
  assert.equal(answer, "got 100000 bytes\n", forwarder.output());
  for (let i = 0; i < 200 && !/Allocated port \d+ for remote forward/.test(forwarder.output()); i++) await new Promise((r) => setTimeout(r, 50));
  assert.match(forwarder.output(), new RegExp(`Allocated port \\d+ for remote forward to 127\\.0\\.0\\.1:${servicePort}`));
  forwarder.kill("SIGTERM");

  // -A: the agent's key is listed on the far side (sshd forwards SSH_AUTH_SOCK to the command).
  const agentSock = join(home, "agent.sock");
  spawnPeer(t, "ssh-agent", ["-D", "-a", agentSock], env);
  for (let i = 0; i < 200 && !existsSync(agentSock); i++) await new Promise((r) => setTimeout(r, 50));
  const added = await runCommand("ssh-add", [join(ssh, "id_ed25519")], { env: { ...env, SSH_AUTH_SOCK: agentSock }, timeoutMs: 30_000 });
  assert.equal(added.code, 0, added.stderr);
  const agentEnv = { ...env, SSH_AUTH_SOCK: agentSock };
  const listed = await runCommand(conch, ["-A", "-p", String(sshd.port), target, "ssh-add -l"], { env: agentEnv, cwd: project, timeoutMs: 120_000 });
  assert.equal(listed.code, 0, listed.stderr);
  assert.match(listed.stdout.toString("utf8"), /conch-test \(ED25519\)/);
  const without = await runCommand(conch, ["-p", String(sshd.port), target, "ssh-add -l"], { env: agentEnv, cwd: project, timeoutMs: 120_000 });
  assert.equal(without.code, 2, "without -A the far side has no agent");

  // Another host's key under the same name: refused, whatever StrictHostKeyChecking says.
  const other = join(home, "other");
  await runCommand("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
  const otherLine = (await runCommand("cat", [`${other}.pub`])).stdout.toString("utf8").trim();
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${otherLine}\n`);
  const changed = await runCommand(conch, ["-p", String(sshd.port), "-o", "StrictHostKeyChecking=no", target, "echo", "hi"], { env, cwd: project, timeoutMs: 120_000 });
  assert.equal(changed.code, 255);
  assert.equal(changed.stdout.toString("utf8"), "");
  assert.match(changed.stderr, /@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@ {4}WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! {5}@\n/);
  assert.match(changed.stderr, /Host key verification failed\./);
});
