/**
 * Headroom for V8's old generation while a process moves bulk data over SSH.
 *
 * node:crypto hands back every packet's ciphertext or plaintext in a buffer of its own: a GiB
 * moved is about a GiB of short-lived ArrayBuffers. V8 counts the external memory allocated since
 * its last full collection against the old generation's limit, and it sets that limit from the
 * live heap, which in an SSH process is about 8 MB. The limit then sat about 10 MB above what the
 * buffers made between two young-generation collections add up to (32 MB), so V8 started a full
 * mark-compact every 10 to 30 MB moved: 60 to 120 per GiB, 20 to 40 % of a download's CPU
 * (measured on Node 20; docs/benchmarks.md). A reserve held on the heap while packets stream
 * raises the limit past that churn. It is plain doubles, which the marker takes in one step (no
 * pointers to follow), and it is dropped once the process has moved no bulk data for a while.
 *
 * Process-wide, like the heap it works on. `setHeapReserve(0)` turns it off.
 */

/** The reserve's size by default. */
export const DEFAULT_HEAP_RESERVE = 16 * 1024 * 1024;
/** Bytes (both ways, all connections) within one {@link WINDOW_MS} that count as bulk data. */
export const BULK_BYTES = 32 * 1024 * 1024;
const WINDOW_MS = 2000;
/** Bulk data after this long without is a new transfer: the reserve is built anew. */
const REBUILD_AFTER_MS = 5000;
/** The reserve goes once no window has seen bulk data for this long. */
const IDLE_MS = 30_000;
/** Doubles per array: 1 MiB each (a power of two: {@link chunk} doubles an array up to it). */
const CHUNK = 128 * 1024;
const CHUNK_BYTES = CHUNK * 8;

let reserveBytes = DEFAULT_HEAP_RESERVE;
let reserve: number[][] | undefined;
let windowStart = 0;
let windowBytes = 0;
let lastBulk = 0;
let releaseTimer: ReturnType<typeof setInterval> | undefined;

/** Sets the reserve's size in bytes (0: never hold one); a reserve held now is dropped. */
export function setHeapReserve(bytes: number): void {
  if (!(bytes >= 0)) throw new RangeError(`heap reserve must be a size in bytes, got ${bytes}`);
  reserveBytes = bytes;
  release();
}

/** The reserve held now, in bytes (0 when none). */
export function heapReserveHeld(): number {
  return reserve === undefined ? 0 : reserve.length * CHUNK_BYTES;
}

/**
 * A transport moved `n` packet bytes (called per packet, so cheap while below the threshold).
 * `now` (milliseconds, `performance.now()` by default) is for tests.
 */
export function noteBytes(n: number, now?: number): void {
  if (reserveBytes === 0) return;
  // Built a MiB per packet rather than at once: no single pause in the transfer.
  if (reserve !== undefined && reserve.length * CHUNK_BYTES < reserveBytes) reserve.push(chunk(reserve[0]));
  windowBytes += n;
  if (windowBytes < BULK_BYTES) return;
  now ??= performance.now();
  const bulk = now - windowStart <= WINDOW_MS;
  windowStart = now;
  windowBytes = 0;
  if (!bulk) return;
  // After a pause V8's memory reducer may have shrunk the heap and set it to grow slowly, which
  // brings the mark-compacts back; a reserve built anew (memory the heap must grow by) ends that.
  if (reserve !== undefined && now - lastBulk > REBUILD_AFTER_MS) reserve = [];
  lastBulk = now;
  if (reserve === undefined) hold();
}

/**
 * A MiB of doubles (a copy of `built`, when one is), made by builtins (`concat`, `slice`) that
 * copy memory at full speed before any of this is optimized: a fill loop ran interpreted at about
 * 10 ms a MiB, which a transfer's first seconds paid as 170 ms of CPU (a cold 1 GiB get). What is
 * left is the kernel's page faults.
 */
function chunk(built: number[] | undefined): number[] {
  if (built !== undefined) return built.slice();
  let a = [0.5];
  while (a.length < CHUNK) a = a.concat(a);
  return a;
}

/**
 * Bytes of one buffer allocated and dropped when a process first moves bulk data. glibc hands
 * memory at the top of its heap back to the kernel once more than 128 KiB is free there, and the
 * packets' buffers are freed together after each young collection (tens of MB), so that memory
 * kept coming back as page faults, about 12 µs each on this machine. Freeing a buffer that glibc
 * had to map on its own raises its thresholds to that size, and twice that for trimming (its
 * documented dynamic mmap threshold, mallopt(3)); under 32 MiB, glibc's ceiling for that rule.
 * Measured (1 GiB gets, faults of the process): our client warm 5,400–6,300 → 250–550, cold
 * 22,600 → 15,200; the in-process server 16,700–36,000 → 11,200–21,300. What it costs: up to
 * 32 MiB of freed memory the process keeps rather than returns. Elsewhere (musl, macOS) it is
 * one allocation and nothing more.
 */
export const MALLOC_TUNE_BYTES = 16 * 1024 * 1024;
let mallocTuned = false;

function hold(): void {
  if (!mallocTuned) {
    mallocTuned = true;
    // Never written, so never touched: mapped and unmapped, no page faulted in.
    void new ArrayBuffer(MALLOC_TUNE_BYTES);
  }
  reserve = [];
  releaseTimer = setInterval(() => releaseIfIdle(), IDLE_MS);
  releaseTimer.unref();
}

/** @internal Drops the reserve if no bulk data has moved for {@link IDLE_MS} before `now` (the timer's check). */
export function releaseIfIdle(now: number = performance.now()): void {
  if (now - lastBulk > IDLE_MS) release();
}

function release(): void {
  reserve = undefined;
  if (releaseTimer !== undefined) clearInterval(releaseTimer);
  releaseTimer = undefined;
}
