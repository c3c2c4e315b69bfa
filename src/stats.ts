/**
 * `CacheClient#stats()`: counters kept by every client, always on (a few integer increments per call).
 *
 * @module
 */

import type { CachedFunctionStats } from './cached/stats.js';
import type { NearCacheStats } from './near-cache/near-cache.js';

/** Counters of one operation since the client was created. */
export interface OperationStats {
  /** Calls that passed input validation and were sent (or queued for sending) to the cache. */
  readonly calls: number;
  /**
   * Calls that rejected after input validation (connection, timeout, server errors). For cached
   * functions (`getOrSet`, `cacheResult`, `getOrSetMany`): the cache operations that failed during their
   * calls (such a call usually still returns its factory's result).
   */
  readonly errors: number;
  /** Reads (`get`, `mget`, cached functions): keys found. `0` for other operations. */
  readonly hits: number;
  /** Reads (`get`, `mget`, cached functions): keys not found. `0` for other operations. */
  readonly misses: number;
}

/** The operations of {@link CacheClient}, always present in {@link CacheStats.operations}. */
export type OperationName =
  | 'get'
  | 'set'
  | 'mget'
  | 'mset'
  | 'delete'
  | 'exists'
  | 'expire'
  | 'ttl'
  | 'flushByPattern'
  | 'flushTenant'
  | 'ping';

const OPERATION_NAMES: readonly OperationName[] = [
  'get',
  'set',
  'mget',
  'mset',
  'delete',
  'exists',
  'expire',
  'ttl',
  'flushByPattern',
  'flushTenant',
  'ping',
];

/**
 * A snapshot returned by {@link CacheClient.stats}: plain data, safe to serialise. Later calls return new
 * snapshots; this one does not change.
 */
export interface CacheStats {
  /**
   * Counters per operation: every {@link OperationName} (zeros when never called), plus any other
   * operation the client ran.
   */
  readonly operations: Readonly<Record<OperationName, OperationStats>> &
    Readonly<Record<string, OperationStats | undefined>>;
  /** The sum of {@link CacheStats.operations} over every operation. */
  readonly totals: OperationStats;
  /** Counters of cached functions (`getOrSet`, `cacheResult`, the decorators); always present (zeros when unused). */
  readonly cachedFunctions: CachedFunctionStats;
  /** Counters of the near cache (option `nearCache`); absent when it is off. */
  readonly nearCache?: NearCacheStats;
}

/**
 * The mutable counters of one operation.
 * @internal
 */
export class OperationCounters {
  calls = 0;
  errors = 0;
  hits = 0;
  misses = 0;

  /** Count `hits` and `misses` (a function made once per operation: the cached functions' recorder). */
  readonly record = (hits: number, misses: number): void => {
    this.hits += hits;
    this.misses += misses;
  };

  /** Count the hits and misses of an `mget` reply (`null` = miss). */
  reads(raws: readonly (string | null)[]): void {
    let hits = 0;
    for (let i = 0; i < raws.length; i++) if (raws[i] !== null) hits++;
    this.hits += hits;
    this.misses += raws.length - hits;
  }
}

function copy(c: OperationStats): OperationStats {
  return { calls: c.calls, errors: c.errors, hits: c.hits, misses: c.misses };
}

/**
 * A client's counters, one {@link OperationCounters} per operation. `get`, `mget` and `set` are held in
 * fields so the hot paths count without a lookup.
 * @internal
 */
export class StatsRecorder {
  readonly #byName = new Map<string, OperationCounters>();
  /** Counters of `get`. */
  readonly get: OperationCounters;
  /** Counters of `mget`. */
  readonly mget: OperationCounters;
  /** Counters of `set`. */
  readonly set: OperationCounters;

  constructor() {
    for (const name of OPERATION_NAMES) this.#byName.set(name, new OperationCounters());
    this.get = this.counters('get');
    this.mget = this.counters('mget');
    this.set = this.counters('set');
  }

  /** The counters of `operation`, created on first use. */
  counters(operation: string): OperationCounters {
    let counters = this.#byName.get(operation);
    if (counters === undefined) {
      counters = new OperationCounters();
      this.#byName.set(operation, counters);
    }
    return counters;
  }

  /** A copy of every counter, with totals (the client adds the cached functions' and near cache's). */
  snapshot(): Omit<CacheStats, 'cachedFunctions' | 'nearCache'> {
    const operations: Record<string, OperationStats> = {};
    const totals = { calls: 0, errors: 0, hits: 0, misses: 0 };
    for (const [name, counters] of this.#byName) {
      operations[name] = copy(counters);
      totals.calls += counters.calls;
      totals.errors += counters.errors;
      totals.hits += counters.hits;
      totals.misses += counters.misses;
    }
    return { operations: operations as CacheStats['operations'], totals };
  }
}
