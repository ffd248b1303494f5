/**
 * `ssh/authopt`: what a login may do — OpenSSH's `sshauthopt`.
 *
 * The userauth server makes one {@link AuthOptions} record at USERAUTH_SUCCESS from the options
 * of the authorized_keys line that let the user in (the checker's `credentials.keyOptions`),
 * narrowed by the server's {@link ServerAuthSettings} (sshd_config's `PermitTTY`,
 * `AllowTcpForwarding`, `PermitUserEnvironment`, …), and keeps it on the transport as
 * `transport.authOptions`. The layers that act read it there: the session channel (forced command,
 * pty, environment, agent and X11 requests) and the connection service (forwarding channels and
 * global requests). A realm therefore gets every restriction without writing a line. A user
 * certificate's critical options and extensions are folded into the checker's keyOptions
 * (`_certcheck.ts`), so they reach the same record.
 */
import type { IAddress } from "@twisted-ts/internet/interfaces";
import { SSHReader } from "./common.js";

/** A `permitopen` / `permitlisten` entry: a host (or `*`) and a port (or `*`). */
export interface HostPortPattern {
  readonly host: string;
  readonly port: number | "*";
}

/** What a login may do; made by {@link authOptionsFor}, read by the session and connection layers. */
export interface AuthOptions {
  /** pty-req is granted (`no-pty`, `restrict`, PermitTTY). */
  readonly permitPty: boolean;
  /** TCP forwarding: `direct-tcpip` channels and `tcpip-forward` (`no-port-forwarding`, AllowTcpForwarding). */
  readonly permitPortForwarding: boolean;
  /** Unix-socket forwarding: `direct-streamlocal@openssh.com`, `streamlocal-forward@openssh.com`. */
  readonly permitStreamLocalForwarding: boolean;
  /** `auth-agent-req@openssh.com` (`no-agent-forwarding`, AllowAgentForwarding). */
  readonly permitAgentForwarding: boolean;
  /** `x11-req` (`no-X11-forwarding`, X11Forwarding). */
  readonly permitX11Forwarding: boolean;
  /** ~/.ssh/rc may run (`no-user-rc`). This server never runs it; kept for completeness. */
  readonly permitUserRc: boolean;
  /** `tun@openssh.com` channels (PermitTunnel). */
  readonly permitTunnel: boolean;
  /** `command="…"`: runs instead of every exec, shell and subsystem request. */
  readonly forceCommand: string | undefined;
  /** `tunnel="n"`: the only tun device a tunnel may use. */
  readonly forceTunnelDevice: number | undefined;
  /** `environment="NAME=value"` pairs to set, in order; empty unless PermitUserEnvironment. */
  readonly environment: ReadonlyArray<readonly [name: string, value: string]>;
  /** `permitopen`: the only `direct-tcpip` destinations; undefined for any. */
  readonly permitOpen: readonly HostPortPattern[] | undefined;
  /** `permitlisten`: the only `tcpip-forward` addresses; undefined for any. */
  readonly permitListen: readonly HostPortPattern[] | undefined;
  /** `principals="…"`: names a certificate must carry (certificates only). */
  readonly principals: readonly string[] | undefined;
  /** `restrict` was given. */
  readonly restricted: boolean;
}

/** Server-wide settings a login's options are narrowed by, named after their sshd_config keywords. */
export interface ServerAuthSettings {
  /** PermitUserEnvironment: `environment=` options are applied (default false, as sshd). */
  readonly permitUserEnvironment: boolean;
  /** PermitTTY (default true). */
  readonly permitTTY: boolean;
  /** AllowTcpForwarding (default true). */
  readonly allowTcpForwarding: boolean;
  /** AllowStreamLocalForwarding (default true). */
  readonly allowStreamLocalForwarding: boolean;
  /** AllowAgentForwarding (default true). */
  readonly allowAgentForwarding: boolean;
  /** X11Forwarding (default false, as sshd). */
  readonly x11Forwarding: boolean;
  /** PermitTunnel (default false, as sshd; this server implements no tunnels anyway). */
  readonly permitTunnel: boolean;
}

/** sshd's defaults. */
export const DEFAULT_SERVER_AUTH_SETTINGS: ServerAuthSettings = Object.freeze({
  permitUserEnvironment: false,
  permitTTY: true,
  allowTcpForwarding: true,
  allowStreamLocalForwarding: true,
  allowAgentForwarding: true,
  x11Forwarding: false,
  permitTunnel: false,
});

/**
 * The parsed options of an authorized_keys line, as `checkers.AuthorizedKeyOptions` has them
 * (a checker of one's own may set any object of this shape as `credentials.keyOptions`).
 */
export interface KeyOptionsInput {
  readonly restrict: boolean;
  readonly pty: boolean;
  readonly portForwarding: boolean;
  readonly agentForwarding: boolean;
  readonly x11Forwarding: boolean;
  readonly userRc: boolean;
  readonly command: string | undefined;
  readonly environment: readonly string[];
  readonly permitOpen: readonly string[];
  readonly permitListen: readonly string[];
  readonly principals: readonly string[] | undefined;
  readonly tunnel: string | undefined;
}

