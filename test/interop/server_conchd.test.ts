/**
 * Issue 14: `conchd` as a user runs it. The packed tarballs are installed into a new project once
 * for this file, and `node_modules/.bin/conchd` is started on 127.0.0.1 with host keys in a temp
 * folder. OpenSSH's ssh (exec), scp -O both ways, sftp and ssh -L work against it; SIGHUP takes a new
 * config and key without dropping a running session; SIGTERM lets a running command finish while
 * new connections are refused; JSON log lines carry the peer; `--workers 2` serves; a password
 * goes through PAM (pamtester); conchd run as twts-alice with nothing but a port serves her; and
 * PermitOpen and PerSourcePenalties from the config are enforced.
 * Serving twts-alice needs root (CI runs as root).
 */
import { after, before, test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { findProgram, freePort, missing, requirePeer, runCommand, tempDir } from "../_support/peers.js";
import { sshKeygen } from "../_support/sshd.js";
import { ensureTestUser, type TestAccount } from "../_support/users.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const WORKSPACES = ["packages/internet", "packages/cred", "packages/conch"];
/** A second account, for PAM: made (as root) idempotently and left in place, its password set only while the test runs. */
const PW_USER = "twts-conchd";
const PW_PASSWORD = "Corr3ct-h0rse-conchd";

let project = "";

before(async () => {
  project = mkdtempSync(join(tmpdir(), "conchd-project-"));
  // twts-alice runs conchd from here in the non-root test.
  chmodSync(project, 0o755);
  const packs = join(project, "packs");
  mkdirSync(packs);
  await run("npm", ["pack", "--silent", "--pack-destination", packs, ...WORKSPACES.flatMap((w) => ["-w", w])], { cwd: ROOT });
  const tarballs = readdirSync(packs).map((f) => join(packs, f));
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "conchd-user", private: true, type: "module" }));
  await run("npm", ["install", "--no-audit", "--no-fund", "--prefer-offline", "--omit=optional", ...tarballs], { cwd: project });
});

after(() => {
  if (project !== "") rmSync(project, { recursive: true, force: true });
});

interface Conchd {
  proc: ChildProcess;
  port: number;
  /** Every JSON line so far. */
  lines: () => Array<Record<string, unknown>>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  waitFor: (pred: (l: Record<string, unknown>) => boolean, what: string) => Promise<Record<string, unknown>>;
}

/** Starts `node_modules/.bin/conchd args --log-format json`, as `runAs` (setpriv) if given; resolves once it listens. */
async function startConchd(t: TestContext, args: string[], runAs?: { user: string; home: string }): Promise<Conchd> {
  const bin = join(project, "node_modules", ".bin", "conchd");
  const cmd = runAs === undefined ? [bin] : ["/usr/bin/setpriv", "--reuid", runAs.user, "--regid", runAs.user, "--init-groups", bin];
  const env = { PATH: process.env["PATH"] ?? "/usr/bin:/bin", HOME: runAs?.home ?? process.env["HOME"] ?? "/root" };
  const proc = spawn(cmd[0]!, [...cmd.slice(1), ...args, "--log-format", "json"], { cwd: project, env, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  proc.stdout!.on("data", (d: Buffer) => {
    out += d.toString();
    for (const w of waiters.splice(0)) w();
  });
  proc.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.on("exit", (code) => {
    for (const w of waiters.splice(0)) w();
    resolve(code);
  }));
  t.after(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
  });
  const lines = (): Array<Record<string, unknown>> =>
    out
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          throw new Error(`not a JSON line: ${l}`);
        }
      });
  const waitFor = async (pred: (l: Record<string, unknown>) => boolean, what: string): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const hit = lines().find(pred);
      if (hit !== undefined) return hit;
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`conchd: no ${what}; stdout:\n${out}\nstderr:\n${err}`);
      await new Promise<void>((r) => {
        waiters.push(r);
        setTimeout(r, 500);
      });
    }
  };
  const listening = await waitFor((l) => String(l["msg"]).startsWith("listening on"), "listening line");
  const port = Number(String(listening["address"]).split(":").pop());
  return { proc, port, lines, exited, waitFor };
}

