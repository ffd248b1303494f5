/**
 * Loads the internal `ssh/_transport` modules (not in the package's exports map) from the built
 * package, typed as their declarations.
 */
export type TransportCrypto = typeof import("../../../../packages/conch/dist/ssh/_transport/index.js");

const root = import.meta.resolve("@twisted-ts/conch/package.json");
export const T = (await import(new URL("dist/ssh/_transport/index.js", root).href)) as TransportCrypto;
