/**
 * Issue 11 (1): a session's processes run exactly as the user, as under OpenSSH's sshd. The same
 * commands go through a real sshd and through our server (Unix realm, `lookupUser` = /etc/passwd)
 * to the fixture account `twts-alice` (bash, home from /etc/skel, supplementary group
 * `twts-extra`), and `id`, `pwd`, `$HOME $SHELL $0` and the set of environment variable names must
 * agree: exec without a pty, exec with `ssh -tt` (node-pty), an interactive `-tt` login shell, and
 * a subsystem (sshd's `Subsystem`). Then OpenSSH's `sftp` through our server against the real
 * sftp-server: the file it writes belongs to the user. Last, our server run as twts-alice (not
 * root) refuses root's login, saying why, and serves twts-alice a terminal. Needs root (CI runs as
 * root) to make the account and to change uid; otherwise skipped locally.
 */
import { test, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { unix } from "@twisted-ts/conch";
import { fileURLToPath } from "node:url";
import { missing, requirePeer, runCommand, spawnPeer, tempDir } from "../_support/peers.js";
import { sshKeygen, startSshd } from "../_support/sshd.js";
import { TEST_GROUP, ensureTestUser, type TestAccount } from "../_support/users.js";
import { clientEnv, startOurServer, type OurServer } from "./_server_support.js";

const SFTP_SERVER = "/usr/lib/openssh/sftp-server";
/** A subsystem both servers run as `shell -c <line>`; sshd wants its first word to exist. */
const IDENV = "/usr/bin/id && pwd && env";

interface Target {
  port: number;
  user: string;
  keyPath: string;
}

interface Pair {
  account: TestAccount;
  ours: OurServer;
  sshd: Target;
}

/** The account, our server and a real sshd, both serving it with the same key; undefined when skipped. */
async function startPair(t: TestContext, subsystems: Record<string, string> = {}): Promise<Pair | undefined> {
  const account = ensureTestUser(t);
  if (account === undefined) return undefined;
  const ours = await startOurServer(t, {
    user: account.name,
    unixOptions: { lookupUser: (n) => unix.getpwnam(n), env: { SHLVL: "1" }, subsystems: { idenv: IDENV, ...subsystems } },
  });
  const sshd = await startSshd(t, { authorizedKeys: [ours.keyPub], config: [`Subsystem idenv ${IDENV}`] });
  if (sshd === undefined) return undefined;
  // sshd reads authorized_keys as the user: let twts-alice through the temp dir to it.
  chmodSync(sshd.dir, 0o711);
  chmodSync(join(sshd.dir, "authorized_keys"), 0o644);
  return { account, ours, sshd: { port: sshd.port, user: account.name, keyPath: ours.keyPath } };
}

/** Runs OpenSSH's ssh against `target`, with HOME `home` and a small environment of its own. */
async function ssh(t: TestContext, target: Target, home: string, extra: string[], command: string[], input?: string) {
  const bin = requirePeer(t, "ssh", "openssh-client");
  if (bin === undefined) return undefined;
  const args = [
    "-F", "/dev/null",
    "-p", String(target.port),
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=no",
    "-o", "LogLevel=ERROR",
    "-o", "BatchMode=yes",
    "-o", "IdentitiesOnly=yes",
    "-o", "SendEnv=TWTS_FROM_CLIENT",
    "-i", target.keyPath,
    ...extra,
    `${target.user}@127.0.0.1`,
    ...command,
  ];
  const r = await runCommand(bin, args, {
    env: { PATH: "/usr/bin:/bin", HOME: home, LANG: "C.UTF-8", TERM: "xterm", TWTS_FROM_CLIENT: "yes" },
    timeoutMs: 30_000,
    ...(input !== undefined ? { input } : {}),
  });
  return { code: r.code, out: r.stdout.toString().replaceAll("\r", ""), stderr: r.stderr };
}

/** What a session reports about itself, from `id`, `pwd`, `echo "$HOME $SHELL $0"` and `env`. */
interface Report {
  id: string;
  pwd: string;
  vars: string;
  names: string[];
  env: Record<string, string>;
}

const REPORT = 'echo MARK""BEGIN; id; pwd; echo "$HOME $SHELL $0"; env; echo MARK""END';

/** `id`, `pwd`, the `$HOME $SHELL $0` line when `hasVars`, then `env`'s output. */
function parseBody(body: string, hasVars = true): Report {
  const lines = body.split("\n");
  const id = lines.shift() ?? "";
  const pwd = lines.shift() ?? "";
  const vars = hasVars ? (lines.shift() ?? "") : "";
  const env: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf("=");
    // A line that does not start with NAME= is the tail of a multi-line value.
    if (i > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(line.slice(0, i))) env[line.slice(0, i)] = line.slice(i + 1);
  }
  return { id, pwd, vars, names: Object.keys(env).sort(), env };
}

