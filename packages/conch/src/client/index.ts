/** `@twisted-ts/conch/client`: client helpers (known_hosts, endpoints). */
export * as knownhosts from "./knownhosts.js";
