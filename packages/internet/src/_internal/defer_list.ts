/** `DeferredList` and `gatherResults`. */

import { Failure } from "../failure.js";
import { Logger } from "../log.js";
import { Deferred } from "./defer_core.js";

/** The failure of `gatherResults` / `DeferredList(fireOnOneErrback)`: which input failed first, and how. */
export class FirstError extends Error {
  readonly subFailure: Failure;
  readonly index: number;
  constructor(failure: Failure, index: number) {
    super(`FirstError[#${index}, ${failure.toString()}]`);
    this.name = "FirstError";
    this.subFailure = failure;
    this.index = index;
  }
}

/** One entry of a DeferredList's result: `[true, result]` or `[false, failure]`. */
export type DeferredListItem<T> = [true, T] | [false, Failure];

/** The options of `DeferredList` (Twisted's keyword arguments). */
export interface DeferredListOptions {
  /** Fire with `[result, index]` as soon as one Deferred succeeds. */
  fireOnOneCallback?: boolean;
  /** Fail with `FirstError` as soon as one Deferred fails. */
  fireOnOneErrback?: boolean;
  /** Replace each failure with `undefined` in its Deferred, so it is not reported as unhandled. */
  consumeErrors?: boolean;
}

const listLog = new Logger("twisted-ts.internet.defer");

/**
 * Waits for several Deferreds (Twisted's `DeferredList`). Fires with an array of
 * `[success, result]` pairs in input order, and never errbacks unless `fireOnOneErrback` is set.
 * With `fireOnOneCallback` it fires with `[result, index]` of the first success instead (type it with
 * the second type parameter: `new DeferredList<number, [number, number]>(ds, { fireOnOneCallback: true })`).
 * Cancelling it cancels every Deferred in the list.
 */
export class DeferredList<T, R = DeferredListItem<T>[]> extends Deferred<R> {
  readonly resultList: (DeferredListItem<T> | undefined)[];
  readonly fireOnOneCallback: boolean;
  readonly fireOnOneErrback: boolean;
  readonly consumeErrors: boolean;
  finishedCount = 0;
  private readonly deferredList: Deferred<T>[];

  constructor(deferredList: Iterable<Deferred<T>>, options: DeferredListOptions = {}) {
    super();
    this.deferredList = [...deferredList];
    this.resultList = new Array<DeferredListItem<T> | undefined>(this.deferredList.length).fill(undefined);
    this.fireOnOneCallback = options.fireOnOneCallback ?? false;
    this.fireOnOneErrback = options.fireOnOneErrback ?? false;
    this.consumeErrors = options.consumeErrors ?? false;
    if (this.deferredList.length === 0 && !this.fireOnOneCallback) this.callback([] as R);
    this.deferredList.forEach((d, index) => {
      d.addCallbacks(
        (r) => this.cbDeferred(r, index, true),
        (f) => this.cbDeferred(f, index, false),
      );
    });
  }

  private cbDeferred(result: T | Failure, index: number, succeeded: boolean): T | Failure | undefined {
    this.resultList[index] = (succeeded ? [true, result] : [false, result]) as DeferredListItem<T>;
    this.finishedCount++;
    if (!this.called) {
      if (succeeded && this.fireOnOneCallback) this.callback([result, index] as R);
      else if (!succeeded && this.fireOnOneErrback) this.errback(new Failure(new FirstError(result as Failure, index)));
      else if (this.finishedCount === this.resultList.length) this.callback(this.resultList as R);
    }
    if (!succeeded && this.consumeErrors) return undefined;
    return result;
  }

  /** Cancels every Deferred in the list (a throwing canceller is logged), unless this one has fired. */
  override cancel(): void {
    if (this.called) return;
    for (const d of this.deferredList) {
      try {
        d.cancel();
      } catch (e) {
        listLog.failure("Exception raised from user supplied canceller", e);
      }
    }
  }
}

/**
 * A Deferred for the results of all `ds`, in order; the first failure fails it with a
 * `FirstError` (carrying `index` and `subFailure`). `consumeErrors` stops the inputs' failures
 * from being reported as unhandled.
 */
export function gatherResults<T>(ds: Iterable<Deferred<T>>, consumeErrors = false): Deferred<T[]> {
  const d = new DeferredList<T>(ds, { fireOnOneErrback: true, consumeErrors });
  return d.addCallback((results) => results.map((r) => r[1] as T));
}