function parseReport(out: string): Report {
  const m = /MARKBEGIN\n([\s\S]*?)MARKEND/.exec(out);
  assert.ok(m, `no report in ${JSON.stringify(out)}`);
  return parseBody(m[1]!);
}

/** The two reports agree on identity, directory, shell and environment names (values of sshd's own). */
function assertSame(ours: Report, theirs: Report, account: TestAccount): void {
  assert.equal(ours.id, theirs.id);
  assert.match(ours.id, new RegExp(`^uid=${account.uid}\\(${account.name}\\) gid=${account.gid}\\(.*groups=.*${account.extraGid}\\(${TEST_GROUP}\\)`));
  assert.equal(ours.pwd, theirs.pwd);
  assert.equal(ours.pwd, account.home);
  assert.equal(ours.vars, theirs.vars);
  assert.deepEqual(ours.names, theirs.names);
  for (const name of ["USER", "LOGNAME", "HOME", "PATH", "MAIL", "SHELL", "TERM", "TWTS_FROM_CLIENT"]) {
    assert.equal(ours.env[name], theirs.env[name], name);
  }
}

test("exec without a pty runs as the user: id, pwd, HOME/SHELL/$0 and env names as through sshd", async (t) => {
  const pair = await startPair(t);
  if (pair === undefined) return;
  const theirs = await ssh(t, pair.sshd, pair.ours.dir, [], [REPORT]);
  const ours = await ssh(t, pair.ours, pair.ours.dir, [], [REPORT]);
  if (theirs === undefined || ours === undefined) return;
  assert.equal(ours.code, 0, ours.stderr + pair.ours.logText());
  const o = parseReport(ours.out);
  assertSame(o, parseReport(theirs.out), pair.account);
  assert.equal(o.vars, `${pair.account.home} /bin/bash bash`);
  assert.equal(o.env["PATH"], unix.DEFAULT_USER_PATH);
  assert.equal(o.env["SSH_TTY"], undefined);
});

/**
 * Runs the same ssh through sshd and through ours with a terminal (`-tt`); checks that ours
 * succeeded and that both reports agree. Undefined when skipped.
 */
async function compareWithTerminal(t: TestContext, command: string[], input?: string): Promise<{ o: Report; out: string; account: TestAccount } | undefined> {
  if ((await unix.loadNodePty()) === undefined) {
    missing(t, "node-pty is not installed (npm install node-pty)");
    return undefined;
  }
  const pair = await startPair(t);
  if (pair === undefined) return undefined;
  const theirs = await ssh(t, pair.sshd, pair.ours.dir, ["-tt"], command, input);
  const ours = await ssh(t, pair.ours, pair.ours.dir, ["-tt"], command, input);
  if (theirs === undefined || ours === undefined) return undefined;
  assert.equal(ours.code, 0, ours.stderr + pair.ours.logText());
  const o = parseReport(ours.out);
  assertSame(o, parseReport(theirs.out), pair.account);
  return { o, out: ours.out, account: pair.account };
}

test("exec with ssh -tt (node-pty) runs as the user, on a terminal named in SSH_TTY, as through sshd", async (t) => {
  const r = await compareWithTerminal(t, [`${REPORT}; tty`]);
  if (r === undefined) return;
  const { o, out: ours } = r;
  assert.ok(o.names.includes("SSH_TTY") && o.names.includes("TERM"), o.names.join(" "));
  // SSH_TTY names the terminal the command runs on.
  assert.equal(ours.trimEnd().split("\n").at(-1), o.env["SSH_TTY"]);
  assert.match(o.env["SSH_TTY"] ?? "", /^\/dev\/pts\/\d+$/);
});

test("an interactive ssh -tt shell is the user's login shell (-bash) with the user's ids, as through sshd", async (t) => {
  // The pause before exit is for sshd: under load it can drop the last of a pty's output when the
  // shell exits at once (seen here: its report cut before MARKEND).
  const r = await compareWithTerminal(t, [], `${REPORT}; sleep 1; exit\n`);
  if (r === undefined) return;
  assert.equal(r.o.vars, `${r.account.home} /bin/bash -bash`);
});

test("a subsystem (sshd's Subsystem) runs as the user like exec, as through sshd", async (t) => {
  const pair = await startPair(t);
  if (pair === undefined) return;
  const theirs = await ssh(t, pair.sshd, pair.ours.dir, ["-s"], ["idenv"]);
  const ours = await ssh(t, pair.ours, pair.ours.dir, ["-s"], ["idenv"]);
  if (theirs === undefined || ours === undefined) return;
  assert.equal(ours.code, 0, ours.stderr + pair.ours.logText());
  // The subsystem prints id, pwd and env only.
  assertSame(parseBody(ours.out, false), parseBody(theirs.out, false), pair.account);
});

