/**
 * The server side of the SOCKS handshake that dynamic forwarding (`ssh -D`) speaks to local
 * clients: SOCKS4 (and its 4a extension, a host name instead of an address) and SOCKS5 (RFC 1928)
 * with the no-authentication method and the CONNECT command.
 *
 * Sans-IO: {@link SOCKSServerParser.feed} takes the bytes as they arrive (whole, split anywhere,
 * one at a time) and returns what to do — bytes to send back, a destination to connect to, or a
 * failure. Every length field is checked against what the protocol allows and against
 * {@link SOCKS_MAX_USERID} / {@link SOCKS_MAX_HOSTNAME}, so what is held is a few hundred bytes at
 * most; a request that breaks them fails with a {@link SOCKSError} and, where the version has one,
 * a failure reply for the client.
 */
import { OPEN_ADMINISTRATIVELY_PROHIBITED, OPEN_CONNECT_FAILED } from "../../error.js";

/** Longest SOCKS4 user id accepted (it is not used; OpenSSH's whole bound is about 1 KiB). */
export const SOCKS_MAX_USERID = 255;
/** Longest host name accepted (SOCKS4a, SOCKS5): a DNS name has at most 253 characters. */
export const SOCKS_MAX_HOSTNAME = 255;

/** SOCKS4 reply codes. */
export const SOCKS4_GRANTED = 90;
export const SOCKS4_REJECTED = 91;

/** SOCKS5 reply codes (RFC 1928 §6). */
export const SOCKS5_SUCCEEDED = 0;
export const SOCKS5_GENERAL_FAILURE = 1;
export const SOCKS5_NOT_ALLOWED = 2;
export const SOCKS5_HOST_UNREACHABLE = 4;
export const SOCKS5_CONNECTION_REFUSED = 5;
export const SOCKS5_COMMAND_NOT_SUPPORTED = 7;
export const SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED = 8;

const SOCKS_CONNECT = 1;
const SOCKS5_NO_AUTH = 0;
const SOCKS5_NO_ACCEPTABLE_METHOD = 0xff;
const ATYP_IPV4 = 1;
const ATYP_DOMAIN = 3;
const ATYP_IPV6 = 4;

/** A SOCKS request that cannot be served (bad version, command, address type or length). */
export class SOCKSError extends Error {
  readonly code = "ERR_SOCKS_BAD_REQUEST";
  constructor(message: string) {
    super(message);
    this.name = "SOCKSError";
  }
}

/** A CONNECT request: where the client wants to go. */
export interface SOCKSConnectRequest {
  readonly version: 4 | 5;
  /** A dotted IPv4 address, an IPv6 address, or a host name (SOCKS4a, SOCKS5), not resolved. */
  readonly host: string;
  readonly port: number;
}

/** What the caller must do after {@link SOCKSServerParser.feed}. */
export type SOCKSStep =
  /** Send these bytes to the client (SOCKS5's method selection). */
  | { readonly kind: "send"; readonly data: Uint8Array }
  /** Connect to the destination; `rest` came after the request (send it once connected). */
  | { readonly kind: "connect"; readonly request: SOCKSConnectRequest; readonly rest: Uint8Array }
  /** Send `reply` (when the version has one) and close the connection. */
  | { readonly kind: "fail"; readonly reply: Uint8Array | undefined; readonly error: SOCKSError };

type State = "version" | "socks5-request" | "done";

/** Not enough bytes yet. */
const MORE = undefined;

/** A byte-fed SOCKS4/4a/5 server handshake; see the module comment. */
export class SOCKSServerParser {
  /** The client's SOCKS version, once its first byte has arrived. */
  version: 4 | 5 | undefined = undefined;
  private state: State = "version";
  private buf: Uint8Array = new Uint8Array(0);

