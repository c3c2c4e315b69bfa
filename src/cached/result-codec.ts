/**
 * The typed codec of cached results: a hit returns what the function returned, with its types.
 *
 * Stored form: {@link RESULT_MARKER} followed by `devalue`'s text (numbers, strings, booleans, `null`,
 * `undefined`, `NaN`, `±Infinity`, `-0`, `bigint`, `Date`, `RegExp`, `Map`, `Set`, nested objects and
 * arrays, repeated references). The marker tells our entries from values written by a plain `set` or by
 * Python: those are decoded by the client's own codec instead (see {@link decodeResult}).
 *
 * devalue refuses `__proto__` keys when parsing, so a hostile entry cannot poison prototypes.
 *
 * @module
 */
import { parse, stringify } from 'devalue';
import { CacheValidationError } from '../errors.js';

/** First characters of every stored result: `peak-cache:v1:`. */
export const RESULT_MARKER = 'peak-cache:v1:';

/**
 * Encode a result for storage.
 * @throws {CacheValidationError} for values devalue cannot represent (functions, symbols, class
 * instances other than the built-ins listed in the module doc).
 */
export function encodeResult(value: unknown): string {
  try {
    return RESULT_MARKER + stringify(value);
  } catch (err) {
    throw new CacheValidationError(
      `The result cannot be cached: ${err instanceof Error ? err.message.split('\n')[0] : 'unsupported value'}`,
      { cause: err },
    );
  }
}

/**
 * Decode a stored entry: ours (with the marker) through devalue, anything else through `fallback`
 * (the client's codec), so an entry written by `set` or by Python still reads as a hit.
 * @throws {CacheValidationError} when an entry with the marker is corrupt.
 */
export function decodeResult(raw: string, fallback: (raw: string) => unknown): unknown {
  if (!raw.startsWith(RESULT_MARKER)) return fallback(raw);
  try {
    return parse(raw.slice(RESULT_MARKER.length));
  } catch (err) {
    throw new CacheValidationError('A cached result is corrupt and cannot be decoded', { cause: err });
  }
}
