import { test } from "node:test";
import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { connection } from "@twisted-ts/conch/ssh";
import {
  applyOption,
  DEFAULT_SERVER_ALIVE_INTERVAL,
  ForwardingNotSupported,
  main,
  parseArgs,
  parseDynamicSpec,
  parseForwardSpec,
  parseJumpChain,
  setUpForwards,
  UsageError,
  wantsPty,
} from "@twisted-ts/conch/scripts/conch";

const env = { HOME: "/home/u" };
const parse = (...argv: string[]) => parseArgs(argv, env);

test("[user@]host [command]: the words after the host are the command", () => {
  const o = parse("-p", "2222", "alice@example.org", "ls", "-l", "/tmp");
  assert.equal(o.user, "alice");
  assert.equal(o.host, "example.org");
  assert.equal(o.port, 2222);
  assert.equal(o.command, "ls -l /tmp");
});

test("defaults: port 22, the local user, ~/.ssh/known_hosts, ask, keepalive on", () => {
  const o = parse("example.org");
  assert.equal(o.port, 22);
  assert.ok(o.user.length > 0);
  assert.equal(o.knownHosts, "/home/u/.ssh/known_hosts");
  assert.equal(o.policy, "ask");
  assert.equal(o.command, undefined);
  assert.equal(o.serverAliveInterval, DEFAULT_SERVER_ALIVE_INTERVAL);
  assert.equal(o.serverAliveCountMax, 3);
});

test("-l wins over user@, values may be attached (-p2222) and flags grouped (-tN)", () => {
  const o = parse("-lbob", "-p2222", "-tN", "-i", "k1", "-ik2", "alice@h");
  assert.equal(o.user, "bob");
  assert.equal(o.port, 2222);
  assert.equal(o.requestTTY, "yes");
  assert.equal(o.noCommand, true);
  assert.deepEqual(o.identities, ["k1", "k2"]);
});

test("-tt forces a pty, -T refuses one, -A forwards the agent", () => {
  assert.equal(parse("-tt", "h").requestTTY, "force");
  assert.equal(parse("-T", "h").requestTTY, "no");
  assert.equal(parse("-A", "h").forwardAgent, true);
});

test("options after the host belong to the command", () => {
  const o = parse("h", "-p", "5");
  assert.equal(o.port, 22);
  assert.equal(o.command, "-p 5");
});

test("bad command lines are UsageErrors with ssh's wording", () => {
  assert.throws(() => parse(), UsageError);
  assert.throws(() => parse("-p"), /option requires an argument -- p/);
  assert.throws(() => parse("-Z", "h"), /unknown option -- Z/);
  assert.throws(() => parse("-p", "http", "h"), UsageError);
  assert.throws(() => parse("-o", "Frobnicate=yes", "h"), /unsupported option "Frobnicate"/);
});

test("-o: known hosts, StrictHostKeyChecking, ServerAlive*, Port, User, RequestTTY, BatchMode", () => {
  const o = parse(
    "-o", "UserKnownHostsFile=/k",
    "-o", "StrictHostKeyChecking=yes",
    "-o", "ServerAliveInterval=0",
    "-o", "ServerAliveCountMax 5",
    "-o", "Port=2200",
    "-o", "User=carol",
    "-o", "RequestTTY=force",
    "-o", "BatchMode=yes",
    "h",
  );
  assert.equal(o.knownHosts, "/k");
  assert.equal(o.policy, "strict");
  assert.equal(o.serverAliveInterval, 0);
  assert.equal(o.serverAliveCountMax, 5);
  assert.equal(o.port, 2200);
  assert.equal(o.user, "carol");
  assert.equal(o.requestTTY, "force");
  assert.equal(o.batchMode, true);
  assert.equal(parse("-o", "StrictHostKeyChecking=accept-new", "h").policy, "accept-new");
  assert.equal(parse("-o", "StrictHostKeyChecking=no", "h").policy, "accept-new");
  assert.throws(() => parse("-o", "StrictHostKeyChecking=maybe", "h"), UsageError);
  assert.throws(() => parse("-o", "ServerAliveCountMax=0", "h"), UsageError);
});

test("-p beats -o Port", () => {
  assert.equal(parse("-p", "1", "-o", "Port=2", "h").port, 1);
});

