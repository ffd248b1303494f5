/**
 * ML-KEM-768 (FIPS 203, `@noble/post-quantum`), loaded when a key exchange first needs it.
 * Importing it costs about 27 ms of CPU in a fresh process, more than any key exchange, and only
 * the mlkem768* methods use it: a CLI run that negotiates curve25519 or sntrup761 never loads it.
 *
 * The transport waits for {@link loadMlKem} (input held, in order) before the ML-KEM step; the
 * synchronous helpers (`createKexClient`, `kexServerRespond`) load it with `require()` of the ES
 * module when nothing loaded it yet (Node 20.19+, which `@noble/post-quantum` itself requires).
 */
import { createRequire } from "node:module";
import type { ml_kem768 } from "@noble/post-quantum/ml-kem.js";
import { KeyExchangeError } from "../../error.js";

export type MlKem768 = typeof ml_kem768;

const SPECIFIER = "@noble/post-quantum/ml-kem.js";

/** The one copy per process (module state by necessity: Node caches the module per process too). */
const state: { kem: MlKem768 | undefined; loading: Promise<MlKem768> | undefined } = { kem: undefined, loading: undefined };

function failure(e: unknown): KeyExchangeError {
  return new KeyExchangeError(`ML-KEM-768 cannot be loaded (${SPECIFIER}): ${e instanceof Error ? e.message : String(e)}`);
}

/** True once ML-KEM-768 is loaded in this process. */
export function mlKemLoaded(): boolean {
  return state.kem !== undefined;
}

/**
 * Starts loading ML-KEM-768 (once per process) and resolves with it; rejects with a
 * `KeyExchangeError` when it cannot be loaded, and a later call tries again.
 */
export function loadMlKem(): Promise<MlKem768> {
  if (state.kem !== undefined) return Promise.resolve(state.kem);
  if (state.loading === undefined) {
    const loading = import(SPECIFIER).then(
      (m: { ml_kem768: MlKem768 }) => (state.kem = m.ml_kem768),
      (e: unknown) => {
        state.loading = undefined;
        throw failure(e);
      },
    );
    // Handled here so that a failed load nobody waits for is no unhandled rejection.
    loading.catch(() => undefined);
    state.loading = loading;
  }
  return state.loading;
}

/** ML-KEM-768 now: loaded synchronously when it is not yet (throws a `KeyExchangeError` when it cannot be). */
export function mlKem768(): MlKem768 {
  if (state.kem !== undefined) return state.kem;
  try {
    state.kem = (createRequire(import.meta.url)(SPECIFIER) as { ml_kem768: MlKem768 }).ml_kem768;
  } catch (e) {
    throw failure(e);
  }
  return state.kem;
}
