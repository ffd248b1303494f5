/**
 * The SSH transport's cryptography, sans-IO: packet ciphers and MACs, key exchange primitives.
 * Internal to @twisted-ts/conch (not in the exports map); `ssh/transport` is the public face.
 */
export * from "./ciphers.js";
export * from "./kex.js";
export { poly1305 } from "./poly1305.js";
