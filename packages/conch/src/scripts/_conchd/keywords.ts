/**
 * conchd's keywords: each with its value parser, default and `-T` rendering. sshd's names and
 * defaults where sshd has the keyword; docs/server.md lists them all.
 */
import {
  DEFAULT_LOGIN_GRACE_TIME,
  DH_INLINE_MAX_BITS,
  GEX_MAX_BITS,
  GEX_MIN_BITS,
  MAX_KEX_QUEUE_BYTES,
  MAX_PACKET_LENGTH,
  MAX_VERSION_BUFFER,
} from "../../ssh/transport.js";
import { DEFAULT_MAX_AUTH_TRIES, MAX_INFO_PROMPTS, MAX_USERNAME_LENGTH } from "../../ssh/_userauth/common.js";
import { DEFAULT_MAX_SESSIONS, MAX_OPEN_CHANNELS } from "../../ssh/_connection/messages.js";
import { REQUIRED_RSA_SIZE } from "../../ssh/keys.js";
import { DEFAULT_MODULI_PATH } from "../../ssh/factory.js";
import { DEFAULT_MAX_STARTUPS, DEFAULT_NET_BLOCK_SIZE } from "../../ssh/_factory/srclimit.js";
import { parseExemptList, parseMaxStartups, parseNetBlockSize, parsePenalties, parsePermission, parsePerSourceMaxStartups, showMaxStartups, showPenalties } from "./policy.js";

/** One keyword: a single-valued one has `parse`, a list one (`multi`) has `apply`. */
export interface KeywordSpec {
  readonly name: string;
  readonly aliases?: readonly string[];
  /** The ConchdConfig field it sets. */
  readonly field: string;
  readonly default: unknown;
  readonly multi?: boolean;
  parse(args: string[]): unknown;
  apply(args: string[], into: unknown): void;
  show(value: unknown): string[];
}

function one(args: string[]): string {
  if (args.length !== 1) throw new Error(`takes one value, not ${args.length}`);
  return args[0]!;
}

function noApply(): void {
  throw new Error("not a list keyword");
}

function single<T>(name: string, field: string, def: T, parse: (v: string) => T, show: (v: T) => string = String, aliases?: string[]): KeywordSpec {
  return {
    name,
    field,
    default: def,
    ...(aliases !== undefined ? { aliases } : {}),
    parse: (args) => parse(one(args)),
    apply: noApply,
    show: (v) => [show(v as T)],
  };
}

function yesNo(v: string): boolean {
  const l = v.toLowerCase();
  if (l === "yes") return true;
  if (l === "no") return false;
  throw new Error(`expected yes or no, not ${JSON.stringify(v)}`);
}
const showYesNo = (v: boolean): string => (v ? "yes" : "no");

function choice<T extends string>(values: readonly T[], aliases: Readonly<Record<string, T>> = {}): (v: string) => T {
  return (v) => {
    const l = v.toLowerCase();
    const hit = values.find((x) => x === l) ?? aliases[l];
    if (hit === undefined) throw new Error(`expected one of ${values.join(", ")}, not ${JSON.stringify(v)}`);
    return hit;
  };
}

/** A whole number in [min, max]. */
export function integer(min: number, max = Number.MAX_SAFE_INTEGER): (v: string) => number {
  return (v) => {
    if (!/^\d+$/.test(v)) throw new Error(`expected a whole number, not ${JSON.stringify(v)}`);
    const n = Number(v);
    if (n < min || n > max) throw new Error(`${n} is out of range (${min} to ${max})`);
    return n;
  };
}