test("sftp through our server runs the real sftp-server as the user: the file it writes is the user's", async (t) => {
  const sftp = requirePeer(t, "sftp", "openssh-client");
  if (sftp === undefined) return;
  if (requirePeer(t, SFTP_SERVER, "openssh-sftp-server") === undefined) return;
  const pair = await startPair(t, { sftp: SFTP_SERVER });
  if (pair === undefined) return;
  const local = join(pair.ours.dir, "upload.txt");
  writeFileSync(local, "written over sftp\n");
  const remote = `twts-sftp-${process.pid}-${Date.now()}.txt`;
  const batch = join(pair.ours.dir, "batch");
  writeFileSync(batch, `put ${local} ${remote}\n`);
  const target = join(pair.account.home, remote);
  t.after(() => rmSync(target, { force: true }));
  const r = await runCommand(
    sftp,
    ["-F", "/dev/null", "-b", batch, "-P", String(pair.ours.port), "-o", "UserKnownHostsFile=/dev/null", "-o", "StrictHostKeyChecking=no",
      "-o", "IdentitiesOnly=yes", "-i", pair.ours.keyPath, `${pair.account.name}@127.0.0.1`],
    { env: clientEnv(pair.ours), timeoutMs: 30_000 },
  );
  assert.equal(r.code, 0, r.stderr + pair.ours.logText());
  const st = statSync(target);
  assert.equal(st.uid, pair.account.uid);
  assert.equal(st.gid, pair.account.gid);
  assert.match(pair.ours.logText(), /subsystem sftp for twts-alice: \/usr\/lib\/openssh\/sftp-server/);
});

test("a login whose key is good but whose name is not an account here is refused, never served as the server's user", async (t) => {
  const server = await startOurServer(t, { user: "twts-no-such-user", unixOptions: { lookupUser: (n) => unix.getpwnam(n) } });
  const r = await ssh(t, { port: server.port, user: server.user, keyPath: server.keyPath }, server.dir, [], ["id -u"]);
  if (r === undefined) return;
  assert.equal(r.code, 255);
  assert.equal(r.out, "");
  assert.match(r.stderr, /Permission denied \(publickey/);
  assert.match(server.logText(), /login refused: no such user "twts-no-such-user"/);
  assert.deepEqual(server.criticals(), []);
});

test("a server that is not root serves only its own user: another login is refused and says why; its own gets a terminal", async (t) => {
  const account = ensureTestUser(t);
  if (account === undefined) return;
  const dir = tempDir(t);
  const [keyPath, keyPub] = await sshKeygen(dir, "id_ed25519", "ed25519");
  const main = fileURLToPath(new URL("./_unix_server_main.js", import.meta.url));
  const spec = JSON.stringify({ keys: { [account.name]: keyPub, root: keyPub } });
  // The server itself runs as twts-alice, with the groups a login would give it.
  const server = spawnPeer(t, unix.SETPRIV_PATH, [`--reuid=${account.uid}`, `--regid=${account.gid}`, "--init-groups", "--", process.execPath, main, spec], {
    PATH: "/usr/bin:/bin",
  });
  const port = await firstLineJson(server);
  const asRoot = await ssh(t, { port, user: "root", keyPath }, dir, [], ["id -u"]);
  if (asRoot === undefined) return;
  assert.equal(asRoot.code, 255);
  assert.equal(asRoot.out, "");
  assert.match(server.output(), /login refused: the server is not running as root \(uid \d+\) and can only serve its own user; refusing "root" \(uid 0\)/);
  const own = await ssh(t, { port, user: account.name, keyPath }, dir, ["-tt"], [`${REPORT}; tty`]);
  assert.equal(own?.code, 0, `${own?.stderr}\n${server.output()}`);
  const report = parseReport(own!.out);
  assert.match(report.id, new RegExp(`^uid=${account.uid}\\(${account.name}\\) gid=${account.gid}\\(.*${account.extraGid}\\(${TEST_GROUP}\\)`));
  assert.equal(report.vars, `${account.home} /bin/bash bash`);
  assert.equal(report.env["SSH_TTY"], own!.out.trimEnd().split("\n").at(-1));
});

/** The port a spawned {@link _unix_server_main} prints on its first line. */
async function firstLineJson(child: ReturnType<typeof spawnPeer>): Promise<number> {
  for (let i = 0; i < 400; i++) {
    const line = /^\{.*\}\n/.exec(child.output());
    if (line !== null) return (JSON.parse(line[0]) as { port: number }).port;
    if (child.exitCode !== null) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the server did not start: ${child.output()}`);
}
