/**
 * Per-source protections of unauthenticated connections, as OpenSSH 9.8's `sshd.c` and
 * `srclimit.c`: `MaxStartups` random early drop, `PerSourceMaxStartups` per
 * `PerSourceNetBlockSize` netblock, and `PerSourcePenalties` with `PerSourcePenaltyExemptList`.
 *
 * One {@link SourceLimits} per factory. It decides on the address `getPeer()` reports (the PROXY
 * header's source behind HAProxy), so the transport asks it in `connectionMade`, not the factory
 * in `buildProtocol` (which sees the balancer's address). Every method takes `now` (seconds on a
 * monotonic clock) so tests drive it with a fake clock.
 */
import { BlockList, isIP } from "node:net";
import { randomInt } from "node:crypto";
import { Logger } from "@twisted-ts/internet/log";

/** sshd's `MaxStartups start:rate:full`. */
export interface MaxStartups {
  /** Unauthenticated connections accepted before dropping starts. */
  readonly start: number;
  /** Percent chance of a drop at `start`, rising linearly to 100 at `full`. */
  readonly rate: number;
  /** Unauthenticated connections at which every new one is dropped. */
  readonly full: number;
}

/** sshd's default `MaxStartups 10:30:100`. */
export const DEFAULT_MAX_STARTUPS: MaxStartups = Object.freeze({ start: 10, rate: 30, full: 100 });

/** sshd's `PerSourceNetBlockSize ipv4:ipv6`: the prefix lengths that group sources. */
export interface NetBlockSize {
  readonly ipv4: number;
  readonly ipv6: number;
}

/** sshd's default `PerSourceNetBlockSize 32:128`: every address on its own. */
export const DEFAULT_NET_BLOCK_SIZE: NetBlockSize = Object.freeze({ ipv4: 32, ipv6: 128 });

/** What a penalty table does when full (`overflow`/`overflow6` of `PerSourcePenalties`). */
export type PenaltyOverflow = "permissive" | "deny-all";

/** sshd's `PerSourcePenalties`; durations in seconds. */
export interface PerSourcePenalties {
  /** `PerSourcePenalties no` turns all of it off. */
  readonly enabled: boolean;
  /** `crash`: the connection broke the protocol before authenticating. */
  readonly crash: number;
  /** `authfail`: the connection ended after failed attempts and no success. */
  readonly authfail: number;
  /** `noauth`: the connection ended without attempting authentication. */
  readonly noauth: number;
  /** `grace-exceeded`: the connection ran past `LoginGraceTime`. */
  readonly graceExceeded: number;
  /** `max`: the longest penalty accumulated. */
  readonly max: number;
  /** `min`: a penalty refuses connections only once more than this is outstanding. */
  readonly min: number;
  /** `max-sources4`, `max-sources6`: bounds of the IPv4 and IPv6 penalty tables. */
  readonly maxSources4: number;
  readonly maxSources6: number;
  /** `overflow`, `overflow6`: a full table forgets the soonest to expire, or refuses everyone. */
  readonly overflow: PenaltyOverflow;
  readonly overflow6: PenaltyOverflow;
}

/** OpenSSH 9.8's defaults: crash:90 authfail:5 noauth:1 grace-exceeded:20 max:600 min:15. */
export const DEFAULT_PER_SOURCE_PENALTIES: PerSourcePenalties = Object.freeze({
  enabled: true,
  crash: 90,
  authfail: 5,
  noauth: 1,
  graceExceeded: 20,
  max: 600,
  min: 15,
  maxSources4: 65536,
  maxSources6: 65536,
  overflow: "permissive",
  overflow6: "permissive",
});

/** Why a connection that ended before authenticating is penalised. */
export type PenaltyType = "crash" | "authfail" | "noauth" | "grace-exceeded";

const PENALTY_REASONS: Record<PenaltyType, string> = {
  crash: "penalty: caused crash",
  authfail: "penalty: failed authentication",
  noauth: "penalty: connections without attempting authentication",
  "grace-exceeded": "penalty: exceeded LoginGraceTime",
};

