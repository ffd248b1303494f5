/**
 * Per-source protections of unauthenticated connections, as OpenSSH 9.8's sshd (`srclimit.c`,
 * `sshd.c`): MaxStartups random early drop, PerSourceMaxStartups per PerSourceNetBlockSize
 * netblock, PerSourcePenalties (accumulating, activating past `min`, capped at `max`, bounded
 * tables with permissive or deny-all overflow) and PerSourcePenaltyExemptList. Driven by a fake
 * clock and injected randomness.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { IPv4Address } from "@twisted-ts/internet/address";
import { Clock } from "@twisted-ts/internet/task";
import { Failure } from "@twisted-ts/internet/failure";
import { StringTransport } from "@twisted-ts/internet/testing";
import { HAProxyWrappingFactory, type HAProxyProtocolWrapper } from "@twisted-ts/internet/endpoints";
import { common, factory, transport } from "@twisted-ts/conch/ssh";
import { FUZZ_PASSWORD, FUZZ_USER, fuzzFactory, fuzzServer, handshakenPair } from "../../_support/fuzz_ssh_pair.js";

const { SSHWriter } = common;
type Limits = factory.SourceLimits;

/** A factory's limits with `settings` over the defaults and `percent` as the random draw. */
function limits(settings: Partial<factory.SourceLimitSettings> = {}, percent = (): number => 99): { f: factory.SSHFactory; l: Limits } {
  const f = new factory.SSHFactory();
  Object.assign(f, settings);
  f.sourceLimits.randomPercent = percent;
  return { f, l: f.sourceLimits };
}

function admitted(v: factory.Startup | factory.Refusal): factory.Startup {
  assert.ok(!("reason" in v), `refused: ${"reason" in v ? v.reason : ""}`);
  return v;
}

function refusedFor(v: factory.Startup | factory.Refusal): string {
  assert.ok("reason" in v, "admitted");
  return v.reason;
}

test("MaxStartups: below start every connection is let in, at full every one is dropped", () => {
  const { l } = limits({ maxStartups: { start: 3, rate: 30, full: 5 } }, () => 0);
  const held = [0, 1, 2].map(() => admitted(l.admit("10.1.1.1", 0)));
  assert.equal(l.unauthenticated, 3);
  // At start (3) the draw 0 is below rate 30: dropped.
  assert.equal(refusedFor(l.admit("10.1.1.2", 0)), "past MaxStartups");
  held.pop()!.release();
  admitted(l.admit("10.1.1.2", 0));
});

test("MaxStartups: the drop chance rises linearly from rate% at start to 100% at full (sshd's arithmetic)", () => {
  let draw = 0;
  const { l } = limits({ maxStartups: { start: 10, rate: 30, full: 100 } }, () => draw);
  for (let i = 0; i < 10; i++) admitted(l.admit(`10.0.0.${i}`, 0));
  // At 10 unauthenticated: p = 30.
  draw = 29;
  refusedFor(l.admit("10.9.9.9", 0));
  draw = 30;
  admitted(l.admit("10.9.9.9", 0));
  // Now 11 .. up to 55: p = 70 * 45 / 90 + 30 = 65.
  for (let i = 11; i < 55; i++) {
    draw = 99;
    admitted(l.admit(`10.0.1.${i}`, 0));
  }
  assert.equal(l.unauthenticated, 55);
  draw = 64;
  refusedFor(l.admit("10.9.9.8", 0));
  draw = 65;
  admitted(l.admit("10.9.9.8", 0));
});

test("MaxStartups: a release after authentication or loss frees the place once only", () => {
  const { l } = limits({ maxStartups: { start: 1, rate: 100, full: 1 } });
  const s = admitted(l.admit("10.0.0.1", 0));
  refusedFor(l.admit("10.0.0.2", 0));
  s.release();
  s.release();
  assert.equal(l.unauthenticated, 0);
  admitted(l.admit("10.0.0.2", 0));
  refusedFor(l.admit("10.0.0.3", 0));
});

test("PerSourceMaxStartups: a netblock of PerSourceNetBlockSize holds at most the cap, other netblocks are unaffected", () => {
  const { l } = limits({ perSourceMaxStartups: 2, perSourceNetBlockSize: { ipv4: 24, ipv6: 64 } });
  const a = admitted(l.admit("10.0.0.1", 0));
  admitted(l.admit("10.0.0.200", 0));
  assert.equal(refusedFor(l.admit("10.0.0.3", 0)), "past PerSourceMaxStartups");
  admitted(l.admit("10.0.1.1", 0));
  admitted(l.admit("2001:db8::1", 0));
  admitted(l.admit("2001:db8::2:0:0:1", 0));
  refusedFor(l.admit("2001:db8:0:0:ffff::9", 0));
  admitted(l.admit("2001:db8:0:1::1", 0));
  a.release();
  admitted(l.admit("10.0.0.3", 0));
});

