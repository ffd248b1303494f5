/**
 * conchd's server: the factory, transport and services built from a {@link ConchdConfig}, and the
 * portal (authorized_keys, PAM through pamtester, PermitRootLogin) over the Unix realm.
 */
import { readFileSync } from "node:fs";
import type { IAddress } from "@twisted-ts/internet/interfaces";
import type { Failure } from "@twisted-ts/internet/failure";
import { Logger } from "@twisted-ts/internet/log";
import { PAMPasswordChecker, type ICredentialsChecker } from "@twisted-ts/cred/checkers";
import { Portal } from "@twisted-ts/cred/portal";
import { SSHPublicKeyChecker } from "../../checkers.js";
import { Key } from "../../ssh/keys.js";
import { SSHFactory } from "../../ssh/factory.js";
import { SSHServerTransport } from "../../ssh/transport.js";
import { SSHUserAuthServer } from "../../ssh/userauth.js";
import { SSHConnection } from "../../ssh/connection.js";
import type { SSHService } from "../../ssh/service.js";
import { DEFAULT_SUBSYSTEMS, UnixSSHRealm } from "../../unix.js";
import { AuthorizedKeysFiles, PamtesterChecker, RootLoginChecker, findExecutable } from "./auth.js";
import type { ConchdConfig } from "./config.js";
import { forwardingPolicyOf, startupLimitsOf } from "./policy.js";
import type { HostKeys } from "./hostkeys.js";
import type { LoggedConnection } from "./logging.js";

const log = new Logger("twisted-ts.conchd");

/** How password and keyboard-interactive logins are checked, or why they are off. */
export interface PasswordMechanism {
  /** pamtester's path, or undefined when it is missing. */
  readonly pamtester: string | undefined;
}

/** Finds the password mechanism: pamtester on PATH. */
export function findPasswordMechanism(): PasswordMechanism {
  return { pamtester: findExecutable("pamtester") };
}

/** A `*`/`?` pattern list, as sshd's AcceptEnv. */
function patternMatcher(patterns: readonly string[]): (name: string) => boolean {
  const res = patterns.flatMap((p) => p.split(/\s+/)).filter((p) => p !== "").map((p) => new RegExp(`^${p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".")}$`));
  return (name) => res.some((re) => re.test(name));
}

/** The CA keys of a TrustedUserCAKeys file, one per line; a bad line throws with its number. */
export function readCAKeys(path: string): Key[] {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`TrustedUserCAKeys ${path}: ${(e as Error).message}`);
  }
  const out: Key[] = [];
  text.split("\n").forEach((line, i) => {
    if (line.trim() === "" || line.trim().startsWith("#")) return;
    try {
      out.push(Key.fromString(line.trim()));
    } catch (e) {
      throw new Error(`TrustedUserCAKeys ${path} line ${i + 1}: ${(e as Error).message}`);
    }
  });
  return out;
}

/**
 * The checkers a config asks for: publickey (authorized_keys files, TrustedUserCAKeys), password
 * and keyboard-interactive through pamtester when it is there (else off, with a log line), each
 * under PermitRootLogin.
 */
export function checkersFor(config: ConchdConfig, mechanism: PasswordMechanism, warn: (msg: string) => void = (m) => log.warn("{msg}", { msg: m })): ICredentialsChecker[] {
  const out: ICredentialsChecker[] = [];
  if (config.pubkeyAuthentication) {
    const files = new AuthorizedKeysFiles(config.authorizedKeysFile);
    files.strictModes = config.strictModes;
    const keyChecker = new SSHPublicKeyChecker(files);
    if (config.trustedUserCAKeys !== undefined) keyChecker.trustedUserCAKeys = readCAKeys(config.trustedUserCAKeys);
    out.push(keyChecker);
  }
  if (config.passwordAuthentication || config.kbdInteractiveAuthentication) {
    if (mechanism.pamtester === undefined) {
      warn("PasswordAuthentication and KbdInteractiveAuthentication are off: pamtester is not installed (apt-get install pamtester)");
    } else {
      const pam = new PamtesterChecker(mechanism.pamtester, config.pamServiceName, config.pamMaxConcurrent);
      if (config.passwordAuthentication) out.push(pam);
      if (config.kbdInteractiveAuthentication) out.push(new PAMPasswordChecker(pam));
    }
  }
  return out.map((c) => new RootLoginChecker(c, config.permitRootLogin));
}

/**
 * The Unix realm a config asks for: SetEnv, AcceptEnv, Subsystem, and the forwarding policy. The
 * realm carries the policy so a login keeps the one it started with across a reload (SIGHUP).
 */
export function realmFor(config: ConchdConfig): UnixSSHRealm {
  const subsystems: Record<string, string> = {};
  for (const [name, cmd] of Object.entries(config.subsystem)) subsystems[name] = cmd === "internal-sftp" ? DEFAULT_SUBSYSTEMS["sftp"]! : cmd;
  return new UnixSSHRealm({
    env: config.setEnv,
    acceptEnv: patternMatcher(config.acceptEnv),
    subsystems,
    forwardingPolicy: forwardingPolicyOf(config),
  });
}

/** The userauth service class for a config: its limits as field values. */
function userAuthFor(config: ConchdConfig): new () => SSHService {
  const banner = config.banner === undefined ? undefined : readFileSync(config.banner, "utf8");
  return class ConchdUserAuthServer extends SSHUserAuthServer {
    override maxAuthTries = config.maxAuthTries;
    override passwordDelay = config.authFailureDelay;
    override maxUsernameLength = config.maxUsernameLength;
    override maxInfoPrompts = config.maxInfoPrompts;
    override requiredRSASize = config.requiredRSASize;
    override banner = banner;
  };
}

