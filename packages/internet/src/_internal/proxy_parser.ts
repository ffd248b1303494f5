/**
 * The HAProxy PROXY protocol header, v1 (text) and v2 (binary), as a byte-fed parser
 * (`twisted.protocols.haproxy`'s parsers). Spec: https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt
 */
import { isIP } from "node:net";
import { IPv4Address, IPv6Address, UNIXAddress } from "../address.js";
import { InvalidNetworkProtocol, InvalidProxyHeader, MissingAddressData } from "../error.js";
import type { IAddress } from "../interfaces.js";

/** What a PROXY header says: the original source and destination (null for LOCAL / UNKNOWN). */
export interface ProxyInfo {
  readonly header: Uint8Array;
  readonly source: IAddress | null;
  readonly destination: IAddress | null;
}

/** v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const V2_SIGNATURE = Buffer.from("0d0a0d0a000d0a515549540a", "hex");
const V1_PREFIX = Buffer.from("PROXY ", "latin1");
/** A v1 header is at most 107 bytes including CRLF (spec section 2.1). */
export const V1_MAX_LENGTH = 107;
/** We accept v2 headers (address block and TLVs) up to this many bytes after the fixed 16. */
export const V2_MAX_PAYLOAD = 4096;

function port(text: string): number {
  if (!/^(0|[1-9]\d{0,4})$/.test(text)) throw new InvalidProxyHeader(`bad port ${JSON.stringify(text)}`);
  const n = Number(text);
  if (n > 65535) throw new InvalidProxyHeader(`bad port ${text}`);
  return n;
}

/** Parses one complete v1 line (without CRLF). */
export function parseV1(line: string, header: Uint8Array): ProxyInfo {
  const parts = line.split(" ");
  if (parts[0] !== "PROXY") throw new InvalidProxyHeader("missing PROXY");
  const proto = parts[1];
  if (proto === "UNKNOWN") return { header, source: null, destination: null };
  if (proto !== "TCP4" && proto !== "TCP6") throw new InvalidNetworkProtocol(`unknown protocol ${String(proto)}`);
  if (parts.length !== 6) throw new MissingAddressData("PROXY v1 header needs 4 address fields");
  const [, , src, dst, sport, dport] = parts as [string, string, string, string, string, string];
  const family = proto === "TCP4" ? 4 : 6;
  if (isIP(src) !== family || isIP(dst) !== family) throw new InvalidProxyHeader("bad address");
  const make = (h: string, p: number): IAddress => (family === 4 ? new IPv4Address("TCP", h, p) : new IPv6Address("TCP", h, p));
  return { header, source: make(src, port(sport)), destination: make(dst, port(dport)) };
}

function ipv6Text(b: Buffer): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Compress like Node reports addresses (longest run of zero groups → "::").
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i > 1) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/** Parses a complete v2 header (`buf` holds exactly 16 + length bytes). */
export function parseV2(buf: Buffer): ProxyInfo {
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new InvalidProxyHeader(`unsupported version ${verCmd >> 4}`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new InvalidProxyHeader(`unknown command ${cmd}`);
  const famProto = buf[13]!;
  const family = famProto >> 4;
  const proto = famProto & 0x0f;
  const body = buf.subarray(16);
  const header = buf;
  if (cmd === 0) return { header, source: null, destination: null }; // LOCAL: health check
  if (family === 0) return { header, source: null, destination: null }; // UNSPEC
  if (proto > 2) throw new InvalidNetworkProtocol(`unknown transport protocol ${proto}`);
  if (proto === 0) throw new InvalidNetworkProtocol("UNSPEC transport with an address family");
  const type = proto === 1 ? "TCP" : "UDP";
  if (family === 1) {
    if (body.length < 12) throw new MissingAddressData("short IPv4 address block");
    const ip = (o: number): string => `${body[o]}.${body[o + 1]}.${body[o + 2]}.${body[o + 3]}`;
    return {
      header,
      source: new IPv4Address(type, ip(0), body.readUInt16BE(8)),
      destination: new IPv4Address(type, ip(4), body.readUInt16BE(10)),
    };
  }
  if (family === 2) {
    if (body.length < 36) throw new MissingAddressData("short IPv6 address block");
    return {
      header,
      source: new IPv6Address(type, ipv6Text(body.subarray(0, 16)), body.readUInt16BE(32)),
      destination: new IPv6Address(type, ipv6Text(body.subarray(16, 32)), body.readUInt16BE(34)),
    };
  }
  if (family === 3) {
    if (body.length < 216) throw new MissingAddressData("short UNIX address block");
    const path = (b: Buffer): string => {
      const z = b.indexOf(0);
      return b.toString("utf8", 0, z < 0 ? b.length : z);
    };
    return { header, source: new UNIXAddress(path(body.subarray(0, 108))), destination: new UNIXAddress(path(body.subarray(108, 216))) };
  }
  throw new InvalidNetworkProtocol(`unknown address family ${family}`);
}

/**
 * Accumulates bytes until a whole header (v1 or v2) is in; `feed` returns the parsed header and
 * the bytes after it, or null when more input is needed. Throws InvalidProxyHeader (and its
 * subclasses) as soon as the input cannot be a valid header.
 */
export class ProxyHeaderParser {
  private buf: Buffer = Buffer.alloc(0);

  feed(data: Uint8Array): { info: ProxyInfo; rest: Buffer } | null {
    this.buf = this.buf.length === 0 ? Buffer.from(data) : Buffer.concat([this.buf, data]);
    const b = this.buf;
    // Decide the version from as many bytes as we have: each prefix byte must match one of them.
    const n = Math.min(b.length, V2_SIGNATURE.length);
    const maybeV2 = b.subarray(0, n).equals(V2_SIGNATURE.subarray(0, n));
    const m = Math.min(b.length, V1_PREFIX.length);
    const maybeV1 = b.subarray(0, m).equals(V1_PREFIX.subarray(0, m));
    if (!maybeV1 && !maybeV2) throw new InvalidProxyHeader("not a PROXY protocol header");
    if (maybeV2) {
      if (b.length < 16) return null;
      const len = b.readUInt16BE(14);
      if (len > V2_MAX_PAYLOAD) throw new InvalidProxyHeader(`PROXY v2 header too long (${len})`);
      if (b.length < 16 + len) return null;
      const info = parseV2(b.subarray(0, 16 + len));
      return { info, rest: b.subarray(16 + len) };
    }
    const end = b.indexOf("\r\n", 0, "latin1");
    if (end < 0) {
      if (b.length >= V1_MAX_LENGTH) throw new InvalidProxyHeader("PROXY v1 header too long");
      return null;
    }
    if (end + 2 > V1_MAX_LENGTH) throw new InvalidProxyHeader("PROXY v1 header too long");
    const line = b.toString("latin1", 0, end);
    if (!/^[\x20-\x7e]*$/.test(line)) throw new InvalidProxyHeader("non-ASCII PROXY v1 header");
    const info = parseV1(line, b.subarray(0, end + 2));
    return { info, rest: b.subarray(end + 2) };
  }
}
