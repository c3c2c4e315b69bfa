/**
 * The typed codec of cached results: a hit returns what the function returned, with its types.
 *
 * Stored forms:
 * - {@link RESULT_MARKER} followed by `devalue`'s text of the value (numbers, strings, booleans, `null`,
 *   `undefined`, `NaN`, `±Infinity`, `-0`, `bigint`, `Date`, `RegExp`, `Map`, `Set`, nested objects and
 *   arrays, repeated references);
 * - {@link ENTRY_MARKER} followed by `devalue`'s text of `[value, ttl, grace, tags]`, written only when
 *   the factory set its entry's `ttl`, `grace` or `tags` through its context: a hit then judges
 *   freshness (grace, eager refresh) by the entry's own TTL and grace, and tag invalidation finds its
 *   tags. Entries without a context change keep the first form, readable by earlier versions.
 *
 * The markers tell our entries from values written by a plain `set` or by Python: those are decoded by
 * the client's own codec instead (see {@link decodeEntry}).
 *
 * devalue refuses `__proto__` keys when parsing, so a hostile entry cannot poison prototypes.
 *
 * @module
 */
import { parse, stringify } from 'devalue';
import { CacheValidationError } from '../errors.js';

/** First characters of a stored result without metadata: `peak-cache:v1:`. */
export const RESULT_MARKER = 'peak-cache:v1:';
/** First characters of a stored result with its entry's metadata: `peak-cache:v2:`. */
export const ENTRY_MARKER = 'peak-cache:v2:';

/** What the factory's context decided for its entry (seconds; tags). */
export interface EntryMeta {
  /** Seconds the entry is fresh. */
  readonly ttl: number;
  /** Seconds it may be served stale after that. */
  readonly grace: number;
  /** Its tags. */
  readonly tags: readonly string[];
}

/** A decoded entry: its value, and its metadata when it carries some. */
export interface DecodedEntry {
  readonly value: unknown;
  readonly meta?: EntryMeta;
}

function encoded(text: () => string): string {
  try {
    return text();
  } catch (err) {
    throw new CacheValidationError(
      `The result cannot be cached: ${err instanceof Error ? err.message.split('\n')[0] : 'unsupported value'}`,
      { cause: err },
    );
  }
}

/**
 * Encode a result for storage, with its entry's metadata when given.
 * @throws {CacheValidationError} for values devalue cannot represent (functions, symbols, class
 * instances other than the built-ins listed in the module doc).
 */
export function encodeResult(value: unknown, meta?: EntryMeta): string {
  if (meta === undefined) return encoded(() => RESULT_MARKER + stringify(value));
  return encoded(() => ENTRY_MARKER + stringify([value, meta.ttl, meta.grace, meta.tags]));
}

/**
 * Decode a stored entry: ours (with a marker) through devalue, anything else through `fallback`
 * (the client's codec), so an entry written by `set` or by Python still reads as a hit.
 * @throws {CacheValidationError} when an entry with a marker is corrupt.
 */
export function decodeEntry(raw: string, fallback: (raw: string) => unknown): DecodedEntry {
  const v1 = raw.startsWith(RESULT_MARKER);
  if (!v1 && !raw.startsWith(ENTRY_MARKER)) return { value: fallback(raw) };
  let parsed: unknown;
  try {
    parsed = parse(raw.slice(RESULT_MARKER.length));
  } catch (err) {
    throw new CacheValidationError('A cached result is corrupt and cannot be decoded', { cause: err });
  }
  if (v1) return { value: parsed };
  const [value, ttl, grace, tags] = Array.isArray(parsed) ? parsed : [];
  if (typeof ttl !== 'number' || typeof grace !== 'number' || !Array.isArray(tags)) {
    throw new CacheValidationError('A cached result is corrupt and cannot be decoded');
  }
  return { value, meta: { ttl, grace, tags } };
}

/**
 * The value of a stored entry (see {@link decodeEntry}).
 * @throws {CacheValidationError} when an entry with a marker is corrupt.
 */
export function decodeResult(raw: string, fallback: (raw: string) => unknown): unknown {
  return decodeEntry(raw, fallback).value;
}