/** A `permitopen`, `permitlisten` or `environment` value that cannot be used. */
export class AuthOptionsError extends Error {
  readonly code = "ERR_SSH_AUTH_OPTIONS";
  constructor(message: string) {
    super(message);
    this.name = "AuthOptionsError";
  }
}

/** True when `x` has the fields of a {@link KeyOptionsInput}. */
export function isKeyOptions(x: unknown): x is KeyOptionsInput {
  if (typeof x !== "object" || x === null) return false;
  const o = x as Record<string, unknown>;
  return (
    ["restrict", "pty", "portForwarding", "agentForwarding", "x11Forwarding", "userRc"].every((k) => typeof o[k] === "boolean") &&
    ["environment", "permitOpen", "permitListen"].every((k) => Array.isArray(o[k]))
  );
}

function parsePort(text: string, spec: string): number | "*" {
  if (text === "*") return "*";
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new AuthOptionsError(`bad port in ${JSON.stringify(spec)}`);
  return port;
}

/**
 * Reads `host:port` (`permitopen`) or, with `bareHostless`, also a bare `port` meaning any host
 * (`permitlisten`). The port may be `*`, the host `*`; an IPv6 host goes in brackets.
 */
export function parseHostPort(spec: string, bareHostless = false): HostPortPattern {
  const bracketed = /^\[([^\]]+)\]:([^:]+)$/.exec(spec);
  if (bracketed !== null) return { host: bracketed[1]!, port: parsePort(bracketed[2]!, spec) };
  const colon = spec.indexOf(":");
  if (colon < 0) {
    if (bareHostless) return { host: "*", port: parsePort(spec, spec) };
    throw new AuthOptionsError(`${JSON.stringify(spec)} needs host:port`);
  }
  const host = spec.slice(0, colon);
  if (host === "" || spec.indexOf(":", colon + 1) >= 0) throw new AuthOptionsError(`bad host in ${JSON.stringify(spec)} (IPv6 goes in brackets)`);
  return { host, port: parsePort(spec.slice(colon + 1), spec) };
}

/** Splits `NAME=value` as `environment=` has it. */
export function parseEnvironment(entry: string): [name: string, value: string] {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/s.exec(entry);
  if (m === null) throw new AuthOptionsError(`bad environment ${JSON.stringify(entry)}`);
  return [m[1]!, m[2]!];
}

/**
 * The record for a login: the key's options (none for a password login) narrowed by `settings`
 * (sshd's defaults for what is not given).
 */
export function authOptionsFor(key: KeyOptionsInput | undefined, settings: Partial<ServerAuthSettings> = {}): AuthOptions {
  const s: ServerAuthSettings = { ...DEFAULT_SERVER_AUTH_SETTINGS, ...settings };
  const tunnel = key?.tunnel === undefined ? undefined : Number(key.tunnel);
  return {
    permitPty: s.permitTTY && (key?.pty ?? true),
    permitPortForwarding: s.allowTcpForwarding && (key?.portForwarding ?? true),
    permitStreamLocalForwarding: s.allowStreamLocalForwarding && (key?.portForwarding ?? true),
    permitAgentForwarding: s.allowAgentForwarding && (key?.agentForwarding ?? true),
    permitX11Forwarding: s.x11Forwarding && (key?.x11Forwarding ?? true),
    permitUserRc: key?.userRc ?? true,
    permitTunnel: s.permitTunnel,
    forceCommand: key?.command,
    forceTunnelDevice: tunnel !== undefined && Number.isInteger(tunnel) ? tunnel : undefined,
    environment: s.permitUserEnvironment ? (key?.environment ?? []).map(parseEnvironment) : [],
    permitOpen: key === undefined || key.permitOpen.length === 0 ? undefined : key.permitOpen.map((p) => parseHostPort(p)),
    permitListen: key === undefined || key.permitListen.length === 0 ? undefined : key.permitListen.map((p) => parseHostPort(p, true)),
    principals: key?.principals,
    restricted: key?.restrict ?? false,
  };
}

/**
 * The record of a login that needed several methods (`SSHProtocolChecker`), as sshd's
 * `sshauthopt_merge`: permissions only where both allow; valued options from `primary` (the
 * earlier) when it has them, else from `additional`.
 */
export function mergeAuthOptions(primary: AuthOptions, additional: AuthOptions): AuthOptions {
  return {
    permitPty: primary.permitPty && additional.permitPty,
    permitPortForwarding: primary.permitPortForwarding && additional.permitPortForwarding,
    permitStreamLocalForwarding: primary.permitStreamLocalForwarding && additional.permitStreamLocalForwarding,
    permitAgentForwarding: primary.permitAgentForwarding && additional.permitAgentForwarding,
    permitX11Forwarding: primary.permitX11Forwarding && additional.permitX11Forwarding,
    permitUserRc: primary.permitUserRc && additional.permitUserRc,
    permitTunnel: primary.permitTunnel && additional.permitTunnel,
    forceCommand: primary.forceCommand ?? additional.forceCommand,
    forceTunnelDevice: primary.forceTunnelDevice ?? additional.forceTunnelDevice,
    environment: primary.environment.length > 0 ? primary.environment : additional.environment,
    permitOpen: primary.permitOpen ?? additional.permitOpen,
    permitListen: primary.permitListen ?? additional.permitListen,
    principals: primary.principals ?? additional.principals,
    restricted: primary.restricted || additional.restricted,
  };
}

