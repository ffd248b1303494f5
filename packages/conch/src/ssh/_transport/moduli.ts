/**
 * Group exchange primes (RFC 4419): the `/etc/ssh/moduli` format (moduli(5)) and OpenSSH's choice
 * of a group for a client's `min / n / max` request.
 */

export interface ModuliGroup {
  readonly p: bigint;
  readonly g: bigint;
}

/** moduli(5) type 2: a safe prime ((p-1)/2 is prime too). */
const MODULI_TYPE_SAFE = 2;
/** moduli(5) test flag: found composite. */
const MODULI_TESTS_COMPOSITE = 0x01;

function bitLength(n: bigint): number {
  return n.toString(2).length;
}

/**
 * Parses moduli(5) text (`time type tests tries size generator modulus` per line, `#` comments)
 * into groups keyed by their bit size. As in OpenSSH, the size column is one less than the bit
 * length of the prime; lines that are not safe primes, were found composite, were never tested,
 * or whose size does not match the modulus are skipped.
 */
export function parseModuli(text: string): Map<number, Array<{ p: bigint; g: bigint }>> {
  const out = new Map<number, Array<{ p: bigint; g: bigint }>>();
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const f = line.split(/\s+/);
    if (f.length !== 7) continue;
    const [, typeS, testsS, triesS, sizeS, genS, modS] = f as [string, string, string, string, string, string, string];
    if (!/^\d+$/.test(typeS) || !/^\d+$/.test(testsS) || !/^\d+$/.test(triesS) || !/^\d+$/.test(sizeS)) continue;
    if (!/^[0-9a-fA-F]+$/.test(genS) || !/^[0-9a-fA-F]+$/.test(modS)) continue;
    if (Number(typeS) !== MODULI_TYPE_SAFE) continue;
    const tests = Number(testsS);
    if ((tests & MODULI_TESTS_COMPOSITE) !== 0 || (tests & ~MODULI_TESTS_COMPOSITE) === 0) continue;
    if (Number(triesS) === 0) continue;
    const g = BigInt("0x" + genS);
    const p = BigInt("0x" + modS);
    const bits = Number(sizeS) + 1;
    if (bitLength(p) !== bits || g < 2n || g >= p - 1n) continue;
    let list = out.get(bits);
    if (list === undefined) out.set(bits, (list = []));
    list.push({ p, g });
  }
  return out;
}

/**
 * Picks a group for a `min / preferred / max` request as OpenSSH's `choose_dh` does: among the
 * sizes within `[min, max]`, the smallest one at least `preferred`, else the largest one; then a
 * random group of that size. `undefined` when no size fits.
 */
export function chooseGexGroup(
  primes: Map<number, Array<{ p: bigint; g: bigint }>>,
  min: number,
  preferred: number,
  max: number,
): { p: bigint; g: bigint } | undefined {
  let best = -1;
  for (const [size, list] of primes) {
    if (list.length === 0 || size < min || size > max) continue;
    if (best < 0) best = size;
    else if ((size >= preferred && (size < best || best < preferred)) || (size > best && best < preferred)) best = size;
  }
  if (best < 0) return undefined;
  const list = primes.get(best)!;
  return list[Math.floor(Math.random() * list.length)];
}
