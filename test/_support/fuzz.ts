/**
 * The fuzzing harness shared by the `fuzz_*` tests (a short slice with a fixed seed) and
 * `bench/fuzz.ts` (the same properties for minutes): how inputs are derived from recorded valid
 * messages, how a stream is cut into reads, and what counts as a finding.
 *
 * A target's property holds when every input ends as a parsed value or as one of the project's
 * typed errors (a class of our own carrying a string `code`), buffers stay under the named limits,
 * and nothing else is thrown. A failure message from fast-check carries the seed and path that
 * reproduce it: `node bench/dist/fuzz.js replay "<target>" <seed> <path>`, or in the slice,
 * `FUZZ_SEED=<seed> FUZZ_PATH=<path> node scripts/run-tests.mjs <the test file>`.
 */
import fc from "fast-check";

/** The seed of the `npm test` slice; FUZZ_SEED overrides it to replay a reported failure. */
export const FUZZ_SEED: number = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : 0x5eed11;

/** Options for `fc.assert` in the tests: the fixed seed (or a reported seed and path), `numRuns` runs. */
export function sliceParams<Ts = [unknown]>(numRuns: number): fc.Parameters<Ts> {
  const path = process.env.FUZZ_PATH;
  return path === undefined ? { seed: FUZZ_SEED, numRuns } : { seed: FUZZ_SEED, numRuns, path };
}

/** A property found broken: what was fed and what went wrong. */
export class FuzzFinding extends Error {
  readonly code = "ERR_FUZZ_FINDING";
}

const BUILTIN_ERRORS: ReadonlySet<unknown> = new Set([Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError, AggregateError]);

/**
 * True for the project's own typed errors: an Error of a class of ours (not a built-in, which is
 * also what Node and OpenSSL throw) with a string `code`.
 */
export function isTypedError(e: unknown): boolean {
  if (!(e instanceof Error)) return false;
  if (BUILTIN_ERRORS.has(e.constructor)) return false;
  return typeof (e as { code?: unknown }).code === "string";
}

/** Throws a {@link FuzzFinding} unless `e` is a typed error. */
export function requireTyped(e: unknown, where: string): void {
  if (!isTypedError(e)) {
    const detail = e instanceof Error ? `${e.constructor.name}: ${e.message}\n${e.stack ?? ""}` : String(e);
    throw new FuzzFinding(`${where}: untyped error ${detail}`);
  }
}

/** Runs `fn`; a typed error is an accepted outcome, anything else a finding. */
export function typedOrValue<T>(where: string, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    requireTyped(e, where);
    return undefined;
  }
}

/** Throws a {@link FuzzFinding} when `n` exceeds `limit`. */
export function bounded(what: string, n: number, limit: number): void {
  if (n > limit) throw new FuzzFinding(`${what}: ${n} bytes held, over the limit of ${limit}`);
}

// ---------------------------------------------------------------- reads

/** How a stream is delivered: in one read, one byte at a time, or cut at the given offsets. */
export type Chunking = { kind: "whole" } | { kind: "bytes" } | { kind: "cuts"; at: number[] };

export const chunking: fc.Arbitrary<Chunking> = fc.oneof(
  { weight: 2, arbitrary: fc.constant<Chunking>({ kind: "whole" }) },
  { weight: 1, arbitrary: fc.constant<Chunking>({ kind: "bytes" }) },
  { weight: 3, arbitrary: fc.array(fc.nat(), { minLength: 1, maxLength: 12 }).map((at): Chunking => ({ kind: "cuts", at })) },
);

