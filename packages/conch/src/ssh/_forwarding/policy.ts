/**
 * The server's forwarding policy: sshd_config's `AllowTcpForwarding`, `PermitOpen`,
 * `PermitListen`, `AllowStreamLocalForwarding`, `GatewayPorts`, `StreamLocalBindUnlink` and
 * `StreamLocalBindMask`, as plain data, and its evaluation.
 *
 * The connection service asks it (through {@link checkForwardingChannel} and
 * {@link forwardingRequestRefusal}) before the avatar sees a forwarding channel open or global
 * request, after the login's authorized_keys options (`authopt.ts`) had their say: both must allow.
 * A policy is set per factory (`SSHFactory.forwardingPolicy`) and may be overridden per avatar by a
 * `getForwardingPolicy()` method (the Unix realm's avatar has one).
 */
import { Logger } from "@twisted-ts/internet/log";
import { ConchError, NotPermittedError, OPEN_RESOURCE_SHORTAGE } from "../../error.js";
import { describePeer, matchPattern, parseHostPort, type HostPortPattern } from "../authopt.js";
import { SSHReader } from "../common.js";
import type { SSHConnection } from "../connection.js";

const log = new Logger("twisted-ts.conch.ssh.forwarding.policy");

/** `AllowTcpForwarding` / `AllowStreamLocalForwarding`: both ways, neither, `-L` only, `-R` only. */
export type ForwardingDirections = "yes" | "no" | "local" | "remote";

/** `GatewayPorts`: remote forwards bind loopback (`no`), every address (`yes`), or the client's choice. */
export type GatewayPorts = "no" | "yes" | "clientspecified";

/**
 * `PermitOpen` / `PermitListen`: `"any"`, `"none"`, or `host:port` entries as sshd_config writes
 * them (`*` for any host or port; an IPv6 host in brackets; for PermitListen a bare port means any
 * host).
 */
export type HostPortPermission = "any" | "none" | readonly string[];

/** What a server lets its users forward; plain data, named after sshd_config's keywords. */
export interface ForwardingPolicy {
  /** `AllowTcpForwarding`: `direct-tcpip` is local, `tcpip-forward` remote (default `"yes"`). */
  readonly allowTcpForwarding: ForwardingDirections;
  /** `PermitOpen`: the `direct-tcpip` destinations (default `"any"`). Hosts compare literally. */
  readonly permitOpen: HostPortPermission;
  /** `PermitListen`: the `tcpip-forward` addresses (default `"any"`). Hosts match as `*`/`?` patterns. */
  readonly permitListen: HostPortPermission;
  /** `AllowStreamLocalForwarding`: `direct-streamlocal` is local, `streamlocal-forward` remote (default `"yes"`). */
  readonly allowStreamLocalForwarding: ForwardingDirections;
  /** `GatewayPorts` (default `"no"`: remote forwards listen on loopback only). */
  readonly gatewayPorts: GatewayPorts;
  /** `StreamLocalBindUnlink`: remove an existing socket file before listening on it (default false). */
  readonly streamLocalBindUnlink: boolean;
  /** `StreamLocalBindMask`: the umask of the socket files remote forwards create (default `0o177`). */
  readonly streamLocalBindMask: number;
  /** Forwarded channels one connection may have open at once (default {@link MAX_FORWARDED_CHANNELS}). */
  readonly maxForwardedChannels: number;
}

/**
 * Forwarded channels (both directions, TCP and UNIX-socket) one connection may have open or opening
 * at once. Half of `MAX_OPEN_CHANNELS`, so a flood of forwarded connections leaves room for
 * sessions; past it a forwarding open is refused with OPEN_RESOURCE_SHORTAGE and a connection
 * accepted on a forwarded listener is closed.
 */
export const MAX_FORWARDED_CHANNELS = 512;

/** OpenSSH's defaults. */
export const DEFAULT_FORWARDING_POLICY: ForwardingPolicy = Object.freeze({
  allowTcpForwarding: "yes",
  permitOpen: "any",
  permitListen: "any",
  allowStreamLocalForwarding: "yes",
  gatewayPorts: "no",
  streamLocalBindUnlink: false,
  streamLocalBindMask: 0o177,
  maxForwardedChannels: MAX_FORWARDED_CHANNELS,
});