  /** Takes the next bytes from the client; returns the steps they complete (often none). */
  feed(data: Uint8Array): SOCKSStep[] {
    if (this.state === "done") return [];
    this.buf = this.buf.length === 0 ? data.slice() : Buffer.concat([this.buf, data]);
    const steps: SOCKSStep[] = [];
    for (;;) {
      const step = this.state === "version" ? this.parseFirst() : this.parseSocks5Request();
      if (step === MORE) return steps;
      steps.push(step);
      if (step.kind !== "send") {
        this.state = "done";
        this.buf = new Uint8Array(0);
        return steps;
      }
    }
  }

  /** The reply that tells the client its connection is made. */
  successReply(): Uint8Array {
    return this.version === 4 ? socks4Reply(SOCKS4_GRANTED) : socks5Reply(SOCKS5_SUCCEEDED);
  }

  /**
   * The reply for a destination that could not be reached: `openFailureReason` is the
   * CHANNEL_OPEN_FAILURE reason code (RFC 4254 §5.1), mapped to the nearest SOCKS5 reply.
   */
  failureReply(openFailureReason?: number, description = ""): Uint8Array {
    if (this.version === 4) return socks4Reply(SOCKS4_REJECTED);
    let rep = SOCKS5_GENERAL_FAILURE;
    if (openFailureReason === OPEN_ADMINISTRATIVELY_PROHIBITED) rep = SOCKS5_NOT_ALLOWED;
    else if (openFailureReason === OPEN_CONNECT_FAILED) rep = /refused/i.test(description) ? SOCKS5_CONNECTION_REFUSED : SOCKS5_HOST_UNREACHABLE;
    return socks5Reply(rep);
  }

  private fail(message: string, reply: Uint8Array | undefined): SOCKSStep {
    return { kind: "fail", reply, error: new SOCKSError(message) };
  }

  private parseFirst(): SOCKSStep | undefined {
    const b = this.buf;
    if (b.length < 1) return MORE;
    if (b[0] === 4) {
      this.version = 4;
      return this.parseSocks4();
    }
    if (b[0] !== 5) return this.fail(`unsupported SOCKS version ${b[0]!}`, undefined);
    this.version = 5;
    // VER NMETHODS METHODS...
    if (b.length < 2) return MORE;
    const n = b[1]!;
    if (n === 0) return this.fail("SOCKS5 greeting offers no methods", Uint8Array.of(5, SOCKS5_NO_ACCEPTABLE_METHOD));
    if (b.length < 2 + n) return MORE;
    const methods = b.subarray(2, 2 + n);
    this.buf = b.subarray(2 + n);
    if (!methods.includes(SOCKS5_NO_AUTH)) return this.fail("SOCKS5 client does not offer the no-authentication method", Uint8Array.of(5, SOCKS5_NO_ACCEPTABLE_METHOD));
    this.state = "socks5-request";
    return { kind: "send", data: Uint8Array.of(5, SOCKS5_NO_AUTH) };
  }

  /** VN CD DSTPORT(2) DSTIP(4) USERID NUL [HOSTNAME NUL when DSTIP is 0.0.0.x, x != 0 (4a)] */
  private parseSocks4(): SOCKSStep | undefined {
    const b = this.buf;
    const rejected = socks4Reply(SOCKS4_REJECTED);
    if (b.length >= 2 && b[1] !== SOCKS_CONNECT) return this.fail(`unsupported SOCKS4 command ${b[1]!}`, rejected);
    if (b.length < 8) return MORE;
    const port = (b[2]! << 8) | b[3]!;
    const userEnd = b.indexOf(0, 8);
    if (userEnd < 0) return b.length - 8 > SOCKS_MAX_USERID ? this.fail("SOCKS4 user id too long", rejected) : MORE;
    if (userEnd - 8 > SOCKS_MAX_USERID) return this.fail("SOCKS4 user id too long", rejected);
    let host: string;
    let end = userEnd + 1;
    if (b[4] === 0 && b[5] === 0 && b[6] === 0 && b[7] !== 0) {
      const nameEnd = b.indexOf(0, end);
      if (nameEnd < 0) return b.length - end > SOCKS_MAX_HOSTNAME ? this.fail("SOCKS4a host name too long", rejected) : MORE;
      const name = hostName(b.subarray(end, nameEnd));
      if (name === undefined) return this.fail("SOCKS4a host name empty, too long or not printable ASCII", rejected);
      host = name;
      end = nameEnd + 1;
    } else host = `${b[4]!}.${b[5]!}.${b[6]!}.${b[7]!}`;
    if (port === 0) return this.fail("SOCKS4 request for port 0", rejected);
    return { kind: "connect", request: { version: 4, host, port }, rest: b.slice(end) };
  }

