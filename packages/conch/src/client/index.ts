/** `@twisted-ts/conch/client`: client helpers (known_hosts, the agent, endpoints). */
export * as knownhosts from "./knownhosts.js";
export * as agent from "./agent.js";
