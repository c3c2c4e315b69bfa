/**
 * Redis glob matching, ported from `stringmatchlen` in Redis 7's `util.c` (the matcher behind
 * `SCAN … MATCH`, `KEYS` and `PSUBSCRIBE`), so the embedded engine selects exactly the keys a Redis
 * server would.
 *
 * Syntax (case-sensitive):
 * - `*` any run of bytes, `?` exactly one byte;
 * - `[abc]` one of the listed bytes, `[^abc]` any byte but those, `[a-z]` a range (a reversed range
 *   such as `[z-a]` means the same as `[a-z]`);
 * - `\x` the literal `x`, outside and inside brackets; a trailing `\` matches a literal `\`;
 * - an unterminated `[` is tolerated the way Redis tolerates it (the class runs to the end of the
 *   pattern).
 *
 * Like Redis, matching works on the UTF-8 bytes of the pattern and the key, so `?` matches one byte,
 * not one character: `?` does not match `é` (two bytes) but `??` does, and `[é]` is a class of the two
 * bytes of `é`. Range bounds compare bytes as signed `char`s, as Redis does on x86-64 and most other
 * platforms (ARM Linux, where `char` is unsigned, differs for ranges with a byte above 0x7f). Strings
 * are encoded as the Redis client sends them: lone surrogates become U+FFFD.
 *
 * Complexity is polynomial: like Redis 7, a `*` that fails at every position of the rest of the key
 * stops every enclosing `*` from trying longer matches, and nesting deeper than 1000 `*`s reports no
 * match (both exactly as Redis, so results agree even for abusive patterns).
 *
 * @module
 */

const STAR = 0x2a; // *
const QUESTION = 0x3f; // ?
const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const BACKSLASH = 0x5c; // \
const CARET = 0x5e; // ^
const DASH = 0x2d; // -

/** Redis's limit on `*` recursion depth; deeper patterns never match. */
const MAX_NESTING = 1000;

const encoder = new TextEncoder();
/** Largest key buffer kept between matches, in bytes. */
const MAX_KEPT_BUFFER = 64 * 1024;

// State of the match in progress. Matching is synchronous and never re-entered, so module state is
// safe, and it spares allocating closures per key.
/** Pattern bytes. */
let pat: Uint8Array = new Uint8Array(0);
/** Key bytes, valid in `[0, textLen)`; a reused buffer. */
let text = new Uint8Array(256);
let textLen = 0;
let skipLongerMatches = false;

/** A byte as the signed `char` Redis compares in ranges. */
function signedByte(b: number): number {
  return (b << 24) >> 24;
}

/** Pattern byte `i`; reads past the end yield 0, like the NUL terminator C reads there. */
function at(i: number): number {
  return pat[i] ?? 0;
}

/** `stringmatchlen_impl` with `nocase = 0`, on `pat` from `pi` and `text` from `si`. */
function matchFrom(pi: number, si: number, nesting: number): boolean {
  // Protection against abusive patterns.
  if (nesting > MAX_NESTING) return false;
  const patLen = pat.length;

  while (pi < patLen && si < textLen) {
    const p = at(pi);
    const c = text[si] ?? 0;
    if (p === STAR) {
      while (pi < patLen && at(pi + 1) === STAR) pi++;
      if (patLen - pi === 1) return true;
      while (si < textLen) {
        if (matchFrom(pi + 1, si, nesting + 1)) return true;
        if (skipLongerMatches) return false;
        si++;
      }
      // The rest of the pattern matched nowhere in the rest of the key, so an earlier `*` taking a
      // longer substring cannot succeed either: it would need the same rest to match even later.
      skipLongerMatches = true;
      return false;
    }
    if (p === QUESTION) {
      si++;
    } else if (p === OPEN) {
      pi++;
      const negate = at(pi) === CARET;
      if (negate) pi++;
      let found = false;
      for (;;) {
        if (at(pi) === BACKSLASH && patLen - pi >= 2) {
          pi++;
          if (at(pi) === c) found = true;
        } else if (at(pi) === CLOSE) {
          break;
        } else if (pi === patLen) {
          // Unterminated class: step back so the increment below ends the pattern.
          pi--;
          break;
        } else if (patLen - pi >= 3 && at(pi + 1) === DASH) {
          let start = signedByte(at(pi));
          let end = signedByte(at(pi + 2));
          if (start > end) [start, end] = [end, start];
          pi += 2;
          const sc = signedByte(c);
          if (sc >= start && sc <= end) found = true;
        } else if (at(pi) === c) {
          found = true;
        }
        pi++;
      }
      if (negate) found = !found;
      if (!found) return false;
      si++;
    } else {
      if (p === BACKSLASH && patLen - pi >= 2) pi++;
      if (at(pi) !== c) return false;
      si++;
    }
    pi++;
    if (si === textLen) {
      while (at(pi) === STAR) pi++;
      break;
    }
  }
  return pi === patLen && si === textLen;
}

/**
 * Compile a Redis glob into a predicate, for testing many keys against one pattern.
 *
 * @param pattern - a Redis glob (see the module documentation).
 * @returns a function telling whether a key matches `pattern` as Redis `SCAN … MATCH` would decide.
 * @example
 * ```ts
 * const isUser = globMatcher('user:[0-9]*');
 * isUser('user:42'); // true
 * ```
 */
export function globMatcher(pattern: string): (text: string) => boolean {
  const bytes = encoder.encode(pattern);
  return (key) => {
    // UTF-8 needs at most 3 bytes per UTF-16 code unit.
    if (text.length < key.length * 3) text = new Uint8Array(key.length * 3);
    textLen = encoder.encodeInto(key, text).written;
    pat = bytes;
    skipLongerMatches = false;
    const matched = matchFrom(0, 0, 0);
    // Do not keep a huge buffer alive after an unusually long key.
    if (text.length > MAX_KEPT_BUFFER) text = new Uint8Array(256);
    return matched;
  };
}

/**
 * Whether `text` matches the Redis glob `pattern`, exactly as Redis 7's `stringmatchlen` decides
 * (case-sensitive, on UTF-8 bytes). Note that, as in Redis, no pattern matches the empty string except
 * the empty pattern (`SCAN` itself special-cases the pattern `*`).
 *
 * @param pattern - a Redis glob (see the module documentation).
 * @param text - the key to test.
 * @example
 * ```ts
 * matchesGlob('h[ae]llo', 'hello'); // true
 * matchesGlob('h\\*', 'h*'); // true: the star is escaped
 * ```
 */
export function matchesGlob(pattern: string, text: string): boolean {
  return globMatcher(pattern)(text);
}

/**
 * Escape `literal` so that, used as a Redis glob, it matches only itself: prefixes each of
 * `*`, `?`, `[`, `]` and `\` with `\`.
 *
 * @example
 * ```ts
 * escapeGlob('a*b[1]'); // 'a\\*b\\[1\\]'
 * `${escapeGlob(prefix)}*`; // every key starting with prefix
 * ```
 */
export function escapeGlob(literal: string): string {
  return literal.replace(/[*?[\]\\]/g, '\\$&');
}
