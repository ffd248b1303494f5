/**
 * Transport-layer message numbers (RFC 4250 §4.1.2, RFC 4419, RFC 5656, RFC 8308) and the
 * tables that name them. Numbers 30–34 mean different things per key-exchange family; the
 * transport resolves them in one place (`kexMessageName`).
 */
export const MSG_DISCONNECT = 1;
export const MSG_IGNORE = 2;
export const MSG_UNIMPLEMENTED = 3;
export const MSG_DEBUG = 4;
export const MSG_SERVICE_REQUEST = 5;
export const MSG_SERVICE_ACCEPT = 6;
export const MSG_EXT_INFO = 7;
export const MSG_KEXINIT = 20;
export const MSG_NEWKEYS = 21;
/** Fixed-group Diffie-Hellman, ECDH, curve25519 and hybrid KEM share 30/31. */
export const MSG_KEXDH_INIT = 30;
export const MSG_KEXDH_REPLY = 31;
export const MSG_KEX_ECDH_INIT = 30;
export const MSG_KEX_ECDH_REPLY = 31;
/** Group exchange (RFC 4419). */
export const MSG_KEX_DH_GEX_REQUEST_OLD = 30;
export const MSG_KEX_DH_GEX_GROUP = 31;
export const MSG_KEX_DH_GEX_INIT = 32;
export const MSG_KEX_DH_GEX_REPLY = 33;
export const MSG_KEX_DH_GEX_REQUEST = 34;

/** Names of the messages whose meaning does not depend on the key exchange. */
export const TRANSPORT_MESSAGES: Readonly<Record<number, string>> = {
  1: "MSG_DISCONNECT",
  2: "MSG_IGNORE",
  3: "MSG_UNIMPLEMENTED",
  4: "MSG_DEBUG",
  5: "MSG_SERVICE_REQUEST",
  6: "MSG_SERVICE_ACCEPT",
  7: "MSG_EXT_INFO",
  20: "MSG_KEXINIT",
  21: "MSG_NEWKEYS",
};

const KEX_MESSAGES: Readonly<Record<"dh" | "ecdh" | "kem" | "gex", Readonly<Record<number, string>>>> = {
  dh: { 30: "MSG_KEXDH_INIT", 31: "MSG_KEXDH_REPLY" },
  ecdh: { 30: "MSG_KEX_ECDH_INIT", 31: "MSG_KEX_ECDH_REPLY" },
  kem: { 30: "MSG_KEX_ECDH_INIT", 31: "MSG_KEX_ECDH_REPLY" },
  gex: {
    30: "MSG_KEX_DH_GEX_REQUEST_OLD",
    31: "MSG_KEX_DH_GEX_GROUP",
    32: "MSG_KEX_DH_GEX_INIT",
    33: "MSG_KEX_DH_GEX_REPLY",
    34: "MSG_KEX_DH_GEX_REQUEST",
  },
};

/** The name of message `num` (30–49) under the negotiated key-exchange family, if it has one. */
export function kexMessageName(family: "dh" | "ecdh" | "kem" | "gex" | undefined, num: number): string | undefined {
  return family === undefined ? undefined : KEX_MESSAGES[family][num];
}

/**
 * RFC 4253 §7.1: while a key exchange is under way, only these may be sent; the rest waits.
 * (1–19 but the service messages and EXT_INFO, 20–29 but KEXINIT, and 30–49.)
 */
export function allowedDuringKeyExchange(messageType: number): boolean {
  if (messageType >= 1 && messageType <= 19) {
    return messageType !== MSG_SERVICE_REQUEST && messageType !== MSG_SERVICE_ACCEPT && messageType !== MSG_EXT_INFO;
  }
  if (messageType >= 20 && messageType <= 29) return messageType !== MSG_KEXINIT;
  return messageType >= 30 && messageType <= 49;
}
