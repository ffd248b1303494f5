/**
 * issue 13: the server's forwarding policy (sshd_config's AllowTcpForwarding, PermitOpen,
 * PermitListen, AllowStreamLocalForwarding, GatewayPorts, privileged ports) and the limit on
 * forwarded channels, as decisions and over two in-memory connections.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { MemoryReactor } from "@twisted-ts/internet/testing";
import type { IAddress } from "@twisted-ts/internet/interfaces";
import { avatar, error, unix } from "@twisted-ts/conch";
import { authopt, channel, common, connection, forwarding } from "@twisted-ts/conch/ssh";
import { Pump, RecordingChannel } from "./_connection_fakes.js";

const { NS } = common;
const policy = forwarding.forwardingPolicy;
const direct = (host: string, port: number): Uint8Array => forwarding.packOpen_direct_tcpip([host, port], ["127.0.0.1", 5555]);
const listen = (host: string, port: number): Uint8Array => forwarding.packGlobal_tcpip_forward([host, port]);

test("DEFAULT_FORWARDING_POLICY is OpenSSH's: everything allowed, remote forwards on loopback", () => {
  assert.deepEqual({ ...forwarding.DEFAULT_FORWARDING_POLICY }, {
    allowTcpForwarding: "yes",
    permitOpen: "any",
    permitListen: "any",
    allowStreamLocalForwarding: "yes",
    gatewayPorts: "no",
    streamLocalBindUnlink: false,
    streamLocalBindMask: 0o177,
    maxForwardedChannels: forwarding.MAX_FORWARDED_CHANNELS,
  });
});

test("PermitOpen: any allows every destination, none refuses every one, a list allows only its entries", () => {
  const refusal = (p: forwarding.ForwardingPolicy, host: string, port: number) => forwarding.channelOpenPolicyRefusal(p, "direct-tcpip", direct(host, port));
  assert.equal(refusal(policy({ permitOpen: "any" }), "db.example", 5432), undefined);
  assert.match(refusal(policy({ permitOpen: "none" }), "127.0.0.1", 80) ?? "", /not a PermitOpen destination/);
  const list = policy({ permitOpen: ["127.0.0.1:8080", "db.example:*", "*:443", "[::1]:22"] });
  assert.equal(refusal(list, "127.0.0.1", 8080), undefined);
  assert.equal(refusal(list, "db.example", 1), undefined);
  assert.equal(refusal(list, "anything", 443), undefined);
  assert.equal(refusal(list, "::1", 22), undefined);
  assert.match(refusal(list, "127.0.0.1", 8081) ?? "", /127\.0\.0\.1:8081 is not a PermitOpen destination/);
  // Hosts compare literally, as sshd: no name lookup.
  assert.notEqual(refusal(list, "localhost", 8080), undefined);
});

test("PermitListen: bare ports, host patterns, and port 0 only under a * port", () => {
  const refusal = (p: forwarding.ForwardingPolicy, host: string, port: number) =>
    forwarding.globalRequestPolicyRefusal(p, "tcpip-forward", listen(host, port), 1001);
  const list = policy({ permitListen: ["8080", "localhost:9000", "127.0.0.?:*"] });
  assert.equal(refusal(list, "", 8080), undefined);
  assert.equal(refusal(list, "LOCALHOST", 9000), undefined);
  assert.equal(refusal(list, "127.0.0.1", 0), undefined);
  assert.match(refusal(list, "localhost", 9001) ?? "", /localhost:9001 is not a PermitListen address/);
  assert.notEqual(refusal(policy({ permitListen: ["8080"] }), "localhost", 0), undefined);
  assert.notEqual(refusal(policy({ permitListen: "none" }), "localhost", 8080), undefined);
});

test("AllowTcpForwarding local refuses tcpip-forward, remote refuses direct-tcpip, no refuses both", () => {
  const open = (p: forwarding.ForwardingPolicy) => forwarding.channelOpenPolicyRefusal(p, "direct-tcpip", direct("127.0.0.1", 80));
  const remote = (p: forwarding.ForwardingPolicy) => forwarding.globalRequestPolicyRefusal(p, "tcpip-forward", listen("", 8080), 1001);
  assert.equal(open(policy({ allowTcpForwarding: "local" })), undefined);
  assert.match(remote(policy({ allowTcpForwarding: "local" })) ?? "", /remote TCP forwarding is not permitted/);
  assert.match(open(policy({ allowTcpForwarding: "remote" })) ?? "", /local TCP forwarding is not permitted/);
  assert.equal(remote(policy({ allowTcpForwarding: "remote" })), undefined);
  assert.notEqual(open(policy({ allowTcpForwarding: "no" })), undefined);
  assert.notEqual(remote(policy({ allowTcpForwarding: "no" })), undefined);
  // Stream-local forwarding has its own setting.
  const sl = policy({ allowTcpForwarding: "no", allowStreamLocalForwarding: "local" });
  assert.equal(forwarding.channelOpenPolicyRefusal(sl, "direct-streamlocal@openssh.com", forwarding.packOpen_direct_streamlocal("/tmp/s")), undefined);
  assert.match(forwarding.globalRequestPolicyRefusal(sl, "streamlocal-forward@openssh.com", forwarding.packGlobal_streamlocal_forward("/tmp/s"), 0) ?? "", /AllowStreamLocalForwarding/);
});

test("tcpip-forward: a privileged port needs root; port 0 and ports from 1024 do not", () => {
  const p = forwarding.DEFAULT_FORWARDING_POLICY;
  assert.match(forwarding.globalRequestPolicyRefusal(p, "tcpip-forward", listen("", 80), 1001) ?? "", /port 80 is privileged and the user is not root/);
  assert.notEqual(forwarding.globalRequestPolicyRefusal(p, "tcpip-forward", listen("", 1023), undefined), undefined);
  assert.equal(forwarding.globalRequestPolicyRefusal(p, "tcpip-forward", listen("", 80), 0), undefined);
  assert.equal(forwarding.globalRequestPolicyRefusal(p, "tcpip-forward", listen("", 0), 1001), undefined);
  assert.equal(forwarding.globalRequestPolicyRefusal(p, "tcpip-forward", listen("", 1024), 1001), undefined);
});

test("GatewayPorts: no binds loopback, yes every address, clientspecified the client's choice", () => {
  const bind = (g: forwarding.GatewayPorts, host: string) => forwarding.forwardingBindAddress(policy({ gatewayPorts: g }), host);
  assert.equal(bind("no", ""), "127.0.0.1");
  assert.equal(bind("no", "0.0.0.0"), "127.0.0.1");
  assert.equal(bind("no", "::1"), "::1");
  assert.equal(bind("yes", "localhost"), "0.0.0.0");
  assert.equal(bind("clientspecified", ""), "0.0.0.0");
  assert.equal(bind("clientspecified", "*"), "0.0.0.0");
  assert.equal(bind("clientspecified", "localhost"), "127.0.0.1");
  assert.equal(bind("clientspecified", "127.0.0.2"), "127.0.0.2");
});

/** A server avatar with a policy and a uid, accepting direct-tcpip (a channel that does nothing) and tcpip-forward. */
class PolicyUser extends avatar.ConchUser {
  forwards = 0;
  constructor(
    readonly policy: forwarding.ForwardingPolicy,
    readonly uid = 1001,
  ) {
    super();
    this.channelLookup["direct-tcpip"] = channel.SSHChannel;
    this.channelLookup["session"] = channel.SSHChannel;
  }
  override getForwardingPolicy(): forwarding.ForwardingPolicy {
    return this.policy;
  }
  getUserGroupId(): { uid: number; gid: number } {
    return { uid: this.uid, gid: this.uid };
  }
  global_tcpip_forward(): boolean {
    this.forwards++;
    return true;
  }
}