const TIME_UNITS: Readonly<Record<string, number>> = { "": 1, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

/** sshd's time format (`convtime`): `90`, `2m`, `1h30m`; seconds. */
export function parseTime(v: string): number {
  if (!/^(\d+[smhdwSMHDW]?)+$/.test(v)) throw new Error(`expected a time such as 30, 2m or 1h30m, not ${JSON.stringify(v)}`);
  let total = 0;
  for (const m of v.matchAll(/(\d+)([smhdwSMHDW]?)/g)) total += Number(m[1]) * TIME_UNITS[m[2]!.toLowerCase()]!;
  return total;
}

const SIZE_UNITS: Readonly<Record<string, number>> = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/** A byte count with an optional K, M or G suffix. */
export function parseSize(v: string): number {
  const m = /^(\d+)([kKmMgG]?)$/.exec(v);
  if (m === null) throw new Error(`expected a size such as 1G or 512M, not ${JSON.stringify(v)}`);
  return Number(m[1]) * SIZE_UNITS[m[2]!.toLowerCase()]!;
}

/** Tokens an AuthorizedKeysFile may use. */
const KEYS_FILE_TOKEN = /%(.|$)/g;

function checkTokens(v: string): string {
  for (const m of v.matchAll(KEYS_FILE_TOKEN)) {
    if (!["h", "u", "U", "%"].includes(m[1]!)) throw new Error(`unknown token %${m[1]} in ${JSON.stringify(v)} (use %h, %u, %U or %%)`);
  }
  return v;
}

/** Expands `%h` (home), `%u` (user name), `%U` (uid) and `%%` in an AuthorizedKeysFile pattern. */
export function expandTokens(pattern: string, user: { name: string; home: string; uid: number }): string {
  return pattern.replace(KEYS_FILE_TOKEN, (_m, t: string) => (t === "h" ? user.home : t === "u" ? user.name : t === "U" ? String(user.uid) : "%"));
}

/** A keyword whose first line gives a word list; `none` alone is the empty list. */
function words(name: string, field: string, def: string[], check: (v: string) => string = (v) => v): KeywordSpec {
  return {
    name,
    field,
    default: def,
    parse: (args) => (args.length === 1 && args[0]!.toLowerCase() === "none" ? [] : args.map(check)),
    apply: noApply,
    show: (v) => [(v as string[]).join(" ") || "none"],
  };
}

function list(name: string, field: string, def: unknown[], check: (args: string[]) => unknown): KeywordSpec {
  return {
    name,
    field,
    default: def,
    multi: true,
    parse: noApply,
    apply: (args, into) => (into as unknown[]).push(check(args)),
    show: (v) => (v as unknown[]).map(String),
  };
}

const FORWARDING = choice(["all", "local", "remote", "no"] as const, { yes: "all" });
const LOG_LEVELS = ["QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG"] as const;

/** Every keyword conchd reads. */
export const KEYWORDS: readonly KeywordSpec[] = [
  list("Port", "port", [22], (a) => integer(1, 65535)(one(a))),
  list("ListenAddress", "listenAddress", [], (a) => one(a)),
  list("ListenEndpoint", "listenEndpoint", [], (a) => one(a)),
  single("HostKeyDirectory", "hostKeyDirectory", "", (v) => v),
  list("HostKey", "hostKey", [], (a) => one(a)),
  list("HostCertificate", "hostCertificate", [], (a) => one(a)),
  words("AuthorizedKeysFile", "authorizedKeysFile", [".ssh/authorized_keys", ".ssh/authorized_keys2"], checkTokens),
  single<string | undefined>("TrustedUserCAKeys", "trustedUserCAKeys", undefined, (v) => (v.toLowerCase() === "none" ? undefined : v), (v) => v ?? "none"),
  single("PubkeyAuthentication", "pubkeyAuthentication", true, yesNo, showYesNo),
  single("StrictModes", "strictModes", true, yesNo, showYesNo),
  single("PasswordAuthentication", "passwordAuthentication", true, yesNo, showYesNo),
  single("KbdInteractiveAuthentication", "kbdInteractiveAuthentication", false, yesNo, showYesNo, ["ChallengeResponseAuthentication"]),
  single("PAMServiceName", "pamServiceName", "sshd", (v) => {
    if (!/^[A-Za-z0-9._-]+$/.test(v)) throw new Error(`not a PAM service name: ${JSON.stringify(v)}`);
    return v;
  }),
  single("PAMMaxConcurrent", "pamMaxConcurrent", 8, integer(1, 1024)),
  single("PermitRootLogin", "permitRootLogin", "prohibit-password", choice(["yes", "prohibit-password", "forced-commands-only", "no"] as const, { "without-password": "prohibit-password" })),
  {
    name: "Subsystem",
    field: "subsystem",
    default: { sftp: "internal-sftp" },
    multi: true,
    parse: noApply,
    apply: (args, into) => {
      const table = into as Record<string, string>;
      const [name, ...cmd] = args;
      if (name === undefined || cmd.length === 0) throw new Error("needs a name and a command");
      if (Object.hasOwn(table, name)) throw new Error(`subsystem ${JSON.stringify(name)} is already defined`);
      table[name] = cmd.join(" ");
    },
    show: (v) => Object.entries(v as Record<string, string>).map(([n, cmd]) => `${n} ${cmd}`),
  },
  single("AllowTcpForwarding", "allowTcpForwarding", "all", FORWARDING, (v) => (v === "all" ? "yes" : v)),
  single("AllowStreamLocalForwarding", "allowStreamLocalForwarding", "all", FORWARDING, (v) => (v === "all" ? "yes" : v)),
  { ...words("PermitOpen", "permitOpen", ["any"]), parse: (args: string[]) => parsePermission(args, false) },
  { ...words("PermitListen", "permitListen", ["any"]), parse: (args: string[]) => parsePermission(args, true) },
  single("GatewayPorts", "gatewayPorts", "no", choice(["no", "yes", "clientspecified"] as const)),
  single("StreamLocalBindUnlink", "streamLocalBindUnlink", false, yesNo, showYesNo),
  single("AllowAgentForwarding", "allowAgentForwarding", true, yesNo, showYesNo),
  single("X11Forwarding", "x11Forwarding", false, yesNo, showYesNo),
  single("PermitTTY", "permitTTY", true, yesNo, showYesNo),
  single("PermitUserEnvironment", "permitUserEnvironment", false, yesNo, showYesNo),
  list("AcceptEnv", "acceptEnv", [], (a) => a.join(" ")),
  {
    name: "SetEnv",
    field: "setEnv",
    default: {},
    multi: true,
    parse: noApply,
    apply: (args, into) => {
      for (const a of args) {
        const eq = a.indexOf("=");
        if (eq <= 0) throw new Error(`expected NAME=VALUE, not ${JSON.stringify(a)}`);
        const table = into as Record<string, string>;
        if (!Object.hasOwn(table, a.slice(0, eq))) table[a.slice(0, eq)] = a.slice(eq + 1);
      }
    },
    show: (v) => Object.entries(v as Record<string, string>).map(([k, x]) => `${k}=${x}`),
  },
  single("MaxAuthTries", "maxAuthTries", DEFAULT_MAX_AUTH_TRIES, integer(1, 1000)),
  single("MaxSessions", "maxSessions", DEFAULT_MAX_SESSIONS, integer(0, 100000)),
  single("LoginGraceTime", "loginGraceTime", DEFAULT_LOGIN_GRACE_TIME, parseTime),
  single("ClientAliveInterval", "clientAliveInterval", 0, parseTime),
  single("ClientAliveCountMax", "clientAliveCountMax", 3, integer(0, 100000)),
  single("MaxStartups", "maxStartups", DEFAULT_MAX_STARTUPS, parseMaxStartups, showMaxStartups),
  single("PerSourceMaxStartups", "perSourceMaxStartups", Infinity, parsePerSourceMaxStartups, (v) => (v === Infinity ? "none" : String(v))),
  single("PerSourceNetBlockSize", "perSourceNetBlockSize", DEFAULT_NET_BLOCK_SIZE, parseNetBlockSize, (v) => `${v.ipv4}:${v.ipv6}`),
  { ...single("PerSourcePenalties", "perSourcePenalties", {}, () => ({}), showPenalties), parse: (args: string[]) => parsePenalties(args, parseTime) },
  single("PerSourcePenaltyExemptList", "perSourcePenaltyExemptList", [], parseExemptList, (v) => v.join(",") || "none"),
  single("AuthFailureDelay", "authFailureDelay", 1, (v) => {
    const n = Number(v);
    if (!/^\d+(\.\d+)?$/.test(v) || n > 60) throw new Error(`expected seconds from 0 to 60, not ${JSON.stringify(v)}`);
    return n;
  }),
  single("MaxPacketLength", "maxPacketLength", MAX_PACKET_LENGTH, integer(35000, 16 * 1024 * 1024)),
  single("MaxVersionLength", "maxVersionLength", MAX_VERSION_BUFFER, integer(255, 1024 * 1024)),
  single("MaxUsernameLength", "maxUsernameLength", MAX_USERNAME_LENGTH, integer(1, 65536)),
  single("MaxInfoPrompts", "maxInfoPrompts", MAX_INFO_PROMPTS, integer(1, 1000)),
  single("MaxOpenChannels", "maxOpenChannels", MAX_OPEN_CHANNELS, integer(1, 1000000)),
  single("MaxKexQueueBytes", "maxKexQueueBytes", MAX_KEX_QUEUE_BYTES, (v) => parseSize(v)),
  single("DHGroupExchangeMinBits", "dhGroupExchangeMinBits", GEX_MIN_BITS, integer(1024, 8192)),
  single("DHGroupExchangeMaxBits", "dhGroupExchangeMaxBits", GEX_MAX_BITS, integer(1024, 8192)),
  single("DHInlineMaxBits", "dhInlineMaxBits", DH_INLINE_MAX_BITS, integer(0, 8192)),
  single("RequiredRSASize", "requiredRSASize", REQUIRED_RSA_SIZE, integer(1024, 16384)),
  {
    name: "RekeyLimit",
    field: "rekeyLimit",
    default: [0, 0],
    parse: (args) => {
      if (args.length < 1 || args.length > 2) throw new Error("takes a size and an optional time");
      const bytes = args[0]!.toLowerCase() === "default" ? 0 : parseSize(args[0]!);
      const secs = args[1] === undefined || args[1].toLowerCase() === "none" ? 0 : parseTime(args[1]);
      return [bytes, secs];
    },
    apply: noApply,
    show: (v) => {
      const [b, s] = v as [number, number];
      return [`${b === 0 ? "default" : b} ${s === 0 ? "none" : s}`];
    },
  },
  single("ModuliFile", "moduliFile", DEFAULT_MODULI_PATH, (v) => v),
  single<string | undefined>("Banner", "banner", undefined, (v) => (v.toLowerCase() === "none" ? undefined : v), (v) => v ?? "none"),
  single<(typeof LOG_LEVELS)[number]>("LogLevel", "logLevel", "INFO", (v) => {
    const u = /^DEBUG[123]$/i.test(v) ? "DEBUG" : v.toUpperCase();
    const hit = LOG_LEVELS.find((l) => l === u);
    if (hit === undefined) throw new Error(`expected one of ${LOG_LEVELS.join(", ")}, not ${JSON.stringify(v)}`);
    return hit;
  }),
  single("LogFormat", "logFormat", "text", choice(["text", "json"] as const)),
  single("ShutdownGraceTime", "shutdownGraceTime", 60, parseTime),
  single("Workers", "workers", 1, integer(1, 256)),
];
