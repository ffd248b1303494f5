/**
 * Fuzz slice of the services over the transport: userauth (server and client), the connection
 * layer (server with the in-process realm, client with an open channel) and the session request
 * parsers, fed damaged conversations message by message. The long run is
 * `node bench/dist/fuzz.js`; the targets are in test/_support/fuzz_services.ts.
 */
import { test } from "node:test";
import { assertTarget } from "../../_support/fuzz.js";
import { SERVICE_TARGETS } from "../../_support/fuzz_services.js";

for (const t of SERVICE_TARGETS) {
  test(`${t.name}: every message is handled or refused with a typed error, within the limits`, () => assertTarget(t));
}
