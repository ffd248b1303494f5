/**
 * Where conchd's settings meet the server's policies (issue 14): the forwarding policy
 * (`ssh/_forwarding/policy.ts`) and the factory's per-source protections (`ssh/_factory/srclimit.ts`:
 * MaxStartups, PerSourceMaxStartups, PerSourceNetBlockSize, PerSourcePenalties,
 * PerSourcePenaltyExemptList). The value parsers here run as the keywords are read, so a bad
 * value is reported with its line; the `show*` functions print what `-T` prints.
 */
import { isIP } from "node:net";
import { parseHostPort } from "../../ssh/authopt.js";
import { forwardingPolicy, type ForwardingPolicy, type HostPortPermission } from "../../ssh/_forwarding/policy.js";
import {
  DEFAULT_PER_SOURCE_PENALTIES,
  type MaxStartups,
  type NetBlockSize,
  type PenaltyOverflow,
  type PerSourcePenalties,
  type SourceLimitSettings,
} from "../../ssh/_factory/srclimit.js";
import type { ConchdConfig } from "./config.js";

/** A value parser's sshd time reader (`keywords.parseTime`), passed in to keep the imports one way. */
type TimeParser = (v: string) => number;

/**
 * PermitOpen (`listen` false) or PermitListen (`listen` true) words: `any`, `none`, or `host:port`
 * entries (`*` for any host or port; PermitListen also takes a bare port). Throws on a bad entry.
 */
export function parsePermission(words: readonly string[], listen: boolean): string[] {
  if (words.length === 1 && ["any", "none"].includes(words[0]!.toLowerCase())) return [words[0]!.toLowerCase()];
  for (const w of words) {
    if (w.toLowerCase() === "any" || w.toLowerCase() === "none") throw new Error(`${w} must stand alone`);
    parseHostPort(w, listen);
  }
  return [...words];
}

function permission(words: readonly string[]): HostPortPermission {
  if (words.length === 1 && (words[0] === "any" || words[0] === "none")) return words[0];
  return [...words];
}

/** The forwarding policy of a config: AllowTcpForwarding, PermitOpen, PermitListen, AllowStreamLocalForwarding, GatewayPorts, StreamLocalBindUnlink. */
export function forwardingPolicyOf(config: ConchdConfig): ForwardingPolicy {
  const directions = (d: ConchdConfig["allowTcpForwarding"]): ForwardingPolicy["allowTcpForwarding"] => (d === "all" ? "yes" : d);
  return forwardingPolicy({
    allowTcpForwarding: directions(config.allowTcpForwarding),
    permitOpen: permission(config.permitOpen),
    permitListen: permission(config.permitListen),
    allowStreamLocalForwarding: directions(config.allowStreamLocalForwarding),
    gatewayPorts: config.gatewayPorts,
    streamLocalBindUnlink: config.streamLocalBindUnlink,
  });
}

/**
 * `MaxStartups start:rate:full`, or one number N (as sshd: refuse every connection past N). As
 * sshd's servconf.c: start ≤ full, 1 ≤ rate ≤ 100, both above 0.
 */
export function parseMaxStartups(v: string): MaxStartups {
  const m = /^(\d+)(?::(\d+):(\d+))?$/.exec(v);
  if (m === null) throw new Error(`expected start:rate:full or a number, not ${JSON.stringify(v)}`);
  const start = Number(m[1]);
  const [rate, full] = m[2] === undefined ? [100, start] : [Number(m[2]), Number(m[3])];
  if (start <= 0 || full <= 0 || start > full || rate < 1 || rate > 100) throw new Error(`${JSON.stringify(v)}: needs 0 < start <= full and rate from 1 to 100`);
  return { start, rate, full };
}

/** `MaxStartups` as `-T` prints it. */
export function showMaxStartups(m: MaxStartups): string {
  return `${m.start}:${m.rate}:${m.full}`;
}