/** OpenSSH's ssh (or scp) against conchd with one key; resolves with status and output. */
async function ssh(t: TestContext, port: number, key: string, user: string, extra: string[], command: string[], program = "ssh") {
  const bin = requirePeer(t, program, "openssh-client");
  if (bin === undefined) return undefined;
  const portFlag = program === "scp" ? "-P" : "-p";
  const common = ["-F", "/dev/null", portFlag, String(port), "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", key];
  // `extra` first: ssh takes an option's first value, so a test may override the common ones.
  const args = program === "scp" ? [...extra, ...common, ...command] : [...extra, ...common, `${user}@127.0.0.1`, ...command];
  const r = await runCommand(bin, args, { env: { PATH: "/usr/bin:/bin", HOME: tmpdir(), LANG: "C.UTF-8" }, timeoutMs: 60_000 });
  return { code: r.code, out: r.stdout.toString(), stderr: r.stderr };
}

/** A key pair made by ssh-keygen in `dir`, readable by anyone (ssh runs as root here). */
async function newKey(dir: string, name: string): Promise<{ path: string; pub: string }> {
  const [path, pub] = await sshKeygen(dir, name, "ed25519");
  return { path, pub: `${pub}\n` };
}

/**
 * A folder of authorized_keys files named by user (`AuthorizedKeysFile DIR/%u`). It is under /tmp,
 * which anyone may write, so the servers using it run with `StrictModes no`; the non-root test
 * reads a real ~/.ssh/authorized_keys with StrictModes on.
 */
function keysDir(t: TestContext): string {
  const dir = tempDir(t, "conchd-keys-");
  chmodSync(dir, 0o755);
  return dir;
}

async function setup(t: TestContext): Promise<{ account: TestAccount; dir: string; key: { path: string; pub: string } } | undefined> {
  const account = ensureTestUser(t);
  if (account === undefined || requirePeer(t, "ssh", "openssh-client") === undefined) return undefined;
  const dir = keysDir(t);
  const key = await newKey(dir, "id_alice");
  writeFileSync(join(dir, account.name), key.pub);
  return { account, dir, key };
}

test("conchd -t checks a config and exits 1 with the line of the first error; -T prints the effective config", async (t) => {
  const dir = tempDir(t, "conchd-check-");
  const bin = join(project, "node_modules", ".bin", "conchd");
  writeFileSync(join(dir, "bad.conf"), "Port 2222\n# fine so far\nMaxAuthTries lots\n");
  const bad = await runCommand(bin, ["-f", join(dir, "bad.conf"), "-d", join(dir, "hk"), "-t"], { cwd: project });
  assert.equal(bad.code, 1);
  assert.equal(bad.stderr, `conchd: ${join(dir, "bad.conf")} line 3: MaxAuthTries: expected a whole number, not "lots"\n`);
  writeFileSync(join(dir, "good.conf"), "Port 2222\nMaxAuthTries 3\nLogFormat json\n");
  const good = await runCommand(bin, ["-f", join(dir, "good.conf"), "-d", join(dir, "hk"), "-o", "MaxAuthTries=4", "-T"], { cwd: project });
  assert.equal(good.code, 0, good.stderr);
  assert.match(good.stdout.toString(), /^maxauthtries 4$/m);
  assert.match(good.stdout.toString(), /^logformat json$/m);
  assert.match(good.stdout.toString(), /^listen tcp:2222$/m);
  assert.ok(!existsSync(join(dir, "hk")), "-T generates no host keys");
});

