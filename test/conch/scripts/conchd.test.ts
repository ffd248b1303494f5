/**
 * `conchd`'s pieces that need no network: the sshd_config-style file, command-line overrides,
 * token expansion, host key generation, the checkers (authorized_keys files, pamtester,
 * PermitRootLogin), log lines and the worker restart backoff.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { UsernamePassword, SSHPrivateKey } from "@twisted-ts/cred/credentials";
import { UnauthorizedLogin } from "@twisted-ts/cred/error";
import type { ICredentialsChecker } from "@twisted-ts/cred/checkers";
import { succeed } from "@twisted-ts/internet/defer";
import {
  AuthorizedKeysFiles,
  ConchdFactory,
  type ConchdServerTransport,
  ConfigError,
  PamtesterChecker,
  RootLoginChecker,
  defaultHostKeyDirectory,
  dumpConfig,
  expandTokens,
  generateMissingHostKeys,
  lineFields,
  loadHostKeys,
  parseArgs,
  parseConfig,
  parseSize,
  parseTime,
  readCAKeys,
  restartDelay,
  tokenize,
  unsafePath,
  type ConchdConfig,
} from "@twisted-ts/conch/scripts/conchd";
import { connection, keys, userauth } from "@twisted-ts/conch/ssh";
import { tempDir } from "../../_support/peers.js";
import { CTX, parse } from "./_conchd_support.js";


function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `a ConfigError, not ${String(e)}`);
    return e;
  }
  assert.fail("no error");
}

test("an empty config has OpenSSH's defaults and listens on port 22 everywhere", () => {
  const c = parse("");
  assert.deepEqual(c.listen, ["tcp:22"]);
  assert.equal(c.maxAuthTries, 6);
  assert.equal(c.maxSessions, 10);
  assert.equal(c.loginGraceTime, 120);
  assert.equal(c.permitRootLogin, "prohibit-password");
  assert.equal(c.passwordAuthentication, true);
  assert.equal(c.kbdInteractiveAuthentication, false);
  assert.deepEqual(c.authorizedKeysFile, [".ssh/authorized_keys", ".ssh/authorized_keys2"]);
  assert.deepEqual(c.subsystem, { sftp: "internal-sftp" });
  assert.equal(c.hostKeyDirectory, CTX.hostKeyDirectory);
  assert.equal(c.workers, 1);
});

test("keywords are case-insensitive, take `=` or spaces, skip comments, and the first value wins", () => {
  const c = parse(["# a comment", "", "maxauthtries 3", "MaxAuthTries 9", "  LoginGraceTime=1m30s", 'Banner "/etc/my banner"', "PermitRootLogin without-password"].join("\n"));
  assert.equal(c.maxAuthTries, 3);
  assert.equal(c.loginGraceTime, 90);
  assert.equal(c.banner, "/etc/my banner");
  assert.equal(c.permitRootLogin, "prohibit-password");
});

test("list keywords collect every line: Port with ListenAddress, HostKey, Subsystem, SetEnv", () => {
  const c = parse(["Port 2222", "Port 2223", "ListenAddress 127.0.0.1", "ListenAddress [::1]:2300", "ListenEndpoint haproxy:tcp:2400", "HostKey /k1", "HostKey /k2", "Subsystem sftp /usr/lib/openssh/sftp-server", "Subsystem x /bin/x -a", "SetEnv A=1 B=2"].join("\n"));
  assert.deepEqual(c.listen, ["tcp:2222:interface=127.0.0.1", "tcp:2223:interface=127.0.0.1", "tcp6:2300:interface=\\:\\:1", "haproxy:tcp:2400"]);
  assert.deepEqual(c.hostKey, ["/k1", "/k2"]);
  assert.deepEqual(c.subsystem, { sftp: "/usr/lib/openssh/sftp-server", x: "/bin/x -a" });
  assert.deepEqual(c.setEnv, { A: "1", B: "2" });
});

test("an unknown keyword is refused with its line number", () => {
  const e = errorOf(() => parse("Port 2222\n\n# c\nPermitRootLogn no\n"));
  assert.equal(e.line, 4);
  assert.match(e.message, /^conchd\.conf line 4: unknown keyword "PermitRootLogn"$/);
});

test("bad values are refused with the line number and what was expected", () => {
  const cases: Array<[string, RegExp]> = [
    ["MaxAuthTries many", /line 1: MaxAuthTries: expected a whole number, not "many"/],
    ["Port 70000", /line 1: Port: 70000 is out of range/],
    ["PasswordAuthentication maybe", /line 1: PasswordAuthentication: expected yes or no/],
    ["PermitRootLogin sometimes", /line 1: PermitRootLogin: expected one of yes, prohibit-password/],
    ["LoginGraceTime soon", /line 1: LoginGraceTime: expected a time/],
    ["LogFormat xml", /line 1: LogFormat: expected one of text, json/],
    ["MaxAuthTries", /line 1: MaxAuthTries needs a value/],
    ['Banner "open', /line 1: unterminated quote/],
    ["AuthorizedKeysFile %h/.ssh/%x", /line 1: AuthorizedKeysFile: unknown token %x/],
    ["Subsystem sftp a\nSubsystem sftp b", /line 2: Subsystem: subsystem "sftp" is already defined/],
    ["MaxSessions 1 2", /line 1: MaxSessions: takes one value, not 2/],
    ["= value", /line 1: cannot read/],
  ];
  for (const [text, re] of cases) assert.match(errorOf(() => parse(text)).message, re, text);
});

test("sshd keywords conchd has no use for are warned about and ignored", () => {
  const r = parseConfig(tokenize("UsePAM yes\nPrintMotd no\n", "f"), CTX);
  assert.deepEqual(r.warnings, ["f line 1: UsePAM is not used by conchd; ignored", "f line 2: PrintMotd is not used by conchd; ignored"]);
});

test("AuthorizedKeysFile tokens: %h, %u, %U and %% expand for the user", () => {
  const user = { name: "alice", home: "/home/alice", uid: 1001 };
  assert.equal(expandTokens("%h/.ssh/keys_%u_%U_100%%", user), "/home/alice/.ssh/keys_alice_1001_100%");
  assert.deepEqual(parse("AuthorizedKeysFile /etc/keys/%u .ssh/authorized_keys").authorizedKeysFile, ["/etc/keys/%u", ".ssh/authorized_keys"]);
  assert.deepEqual(parse("AuthorizedKeysFile none").authorizedKeysFile, []);
});

test("times and sizes read as sshd's convtime and RekeyLimit", () => {
  assert.equal(parseTime("0"), 0);
  assert.equal(parseTime("1h30m5"), 5405);
  assert.equal(parseTime("2W"), 1209600);
  assert.equal(parseSize("512M"), 512 * 1024 * 1024);
  assert.deepEqual(parse("RekeyLimit 1G 1h").rekeyLimit, [1024 ** 3, 3600]);
  assert.deepEqual(parse("RekeyLimit default none").rekeyLimit, [0, 0]);
});

test("command-line options win over the file: -o and named options for single keywords, whole lists replaced", () => {
  const file = "MaxAuthTries 3\nLogFormat text\nHostKey /file-key\nWorkers 4\nAuthorizedKeysFile .ssh/a\n";
  const c = parse(file, ["-o", "MaxAuthTries=5", "--log-format", "json", "-o", "HostKey /cli-key", "--workers", "2", "-d", "/keys", "-o", "AuthorizedKeysFile=/x/%u /y/%u"]);
  assert.equal(c.maxAuthTries, 5);
  assert.equal(c.logFormat, "json");
  assert.deepEqual(c.hostKey, ["/cli-key"]);
  assert.equal(c.workers, 2);
  assert.equal(c.hostKeyDirectory, "/keys");
  assert.deepEqual(c.authorizedKeysFile, ["/x/%u", "/y/%u"]);
});

test("-p replaces Port and ListenAddress; a bare number is tcp:N, on -i's interface when given", () => {
  const file = "Port 22\nListenAddress 0.0.0.0\n";
  assert.deepEqual(parse(file, ["-p", "2222", "-p", "haproxy:tcp:2223", "-p", "unix:/run/c.sock"]).listen, ["tcp:2222", "haproxy:tcp:2223", "unix:/run/c.sock"]);
  assert.deepEqual(parse(file, ["-p", "2222", "-i", "127.0.0.1"]).listen, ["tcp:2222:interface=127.0.0.1"]);
  assert.deepEqual(parse("Port 2200\nListenAddress 10.0.0.1\n", ["-i", "::1"]).listen, ["tcp6:2200:interface=\\:\\:1"]);
  assert.throws(() => parseArgs(["--bogus"]), /unknown option "--bogus"/);
  assert.throws(() => parseArgs(["-p"]), /-p needs a value/);
  assert.equal(parseArgs(["-t"]).mode, "test");
  assert.equal(parseArgs(["-T"]).mode, "dump");
});

test("-T prints every keyword in lowercase with its effective value", () => {
  const out = dumpConfig(parse("MaxAuthTries 4\nSubsystem sftp internal-sftp\n", ["-p", "tcp:2222"]));
  assert.match(out, /^maxauthtries 4$/m);
  assert.match(out, /^passwordauthentication yes$/m);
  assert.match(out, /^subsystem sftp internal-sftp$/m);
  assert.match(out, /^listen tcp:2222$/m);
});

test("the default host key folder: /etc/ssh for root, the XDG state folder otherwise", () => {
  assert.equal(defaultHostKeyDirectory(0, {}), "/etc/ssh");
  assert.equal(defaultHostKeyDirectory(1000, { HOME: "/home/a" }), "/home/a/.local/state/twisted-ts/conchd");
  assert.equal(defaultHostKeyDirectory(1000, { HOME: "/home/a", XDG_STATE_HOME: "/s" }), "/s/twisted-ts/conchd");
});

test("missing host keys are generated as ssh-keygen -A (ed25519, ECDSA P-256, RSA 3072, mode 0600) once", (t) => {
  const dir = join(tempDir(t, "conchd-hk-"), "keys");
  const made = generateMissingHostKeys(dir);
  assert.deepEqual(made.map((p) => p.slice(dir.length + 1)), ["ssh_host_ed25519_key", "ssh_host_ecdsa_key", "ssh_host_rsa_key"]);
  for (const p of made) assert.equal(statSync(p).mode & 0o777, 0o600, p);
  assert.equal(statSync(dir).mode & 0o777, 0o700);
  assert.deepEqual(generateMissingHostKeys(dir), []);
  const loaded = loadHostKeys([], dir, []);
  assert.deepEqual(Object.keys(loaded.privateKeys), ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"]);
  assert.equal(loaded.privateKeys["ssh-rsa"]!.size(), 3072);
  writeFileSync(join(dir, "bad"), "not a key", { mode: 0o600 });
  assert.throws(() => loadHostKeys([join(dir, "bad")], dir, []), /host key .*bad/);
  chmodSync(made[0]!, 0o644);
  assert.throws(() => loadHostKeys([made[0]!], dir, []), /host key .*ssh_host_ed25519_key: its mode 0644 lets others read it/);
  chmodSync(`${made[0]!}.pub`, 0o600);
  assert.throws(() => loadHostKeys([`${made[0]!}.pub`], dir, []), /is a public key/);
  assert.throws(() => loadHostKeys([], join(dir, "empty"), []), /no host keys/);
});

test("the factory gives each connection the config's limits: transport, userauth and connection", (t) => {
  const dir = join(tempDir(t, "conchd-f-"), "keys");
  generateMissingHostKeys(dir);
  const config = parse(
    "MaxAuthTries 3\nMaxSessions 2\nLoginGraceTime 30\nMaxPacketLength 65536\nMaxVersionLength 1024\nDHGroupExchangeMinBits 3072\nDHGroupExchangeMaxBits 4096\nRekeyLimit 512M 10m\nAuthFailureDelay 2\nMaxOpenChannels 50\nRequiredRSASize 2048\nPermitTTY no\nAllowTcpForwarding no\n",
  );
  const f = new ConchdFactory();
  f.configure(config, loadHostKeys([], dir, []), { pamtester: undefined });
  f.idPrefix = "w3";
  const tr = f.buildProtocol({ type: "TCP", host: "127.0.0.1", port: 1 } as never) as ConchdServerTransport;
  assert.match(tr.connectionId, /^w3c\d+$/);
  assert.deepEqual(
    [tr.loginGraceTime, tr.maxPacketLength, tr.maxVersionLength, tr.gexMinBits, tr.gexMaxBits, tr.rekeyBytes, tr.rekeyInterval],
    [30, 65536, 1024, 3072, 4096, 512 * 1024 * 1024, 600],
  );
  const ua = new f.services["ssh-userauth"]!() as userauth.SSHUserAuthServer;
  assert.deepEqual([ua.maxAuthTries, ua.passwordDelay, ua.requiredRSASize], [3, 2, 2048]);
  const conn = new f.services["ssh-connection"]!() as connection.SSHConnection;
  assert.deepEqual([conn.maxSessions, conn.maxOpenChannels], [2, 50]);
  assert.equal(f.authSettings.permitTTY, false);
  assert.equal(f.forwardingPolicy.allowTcpForwarding, "no");
  // Without pamtester, only publickey is offered.
  assert.deepEqual(f.portal?.listCredentialsInterfaces().map((i) => i.name), ["ISSHPrivateKey"]);
});

test("TrustedUserCAKeys: keys one per line; a bad line is refused with its number", (t) => {
  const dir = tempDir(t, "conchd-ca-");
  const ca = keys.Key.generate("ed25519").public();
  writeFileSync(join(dir, "ca.pub"), `# our CA\n${ca.toString("openssh")}\n\n`);
  assert.equal(readCAKeys(join(dir, "ca.pub"))[0]!.fingerprint("sha256"), ca.fingerprint("sha256"));
  writeFileSync(join(dir, "bad.pub"), `${ca.toString("openssh")}\nssh-ed25519 nonsense\n`);
  assert.throws(() => readCAKeys(join(dir, "bad.pub")), /TrustedUserCAKeys .*bad\.pub line 2: /);
});

test("AuthorizedKeysFiles reads the files on every attempt, relative ones under the home", (t) => {
  const home = tempDir(t, "conchd-home-");
  const db = new AuthorizedKeysFiles([".ssh/none", "%h/keys_%u"], (n) => (n === "alice" ? { home, uid: 1001 } : undefined));
  assert.deepEqual(db.filesFor("alice"), [join(home, ".ssh/none"), join(home, "keys_alice")]);
  assert.deepEqual(db.getAuthorizedKeys("alice"), []);
  const k1 = keys.Key.generate("ed25519").public();
  writeFileSync(join(home, "keys_alice"), `${k1.toString("openssh")}\n`);
  assert.equal(db.getAuthorizedKeys("alice").length, 1);
  const k2 = keys.Key.generate("ed25519").public();
  writeFileSync(join(home, "keys_alice"), `${k1.toString("openssh")}\nno-pty ${k2.toString("openssh")}\n`);
  const got = db.getAuthorizedKeys("alice");
  assert.equal(got.length, 2);
  assert.equal(got[1]!.options.pty, false);
  assert.deepEqual(db.getAuthorizedKeys("bob"), []);
});

test("StrictModes: authorized_keys that others could have written are refused, up to the home folder", (t) => {
  const home = tempDir(t, "conchd-strict-");
  const file = join(home, "keys");
  const key = keys.Key.generate("ed25519").public();
  writeFileSync(file, `${key.toString("openssh")}\n`, { mode: 0o600 });
  const uid = process.getuid?.() ?? 0;
  assert.equal(unsafePath(file, uid, home), undefined);
  chmodSync(file, 0o664);
  assert.equal(unsafePath(file, uid, home), `bad ownership or modes for file ${file}`);
  chmodSync(file, 0o600);
  chmodSync(home, 0o777);
  assert.equal(unsafePath(file, uid, home), `bad ownership or modes for directory ${home}`);
  chmodSync(home, 0o700);
  // Outside the home, the walk goes on up to /tmp, which anyone may write.
  assert.match(unsafePath(file, uid, "/nonexistent") ?? "", /^bad ownership or modes for directory \/tmp$/);
  const db = new AuthorizedKeysFiles([file], () => ({ home: "/nonexistent", uid }));
  assert.equal(db.getAuthorizedKeys("alice").length, 0);
  db.strictModes = false;
  assert.equal(db.getAuthorizedKeys("alice").length, 1);
  assert.equal(parse("StrictModes no").strictModes, false);
});

/** A stand-in for pamtester that logs its argv and run times, and accepts the password "right". */
function fakePamtester(dir: string): string {
  const path = join(dir, "pamtester");
  writeFileSync(
    path,
    `#!/bin/sh\necho "start $*" >> ${dir}/calls\nread -r pw\nsleep 0.3\necho "end" >> ${dir}/calls\n[ "$pw" = right ]\n`,
  );
  chmodSync(path, 0o755);
  return path;
}