/** `PerSourceMaxStartups N` or `none` (Infinity). */
export function parsePerSourceMaxStartups(v: string): number {
  if (v.toLowerCase() === "none") return Infinity;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`expected a number from 1 or none, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** `PerSourceNetBlockSize ipv4[:ipv6]`: prefix lengths, 0 to 32 and 0 to 128 (IPv6 128 when left out). */
export function parseNetBlockSize(v: string): NetBlockSize {
  const m = /^(\d+)(?::(\d+))?$/.exec(v);
  if (m === null) throw new Error(`expected ipv4[:ipv6] prefix lengths such as 24:64, not ${JSON.stringify(v)}`);
  const ipv4 = Number(m[1]);
  const ipv6 = m[2] === undefined ? 128 : Number(m[2]);
  if (ipv4 > 32 || ipv6 > 128) throw new Error(`${JSON.stringify(v)}: IPv4 prefix at most 32, IPv6 at most 128`);
  return { ipv4, ipv6 };
}

const PENALTY_TIMES: Readonly<Record<string, keyof PerSourcePenalties>> = {
  crash: "crash",
  authfail: "authfail",
  noauth: "noauth",
  "grace-exceeded": "graceExceeded",
  max: "max",
  min: "min",
};
const PENALTY_COUNTS: Readonly<Record<string, keyof PerSourcePenalties>> = { "max-sources4": "maxSources4", "max-sources6": "maxSources6" };
const PENALTY_OVERFLOWS: Readonly<Record<string, keyof PerSourcePenalties>> = { overflow: "overflow", overflow6: "overflow6" };

/**
 * `PerSourcePenalties`, sshd_config(5)'s syntax: `yes` (OpenSSH's defaults), `no` (off), or
 * `key:value` items: `crash:`, `authfail:`, `noauth:`, `grace-exceeded:`, `max:`, `min:` take
 * durations in sshd's time format (`30s`, `5m`); `max-sources4:`, `max-sources6:` numbers;
 * `overflow:`, `overflow6:` `deny-all` or `permissive`. Items not given keep their defaults.
 */
export function parsePenalties(args: readonly string[], parseTime: TimeParser): Partial<PerSourcePenalties> {
  if (args.length === 1 && ["yes", "no"].includes(args[0]!.toLowerCase())) return args[0]!.toLowerCase() === "no" ? { enabled: false } : {};
  const out: Record<string, unknown> = {};
  for (const item of args) {
    const colon = item.indexOf(":");
    const [key, value] = colon < 0 ? [item.toLowerCase(), ""] : [item.slice(0, colon).toLowerCase(), item.slice(colon + 1)];
    if (key === "yes" || key === "no") throw new Error(`${item} must stand alone`);
    if (colon < 0 || value === "") throw new Error(`expected key:value, not ${JSON.stringify(item)}`);
    const time = PENALTY_TIMES[key];
    const count = PENALTY_COUNTS[key];
    const overflow = PENALTY_OVERFLOWS[key];
    if (time !== undefined) out[time] = parseTime(value);
    else if (count !== undefined) {
      if (!/^\d+$/.test(value) || Number(value) < 1) throw new Error(`${key}: expected a number from 1, not ${JSON.stringify(value)}`);
      out[count] = Number(value);
    } else if (overflow !== undefined) {
      if (value !== "deny-all" && value !== "permissive") throw new Error(`${key}: expected deny-all or permissive, not ${JSON.stringify(value)}`);
      out[overflow] = value satisfies PenaltyOverflow;
    } else throw new Error(`unknown item ${JSON.stringify(key)} (crash, authfail, noauth, grace-exceeded, max, min, max-sources4, max-sources6, overflow, overflow6)`);
  }
  return out as Partial<PerSourcePenalties>;
}

/** `PerSourcePenalties` as `-T` prints it: `no`, or every item with the defaults filled in. */
export function showPenalties(p: Partial<PerSourcePenalties>): string {
  const e = { ...DEFAULT_PER_SOURCE_PENALTIES, ...p };
  if (!e.enabled) return "no";
  return [
    `crash:${e.crash}s authfail:${e.authfail}s noauth:${e.noauth}s grace-exceeded:${e.graceExceeded}s max:${e.max}s min:${e.min}s`,
    `max-sources4:${e.maxSources4} max-sources6:${e.maxSources6} overflow:${e.overflow} overflow6:${e.overflow6}`,
  ].join(" ");
}

/** `PerSourcePenaltyExemptList`: comma-separated addresses and CIDR blocks, or `none`. */
export function parseExemptList(v: string): string[] {
  if (v.toLowerCase() === "none") return [];
  return v.split(",").map((entry) => {
    const [net = "", bits, extra] = entry.split("/");
    const family = isIP(net);
    const max = family === 4 ? 32 : 128;
    if (family === 0 || extra !== undefined || (bits !== undefined && (!/^\d+$/.test(bits) || Number(bits) > max))) {
      throw new Error(`${JSON.stringify(entry)} is not an address or CIDR block`);
    }
    return entry;
  });
}

/** The factory's per-source settings of a config. */
export function startupLimitsOf(config: ConchdConfig): SourceLimitSettings {
  return {
    maxStartups: config.maxStartups,
    perSourceMaxStartups: config.perSourceMaxStartups,
    perSourceNetBlockSize: config.perSourceNetBlockSize,
    perSourcePenalties: config.perSourcePenalties,
    perSourcePenaltyExemptList: config.perSourcePenaltyExemptList,
  };
}