test("conchd as root serves twts-alice: ssh exec, scp -O both ways, sftp, ssh -L, and JSON log lines carry the peer", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const d = await startConchd(t, ["-d", join(s.dir, "hostkeys"), "-p", "tcp:0:interface=127.0.0.1", "-o", `AuthorizedKeysFile ${s.dir}/%u`, "-o", "StrictModes=no"]);
  const r = await ssh(t, d.port, s.key.path, s.account.name, [], ["id -un; pwd"]);
  assert.equal(r?.code, 0, r?.stderr);
  assert.equal(r?.out, `${s.account.name}\n${s.account.home}\n`);

  // scp -O: up into a folder of alice's, and back.
  const box = tempDir(t, "conchd-scp-");
  chmodSync(box, 0o755);
  const remote = join(box, "remote");
  mkdirSync(remote);
  chownSync(remote, s.account.uid, s.account.gid);
  const payload = Buffer.alloc(300_000, "conchd scp ");
  writeFileSync(join(box, "up.bin"), payload);
  const up = await ssh(t, d.port, s.key.path, "", ["-O"], [join(box, "up.bin"), `${s.account.name}@127.0.0.1:${remote}/up.bin`], "scp");
  assert.equal(up?.code, 0, up?.stderr);
  assert.equal(statSync(join(remote, "up.bin")).uid, s.account.uid, "the upload belongs to the user");
  const down = await ssh(t, d.port, s.key.path, "", ["-O"], [`${s.account.name}@127.0.0.1:${remote}/up.bin`, join(box, "down.bin")], "scp");
  assert.equal(down?.code, 0, down?.stderr);
  assert.deepEqual(readFileSync(join(box, "down.bin")), payload);

  // sftp: the default Subsystem (our sftp-server, run as the user).
  const sftpBin = requirePeer(t, "sftp", "openssh-client");
  if (sftpBin === undefined) return;
  writeFileSync(join(box, "batch"), `get ${remote}/up.bin ${join(box, "sftp.bin")}\nput ${join(box, "up.bin")} ${remote}/sftp-up.bin\n`);
  const sftp = await runCommand(
    sftpBin,
    ["-F", "/dev/null", "-P", String(d.port), "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-i", s.key.path, "-b", join(box, "batch"), `${s.account.name}@127.0.0.1`],
    { env: { PATH: "/usr/bin:/bin", HOME: tmpdir() }, timeoutMs: 60_000 },
  );
  assert.equal(sftp.code, 0, sftp.stderr);
  assert.deepEqual(readFileSync(join(box, "sftp.bin")), payload);
  assert.equal(statSync(join(remote, "sftp-up.bin")).uid, s.account.uid, "sftp writes as the user");

  // ssh -L to a loopback service.
  const service = createServer((c) => c.end("through the tunnel\n"));
  await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve));
  t.after(() => service.close());
  const servicePort = (service.address() as { port: number }).port;
  const local = await freePort();
  const tunnel = ssh(t, d.port, s.key.path, s.account.name, ["-o", "ExitOnForwardFailure=yes", "-L", `127.0.0.1:${local}:127.0.0.1:${servicePort}`], ["sleep 6"]);
  let got = "";
  for (let i = 0; i < 100 && got === ""; i++) {
    got = await new Promise<string>((resolve) => {
      const c = connect(local, "127.0.0.1");
      let text = "";
      c.on("data", (b: Buffer) => (text += b.toString()));
      c.on("end", () => resolve(text));
      c.on("error", () => resolve(""));
    });
    if (got === "") await new Promise((res) => setTimeout(res, 100));
  }
  assert.equal(got, "through the tunnel\n");
  assert.equal((await tunnel)?.code, 0);

  const from = d.lines().find((l) => String(l["msg"]).startsWith("connection from"));
  assert.match(String(from?.["peer"]), /^127\.0\.0\.1:\d+$/);
  assert.match(String(from?.["conn"]), /^c\d+$/);
  const authed = d.lines().find((l) => / authenticated with publickey/.test(String(l["msg"])));
  assert.equal(authed?.["user"], s.account.name);
  assert.match(String(authed?.["peer"]), /^127\.0\.0\.1:\d+$/);
});

/** A loopback service that greets each connection with `text`; resolves with its port. */
async function greeter(t: TestContext, text: string): Promise<number> {
  const service = createServer((c) => c.end(text));
  await new Promise<void>((resolve) => service.listen(0, "127.0.0.1", resolve));
  t.after(() => service.close());
  return (service.address() as { port: number }).port;
}

/** What a local port sends before closing ("" when nothing, or nothing listens). */
function readAll(port: number): Promise<string> {
  return new Promise<string>((resolve) => {
    const c = connect(port, "127.0.0.1");
    let text = "";
    c.on("data", (b: Buffer) => (text += b.toString()));
    c.on("end", () => resolve(text));
    c.on("error", () => resolve(text));
  });
}

