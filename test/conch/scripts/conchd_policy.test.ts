/**
 * Issue 14: conchd's forwarding and per-source settings (`scripts/_conchd/policy.ts`) read from the
 * config, mapped onto the forwarding policy and the factory's source limits, printed by `-T`, and
 * taken again on reload.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { MemoryReactor } from "@twisted-ts/internet/testing";
import {
  ConchdFactory,
  ConfigError,
  dumpConfig,
  forwardingPolicyOf,
  generateMissingHostKeys,
  loadHostKeys,
  startupLimitsOf,
  type ConchdConfig,
} from "@twisted-ts/conch/scripts/conchd";
import { unix } from "@twisted-ts/conch";
import { factory, forwarding } from "@twisted-ts/conch/ssh";
import { tempDir } from "../../_support/peers.js";
import { parse } from "./_conchd_support.js";


/** The message of the ConfigError `text` raises. */
function errorOf(text: string): string {
  try {
    parse(text);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `a ConfigError, not ${String(e)}`);
    return e.message;
  }
  assert.fail("no error");
}

test("forwarding keywords at their defaults give OpenSSH's default forwarding policy", () => {
  assert.deepEqual(forwardingPolicyOf(parse("")), forwarding.DEFAULT_FORWARDING_POLICY);
});

test("AllowTcpForwarding, PermitOpen, PermitListen, AllowStreamLocalForwarding, GatewayPorts and StreamLocalBindUnlink map onto the forwarding policy", () => {
  const c = parse(
    "AllowTcpForwarding local\nPermitOpen 127.0.0.1:80 [::1]:* db:5432\nPermitListen 8080 localhost:9000\nAllowStreamLocalForwarding remote\nGatewayPorts clientspecified\nStreamLocalBindUnlink yes\n",
  );
  assert.deepEqual(forwardingPolicyOf(c), {
    ...forwarding.DEFAULT_FORWARDING_POLICY,
    allowTcpForwarding: "local",
    permitOpen: ["127.0.0.1:80", "[::1]:*", "db:5432"],
    permitListen: ["8080", "localhost:9000"],
    allowStreamLocalForwarding: "remote",
    gatewayPorts: "clientspecified",
    streamLocalBindUnlink: true,
  });
  assert.equal(forwardingPolicyOf(parse("AllowTcpForwarding yes\nPermitOpen none\n")).permitOpen, "none");
  assert.equal(forwardingPolicyOf(parse("AllowTcpForwarding all\n")).allowTcpForwarding, "yes");
  const out = dumpConfig(c);
  assert.match(out, /^permitopen 127\.0\.0\.1:80 \[::1\]:\* db:5432$/m);
  assert.match(out, /^allowtcpforwarding local$/m);
  assert.match(out, /^streamlocalbindunlink yes$/m);
});

test("a bad PermitOpen or PermitListen entry is refused with its line", () => {
  assert.match(errorOf("Port 22\nPermitOpen 127.0.0.1\n"), /^conchd\.conf line 2: PermitOpen: .*needs host:port/);
  assert.match(errorOf("PermitListen 127.0.0.1:http\n"), /^conchd\.conf line 1: PermitListen: /);
  assert.match(errorOf("PermitOpen any 127.0.0.1:22\n"), /^conchd\.conf line 1: PermitOpen: any must stand alone/);
  assert.match(errorOf("GatewayPorts sometimes\n"), /^conchd\.conf line 1: GatewayPorts: expected one of no, yes, clientspecified/);
});

test("the factory and the Unix realm's avatars take the config's forwarding policy; the realm's shorthands are folded into it", (t) => {
  const dir = join(tempDir(t, "conchd-pol-"), "keys");
  generateMissingHostKeys(dir);
  const f = new ConchdFactory();
  f.configure(parse("PermitOpen 127.0.0.1:7000\nGatewayPorts yes\n"), loadHostKeys([], dir, []), { pamtester: undefined });
  assert.deepEqual(f.forwardingPolicy.permitOpen, ["127.0.0.1:7000"]);
  const realm = f.portal!.realm as unix.UnixSSHRealm;
  const me = { name: "root", uid: 0, gid: 0, home: "/", shell: "/bin/sh" };
  const reactor = new MemoryReactor() as unknown as unix.UnixRealmOptions["reactor"] & object;
  const user = new unix.UnixConchUser("root", { ...realm.options, reactor, lookupUser: () => me });
  const p = user.getForwardingPolicy();
  assert.deepEqual([p.permitOpen, p.gatewayPorts], [["127.0.0.1:7000"], "yes"]);
  // A reload hands new logins a new realm; a login made before keeps the policy it started with.
  f.configure(parse("AllowTcpForwarding no\n"), loadHostKeys([], dir, []), { pamtester: undefined });
  assert.equal(user.getForwardingPolicy().gatewayPorts, "yes");
  assert.equal((f.portal!.realm as unix.UnixSSHRealm).options.forwardingPolicy?.allowTcpForwarding, "no");
  // The older UnixRealmOptions are shorthands over the same policy, not a second gate.
  const legacy = new unix.UnixConchUser("root", { reactor, lookupUser: () => me, allowForwarding: false, gatewayPorts: true });
  assert.deepEqual([legacy.getForwardingPolicy().allowTcpForwarding, legacy.getForwardingPolicy().gatewayPorts], ["no", "clientspecified"]);
  const both = new unix.UnixConchUser("root", { reactor, lookupUser: () => me, forwardingPolicy: { gatewayPorts: "yes" }, gatewayPorts: true });
  assert.equal(both.getForwardingPolicy().gatewayPorts, "yes");
});

