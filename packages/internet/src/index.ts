/**
 * `@twisted-ts/internet`: Twisted's event-driven core. Module names follow `twisted.internet`.
 */
export * as interfaces from "./interfaces.js";
export * as log from "./log.js";
export * as defer from "./defer.js";
export * as failure from "./failure.js";
export * as task from "./task.js";
export * as protocol from "./protocol.js";
export * as error from "./error.js";
export * as basic from "./basic.js";
export * as testing from "./testing.js";
export * as address from "./address.js";
export { reactor } from "./reactor.js";
export * as endpoints from "./endpoints.js";
