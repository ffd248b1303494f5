/**
 * `twisted.python.failure`: a `Failure` wraps an error so that it can travel down a Deferred's
 * errback chain, be trapped by type, and be logged with its traceback.
 */

/** An error class, or any constructor a thrown value may have been made with. */
export type ErrorType = abstract new (...args: never[]) => unknown;

/** What `trap` / `check` accept: a class, or a class name (qualified names match on their last part too). */
export type ErrorMatcher = ErrorType | string;

/** Raised by `new Failure()` with no error: JavaScript has no "current exception" to capture. */
export class NoCurrentExceptionError extends Error {
  constructor() {
    super("Failure() needs an error: JavaScript has no current exception to capture");
    this.name = "NoCurrentExceptionError";
  }
}

/**
 * Wraps a thrown value that is not an `Error` (`throw "boom"`), so that `Failure.value` is always
 * an `Error`; the original value is kept in `thrown`.
 */
export class NonErrorThrown extends Error {
  readonly thrown: unknown;
  constructor(thrown: unknown) {
    super(describe(thrown));
    this.name = "NonErrorThrown";
    this.thrown = thrown;
  }
}

function describe(v: unknown): string {
  if (typeof v === "string") return v;
  try {
    return typeof v === "object" && v !== null ? JSON.stringify(v) ?? String(v) : String(v);
  } catch {
    return Object.prototype.toString.call(v);
  }
}

/**
 * A wrapped error: Twisted's `Failure`.
 *
 * `new Failure(error)` wraps any thrown value (a non-`Error` value is wrapped in
 * {@link NonErrorThrown}); `new Failure(otherFailure)` copies it. `new Failure()` throws
 * {@link NoCurrentExceptionError}, as Twisted does outside an `except` block.
 */
export class Failure {
  /** The error. */
  readonly value: Error;
  /** The error's class (its constructor). */
  readonly type: ErrorType;
  /** Twisted's `parents`: the class names along the error's prototype chain, most derived first. */
  readonly parents: readonly string[];

  constructor(...args: [] | [unknown]) {
    if (args.length === 0) throw new NoCurrentExceptionError();
    let v: unknown = args[0];
    if (v instanceof Failure) v = v.value;
    const value = v instanceof Error ? v : new NonErrorThrown(v);
    this.value = value;
    this.type = value.constructor as ErrorType;
    this.parents = classNames(value);
  }

  /**
   * Returns the first of `types` the error matches; otherwise throws this Failure, so that within an
   * errback the same Failure moves on down the chain (Twisted re-raises the original exception).
   */
  trap<M extends ErrorMatcher>(...types: M[]): M {
    const m = this.check(...types);
    if (m === null) throw this;
    return m;
  }

  /** The first of `types` the error matches (by class, or by class name string), or `null`. */
  check<M extends ErrorMatcher>(...types: M[]): M | null {
    for (const t of types) {
      if (typeof t === "string") {
        const short = t.slice(t.lastIndexOf(".") + 1);
        if (this.parents.includes(t) || this.parents.includes(short)) return t;
      } else if (this.value instanceof (t as abstract new (...a: never[]) => unknown)) {
        return t;
      }
    }
    return null;
  }

  /** The error's message (Twisted: `str(value)`). */
  getErrorMessage(): string {
    return this.value.message;
  }

  /** Throws the wrapped error. */
  raiseException(): never {
    throw this.value;
  }

  /** The error's class name: its `name` when it set one, else its constructor's name. */
  private typeName(): string {
    const n = this.value.name;
    return n && n !== "Error" ? n : this.type.name || "Error";
  }

  /** A one-line description: `ClassName: message`. */
  getBriefTraceback(): string {
    return `${this.typeName()}: ${this.value.message}`;
  }

  /**
   * The traceback: `ClassName: message` and the stack frames of the error (and of its `cause`),
   * newline-terminated.
   */
  getTraceback(): string {
    const stack = typeof this.value.stack === "string" ? this.value.stack : "";
    const frames = stack.split("\n").filter((l) => /^\s+at /.test(l));
    let out = `${this.getBriefTraceback()}\n${frames.map((l) => `${l}\n`).join("")}`;
    const cause = (this.value as { cause?: unknown }).cause;
    if (cause !== undefined) out += `Caused by: ${new Failure(cause).getTraceback()}`;
    return out;
  }

  /** Writes the traceback with `write` (default: standard error). */
  printTraceback(write: (s: string) => void = (s) => void process.stderr.write(s)): void {
    write(this.getTraceback());
  }

  /** Twisted drops frame references here; nothing to drop in JavaScript. */
  cleanFailure(): void {}

  toString(): string {
    return `[Failure instance: ${this.getBriefTraceback()}]`;
  }
}

function classNames(value: object): string[] {
  const out: string[] = [];
  let p: unknown = Object.getPrototypeOf(value);
  while (p !== null && p !== undefined) {
    const ctor = (p as { constructor?: unknown }).constructor;
    if (typeof ctor === "function" && ctor.name) out.push(ctor.name);
    p = Object.getPrototypeOf(p);
  }
  return out;
}

/** `err instanceof Failure ? err : new Failure(err)`. */
export function asFailure(err: unknown): Failure {
  return err instanceof Failure ? err : new Failure(err);
}
