/**
 * The worker thread of `dh_pool.ts`: answers `{ id, p, g, e }` with the server's half of a DH
 * exchange, `{ id, f, shared }`, or `{ id, error }`.
 */
import { parentPort } from "node:worker_threads";
import { dhRespond } from "./dh.js";

interface Job {
  id: number;
  p: bigint;
  g: bigint;
  e: bigint;
}

const port = parentPort;
if (port === null) throw new Error("dh_worker runs only as a worker thread");
port.on("message", (job: Job) => {
  try {
    const { f, shared } = dhRespond({ p: job.p, g: job.g }, job.e);
    port.postMessage({ id: job.id, f, shared });
  } catch (e) {
    port.postMessage({ id: job.id, error: e instanceof Error ? e.message : String(e) });
  }
});
