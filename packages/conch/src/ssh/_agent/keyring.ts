/** Internal: the in-memory keyring behind `SSHAgentServer`, re-exported by `ssh/agent.ts`. */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import type { IDelayedCall, IReactorTime } from "@twisted-ts/internet/interfaces";
import { toBytes } from "../common.js";
import type { Key } from "../keys.js";
import type { AgentConstraints } from "./client.js";

/** One key the agent holds. */
export interface AgentKeyEntry {
  readonly key: Key;
  /** The public key blob that names it in requests. */
  readonly blob: Uint8Array;
  readonly comment: string;
  /** Each use must be confirmed (SSH_AGENT_CONSTRAIN_CONFIRM). */
  readonly confirm: boolean;
  /** Seconds on the clock at which it is forgotten, when it has a lifetime. */
  readonly expiresAt: number | undefined;
}

interface Held {
  entry: AgentKeyEntry;
  timer: IDelayedCall | undefined;
}

const hexOf = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.length).toString("hex");

/**
 * The keys of an agent, held in memory: keys with a lifetime are forgotten by a `callLater` on
 * `clock`; `lock` hides and freezes them behind a passphrase, of which only a keyed hash is
 * kept and which `unlock` compares in constant time.
 */
export class AgentKeyring {
  private readonly held = new Map<string, Held>();
  private lockHash: Uint8Array | undefined = undefined;
  private lockSalt: Uint8Array = new Uint8Array(0);
  /** Wrong unlock passphrases since the last lock or unlock (the agent slows down after each). */
  failedUnlocks = 0;

  constructor(readonly clock: IReactorTime) {}

  /** Adds `key` (replacing the same key, as ssh-agent does), with its comment and constraints. */
  add(key: Key, comment = "", constraints: AgentConstraints = {}): AgentKeyEntry {
    const blob = key.blob();
    const id = hexOf(blob);
    this.cancel(id);
    const lifetime = constraints.lifetime;
    const entry: AgentKeyEntry = {
      key,
      blob,
      comment,
      confirm: constraints.confirm === true,
      expiresAt: lifetime === undefined ? undefined : this.clock.seconds() + lifetime,
    };
    const timer = lifetime === undefined ? undefined : this.clock.callLater(lifetime, () => this.expire(id, entry));
    this.held.set(id, { entry, timer });
    return entry;
  }

  private expire(id: string, entry: AgentKeyEntry): void {
    if (this.held.get(id)?.entry === entry) this.held.delete(id);
  }

  private cancel(id: string): void {
    const h = this.held.get(id);
    if (h?.timer?.active() === true) h.timer.cancel();
  }

  /** The entry for public key blob `blob`, if held. */
  get(blob: Uint8Array): AgentKeyEntry | undefined {
    return this.held.get(hexOf(blob))?.entry;
  }

  /** Forgets the key of `blob`; false when it was not held. */
  remove(blob: Uint8Array): boolean {
    const id = hexOf(blob);
    this.cancel(id);
    return this.held.delete(id);
  }

  /** Forgets every key. */
  removeAll(): void {
    for (const id of [...this.held.keys()]) this.remove(Buffer.from(id, "hex"));
  }

  /** The keys held, oldest first. */
  list(): AgentKeyEntry[] {
    return [...this.held.values()].map((h) => h.entry);
  }

  /** Keys held. */
  get size(): number {
    return this.held.size;
  }

  /** True while locked. */
  get locked(): boolean {
    return this.lockHash !== undefined;
  }

  /** Locks with `passphrase`; false when already locked. */
  lock(passphrase: string | Uint8Array): boolean {
    if (this.lockHash !== undefined) return false;
    this.lockSalt = randomBytes(32);
    this.lockHash = this.hash(passphrase);
    this.failedUnlocks = 0;
    return true;
  }

  /** Unlocks when `passphrase` is the one locked with; false otherwise (or when not locked). */
  unlock(passphrase: string | Uint8Array): boolean {
    const want = this.lockHash;
    if (want === undefined) return false;
    if (!timingSafeEqual(this.hash(passphrase), want)) {
      this.failedUnlocks++;
      return false;
    }
    this.lockHash = undefined;
    this.failedUnlocks = 0;
    return true;
  }

  private hash(passphrase: string | Uint8Array): Uint8Array {
    return createHmac("sha256", this.lockSalt).update(toBytes(passphrase)).digest();
  }

  /** Cancels every lifetime timer and forgets every key (the agent is going away). */
  stop(): void {
    this.removeAll();
  }
}