test("issue 14: PermitOpen lets ssh -L reach the listed destination and refuses another (open failed)", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const portA = await greeter(t, "service A\n");
  const portB = await greeter(t, "service B\n");
  const conf = join(s.dir, "conchd.conf");
  writeFileSync(conf, `StrictModes no\nAuthorizedKeysFile ${s.dir}/%u\nPasswordAuthentication no\nPermitOpen 127.0.0.1:${portA}\n`);
  const d = await startConchd(t, ["-f", conf, "-d", join(s.dir, "hostkeys"), "-p", "tcp:0:interface=127.0.0.1"]);
  const [localA, localB] = [await freePort(), await freePort()];
  const release = join(s.dir, "release");
  // ssh reports a refused open at INFO.
  const tunnel = ssh(t, d.port, s.key.path, s.account.name, ["-o", "LogLevel=INFO", "-L", `127.0.0.1:${localA}:127.0.0.1:${portA}`, "-L", `127.0.0.1:${localB}:127.0.0.1:${portB}`], [`while [ ! -e ${release} ]; do sleep 0.1; done`]);
  await d.waitFor((l) => String(l["msg"]).includes("while [ ! -e"), "exec line of the tunnel's session");
  assert.equal(await readAll(localA), "service A\n");
  assert.equal(await readAll(localB), "", "nothing comes through from a destination PermitOpen does not list");
  writeFileSync(release, "");
  const r = await tunnel;
  assert.equal(r?.code, 0, r?.stderr);
  assert.match(r?.stderr ?? "", new RegExp(`open failed: administratively prohibited: 127\\.0\\.0\\.1:${portB} is not a PermitOpen destination`));
  await d.waitFor((l) => /refused direct-tcpip channel .* by the forwarding policy/.test(String(l["msg"])), "policy refusal line");
});

test("issue 14: PerSourcePenalties authfail:30 min:1 refuses a source after a failed login, and only that source", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const conf = join(s.dir, "conchd.conf");
  writeFileSync(conf, `StrictModes no\nAuthorizedKeysFile ${s.dir}/%u\nPasswordAuthentication no\nPerSourcePenalties authfail:30 min:1\n`);
  const d = await startConchd(t, ["-f", conf, "-d", join(s.dir, "hostkeys"), "-p", "tcp:0:interface=127.0.0.1"]);
  const stranger = await newKey(s.dir, "id_stranger");
  const failed = await ssh(t, d.port, stranger.path, s.account.name, ["-b", "127.0.0.2"], ["true"]);
  assert.equal(failed?.code, 255);
  assert.match(failed?.stderr ?? "", /Permission denied/);
  await d.waitFor((l) => /^new 127\.0\.0\.2\/32 active penalty of 30s/.test(String(l["msg"])), "penalty line");

  const refused = await ssh(t, d.port, s.key.path, s.account.name, ["-b", "127.0.0.2"], ["true"]);
  assert.equal(refused?.code, 255, "the penalised source is refused even with the right key");
  await d.waitFor((l) => /^drop connection from 127\.0\.0\.2: penalty: failed authentication/.test(String(l["msg"])), "drop line");
  const other = await ssh(t, d.port, s.key.path, s.account.name, ["-b", "127.0.0.3"], ["echo other"]);
  assert.equal(other?.code, 0, other?.stderr);
  assert.equal(other?.out, "other\n");
});

test("behind haproxy (the PROXY protocol), log lines carry the source address from the header", async (t) => {
  const dir = keysDir(t);
  const d = await startConchd(t, ["-d", join(dir, "hostkeys"), "-p", "haproxy:tcp:0:interface=127.0.0.1", "-o", "PasswordAuthentication=no"]);
  const version = await new Promise<string>((resolve, reject) => {
    const c = connect(d.port, "127.0.0.1");
    c.on("connect", () => c.write("PROXY TCP4 127.1.2.3 127.0.0.1 5555 22\r\n"));
    c.on("data", (b: Buffer) => {
      c.destroy();
      resolve(b.toString());
    });
    c.on("error", reject);
  });
  assert.match(version, /^SSH-2\.0-/);
  const from = await d.waitFor((l) => String(l["msg"]).startsWith("connection from"), "connection line");
  assert.equal(from["peer"], "127.1.2.3:5555");
});

test("SIGHUP: a new AuthorizedKeysFile and key are taken, and a running session goes on to status 0", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const conf = join(s.dir, "conchd.conf");
  writeFileSync(conf, `StrictModes no\nAuthorizedKeysFile ${s.dir}/%u\n`);
  const d = await startConchd(t, ["-f", conf, "-d", join(s.dir, "hostkeys"), "-p", "tcp:0:interface=127.0.0.1"]);
  const second = await newKey(s.dir, "id_second");
  const moreKeys = join(s.dir, "more");
  mkdirSync(moreKeys, { mode: 0o755 });
  writeFileSync(join(moreKeys, s.account.name), second.pub);

  // The session runs until the test releases it, after the reload: it must live through it.
  const release = join(s.dir, "release");
  const running = ssh(t, d.port, s.key.path, s.account.name, [], [`while [ ! -e ${release} ]; do sleep 0.1; done; echo slept`]);
  await d.waitFor((l) => String(l["msg"]).includes("while [ ! -e"), "exec line of the running session");
  const before = await ssh(t, d.port, second.path, s.account.name, [], ["true"]);
  assert.notEqual(before?.code, 0, "the second key is not in the running config's files");

  writeFileSync(conf, `StrictModes no\nAuthorizedKeysFile ${s.dir}/%u ${moreKeys}/%u\n`);
  d.proc.kill("SIGHUP");
  await d.waitFor((l) => String(l["msg"]).startsWith("reloaded the configuration"), "reload line");
  const afterReload = await ssh(t, d.port, second.path, s.account.name, [], ["echo second"]);
  assert.equal(afterReload?.code, 0, afterReload?.stderr);
  assert.equal(afterReload?.out, "second\n");
  writeFileSync(release, "");
  const first = await running;
  assert.equal(first?.code, 0, first?.stderr);
  assert.equal(first?.out, "slept\n");
});

