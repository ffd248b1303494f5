/**
 * Errors of the SSH layers, as in `twisted.conch.error`, plus typed errors with stable codes.
 *
 * Every error here has a `code` string that does not change between releases; errors that end a
 * connection also carry the SSH disconnect reason (`reasonCode`, RFC 4253 §11.1).
 */

/** SSH_MSG_DISCONNECT reason codes (RFC 4250 §4.2.2). */
export const DISCONNECT_HOST_NOT_ALLOWED_TO_CONNECT = 1;
export const DISCONNECT_PROTOCOL_ERROR = 2;
export const DISCONNECT_KEY_EXCHANGE_FAILED = 3;
export const DISCONNECT_RESERVED = 4;
export const DISCONNECT_MAC_ERROR = 5;
export const DISCONNECT_COMPRESSION_ERROR = 6;
export const DISCONNECT_SERVICE_NOT_AVAILABLE = 7;
export const DISCONNECT_PROTOCOL_VERSION_NOT_SUPPORTED = 8;
export const DISCONNECT_HOST_KEY_NOT_VERIFIABLE = 9;
export const DISCONNECT_CONNECTION_LOST = 10;
export const DISCONNECT_BY_APPLICATION = 11;
export const DISCONNECT_TOO_MANY_CONNECTIONS = 12;
export const DISCONNECT_AUTH_CANCELLED_BY_USER = 13;
export const DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE = 14;
export const DISCONNECT_ILLEGAL_USER_NAME = 15;

/** Names of the disconnect reasons, for log lines. */
export const DISCONNECT_REASON_NAMES: Readonly<Record<number, string>> = {
  1: "HOST_NOT_ALLOWED_TO_CONNECT",
  2: "PROTOCOL_ERROR",
  3: "KEY_EXCHANGE_FAILED",
  4: "RESERVED",
  5: "MAC_ERROR",
  6: "COMPRESSION_ERROR",
  7: "SERVICE_NOT_AVAILABLE",
  8: "PROTOCOL_VERSION_NOT_SUPPORTED",
  9: "HOST_KEY_NOT_VERIFIABLE",
  10: "CONNECTION_LOST",
  11: "BY_APPLICATION",
  12: "TOO_MANY_CONNECTIONS",
  13: "AUTH_CANCELLED_BY_USER",
  14: "NO_MORE_AUTH_METHODS_AVAILABLE",
  15: "ILLEGAL_USER_NAME",
};

/** SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4250 §4.3). */
export const OPEN_ADMINISTRATIVELY_PROHIBITED = 1;
export const OPEN_CONNECT_FAILED = 2;
export const OPEN_UNKNOWN_CHANNEL_TYPE = 3;
export const OPEN_RESOURCE_SHORTAGE = 4;

/**
 * Twisted's `ConchError(value, data)`: `value` is usually a message, `data` a reason code or
 * other detail. `openFailed` reasons carry the description in `value` and the code in `data`.
 */
export class ConchError extends Error {
  readonly code: string = "ERR_CONCH";
  readonly value: unknown;
  readonly data: unknown;

  constructor(value: unknown, data?: unknown) {
    super(typeof value === "string" ? value : String(value));
    this.name = "ConchError";
    this.value = value;
    this.data = data;
  }
}

/** Raised by the wire reader when a packet ends before a field does. */
export class ShortReadError extends Error {
  readonly code = "ERR_SSH_SHORT_READ";
  constructor(message: string) {
    super(message);
    this.name = "ShortReadError";
  }
}

/** A field whose bytes are present but not valid (a bad mpint, a boolean over 1, …). */
export class MalformedFieldError extends Error {
  readonly code = "ERR_SSH_MALFORMED_FIELD";
  constructor(message: string) {
    super(message);
    this.name = "MalformedFieldError";
  }
}

/**
 * The connection was ended on purpose by one side with SSH_MSG_DISCONNECT, or by us on a
 * protocol fault. `reasonCode` is the RFC 4253 reason, `description` the human text.
 */
export class SSHDisconnectError extends ConchError {
  override readonly code: string = "ERR_SSH_DISCONNECT";
  readonly reasonCode: number;
  readonly description: string;
  /** True when the peer sent the DISCONNECT, false when we did. */
  readonly byPeer: boolean;

  constructor(reasonCode: number, description: string, byPeer: boolean) {
    super(
      `${byPeer ? "peer disconnected" : "disconnected"}: ${DISCONNECT_REASON_NAMES[reasonCode] ?? `reason ${reasonCode}`}: ${description}`,
      reasonCode,
    );
    this.name = "SSHDisconnectError";
    this.reasonCode = reasonCode;
    this.description = description;
    this.byPeer = byPeer;
  }
}

/** The host key was not accepted by `verifyHostKey`. */
export class HostKeyNotVerifiableError extends ConchError {
  override readonly code = "ERR_SSH_HOST_KEY_NOT_VERIFIABLE";
  constructor(message: string) {
    super(message, DISCONNECT_HOST_KEY_NOT_VERIFIABLE);
    this.name = "HostKeyNotVerifiableError";
  }
}

