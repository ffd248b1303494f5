import { test } from "node:test";
import assert from "node:assert/strict";
import type { IProtocol } from "@twisted-ts/internet/interfaces";
import { Protocol } from "@twisted-ts/internet/protocol";
import { avatar, error } from "@twisted-ts/conch";
import { channel } from "@twisted-ts/conch/ssh";

class Sub extends Protocol {}

class User extends avatar.ConchUser {
  constructor() {
    super();
    this.channelLookup["session"] = channel.SSHChannel;
    this.channelLookup["made-by-function"] = (o) => new channel.SSHChannel({ ...o, localWindow: 1234 });
    this.subsystemLookup["sub"] = () => new Sub();
  }
  global_tcpip_forward(data: Uint8Array): boolean {
    return data.length === 0;
  }
}

test("lookupChannel builds the class registered for the type with the peer's window, packet size, data and avatar", () => {
  const u = new User();
  const ch = u.lookupChannel("session", 100, 200, new Uint8Array([1]));
  assert.ok(ch instanceof channel.SSHChannel);
  assert.equal(ch!.remoteWindowLeft, 100);
  assert.equal(ch!.remoteMaxPacket, 200);
  assert.deepEqual([...ch!.data!], [1]);
  assert.equal(ch!.avatar, u);
});

test("lookupChannel calls a factory function registered for the type", () => {
  const ch = new User().lookupChannel("made-by-function", 1, 2, new Uint8Array());
  assert.equal(ch!.localWindowSize, 1234);
  assert.equal(ch!.remoteWindowLeft, 1);
});

test("lookupChannel of an unknown type raises ConchError(OPEN_UNKNOWN_CHANNEL_TYPE, 'unknown channel'), Twisted's order", () => {
  const u = new User();
  assert.throws(
    () => u.lookupChannel("x11", 1, 1, new Uint8Array()),
    (e: unknown) => e instanceof error.ConchError && e.value === error.OPEN_UNKNOWN_CHANNEL_TYPE && e.data === "unknown channel",
  );
  // Inherited object properties are not channel types.
  assert.throws(() => u.lookupChannel("constructor", 1, 1, new Uint8Array()), error.ConchError);
  assert.throws(() => u.lookupChannel("__proto__", 1, 1, new Uint8Array()), error.ConchError);
});

test("lookupSubsystem builds the registered protocol; unknown subsystems give false", () => {
  const u = new User();
  const p: IProtocol | false = u.lookupSubsystem("sub", new Uint8Array());
  assert.ok(p instanceof Sub);
  assert.equal(u.lookupSubsystem("sftp", new Uint8Array()), false);
});

test("gotGlobalRequest dispatches to global_<name> with - as _; unknown requests are refused", () => {
  const u = new User();
  assert.equal(u.gotGlobalRequest("tcpip-forward", new Uint8Array()), true);
  assert.equal(u.gotGlobalRequest("tcpip-forward", new Uint8Array([1])), false);
  assert.equal(u.gotGlobalRequest("no-more-sessions@openssh.com", new Uint8Array()), false);
});

test("EnvironmentVariableNotPermitted has a stable code", () => {
  assert.equal(new avatar.EnvironmentVariableNotPermitted().code, "ERR_SSH_ENV_NOT_PERMITTED");
});

test("avatar.IConchUser is the token the userauth server asks realms for", async () => {
  const { userauth } = await import("@twisted-ts/conch/ssh");
  assert.equal(avatar.IConchUser, userauth.IConchUserToken);
});