test("SIGTERM: new connections are refused, a running `sleep 2` ends with status 0, and conchd exits 0", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const d = await startConchd(t, ["-d", join(s.dir, "hostkeys"), "-p", "tcp:0:interface=127.0.0.1", "-o", `AuthorizedKeysFile ${s.dir}/%u`, "-o", "StrictModes=no"]);
  // `sleep 2` starts once the test has seen new connections refused, so it is surely running then.
  const release = join(s.dir, "release");
  const running = ssh(t, d.port, s.key.path, s.account.name, [], [`while [ ! -e ${release} ]; do sleep 0.1; done; sleep 2; echo finished`]);
  await d.waitFor((l) => String(l["msg"]).includes("while [ ! -e"), "exec line");
  d.proc.kill("SIGTERM");
  await d.waitFor((l) => String(l["msg"]).startsWith("shutting down"), "shutdown line");
  const refused = await ssh(t, d.port, s.key.path, s.account.name, ["-o", "ConnectTimeout=10"], ["true"]);
  assert.equal(refused?.code, 255);
  assert.match(refused?.stderr ?? "", /refused/i);
  writeFileSync(release, "");
  const r = await running;
  assert.equal(r?.code, 0, r?.stderr);
  assert.equal(r?.out, "finished\n");
  assert.equal(await d.exited, 0);
});

test("--workers 2: both workers listen on the shared port and serve; a killed worker is restarted; SIGTERM stops them all", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const port = await freePort();
  const d = await startConchd(t, ["--workers", "2", "-d", join(s.dir, "hostkeys"), "-i", "127.0.0.1", "-p", String(port), "-o", `AuthorizedKeysFile ${s.dir}/%u`, "-o", "StrictModes=no"]);
  await d.waitFor((l) => String(l["msg"]).startsWith("listening on") && l["worker"] === 2, "worker 2 listening");
  await d.waitFor((l) => String(l["msg"]).startsWith("listening on") && l["worker"] === 1, "worker 1 listening");
  for (let i = 0; i < 4; i++) {
    const r = await ssh(t, port, s.key.path, s.account.name, [], [`echo ${i}`]);
    assert.equal(r?.code, 0, r?.stderr);
    assert.equal(r?.out, `${i}\n`);
  }
  const authenticated = d.lines().filter((l) => / authenticated with /.test(String(l["msg"])));
  assert.ok(authenticated.every((l) => String(l["conn"]) === `w${String(l["worker"])}c${String(l["conn"]).split("c")[1]}`), "connection ids name their worker");
  const served = new Set(authenticated.map((l) => l["worker"]));
  assert.ok(served.size >= 1 && [...served].every((w) => w === 1 || w === 2), `served by workers ${[...served].join(", ")}`);

  // A worker killed outright is restarted by the primary, which goes on serving meanwhile.
  const forked = await d.waitFor((l) => l["msg"] === `forked worker 1 (pid ${String(l["pid"])})`, "worker 1's pid");
  process.kill(Number(forked["pid"]), "SIGKILL");
  const restart = await d.waitFor((l) => /^worker 1 exited \(SIGKILL\)/.test(String(l["msg"])), "restart line");
  await d.waitFor((l) => String(l["msg"]).startsWith("forked worker 1") && l["pid"] !== forked["pid"], "worker 1 forked again");
  await d.waitFor((l) => String(l["msg"]).startsWith("listening on") && l["worker"] === 1 && String(l["time"]) >= String(restart["time"]), "the new worker 1 listening");
  const again = await ssh(t, port, s.key.path, s.account.name, [], ["echo again"]);
  assert.equal(again?.code, 0, again?.stderr);
  d.proc.kill("SIGTERM");
  assert.equal(await d.exited, 0);
});

