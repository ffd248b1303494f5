/**
 * Fuzz slice of Certificate.fromBlob and check: damaged certificates end parsed or with a typed
 * error. The long run is `node bench/dist/fuzz.js`; the target is in test/_support/fuzz_formats.ts.
 */
import { test } from "node:test";
import { assertTarget } from "../../_support/fuzz.js";
import { FORMAT_TARGETS } from "../../_support/fuzz_formats.js";

const t = FORMAT_TARGETS.find((x) => x.name === "ssh/keys: Certificate.fromBlob and check")!;

test(`${t.name}: every damaged certificate is parsed or refused with a typed error`, () => assertTarget(t));