  /** VER CMD RSV ATYP DST.ADDR DST.PORT(2) (RFC 1928 §4) */
  private parseSocks5Request(): SOCKSStep | undefined {
    const b = this.buf;
    if (b.length >= 1 && b[0] !== 5) return this.fail(`SOCKS5 request with version ${b[0]!}`, socks5Reply(SOCKS5_GENERAL_FAILURE));
    if (b.length >= 2 && b[1] !== SOCKS_CONNECT) return this.fail(`unsupported SOCKS5 command ${b[1]!}`, socks5Reply(SOCKS5_COMMAND_NOT_SUPPORTED));
    if (b.length >= 3 && b[2] !== 0) return this.fail("SOCKS5 reserved byte is not 0", socks5Reply(SOCKS5_GENERAL_FAILURE));
    if (b.length < 4) return MORE;
    const atyp = b[3]!;
    let host: string | undefined;
    let addrEnd: number;
    if (atyp === ATYP_IPV4) {
      addrEnd = 8;
      if (b.length < addrEnd + 2) return MORE;
      host = `${b[4]!}.${b[5]!}.${b[6]!}.${b[7]!}`;
    } else if (atyp === ATYP_IPV6) {
      addrEnd = 20;
      if (b.length < addrEnd + 2) return MORE;
      host = formatIPv6(b.subarray(4, 20));
    } else if (atyp === ATYP_DOMAIN) {
      if (b.length < 5) return MORE;
      addrEnd = 5 + b[4]!;
      if (b.length < addrEnd + 2) return MORE;
      host = hostName(b.subarray(5, addrEnd));
      if (host === undefined) return this.fail("SOCKS5 host name empty or not printable ASCII", socks5Reply(SOCKS5_GENERAL_FAILURE));
    } else return this.fail(`unsupported SOCKS5 address type ${atyp}`, socks5Reply(SOCKS5_ADDRESS_TYPE_NOT_SUPPORTED));
    const port = (b[addrEnd]! << 8) | b[addrEnd + 1]!;
    if (port === 0) return this.fail("SOCKS5 request for port 0", socks5Reply(SOCKS5_GENERAL_FAILURE));
    return { kind: "connect", request: { version: 5, host, port }, rest: b.slice(addrEnd + 2) };
  }
}

function socks4Reply(code: number): Uint8Array {
  // VN (0) CD DSTPORT DSTIP: the address fields are ignored by clients.
  return Uint8Array.of(0, code, 0, 0, 0, 0, 0, 0);
}

function socks5Reply(rep: number): Uint8Array {
  // VER REP RSV ATYP(IPv4) BND.ADDR(0.0.0.0) BND.PORT(0), as OpenSSH answers.
  return Uint8Array.of(5, rep, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0);
}

/** A host name of printable ASCII without spaces, 1 to {@link SOCKS_MAX_HOSTNAME} bytes, or undefined. */
function hostName(b: Uint8Array): string | undefined {
  if (b.length === 0 || b.length > SOCKS_MAX_HOSTNAME) return undefined;
  for (const c of b) if (c < 0x21 || c > 0x7e) return undefined;
  return Buffer.from(b).toString("latin1");
}

/** RFC 5952 text of a 16-byte IPv6 address: lower case, the longest run of zero groups as `::`. */
export function formatIPv6(b: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((b[i]! << 8) | b[i + 1]!);
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}