test("-L [bind_address:]port:host:hostport, with IPv6 in brackets", () => {
  assert.deepEqual(parseForwardSpec("local", "8080:intranet:80"), { listen: { host: undefined, port: 8080 }, connect: ["intranet", 80] });
  assert.deepEqual(parseForwardSpec("local", "127.0.0.1:8080:intranet:80"), { listen: { host: "127.0.0.1", port: 8080 }, connect: ["intranet", 80] });
  assert.deepEqual(parseForwardSpec("local", "[::1]:8080:[2001:db8::1]:443"), { listen: { host: "::1", port: 8080 }, connect: ["2001:db8::1", 443] });
  assert.deepEqual(parseForwardSpec("local", "*:8080:h:80"), { listen: { host: "*", port: 8080 }, connect: ["h", 80] });
  assert.deepEqual(parseForwardSpec("local", ":8080:h:80"), { listen: { host: undefined, port: 8080 }, connect: ["h", 80] });
});

test("-L with Unix sockets at either end", () => {
  assert.deepEqual(parseForwardSpec("local", "8080:/run/app.sock"), { listen: { host: undefined, port: 8080 }, connect: { path: "/run/app.sock" } });
  assert.deepEqual(parseForwardSpec("local", "/tmp/l.sock:h:80"), { listen: { path: "/tmp/l.sock" }, connect: ["h", 80] });
  assert.deepEqual(parseForwardSpec("local", "/tmp/l.sock:/run/r.sock"), { listen: { path: "/tmp/l.sock" }, connect: { path: "/run/r.sock" } });
  assert.deepEqual(parseForwardSpec("local", "::1:8080:/run/app.sock".replace("::1", "[::1]")), { listen: { host: "::1", port: 8080 }, connect: { path: "/run/app.sock" } });
});

test("-R: the same forms, port 0 allowed, and [bind_address:]port alone is a SOCKS proxy", () => {
  assert.deepEqual(parseForwardSpec("remote", "0:localhost:22"), { listen: { host: undefined, port: 0 }, connect: ["localhost", 22] });
  assert.deepEqual(parseForwardSpec("remote", "1080"), { listen: { host: undefined, port: 1080 }, connect: undefined });
  assert.deepEqual(parseForwardSpec("remote", "[::]:1080"), { listen: { host: "::", port: 1080 }, connect: undefined });
  assert.deepEqual(parseForwardSpec("remote", "/tmp/r.sock:/tmp/l.sock"), { listen: { path: "/tmp/r.sock" }, connect: { path: "/tmp/l.sock" } });
});

