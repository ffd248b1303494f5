/** Small helpers shared by the internet tests that use real sockets. */
import { Deferred } from "@twisted-ts/internet/defer";
import type { Failure } from "@twisted-ts/internet/failure";
import { globalLogPublisher, type LogEvent } from "@twisted-ts/internet/log";
import { ClientFactory, Protocol } from "@twisted-ts/internet/protocol";
import type { IConnector } from "@twisted-ts/internet/interfaces";

/** A protocol that records what happens to it and exposes Deferreds for made / lost. */
export class Recorder extends Protocol {
  chunks: Buffer[] = [];
  made = new Deferred<Recorder>();
  /** Resolves with the reason (a Promise: a Deferred fired with a Failure would take the errback path). */
  lost: Promise<Failure>;
  private resolveLost!: (f: Failure) => void;
  reason: Failure | null = null;
  constructor() {
    super();
    this.lost = new Promise((r) => (this.resolveLost = r));
  }
  override connectionMade(): void {
    this.made.callback(this);
  }
  override dataReceived(data: Uint8Array): void {
    this.chunks.push(Buffer.from(data));
  }
  override connectionLost(reason: Failure): void {
    super.connectionLost(reason);
    this.reason = reason;
    this.resolveLost(reason);
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("latin1");
  }
}

/** A client factory whose outcome is a Deferred: the protocol, or the connection failure. */
export class RecordingClientFactory<P extends Protocol> extends ClientFactory<P> {
  failed: Promise<Failure>;
  private resolveFailed!: (f: Failure) => void;
  lostReasons: Failure[] = [];
  started: IConnector[] = [];
  constructor(make: new () => P) {
    super();
    this.protocol = make;
    this.failed = new Promise((r) => (this.resolveFailed = r));
  }
  override startedConnecting(connector: IConnector): void {
    this.started.push(connector);
  }
  override clientConnectionFailed(_connector: IConnector, reason: Failure): void {
    this.resolveFailed(reason);
  }
  override clientConnectionLost(_connector: IConnector, reason: Failure): void {
    this.lostReasons.push(reason);
  }
}

/** Collects log events while `fn` runs (and until the returned stop function is called). */
export function captureLogs(): { events: LogEvent[]; stop: () => void } {
  const events: LogEvent[] = [];
  const observer = (e: LogEvent): void => {
    events.push(e);
  };
  globalLogPublisher.addObserver(observer);
  return { events, stop: () => globalLogPublisher.removeObserver(observer) };
}

/** Resolves after `ms` milliseconds (for letting sockets settle, never for timing assertions). */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Resolves when `cond()` is true, checking on each turn of the loop (gives up after 10 s). */
export async function until(cond: () => boolean, what = "condition"): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}
