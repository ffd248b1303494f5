/**
 * Fuzz slice of known_hosts lines (plain, hashed, markers, patterns): damaged inputs end parsed or with a typed error. The long run is
 * `node bench/dist/fuzz.js`; the target is in test/_support/fuzz_formats.ts.
 */
import { test } from "node:test";
import { assertTarget } from "../../_support/fuzz.js";
import { FORMAT_TARGETS } from "../../_support/fuzz_formats.js";

const t = FORMAT_TARGETS.find((x) => x.name === "client/known_hosts lines")!;

test(`${t.name}: every damaged input is parsed or refused with a typed error`, () => assertTarget(t));
