/**
 * conchd's configuration: sshd_config syntax (`Keyword value`, `#` comments, case-insensitive
 * keywords, the first value of a keyword wins), parsed into one typed {@link ConchdConfig}.
 * Command-line options are parsed first, as sshd's `-o`, so they win over the file.
 */
import { splitWords } from "../_cftp_commands.js";
import type { MaxStartups, NetBlockSize, PerSourcePenalties } from "../../ssh/_factory/srclimit.js";
import { KEYWORDS, type KeywordSpec } from "./keywords.js";

/** sshd's PermitRootLogin values (`without-password` is read as `prohibit-password`). */
export type PermitRootLogin = "yes" | "prohibit-password" | "forced-commands-only" | "no";
/** AllowTcpForwarding / AllowStreamLocalForwarding values (`yes` is read as `all`). */
export type ForwardingDirection = "all" | "local" | "remote" | "no";
/** The log levels conchd writes; sshd's names (VERBOSE, DEBUG1-3) map onto them. */
export type ConchdLogLevel = "QUIET" | "FATAL" | "ERROR" | "INFO" | "VERBOSE" | "DEBUG";

/** Everything conchd runs with, after the command line and the file. */
export interface ConchdConfig {
  /** Endpoint strings to listen on (`tcp:2222:interface=127.0.0.1`, `haproxy:tcp:2223`, `unix:/run/x`). */
  listen: string[];
  /** Port: the ports ListenAddress entries without a port use (default 22). */
  port: number[];
  /** ListenAddress entries, as written. */
  listenAddress: string[];
  /** ListenEndpoint: endpoint strings from the file. */
  listenEndpoint: string[];
  /** HostKeyDirectory (`-d`): where host keys are found or generated when no HostKey is set. */
  hostKeyDirectory: string;
  /** HostKey files; empty for the keys of {@link hostKeyDirectory}. */
  hostKey: string[];
  /** HostCertificate files. */
  hostCertificate: string[];
  /** AuthorizedKeysFile patterns (`%h`, `%u`, `%U`, `%%`); relative ones are under the home directory. */
  authorizedKeysFile: string[];
  /** TrustedUserCAKeys: a file of CA public keys, or undefined for none. */
  trustedUserCAKeys: string | undefined;
  pubkeyAuthentication: boolean;
  /** StrictModes: authorized_keys files others could have written are refused. */
  strictModes: boolean;
  passwordAuthentication: boolean;
  kbdInteractiveAuthentication: boolean;
  /** PAMServiceName: the PAM service pamtester checks passwords against. */
  pamServiceName: string;
  /** PAMMaxConcurrent: pamtester processes running at once; more attempts wait. */
  pamMaxConcurrent: number;
  permitRootLogin: PermitRootLogin;
  /** Subsystem: name → command line run as the user. */
  subsystem: Record<string, string>;
  allowTcpForwarding: ForwardingDirection;
  allowStreamLocalForwarding: ForwardingDirection;
  /** PermitOpen: `host:port` patterns, `any` or `none`. */
  permitOpen: string[];
  /** PermitListen: `[host:]port` patterns, `any` or `none`. */
  permitListen: string[];
  gatewayPorts: "no" | "yes" | "clientspecified";
  /** StreamLocalBindUnlink: a remote UNIX-socket forward removes a file already at its path. */
  streamLocalBindUnlink: boolean;
  allowAgentForwarding: boolean;
  x11Forwarding: boolean;
  permitTTY: boolean;
  permitUserEnvironment: boolean;
  /** AcceptEnv: patterns of variable names a client may set. */
  acceptEnv: string[];
  /** SetEnv: variables every session gets. */
  setEnv: Record<string, string>;
  maxAuthTries: number;
  maxSessions: number;
  /** LoginGraceTime in seconds; 0 for none. */
  loginGraceTime: number;
  /** ClientAliveInterval in seconds; 0 (sshd's default) sends no keepalives. */
  clientAliveInterval: number;
  /** ClientAliveCountMax: unanswered keepalives before the client is dropped. */
  clientAliveCountMax: number;
  /** MaxStartups `start:rate:full`. */
  maxStartups: MaxStartups;
  /** PerSourceMaxStartups; Infinity is `none`. */
  perSourceMaxStartups: number;
  /** PerSourceNetBlockSize `ipv4:ipv6`. */
  perSourceNetBlockSize: NetBlockSize;
  /** PerSourcePenalties: what is set over OpenSSH's defaults; `{ enabled: false }` is `no`. */
  perSourcePenalties: Partial<PerSourcePenalties>;
  /** PerSourcePenaltyExemptList: addresses and CIDR blocks never penalised. */
  perSourcePenaltyExemptList: string[];
  /** AuthFailureDelay: seconds before a failed password, keyboard-interactive or signed key is answered. */
  authFailureDelay: number;
  maxPacketLength: number;
  maxVersionLength: number;
  maxUsernameLength: number;
  maxInfoPrompts: number;
  maxOpenChannels: number;
  maxKexQueueBytes: number;
  dhGroupExchangeMinBits: number;
  dhGroupExchangeMaxBits: number;
  dhInlineMaxBits: number;
  requiredRSASize: number;
  /** RekeyLimit: bytes (0 for the default) and seconds (0 for the default). */
  rekeyLimit: [bytes: number, seconds: number];
  /** ModuliFile, or `none` for the built-in groups only. */
  moduliFile: string;
  /** Banner file, or undefined. */
  banner: string | undefined;
  logLevel: ConchdLogLevel;
  logFormat: "text" | "json";
  /** ShutdownGraceTime: seconds running sessions get after SIGTERM. */
  shutdownGraceTime: number;
  /** Workers: processes sharing the listening ports (1: no cluster). */
  workers: number;
}