/** The settings read at every decision (`factory.SSHFactory` holds them as plain data). */
export interface SourceLimitSettings {
  maxStartups: MaxStartups;
  /** At most this many unauthenticated connections per netblock; `Infinity` is sshd's `none`. */
  perSourceMaxStartups: number;
  perSourceNetBlockSize: NetBlockSize;
  perSourcePenalties: Partial<PerSourcePenalties>;
  /** Addresses and CIDR blocks never penalised (`PerSourcePenaltyExemptList`). */
  perSourcePenaltyExemptList: readonly string[];
}

/** A connection let in: `release()` once it authenticates or ends. */
export interface Startup {
  /** Frees its place among the unauthenticated connections; later calls do nothing. */
  release(): void;
  /** Where it came from (the netblock key), or undefined for a non-IP peer. */
  readonly source: string | undefined;
}

/** A refused connection: why, for the log line. */
export interface Refusal {
  readonly reason: string;
}

interface Penalty {
  expiry: number;
  active: boolean;
  reason: string;
}

interface Table {
  readonly entries: Map<string, Penalty>;
  /** No entry expires before this; a sweep before it would find nothing. */
  soonest: number;
}

const log = new Logger("twisted-ts.conch.srclimit");

/** A masked address: family and the netblock key `addr/bits`. */
export interface NetBlock {
  readonly family: 4 | 6;
  readonly key: string;
}

/**
 * The netblock of `host` under `size` (`PerSourceNetBlockSize`): the address with the bits past
 * the prefix cleared, spelt `addr/bits`. IPv4-mapped IPv6 addresses count as IPv4. Undefined for
 * what is not an IP address.
 */
export function netBlockOf(host: string | undefined, size: NetBlockSize): NetBlock | undefined {
  if (host === undefined) return undefined;
  const h = host.startsWith("::ffff:") && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
  const family = isIP(h);
  if (family === 4) {
    const bits = clampBits(size.ipv4, 32);
    const n = h.split(".").reduce((acc, part) => (acc << 8n) | BigInt(Number(part)), 0n);
    const masked = bits === 0 ? 0n : (n >> BigInt(32 - bits)) << BigInt(32 - bits);
    const key = [24n, 16n, 8n, 0n].map((s) => String((masked >> s) & 0xffn)).join(".");
    return { family: 4, key: `${key}/${bits}` };
  }
  if (family === 6) {
    const bits = clampBits(size.ipv6, 128);
    const n = ipv6ToBigInt(h);
    if (n === undefined) return undefined;
    const masked = bits === 0 ? 0n : (n >> BigInt(128 - bits)) << BigInt(128 - bits);
    return { family: 6, key: `${masked.toString(16)}/${bits}` };
  }
  return undefined;
}

function clampBits(bits: number, max: number): number {
  return Number.isInteger(bits) ? Math.min(Math.max(bits, 0), max) : max;
}

function ipv6ToBigInt(host: string): bigint | undefined {
  let h = host;
  const zone = h.indexOf("%");
  if (zone >= 0) h = h.slice(0, zone);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(h);
  if (dotted !== null) {
    const parts = dotted[1]!.split(".").map(Number);
    h = h.slice(0, dotted.index) + (((parts[0]! << 8) | parts[1]!).toString(16) + ":" + ((parts[2]! << 8) | parts[3]!).toString(16));
  }
  const [head, tail] = h.split("::") as [string, string | undefined];
  const left = head === "" ? [] : head.split(":");
  const right = tail === undefined || tail === "" ? [] : tail.split(":");
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill("0"), ...right];
  if (groups.length !== 8) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/**
 * The per-factory state of sshd's listener: unauthenticated connections by netblock, and the
 * penalty tables. Bounded: the startups count never passes `maxStartups.full` (more are dropped),
 * and each penalty table holds at most `maxSources4`/`maxSources6` entries.
 */
