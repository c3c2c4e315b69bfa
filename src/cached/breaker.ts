/**
 * The circuit breaker of cached functions. When the cache fails (down, frozen, out of memory), every
 * call would otherwise pay the client's `timeoutMs` before running its function. After one failure the
 * breaker opens: for `breakerMs` cached functions skip the cache and run their function directly (or
 * serve the in-process fallback). Then it closes again and the next call tries the cache.
 *
 * @module
 */
import { CacheConnectionError } from '../errors.js';

/** Default time the breaker stays open after a cache failure, in milliseconds. */
export const DEFAULT_BREAKER_MS = 5000;

/** Open/closed state of one client's cache, as seen by its cached functions. */
export class CircuitBreaker {
  #openUntil = 0;
  #trips = 0;

  /** Whether calls should skip the cache now. */
  isOpen(now = performance.now()): boolean {
    return now < this.#openUntil;
  }

  /**
   * Record a cache failure: open for `breakerMs` from now. A failure while already open (a call that
   * started before the trip) extends the window but is not counted as another trip.
   * @returns `true` when this failure opened the breaker.
   */
  trip(breakerMs: number, now = performance.now()): boolean {
    const opened = !this.isOpen(now);
    this.#openUntil = Math.max(this.#openUntil, now + breakerMs);
    if (opened) this.#trips++;
    return opened;
  }

  /** How many times the breaker opened. */
  get trips(): number {
    return this.#trips;
  }
}

/**
 * Whether a cache failure opens the breaker: only the cache failing as a whole at the connection level
 * (refused, reset, timed out, closed, unavailable: a {@link CacheConnectionError}, which includes
 * `CacheTimeoutError`; SPEC section 7). Those are the failures that make every call pay a timeout, which
 * the breaker exists to stop. A server error reply (`WRONGTYPE` on one key, `OOM`, which the server
 * answers at once), a value that cannot be decoded or is too large, fails that call's use of the cache
 * alone.
 */
export function opensBreaker(err: unknown): boolean {
  return err instanceof CacheConnectionError;
}