function pair(user: avatar.ConchUser): { client: connection.SSHConnection; pump: Pump } {
  const client = new connection.SSHConnection();
  const pump = new Pump(client, new connection.SSHConnection(), user);
  return { client, pump };
}

function openDirect(client: connection.SSHConnection, pump: Pump, host: string, port: number): RecordingChannel {
  const ch = new RecordingChannel({ conn: client });
  ch.name = "direct-tcpip";
  client.openChannel(ch, direct(host, port));
  pump.flush();
  return ch;
}

test("CHANNEL_OPEN direct-tcpip: a PermitOpen refusal is OPEN_ADMINISTRATIVELY_PROHIBITED with the reason", () => {
  const { client, pump } = pair(new PolicyUser(policy({ permitOpen: ["127.0.0.1:8080"] })));
  const ok = openDirect(client, pump, "127.0.0.1", 8080);
  assert.deepEqual(ok.events, ["open"]);
  const refused = openDirect(client, pump, "127.0.0.1", 22);
  assert.deepEqual(refused.events, ["openFailed"]);
  const reason = refused.failure as error.ConchError;
  assert.equal(reason.data, connection.OPEN_ADMINISTRATIVELY_PROHIBITED);
  assert.match(String(reason.value), /127\.0\.0\.1:22 is not a PermitOpen destination/);
});