export class SourceLimits {
  /** Random whole numbers 0..99 for the `MaxStartups` drop (sshd's `arc4random_uniform(100)`). */
  randomPercent: () => number = () => randomInt(100);
  /** Unauthenticated connections let in and not yet authenticated or gone. */
  private startups = 0;
  private readonly perSource = new Map<string, number>();
  private readonly tables: Record<4 | 6, Table> = {
    4: { entries: new Map(), soonest: Infinity },
    6: { entries: new Map(), soonest: Infinity },
  };
  /** True while connections are being dropped past `MaxStartups` (logged on entry and exit). */
  private throttling = false;
  private dropped = 0;
  private exemptCache: { list: string; blocks: BlockList } | undefined = undefined;

  constructor(readonly settings: SourceLimitSettings) {}

  /** Unauthenticated connections now let in. */
  get unauthenticated(): number {
    return this.startups;
  }

  /** Penalised netblocks held for the family (expired ones may linger until the next sweep). */
  penaltyCount(family: 4 | 6): number {
    return this.tables[family].entries.size;
  }

  /** The effective penalty settings: the factory's over OpenSSH 9.8's defaults. */
  penalties(): PerSourcePenalties {
    return { ...DEFAULT_PER_SOURCE_PENALTIES, ...this.settings.perSourcePenalties };
  }

  /**
   * sshd's `drop_connection`: a connection from `host` is refused when its netblock is
   * penalised, when `MaxStartups` drops it, or when its netblock already has
   * `perSourceMaxStartups` unauthenticated connections. Otherwise it counts as unauthenticated
   * until its {@link Startup} is released.
   */
  admit(host: string | undefined, now: number): Startup | Refusal {
    const penalty = this.penaltyRefusal(host, now);
    if (penalty !== undefined) return { reason: penalty };
    const block = netBlockOf(host, this.settings.perSourceNetBlockSize);
    const key = block?.key;
    const perSourceFull = key !== undefined && (this.perSource.get(key) ?? 0) >= this.settings.perSourceMaxStartups;
    if (this.shouldDrop() || perSourceFull) {
      if (!this.throttling) log.error("beginning MaxStartups throttling");
      this.throttling = true;
      this.dropped += 1;
      return { reason: perSourceFull ? "past PerSourceMaxStartups" : "past MaxStartups" };
    }
    if (this.throttling && this.startups < this.settings.maxStartups.start - 1) {
      log.info("exited MaxStartups throttling, {dropped} connections dropped", { dropped: this.dropped });
      this.throttling = false;
      this.dropped = 0;
    }
    this.startups += 1;
    if (key !== undefined) this.perSource.set(key, (this.perSource.get(key) ?? 0) + 1);
    let held = true;
    return {
      source: key,
      release: () => {
        if (!held) return;
        held = false;
        this.startups -= 1;
        if (key === undefined) return;
        const n = (this.perSource.get(key) ?? 1) - 1;
        if (n <= 0) this.perSource.delete(key);
        else this.perSource.set(key, n);
      },
    };
  }

  /** sshd's `should_drop_connection` for the connections now unauthenticated. */
  private shouldDrop(): boolean {
    const { start, rate, full } = this.settings.maxStartups;
    const n = this.startups;
    if (n < start) return false;
    if (n >= full) return true;
    if (rate >= 100) return true;
    const p = Math.trunc(((100 - rate) * (n - start)) / Math.max(full - start, 1)) + rate;
    return this.randomPercent() < p;
  }

  private exempt(host: string | undefined): boolean {
    const list = this.settings.perSourcePenaltyExemptList;
    if (host === undefined || list.length === 0) return false;
    const spelt = list.join(",");
    if (this.exemptCache?.list !== spelt) {
      const blocks = new BlockList();
      for (const entry of list) {
        const [net = "", bitsText] = entry.split("/");
        const family = isIP(net);
        if (family === 0) {
          log.warn("PerSourcePenaltyExemptList: {entry} is not an address or CIDR block", { entry });
          continue;
        }
        const type = family === 4 ? "ipv4" : "ipv6";
        if (bitsText === undefined) blocks.addAddress(net, type);
        else blocks.addSubnet(net, Number(bitsText), type);
      }
      this.exemptCache = { list: spelt, blocks };
    }
    const h = host.startsWith("::ffff:") && isIP(host.slice(7)) === 4 ? host.slice(7) : host;
    const family = isIP(h);
    return family !== 0 && this.exemptCache.blocks.check(h, family === 4 ? "ipv4" : "ipv6");
  }

