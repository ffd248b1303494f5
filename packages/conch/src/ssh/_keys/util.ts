/** Small helpers shared by the key format modules. */
import { BadKeyError } from "../../error.js";
import { bigintToBytes, bytesToBigint } from "../common.js";

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Decodes standard base64 strictly (whitespace ignored): anything else is a BadKeyError naming
 * `what`, where Buffer.from would silently skip the garbage.
 */
export function decodeBase64(text: string, what: string): Uint8Array {
  const s = text.replace(/\s+/g, "");
  if (s.length === 0) throw new BadKeyError(`${what} is empty: expected base64 data`);
  if (!B64.test(s) || s.length % 4 === 1 || (s.includes("=") && s.length % 4 !== 0)) {
    const bad = s.match(/[^A-Za-z0-9+/=]/);
    throw new BadKeyError(
      bad !== null
        ? `${what} is not valid base64: unexpected character ${JSON.stringify(bad[0])} at offset ${bad.index ?? 0}`
        : `${what} is not valid base64: bad length or padding (the data may be truncated)`,
    );
  }
  return new Uint8Array(Buffer.from(s, "base64"));
}

export function encodeBase64(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");
}

export function b64url(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64url");
}

export function fromB64url(s: string | undefined, what: string): Uint8Array {
  if (s === undefined) throw new BadKeyError(`${what} is missing`);
  return new Uint8Array(Buffer.from(s, "base64url"));
}

export function bigFromB64url(s: string | undefined, what: string): bigint {
  return bytesToBigint(fromB64url(s, what));
}

export function bigToB64url(n: bigint, length?: number): string {
  return b64url(bigintToBytes(n, length));
}

/** Bit length of a non-negative bigint. */
export function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** (a mod m), never negative. */
export function mod(a: bigint, m: bigint): bigint {
  const r = a % m;
  return r < 0n ? r + m : r;
}

/** The inverse of a modulo m; throws when there is none. */
export function modInverse(a: bigint, m: bigint): bigint {
  let [oldR, r] = [mod(a, m), m];
  let [oldS, s] = [1n, 0n];
  while (r !== 0n) {
    const q = oldR / r;
    [oldR, r] = [r, oldR - q * r];
    [oldS, s] = [s, oldS - q * s];
  }
  if (oldR !== 1n) throw new BadKeyError("invalid key: a value that must be invertible is not");
  return mod(oldS, m);
}

/** Passphrase bytes: a string is NFKC-normalised and UTF-8 encoded, as Twisted does. */
export function passphraseBytes(passphrase: Uint8Array | string | undefined): Uint8Array | undefined {
  if (passphrase === undefined) return undefined;
  if (typeof passphrase === "string") return new TextEncoder().encode(passphrase.normalize("NFKC"));
  return passphrase;
}

/** True when `data` starts with the ASCII text `prefix`. */
export function startsWithAscii(data: Uint8Array, prefix: string): boolean {
  if (data.length < prefix.length) return false;
  for (let i = 0; i < prefix.length; i++) if (data[i] !== prefix.charCodeAt(i)) return false;
  return true;
}

/** Latin-1 text of bytes (lossless, for locating ASCII armour). */
export function latin1(data: Uint8Array): string {
  return Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("latin1");
}

/** A PEM-style armoured block: `-----BEGIN <label>-----`, optional RFC 1421 headers, base64. */
export interface Armour {
  label: string;
  headers: Map<string, string>;
  body: Uint8Array;
}

/** Finds and decodes the first `-----BEGIN …-----` block of `text`. */
export function parseArmour(text: string): Armour {
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text);
  if (begin === null) throw new BadKeyError("no '-----BEGIN …-----' line found");
  const label = begin[1]!;
  const endLine = `-----END ${label}-----`;
  const endAt = text.indexOf(endLine, begin.index);
  if (endAt < 0) throw new BadKeyError(`the ${label} block has no '${endLine}' line: the file is truncated`);
  const lines = text.slice(begin.index + begin[0].length, endAt).split(/\r?\n/);
  const headers = new Map<string, string>();
  const bodyLines: string[] = [];
  for (const line of lines) {
    const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(line.trim());
    if (m !== null && bodyLines.length === 0) headers.set(m[1]!, m[2]!);
    else if (line.trim() !== "") bodyLines.push(line.trim());
  }
  return { label, headers, body: decodeBase64(bodyLines.join(""), `the ${label} block`) };
}

/** Armours `body` in base64 lines of `width` characters. */
export function armour(label: string, body: Uint8Array, width = 64, headers: [string, string][] = []): string {
  const b64 = encodeBase64(body);
  const lines = [`-----BEGIN ${label}-----`];
  for (const [k, v] of headers) lines.push(`${k}: ${v}`);
  if (headers.length > 0) lines.push("");
  for (let i = 0; i < b64.length; i += width) lines.push(b64.slice(i, i + width));
  lines.push(`-----END ${label}-----`, "");
  return lines.join("\n");
}