test("GLOBAL_REQUEST tcpip-forward: the policy's refusal is REQUEST_FAILURE and the avatar is never asked", async () => {
  const user = new PolicyUser(policy({ allowTcpForwarding: "local" }));
  const { client, pump } = pair(user);
  const d = client.sendGlobalRequest("tcpip-forward", listen("", 8080), true);
  pump.flush();
  await assert.rejects(Promise.resolve(d), error.GlobalRequestFailedError);
  assert.equal(user.forwards, 0);
  // A privileged port for a user who is not root: refused too; for root it reaches the avatar.
  const root = new PolicyUser(forwarding.DEFAULT_FORWARDING_POLICY, 0);
  const r = pair(root);
  const ok = r.client.sendGlobalRequest("tcpip-forward", listen("", 80), true);
  r.pump.flush();
  await ok;
  assert.equal(root.forwards, 1);
  const nonRoot = pair(new PolicyUser(forwarding.DEFAULT_FORWARDING_POLICY, 1001));
  const refused = nonRoot.client.sendGlobalRequest("tcpip-forward", listen("", 80), true);
  nonRoot.pump.flush();
  await assert.rejects(Promise.resolve(refused), error.GlobalRequestFailedError);
});

test("the policy and the login's authorized_keys options must both allow a forward", () => {
  const keyOptions = { restrict: false, pty: true, portForwarding: true, agentForwarding: true, x11Forwarding: true, userRc: true, command: undefined, environment: [], permitOpen: ["127.0.0.1:8080"], permitListen: [], principals: undefined, tunnel: undefined };
  const run = (p: forwarding.ForwardingPolicy, port: number): string[] => {
    const { client, pump } = pair(new PolicyUser(p));
    Object.assign(pump.serverTransport, { authOptions: authopt.authOptionsFor(keyOptions) });
    return openDirect(client, pump, "127.0.0.1", port).events;
  };
  assert.deepEqual(run(policy({ permitOpen: "any" }), 8080), ["open"]);
  assert.deepEqual(run(policy({ permitOpen: "any" }), 9090), ["openFailed"], "permitopen= refuses what the policy allows");
  assert.deepEqual(run(policy({ permitOpen: ["127.0.0.1:9090"] }), 8080), ["openFailed"], "the policy refuses what permitopen= allows");
});

test("GLOBAL_REQUEST tcpip-forward: GatewayPorts decides the Unix realm's bind address", async () => {
  const bindOf = async (gatewayPorts: forwarding.GatewayPorts | undefined, host: string, realmGateway?: boolean): Promise<string> => {
    const reactor = new MemoryReactor();
    const me = { name: "root", uid: 0, gid: 0, home: "/", shell: "/bin/sh" };
    const user = new (class extends unix.UnixConchUser {
      override getForwardingPolicy(): forwarding.ForwardingPolicy {
        return gatewayPorts === undefined ? super.getForwardingPolicy() : policy({ gatewayPorts });
      }
    })("root", { reactor: reactor as unknown as unix.UnixRealmOptions["reactor"] & object, lookupUser: () => me, ...(realmGateway !== undefined ? { gatewayPorts: realmGateway } : {}) });
    const { client, pump } = pair(user);
    let replied = false;
    const d = client.sendGlobalRequest("tcpip-forward", listen(host, 8080), true);
    d.addBoth(() => (replied = true));
    await pump.until(() => replied);
    return reactor.tcpServers[0]!.interface;
  };
  assert.equal(await bindOf(undefined, "0.0.0.0"), "127.0.0.1");
  assert.equal(await bindOf("no", ""), "127.0.0.1");
  assert.equal(await bindOf("yes", "localhost"), "0.0.0.0");
  assert.equal(await bindOf("clientspecified", "127.0.0.3"), "127.0.0.3");
  assert.equal(await bindOf(undefined, "127.0.0.3", true), "127.0.0.3", "the realm's gatewayPorts: true is clientspecified");
});

