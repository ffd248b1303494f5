/** Every fuzz target, in the order `bench/fuzz.ts` runs them. */
import type { FuzzTarget } from "./fuzz.js";
import { INTERNET_TARGETS } from "./fuzz_internet.js";
import { TRANSPORT_TARGETS } from "./fuzz_transport.js";
import { SERVICE_TARGETS } from "./fuzz_services.js";
import { FORMAT_TARGETS } from "./fuzz_formats.js";
import { AGENT_TARGETS } from "./fuzz_agent.js";

export const ALL_TARGETS: readonly FuzzTarget[] = [...INTERNET_TARGETS, ...TRANSPORT_TARGETS, ...SERVICE_TARGETS, ...FORMAT_TARGETS, ...AGENT_TARGETS];
