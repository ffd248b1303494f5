/**
 * Valid messages of every layer, the seeds the message fuzzers mutate: what a client sends from
 * SERVICE_REQUEST to CHANNEL_CLOSE (userauth by every method, channel open, every session request,
 * data, window adjust, global requests), and what a server sends back. Each payload starts with
 * its message number, as on the wire.
 */
import { common, connection, session } from "@twisted-ts/conch/ssh";
import { FUZZ_PASSWORD, FUZZ_USER, fuzzUserKey } from "./fuzz_ssh_pair.js";

const { SSHWriter } = common;

const MSG_SERVICE_REQUEST = 5;
const MSG_USERAUTH_REQUEST = 50;
const MSG_USERAUTH_FAILURE = 51;
const MSG_USERAUTH_SUCCESS = 52;
const MSG_USERAUTH_BANNER = 53;
const MSG_USERAUTH_PK_OK = 60;
const MSG_USERAUTH_INFO_REQUEST = 60;
const MSG_USERAUTH_INFO_RESPONSE = 61;

const msg = (num: number): common.SSHWriter => new SSHWriter().byte(num);
const auth = (method: string): common.SSHWriter => msg(MSG_USERAUTH_REQUEST).string(FUZZ_USER).string("ssh-connection").string(method);

/** A signed publickey request for `sessionID` (RFC 4252 §7), as a client makes it. */
export function signedPublicKeyRequest(sessionID: Uint8Array): Uint8Array {
  const key = fuzzUserKey();
  const alg = key.sshType();
  const body = new SSHWriter().string(FUZZ_USER).string("ssh-connection").string("publickey").boolean(true).string(alg).string(key.blob()).finish();
  const signed = new SSHWriter().string(sessionID).byte(MSG_USERAUTH_REQUEST).raw(body).finish();
  return msg(MSG_USERAUTH_REQUEST).raw(body).string(key.sign(signed)).finish();
}

/** USERAUTH_REQUESTs of every method, and the keyboard-interactive answer. */
export function userauthRequests(sessionID: Uint8Array): Uint8Array[] {
  const key = fuzzUserKey();
  return [
    auth("none").finish(),
    auth("password").boolean(false).string("wrong").finish(),
    auth("password").boolean(true).string("old").string("new").finish(),
    auth("publickey").boolean(false).string(key.sshType()).string(key.blob()).finish(),
    signedPublicKeyRequest(sessionID),
    auth("keyboard-interactive").string("").string("").finish(),
    msg(MSG_USERAUTH_INFO_RESPONSE).uint32(1).string(FUZZ_PASSWORD).finish(),
    auth("hostbased").string(key.sshType()).string(key.blob()).string("client.example").string(FUZZ_USER).string(key.sign("x")).finish(),
    auth("password").boolean(false).string(FUZZ_PASSWORD).finish(),
  ];
}

/** The connection layer as a client drives it over channel 0 (the server's first channel is 0 too). */
export function connectionRequests(): Uint8Array[] {
  const req = (type: string, wantReply: boolean): common.SSHWriter => msg(connection.MSG_CHANNEL_REQUEST).uint32(0).string(type).boolean(wantReply);
  const modes = new Uint8Array([1, 0, 0, 0, 3, 53, 0, 0, 0, 1, 0]);
  return [
    msg(connection.MSG_CHANNEL_OPEN).string("session").uint32(0).uint32(32768).uint32(16384).finish(),
    req("pty-req", true).raw(session.packRequest_pty_req("xterm-256color", [24, 80, 640, 480], modes)).finish(),
    req("env", true).raw(session.packRequest_env("LANG", "C.UTF-8")).finish(),
    req("window-change", false).raw(session.packRequest_window_change([50, 132, 0, 0])).finish(),
    req("signal", false).string("INT").finish(),
    req("subsystem", true).string("sftp").finish(),
    req("exec", true).string("repeat 40 fuzz output line").finish(),
    req("shell", true).finish(),
    req("x11-req", true).boolean(false).string("MIT-MAGIC-COOKIE-1").string("00ff").uint32(0).finish(),
    req("auth-agent-req@openssh.com", true).finish(),
    msg(connection.MSG_CHANNEL_DATA).uint32(0).string("some input\n").finish(),
    msg(connection.MSG_CHANNEL_EXTENDED_DATA).uint32(0).uint32(1).string("err").finish(),
    msg(connection.MSG_CHANNEL_WINDOW_ADJUST).uint32(0).uint32(100000).finish(),
    msg(connection.MSG_GLOBAL_REQUEST).string("keepalive@openssh.com").boolean(true).finish(),
    msg(connection.MSG_GLOBAL_REQUEST).string("no-more-sessions@openssh.com").boolean(false).finish(),
    msg(connection.MSG_CHANNEL_OPEN).string("session").uint32(1).uint32(0).uint32(0).finish(),
    msg(connection.MSG_CHANNEL_EOF).uint32(0).finish(),
    msg(connection.MSG_CHANNEL_CLOSE).uint32(0).finish(),
  ];
}

