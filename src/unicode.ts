/**
 * Well-formed Unicode. A JavaScript string may hold a lone surrogate (half of a UTF-16 pair), which has no
 * UTF-8 form: on its way to Redis it becomes U+FFFD, so two distinct keys would land on one, and a stored
 * string would come back changed. Such text is refused before any I/O.
 *
 * @module
 */

import { CacheValidationError } from './errors.js';

/**
 * `text`, unless it holds a lone surrogate (no UTF-8 form: Redis would see U+FFFD, the memory engine the
 * original). The one check behind keys, prefixes, tenants, patterns and raw string values.
 * @param what - what the text is, for the message, e.g. `'A key'`.
 * @throws {CacheValidationError} with {@link illFormedMessage}'s message.
 */
export function requireWellFormed(what: string, text: string): string {
  if (!text.isWellFormed()) throw new CacheValidationError(illFormedMessage(what, text));
  return text;
}

/**
 * Where the first lone surrogate of `text` is, for messages: `"lone surrogate U+D800 at index 1"`.
 * Never quotes the text itself.
 * @param text - a string that is not well-formed (`text.isWellFormed()` is `false`).
 */
export function describeLoneSurrogate(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0xd800 || unit > 0xdfff) continue;
    if (unit <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        i++;
        continue;
      }
    }
    return `lone surrogate U+${unit.toString(16).toUpperCase()} at index ${i}`;
  }
  return 'no lone surrogate';
}

/**
 * The validation message for `text` that is not well-formed Unicode (check with `text.isWellFormed()`
 * first: that is the fast path). Names the first lone surrogate and where it is, never the text.
 * @param what - what the text is, e.g. `'A key'`.
 * @param text - the ill-formed text.
 */
export function illFormedMessage(what: string, text: string): string {
  return `${what} must be well-formed Unicode, but has a ${describeLoneSurrogate(text)} (Redis would store U+FFFD in its place)`;
}
