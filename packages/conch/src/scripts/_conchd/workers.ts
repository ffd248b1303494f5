/**
 * `Workers N`: a primary process that forks N workers sharing the listening ports through
 * node:cluster, restarts a worker that dies (waiting longer after each quick failure), and passes
 * SIGHUP and SIGTERM on to them. A worker that cannot serve (a bad config since the primary
 * checked it, a port it cannot listen on) stops them all, with exit status 1.
 */
import cluster, { type Worker } from "node:cluster";
import { Logger } from "@twisted-ts/internet/log";
import { startConchdLogging } from "./logging.js";
import type { ConchdConfig } from "./config.js";
import { EXIT_CANNOT_SERVE } from "./daemon.js";

const log = new Logger("twisted-ts.conchd.workers");

/** The longest wait before restarting a worker that keeps failing, in seconds. */
export const MAX_RESTART_DELAY = 30;
/** A worker that ran this long (seconds) before dying is restarted at once. */
export const STABLE_UPTIME = 60;

/** The wait before the next restart after `failures` quick deaths in a row: 0, 1, 2, 4, … 30 s. */
export function restartDelay(failures: number): number {
  return failures <= 0 ? 0 : Math.min(MAX_RESTART_DELAY, 2 ** (failures - 1));
}

/**
 * Runs the primary: forks `config.workers` workers (each runs conchd again, as a worker) and
 * supervises them until SIGTERM has made them all exit; then exits 0.
 */
export function runPrimary(config: ConchdConfig): void {
  startConchdLogging(process.stdout, config.logLevel, config.logFormat, { worker: 0 });
  let stopping = false;
  let failed = false;
  const started = new Map<Worker, number>();
  const failures = new Map<number, number>();
  const slotOf = new Map<Worker, number>();

  const fork = (slot: number): void => {
    const w = cluster.fork({ CONCHD_WORKER_SLOT: String(slot) });
    started.set(w, Date.now());
    slotOf.set(w, slot);
    log.info("forked worker {slot} (pid {pid})", { slot, pid: w.process.pid ?? 0 });
  };

  const each = (signal: NodeJS.Signals): void => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };
  cluster.on("exit", (w, code, signal) => {
    const slot = slotOf.get(w) ?? 0;
    const uptime = (Date.now() - (started.get(w) ?? Date.now())) / 1000;
    started.delete(w);
    slotOf.delete(w);
    if (code === EXIT_CANNOT_SERVE && !stopping) {
      log.error("worker {slot} cannot serve (its error is on stderr); stopping", { slot });
      stopping = true;
      failed = true;
      each("SIGTERM");
    }
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) {
        log.info("all workers exited", {});
        process.exit(failed ? 1 : 0);
      }
      return;
    }
    const n = uptime >= STABLE_UPTIME ? 0 : (failures.get(slot) ?? 0) + 1;
    failures.set(slot, n);
    const delay = restartDelay(n);
    log.warn("worker {slot} exited ({how}) after {uptime}s; restarting in {delay}s", { slot, how: signal ?? `status ${code}`, uptime: Math.round(uptime), delay });
    setTimeout(() => {
      if (!stopping) fork(slot);
    }, delay * 1000);
  });

  process.on("SIGHUP", () => {
    log.info("reloading the workers", {});
    each("SIGHUP");
  });
  const stop = (): void => {
    stopping = true;
    each("SIGTERM");
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
  for (let slot = 1; slot <= config.workers; slot++) fork(slot);
  log.info("started {count} workers", { count: config.workers });
}

/** This worker's slot number (1 to N), or undefined in a process that is not a cluster worker. */
export function workerSlot(): number | undefined {
  if (cluster.isPrimary) return undefined;
  const n = Number(process.env["CONCHD_WORKER_SLOT"]);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}
