/**
 * Fuzz targets for the services above the transport, fed message by message as the transport
 * would (`packetReceived`) and much faster than through it: userauth server and client (every
 * method), the connection layer as a server with the in-process realm behind it (channel open,
 * every session request, data, window adjust, global requests) and as a client with an open
 * channel, and the session and forwarding payload parsers. A thrown error is what makes the transport
 * disconnect, so it must be typed; the userauth queue must stay under MAX_QUEUED_REQUESTS.
 */
import fc from "fast-check";
import { succeed } from "@twisted-ts/internet/defer";
import { Logger } from "@twisted-ts/internet/log";
import { unix } from "@twisted-ts/conch";
import { channel, common, connection, forwarding, session, userauth } from "@twisted-ts/conch/ssh";
import { FakeTransport as ServiceTransport } from "../conch/ssh/_userauth_fakes.js";
import { FakeTransport as ConnTransport, attach } from "../conch/ssh/_connection_fakes.js";
import { bounded, conversation, fuzzBytes, requireTyped, target, typedOrValue, type FuzzTarget } from "./fuzz.js";
import { connectionReplies, connectionRequests, userauthReplies, userauthRequests } from "./fuzz_messages.js";
import { FUZZ_PASSWORD, FUZZ_USER, fuzzFactory, fuzzUserKey } from "./fuzz_ssh_pair.js";

const quiet = (): void => undefined;

/**
 * Delivers each message (number first) to `deliver` until one throws, which must be typed: the
 * transport would end the connection there. `after` runs after every message.
 */
function deliverAll(msgs: readonly Uint8Array[], deliver: (num: number, body: Uint8Array) => void, isLost: () => boolean, after: () => void, where: string): void {
  for (const m of msgs) {
    if (m.length === 0 || isLost()) continue;
    try {
      deliver(m[0]!, m.subarray(1));
    } catch (e) {
      requireTyped(e, `${where}: message ${m[0]}`);
      return;
    }
    after();
  }
}

const SESSION_ID = new TextEncoder().encode("session-id-0123456789");

const userauthServer = target("ssh/userauth server (every method)", 300, () => conversation(userauthRequests(SESSION_ID)), (msgs) => {
  const t = new ServiceTransport({ isClient: false, portal: fuzzFactory().portal! });
  t.logger = new Logger("fuzz.userauth", t, quiet);
  const s = new userauth.SSHUserAuthServer();
  s.transport = t;
  s.serviceStarted();
  const queue = (): number => (s as unknown as { queued: unknown[] }).queued.length;
  deliverAll(
    msgs,
    (n, b) => s.packetReceived(n, b),
    () => t.lost,
    () => {
      bounded("userauth queue", queue(), userauth.MAX_QUEUED_REQUESTS);
      t.clock.advance(s.passwordDelay);
    },
    "userauth server",
  );
  t.clock.advance(60);
});

/** A userauth client with alice's key and password, answering every prompt with the password. */
export class FuzzAuthClient extends userauth.SSHUserAuthClient {
  override getPublicKey(): userauth.PublicKeyLike {
    return fuzzUserKey().public();
  }
  override getPrivateKey(): PromiseLike<ReturnType<typeof fuzzUserKey>> {
    return succeed(fuzzUserKey());
  }
  override getPassword(): string {
    return FUZZ_PASSWORD;
  }
  override getGenericAnswers(_n: string, _i: string, prompts: ReadonlyArray<readonly [string, boolean]>): string[] {
    return prompts.map(() => FUZZ_PASSWORD);
  }
}

const userauthClient = target("ssh/userauth client (server replies)", 300, () => conversation(userauthReplies()), (msgs) => {
  const t = new ServiceTransport({ isClient: true });
  t.logger = new Logger("fuzz.userauth-client", t, quiet);
  t.serverSigAlgs = ["ssh-ed25519"];
  const c = new FuzzAuthClient(FUZZ_USER, new connection.SSHConnection());
  c.transport = t;
  c.serviceStarted();
  c.whenDone().addErrback(() => undefined);
  deliverAll(msgs, (n, b) => c.packetReceived(n, b), () => t.lost, () => t.clock.advance(1), "userauth client");
});

/** A connection service on a fake transport, with the in-process realm's avatar behind it. */
function serverConnection(): { conn: connection.SSHConnection; t: ConnTransport } {
  const avatar = new unix.InProcessConchUser(FUZZ_USER, { commands: {} });
  const conn = new connection.SSHConnection();
  const t = attach(conn, false, avatar);
  return { conn, t };
}

const connectionServer = target("ssh/connection server (channels, session requests)", 300, () => conversation(connectionRequests()), (msgs) => {
  const { conn, t } = serverConnection();
  deliverAll(msgs, (n, b) => conn.packetReceived(n, b), () => t.lost, () => t.clock.advance(0.1), "connection server");
  t.clock.advance(60);
});

/** A client channel that accepts what it is sent. */
export class ClientChannel extends channel.SSHChannel {
  override name = "session";
}

const connectionClient = target("ssh/connection client (server replies)", 300, () => conversation(connectionReplies()), (msgs) => {
  const conn = new connection.SSHConnection();
  const t = attach(conn, true);
  conn.openChannel(new ClientChannel());
  deliverAll(msgs, (n, b) => conn.packetReceived(n, b), () => t.lost, () => t.clock.advance(0.1), "connection client");
  t.clock.advance(60);
});

const W = common.SSHWriter;
const REQUEST_PAYLOADS: ReadonlyArray<readonly [string, Uint8Array, (data: Uint8Array) => unknown]> = [
  ["pty-req", session.packRequest_pty_req("xterm", [24, 80, 0, 0], new Uint8Array([1, 0, 0, 0, 3, 0])), session.parseRequest_pty_req],
  ["window-change", session.packRequest_window_change([50, 132, 640, 480]), session.parseRequest_window_change],
  ["exit-status", new W().uint32(255).finish(), session.parseRequest_exit_status],
  ["exit-signal", session.packRequest_exit_signal("KILL", false, "gone", ""), session.parseRequest_exit_signal],
  ["direct-tcpip open", forwarding.packOpen_direct_tcpip(["127.0.0.1", 22], ["127.0.0.1", 40000]), forwarding.unpackOpen_direct_tcpip],
  ["tcpip-forward", forwarding.packGlobal_tcpip_forward(["localhost", 8080]), forwarding.unpackGlobal_tcpip_forward],
];

const sessionRequests = target(
  "ssh/request payloads (pty-req, window-change, exit-status, exit-signal, direct-tcpip, tcpip-forward)",
  500,
  fc.tuple(fc.nat(REQUEST_PAYLOADS.length - 1), fuzzBytes(REQUEST_PAYLOADS.map(([, p]) => p), 64)),
  ([which, data]) => {
    const [name, , parse] = REQUEST_PAYLOADS[which]!;
    typedOrValue(`parseRequest ${name}`, () => parse(data));
  },
);

export const SERVICE_TARGETS: readonly FuzzTarget[] = [userauthServer, userauthClient, connectionServer, connectionClient, sessionRequests];
