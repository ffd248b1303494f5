/**
 * The heap reserve (ssh/_tbase/heapreserve.ts): held only while a process moves bulk data, built
 * a MiB per packet, dropped when transfers stop or when it is turned off.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getHeapSpaceStatistics } from "node:v8";
import { transport } from "@twisted-ts/conch/ssh";

type HeapReserve = typeof import("../../../../packages/conch/dist/ssh/_tbase/heapreserve.js");
const H = (await import(new URL("dist/ssh/_tbase/heapreserve.js", import.meta.resolve("@twisted-ts/conch/package.json")).href)) as HeapReserve;
const MIB = 1024 * 1024;

/** Bytes in V8's large-object spaces (old and young). */
function largeObjectBytes(): number {
  return getHeapSpaceStatistics()
    .filter((s) => s.space_name === "large_object_space" || s.space_name === "new_large_object_space")
    .reduce((n, s) => n + s.space_used_size, 0);
}

test("heap reserve: none for a trickle, the whole reserve once bulk data moves, none after 30 s without", (t) => {
  t.after(() => transport.setHeapReserve(transport.DEFAULT_HEAP_RESERVE));
  transport.setHeapReserve(transport.DEFAULT_HEAP_RESERVE);
  for (let i = 0; i < 16; i++) H.noteBytes(MIB);
  assert.equal(transport.heapReserveHeld(), 0, "16 MiB is not bulk");
  // Two bulk windows back to back: the first may be one that started long ago (not bulk by rate).
  // The process's first bulk data also allocates (and drops) the buffer that raises glibc's
  // thresholds, once.
  const buffersBefore = process.memoryUsage().arrayBuffers;
  H.noteBytes(H.BULK_BYTES);
  H.noteBytes(H.BULK_BYTES);
  assert.ok(process.memoryUsage().arrayBuffers - buffersBefore >= H.MALLOC_TUNE_BYTES, "the tuning buffer was allocated");
  // Built one MiB per packet after that, as large objects on the heap itself (what V8 sizes its
  // limit from), not off it as a typed array's memory.
  const before = largeObjectBytes();
  for (let i = 0; i < 64; i++) H.noteBytes(100);
  assert.equal(transport.heapReserveHeld(), transport.DEFAULT_HEAP_RESERVE);
  const grown = largeObjectBytes() - before;
  assert.ok(grown > 0.75 * transport.DEFAULT_HEAP_RESERVE, `the heap's large objects grew by ${grown} bytes`);
  H.releaseIfIdle(performance.now() + 1000);
  assert.equal(transport.heapReserveHeld(), transport.DEFAULT_HEAP_RESERVE, "kept while transfers are recent");
  H.releaseIfIdle(performance.now() + 31_000);
  assert.equal(transport.heapReserveHeld(), 0, "dropped 30 s after the last bulk window");
});

test("heap reserve: setHeapReserve sizes it, 0 turns it off, and a bad size is a RangeError", (t) => {
  t.after(() => transport.setHeapReserve(transport.DEFAULT_HEAP_RESERVE));
  transport.setHeapReserve(4 * MIB);
  const buffersBefore = process.memoryUsage().arrayBuffers;
  H.noteBytes(H.BULK_BYTES);
  H.noteBytes(H.BULK_BYTES);
  assert.ok(process.memoryUsage().arrayBuffers - buffersBefore < H.MALLOC_TUNE_BYTES, "the tuning buffer is allocated once per process");
  for (let i = 0; i < 16; i++) H.noteBytes(100);
  assert.equal(transport.heapReserveHeld(), 4 * MIB);
  transport.setHeapReserve(0);
  assert.equal(transport.heapReserveHeld(), 0, "turning it off drops the one held");
  H.noteBytes(H.BULK_BYTES);
  H.noteBytes(H.BULK_BYTES);
  for (let i = 0; i < 16; i++) H.noteBytes(100);
  assert.equal(transport.heapReserveHeld(), 0);
  assert.throws(() => transport.setHeapReserve(-1), RangeError);
  assert.throws(() => transport.setHeapReserve(Number.NaN), RangeError);
});

test("heap reserve: bulk data after a pause of 5 s or more builds the reserve anew (V8's memory reducer may have set the heap to grow slowly meanwhile)", (t) => {
  t.after(() => transport.setHeapReserve(transport.DEFAULT_HEAP_RESERVE));
  transport.setHeapReserve(2 * MIB);
  const t0 = performance.now();
  H.noteBytes(H.BULK_BYTES, t0);
  H.noteBytes(H.BULK_BYTES, t0 + 10);
  for (let i = 0; i < 4; i++) H.noteBytes(100);
  assert.equal(transport.heapReserveHeld(), 2 * MIB);
  // Another bulk window 1 s later: the same reserve.
  H.noteBytes(H.BULK_BYTES, t0 + 1000);
  assert.equal(transport.heapReserveHeld(), 2 * MIB);
  // 6 s without: the first window after the pause is not bulk by rate, the second is, and the
  // reserve starts again from nothing, a MiB per packet.
  H.noteBytes(H.BULK_BYTES, t0 + 7000);
  H.noteBytes(H.BULK_BYTES, t0 + 7010);
  assert.equal(transport.heapReserveHeld(), 0);
  for (let i = 0; i < 4; i++) H.noteBytes(100);
  assert.equal(transport.heapReserveHeld(), 2 * MIB);
});