test("MAX_FORWARDED_CHANNELS: direct-tcpip opens past the limit get OPEN_RESOURCE_SHORTAGE and the session carries on", () => {
  const { client, pump } = pair(new PolicyUser(forwarding.DEFAULT_FORWARDING_POLICY));
  const opened: RecordingChannel[] = [];
  for (let i = 0; i < forwarding.MAX_FORWARDED_CHANNELS + 5; i++) {
    const ch = new RecordingChannel({ conn: client });
    ch.name = "direct-tcpip";
    client.openChannel(ch, direct("127.0.0.1", 8080));
    opened.push(ch);
  }
  pump.flush();
  assert.equal(opened.filter((c) => c.events.includes("open")).length, forwarding.MAX_FORWARDED_CHANNELS);
  const refused = opened.filter((c) => c.events.includes("openFailed"));
  assert.equal(refused.length, 5);
  assert.equal((refused[0]!.failure as error.ConchError).data, connection.OPEN_RESOURCE_SHORTAGE);
  const session = new RecordingChannel({ conn: client });
  client.openChannel(session);
  pump.flush();
  assert.deepEqual(session.events, ["open"], "a session still opens");
  // Closing forwarded channels makes room again.
  for (const c of opened.slice(0, 2)) c.loseConnection();
  pump.flush();
  assert.deepEqual(openDirect(client, pump, "127.0.0.1", 8080).events, ["open"]);
});

test("forwarded listeners: a connection accepted past the policy's maxForwardedChannels is closed at once", () => {
  const server = new connection.SSHConnection();
  new Pump(new connection.SSHConnection(), server, new PolicyUser(policy({ maxForwardedChannels: 2 })));
  const addr: IAddress = { type: "TCP", family: "IPv4", host: "127.0.0.1", port: 4000 };
  const tcp = new forwarding.SSHListenForwardingFactory(server, ["", 8080], forwarding.SSHListenServerForwardingChannel);
  const unixSock = new forwarding.SSHListenStreamForwardingFactory(server, "forwarded-streamlocal@openssh.com", () => forwarding.packOpen_forwarded_streamlocal("/tmp/r.sock"));
  assert.notEqual(tcp.buildProtocol(addr), null);
  assert.notEqual(unixSock.buildProtocol(addr), null);
  assert.equal(tcp.buildProtocol(addr), null);
  assert.equal(unixSock.buildProtocol(addr), null);
  assert.equal(forwarding.forwardedChannelCount(server), 2);
});

test("streamlocal payloads: direct-streamlocal, forwarded-streamlocal and (cancel-)streamlocal-forward, as PROTOCOL §2.4 lays them out", () => {
  const path = "/tmp/x/remote.sock";
  const open = forwarding.packOpen_direct_streamlocal(path);
  assert.deepEqual(Buffer.from(open), Buffer.concat([NS(path), NS(""), Buffer.alloc(4)]));
  assert.equal(forwarding.unpackOpen_direct_streamlocal(open), path);
  const fwd = forwarding.packOpen_forwarded_streamlocal(path);
  assert.deepEqual(Buffer.from(fwd), Buffer.concat([NS(path), NS("")]));
  assert.equal(forwarding.unpackOpen_forwarded_streamlocal(fwd), path);
  const g = forwarding.packGlobal_streamlocal_forward(path);
  assert.deepEqual(Buffer.from(g), Buffer.from(NS(path)));
  assert.equal(forwarding.unpackGlobal_streamlocal_forward(g), path);
  assert.equal(forwarding.unpackGlobal_cancel_streamlocal_forward(forwarding.packGlobal_cancel_streamlocal_forward(path)), path);
});

test("streamlocal payloads: an empty, over-long or NUL-bearing path is a BadSocketPathError; a short payload a ShortReadError", () => {
  for (const bad of ["", "/tmp/" + "x".repeat(forwarding.MAX_SOCKET_PATH), "/tmp/a\0b"]) {
    assert.throws(() => forwarding.unpackOpen_direct_streamlocal(forwarding.packOpen_direct_streamlocal(bad)), forwarding.BadSocketPathError);
    assert.throws(() => forwarding.unpackGlobal_streamlocal_forward(forwarding.packGlobal_streamlocal_forward(bad)), forwarding.BadSocketPathError);
  }
  const open = forwarding.packOpen_direct_streamlocal("/tmp/s");
  for (let n = 0; n < open.length; n++) assert.throws(() => forwarding.unpackOpen_direct_streamlocal(open.subarray(0, n)), error.ShortReadError);
});
