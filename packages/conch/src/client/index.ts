/**
 * `@twisted-ts/conch/client`: client helpers (known_hosts, the agent, direct connections,
 * endpoints); the default client is `@twisted-ts/conch/client/default`.
 */
export * as knownhosts from "./knownhosts.js";
export * as agent from "./agent.js";
export * as direct from "./direct.js";
export * as endpoints from "./endpoints.js";
