/**
 * Fuzz slice of the agent protocol: both sides fed damaged messages in damaged reads. The long run
 * is `node bench/dist/fuzz.js`; the targets are in test/_support/fuzz_agent.ts.
 */
import { test } from "node:test";
import { assertTarget } from "../../_support/fuzz.js";
import { AGENT_TARGETS } from "../../_support/fuzz_agent.js";

for (const t of AGENT_TARGETS) {
  test(`${t.name}: every message is answered or refused with a typed error, within the limits`, () => assertTarget(t));
}