/** `data` as the reads `how` describes (offsets are taken modulo the length). */
export function chunksOf(data: Uint8Array, how: Chunking): Uint8Array[] {
  if (how.kind === "whole") return [data];
  if (how.kind === "bytes") return Array.from({ length: data.length }, (_, i) => data.subarray(i, i + 1));
  const points = [...new Set(how.at.map((o) => o % (data.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const p of points) {
    out.push(data.subarray(prev, p));
    prev = p;
  }
  out.push(data.subarray(prev));
  return out.filter((c) => c.length > 0);
}

// ---------------------------------------------------------------- mutation

/**
 * Values that sit on the edges SSH parsers check: lengths of 0 and 1, the sign bit, all ones,
 * and the packet limits (RFC 4253's 35000, our MAX_PACKET_LENGTH of 256 KiB and one past it).
 */
const EDGE_U32 = [0, 1, 2, 3, 4, 5, 7, 8, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x10000, 35000, 262144, 262145, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
const EDGE_BYTES = [0, 1, 0x0a, 0x0d, 0x20, 0x22, 0x2c, 0x2d, 0x3d, 0x7f, 0x80, 0xff];

export type Mutation =
  | { k: "bit"; at: number; bit: number }
  | { k: "byte"; at: number; v: number }
  | { k: "u32"; at: number; v: number }
  | { k: "truncate"; at: number }
  | { k: "insert"; at: number; bytes: Uint8Array }
  | { k: "delete"; at: number; n: number }
  | { k: "repeat"; at: number; n: number; times: number };

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ k: fc.constant("bit" as const), at: fc.nat(), bit: fc.nat(7) }),
  fc.record({ k: fc.constant("byte" as const), at: fc.nat(), v: fc.oneof(fc.constantFrom(...EDGE_BYTES), fc.nat(255)) }),
  fc.record({ k: fc.constant("u32" as const), at: fc.nat(), v: fc.oneof(fc.constantFrom(...EDGE_U32), fc.nat({ max: 0xffffffff })) }),
  fc.record({ k: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ k: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
  fc.record({ k: fc.constant("delete" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 32 }) }),
  fc.record({ k: fc.constant("repeat" as const), at: fc.nat(), n: fc.integer({ min: 1, max: 64 }), times: fc.integer({ min: 1, max: 8 }) }),
);

/** A copy of `data` (Buffer's `slice` is a view, so never `data.slice()` here). */
const copy = (data: Uint8Array): Uint8Array => new Uint8Array(data);

/** `data` with one mutation applied (a new array; `data`, often a seed of the corpus, is not changed). */
export function applyMutation(data: Uint8Array, m: Mutation): Uint8Array {
  const len = data.length;
  const at = len === 0 ? 0 : m.at % len;
  switch (m.k) {
    case "bit": {
      if (len === 0) return data;
      const out = copy(data);
      out[at] = out[at]! ^ (1 << m.bit);
      return out;
    }
    case "byte": {
      if (len === 0) return data;
      const out = copy(data);
      out[at] = m.v;
      return out;
    }
    case "u32": {
      if (len < 4) return data;
      const out = copy(data);
      new DataView(out.buffer, out.byteOffset, out.byteLength).setUint32(m.at % (len - 3), m.v);
      return out;
    }
    case "truncate":
      return data.subarray(0, m.at % (len + 1));
    case "insert":
      return Buffer.concat([data.subarray(0, at), m.bytes, data.subarray(at)]);
    case "delete":
      return Buffer.concat([data.subarray(0, at), data.subarray(at + m.n)]);
    case "repeat": {
      const piece = data.subarray(at, at + m.n);
      return Buffer.concat([data.subarray(0, at + piece.length), ...Array<Uint8Array>(m.times).fill(piece), data.subarray(at + piece.length)]);
    }
  }
}

/** One of `corpus`, unchanged or with up to `maxMutations` mutations. */
export function mutant(corpus: readonly Uint8Array[], maxMutations = 4): fc.Arbitrary<Uint8Array> {
  if (corpus.length === 0) throw new Error("mutant: empty corpus");
  return fc
    .tuple(fc.constantFrom(...corpus), fc.array(mutation, { maxLength: maxMutations }))
    .map(([seed, ms]) => ms.reduce(applyMutation, seed));
}

/** Mostly mutants of `corpus`, sometimes random bytes. */
export function fuzzBytes(corpus: readonly Uint8Array[], maxRandom = 256): fc.Arbitrary<Uint8Array> {
  return fc.oneof({ weight: 5, arbitrary: mutant(corpus) }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: maxRandom }) });
}

