/**
 * Value codecs. The default `peak` codec is wire-identical to Peak's Python client: strings are stored
 * raw, everything else as JSON exactly as Python's `json.dumps` writes it (separators `, ` and `: `,
 * non-ASCII escaped as `\uXXXX`, floats spelled as `repr()` spells them, `NaN`/`Infinity`, integers
 * of any size from `bigint`), and read as Python's `json.loads` reads it. The `json` codec writes
 * standard JSON and round-trips types losslessly.
 *
 * @module
 */
import { parsePythonJson, safeJsonParse } from './codec/parse.js';
import { pythonNumber } from './codec/python-number.js';
import { CacheValidationError } from './errors.js';
import { requireWellFormed } from './unicode.js';

export { safeJsonParse };

/** Turns values into the strings stored in the cache, and back. */
export interface Codec {
  /** Encode a value for storage. Throw to reject it (the client reports a {@link CacheValidationError}). */
  encode(value: unknown): string;
  /** Decode a stored string. */
  decode(raw: string): unknown;
}

/** Names of the built-in codecs. */
export type CodecName = 'peak' | 'json';

function reject(reason: string): never {
  throw new CacheValidationError(`Value cannot be stored as JSON: ${reason}`);
}

/** Deepest nesting accepted; deeper values are circular or hostile. */
export const MAX_JSON_DEPTH = 1000;

const NON_PRINTABLE_ASCII = /[^\x20-\x7e]/;
const NON_PRINTABLE_ASCII_ALL = /[^\x20-\x7e]/g;

function escapeNonAscii(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/** Separators and escaping of one JSON dialect. */
interface JsonFormat {
  /** Between array items and object members. */
  readonly item: string;
  /** Between an object key and its value. */
  readonly key: string;
  /** Escape every character outside printable ASCII as `\uXXXX`, as Python's `json.dumps` does. */
  readonly ascii: boolean;
  /**
   * Python's numbers: spelled as Python spells them ({@link pythonNumber}: `1e-05`, `NaN`, `Infinity`),
   * and `bigint` as a plain integer. Otherwise standard JSON: non-finite numbers and `bigint` are
   * rejected.
   */
  readonly python: boolean;
  /** Object members in code point order of their names, as Python's `json.dumps(sort_keys=True)`. */
  readonly sortKeys?: boolean;
  /** Member names as written (see {@link memberPrefix}): name -> `"name": ` and `, "name": `. */
  readonly names: MemberNames;
}

/** A format's written member names, cached: most values repeat the same few names. */
interface MemberNames {
  readonly first: Map<string, string>;
  readonly next: Map<string, string>;
}

function memberNames(): MemberNames {
  return { first: new Map(), next: new Map() };
}

/** Member names longer than this are written afresh each time (not cached). */
const MAX_CACHED_NAME_LENGTH = 64;
/** Cached names per format and position; the cache starts over when full. */
const MAX_CACHED_NAMES = 1024;

/** `JSON.stringify`'s compact format. */
const COMPACT: JsonFormat = { item: ',', key: ':', ascii: false, python: false, names: memberNames() };
/** Python's `json.dumps` with default arguments. */
const PYTHON: JsonFormat = { item: ', ', key: ': ', ascii: true, python: true, names: memberNames() };
/** Python's `json.dumps(value, sort_keys=True)` (the same member names as {@link PYTHON}). */
const PYTHON_SORTED: JsonFormat = { ...PYTHON, sortKeys: true };
/** `JSON.stringify`'s compact format with Python's numbers (for display: every decoded value fits). */
const COMPACT_PYTHON: JsonFormat = { item: ',', key: ':', ascii: false, python: true, names: COMPACT.names };

/**
 * Whether `text` is printable ASCII without `"` and `\\`: such a string is its own JSON body in every
 * format. (A loop: measured faster than the equivalent regular expression on keys and short values.)
 */
function isPlainString(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) return false;
  }
  return true;
}

