/**
 * Fuzz slice of the SSH transport: version exchange, plaintext key exchange on both sides,
 * encrypted packets of every cipher family, and a whole damaged client conversation through the
 * real transport. Every input ends parsed or with a typed error, buffers under their limits.
 * The long run is `node bench/dist/fuzz.js`; the targets are in test/_support/fuzz_transport.ts.
 */
import { test } from "node:test";
import { assertTarget } from "../../_support/fuzz.js";
import { TRANSPORT_TARGETS } from "../../_support/fuzz_transport.js";

for (const t of TRANSPORT_TARGETS) {
  test(`${t.name}: every input is parsed or refused with a typed error, within the buffer limits`, () => assertTarget(t));
}