/** The connection service class for a config. */
function connectionFor(config: ConchdConfig): new () => SSHService {
  return class ConchdConnection extends SSHConnection {
    override maxSessions = config.maxSessions;
    override maxOpenChannels = config.maxOpenChannels;
  };
}

let nextConnection = 0;

/**
 * The server transport conchd builds: the config's transport limits, and a connection id, peer
 * and user for every log line (see `logging.ts`). Logs the connection's start and end at info.
 */
export class ConchdServerTransport extends SSHServerTransport implements LoggedConnection {
  /** Set by the factory: `c1`, `c2`, … (with the worker number in a cluster: `w2c1`). */
  connectionId = "";
  private peer: string | undefined = undefined;

  peerLabel(): string {
    if (this.peer !== undefined) return this.peer;
    try {
      const a = this.transport.getPeer() as IAddress & { host?: string; port?: number; name?: string | null };
      if (a.host !== undefined && a.port !== undefined) return (this.peer = a.host.includes(":") ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
      return (this.peer = `unix:${a.name ?? "?"}`);
    } catch {
      return "?";
    }
  }

  userLabel(): string | undefined {
    const avatar = this.avatar as { username?: unknown } | undefined;
    if (typeof avatar?.username === "string") return avatar.username;
    const service = this.service as { username?: unknown } | undefined;
    return typeof service?.username === "string" ? service.username : undefined;
  }

  override connectionMade(): void {
    (this.factory as ConchdFactory | null)?.connections.add(this);
    this.logger.info("connection from {peer}", { peer: this.peerLabel() });
    super.connectionMade();
  }

  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.logger.info("connection closed", {});
    const f = this.factory as ConchdFactory | null;
    f?.connections.delete(this);
    f?.connectionClosed();
  }
}

/**
 * The factory conchd listens with. {@link configure} swaps in a new config, host keys and portal
 * (SIGHUP): connections made from then on use them, running ones keep what they started with.
 */
export class ConchdFactory extends SSHFactory {
  override protocol: new () => SSHServerTransport = ConchdServerTransport;
  /** The connections open now. */
  readonly connections: Set<ConchdServerTransport> = new Set();
  /** Called after each connection ends (shutdown waits on it). */
  onConnectionClosed: (() => void) | undefined = undefined;
  /** Prefix of connection ids (`w2` in worker 2). */
  idPrefix = "";
  config: ConchdConfig | undefined = undefined;

  /**
   * Applies a config and its host keys; throws (leaving the old settings) when the config cannot be
   * served. The per-source limits apply to the next connection; the penalties already earned stay.
   */
  configure(config: ConchdConfig, hostKeys: HostKeys, mechanism: PasswordMechanism): void {
    const services = { "ssh-userauth": userAuthFor(config), "ssh-connection": connectionFor(config) };
    const portal = new Portal(realmFor(config), checkersFor(config, mechanism));
    const forwarding = forwardingPolicyOf(config);
    this.config = config;
    this.privateKeys = hostKeys.privateKeys;
    this.publicKeys = undefined;
    this.hostCertificates = hostKeys.certificates;
    this.services = services;
    this.portal = portal;
    this.forwardingPolicy = forwarding;
    const limits = startupLimitsOf(config);
    this.maxStartups = limits.maxStartups;
    this.perSourceMaxStartups = limits.perSourceMaxStartups;
    this.perSourceNetBlockSize = limits.perSourceNetBlockSize;
    this.perSourcePenalties = limits.perSourcePenalties;
    this.perSourcePenaltyExemptList = [...limits.perSourcePenaltyExemptList];
    this.clientAliveInterval = config.clientAliveInterval;
    this.clientAliveCountMax = config.clientAliveCountMax;
    // The moduli are read once, on the first group exchange: a changed ModuliFile needs a restart.
    if (!this.primesRead) this.moduliPath = config.moduliFile === "none" ? undefined : config.moduliFile;
    this.authSettings = {
      permitUserEnvironment: config.permitUserEnvironment,
      permitTTY: config.permitTTY,
      allowAgentForwarding: config.allowAgentForwarding,
      x11Forwarding: config.x11Forwarding,
    };
  }

  private primesRead = false;

  override getPrimes(): ReturnType<SSHFactory["getPrimes"]> {
    this.primesRead = true;
    return super.getPrimes();
  }

  connectionClosed(): void {
    this.onConnectionClosed?.();
  }

  override buildProtocol(addr: IAddress): SSHServerTransport | null {
    const t = super.buildProtocol(addr);
    const c = this.config;
    if (t === null || c === undefined) return t;
    if (t instanceof ConchdServerTransport) t.connectionId = `${this.idPrefix}c${++nextConnection}`;
    t.loginGraceTime = c.loginGraceTime;
    t.maxPacketLength = c.maxPacketLength;
    t.maxVersionLength = c.maxVersionLength;
    t.maxKexQueueBytes = c.maxKexQueueBytes;
    t.gexMinBits = c.dhGroupExchangeMinBits;
    t.gexMaxBits = c.dhGroupExchangeMaxBits;
    t.dhInlineMaxBits = c.dhInlineMaxBits;
    if (c.rekeyLimit[0] > 0) t.rekeyBytes = c.rekeyLimit[0];
    if (c.rekeyLimit[1] > 0) t.rekeyInterval = c.rekeyLimit[1];
    return t;
  }
}