test("netBlockOf masks IPv4, IPv6 and IPv4-mapped IPv6 addresses, and ignores non-addresses", () => {
  const size = { ipv4: 24, ipv6: 48 };
  assert.deepEqual(factory.netBlockOf("192.0.2.77", size), { family: 4, key: "192.0.2.0/24" });
  assert.deepEqual(factory.netBlockOf("::ffff:192.0.2.77", size), { family: 4, key: "192.0.2.0/24" });
  assert.equal(factory.netBlockOf("2001:db8:1:2::3", size)?.key, factory.netBlockOf("2001:db8:1:ffff::", size)?.key);
  assert.notEqual(factory.netBlockOf("2001:db8:1::", size)?.key, factory.netBlockOf("2001:db8:2::", size)?.key);
  assert.equal(factory.netBlockOf("/run/sshd.sock", size), undefined);
  assert.equal(factory.netBlockOf(undefined, size), undefined);
});

test("PerSourcePenalties: OpenSSH 9.8's defaults (crash:90 authfail:5 noauth:1 grace-exceeded:20 max:600 min:15)", () => {
  const { l } = limits();
  const p = l.penalties();
  assert.deepEqual(
    [p.enabled, p.crash, p.authfail, p.noauth, p.graceExceeded, p.max, p.min, p.maxSources4, p.maxSources6, p.overflow, p.overflow6],
    [true, 90, 5, 1, 20, 600, 15, 65536, 65536, "permissive", "permissive"],
  );
  assert.deepEqual(new factory.SSHFactory().maxStartups, { start: 10, rate: 30, full: 100 });
});

test("PerSourcePenalties: a crash penalty (more than min) refuses the source at once until it expires; other sources are let in", () => {
  const { l } = limits();
  l.penalise("198.51.100.7", "crash", 100);
  assert.equal(refusedFor(l.admit("198.51.100.7", 100)), "penalty: caused crash");
  admitted(l.admit("198.51.100.8", 100));
  refusedFor(l.admit("198.51.100.7", 190));
  admitted(l.admit("198.51.100.7", 190.001));
});

test("PerSourcePenalties: authfail penalties stay deferred until more than min accumulates, then refuse", () => {
  const { l } = limits();
  for (let i = 0; i < 3; i++) l.penalise("198.51.100.9", "authfail", 0);
  // 15 s outstanding is not more than min (15): still let in.
  admitted(l.admit("198.51.100.9", 0)).release();
  l.penalise("198.51.100.9", "authfail", 0);
  assert.equal(refusedFor(l.admit("198.51.100.9", 0)), "penalty: failed authentication");
  refusedFor(l.admit("198.51.100.9", 19.9));
  admitted(l.admit("198.51.100.9", 20.1));
});

test("PerSourcePenalties: an accumulated penalty is capped at max", () => {
  const { l } = limits({ perSourcePenalties: { max: 100 } });
  for (let i = 0; i < 10; i++) l.penalise("203.0.113.1", "crash", 0);
  refusedFor(l.admit("203.0.113.1", 99.9));
  admitted(l.admit("203.0.113.1", 100.1));
});

test("PerSourcePenalties: noauth and grace-exceeded have their own durations and reasons", () => {
  const { l } = limits({ perSourcePenalties: { noauth: 16, graceExceeded: 30 } });
  l.penalise("203.0.113.2", "noauth", 0);
  l.penalise("203.0.113.3", "grace-exceeded", 0);
  assert.equal(refusedFor(l.admit("203.0.113.2", 15)), "penalty: connections without attempting authentication");
  admitted(l.admit("203.0.113.2", 16.5));
  assert.equal(refusedFor(l.admit("203.0.113.3", 29)), "penalty: exceeded LoginGraceTime");
});

test("PerSourcePenalties: penalties fall on the netblock, and `enabled: false` turns them off", () => {
  const { f, l } = limits({ perSourceNetBlockSize: { ipv4: 16, ipv6: 128 } });
  l.penalise("10.20.30.40", "crash", 0);
  refusedFor(l.admit("10.20.99.1", 1));
  admitted(l.admit("10.21.0.1", 1));
  f.perSourcePenalties = { enabled: false };
  admitted(l.admit("10.20.99.1", 1));
});

test("PerSourcePenaltyExemptList: exempt addresses and CIDR blocks are never penalised", () => {
  const { l } = limits({ perSourcePenaltyExemptList: ["192.0.2.0/24", "2001:db8::5"] });
  l.penalise("192.0.2.9", "crash", 0);
  l.penalise("2001:db8::5", "crash", 0);
  l.penalise("::ffff:192.0.2.10", "crash", 0);
  l.penalise("198.51.100.1", "crash", 0);
  admitted(l.admit("192.0.2.9", 1));
  admitted(l.admit("2001:db8::5", 1));
  refusedFor(l.admit("198.51.100.1", 1));
  assert.equal(l.penaltyCount(4), 1);
  assert.equal(l.penaltyCount(6), 0);
});

