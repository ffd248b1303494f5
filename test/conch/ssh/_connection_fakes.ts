/**
 * Fakes for connection-layer tests: an SSHServiceTransport that records packets, and a pump that
 * joins two SSHConnections (client ↔ server) through two such transports in memory.
 */
import type { IAddress } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import { Clock } from "@twisted-ts/internet/task";
import { channel, common, connection, service } from "@twisted-ts/conch/ssh";

export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const bytes = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));
export const text = (b: Uint8Array): string => Buffer.from(b).toString("latin1");
export const u32 = (...ns: number[]): Uint8Array => {
  const out = new Uint8Array(ns.length * 4);
  const v = new DataView(out.buffer);
  ns.forEach((n, i) => v.setUint32(i * 4, n));
  return out;
};
export const cat = (...parts: Array<Uint8Array | string>): Uint8Array =>
  common.concatBytes(...parts.map((p) => (typeof p === "string" ? bytes(p) : p)));

/** A packet as recorded: message number and a copy of the payload. */
export type Packet = [number, Uint8Array];

/** An SSHServiceTransport that records what the service sends. */
export class FakeTransport implements service.SSHServiceTransport {
  packets: Packet[] = [];
  /** Packets not yet delivered to the peer (used by {@link Pump}). */
  outbox: Packet[] = [];
  disconnects: Array<[number, string]> = [];
  unimplemented = 0;
  lost = false;
  services: service.SSHService[] = [];
  readonly sessionID = new Uint8Array(0);
  readonly logger = new Logger("test.conch.fake-transport");
  /** A fake clock: tests `advance()` it. */
  readonly clock = new Clock();
  readonly serverSigAlgs = undefined;
  readonly factory = undefined;
  avatar: unknown = undefined;
  logoutFunction: (() => void) | undefined = undefined;
  readonly isClient: boolean;

  constructor(isClient = false, avatar?: unknown) {
    this.isClient = isClient;
    this.avatar = avatar;
  }

  sendPacket(messageType: number, payload: Uint8Array): void {
    if (this.lost) return;
    const p: Packet = [messageType, payload.slice()];
    this.packets.push(p);
    this.outbox.push(p);
  }
  sendDisconnect(reason: number, description: string): void {
    this.disconnects.push([reason, description]);
    this.lost = true;
  }
  sendUnimplemented(): void {
    this.unimplemented++;
  }
  setService(s: service.SSHService): void {
    this.services.push(s);
  }
  loseConnection(): void {
    this.lost = true;
  }
  isEncrypted(): boolean {
    return true;
  }
  isVerified(): boolean {
    return true;
  }
  getPeer(): IAddress {
    return { type: "TCP", family: "IPv4", host: "192.0.2.1", port: 2222 };
  }
  getHost(): IAddress {
    return { type: "TCP", family: "IPv4", host: "127.0.0.1", port: 22 };
  }

  /** Takes the recorded packets, clearing the list. */
  take(): Packet[] {
    const p = this.packets;
    this.packets = [];
    this.outbox = [];
    return p;
  }
}

/** Starts `conn` on a fresh fake transport and returns the transport. */
export function attach(conn: connection.SSHConnection, isClient = false, avatar?: unknown): FakeTransport {
  const t = new FakeTransport(isClient, avatar);
  conn.transport = t;
  conn.serviceStarted();
  return t;
}

/** Two connections joined in memory; `flush()` delivers packets both ways until none are left. */
export class Pump {
  readonly clientTransport: FakeTransport;
  readonly serverTransport: FakeTransport;
  /** Every packet delivered, in order, with its direction. */
  readonly trace: Array<["c>s" | "s>c", number]> = [];

  constructor(
    readonly client: connection.SSHConnection,
    readonly server: connection.SSHConnection,
    serverAvatar?: unknown,
  ) {
    this.serverTransport = attach(server, false, serverAvatar);
    this.clientTransport = attach(client, true);
  }

  /** Delivers one round of queued packets each way; returns how many moved. */
  pump(): number {
    let moved = 0;
    const toServer = this.clientTransport.outbox.splice(0);
    for (const [n, p] of toServer) {
      this.trace.push(["c>s", n]);
      if (!this.serverTransport.lost) this.server.packetReceived(n, p);
      moved++;
    }
    const toClient = this.serverTransport.outbox.splice(0);
    for (const [n, p] of toClient) {
      this.trace.push(["s>c", n]);
      if (!this.clientTransport.lost) this.client.packetReceived(n, p);
      moved++;
    }
    return moved;
  }

  /** Pumps until nothing moves (bounded, so a livelock fails the test instead of hanging it). */
  flush(maxRounds = 100000): void {
    for (let i = 0; i < maxRounds; i++) if (this.pump() === 0) return;
    throw new Error("pump did not settle");
  }

  /**
   * Pumps while real I/O (child processes) happens on the event loop, until `done()` is true.
   * Gives up after `maxTurns` event-loop turns so a stuck test fails instead of hanging.
   */
  async until(done: () => boolean, maxTurns = 20000): Promise<void> {
    for (let i = 0; i < maxTurns; i++) {
      this.flush();
      if (done()) return;
      await new Promise<void>((r) => setTimeout(r, 1));
    }
    throw new Error("condition not reached");
  }
}

/** A channel that records every hook call, for tests. */
export class RecordingChannel extends channel.SSHChannel {
  override name = "session";
  events: string[] = [];
  received: Uint8Array[] = [];
  ext: Array<[number, Uint8Array]> = [];
  openData: Uint8Array | undefined = undefined;
  failure: Error | undefined = undefined;

  get receivedText(): string {
    return text(common.concatBytes(...this.received));
  }

  override channelOpen(specificData: Uint8Array): void {
    this.openData = specificData;
    this.events.push("open");
  }
  override openFailed(reason: Error): void {
    this.failure = reason;
    this.events.push("openFailed");
  }
  override dataReceived(data: Uint8Array): void {
    this.received.push(data.slice());
  }
  override extReceived(dataType: number, data: Uint8Array): void {
    this.ext.push([dataType, data.slice()]);
  }
  override eofReceived(): void {
    this.events.push("eof");
  }
  override closeReceived(): void {
    this.events.push("closeReceived");
    super.closeReceived();
  }
  override closed(): void {
    this.events.push("closed");
  }
  request_test(data: Uint8Array): boolean {
    this.events.push("request_test");
    return text(data) === "data";
  }
}