/** A known_hosts entry for this host names a different key (possible man-in-the-middle). */
export class HostKeyChanged extends ConchError {
  override readonly code = "ERR_SSH_HOST_KEY_CHANGED";
  readonly path: string | undefined;
  readonly lineno: number;
  constructor(message: string, lineno: number, path?: string) {
    super(message, lineno);
    this.name = "HostKeyChanged";
    this.lineno = lineno;
    this.path = path;
  }
}

/** No more authentication methods can be tried. */
export class NoMoreAuthMethodsError extends ConchError {
  override readonly code = "ERR_SSH_NO_MORE_AUTH_METHODS";
  constructor(message = "no more authentication methods available") {
    super(message, DISCONNECT_NO_MORE_AUTH_METHODS_AVAILABLE);
    this.name = "NoMoreAuthMethodsError";
  }
}

/** A channel could not be opened; `reasonCode` is the RFC 4254 §5.1 code. */
export class ChannelOpenError extends ConchError {
  override readonly code = "ERR_SSH_CHANNEL_OPEN";
  readonly reasonCode: number;
  constructor(description: string, reasonCode: number) {
    super(description, reasonCode);
    this.name = "ChannelOpenError";
    this.reasonCode = reasonCode;
  }
}

/** A packet's MAC or AEAD tag did not verify: the connection ends with MAC_ERROR. */
export class MACError extends ConchError {
  override readonly code = "ERR_SSH_MAC";
  readonly reasonCode = DISCONNECT_MAC_ERROR;
  constructor(message = "bad packet authentication code") {
    super(message, DISCONNECT_MAC_ERROR);
    this.name = "MACError";
  }
}

/**
 * A packet whose framing is wrong after decryption (padding under 4 bytes or longer than the
 * packet, a length that is not a multiple of the cipher block size): PROTOCOL_ERROR.
 */
export class PacketFormatError extends ConchError {
  override readonly code = "ERR_SSH_BAD_PACKET";
  readonly reasonCode = DISCONNECT_PROTOCOL_ERROR;
  constructor(message: string) {
    super(message, DISCONNECT_PROTOCOL_ERROR);
    this.name = "PacketFormatError";
  }
}

/** A key exchange value that cannot be used (a DH value out of range, a bad curve point, …). */
export class KeyExchangeError extends ConchError {
  override readonly code = "ERR_SSH_KEY_EXCHANGE";
  readonly reasonCode = DISCONNECT_KEY_EXCHANGE_FAILED;
  constructor(message: string) {
    super(message, DISCONNECT_KEY_EXCHANGE_FAILED);
    this.name = "KeyExchangeError";
  }
}

/**
 * Twisted's `keys.BadKeyError`: key data that cannot be used, with what is wrong in words (a
 * truncated blob, garbage base64, a curve that does not match its name, …).
 */
export class BadKeyError extends Error {
  readonly code: string = "ERR_SSH_BAD_KEY";
  constructor(message: string) {
    super(message);
    this.name = "BadKeyError";
  }
}

/** Twisted's `keys.EncryptedKeyError`: the key is encrypted and no passphrase was given. */
export class EncryptedKeyError extends BadKeyError {
  override readonly code: string = "ERR_SSH_ENCRYPTED_KEY";
  constructor(message = "the key is encrypted: a passphrase is needed to read it") {
    super(message);
    this.name = "EncryptedKeyError";
  }
}

/** The passphrase given for an encrypted key does not decrypt it. */
export class BadPassphraseError extends BadKeyError {
  override readonly code: string = "ERR_SSH_BAD_PASSPHRASE";
  constructor(message = "wrong passphrase: the key could not be decrypted with the passphrase given") {
    super(message);
    this.name = "BadPassphraseError";
  }
}

/** Twisted's `keys.BadSignatureAlgorithmError`: the key cannot make signatures of that algorithm. */
export class BadSignatureAlgorithmError extends Error {
  readonly code = "ERR_SSH_BAD_SIGNATURE_ALGORITHM";
  constructor(message: string) {
    super(message);
    this.name = "BadSignatureAlgorithmError";
  }
}

/** Twisted's `keys.BadFingerPrintFormat`: an unknown fingerprint format was asked for. */
export class BadFingerPrintFormat extends Error {
  readonly code = "ERR_SSH_BAD_FINGERPRINT_FORMAT";
  constructor(message: string) {
    super(message);
    this.name = "BadFingerPrintFormat";
  }
}

/** Twisted's `error.InvalidEntry`: a known_hosts line that cannot be parsed. */
export class InvalidEntry extends Error {
  readonly code = "ERR_SSH_INVALID_KNOWN_HOSTS_ENTRY";
  constructor(message: string) {
    super(message);
    this.name = "InvalidEntry";
  }
}

/** Twisted's `error.UserRejectedKey`: the user (or the policy) did not accept a host key. */
export class UserRejectedKey extends ConchError {
  override readonly code = "ERR_SSH_USER_REJECTED_KEY";
  constructor(message = "user rejected the host key") {
    super(message, DISCONNECT_HOST_KEY_NOT_VERIFIABLE);
    this.name = "UserRejectedKey";
  }
}

