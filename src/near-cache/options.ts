/**
 * The `nearCache` client option and its validation.
 *
 * @module
 */
import { CacheValidationError } from '../errors.js';

/**
 * Near cache settings (client option `nearCache`; off when absent). Hot keys are served from process
 * memory and kept correct by the server (RESP3 `CLIENT TRACKING`); see docs/near-cache.md.
 */
export interface NearCacheOptions {
  /** Most keys kept (least recently used dropped first). Required; a positive integer. */
  maxEntries: number;
  /**
   * Most bytes kept, counted as 2 bytes per UTF-16 code unit of each key and stored value plus 64 bytes
   * per entry; a value larger than this on its own is never kept.
   * @default no byte bound (only `maxEntries`)
   */
  maxBytes?: number;
  /**
   * Longest time an entry is served from memory, in milliseconds, whatever the server's TTL (an extra
   * bound; invalidations and the key's own TTL apply in any case).
   * @default no extra bound
   */
  ttlMs?: number;
}

/** Validated near cache settings. */
export interface ResolvedNearCacheOptions {
  readonly maxEntries: number;
  readonly maxBytes: number | undefined;
  readonly ttlMs: number | undefined;
}

const FIELDS = new Set(['maxEntries', 'maxBytes', 'ttlMs']);

function positive(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new CacheValidationError(`The \`nearCache.${name}\` option must be a positive integer`);
  }
  return value;
}

/**
 * Validate the `nearCache` option.
 * @returns `undefined` when the near cache is off (option absent, `null` or `false`).
 * @throws {CacheValidationError} naming the field: not an object, an unknown field, `maxEntries` missing,
 * or a field that is not a positive integer.
 */
export function resolveNearCacheOptions(value: unknown): ResolvedNearCacheOptions | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new CacheValidationError('The `nearCache` option must be an object such as `{ maxEntries: 1000 }`');
  }
  for (const name of Object.keys(value)) {
    if (!FIELDS.has(name)) {
      throw new CacheValidationError(
        `Unknown nearCache option \`${name}\` (known: ${[...FIELDS].join(', ')})`,
      );
    }
  }
  const options = value as Partial<NearCacheOptions>;
  if (options.maxEntries === undefined) {
    throw new CacheValidationError('The `nearCache.maxEntries` option is required (a positive integer)');
  }
  return {
    maxEntries: positive(options.maxEntries, 'maxEntries'),
    maxBytes: options.maxBytes === undefined ? undefined : positive(options.maxBytes, 'maxBytes'),
    ttlMs: options.ttlMs === undefined ? undefined : positive(options.ttlMs, 'ttlMs'),
  };
}
