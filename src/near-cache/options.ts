/**
 * The `nearCache` client option and its validation.
 *
 * @module
 */
import { CacheValidationError } from '../errors.js';
import { checkOptionNames } from '../options.js';

/**
 * Near cache settings (client option `nearCache`; off when absent). Hot keys are served from process
 * memory and kept correct by the server (RESP3 `CLIENT TRACKING`); see docs/near-cache.md.
 */
export interface NearCacheOptions {
  /**
   * Most keys kept (least recently used dropped first). Required; a positive integer up to
   * `MAX_NEAR_CACHE_ENTRIES` (1,000,000). The LRU reserves its index for the whole bound when the client is
   * created (about 16 bytes per entry), so size it to the hot set, not the keyspace.
   */
  maxEntries: number;
  /**
   * Most bytes kept, counted as 2 bytes per UTF-16 code unit of each key and stored value plus 64 bytes
   * per entry (the shared decoded value is not counted); a value larger than this on its own is never kept.
   * @default no byte bound (only `maxEntries`)
   */
  maxBytes?: number;
  /**
   * Longest time an entry is served from memory, in milliseconds, whatever the server's TTL (an extra
   * bound; invalidations and the key's own TTL apply in any case). It bounds the changes the server does
   * not signal (`SWAPDB`, `DEBUG RELOAD`, see docs/near-cache.md); a very large value (up to
   * `Number.MAX_SAFE_INTEGER`) removes the bound.
   * @default {@link DEFAULT_NEAR_CACHE_TTL_MS} (10 minutes)
   */
  ttlMs?: number;
  /**
   * How hits of objects and arrays are returned. `false`: one decoded value per entry, deeply frozen and
   * shared by every hit (a mutation throws a `TypeError` in strict-mode code, or is ignored), measured
   * ~6x faster for a 200-byte object than decoding each hit. `true`: every hit is decoded afresh, so
   * callers may mutate what they get. Either way the cache itself is never changed by a caller. Values a
   * custom codec decodes to anything but plain objects, arrays and primitives are always decoded afresh.
   * @default false
   */
  copyValues?: boolean;
}

/** Validated near cache settings. */
export interface ResolvedNearCacheOptions {
  readonly maxEntries: number;
  readonly maxBytes: number | undefined;
  readonly ttlMs: number | undefined;
  readonly copyValues: boolean;
}

/**
 * Default `nearCache.ttlMs`: 600,000 ms (10 minutes). A backstop, not the freshness model (invalidations
 * are): Redis 7.0 sends no invalidation for `SWAPDB` (nor for `DEBUG RELOAD` of another dataset), so
 * without a bound such a change would be served forever. Its cost is one GET + PTTL per hot key every 10
 * minutes; the reasoning is in docs/near-cache.md.
 */
export const DEFAULT_NEAR_CACHE_TTL_MS = 600_000;

/**
 * Largest `nearCache.maxEntries` accepted: 1,000,000. The LRU (`lru-cache`) allocates its index for the
 * whole bound up front (measured: 10,000,000 entries took 5 s and 154 MiB before the first key), so a
 * larger bound would stall or exhaust the process at start-up; use `maxBytes` to bound memory further.
 */
export const MAX_NEAR_CACHE_ENTRIES = 1_000_000;

const FIELDS = new Set(['maxEntries', 'maxBytes', 'ttlMs', 'copyValues']);

function positive(value: unknown, name: string, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0 || value > max) {
    throw new CacheValidationError(
      `The \`nearCache.${name}\` option must be a positive integer${max < Number.MAX_SAFE_INTEGER ? ` up to ${max}` : ''}`,
    );
  }
  return value;
}

function boolean(value: unknown, name: string): boolean {
  if (typeof value !== 'boolean') {
    throw new CacheValidationError(`The \`nearCache.${name}\` option must be a boolean`);
  }
  return value;
}

/**
 * Validate the `nearCache` option.
 * @returns `undefined` when the near cache is off (option absent, `null` or `false`).
 * @throws {CacheValidationError} naming the field: not an object, an unknown field, `maxEntries` missing,
 * a count or bound that is not a positive integer, `maxEntries` above {@link MAX_NEAR_CACHE_ENTRIES}, or `copyValues` not a boolean.
 */
export function resolveNearCacheOptions(value: unknown): ResolvedNearCacheOptions | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new CacheValidationError('The `nearCache` option must be an object such as `{ maxEntries: 1000 }`');
  }
  checkOptionNames(value, FIELDS, 'nearCache');
  const options = value as Partial<NearCacheOptions>;
  if (options.maxEntries === undefined) {
    throw new CacheValidationError('The `nearCache.maxEntries` option is required (a positive integer)');
  }
  return {
    maxEntries: positive(options.maxEntries, 'maxEntries', MAX_NEAR_CACHE_ENTRIES),
    maxBytes: options.maxBytes === undefined ? undefined : positive(options.maxBytes, 'maxBytes'),
    ttlMs: options.ttlMs === undefined ? DEFAULT_NEAR_CACHE_TTL_MS : positive(options.ttlMs, 'ttlMs'),
    copyValues: boolean(options.copyValues ?? false, 'copyValues'),
  };
}