function writeString(text: string, format: JsonFormat): string {
  // Most keys and values need no escaping: skip JSON.stringify, which dominates the cost otherwise.
  if (isPlainString(text)) return `"${text}"`;
  const json = JSON.stringify(text);
  return format.ascii && NON_PRINTABLE_ASCII.test(json)
    ? json.replace(NON_PRINTABLE_ASCII_ALL, escapeNonAscii)
    : json;
}

/**
 * An object member's name as written before its value: `"name": ` for the first member, `, "name": `
 * for the others (in `format`'s separators). Cached per format (short names only, bounded): fewer and
 * flatter string concatenations per value.
 */
function memberPrefix(name: string, first: boolean, format: JsonFormat): string {
  const cache = first ? format.names.first : format.names.next;
  let text = cache.get(name);
  if (text !== undefined) return text;
  text = (first ? '' : format.item) + writeString(name, format) + format.key;
  if (name.length <= MAX_CACHED_NAME_LENGTH) {
    if (cache.size >= MAX_CACHED_NAMES) cache.clear();
    cache.set(name, text);
  }
  return text;
}

function writeNumber(n: number, format: JsonFormat): string {
  if (format.python) return pythonNumber(n);
  if (!Number.isFinite(n)) {
    reject(`${n} is not a finite number (standard JSON has no NaN or Infinity; the peak codec writes them)`);
  }
  return String(n);
}

/**
 * One pass that both checks and writes: the output is what `JSON.stringify` would write (in `format`),
 * but what JSON cannot represent is an error instead of being dropped or turned into `null`.
 * `undefined` means "no value" (an object member that is left out, as JSON does).
 */
function write(value: unknown, key: string | number, format: JsonFormat, depth: number): string | undefined {
  switch (typeof value) {
    case 'string':
      return writeString(value, format);
    case 'number':
      return writeNumber(value, format);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'undefined':
      return undefined;
    case 'bigint':
      if (format.python) return value.toString();
      return reject('BigInt is not supported by the json codec (the peak codec writes it as an integer)');
    case 'function':
      return reject('functions cannot be serialised');
    case 'symbol':
      return reject('symbols cannot be serialised');
  }
  if (value === null) return 'null';
  if (depth >= MAX_JSON_DEPTH) reject(`the value is circular or nested deeper than ${MAX_JSON_DEPTH} levels`);
  // Plain objects and arrays skip the checks for the built-ins JSON mishandles.
  const proto = Object.getPrototypeOf(value);
  const plain = proto === Object.prototype || proto === Array.prototype || proto === null;
  // Before `toJSON`: a Node Buffer's `toJSON` would store `{"type": "Buffer", "data": [...]}`.
  if (isBinary(value as object)) return reject(`${BINARY} (convert it first, e.g. to base64)`);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  // Array items' keys are passed as numbers (no string per item) and given to `toJSON` as strings, as
  // JSON.stringify gives them.
  if (typeof toJSON === 'function') return write(toJSON.call(value, String(key)), key, format, depth);
  if (!plain) {
    if (value instanceof Number || value instanceof String || value instanceof Boolean) {
      return write(value.valueOf(), key, format, depth);
    }
    const lost = lossyBuiltIn(value as object);
    if (lost !== undefined) return reject(`${lost} (convert it first)`);
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += format.item;
      out += write(value[i], i, format, depth + 1) ?? 'null';
    }
    return `${out}]`;
  }
  let out = '{';
  let first = true;
  const names = Object.keys(value as object);
  if (format.sortKeys === true) names.sort(compareCodePoints);
  for (const name of names) {
    const member = write((value as Record<string, unknown>)[name], name, format, depth + 1);
    if (member === undefined) continue;
    out += memberPrefix(name, first, format) + member;
    first = false;
  }
  return `${out}}`;
}

const BINARY = 'binary data (a Buffer, ArrayBuffer, typed array or DataView) has no JSON form';

/** A Node `Buffer`, any typed array, `DataView`, `ArrayBuffer` or `SharedArrayBuffer`. */
function isBinary(value: object): boolean {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer;
}

