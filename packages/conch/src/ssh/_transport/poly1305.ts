/**
 * Poly1305 one-time authenticator (RFC 8439 §2.5) for chacha20-poly1305@openssh.com.
 *
 * node:crypto exposes raw ChaCha20 but no Poly1305; this is the one place that picks the
 * implementation, so a faster one can replace it without touching the packet code.
 */
import { Poly1305 } from "@noble/ciphers/_poly1305.js";

/** Writes the 16-byte tag of `data` under the 32-byte one-time `key` into `out` at `offset`. */
export function poly1305Into(key: Uint8Array, data: Uint8Array, out: Uint8Array, offset: number): void {
  const mac = new Poly1305(key);
  mac.update(data);
  if (offset === 0 && out.length === 16) {
    mac.digestInto(out);
    return;
  }
  const tag = new Uint8Array(16);
  mac.digestInto(tag);
  out.set(tag, offset);
}

/** The 16-byte tag of `data` under `key`. */
export function poly1305(key: Uint8Array, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(16);
  poly1305Into(key, data, out, 0);
  return out;
}