test("PamtesterChecker: the password goes on stdin, never argv; runs are bounded; a wrong one fails", async (t) => {
  const dir = tempDir(t, "conchd-pam-");
  const checker = new PamtesterChecker(fakePamtester(dir), "sshd", 2);
  const user = "root";
  const ok = await checker.requestAvatarId(new UsernamePassword(user, "right")).asPromise();
  assert.equal(ok, user);
  await assert.rejects(checker.requestAvatarId(new UsernamePassword(user, "wrong")).asPromise(), UnauthorizedLogin);
  await assert.rejects(checker.requestAvatarId(new UsernamePassword("no-such-user-here", "right")).asPromise(), UnauthorizedLogin);
  await assert.rejects(checker.requestAvatarId(new UsernamePassword("-h", "right")).asPromise(), UnauthorizedLogin);
  const calls = () => readFileSync(join(dir, "calls"), "utf8");
  assert.ok(!calls().includes("right") && !calls().includes("wrong"), "no password on the command line");
  assert.match(calls(), /^start sshd root authenticate acct_mgmt$/m);

  writeFileSync(join(dir, "calls"), "");
  await Promise.all([1, 2, 3, 4, 5].map(() => checker.requestAvatarId(new UsernamePassword(user, "right")).asPromise()));
  let running = 0;
  let most = 0;
  for (const line of calls().trim().split("\n")) {
    running += line.startsWith("start") ? 1 : -1;
    most = Math.max(most, running);
  }
  assert.equal(most, 2, "at most PAMMaxConcurrent pamtester runs at once");
});