  /** sshd's `srclimit_penalty_check_allow`: the refusal reason, or undefined to let it in. */
  private penaltyRefusal(host: string | undefined, now: number): string | undefined {
    const cfg = this.penalties();
    if (!cfg.enabled || this.exempt(host)) return undefined;
    const block = netBlockOf(host, this.settings.perSourceNetBlockSize);
    if (block === undefined) return undefined;
    const table = this.tables[block.family];
    const max = block.family === 4 ? cfg.maxSources4 : cfg.maxSources6;
    const overflow = block.family === 4 ? cfg.overflow : cfg.overflow6;
    if (table.entries.size >= max) this.expire(table, now);
    if (table.entries.size >= max && overflow === "deny-all") return "too many penalised addresses";
    const p = table.entries.get(block.key);
    if (p === undefined) return undefined;
    if (p.expiry < now) {
      table.entries.delete(block.key);
      return undefined;
    }
    return p.active ? p.reason : undefined;
  }

  /**
   * sshd's `srclimit_penalise`: adds `type`'s penalty to `host`'s netblock, accumulating up to
   * `max`; it refuses connections once more than `min` seconds are outstanding.
   */
  penalise(host: string | undefined, type: PenaltyType, now: number): void {
    const cfg = this.penalties();
    if (!cfg.enabled || this.exempt(host)) return;
    const secs = type === "grace-exceeded" ? cfg.graceExceeded : cfg[type];
    if (!(secs > 0)) return;
    const block = netBlockOf(host, this.settings.perSourceNetBlockSize);
    if (block === undefined) return;
    const reason = PENALTY_REASONS[type];
    const table = this.tables[block.family];
    const max = block.family === 4 ? cfg.maxSources4 : cfg.maxSources6;
    const overflow = block.family === 4 ? cfg.overflow : cfg.overflow6;
    let existing = table.entries.get(block.key);
    if (existing !== undefined && existing.expiry < now) {
      table.entries.delete(block.key);
      existing = undefined;
    }
    if (table.entries.size >= max) this.expire(table, now);
    // As sshd: a full deny-all table takes nothing, not even more time on an entry it holds.
    if (table.entries.size >= max && overflow === "deny-all") {
      log.info("penalty table full, cannot penalise {block} for {reason}", { block: block.key, reason });
      return;
    }
    if (existing !== undefined) {
      existing.expiry = Math.min(existing.expiry + secs, now + cfg.max);
      if (!existing.active && existing.expiry - now > cfg.min) {
        existing.active = true;
        log.info("{block}: activating penalty of {secs}s for {reason}", { block: block.key, secs: existing.expiry - now, reason });
      }
      existing.reason = reason;
      return;
    }
    const active = secs > cfg.min;
    table.entries.set(block.key, { expiry: now + secs, active, reason });
    table.soonest = Math.min(table.soonest, now + secs);
    log.emit(active ? "info" : "debug", "new {block} {state} penalty of {secs}s for {reason}", { block: block.key, state: active ? "active" : "deferred", secs, reason });
    // Permissive overflow: forget the penalties that would expire soonest.
    while (table.entries.size > max) this.evictSoonest(table);
  }

  /** Drops expired entries; skipped while none can have expired. */
  private expire(table: Table, now: number): void {
    if (table.soonest >= now) return;
    let soonest = Infinity;
    for (const [key, p] of table.entries) {
      if (p.expiry < now) table.entries.delete(key);
      else soonest = Math.min(soonest, p.expiry);
    }
    table.soonest = soonest;
  }

  private evictSoonest(table: Table): void {
    let victim: string | undefined;
    let expiry = Infinity;
    for (const [key, p] of table.entries) {
      if (p.expiry < expiry) {
        expiry = p.expiry;
        victim = key;
      }
    }
    if (victim === undefined) return;
    table.entries.delete(victim);
    log.debug("penalty table overflow, removed {block}", { block: victim });
  }
}
