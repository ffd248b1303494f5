/**
 * Address objects, as `twisted.internet.address`: `IPv4Address("TCP", host, port)`,
 * `IPv6Address`, `UNIXAddress(name)`, `HostnameAddress(hostname, port)`. They satisfy the
 * structural types in `interfaces` (`IAddress`), so code may build plain objects too.
 */
import type * as I from "./interfaces.js";

/** An IPv4 socket endpoint. */
export class IPv4Address implements I.IPv4Address {
  readonly family = "IPv4" as const;
  constructor(
    readonly type: "TCP" | "UDP",
    readonly host: string,
    readonly port: number,
  ) {}
  toString(): string {
    return `IPv4Address(type=${this.type}, host=${this.host}, port=${this.port})`;
  }
}

/** An IPv6 socket endpoint (`host` without brackets). */
export class IPv6Address implements I.IPv6Address {
  readonly family = "IPv6" as const;
  constructor(
    readonly type: "TCP" | "UDP",
    readonly host: string,
    readonly port: number,
  ) {}
  toString(): string {
    return `IPv6Address(type=${this.type}, host=${this.host}, port=${this.port})`;
  }
}

/** A UNIX socket endpoint; `name` is null for an unbound (client) socket. */
export class UNIXAddress implements I.UNIXAddress {
  readonly type = "UNIX" as const;
  readonly family = "UNIX" as const;
  readonly host = "";
  readonly port = 0;
  constructor(readonly name: string | null) {}
  toString(): string {
    return `UNIXAddress(${this.name ?? "None"})`;
  }
}

/** A hostname and port before resolution (what `HostnameEndpoint` connects to). */
export class HostnameAddress {
  constructor(
    readonly hostname: string,
    readonly port: number,
  ) {}
  toString(): string {
    return `HostnameAddress(hostname=${this.hostname}, port=${this.port})`;
  }
}

/** True when two addresses name the same endpoint. */
export function addressEquals(a: I.IAddress, b: I.IAddress): boolean {
  if (a.family !== b.family || a.type !== b.type) return false;
  if (a.family === "UNIX" && b.family === "UNIX") return a.name === b.name;
  return a.host === b.host && a.port === b.port;
}

/** True when `host` is an IPv6 literal. */
export function isIPv6(host: string): boolean {
  return host.includes(":");
}

/**
 * An address from what Node reports (`socket.address()`, `remoteAddress`/`remotePort`); an
 * IPv4-mapped IPv6 address (`::ffff:1.2.3.4`) is reported as IPv4, as Twisted does for
 * dual-stack sockets.
 */
export function fromNode(
  type: "TCP" | "UDP",
  host: string | undefined,
  port: number | undefined,
  family?: string | number,
): IPv4Address | IPv6Address {
  const h = host ?? "";
  const p = port ?? 0;
  if (h.startsWith("::ffff:") && h.includes(".")) return new IPv4Address(type, h.slice(7), p);
  const v6 = family === "IPv6" || family === 6 || (family === undefined && isIPv6(h));
  return v6 ? new IPv6Address(type, h, p) : new IPv4Address(type, h, p);
}
