/**
 * The SSH transport's cryptography, sans-IO: packet ciphers and MACs, key exchange primitives.
 * Internal to @twisted-ts/conch (not in the exports map); `ssh/transport` is the public face.
 */
export * from "./ciphers.js";
export * from "./kex.js";
export { poly1305 } from "./poly1305.js";
export {
  sntrup761KeyPair,
  sntrup761Encapsulate,
  sntrup761Decapsulate,
  SNTRUP761_PUBLIC_KEY_BYTES,
  SNTRUP761_SECRET_KEY_BYTES,
  SNTRUP761_CIPHERTEXT_BYTES,
  SNTRUP761_SHARED_SECRET_BYTES,
} from "./sntrup761.js";
export type { RandomBytes } from "./sntrup761.js";