/**
 * A connection-layer message named a channel number we never allocated (RFC 4254 §5): a protocol
 * error that ends the connection with DISCONNECT_PROTOCOL_ERROR.
 */
export class UnknownChannelError extends ConchError {
  override readonly code = "ERR_SSH_UNKNOWN_CHANNEL";
  readonly channelId: number;
  constructor(channelId: number, message: string) {
    super(`${message}: unknown channel ${channelId}`, DISCONNECT_PROTOCOL_ERROR);
    this.name = "UnknownChannelError";
    this.channelId = channelId;
  }
}

/** A channel request was pending (or asked for) when the channel closed: Twisted's `ConchError("Channel closed.")`. */
export class ChannelClosedError extends ConchError {
  override readonly code = "ERR_SSH_CHANNEL_CLOSED";
  constructor(message = "Channel closed.") {
    super(message);
    this.name = "ChannelClosedError";
  }
}

/** The peer answered a channel request with SSH_MSG_CHANNEL_FAILURE: `ConchError("channel request failed")`. */
export class ChannelRequestFailedError extends ConchError {
  override readonly code = "ERR_SSH_CHANNEL_REQUEST_FAILED";
  constructor(message = "channel request failed") {
    super(message);
    this.name = "ChannelRequestFailedError";
  }
}

/** The peer answered a global request with SSH_MSG_REQUEST_FAILURE; `data` is the reply's payload. */
export class GlobalRequestFailedError extends ConchError {
  override readonly code = "ERR_SSH_GLOBAL_REQUEST_FAILED";
  constructor(data: Uint8Array, message = "global request failed") {
    super(message, data);
    this.name = "GlobalRequestFailedError";
  }
}

/** The connection service stopped while a global request was pending: `ConchError("Connection stopped.")`. */
export class ConnectionStoppedError extends ConchError {
  override readonly code = "ERR_SSH_CONNECTION_STOPPED";
  constructor(message = "Connection stopped.") {
    super(message);
    this.name = "ConnectionStoppedError";
  }
}

/**
 * What the login may do (its authorized_keys options, narrowed by the server's settings) does not
 * include this channel open; refused with OPEN_ADMINISTRATIVELY_PROHIBITED, as sshd does.
 */
export class NotPermittedError extends ConchError {
  override readonly code = "ERR_SSH_NOT_PERMITTED";
  constructor(message: string) {
    super(message, OPEN_ADMINISTRATIVELY_PROHIBITED);
    this.name = "NotPermittedError";
  }
}

/** A known_hosts `@revoked` entry names the host key the server presented: never accept it. */
export class HostKeyRevoked extends ConchError {
  override readonly code = "ERR_SSH_HOST_KEY_REVOKED";
  readonly lineno: number;
  readonly path: string | undefined;
  constructor(message: string, lineno: number, path?: string) {
    super(message, DISCONNECT_HOST_KEY_NOT_VERIFIABLE);
    this.name = "HostKeyRevoked";
    this.lineno = lineno;
    this.path = path;
  }
}

/**
 * Twisted's `error.ValidPublicKey`: raised by a public key checker for a key it would accept when
 * the request carried no signature; the userauth server answers SSH_MSG_USERAUTH_PK_OK.
 */
export class ValidPublicKey extends Error {
  readonly code = "ERR_SSH_VALID_PUBLIC_KEY";
  constructor(message = "the public key is valid; a signature is needed") {
    super(message);
    this.name = "ValidPublicKey";
  }
}

/**
 * Twisted's `error.NotEnoughAuthentication`: this method succeeded but more are needed; the
 * userauth server answers USERAUTH_FAILURE with partial success set.
 */
export class NotEnoughAuthentication extends Error {
  readonly code = "ERR_SSH_NOT_ENOUGH_AUTHENTICATION";
  constructor(message = "partial success: another authentication method is needed") {
    super(message);
    this.name = "NotEnoughAuthentication";
  }
}

/**
 * Twisted's `error.IgnoreAuthentication`: the method has answered the client itself (PK_OK, an
 * info request), so the userauth server sends nothing for this attempt.
 */
export class IgnoreAuthentication extends Error {
  readonly code = "ERR_SSH_IGNORE_AUTHENTICATION";
  constructor(message = "authentication answered by the method") {
    super(message);
    this.name = "IgnoreAuthentication";
  }
}

/** Why a certificate was refused; stable values for logs and tests. */
export type CertificateRefusal =
  | "signature"
  | "ca-is-certificate"
  | "ca-signature-algorithm"
  | "untrusted-ca"
  | "type"
  | "not-yet-valid"
  | "expired"
  | "no-principals"
  | "principal"
  | "critical-option"
  | "source-address"
  | "revoked";

/**
 * An OpenSSH certificate (PROTOCOL.certkeys) that does not verify or is not valid for this use.
 * `reason` says which check refused it; the message says why in words, for the log.
 */
export class CertificateError extends BadKeyError {
  override readonly code: string = "ERR_SSH_CERTIFICATE";
  readonly reason: CertificateRefusal;
  constructor(reason: CertificateRefusal, message: string) {
    super(message);
    this.name = "CertificateError";
    this.reason = reason;
  }
}