/** A bad configuration line: `file line N: message`. */
export class ConfigError extends Error {
  readonly code = "ERR_CONCHD_CONFIG";
  constructor(
    readonly source: string,
    readonly line: number,
    message: string,
  ) {
    super(line > 0 ? `${source} line ${line}: ${message}` : `${source}: ${message}`);
    this.name = "ConfigError";
  }
}

/** One `Keyword value` line, with where it came from. */
export interface ConfigLine {
  readonly source: string;
  readonly line: number;
  readonly keyword: string;
  readonly args: string[];
  /** From the command line: a list keyword set here ignores the file's lines for it. */
  readonly override?: boolean;
}

/**
 * The lines of a config text: comments and blank lines dropped, `Keyword=value` read as
 * `Keyword value`, as sshd; values split into words with `"…"`, `'…'` and backslash escapes, as
 * sshd's `argv_split`. A line with no value or an open quote is an error.
 */
export function tokenize(text: string, source: string): ConfigLine[] {
  const out: ConfigLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === "" || trimmed.startsWith("#")) return;
    const m = /^([A-Za-z0-9]+)\s*(?:=\s*|\s+)(.*)$/.exec(trimmed) ?? /^([A-Za-z0-9]+)()$/.exec(trimmed);
    if (m === null) throw new ConfigError(source, i + 1, `cannot read ${JSON.stringify(trimmed)}: expected "Keyword value"`);
    let args: string[];
    try {
      args = splitWords(m[2]!);
    } catch (e) {
      throw new ConfigError(source, i + 1, (e as Error).message);
    }
    if (args.length === 0) throw new ConfigError(source, i + 1, `${m[1]} needs a value`);
    out.push({ source, line: i + 1, keyword: m[1]!, args });
  });
  return out;
}

/** Where defaults come from: a function of the running user so tests can ask for either. */
export interface DefaultsContext {
  /** The host key folder when none is given (see `defaultHostKeyDirectory`). */
  readonly hostKeyDirectory: string;
}

/** The configuration with nothing set: OpenSSH's defaults where it has the keyword. */
export function defaultConfig(ctx: DefaultsContext): ConchdConfig {
  const c = {} as Record<string, unknown>;
  for (const spec of KEYWORDS) c[spec.field] = structuredClone(spec.default);
  c["listen"] = [];
  c["hostKeyDirectory"] = ctx.hostKeyDirectory;
  return c as unknown as ConchdConfig;
}

const BY_NAME: ReadonlyMap<string, KeywordSpec> = new Map(KEYWORDS.flatMap((k) => [k.name, ...(k.aliases ?? [])].map((n) => [n.toLowerCase(), k] as const)));

/** sshd keywords that mean nothing to conchd: read, warned about, ignored. */
export const IGNORED_KEYWORDS: ReadonlySet<string> = new Set(
  ["UsePAM", "PrintMotd", "PrintLastLog", "UseDNS", "Compression", "TCPKeepAlive", "SyslogFacility", "PidFile", "Include", "UsePrivilegeSeparation", "AddressFamily"].map((k) => k.toLowerCase()),
);

/** The result of {@link parseConfig}: the config and warnings about ignored keywords. */
export interface ParsedConfig {
  readonly config: ConchdConfig;
  readonly warnings: string[];
}