test("PermitRootLogin: prohibit-password refuses root's password before PAM, no refuses keys too, forced-commands-only needs command=", async () => {
  let asked = 0;
  const inner: ICredentialsChecker = {
    credentialInterfaces: [],
    requestAvatarId: (c) => {
      asked++;
      return succeed((c as { username: string }).username);
    },
  };
  const uidOf = (n: string): number | undefined => (n === "root" ? 0 : 1000);
  const keyCreds = (command?: string): SSHPrivateKey => {
    const c = new SSHPrivateKey("root", "ssh-ed25519", new Uint8Array(), undefined, undefined);
    c.keyOptions = { command };
    return c;
  };
  const run = async (policy: "yes" | "prohibit-password" | "forced-commands-only" | "no", creds: object): Promise<string> => {
    try {
      return String(await Promise.resolve(new RootLoginChecker(inner, policy, uidOf).requestAvatarId(creds)));
    } catch (e) {
      return e instanceof UnauthorizedLogin ? "refused" : String(e);
    }
  };
  assert.equal(await run("prohibit-password", new UsernamePassword("root", "pw")), "refused");
  assert.equal(asked, 0, "root's password never reached the checker");
  assert.equal(await run("prohibit-password", new UsernamePassword("alice", "pw")), "alice");
  assert.equal(await run("prohibit-password", keyCreds()), "root");
  assert.equal(await run("yes", new UsernamePassword("root", "pw")), "root");
  assert.equal(await run("no", keyCreds()), "refused");
  assert.equal(await run("forced-commands-only", keyCreds()), "refused");
  assert.equal(await run("forced-commands-only", keyCreds("/usr/bin/backup")), "root");
});

