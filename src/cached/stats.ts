/**
 * Counters of cached functions (`getOrSet`, `cacheResult`, the decorators) of one client, reported as
 * `stats().cachedFunctions`.
 *
 * @module
 */

/** Counters of one client's cached functions since it was created. All are counts of calls or events. */
export interface CachedFunctionStats {
  /** Calls answered by a fresh cached value. */
  readonly hits: number;
  /** Calls that found no value (the factory ran here, or its result came from another caller). */
  readonly misses: number;
  /** Calls answered by a value past its TTL but within its grace, while one refresh runs. */
  readonly staleServed: number;
  /** Factory runs (misses that took the lock, refreshes, bypasses, cache failures). */
  readonly factoryRuns: number;
  /** Calls that joined a call already in progress in this process (no I/O of their own). */
  readonly coalesced: number;
  /** Calls that waited for another process's factory (the lock was taken). */
  readonly lockWaits: number;
  /**
   * Times a caller took the lock and found the value already stored by another caller (it returned that
   * value and released the lock: the factory did not run twice).
   */
  readonly rechecks: number;
  /** Waits that reached `lockTimeoutMs`, after which the caller ran the factory itself. */
  readonly lockTimeouts: number;
  /** Background refreshes started (grace or eager refresh). */
  readonly refreshes: number;
  /** Hits past the `eagerRefresh` point of their TTL (each asked for a background refresh). */
  readonly eagerRefreshes: number;
  /** Fills abandoned at `hardTimeoutMs` (their callers rejected with `CacheTimeoutError`). */
  readonly hardTimeouts: number;
  /** Background refreshes that failed (the stale value stays until its grace ends). */
  readonly refreshErrors: number;
  /** Cache operations that failed (connection, timeout, out of memory) during cached calls. */
  readonly cacheErrors: number;
  /** Times the circuit breaker opened after a cache failure. */
  readonly breakerTrips: number;
  /** Calls that skipped the cache because the breaker was open. */
  readonly breakerSkips: number;
  /** Calls answered by the in-process fallback while the cache was failing. */
  readonly fallbackHits: number;
  /** Calls that bypassed the cache because of their `Cache-Control`. */
  readonly bypasses: number;
  /** Tag stamps raised by `invalidateTags` (one per tag per call). */
  readonly tagInvalidations: number;
  /** Implicit entity / key-prefix stamps raised by `invalidate` (one per pattern without glob characters). */
  readonly implicitInvalidations: number;
  /** Patterns handed to `invalidate`'s physical deletion (SCAN + UNLINK after the call returns). */
  readonly scanPatterns: number;
  /** Physical deletion passes started: each walks the namespace once for every pattern queued by then. */
  readonly scanPasses: number;
  /** Keys unlinked by physical deletion passes. */
  readonly scanDeleted: number;
  /** Physical deletion passes that failed (their keys stay until invalidated again or expired). */
  readonly scanErrors: number;
}

/** Mutable counters behind {@link CachedFunctionStats}. @internal */
export class CachedFunctionCounters {
  hits = 0;
  misses = 0;
  staleServed = 0;
  factoryRuns = 0;
  coalesced = 0;
  lockWaits = 0;
  rechecks = 0;
  lockTimeouts = 0;
  refreshes = 0;
  eagerRefreshes = 0;
  hardTimeouts = 0;
  refreshErrors = 0;
  cacheErrors = 0;
  breakerTrips = 0;
  breakerSkips = 0;
  fallbackHits = 0;
  bypasses = 0;
  tagInvalidations = 0;
  implicitInvalidations = 0;
  scanPatterns = 0;
  scanPasses = 0;
  scanDeleted = 0;
  scanErrors = 0;

  /** A frozen copy. */
  snapshot(): CachedFunctionStats {
    return Object.freeze({ ...this });
  }
}
