/**
 * Reading JSON: `JSON.parse` made safe against prototype poisoning, and Python's `json` dialect
 * (`NaN`, `Infinity`, `-Infinity`, integers of any size) read without losing a digit.
 *
 * Python's dialect costs the common case almost nothing: `JSON.parse` reads every text that has no
 * long integer and no `NaN`/`Infinity` (`JSON.parse` throws on those, so they need no search), and
 * only the rest goes through `lossless-json` with a number parser that keeps big integers as `bigint`.
 *
 * @module
 */
import { parse as losslessParse } from 'lossless-json';

const POISON = /"(?:__proto__|constructor)"\s*:/;
/**
 * A `\uXXXX` escape of a character from `P` to DEL (`_` and the lowercase letters among them): no JSON
 * writer escapes those (Python escapes only DEL), but `"\u005f_proto__"` is `__proto__` once parsed, which
 * {@link POISON} cannot see.
 */
const ESCAPED_NAME_CHARACTER = /\\u00[5-7][0-9a-fA-F]/;

/** Whether `text` may hold a poisoned member: then it is parsed with {@link stripPoison}. */
function mayBePoisoned(text: string): boolean {
  // `includes` first (a third of a regular expression's cost): both poisons need `proto` in the text,
  // `__proto__` itself or the `prototype` member a `constructor` entry must have to be dropped.
  return (
    (text.includes('proto') && POISON.test(text)) ||
    (text.includes('\\u00') && ESCAPED_NAME_CHARACTER.test(text))
  );
}

function stripPoison(this: unknown, key: string, value: unknown): unknown {
  if (key === '__proto__') return undefined;
  if (key === 'constructor' && value !== null && typeof value === 'object' && 'prototype' in value) {
    return undefined;
  }
  return value;
}

/**
 * `JSON.parse` safe against prototype poisoning: `__proto__` keys and `constructor.prototype` entries
 * are dropped, so a value written by another client can never reach `Object.prototype`.
 */
export function safeJsonParse(text: string): unknown {
  return mayBePoisoned(text) ? JSON.parse(text, stripPoison) : JSON.parse(text);
}

const DIGIT_0 = 0x30;
const DIGIT_9 = 0x39;
const DOT = 0x2e;
/** Integers with fewer digits are always safe (10^15 < 2^53); with 16 or more they may not be. */
const LONG_RUN = 16;

function isDigit(code: number): boolean {
  return code >= DIGIT_0 && code <= DIGIT_9;
}

/**
 * Whether `text` holds a run of 16 or more digits that is not a fraction (not right after a `.`): an
 * integer `JSON.parse` may round. Looks at one character in 16 (any such run covers one of them), so
 * a 200-byte value costs about a dozen reads. Runs inside strings count too: a false alarm only sends
 * the text to the (correct, slower) lossless parser.
 */
function hasLongIntegerRun(text: string): boolean {
  const n = text.length;
  for (let i = LONG_RUN - 1; i < n; i += LONG_RUN) {
    if (!isDigit(text.charCodeAt(i))) continue;
    let start = i;
    while (start > 0 && isDigit(text.charCodeAt(start - 1))) start--;
    let end = i + 1;
    while (end < n && isDigit(text.charCodeAt(end))) end++;
    if (end - start >= LONG_RUN && text.charCodeAt(start - 1) !== DOT) return true;
    // The loop probes end + 15 next: every run that starts after this one covers it.
    i = end - 1;
  }
  return false;
}

const INTEGER_TOKEN = /^-?\d+$/;

/** A JSON number token as Python reads it: an int beyond JavaScript's safe range becomes a `bigint`. */
function pythonNumberToken(token: string): number | bigint {
  const n = Number(token);
  // Integers whose exact value is within +-(2^53 - 1) convert exactly; any beyond round past it.
  return Number.isSafeInteger(n) || !INTEGER_TOKEN.test(token) ? n : BigInt(token);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const LETTER_N = 0x4e;
const LETTER_I = 0x49;

function isWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x0a || code === 0x0d || code === 0x09;
}

/** A character of a JSON number token after its first one. */
function isNumberPart(code: number): boolean {
  return isDigit(code) || code === DOT || code === 0x65 || code === 0x45 || code === 0x2b || code === MINUS;
}