/** Ports below this need root to listen on (`IPPORT_RESERVED`). */
export const IPPORT_RESERVED = 1024;

/** What `getForwardingPolicy` is on an avatar that overrides the factory's policy. */
export interface ForwardingPolicyProvider {
  getForwardingPolicy(): ForwardingPolicy;
}

/** `partial` over {@link DEFAULT_FORWARDING_POLICY}. */
export function forwardingPolicy(partial: Partial<ForwardingPolicy> = {}): ForwardingPolicy {
  return { ...DEFAULT_FORWARDING_POLICY, ...partial };
}

/** The policy of a login: the avatar's `getForwardingPolicy()`, else the factory's, else OpenSSH's defaults. */
export function forwardingPolicyOf(avatar: unknown, factoryPolicy: Partial<ForwardingPolicy> | undefined): ForwardingPolicy {
  const get = (avatar as Partial<ForwardingPolicyProvider> | null | undefined)?.getForwardingPolicy;
  if (typeof get === "function") return get.call(avatar);
  return forwardingPolicy(factoryPolicy);
}

function allows(directions: ForwardingDirections, way: "local" | "remote"): boolean {
  return directions === "yes" || directions === way;
}

function patterns(permission: readonly string[], listen: boolean): HostPortPattern[] {
  return permission.map((spec) => parseHostPort(spec, listen));
}

/** True when `PermitOpen` lets `direct-tcpip` reach `host:port` (hosts compared literally, as sshd). */
export function policyPermitsOpen(policy: ForwardingPolicy, host: string, port: number): boolean {
  const p = policy.permitOpen;
  if (p === "any") return true;
  if (p === "none") return false;
  return patterns(p, false).some((e) => (e.port === "*" || e.port === port) && (e.host === "*" || e.host === host));
}

/** True when `PermitListen` lets `tcpip-forward` listen on `host:port` (port 0 only under a `*` port). */
export function policyPermitsListen(policy: ForwardingPolicy, host: string, port: number): boolean {
  const p = policy.permitListen;
  if (p === "any") return true;
  if (p === "none") return false;
  return patterns(p, true).some((e) => (e.port === "*" || e.port === port) && matchPattern(host.toLowerCase(), e.host));
}

/**
 * The address a `tcpip-forward` for `host` listens on, as sshd's `channel_fwd_bind_addr`: loopback
 * under `GatewayPorts no` (`::1` when the client asked for it); every address under `yes`; under
 * `clientspecified` the client's address, with `""`, `*` and `0.0.0.0` meaning every address and
 * `localhost` loopback.
 */
export function forwardingBindAddress(policy: ForwardingPolicy, host: string): string {
  if (policy.gatewayPorts === "no") return host === "::1" ? "::1" : "127.0.0.1";
  if (policy.gatewayPorts === "yes" || host === "" || host === "*" || host === "0.0.0.0") return "0.0.0.0";
  return host === "localhost" ? "127.0.0.1" : host;
}

/**
 * Why `policy` refuses a channel of `channelType` with this open data, or undefined when it allows
 * it (types that are not forwarding are not its business).
 */
export function channelOpenPolicyRefusal(policy: ForwardingPolicy, channelType: string, data: Uint8Array): string | undefined {
  switch (channelType) {
    case "direct-tcpip": {
      if (!allows(policy.allowTcpForwarding, "local")) return "local TCP forwarding is not permitted (AllowTcpForwarding)";
      const r = new SSHReader(data);
      const host = r.utf8("host");
      const port = r.uint32();
      return policyPermitsOpen(policy, host, port) ? undefined : `${host}:${port} is not a PermitOpen destination`;
    }
    case "direct-streamlocal@openssh.com":
      return allows(policy.allowStreamLocalForwarding, "local") ? undefined : "local stream-local forwarding is not permitted (AllowStreamLocalForwarding)";
    default:
      return undefined;
  }
}

/**
 * Why `policy` refuses global request `requestType` from a user with `uid` (undefined when the
 * avatar has no Unix account: treated as not root), or undefined when it allows it.
 */