test("PerSourcePenalties: a full table in permissive mode forgets the penalty that would expire soonest", () => {
  const { l } = limits({ perSourcePenalties: { maxSources4: 3 } });
  l.penalise("10.0.0.1", "crash", 0); // expires at 90
  l.penalise("10.0.0.2", "crash", 5); // 95
  l.penalise("10.0.0.3", "crash", 10); // 100
  l.penalise("10.0.0.4", "crash", 20); // 110: table over 3, 10.0.0.1 goes
  assert.equal(l.penaltyCount(4), 3);
  admitted(l.admit("10.0.0.1", 21));
  for (const a of ["10.0.0.2", "10.0.0.3", "10.0.0.4"]) refusedFor(l.admit(a, 21));
  // Unpenalised sources are let in meanwhile.
  admitted(l.admit("10.0.0.99", 21));
});

test("PerSourcePenalties: a full table in deny-all mode refuses everyone of that family until entries expire", () => {
  const { l } = limits({ perSourcePenalties: { maxSources4: 2, overflow: "deny-all" } });
  l.penalise("10.0.0.1", "crash", 0);
  l.penalise("10.0.0.2", "crash", 0);
  l.penalise("10.0.0.3", "crash", 0); // not recorded: table full
  l.penalise("10.0.0.1", "crash", 1); // nor added to an entry it holds (as sshd)
  assert.equal(l.penaltyCount(4), 2);
  assert.equal(refusedFor(l.admit("10.0.0.99", 1)), "too many penalised addresses");
  admitted(l.admit("2001:db8::1", 1));
  admitted(l.admit("10.0.0.99", 91));
  assert.equal(l.penaltyCount(4), 0);
  admitted(l.admit("10.0.0.1", 91));
});

test("PerSourcePenalties: the table never holds more than max-sources however many sources are penalised", () => {
  const { l } = limits({ perSourcePenalties: { maxSources4: 100, maxSources6: 10 } });
  for (let i = 0; i < 5000; i++) {
    l.penalise(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, "authfail", i / 100);
    l.penalise(`2001:db8::${i.toString(16)}`, "crash", i / 100);
  }
  assert.equal(l.penaltyCount(4), 100);
  assert.equal(l.penaltyCount(6), 10);
});

// ---- the server transport: at connectionMade, and penalties when it ends unauthenticated ----

/** A server transport from `f` whose peer is `host`. */
function connectFrom(f: factory.SSHFactory, clock: Clock, host: string): { t: transport.SSHServerTransport; io: StringTransport } {
  const t = fuzzServer(clock, f);
  const io = new StringTransport(undefined, new IPv4Address("TCP", host, 40000));
  t.makeConnection(io);
  return { t, io };
}

test("a penalised source is told 'Not allowed at this time' and closed before the version line; another source gets SSH", () => {
  const clock = new Clock();
  const f = fuzzFactory();
  f.sourceLimits.penalise("127.0.0.2", "crash", clock.seconds());
  const bad = connectFrom(f, clock, "127.0.0.2");
  assert.equal(bad.io.value().toString(), "Not allowed at this time\r\n");
  assert.equal(bad.io.disconnecting, true);
  assert.equal(f.sourceLimits.unauthenticated, 0);
  const good = connectFrom(f, clock, "127.0.0.3");
  assert.match(good.io.value().toString("latin1"), /^SSH-2\.0-/);
  assert.equal(f.sourceLimits.unauthenticated, 1);
});

test("a connection past LoginGraceTime earns the grace-exceeded penalty", () => {
  const clock = new Clock();
  const f = fuzzFactory();
  f.perSourcePenalties = { graceExceeded: 30 };
  const { t } = connectFrom(f, clock, "127.0.0.4");
  clock.advance(transport.DEFAULT_LOGIN_GRACE_TIME);
  t.connectionLost(new Failure(new Error("closed")));
  assert.equal(f.sourceLimits.unauthenticated, 0);
  assert.equal(refusedFor(f.sourceLimits.admit("127.0.0.4", clock.seconds())), "penalty: exceeded LoginGraceTime");
});

test("a protocol violation before authentication earns the crash penalty", () => {
  const clock = new Clock();
  const f = fuzzFactory();
  const { t, io } = connectFrom(f, clock, "127.0.0.5");
  t.dataReceived(new TextEncoder().encode("SSH-2.0-x\r\n\x00\x00\x00\x0c\x0a\x15junkjunkjunk"));
  assert.equal(io.disconnecting, true);
  t.connectionLost(new Failure(new Error("closed")));
  assert.equal(refusedFor(f.sourceLimits.admit("127.0.0.5", clock.seconds())), "penalty: caused crash");
});

