/**
 * The `conch` command line (internal; `scripts/conch` re-exports it): options, `-o` settings,
 * `-J` jump chains and OpenSSH's forwarding specifications (`-L`, `-R`, `-D`).
 */
import { homedir, userInfo } from "node:os";
import { join } from "node:path";
import type { HostKeyPolicy } from "../client/knownhosts.js";

/** A bad command line: conch prints the message and its usage and exits with 255, as ssh. */
export class UsageError extends Error {
  readonly code = "ERR_CONCH_USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * ServerAliveInterval when none is given: 30 s. OpenSSH's default is off, which leaves a session
 * hanging for the TCP retransmission timeout (15 min or more) when the server or the path to it
 * dies silently, and lets a NAT or firewall drop an idle session; home routers and cloud load
 * balancers forget idle TCP flows after 60 s to 350 s. Thirty seconds is under all of those, costs
 * one small packet each way per idle half minute, and with ServerAliveCountMax 3 notices a dead
 * server in about two minutes.
 */
export const DEFAULT_SERVER_ALIVE_INTERVAL = 30;
/** OpenSSH's ServerAliveCountMax default. */
export const DEFAULT_SERVER_ALIVE_COUNT_MAX = 3;

/** A place to listen: a TCP port on an address (all, when `host` is undefined), or a Unix socket. */
export type ListenSpec = { readonly host: string | undefined; readonly port: number } | { readonly path: string };
/** Where to connect: a host and port as the far side resolves it, or a Unix socket path. */
export type ConnectSpec = readonly [host: string, port: number] | { readonly path: string };

/** `-L`: listen here, connect there from the server. */
export interface LocalForwardSpec {
  readonly listen: ListenSpec;
  readonly connect: ConnectSpec;
}
/** `-R`: the server listens, we connect; `connect` undefined is a SOCKS proxy on our side (`-R [bind:]port`). */
export interface RemoteForwardSpec {
  readonly listen: ListenSpec;
  readonly connect: ConnectSpec | undefined;
}
/** `-D`: a SOCKS proxy here whose connections go out from the server. */
export interface DynamicForwardSpec {
  readonly listen: ListenSpec;
}

/** One hop of `-J` / ProxyJump: `[user@]host[:port]`. */
export interface JumpHost {
  readonly user: string | undefined;
  readonly host: string;
  readonly port: number;
}

/** `-t` / `-T` / RequestTTY: `auto` (a terminal when there is no command and stdin is one). */
export type RequestTTY = "auto" | "yes" | "force" | "no";

/** Everything on conch's command line. */
export interface ConchOptions {
  user: string;
  host: string;
  port: number;
  identities: string[];
  command: string | undefined;
  knownHosts: string;
  policy: HostKeyPolicy;
  serverAliveInterval: number;
  serverAliveCountMax: number;
  requestTTY: RequestTTY;
  /** `-N`: no command, no shell: the connection only carries forwards. */
  noCommand: boolean;
  /** `-A`: forward the agent. */
  forwardAgent: boolean;
  /** `-o BatchMode=yes`: never ask anything. */
  batchMode: boolean;
  /** The agent's socket (`SSH_AUTH_SOCK`, `-o IdentityAgent`); undefined for none. */
  identityAgent: string | undefined;
  /** `-v` count: 1 logs at info level to standard error, 2 or more at debug. */
  verbose: number;
  jumps: JumpHost[];
  localForwards: LocalForwardSpec[];
  remoteForwards: RemoteForwardSpec[];
  dynamicForwards: DynamicForwardSpec[];
}

/** Splits on `:` outside `[...]`, dropping the brackets (IPv6 addresses). */
function splitFields(spec: string): string[] {
  const out: string[] = [];
  let cur = "";
  let bracket = false;
  for (const ch of spec) {
    if (ch === "[" && !bracket && cur === "") bracket = true;
    else if (ch === "]" && bracket) bracket = false;
    else if (ch === ":" && !bracket) {
      out.push(cur);
      cur = "";
    } else cur += ch;
  }
  if (bracket) throw new Error("unclosed [");
  out.push(cur);
  return out;
}

const isPath = (field: string): boolean => field.includes("/");

function portOf(field: string, allowZero: boolean): number {
  if (!/^\d{1,5}$/.test(field)) throw new Error(`${JSON.stringify(field)} is not a port`);
  const n = Number(field);
  if (n > 65535 || (n === 0 && !allowZero)) throw new Error(`port ${n} is out of range`);
  return n;
}

function listenOf(host: string | undefined, port: string, allowZero: boolean): ListenSpec {
  return { host: host === undefined || host === "" ? undefined : host, port: portOf(port, allowZero) };
}

function connectTo(host: string, port: string): ConnectSpec {
  if (host === "") throw new Error("no host to connect to");
  return [host, portOf(port, false)];
}

/**
 * Parses a `-L` / `-R` spec as OpenSSH's readconf.c does: `[bind_address:]port:host:hostport`,
 * `[bind_address:]port:socket`, `socket:host:hostport`, `socket:socket`, and for `-R` also
 * `[bind_address:]port` (a SOCKS proxy). IPv6 addresses go in brackets.
 */
export function parseForwardSpec(kind: "local", spec: string): LocalForwardSpec;
export function parseForwardSpec(kind: "remote", spec: string): RemoteForwardSpec;
export function parseForwardSpec(kind: "local" | "remote", spec: string): LocalForwardSpec | RemoteForwardSpec {
  const bad = (why: string): UsageError => new UsageError(`Bad ${kind} forwarding specification '${spec}': ${why}`);
  let f: string[];
  try {
    f = splitFields(spec);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const remote = kind === "remote";
  try {
    switch (f.length) {
      case 1:
        if (!remote) throw new Error("a local forward needs a destination");
        return { listen: isPath(f[0]!) ? { path: f[0]! } : listenOf(undefined, f[0]!, true), connect: undefined };
      case 2:
        if (isPath(f[0]!)) {
          if (!isPath(f[1]!)) throw new Error("a socket forwards to a socket or to host:hostport");
          return { listen: { path: f[0]! }, connect: { path: f[1]! } };
        }
        if (isPath(f[1]!)) return { listen: listenOf(undefined, f[0]!, remote), connect: { path: f[1]! } };
        if (!remote) throw new Error("expected [bind_address:]port:host:hostport");
        return { listen: listenOf(f[0], f[1]!, true), connect: undefined };
      case 3:
        if (isPath(f[0]!)) return { listen: { path: f[0]! }, connect: connectTo(f[1]!, f[2]!) };
        if (isPath(f[2]!)) return { listen: listenOf(f[0], f[1]!, remote), connect: { path: f[2]! } };
        return { listen: listenOf(undefined, f[0]!, remote), connect: connectTo(f[1]!, f[2]!) };
      case 4:
        return { listen: listenOf(f[0], f[1]!, remote), connect: connectTo(f[2]!, f[3]!) };
      default:
        throw new Error("too many fields");
    }
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw bad((e as Error).message);
  }
}

/** Parses a `-D` spec: `[bind_address:]port` or a Unix socket path. */
export function parseDynamicSpec(spec: string): DynamicForwardSpec {
  try {
    if (isPath(spec)) return { listen: { path: spec } };
    const f = splitFields(spec);
    if (f.length === 1) return { listen: listenOf(undefined, f[0]!, false) };
    if (f.length === 2) return { listen: listenOf(f[0], f[1]!, false) };
    throw new Error("expected [bind_address:]port");
  } catch (e) {
    throw new UsageError(`Bad dynamic forwarding specification '${spec}': ${(e as Error).message}`);
  }
}

/** Parses `[user@]host[:port]` (the host in brackets when it is an IPv6 address with a port). */
export function parseJumpHost(spec: string): JumpHost {
  const at = spec.lastIndexOf("@");
  const user = at >= 0 ? spec.slice(0, at) : undefined;
  const rest = at >= 0 ? spec.slice(at + 1) : spec;
  let host = rest;
  let port = 22;
  try {
    const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
    if (m !== null) {
      host = m[1]!;
      if (m[2] !== undefined) port = portOf(m[2], false);
    } else if (rest.startsWith("[")) {
      throw new Error("expected [address] or [address]:port");
    } else if (rest.split(":").length === 2) {
      const [h, p] = rest.split(":") as [string, string];
      host = h;
      port = portOf(p, false);
    }
  } catch (e) {
    throw new UsageError(`Bad jump host '${spec}': ${(e as Error).message}`);
  }
  if (host === "" || user === "") throw new UsageError(`Bad jump host '${spec}'`);
  return { user, host, port };
}

/** Parses a comma-separated `-J` chain, first hop first. */
export function parseJumpChain(spec: string): JumpHost[] {
  if (spec === "none") return [];
  return spec.split(",").map(parseJumpHost);
}

function yesNo(key: string, v: string): boolean {
  const l = v.toLowerCase();
  if (l === "yes" || l === "true") return true;
  if (l === "no" || l === "false") return false;
  throw new UsageError(`${key} takes yes or no, not ${JSON.stringify(v)}`);
}

function whole(key: string, v: string, min: number): number {
  if (!/^\d+$/.test(v) || Number(v) < min) throw new UsageError(`${key} needs a whole number${min > 0 ? " above 0" : ""}, not ${JSON.stringify(v)}`);
  return Number(v);
}

/** Applies one `-o key=value` (or `key value`) setting. Unknown keys are an error. */
export function applyOption(o: ConchOptions, setting: string): void {
  const m = /^\s*([A-Za-z]+)\s*(?:=\s*|\s+)(.*)$/.exec(setting);
  if (m === null) throw new UsageError(`bad -o setting ${JSON.stringify(setting)}: expected key=value`);
  const key = m[1]!;
  const v = m[2]!.trim();
  switch (key.toLowerCase()) {
    case "userknownhostsfile":
      o.knownHosts = v;
      break;
    case "stricthostkeychecking": {
      const l = v.toLowerCase();
      o.policy = l === "yes" ? "strict" : l === "accept-new" || l === "no" || l === "off" ? "accept-new" : l === "ask" ? "ask" : (() => {
        throw new UsageError(`StrictHostKeyChecking takes yes, accept-new, no or ask, not ${JSON.stringify(v)}`);
      })();
      break;
    }
    case "serveraliveinterval":
      o.serverAliveInterval = whole(key, v, 0);
      break;
    case "serveralivecountmax":
      o.serverAliveCountMax = whole(key, v, 1);
      break;
    case "port":
      o.port = whole(key, v, 1);
      break;
    case "user":
      o.user = v;
      break;
    case "identityfile":
      o.identities.push(v);
      break;
    case "identityagent":
      o.identityAgent = v.toLowerCase() === "none" ? undefined : v === "SSH_AUTH_SOCK" ? process.env["SSH_AUTH_SOCK"] : v;
      break;
    case "proxyjump":
      o.jumps = parseJumpChain(v);
      break;
    case "requesttty": {
      const l = v.toLowerCase();
      if (l !== "auto" && l !== "yes" && l !== "force" && l !== "no") throw new UsageError(`RequestTTY takes auto, yes, force or no, not ${JSON.stringify(v)}`);
      o.requestTTY = l;
      break;
    }
    case "forwardagent":
      o.forwardAgent = yesNo(key, v);
      break;
    case "batchmode":
      o.batchMode = yesNo(key, v);
      break;
    case "localforward":
      o.localForwards.push(parseForwardSpec("local", v.replace(/\s+/, ":")));
      break;
    case "remoteforward":
      o.remoteForwards.push(parseForwardSpec("remote", v.replace(/\s+/, ":")));
      break;
    case "dynamicforward":
      o.dynamicForwards.push(parseDynamicSpec(v));
      break;
    default:
      throw new UsageError(`unsupported option ${JSON.stringify(key)}`);
  }
}

/** Options that take a value (`-p 22` or `-p22`). */
const WITH_VALUE = new Set(["p", "i", "l", "L", "R", "D", "J", "o"]);
/** Flags, which may be grouped (`-tN`). */
const FLAGS = new Set(["A", "N", "t", "T", "q", "v"]);

/**
 * Parses conch's arguments as ssh does: options, then `[user@]host`, then the command (every
 * word after the host, joined by spaces). Throws {@link UsageError}.
 */
export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ConchOptions {
  const home = env["HOME"] ?? homedir();
  const o: ConchOptions = {
    user: "",
    host: "",
    port: 0,
    identities: [],
    command: undefined,
    knownHosts: join(home, ".ssh", "known_hosts"),
    policy: "ask",
    serverAliveInterval: DEFAULT_SERVER_ALIVE_INTERVAL,
    serverAliveCountMax: DEFAULT_SERVER_ALIVE_COUNT_MAX,
    requestTTY: "auto",
    noCommand: false,
    forwardAgent: false,
    batchMode: false,
    verbose: 0,
    identityAgent: env["SSH_AUTH_SOCK"] === "" ? undefined : env["SSH_AUTH_SOCK"],
    jumps: [],
    localForwards: [],
    remoteForwards: [],
    dynamicForwards: [],
  };
  let loginName: string | undefined;
  let port: number | undefined;
  let ttys = 0;
  let i = 0;
  for (; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      i++;
      break;
    }
    if (!a.startsWith("-") || a === "-") break;
    for (let j = 1; j < a.length; j++) {
      const letter = a[j]!;
      if (FLAGS.has(letter)) {
        if (letter === "A") o.forwardAgent = true;
        else if (letter === "N") o.noCommand = true;
        else if (letter === "t") ttys++;
        else if (letter === "T") o.requestTTY = "no";
        else if (letter === "v") o.verbose++;
        continue;
      }
      if (!WITH_VALUE.has(letter)) throw new UsageError(`unknown option -- ${letter}`);
      let value = a.slice(j + 1);
      if (value === "") {
        const next = argv[++i];
        if (next === undefined) throw new UsageError(`option requires an argument -- ${letter}`);
        value = next;
      }
      if (letter === "p") port = whole("-p", value, 1);
      else if (letter === "i") o.identities.push(value);
      else if (letter === "l") loginName = value;
      else if (letter === "L") o.localForwards.push(parseForwardSpec("local", value));
      else if (letter === "R") o.remoteForwards.push(parseForwardSpec("remote", value));
      else if (letter === "D") o.dynamicForwards.push(parseDynamicSpec(value));
      else if (letter === "J") o.jumps = parseJumpChain(value);
      else applyOption(o, value);
      break;
    }
  }
  if (ttys > 0) o.requestTTY = ttys > 1 ? "force" : "yes";
  const target = argv[i];
  if (target === undefined) throw new UsageError("no host given");
  const words = argv.slice(i + 1);
  if (words.length > 0) o.command = words.join(" ");
  const at = target.lastIndexOf("@");
  if (at >= 0) o.user = target.slice(0, at);
  o.host = target.slice(at + 1);
  if (o.host === "") throw new UsageError("no host given");
  if (loginName !== undefined) o.user = loginName;
  if (o.user === "") o.user = userInfo().username;
  if (port !== undefined) o.port = port;
  if (o.port === 0) o.port = 22;
  return o;
}