/**
 * Order of two strings by code point, as Python compares `str`s (JavaScript's default order compares
 * UTF-16 units, which puts U+10000 and above before U+E000-U+FFFF).
 */
function compareCodePoints(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a.codePointAt(i) as number;
    const y = b.codePointAt(j) as number;
    if (x !== y) return x - y;
    i += x > 0xffff ? 2 : 1;
    j += y > 0xffff ? 2 : 1;
  }
  return a.length - i - (b.length - j);
}

/**
 * Built-ins whose state is not in their own enumerable properties: `JSON.stringify` would store `{}`
 * (or, for typed arrays, an object of indices) and the value would read back as something else.
 * @returns what would be lost, or `undefined` for an ordinary object.
 */
function lossyBuiltIn(value: object): string | undefined {
  if (value instanceof Map || value instanceof Set) {
    return `a ${value instanceof Map ? 'Map' : 'Set'} would be stored as {}`;
  }
  if (value instanceof RegExp || value instanceof Error || value instanceof Promise) {
    return `${value instanceof Error ? 'an Error' : `a ${value.constructor.name}`} would be stored as {}`;
  }
  if (value instanceof WeakMap || value instanceof WeakSet || value instanceof WeakRef) {
    return `a ${value.constructor.name} has no readable contents`;
  }
  return undefined;
}

function encodeWith(value: unknown, format: JsonFormat): string {
  const text = write(value, '', format, 0);
  if (text === undefined) reject('undefined is not a JSON value');
  return flatten(text);
}

/**
 * `text` stored flat: built by concatenation, it is a tree of pieces, which every later reader (the
 * driver's `Buffer.byteLength`, the socket's write) would walk or copy again. Converting a string to a
 * number makes V8 flatten it in place (the `flatstr` idiom, as pino does); measured on the benchmark's
 * value: a `set` through the driver costs ~0.6 µs less CPU.
 */
function flatten(text: string): string {
  // Kept in a variable: a conversion whose result is unused could be optimized away.
  _flattened = Number(text);
  return text;
}

/** The last {@link flatten}ed text as a number (`NaN` but for a JSON number): only kept, never read. */
let _flattened = 0;

/**
 * Compact JSON, as `JSON.stringify` writes it, that rejects what standard JSON cannot represent
 * (`bigint`, functions, symbols, `NaN`, `Infinity`, circular structures, `Map`, `Set`) with a
 * {@link CacheValidationError} instead of dropping it or writing `null`.
 */
export function toJson(value: unknown): string {
  return encodeWith(value, COMPACT);
}

/**
 * JSON exactly as Python's `json.dumps` writes it with default arguments: `, ` and `: ` separators,
 * every character outside printable ASCII escaped as `\uXXXX` (lone surrogates too: `\ud800`), a
 * `bigint` as a plain integer, and numbers as {@link pythonNumber} spells them: a safe integer as an
 * int (`42`), anything else as Python's `repr(float)` (`0.1`, `1e-05`, `1e+16`, `9007199254740992.0`,
 * `-0.0`, `NaN`, `Infinity`, `-Infinity`), so a float is byte-equal whichever side wrote it. (Python's
 * integral floats below 2^53 are the exception: JavaScript cannot tell `1.0` from `1` and writes `1`.)
 * Rejects what JSON cannot represent otherwise (functions, symbols, circular structures, `Map`, `Set`).
 */
export function toPythonJson(value: unknown): string {
  return encodeWith(value, PYTHON);
}

/**
 * {@link toPythonJson} with object members sorted by name (code point order, at every level), exactly
 * as Python's `json.dumps(value, sort_keys=True)` writes it: the text Peak's Python `encode_data`
 * encodes into a cached function's key.
 * @throws {CacheValidationError} for what JSON cannot represent, as {@link toPythonJson}.
 */
export function toPythonJsonSorted(value: unknown): string {
  return encodeWith(value, PYTHON_SORTED);
}

