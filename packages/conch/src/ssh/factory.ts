/**
 * `twisted.conch.ssh.factory`: `SSHFactory`, the server factory that builds `SSHServerTransport`s
 * and gives them host keys, Diffie-Hellman group-exchange primes and services, and a cred portal
 * for users to log in through.
 */
import { readFileSync } from "node:fs";
import { ServerFactory } from "@twisted-ts/internet/protocol";
import type { IAddress } from "@twisted-ts/internet/interfaces";
import { Logger } from "@twisted-ts/internet/log";
import type { ServerAuthSettings } from "./authopt.js";
import type { ForwardingPolicy } from "./_forwarding/policy.js";
import type { Certificate, Key } from "./keys.js";
import type { SSHService, SSHServiceFactory, SSHServiceTransport } from "./service.js";
import { SSHServerTransport } from "./transport.js";
import { SSHUserAuthServer } from "./userauth.js";
import { SSHConnection } from "./connection.js";
import { parseModuli } from "./_transport/index.js";
import {
  DEFAULT_MAX_STARTUPS,
  DEFAULT_NET_BLOCK_SIZE,
  SourceLimits,
  type MaxStartups,
  type NetBlockSize,
  type PerSourcePenalties,
  type SourceLimitSettings,
} from "./_factory/srclimit.js";

export {
  DEFAULT_MAX_STARTUPS,
  DEFAULT_NET_BLOCK_SIZE,
  DEFAULT_PER_SOURCE_PENALTIES,
  SourceLimits,
  netBlockOf,
  type MaxStartups,
  type NetBlock,
  type NetBlockSize,
  type PenaltyOverflow,
  type PenaltyType,
  type PerSourcePenalties,
  type Refusal,
  type SourceLimitSettings,
  type Startup,
} from "./_factory/srclimit.js";

/** Where OpenSSH keeps its group-exchange moduli. */
export const DEFAULT_MODULI_PATH = "/etc/ssh/moduli";

/** A table of DH group-exchange primes by size in bits. */
export type Primes = Map<number, Array<{ p: bigint; g: bigint }>>;

const log = new Logger("twisted-ts.conch.factory");

/**
 * Twisted's `SSHFactory`. Set `publicKeys`/`privateKeys` (keyed by SSH key type: `ssh-ed25519`,
 * `ssh-rsa`, `ecdsa-sha2-nistp256`, …) or override `getPublicKeys()`/`getPrivateKeys()`; set
 * `portal`; `services` maps service names to the classes the transport starts.
 */
