/**
 * Value codecs. The default `peak` codec is wire-identical to Peak's Python client: strings are stored
 * raw, everything else as JSON in the format of Python's `json.dumps` (separators `, ` and `: `,
 * non-ASCII escaped as `\uXXXX`). The `json` codec round-trips types losslessly.
 *
 * @module
 */
import { CacheValidationError } from './errors.js';

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
  /** Escape every character outside printable ASCII, and write two-digit exponents, as Python does. */
  readonly python: boolean;
}

/** `JSON.stringify`'s compact format. */
const COMPACT: JsonFormat = { item: ',', key: ':', python: false };
/** Python's `json.dumps` with default arguments. */
const PYTHON: JsonFormat = { item: ', ', key: ': ', python: true };

// Printable ASCII except `"` and `\`: such a string is its own JSON body in every format.
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

function writeString(text: string, format: JsonFormat): string {
  // Most keys and values need no escaping: skip JSON.stringify, which dominates the cost otherwise.
  if (PLAIN_STRING.test(text)) return `"${text}"`;
  const json = JSON.stringify(text);
  return format.python && NON_PRINTABLE_ASCII.test(json)
    ? json.replace(NON_PRINTABLE_ASCII_ALL, escapeNonAscii)
    : json;
}

function writeNumber(n: number, format: JsonFormat): string {
  if (!Number.isFinite(n)) reject(`${n} is not a finite number`);
  const text = String(n);
  if (!format.python) return text;
  // Python's repr() writes at least two exponent digits: 1e-07, 1e+21.
  const e = text.indexOf('e');
  return e === -1 || text.length - e > 3 ? text : `${text.slice(0, e + 2)}0${text.slice(e + 2)}`;
}

/**
 * One pass that both checks and writes: the output is what `JSON.stringify` would write (in `format`),
 * but what JSON cannot represent is an error instead of being dropped or turned into `null`.
 * `undefined` means "no value" (an object member that is left out, as JSON does).
 */
function write(value: unknown, key: string, format: JsonFormat, depth: number): string | undefined {
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
      return reject('BigInt is not supported (convert it to a string or number)');
    case 'function':
      return reject('functions cannot be serialised');
    case 'symbol':
      return reject('symbols cannot be serialised');
  }
  if (value === null) return 'null';
  if (depth >= MAX_JSON_DEPTH) reject(`the value is circular or nested deeper than ${MAX_JSON_DEPTH} levels`);
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') return write(toJSON.call(value, key), key, format, depth);
  // Plain objects and arrays skip the checks for the built-ins JSON mishandles.
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== Array.prototype && proto !== null) {
    if (value instanceof Map || value instanceof Set) {
      return reject(`a ${value instanceof Map ? 'Map' : 'Set'} would be stored as {} (convert it first)`);
    }
    if (value instanceof Number || value instanceof String || value instanceof Boolean) {
      return write(value.valueOf(), key, format, depth);
    }
  }
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += format.item;
      out += write(value[i], String(i), format, depth + 1) ?? 'null';
    }
    return `${out}]`;
  }
  let out = '{';
  let first = true;
  for (const name of Object.keys(value as object)) {
    const member = write((value as Record<string, unknown>)[name], name, format, depth + 1);
    if (member === undefined) continue;
    if (!first) out += format.item;
    first = false;
    out += writeString(name, format) + format.key + member;
  }
  return `${out}}`;
}

function encodeWith(value: unknown, format: JsonFormat): string {
  const text = write(value, '', format, 0);
  if (text === undefined) reject('undefined is not a JSON value');
  return text;
}

/**
 * Compact JSON, as `JSON.stringify` writes it, that rejects what JSON cannot represent (BigInt,
 * functions, symbols, `NaN`, `Infinity`, circular structures, `Map`, `Set`) with a
 * {@link CacheValidationError} instead of dropping it or writing `null`.
 */
export function toJson(value: unknown): string {
  return encodeWith(value, COMPACT);
}

/**
 * JSON exactly as Python's `json.dumps` writes it with default arguments: `, ` and `: ` separators,
 * every character outside printable ASCII escaped as `\uXXXX`, two-digit exponents (`1e-07`). Numbers
 * JavaScript cannot tell apart from Python's may still be spelt differently (`1.0` is `1` here; Python
 * writes `1e-05` where JavaScript writes `0.00001`); they decode to the same value on both sides.
 * Rejects what JSON cannot represent, as {@link toJson} does.
 */
export function toPythonJson(value: unknown): string {
  return encodeWith(value, PYTHON);
}

const POISON = /"(?:__proto__|constructor)"\s*:/;

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
  return POISON.test(text) ? JSON.parse(text, stripPoison) : JSON.parse(text);
}

/** The default codec, wire-compatible with Peak's Python client. */
export const peakCodec: Codec = {
  encode: (value) => (typeof value === 'string' ? value : toPythonJson(value)),
  decode(raw) {
    const first = raw.charCodeAt(0);
    // '{' or '[': JSON, as Python decodes it; anything else comes back as the string stored.
    if (first === 0x7b || first === 0x5b) {
      try {
        return safeJsonParse(raw);
      } catch {
        return raw;
      }
    }
    return raw;
  },
};

/** Lossless codec for keyspaces only TypeScript touches: every value (strings too) JSON-encoded. */
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
