/**
 * The `cftp` command in batch mode (run in process) against sshd and against OUR server: put,
 * get, ls -l, cd/lcd, rename, mkdir, rmdir, ln -s, chmod, reget, reput, df, rm, and `-` for
 * commands allowed to fail.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { main } from "@twisted-ts/conch/scripts/cftp";
import { keys } from "@twisted-ts/conch/ssh";
import { requirePeer, runCommand, spawnPeer, tempDir } from "../_support/peers.js";
import { startSshd } from "../_support/sshd.js";
import { makeUserKey } from "./_client_support.js";
import { startOurServer } from "./_server_support.js";
import { sftpServerOptions } from "./_sftp_support.js";

async function cftp(args: string[], input?: string, isTTY = false): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const stdin = new PassThrough();
  if (input !== undefined) stdin.end(input);
  const code = await main(args, { stdin, stdout: (t) => void (out += t), stderr: (t) => void (err += t), isTTY });
  return { code, out, err };
}

/** The batch every server gets, in `remote` (a directory the server sees) from `local`. */
async function runScenario(args: string[], remote: string, local: string): Promise<void> {
  const data = randomBytes(600_001);
  writeFileSync(join(local, "src.bin"), data);
  writeFileSync(join(local, "part.bin"), data.subarray(0, 100_000));
  writeFileSync(join(remote, "rpart.bin"), data.subarray(0, 5));
  const batch = join(local, "batch");
  writeFileSync(
    batch,
    [
      `cd ${remote}`,
      `lcd ${local}`,
      "pwd",
      "put src.bin up.bin",
      "get up.bin down.bin",
      "mkdir d",
      "rename up.bin d/moved.bin",
      "ln -s d/moved.bin link",
      "chmod 600 d/moved.bin",
      "ls -l",
      "ls d",
      "reget link part.bin",
      "reput src.bin rpart.bin",
      "df",
      "-rm no-such-file",
      "rm link",
      "mkdir gone",
      "rmdir gone",
    ].join("\n") + "\n",
  );
  const r = await cftp([...args, "-b", batch]);
  assert.equal(r.code, 0, `${r.err}\n${r.out}`);
  assert.deepEqual(readFileSync(join(local, "down.bin")), data, "get");
  assert.deepEqual(readFileSync(join(remote, "d", "moved.bin")), data, "put, rename");
  assert.deepEqual(readFileSync(join(local, "part.bin")), data, "reget");
  assert.deepEqual(readFileSync(join(remote, "rpart.bin")), data, "reput");
  assert.equal(statSync(join(remote, "d", "moved.bin")).mode & 0o777, 0o600);
  assert.equal(lstatSync(join(remote, "link"), { throwIfNoEntry: false }), undefined);
  assert.equal(lstatSync(join(remote, "gone"), { throwIfNoEntry: false }), undefined);
  assert.match(r.out, new RegExp(`Remote working directory: ${remote.replace(/[/.]/g, "\\$&")}\n`));
  assert.match(r.out, /^lrwxrwxrwx +1 .* link$/m);
  assert.match(r.out, /cftp> ls d\nmoved\.bin\n/);
  assert.match(r.out, /^ +Size +Used +Avail/m);
  assert.match(r.err, /no-such-file|No such file/);
  // A failing command without `-` ends the batch with status 1.
  writeFileSync(batch, `cd ${remote}\nrm no-such-file\npwd\n`);
  const bad = await cftp([...args, "-b", batch]);
  assert.equal(bad.code, 1);
  assert.doesNotMatch(bad.out, /Remote working directory/);
}

test("cftp -b against sshd", async (t) => {
  const key = await makeUserKey(t);
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const dir = tempDir(t);
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys["ed25519"]}\n`);
  const remote = join(dir, "remote");
  const local = join(dir, "local");
  mkdirSync(remote);
  mkdirSync(local);
  const args = ["-P", String(sshd.port), "-i", key.privatePath, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", `${sshd.user}@127.0.0.1`];
  await runScenario(args, remote, local);
});

test("cftp logs in with a key held only by a real ssh-agent (-o IdentityAgent), no -i", async (t) => {
  const key = await makeUserKey(t);
  const sshd = await startSshd(t, { authorizedKeys: [key.publicLine], hostKeyTypes: ["ed25519"] });
  if (sshd === undefined) return;
  const agentBin = requirePeer(t, "ssh-agent", "openssh-client");
  const addBin = requirePeer(t, "ssh-add", "openssh-client");
  if (agentBin === undefined || addBin === undefined) return;
  const dir = tempDir(t);
  const sock = join(dir, "agent.sock");
  spawnPeer(t, agentBin, ["-D", "-a", sock]);
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
  const added = await runCommand(addBin, [key.privatePath], { env: { ...process.env, SSH_AUTH_SOCK: sock }, timeoutMs: 30_000 });
  assert.equal(added.code, 0, added.stderr);
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ${sshd.hostKeys["ed25519"]}\n`);
  const base = ["-P", String(sshd.port), "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes"];
  const r = await cftp([...base, "-o", `IdentityAgent=${sock}`, `${sshd.user}@127.0.0.1`, "-b", "-"], "pwd\n");
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /Remote working directory: /);
  const none = await cftp([...base, "-o", "IdentityAgent=none", `${sshd.user}@127.0.0.1`, "-b", "-"], "pwd\n");
  assert.equal(none.code, 255, "without the agent no key is accepted");
});

