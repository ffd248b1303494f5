/**
 * The interfaces of `twisted.internet.interfaces` that other modules and packages share, as
 * TypeScript types. Runtime checks are structural; these exist for the compiler.
 */

/** An endpoint address: `IPv4Address` / `IPv6Address` (`host`, `port`) or `UNIXAddress` (`name`). */
export type IAddress = IPv4Address | IPv6Address | UNIXAddress;

export interface IPv4Address {
  readonly type: "TCP" | "UDP";
  readonly family: "IPv4";
  readonly host: string;
  readonly port: number;
}

export interface IPv6Address {
  readonly type: "TCP" | "UDP";
  readonly family: "IPv6";
  readonly host: string;
  readonly port: number;
}

export interface UNIXAddress {
  readonly type: "UNIX";
  readonly family: "UNIX";
  readonly name: string | null;
  /** Always "" for UNIX addresses; present so `addr.host` reads on every address. */
  readonly host: string;
  readonly port: number;
}