/**
 * Compact JSON as `JSON.stringify` writes it, but with Python's numbers as {@link toPythonJson} writes
 * them (`NaN`, `Infinity`, `bigint` as a plain integer, `1e-05`): every value the peak codec decodes can
 * be shown, where `JSON.stringify` would throw on a `bigint` and write `null` for `NaN`. For display
 * (the command line's output).
 * @throws {CacheValidationError} for what JSON cannot represent (functions, symbols, circular
 *   structures, `Map`, `Set`, a top-level `undefined`).
 */
export function toCompactPythonJson(value: unknown): string {
  return encodeWith(value, COMPACT_PYTHON);
}

/**
 * A raw string value as the peak codec stores it: as it is, unless it holds a lone surrogate, which
 * UTF-8 cannot carry (Redis would store U+FFFD instead, silently).
 */
function rawString(value: string): string {
  return requireWellFormed('A string value', value);
}

/**
 * The default codec, wire-compatible with Peak's Python client (see the module documentation).
 *
 * - `encode`: a string is stored raw (a string holding a lone surrogate is a
 *   {@link CacheValidationError}), and so is a value whose `toJSON` returns a string (a `Date` is stored
 *   as its ISO text and reads back as that string); anything else as `toPythonJson` writes it. Built-ins
 *   JSON would silently empty or garble (`Map`, `Set`, `RegExp`, `Error`, `Promise`, binary data: a
 *   Node `Buffer`, typed arrays, `ArrayBuffer`, `DataView`; weak collections) are a
 *   {@link CacheValidationError}.
 * - `decode`: a value starting with `{` or `[` is read as Python's `json.loads` reads it (`NaN`,
 *   `Infinity`, `-Infinity` become those numbers; an integer beyond +-(2^53 - 1) becomes a `bigint`
 *   with every digit; other numbers are `number`s), safe against prototype poisoning; anything else,
 *   or JSON Python would reject, is returned as the string stored (so `42` reads back as `'42'`).
 */
export const peakCodec: Codec = {
  encode(value) {
    if (typeof value === 'string') return rawString(value);
    // A value that stands for a string (a `Date` through `toJSON`) is stored as that string, raw, as a
    // string is: `"..."` with its quotes would read back as a quoted string (it is not `{`/`[` JSON).
    const toJSON = (value as { toJSON?: unknown } | null | undefined)?.toJSON;
    if (typeof toJSON === 'function') {
      const replaced: unknown = toJSON.call(value, '');
      if (typeof replaced === 'string') return rawString(replaced);
    }
    return toPythonJson(value);
  },
  decode(raw) {
    const first = raw.charCodeAt(0);
    // '{' or '[': JSON, as Python decodes it; anything else comes back as the string stored.
    if (first === 0x7b || first === 0x5b) {
      try {
        return parsePythonJson(raw);
      } catch {
        return raw;
      }
    }
    return raw;
  },
};

/**
 * Lossless codec for keyspaces only TypeScript touches: every value (strings too) is written as
 * standard JSON (`toJson`) and read with `JSON.parse` (safe against prototype poisoning). What
 * standard JSON cannot hold exactly is rejected rather than changed: `bigint`, `NaN` and `Infinity`
 * are a {@link CacheValidationError} (the peak codec writes them in Python's dialect). Lone surrogates
 * in strings are escaped (`\ud800`) and round-trip.
 */
export const jsonCodec: Codec = {
  encode: toJson,
  decode(raw) {
    try {
      return safeJsonParse(raw);
    } catch {
      // A value another writer stored raw: return it as it is rather than fail the read.
      return raw;
    }
  },
};

/** Resolve the `codec` option to a codec object. */
export function resolveCodec(codec: CodecName | Codec | undefined): Codec {
  if (codec === undefined || codec === 'peak') return peakCodec;
  if (codec === 'json') return jsonCodec;
  if (typeof codec === 'object' && typeof codec.encode === 'function' && typeof codec.decode === 'function') {
    return codec;
  }
  throw new CacheValidationError(
    "The `codec` option must be 'peak', 'json' or an object with encode and decode",
  );
}