/** A whole client conversation after key exchange: service, login by password, then a session. */
export function clientConversation(): Uint8Array[] {
  return [
    msg(MSG_SERVICE_REQUEST).string("ssh-userauth").finish(),
    auth("password").boolean(false).string(FUZZ_PASSWORD).finish(),
    ...connectionRequests(),
  ];
}

/** What a server sends a userauth client. */
export function userauthReplies(): Uint8Array[] {
  const key = fuzzUserKey();
  return [
    msg(MSG_USERAUTH_BANNER).string("Welcome\n").string("en").finish(),
    msg(MSG_USERAUTH_FAILURE).string("publickey,password,keyboard-interactive").boolean(false).finish(),
    msg(MSG_USERAUTH_PK_OK).string(key.sshType()).string(key.blob()).finish(),
    msg(MSG_USERAUTH_INFO_REQUEST).string("name").string("instruction").string("").uint32(2).string("Password: ").boolean(false).string("Code: ").boolean(true).finish(),
    msg(MSG_USERAUTH_FAILURE).string("password").boolean(true).finish(),
    msg(MSG_USERAUTH_SUCCESS).finish(),
  ];
}

/** What a server sends a client's connection layer about the client's channel 0. */
export function connectionReplies(): Uint8Array[] {
  const req = (type: string, wantReply: boolean): common.SSHWriter => msg(connection.MSG_CHANNEL_REQUEST).uint32(0).string(type).boolean(wantReply);
  return [
    msg(connection.MSG_CHANNEL_OPEN_CONFIRMATION).uint32(0).uint32(0).uint32(2097152).uint32(32768).finish(),
    msg(connection.MSG_CHANNEL_SUCCESS).uint32(0).finish(),
    msg(connection.MSG_CHANNEL_DATA).uint32(0).string("output\n").finish(),
    msg(connection.MSG_CHANNEL_EXTENDED_DATA).uint32(0).uint32(1).string("error\n").finish(),
    msg(connection.MSG_CHANNEL_WINDOW_ADJUST).uint32(0).uint32(65536).finish(),
    msg(connection.MSG_CHANNEL_FAILURE).uint32(0).finish(),
    req("exit-status", false).raw(new SSHWriter().uint32(3).finish()).finish(),
    req("exit-signal", false).raw(session.packRequest_exit_signal("TERM", true, "killed", "en")).finish(),
    req("keepalive@openssh.com", true).finish(),
    msg(connection.MSG_GLOBAL_REQUEST).string("hostkeys-00@openssh.com").boolean(false).string(fuzzUserKey().blob()).finish(),
    msg(connection.MSG_REQUEST_SUCCESS).uint32(2222).finish(),
    msg(connection.MSG_REQUEST_FAILURE).finish(),
    msg(connection.MSG_CHANNEL_OPEN_FAILURE).uint32(1).uint32(2).string("no").string("").finish(),
    msg(connection.MSG_CHANNEL_EOF).uint32(0).finish(),
    msg(connection.MSG_CHANNEL_CLOSE).uint32(0).finish(),
  ];
}
