/**
 * Fuzz slice of the internet parsers (LineReceiver, Int32StringReceiver, NetstringReceiver, PROXY
 * headers): mutants of valid streams, whole, split and byte by byte. The long run is
 * `node bench/dist/fuzz.js`; the targets are in test/_support/fuzz_internet.ts.
 */
import { test } from "node:test";
import { assertTarget } from "../_support/fuzz.js";
import { INTERNET_TARGETS } from "../_support/fuzz_internet.js";

for (const t of INTERNET_TARGETS) {
  test(`${t.name}: every input is parsed or refused with a typed error, within the buffer limits`, () => assertTarget(t));
}
