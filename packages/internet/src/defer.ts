/**
 * `twisted.internet.defer`: Deferreds and the tools built on them.
 *
 * ```ts
 * import { Deferred, succeed } from "@twisted-ts/internet/defer";
 * const d = new Deferred<number>();
 * d.addCallback((n) => n + 1).addErrback((f) => { f.trap(RangeError); return 0; });
 * d.callback(41);
 * ```
 */

export {
  AlreadyCalledError,
  CancelledError,
  Deferred,
  TimeoutError,
  execute,
  fail,
  getDebugging,
  logError,
  maybeDeferred,
  passthru,
  reportAllUnhandled,
  setDebugging,
  succeed,
} from "./_internal/defer_core.js";
export type { AddCallbacksOptions, Awaitable } from "./_internal/defer_core.js";
export { DeferredList, FirstError, gatherResults } from "./_internal/defer_list.js";
export type { DeferredListItem, DeferredListOptions } from "./_internal/defer_list.js";
export { NotACoroutineError, ensureDeferred, inlineCallbacks, runGenerator } from "./_internal/defer_inline.js";
export type { InlineGenerator } from "./_internal/defer_inline.js";
export { DeferredLock, DeferredQueue, DeferredSemaphore, QueueOverflow, QueueUnderflow } from "./_internal/defer_locks.js";