test("a connection that ends without trying to authenticate earns noauth; failed attempts earn authfail; a login earns nothing", () => {
  const f = fuzzFactory();
  f.perSourcePenalties = { noauth: 20, authfail: 40 };
  const quiet = connectFrom(f, new Clock(), "127.0.0.6");
  quiet.t.connectionLost(new Failure(new Error("closed")));
  assert.equal(refusedFor(f.sourceLimits.admit("127.0.0.6", 0)), "penalty: connections without attempting authentication");

  const peer = (p: { server: transport.SSHServerTransport }): string => {
    const a = p.server.getPeer();
    return "host" in a ? a.host : "";
  };
  const failed = handshakenPair("aes128-ctr", "hmac-sha2-256", "none", f);
  failed.client.sendPacket(transport.MSG_SERVICE_REQUEST, new SSHWriter().string("ssh-userauth").finish());
  failed.client.sendPacket(50, new SSHWriter().string(FUZZ_USER).string("ssh-connection").string("password").boolean(false).string("wrong").finish());
  failed.pump.flush();
  failed.client.loseConnection();
  failed.pump.flush();
  assert.equal(refusedFor(f.sourceLimits.admit(peer(failed), failed.clock.seconds())), "penalty: failed authentication");

  const g = fuzzFactory();
  g.perSourcePenalties = { noauth: 20, authfail: 40 };
  const ok = handshakenPair("aes128-ctr", "hmac-sha2-256", "none", g);
  ok.client.sendPacket(transport.MSG_SERVICE_REQUEST, new SSHWriter().string("ssh-userauth").finish());
  ok.client.sendPacket(50, new SSHWriter().string(FUZZ_USER).string("ssh-connection").string("password").boolean(false).string(FUZZ_PASSWORD).finish());
  ok.pump.flush();
  assert.notEqual(ok.server.avatar, undefined);
  assert.equal(g.sourceLimits.unauthenticated, 0, "a login leaves the unauthenticated count");
  ok.client.loseConnection();
  ok.pump.flush();
  admitted(g.sourceLimits.admit(peer(ok), ok.clock.seconds()));
});

test("MaxStartups at the transport: past full, connections are dropped at connectionMade and authenticated ones do not count", () => {
  const clock = new Clock();
  const f = fuzzFactory();
  f.maxStartups = { start: 2, rate: 100, full: 2 };
  const a = connectFrom(f, clock, "127.0.0.7");
  connectFrom(f, clock, "127.0.0.8");
  const c = connectFrom(f, clock, "127.0.0.9");
  assert.equal(c.io.value().toString(), "Not allowed at this time\r\n");
  a.t.connectionLost(new Failure(new Error("closed")));
  const d = connectFrom(f, clock, "127.0.0.9");
  assert.match(d.io.value().toString("latin1"), /^SSH-2\.0-/);
});

test("behind a PROXY header the limits act on the header's source, not the balancer's address", () => {
  const clock = new Clock();
  const f = fuzzFactory();
  f.protocol = class extends transport.SSHServerTransport {
    override clock = clock;
  };
  f.sourceLimits.penalise("192.0.2.9", "crash", 0);
  const balancer = new IPv4Address("TCP", "127.0.0.1", 40001);
  const through = (source: string): { io: StringTransport; ssh: transport.SSHServerTransport } => {
    const wrapper = new HAProxyWrappingFactory(f).buildProtocol(balancer) as HAProxyProtocolWrapper;
    const io = new StringTransport(undefined, balancer);
    wrapper.makeConnection(io);
    wrapper.dataReceived(new TextEncoder().encode(`PROXY TCP4 ${source} 127.0.0.1 5555 22\r\n`));
    return { io, ssh: wrapper.wrappedProtocol as transport.SSHServerTransport };
  };
  const penalised = through("192.0.2.9");
  assert.equal(penalised.io.value().toString(), "Not allowed at this time\r\n");
  const other = through("192.0.2.10");
  assert.deepEqual(other.ssh.getPeer(), new IPv4Address("TCP", "192.0.2.10", 5555));
  assert.match(other.io.value().toString("latin1"), /^SSH-2\.0-/);
  other.ssh.connectionLost(new Failure(new Error("closed")));
  // The noauth penalty went to 192.0.2.10's netblock; the balancer's has none.
  f.perSourcePenalties = { noauth: 30 };
  const again = through("192.0.2.10");
  again.ssh.connectionLost(new Failure(new Error("closed")));
  refusedFor(f.sourceLimits.admit("192.0.2.10", 0));
  admitted(f.sourceLimits.admit("127.0.0.1", 0));
});