/**
 * Reads `lines` (command-line `-o` lines first, then the file's) over the defaults. For a keyword
 * that takes one value the first line wins; list keywords (Port, ListenAddress, HostKey, …)
 * collect every line; AuthorizedKeysFile, PermitOpen and PermitListen take the words of their
 * first line; a list keyword given on the command line ignores the file's lines for it. `listen`
 * (the `-p` endpoints) replaces Port, ListenAddress and ListenEndpoint. An unknown keyword or a
 * bad value throws {@link ConfigError} with its line.
 */
export function parseConfig(lines: readonly ConfigLine[], ctx: DefaultsContext, listen: readonly string[] = []): ParsedConfig {
  const config = defaultConfig(ctx) as unknown as Record<string, unknown>;
  const seen = new Set<string>();
  const warnings: string[] = [];
  const overridden = new Set(lines.filter((l) => l.override === true).map((l) => BY_NAME.get(l.keyword.toLowerCase())?.field));
  for (const l of lines) {
    const spec = BY_NAME.get(l.keyword.toLowerCase());
    if (spec?.multi === true && l.override !== true && overridden.has(spec.field)) continue;
    if (spec === undefined) {
      if (IGNORED_KEYWORDS.has(l.keyword.toLowerCase())) {
        warnings.push(`${l.source} line ${l.line}: ${l.keyword} is not used by conchd; ignored`);
        continue;
      }
      throw new ConfigError(l.source, l.line, `unknown keyword ${JSON.stringify(l.keyword)}`);
    }
    try {
      if (spec.multi === true) {
        const list = config[spec.field];
        if (!seen.has(spec.field)) config[spec.field] = Array.isArray(list) ? [] : {};
        spec.apply(l.args, config[spec.field]);
      } else if (!seen.has(spec.field)) {
        config[spec.field] = spec.parse(l.args);
      }
    } catch (e) {
      if (e instanceof ConfigError) throw e;
      throw new ConfigError(l.source, l.line, `${spec.name}: ${(e as Error).message}`);
    }
    seen.add(spec.field);
  }
  const c = config as unknown as ConchdConfig;
  if (c.dhGroupExchangeMinBits > c.dhGroupExchangeMaxBits) throw new ConfigError("config", 0, "DHGroupExchangeMinBits is larger than DHGroupExchangeMaxBits");
  c.listen = listen.length > 0 ? [...listen] : listenEndpoints(c);
  return { config: c, warnings };
}

/** Escapes `:` and `\` for an endpoint description. */
function escapeEndpoint(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/:/g, "\\:");
}

/** The endpoint for one address and port: `tcp:` or `tcp6:` with the interface escaped. */
function tcpEndpoint(host: string, port: number): string {
  if (host === "") return `tcp:${port}`;
  return host.includes(":") ? `tcp6:${port}:interface=${escapeEndpoint(host)}` : `tcp:${port}:interface=${host}`;
}

/**
 * The endpoints the file asks for, as sshd: each ListenAddress (with its own port, or each Port),
 * or every address on each Port when there is none; then each ListenEndpoint.
 */
export function listenEndpoints(c: ConchdConfig): string[] {
  const out: string[] = [];
  if (c.listenAddress.length === 0) {
    for (const p of c.port) out.push(tcpEndpoint("", p));
  }
  for (const a of c.listenAddress) {
    const { host, port } = splitHostPort(a);
    if (port !== undefined) out.push(tcpEndpoint(host, port));
    else for (const p of c.port) out.push(tcpEndpoint(host, p));
  }
  return [...out, ...c.listenEndpoint];
}

/** `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. */
export function splitHostPort(a: string): { host: string; port: number | undefined } {
  const br = /^\[([^\]]+)\](?::(\d+))?$/.exec(a);
  if (br !== null) return { host: br[1]!, port: br[2] === undefined ? undefined : Number(br[2]) };
  const colons = a.split(":").length - 1;
  if (colons === 1) {
    const [host, port] = a.split(":") as [string, string];
    return { host, port: Number(port) };
  }
  return { host: a, port: undefined };
}

/** The effective configuration as `sshd -T` prints it: lowercase keywords, one value per line. */
export function dumpConfig(c: ConchdConfig): string {
  const lines: string[] = [];
  for (const spec of KEYWORDS) {
    for (const v of spec.show((c as unknown as Record<string, unknown>)[spec.field])) lines.push(`${spec.name.toLowerCase()} ${v}`);
  }
  for (const e of c.listen) lines.push(`listen ${e}`);
  return `${lines.join("\n")}\n`;
}