test("MaxStartups: start:rate:full, or one number that refuses every connection past it", () => {
  assert.deepEqual(parse("").maxStartups, { start: 10, rate: 30, full: 100 });
  assert.deepEqual(parse("MaxStartups 5:50:20\n").maxStartups, { start: 5, rate: 50, full: 20 });
  assert.deepEqual(parse("MaxStartups 7\n").maxStartups, { start: 7, rate: 100, full: 7 });
  assert.match(errorOf("Port 22\n\nMaxStartups 20:50:5\n"), /^conchd\.conf line 3: MaxStartups: "20:50:5": needs 0 < start <= full/);
  assert.match(errorOf("MaxStartups 10:0:20\n"), /line 1: MaxStartups: .*rate from 1 to 100/);
  assert.match(errorOf("MaxStartups lots\n"), /line 1: MaxStartups: expected start:rate:full or a number/);
  assert.match(dumpConfig(parse("MaxStartups 7\n")), /^maxstartups 7:100:7$/m);
});

test("PerSourceMaxStartups takes a number or none; PerSourceNetBlockSize ipv4[:ipv6]", () => {
  assert.equal(parse("").perSourceMaxStartups, Infinity);
  assert.equal(parse("PerSourceMaxStartups 3\n").perSourceMaxStartups, 3);
  assert.equal(parse("PerSourceMaxStartups none\n").perSourceMaxStartups, Infinity);
  assert.match(errorOf("PerSourceMaxStartups 0\n"), /line 1: PerSourceMaxStartups: expected a number from 1 or none/);
  assert.deepEqual(parse("").perSourceNetBlockSize, { ipv4: 32, ipv6: 128 });
  assert.deepEqual(parse("PerSourceNetBlockSize 24:56\n").perSourceNetBlockSize, { ipv4: 24, ipv6: 56 });
  assert.deepEqual(parse("PerSourceNetBlockSize 24\n").perSourceNetBlockSize, { ipv4: 24, ipv6: 128 });
  assert.match(errorOf("PerSourceNetBlockSize 33\n"), /line 1: PerSourceNetBlockSize: .*IPv4 prefix at most 32/);
  const out = dumpConfig(parse("PerSourceMaxStartups 3\nPerSourceNetBlockSize 24:56\n"));
  assert.match(out, /^persourcemaxstartups 3$/m);
  assert.match(out, /^persourcenetblocksize 24:56$/m);
  assert.match(dumpConfig(parse("")), /^persourcemaxstartups none$/m);
});

test("PerSourcePenalties: yes, no, or key:value items with sshd durations over OpenSSH's defaults", () => {
  assert.deepEqual(parse("").perSourcePenalties, {});
  assert.deepEqual(parse("PerSourcePenalties yes\n").perSourcePenalties, {});
  assert.deepEqual(parse("PerSourcePenalties no\n").perSourcePenalties, { enabled: false });
  assert.deepEqual(parse("PerSourcePenalties authfail:30s min:1 crash:2m grace-exceeded:1m30s max:1h noauth:0 max-sources4:10 max-sources6:20 overflow:deny-all overflow6:permissive\n").perSourcePenalties, {
    authfail: 30,
    min: 1,
    crash: 120,
    graceExceeded: 90,
    max: 3600,
    noauth: 0,
    maxSources4: 10,
    maxSources6: 20,
    overflow: "deny-all",
    overflow6: "permissive",
  });
  assert.match(dumpConfig(parse("")), /^persourcepenalties crash:90s authfail:5s noauth:1s grace-exceeded:20s max:600s min:15s max-sources4:65536 max-sources6:65536 overflow:permissive overflow6:permissive$/m);
  assert.match(dumpConfig(parse("PerSourcePenalties authfail:30 min:1\n")), /^persourcepenalties crash:90s authfail:30s .* min:1s /m);
  assert.match(dumpConfig(parse("PerSourcePenalties no\n")), /^persourcepenalties no$/m);
  assert.match(errorOf("Port 22\nPerSourcePenalties authfail:soon\n"), /^conchd\.conf line 2: PerSourcePenalties: expected a time such as 30/);
  assert.match(errorOf("PerSourcePenalties bogus:1\n"), /line 1: PerSourcePenalties: unknown item "bogus"/);
  assert.match(errorOf("PerSourcePenalties authfail\n"), /line 1: PerSourcePenalties: expected key:value/);
  assert.match(errorOf("PerSourcePenalties overflow:drop\n"), /line 1: PerSourcePenalties: overflow: expected deny-all or permissive/);
  assert.match(errorOf("PerSourcePenalties no authfail:3\n"), /line 1: PerSourcePenalties: no must stand alone/);
});