test("bad forwarding specifications name the spec as ssh does", () => {
  assert.throws(() => parseForwardSpec("local", "8080"), /^UsageError: Bad local forwarding specification '8080'/);
  assert.throws(() => parseForwardSpec("local", "0:h:80"), /Bad local forwarding specification '0:h:80': port 0 is out of range/);
  assert.throws(() => parseForwardSpec("local", "8080:h:99999"), /Bad local/);
  assert.throws(() => parseForwardSpec("local", "8080::80"), /no host/);
  assert.throws(() => parseForwardSpec("local", "[::1:8080:h:80"), /unclosed \[/);
  assert.throws(() => parseForwardSpec("remote", "a:b:c:d:e"), /Bad remote forwarding specification 'a:b:c:d:e': too many fields/);
  assert.throws(() => parseForwardSpec("local", "/tmp/s:80"), /a socket forwards/);
});

test("-D [bind_address:]port or a socket path", () => {
  assert.deepEqual(parseDynamicSpec("1080"), { listen: { host: undefined, port: 1080 } });
  assert.deepEqual(parseDynamicSpec("localhost:1080"), { listen: { host: "localhost", port: 1080 } });
  assert.deepEqual(parseDynamicSpec("[::1]:1080"), { listen: { host: "::1", port: 1080 } });
  assert.deepEqual(parseDynamicSpec("/tmp/socks.sock"), { listen: { path: "/tmp/socks.sock" } });
  assert.throws(() => parseDynamicSpec("x"), /Bad dynamic forwarding specification 'x'/);
});

test("-L/-R/-D on the command line are parsed into the options, several of each", () => {
  const o = parse("-L", "1:h:2", "-L", "3:h:4", "-R", "5:h:6", "-D", "7", "-o", "LocalForward=9 h:10", "host");
  assert.equal(o.localForwards.length, 3);
  assert.deepEqual(o.localForwards[2], { listen: { host: undefined, port: 9 }, connect: ["h", 10] });
  assert.equal(o.remoteForwards.length, 1);
  assert.equal(o.dynamicForwards.length, 1);
});

test("-J: a comma-separated chain of [user@]host[:port], IPv6 in brackets", () => {
  assert.deepEqual(parseJumpChain("bastion"), [{ user: undefined, host: "bastion", port: 22 }]);
  assert.deepEqual(parseJumpChain("a@j1:2201,j2,[::1]:2203"), [
    { user: "a", host: "j1", port: 2201 },
    { user: undefined, host: "j2", port: 22 },
    { user: undefined, host: "::1", port: 2203 },
  ]);
  assert.deepEqual(parse("-J", "j1,j2", "h").jumps.length, 2);
  assert.deepEqual(parse("-o", "ProxyJump=none", "h").jumps, []);
  assert.throws(() => parseJumpChain("j1:port"), /Bad jump host 'j1:port'/);
  assert.throws(() => parseJumpChain("@j1"), /Bad jump host/);
});

test("wantsPty follows ssh: a terminal and no command, -t only with a terminal, -tt always, -T and -N never", () => {
  assert.equal(wantsPty(parse("h"), true), true);
  assert.equal(wantsPty(parse("h"), false), false);
  assert.equal(wantsPty(parse("h", "ls"), true), false);
  assert.equal(wantsPty(parse("-t", "h", "ls"), true), true);
  assert.equal(wantsPty(parse("-t", "h", "ls"), false), false);
  assert.equal(wantsPty(parse("-tt", "h", "ls"), false), true);
  assert.equal(wantsPty(parse("-T", "h"), true), false);
  assert.equal(wantsPty(parse("-N", "h"), true), false);
});

test("applyOption takes key=value and key value", () => {
  const o = parse("h");
  applyOption(o, "ServerAliveInterval 7");
  applyOption(o, "serveraliveinterval=8");
  assert.equal(o.serverAliveInterval, 8);
  assert.throws(() => applyOption(o, "novalue"), /bad -o setting/);
});

test("setUpForwards refuses what it cannot make (remote dynamic, -D on a Unix socket) with a clear error; nothing asked is fine", async () => {
  const conn = new connection.SSHConnection();
  await assert.rejects(setUpForwards(conn, parse("-R", "8080", "h")), (e: unknown) => {
    assert.ok(e instanceof ForwardingNotSupported);
    assert.equal(e.message, "remote dynamic forwarding (-R localhost:8080): not supported");
    return true;
  });
  await assert.rejects(setUpForwards(conn, parse("-D", "/tmp/socks.sock", "h")), ForwardingNotSupported);
  assert.deepEqual(await setUpForwards(conn, parse("h")), []);
});

test("main: a bad command line prints the usage and exits 255; --help prints it and exits 0", async () => {
  const out = new PassThrough();
  const err = new PassThrough();
  const io = { stdin: new PassThrough(), stdout: out, stderr: err, env };
  assert.equal(await main(["-L", "nonsense", "h"], io), 255);
  assert.match(String(err.read()), /^conch: Bad local forwarding specification 'nonsense'.*\nusage: conch/s);
  assert.equal(await main(["--help"], io), 0);
  assert.match(String(out.read()), /^usage: conch/);
});

test("-v counts: -v logs at info level, -vv at debug", () => {
  assert.equal(parse("h").verbose, 0);
  assert.equal(parse("-v", "h").verbose, 1);
  assert.equal(parse("-vv", "h").verbose, 2);
});

test("every bad -J, -L, -R, -D, -p or -o value is a UsageError, never another exception", () => {
  for (const argv of [
    ["-J", "[::1]:99999", "h"],
    ["-J", "[::1", "h"],
    ["-J", "a@", "h"],
    ["-L", "[", "h"],
    ["-R", "x:y", "h"],
    ["-D", "[::1]:0", "h"],
    ["-p", "0", "h"],
    ["-o", "RequestTTY=sometimes", "h"],
    ["-o", "ForwardAgent=maybe", "h"],
  ]) {
    assert.throws(() => parse(...argv), UsageError, argv.join(" "));
  }
});

test("the agent at SSH_AUTH_SOCK is used unless -o IdentityAgent=none; a path names another", () => {
  assert.equal(parse("h").identityAgent, undefined);
  assert.equal(parseArgs(["h"], { HOME: "/h", SSH_AUTH_SOCK: "/tmp/agent.sock" }).identityAgent, "/tmp/agent.sock");
  assert.equal(parseArgs(["-o", "IdentityAgent=none", "h"], { HOME: "/h", SSH_AUTH_SOCK: "/tmp/agent.sock" }).identityAgent, undefined);
  assert.equal(parse("-o", "IdentityAgent=/run/a.sock", "h").identityAgent, "/run/a.sock");
});