export class SSHFactory extends ServerFactory<SSHServerTransport> implements SSHServiceFactory, SourceLimitSettings {
  override protocol: (new () => SSHServerTransport) | null = SSHServerTransport;
  /** Host public keys by key type; derived from the private keys when unset. */
  publicKeys: Record<string, Key> | undefined = undefined;
  /** Host private keys by key type. */
  privateKeys: Record<string, Key> | undefined = undefined;
  /**
   * Host certificates (OpenSSH's `HostCertificate`), each for one of the host keys: offered as the
   * `*-cert-v01@openssh.com` host key algorithms beside the plain keys.
   */
  hostCertificates: Certificate[] = [];
  /** Services by name. `ssh-connection` is only handed out after authentication. */
  services: Record<string, new () => SSHService> = {
    "ssh-userauth": SSHUserAuthServer,
    "ssh-connection": SSHConnection,
  };
  /** The cred portal users log in through. */
  portal: SSHServiceFactory["portal"] = null;
  /**
   * Server-wide settings every login is narrowed by (sshd_config's PermitTTY,
   * PermitUserEnvironment, AllowTcpForwarding, …); what is unset takes sshd's default
   * (`authopt.DEFAULT_SERVER_AUTH_SETTINGS`).
   */
  authSettings: Partial<ServerAuthSettings> = {};
  /**
   * sshd's `ClientAliveInterval`: seconds without anything from a client before a
   * `keepalive@openssh.com` request goes to it; 0 (sshd's default) is off.
   */
  clientAliveInterval = 0;
  /** sshd's `ClientAliveCountMax`: unanswered keepalives after which the client is dropped. */
  clientAliveCountMax = 3;
  /**
   * Server-wide forwarding policy (sshd_config's AllowTcpForwarding, PermitOpen, PermitListen,
   * AllowStreamLocalForwarding, GatewayPorts, …); what is unset takes sshd's default
   * (`forwarding.DEFAULT_FORWARDING_POLICY`). An avatar's `getForwardingPolicy()` overrides it.
   */
  forwardingPolicy: Partial<ForwardingPolicy> = {};
  /** The moduli file `getPrimes` reads; undefined to use only the built-in groups. */
  moduliPath: string | undefined = DEFAULT_MODULI_PATH;
  private primes: Primes | undefined | null = null;
  /**
   * sshd's `MaxStartups start:rate:full`: past `start` unauthenticated connections, new ones are
   * dropped at accept with a chance rising from `rate`% to 100% at `full`.
   */
  maxStartups: MaxStartups = DEFAULT_MAX_STARTUPS;
  /** sshd's `PerSourceMaxStartups`: unauthenticated connections per netblock; `Infinity` is `none`. */
  perSourceMaxStartups = Infinity;
  /** sshd's `PerSourceNetBlockSize`: the prefix lengths that group source addresses. */
  perSourceNetBlockSize: NetBlockSize = DEFAULT_NET_BLOCK_SIZE;
  /**
   * sshd's `PerSourcePenalties`: what is unset takes OpenSSH 9.8's default
   * (`DEFAULT_PER_SOURCE_PENALTIES`); `{ enabled: false }` is `PerSourcePenalties no`.
   */
  perSourcePenalties: Partial<PerSourcePenalties> = {};
  /** sshd's `PerSourcePenaltyExemptList`: addresses and CIDR blocks never penalised. */
  perSourcePenaltyExemptList: string[] = [];
  /**
   * The unauthenticated connections and penalised sources of every transport this factory
   * builds, enforcing the settings above (read at each decision).
   */
  readonly sourceLimits: SourceLimits = new SourceLimits(this);

  /** Host public keys by key type. */
  getPublicKeys(): Record<string, Key> {
    if (this.publicKeys !== undefined) return this.publicKeys;
    const out: Record<string, Key> = {};
    for (const [type, key] of Object.entries(this.getPrivateKeys())) out[type] = key.public();
    return out;
  }

  /** Host private keys by key type. */
  getPrivateKeys(): Record<string, Key> {
    if (this.privateKeys === undefined) throw new Error(`${this.constructor.name}: no host keys (set privateKeys)`);
    return this.privateKeys;
  }

  /**
   * Primes for diffie-hellman-group-exchange, from `moduliPath` when it can be read (read once);
   * undefined when there are none, and the built-in RFC 3526 groups serve instead.
   */
  getPrimes(): Primes | undefined {
    if (this.primes !== null) return this.primes;
    let primes: Primes | undefined;
    if (this.moduliPath !== undefined) {
      try {
        const parsed = parseModuli(readFileSync(this.moduliPath, "utf8"));
        if (parsed.size > 0) primes = parsed;
      } catch {
        log.debug("no moduli at {path}; using the built-in groups", { path: this.moduliPath });
      }
    }
    this.primes = primes;
    return primes;
  }

  /**
   * The service class for `name` on `transport`, as Twisted: `ssh-userauth` always, anything else
   * only once the user is authenticated (the transport has an avatar).
   */
  getService(transport: SSHServiceTransport, name: string): (new () => SSHService) | undefined {
    if (name !== "ssh-userauth" && transport.avatar === undefined) return undefined;
    return Object.hasOwn(this.services, name) ? this.services[name] : undefined;
  }

  override startFactory(): void {
    const keys = this.getPrivateKeys();
    if (Object.keys(keys).length === 0) throw new Error(`${this.constructor.name}: no host keys`);
  }

  override buildProtocol(addr: IAddress): SSHServerTransport | null {
    const t = super.buildProtocol(addr);
    if (t !== null) t.factory = this;
    return t;
  }
}
