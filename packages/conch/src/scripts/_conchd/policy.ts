/**
 * The two places where conchd's settings meet work landing on other branches (issue 14):
 * forwarding policy (`ssh/_forwarding/policy.ts`) and the factory's startup limits (MaxStartups,
 * PerSourceMaxStartups, PerSourcePenalties). Until they are merged, a setting that cannot be
 * enforced is refused with a clear message rather than silently ignored.
 */
import type { ConchdConfig } from "./config.js";

/** What the forwarding layers enforce today. */
export interface ConchdForwarding {
  readonly allowTcpForwarding: boolean;
  readonly allowStreamLocalForwarding: boolean;
  /** GatewayPorts yes: remote forwards bind the address the client names. */
  readonly gatewayPorts: boolean;
}

/** A setting conchd reads but cannot enforce yet. */
export class NotEnforcedError extends Error {
  readonly code = "ERR_CONCHD_NOT_ENFORCED";
}

/**
 * The forwarding policy of a config. TODO(lead, issue 14): once `ssh/_forwarding/policy.ts`
 * (ForwardingPolicy) is merged, build it here from allowTcpForwarding, permitOpen, permitListen,
 * allowStreamLocalForwarding and gatewayPorts, and drop the refusals below.
 */
export function forwardingPolicyOf(config: ConchdConfig): ConchdForwarding {
  const refuse = (what: string): never => {
    throw new NotEnforcedError(`${what} is not enforced by this build yet; remove it or use yes/no`);
  };
  if (config.allowTcpForwarding === "local" || config.allowTcpForwarding === "remote") refuse(`AllowTcpForwarding ${config.allowTcpForwarding}`);
  if (config.allowStreamLocalForwarding === "local" || config.allowStreamLocalForwarding === "remote") refuse(`AllowStreamLocalForwarding ${config.allowStreamLocalForwarding}`);
  if (config.permitOpen.join(" ") !== "any") refuse(`PermitOpen ${config.permitOpen.join(" ")}`);
  if (config.permitListen.join(" ") !== "any") refuse(`PermitListen ${config.permitListen.join(" ")}`);
  if (config.gatewayPorts === "clientspecified") refuse("GatewayPorts clientspecified");
  return {
    allowTcpForwarding: config.allowTcpForwarding !== "no",
    allowStreamLocalForwarding: config.allowStreamLocalForwarding !== "no",
    gatewayPorts: config.gatewayPorts === "yes",
  };
}

/** MaxStartups and its per-source companions, read. */
export interface StartupLimits {
  readonly maxStartups: { readonly start: number; readonly rate: number; readonly full: number };
  readonly perSourceMaxStartups: number | undefined;
  readonly perSourcePenalties: string;
}

/**
 * The startup limits of a config. TODO(lead, issue 14): once the factory has MaxStartups,
 * PerSourceMaxStartups and PerSourcePenalties, return its settings object here, have
 * `ConchdFactory.configure` apply it, and drop the refusal below.
 */
export function startupLimitsOf(config: ConchdConfig): StartupLimits {
  const [start, rate, full] = config.maxStartups.includes(":") ? config.maxStartups.split(":").map(Number) : [Number(config.maxStartups), 100, Number(config.maxStartups)];
  const limits: StartupLimits = {
    maxStartups: { start: start!, rate: rate!, full: full! },
    perSourceMaxStartups: config.perSourceMaxStartups === "none" ? undefined : Number(config.perSourceMaxStartups),
    perSourcePenalties: config.perSourcePenalties,
  };
  if (config.maxStartups !== "10:30:100" || limits.perSourceMaxStartups !== undefined || limits.perSourcePenalties !== "") {
    throw new NotEnforcedError("MaxStartups, PerSourceMaxStartups and PerSourcePenalties are not enforced by this build yet; remove them");
  }
  return limits;
}
