/**
 * A UDP port over `node:dgram` (Twisted's `udp.Port`): each datagram goes to
 * `protocol.datagramReceived(data, addr)`; `transport.write(data, addr)` sends one.
 */
import { createSocket } from "node:dgram";
import type { Socket as DgramSocket } from "node:dgram";
import { fromNode, IPv4Address, IPv6Address, isIPv6 } from "../address.js";
import { Deferred } from "../defer.js";
import { CannotListenError, MessageLengthError } from "../error.js";
import { Failure } from "../failure.js";
import type { IAddress, IDatagramProtocol, IListeningPort, IUDPTransport } from "../interfaces.js";
import type { Logger } from "../log.js";

export interface UDPReactor {
  readonly log: Logger;
  readonly ports: Set<{ stopListening(): Deferred<void> }>;
}

export class UDPPort implements IListeningPort, IUDPTransport {
  socket: DgramSocket | null = null;
  listening = false;
  private bound: IAddress | null = null;
  private connectedTo: { host: string; port: number } | null = null;
  private waiters: Array<Deferred<UDPPort>> = [];
  private failure: Failure | null = null;
  private stopped: Deferred<void> | null = null;

  constructor(
    private readonly reactor: UDPReactor,
    readonly port: number,
    readonly protocol: IDatagramProtocol,
    readonly iface: string,
    readonly maxPacketSize: number,
  ) {}

  startListening(): void {
    const v6 = isIPv6(this.iface);
    const s = createSocket({ type: v6 ? "udp6" : "udp4" });
    this.socket = s;
    s.on("message", (msg: Buffer, rinfo) => {
      if (msg.length > this.maxPacketSize) return;
      try {
        this.protocol.datagramReceived(msg, fromNode("UDP", rinfo.address, rinfo.port, rinfo.family));
      } catch (e) {
        this.reactor.log.failure("Unhandled error in datagramReceived", new Failure(e), "error");
      }
    });
    s.on("error", (err: Error) => {
      if (!this.listening) {
        this.failure = new Failure(new CannotListenError(this.iface, this.port, err));
        this.reactor.log.failure("Cannot listen", this.failure, "error");
        this.reactor.ports.delete(this);
        for (const d of this.waiters.splice(0)) d.errback(this.failure);
      } else {
        this.reactor.log.failure("UDP socket error", new Failure(err), "warn");
      }
    });
    s.on("listening", () => {
      this.listening = true;
      const a = s.address();
      this.bound = fromNode("UDP", a.address, a.port, a.family);
      this.protocol.makeConnection(this);
      for (const d of this.waiters.splice(0)) d.callback(this);
    });
    this.reactor.ports.add(this);
    s.bind(this.port, this.iface === "" ? undefined : this.iface);
  }

  whenListening(): Deferred<UDPPort> {
    const d = new Deferred<UDPPort>();
    if (this.listening) d.callback(this);
    else if (this.failure !== null) d.errback(this.failure);
    else this.waiters.push(d);
    return d;
  }

  write(data: Uint8Array | string, addr?: { host: string; port: number }): void {
    const s = this.socket;
    if (s === null || this.stopped !== null) return;
    const b = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    if (b.length > 65507) throw new MessageLengthError("message too long");
    const to = addr ?? this.connectedTo;
    if (to === null) throw new TypeError("write needs an address on an unconnected UDP port");
    s.send(b, to.port, to.host, (err) => {
      if (err) this.reactor.log.debug("UDP send failed: {error}", { error: err.message });
    });
  }

  connect(host: string, port: number): void {
    this.connectedTo = { host, port };
  }

  getHost(): IAddress {
    if (this.bound !== null) return this.bound;
    return isIPv6(this.iface) ? new IPv6Address("UDP", this.iface, this.port) : new IPv4Address("UDP", this.iface || "0.0.0.0", this.port);
  }

  loseConnection(): void {
    void this.stopListening();
  }

  stopListening(): Deferred<void> {
    if (this.stopped !== null) {
      const d = new Deferred<void>();
      this.stopped.addBoth(() => d.callback(undefined));
      return d;
    }
    const d = new Deferred<void>();
    this.stopped = d;
    this.reactor.ports.delete(this);
    const s = this.socket;
    if (s === null || !this.listening) {
      d.callback(undefined);
      return d;
    }
    this.listening = false;
    s.close(() => {
      try {
        this.protocol.doStop();
      } finally {
        d.callback(undefined);
      }
    });
    return d;
  }
}
