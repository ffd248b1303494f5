/**
 * A fake SSHServiceTransport for userauth tests: records packets, disconnects and service
 * switches; runs timers on a task.Clock. `pairServices` joins a client and a server service
 * through two of them, delivering packets synchronously (a service-level loopback).
 */
import { Clock } from "@twisted-ts/internet/task";
import { Logger, type LogEvent } from "@twisted-ts/internet/log";
import type { IAddress } from "@twisted-ts/internet/interfaces";
import { portal as cportal, checkers as cchecks, interfaces as cifaces } from "@twisted-ts/cred";
import { service, userauth, keys } from "@twisted-ts/conch/ssh";

export const MSG_DISCONNECT = 1;

export class FakeTransport implements service.SSHServiceTransport {
  packets: Array<[number, Uint8Array]> = [];
  disconnects: Array<[number, string]> = [];
  services: service.SSHService[] = [];
  lost = false;
  unimplemented = 0;
  encrypted = true;
  sessionID: Uint8Array = new TextEncoder().encode("session-id-0123456789");
  clock: Clock;
  isClient: boolean;
  serverSigAlgs: readonly string[] | undefined = undefined;
  factory: service.SSHServiceFactory | undefined;
  avatar: unknown = undefined;
  logoutFunction: (() => void) | undefined = undefined;
  events: LogEvent[];
  logger: Logger;
  peer: IAddress = { type: "TCP", family: "IPv4", host: "127.0.0.1", port: 50000 };
  /** Where sent packets go besides `packets` (the peer in a pair). */
  deliver: ((num: number, payload: Uint8Array) => void) | undefined = undefined;

  constructor(opts: { isClient: boolean; portal?: cportal.Portal; clock?: Clock; events?: LogEvent[] }) {
    this.isClient = opts.isClient;
    this.clock = opts.clock ?? new Clock();
    this.events = opts.events ?? [];
    this.logger = new Logger("test.transport", undefined, (e) => this.events.push(e));
    this.factory =
      opts.portal === undefined
        ? undefined
        : {
            portal: opts.portal,
            getService: (t, name) => (name === "ssh-connection" && t.avatar !== undefined ? NextService : undefined),
          };
  }

  sendPacket(messageType: number, payload: Uint8Array): void {
    if (this.lost) return;
    const copy = payload.slice();
    this.packets.push([messageType, copy]);
    this.deliver?.(messageType, copy);
  }
  sendDisconnect(reason: number, description: string): void {
    if (this.lost) return;
    this.disconnects.push([reason, description]);
    this.lost = true;
    this.onLost?.();
  }
  onLost: (() => void) | undefined = undefined;
  sendUnimplemented(): void {
    this.unimplemented++;
  }
  setService(s: service.SSHService): void {
    this.services.push(s);
    s.transport = this;
    s.serviceStarted();
  }
  loseConnection(): void {
    this.lost = true;
  }
  isEncrypted(_direction?: "in" | "out" | "both"): boolean {
    return this.encrypted;
  }
  isVerified(_direction?: "in" | "out" | "both"): boolean {
    return this.encrypted;
  }
  getPeer(): IAddress {
    return this.peer;
  }
  getHost(): IAddress {
    return { type: "TCP", family: "IPv4", host: "127.0.0.1", port: 22 };
  }
}

/** The service started after authentication in these tests. */
export class NextService extends service.SSHService {
  override name = "ssh-connection";
  started = false;
  override serviceStarted(): void {
    this.started = true;
  }
}

/** A logged-in user in these tests. */
export interface TestAvatar {
  readonly avatarId: cchecks.AvatarId;
  readonly mind: userauth.UserAuthMind;
  loggedOut: boolean;
}

export class TestRealm implements cportal.IRealm {
  avatars: TestAvatar[] = [];
  requestAvatar(avatarId: cchecks.AvatarId, mind: unknown, ...ifaces: cifaces.InterfaceToken<unknown>[]): cportal.LoginResult<unknown> {
    if (!ifaces.includes(userauth.IConchUserToken)) throw new Error("realm: no IConchUser asked");
    const a: TestAvatar = { avatarId, mind: mind as userauth.UserAuthMind, loggedOut: false };
    this.avatars.push(a);
    return [userauth.IConchUserToken, a, () => (a.loggedOut = true)];
  }
}

const cache = new Map<string, keys.Key>();
/** A user key of `kind`, generated once per process. */
export function userKey(kind: "ed25519" | "ecdsa" | "rsa" | "ecdsa384" | "ed25519-b" | "rsa-b"): keys.Key {
  let k = cache.get(kind);
  if (k === undefined) {
    if (kind === "ecdsa384") k = keys.Key.generate("ecdsa", { bits: 384 });
    else if (kind === "ed25519-b") k = keys.Key.generate("ed25519");
    else if (kind === "rsa-b") k = keys.Key.generate("rsa", { bits: 2048 });
    else k = keys.Key.generate(kind, kind === "rsa" ? { bits: 2048 } : {});
    cache.set(kind, k);
  }
  return k;
}

/** Joins a client and a server userauth service over two fake transports. */
export function pairServices(
  client: service.SSHService,
  server: service.SSHService,
  portal: cportal.Portal,
  clock = new Clock(),
): { ct: FakeTransport; st: FakeTransport; clock: Clock } {
  const ct = new FakeTransport({ isClient: true, clock });
  const st = new FakeTransport({ isClient: false, portal, clock });
  ct.sessionID = st.sessionID;
  ct.serverSigAlgs = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "rsa-sha2-512", "rsa-sha2-256"];
  // Each side's active service receives the other's packets (the last one set, or the first).
  const active = (t: FakeTransport, first: service.SSHService) => t.services.at(-1) ?? first;
  ct.deliver = (n, p) => {
    if (!st.lost) active(st, server).packetReceived(n, p);
  };
  st.deliver = (n, p) => {
    if (!ct.lost) active(ct, client).packetReceived(n, p);
  };
  ct.onLost = () => {
    st.lost = true;
  };
  st.onLost = () => {
    ct.lost = true;
  };
  server.transport = st;
  client.transport = ct;
  server.serviceStarted();
  client.serviceStarted();
  return { ct, st, clock };
}

/** Hex of bytes, for readable assertions. */
export function hex(b: Uint8Array): string {
  return Buffer.from(b).toString("hex");
}

/** The messages of the log events, formatted. */
export function logLines(events: LogEvent[]): string[] {
  return events.map((e) => e.log_format.replace(/\{(\w+)\}/g, (_, k: string) => String(e[k])));
}