/** The password account, made (as root) with its password set through chpasswd's stdin. */
async function ensurePasswordUser(t: TestContext): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    missing(t, "making the password account needs root (CI runs as root)");
    return false;
  }
  if (findProgram("pamtester") === undefined) {
    missing(t, "pamtester is not installed (apt-get install pamtester)");
    return false;
  }
  if ((await runCommand("id", [PW_USER])).code !== 0) await runCommand("useradd", ["-m", "-s", "/bin/bash", PW_USER]);
  // The known password lives only while the test runs: afterwards the account takes no password.
  t.after(() => runCommand("usermod", ["-p", "*", PW_USER]));
  const r = await runCommand("chpasswd", [], { input: `${PW_USER}:${PW_PASSWORD}\n` });
  assert.equal(r.code, 0, r.stderr);
  return true;
}

test("PasswordAuthentication and KbdInteractiveAuthentication go through PAM with pamtester; the password never reaches the log", async (t) => {
  if (!(await ensurePasswordUser(t)) || requirePeer(t, "ssh", "openssh-client") === undefined) return;
  const dir = keysDir(t);
  const askpass = join(dir, "askpass");
  writeFileSync(askpass, `#!/bin/sh\necho '${PW_PASSWORD}'\n`, { mode: 0o700 });
  const d = await startConchd(t, ["-d", join(dir, "hostkeys"), "-p", "tcp:0:interface=127.0.0.1", "-o", "AuthFailureDelay=0", "-o", "KbdInteractiveAuthentication=yes"]);
  for (const method of ["password", "keyboard-interactive"]) {
    const r = await runCommand(
      "ssh",
      ["-F", "/dev/null", "-p", String(d.port), "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no", "-o", "LogLevel=ERROR", "-o", `PreferredAuthentications=${method}`, "-o", "PubkeyAuthentication=no", "-o", "NumberOfPasswordPrompts=1", `${PW_USER}@127.0.0.1`, "id -un"],
      { env: { PATH: "/usr/bin:/bin", HOME: dir, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: ":0" }, timeoutMs: 60_000 },
    );
    assert.equal(r.code, 0, `${method}: ${r.stderr}`);
    assert.equal(r.stdout.toString(), `${PW_USER}\n`);
  }
  const log = JSON.stringify(d.lines());
  assert.ok(log.includes("authenticated with password"));
  assert.ok(log.includes("authenticated with keyboard-interactive"));
  assert.ok(!log.includes(PW_PASSWORD), "the password is not in the log");
});

test("run as twts-alice with nothing but a port, conchd makes host keys in her state folder and serves her from ~/.ssh/authorized_keys", async (t) => {
  const s = await setup(t);
  if (s === undefined) return;
  const sshDir = join(s.account.home, ".ssh");
  const ak = join(sshDir, "authorized_keys");
  const saved = existsSync(ak) ? readFileSync(ak) : undefined;
  t.after(() => (saved === undefined ? rmSync(ak, { force: true }) : writeFileSync(ak, saved)));
  mkdirSync(sshDir, { recursive: true, mode: 0o700 });
  chownSync(sshDir, s.account.uid, s.account.gid);
  writeFileSync(ak, s.key.pub, { mode: 0o600 });
  chownSync(ak, s.account.uid, s.account.gid);
  const home = tempDir(t, "conchd-alice-home-");
  chownSync(home, s.account.uid, s.account.gid);

  const d = await startConchd(t, ["-i", "127.0.0.1", "--port", "0"], { user: s.account.name, home });
  const stateDir = join(home, ".local", "state", "twisted-ts", "conchd");
  const edKey = join(stateDir, "ssh_host_ed25519_key");
  assert.equal(statSync(edKey).uid, s.account.uid);
  assert.equal(statSync(edKey).mode & 0o777, 0o600);
  const r = await ssh(t, d.port, s.key.path, s.account.name, [], ["id -un"]);
  assert.equal(r?.code, 0, r?.stderr);
  assert.equal(r?.out, `${s.account.name}\n`);
  const root = await ssh(t, d.port, s.key.path, "root", [], ["true"]);
  assert.notEqual(root?.code, 0, "a server that is not root serves only its own user");
  d.proc.kill("SIGTERM");
  assert.equal(await d.exited, 0);
});
