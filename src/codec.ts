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

// JSON.stringify drops functions and symbols silently and throws a bare TypeError on BigInt; this
// replacer turns each of them (and non-finite numbers, which JSON would store as null) into a clear error.
function strictReplacer(this: unknown, _key: string, value: unknown): unknown {
  switch (typeof value) {
    case 'number':
      if (!Number.isFinite(value)) reject(`${value} is not a finite number`);
      return value;
    case 'bigint':
      return reject('BigInt is not supported (convert it to a string or number)');
    case 'function':
      return reject('functions cannot be serialised');
    case 'symbol':
      return reject('symbols cannot be serialised');
    default:
      return value;
  }
}

/** `JSON.stringify` that rejects what JSON cannot represent with a {@link CacheValidationError}. */
export function toJson(value: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, strictReplacer);
  } catch (err) {
    if (err instanceof CacheValidationError) throw err;
    // Circular structures, throwing toJSON()/getters.
    reject(
      err instanceof Error ? (err.message.split('\n')[0] ?? 'serialisation failed') : 'serialisation failed',
    );
  }
  if (text === undefined) reject(`${value === undefined ? 'undefined' : typeof value} is not a JSON value`);
  return text;
}

// A JSON string literal, a structural separator, or a one-digit exponent (only numbers have `e` + sign).
const PY_TOKEN = /"(?:[^"\\]|\\.)*"|[,:]|e[+-]\d(?!\d)/g;
const NON_PRINTABLE_ASCII = /[^\x20-\x7e]/g;

function escapeNonAscii(ch: string): string {
  return `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`;
}

/**
 * Rewrite compact JSON (from `JSON.stringify`) in the exact format of Python's `json.dumps` with
 * default arguments: `, ` and `: ` separators, every character outside printable ASCII escaped, and
 * two-digit exponents (`1e-07`). Numbers JavaScript cannot tell apart from Python's may still be spelt
 * differently (`1.0` is `1` here; Python writes `1e-05` where JavaScript writes `0.00001`); they decode
 * to the same value on both sides.
 */
export function toPythonJson(compact: string): string {
  return compact.replace(PY_TOKEN, (token) => {
    if (token === ',') return ', ';
    if (token === ':') return ': ';
    if (token.charCodeAt(0) === 0x65) return `${token.slice(0, 2)}0${token.slice(2)}`; // e-7 -> e-07, as repr()
    return token.replace(NON_PRINTABLE_ASCII, escapeNonAscii);
  });
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
  encode: (value) => (typeof value === 'string' ? value : toPythonJson(toJson(value))),
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
