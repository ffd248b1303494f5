/**
 * LSH's key formats (the GNU lsh SSH suite): canonical S-expressions (SPKI style). Public keys are
 * `{base64(sexp)}`, private keys the raw S-expression; RSA and DSA only, as in Twisted.
 */
import { BadKeyError } from "../../error.js";
import { bigintToBytes, bytesToBigint, concatBytes } from "../common.js";
import type { Components } from "./components.js";
import { decodeBase64, encodeBase64, latin1, mod, modInverse } from "./util.js";

type Sexp = Uint8Array | Sexp[];

/** Parses a canonical S-expression: `(` items `)`, atoms as `<length>:<bytes>`. */
export function parseSexp(data: Uint8Array): Sexp[] {
  let pos = 0;
  while (pos < data.length && /\s/.test(String.fromCharCode(data[pos]!))) pos++;
  const stack: Sexp[][] = [];
  let result: Sexp[] | undefined;
  while (pos < data.length) {
    const ch = data[pos]!;
    if (ch === 0x28) {
      const list: Sexp[] = [];
      stack[stack.length - 1]?.push(list);
      stack.push(list);
      pos++;
    } else if (ch === 0x29) {
      const list = stack.pop();
      if (list === undefined) throw new BadKeyError("LSH key: unbalanced ')' in the S-expression");
      pos++;
      if (stack.length === 0) {
        result = list;
        break;
      }
    } else {
      let n = 0;
      const start = pos;
      while (pos < data.length && data[pos]! >= 0x30 && data[pos]! <= 0x39) n = n * 10 + (data[pos++]! - 0x30);
      if (pos === start || data[pos] !== 0x3a) throw new BadKeyError(`LSH key: expected '<length>:' at offset ${start} of the S-expression`);
      pos++;
      if (pos + n > data.length) throw new BadKeyError("LSH key: the S-expression is truncated");
      if (stack.length === 0) throw new BadKeyError("LSH key: an atom outside any list");
      stack[stack.length - 1]!.push(data.slice(pos, pos + n));
      pos += n;
    }
  }
  if (result === undefined) throw new BadKeyError("LSH key: the S-expression is truncated (missing ')')");
  return result;
}

export function packSexp(items: Sexp[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const o of items) {
    if (o instanceof Uint8Array) parts.push(new TextEncoder().encode(`${o.length}:`), o);
    else parts.push(Uint8Array.of(0x28), packSexp(o), Uint8Array.of(0x29));
  }
  return concatBytes(...parts);
}

const text = (s: string): Uint8Array => new TextEncoder().encode(s);
/** An mpint's body (what Twisted writes as `MP(n)[4:]`). */
function mpBody(n: bigint): Uint8Array {
  const b = bigintToBytes(n);
  return b.length > 0 && (b[0]! & 0x80) !== 0 ? concatBytes(Uint8Array.of(0), b) : b;
}

function values(sexp: Sexp[], kind: string): { algo: string; kd: Map<string, bigint> } {
  const top = sexp[0];
  const body = sexp[1];
  if (!(top instanceof Uint8Array) || latin1(top) !== kind || !Array.isArray(body) || !(body[0] instanceof Uint8Array)) {
    throw new BadKeyError(`LSH key: expected a (${kind} (<algorithm> …)) S-expression`);
  }
  const kd = new Map<string, bigint>();
  for (const item of body.slice(1)) {
    if (!Array.isArray(item) || !(item[0] instanceof Uint8Array) || !(item[1] instanceof Uint8Array)) throw new BadKeyError("LSH key: expected (name value) pairs");
    kd.set(latin1(item[0]), bytesToBigint(item[1]));
  }
  return { algo: latin1(body[0]), kd };
}

function get(kd: Map<string, bigint>, name: string): bigint {
  const v = kd.get(name);
  if (v === undefined) throw new BadKeyError(`LSH key: the value ${JSON.stringify(name)} is missing`);
  return v;
}

export function parsePublicLsh(data: Uint8Array): Components {
  const s = latin1(data).trim();
  if (!s.startsWith("{") || !s.endsWith("}")) throw new BadKeyError("LSH public key: expected {base64} braces");
  const { algo, kd } = values(parseSexp(decodeBase64(s.slice(1, -1), "the LSH public key")), "public-key");
  if (algo === "dsa") return { kind: "DSA", p: get(kd, "p"), q: get(kd, "q"), g: get(kd, "g"), y: get(kd, "y") };
  if (algo === "rsa-pkcs1-sha1") return { kind: "RSA", n: get(kd, "n"), e: get(kd, "e") };
  throw new BadKeyError(`LSH public key: unknown key type ${JSON.stringify(algo)} (supported: rsa-pkcs1-sha1, dsa)`);
}

export function parsePrivateLsh(data: Uint8Array): Components {
  const { algo, kd } = values(parseSexp(data), "private-key");
  if (algo === "dsa") return { kind: "DSA", p: get(kd, "p"), q: get(kd, "q"), g: get(kd, "g"), y: get(kd, "y"), x: get(kd, "x") };
  if (algo === "rsa-pkcs1") {
    let p = get(kd, "p");
    let q = get(kd, "q");
    if (p > q) [p, q] = [q, p];
    return { kind: "RSA", n: get(kd, "n"), e: get(kd, "e"), d: get(kd, "d"), p, q };
  }
  throw new BadKeyError(`LSH private key: unknown key type ${JSON.stringify(algo)} (supported: rsa-pkcs1, dsa)`);
}

/** Writes an LSH key: `{base64}` text for a public key, the binary S-expression for a private one. */
export function toLsh(c: Components, isPrivate: boolean): Uint8Array {
  const pair = (n: string, v: bigint): Sexp[] => [text(n), mpBody(v)];
  if (!isPrivate) {
    let body: Sexp[];
    if (c.kind === "RSA") body = [text("rsa-pkcs1-sha1"), pair("n", c.n), pair("e", c.e)];
    else if (c.kind === "DSA") body = [text("dsa"), pair("p", c.p), pair("q", c.q), pair("g", c.g), pair("y", c.y)];
    else throw new BadKeyError(`LSH has no format for ${c.kind} keys (only RSA and DSA)`);
    return text(`{${encodeBase64(packSexp([[text("public-key"), body]]))}}`);
  }
  if (c.kind === "RSA") {
    const { d, p, q } = { d: c.d!, p: c.p!, q: c.q! };
    // LSH orders the primes the other way round from PKCS#1 (Twisted swaps them likewise).
    const body: Sexp[] = [text("rsa-pkcs1"), pair("n", c.n), pair("e", c.e), pair("d", d), pair("p", q), pair("q", p), pair("a", mod(d, q - 1n)), pair("b", mod(d, p - 1n)), pair("c", modInverse(q, p))];
    return packSexp([[text("private-key"), body]]);
  }
  if (c.kind === "DSA") {
    return packSexp([[text("private-key"), [text("dsa"), pair("p", c.p), pair("q", c.q), pair("g", c.g), pair("y", c.y), pair("x", c.x!)]]]);
  }
  throw new BadKeyError(`LSH has no format for ${c.kind} keys (only RSA and DSA)`);
}