/** Where a value can start: after `[`, `,`, `:` (whitespace aside) or at the start of the text. */
function isBeforeValue(code: number): boolean {
  return code === -1 || code === 0x5b || code === 0x2c || code === 0x3a;
}

/** Where a value can end: before `]`, `}`, `,`, whitespace or the end of the text. */
function isAfterValue(code: number): boolean {
  return Number.isNaN(code) || code === 0x5d || code === 0x7d || code === 0x2c || isWhitespace(code);
}

/**
 * Python's constants rewritten as JSON numbers that `lossless-json` accepts: `Infinity` as `1e999`
 * (which every JSON reader, Python's included, reads as infinity) and `NaN` as `0`, remembered by
 * its ordinal among the text's number tokens (the parser meets them in text order). A word is
 * rewritten only where Python reads it as a constant (in value position, whole, and `-` only
 * before `Infinity`); anywhere else it stays and the parser rejects the text, as Python does.
 */
function rewriteConstants(text: string): { json: string; nanTokens: Set<number> } {
  const n = text.length;
  const nanTokens = new Set<number>();
  let json = '';
  let copied = 0;
  let tokens = 0;
  let previous = -1; // the last character outside strings and whitespace
  for (let i = 0; i < n; i++) {
    const code = text.charCodeAt(i);
    if (isWhitespace(code)) continue;
    if (code === QUOTE) {
      for (i++; i < n && text.charCodeAt(i) !== QUOTE; i++) if (text.charCodeAt(i) === BACKSLASH) i++;
    } else if (isDigit(code) || (code === MINUS && isDigit(text.charCodeAt(i + 1)))) {
      tokens++;
      while (isNumberPart(text.charCodeAt(i + 1))) i++;
    } else if (code === LETTER_N || code === LETTER_I) {
      const word = code === LETTER_N ? 'NaN' : 'Infinity';
      const end = i + word.length;
      const negative = previous === MINUS && text.charCodeAt(i - 1) === MINUS && code === LETTER_I;
      const placed = negative ? isBeforeValue(previousBefore(text, i - 1)) : isBeforeValue(previous);
      if (placed && text.startsWith(word, i) && isAfterValue(text.charCodeAt(end))) {
        if (code === LETTER_N) nanTokens.add(tokens);
        tokens++;
        json += text.slice(copied, i) + (code === LETTER_N ? '0' : '1e999');
        copied = end;
        i = end - 1;
      }
    }
    previous = code;
  }
  return { json: copied === 0 ? text : json + text.slice(copied), nanTokens };
}

/** The last character before `index` outside whitespace (-1 at the start of the text). */
function previousBefore(text: string, index: number): number {
  let i = index - 1;
  while (i >= 0 && isWhitespace(text.charCodeAt(i))) i--;
  return i < 0 ? -1 : text.charCodeAt(i);
}

function keepLastDuplicate({ newValue }: { newValue: unknown }): unknown {
  return newValue; // as JSON.parse and Python's json.loads do
}

/** Python's dialect through `lossless-json`, with the poison stripped as {@link safeJsonParse} does. */
function parseLossless(text: string): unknown {
  const hasConstants = text.includes('NaN') || text.includes('Infinity');
  const { json, nanTokens } = hasConstants ? rewriteConstants(text) : { json: text, nanTokens: undefined };
  let tokens = 0;
  const parseNumber = (token: string): number | bigint =>
    nanTokens?.has(tokens++) ? Number.NaN : pythonNumberToken(token);
  const reviver = mayBePoisoned(json) ? stripPoison : null;
  return losslessParse(json, reviver, { parseNumber, onDuplicateKey: keepLastDuplicate });
}

/**
 * Parse JSON as Python's `json.loads` reads it, safe against prototype poisoning (as
 * {@link safeJsonParse}): `NaN`, `Infinity` and `-Infinity` become those numbers; an integer beyond
 * JavaScript's safe range (|n| > 2^53 - 1) becomes a `bigint` with every digit; every other number is
 * a `number`, exactly as `JSON.parse` reads it. Throws a `SyntaxError` on text Python would reject.
 */
export function parsePythonJson(text: string): unknown {
  if (hasLongIntegerRun(text)) return parseLossless(text);
  try {
    return safeJsonParse(text);
  } catch (err) {
    // JSON.parse rejects NaN and Infinity: only such texts need a second look.
    if (text.includes('NaN') || text.includes('Infinity')) return parseLossless(text);
    throw err;
  }
}