test("PerSourcePenaltyExemptList: comma-separated addresses and CIDR blocks", () => {
  assert.deepEqual(parse("").perSourcePenaltyExemptList, []);
  assert.deepEqual(parse("PerSourcePenaltyExemptList 127.0.0.0/8,::1,192.0.2.7\n").perSourcePenaltyExemptList, ["127.0.0.0/8", "::1", "192.0.2.7"]);
  assert.match(errorOf("PerSourcePenaltyExemptList 10.0.0.0/33\n"), /line 1: PerSourcePenaltyExemptList: "10\.0\.0\.0\/33" is not an address or CIDR block/);
  assert.match(errorOf("PerSourcePenaltyExemptList example.com\n"), /is not an address or CIDR block/);
  assert.match(dumpConfig(parse("PerSourcePenaltyExemptList 127.0.0.0/8,::1\n")), /^persourcepenaltyexemptlist 127\.0\.0\.0\/8,::1$/m);
});

test("the factory enforces the config's source limits, and a reload applies new ones while earned penalties stay", (t) => {
  const dir = join(tempDir(t, "conchd-src-"), "keys");
  generateMissingHostKeys(dir);
  const f = new ConchdFactory();
  const keys = loadHostKeys([], dir, []);
  const config = parse("MaxStartups 5:50:20\nPerSourceMaxStartups 2\nPerSourceNetBlockSize 24\nPerSourcePenalties authfail:30 min:1\nPerSourcePenaltyExemptList 127.0.0.3\n");
  f.configure(config, keys, { pamtester: undefined });
  assert.deepEqual(startupLimitsOf(config), {
    maxStartups: { start: 5, rate: 50, full: 20 },
    perSourceMaxStartups: 2,
    perSourceNetBlockSize: { ipv4: 24, ipv6: 128 },
    perSourcePenalties: { authfail: 30, min: 1 },
    perSourcePenaltyExemptList: ["127.0.0.3"],
  });
  const limits: factory.SourceLimits = f.sourceLimits;
  const first = limits.admit("10.1.1.1", 0);
  const second = limits.admit("10.1.1.2", 0);
  assert.ok("release" in first && "release" in second);
  assert.deepEqual(limits.admit("10.1.1.3", 0), { reason: "past PerSourceMaxStartups" }, "10.1.1.0/24 has its two");
  limits.penalise("127.0.0.2", "authfail", 0);
  limits.penalise("127.0.0.3", "authfail", 0);
  assert.deepEqual(limits.admit("127.0.0.2", 1), { reason: "penalty: failed authentication" });
  assert.ok("release" in limits.admit("127.0.0.3", 1), "an exempt address is never penalised");

  f.configure(parse("PerSourceMaxStartups none\nPerSourceNetBlockSize 24\nPerSourcePenalties authfail:30 min:1\n"), keys, { pamtester: undefined });
  assert.ok("release" in limits.admit("10.1.1.3", 1), "the reload lifted PerSourceMaxStartups");
  assert.deepEqual(limits.admit("127.0.0.2", 2), { reason: "penalty: failed authentication" }, "a penalty earned before the reload stays");
  f.configure(parse("PerSourcePenalties no\n"), keys, { pamtester: undefined });
  assert.ok("release" in limits.admit("127.0.0.2", 3), "PerSourcePenalties no lets everyone in");
});

test("ClientAliveInterval and ClientAliveCountMax reach the factory (off by default, as sshd), and -T prints them", (t) => {
  const dir = join(tempDir(t, "conchd-alive-"), "keys");
  generateMissingHostKeys(dir);
  const keys = loadHostKeys([], dir, []);
  const f = new ConchdFactory();
  f.configure(parse(""), keys, { pamtester: undefined });
  assert.equal(f.clientAliveInterval, 0);
  assert.equal(f.clientAliveCountMax, 3);
  const config = parse("ClientAliveInterval 1m\nClientAliveCountMax 2\n");
  f.configure(config, keys, { pamtester: undefined });
  assert.equal(f.clientAliveInterval, 60);
  assert.equal(f.clientAliveCountMax, 2);
  const dumped = dumpConfig(config);
  assert.match(dumped, /^clientaliveinterval 60$/m);
  assert.match(dumped, /^clientalivecountmax 2$/m);
  assert.match(errorOf("ClientAliveCountMax -1\n"), /line 1/);
});