test("cftp -b against our server", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  const remote = join(server.home, "remote");
  const local = join(server.dir, "local");
  mkdirSync(remote);
  mkdirSync(local);
  const args = ["-P", String(server.port), "-i", server.keyPath, "-o", `UserKnownHostsFile=${server.knownHosts}`, "-o", "StrictHostKeyChecking=yes", `${server.user}@127.0.0.1`];
  await runScenario(args, remote, local);
});

test("cftp: an unknown host key under StrictHostKeyChecking=yes is refused", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  const empty = join(server.dir, "empty_known_hosts");
  writeFileSync(empty, "");
  const r = await cftp(["-P", String(server.port), "-i", server.keyPath, "-o", `UserKnownHostsFile=${empty}`, "-o", "StrictHostKeyChecking=yes", `${server.user}@127.0.0.1`, "-b", "-"]);
  assert.equal(r.code, 255);
  assert.match(r.err, /no ssh-ed25519 host key is known for \[127\.0\.0\.1\]:\d+/);
});

test("cftp interactive: commands from the prompt, errors reported without ending the session, exit", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  writeFileSync(join(server.home, "hello.txt"), "hi");
  const args = ["-P", String(server.port), "-i", server.keyPath, "-o", `UserKnownHostsFile=${server.knownHosts}`, "-o", "StrictHostKeyChecking=yes", `${server.user}@127.0.0.1`];
  const r = await cftp(args, "pwd\nrm nothing-here\nls\nbogus\nexit\npwd\n");
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, `cftp> Remote working directory: ${server.home}\ncftp> cftp> hello.txt\ncftp> cftp> `);
  assert.match(r.err, /^No such file or directory\nunknown command: bogus \(try help\)\n$/);
});

test("cftp: a progress bar (percent, bytes, rate, ETA) when stdout is a terminal, none otherwise", async (t) => {
  const server = await startOurServer(t, sftpServerOptions());
  writeFileSync(join(server.home, "big.bin"), randomBytes(3_000_000));
  const local = join(server.dir, "local");
  mkdirSync(local);
  const args = ["-P", String(server.port), "-i", server.keyPath, "-o", `UserKnownHostsFile=${server.knownHosts}`, "-o", "StrictHostKeyChecking=yes", `${server.user}@127.0.0.1`, "-b", "-"];
  const tty = await cftp(args, `lcd ${local}\nget big.bin\n`, true);
  assert.equal(tty.code, 0, tty.err);
  assert.match(tty.out, /\rbig\.bin +100% +2\.9MB +[\d.]+[KMG]?B\/s \d\d:\d\d ETA\n/);
  const plain = await cftp(args, `lcd ${local}\nget big.bin b2\n`, false);
  assert.doesNotMatch(plain.out, /\r|ETA/);
});

test("cftp with certificates: the -cert.pub beside the key logs in, the host certificate is checked by @cert-authority", async (t) => {
  const userCa = keys.Key.generate("ed25519");
  const hostCa = keys.Key.generate("ed25519");
  const server = await startOurServer(t, {
    ...sftpServerOptions(),
    authorizedKeys: () => "# certificates only\n",
    configureKeyChecker: (c) => void (c.trustedUserCAKeys = [userCa.public()]),
    hostCertificates: (hostKeys) => Object.values(hostKeys).map((k) => hostCa.signCertificate(k.public(), { type: "host", keyId: "sftp-host", principals: ["127.0.0.1"] })),
  });
  const userCert = userCa.signCertificate(keys.Key.fromString(server.keyPub), { type: "user", keyId: "cftp-user", principals: [server.user] });
  writeFileSync(`${server.keyPath}-cert.pub`, userCert.toString() + "\n");
  const knownHosts = join(server.dir, "known_hosts_ca");
  writeFileSync(knownHosts, `@cert-authority [127.0.0.1]:${server.port} ${hostCa.public().toString("openssh")}\n`);
  const batch = join(server.dir, "batch");
  writeFileSync(batch, `cd ${server.home}\npwd\n`);
  const r = await cftp(["-P", String(server.port), "-i", server.keyPath, "-o", `UserKnownHostsFile=${knownHosts}`, "-o", "StrictHostKeyChecking=yes", `${server.user}@127.0.0.1`, "-b", batch]);
  assert.equal(r.code, 0, `${r.err}\n${r.out}\n${server.logText()}`);
  assert.match(r.out, /Remote working directory: /);
  assert.match(server.logText(), /accepted certificate cftp-user \(serial 0\)/);
});