type Damage =
  | { k: "mutate"; i: number; ms: Mutation[] }
  | { k: "insert"; at: number; which: number; ms: Mutation[] }
  | { k: "drop"; i: number }
  | { k: "cut"; at: number };

/**
 * A conversation derived from `base` (valid messages in a valid order) by a few kinds of damage:
 * a message mutated, a copy of another (maybe mutated) inserted anywhere, one dropped, the tail
 * cut off. Usually zero to three of them, so most inputs keep the valid prefix that takes a
 * parser deep before the damage.
 */
export function conversation(base: readonly Uint8Array[]): fc.Arbitrary<Uint8Array[]> {
  const n = base.length;
  const damage: fc.Arbitrary<Damage> = fc.oneof(
    { weight: 4, arbitrary: fc.record({ k: fc.constant("mutate" as const), i: fc.nat(n - 1), ms: fc.array(mutation, { minLength: 1, maxLength: 3 }) }) },
    { weight: 2, arbitrary: fc.record({ k: fc.constant("insert" as const), at: fc.nat(n), which: fc.nat(n - 1), ms: fc.array(mutation, { maxLength: 2 }) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("drop" as const), i: fc.nat(n - 1) }) },
    { weight: 1, arbitrary: fc.record({ k: fc.constant("cut" as const), at: fc.nat(n) }) },
  );
  return fc.array(damage, { maxLength: 3 }).map((ds) => {
    let out = [...base];
    for (const d of ds) {
      const i = (x: number): number => (out.length === 0 ? 0 : x % out.length);
      if (d.k === "mutate" && out.length > 0) out[i(d.i)] = d.ms.reduce(applyMutation, out[i(d.i)]!);
      else if (d.k === "insert") out.splice(Math.min(d.at, out.length), 0, d.ms.reduce(applyMutation, base[d.which]!));
      else if (d.k === "drop" && out.length > 0) out.splice(i(d.i), 1);
      else if (d.k === "cut") out = out.slice(0, Math.min(d.at, out.length));
    }
    return out;
  });
}

// ---------------------------------------------------------------- targets

/**
 * One parser under fuzz: an arbitrary of inputs and a check that throws on a broken property
 * (targets keep no state between inputs). `runs` is how many inputs the `npm test` slice gives it.
 */
export interface FuzzTarget {
  readonly name: string;
  readonly runs: number;
  /** The inputs (built on first use: corpora that sign or parse keys cost something to make). */
  input(): fc.Arbitrary<unknown>;
  check(input: unknown): void;
}

/** A target over one arbitrary (or a function making it once) whose `check` throws on a broken property. */
export function target<T>(name: string, runs: number, input: fc.Arbitrary<T> | (() => fc.Arbitrary<T>), check: (input: T) => void): FuzzTarget {
  let made: fc.Arbitrary<T> | undefined = typeof input === "function" ? undefined : input;
  return {
    name,
    runs,
    input: () => (made ??= (input as () => fc.Arbitrary<T>)()),
    check: (x) => check(x as T),
  };
}

/** `t` as a fast-check property; `wrap` may decorate each check (the bench times them). */
export function propertyOf(t: FuzzTarget, wrap: (check: () => void) => void = (c) => c()): fc.IPropertyWithHooks<[unknown]> {
  return fc.property(t.input(), (x) => wrap(() => t.check(x)));
}

/** Runs `t`'s slice: its `runs` inputs from the fixed seed (fast-check reports seed and path on failure). */
export function assertTarget(t: FuzzTarget): void {
  fc.assert(propertyOf(t), sliceParams(t.runs));
}
