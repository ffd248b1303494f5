/**
 * `ssh/authopt`: the record of what a login may do, made from authorized_keys options and the
 * server's settings, and the checks the session and connection layers make with it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkers } from "@twisted-ts/conch";
import { authopt, common, forwarding } from "@twisted-ts/conch/ssh";

const { authOptionsFor, parseHostPort } = authopt;
const key = (options: string): checkers.AuthorizedKeyOptions => checkers.parseAuthorizedKeyOptions(options);

test("a login without key options under sshd's defaults: all but X11 and tunnels allowed, nothing forced", () => {
  const o = authOptionsFor(undefined);
  assert.deepEqual(o, {
    permitPty: true,
    permitPortForwarding: true,
    permitStreamLocalForwarding: true,
    permitAgentForwarding: true,
    permitX11Forwarding: false,
    permitUserRc: true,
    permitTunnel: false,
    forceCommand: undefined,
    forceTunnelDevice: undefined,
    environment: [],
    permitOpen: undefined,
    permitListen: undefined,
    principals: undefined,
    restricted: false,
  });
  assert.deepEqual(authOptionsFor(key("")), o, "an empty options list is the same");
});

test("DEFAULT_SERVER_AUTH_SETTINGS are sshd's and cannot be changed by accident", () => {
  assert.deepEqual(authopt.DEFAULT_SERVER_AUTH_SETTINGS, {
    permitUserEnvironment: false,
    permitTTY: true,
    allowTcpForwarding: true,
    allowStreamLocalForwarding: true,
    allowAgentForwarding: true,
    x11Forwarding: false,
    permitTunnel: false,
  });
  assert.ok(Object.isFrozen(authopt.DEFAULT_SERVER_AUTH_SETTINGS));
});

test("each server setting narrows what every login may do, whatever its key allows", () => {
  const k = key("");
  assert.equal(authOptionsFor(k, { permitTTY: false }).permitPty, false);
  const noTcp = authOptionsFor(k, { allowTcpForwarding: false });
  assert.deepEqual([noTcp.permitPortForwarding, noTcp.permitStreamLocalForwarding], [false, true]);
  const noLocal = authOptionsFor(k, { allowStreamLocalForwarding: false });
  assert.deepEqual([noLocal.permitPortForwarding, noLocal.permitStreamLocalForwarding], [true, false]);
  assert.equal(authOptionsFor(k, { allowAgentForwarding: false }).permitAgentForwarding, false);
  assert.equal(authOptionsFor(k, { x11Forwarding: true }).permitX11Forwarding, true);
  assert.equal(authOptionsFor(k, { permitTunnel: true }).permitTunnel, true);
});

test("PermitUserEnvironment: environment= is kept (as name/value pairs) only when it is on", () => {
  const k = key('environment="A=1",environment="B=x=y"');
  assert.deepEqual(authOptionsFor(k).environment, []);
  assert.deepEqual(authOptionsFor(k, { permitUserEnvironment: true }).environment, [
    ["A", "1"],
    ["B", "x=y"],
  ]);
});

test("each key option lands in its field", () => {
  assert.equal(authOptionsFor(key("no-pty")).permitPty, false);
  const nf = authOptionsFor(key("no-port-forwarding"));
  assert.deepEqual([nf.permitPortForwarding, nf.permitStreamLocalForwarding], [false, false]);
  assert.equal(authOptionsFor(key("no-agent-forwarding")).permitAgentForwarding, false);
  assert.equal(authOptionsFor(key("no-X11-forwarding"), { x11Forwarding: true }).permitX11Forwarding, false);
  assert.equal(authOptionsFor(key("no-user-rc")).permitUserRc, false);
  assert.equal(authOptionsFor(key('command="uptime"')).forceCommand, "uptime");
  assert.equal(authOptionsFor(key('tunnel="7"')).forceTunnelDevice, 7);
  assert.deepEqual(authOptionsFor(key('principals="alice,bob"')).principals, ["alice", "bob"]);
  assert.deepEqual(authOptionsFor(key('permitopen="db:5432",permitopen="[::1]:*"')).permitOpen, [
    { host: "db", port: 5432 },
    { host: "::1", port: "*" },
  ]);
  assert.deepEqual(authOptionsFor(key('permitlisten="8080",permitlisten="localhost:*"')).permitListen, [
    { host: "*", port: 8080 },
    { host: "localhost", port: "*" },
  ]);
});

test("restrict turns every permission off; each re-enable turns one back on, left to right", () => {
  const r = authOptionsFor(key("restrict"), { x11Forwarding: true });
  assert.deepEqual(
    [r.permitPty, r.permitPortForwarding, r.permitStreamLocalForwarding, r.permitAgentForwarding, r.permitX11Forwarding, r.permitUserRc, r.restricted],
    [false, false, false, false, false, false, true],
  );
  const on = (opt: string) => authOptionsFor(key(`restrict,${opt}`), { x11Forwarding: true });
  assert.equal(on("pty").permitPty, true);
  assert.equal(on("port-forwarding").permitPortForwarding, true);
  assert.equal(on("port-forwarding").permitPty, false);
  assert.equal(on("agent-forwarding").permitAgentForwarding, true);
  assert.equal(on("x11-forwarding").permitX11Forwarding, true);
  assert.equal(on("user-rc").permitUserRc, true);
  assert.equal(authOptionsFor(key("pty,restrict")).permitPty, false, "a re-enable before restrict is undone");
});

test("parseHostPort: host:port, [v6]:port, * for either; permitlisten takes a bare port", () => {
  assert.deepEqual(parseHostPort("db.example:5432"), { host: "db.example", port: 5432 });
  assert.deepEqual(parseHostPort("[2001:db8::1]:22"), { host: "2001:db8::1", port: 22 });
  assert.deepEqual(parseHostPort("*:*"), { host: "*", port: "*" });
  assert.deepEqual(parseHostPort("8080", true), { host: "*", port: 8080 });
  assert.deepEqual(parseHostPort("*", true), { host: "*", port: "*" });
  for (const bad of ["db", "::1:22", "db:0", "db:65536", "db:", ":22", "db:http", "[::1]", "[::1]22", "db:22:33"]) {
    assert.throws(() => parseHostPort(bad), authopt.AuthOptionsError, bad);
  }
  assert.throws(() => parseHostPort("", true), authopt.AuthOptionsError);
  const e = (() => {
    try {
      parseHostPort("db");
    } catch (x) {
      return x as authopt.AuthOptionsError;
    }
    return undefined;
  })();
  assert.equal(e?.code, "ERR_SSH_AUTH_OPTIONS");
});

test("parseEnvironment splits at the first =; a bad name is an AuthOptionsError", () => {
  assert.deepEqual(authopt.parseEnvironment("PATH=/a:/b=c"), ["PATH", "/a:/b=c"]);
  assert.deepEqual(authopt.parseEnvironment("EMPTY="), ["EMPTY", ""]);
  for (const bad of ["=x", "1A=x", "A B=x", "NOVALUE"]) assert.throws(() => authopt.parseEnvironment(bad), authopt.AuthOptionsError, bad);
});

test("authorized_keys lines with a bad permitopen, permitlisten or environment are refused, as sshd does", () => {
  for (const bad of ['permitopen="db"', 'permitopen="db:0"', 'permitlisten="host:"', 'environment="=x"']) {
    assert.throws(() => checkers.parseAuthorizedKeyOptions(bad), checkers.AuthorizedKeysParseError, bad);
  }
});

test("permitsOpen: hosts compared literally (no lookup, no patterns but *), port or *", () => {
  const o = authOptionsFor(key('permitopen="db:5432",permitopen="*:443",permitopen="[::1]:*"'));
  assert.equal(authopt.permitsOpen(o, "db", 5432), true);
  assert.equal(authopt.permitsOpen(o, "db", 5433), false);
  assert.equal(authopt.permitsOpen(o, "db.internal", 5432), false);
  assert.equal(authopt.permitsOpen(o, "anything", 443), true);
  assert.equal(authopt.permitsOpen(o, "::1", 1), true);
  assert.equal(authopt.permitsOpen(o, "d?", 5432), false);
  assert.equal(authopt.permitsOpen(authOptionsFor(key("")), "anywhere", 1), true, "no permitopen: any");
});

test("permitsListen: the requested host lower-cased and matched as a pattern, as sshd; port 0 only under *", () => {
  assert.equal(authopt.permitsListen(authOptionsFor(key('permitlisten="LocalHost:8080"')), "LocalHost", 8080), false, "sshd lower-cases the request only");
  const o = authOptionsFor(key('permitlisten="localhost:8080",permitlisten="10.0.0.*:9000"'));
  assert.equal(authopt.permitsListen(o, "localhost", 8080), true);
  assert.equal(authopt.permitsListen(o, "LOCALHOST", 8080), true);
  assert.equal(authopt.permitsListen(o, "localhost", 8081), false);
  assert.equal(authopt.permitsListen(o, "10.0.0.7", 9000), true);
  assert.equal(authopt.permitsListen(o, "10.0.1.7", 9000), false);
  assert.equal(authopt.permitsListen(o, "localhost", 0), false);
  assert.equal(authopt.permitsListen(authOptionsFor(key('permitlisten="*"')), "localhost", 0), true);
});

test("mergeAuthOptions: permissions where both allow; valued options from the first that has them", () => {
  const a = authOptionsFor(key('no-pty,command="first"'));
  const b = authOptionsFor(key('no-agent-forwarding,command="second",permitopen="db:1"'), { permitUserEnvironment: true });
  const m = authopt.mergeAuthOptions(a, b);
  assert.equal(m.permitPty, false);
  assert.equal(m.permitAgentForwarding, false);
  assert.equal(m.permitPortForwarding, true);
  assert.equal(m.forceCommand, "first");
  assert.deepEqual(m.permitOpen, [{ host: "db", port: 1 }]);
  assert.equal(authopt.mergeAuthOptions(b, a).forceCommand, "second");
});

test("channelOpenRefusal: direct-tcpip, direct-streamlocal and tun are checked; other types are the avatar's", () => {
  const open = (host: string, port: number) => forwarding.packOpen_direct_tcpip([host, port], ["127.0.0.1", 1]);
  const nf = authOptionsFor(key("no-port-forwarding"));
  assert.equal(authopt.channelOpenRefusal(nf, "direct-tcpip", open("db", 1)), "port forwarding is not permitted for this login");
  assert.match(authopt.channelOpenRefusal(nf, "direct-streamlocal@openssh.com", new Uint8Array(0)) ?? "", /stream-local/);
  assert.equal(authopt.channelOpenRefusal(nf, "session", new Uint8Array(0)), undefined);
  assert.equal(authopt.channelOpenRefusal(nf, "x-vendor@example.com", new Uint8Array(0)), undefined);
  const po = authOptionsFor(key('permitopen="db:1"'));
  assert.equal(authopt.channelOpenRefusal(po, "direct-tcpip", open("db", 1)), undefined);
  assert.equal(authopt.channelOpenRefusal(po, "direct-tcpip", open("db", 2)), "db:2 is not a permitopen destination");
  const tun = (unit: number) => new common.SSHWriter().uint32(1).uint32(unit).finish();
  assert.match(authopt.channelOpenRefusal(authOptionsFor(undefined), "tun@openssh.com", tun(0)) ?? "", /PermitTunnel/);
  const forced = authOptionsFor(key('tunnel="2"'), { permitTunnel: true });
  assert.equal(authopt.channelOpenRefusal(forced, "tun@openssh.com", tun(2)), undefined);
  assert.equal(authopt.channelOpenRefusal(forced, "tun@openssh.com", tun(authopt.SSH_TUNID_ANY)), undefined);
  assert.match(authopt.channelOpenRefusal(forced, "tun@openssh.com", tun(1)) ?? "", /device 1/);
  assert.equal(authopt.channelOpenRefusal(authOptionsFor(undefined, { permitTunnel: true }), "tun@openssh.com", tun(9)), undefined);
});

test("globalRequestRefusal: tcpip-forward and streamlocal-forward are checked; cancels and others pass", () => {
  const req = (host: string, port: number) => forwarding.packGlobal_tcpip_forward([host, port]);
  const nf = authOptionsFor(key("no-port-forwarding"));
  assert.match(authopt.globalRequestRefusal(nf, "tcpip-forward", req("", 1)) ?? "", /not permitted/);
  assert.match(authopt.globalRequestRefusal(nf, "streamlocal-forward@openssh.com", common.NS("/s")) ?? "", /stream-local/);
  assert.equal(authopt.globalRequestRefusal(nf, "cancel-tcpip-forward", req("", 1)), undefined);
  assert.equal(authopt.globalRequestRefusal(nf, "keepalive@openssh.com", new Uint8Array(0)), undefined);
  const pl = authOptionsFor(key('permitlisten="localhost:80"'));
  assert.equal(authopt.globalRequestRefusal(pl, "tcpip-forward", req("localhost", 80)), undefined);
  assert.equal(authopt.globalRequestRefusal(pl, "tcpip-forward", req("localhost", 81)), "localhost:81 is not a permitlisten address");
});

test("sessionRequestRefusal: pty-req, x11-req and auth-agent-req@openssh.com; others pass", () => {
  const r = authOptionsFor(key("restrict"));
  assert.equal(authopt.sessionRequestRefusal(r, "pty-req"), "a pty is not permitted for this login");
  assert.equal(authopt.sessionRequestRefusal(r, "x11-req"), "X11 forwarding is not permitted for this login");
  assert.equal(authopt.sessionRequestRefusal(r, "auth-agent-req@openssh.com"), "agent forwarding is not permitted for this login");
  for (const ok of ["exec", "shell", "env", "window-change", "toString", "__proto__"]) assert.equal(authopt.sessionRequestRefusal(r, ok), undefined, ok);
  assert.equal(authopt.sessionRequestRefusal(authOptionsFor(undefined), "pty-req"), undefined);
});

test("isKeyOptions recognises checkers.AuthorizedKeyOptions and nothing less", () => {
  assert.equal(authopt.isKeyOptions(checkers.defaultAuthorizedKeyOptions()), true);
  assert.equal(authopt.isKeyOptions(undefined), false);
  assert.equal(authopt.isKeyOptions({ pty: true }), false);
  assert.equal(authopt.isKeyOptions({ ...checkers.defaultAuthorizedKeyOptions(), permitOpen: "db:1" }), false);
});

test("describePeer: host:port, a socket's name, or ? when there is no transport", () => {
  assert.equal(authopt.describePeer(() => ({ type: "TCP", family: "IPv4", host: "10.0.0.1", port: 2222 })), "10.0.0.1:2222");
  assert.equal(
    authopt.describePeer(() => {
      throw new Error("no transport");
    }),
    "?",
  );
});