export function globalRequestPolicyRefusal(policy: ForwardingPolicy, requestType: string, data: Uint8Array, uid: number | undefined): string | undefined {
  switch (requestType) {
    case "tcpip-forward": {
      if (!allows(policy.allowTcpForwarding, "remote")) return "remote TCP forwarding is not permitted (AllowTcpForwarding)";
      const r = new SSHReader(data);
      const host = r.utf8("address to bind");
      const port = r.uint32();
      if (port !== 0 && port < IPPORT_RESERVED && uid !== 0) return `port ${port} is privileged and the user is not root`;
      return policyPermitsListen(policy, host, port) ? undefined : `${host}:${port} is not a PermitListen address`;
    }
    case "streamlocal-forward@openssh.com":
      return allows(policy.allowStreamLocalForwarding, "remote") ? undefined : "remote stream-local forwarding is not permitted (AllowStreamLocalForwarding)";
    default:
      return undefined;
  }
}

/** Channel types that carry a forwarded connection, in either direction. */
export const FORWARDING_CHANNEL_TYPES: ReadonlySet<string> = new Set([
  "direct-tcpip",
  "forwarded-tcpip",
  "direct-streamlocal@openssh.com",
  "forwarded-streamlocal@openssh.com",
]);

/** Forwarded channels `conn` has open or opening (counted by channel type). */
export function forwardedChannelCount(conn: SSHConnection): number {
  let n = 0;
  for (const channel of conn.channels.values()) if (FORWARDING_CHANNEL_TYPES.has(channel.name)) n++;
  return n;
}

/**
 * True when `conn` may open (or accept) one more forwarded channel under its login's policy; logs
 * the refusal otherwise. For listeners: a connection accepted past the limit is closed.
 */
export function mayOpenForwardedChannel(conn: SSHConnection, what: string): boolean {
  const max = forwardingPolicyOf(conn.transport?.avatar, conn.transport?.factory?.forwardingPolicy).maxForwardedChannels;
  const count = forwardedChannelCount(conn);
  if (count < max) return true;
  log.warn("refused {what}: {count} forwarded channels already open (the limit)", { what, count });
  return false;
}

function refusalLogged(conn: SSHConnection, what: string, reason: string | undefined): string | undefined {
  if (reason !== undefined) {
    log.info("refused {what} from {peer} by the forwarding policy: {reason}", { what, peer: describePeer(() => conn.transport!.getPeer()), reason });
  }
  return reason;
}

/**
 * The connection's check of an incoming channel open on a server: throws NotPermittedError
 * (OPEN_ADMINISTRATIVELY_PROHIBITED) when the policy refuses it, or a ConchError with
 * OPEN_RESOURCE_SHORTAGE past the forwarded-channel limit. Logs either.
 */
export function checkForwardingChannel(conn: SSHConnection, avatar: unknown, channelType: string, data: Uint8Array): void {
  if (!FORWARDING_CHANNEL_TYPES.has(channelType)) return;
  const policy = forwardingPolicyOf(avatar, conn.transport?.factory?.forwardingPolicy);
  const reason = refusalLogged(conn, `${channelType} channel`, channelOpenPolicyRefusal(policy, channelType, data));
  if (reason !== undefined) throw new NotPermittedError(reason);
  if (!mayOpenForwardedChannel(conn, `${channelType} channel`)) throw new ConchError("too many forwarded channels open", OPEN_RESOURCE_SHORTAGE);
}

/** The connection's check of a global request on a server: the policy's refusal (logged), or undefined. */
export function forwardingRequestRefusal(conn: SSHConnection, avatar: unknown, requestType: string, data: Uint8Array): string | undefined {
  if (requestType !== "tcpip-forward" && requestType !== "streamlocal-forward@openssh.com") return undefined;
  const policy = forwardingPolicyOf(avatar, conn.transport?.factory?.forwardingPolicy);
  const ids = (avatar as { getUserGroupId?: () => { uid: number } } | null | undefined)?.getUserGroupId;
  const uid = typeof ids === "function" ? ids.call(avatar).uid : undefined;
  return refusalLogged(conn, `${requestType} request`, globalRequestPolicyRefusal(policy, requestType, data, uid));
}

