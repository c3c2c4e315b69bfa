/**
 * The typed codec of cached results: a hit returns what the function returned, with its types.
 *
 * Stored forms:
 * - {@link RESULT_MARKER} followed by `devalue`'s text of the value (numbers, strings, booleans, `null`,
 *   `undefined`, `NaN`, `±Infinity`, `-0`, `bigint`, `Date`, `RegExp`, `Map`, `Set`, nested objects and
 *   arrays, repeated references);
 * - {@link ENTRY_MARKER} followed by `devalue`'s text of `[value, ttl, grace, tags]`, or
 *   `[value, ttl, grace, tags, stamps]` for an entry with tags (`ttl` and `grace` `undefined` unless
 *   its factory set them: the reading call's options apply then), written only when the factory set its
 *   entry's `ttl`, `grace` or `tags` through its context or the entry has tags (the call's `tags`, or the
 *   implicit entity / key-prefix tags of `cacheResult`): a hit then judges freshness (grace, eager
 *   refresh) by the entry's own TTL and grace, and checks the stamps its fill recorded against the
 *   current ones (see `tags.ts`, `entry-meta.ts`). Other entries keep the first form, readable by
 *   earlier versions.
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

/**
 * The stamps a fill recorded before its factory ran: `[stampKey, stamp]` pairs, stamp keys below the
 * namespace (see `tags.ts`), so the entry reads the same under any tenant name.
 */
export type EntryStamps = readonly (readonly [string, number])[];

/** An entry's own metadata: what its factory's context decided (seconds; tags), its tags' stamps. */
export interface EntryMeta {
  /** Seconds the entry is fresh (absent: the reading call's `ttl`; set when its factory changed it). */
  readonly ttl?: number;
  /** Seconds it may be served stale after that (absent: the reading call's `grace`). */
  readonly grace?: number;
  /** The tags its factory set (`ctx.tags`); every tag's stamp key, the call's and implicit ones, is in `stamps`. */
  readonly tags: readonly string[];
  /** The stamps of its tags (implicit ones included) when its fill started; absent: none. */
  readonly stamps?: EntryStamps;
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
  const { ttl, grace, tags, stamps } = meta;
  const fields =
    stamps === undefined || stamps.length === 0
      ? [value, ttl, grace, tags]
      : [value, ttl, grace, tags, stamps];
  return encoded(() => ENTRY_MARKER + stringify(fields));
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
  const [value, ttl, grace, tags, stamps] = Array.isArray(parsed) ? parsed : [];
  if (
    (ttl !== undefined && typeof ttl !== 'number') ||
    (grace !== undefined && typeof grace !== 'number') ||
    !Array.isArray(tags) ||
    (stamps !== undefined && !isStamps(stamps))
  ) {
    throw new CacheValidationError('A cached result is corrupt and cannot be decoded');
  }
  return {
    value,
    meta: {
      ...(ttl === undefined ? {} : { ttl }),
      ...(grace === undefined ? {} : { grace }),
      tags,
      ...(stamps === undefined ? {} : { stamps }),
    },
  };
}

function isStamps(stamps: unknown): stamps is EntryStamps {
  return (
    Array.isArray(stamps) &&
    stamps.every(
      (pair) =>
        Array.isArray(pair) &&
        pair.length === 2 &&
        typeof pair[0] === 'string' &&
        typeof pair[1] === 'number',
    )
  );
}

/**
 * The value of a stored entry (see {@link decodeEntry}).
 * @throws {CacheValidationError} when an entry with a marker is corrupt.
 */
export function decodeResult(raw: string, fallback: (raw: string) => unknown): unknown {
  return decodeEntry(raw, fallback).value;
}