test("a log line about a connection carries its id, the peer's ip:port and the user", () => {
  const conn = { connectionId: "w2c7", peerLabel: () => "127.0.0.1:50000", userLabel: () => "alice" };
  const channel = { conn: { transport: conn } };
  const f = lineFields({ log_format: "opened {what}", log_level: "info", log_namespace: "ns", log_time: 0, log_source: channel, what: "x" }, { worker: 2 });
  assert.deepEqual(f, { time: "1970-01-01T00:00:00.000Z", level: "info", namespace: "ns", worker: 2, conn: "w2c7", peer: "127.0.0.1:50000", user: "alice", msg: "opened x", what: "x" });
  const session = { channel };
  assert.equal(lineFields({ log_format: "shell closed", log_level: "info", log_namespace: "ns", log_time: 0, log_source: session })["conn"], "w2c7");
  const plain = lineFields({ log_format: "hi {user}", log_level: "warn", log_namespace: "ns", log_time: 0, user: '"bob"', peer: "x" });
  assert.deepEqual([plain["peer"], plain["user"], plain["msg"]], [undefined, undefined, 'hi "bob"']);
});

test("a worker that keeps dying is restarted after 0, 1, 2, 4 … seconds, at most 30", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7].map(restartDelay), [0, 1, 2, 4, 8, 16, 30, 30]);
});