/**
 * True when `permitopen` lets a `direct-tcpip` reach `host:port`. As sshd, the host is compared
 * literally (no name lookup, no wildcards but a whole `*`).
 */
export function permitsOpen(options: AuthOptions, host: string, port: number): boolean {
  if (options.permitOpen === undefined) return true;
  return options.permitOpen.some((p) => (p.port === "*" || p.port === port) && (p.host === "*" || p.host === host));
}

/**
 * True when `permitlisten` lets a `tcpip-forward` listen on `host:port`. As sshd, the host is
 * lower-cased and matched against the entry as a `*`/`?` pattern (so an entry with capitals never
 * matches); port 0 (any free port) matches only a port of `*`.
 */
export function permitsListen(options: AuthOptions, host: string, port: number): boolean {
  if (options.permitListen === undefined) return true;
  return options.permitListen.some((p) => (p.port === "*" || p.port === port) && matchPattern(host.toLowerCase(), p.host));
}

/** True when `s` matches `pattern`, where `*` is any run of characters and `?` any one (sshd's `match_pattern`). */
export function matchPattern(s: string, pattern: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${re}$`, "s").test(s);
}

/** The unit a `tun@openssh.com` open may ask for to mean "any free device". */
export const SSH_TUNID_ANY = 0x7fffffff;

/**
 * Why the login may not open a channel of `channelType` with this open data, or undefined when it
 * may. Types not named here are for the avatar to decide.
 */
export function channelOpenRefusal(options: AuthOptions, channelType: string, data: Uint8Array): string | undefined {
  switch (channelType) {
    case "direct-tcpip": {
      if (!options.permitPortForwarding) return "port forwarding is not permitted for this login";
      const r = new SSHReader(data);
      const host = r.utf8("host");
      const port = r.uint32();
      return permitsOpen(options, host, port) ? undefined : `${host}:${port} is not a permitopen destination`;
    }
    case "direct-streamlocal@openssh.com":
      return options.permitStreamLocalForwarding ? undefined : "stream-local forwarding is not permitted for this login";
    case "tun@openssh.com": {
      if (!options.permitTunnel) return "tunnels are not permitted (PermitTunnel)";
      const r = new SSHReader(data);
      r.uint32();
      const unit = r.uint32();
      const forced = options.forceTunnelDevice;
      return forced === undefined || unit === SSH_TUNID_ANY || unit === forced ? undefined : `tunnel device ${unit} is not the one permitted (${forced})`;
    }
    default:
      return undefined;
  }
}

/** Why the login may not make global request `requestType`, or undefined when it may. */
export function globalRequestRefusal(options: AuthOptions, requestType: string, data: Uint8Array): string | undefined {
  switch (requestType) {
    case "tcpip-forward": {
      if (!options.permitPortForwarding) return "port forwarding is not permitted for this login";
      const r = new SSHReader(data);
      const host = r.utf8("address to bind");
      const port = r.uint32();
      return permitsListen(options, host, port) ? undefined : `${host}:${port} is not a permitlisten address`;
    }
    case "streamlocal-forward@openssh.com":
      return options.permitStreamLocalForwarding ? undefined : "stream-local forwarding is not permitted for this login";
    default:
      return undefined;
  }
}

/** Session requests a login's options may refuse, with the permission each needs. */
const SESSION_REQUEST_PERMISSIONS: Readonly<Record<string, readonly [keyof AuthOptions, string]>> = {
  "pty-req": ["permitPty", "a pty is not permitted for this login"],
  "x11-req": ["permitX11Forwarding", "X11 forwarding is not permitted for this login"],
  "auth-agent-req@openssh.com": ["permitAgentForwarding", "agent forwarding is not permitted for this login"],
};

/** Why the login may not make session request `requestType`, or undefined when it may. */
export function sessionRequestRefusal(options: AuthOptions, requestType: string): string | undefined {
  const rule = Object.hasOwn(SESSION_REQUEST_PERMISSIONS, requestType) ? SESSION_REQUEST_PERMISSIONS[requestType] : undefined;
  return rule === undefined || options[rule[0]] === true ? undefined : rule[1];
}

/** `host:port` of an address for log lines, or "?" when there is none. */
export function describePeer(peer: () => IAddress): string {
  try {
    const p = peer();
    return "port" in p ? `${p.host}:${p.port}` : String((p as { name?: unknown }).name ?? "?");
  } catch {
    return "?";
  }
}
