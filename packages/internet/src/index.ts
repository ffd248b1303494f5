/**
 * `@twisted-ts/internet`: Twisted's event-driven core. Module names follow `twisted.internet`.
 */
export * as interfaces from "./interfaces.js";
export * as log from "./log.js";
export * as defer from "./defer.js";
export * as failure from "./failure.js";
export * as task from "./task.js";
